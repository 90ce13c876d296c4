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

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use coffer::mask::{MaskRule, Masked, Profile};
use coffer::record::{CustomerRecord, Schema};
use coffer::{Error, ErrorKind};
use zeroize::Zeroize;

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

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn set_last_error(message: String) {
    // Messages never hold values; an interior NUL cannot occur, but is handled all the same.
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(c));
}

fn clear_last_error() {
    LAST_ERROR.with(|e| *e.borrow_mut() = None);
}

/// Runs `body` behind the panic boundary and turns its result into a status.
fn boundary(body: impl FnOnce() -> Result<(), Error>) -> coffer_status {
    clear_last_error();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => COFFER_STATUS_OK,
        Ok(Err(e)) => {
            set_last_error(e.to_string());
            e.code()
        }
        Err(_) => {
            set_last_error("internal error: a panic was caught at the C boundary".into());
            COFFER_STATUS_INTERNAL
        }
    }
}

fn not_utf8(name: &'static str) -> Error {
    Error::InvalidArgument {
        name,
        reason: "is not UTF-8".into(),
    }
}

fn null_argument(name: &'static str) -> Error {
    Error::InvalidArgument {
        name,
        reason: "is NULL".into(),
    }
}

/// Borrows `len` bytes at `ptr` for the duration of a call.
///
/// # Safety
/// `ptr` must be NULL or point to `len` readable bytes that stay valid and unchanged for the
/// call. NULL is reported as an error; so is a length over [`COFFER_MAX_INPUT_LEN`].
unsafe fn input<'a>(ptr: *const u8, len: usize, name: &'static str) -> Result<&'a [u8], Error> {
    if ptr.is_null() {
        return Err(null_argument(name));
    }
    if len > COFFER_MAX_INPUT_LEN {
        return Err(Error::LimitExceeded {
            what: name.into(),
            limit: COFFER_MAX_INPUT_LEN,
            unit: "bytes",
        });
    }
    // SAFETY: non-NULL, and the caller promises `len` readable bytes for the call's duration;
    // `len` is at most 64 MiB, well below isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows UTF-8 text at `ptr`; invalid UTF-8 is `COFFER_STATUS_MALFORMED` with its offset.
///
/// # Safety
/// As [`input`].
unsafe fn input_str<'a>(ptr: *const u8, len: usize, name: &'static str) -> Result<&'a str, Error> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { input(ptr, len, name) }?;
    std::str::from_utf8(bytes).map_err(|e| Error::Malformed {
        what: name,
        format: coffer::Format::Utf8,
        line: 0,
        column: 0,
        reason: format!("invalid UTF-8 at byte offset {}", e.valid_up_to()),
    })
}

/// Hands a copy of `text` to C: NUL-terminated, with its length, released by
/// `coffer_string_free`. The copy is made in a buffer of exactly the final size, so that no
/// reallocation leaves an unwiped copy behind; the caller wipes its own `text`.
///
/// # Safety
/// `out` and `len_out` must be valid for writes (checked non-NULL by the caller).
unsafe fn output(text: &str, out: *mut *mut c_char, len_out: *mut usize) -> Result<(), Error> {
    let len = text.len();
    let mut buf = Vec::with_capacity(len + 1);
    buf.extend_from_slice(text.as_bytes());
    let c = CString::new(buf).map_err(|e| {
        // Wipe what was built before refusing it.
        let mut v = e.into_vec();
        v.zeroize();
        Error::Internal {
            message: "output contains a NUL byte".into(),
        }
    })?;
    // SAFETY: both pointers were checked non-NULL by the caller, who promises they are valid
    // for writes; they are written only here, at the end of a successful call.
    unsafe {
        *out = c.into_raw();
        *len_out = len;
    }
    Ok(())
}

fn check_out<T>(ptr: *mut T, name: &'static str) -> Result<(), Error> {
    if ptr.is_null() {
        Err(null_argument(name))
    } else {
        Ok(())
    }
}

fn today(yyyymmdd: u32) -> Result<time::Date, Error> {
    if yyyymmdd == 0 {
        return Ok(time::OffsetDateTime::now_utc().date());
    }
    let bad = || Error::InvalidArgument {
        name: "today",
        reason: "expected a date as YYYYMMDD, or 0 for today".into(),
    };
    let year = i32::try_from(yyyymmdd / 10_000).map_err(|_| bad())?;
    let month = time::Month::try_from(u8::try_from(yyyymmdd / 100 % 100).map_err(|_| bad())?)
        .map_err(|_| bad())?;
    let day = u8::try_from(yyyymmdd % 100).map_err(|_| bad())?;
    time::Date::from_calendar_date(year, month, day).map_err(|_| bad())
}

/// The library's version as a static NUL-terminated string, e.g. `"0.1.0"`. Never NULL; never
/// free it. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn coffer_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// A static, NUL-terminated description of a status code (`"ok"`, `"malformed input"`, …), or
/// `"unknown status"`. Never NULL; never free it. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn coffer_status_str(status: coffer_status) -> *const c_char {
    // Built once from the core's table, so the C text can never drift from it.
    static TEXTS: OnceLock<Vec<CString>> = OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        ErrorKind::ALL
            .iter()
            .map(|k| CString::new(k.description()).unwrap_or_default())
            .collect()
    });
    match status {
        COFFER_STATUS_OK => c"ok".as_ptr(),
        _ => ErrorKind::ALL
            .iter()
            .position(|k| k.code() == status)
            .and_then(|i| texts.get(i))
            .map_or(c"unknown status".as_ptr(), |t| t.as_ptr()),
    }
}

/// The detailed message of the last call on this thread that failed, or NULL if the last call
/// succeeded. Messages never contain customer data. The pointer stays valid until the next
/// Coffer call on the same thread; never free it.
#[unsafe(no_mangle)]
pub extern "C" fn coffer_last_error_message() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ref().map_or(std::ptr::null(), |c| c.as_ptr()))
}

/// Wipes and frees a string that Coffer returned. NULL is ignored. Passing anything else that
/// Coffer did not return, or freeing twice, is undefined behaviour. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller promises `s` came from `CString::into_raw` in `output` and is
        // freed once; the string holds no interior NUL, so the recovered length is the original.
        let c = unsafe { CString::from_raw(s) };
        let mut bytes = c.into_bytes_with_nul();
        bytes.zeroize();
    }));
}

/// Loads the built-in customer-record schema into `*schema_out`, to be released with
/// `coffer_schema_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_schema_builtin(
    schema_out: *mut *mut coffer_schema,
) -> coffer_status {
    boundary(|| {
        check_out(schema_out, "schema_out")?;
        let boxed = Box::new(coffer_schema {
            schema: Schema::builtin().clone(),
        });
        // SAFETY: checked non-NULL; the caller promises it is valid for a write.
        unsafe { *schema_out = Box::into_raw(boxed) };
        Ok(())
    })
}

/// Loads a schema from TOML text (`toml`, `toml_len` bytes of UTF-8). On
/// `COFFER_STATUS_MALFORMED` or `COFFER_STATUS_SCHEMA` the message lists every problem with its
/// line and column. Release the schema with `coffer_schema_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_schema_from_toml(
    toml: *const u8,
    toml_len: usize,
    schema_out: *mut *mut coffer_schema,
) -> coffer_status {
    boundary(|| {
        check_out(schema_out, "schema_out")?;
        // SAFETY: the caller promises `toml_len` readable bytes at `toml`.
        let text = unsafe { input_str(toml, toml_len, "toml") }?;
        let schema = Schema::from_toml(text)?;
        // SAFETY: checked non-NULL; valid for a write by contract.
        unsafe { *schema_out = Box::into_raw(Box::new(coffer_schema { schema })) };
        Ok(())
    })
}

/// Releases a schema. NULL is ignored. The schema must not be in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_schema_free(schema: *mut coffer_schema) {
    if schema.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller promises `schema` came from a coffer_schema_* constructor and is
        // freed once.
        drop(unsafe { Box::from_raw(schema) });
    }));
}

/// Normalises and validates a customer record (`record_json`, UTF-8 JSON of `record_json_len`
/// bytes) against `schema` (NULL for the built-in schema), with birth dates checked against
/// `today_yyyymmdd` (e.g. `20261127`; 0 for today's UTC date).
///
/// On `COFFER_STATUS_OK` the record could be read, and `*report_out` holds the report as JSON:
/// `{"valid": true|false, "issues": [{"path", "code", "severity", "message"}, …]}`; release it
/// with `coffer_string_free`. A record that cannot be read at all is `COFFER_STATUS_MALFORMED`
/// or `COFFER_STATUS_LIMIT_EXCEEDED`. Thread-safe; `schema` may be shared.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_record_validate(
    schema: *const coffer_schema,
    record_json: *const u8,
    record_json_len: usize,
    today_yyyymmdd: u32,
    report_out: *mut *mut c_char,
    report_len_out: *mut usize,
) -> coffer_status {
    boundary(|| {
        check_out(report_out, "report_out")?;
        check_out(report_len_out, "report_len_out")?;
        // SAFETY: the caller promises `schema` is NULL or a live coffer_schema.
        let schema = unsafe { schema.as_ref() }.map_or(Schema::builtin(), |s| &s.schema);
        // SAFETY: the caller promises `record_json_len` readable bytes at `record_json`.
        let bytes = unsafe { input(record_json, record_json_len, "record_json") }?;
        let today = today(today_yyyymmdd)?;
        let mut record = CustomerRecord::from_json_bytes(bytes)?;
        record.normalize();
        let report = schema.validate(&record, today);
        // SAFETY: both out-pointers were checked above.
        unsafe { output(&report.to_json(), report_out, report_len_out) }
    })
}

/// Normalises a customer record and writes it back as JSON in `*record_out` (release with
/// `coffer_string_free`, which wipes it). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_record_normalize(
    record_json: *const u8,
    record_json_len: usize,
    record_out: *mut *mut c_char,
    record_len_out: *mut usize,
) -> coffer_status {
    boundary(|| {
        check_out(record_out, "record_out")?;
        check_out(record_len_out, "record_len_out")?;
        // SAFETY: the caller promises `record_json_len` readable bytes at `record_json`.
        let bytes = unsafe { input(record_json, record_json_len, "record_json") }?;
        let mut record = CustomerRecord::from_json_bytes(bytes)?;
        record.normalize();
        let json = record.to_json();
        // SAFETY: both out-pointers were checked above.
        unsafe { output(&json, record_out, record_len_out) }
    })
}

/// Masks one value (`value`, UTF-8) with the rule named by `rule` (`name`, `phone`,
/// `id_number`, `card`, `account`, `iban`, `email`, `address`, `date`, `last4`, `initial`,
/// `withhold`, `clear`) and `profile` (`COFFER_PROFILE_STANDARD` or
/// `COFFER_PROFILE_PRIVILEGED`). The display form goes to `*masked_out` (release with
/// `coffer_string_free`); `withhold` gives an empty string. `keyed_hash` needs a key store and
/// is `COFFER_STATUS_UNSUPPORTED` here. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_mask(
    rule: *const u8,
    rule_len: usize,
    profile: u32,
    value: *const u8,
    value_len: usize,
    masked_out: *mut *mut c_char,
    masked_len_out: *mut usize,
) -> coffer_status {
    boundary(|| {
        check_out(masked_out, "masked_out")?;
        check_out(masked_len_out, "masked_len_out")?;
        // SAFETY: the caller promises `rule_len` readable bytes at `rule`.
        let rule_name = unsafe { input_str(rule, rule_len, "rule") }?;
        // SAFETY: the caller promises `value_len` readable bytes at `value`.
        let value = unsafe { input_str(value, value_len, "value") }?;
        let rule = MaskRule::parse(rule_name).ok_or_else(|| Error::InvalidArgument {
            name: "rule",
            reason: "not a known mask rule".into(),
        })?;
        let profile = match profile {
            COFFER_PROFILE_STANDARD => Profile::Standard,
            COFFER_PROFILE_PRIVILEGED => Profile::Privileged,
            _ => {
                return Err(Error::InvalidArgument {
                    name: "profile",
                    reason: "expected 0 (standard) or 1 (privileged)".into(),
                });
            }
        };
        // A `clear` form is the value itself: wipe it once copied out.
        let text = zeroize::Zeroizing::new(match rule.apply(value, profile) {
            Masked::Text(t) => t,
            Masked::Withheld => String::new(),
            Masked::KeyedHash => {
                return Err(Error::Unsupported {
                    what: "keyed_hash masking needs the key store of an opened Coffer".into(),
                });
            }
        });
        // SAFETY: both out-pointers were checked above.
        unsafe { output(&text, masked_out, masked_len_out) }
    })
}

// ---- the vault ---------------------------------------------------------------------------------

use coffer::retention::Event;
use coffer::{Coffer, Envelope, MasterKey, wire};
use std::ffi::c_void;

const HANDLE_MAGIC: u64 = 0x436f_6666_6572_2131; // "Coffer!1"
const MAX_BATCH: usize = 100_000;

/// An open Coffer: a key store with its schema, policy and retention rules. Thread-safe: one
/// handle may be used from many threads at once. Release it with `coffer_close`.
pub struct coffer_t {
    magic: u64,
    inner: Coffer,
}

/// Borrows the Coffer behind a handle.
///
/// # Safety
/// `h` must be NULL or a handle from `coffer_open*` not yet closed. A closed handle is caught
/// while its memory has not been reused; after that, using it is undefined behaviour.
unsafe fn handle<'a>(h: *const coffer_t) -> Result<&'a Coffer, Error> {
    // SAFETY: the caller promises `h` is NULL or a live handle.
    match unsafe { h.as_ref() } {
        None => Err(null_argument("coffer")),
        Some(c) if c.magic != HANDLE_MAGIC => Err(Error::InvalidArgument {
            name: "coffer",
            reason: "the handle was closed or is not a Coffer handle".into(),
        }),
        Some(c) => Ok(&c.inner),
    }
}

/// Parses a decimal id given as text.
fn number<T: std::str::FromStr>(text: &str, name: &'static str) -> Result<T, Error> {
    text.trim().parse().map_err(|_| Error::InvalidArgument {
        name,
        reason: "expected a decimal number".into(),
    })
}

fn open_with(path: &str, key: &MasterKey, options: Option<&str>) -> Result<Coffer, Error> {
    wire::open_json(path, key, options)
}

/// Opens with the key that `key` makes from its text argument.
///
/// # Safety
/// As `coffer_open`.
// Mirrors the C signature of the `coffer_open*` functions it serves.
#[allow(clippy::too_many_arguments)]
unsafe fn open_call(
    path: *const u8,
    path_len: usize,
    key_arg: *const u8,
    key_arg_len: usize,
    options: *const u8,
    options_len: usize,
    coffer_out: *mut *mut coffer_t,
    key_name: &'static str,
    key: impl FnOnce(&[u8]) -> Result<MasterKey, Error>,
) -> coffer_status {
    boundary(|| {
        check_out(coffer_out, "coffer_out")?;
        // SAFETY: the caller promises each pointer is NULL or readable for its length;
        // `options` may be NULL (defaults).
        let path = unsafe { input_str(path, path_len, "path") }?;
        // SAFETY: the caller promises this pointer is NULL or readable for its length, for the call.
        let key = key(unsafe { input(key_arg, key_arg_len, key_name) }?)?;
        let options = if options.is_null() {
            None
        } else {
            // SAFETY: the caller promises this pointer is NULL or readable for its length, for the call.
            Some(unsafe { input_str(options, options_len, "options") }?)
        };
        let c = open_with(path, &key, options)?;
        let boxed = Box::new(coffer_t {
            magic: HANDLE_MAGIC,
            inner: c,
        });
        // SAFETY: checked non-NULL; written only on success.
        unsafe { *coffer_out = Box::into_raw(boxed) };
        Ok(())
    })
}

/// Fills `key_out` with a new random 32-byte master key; `key_out_len` must be at least 32.
/// Keep the key outside the store: Coffer never stores it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_generate_master_key(
    key_out: *mut u8,
    key_out_len: usize,
) -> coffer_status {
    boundary(|| {
        check_out(key_out, "key_out")?;
        if key_out_len < 32 {
            return Err(Error::InvalidArgument {
                name: "key_out_len",
                reason: format!("the buffer holds {key_out_len} bytes; a master key is 32"),
            });
        }
        let bytes = MasterKey::generate()?.to_bytes();
        // SAFETY: checked non-NULL; the caller promises `key_out_len` (at least 32) writable bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), key_out, 32) };
        Ok(())
    })
}

/// Opens (or creates) the store at `path` with a 32-byte master key and optional `options`
/// (JSON; NULL for defaults): `{"schema": "<TOML>", "policy": "<TOML>", "retention": "<TOML>",
/// "create": true, "busy_timeout_ms": 5000, "data_key_cache": 10000}`. A wrong master key is
/// `COFFER_STATUS_WRONG_MASTER_KEY`, before anything is written. Release with `coffer_close`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_open(
    path: *const u8,
    path_len: usize,
    master_key: *const u8,
    master_key_len: usize,
    options: *const u8,
    options_len: usize,
    coffer_out: *mut *mut coffer_t,
) -> coffer_status {
    // SAFETY: forwarded contract.
    unsafe {
        open_call(
            path,
            path_len,
            master_key,
            master_key_len,
            options,
            options_len,
            coffer_out,
            "master_key",
            MasterKey::from_bytes,
        )
    }
}

/// Like `coffer_open`, with the master key read from the file `key_file` (32 raw bytes, or 64
/// hexadecimal characters, or base64).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_open_with_key_file(
    path: *const u8,
    path_len: usize,
    key_file: *const u8,
    key_file_len: usize,
    options: *const u8,
    options_len: usize,
    coffer_out: *mut *mut coffer_t,
) -> coffer_status {
    let key =
        |p: &[u8]| MasterKey::from_file(std::str::from_utf8(p).map_err(|_| not_utf8("key_file"))?);
    // SAFETY: forwarded contract.
    unsafe {
        open_call(
            path,
            path_len,
            key_file,
            key_file_len,
            options,
            options_len,
            coffer_out,
            "key_file",
            key,
        )
    }
}

/// Like `coffer_open`, with the master key read from the environment variable `env_var`
/// (hexadecimal or base64 text; e.g. `COFFER_MASTER_KEY`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_open_with_key_env(
    path: *const u8,
    path_len: usize,
    env_var: *const u8,
    env_var_len: usize,
    options: *const u8,
    options_len: usize,
    coffer_out: *mut *mut coffer_t,
) -> coffer_status {
    let key =
        |v: &[u8]| MasterKey::from_env(std::str::from_utf8(v).map_err(|_| not_utf8("env_var"))?);
    // SAFETY: forwarded contract.
    unsafe {
        open_call(
            path,
            path_len,
            env_var,
            env_var_len,
            options,
            options_len,
            coffer_out,
            "env_var",
            key,
        )
    }
}

/// Closes a Coffer and wipes its keys from memory. NULL is ignored. No other thread may be using
/// the handle; using it afterwards is an error while detectable, then undefined behaviour.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_close(coffer: *mut coffer_t) {
    if coffer.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller promises a live handle, closed once.
        let mut boxed = unsafe { Box::from_raw(coffer) };
        boxed.magic = 0;
        drop(boxed);
    }));
}

/// One text argument: its pointer, its length, and its name for error messages.
type Arg = (*const u8, usize, &'static str);

/// The body of a function taking a handle and text arguments and giving one text output.
///
/// # Safety
/// `coffer` is NULL or a live handle; each argument pointer is NULL or readable for its length;
/// `out` and `out_len` are NULL or valid for writes.
unsafe fn text_fn<const N: usize>(
    coffer: *const coffer_t,
    args: [Arg; N],
    out: *mut *mut c_char,
    out_len: *mut usize,
    f: impl FnOnce(&Coffer, [&str; N]) -> Result<zeroize::Zeroizing<String>, Error>,
) -> coffer_status {
    boundary(|| {
        check_out(out, "out")?;
        check_out(out_len, "out_len")?;
        // SAFETY: forwarded contract.
        let c = unsafe { handle(coffer) }?;
        // SAFETY: the caller promises this pointer is NULL or readable for its length, for the call.
        let texts = unsafe { texts(args) }?;
        let text = f(c, texts)?;
        // SAFETY: both checked above.
        unsafe { output(&text, out, out_len) }
    })
}

/// The body of a function that needs no handle, taking text arguments and giving one text
/// output.
///
/// # Safety
/// Each argument pointer is NULL or readable for its length; `out` and `out_len` are NULL or
/// valid for writes.
unsafe fn free_text_fn<const N: usize>(
    args: [Arg; N],
    out: *mut *mut c_char,
    out_len: *mut usize,
    f: impl FnOnce([&str; N]) -> Result<zeroize::Zeroizing<String>, Error>,
) -> coffer_status {
    boundary(|| {
        check_out(out, "out")?;
        check_out(out_len, "out_len")?;
        // SAFETY: the caller promises each pointer is NULL or readable for its length.
        let text = f(unsafe { texts(args) }?)?;
        // SAFETY: both checked above.
        unsafe { output(&text, out, out_len) }
    })
}

/// The body of a function taking a handle and text arguments, with no output.
///
/// # Safety
/// As [`text_fn`].
unsafe fn unit_fn<const N: usize>(
    coffer: *const coffer_t,
    args: [Arg; N],
    f: impl FnOnce(&Coffer, [&str; N]) -> Result<(), Error>,
) -> coffer_status {
    boundary(|| {
        // SAFETY: forwarded contract.
        let c = unsafe { handle(coffer) }?;
        // SAFETY: the caller promises this pointer is NULL or readable for its length, for the call.
        f(c, unsafe { texts(args) }?)
    })
}

/// The body of a function taking a handle and text arguments, giving one number.
///
/// # Safety
/// As [`text_fn`]; `result_out` is NULL or valid for a write.
unsafe fn number_fn<T, const N: usize>(
    coffer: *const coffer_t,
    args: [Arg; N],
    result_out: *mut T,
    f: impl FnOnce(&Coffer, [&str; N]) -> Result<T, Error>,
) -> coffer_status {
    boundary(|| {
        check_out(result_out, "result_out")?;
        // SAFETY: forwarded contract.
        let c = unsafe { handle(coffer) }?;
        // SAFETY: the caller promises this pointer is NULL or readable for its length, for the call.
        let value = f(c, unsafe { texts(args) }?)?;
        // SAFETY: checked above; written only on success.
        unsafe { *result_out = value };
        Ok(())
    })
}

/// Borrows every text argument, or reports the first bad one.
///
/// # Safety
/// Each pointer is NULL or readable for its length for the call's duration.
unsafe fn texts<'a, const N: usize>(args: [Arg; N]) -> Result<[&'a str; N], Error> {
    let mut out = [""; N];
    for (i, (ptr, len, name)) in args.into_iter().enumerate() {
        // SAFETY: forwarded contract.
        out[i] = unsafe { input_str(ptr, len, name) }?;
    }
    Ok(out)
}

fn z(s: String) -> Result<zeroize::Zeroizing<String>, Error> {
    Ok(zeroize::Zeroizing::new(s))
}

fn json_array(
    items: impl IntoIterator<Item = zeroize::Zeroizing<String>>,
) -> zeroize::Zeroizing<String> {
    let mut out = zeroize::Zeroizing::new(String::from("["));
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item);
    }
    out.push(']');
    out
}

/// Normalises, validates and seals a customer record (JSON); `*out` is the envelope (JSON)
/// for the host's database. An invalid record is `COFFER_STATUS_VALIDATION`, and the message
/// lists every problem (paths and codes, never values). `actor` goes into the audit trail.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_seal(
    coffer: *const coffer_t,
    record: *const u8,
    record_len: usize,
    actor: *const u8,
    actor_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(
            coffer,
            [(record, record_len, "record"), (actor, actor_len, "actor")],
            out,
            out_len,
            |c: &Coffer, [record, actor]: [&str; 2]| wire::seal_json(c, record, actor),
        )
    }
}

/// Seals a JSON array of records with one audit transaction; `*out` is a JSON array of
/// `{"ok": <envelope>}` or `{"error": {"code", "kind", "message"}}`, one per record, in order.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_seal_many(
    coffer: *const coffer_t,
    records: *const u8,
    records_len: usize,
    actor: *const u8,
    actor_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(
            coffer,
            [
                (records, records_len, "records"),
                (actor, actor_len, "actor"),
            ],
            out,
            out_len,
            |c: &Coffer, [records, actor]: [&str; 2]| wire::seal_many_json(c, records, actor),
        )
    }
}

/// Reveals an envelope to an access request (JSON: principal, purpose, context, record; see
/// docs/C-API.md), decided by the policy and recorded in the audit trail before anything is
/// decrypted. `*out` is the view: each field revealed (with `value`), masked (with `value`),
/// denied (with `reason`) or shredded. It holds plaintext: `coffer_string_free` wipes it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_reveal(
    coffer: *const coffer_t,
    envelope: *const u8,
    envelope_len: usize,
    access: *const u8,
    access_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(
            coffer,
            [
                (envelope, envelope_len, "envelope"),
                (access, access_len, "access"),
            ],
            out,
            out_len,
            |c: &Coffer, [envelope, access]: [&str; 2]| wire::reveal_json(c, envelope, access),
        )
    }
}

/// Reveals a JSON array of envelopes to one access request with one audit transaction;
/// `*out` is a JSON array of views.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_reveal_many(
    coffer: *const coffer_t,
    envelopes: *const u8,
    envelopes_len: usize,
    access: *const u8,
    access_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(
            coffer,
            [
                (envelopes, envelopes_len, "envelopes"),
                (access, access_len, "access"),
            ],
            out,
            out_len,
            |c: &Coffer, [envelopes, access]: [&str; 2]| {
                wire::reveal_many_json(c, envelopes, access)
            },
        )
    }
}

/// Redacts a JSON array of envelopes: for every category whose data key this store records as
/// destroyed, removes its ciphertexts, masked forms and blind-index tokens, and rewrites
/// version 1 envelopes as version 2. `*out` is a JSON array, one per envelope, in order:
/// `{"record", "changed", "shredded_categories", "clear_index", "envelope"}` — store each
/// `envelope` in place of the old one and clear the index columns `clear_index` names. A key
/// the store does not have is `COFFER_STATUS_KEY_NOT_FOUND`, nothing redacted.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_redact(
    coffer: *const coffer_t,
    envelopes: *const u8,
    envelopes_len: usize,
    actor: *const u8,
    actor_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(
            coffer,
            [
                (envelopes, envelopes_len, "envelopes"),
                (actor, actor_len, "actor"),
            ],
            out,
            out_len,
            |c: &Coffer, [envelopes, actor]: [&str; 2]| wire::redact_many_json(c, envelopes, actor),
        )
    }
}

/// Searches a blind index, as an access that the policy decides (action `search`), that
/// counts against the rate limits and that is audited, in the principal's own tenant.
/// `access` is the access JSON of a reveal; `request` is `{"field": "id_documents[].number",
/// "values": ["…"]}` (or `"value": "…"`). `*out` is `{"field", "audit_seq", "tokens":
/// [[{"epoch", "token"}]], "withheld_subjects": […]}`: per value, one token per index epoch
/// still written; the host drops rows of the withheld subjects. A denied search returns
/// `COFFER_STATUS_ACCESS_DENIED`, one over a rate limit `COFFER_STATUS_RATE_LIMITED` (both
/// audited). Free `*out` with `coffer_string_free`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_search(
    coffer: *const coffer_t,
    access: *const u8,
    access_len: usize,
    request: *const u8,
    request_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(
            coffer,
            [
                (access, access_len, "access"),
                (request, request_len, "request"),
            ],
            out,
            out_len,
            |c: &Coffer, [access, request]: [&str; 2]| z(wire::search_json(c, access, request)?),
        )
    }
}

/// Reseals an envelope under the newest data keys; `*out` is the new envelope.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_reseal(
    coffer: *const coffer_t,
    envelope: *const u8,
    envelope_len: usize,
    actor: *const u8,
    actor_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(
            coffer,
            [
                (envelope, envelope_len, "envelope"),
                (actor, actor_len, "actor"),
            ],
            out,
            out_len,
            |c: &Coffer, [envelope, actor]: [&str; 2]| {
                c.reseal(&c.open_envelope(envelope)?, actor)
                    .map(|e| e.to_json())
            },
        )
    }
}

/// The holds in force, as a JSON array.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_holds(
    coffer: *const coffer_t,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(coffer, [], out, out_len, |c: &Coffer, []: [&str; 0]| {
            z(serde_json::to_string(&c.holds(None)?).unwrap_or_default())
        })
    }
}

/// An erasure request: `*out` lists each category destroyed now or restricted until when, on
/// which rule and legal basis, with the certificate of what was destroyed. Refused with
/// `COFFER_STATUS_LEGAL_HOLD`, nothing destroyed, while a hold covers the subject.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_erase(
    coffer: *const coffer_t,
    tenant: *const u8,
    tenant_len: usize,
    subject: *const u8,
    subject_len: usize,
    actor: *const u8,
    actor_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(
            coffer,
            [
                (tenant, tenant_len, "tenant"),
                (subject, subject_len, "subject"),
                (actor, actor_len, "actor"),
            ],
            out,
            out_len,
            |c: &Coffer, [tenant, subject, actor]: [&str; 3]| {
                z(serde_json::to_string(&c.erase(tenant, subject, actor)?).unwrap_or_default())
            },
        )
    }
}

/// Sweeps: destroys what `destroy` rules let go (with a certificate) and proposes a
/// destruction list for what `review` rules let go. `*out`: `{"destroyed", "certificate",
/// "proposed_list", "proposed", "held"}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_sweep(
    coffer: *const coffer_t,
    actor: *const u8,
    actor_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(
            coffer,
            [(actor, actor_len, "actor")],
            out,
            out_len,
            |c: &Coffer, [actor]: [&str; 1]| z(wire::sweep_to_json(&c.sweep(actor)?)),
        )
    }
}

/// Executes an approved destruction list (`list`: its id as decimal text); `*out` is the
/// signed certificate. Without enough approvals: `COFFER_STATUS_APPROVAL`, nothing destroyed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_execute(
    coffer: *const coffer_t,
    list: *const u8,
    list_len: usize,
    actor: *const u8,
    actor_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(
            coffer,
            [(list, list_len, "list"), (actor, actor_len, "actor")],
            out,
            out_len,
            |c: &Coffer, [list, actor]: [&str; 2]| {
                z(c.execute(number(list, "list")?, actor)?.to_json())
            },
        )
    }
}

/// Verifies the audit chain, and that it still reaches `checkpoint` (JSON; an empty string
/// for none). `*out` is the report: `{"entries", "last_seq", "intact", "first_problem":
/// [seq, "changed" | "removed" | "inserted" | "reordered" | "truncated"] | null,
/// "checkpoint_checked"}`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_audit_verify(
    coffer: *const coffer_t,
    checkpoint: *const u8,
    checkpoint_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(
            coffer,
            [(checkpoint, checkpoint_len, "checkpoint")],
            out,
            out_len,
            |c: &Coffer, [checkpoint]: [&str; 1]| z(wire::audit_verify_json(c, Some(checkpoint))?),
        )
    }
}

/// Makes a signed checkpoint of the audit chain (JSON), to keep where an attacker of the
/// database cannot rewrite it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_audit_checkpoint(
    coffer: *const coffer_t,
    actor: *const u8,
    actor_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(
            coffer,
            [(actor, actor_len, "actor")],
            out,
            out_len,
            |c: &Coffer, [actor]: [&str; 1]| z(c.audit_checkpoint(actor)?.to_json()),
        )
    }
}

/// The whole audit trail as JSON Lines.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_audit_export(
    coffer: *const coffer_t,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(coffer, [], out, out_len, |c: &Coffer, []: [&str; 0]| {
            z(wire::audit_export_text(c)?)
        })
    }
}

/// Exports envelopes (a JSON array) with their data keys re-wrapped under `archive_key` (32
/// bytes as 64 hexadecimal characters, which the host keeps apart from the bundle); `*out` is
/// the signed bundle (JSON). `access` is the access JSON of a reveal: the policy must allow it
/// the `export` action on every field (else `COFFER_STATUS_ACCESS_DENIED`, nothing exported);
/// one audit entry per data subject records the export.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_archive_export(
    coffer: *const coffer_t,
    envelopes: *const u8,
    envelopes_len: usize,
    archive_key: *const u8,
    archive_key_len: usize,
    access: *const u8,
    access_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(
            coffer,
            [
                (envelopes, envelopes_len, "envelopes"),
                (archive_key, archive_key_len, "archive_key"),
                (access, access_len, "access"),
            ],
            out,
            out_len,
            |c: &Coffer, [envelopes, archive_key, access]: [&str; 3]| {
                let envs: Vec<Envelope> = wire::envelopes_from_json(envelopes, MAX_BATCH)?;
                let key = coffer::crypto::from_hex(archive_key).ok_or_else(|| {
                    Error::InvalidArgument {
                        name: "archive_key",
                        reason: "64 hexadecimal characters".into(),
                    }
                })?;
                let access = wire::access_from_json(access)?;
                z(c.archive_export(&envs, &key, &access)?.to_json())
            },
        )
    }
}

/// Restores a bundle (JSON) into this store, given the archive key and the exporting store's
/// public key (both as hexadecimal text); `*out` is the JSON array of restored envelopes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_archive_restore(
    coffer: *const coffer_t,
    bundle: *const u8,
    bundle_len: usize,
    archive_key: *const u8,
    archive_key_len: usize,
    public_key: *const u8,
    public_key_len: usize,
    actor: *const u8,
    actor_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(
            coffer,
            [
                (bundle, bundle_len, "bundle"),
                (archive_key, archive_key_len, "archive_key"),
                (public_key, public_key_len, "public_key"),
                (actor, actor_len, "actor"),
            ],
            out,
            out_len,
            |c: &Coffer, [bundle, archive_key, public_key, actor]: [&str; 4]| {
                let b = coffer::ArchiveBundle::from_json(bundle)?;
                let hex = |t: &str, name| {
                    coffer::crypto::from_hex(t).ok_or_else(|| Error::InvalidArgument {
                        name,
                        reason: "expected hexadecimal text".into(),
                    })
                };
                let envs = c.archive_restore(
                    &b,
                    &hex(archive_key, "archive_key")?,
                    &hex(public_key, "public_key")?,
                    actor,
                )?;
                Ok::<_, Error>(json_array(envs.iter().map(|e| e.to_json())))
            },
        )
    }
}

/// The store's Ed25519 public key as hexadecimal text, for verifying checkpoints,
/// certificates and archives offline.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_signing_public_key(
    coffer: *const coffer_t,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(coffer, [], out, out_len, |c: &Coffer, []: [&str; 0]| {
            z(coffer::crypto::hex(&c.signing_public_key()))
        })
    }
}

/// Records a lifecycle event (`relationship_ended`, `account_closed`, `transaction_ended`,
/// `matter_closed`, `consent_withdrawn`, `purpose_achieved`) of a subject on `date`
/// (`YYYY-MM-DD`, not in the future), and recomputes its keep-until dates.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_record_event(
    coffer: *const coffer_t,
    tenant: *const u8,
    tenant_len: usize,
    subject: *const u8,
    subject_len: usize,
    event: *const u8,
    event_len: usize,
    date: *const u8,
    date_len: usize,
    actor: *const u8,
    actor_len: usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        unit_fn(
            coffer,
            [
                (tenant, tenant_len, "tenant"),
                (subject, subject_len, "subject"),
                (event, event_len, "event"),
                (date, date_len, "date"),
                (actor, actor_len, "actor"),
            ],
            |c: &Coffer, [tenant, subject, event, date, actor]: [&str; 5]| {
                let e = Event::parse(event).ok_or_else(|| Error::InvalidArgument {
                    name: "event",
                    reason: "not a lifecycle event".into(),
                })?;
                c.record_event(tenant, subject, e, wire::parse_date(date)?, actor)
            },
        )
    }
}

/// Approves a destruction list (`list`: its id as decimal text) as `approver` in `role`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_approve(
    coffer: *const coffer_t,
    list: *const u8,
    list_len: usize,
    approver: *const u8,
    approver_len: usize,
    role: *const u8,
    role_len: usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        unit_fn(
            coffer,
            [
                (list, list_len, "list"),
                (approver, approver_len, "approver"),
                (role, role_len, "role"),
            ],
            |c: &Coffer, [list, approver, role]: [&str; 3]| {
                c.approve(number(list, "list")?, approver, role)
            },
        )
    }
}

/// Releases a hold (`hold`: its id as decimal text).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_hold_release(
    coffer: *const coffer_t,
    hold: *const u8,
    hold_len: usize,
    actor: *const u8,
    actor_len: usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        unit_fn(
            coffer,
            [(hold, hold_len, "hold"), (actor, actor_len, "actor")],
            |c: &Coffer, [hold, actor]: [&str; 2]| c.release_hold(number(hold, "hold")?, actor),
        )
    }
}

/// Retires a blind-index epoch (decimal text) once the host has backfilled the new one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_retire_index_epoch(
    coffer: *const coffer_t,
    epoch: *const u8,
    epoch_len: usize,
    actor: *const u8,
    actor_len: usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        unit_fn(
            coffer,
            [(epoch, epoch_len, "epoch"), (actor, actor_len, "actor")],
            |c: &Coffer, [epoch, actor]: [&str; 2]| {
                c.retire_index_epoch(number(epoch, "epoch")?, actor)
            },
        )
    }
}

/// Places a legal hold (JSON: `{"tenant", "subject"?, "category"?, "reason", "until"?,
/// "open_matter"?}`); writes its id.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_hold_place(
    coffer: *const coffer_t,
    hold: *const u8,
    hold_len: usize,
    actor: *const u8,
    actor_len: usize,
    result_out: *mut i64,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        number_fn(
            coffer,
            [(hold, hold_len, "hold"), (actor, actor_len, "actor")],
            result_out,
            |c: &Coffer, [hold, actor]: [&str; 2]| c.place_hold(wire::hold_from_json(hold)?, actor),
        )
    }
}

/// Starts a KEK rotation; writes the new KEK version. Then call
/// `coffer_continue_kek_rotation` until it rewraps nothing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_rotate_kek(
    coffer: *const coffer_t,
    actor: *const u8,
    actor_len: usize,
    result_out: *mut u32,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        number_fn(
            coffer,
            [(actor, actor_len, "actor")],
            result_out,
            |c: &Coffer, [actor]: [&str; 1]| c.rotate_kek(actor),
        )
    }
}

/// Rewraps up to 1,000 data keys under the newest KEK; writes how many (0 when done).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_continue_kek_rotation(
    coffer: *const coffer_t,
    actor: *const u8,
    actor_len: usize,
    result_out: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        number_fn(
            coffer,
            [(actor, actor_len, "actor")],
            result_out,
            |c: &Coffer, [actor]: [&str; 1]| c.continue_kek_rotation(1000, actor),
        )
    }
}

/// Retires every KEK older than the current one once `coffer_continue_kek_rotation` has
/// rewrapped every live data key: deletes them from the keyring for good. Writes the versions
/// deleted as a JSON array (`[]` when there were none). `COFFER_STATUS_INVALID_ARGUMENT`,
/// nothing deleted, while a live data key still needs an older KEK.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_retire_keks(
    coffer: *const coffer_t,
    actor: *const u8,
    actor_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(
            coffer,
            [(actor, actor_len, "actor")],
            out,
            out_len,
            |c: &Coffer, [actor]: [&str; 1]| {
                z(serde_json::to_string(&c.retire_keks(actor)?).unwrap_or_default())
            },
        )
    }
}

/// Backs the store up to `path` (a new file, never overwritten; created 0600) while others go
/// on writing, with a signed manifest beside it (`<path>.manifest.json`); writes the manifest
/// (JSON).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_backup(
    coffer: *const coffer_t,
    path: *const u8,
    path_len: usize,
    actor: *const u8,
    actor_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(
            coffer,
            [(path, path_len, "path"), (actor, actor_len, "actor")],
            out,
            out_len,
            |c: &Coffer, [path, actor]: [&str; 2]| {
                z(serde_json::to_string(&c.backup(path, actor)?).unwrap_or_default())
            },
        )
    }
}

/// Restores the backup at `backup` as the store at `target` (no handle may be open on it),
/// with the 32-byte master key in force when the backup was taken. `options` (JSON):
/// `{"actor": "ops", "certificates": [<certificate>, ...], "no_later_destructions": false}`.
/// Every key destroyed after the backup is destroyed again: those the store at `target`
/// records when it can be read, and those the certificates name; with neither, refused
/// (`COFFER_STATUS_INVALID_ARGUMENT`) unless `no_later_destructions` is true. A backup that
/// does not match its manifest is `COFFER_STATUS_INTEGRITY`, nothing written. Writes the
/// report (JSON). See docs/RETENTION.md.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_restore(
    backup: *const u8,
    backup_len: usize,
    target: *const u8,
    target_len: usize,
    master_key: *const u8,
    master_key_len: usize,
    options: *const u8,
    options_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    boundary(|| {
        check_out(out, "out")?;
        check_out(out_len, "out_len")?;
        // SAFETY: the caller promises each pointer is NULL or readable for its length.
        let backup = unsafe { input_str(backup, backup_len, "backup") }?;
        // SAFETY: as above.
        let target = unsafe { input_str(target, target_len, "target") }?;
        // SAFETY: as above.
        let key =
            MasterKey::from_bytes(unsafe { input(master_key, master_key_len, "master_key") }?)?;
        // SAFETY: as above.
        let options = unsafe { input_str(options, options_len, "options") }?;
        let report = coffer::wire::restore_json(backup, target, &key, options)?;
        // SAFETY: both checked above.
        unsafe { output(&report, out, out_len) }
    })
}

/// Starts a new blind-index epoch; writes its number.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_rotate_index_key(
    coffer: *const coffer_t,
    actor: *const u8,
    actor_len: usize,
    result_out: *mut u32,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        number_fn(
            coffer,
            [(actor, actor_len, "actor")],
            result_out,
            |c: &Coffer, [actor]: [&str; 1]| c.rotate_index_key(actor),
        )
    }
}

/// Makes a new data-key version for (tenant, subject, category); writes the version.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_rotate_data_key(
    coffer: *const coffer_t,
    tenant: *const u8,
    tenant_len: usize,
    subject: *const u8,
    subject_len: usize,
    category: *const u8,
    category_len: usize,
    actor: *const u8,
    actor_len: usize,
    result_out: *mut u32,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        number_fn(
            coffer,
            [
                (tenant, tenant_len, "tenant"),
                (subject, subject_len, "subject"),
                (category, category_len, "category"),
                (actor, actor_len, "actor"),
            ],
            result_out,
            |c: &Coffer, [tenant, subject, category, actor]: [&str; 4]| {
                c.rotate_data_key(tenant, subject, category, actor)
            },
        )
    }
}

/// Verifies a destruction certificate (JSON) against the store's public key (hexadecimal text).
/// Needs no handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_certificate_verify(
    certificate: *const u8,
    certificate_len: usize,
    public_key: *const u8,
    public_key_len: usize,
) -> coffer_status {
    boundary(|| {
        // SAFETY: the caller promises readable inputs.
        let cert = unsafe { input_str(certificate, certificate_len, "certificate") }?;
        // SAFETY: the caller promises this pointer is NULL or readable for its length, for the call.
        let pk = unsafe { input_str(public_key, public_key_len, "public_key") }?;
        let cert = coffer::Certificate::from_json(cert)?;
        cert.verify(
            &coffer::crypto::from_hex(pk).ok_or_else(|| Error::InvalidArgument {
                name: "public_key",
                reason: "expected hexadecimal text".into(),
            })?,
        )
    })
}

/// Makes a compliance report from a request (JSON; see docs/REPORTS.md): a data subject's own
/// report (`"report": "subject"`), incident scoping (`"incident"`), an access review
/// (`"access_review"`) or a compliance check (`"check"`), each with the `access` of whoever asks
/// (the policy must grant them action `admin`). `*out` is the report's JSON. A subject report
/// may hold revealed values: `coffer_string_free` wipes it. On a broken audit trail the report
/// is refused with `COFFER_STATUS_INTEGRITY` unless the request says `"accept_broken_trail":
/// true`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_report(
    coffer: *const coffer_t,
    request: *const u8,
    request_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(
            coffer,
            [(request, request_len, "request")],
            out,
            out_len,
            |c: &Coffer, [request]: [&str; 1]| wire::report_json(c, request),
        )
    }
}

/// Renders a report's JSON (from `coffer_report`) as `json`, `markdown` or `html` (a
/// self-contained page with SVG charts; no script, nothing fetched). Needs no handle. `*out`
/// may hold revealed values: `coffer_string_free` wipes it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_report_render(
    report: *const u8,
    report_len: usize,
    format: *const u8,
    format_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        free_text_fn(
            [
                (report, report_len, "report"),
                (format, format_len, "format"),
            ],
            out,
            out_len,
            |[report, format]| wire::render_report_json(report, format),
        )
    }
}

/// Opens an envelope (JSON) with explicit keys, outside any store, deciding nothing and auditing
/// nothing: `keys` is `{"envelope_mac_key": hex, "data_keys": [{"category", "version", "key":
/// hex}]}`, the shape of a case in `tests/vectors/envelopes.json` (other keys are ignored).
/// `*out` is `{path: plaintext}` for every field. For conformance tests and offline recovery by
/// someone who already holds the keys; applications call `coffer_reveal`. Needs no handle.
/// `*out` holds plaintext: free it with `coffer_string_free`, which wipes it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_envelope_open_with_keys(
    envelope: *const u8,
    envelope_len: usize,
    keys: *const u8,
    keys_len: usize,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        free_text_fn(
            [
                (envelope, envelope_len, "envelope"),
                (keys, keys_len, "keys"),
            ],
            out,
            out_len,
            |[envelope, keys]| wire::open_with_keys_json(envelope, keys),
        )
    }
}

/// Verifies an archive bundle (JSON) offline against the exporting store's public key
/// (hexadecimal text), and its contents too when `archive_key` (hexadecimal text) is not NULL.
/// Needs no handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_archive_verify(
    bundle: *const u8,
    bundle_len: usize,
    public_key: *const u8,
    public_key_len: usize,
    archive_key: *const u8,
    archive_key_len: usize,
) -> coffer_status {
    boundary(|| {
        let hex = |t: &str, name| {
            coffer::crypto::from_hex(t).ok_or_else(|| Error::InvalidArgument {
                name,
                reason: "expected hexadecimal text".into(),
            })
        };
        // SAFETY: the caller promises readable inputs; `archive_key` may be NULL.
        let bundle = unsafe { input_str(bundle, bundle_len, "bundle") }?;
        let pk = hex(
            // SAFETY: the caller promises this pointer is NULL or readable for its length, for the call.
            unsafe { input_str(public_key, public_key_len, "public_key") }?,
            "public_key",
        )?;
        let ak = if archive_key.is_null() {
            None
        } else {
            Some(hex(
                // SAFETY: the caller promises this pointer is NULL or readable for its length, for the call.
                unsafe { input_str(archive_key, archive_key_len, "archive_key") }?,
                "archive_key",
            )?)
        };
        let b = coffer::ArchiveBundle::from_json(bundle)?;
        b.verify(&pk, ak.as_deref()).map(|_| ())
    })
}

/// The blind-index width recommended for `records` records with `distinct` distinct values:
/// `*out` is `{"min_bits", "max_bits", "recommended_bits", "expected_false_positives",
/// "same_value_probability"}`. Needs no handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_index_plan(
    records: u64,
    distinct: u64,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    boundary(|| {
        check_out(out, "out")?;
        check_out(out_len, "out_len")?;
        // SAFETY: both checked.
        unsafe {
            output(
                &wire::plan_to_json(&coffer::plan_index(records, distinct)),
                out,
                out_len,
            )
        }
    })
}

/// A function that receives every committed audit entry: the `userdata` given to
/// `coffer_audit_subscribe`, and the entry as JSON (`entry_len` bytes, NUL-terminated), valid
/// only during the call. It runs on the thread that wrote the entry and must not call back into
/// the same Coffer handle.
pub type coffer_audit_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, entry: *const c_char, entry_len: usize)>;

/// Subscribes `callback` to every audit entry committed after now (e.g. to forward them to a
/// SIEM). Coffer never reads `userdata`; the caller makes it safe to use from any thread.
/// The callback runs on the thread that committed the entry, after the commit: it must return
/// quickly and must not call Coffer functions on the same handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_audit_subscribe(
    coffer: *const coffer_t,
    callback: coffer_audit_callback,
    userdata: *mut c_void,
) -> coffer_status {
    boundary(|| {
        // SAFETY: the caller promises a live handle.
        let c = unsafe { handle(coffer) }?;
        let f = callback.ok_or_else(|| null_argument("callback"))?;
        let userdata = userdata as usize;
        c.subscribe(move |entry| {
            let Ok(json) = serde_json::to_string(entry) else {
                return;
            };
            let Ok(text) = CString::new(json) else { return };
            let len = text.as_bytes().len();
            // SAFETY: the callback and its userdata are the caller's, who promised they are
            // usable from any thread; the text lives for the call.
            let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
                f(userdata as *mut c_void, text.as_ptr(), len)
            }));
        });
        Ok(())
    })
}

/// Panics inside Rust on purpose and returns `COFFER_STATUS_INTERNAL`: it exists so that a test
/// suite can check that a panic is caught at the boundary instead of aborting the process. Not
/// in `coffer.h` (a test hook, not the API): the tests declare it themselves.
#[unsafe(no_mangle)]
pub extern "C" fn coffer_test_panic() -> coffer_status {
    boundary(|| -> Result<(), Error> { panic!("a deliberate panic, to test the boundary") })
}

/// Rewraps the keyring under a new 32-byte master key (instant: data keys are untouched). The old
/// key no longer opens the store afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_rotate_master_key(
    coffer: *const coffer_t,
    new_master_key: *const u8,
    new_master_key_len: usize,
    actor: *const u8,
    actor_len: usize,
) -> coffer_status {
    boundary(|| {
        // SAFETY: the caller promises a live handle and readable inputs.
        let c = unsafe { handle(coffer) }?;
        // SAFETY: the caller promises this pointer is NULL or readable for its length, for the call.
        let key = MasterKey::from_bytes(unsafe {
            input(new_master_key, new_master_key_len, "new_master_key")
        }?)?;
        // SAFETY: the caller promises this pointer is NULL or readable for its length, for the call.
        let actor = unsafe { input_str(actor, actor_len, "actor") }?;
        c.rotate_master_key(&key, actor)
    })
}
