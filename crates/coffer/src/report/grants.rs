//! What a policy grants, read for the access review and the compliance check: each role's
//! grants on personal fields, and the rules that reveal sensitive fields without a ticket or a
//! legal basis.

use super::{Grant, RoleReview};
use crate::policy::{Action, Effect, Policy};
use crate::record::{Classification, Schema};

/// The bits of the purposes a rule serves (every purpose when 0).
pub(crate) fn purpose_names(policy: &Policy, bits: u128) -> Vec<String> {
    if bits == 0 {
        return policy.purpose_names.clone();
    }
    (0..policy.purpose_names.len())
        .filter(|i| bits & (1u128 << i) != 0)
        .map(|i| policy.purpose_names[i].clone())
        .collect()
}

/// Whether a rule covers a role (with what the role inherits), `read`, a slot and a purpose.
pub(crate) fn covers(
    policy: &Policy,
    rule: &crate::policy::Rule,
    role: usize,
    slot: usize,
    purpose: usize,
) -> bool {
    rule.actions & Action::Read.bit() != 0
        && rule.fields & (1u128 << slot) != 0
        && rule
            .roles
            .is_none_or(|r| r & policy.role_closure[role] != 0)
        && (rule.purposes == 0 || policy.purpose_ancestry[purpose] & rule.purposes != 0)
}

pub(crate) fn unconditional(rule: &crate::policy::Rule) -> bool {
    rule.when.is_empty() && rule.valid_from.is_none() && rule.valid_until.is_none()
}

/// Every grant of every role on personal and sensitive fields, without usage.
pub(crate) fn review_grants(schema: &Schema, policy: &Policy) -> Vec<RoleReview> {
    let mut out = Vec::new();
    for (role, name) in policy.role_names.iter().enumerate() {
        let inherits: Vec<String> = (0..policy.role_names.len())
            .filter(|&i| i != role && policy.role_closure[role] & (1u128 << i) != 0)
            .map(|i| policy.role_names[i].clone())
            .collect();
        let mut grants = Vec::new();
        for (slot, pattern) in policy.slots.iter().enumerate() {
            let Some(spec) = schema.spec_for_pattern(pattern) else {
                continue;
            };
            if spec.classification < Classification::Personal {
                continue;
            }
            for rule in policy.rules.iter().filter(|r| r.effect == Effect::Allow) {
                for purpose in purpose_names(policy, rule.purposes) {
                    let Some(&p) = policy.purposes.get(&purpose) else {
                        continue;
                    };
                    if !covers(policy, rule, role, slot, p) {
                        continue;
                    }
                    let guards: Vec<&crate::policy::Rule> = policy
                        .rules
                        .iter()
                        .filter(|g| g.effect != Effect::Allow && covers(policy, g, role, slot, p))
                        .collect();
                    let effect = if guards
                        .iter()
                        .any(|g| g.effect == Effect::Deny && unconditional(g))
                    {
                        "deny"
                    } else if guards
                        .iter()
                        .any(|g| g.effect == Effect::Mask && unconditional(g))
                    {
                        "mask"
                    } else {
                        "reveal"
                    };
                    grants.push(Grant {
                        field: pattern.clone(),
                        classification: spec.classification.as_str().into(),
                        purpose,
                        rule: rule.id.clone(),
                        effect: effect.into(),
                        conditional: !unconditional(rule),
                        requires: crate::policy::Requirement::from_bits(rule.require)
                            .map(|r| r.as_str().to_owned())
                            .collect(),
                        guardrails: guards
                            .iter()
                            .filter(|g| !unconditional(g))
                            .map(|g| g.id.clone())
                            .collect(),
                        used: 0,
                        last_used: None,
                    });
                }
            }
        }
        out.push(RoleReview {
            role: name.clone(),
            inherits,
            grants,
        });
    }
    out
}

/// Whether a condition keeps data in CN or asks for a transfer basis.
pub(crate) fn guards_transfer(c: &crate::policy::Cond) -> bool {
    use crate::policy::{AttrRef, Cond, Literal};
    let cn = |l: &Literal| matches!(l, Literal::String(s) if s == "CN");
    match c {
        Cond::Eq(AttrRef::ContextDestinationRegion, l) => cn(l),
        Cond::In(AttrRef::ContextDestinationRegion, ls) => !ls.is_empty() && ls.iter().all(cn),
        Cond::Present(AttrRef::Context(name), true) => name.contains("transfer"),
        Cond::Eq(AttrRef::Context(name), _) | Cond::In(AttrRef::Context(name), _) => {
            name.contains("transfer")
        }
        Cond::All(cs) => cs.iter().any(guards_transfer),
        _ => false,
    }
}

/// Allow rules that reveal sensitive fields without a ticket, and without a transfer guard.
pub(crate) fn policy_findings(schema: &Schema, policy: &Policy) -> (Vec<String>, Vec<String>) {
    let sensitive: u128 = policy
        .slots
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            schema
                .spec_for_pattern(p)
                .is_some_and(|s| s.classification == Classification::Sensitive)
        })
        .fold(0, |bits, (i, _)| bits | (1u128 << i));
    // Deny rules for every role that keep reads of those fields in CN.
    let guarded_by_deny: u128 = policy
        .rules
        .iter()
        .filter(|r| {
            r.effect == Effect::Deny
                && r.roles.is_none()
                && r.actions & Action::Read.bit() != 0
                && r.purposes == 0
                && r.when.iter().any(|c| {
                    use crate::policy::{AttrRef, Cond, Literal};
                    matches!(c, Cond::Ne(AttrRef::ContextDestinationRegion, Literal::String(s)) if s == "CN")
                        || matches!(c, Cond::NotIn(AttrRef::ContextDestinationRegion, ls) if ls.iter().any(|l| matches!(l, Literal::String(s) if s == "CN")))
                })
        })
        .fold(0, |bits, r| bits | r.fields);
    let (mut no_ticket, mut no_basis) = (Vec::new(), Vec::new());
    for rule in &policy.rules {
        if rule.effect != Effect::Allow
            || rule.actions & Action::Read.bit() == 0
            || rule.fields & sensitive == 0
        {
            continue;
        }
        let fields: Vec<&str> = (0..policy.slots.len())
            .filter(|&i| rule.fields & sensitive & (1u128 << i) != 0)
            .map(|i| policy.slots[i].as_str())
            .collect();
        // Masked everywhere it applies is not "in clear": an unconditional mask rule that covers
        // every role and purpose this allow covers narrows it for good.
        let masked: u128 = policy
            .rules
            .iter()
            .filter(|m| {
                m.effect == Effect::Mask
                    && unconditional(m)
                    && m.actions & Action::Read.bit() != 0
                    && (m.roles.is_none() || m.roles == rule.roles)
                    && (m.purposes == 0 || (rule.purposes != 0 && rule.purposes & !m.purposes == 0))
            })
            .fold(0, |bits, m| bits | m.fields);
        if rule.fields & sensitive & !masked == 0 {
            continue;
        }
        let label = format!(
            "rule `{}` (line {}): {}",
            rule.id,
            rule.line,
            fields.join(", ")
        );
        if rule.require & crate::policy::Requirement::Ticket.bit() == 0 {
            no_ticket.push(label.clone());
        }
        if rule.fields & sensitive & !guarded_by_deny != 0 && !rule.when.iter().any(guards_transfer)
        {
            no_basis.push(label);
        }
    }
    (no_ticket, no_basis)
}
