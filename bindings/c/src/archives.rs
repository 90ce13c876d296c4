//! Signed archive bundles: export, verification and restore.

use crate::ffi::*;
use crate::*;

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
