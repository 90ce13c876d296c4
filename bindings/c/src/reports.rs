//! Compliance reports and their rendering.

use crate::ffi::*;
use crate::*;

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
