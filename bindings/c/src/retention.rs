//! Retention: lifecycle events, holds, erasure, sweeps, destruction lists and certificates.

use crate::ffi::*;
use crate::*;

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
