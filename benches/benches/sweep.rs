//! Finding what retention lets go among 1,000,000 subjects with mixed categories.
//!
//! Target (issue 5): under 2 seconds on this machine. The store holds one data key per
//! (subject, category): every subject has `identity` (30 years, review), half have `banking`
//! (10 years, review), a third have `contact` (PIPL default, destroy); keep-until dates are
//! spread over 2030–2069, so that about 5% are due on the day the sweep is planned. Keys are
//! inserted straight into SQLite, as a million customers sealed over the years would leave them.
#![allow(clippy::print_stderr)] // the bench reports the size of the data set it built

use std::sync::Arc;

use coffer::clock::FixedClock;
use coffer::record::Schema;
use coffer::retention::Retention;
use coffer::{Coffer, MasterKey, OpenOptions};
use criterion::{Criterion, criterion_group, criterion_main};

const RULES: &str = r#"
version = 1
packs = ["cn-accounting", "cn-pipl"]
approver_roles = ["archive_head", "accounting_head"]
[categories]
identity = ["cn.acc.voucher"]
banking = ["cn.acc.bank.statement"]
contact = ["cn.pipl.default"]
profile = ["cn.pipl.default"]
"#;

const SUBJECTS: u32 = 1_000_000;

fn bench(c: &mut Criterion) {
    let subjects: u32 = if coffer_benches::smoke() {
        10_000
    } else {
        SUBJECTS
    };
    let dir = std::env::temp_dir().join(format!("coffer-bench-sweep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("sweep.db");
    let key = MasterKey::generate().unwrap();
    let clock = Arc::new(FixedClock::new(
        time::macros::datetime!(2032-01-01 00:00 UTC),
    ));
    let options = || OpenOptions {
        retention: Some(Retention::from_toml(RULES, Schema::builtin()).unwrap()),
        clock: clock.clone(),
        ..Default::default()
    };
    drop(Coffer::open_with(&db, &key, options()).unwrap());
    {
        let mut conn = rusqlite::Connection::open(&db).unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut st = tx
                .prepare("INSERT INTO data_keys (tenant, subject, category, version, kek_version, wrapped, created, keep_until, rule, action) VALUES ('firm-a', ?1, ?2, 1, 1, x'00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677', '2026-01-01T00:00:00Z', ?3, ?4, ?5)")
                .unwrap();
            let mut rows = 0u64;
            for i in 0..subjects {
                let subject = format!("s-{i:07}");
                // A deterministic spread of keep-until years, 2030..2069.
                let year = 2030 + (i.wrapping_mul(2_654_435_761) % 40);
                let date = format!("{year}-{:02}-01", 1 + i % 12);
                st.execute(rusqlite::params![
                    subject,
                    "identity",
                    date,
                    "cn.acc.voucher",
                    "review"
                ])
                .unwrap();
                rows += 1;
                if i % 2 == 0 {
                    st.execute(rusqlite::params![
                        subject,
                        "banking",
                        date,
                        "cn.acc.bank.statement",
                        "review"
                    ])
                    .unwrap();
                    rows += 1;
                }
                if i % 3 == 0 {
                    // Most contacts wait for their purpose to end; some have ended.
                    let until: Option<String> = (i % 9 == 0).then(|| date.clone());
                    st.execute(rusqlite::params![
                        subject,
                        "contact",
                        until,
                        "cn.pipl.default",
                        "destroy"
                    ])
                    .unwrap();
                    rows += 1;
                }
            }
            eprintln!("inserted {rows} data keys for {subjects} subjects");
        }
        tx.commit().unwrap();
    }
    let coffer = Coffer::open_with(&db, &key, options()).unwrap();
    let plan = coffer.plan_sweep().unwrap();
    eprintln!(
        "due: {} to destroy, {} to review",
        plan.destroy.len(),
        plan.review.len()
    );
    assert!(!plan.review.is_empty() && !plan.destroy.is_empty());

    let mut g = c.benchmark_group("sweep");
    g.sample_size(10);
    g.bench_function("plan_1m_subjects", |b| {
        b.iter(|| std::hint::black_box(coffer.plan_sweep().unwrap()))
    });
    g.finish();
    drop(coffer);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
