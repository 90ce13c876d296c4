//! Seal, reveal and search on a typical record (10 fields, 6 encrypted, 3 indexed) with
//! warm key caches, and the same six values sealed with the `aes-gcm` crate one field at a time
//! with a random nonce each, in the same run.
//!
//! Targets (issue 4), one core: seal ≥ 150,000 records/s; reveal_many (1,000 per batch, audit
//! committed) ≥ 100,000 records/s; a single reveal with a durably committed audit entry
//! (WAL, synchronous=FULL) median < 1 ms. Search (issue 15) is an audited access: batched
//! (`search_many`, one decision and one durable audit entry per batch) ≥ 200,000 values/s; a
//! single search costs one durable commit, like a single reveal.
//!
//! Under the system allocator; `vault_mimalloc` runs the same benches under mimalloc.

use criterion::{criterion_group, criterion_main};

const GROUP: &str = "vault";

include!("shared/vault.rs");

criterion_group!(benches, bench, bench_postgres);
criterion_main!(benches);
