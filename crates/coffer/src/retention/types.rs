//! The records of retention work: holds to place and as kept, destruction items and their
//! approvals, signed certificates, erasure answers, sweep plans and reports. The facade
//! (`Coffer::erase`, `sweep`, `execute`…) produces them; they are re-exported at the crate's
//! root.

use serde::{Deserialize, Serialize};
use time::Date;

use crate::crypto::{self, from_b64url};
use crate::error::{Error, Result};

/// A legal hold to place.
#[derive(Clone, Debug, Default)]
pub struct Hold {
    /// The tenant it covers.
    pub tenant: String,
    /// One subject, or every subject of the tenant.
    pub subject: Option<String>,
    /// One retention category, or every one.
    pub category: Option<String>,
    /// Why (a matter, a regulator's request, an unsettled claim).
    pub reason: String,
    /// Until when; `None` holds until released.
    pub until: Option<Date>,
    /// An open matter (会计档案管理办法 第十九条): never lapses by itself, only released.
    pub open_matter: bool,
}

/// One item of a destruction list or certificate: what, on which rule, due when. No customer
/// values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestructionItem {
    /// The tenant.
    pub tenant: String,
    /// The data subject.
    pub subject: String,
    /// The retention category.
    pub category: String,
    /// The data key's version.
    pub version: u32,
    /// The rule whose period ended.
    pub rule: String,
    /// Its legal basis.
    pub basis: String,
    /// The day the period ended.
    pub due: String,
}

/// An approval of a destruction list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// Who approved.
    pub approver: String,
    /// In which role.
    pub role: String,
    /// When.
    pub at: String,
}

/// A signed record of a destruction: what was destroyed, when, on which rules, approved by
/// whom. Verify it with [`Certificate::verify`] and the store's public key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// `coffer-destruction-certificate/1`.
    pub format: String,
    /// When.
    pub time: String,
    /// Who carried it out.
    pub actor: String,
    /// Why: `sweep`, `erasure`, or `list <id>`.
    pub occasion: String,
    /// What was destroyed.
    pub items: Vec<DestructionItem>,
    /// Who approved (for reviewed destructions).
    pub approvals: Vec<Approval>,
    /// How long copies of the store taken before the destruction can still recover what it
    /// destroyed (absent from certificates made before Coffer stated it, and when nothing
    /// was destroyed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_exposure: Option<BackupExposure>,
    /// The signer's Ed25519 public key (base64url).
    pub public_key: String,
    /// The signature (base64url) over the certificate without it.
    #[serde(default)]
    pub signature: String,
}
// Unknown fields are refused (`deny_unknown_fields` above): nothing unsigned may ride along
// in a certificate and be mistaken for part of what was signed.

pub(crate) const CERT_FORMAT: &str = "coffer-destruction-certificate/1";

/// How long a destruction stays undone in copies of the store taken before it. Destroying a
/// key removes it from the live store (and, with the log emptied, from its files); a backup
/// or snapshot taken earlier still holds it, wrapped under a KEK that the master key of that
/// time opens. See docs/RETENTION.md, "What shredding reaches".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupExposure {
    /// Copies of the store taken before this time (RFC 3339) hold the destroyed keys.
    pub copies_before: String,
    /// The KEK versions that wrap them in those copies.
    pub kek_versions: Vec<u32>,
    /// The last day such a copy can exist, when the retention rules say how long backups are
    /// kept (`backups_kept`): the destruction's day plus that period. `None` when they do not
    /// say: the exposure lasts as long as the host keeps old copies.
    pub until: Option<String>,
    /// How the exposure ends sooner.
    pub ends_sooner: String,
}

impl Certificate {
    pub(crate) fn signed_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.signature.clear();
        let body = serde_json::to_string(&unsigned).unwrap_or_default();
        crypto::lp(&[CERT_FORMAT.as_bytes(), body.as_bytes()])
    }

    /// Checks the signature against the trusted public key of the store that destroyed.
    pub fn verify(&self, trusted_public_key: &[u8]) -> Result<()> {
        if self.format != CERT_FORMAT {
            return Err(Error::UnsupportedVersion {
                what: format!("certificate format; this build reads {CERT_FORMAT}"),
            });
        }
        if from_b64url(&self.public_key).as_deref() != Some(trusted_public_key) {
            return Err(crypto::integrity("certificate (signed by another key)"));
        }
        let sig = from_b64url(&self.signature).ok_or_else(|| crypto::integrity("certificate"))?;
        crypto::verify_signature(trusted_public_key, &self.signed_bytes(), &sig)
    }

    /// The certificate as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a certificate from JSON.
    pub fn from_json(text: &str) -> Result<Certificate> {
        serde_json::from_str(text)
            .map_err(|e| crate::record::json_error("destruction certificate", &e, ""))
    }
}

/// What an erasure request did to one category.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErasureItem {
    /// The retention category.
    pub category: String,
    /// The schema's field patterns in it (`phones[]`, `emails[]`, …).
    pub fields: Vec<String>,
    /// `destroyed`, or `restricted` until `until`.
    pub outcome: String,
    /// Until when it is kept, restricted (ISO date); none while its period has not begun.
    pub until: Option<String>,
    /// The purposes that may still reveal it meanwhile.
    pub purposes: Vec<String>,
    /// The rule that decided, and its legal basis.
    pub rule: String,
    /// The legal basis.
    pub basis: String,
}

/// The answer to an erasure request, per category, with the certificate of what was destroyed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErasureAnswer {
    /// Each category of the subject's data.
    pub items: Vec<ErasureItem>,
    /// Until when copies of the store taken before now can recover what was destroyed (also
    /// in the certificate); `None` when nothing was destroyed.
    pub backup_exposure: Option<BackupExposure>,
    /// The certificate of the destruction done now, if any (last in the JSON form).
    pub certificate: Option<Certificate>,
}

/// What a sweep would do (see [`Coffer::plan_sweep`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepPlan {
    /// Keys that `destroy` rules let go.
    pub destroy: Vec<DestructionItem>,
    /// Keys that `review` or `archive` rules let go, not yet on a list.
    pub review: Vec<DestructionItem>,
    /// Due keys a hold covers.
    pub held: usize,
}

/// What a sweep did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepReport {
    /// Data keys destroyed at once (rules with action `destroy`).
    pub destroyed: Vec<DestructionItem>,
    /// Their certificate.
    pub certificate: Option<Certificate>,
    /// Until when copies of the store taken before the sweep can recover what it destroyed
    /// (also in the certificate).
    pub backup_exposure: Option<BackupExposure>,
    /// A destruction list proposed for approval (rules with action `review` or `archive`).
    pub proposed_list: Option<i64>,
    /// Its items.
    pub proposed: Vec<DestructionItem>,
    /// Due items held back by a legal hold.
    pub held: usize,
}

/// A legal hold as the store keeps it: placed, and released or not.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LegalHold {
    /// Its id.
    pub id: i64,
    /// The tenant it covers.
    pub tenant: String,
    /// The subject it covers (every subject of the tenant if none).
    pub subject: Option<String>,
    /// The category it covers (every category if none).
    pub category: Option<String>,
    /// `legal` or `open_matter`.
    pub kind: String,
    /// Why.
    pub reason: String,
    /// Who placed it.
    pub placed_by: String,
    /// When.
    pub placed_at: String,
    /// Until when (ISO date); none for open matters and holds without end.
    pub until: Option<String>,
    /// Who released it.
    pub released_by: Option<String>,
}
