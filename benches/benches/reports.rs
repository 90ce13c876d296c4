//! Incident scoping over 1,000,000 audited events (issue 10: under 3 seconds here), beside
//! `audit_verify` of the same trail in the same run: the verification every report does first
//! is the floor, and the difference is what scoping itself costs.
//!
//! The store holds 100,000 customers (a seal and a key entry each) and 800,000 reveals by
//! auditors over 80 days, every field in clear, so every reveal entry in the window is parsed
//! and matched. Sealed and revealed in batches of 1,000, the trail stores them as batch entries
//! (store schema 5), which every report reads expanded: one entry per record, as before. It is
//! built once (about a minute) and kept in `target/bench-reports/`; set
//! `COFFER_BENCH_REBUILD=1` to build it again.

#![allow(clippy::print_stderr)] // the bench reports the size of the trail it scoped

use std::hint::black_box;
use std::sync::Arc;

use coffer::clock::FixedClock;
use coffer::policy::{Context, Policy, Principal};
use coffer::record::{CustomerRecord, Schema};
use coffer::report::{IncidentQuery, ReportOptions};
use coffer::{Access, Coffer, MasterKey, OpenOptions};
use criterion::{Criterion, criterion_group, criterion_main};
use time::macros::datetime;

const POLICY: &str = include_str!("../../examples/policies/accounting-firm.toml");
const CUSTOMERS: usize = 100_000;
const REVEALS: usize = 800_000;
const BATCH: usize = 1_000;

fn customer(i: usize) -> CustomerRecord {
    CustomerRecord::from_json(&format!(
        r#"{{"id":"c-{i}","tenant":"firm-a","subject":"s-{i}","kind":"individual","name":"张三",
            "id_documents":[{{"type":"cn_resident_id","number":"11010119800101007X","country":"CN"}}],
            "phones":["13800000000"],"emails":["zhang.san@example.com"],
            "bank_accounts":[{{"account_type":"card","account_number":"6200000000000005"}}]}}"#
    ))
    .unwrap()
}

fn access(id: &str, role: &str, purpose: &str) -> Access {
    Access {
        principal: Principal {
            id: id.into(),
            tenant: "firm-a".into(),
            roles: vec![role.into()],
            ..Default::default()
        },
        purpose: purpose.into(),
        context: Context {
            ticket: Some("T-1".into()),
            client: Some(format!("portal-{}", id.len() % 3)),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn open(path: &std::path::Path, key: &MasterKey, clock: Arc<FixedClock>) -> Coffer {
    Coffer::open_with(
        path,
        key,
        OpenOptions {
            policy: Some(Policy::from_toml(POLICY, Schema::builtin()).unwrap()),
            clock,
            ..Default::default()
        },
    )
    .unwrap()
}

/// The store and its key: built once, then reused.
fn store() -> (Coffer, u64) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-reports");
    std::fs::create_dir_all(&dir).unwrap();
    // A smoke run (COFFER_BENCH_SMOKE) builds a small trail of its own beside the cached one.
    // The trail is written in batch entries (store schema 5: one stored entry for a batch's
    // records), so its stored rows are far fewer than the entries they stand for; the files'
    // name says so, and a marker says the build finished.
    let (name, customers, reveals) = if coffer_benches::smoke() {
        ("smoke-batched", 2_000, 8_000)
    } else {
        ("1m-batched", CUSTOMERS, REVEALS)
    };
    let (db, key_file, done) = (
        dir.join(format!("{name}.db")),
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.done")),
    );
    let clock = Arc::new(FixedClock::new(datetime!(2026-06-01 0:00 UTC)));
    let rebuild = std::env::var_os("COFFER_BENCH_REBUILD").is_some();
    if !rebuild
        && db.exists()
        // A key file from before key files had to be private is not read: rebuild.
        && let Ok(key) = MasterKey::from_file(&key_file)
        && done.exists()
    {
        let c = open(&db, &key, clock);
        let n = c.audit_len().unwrap();
        return (c, n);
    }
    let _ = std::fs::remove_file(&done);
    for f in ["db", "db-wal", "db-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("{name}.{f}")));
    }
    let key = MasterKey::generate().unwrap();
    std::fs::write(&key_file, key.to_base64().as_str()).unwrap();
    let clock = Arc::new(FixedClock::new(datetime!(2026-03-01 8:00 UTC)));
    let c = open(&db, &key, clock.clone());
    let mut envelopes = Vec::with_capacity(customers);
    for start in (0..customers).step_by(BATCH) {
        let records: Vec<_> = (start..start + BATCH).map(customer).collect();
        for r in c.seal_many(records, "importer").unwrap() {
            envelopes.push(r.unwrap());
        }
    }
    // 800 batches over 80 days: ten an hour-apart each day.
    let auditors: Vec<Access> = (0..8)
        .map(|i| access(&format!("auditor-{i}"), "auditor", "statutory_audit"))
        .collect();
    for b in 0..reveals / BATCH {
        clock.set(
            datetime!(2026-03-01 8:00 UTC) + time::Duration::hours((b / 10 * 24 + b % 10) as i64),
        );
        let start = (b * BATCH) % customers;
        c.reveal_many(
            &envelopes[start..start + BATCH],
            &auditors[b % auditors.len()],
        )
        .unwrap();
    }
    let n = c.audit_len().unwrap();
    std::fs::write(&done, format!("{n}\n")).unwrap();
    (c, n)
}

fn bench(c: &mut Criterion) {
    let (coffer, entries) = store();
    let mut officer = access("dpo-1", "privacy_officer", "data_protection");
    officer.context.client = None;
    // The middle forty days, ID numbers only: half the reveals match.
    let query = IncidentQuery {
        from: Some("2026-03-21".into()),
        until: Some("2026-04-30".into()),
        fields: vec!["id_documents[].number".into()],
        ..Default::default()
    };
    let r = coffer
        .affected(&query, &officer, &ReportOptions::default())
        .unwrap();
    assert!(r.trail.intact);
    if !coffer_benches::smoke() {
        assert_eq!(r.subjects.len(), CUSTOMERS);
        assert_eq!(r.reveals, 400_000);
    }
    eprintln!(
        "incident scope: {entries} stored audit entries ({} customers' key and seal entries and {} reveals, in batches), {} subjects, {} reveals matched",
        if coffer_benches::smoke() {
            2_000
        } else {
            CUSTOMERS
        },
        if coffer_benches::smoke() {
            8_000
        } else {
            REVEALS
        },
        r.subjects.len(),
        r.reveals
    );
    let mut g = c.benchmark_group("reports");
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(30));
    g.bench_function("incident_scope_1m_entries", |b| {
        b.iter(|| {
            black_box(
                coffer
                    .affected(&query, &officer, &ReportOptions::default())
                    .unwrap(),
            )
        })
    });
    // Every reveal since the start, every grant of the example policy.
    let since = datetime!(2026-01-01 0:00 UTC);
    g.bench_function("access_review_1m_entries", |b| {
        b.iter(|| {
            black_box(
                coffer
                    .access_review(since, &officer, &ReportOptions::default())
                    .unwrap(),
            )
        })
    });
    g.bench_function("baseline_audit_verify_1m_entries", |b| {
        b.iter(|| black_box(coffer.audit_verify(None).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
