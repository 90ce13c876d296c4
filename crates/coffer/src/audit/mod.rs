//! The tamper-evident audit trail.
//!
//! Each entry is canonical JSON; `mac = HMAC(audit key, previous mac ‖ seq ‖ entry)`.
//! [`verify`] walks the chain and names the first entry that was changed, removed, inserted or
//! reordered; a signed [`Checkpoint`] kept outside the database also exposes a truncated tail.
//! Entries hold paths, ids, rule ids and outcomes, never a field's value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crypto::{MacKey, b64url, from_b64url, verify_signature};
use crate::error::{Error, Result};
use crate::store::AuditRow;

/// One audit entry (without its position and MAC, which the store assigns).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When (RFC 3339, from the Coffer's clock).
    pub time: String,
    /// What happened: `seal`, `reveal`, `search`, `key.create`, `key.rotate`, `policy.load`,
    /// `rate_limit.exceeded`, `audit.checkpoint`, …
    pub kind: String,
    /// Who (the principal or actor id the host gave).
    pub actor: String,
    /// The tenant concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The record concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// The data subject concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The purpose of an access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The policy version that decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
    /// Field paths and what happened to each (`reveal`, `mask:phone`, `deny:no_matching_allow`,
    /// `sealed`, `shredded`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// The rules that determined the decision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// Other facts (roles, key versions, counts, the reason of a denial).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub detail: BTreeMap<String, String>,
}

impl AuditEntry {
    /// A new entry of `kind` by `actor` at `time`.
    pub fn new(kind: &str, actor: &str, time: &str) -> Self {
        AuditEntry {
            kind: kind.into(),
            actor: actor.into(),
            time: time.into(),
            ..Default::default()
        }
    }

    /// The canonical JSON that the chain MAC covers: fixed field order, sorted maps, no spaces.
    pub fn canonical(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The suffix of a batch entry's kind: `seal.batch` stands for one `seal` entry per record.
pub const BATCH_SUFFIX: &str = ".batch";

/// The key in a batch entry's `detail` that holds the records (see [`expand`]).
pub const BATCH_DETAIL: &str = "batch";

/// Collects the per-record parts of entries that share their head (time, kind, actor, tenant,
/// purpose, policy version) into one batch entry: each distinct `fields` map, `rules` list and
/// `detail` map is written once, and each record as `[record, subject, fields, rules,
/// detail]` (indexes into those lists). A batch costs a few dozen bytes a record instead of
/// the several hundred that one entry a record repeats. (An entry without a record, such as
/// `key.create`'s, has `null` in its place.)
#[derive(Clone, Default)]
pub(crate) struct BatchBuilder {
    fields: Interned,
    rules: Interned,
    details: Interned,
    records: String,
}

/// Distinct JSON texts in first-seen order.
#[derive(Clone, Default)]
struct Interned {
    texts: Vec<String>,
    index: crate::HashMap<String, usize>,
    /// The text the previous call gave, compared first: a batch's records mostly repeat
    /// their neighbour's text, and a comparison is cheaper than hashing it.
    last: Option<usize>,
}

impl Interned {
    fn intern(&mut self, text: &str) -> usize {
        if let Some(i) = self.last
            && self.texts[i] == text
        {
            return i;
        }
        let i = match self.index.get(text) {
            Some(&i) => i,
            None => {
                self.texts.push(text.to_owned());
                self.index.insert(text.to_owned(), self.texts.len() - 1);
                self.texts.len() - 1
            }
        };
        self.last = Some(i);
        i
    }

    fn write(&self, out: &mut String) {
        out.push('[');
        for (i, t) in self.texts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(t);
        }
        out.push(']');
    }
}

/// `s` as a JSON string (quoted and escaped as `serde_json` writes it in canonical text).
fn json_str(s: &str) -> String {
    // A string always serialises.
    serde_json::to_string(s).unwrap_or_default()
}

impl BatchBuilder {
    /// Adds one record's entry, given as its parts' canonical JSON: `fields` an object of
    /// strings, `rules` an array of strings, `detail` an object of strings (`{}` and `[]` when
    /// empty).
    pub(crate) fn push(
        &mut self,
        record: Option<&str>,
        subject: Option<&str>,
        fields: &str,
        rules: &str,
        detail: &str,
    ) {
        let (f, r, d) = (
            self.fields.intern(fields),
            self.rules.intern(rules),
            self.details.intern(detail),
        );
        if !self.records.is_empty() {
            self.records.push(',');
        }
        self.records.push('[');
        for (i, id) in [record, subject].into_iter().enumerate() {
            if i > 0 {
                self.records.push(',');
            }
            match id {
                Some(id) => self.records.push_str(&json_str(id)),
                None => self.records.push_str("null"),
            }
        }
        for i in [f, r, d] {
            self.records.push(',');
            self.records.push_str(itoa::Buffer::new().format(i));
        }
        self.records.push(']');
    }

    /// The batch entry: `head` (its kind the records' own, `seal` or `reveal`) with `.batch`
    /// added to its kind and the records in `detail.batch`.
    pub(crate) fn finish(self, mut head: AuditEntry) -> AuditEntry {
        let mut body = String::with_capacity(self.records.len() + 256);
        body.push_str("{\"fields\":");
        self.fields.write(&mut body);
        body.push_str(",\"rules\":");
        self.rules.write(&mut body);
        body.push_str(",\"details\":");
        self.details.write(&mut body);
        body.push_str(",\"records\":[");
        body.push_str(&self.records);
        body.push_str("]}");
        head.kind.push_str(BATCH_SUFFIX);
        head.detail.insert(BATCH_DETAIL.into(), body);
        head
    }
}

/// A call's audit entries grouped by tenant: a tenant with two or more records in the call gets
/// one batch entry for them (its records in the call's order), a tenant's only record its own
/// plain entry. Seals, reveals and key creations all group this way.
pub(crate) struct TenantBatches<'a> {
    counts: crate::HashMap<&'a str, usize>,
    batches: BTreeMap<&'a str, (BatchBuilder, Vec<usize>)>,
}

impl<'a> TenantBatches<'a> {
    /// For a call whose records belong to `tenants` (one item per record).
    pub(crate) fn new(tenants: impl IntoIterator<Item = &'a str>) -> Self {
        let mut counts = crate::HashMap::default();
        for t in tenants {
            *counts.entry(t).or_default() += 1;
        }
        TenantBatches {
            counts,
            batches: BTreeMap::new(),
        }
    }

    /// Whether `tenant`'s records go into a batch entry (rather than one entry each).
    pub(crate) fn batched(&self, tenant: &str) -> bool {
        self.counts.get(tenant).copied().unwrap_or(0) >= 2
    }

    /// Adds record `item` of the call to its tenant's batch (see [`BatchBuilder::push`]).
    #[allow(clippy::too_many_arguments)] // the builder's five parts, plus where they go
    pub(crate) fn push(
        &mut self,
        tenant: &'a str,
        item: usize,
        record: Option<&str>,
        subject: Option<&str>,
        fields: &str,
        rules: &str,
        detail: &str,
    ) {
        let (b, items) = self.batches.entry(tenant).or_default();
        b.push(record, subject, fields, rules, detail);
        items.push(item);
    }

    /// Each tenant's batch entry as canonical text, `head` (kind, actor, time, and purpose and
    /// policy version where they apply) with the tenant set, and the call's items it holds.
    pub(crate) fn finish(self, head: &AuditEntry) -> Vec<(String, Vec<usize>)> {
        self.batches
            .into_iter()
            .map(|(tenant, (b, items))| {
                let mut h = head.clone();
                h.tenant = Some(tenant.to_owned());
                (b.finish(h).canonical(), items)
            })
            .collect()
    }
}

/// One record of a batch: `[record, subject, fields index, rules index, detail index]`.
type BatchRecord = (Option<String>, Option<String>, usize, usize, usize);

/// The records of a batch entry, as stored in its `detail.batch`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    fields: Vec<BTreeMap<String, String>>,
    rules: Vec<Vec<String>>,
    details: Vec<BTreeMap<String, String>>,
    records: Vec<BatchRecord>,
}

/// The entries an entry stands for: a batch entry (kind `seal.batch`, `reveal.batch`) gives
/// back one entry per record, in order, each exactly the entry that one record alone would
/// have written (kind `seal` or `reveal`; the batch's time, actor, tenant, purpose and policy
/// version; the record's own fields, rules and detail). Any other entry stands for itself.
///
/// Everything that reads the trail by record (reports, subscribers) reads it through this.
/// A batch whose body does not parse is an integrity error: its MAC covers it, so only a
/// forged row can hold one, and `verify` names it.
pub fn expand(entry: &AuditEntry) -> Result<Vec<AuditEntry>> {
    let Some(kind) = entry.kind.strip_suffix(BATCH_SUFFIX) else {
        return Ok(vec![entry.clone()]);
    };
    let bad = || crate::crypto::integrity("audit batch entry");
    let body: BatchBody = entry
        .detail
        .get(BATCH_DETAIL)
        .and_then(|b| serde_json::from_str(b).ok())
        .ok_or_else(bad)?;
    body.records
        .into_iter()
        .map(|(record, subject, f, r, d)| {
            Ok(AuditEntry {
                time: entry.time.clone(),
                kind: kind.to_owned(),
                actor: entry.actor.clone(),
                tenant: entry.tenant.clone(),
                record,
                subject,
                purpose: entry.purpose.clone(),
                policy_version: entry.policy_version.clone(),
                fields: body.fields.get(f).cloned().ok_or_else(bad)?,
                rules: body.rules.get(r).cloned().ok_or_else(bad)?,
                detail: body.details.get(d).cloned().ok_or_else(bad)?,
            })
        })
        .collect()
}

/// A stored row as the rows of the entries it stands for (see [`expand`]), each with the
/// row's `seq` and MAC and its entry's canonical text; `None` for a row that is not a batch
/// (the common case, found without parsing). A batch that does not expand gives one row with
/// an empty entry, which readers count as unreadable.
///
/// Reports read a million entries this way, so each record's text is put together from
/// pieces written once per batch (the shared fields, each distinct fields map, rules list and
/// detail map), not serialised afresh; it is the same text as [`AuditEntry::canonical`] of
/// the record's expanded entry.
pub(crate) fn expand_row(row: &AuditRow) -> Option<Vec<AuditRow>> {
    if !row.entry.contains(".batch\"") {
        return None;
    }
    let entry: AuditEntry = serde_json::from_str(&row.entry).ok()?;
    if !entry.kind.ends_with(BATCH_SUFFIX) {
        return None;
    }
    let texts = expanded_texts(&entry).unwrap_or_else(|| vec![String::new()]);
    Some(
        texts
            .into_iter()
            .map(|entry| AuditRow {
                seq: row.seq,
                entry,
                mac: row.mac.clone(),
            })
            .collect(),
    )
}

/// The canonical texts of a batch entry's records, in order; `None` if it does not expand.
fn expanded_texts(entry: &AuditEntry) -> Option<Vec<String>> {
    let kind = entry.kind.strip_suffix(BATCH_SUFFIX)?;
    let body: BatchBody = serde_json::from_str(entry.detail.get(BATCH_DETAIL)?).ok()?;
    let json = json_str;
    // The canonical field order: time, kind, actor, tenant, record, subject, purpose,
    // policy_version, fields, rules, detail; absent and empty ones left out.
    let mut head = format!(
        "{{\"time\":{},\"kind\":{},\"actor\":{}",
        json(&entry.time),
        json(kind),
        json(&entry.actor)
    );
    if let Some(t) = &entry.tenant {
        head.push_str(&format!(",\"tenant\":{}", json(t)));
    }
    let mut middle = String::new();
    if let Some(p) = &entry.purpose {
        middle.push_str(&format!(",\"purpose\":{}", json(p)));
    }
    if let Some(v) = &entry.policy_version {
        middle.push_str(&format!(",\"policy_version\":{}", json(v)));
    }
    fn piece<T: Serialize>(name: &str, value: &T, empty: bool) -> String {
        if empty {
            String::new()
        } else {
            format!(
                ",\"{name}\":{}",
                serde_json::to_string(value).unwrap_or_default()
            )
        }
    }
    let fields: Vec<String> = body
        .fields
        .iter()
        .map(|f| piece("fields", f, f.is_empty()))
        .collect();
    let rules: Vec<String> = body
        .rules
        .iter()
        .map(|r| piece("rules", r, r.is_empty()))
        .collect();
    let details: Vec<String> = body
        .details
        .iter()
        .map(|d| piece("detail", d, d.is_empty()))
        .collect();
    body.records
        .iter()
        .map(|(record, subject, f, r, d)| {
            let (f, r, d) = (fields.get(*f)?, rules.get(*r)?, details.get(*d)?);
            let mut out =
                String::with_capacity(head.len() + middle.len() + f.len() + r.len() + d.len() + 64);
            out.push_str(&head);
            if let Some(id) = record {
                out.push_str(",\"record\":");
                out.push_str(&json(id));
            }
            if let Some(id) = subject {
                out.push_str(",\"subject\":");
                out.push_str(&json(id));
            }
            out.push_str(&middle);
            out.push_str(f);
            out.push_str(r);
            out.push_str(d);
            out.push('}');
            Some(out)
        })
        .collect()
}

/// One line of an expanded export ([`Coffer::audit_export_expanded`](crate::Coffer)): one
/// record's entry, the `seq` of the stored entry it comes from and, for a batch entry's
/// records, its place in the batch (from 0). No MAC: the chain's is over the stored entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct ExpandedLine {
    pub(crate) seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) item: Option<usize>,
    #[serde(flatten)]
    pub(crate) entry: AuditEntry,
}

/// An audit entry with its place in the chain, as exported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoggedEntry {
    /// Its position, from 1.
    pub seq: u64,
    /// Its chain MAC (base64url).
    pub mac: String,
    /// The entry.
    #[serde(flatten)]
    pub entry: AuditEntry,
}

/// The chain MAC of one entry.
pub(crate) fn chain_mac(key: &MacKey, prev: &[u8], seq: u64, entry: &str) -> [u8; 32] {
    key.sign(&[
        b"coffer/v1/audit",
        prev,
        &seq.to_be_bytes(),
        entry.as_bytes(),
    ])
}

fn chain_ok(key: &MacKey, prev: &[u8], seq: u64, row: &AuditRow) -> bool {
    key.verify_with(
        |w| {
            for part in [
                &b"coffer/v1/audit"[..],
                prev,
                &seq.to_be_bytes(),
                row.entry.as_bytes(),
            ] {
                w.write(part);
            }
        },
        &row.mac,
    )
}

/// How the chain was broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tampering {
    /// The entry (or its MAC) at `seq` was changed.
    Changed,
    /// The entry at `seq` was removed.
    Removed,
    /// An entry was inserted at `seq`.
    Inserted,
    /// The entry at `seq` was swapped with a neighbour.
    Reordered,
    /// Entries after `seq` were cut off (seen against a checkpoint).
    Truncated,
}

impl Tampering {
    /// The stable name: `changed`, `removed`, `inserted`, `reordered`, `truncated`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Changed => "changed",
            Self::Removed => "removed",
            Self::Inserted => "inserted",
            Self::Reordered => "reordered",
            Self::Truncated => "truncated",
        }
    }
}

impl std::fmt::Display for Tampering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of verifying the audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Entries read.
    pub entries: u64,
    /// The last sequence number read.
    pub last_seq: u64,
    /// Whether the chain is intact (and reaches the checkpoint, if one was given).
    pub intact: bool,
    /// The first problem: where, and what kind.
    pub first_problem: Option<(u64, Tampering)>,
    /// Whether a checkpoint was checked.
    pub checkpoint_checked: bool,
}

/// Walks the chain. Reads the rows in order from `next_batch`, which yields batches.
pub(crate) fn verify(
    key: &MacKey,
    next_batch: impl FnMut(u64) -> Result<Vec<AuditRow>>,
    checkpoint: Option<&Checkpoint>,
) -> Result<AuditReport> {
    verify_visit(key, next_batch, checkpoint, |_| Ok(()))
}

/// Walks the chain like [`verify`], and hands every row over once it has been checked
/// (reports read the trail and verify it in one pass). The whole chain is known to be intact
/// only at the end: the caller decides what to do with what it gathered once the report says.
pub(crate) fn verify_visit(
    key: &MacKey,
    mut next_batch: impl FnMut(u64) -> Result<Vec<AuditRow>>,
    checkpoint: Option<&Checkpoint>,
    mut visit: impl FnMut(AuditRow) -> Result<()>,
) -> Result<AuditReport> {
    let mut report = AuditReport {
        entries: 0,
        last_seq: 0,
        intact: true,
        first_problem: None,
        checkpoint_checked: false,
    };
    let mut prev: Vec<u8> = Vec::new();
    let mut expected = 1u64;
    let mut pending: std::collections::VecDeque<AuditRow> = std::collections::VecDeque::new();
    let mut checkpoint_seen = false;
    loop {
        if pending.len() < 2 {
            let from = pending.back().map_or(expected, |r| r.seq + 1);
            let batch = next_batch(from)?;
            let done = batch.is_empty();
            pending.extend(batch);
            if done && pending.is_empty() {
                break;
            }
        }
        let Some(row) = pending.pop_front() else {
            break;
        };
        report.entries += 1;
        report.last_seq = row.seq;
        if report.first_problem.is_none() {
            if row.seq != expected {
                let kind = if row.seq > expected {
                    Tampering::Removed
                } else {
                    Tampering::Inserted
                };
                report.first_problem = Some((expected, kind));
            } else if !chain_ok(key, &prev, row.seq, &row) {
                // Tell an insertion or a swap from a plain change by what the next row proves.
                let kind = match pending.front() {
                    Some(next) if chain_ok(key, &prev, row.seq, next) => {
                        // The next row is this position's original: something was put before it,
                        // or the two were swapped.
                        if chain_ok(key, &next.mac, row.seq + 1, &row) {
                            Tampering::Reordered
                        } else {
                            Tampering::Inserted
                        }
                    }
                    _ => Tampering::Changed,
                };
                report.first_problem = Some((row.seq, kind));
            }
        }
        if let Some(cp) = checkpoint
            && row.seq == cp.seq
        {
            checkpoint_seen = true;
            let mac = from_b64url(&cp.mac).unwrap_or_default();
            if mac != row.mac && report.first_problem.is_none() {
                // The chain holds together but is not the one the checkpoint saw: it was cut at
                // or before this point and grew again.
                report.first_problem = Some((row.seq, Tampering::Truncated));
            }
        }
        prev.clone_from(&row.mac);
        expected = row.seq + 1;
        visit(row)?;
    }
    if checkpoint.is_some() {
        report.checkpoint_checked = true;
        if !checkpoint_seen && report.first_problem.is_none() {
            report.first_problem = Some((report.last_seq + 1, Tampering::Truncated));
        }
    }
    report.intact = report.first_problem.is_none();
    Ok(report)
}

/// A signed statement of how far the audit chain reached: export it to a place an attacker of
/// the database cannot rewrite, and verify against it later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The format (`coffer-audit-checkpoint/1`).
    pub format: String,
    /// The last sequence number covered.
    pub seq: u64,
    /// Its chain MAC (base64url).
    pub mac: String,
    /// When the checkpoint was made.
    pub time: String,
    /// The Ed25519 public key of the store that signed (base64url).
    pub public_key: String,
    /// The signature over the other fields (base64url).
    pub signature: String,
}

const CHECKPOINT_FORMAT: &str = "coffer-audit-checkpoint/1";

impl Checkpoint {
    pub(crate) fn signed_bytes(seq: u64, mac: &str, time: &str, public_key: &str) -> Vec<u8> {
        crate::crypto::lp(&[
            CHECKPOINT_FORMAT.as_bytes(),
            &seq.to_be_bytes(),
            mac.as_bytes(),
            time.as_bytes(),
            public_key.as_bytes(),
        ])
    }

    pub(crate) fn new(
        seq: u64,
        mac: &[u8],
        time: &str,
        public_key: &[u8],
        sign: impl Fn(&[u8]) -> Vec<u8>,
    ) -> Checkpoint {
        let (mac, public_key) = (b64url(mac), b64url(public_key));
        let signature = b64url(&sign(&Self::signed_bytes(seq, &mac, time, &public_key)));
        Checkpoint {
            format: CHECKPOINT_FORMAT.into(),
            seq,
            mac,
            time: time.into(),
            public_key,
            signature,
        }
    }

    /// Checks the signature against `trusted_public_key` (the store's, pinned by the verifier;
    /// never the key inside the checkpoint alone).
    pub fn verify_signature(&self, trusted_public_key: &[u8]) -> Result<()> {
        if self.format != CHECKPOINT_FORMAT {
            return Err(Error::UnsupportedVersion {
                what: format!("checkpoint format; this build reads {CHECKPOINT_FORMAT}"),
            });
        }
        if from_b64url(&self.public_key).as_deref() != Some(trusted_public_key) {
            return Err(crate::crypto::integrity(
                "checkpoint (signed by another key)",
            ));
        }
        let sig =
            from_b64url(&self.signature).ok_or_else(|| crate::crypto::integrity("checkpoint"))?;
        verify_signature(
            trusted_public_key,
            &Self::signed_bytes(self.seq, &self.mac, &self.time, &self.public_key),
            &sig,
        )
    }

    /// The checkpoint as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a checkpoint from JSON.
    pub fn from_json(text: &str) -> Result<Checkpoint> {
        serde_json::from_str(text)
            .map_err(|e| crate::record::json_error("audit checkpoint", &e, ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each distinct text gets one index, in first-seen order, whether it repeats its
    /// neighbour (found by the comparison with the last text) or an earlier text (by the map).
    #[test]
    fn interned_texts_keep_their_first_index() {
        let mut i = Interned::default();
        let got: Vec<usize> = ["a", "a", "b", "a", "c", "c", "b", "a"]
            .iter()
            .map(|t| i.intern(t))
            .collect();
        assert_eq!(got, [0, 0, 1, 0, 2, 2, 1, 0]);
        assert_eq!(i.texts, ["a", "b", "c"]);
        let mut out = String::new();
        i.write(&mut out);
        assert_eq!(out, "[a,b,c]");
    }

    /// The texts reports read for a batch are the canonical texts of its expanded entries.
    #[test]
    fn expanded_rows_are_the_expanded_entries_canonical_text() {
        let mut b = BatchBuilder::default();
        b.push(
            Some("c-1"),
            Some("s-\"1\""),
            r#"{"a":"reveal","b[0]":"mask:x:y"}"#,
            r#"["r1","r2"]"#,
            r#"{"roles":"x"}"#,
        );
        b.push(Some("c-2"), Some("s-2"), "{}", "[]", "{}");
        b.push(
            None,
            Some("s-3"),
            r#"{"a":"deny:no"}"#,
            "[]",
            r#"{"keys":"contact:1"}"#,
        );
        b.push(
            Some("c-1"),
            None,
            r#"{"a":"reveal","b[0]":"mask:x:y"}"#,
            r#"["r1","r2"]"#,
            "{}",
        );
        for (tenant, purpose, version) in [
            (Some("firm-a"), Some("payments"), Some("ab12")),
            (None, None, None),
        ] {
            let mut head = AuditEntry::new("reveal", "u-1", "2026-12-05T10:00:00Z");
            head.tenant = tenant.map(Into::into);
            head.purpose = purpose.map(Into::into);
            head.policy_version = version.map(Into::into);
            let batch = b.clone().finish(head);
            assert_eq!(batch.kind, "reveal.batch");
            let row = AuditRow {
                seq: 7,
                entry: batch.canonical(),
                mac: vec![1; 32],
            };
            let rows = expand_row(&row).unwrap();
            let entries = expand(&batch).unwrap();
            assert_eq!(rows.len(), 4);
            assert_eq!(entries.len(), 4);
            for (r, e) in rows.iter().zip(&entries) {
                assert_eq!(r.entry, e.canonical());
                assert_eq!((r.seq, &r.mac), (7, &row.mac));
            }
            // Distinct parts are stored once.
            assert_eq!(row.entry.matches("mask:x:y").count(), 1);
        }
        // A plain row is not touched.
        let plain = AuditRow {
            seq: 1,
            entry: AuditEntry::new("seal", "a", "t").canonical(),
            mac: Vec::new(),
        };
        assert!(expand_row(&plain).is_none());
        // A forged body: one unreadable row.
        let mut forged = AuditEntry::new("seal.batch", "a", "t");
        forged.detail.insert(BATCH_DETAIL.into(), "{".into());
        let rows = expand_row(&AuditRow {
            seq: 2,
            entry: forged.canonical(),
            mac: Vec::new(),
        })
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].entry.is_empty());
    }
}
