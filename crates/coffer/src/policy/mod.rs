//! Access policy: who may see which field of which customer, for what purpose, in what form.
//!
//! Pure: no I/O, no clock (the host passes the time in the request). A policy document (TOML,
//! or the same structure in JSON) is checked against a [`Schema`] and compiled into an index,
//! so that a decision looks only at the rules for the principal's roles and the action.
//!
//! Semantics, per field (see `docs/POLICY.md`):
//! - only `allow` grants; `mask` and `deny` are guardrails that restrict what allows grant;
//! - a field is denied if any `deny` matches, or if no `allow` matches (default deny);
//!   otherwise it is masked with the most restrictive matching `mask`, or else revealed;
//! - tenant isolation is built in: a principal never sees another tenant's record;
//! - a rule whose condition cannot be evaluated counts as matched if it is a `deny` or `mask`
//!   and as not matched if it is an `allow`, so an error never widens access;
//! - an `allow` whose requirements (`ticket`, `second_approver`) are not met grants nothing,
//!   and the decision says what is unmet.

mod decide;
mod doc;
mod load;
pub(crate) mod rate;

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

pub use decide::{
    Context, Decision, FieldDecision, FieldEffect, Principal, Reason, RecordFacts, Request,
    RequestDenial,
};
pub use decide::{Explanation, RuleExplanation, RuleStatus};
pub use doc::MAX_POLICY_NESTING;
pub use load::{MAX_CONDITIONS_PER_RULE, MAX_POLICY_BYTES, MAX_PURPOSES, MAX_ROLES, MAX_RULES};
pub use rate::{LimitExceeded, RateLimiter};

use crate::HashMap;
use crate::mask::{MaskRule, Profile};
use crate::record::{FieldPath, Schema, Segment};

/// What a request does with a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Read a value.
    Read,
    /// Look a record up by the field (blind index).
    Search,
    /// Change a value.
    Write,
    /// Take a value out of the system (reports, files, transfers).
    Export,
    /// Erase a value.
    Erase,
    /// Administer keys, policies and retention.
    Admin,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 6] = [
        Self::Read,
        Self::Search,
        Self::Write,
        Self::Export,
        Self::Erase,
        Self::Admin,
    ];

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Search => "search",
            Self::Write => "write",
            Self::Export => "export",
            Self::Erase => "erase",
            Self::Admin => "admin",
        }
    }

    /// The action with this name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    pub(crate) const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The effect of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Grants access to the fields it covers.
    Allow,
    /// Restricts what allows grant to a masked form.
    Mask,
    /// Refuses the fields it covers, whatever allows grant.
    Deny,
}

impl Effect {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Mask => "mask",
            Self::Deny => "deny",
        }
    }
}

/// A precondition an `allow` rule can require of the request's context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Requirement {
    /// A ticket (case or work-order number) in the context.
    Ticket,
    /// A second approver in the context, who is not the principal.
    SecondApprover,
}

impl Requirement {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ticket => "ticket",
            Self::SecondApprover => "second_approver",
        }
    }

    pub(crate) const fn bit(self) -> u8 {
        match self {
            Self::Ticket => 1,
            Self::SecondApprover => 2,
        }
    }

    /// The requirements in a bit set.
    pub(crate) fn from_bits(bits: u8) -> impl Iterator<Item = Requirement> {
        [Self::Ticket, Self::SecondApprover]
            .into_iter()
            .filter(move |r| bits & r.bit() != 0)
    }
}

/// The type of an attribute a condition can test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttrType {
    /// Text.
    String,
    /// A number (integer or decimal).
    Number,
    /// True or false.
    Bool,
    /// An instant (RFC 3339).
    Time,
    /// A set of strings.
    Set,
}

impl AttrType {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Bool => "bool",
            Self::Time => "time",
            Self::Set => "set",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        [
            Self::String,
            Self::Number,
            Self::Bool,
            Self::Time,
            Self::Set,
        ]
        .into_iter()
        .find(|t| t.as_str() == name)
    }
}

/// An attribute value in a request.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// Text.
    String(String),
    /// A number.
    Number(f64),
    /// True or false.
    Bool(bool),
    /// An instant.
    Time(OffsetDateTime),
    /// A set of strings.
    Set(Vec<String>),
}

impl AttrValue {
    pub(crate) fn type_of(&self) -> AttrType {
        match self {
            Self::String(_) => AttrType::String,
            Self::Number(_) => AttrType::Number,
            Self::Bool(_) => AttrType::Bool,
            Self::Time(_) => AttrType::Time,
            Self::Set(_) => AttrType::Set,
        }
    }
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        AttrValue::String(s.to_owned())
    }
}

impl From<f64> for AttrValue {
    fn from(n: f64) -> Self {
        AttrValue::Number(n)
    }
}

impl From<bool> for AttrValue {
    fn from(b: bool) -> Self {
        AttrValue::Bool(b)
    }
}

/// Where a condition's attribute comes from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AttrRef {
    PrincipalId,
    PrincipalTenant,
    PrincipalRoles,
    RecordTenant,
    RecordKind,
    RecordRegion,
    RecordSubject,
    ContextTime,
    ContextHour,
    ContextWeekday,
    ContextDestinationRegion,
    ContextTicket,
    ContextSecondApprover,
    ContextClient,
    Principal(String),
    Record(String),
    Context(String),
}

/// The built-in attributes and their types.
pub(crate) const BUILTIN_ATTRIBUTES: &[(&str, AttrType)] = &[
    ("principal.id", AttrType::String),
    ("principal.tenant", AttrType::String),
    ("principal.roles", AttrType::Set),
    ("record.tenant", AttrType::String),
    ("record.kind", AttrType::String),
    ("record.region", AttrType::String),
    ("record.subject", AttrType::String),
    ("context.time", AttrType::Time),
    ("context.hour", AttrType::Number),
    ("context.weekday", AttrType::Number),
    ("context.destination_region", AttrType::String),
    ("context.ticket", AttrType::String),
    ("context.second_approver", AttrType::String),
    ("context.client", AttrType::String),
];

/// A literal in a condition.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Literal {
    String(String),
    Number(f64),
    Bool(bool),
    Time(OffsetDateTime),
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => write!(f, "{s:?}"),
            Self::Number(n) => write!(f, "{n}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Time(t) => write!(f, "{}", crate::clock::text::instant(*t)),
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
}

/// A compiled condition.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cond {
    Eq(AttrRef, Literal),
    Ne(AttrRef, Literal),
    In(AttrRef, Vec<Literal>),
    NotIn(AttrRef, Vec<Literal>),
    Cmp(AttrRef, CmpOp, Literal),
    Present(AttrRef, bool),
    Contains(AttrRef, String),
    NotContains(AttrRef, String),
    EqAttr(AttrRef, AttrRef),
    NeAttr(AttrRef, AttrRef),
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
}

/// The mask a `mask` rule imposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MaskChoice {
    /// The schema's mask rule for each field.
    SchemaDefault,
    /// This rule for every field.
    Rule(MaskRule),
}

/// A set of schema field patterns, by slot index.
pub(crate) type FieldSet = u128;

/// One compiled rule.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub(crate) id: String,
    pub(crate) effect: Effect,
    /// Role bits; `None` for every role.
    pub(crate) roles: Option<u128>,
    pub(crate) actions: u8,
    pub(crate) fields: FieldSet,
    /// Purpose bits; 0 means every purpose (only for mask and deny rules).
    pub(crate) purposes: u128,
    pub(crate) when: Vec<Cond>,
    /// Each condition of `when` by its number among the policy's distinct conditions (see
    /// [`Policy::conditions`]).
    pub(crate) when_ids: Vec<u32>,
    pub(crate) valid_from: Option<OffsetDateTime>,
    pub(crate) valid_until: Option<OffsetDateTime>,
    pub(crate) mask: Option<(MaskChoice, Profile)>,
    pub(crate) audit_detail: bool,
    pub(crate) require: u8,
    pub(crate) line: usize,
}

/// [`RateLimit::actions`]: reveals count.
pub(crate) const RATE_READ: u8 = 1;
/// [`RateLimit::actions`]: searched values count.
pub(crate) const RATE_SEARCH: u8 = 2;

/// A rate limit: at most `max` revealed fields (and searched values) from `fields` per
/// principal per `window`.
#[derive(Clone, Debug)]
pub(crate) struct RateLimit {
    pub(crate) id: String,
    pub(crate) roles: Option<u128>,
    /// Which actions it counts: bit 0 reveals (`read`), bit 1 searches (`search`).
    pub(crate) actions: u8,
    pub(crate) fields: FieldSet,
    pub(crate) max: u32,
    pub(crate) window_secs: i64,
}

/// A loaded, checked and compiled policy. Immutable and `Send + Sync`: share it in an `Arc` and
/// swap the `Arc` to reload.
#[derive(Debug)]
pub struct Policy {
    pub(crate) name: String,
    pub(crate) version: Arc<str>,
    pub(crate) schema_name: String,
    pub(crate) rules: Vec<Rule>,
    pub(crate) rate_limits: Vec<RateLimit>,
    pub(crate) roles: HashMap<String, usize>,
    pub(crate) role_names: Vec<String>,
    /// For each role, the bits of itself and every role it inherits from.
    pub(crate) role_closure: Vec<u128>,
    pub(crate) purposes: HashMap<String, usize>,
    pub(crate) purpose_names: Vec<String>,
    /// For each purpose, the bits of itself and its ancestors.
    pub(crate) purpose_ancestry: Vec<u128>,
    pub(crate) attributes: HashMap<String, AttrType>,
    /// Field patterns, by slot.
    pub(crate) slots: Vec<String>,
    pub(crate) slot_of: HashMap<String, usize>,
    pub(crate) custom_slot: usize,
    /// The retention category of each slot.
    pub(crate) slot_category: Vec<String>,
    /// The schema's mask rule of each slot.
    pub(crate) slot_mask: Vec<MaskRule>,
    /// Candidate rules by `role * 6 + action`.
    pub(crate) index: Vec<Vec<u16>>,
    /// Rules that name no role, by action.
    pub(crate) any_role: [Vec<u16>; 6],
    /// How many distinct conditions the rules hold: a decision evaluates each at most once,
    /// however many rules share it (dense policies repeat a few conditions hundreds of times).
    pub(crate) conditions: usize,
    /// Decision plans by (role bits, purpose, action), made on first use.
    pub(crate) plans: PlanCache,
}

/// The policy's kept [`decide::Plan`]s.
pub(crate) type PlanCache = std::sync::Mutex<HashMap<(u128, usize, u8), Arc<decide::Plan>>>;

impl Policy {
    /// Loads a policy from TOML text and checks it against `schema`. A syntax error is
    /// [`crate::Error::Malformed`] with its line and column; every other problem is reported at
    /// once in [`crate::Error::Policy`], each with its line and column.
    pub fn from_toml(text: &str, schema: &Schema) -> crate::Result<Policy> {
        load::load(text, crate::Format::Toml, schema)
    }

    /// Loads a policy from JSON text with the same structure as the TOML form.
    pub fn from_json(text: &str, schema: &Schema) -> crate::Result<Policy> {
        load::load(text, crate::Format::Json, schema)
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The policy's version: the SHA-256 of its canonical form, in every decision.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The name of the schema the policy was checked against.
    pub fn schema_name(&self) -> &str {
        &self.schema_name
    }

    /// The roles the policy declares.
    pub fn roles(&self) -> &[String] {
        &self.role_names
    }

    /// The purposes the policy declares.
    pub fn purposes(&self) -> &[String] {
        &self.purpose_names
    }

    /// How many rules the policy has.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The id of rule number `index`.
    pub fn rule_id(&self, index: usize) -> Option<&str> {
        self.rules.get(index).map(|r| r.id.as_str())
    }

    /// The slot (schema field pattern index) that governs a concrete path.
    pub fn slot_for(&self, path: &FieldPath) -> Option<usize> {
        if let [Segment::Key(c), Segment::Key(k)] = path.segments()
            && c == "custom"
        {
            return Some(
                self.slot_of
                    .get(&format!("custom.{k}"))
                    .copied()
                    .unwrap_or(self.custom_slot),
            );
        }
        self.slot_of.get(&path.pattern_key()).copied()
    }

    /// Whether `purpose` (or a purpose it descends from) is one of `allowed` (purpose names;
    /// unknown names serve nothing).
    pub(crate) fn purpose_served_by(&self, purpose: &str, allowed: &[String]) -> bool {
        let Some(&p) = self.purposes.get(purpose) else {
            return false;
        };
        allowed
            .iter()
            .filter_map(|a| self.purposes.get(a))
            .any(|&a| purpose_serves(self.purpose_ancestry[p], 1 << a))
    }

    /// The field pattern of a slot.
    pub fn slot_pattern(&self, slot: usize) -> Option<&str> {
        self.slots.get(slot).map(String::as_str)
    }

    /// How many slots (field patterns) the policy distinguishes.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }
}

/// Whether purpose `requested` is `allowed` or one of its descendants.
pub(crate) fn purpose_serves(ancestry_of_requested: u128, allowed: u128) -> bool {
    ancestry_of_requested & allowed != 0
}

/// Iterates the set bits of a 128-bit set.
pub(crate) fn bits(mut set: u128) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if set == 0 {
            return None;
        }
        let i = set.trailing_zeros() as usize;
        set &= set - 1;
        Some(i)
    })
}
