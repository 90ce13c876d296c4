//! The vault bench (`vault.rs`) under mimalloc, the allocator the `coffer` command and the
//! Python module are built with, and the one a Rust application that seals and reveals in bulk
//! would choose: a reveal allocates a view, its strings and its audit text per record, and
//! glibc's allocator spent about a sixth of `seal_many` and `reveal_many` on them. The benches
//! and their names are `vault`'s, in the group `vault_mimalloc`.

use criterion::{criterion_group, criterion_main};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const GROUP: &str = "vault_mimalloc";

include!("shared/vault.rs");

criterion_group!(benches, bench, bench_postgres);
criterion_main!(benches);
