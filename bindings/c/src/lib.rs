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
        // SAFETY: the caller promises `value_len` readable bytes at `value`.
        let value = unsafe { input_str(value, value_len, "value") }?;
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
