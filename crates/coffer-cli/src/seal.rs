//! `coffer seal`: records streamed in, envelopes streamed out, on every core.
//!
//! One thread reads rows into batches; workers seal batches with `seal_many` (one audit
//! transaction per batch); one writer puts the envelopes out in input order. Channels are
//! bounded, so memory does not grow with the input. Rows that fail go to the rejects file with
//! their line number and report (paths and codes, never values). Output files appear only when
//! complete.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer::Coffer;
use zeroize::Zeroizing;

use crate::input::{self, Defaults, Format, Row};
use crate::util::{EXIT_NO, Failure, Output, StoreArgs, interrupted};

pub(crate) struct SealArgs {
    pub(crate) file: Option<PathBuf>,
    pub(crate) format: Option<Format>,
    pub(crate) out: PathBuf,
    pub(crate) rejects: Option<PathBuf>,
    pub(crate) defaults: Defaults,
    pub(crate) batch: usize,
    pub(crate) threads: Option<usize>,
    pub(crate) progress: bool,
    pub(crate) json: bool,
}

enum Outcome {
    Sealed(Zeroizing<String>),
    Rejected(String),
}

struct Counts {
    sealed: u64,
    rejected: u64,
}

fn reject_line(line: u64, id: Option<&str>, body: &str) -> String {
    format!(
        "{{\"line\":{line},\"id\":{},{body}}}",
        id.map_or("null".to_owned(), |i| serde_json::Value::from(i)
            .to_string())
    )
}

fn error_body(code: &str, message: &str) -> String {
    format!(
        "\"error\":{}",
        serde_json::json!({"code": code, "message": message})
    )
}

/// Seals one batch; `Err` only when the store fails (which stops the whole run).
fn seal_batch(coffer: &Coffer, rows: Vec<Row>, actor: &str) -> Result<Vec<Outcome>, Failure> {
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(rows.len());
    let mut records = Vec::with_capacity(rows.len());
    let mut meta = Vec::with_capacity(rows.len());
    for row in rows {
        match row.record {
            Ok(r) => {
                meta.push((outcomes.len(), row.line, r.id.clone()));
                records.push(r);
                outcomes.push(None);
            }
            Err(e) => outcomes.push(Some(Outcome::Rejected(reject_line(
                row.line,
                None,
                &error_body(e.code, &e.message),
            )))),
        }
    }
    let sealed = coffer.seal_many(records, actor)?;
    for ((slot, line, id), result) in meta.into_iter().zip(sealed) {
        outcomes[slot] = Some(match result {
            Ok(env) => Outcome::Sealed(env.to_json()),
            Err(e) => match e.validation_report() {
                Some(report) => Outcome::Rejected(reject_line(
                    line,
                    Some(&id),
                    &format!("\"report\":{}", report.to_json()),
                )),
                None if matches!(
                    e.kind(),
                    coffer::ErrorKind::Store
                        | coffer::ErrorKind::StoreBusy
                        | coffer::ErrorKind::ReadOnly
                        | coffer::ErrorKind::Audit
                        | coffer::ErrorKind::Internal
                ) =>
                {
                    return Err(e.into());
                }
                None => Outcome::Rejected(reject_line(
                    line,
                    Some(&id),
                    &error_body(e.kind().name(), &e.to_string()),
                )),
            },
        });
    }
    Ok(outcomes.into_iter().flatten().collect())
}

pub(crate) fn run(store: &StoreArgs, args: SealArgs) -> Result<ExitCode, Failure> {
    let format = input::detect(args.format, args.file.as_deref());
    let mut rows = input::open(args.file.as_ref(), format, args.defaults.clone())?;
    let coffer = store.open(false)?;
    let rejects_path = args.rejects.clone().unwrap_or_else(|| {
        if args.out.as_os_str() == "-" {
            PathBuf::from("coffer-rejects.jsonl")
        } else {
            let mut p = args.out.clone().into_os_string();
            p.push(".rejects.jsonl");
            PathBuf::from(p)
        }
    });
    let mut out = Output::create(Some(&args.out))?;
    let mut rejects = Output::create(Some(&rejects_path))?;
    // One worker more than the cores: a worker waiting for the store (its batch's new keys,
    // its audit entry, their commits) left its core idle. Two workers on two cores used
    // 163-169% of them, three 174-176%, sealing a million rows about 6% sooner (the median of
    // twelve alternated pairs, faster in nine) for about 30 MB more (issue 18, nineteenth
    // step). The library divides the cores among the batches running at once (one thread each
    // when they are at least as many as the cores), so the extra worker adds no threads.
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()) + 1)
        .clamp(1, 64);
    let batch = args.batch.clamp(1, coffer::wire::MAX_BATCH);
    let progress = args.progress && std::io::stderr().is_terminal();
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let consumed = Arc::clone(&rows.consumed);
    let total = rows.total;

    let (work_tx, work_rx): (SyncSender<(u64, Vec<Row>)>, Receiver<_>) = sync_channel(threads);
    let work_rx = Mutex::new(work_rx);
    let result: Result<Counts, Failure> = std::thread::scope(|s| {
        let work_rx = &work_rx;
        let (done_tx, done_rx) = sync_channel::<(u64, Result<Vec<Outcome>, Failure>)>(threads * 2);
        let mut workers = Vec::new();
        for _ in 0..threads {
            let done_tx = done_tx.clone();
            let (coffer, stop) = (&coffer, &stop);
            let actor = store.actor.as_str();
            workers.push(s.spawn(move || {
                loop {
                    let job = work_rx
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .recv();
                    let Ok((seq, rows)) = job else { break };
                    if stop.load(Ordering::Relaxed) {
                        continue;
                    }
                    let outcome = seal_batch(coffer, rows, actor);
                    if outcome.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    // The writer has failed (e.g. a full disk): stop the reader, and keep
                    // draining the work channel so that it is never left blocked on a send.
                    if done_tx.send((seq, outcome)).is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            }));
        }
        drop(done_tx);
        let writer = {
            let (out, rejects, stop) = (&mut out, &mut rejects, &stop);
            let consumed = &consumed;
            s.spawn(move || -> Result<Counts, Failure> {
                let mut pending: BTreeMap<u64, Vec<Outcome>> = BTreeMap::new();
                let mut next = 0u64;
                let mut counts = Counts {
                    sealed: 0,
                    rejected: 0,
                };
                let mut first_error = None;
                let mut last_draw = Instant::now();
                for (seq, outcome) in done_rx {
                    match outcome {
                        Ok(o) => {
                            pending.insert(seq, o);
                        }
                        Err(e) => {
                            first_error.get_or_insert(e);
                            continue;
                        }
                    }
                    while let Some(batch) = pending.remove(&next) {
                        next += 1;
                        for o in batch {
                            match o {
                                Outcome::Sealed(json) => {
                                    out.write_all(json.as_bytes())?;
                                    out.write_all(b"\n")?;
                                    counts.sealed += 1;
                                }
                                Outcome::Rejected(line) => {
                                    rejects.write_all(line.as_bytes())?;
                                    rejects.write_all(b"\n")?;
                                    counts.rejected += 1;
                                }
                            }
                        }
                    }
                    if progress && last_draw.elapsed() > Duration::from_millis(200) {
                        last_draw = Instant::now();
                        draw(&counts, start, consumed.load(Ordering::Relaxed), total);
                    }
                    if stop.load(Ordering::Relaxed) && first_error.is_none() && interrupted() {
                        break;
                    }
                }
                if progress {
                    draw(&counts, start, consumed.load(Ordering::Relaxed), total);
                    let _ = writeln!(std::io::stderr());
                }
                match first_error {
                    Some(e) => Err(e),
                    None => Ok(counts),
                }
            })
        };
        // The reader: this thread.
        let mut seq = 0u64;
        let mut current = Vec::with_capacity(batch);
        let mut read_error = None;
        loop {
            if interrupted() || stop.load(Ordering::Relaxed) {
                stop.store(true, Ordering::Relaxed);
                break;
            }
            match rows.next_row() {
                None => break,
                Some(Err(e)) => {
                    read_error = Some(e);
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
                Some(Ok(row)) => {
                    current.push(row);
                    if current.len() == batch {
                        let full = std::mem::replace(&mut current, Vec::with_capacity(batch));
                        if work_tx.send((seq, full)).is_err() {
                            break;
                        }
                        seq += 1;
                    }
                }
            }
        }
        if !current.is_empty() && !stop.load(Ordering::Relaxed) {
            let _ = work_tx.send((seq, current));
        }
        drop(work_tx);
        for w in workers {
            let _ = w.join();
        }
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(Failure::input("the writer thread failed")));
        match read_error {
            Some(e) => Err(e),
            None => written,
        }
    });
    if interrupted() {
        // Dropping the outputs removes their partial files.
        return Err(Failure {
            message: format!(
                "interrupted: {} and {} were not written. Records sealed before the \
                 interruption are in the audit trail, but their envelopes were discarded: run \
                 the same command again.",
                args.out.display(),
                rejects_path.display()
            ),
            ..Failure::interrupted()
        });
    }
    let counts = result?;
    let to_stdout = out.is_stdout();
    out.commit()?;
    rejects.commit()?;
    let secs = start.elapsed().as_secs_f64();
    let summary = if args.json {
        serde_json::json!({
            "sealed": counts.sealed,
            "rejected": counts.rejected,
            "seconds": (secs * 1000.0).round() / 1000.0,
            "out": args.out.display().to_string(),
            "rejects": rejects_path.display().to_string(),
        })
        .to_string()
    } else {
        format!(
            "sealed {} record(s), rejected {} in {:.1} s ({:.0} records/s); envelopes in {}, \
             rejects in {}",
            counts.sealed,
            counts.rejected,
            secs,
            (counts.sealed + counts.rejected) as f64 / secs.max(1e-9),
            args.out.display(),
            rejects_path.display()
        )
    };
    if to_stdout {
        let _ = writeln!(std::io::stderr(), "{summary}");
    } else {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{summary}")?;
    }
    Ok(if counts.rejected > 0 {
        ExitCode::from(EXIT_NO)
    } else {
        ExitCode::SUCCESS
    })
}

fn draw(counts: &Counts, start: Instant, consumed: u64, total: Option<u64>) {
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let rate = (counts.sealed + counts.rejected) as f64 / secs;
    let bar = match total {
        Some(t) if t > 0 => {
            let frac = (consumed as f64 / t as f64).min(1.0);
            let filled = (frac * 30.0) as usize;
            format!(
                "[{}{}] {:>3.0}% ",
                "#".repeat(filled),
                " ".repeat(30 - filled),
                frac * 100.0
            )
        }
        _ => String::new(),
    };
    let _ = write!(
        std::io::stderr(),
        "\r{bar}{} sealed, {} rejected, {rate:.0}/s   ",
        counts.sealed,
        counts.rejected
    );
}
