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
