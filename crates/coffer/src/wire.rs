//! The JSON forms of the facade's requests and results, shared by the C library, the Python
//! module and the command, so that every language reads and writes exactly the same shapes
//! (documented in `docs/C-API.md`).
//!
//! Results that hold plaintext (a [`View`]) come back in wiped buffers.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::coffer::{Access, Hold, IndexPlan, IndexToken, SweepReport, View};
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::policy::{AttrValue, Context, Principal, RecordFacts};

fn bad(what: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidArgument {
        name: what,
        reason: reason.into(),
    }
}

fn parse(text: &str, what: &'static str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| crate::record::json_error(what, &e, ""))
}

fn str_field(o: &Map<String, Value>, key: &str, what: &'static str) -> Result<Option<String>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(what, format!("`{key}` must be a string"))),
    }
}

/// Parses an RFC 3339 date-time.
pub fn parse_time(text: &str) -> Result<time::OffsetDateTime> {
    crate::clock::text::parse_instant(text).ok_or_else(|| {
        bad(
            "time",
            "expected an RFC 3339 date-time such as 2026-11-27T10:00:00+08:00",
        )
    })
}

/// Parses an ISO date (`YYYY-MM-DD`).
pub fn parse_date(text: &str) -> Result<time::Date> {
    crate::clock::text::parse_date(text).ok_or_else(|| bad("date", "expected a date as YYYY-MM-DD"))
}

/// An attribute value: a string, number, boolean, array of strings (a set), or `{"time": "…"}`.
fn attr(v: &Value, what: &'static str) -> Result<AttrValue> {
    Ok(match v {
        Value::String(s) => AttrValue::String(s.clone()),
        Value::Number(n) => AttrValue::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(b) => AttrValue::Bool(*b),
        Value::Array(items) => AttrValue::Set(
            items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad(what, "a set holds strings"))
                })
                .collect::<Result<_>>()?,
        ),
        Value::Object(o) if o.len() == 1 && o.get("time").is_some_and(Value::is_string) => {
            AttrValue::Time(parse_time(o["time"].as_str().unwrap_or_default())?)
        }
        _ => {
            return Err(bad(
                what,
                "an attribute is a string, number, boolean, array of strings or {\"time\": \"…\"}",
            ));
        }
    })
}

fn attrs(o: &Map<String, Value>, what: &'static str) -> Result<BTreeMap<String, AttrValue>> {
    match o.get("attributes") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| Ok((k.clone(), attr(v, what)?)))
            .collect(),
        Some(_) => Err(bad(what, "`attributes` must be an object")),
    }
}

fn only_keys(o: &Map<String, Value>, allowed: &[&str], what: &'static str) -> Result<()> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(bad(
            what,
            format!(
                "unknown key `{}`; expected {}",
                crate::record::truncate_for_message(k),
                allowed.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// Reads an access request:
/// `{"principal": {"id", "tenant", "roles": [..], "attributes": {..}}, "purpose",
///   "context": {"time", "destination_region", "ticket", "second_approver", "client", "attributes"},
///   "record": {"region", "attributes"}}`.
pub fn access_from_json(text: &str) -> Result<Access> {
    let v = parse(text, "access request")?;
    let o = v
        .as_object()
        .ok_or_else(|| bad("access", "an access request is a JSON object"))?;
    only_keys(o, &["principal", "purpose", "context", "record"], "access")?;
    let p = o
        .get("principal")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("access", "`principal` is required, an object"))?;
    only_keys(p, &["id", "tenant", "roles", "attributes"], "principal")?;
    let roles = match p.get("roles") {
        Some(Value::Array(r)) => r
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad("principal", "roles are strings"))
            })
            .collect::<Result<_>>()?,
        None => Vec::new(),
        _ => return Err(bad("principal", "`roles` must be an array")),
    };
    let principal = Principal {
        id: str_field(p, "id", "principal")?.ok_or_else(|| bad("principal", "`id` is required"))?,
        tenant: str_field(p, "tenant", "principal")?
            .ok_or_else(|| bad("principal", "`tenant` is required"))?,
        roles,
        attributes: attrs(p, "principal")?,
    };
    let purpose =
        str_field(o, "purpose", "access")?.ok_or_else(|| bad("access", "`purpose` is required"))?;
    let mut context = Context::default();
    if let Some(c) = o.get("context") {
        let c = c
            .as_object()
            .ok_or_else(|| bad("context", "`context` must be an object"))?;
        only_keys(
            c,
            &[
                "time",
                "destination_region",
                "ticket",
                "second_approver",
                "client",
                "attributes",
            ],
            "context",
        )?;
        context.time = str_field(c, "time", "context")?
            .map(|t| parse_time(&t))
            .transpose()?;
        context.destination_region = str_field(c, "destination_region", "context")?;
        context.ticket = str_field(c, "ticket", "context")?;
        context.second_approver = str_field(c, "second_approver", "context")?;
        context.client = str_field(c, "client", "context")?;
        context.attributes = attrs(c, "context")?;
    }
    let mut record = RecordFacts::default();
    if let Some(r) = o.get("record") {
        let r = r
            .as_object()
            .ok_or_else(|| bad("record", "`record` must be an object"))?;
        only_keys(r, &["region", "attributes"], "record")?;
        record.region = str_field(r, "region", "record")?;
        record.attributes = attrs(r, "record")?;
    }
    Ok(Access {
        principal,
        purpose,
        context,
        record,
    })
}

/// A view as JSON: `{"record", "policy_version", "audit_seq", "fields": {path: {"state":
/// "revealed" | "masked" | "denied" | "shredded", "value"?, "reason"?}}}`. Holds plaintext: the
/// buffer is wiped when dropped.
pub fn view_to_json(view: &View) -> Zeroizing<String> {
    #[derive(serde::Serialize)]
    struct FieldWire<'a> {
        state: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        value: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
    }
    #[derive(serde::Serialize)]
    struct ViewWire<'a> {
        record: &'a str,
        policy_version: &'a str,
        audit_seq: u64,
        fields: BTreeMap<&'a str, FieldWire<'a>>,
    }
    // Borrowed all the way down, into one buffer sized up front: no copy of a value is left
    // behind unwiped.
    let fields = view
        .fields
        .iter()
        .map(|(path, f)| {
            let (state, value, reason) = f.parts();
            (
                path.as_str(),
                FieldWire {
                    state,
                    value,
                    reason,
                },
            )
        })
        .collect();
    let wire = ViewWire {
        record: &view.record,
        policy_version: &view.policy_version,
        audit_seq: view.audit_seq,
        fields,
    };
    let estimate = 256
        + view
            .fields
            .iter()
            .map(|(p, f)| {
                let (_, value, reason) = f.parts();
                p.len() + 96 + value.map_or(0, |v| v.len() * 6) + reason.map_or(0, |r| r.len() * 2)
            })
            .sum::<usize>();
    let mut buf = Zeroizing::new(Vec::with_capacity(estimate));
    if serde_json::to_writer(&mut *buf, &wire).is_err() {
        buf.clear();
    }
    Zeroizing::new(String::from_utf8(std::mem::take(&mut *buf)).unwrap_or_default())
}

/// Reads a hold: `{"tenant", "subject"?, "category"?, "reason", "until"?: "YYYY-MM-DD",
/// "open_matter"?: bool}`.
pub fn hold_from_json(text: &str) -> Result<Hold> {
    let v = parse(text, "hold")?;
    let o = v
        .as_object()
        .ok_or_else(|| bad("hold", "a hold is a JSON object"))?;
    only_keys(
        o,
        &[
            "tenant",
            "subject",
            "category",
            "reason",
            "until",
            "open_matter",
        ],
        "hold",
    )?;
    Ok(Hold {
        tenant: str_field(o, "tenant", "hold")?
            .ok_or_else(|| bad("hold", "`tenant` is required"))?,
        subject: str_field(o, "subject", "hold")?,
        category: str_field(o, "category", "hold")?,
        reason: str_field(o, "reason", "hold")?.unwrap_or_default(),
        until: str_field(o, "until", "hold")?
            .map(|d| parse_date(&d))
            .transpose()?,
        open_matter: match o.get("open_matter") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("hold", "`open_matter` must be true or false")),
        },
    })
}

/// A sweep report as JSON: `{"destroyed": [..], "certificate"?, "proposed_list"?, "proposed":
/// [..], "held"}`.
pub fn sweep_to_json(r: &SweepReport) -> String {
    json!({
        "destroyed": r.destroyed,
        "certificate": r.certificate,
        "backup_exposure": r.backup_exposure,
        "proposed_list": r.proposed_list,
        "proposed": r.proposed,
        "held": r.held,
    })
    .to_string()
}

/// One redaction as JSON: `{"record", "changed", "shredded_categories", "clear_index",
/// "envelope": {..}}` (the envelope as the host stores it).
pub fn redaction_to_json(r: &crate::Redaction) -> Zeroizing<String> {
    let mut s = Zeroizing::new(serde_json::to_string(&r.summary()).unwrap_or_default());
    s.pop();
    s.push_str(",\"envelope\":");
    s.push_str(&r.envelope.to_json());
    s.push('}');
    s
}

/// [`crate::Coffer::redact_many`] over JSON: a JSON array of envelopes in, a JSON array of
/// redactions ([`redaction_to_json`]) out.
pub fn redact_many_json(
    c: &crate::Coffer,
    envelopes: &str,
    actor: &str,
) -> Result<Zeroizing<String>> {
    let envs = envelopes_from_json(envelopes, MAX_BATCH)?;
    let done = c.redact_many(&envs, actor)?;
    let mut out = Zeroizing::new(String::from("["));
    for (i, r) in done.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&redaction_to_json(r));
    }
    out.push(']');
    Ok(out)
}

/// Restore options from JSON: `{"actor": "..", "certificates": [<certificate>, ..],
/// "no_later_destructions": false}` (`certificates` and `no_later_destructions` optional).
pub fn restore_options_from_json(text: &str) -> Result<crate::RestoreOptions> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        actor: String,
        #[serde(default)]
        certificates: Vec<crate::Certificate>,
        #[serde(default)]
        no_later_destructions: bool,
    }
    let raw: Raw = serde_json::from_str(text)
        .map_err(|e| crate::record::json_error("restore options", &e, ""))?;
    Ok(crate::RestoreOptions {
        actor: raw.actor,
        certificates: raw.certificates,
        no_later_destructions: raw.no_later_destructions,
        manifest: None,
    })
}

/// [`crate::Coffer::restore`] over JSON: the options as [`restore_options_from_json`] reads
/// them, the report as JSON.
pub fn restore_json(
    backup: &str,
    target: &str,
    master: &crate::MasterKey,
    options: &str,
) -> Result<String> {
    let options = restore_options_from_json(options)?;
    let report = crate::Coffer::restore(backup, target, master, options)?;
    Ok(serde_json::to_string(&report).unwrap_or_default())
}

/// Blind-index tokens as JSON: `[{"epoch", "token"}]`.
pub fn tokens_to_json(tokens: &[IndexToken]) -> String {
    Value::Array(
        tokens
            .iter()
            .map(|t| json!({"epoch": t.epoch, "token": t.token}))
            .collect(),
    )
    .to_string()
}

/// A search answer as JSON: `{"field", "audit_seq", "tokens": [[{"epoch", "token"}]],
/// "withheld_subjects": [..]}`, one list of tokens per value, in the order asked.
pub fn search_answer_to_json(a: &crate::SearchAnswer) -> String {
    let tokens: Vec<Value> = a
        .tokens
        .iter()
        .map(|of_value| {
            Value::Array(
                of_value
                    .iter()
                    .map(|t| json!({"epoch": t.epoch, "token": t.token}))
                    .collect(),
            )
        })
        .collect();
    json!({
        "field": a.field,
        "audit_seq": a.audit_seq,
        "tokens": tokens,
        "withheld_subjects": a.withheld_subjects,
    })
    .to_string()
}

/// Reads a search request, `{"field": "id_documents[].number", "values": ["…", …]}` (or
/// `"value": "…"` for one), as field and values.
pub fn search_request_from_json(text: &str) -> Result<(String, Vec<String>)> {
    const WHAT: &str = "search";
    let v = parse(text, WHAT)?;
    let o = v
        .as_object()
        .ok_or_else(|| bad(WHAT, "expected a JSON object"))?;
    only_keys(o, &["field", "value", "values"], WHAT)?;
    let field = str_field(o, "field", WHAT)?.ok_or_else(|| bad(WHAT, "`field` is missing"))?;
    let values = match (o.get("value"), o.get("values")) {
        (Some(Value::String(one)), None) => vec![one.clone()],
        (None, Some(Value::Array(items))) => {
            if items.len() > crate::MAX_SEARCH_VALUES {
                return Err(Error::LimitExceeded {
                    what: "values in one search".into(),
                    limit: crate::MAX_SEARCH_VALUES,
                    unit: "items",
                });
            }
            items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad(WHAT, "`values` must be an array of strings"))
                })
                .collect::<Result<_>>()?
        }
        (Some(_), None) => return Err(bad(WHAT, "`value` must be a string")),
        (None, Some(_)) => return Err(bad(WHAT, "`values` must be an array of strings")),
        (Some(_), Some(_)) => return Err(bad(WHAT, "give `value` or `values`, not both")),
        (None, None) => return Err(bad(WHAT, "`value` or `values` is missing")),
    };
    Ok((field, values))
}

/// Searches as JSON: the access as for a reveal ([`access_from_json`]), the request as
/// [`search_request_from_json`] reads it; the answer as [`search_answer_to_json`] writes it.
pub fn search_json(c: &crate::Coffer, access: &str, request: &str) -> Result<String> {
    let access = access_from_json(access)?;
    let (field, values) = search_request_from_json(request)?;
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    Ok(search_answer_to_json(
        &c.search_many(&access, &field, &values)?,
    ))
}

/// An index plan as JSON.
pub fn plan_to_json(p: &IndexPlan) -> String {
    json!({
        "min_bits": p.min_bits, "max_bits": p.max_bits, "recommended_bits": p.recommended_bits,
        "expected_false_positives": p.expected_false_positives, "same_value_probability": p.same_value_probability,
    })
    .to_string()
}

/// Reads a JSON array of strings (e.g. envelopes, each as its JSON text) or of objects (each
/// re-serialised), bounded to `max` items.
pub fn array_items(text: &str, what: &'static str, max: usize) -> Result<Vec<String>> {
    if !text.trim_start().starts_with('[') {
        // Well-formed JSON of another shape, or not JSON at all: say which.
        parse(text, what)?;
        return Err(bad(what, "expected a JSON array"));
    }
    check_json_depth(text, what)?;
    // Each item is kept as the text it was given (or the string it holds): no tree is built,
    // and nothing is serialised again only to be parsed once more.
    let items: Vec<&serde_json::value::RawValue> =
        serde_json::from_str(text).map_err(|e| crate::record::json_error(what, &e, ""))?;
    if items.len() > max {
        return Err(Error::LimitExceeded {
            what: what.into(),
            limit: max,
            unit: "items",
        });
    }
    items
        .iter()
        .map(|raw| {
            let t = raw.get();
            if t.starts_with('"') {
                serde_json::from_str::<String>(t)
                    .map_err(|e| crate::record::json_error(what, &e, ""))
            } else {
                Ok(t.to_owned())
            }
        })
        .collect()
}

/// How deep JSON may nest: serde_json's own limit when it builds a tree, which reading items
/// as raw text does not apply.
const MAX_JSON_DEPTH: usize = 128;

/// Refuses JSON nested deeper than [`MAX_JSON_DEPTH`], in one pass over the text. A string is
/// passed over by searching for its next quote or backslash, not byte by byte (an envelope's
/// JSON is mostly base64 strings; the byte loop was a quarter of reading a batch of them).
/// Unterminated strings and other malformed text are left to the parser, which says where.
fn check_json_depth(text: &str, what: &'static str) -> Result<()> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                // To the closing quote: past each backslash and the byte it escapes.
                i += 1;
                loop {
                    let Some(k) = bytes
                        .get(i..)
                        .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
                    else {
                        return Ok(());
                    };
                    i += k;
                    if bytes[i] == b'"' {
                        break;
                    }
                    i += 2;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(Error::LimitExceeded {
                        what: format!("{what} nesting"),
                        limit: MAX_JSON_DEPTH,
                        unit: "levels",
                    });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Reads envelopes from a JSON array (of envelope objects or their JSON texts).
pub fn envelopes_from_json(text: &str, max: usize) -> Result<Vec<Envelope>> {
    array_items(text, "envelopes", max)?
        .iter()
        .map(|t| Envelope::from_json(t))
        .collect()
}

/// Results of a batch as JSON: `[{"ok": <value>} | {"error": {"code", "kind", "message"}}]`,
/// where each `ok` value is already JSON text.
pub fn results_to_json<T: AsRef<str>>(
    results: &[std::result::Result<T, Error>],
) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::from("["));
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match r {
            Ok(v) => {
                out.push_str("{\"ok\":");
                out.push_str(v.as_ref());
                out.push('}');
            }
            Err(e) => out.push_str(&json!({"error": {"code": e.code(), "kind": e.kind().name(), "message": e.to_string()}}).to_string()),
        }
    }
    out.push(']');
    out
}

/// Reads open options: `{"schema"?: "<TOML>", "policy"?: "<TOML>", "retention"?: "<TOML>",
/// "create"?: bool, "busy_timeout_ms"?: n, "data_key_cache"?: n}`. The policy and retention rules
/// are checked against the schema.
pub fn open_options_from_json(text: &str) -> Result<crate::coffer::OpenOptions> {
    let v = parse(text, "open options")?;
    let o = v
        .as_object()
        .ok_or_else(|| bad("options", "options are a JSON object"))?;
    only_keys(
        o,
        &[
            "schema",
            "policy",
            "retention",
            "create",
            "busy_timeout_ms",
            "data_key_cache",
        ],
        "options",
    )?;
    let mut opts = crate::coffer::OpenOptions::default();
    if let Some(s) = str_field(o, "schema", "options")? {
        opts.schema = crate::record::Schema::from_toml(&s)?;
    }
    if let Some(p) = str_field(o, "policy", "options")? {
        opts.policy = Some(crate::policy::Policy::from_toml(&p, &opts.schema)?);
    }
    if let Some(r) = str_field(o, "retention", "options")? {
        opts.retention = Some(crate::retention::Retention::from_toml(&r, &opts.schema)?);
    }
    match o.get("create") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => opts.create = *b,
        Some(_) => return Err(bad("options", "`create` must be true or false")),
    }
    if let Some(n) = o.get("busy_timeout_ms") {
        let ms = n
            .as_u64()
            .filter(|ms| *ms <= 600_000)
            .ok_or_else(|| bad("options", "`busy_timeout_ms` is 0 to 600000"))?;
        opts.busy_timeout = std::time::Duration::from_millis(ms);
    }
    if let Some(n) = o.get("data_key_cache") {
        opts.data_key_cache = n
            .as_u64()
            .filter(|n| *n <= 10_000_000)
            .ok_or_else(|| bad("options", "`data_key_cache` is 0 to 10000000"))?
            as usize;
    }
    Ok(opts)
}

/// Opens an envelope with explicit keys, outside any store (see
/// [`crate::envelope::open_with_keys`]): `keys` is `{"envelope_mac_key": hex, "data_keys":
/// [{"category", "version", "key": hex}]}`, the shape of the known-answer vectors (other keys are
/// ignored, so a vector case may be passed whole). The answer is `{path: plaintext}` in a wiped
/// buffer.
pub fn open_with_keys_json(envelope: &str, keys: &str) -> Result<Zeroizing<String>> {
    let v = parse(keys, "keys")?;
    let o = v
        .as_object()
        .ok_or_else(|| bad("keys", "keys are a JSON object"))?;
    let hex = |text: &str, what: &'static str| {
        crate::crypto::from_hex(text)
            .map(Zeroizing::new)
            .ok_or_else(|| bad(what, "expected hexadecimal"))
    };
    let mac_key = hex(
        &str_field(o, "envelope_mac_key", "keys")?
            .ok_or_else(|| bad("keys", "`envelope_mac_key` is required"))?,
        "envelope_mac_key",
    )?;
    let mut data_keys = BTreeMap::new();
    let items = o
        .get("data_keys")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("keys", "`data_keys` is required, an array"))?;
    for item in items {
        let k = item
            .as_object()
            .ok_or_else(|| bad("data_keys", "each data key is an object"))?;
        let category = str_field(k, "category", "data_keys")?
            .ok_or_else(|| bad("data_keys", "`category` is required"))?;
        let version = k
            .get("version")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad("data_keys", "`version` is a positive integer"))?;
        let key = hex(
            &str_field(k, "key", "data_keys")?
                .ok_or_else(|| bad("data_keys", "`key` is required"))?,
            "data_keys",
        )?;
        data_keys.insert((category, version), key.to_vec());
    }
    let opened = crate::envelope::open_with_keys(envelope, &mac_key, &data_keys);
    for key in data_keys.values_mut() {
        zeroize::Zeroize::zeroize(key);
    }
    let mut out = Zeroizing::new(String::from("{"));
    for (i, (path, value)) in opened?.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(path.clone()).to_string());
        out.push(':');
        let quoted = Zeroizing::new(serde_json::to_string(value.expose()).unwrap_or_default());
        out.push_str(&quoted);
    }
    out.push('}');
    Ok(out)
}

/// The most records or envelopes one batch call accepts.
pub const MAX_BATCH: usize = 100_000;

/// Seals a record given as JSON; the envelope as JSON. The C library's and the Python module's
/// `seal` are this call behind their boundary.
pub fn seal_json(c: &crate::Coffer, record: &str, actor: &str) -> Result<Zeroizing<String>> {
    c.seal(crate::record::CustomerRecord::from_json(record)?, actor)
        .map(|e| e.to_json())
}

/// Seals a JSON array of records with one audit transaction: [`results_to_json`] of the
/// envelopes, one per record in order (a record that does not parse or validate is an `error`
/// item; the others are still sealed).
pub fn seal_many_json(c: &crate::Coffer, records: &str, actor: &str) -> Result<Zeroizing<String>> {
    let parsed: Vec<Result<crate::record::CustomerRecord>> =
        array_items(records, "records", MAX_BATCH)?
            .iter()
            .map(|t| crate::record::CustomerRecord::from_json(t))
            .collect();
    let valid: Vec<crate::record::CustomerRecord> = parsed
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    let mut sealed = c.seal_many(valid, actor)?.into_iter();
    let results: Vec<Result<Zeroizing<String>>> = parsed
        .into_iter()
        .map(|p| match p {
            Err(e) => Err(e),
            Ok(_) => sealed
                .next()
                .unwrap_or_else(|| {
                    Err(Error::Internal {
                        message: "a batch returned fewer results than records".into(),
                    })
                })
                .map(|e| e.to_json()),
        })
        .collect();
    Ok(results_to_json(&results))
}

/// Reveals an envelope (JSON) to an access request (JSON): [`view_to_json`] of the view.
pub fn reveal_json(c: &crate::Coffer, envelope: &str, access: &str) -> Result<Zeroizing<String>> {
    let env = c.open_envelope(envelope)?;
    c.reveal(&env, &access_from_json(access)?)
        .map(|v| view_to_json(&v))
}

/// Reveals a JSON array of envelopes to one access request with one audit transaction: a JSON
/// array of views.
pub fn reveal_many_json(
    c: &crate::Coffer,
    envelopes: &str,
    access: &str,
) -> Result<Zeroizing<String>> {
    let envs = envelopes_from_json(envelopes, MAX_BATCH)?;
    let views = c.reveal_many(&envs, &access_from_json(access)?)?;
    let mut out = Zeroizing::new(String::from("["));
    for (i, v) in views.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&view_to_json(v));
    }
    out.push(']');
    Ok(out)
}

/// Opens a store with open options given as JSON ([`open_options_from_json`]; `None` for the
/// defaults).
pub fn open_json(
    path: &str,
    master: &crate::MasterKey,
    options: Option<&str>,
) -> Result<crate::Coffer> {
    let opts = match options {
        Some(o) => open_options_from_json(o)?,
        None => crate::coffer::OpenOptions::default(),
    };
    crate::Coffer::open_with(path, master, opts)
}

/// Verifies the audit chain, and that it still reaches `checkpoint` (JSON; `None` or blank for
/// none): the report as JSON.
pub fn audit_verify_json(c: &crate::Coffer, checkpoint: Option<&str>) -> Result<String> {
    let cp = match checkpoint.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => Some(crate::audit::Checkpoint::from_json(t)?),
        None => None,
    };
    serde_json::to_string(&c.audit_verify(cp.as_ref())?).map_err(|e| Error::Internal {
        message: format!("audit report: {e}"),
    })
}

/// The whole audit trail as JSON Lines.
pub fn audit_export_text(c: &crate::Coffer) -> Result<String> {
    export_text(|buf| c.audit_export(buf))
}

/// The audit trail as JSON Lines, one line per event (see
/// [`Coffer::audit_export_expanded`](crate::Coffer::audit_export_expanded)).
pub fn audit_export_expanded_text(c: &crate::Coffer) -> Result<String> {
    export_text(|buf| c.audit_export_expanded(buf))
}

/// What an export writes, as text.
fn export_text(write: impl FnOnce(&mut Vec<u8>) -> Result<u64>) -> Result<String> {
    let mut buf = Vec::new();
    write(&mut buf)?;
    String::from_utf8(buf).map_err(|_| Error::Internal {
        message: "the audit export is not UTF-8".into(),
    })
}

/// Makes a report from a request (JSON), returning the report's JSON (tagged by `report`):
///
/// - `{"report": "subject", "access": {..}, "tenant", "subject", "envelopes": [..]}`
/// - `{"report": "incident", "access": {..}, "query": {"tenant", "principal", "client", "from",
///   "until", "fields": [..]}}`
/// - `{"report": "access_review", "access": {..}, "since": "2026-01-01"}`
/// - `{"report": "check", "access": {..}, "options": {"max_key_age_days", "max_list_age_days",
///   "checkpoint_interval_days", "max_backup_exposure_days"}}`
///
/// Each also takes `"accept_broken_trail": true` and `"checkpoint": {..}` (a signed audit
/// checkpoint). A subject report may hold revealed values: the buffer is wiped when dropped.
pub fn report_json(c: &crate::Coffer, request: &str) -> Result<Zeroizing<String>> {
    use crate::report::{CheckOptions, IncidentQuery, Report, ReportOptions};
    let v = parse(request, "report request")?;
    let o = v
        .as_object()
        .ok_or_else(|| bad("report", "a report request is a JSON object"))?;
    let kind = o.get("report").and_then(Value::as_str).ok_or_else(|| {
        bad(
            "report",
            "`report` is required: subject, incident, access_review or check",
        )
    })?;
    let common = ["report", "access", "accept_broken_trail", "checkpoint"];
    let extra: &[&str] = match kind {
        "subject" => &["tenant", "subject", "envelopes"],
        "incident" => &["query"],
        "access_review" => &["since"],
        "check" => &["options"],
        other => {
            return Err(bad(
                "report",
                format!("`{other}` is not a report; use subject, incident, access_review or check"),
            ));
        }
    };
    let allowed: Vec<&str> = common.iter().chain(extra).copied().collect();
    only_keys(o, &allowed, "report")?;
    let access = access_from_json(
        &o.get("access")
            .ok_or_else(|| {
                bad(
                    "report",
                    "`access` is required: who asks, in which roles, for what purpose",
                )
            })?
            .to_string(),
    )?;
    let options = ReportOptions {
        accept_broken_trail: match o.get("accept_broken_trail") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("report", "`accept_broken_trail` must be true or false")),
        },
        checkpoint: match o.get("checkpoint") {
            None | Some(Value::Null) => None,
            Some(cp) => Some(crate::audit::Checkpoint::from_json(&cp.to_string())?),
        },
    };
    let text = |name: &'static str| -> Result<String> {
        o.get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| bad("report", format!("`{name}` is required, a string")))
    };
    let report = match kind {
        "subject" => {
            let envelopes = match o.get("envelopes") {
                None | Some(Value::Null) => Vec::new(),
                Some(a @ Value::Array(_)) => envelopes_from_json(&a.to_string(), MAX_BATCH)?,
                Some(_) => return Err(bad("report", "`envelopes` must be an array of envelopes")),
            };
            Report::Subject(c.subject_report(
                &text("tenant")?,
                &text("subject")?,
                &envelopes,
                &access,
                &options,
            )?)
        }
        "incident" => {
            let query: IncidentQuery = match o.get("query") {
                None => IncidentQuery::default(),
                Some(q) => {
                    serde_json::from_value(q.clone()).map_err(|e| bad("query", e.to_string()))?
                }
            };
            Report::Incident(c.affected(&query, &access, &options)?)
        }
        "access_review" => {
            let since = crate::coffer::parse_instant("since", &text("since")?)?;
            Report::AccessReview(c.access_review(since, &access, &options)?)
        }
        _ => {
            let check: CheckOptions = match o.get("options") {
                None => CheckOptions::default(),
                Some(q) => {
                    serde_json::from_value(q.clone()).map_err(|e| bad("options", e.to_string()))?
                }
            };
            Report::Check(c.compliance_check(&check, &access, &options)?)
        }
    };
    Ok(report.to_json())
}

/// An instant from RFC 3339 text or an ISO date (its midnight UTC), as the report requests take
/// them; `name` names the argument in the error.
pub fn parse_instant_text(name: &'static str, text: &str) -> Result<time::OffsetDateTime> {
    crate::coffer::parse_instant(name, text)
}

/// Renders a report's JSON as `json`, `markdown` or `html`.
pub fn render_report_json(report: &str, format: &str) -> Result<Zeroizing<String>> {
    crate::report::Report::from_json(report)?.render(format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn array_items_keep_each_item_as_given_and_bound_the_nesting() {
        let items = array_items(r#"[{"a":"[[[\"{"}, "text \"q\"", 3]"#, "items", 10).unwrap();
        assert_eq!(items, [r#"{"a":"[[[\"{"}"#, "text \"q\"", "3"]);
        let ok = format!("[{}{}]", "[".repeat(127), "]".repeat(127));
        assert_eq!(array_items(&ok, "items", 10).unwrap().len(), 1);
        let deep = format!("[{}{}]", "[".repeat(128), "]".repeat(128));
        let e = array_items(&deep, "items", 10).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
        assert_eq!(
            array_items("{}", "items", 10).unwrap_err().to_string(),
            "invalid argument `items`: expected a JSON array"
        );
        assert_eq!(
            array_items("[1,", "items", 10).unwrap_err().kind(),
            ErrorKind::Malformed
        );
    }

    /// The depth check as it was, byte by byte: the reference for the one that skips strings.
    fn depth_byte_by_byte(text: &str) -> bool {
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        for &b in text.as_bytes() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_JSON_DEPTH {
                        return false;
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        true
    }

    #[test]
    fn the_depth_check_skips_strings_as_the_byte_loop_did() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let mut texts = vec![
            String::new(),
            "\"".into(),
            "\"\\".into(),
            "\"\\\"".into(),
            "[\"a\\\\\"]".into(),
            "[\"\\\"[[\", [1]]".into(),
            "{\"k\":\"v\\u0022[\"}".into(),
            "[\"é 中 \\\\\", {\"x\": [\"]]]\"]}]".into(),
            deep(128),
            deep(129),
        ];
        // Deep nesting hidden in strings, and behind strings that end in escapes.
        for n in [127, 128, 129] {
            texts.push(format!("[\"{}\"]", "[".repeat(300)));
            texts.push(format!("[\"\\\\\",{}]", deep(n)));
            texts.push(format!("[\"\\\"\",{}]", deep(n)));
            texts.push(format!("\"{}\\", deep(n)));
            texts.push(format!("{}\"", deep(n)));
        }
        for text in &texts {
            assert_eq!(
                check_json_depth(text, "items").is_ok(),
                depth_byte_by_byte(text),
                "{text:?}"
            );
        }
        // Every prefix and suffix of a text with escapes and nesting, so that strings end,
        // or fail to, at every byte.
        let mixed = format!("[{{\"a\\\\\":\"b\\\"c\"}}, \"\\u005b\", {}]", deep(127));
        for i in 0..=mixed.len() {
            for part in [&mixed[..i], &mixed[i..]] {
                assert_eq!(
                    check_json_depth(part, "items").is_ok(),
                    depth_byte_by_byte(part),
                    "{part:?}"
                );
            }
        }
    }

    const ACCESS: &str = r#"{"principal":{"id":"u1","tenant":"firm-a","roles":["accountant"],
        "attributes":{"clearance":3,"teams":["tax"],"since":{"time":"2026-01-01T00:00:00Z"}}},
        "purpose":"bookkeeping","context":{"time":"2026-11-27T10:00:00+08:00","ticket":"T-1"},
        "record":{"region":"CN","attributes":{"vip":true}}}"#;

    #[test]
    fn access_request_reads_every_part() {
        let a = access_from_json(ACCESS).unwrap();
        assert_eq!(a.principal.id, "u1");
        assert_eq!(a.principal.roles, ["accountant"]);
        assert_eq!(a.principal.attributes.len(), 3);
        assert_eq!(a.purpose, "bookkeeping");
        assert_eq!(a.context.ticket.as_deref(), Some("T-1"));
        assert!(a.context.time.is_some());
        assert_eq!(a.record.region.as_deref(), Some("CN"));
        assert_eq!(a.record.attributes.len(), 1);
    }

    #[test]
    fn malformed_requests_say_what_and_where() {
        for (text, needle) in [
            ("{", "access request"),
            ("[]", "JSON object"),
            (r#"{"purpose":"x"}"#, "`principal` is required"),
            (
                r#"{"principal":{"id":"u","tenant":"t"},"purpose":"x","extra":1}"#,
                "unknown key `extra`",
            ),
            (
                r#"{"principal":{"id":"u","tenant":"t","roles":"admin"},"purpose":"x"}"#,
                "`roles` must be an array",
            ),
            (
                r#"{"principal":{"id":"u","tenant":"t"}}"#,
                "`purpose` is required",
            ),
            (
                r#"{"principal":{"id":"u","tenant":"t"},"purpose":"x","context":{"time":"noon"}}"#,
                "RFC 3339",
            ),
        ] {
            let e = access_from_json(text).unwrap_err();
            assert!(
                matches!(e.kind(), ErrorKind::InvalidArgument | ErrorKind::Malformed),
                "{text}: {e:?}"
            );
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn arrays_are_bounded_and_batch_results_keep_their_order() {
        assert_eq!(
            array_items(r#"["a",{"b":1}]"#, "items", 2).unwrap(),
            ["a", r#"{"b":1}"#]
        );
        let e = array_items(r#"["a","b","c"]"#, "items", 2).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded);
        assert!(array_items(r#"{"a":1}"#, "items", 2).is_err());
        let out = results_to_json::<String>(&[
            Ok("1".into()),
            Err(Error::NotFound {
                what: "record".into(),
            }),
        ]);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v[0]["ok"], 1);
        assert_eq!(v[1]["error"]["kind"], "not_found");
    }

    #[test]
    fn open_options_check_their_ranges() {
        let o = open_options_from_json(r#"{"create":true,"busy_timeout_ms":250}"#).unwrap();
        assert!(o.create);
        assert_eq!(o.busy_timeout, std::time::Duration::from_millis(250));
        for text in [
            r#"{"create":"yes"}"#,
            r#"{"busy_timeout_ms":-1}"#,
            r#"{"busy_timeout_ms":600001}"#,
            r#"{"data_key_cache":1e12}"#,
            r#"{"schema":"not = [toml"}"#,
            r#"{"colour":"blue"}"#,
        ] {
            assert!(open_options_from_json(text).is_err(), "{text}");
        }
    }

    #[test]
    fn dates_and_times_are_strict() {
        assert!(parse_date("2026-11-27").is_ok());
        assert!(parse_date("27/11/2026").is_err());
        assert!(parse_time("2026-11-27T10:00:00Z").is_ok());
        assert!(parse_time("2026-11-27 10:00").is_err());
    }
}
