//! Load: processes (`COFFER_LOAD_PROCESSES`, default 2) with threads each (`COFFER_LOAD_THREADS`,
//! default 16) seal, reveal, search and erase on one store (SQLite, or `COFFER_TEST_POSTGRES`) for a
//! while (`COFFER_LOAD_SECONDS`, default 180). Afterwards every operation that succeeded has
//! exactly its audit entries (counted by kind), the chain verifies, no operation failed with an
//! unexpected error, and each process's memory stayed flat.
//!
//! `cargo test -p coffer --test load -- --ignored --nocapture`; `./scripts/test` runs it.
#![allow(clippy::print_stderr)] // the run prints its figures for docs/RELIABILITY.md

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use coffer::policy::Policy;
use coffer::record::Schema;
use coffer::retention::Retention;
use coffer::{Coffer, Envelope, MasterKey, OpenOptions};

mod common;
use common::{POLICY, RETENTION, auditor, record};
/// Threads per process (`COFFER_LOAD_THREADS`, default 16).
fn threads() -> usize {
    std::env::var("COFFER_LOAD_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16)
}

/// Processes (`COFFER_LOAD_PROCESSES`, default 2).
fn processes() -> Vec<String> {
    let n: usize = std::env::var("COFFER_LOAD_PROCESSES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    (1..=n).map(|i| format!("p{i}")).collect()
}

fn open(path: &std::path::Path, key: &MasterKey) -> Coffer {
    let schema = Schema::builtin();
    Coffer::open_with(
        path,
        key,
        OpenOptions {
            policy: Some(Policy::from_toml(POLICY, schema).unwrap()),
            retention: Some(Retention::from_toml(RETENTION, schema).unwrap()),
            busy_timeout: Duration::from_secs(60),
            ..Default::default()
        },
    )
    .unwrap()
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// What one process did, by audit entry kind, and its memory.
#[derive(Default)]
struct Tally {
    kinds: Mutex<BTreeMap<&'static str, u64>>,
    searches: AtomicU64,
}

impl Tally {
    fn add(&self, kind: &'static str, n: u64) {
        *self.kinds.lock().unwrap().entry(kind).or_default() += n;
    }
}

/// Run in two child processes by `sixteen_threads_two_processes`.
#[test]
#[ignore = "a helper run in child processes"]
fn load_child() {
    let (Ok(db), Ok(key), Ok(tag), Ok(secs)) = (
        std::env::var("COFFER_LOAD_DB"),
        std::env::var("COFFER_LOAD_KEY"),
        std::env::var("COFFER_LOAD_TAG"),
        std::env::var("COFFER_LOAD_SECONDS"),
    ) else {
        return;
    };
    let key = MasterKey::from_text(&key).unwrap();
    let c = open(&PathBuf::from(&db), &key);
    let run_for = Duration::from_secs(secs.parse().unwrap());
    let tally = Tally::default();
    let start = Instant::now();
    let early_rss = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..threads() {
            let (c, tally, tag, early_rss) = (&c, &tally, &tag, &early_rss);
            s.spawn(move || {
                let mut mine: Vec<Envelope> = Vec::new();
                let mut n = 0u64;
                while start.elapsed() < run_for {
                    if t == 0
                        && early_rss.load(Ordering::Relaxed) == 0
                        && start.elapsed() > run_for / 4
                    {
                        early_rss.store(rss_kb(), Ordering::Relaxed);
                    }
                    n += 1;
                    match n % 10 {
                        // Seal five new customers.
                        0..=3 => {
                            let records = (0..5)
                                .map(|i| record(&format!("{tag}-{t}-{n}-{i}")))
                                .collect();
                            let sealed = c.seal_many(records, tag).unwrap();
                            for env in sealed {
                                mine.push(env.unwrap());
                            }
                            tally.add("seal", 5);
                            tally.add("key.create", 5);
                            // Keep a bounded working set: memory must not grow with the run.
                            if mine.len() > 200 {
                                mine.drain(..100);
                            }
                        }
                        // Reveal a few of this thread's envelopes.
                        4..=7 if !mine.is_empty() => {
                            let pick: Vec<Envelope> = mine
                                .iter()
                                .rev()
                                .take(3)
                                .map(|e| c.open_envelope(&e.to_json()).unwrap())
                                .collect();
                            let views = c.reveal_many(&pick, &auditor()).unwrap();
                            tally.add("reveal", views.len() as u64);
                        }
                        // Search by ID number: an audited access, under the accountants'
                        // rate limit shared by every thread of both processes, so most
                        // searches after the first 200 are refused (and alerted).
                        8 => {
                            let field = "id_documents[].number";
                            match c.search(
                                &common::searcher("acme", field),
                                field,
                                "11010119800101007X",
                            ) {
                                Ok(answer) => assert!(!answer.tokens[0].is_empty()),
                                Err(e) => {
                                    assert_eq!(e.kind(), coffer::ErrorKind::RateLimited, "{e}");
                                    tally.add("rate_limit.exceeded", 1);
                                }
                            }
                            tally.add("search", 1);
                            tally.searches.fetch_add(1, Ordering::Relaxed);
                        }
                        // Erase one of this thread's customers.
                        _ => {
                            if let Some(env) = mine.pop() {
                                let answer = c
                                    .erase("acme", &format!("s-{}", env.record()), tag)
                                    .unwrap();
                                tally.add("erasure", 1);
                                if answer.certificate.is_some() {
                                    tally.add("certificate", 1);
                                }
                            }
                        }
                    }
                }
            });
        }
    });
    let kinds = tally.kinds.lock().unwrap();
    let report = serde_json::json!({
        "kinds": *kinds,
        "searches": tally.searches.load(Ordering::Relaxed),
        "rss_early_kb": early_rss.load(Ordering::Relaxed),
        "rss_end_kb": rss_kb(),
    });
    std::fs::write(
        std::env::var("COFFER_LOAD_REPORTS").unwrap() + &format!("/{tag}.json"),
        report.to_string(),
    )
    .unwrap();
}

#[test]
#[ignore = "runs for minutes: run by ./scripts/test"]
fn sixteen_threads_two_processes() {
    let secs: u64 = std::env::var("COFFER_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let dir = std::env::temp_dir().join(format!("coffer-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = common::store_in(&dir);
    let key = MasterKey::generate().unwrap();
    let before = open(&db, &key).audit_len().unwrap();
    let exe = std::env::current_exe().unwrap();
    let tags = processes();
    let children: Vec<_> = tags
        .iter()
        .map(|tag| {
            std::process::Command::new(&exe)
                .args(["--exact", "load_child", "--ignored", "--nocapture"])
                .env("COFFER_LOAD_DB", &db)
                .env("COFFER_LOAD_REPORTS", &dir)
                .env("COFFER_LOAD_KEY", key.to_base64().as_str())
                .env("COFFER_LOAD_TAG", tag)
                .env("COFFER_LOAD_SECONDS", secs.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut ch in children {
        assert!(ch.wait().unwrap().success(), "a load process failed");
    }
    // What the processes say they did, by kind.
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let mut searches = 0;
    for tag in &tags {
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{tag}.json"))).unwrap(),
        )
        .unwrap();
        for (k, v) in report["kinds"].as_object().unwrap() {
            *expected.entry(k.clone()).or_default() += v.as_u64().unwrap();
        }
        searches += report["searches"].as_u64().unwrap();
        let (early, end) = (
            report["rss_early_kb"].as_u64().unwrap(),
            report["rss_end_kb"].as_u64().unwrap(),
        );
        eprintln!("{tag}: RSS {early} kB a quarter in, {end} kB at the end");
        assert!(
            end < early + early / 2 + 16 * 1024,
            "{tag}: memory grew from {early} kB to {end} kB"
        );
    }
    // What the audit trail holds.
    let c = open(&db, &key);
    let report = c.audit_verify(None).unwrap();
    assert!(report.intact, "{report:?}");
    let mut out = Vec::new();
    c.audit_export(&mut out).unwrap();
    let mut found: BTreeMap<String, u64> = BTreeMap::new();
    for line in String::from_utf8(out).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["seq"].as_u64().unwrap() > before {
            // A batch entry stands for one entry per record of its batch: count those.
            let entry: coffer::audit::AuditEntry = serde_json::from_str(line).unwrap();
            for e in coffer::audit::expand(&entry).unwrap() {
                *found.entry(e.kind).or_default() += 1;
            }
        }
    }
    // Each process also loaded its policy once.
    *expected.entry("policy.load".into()).or_default() += tags.len() as u64;
    // And the verification's own open here.
    *expected.entry("policy.load".into()).or_default() += 1;
    assert_eq!(
        found, expected,
        "audit entries by kind: found vs operations done"
    );
    let total: u64 = found.values().sum();
    eprintln!(
        "{secs} s, {} processes x {} threads: {total} audit entries, none lost ({found:?}); \
         {searches} searches; chain of {} entries verified",
        tags.len(),
        threads(),
        report.entries
    );
    let _ = std::fs::remove_dir_all(&dir);
}
