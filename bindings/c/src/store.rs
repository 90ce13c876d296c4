//! Opening and closing a store, and its public key.

use crate::ffi::*;
use crate::*;

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
