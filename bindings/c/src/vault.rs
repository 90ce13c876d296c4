//! Sealing, revealing, searching, resealing and redacting envelopes, and opening one with explicit keys.

use crate::ffi::*;
use crate::*;

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
