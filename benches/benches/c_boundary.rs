//! The C boundary's overhead: seal and reveal of a typical record through the C library's
//! `extern "C"` functions (pointer and length checks, UTF-8 checks, the panic boundary, the
//! thread-local error slot, a Coffer-allocated output buffer wiped when freed) against the same
//! JSON-in, JSON-out calls made from Rust (`coffer::wire`), in one run, on two stores opened with
//! the same options.
//!
//! Target (issue 6): the overhead stays under 25% for a typical record.

use std::hint::black_box;
use std::os::raw::c_char;
use std::ptr;

use coffer::policy::Policy;
use coffer::record::Schema;
use coffer::{Coffer, MasterKey, OpenOptions, wire};
use coffer_c as c;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const POLICY: &str = include_str!("../../examples/policies/accounting-firm.toml");

const RECORD: &str = r#"{"id":"c-1","tenant":"firm-a","subject":"s-bench","kind":"individual","name":"张三",
    "id_documents":[{"type":"cn_resident_id","number":"11010119800101007X","country":"CN"}],
    "phones":["13800000000"],"emails":["zhang.san@example.com"],
    "addresses":["北京市东城区示例街道1号"],
    "bank_accounts":[{"bank_name":"示例银行","account_type":"card","account_number":"6200000000000005"}]}"#;

const ACCESS: &str = r#"{"principal":{"id":"auditor-1","tenant":"firm-a","roles":["auditor"]},
    "purpose":"statutory_audit","context":{"ticket":"AUD-1"}}"#;

const BATCH: usize = 100;

/// Calls a C function returning text, checks the status, frees (wipes) the text.
fn c_text(f: impl FnOnce(*mut *mut c_char, *mut usize) -> u32) -> usize {
    let mut out: *mut c_char = ptr::null_mut();
    let mut len = 0usize;
    let status = f(&mut out, &mut len);
    assert_eq!(status, 0, "{:?}", last_error());
    // SAFETY: `out` was returned by the library on success.
    unsafe { c::coffer_string_free(out) };
    len
}

fn last_error() -> Option<String> {
    let m = c::coffer_last_error_message();
    (!m.is_null()).then(|| {
        // SAFETY: a NUL-terminated string valid until the next call on this thread.
        unsafe { std::ffi::CStr::from_ptr(m) }
            .to_string_lossy()
            .into_owned()
    })
}

fn bench(crit: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("coffer-bench-c-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = MasterKey::generate().unwrap();

    // The Rust side.
    let rust = Coffer::open_with(
        dir.join("rust.db"),
        &key,
        OpenOptions {
            policy: Some(Policy::from_toml(POLICY, Schema::builtin()).unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    // The C side, opened as a C program would.
    let options = serde_json::json!({ "policy": POLICY }).to_string();
    let path = dir.join("c.db").to_string_lossy().into_owned();
    let key_bytes = key.to_bytes();
    let mut handle: *mut c::coffer_t = ptr::null_mut();
    // SAFETY: every pointer is valid for its length for the call.
    let status = unsafe {
        c::coffer_open(
            path.as_ptr(),
            path.len(),
            key_bytes.as_ptr(),
            32,
            options.as_ptr(),
            options.len(),
            &mut handle,
        )
    };
    assert_eq!(status, 0, "{:?}", last_error());
    let handle = handle as *const c::coffer_t;

    let envelope = wire::seal_json(&rust, RECORD, "bench").unwrap();
    let view = wire::reveal_json(&rust, &envelope, ACCESS).unwrap();
    assert!(view.contains("6200000000000005"));
    // Each store opens only its own envelopes: seal the C side's through C.
    let envelope_c = {
        let mut out: *mut c_char = ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: valid pointers and lengths for the call.
        let status = unsafe {
            c::coffer_seal(
                handle,
                RECORD.as_ptr(),
                RECORD.len(),
                b"bench".as_ptr(),
                5,
                &mut out,
                &mut len,
            )
        };
        assert_eq!(status, 0, "{:?}", last_error());
        // SAFETY: a NUL-terminated string returned on success; copied, then freed.
        let text = unsafe { std::ffi::CStr::from_ptr(out) }
            .to_str()
            .unwrap()
            .to_owned();
        // SAFETY: returned by the library.
        unsafe { c::coffer_string_free(out) };
        text
    };
    let records = format!("[{}]", vec![RECORD; BATCH].join(","));
    let envelopes = format!("[{}]", vec![envelope.as_str(); BATCH].join(","));
    let envelopes_c = format!("[{}]", vec![envelope_c.as_str(); BATCH].join(","));

    let mut g = crit.benchmark_group("c_boundary");
    g.throughput(Throughput::Elements(1));
    g.bench_function("seal/rust", |b| {
        b.iter(|| black_box(wire::seal_json(&rust, black_box(RECORD), "bench").unwrap()))
    });
    g.bench_function("seal/c", |b| {
        b.iter(|| {
            c_text(|out, len| unsafe {
                // SAFETY: valid pointers and lengths for the call.
                c::coffer_seal(
                    handle,
                    RECORD.as_ptr(),
                    RECORD.len(),
                    b"bench".as_ptr(),
                    5,
                    out,
                    len,
                )
            })
        })
    });
    g.bench_function("reveal/rust", |b| {
        b.iter(|| black_box(wire::reveal_json(&rust, black_box(&envelope), ACCESS).unwrap()))
    });
    g.bench_function("reveal/c", |b| {
        b.iter(|| {
            c_text(|out, len| unsafe {
                // SAFETY: valid pointers and lengths for the call.
                c::coffer_reveal(
                    handle,
                    envelope_c.as_ptr(),
                    envelope_c.len(),
                    ACCESS.as_ptr(),
                    ACCESS.len(),
                    out,
                    len,
                )
            })
        })
    });
    // Batches amortise the durable commit, so the boundary's share shows more.
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("seal_many_100/rust", |b| {
        b.iter(|| black_box(wire::seal_many_json(&rust, &records, "bench").unwrap()))
    });
    g.bench_function("seal_many_100/c", |b| {
        b.iter(|| {
            c_text(|out, len| unsafe {
                // SAFETY: valid pointers and lengths for the call.
                c::coffer_seal_many(
                    handle,
                    records.as_ptr(),
                    records.len(),
                    b"bench".as_ptr(),
                    5,
                    out,
                    len,
                )
            })
        })
    });
    g.bench_function("reveal_many_100/rust", |b| {
        b.iter(|| black_box(wire::reveal_many_json(&rust, &envelopes, ACCESS).unwrap()))
    });
    g.bench_function("reveal_many_100/c", |b| {
        b.iter(|| {
            c_text(|out, len| unsafe {
                // SAFETY: valid pointers and lengths for the call.
                c::coffer_reveal_many(
                    handle,
                    envelopes_c.as_ptr(),
                    envelopes_c.len(),
                    ACCESS.as_ptr(),
                    ACCESS.len(),
                    out,
                    len,
                )
            })
        })
    });
    g.finish();
    // SAFETY: opened above, used by no one else now.
    unsafe { c::coffer_close(handle as *mut c::coffer_t) };
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
