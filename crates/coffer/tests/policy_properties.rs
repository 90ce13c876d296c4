//! Properties of the policy lattice, checked on random policies and requests, and the engine
//! checked against a deliberately naive reference evaluator written from the specification.

use coffer::mask::{MaskForm, MaskOperator, MaskRule, Profile};
use coffer::policy::{Action, Context, FieldEffect, Policy, Principal, RecordFacts, Request};
use coffer::record::{FIELD_PATTERNS, Schema};
use proptest::prelude::*;

const ROLES: [&str; 3] = ["r0", "r1", "r2"]; // r2 inherits r0
const PURPOSES: [&str; 3] = ["p0", "p1", "p2"]; // p1's parent is p0
const ACTIONS: [Action; 2] = [Action::Read, Action::Export];
const CLIENTS: [&str; 2] = ["ui", "batch"];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Eff {
    Allow,
    Mask,
    Deny,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum CondKind {
    None,
    ClientIs(usize),
    TicketPresent,
    /// Tests an attribute that requests never carry: always an evaluation error.
    Erroring,
}

#[derive(Clone, Debug)]
struct ARule {
    effect: Eff,
    roles: Option<Vec<usize>>,
    actions: Vec<usize>,
    fields: Vec<usize>,
    purposes: Vec<usize>,
    cond: CondKind,
    mask: (usize, Profile), // 0 default, 1 withhold, 2 last4
    require_ticket: bool,
}

#[derive(Clone, Debug)]
struct AReq {
    roles: Vec<usize>,
    action: usize,
    purpose: usize,
    client: Option<usize>,
    ticket: bool,
    same_tenant: bool,
}

fn subset(n: usize, min: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::btree_set(0..n, min..=n).prop_map(|s| s.into_iter().collect())
}

fn arule() -> impl Strategy<Value = ARule> {
    (
        prop_oneof![Just(Eff::Allow), Just(Eff::Mask), Just(Eff::Deny)],
        prop::option::of(subset(3, 1)),
        subset(2, 1),
        subset(FIELD_PATTERNS.len(), 1),
        subset(3, 0),
        prop_oneof![
            Just(CondKind::None),
            (0..2usize).prop_map(CondKind::ClientIs),
            Just(CondKind::TicketPresent),
            Just(CondKind::Erroring)
        ],
        (
            0..3usize,
            prop_oneof![Just(Profile::Standard), Just(Profile::Privileged)],
        ),
        any::<bool>(),
    )
        .prop_map(
            |(effect, roles, actions, fields, mut purposes, cond, mask, require_ticket)| {
                if effect == Eff::Allow && purposes.is_empty() {
                    purposes.push(0);
                }
                ARule {
                    effect,
                    roles,
                    actions,
                    fields,
                    purposes,
                    cond,
                    mask,
                    require_ticket: require_ticket && effect == Eff::Allow,
                }
            },
        )
}

fn areq() -> impl Strategy<Value = AReq> {
    (
        subset(3, 1),
        0..2usize,
        0..3usize,
        prop::option::of(0..2usize),
        any::<bool>(),
        prop::bool::weighted(0.9),
    )
        .prop_map(
            |(roles, action, purpose, client, ticket, same_tenant)| AReq {
                roles,
                action,
                purpose,
                client,
                ticket,
                same_tenant,
            },
        )
}

fn quote_list<T: AsRef<str>>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|s| format!("{:?}", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn render(rules: &[ARule]) -> String {
    let mut s = String::from(
        "version = 1\ndefault = \"deny\"\n[attributes]\n\"context.flag\" = \"bool\"\n\
         [roles.r0]\n[roles.r1]\n[roles.r2]\ninherits = [\"r0\"]\n\
         [purposes.p0]\n[purposes.p1]\nparent = \"p0\"\n[purposes.p2]\n",
    );
    for (i, r) in rules.iter().enumerate() {
        s.push_str(&format!("[[rules]]\nid = \"rule{i}\"\n"));
        s.push_str(match r.effect {
            Eff::Allow => "effect = \"allow\"\n",
            Eff::Mask => "effect = \"mask\"\n",
            Eff::Deny => "effect = \"deny\"\n",
        });
        if let Some(roles) = &r.roles {
            s.push_str(&format!(
                "roles = [{}]\n",
                quote_list(roles.iter().map(|&i| ROLES[i]))
            ));
        }
        s.push_str(&format!(
            "actions = [{}]\n",
            quote_list(r.actions.iter().map(|&i| ACTIONS[i].as_str()))
        ));
        s.push_str(&format!(
            "fields = [{}]\n",
            quote_list(r.fields.iter().map(|&i| FIELD_PATTERNS[i]))
        ));
        if !r.purposes.is_empty() {
            s.push_str(&format!(
                "purposes = [{}]\n",
                quote_list(r.purposes.iter().map(|&i| PURPOSES[i]))
            ));
        }
        match r.cond {
            CondKind::None => {}
            CondKind::ClientIs(c) => s.push_str(&format!(
                "when = [{{ attr = \"context.client\", eq = {:?} }}]\n",
                CLIENTS[c]
            )),
            CondKind::TicketPresent => {
                s.push_str("when = [{ attr = \"context.ticket\", present = true }]\n")
            }
            CondKind::Erroring => s.push_str("when = [{ attr = \"context.flag\", eq = true }]\n"),
        }
        if r.effect == Eff::Mask {
            let m = ["default", "withhold", "last4"][r.mask.0];
            s.push_str(&format!(
                "mask = {m:?}\nprofile = {:?}\n",
                r.mask.1.as_str()
            ));
        }
        if r.require_ticket {
            s.push_str("require = [\"ticket\"]\n");
        }
    }
    s
}

fn request(q: &AReq) -> Request {
    Request {
        principal: Principal {
            id: "u".into(),
            tenant: "t".into(),
            roles: q.roles.iter().map(|&i| ROLES[i].to_owned()).collect(),
            attributes: Default::default(),
        },
        action: ACTIONS[q.action],
        purpose: PURPOSES[q.purpose].into(),
        record: RecordFacts {
            tenant: if q.same_tenant {
                "t".into()
            } else {
                "other".into()
            },
            ..Default::default()
        },
        context: Context {
            client: q.client.map(|c| CLIENTS[c].to_owned()),
            ticket: q.ticket.then(|| "T-1".to_owned()),
            ..Default::default()
        },
    }
}

/// A total order on effects: deny < withhold < keyed hash < standard partial < privileged
/// partial < reveal; partial forms of the same width tie-break on their names.
fn rank(e: FieldEffect) -> (u8, &'static str, Profile) {
    match e {
        FieldEffect::Deny => (0, "", Profile::Standard),
        FieldEffect::Mask { rule, profile } => {
            let r = match (rule.operator(), profile) {
                (MaskOperator::Withhold, _) => 1,
                (MaskOperator::KeyedHash, _) => 2,
                (MaskOperator::Partial, Profile::Standard) => 3,
                (MaskOperator::Partial, Profile::Privileged) => 4,
                (MaskOperator::Clear, _) => 5,
            };
            (r, rule.as_str(), profile)
        }
        FieldEffect::Reveal => (9, "", Profile::Standard),
    }
}

/// The specification, evaluated the slow way: every rule, every field, no index.
fn reference(rules: &[ARule], q: &AReq) -> Vec<FieldEffect> {
    let schema = Schema::builtin();
    let mut roles = q.roles.clone();
    if roles.contains(&2) {
        roles.push(0);
    }
    (0..FIELD_PATTERNS.len())
        .map(|slot| {
            if !q.same_tenant {
                return FieldEffect::Deny;
            }
            let (mut deny, mut grant) = (false, false);
            let mut masks: Vec<FieldEffect> = Vec::new();
            for r in rules {
                let applies = r.actions.contains(&q.action)
                    && r.roles
                        .as_ref()
                        .is_none_or(|rs| rs.iter().any(|x| roles.contains(x)))
                    && r.fields.contains(&slot)
                    && (r.purposes.is_empty()
                        || r.purposes
                            .iter()
                            .any(|&p| p == q.purpose || (q.purpose == 1 && p == 0)));
                if !applies {
                    continue;
                }
                let cond: Result<bool, ()> = match r.cond {
                    CondKind::None => Ok(true),
                    CondKind::ClientIs(c) => q.client.map(|x| x == c).ok_or(()),
                    CondKind::TicketPresent => Ok(q.ticket),
                    CondKind::Erroring => Err(()),
                };
                let matched = match cond {
                    Ok(b) => b,
                    Err(()) => r.effect != Eff::Allow,
                };
                if !matched {
                    continue;
                }
                match r.effect {
                    Eff::Deny => deny = true,
                    Eff::Allow => grant |= !r.require_ticket || q.ticket,
                    Eff::Mask => {
                        let rule = match r.mask.0 {
                            0 => schema.spec_for_pattern(FIELD_PATTERNS[slot]).unwrap().mask,
                            1 => MaskRule::Withhold,
                            _ => MaskRule::Partial(MaskForm::Last4),
                        };
                        // A profile only applies to partial forms.
                        let profile = if rule.operator() == MaskOperator::Partial {
                            r.mask.1
                        } else {
                            Profile::Standard
                        };
                        masks.push(FieldEffect::Mask { rule, profile });
                    }
                }
            }
            if deny || !grant {
                FieldEffect::Deny
            } else {
                masks
                    .into_iter()
                    .min_by_key(|m| rank(*m))
                    .unwrap_or(FieldEffect::Reveal)
            }
        })
        .collect()
}

fn engine(rules: &[ARule], q: &AReq) -> Vec<FieldEffect> {
    let p = Policy::from_toml(&render(rules), Schema::builtin())
        .unwrap_or_else(|e| panic!("{e}\n{}", render(rules)));
    let d = p.decide(&request(q));
    (0..FIELD_PATTERNS.len())
        .map(|s| d.slot(s).unwrap().effect)
        .collect()
}

fn no_wider(new: &[FieldEffect], old: &[FieldEffect]) -> bool {
    new.iter().zip(old).all(|(n, o)| rank(*n).0 <= rank(*o).0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn engine_matches_the_reference(rules in prop::collection::vec(arule(), 0..10), q in areq()) {
        prop_assert_eq!(engine(&rules, &q), reference(&rules, &q));
    }

    #[test]
    fn default_deny(q in areq()) {
        prop_assert!(engine(&[], &q).iter().all(|e| *e == FieldEffect::Deny));
    }

    #[test]
    fn order_and_duplicates_do_not_matter(rules in prop::collection::vec(arule(), 1..10), q in areq(), seed in any::<u64>()) {
        let base = engine(&rules, &q);
        let mut shuffled = rules.clone();
        // A deterministic shuffle from the seed.
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(&engine(&shuffled, &q), &base);
        let mut doubled = rules.clone();
        doubled.extend(rules.iter().cloned());
        prop_assert_eq!(&engine(&doubled, &q), &base);
    }

    #[test]
    fn any_matching_deny_gives_deny(rules in prop::collection::vec(arule(), 0..8), q in areq(), fields in subset(FIELD_PATTERNS.len(), 1)) {
        let mut with = rules.clone();
        with.push(ARule { effect: Eff::Deny, roles: None, actions: vec![0, 1], fields: fields.clone(), purposes: vec![], cond: CondKind::None, mask: (0, Profile::Standard), require_ticket: false });
        let e = engine(&with, &q);
        for f in fields {
            prop_assert_eq!(e[f], FieldEffect::Deny);
        }
    }

    #[test]
    fn adding_an_allow_never_lifts_a_guardrail(rules in prop::collection::vec(arule(), 0..8), extra in arule(), q in areq()) {
        let before = engine(&rules, &q);
        let mut allow = extra;
        allow.effect = Eff::Allow;
        if allow.purposes.is_empty() { allow.purposes.push(0); }
        let mut with = rules.clone();
        with.push(allow);
        let after = engine(&with, &q);
        // Where a deny or a mask rule decided, the added allow changes nothing.
        let p = Policy::from_toml(&render(&rules), Schema::builtin()).unwrap();
        let d = p.decide(&request(&q));
        for slot in 0..FIELD_PATTERNS.len() {
            let reason = d.slot(slot).unwrap().reason.clone();
            if matches!(reason, coffer::policy::Reason::DeniedByRule | coffer::policy::Reason::Masked | coffer::policy::Reason::Request(_)) {
                prop_assert_eq!(after[slot], before[slot], "slot {}", slot);
            }
        }
    }

    #[test]
    fn adding_a_deny_or_mask_never_widens(rules in prop::collection::vec(arule(), 0..8), extra in arule(), q in areq(), deny in any::<bool>()) {
        let before = engine(&rules, &q);
        let mut guard = extra;
        guard.effect = if deny { Eff::Deny } else { Eff::Mask };
        guard.require_ticket = false;
        let mut with = rules.clone();
        with.push(guard);
        prop_assert!(no_wider(&engine(&with, &q), &before));
    }

    #[test]
    fn an_erroring_rule_never_widens(rules in prop::collection::vec(arule(), 1..8), k in any::<prop::sample::Index>(), q in areq()) {
        let k = k.index(rules.len());
        let mut erroring = rules.clone();
        erroring[k].cond = CondKind::Erroring;
        let mut without = rules.clone();
        without.remove(k);
        prop_assert!(no_wider(&engine(&erroring, &q), &engine(&without, &q)));
    }

    #[test]
    fn another_tenant_gets_nothing(rules in prop::collection::vec(arule(), 0..10), mut q in areq()) {
        q.same_tenant = false;
        prop_assert!(engine(&rules, &q).iter().all(|e| *e == FieldEffect::Deny));
    }
}
