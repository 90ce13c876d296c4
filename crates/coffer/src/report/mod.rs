//! Compliance reports built from what the key store and the audit trail already know: a data
//! subject's own report (PIPL art. 45, GDPR art. 15), incident scoping (PIPL art. 57), an access
//! review (least privilege) and a compliance check.
//!
//! The reports are made by [`Coffer`](crate::Coffer)'s `subject_report`, `affected`,
//! `access_review` and `compliance_check`, each authorised by the policy (action `admin`) and
//! recorded in the audit trail. Each is plain data: JSON through [`Report`], Markdown and a
//! static HTML page (inline SVG charts, no script, nothing fetched) through [`Report::to_markdown`]
//! and [`Report::to_html`]. Only a subject report can hold values, and only those the
//! requesting principal's policy reveals; `Debug` never prints them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::audit::{AuditReport, Checkpoint, Tampering};
use crate::error::{Error, Result};
use crate::record::Sensitive;
use crate::retention::types::LegalHold;

pub(crate) mod grants;
mod render;
pub(crate) mod trail;

/// The format tag every report carries.
pub const REPORT_FORMAT: &str = "coffer-report/1";

/// The largest report document [`Report::from_json`] reads (64 MiB).
pub const MAX_REPORT_BYTES: usize = 64 << 20;

/// What the report found when it verified the audit trail it was built from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailCheck {
    /// Whether the chain verified (and reached the checkpoint, if one was given).
    pub intact: bool,
    /// Entries read.
    pub entries: u64,
    /// The last sequence number read.
    pub last_seq: u64,
    /// Where the first problem is, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem_seq: Option<u64>,
    /// What the first problem is, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Tampering>,
    /// Whether a signed checkpoint was checked too.
    pub checkpoint_checked: bool,
    /// Rows that are not entries Coffer wrote (only a forged row can be one), left out of the
    /// answer.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unreadable: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<&AuditReport> for TrailCheck {
    fn from(r: &AuditReport) -> Self {
        TrailCheck {
            intact: r.intact,
            entries: r.entries,
            last_seq: r.last_seq,
            problem_seq: r.first_problem.map(|(s, _)| s),
            problem: r.first_problem.map(|(_, t)| t),
            checkpoint_checked: r.checkpoint_checked,
            unreadable: 0,
        }
    }
}

impl TrailCheck {
    /// One line for people: "intact (1,204 entries)" or "BROKEN at entry 42 (changed)".
    pub fn summary(&self) -> String {
        let base = self.chain_summary();
        if self.unreadable > 0 {
            format!("{base}; {} row(s) unreadable", self.unreadable)
        } else {
            base
        }
    }

    fn chain_summary(&self) -> String {
        match (self.intact, self.problem_seq, self.problem) {
            (true, ..) => format!(
                "intact ({} entries{})",
                self.entries,
                if self.checkpoint_checked {
                    ", checkpoint reached"
                } else {
                    ""
                }
            ),
            (false, Some(seq), Some(p)) => format!("BROKEN at entry {seq} ({p})"),
            (false, ..) => "BROKEN".into(),
        }
    }
}

/// How a report treats the audit trail it reads.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    /// Answer even when the trail does not verify (for forensics; the report then says so in
    /// its `trail`). By default a report on a broken trail is refused with an integrity error,
    /// because an answer built from it could silently miss subjects.
    pub accept_broken_trail: bool,
    /// A signed checkpoint the trail must still reach (catches a truncated tail).
    pub checkpoint: Option<Checkpoint>,
}

// ---- subject report ------------------------------------------------------------------------

/// What is held about one data subject, and who has seen it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubjectReport {
    /// `coffer-report/1`.
    pub format: String,
    /// When it was made (RFC 3339).
    pub generated: String,
    /// Who asked for it.
    pub requested_by: String,
    /// For which purpose.
    pub purpose: String,
    /// The policy version that decided what it shows.
    pub policy_version: String,
    /// The tenant.
    pub tenant: String,
    /// The data subject.
    pub subject: String,
    /// The audit trail it was built from.
    pub trail: TrailCheck,
    /// The records of this subject the trail knows (by id), in the order first sealed.
    pub records: Vec<String>,
    /// Every field path held, per record.
    pub fields: Vec<HeldField>,
    /// The subject's data keys, one per category and version.
    pub keys: Vec<SubjectKey>,
    /// The legal holds in force that cover the subject.
    pub holds: Vec<LegalHold>,
    /// Categories restricted after an erasure request.
    pub restrictions: Vec<SubjectRestriction>,
    /// Lifecycle events reported (end of relationship, consent withdrawn…).
    pub events: Vec<SubjectEvent>,
    /// Every access to the subject's records: who, when, which fields, with what effect, for
    /// what purpose.
    pub accesses: Vec<AccessRecord>,
    /// Everything else the trail records about the subject: seals, erasure requests, holds,
    /// lifecycle events.
    pub changes: Vec<ChangeRecord>,
}

/// One field path held for a subject.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeldField {
    /// The record.
    pub record: String,
    /// The field path (`phones[0]`).
    pub path: String,
    /// Its retention category.
    pub category: String,
    /// Its classification (`public`, `internal`, `personal`, `sensitive`).
    pub classification: String,
    /// `sealed`, `clear` (stored as is), or `shredded` (its key was destroyed).
    pub state: String,
    /// Whether its category is restricted after an erasure request.
    pub restricted: bool,
    /// The retention rule that keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Until when it is kept (ISO date); none while the period has not begun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_until: Option<String>,
    /// What happens then (`destroy`, `review`, `archive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// How the requesting principal sees it: `revealed`, `masked`, `denied` or `shredded`;
    /// none when the record's envelope was not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shown: Option<String>,
    /// The value (revealed) or its masked form; only when the policy shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Sensitive>,
    /// Why it is not shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A data key of the subject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectKey {
    /// The retention category.
    pub category: String,
    /// The key's version.
    pub version: u32,
    /// When it was made.
    pub created: String,
    /// Until when it is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_until: Option<String>,
    /// The rule that gives the date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// What happens then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// When it was destroyed (crypto-shredded), if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroyed: Option<String>,
}

/// A restricted category.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectRestriction {
    /// The category.
    pub category: String,
    /// The purposes that may still reveal it.
    pub purposes: Vec<String>,
    /// Until when (then the sweep destroys it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The rule that keeps it.
    pub rule: String,
    /// Since when.
    pub since: String,
}

/// A lifecycle event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectEvent {
    /// `relationship_ended`, `consent_withdrawn`, …
    pub event: String,
    /// Its date.
    pub date: String,
}

/// One access from the audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    /// The audit entry.
    pub seq: u64,
    /// When.
    pub time: String,
    /// Who.
    pub actor: String,
    /// In which roles.
    pub roles: Vec<String>,
    /// For what purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Which record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// Each field with its effect (`reveal`, `mask:…`, `deny:…`).
    pub fields: BTreeMap<String, String>,
}

/// Any other audited event about the subject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// The audit entry.
    pub seq: u64,
    /// When.
    pub time: String,
    /// What (`seal`, `erasure`, `hold.place`, `retention.event`, `key.create`, …).
    pub kind: String,
    /// Who.
    pub actor: String,
    /// Which record, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// The entry's fields (paths or categories, with what happened to each).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

// ---- incident ------------------------------------------------------------------------------

/// Which reveals an incident concerns. Every filter is optional; the window is `[from, until)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentQuery {
    /// Only this tenant (default: the requesting principal's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Only reveals by this principal (a stolen account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Only reveals through this client application or channel (a compromised service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// From (RFC 3339 or an ISO date, inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Until (RFC 3339 or an ISO date, exclusive; default: now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The fields concerned: patterns (`id_documents[].number`, `phones[]`), globs
    /// (`bank_accounts[].*`, `*`), `class:sensitive` or `category:banking`. Empty: every
    /// personal or sensitive field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

/// Whose data was revealed in clear, the basis of a breach notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentReport {
    /// `coffer-report/1`.
    pub format: String,
    /// When it was made.
    pub generated: String,
    /// Who asked for it.
    pub requested_by: String,
    /// For which purpose.
    pub purpose: String,
    /// The query, with its defaults filled in.
    pub query: IncidentQuery,
    /// The field patterns the query's `fields` selected.
    pub patterns: Vec<String>,
    /// The audit trail it was built from.
    pub trail: TrailCheck,
    /// Reveal entries that matched the query.
    pub reveals: u64,
    /// Every subject concerned, by tenant and subject.
    pub subjects: Vec<AffectedSubject>,
    /// Fields revealed in clear, by pattern.
    pub fields: BTreeMap<String, u64>,
    /// Matching reveals by day (UTC), for the chart.
    pub by_day: BTreeMap<String, u64>,
    /// Matching reveals by principal.
    pub principals: BTreeMap<String, u64>,
    /// Blind-index searches by the query's principal or client within the window, allowed or
    /// refused (a search tells whether a value is held: guessing through it is harvesting).
    #[serde(default)]
    pub searches: u64,
    /// Values those searches looked up.
    #[serde(default)]
    pub searched_values: u64,
    /// Rate-limit alerts (reveals or searches refused for going over a limit) in the window.
    #[serde(default)]
    pub rate_limit_alerts: u64,
    /// Notes for the reader (an empty window, a window in the future…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One subject whose fields were revealed in clear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedSubject {
    /// The tenant.
    pub tenant: String,
    /// The subject.
    pub subject: String,
    /// Matching reveal entries.
    pub reveals: u64,
    /// Fields revealed in clear (by path) and how many times.
    pub fields: BTreeMap<String, u64>,
    /// The first such reveal.
    pub first: String,
    /// The last.
    pub last: String,
    /// By whom.
    pub principals: Vec<String>,
}

// ---- access review -------------------------------------------------------------------------

/// Per role, which personal fields it can reveal and for which purposes, and which of those
/// grants were used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessReview {
    /// `coffer-report/1`.
    pub format: String,
    /// When it was made.
    pub generated: String,
    /// Who asked for it.
    pub requested_by: String,
    /// For which purpose.
    pub purpose: String,
    /// The policy reviewed.
    pub policy_version: String,
    /// Usage counted from this instant.
    pub since: String,
    /// The audit trail usage was counted from.
    pub trail: TrailCheck,
    /// One entry per role of the policy.
    pub roles: Vec<RoleReview>,
    /// Grants not used since `since`: candidates for removal.
    pub unused: u64,
}

/// One role's grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleReview {
    /// The role.
    pub role: String,
    /// The roles it inherits from.
    pub inherits: Vec<String>,
    /// Its grants on personal and sensitive fields for `read`.
    pub grants: Vec<Grant>,
}

/// One grant: an `allow` rule that lets a role read a field for a purpose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The field pattern.
    pub field: String,
    /// Its classification.
    pub classification: String,
    /// The purpose the rule serves (and, through it, its sub-purposes).
    pub purpose: String,
    /// The `allow` rule.
    pub rule: String,
    /// What the role gets when the rule applies: `reveal`, `mask` (an unconditional mask rule
    /// narrows it) or `deny` (an unconditional deny rule shadows it: the grant is dead).
    pub effect: String,
    /// Whether the rule has conditions or a validity window.
    pub conditional: bool,
    /// What the rule requires (`ticket`, `second_approver`).
    pub requires: Vec<String>,
    /// Conditional mask or deny rules that may narrow it.
    pub guardrails: Vec<String>,
    /// How many reveals used it since the review's date.
    pub used: u64,
    /// The last of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
}

// ---- compliance check ----------------------------------------------------------------------

/// The thresholds a compliance check applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckOptions {
    /// A key-encryption or index key older than this many days should be rotated.
    pub max_key_age_days: u32,
    /// A destruction list proposed longer ago than this many days is awaiting approval too
    /// long.
    pub max_list_age_days: u32,
    /// The audit trail should have a checkpoint at least this often (days).
    pub checkpoint_interval_days: u32,
    /// Keys destroyed longer ago than this many days should no longer be recoverable through
    /// their KEK: it should have been retired (`keys.backup_exposure`).
    pub max_backup_exposure_days: u32,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            max_key_age_days: 365,
            max_list_age_days: 30,
            checkpoint_interval_days: 7,
            max_backup_exposure_days: 30,
        }
    }
}

/// The result of a compliance check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceCheck {
    /// `coffer-report/1`.
    pub format: String,
    /// When it was made.
    pub generated: String,
    /// Who asked for it.
    pub requested_by: String,
    /// For which purpose.
    pub purpose: String,
    /// The thresholds applied.
    pub options: CheckOptions,
    /// The audit trail.
    pub trail: TrailCheck,
    /// Every finding, most severe first.
    pub findings: Vec<Finding>,
    /// How many findings of each severity.
    pub counts: BTreeMap<String, u64>,
}

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The evidence itself is in doubt, or data is kept against the law.
    Critical,
    /// A duty is not being met.
    High,
    /// A practice falls short of the configured standard.
    Medium,
    /// Worth a look.
    Low,
}

impl Severity {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }
}

/// One finding of a compliance check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// A stable code (`audit.chain_broken`, `retention.overdue`, …; see docs/REPORTS.md).
    pub code: String,
    /// How serious.
    pub severity: Severity,
    /// What is wrong, in words.
    pub message: String,
    /// The objects concerned (at most 100; `total` says how many there are).
    pub objects: Vec<String>,
    /// How many objects are concerned.
    pub total: u64,
}

/// The most objects a finding lists.
pub const MAX_FINDING_OBJECTS: usize = 100;

impl Finding {
    pub(crate) fn new(
        code: &str,
        severity: Severity,
        message: impl Into<String>,
        objects: Vec<String>,
    ) -> Finding {
        let total = objects.len() as u64;
        let mut objects = objects;
        objects.truncate(MAX_FINDING_OBJECTS);
        Finding {
            code: code.into(),
            severity,
            message: message.into(),
            objects,
            total,
        }
    }
}

// ---- any report ----------------------------------------------------------------------------

/// Any report, tagged by `report` in its JSON (`subject`, `incident`, `access_review`,
/// `check`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum Report {
    /// A data subject's report.
    Subject(SubjectReport),
    /// An incident scope.
    Incident(IncidentReport),
    /// An access review.
    AccessReview(AccessReview),
    /// A compliance check.
    Check(ComplianceCheck),
}

impl Report {
    /// The report as pretty JSON. A subject report may hold revealed values: the buffer is
    /// wiped when dropped.
    pub fn to_json(&self) -> Zeroizing<String> {
        Zeroizing::new(serde_json::to_string_pretty(self).unwrap_or_default())
    }

    /// Reads a report from its JSON (as [`Report::to_json`] writes it).
    pub fn from_json(text: &str) -> Result<Report> {
        if text.len() > MAX_REPORT_BYTES {
            return Err(Error::LimitExceeded {
                what: "report JSON".into(),
                limit: MAX_REPORT_BYTES,
                unit: "bytes",
            });
        }
        // serde_json refuses nesting deeper than 128 levels with an error, never a stack overflow.
        serde_json::from_str(text).map_err(|e| crate::record::json_error("report", &e, ""))
    }

    /// A readable Markdown rendering, for review before it is handed out.
    pub fn to_markdown(&self) -> Zeroizing<String> {
        Zeroizing::new(render::markdown(self))
    }

    /// A self-contained HTML page (inline CSS and SVG charts; no script, nothing fetched).
    pub fn to_html(&self) -> Zeroizing<String> {
        Zeroizing::new(render::html(self))
    }

    /// Renders as `json`, `markdown` (or `md`) or `html`.
    pub fn render(&self, format: &str) -> Result<Zeroizing<String>> {
        match format {
            "json" => Ok(self.to_json()),
            "markdown" | "md" => Ok(self.to_markdown()),
            "html" => Ok(self.to_html()),
            other => Err(Error::InvalidArgument {
                name: "format",
                reason: format!("`{other}` is not a report format; use json, markdown or html"),
            }),
        }
    }
}
