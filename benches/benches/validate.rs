//! Normalise and validate a typical individual record.
//!
//! Target (issue 2): at least 500,000 records per second on one core, i.e. a median of at most
//! 2 µs per record for `normalize_validate`.

use coffer::record::{CustomerRecord, Schema};
use coffer_benches::TYPICAL_INDIVIDUAL;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const TODAY: time::Date = time::macros::date!(2026 - 11 - 27);

fn bench(c: &mut Criterion) {
    let schema = Schema::builtin();
    let record = CustomerRecord::from_json(TYPICAL_INDIVIDUAL).unwrap();
    {
        let mut r = record.clone();
        r.normalize();
        let report = schema.validate(&r, TODAY);
        assert!(report.is_valid() && report.issues.is_empty(), "{report}");
    }

    let mut group = c.benchmark_group("validate");
    group.throughput(Throughput::Elements(1));
    // The record is cloned outside the timed part; normalisation rewrites it in place.
    group.bench_function("normalize_validate", |b| {
        b.iter_batched_ref(
            || record.clone(),
            |r| {
                r.normalize();
                black_box(schema.validate(r, TODAY))
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("validate_only", |b| {
        let mut r = record.clone();
        r.normalize();
        b.iter(|| black_box(schema.validate(black_box(&r), TODAY)))
    });
    group.bench_function("parse_normalize_validate", |b| {
        b.iter(|| {
            let mut r = CustomerRecord::from_json(black_box(TYPICAL_INDIVIDUAL)).unwrap();
            r.normalize();
            black_box(schema.validate(&r, TODAY))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
