//! Requests, decisions and explanations.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use super::{
    Action, AttrRef, AttrValue, CmpOp, Cond, Effect, Literal, MaskChoice, Policy, Requirement,
    Rule, bits, purpose_serves,
};
use crate::HashMap;
use crate::mask::{MaskOperator, MaskRule, Profile};
use crate::record::{CustomerKind, FieldPath};

/// Who is asking.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Principal {
    /// The principal's id in the host system.
    pub id: String,
    /// The tenant (firm or company book) the principal works for.
    pub tenant: String,
    /// The principal's roles, as named in the policy.
    pub roles: Vec<String>,
    /// Other attributes, declared in the policy's `[attributes]` as `principal.NAME`.
    pub attributes: BTreeMap<String, AttrValue>,
}

/// What is known about the record, without its values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordFacts {
    /// The tenant the record belongs to.
    pub tenant: String,
    /// Individual or company.
    pub kind: Option<CustomerKind>,
    /// The region where the record is held (e.g. `CN`).
    pub region: Option<String>,
    /// The data subject's id.
    pub subject: Option<String>,
    /// Other attributes, declared as `record.NAME`.
    pub attributes: BTreeMap<String, AttrValue>,
    /// Restricted retention categories (after an erasure request), each with the purposes that
    /// may still reveal it (e.g. `statutory_audit`). Fields of a restricted category are denied
    /// for every other purpose.
    pub restricted: BTreeMap<String, Vec<String>>,
}

/// The circumstances of the request. The engine never reads a clock: the host passes the time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context {
    /// When the request is made; required by rules with a validity window, time conditions and
    /// rate limits (a decision that needs it and lacks it fails closed).
    pub time: Option<OffsetDateTime>,
    /// Where the data is going (e.g. `CN`, `DE`), for transfer rules.
    pub destination_region: Option<String>,
    /// A ticket or case number justifying the access.
    pub ticket: Option<String>,
    /// A second person who approved the access.
    pub second_approver: Option<String>,
    /// The client application or channel.
    pub client: Option<String>,
    /// Other attributes, declared as `context.NAME`.
    pub attributes: BTreeMap<String, AttrValue>,
}

/// A request for a decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Who.
    pub principal: Principal,
    /// Does what.
    pub action: Action,
    /// For which purpose (as named in the policy).
    pub purpose: String,
    /// To which record.
    pub record: RecordFacts,
    /// In which circumstances.
    pub context: Context,
}

/// What a field's decision allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldEffect {
    /// The value may be shown in clear.
    Reveal,
    /// Only this masked form may be shown.
    Mask {
        /// The mask rule.
        rule: MaskRule,
        /// Its profile.
        profile: Profile,
    },
    /// Nothing may be shown.
    Deny,
}

impl FieldEffect {
    /// The stable name: `reveal`, `mask` or `deny`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Reveal => "reveal",
            Self::Mask { .. } => "mask",
            Self::Deny => "deny",
        }
    }
}

/// Why the whole request was denied before any rule was looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestDenial {
    /// The principal's tenant is not the record's: tenant isolation, which no rule can lift.
    TenantMismatch,
    /// A role the policy does not know.
    UnknownRole(String),
    /// A purpose the policy does not know.
    UnknownPurpose(String),
    /// The principal has no role.
    NoRoles,
}

impl fmt::Display for RequestDenial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TenantMismatch => {
                f.write_str("the principal's tenant is not the record's (tenant isolation)")
            }
            Self::UnknownRole(r) => write!(
                f,
                "unknown role `{}`",
                crate::record::truncate_for_message(r)
            ),
            Self::UnknownPurpose(p) => write!(
                f,
                "unknown purpose `{}`",
                crate::record::truncate_for_message(p)
            ),
            Self::NoRoles => f.write_str("the principal has no role"),
        }
    }
}

/// Why a field got its effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// An allow rule granted it, and no guardrail applied.
    Allowed,
    /// Allowed, and a mask rule restricted it.
    Masked,
    /// A deny rule matched.
    DeniedByRule,
    /// No allow rule grants it (default deny).
    NoMatchingAllow,
    /// An allow rule would grant it, but a requirement is unmet.
    Unmet,
    /// Its retention category is restricted, and the purpose is not one that may still reveal it.
    Restricted,
    /// A rate limit was exceeded.
    RateLimited(String),
    /// The whole request was denied.
    Request(RequestDenial),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allowed => f.write_str("allowed"),
            Self::Masked => f.write_str("masked by a rule"),
            Self::DeniedByRule => f.write_str("denied by a rule"),
            Self::NoMatchingAllow => f.write_str("no rule allows it (default deny)"),
            Self::Unmet => f.write_str("a requirement of the allowing rule is unmet"),
            Self::Restricted => {
                f.write_str("restricted after an erasure request; this purpose may not reveal it")
            }
            Self::RateLimited(id) => write!(f, "rate limit `{id}` exceeded"),
            Self::Request(d) => write!(f, "request denied: {d}"),
        }
    }
}

#[derive(Clone, Debug)]
struct SlotOutcome {
    effect: FieldEffect,
    reason: Reason,
    rules_start: u32,
    rules_len: u32,
    unmet: u8,
}

/// The decision for one request: for every field of the record, the effect, the rules that
/// determined it, what is unmet, and the policy version.
#[derive(Clone, Debug)]
pub struct Decision {
    policy_version: Arc<str>,
    action: Action,
    purpose: String,
    denial: Option<RequestDenial>,
    slots: Vec<SlotOutcome>,
    rule_refs: Vec<u16>,
    audit_detail: bool,
    errors: u32,
}

/// The decision for one field.
#[derive(Clone, Debug)]
pub struct FieldDecision<'d> {
    /// What may be shown.
    pub effect: FieldEffect,
    /// Why.
    pub reason: &'d Reason,
    rules: &'d [u16],
    unmet: u8,
}

impl<'d> FieldDecision<'d> {
    /// The ids of the rules that determined the effect.
    pub fn rule_ids<'p>(&self, policy: &'p Policy) -> Vec<&'p str> {
        self.rules
            .iter()
            .filter_map(|&i| policy.rule_id(usize::from(i)))
            .collect()
    }

    /// The requirements that kept an allow rule from granting.
    pub fn unmet(&self) -> Vec<Requirement> {
        Requirement::from_bits(self.unmet).collect()
    }
}

impl Decision {
    /// The version of the policy that decided.
    pub fn policy_version(&self) -> &str {
        &self.policy_version
    }

    /// The action decided on.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The purpose decided for.
    pub fn purpose(&self) -> &str {
        &self.purpose
    }

    /// Why the whole request was denied, if it was.
    pub fn denial(&self) -> Option<&RequestDenial> {
        self.denial.as_ref()
    }

    /// Whether any determining rule asks for a detailed audit entry.
    pub fn audit_detail(&self) -> bool {
        self.audit_detail
    }

    /// How many rule conditions could not be evaluated (each was resolved closed).
    pub fn evaluation_errors(&self) -> u32 {
        self.errors
    }

    /// The decision for a slot (see [`Policy::slot_for`]).
    pub fn slot(&self, slot: usize) -> Option<FieldDecision<'_>> {
        self.slots.get(slot).map(|s| FieldDecision {
            effect: s.effect,
            reason: &s.reason,
            rules: &self.rule_refs[s.rules_start as usize..(s.rules_start + s.rules_len) as usize],
            unmet: s.unmet,
        })
    }

    /// The decision for a concrete field path. A path the schema does not know is denied.
    pub fn field(&self, policy: &Policy, path: &FieldPath) -> FieldEffect {
        policy
            .slot_for(path)
            .and_then(|s| self.slot(s))
            .map_or(FieldEffect::Deny, |d| d.effect)
    }

    /// The decision for a concrete field path, with its reason and rules.
    pub fn field_decision(&self, policy: &Policy, path: &FieldPath) -> Option<FieldDecision<'_>> {
        policy.slot_for(path).and_then(|s| self.slot(s))
    }

    pub(crate) fn deny_slot(&mut self, slot: usize, reason: Reason) {
        if let Some(s) = self.slots.get_mut(slot) {
            s.effect = FieldEffect::Deny;
            s.reason = reason;
            s.rules_len = 0;
        }
    }
}

/// How a candidate rule came out for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Role, action, purpose or window do not apply.
    NotApplicable(&'static str),
    /// A condition is false (its index).
    ConditionFalse(usize),
    /// A condition could not be evaluated (its index).
    Errored(usize),
    /// Matched.
    Matched,
}

/// A borrowed attribute value.
#[derive(Clone, Copy, Debug)]
enum Val<'r> {
    Str(&'r str),
    Num(f64),
    Bool(bool),
    Time(OffsetDateTime),
    Set(&'r [String]),
}

impl<'r> Val<'r> {
    fn from_value(v: &'r AttrValue) -> Self {
        match v {
            AttrValue::String(s) => Val::Str(s),
            AttrValue::Number(n) => Val::Num(*n),
            AttrValue::Bool(b) => Val::Bool(*b),
            AttrValue::Time(t) => Val::Time(*t),
            AttrValue::Set(s) => Val::Set(s),
        }
    }
}

/// Why a condition could not be evaluated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EvalError {
    pub(crate) attr: String,
    pub(crate) problem: &'static str,
}

fn fetch<'r>(policy: &Policy, req: &'r Request, a: &AttrRef) -> Result<Option<Val<'r>>, EvalError> {
    let custom = |map: &'r BTreeMap<String, AttrValue>,
                  scope: &str,
                  name: &str|
     -> Result<Option<Val<'r>>, EvalError> {
        match map.get(name) {
            None => Ok(None),
            Some(v) => {
                let full = format!("{scope}.{name}");
                if policy.attributes.get(&full) == Some(&v.type_of()) {
                    Ok(Some(Val::from_value(v)))
                } else {
                    Err(EvalError {
                        attr: full,
                        problem: "has the wrong type",
                    })
                }
            }
        }
    };
    let opt = |s: &'r Option<String>| Ok(s.as_deref().map(Val::Str));
    match a {
        AttrRef::PrincipalId => Ok(Some(Val::Str(&req.principal.id))),
        AttrRef::PrincipalTenant => Ok(Some(Val::Str(&req.principal.tenant))),
        AttrRef::PrincipalRoles => Ok(Some(Val::Set(&req.principal.roles))),
        AttrRef::RecordTenant => Ok(Some(Val::Str(&req.record.tenant))),
        AttrRef::RecordKind => Ok(req.record.kind.map(|k| Val::Str(k.as_str()))),
        AttrRef::RecordRegion => opt(&req.record.region),
        AttrRef::RecordSubject => opt(&req.record.subject),
        AttrRef::ContextTime => Ok(req.context.time.map(Val::Time)),
        AttrRef::ContextHour => Ok(req.context.time.map(|t| Val::Num(f64::from(t.hour())))),
        AttrRef::ContextWeekday => Ok(req
            .context
            .time
            .map(|t| Val::Num(f64::from(t.weekday().number_from_monday())))),
        AttrRef::ContextDestinationRegion => opt(&req.context.destination_region),
        AttrRef::ContextTicket => opt(&req.context.ticket),
        AttrRef::ContextSecondApprover => opt(&req.context.second_approver),
        AttrRef::ContextClient => opt(&req.context.client),
        AttrRef::Principal(n) => custom(&req.principal.attributes, "principal", n),
        AttrRef::Record(n) => custom(&req.record.attributes, "record", n),
        AttrRef::Context(n) => custom(&req.context.attributes, "context", n),
    }
}

fn missing(a: &AttrRef) -> EvalError {
    EvalError {
        attr: a.to_string(),
        problem: "is missing from the request",
    }
}

fn lit_eq(v: Val<'_>, l: &Literal, a: &AttrRef) -> Result<bool, EvalError> {
    match (v, l) {
        (Val::Str(x), Literal::String(y)) => Ok(x == y),
        (Val::Num(x), Literal::Number(y)) => Ok(x == *y),
        (Val::Bool(x), Literal::Bool(y)) => Ok(x == *y),
        (Val::Time(x), Literal::Time(y)) => Ok(x == *y),
        _ => Err(EvalError {
            attr: a.to_string(),
            problem: "has the wrong type",
        }),
    }
}

pub(crate) fn eval(policy: &Policy, req: &Request, c: &Cond) -> Result<bool, EvalError> {
    let need = |a: &AttrRef| -> Result<Val<'_>, EvalError> {
        fetch(policy, req, a)?.ok_or_else(|| missing(a))
    };
    match c {
        Cond::Eq(a, l) => lit_eq(need(a)?, l, a),
        Cond::Ne(a, l) => lit_eq(need(a)?, l, a).map(|b| !b),
        Cond::In(a, ls) => {
            let v = need(a)?;
            for l in ls {
                if lit_eq(v, l, a)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Cond::NotIn(a, ls) => eval(policy, req, &Cond::In(a.clone(), ls.clone())).map(|b| !b),
        Cond::Cmp(a, op, l) => {
            let ord = match (need(a)?, l) {
                (Val::Num(x), Literal::Number(y)) => x.partial_cmp(y),
                (Val::Time(x), Literal::Time(y)) => Some(x.cmp(y)),
                _ => None,
            }
            .ok_or_else(|| EvalError {
                attr: a.to_string(),
                problem: "cannot be compared",
            })?;
            Ok(match op {
                CmpOp::Lt => ord.is_lt(),
                CmpOp::Le => ord.is_le(),
                CmpOp::Gt => ord.is_gt(),
                CmpOp::Ge => ord.is_ge(),
            })
        }
        Cond::Present(a, want) => {
            let present = match fetch(policy, req, a)? {
                None => false,
                Some(Val::Str(s)) => !s.is_empty(),
                Some(Val::Set(s)) => !s.is_empty(),
                Some(_) => true,
            };
            Ok(present == *want)
        }
        Cond::Contains(a, s) | Cond::NotContains(a, s) => match need(a)? {
            Val::Set(items) => {
                let has = items.iter().any(|i| i == s);
                Ok(if matches!(c, Cond::Contains(..)) {
                    has
                } else {
                    !has
                })
            }
            _ => Err(EvalError {
                attr: a.to_string(),
                problem: "is not a set",
            }),
        },
        Cond::EqAttr(a, b) | Cond::NeAttr(a, b) => {
            let eq = match (need(a)?, need(b)?) {
                (Val::Str(x), Val::Str(y)) => x == y,
                (Val::Num(x), Val::Num(y)) => x == y,
                (Val::Bool(x), Val::Bool(y)) => x == y,
                (Val::Time(x), Val::Time(y)) => x == y,
                _ => {
                    return Err(EvalError {
                        attr: a.to_string(),
                        problem: "cannot be compared with the other attribute",
                    });
                }
            };
            Ok(if matches!(c, Cond::EqAttr(..)) {
                eq
            } else {
                !eq
            })
        }
        Cond::All(cs) => {
            for c in cs {
                if !eval(policy, req, c)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Cond::Any(cs) => {
            // An error in one branch does not hide a true branch; with no true branch, the
            // error stands.
            let mut err = None;
            for c in cs {
                match eval(policy, req, c) {
                    Ok(true) => return Ok(true),
                    Ok(false) => {}
                    Err(e) => err = Some(e),
                }
            }
            err.map_or(Ok(false), Err)
        }
        Cond::Not(c) => eval(policy, req, c).map(|b| !b),
    }
}

fn requirements_met(req: &Request) -> u8 {
    let mut met = 0;
    if req
        .context
        .ticket
        .as_deref()
        .is_some_and(|t| !t.trim().is_empty())
    {
        met |= Requirement::Ticket.bit();
    }
    if req
        .context
        .second_approver
        .as_deref()
        .is_some_and(|a| !a.trim().is_empty() && a != req.principal.id)
    {
        met |= Requirement::SecondApprover.bit();
    }
    met
}

/// A condition's value in one decision, remembered: not evaluated yet, true, false, errored.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Memo {
    Unknown,
    True,
    False,
    Errored,
}

fn outcome(
    policy: &Policy,
    req: &Request,
    rule: &Rule,
    purpose: usize,
    memo: &mut [Memo],
) -> Outcome {
    if rule.purposes != 0 && !purpose_serves(policy.purpose_ancestry[purpose], rule.purposes) {
        return Outcome::NotApplicable("the purpose is not one the rule serves");
    }
    if rule.valid_from.is_some() || rule.valid_until.is_some() {
        match req.context.time {
            None => return Outcome::Errored(usize::MAX),
            Some(t) => {
                if rule.valid_from.is_some_and(|f| t < f) {
                    return Outcome::NotApplicable("the rule is not valid yet");
                }
                if rule.valid_until.is_some_and(|u| t >= u) {
                    return Outcome::NotApplicable("the rule has expired");
                }
            }
        }
    }
    for (i, c) in rule.when.iter().enumerate() {
        let slot = rule.when_ids.get(i).and_then(|&n| memo.get_mut(n as usize));
        let known = slot.as_ref().map_or(Memo::Unknown, |m| **m);
        let value = if known == Memo::Unknown {
            let v = match eval(policy, req, c) {
                Ok(true) => Memo::True,
                Ok(false) => Memo::False,
                Err(_) => Memo::Errored,
            };
            if let Some(m) = slot {
                *m = v;
            }
            v
        } else {
            known
        };
        match value {
            Memo::True => {}
            Memo::False => return Outcome::ConditionFalse(i),
            Memo::Errored | Memo::Unknown => return Outcome::Errored(i),
        }
    }
    Outcome::Matched
}

/// How restrictive a mask is, smaller is more restrictive; ties break on the form's name and then
/// the profile, a total order, so that the choice never depends on rule order.
fn mask_rank(rule: MaskRule, profile: Profile) -> (u8, &'static str, Profile) {
    let r = match (rule.operator(), profile) {
        (MaskOperator::Withhold, _) => 0,
        (MaskOperator::KeyedHash, _) => 1,
        (MaskOperator::Partial, Profile::Standard) => 2,
        (MaskOperator::Partial, Profile::Privileged) => 3,
        (MaskOperator::Clear, _) => 4,
    };
    (r, rule.as_str(), profile)
}

/// What can be known of a decision before the request's facts are looked at, for one
/// (roles, purpose, action): the candidate rules that serve the purpose, the plain allows (no
/// requirement, no validity window) grouped by their conditions with their fields by slot, and
/// the rest one by one. Made on first use and kept by the policy (issue 18: a dense policy
/// grants one role hundreds of rules that share a few conditions).
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Denies, masks, allows with requirements or windows: decided rule by rule, in order.
    singles: Vec<u16>,
    groups: Vec<GrantGroup>,
}

/// Plain allows with the same conditions: they match, fail or error together.
#[derive(Debug)]
struct GrantGroup {
    /// The group's first rule, whose outcome is every member's.
    first: u16,
    /// How many rules.
    rules: u32,
    /// The union of their fields.
    fields: super::FieldSet,
    /// The rules covering each slot, in rule order: `by_slot[starts[s]..starts[s + 1]]`.
    starts: Vec<u32>,
    by_slot: Vec<u16>,
}

impl GrantGroup {
    fn refs(&self, slot: usize) -> &[u16] {
        match (self.starts.get(slot), self.starts.get(slot + 1)) {
            (Some(&a), Some(&b)) => self.by_slot.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// Plans kept at most (distinct role sets, purposes and actions seen); past it they are made
/// afresh, and the store starts over.
const MAX_PLANS: usize = 4096;

impl Policy {
    /// The plan for `role_bits`, `purpose` and `action`, from the policy's cache or made now.
    fn plan(&self, role_bits: u128, purpose: usize, action: Action) -> Arc<Plan> {
        let key = (role_bits, purpose, action as u8);
        let cached = self
            .plans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned();
        if let Some(plan) = cached {
            return plan;
        }
        let plan = Arc::new(self.make_plan(role_bits, purpose, action));
        let mut plans = self
            .plans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if plans.len() >= MAX_PLANS {
            plans.clear();
        }
        plans.insert(key, Arc::clone(&plan));
        plan
    }

    fn make_plan(&self, role_bits: u128, purpose: usize, action: Action) -> Plan {
        let n = self.slots.len();
        let mut plan = Plan::default();
        let mut members: Vec<Vec<u16>> = Vec::new();
        let mut group_of: HashMap<&[u32], usize> = HashMap::default();
        for i in self.candidates(role_bits, action) {
            let rule = &self.rules[usize::from(i)];
            // A rule that does not serve the purpose never applies to this request.
            if rule.purposes != 0 && !purpose_serves(self.purpose_ancestry[purpose], rule.purposes)
            {
                continue;
            }
            let plain = rule.effect == Effect::Allow
                && rule.require == 0
                && rule.valid_from.is_none()
                && rule.valid_until.is_none()
                && rule.when_ids.len() == rule.when.len();
            if !plain {
                plan.singles.push(i);
                continue;
            }
            let g = *group_of.entry(&rule.when_ids).or_insert_with(|| {
                members.push(Vec::new());
                members.len() - 1
            });
            members[g].push(i);
        }
        for rules in members {
            let mut starts = vec![0u32; n + 1];
            let mut fields: super::FieldSet = 0;
            for &i in &rules {
                let f = self.rules[usize::from(i)].fields;
                fields |= f;
                for s in bits(f).filter(|&s| s < n) {
                    starts[s + 1] += 1;
                }
            }
            for s in 0..n {
                starts[s + 1] += starts[s];
            }
            let mut by_slot = vec![0u16; starts[n] as usize];
            let mut fill = starts.clone();
            for &i in &rules {
                for s in bits(self.rules[usize::from(i)].fields).filter(|&s| s < n) {
                    by_slot[fill[s] as usize] = i;
                    fill[s] += 1;
                }
            }
            plan.groups.push(GrantGroup {
                first: rules[0],
                rules: u32::try_from(rules.len()).unwrap_or(u32::MAX),
                fields,
                starts,
                by_slot,
            });
        }
        plan
    }

    fn request_denial(&self, req: &Request) -> Result<(u128, usize), RequestDenial> {
        if req.principal.tenant != req.record.tenant {
            return Err(RequestDenial::TenantMismatch);
        }
        let purpose = *self
            .purposes
            .get(&req.purpose)
            .ok_or_else(|| RequestDenial::UnknownPurpose(req.purpose.clone()))?;
        if req.principal.roles.is_empty() {
            return Err(RequestDenial::NoRoles);
        }
        let mut role_bits = 0u128;
        for r in &req.principal.roles {
            let i = *self
                .roles
                .get(r)
                .ok_or_else(|| RequestDenial::UnknownRole(r.clone()))?;
            role_bits |= self.role_closure[i];
        }
        Ok((role_bits, purpose))
    }

    fn candidates(&self, role_bits: u128, action: Action) -> Vec<u16> {
        let mut c: Vec<u16> = self.any_role[action as usize].clone();
        let mut sources = usize::from(!c.is_empty());
        for r in bits(role_bits) {
            let bucket = &self.index[r * 6 + action as usize];
            if !bucket.is_empty() {
                c.extend_from_slice(bucket);
                sources += 1;
            }
        }
        if sources > 1 {
            c.sort_unstable();
            c.dedup();
        }
        c
    }

    fn resolved_mask(&self, rule: &Rule, slot: usize) -> (MaskRule, Profile) {
        let (m, p) = match rule.mask {
            Some((MaskChoice::Rule(m), p)) => (m, p),
            Some((MaskChoice::SchemaDefault, p)) => (self.slot_mask[slot], p),
            None => (MaskRule::Withhold, Profile::Standard),
        };
        // A profile only widens partial forms; for the others it means nothing, and keeping it
        // would let equal masks differ by rule order.
        if m.operator() == MaskOperator::Partial {
            (m, p)
        } else {
            (m, Profile::Standard)
        }
    }

    /// Decides a request: for every field of the record, reveal, mask or deny, with the rules
    /// that determined it. Never fails: anything that cannot be evaluated is resolved closed.
    pub fn decide(&self, req: &Request) -> Decision {
        let n = self.slots.len();
        let mut d = Decision {
            policy_version: Arc::clone(&self.version),
            action: req.action,
            purpose: req.purpose.clone(),
            denial: None,
            slots: Vec::with_capacity(n),
            rule_refs: Vec::new(),
            audit_detail: false,
            errors: 0,
        };
        let (role_bits, purpose) = match self.request_denial(req) {
            Ok(x) => x,
            Err(denial) => {
                let reason = Reason::Request(denial.clone());
                d.slots = vec![
                    SlotOutcome {
                        effect: FieldEffect::Deny,
                        reason,
                        rules_start: 0,
                        rules_len: 0,
                        unmet: 0
                    };
                    n
                ];
                d.denial = Some(denial);
                return d;
            }
        };

        let met = requirements_met(req);
        // Matched rules by kind, and the union of the fields each kind covers: a slot then looks
        // only at the list that can decide it.
        let (mut denies, mut grants, mut masks, mut unmets) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut deny_bits, mut grant_bits, mut mask_bits) = (0u128, 0u128, 0u128);
        // Remembered condition values: on the stack for the usual few dozen.
        let mut memo_stack = [Memo::Unknown; 64];
        let mut memo_heap = Vec::new();
        let memo: &mut [Memo] = if self.conditions <= memo_stack.len() {
            &mut memo_stack[..self.conditions]
        } else {
            memo_heap.resize(self.conditions, Memo::Unknown);
            &mut memo_heap
        };
        let plan = self.plan(role_bits, purpose, req.action);
        // Plain allows sharing their conditions: one outcome per group.
        let mut matched_groups: Vec<&GrantGroup> = Vec::new();
        for g in &plan.groups {
            match outcome(self, req, &self.rules[usize::from(g.first)], purpose, memo) {
                Outcome::Matched => {
                    grant_bits |= g.fields;
                    matched_groups.push(g);
                }
                // Each rule of the group errored; an erroring allow does not apply.
                Outcome::Errored(_) => d.errors += g.rules,
                Outcome::NotApplicable(_) | Outcome::ConditionFalse(_) => {}
            }
        }
        for &i in &plan.singles {
            let rule = &self.rules[usize::from(i)];
            let matched = match outcome(self, req, rule, purpose, memo) {
                Outcome::Matched => true,
                Outcome::Errored(_) => {
                    d.errors += 1;
                    // Fail closed: an erroring guardrail applies, an erroring allow does not.
                    rule.effect != Effect::Allow
                }
                Outcome::NotApplicable(_) | Outcome::ConditionFalse(_) => false,
            };
            if !matched {
                continue;
            }
            match rule.effect {
                Effect::Deny => {
                    deny_bits |= rule.fields;
                    denies.push(i);
                }
                Effect::Mask => {
                    mask_bits |= rule.fields;
                    masks.push(i);
                }
                Effect::Allow if rule.require & !met != 0 => unmets.push((i, rule.require & !met)),
                Effect::Allow => {
                    grant_bits |= rule.fields;
                    grants.push(i);
                }
            }
        }

        for slot in 0..n {
            let bit = 1u128 << slot;
            let covers = |i: &u16| self.rules[usize::from(*i)].fields & bit != 0;
            let start = d.rule_refs.len();
            let mut unmet = 0u8;
            let (effect, reason) = if deny_bits & bit != 0 {
                d.rule_refs.extend(denies.iter().copied().filter(covers));
                (FieldEffect::Deny, Reason::DeniedByRule)
            } else if grant_bits & bit == 0 {
                for (i, u) in &unmets {
                    if covers(i) {
                        unmet |= u;
                        d.rule_refs.push(*i);
                    }
                }
                (
                    FieldEffect::Deny,
                    if unmet != 0 {
                        Reason::Unmet
                    } else {
                        Reason::NoMatchingAllow
                    },
                )
            } else {
                // The granting rules, in rule order: the single rules' and each matched
                // group's (kept by slot in the plan), merged when more than one gives some.
                let from = d.rule_refs.len();
                d.rule_refs.extend(grants.iter().copied().filter(covers));
                let mut sources = usize::from(d.rule_refs.len() > from);
                for g in &matched_groups {
                    let refs = g.refs(slot);
                    if !refs.is_empty() {
                        d.rule_refs.extend_from_slice(refs);
                        sources += 1;
                    }
                }
                if sources > 1 {
                    d.rule_refs[from..].sort_unstable();
                }
                if mask_bits & bit == 0 {
                    (FieldEffect::Reveal, Reason::Allowed)
                } else {
                    let mask_of = |i: &u16| self.resolved_mask(&self.rules[usize::from(*i)], slot);
                    let tightest = masks
                        .iter()
                        .filter(|i| covers(i))
                        .map(mask_of)
                        .min_by_key(|(m, p)| mask_rank(*m, *p))
                        .unwrap_or((MaskRule::Withhold, Profile::Standard));
                    d.rule_refs.extend(
                        masks
                            .iter()
                            .copied()
                            .filter(|i| covers(i) && mask_of(i) == tightest),
                    );
                    let (rule, profile) = tightest;
                    (FieldEffect::Mask { rule, profile }, Reason::Masked)
                }
            };
            let rules_len = d.rule_refs.len() - start;
            if d.rule_refs[start..]
                .iter()
                .any(|&i| self.rules[usize::from(i)].audit_detail)
            {
                d.audit_detail = true;
            }
            d.slots.push(SlotOutcome {
                effect,
                reason,
                rules_start: u32::try_from(start).unwrap_or(u32::MAX),
                rules_len: u32::try_from(rules_len).unwrap_or(0),
                unmet,
            });
        }

        // Restriction after an erasure request: only the purposes the retention rule names may
        // still reveal a restricted category.
        for (category, allowed) in &req.record.restricted {
            let served = allowed
                .iter()
                .filter_map(|p| self.purposes.get(p))
                .any(|&p| purpose_serves(self.purpose_ancestry[purpose], 1 << p));
            if !served {
                for slot in 0..n {
                    if &self.slot_category[slot] == category {
                        d.deny_slot(slot, Reason::Restricted);
                    }
                }
            }
        }
        d
    }

    /// Explains a request: every rule with whether it matched, and if not, why (the role,
    /// action, purpose or window, the first false condition, or the error), followed by the
    /// decision. What an administrator needs to answer "why was I denied?".
    pub fn explain(&self, req: &Request) -> Explanation {
        let decision = self.decide(req);
        let mut rules = Vec::new();
        let resolved = self.request_denial(req).ok();
        let met = requirements_met(req);
        let mut memo = vec![Memo::Unknown; self.conditions];
        for rule in &self.rules {
            let status = match resolved {
                None => RuleStatus::NotApplicable(
                    "the request was denied before rules were looked at".into(),
                ),
                Some((role_bits, purpose)) => {
                    if rule.actions & req.action.bit() == 0 {
                        RuleStatus::NotApplicable(format!(
                            "the rule does not cover the action `{}`",
                            req.action
                        ))
                    } else if rule.roles.is_some_and(|r| r & role_bits == 0) {
                        RuleStatus::NotApplicable("the rule is for other roles".into())
                    } else {
                        match outcome(self, req, rule, purpose, &mut memo) {
                            Outcome::NotApplicable(why) => RuleStatus::NotApplicable(why.into()),
                            Outcome::ConditionFalse(i) => {
                                RuleStatus::ConditionFalse(rule.when[i].to_string())
                            }
                            Outcome::Errored(i) => {
                                let (condition, error) = match rule.when.get(i) {
                                    Some(c) => (
                                        c.to_string(),
                                        eval(self, req, c).err().map_or_else(String::new, |e| {
                                            format!("`{}` {}", e.attr, e.problem)
                                        }),
                                    ),
                                    None => (
                                        "validity window".into(),
                                        "the request has no context.time".into(),
                                    ),
                                };
                                let resolution = if rule.effect == Effect::Allow {
                                    "not matched"
                                } else {
                                    "applied"
                                };
                                RuleStatus::Errored {
                                    condition,
                                    error: format!("{error}; resolved closed: {resolution}"),
                                }
                            }
                            Outcome::Matched
                                if rule.effect == Effect::Allow && rule.require & !met != 0 =>
                            {
                                RuleStatus::Unmet(
                                    Requirement::from_bits(rule.require & !met).collect(),
                                )
                            }
                            Outcome::Matched => RuleStatus::Matched,
                        }
                    }
                }
            };
            rules.push(RuleExplanation {
                id: rule.id.clone(),
                effect: rule.effect,
                line: rule.line,
                fields: bits(rule.fields).map(|s| self.slots[s].clone()).collect(),
                status,
            });
        }
        let fields = (0..self.slots.len())
            .filter_map(|s| {
                decision.slot(s).map(|f| {
                    (
                        self.slots[s].clone(),
                        f.effect,
                        f.reason.to_string(),
                        f.rule_ids(self).into_iter().map(str::to_owned).collect(),
                    )
                })
            })
            .collect();
        Explanation {
            policy_version: self.version.to_string(),
            denial: decision.denial.clone(),
            rules,
            fields,
        }
    }
}

/// How a rule came out for a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleStatus {
    /// The rule matched.
    Matched,
    /// The rule does not apply (role, action, purpose, validity window), and why.
    NotApplicable(String),
    /// This condition was false (the first one that was).
    ConditionFalse(String),
    /// This condition could not be evaluated, why, and how it was resolved.
    Errored {
        /// The condition.
        condition: String,
        /// What went wrong and how it was resolved.
        error: String,
    },
    /// The allow rule matched but these requirements are unmet.
    Unmet(Vec<Requirement>),
}

impl fmt::Display for RuleStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Matched => f.write_str("matched"),
            Self::NotApplicable(why) => write!(f, "not applicable: {why}"),
            Self::ConditionFalse(c) => write!(f, "not matched: {c} is false"),
            Self::Errored { condition, error } => write!(f, "error in {condition}: {error}"),
            Self::Unmet(req) => write!(
                f,
                "matched, but unmet: {}",
                req.iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// One rule in an [`Explanation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleExplanation {
    /// The rule's id.
    pub id: String,
    /// Its effect.
    pub effect: Effect,
    /// Its line in the policy document.
    pub line: usize,
    /// The field patterns it covers.
    pub fields: Vec<String>,
    /// How it came out.
    pub status: RuleStatus,
}

/// Why a request got what it got.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// The policy version.
    pub policy_version: String,
    /// Why the whole request was denied, if it was.
    pub denial: Option<RequestDenial>,
    /// Every rule with its status.
    pub rules: Vec<RuleExplanation>,
    /// Every field pattern with its effect, reason and determining rules.
    pub fields: Vec<(String, FieldEffect, String, Vec<String>)>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "policy version {}",
            &self.policy_version[..self.policy_version.len().min(16)]
        )?;
        if let Some(d) = &self.denial {
            writeln!(f, "request denied: {d}")?;
        }
        writeln!(f, "rules:")?;
        for r in &self.rules {
            writeln!(
                f,
                "  {} ({}, line {}): {}",
                r.id,
                r.effect.as_str(),
                r.line,
                r.status
            )?;
        }
        writeln!(f, "fields:")?;
        for (pattern, effect, reason, rules) in &self.fields {
            let effect = match effect {
                FieldEffect::Mask { rule, profile } => {
                    format!("mask {rule} ({})", profile.as_str())
                }
                e => e.as_str().to_owned(),
            };
            write!(f, "  {pattern}: {effect}: {reason}")?;
            if !rules.is_empty() {
                write!(f, " [{}]", rules.join(", "))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

impl fmt::Display for AttrRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::PrincipalId => "principal.id",
            Self::PrincipalTenant => "principal.tenant",
            Self::PrincipalRoles => "principal.roles",
            Self::RecordTenant => "record.tenant",
            Self::RecordKind => "record.kind",
            Self::RecordRegion => "record.region",
            Self::RecordSubject => "record.subject",
            Self::ContextTime => "context.time",
            Self::ContextHour => "context.hour",
            Self::ContextWeekday => "context.weekday",
            Self::ContextDestinationRegion => "context.destination_region",
            Self::ContextTicket => "context.ticket",
            Self::ContextSecondApprover => "context.second_approver",
            Self::ContextClient => "context.client",
            Self::Principal(n) => return write!(f, "principal.{n}"),
            Self::Record(n) => return write!(f, "record.{n}"),
            Self::Context(n) => return write!(f, "context.{n}"),
        };
        f.write_str(s)
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |ls: &[Literal]| {
            ls.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Self::Eq(a, l) => write!(f, "{a} == {l}"),
            Self::Ne(a, l) => write!(f, "{a} != {l}"),
            Self::In(a, ls) => write!(f, "{a} in [{}]", list(ls)),
            Self::NotIn(a, ls) => write!(f, "{a} not in [{}]", list(ls)),
            Self::Cmp(a, op, l) => {
                let op = match op {
                    CmpOp::Lt => "<",
                    CmpOp::Le => "<=",
                    CmpOp::Gt => ">",
                    CmpOp::Ge => ">=",
                };
                write!(f, "{a} {op} {l}")
            }
            Self::Present(a, true) => write!(f, "{a} is present"),
            Self::Present(a, false) => write!(f, "{a} is absent"),
            Self::Contains(a, s) => write!(f, "{a} contains {s:?}"),
            Self::NotContains(a, s) => write!(f, "{a} does not contain {s:?}"),
            Self::EqAttr(a, b) => write!(f, "{a} == {b}"),
            Self::NeAttr(a, b) => write!(f, "{a} != {b}"),
            Self::All(cs) => write!(
                f,
                "all({})",
                cs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::Any(cs) => write!(
                f,
                "any({})",
                cs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::Not(c) => write!(f, "not({c})"),
        }
    }
}
