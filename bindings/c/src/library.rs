//! The library itself: its version, status names, the last error, freeing strings, and a test hook.

use crate::ffi::*;
use crate::*;

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

/// Panics inside Rust on purpose and returns `COFFER_STATUS_INTERNAL`: it exists so that a test
/// suite can check that a panic is caught at the boundary instead of aborting the process. Not
/// in `coffer.h` (a test hook, not the API): the tests declare it themselves.
#[unsafe(no_mangle)]
pub extern "C" fn coffer_test_panic() -> coffer_status {
    boundary(|| -> Result<(), Error> { panic!("a deliberate panic, to test the boundary") })
}
