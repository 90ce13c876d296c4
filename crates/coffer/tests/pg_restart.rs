//! A PostgreSQL restart in the middle of work: while the server is down every call fails with
//! `StoreUnavailable` (never another kind, never a panic), calls succeed again once it is back
//! without reopening the handle, and nothing is half-written: the chain verifies, every seal
//! that returned an envelope has its entries, and every envelope opens.
//!
//! Needs the throwaway server of `scripts/postgres` (`COFFER_TEST_POSTGRES` and
//! `COFFER_TEST_POSTGRES_DIR`, which `scripts/test` sets); `--ignored`.
#![allow(clippy::print_stderr)] // the run prints its figures

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer::policy::Policy;
use coffer::record::Schema;
use coffer::{Coffer, ErrorKind, FieldView, MasterKey, OpenOptions};

mod common;

#[test]
#[ignore = "restarts the throwaway PostgreSQL server: run by ./scripts/test"]
fn a_server_restart_is_store_unavailable_then_work_resumes_whole() {
    let (Some(_), Ok(server)) = (
        common::postgres(),
        std::env::var("COFFER_TEST_POSTGRES_DIR"),
    ) else {
        eprintln!("no throwaway PostgreSQL server (COFFER_TEST_POSTGRES_DIR): not run");
        return;
    };
    let d = common::Dir::new("pgrestart");
    let key = MasterKey::generate().unwrap();
    let c = Arc::new(
        Coffer::open_with(
            d.db(),
            &key,
            OpenOptions {
                policy: Some(Policy::from_toml(common::POLICY, Schema::builtin()).unwrap()),
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let sealed = Arc::new(Mutex::new(Vec::new()));
    let (failed, other) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (c, stop, sealed, failed, other) = (
                Arc::clone(&c),
                Arc::clone(&stop),
                Arc::clone(&sealed),
                Arc::clone(&failed),
                Arc::clone(&other),
            );
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    match c.seal(common::record(&format!("r-{t}-{i}")), "restart-test") {
                        Ok(env) => sealed.lock().unwrap().push(env),
                        Err(e) if e.kind() == ErrorKind::StoreUnavailable => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Err(e) => other.lock().unwrap().push(format!("{:?}: {e}", e.kind())),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let before_restart = sealed.lock().unwrap().len();
    let status = std::process::Command::new(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres"),
    )
    .args(["restart", &server])
    .status()
    .unwrap();
    assert!(status.success(), "the server did not restart");
    let at_restart = sealed.lock().unwrap().len();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let envelopes = std::mem::take(&mut *sealed.lock().unwrap());
    let other = other.lock().unwrap().clone();
    assert!(
        other.is_empty(),
        "errors other than StoreUnavailable: {other:?}"
    );
    let failed = failed.load(Ordering::Relaxed);
    assert!(failed > 0, "the restart was never noticed");
    assert!(
        envelopes.len() > at_restart,
        "no seal succeeded after the restart ({at_restart} before it)"
    );
    // Nothing half-written: the chain verifies; each returned envelope has its seal entry (a
    // seal whose commit reached the server as the connection broke may have its entries
    // without its caller getting the envelope: at most one per failure).
    let report = c.audit_verify(None).unwrap();
    assert!(report.intact, "{report:?}");
    let seals = coffer::store::open(d.db(), false)
        .unwrap()
        .audit_rows(1, usize::MAX >> 1)
        .unwrap()
        .iter()
        .filter(|r| r.entry.contains(r#""kind":"seal""#))
        .count() as u64;
    let ok = envelopes.len() as u64;
    assert!(
        seals >= ok && seals <= ok + failed,
        "{seals} seal entries for {ok} envelopes returned and {failed} failures"
    );
    let views = c.reveal_many(&envelopes, &common::auditor()).unwrap();
    for v in &views {
        assert!(
            matches!(v.fields.get("name"), Some(FieldView::Revealed(_))),
            "a sealed record does not open"
        );
    }
    eprintln!(
        "restart: {before_restart} seals before, {} in all, {failed} StoreUnavailable while the \
         server was down, {seals} seal entries, chain of {} entries verified",
        envelopes.len(),
        report.entries
    );
}
