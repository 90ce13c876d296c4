//! The audit trail: verification, checkpoints, export and subscribers.

use crate::ffi::*;
use crate::*;

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

/// The whole audit trail as JSON Lines, one line per event: each record of a batch entry on
/// a line of its own, with the batch's `seq` and its place in the batch (`item`, from 0), and
/// no line with a MAC. For reading and for a SIEM; [`coffer_audit_export`] is the trail to
/// keep as evidence.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_audit_export_expanded(
    coffer: *const coffer_t,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    // SAFETY: forwarded contract (see the function's documentation).
    unsafe {
        text_fn(coffer, [], out, out_len, |c: &Coffer, []: [&str; 0]| {
            z(wire::audit_export_expanded_text(c)?)
        })
    }
}

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
