//! The boundary every function goes through: the panic guard, the last error, borrowing
//! input, handing output to C, handles, and the shapes of the common bodies.

pub(crate) use std::cell::RefCell;
pub(crate) use std::ffi::{CString, c_char};
pub(crate) use std::panic::{AssertUnwindSafe, catch_unwind};
pub(crate) use std::sync::OnceLock;

pub(crate) use coffer::mask::{MaskRule, Masked, Profile};
pub(crate) use coffer::record::{CustomerRecord, Schema};
pub(crate) use coffer::retention::Event;
pub(crate) use coffer::{Coffer, Envelope, Error, ErrorKind, MasterKey, wire};
pub(crate) use zeroize::Zeroize;

use crate::*;

thread_local! {
    pub(crate) static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

pub(crate) fn set_last_error(message: String) {
    // Messages never hold values; an interior NUL cannot occur, but is handled all the same.
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(c));
}

pub(crate) fn clear_last_error() {
    LAST_ERROR.with(|e| *e.borrow_mut() = None);
}

/// Runs `body` behind the panic boundary and turns its result into a status.
pub(crate) fn boundary(body: impl FnOnce() -> Result<(), Error>) -> coffer_status {
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

pub(crate) fn not_utf8(name: &'static str) -> Error {
    Error::InvalidArgument {
        name,
        reason: "is not UTF-8".into(),
    }
}

pub(crate) fn null_argument(name: &'static str) -> Error {
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
pub(crate) unsafe fn input<'a>(
    ptr: *const u8,
    len: usize,
    name: &'static str,
) -> Result<&'a [u8], Error> {
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
pub(crate) unsafe fn input_str<'a>(
    ptr: *const u8,
    len: usize,
    name: &'static str,
) -> Result<&'a str, Error> {
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
pub(crate) unsafe fn output(
    text: &str,
    out: *mut *mut c_char,
    len_out: *mut usize,
) -> Result<(), Error> {
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

pub(crate) fn check_out<T>(ptr: *mut T, name: &'static str) -> Result<(), Error> {
    if ptr.is_null() {
        Err(null_argument(name))
    } else {
        Ok(())
    }
}

pub(crate) fn today(yyyymmdd: u32) -> Result<time::Date, Error> {
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

pub(crate) const HANDLE_MAGIC: u64 = 0x436f_6666_6572_2131; // "Coffer!1"

pub(crate) const MAX_BATCH: usize = 100_000;

/// Borrows the Coffer behind a handle.
///
/// # Safety
/// `h` must be NULL or a handle from `coffer_open*` not yet closed. A closed handle is caught
/// while its memory has not been reused; after that, using it is undefined behaviour.
pub(crate) unsafe fn handle<'a>(h: *const coffer_t) -> Result<&'a Coffer, Error> {
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
pub(crate) fn number<T: std::str::FromStr>(text: &str, name: &'static str) -> Result<T, Error> {
    text.trim().parse().map_err(|_| Error::InvalidArgument {
        name,
        reason: "expected a decimal number".into(),
    })
}

pub(crate) fn open_with(
    path: &str,
    key: &MasterKey,
    options: Option<&str>,
) -> Result<Coffer, Error> {
    wire::open_json(path, key, options)
}

/// Opens with the key that `key` makes from its text argument.
///
/// # Safety
/// As `coffer_open`.
// Mirrors the C signature of the `coffer_open*` functions it serves.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn open_call(
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

/// One text argument: its pointer, its length, and its name for error messages.
pub(crate) type Arg = (*const u8, usize, &'static str);

/// The body of a function taking a handle and text arguments and giving one text output.
///
/// # Safety
/// `coffer` is NULL or a live handle; each argument pointer is NULL or readable for its length;
/// `out` and `out_len` are NULL or valid for writes.
pub(crate) unsafe fn text_fn<const N: usize>(
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
pub(crate) unsafe fn free_text_fn<const N: usize>(
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
pub(crate) unsafe fn unit_fn<const N: usize>(
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
pub(crate) unsafe fn number_fn<T, const N: usize>(
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
pub(crate) unsafe fn texts<'a, const N: usize>(args: [Arg; N]) -> Result<[&'a str; N], Error> {
    let mut out = [""; N];
    for (i, (ptr, len, name)) in args.into_iter().enumerate() {
        // SAFETY: forwarded contract.
        out[i] = unsafe { input_str(ptr, len, name) }?;
    }
    Ok(out)
}

pub(crate) fn z(s: String) -> Result<zeroize::Zeroizing<String>, Error> {
    Ok(zeroize::Zeroizing::new(s))
}

pub(crate) fn json_array(
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
