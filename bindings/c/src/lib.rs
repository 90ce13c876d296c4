//! The C ABI of Coffer (`libcoffer`), declared in `include/coffer.h`.
//!
//! Conventions (see `docs/C-API.md`):
//! - every fallible function returns a `coffer_status`: `COFFER_STATUS_OK` (0) or the code of
//!   the core's error kind; `coffer_status_str` names it and `coffer_last_error_message` gives
//!   the calling thread's detailed message;
//! - text comes in as a pointer and a length (UTF-8, need not be NUL-terminated) and is only
//!   borrowed for the call; NULL is always an error, never "empty";
//! - text goes out in buffers that Coffer allocates, NUL-terminated and with their length, which
//!   only `coffer_string_free` may release: it wipes them first;
//! - out-parameters are written only on success;
//! - no panic crosses the boundary: every body runs behind `catch_unwind`.
#![allow(non_camel_case_types)]
// The C ABI takes raw pointers by design; each unsafe block below states why it is sound.
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, c_void};

use coffer::Coffer;
use coffer::record::Schema;

// The functions, by part of the API (the header lists them in this order too: cbindgen takes
// the modules alphabetically). Re-exported flat, as C sees them, for Rust callers (the benches).
pub mod archives;
pub mod audit;
mod ffi;
pub mod keys;
pub mod library;
pub mod records;
pub mod reports;
pub mod retention;
pub mod store;
pub mod vault;

pub use archives::*;
pub use audit::*;
pub use keys::*;
pub use library::*;
pub use records::*;
pub use reports::*;
pub use retention::*;
pub use store::*;
pub use vault::*;

/// A status code: `COFFER_STATUS_OK` (0) or one of the `COFFER_STATUS_*` error codes, equal to
/// the core's `ErrorKind` codes and listed in `tests/vectors/errors.json`.
pub type coffer_status = u32;

/// Success.
pub const COFFER_STATUS_OK: coffer_status = 0;

/// A bug in Coffer, or a panic caught at the boundary.
pub const COFFER_STATUS_INTERNAL: coffer_status = 1;

/// An argument is NULL, of the wrong kind or out of range.
pub const COFFER_STATUS_INVALID_ARGUMENT: coffer_status = 2;

/// Input is not well-formed JSON, TOML or UTF-8, or has the wrong shape.
pub const COFFER_STATUS_MALFORMED: coffer_status = 3;

/// Input exceeds a documented limit.
pub const COFFER_STATUS_LIMIT_EXCEEDED: coffer_status = 4;

/// A customer record failed validation.
pub const COFFER_STATUS_VALIDATION: coffer_status = 5;

/// A schema document is invalid.
pub const COFFER_STATUS_SCHEMA: coffer_status = 6;

/// A policy document is invalid.
pub const COFFER_STATUS_POLICY: coffer_status = 7;

/// The access policy denies the request.
pub const COFFER_STATUS_ACCESS_DENIED: coffer_status = 8;

/// A rate limit was exceeded.
pub const COFFER_STATUS_RATE_LIMITED: coffer_status = 9;

/// A ciphertext, envelope or signature failed its integrity check.
pub const COFFER_STATUS_INTEGRITY: coffer_status = 10;

/// A format or store version this build does not read.
pub const COFFER_STATUS_UNSUPPORTED_VERSION: coffer_status = 11;

/// A key the operation needs is not in the key store.
pub const COFFER_STATUS_KEY_NOT_FOUND: coffer_status = 12;

/// The master key does not open this key store.
pub const COFFER_STATUS_WRONG_MASTER_KEY: coffer_status = 13;

/// The data key was destroyed.
pub const COFFER_STATUS_SHREDDED: coffer_status = 14;

/// A retention rule forbids the operation.
pub const COFFER_STATUS_RETENTION: coffer_status = 15;

/// A legal hold blocks the operation.
pub const COFFER_STATUS_LEGAL_HOLD: coffer_status = 16;

/// An approval is missing or invalid.
pub const COFFER_STATUS_APPROVAL: coffer_status = 17;

/// A named object does not exist.
pub const COFFER_STATUS_NOT_FOUND: coffer_status = 18;

/// The embedded store failed.
pub const COFFER_STATUS_STORE: coffer_status = 19;

/// The store is locked by another process or connection.
pub const COFFER_STATUS_STORE_BUSY: coffer_status = 20;

/// The store is read-only.
pub const COFFER_STATUS_READ_ONLY: coffer_status = 21;

/// An audit entry could not be written; nothing was done.
pub const COFFER_STATUS_AUDIT: coffer_status = 22;

/// Audit verification found tampering.
pub const COFFER_STATUS_AUDIT_TAMPERED: coffer_status = 23;

/// A file could not be read or written.
pub const COFFER_STATUS_IO: coffer_status = 24;

/// The handle was closed.
pub const COFFER_STATUS_CLOSED: coffer_status = 25;

/// The operation is not supported.
pub const COFFER_STATUS_UNSUPPORTED: coffer_status = 26;

/// The store's server cannot be reached (down, restarting, connection lost); nothing was done,
/// and the same call can be retried once it is back.
pub const COFFER_STATUS_STORE_UNAVAILABLE: coffer_status = 27;

/// Masking profile for general display.
pub const COFFER_PROFILE_STANDARD: u32 = 0;

/// Masking profile for staff who must match or verify identity.
pub const COFFER_PROFILE_PRIVILEGED: u32 = 1;

const fn parse_u32(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n = 0;
    while i < b.len() {
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

/// Major version of this library.
pub const COFFER_VERSION_MAJOR: u32 = 0;

/// Minor version of this library.
pub const COFFER_VERSION_MINOR: u32 = 1;

/// Patch version of this library.
pub const COFFER_VERSION_PATCH: u32 = 0;

// The header's literal version macros must follow Cargo.toml.
const _: () = assert!(COFFER_VERSION_MAJOR == parse_u32(env!("CARGO_PKG_VERSION_MAJOR")));
const _: () = assert!(COFFER_VERSION_MINOR == parse_u32(env!("CARGO_PKG_VERSION_MINOR")));
const _: () = assert!(COFFER_VERSION_PATCH == parse_u32(env!("CARGO_PKG_VERSION_PATCH")));

/// The largest input length accepted by any function (64 MiB); larger lengths are taken to be
/// a caller's bug and refused with `COFFER_STATUS_LIMIT_EXCEEDED` before the pointer is read.
pub const COFFER_MAX_INPUT_LEN: usize = 64 * 1024 * 1024;

/// A loaded schema. Immutable: a `const coffer_schema *` may be shared between threads.
pub struct coffer_schema {
    schema: Schema,
}

/// An open Coffer: a key store with its schema, policy and retention rules. Thread-safe: one
/// handle may be used from many threads at once. Release it with `coffer_close`.
pub struct coffer_t {
    magic: u64,
    inner: Coffer,
}

/// A function that receives every committed audit entry: the `userdata` given to
/// `coffer_audit_subscribe`, and the entry as JSON (`entry_len` bytes, NUL-terminated), valid
/// only during the call. It runs on the thread that wrote the entry and must not call back into
/// the same Coffer handle.
pub type coffer_audit_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, entry: *const c_char, entry_len: usize)>;
