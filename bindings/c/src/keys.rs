//! Key rotation and retirement, backups and restores.

use crate::ffi::*;
use crate::*;

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
