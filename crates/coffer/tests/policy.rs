//! The policy engine through its public API: every construct, load errors, explain, rate limits.

use coffer::ErrorKind;
use coffer::mask::{MaskForm, MaskRule, Profile};
use coffer::policy::{
    Action, AttrValue, Context, FieldEffect, Policy, Principal, RateLimiter, Reason, RecordFacts,
    Request, RequestDenial, Requirement, RuleStatus,
};
use coffer::record::{FieldPath, Schema};
use time::macros::datetime;

const EXAMPLE: &str = include_str!("../../../examples/policies/accounting-firm.toml");

fn policy() -> Policy {
    Policy::from_toml(EXAMPLE, Schema::builtin()).unwrap()
}

fn request(roles: &[&str], action: Action, purpose: &str) -> Request {
    Request {
        principal: Principal {
            id: "u-1".into(),
            tenant: "firm-a".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            attributes: Default::default(),
        },
        action,
        purpose: purpose.into(),
        record: RecordFacts {
            tenant: "firm-a".into(),
            ..Default::default()
        },
        context: Context {
            time: Some(datetime!(2026-11-27 10:00 +08:00)),
            ..Default::default()
        },
    }
}

fn effect(p: &Policy, req: &Request, path: &str) -> FieldEffect {
    p.decide(req).field(p, &FieldPath::parse(path).unwrap())
}

const MASK_STD: fn(MaskForm) -> FieldEffect = |f| FieldEffect::Mask {
    rule: MaskRule::Partial(f),
    profile: Profile::Standard,
};

#[test]
fn the_example_policy_loads_with_a_stable_version() {
    let p = policy();
    assert_eq!(p.name(), "example.accounting-firm");
    assert_eq!(p.version().len(), 64);
    assert_eq!(policy().version(), p.version());
    assert_eq!(p.rule_count(), 10);
    assert!(p.roles().contains(&"senior_accountant".to_owned()));
    // The same document as JSON has the same version.
    let json = toml_to_json(EXAMPLE);
    let pj = Policy::from_json(&json, Schema::builtin()).unwrap();
    assert_eq!(pj.version(), p.version());
}

fn toml_to_json(text: &str) -> String {
    let v: toml::Value = toml::from_str(text).unwrap();
    serde_json::to_string_pretty(&v).unwrap()
}

#[test]
fn clerks_see_masked_contacts_for_bookkeeping() {
    let p = policy();
    let req = request(&["clerk"], Action::Read, "bookkeeping");
    assert_eq!(effect(&p, &req, "name"), FieldEffect::Reveal);
    assert_eq!(effect(&p, &req, "phones[0]"), MASK_STD(MaskForm::Phone));
    assert_eq!(effect(&p, &req, "emails[3]"), MASK_STD(MaskForm::Email));
    assert_eq!(
        effect(&p, &req, "id_documents[0].number"),
        MASK_STD(MaskForm::IdNumber)
    );
    assert_eq!(
        effect(&p, &req, "id_documents[0].type"),
        FieldEffect::Reveal
    );
    assert_eq!(
        effect(&p, &req, "bank_accounts[0].account_number"),
        FieldEffect::Deny
    );
    // Not for another purpose, and not for writing.
    assert_eq!(
        effect(&p, &request(&["clerk"], Action::Read, "marketing"), "name"),
        FieldEffect::Deny
    );
    assert_eq!(
        effect(
            &p,
            &request(&["clerk"], Action::Write, "bookkeeping"),
            "name"
        ),
        FieldEffect::Deny
    );
    let d = p.decide(&req);
    let f = d
        .field_decision(&p, &FieldPath::parse("phones[0]").unwrap())
        .unwrap();
    assert_eq!(f.reason, &Reason::Masked);
    assert_eq!(
        f.rule_ids(&p),
        vec!["clerk-bookkeeping", "clerk-masked-contact"]
    );
    let f = d
        .field_decision(
            &p,
            &FieldPath::parse("bank_accounts[0].account_number").unwrap(),
        )
        .unwrap();
    assert_eq!(f.reason, &Reason::NoMatchingAllow);
    assert_eq!(d.policy_version(), p.version());
}

#[test]
fn accountants_see_bank_accounts_and_inheritance_and_purpose_tree_work() {
    let p = policy();
    // `payments` serves the rule; `senior_accountant` inherits `accountant`.
    for role in ["accountant", "senior_accountant"] {
        let req = request(&[role], Action::Read, "payments");
        assert_eq!(
            effect(&p, &req, "bank_accounts[1].account_number"),
            FieldEffect::Reveal,
            "{role}"
        );
    }
    // The parent purpose does not serve a rule written for the child.
    assert_eq!(
        effect(
            &p,
            &request(&["accountant"], Action::Read, "bookkeeping"),
            "bank_accounts[0].account_number"
        ),
        FieldEffect::Deny
    );
}

#[test]
fn auditors_need_a_ticket_and_get_detailed_audit() {
    let p = policy();
    let mut req = request(&["auditor"], Action::Read, "statutory_audit");
    let d = p.decide(&req);
    let f = d
        .field_decision(&p, &FieldPath::parse("name").unwrap())
        .unwrap();
    assert_eq!(f.effect, FieldEffect::Deny);
    assert_eq!(f.reason, &Reason::Unmet);
    assert_eq!(f.unmet(), vec![Requirement::Ticket]);
    req.context.ticket = Some("AUD-2026-17".into());
    let d = p.decide(&req);
    assert_eq!(
        d.field(
            &p,
            &FieldPath::parse("bank_accounts[0].account_number").unwrap()
        ),
        FieldEffect::Reveal
    );
    assert_eq!(
        d.field(&p, &FieldPath::parse("custom.anything").unwrap()),
        FieldEffect::Reveal
    );
    assert!(d.audit_detail());
    // A blank ticket is no ticket.
    req.context.ticket = Some("  ".into());
    assert_eq!(effect(&p, &req, "name"), FieldEffect::Deny);
}

#[test]
fn marketing_never_sees_id_numbers() {
    let p = policy();
    let req = request(&["marketing"], Action::Read, "marketing");
    assert_eq!(effect(&p, &req, "phones[0]"), FieldEffect::Reveal);
    assert_eq!(
        effect(&p, &req, "id_documents[0].number"),
        FieldEffect::Deny
    );
    // Even with another role that would allow it: deny beats allow.
    let req = request(&["marketing", "auditor"], Action::Read, "statutory_audit");
    let mut req = req;
    req.context.ticket = Some("T".into());
    let d = p.decide(&req);
    let f = d
        .field_decision(&p, &FieldPath::parse("id_documents[0].number").unwrap())
        .unwrap();
    assert_eq!(f.effect, FieldEffect::Deny);
    assert_eq!(f.reason, &Reason::DeniedByRule);
    assert_eq!(f.rule_ids(&p), vec!["marketing-never-ids"]);
    assert_eq!(
        d.field(&p, &FieldPath::parse("name").unwrap()),
        FieldEffect::Reveal
    );
}

#[test]
fn no_export_abroad_without_a_transfer_basis() {
    let p = policy();
    let mut req = request(&["accountant"], Action::Export, "payments");
    req.context.destination_region = Some("CN".into());
    assert_eq!(effect(&p, &req, "name"), FieldEffect::Reveal);
    req.context.destination_region = Some("DE".into());
    assert_eq!(effect(&p, &req, "name"), FieldEffect::Deny);
    req.context.attributes.insert(
        "transfer_basis".into(),
        AttrValue::from("standard_contract"),
    );
    assert_eq!(effect(&p, &req, "name"), FieldEffect::Reveal);
    // Unknown destination: the guard cannot be evaluated, so it applies (fail closed).
    req.context.destination_region = None;
    req.context.attributes.clear();
    let d = p.decide(&req);
    assert_eq!(
        d.field(&p, &FieldPath::parse("name").unwrap()),
        FieldEffect::Deny
    );
    assert_eq!(d.evaluation_errors(), 1);
    // Internal fields are not personal data, so the guard does not cover them.
    assert_eq!(
        d.field(&p, &FieldPath::parse("bank_accounts[0].bank_name").unwrap()),
        FieldEffect::Reveal
    );
}

#[test]
fn conditions_on_time_and_privileged_masks() {
    let p = policy();
    let mut req = request(&["customer_service"], Action::Read, "customer_service");
    let priv_phone = FieldEffect::Mask {
        rule: MaskRule::Partial(MaskForm::Phone),
        profile: Profile::Privileged,
    };
    assert_eq!(effect(&p, &req, "phones[0]"), priv_phone);
    req.context.time = Some(datetime!(2026-11-27 21:30 +08:00));
    assert_eq!(effect(&p, &req, "phones[0]"), FieldEffect::Deny);
    // Without a time the allow cannot be evaluated: not matched.
    req.context.time = None;
    assert_eq!(effect(&p, &req, "phones[0]"), FieldEffect::Deny);
}

#[test]
fn tenant_isolation_cannot_be_lifted() {
    let p = policy();
    let mut req = request(&["auditor"], Action::Read, "statutory_audit");
    req.context.ticket = Some("T".into());
    req.record.tenant = "firm-b".into();
    let d = p.decide(&req);
    assert_eq!(d.denial(), Some(&RequestDenial::TenantMismatch));
    for path in ["name", "phones[0]", "custom.x"] {
        assert_eq!(
            d.field(&p, &FieldPath::parse(path).unwrap()),
            FieldEffect::Deny
        );
    }
}

#[test]
fn unknown_roles_and_purposes_are_denied_with_a_reason() {
    let p = policy();
    let d = p.decide(&request(&["clerk", "root"], Action::Read, "bookkeeping"));
    assert_eq!(d.denial(), Some(&RequestDenial::UnknownRole("root".into())));
    assert_eq!(
        d.field(&p, &FieldPath::parse("name").unwrap()),
        FieldEffect::Deny
    );
    let d = p.decide(&request(&["clerk"], Action::Read, "curiosity"));
    assert_eq!(
        d.denial(),
        Some(&RequestDenial::UnknownPurpose("curiosity".into()))
    );
    let d = p.decide(&request(&[], Action::Read, "bookkeeping"));
    assert_eq!(d.denial(), Some(&RequestDenial::NoRoles));
}

#[test]
fn restricted_categories_only_open_for_their_purposes() {
    let p = policy();
    let mut req = request(&["accountant"], Action::Read, "payments");
    req.record.restricted.insert(
        "banking".into(),
        vec!["statutory_audit".into(), "tax_filing".into()],
    );
    let d = p.decide(&req);
    let f = d
        .field_decision(
            &p,
            &FieldPath::parse("bank_accounts[0].account_number").unwrap(),
        )
        .unwrap();
    assert_eq!(
        (f.effect, f.reason.clone()),
        (FieldEffect::Deny, Reason::Restricted)
    );
    assert_eq!(
        d.field(&p, &FieldPath::parse("name").unwrap()),
        FieldEffect::Reveal
    );
    req.purpose = "tax_filing".into();
    assert_eq!(
        effect(&p, &req, "bank_accounts[0].account_number"),
        FieldEffect::Reveal
    );
}

#[test]
fn validity_windows() {
    let doc = EXAMPLE.replace(
        "id = \"auditor-statutory\"",
        "id = \"auditor-statutory\"\nvalid_from = 2026-01-01T00:00:00Z\nvalid_until = 2026-04-01T00:00:00Z",
    );
    let p = Policy::from_toml(&doc, Schema::builtin()).unwrap();
    let mut req = request(&["auditor"], Action::Read, "statutory_audit");
    req.context.ticket = Some("T".into());
    req.context.time = Some(datetime!(2026-03-31 23:59 UTC));
    assert_eq!(effect(&p, &req, "name"), FieldEffect::Reveal);
    req.context.time = Some(datetime!(2026-04-01 00:00 UTC));
    assert_eq!(effect(&p, &req, "name"), FieldEffect::Deny);
    req.context.time = Some(datetime!(2025-12-31 23:59 UTC));
    assert_eq!(effect(&p, &req, "name"), FieldEffect::Deny);
}

#[test]
fn explain_says_why() {
    let p = policy();
    let e = p.explain(&request(&["clerk"], Action::Read, "marketing"));
    let rule = |id: &str| e.rules.iter().find(|r| r.id == id).unwrap().status.clone();
    assert!(
        matches!(rule("clerk-bookkeeping"), RuleStatus::NotApplicable(why) if why.contains("purpose"))
    );
    assert!(
        matches!(rule("accountant-payments"), RuleStatus::NotApplicable(why) if why.contains("other roles"))
    );
    assert_eq!(rule("clerk-masked-contact"), RuleStatus::Matched);
    let mut req = request(&["customer_service"], Action::Read, "customer_service");
    req.context.time = Some(datetime!(2026-11-27 22:00 UTC));
    let e = p.explain(&req);
    assert_eq!(
        e.rules
            .iter()
            .find(|r| r.id == "service-contact")
            .unwrap()
            .status,
        RuleStatus::ConditionFalse("context.hour < 20".into())
    );
    let text = e.to_string();
    assert!(text.contains("service-contact (allow, line"), "{text}");
    assert!(text.contains("phones[]: deny: no rule allows it"), "{text}");
    let e = p.explain(&request(&["auditor"], Action::Read, "statutory_audit"));
    assert_eq!(
        e.rules
            .iter()
            .find(|r| r.id == "auditor-statutory")
            .unwrap()
            .status,
        RuleStatus::Unmet(vec![Requirement::Ticket])
    );
    let mut req = request(&["accountant"], Action::Export, "payments");
    req.context.destination_region = None;
    let e = p.explain(&req);
    match &e
        .rules
        .iter()
        .find(|r| r.id == "no-export-abroad-without-basis")
        .unwrap()
        .status
    {
        RuleStatus::Errored { condition, error } => {
            assert!(condition.contains("destination_region"), "{condition}");
            assert!(
                error.contains("missing") && error.contains("applied"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rate_limits_deny_harvesting() {
    let p = policy();
    let limiter = RateLimiter::default();
    let req = request(&["accountant"], Action::Read, "payments");
    let paths: Vec<FieldPath> = [
        "name",
        "id_documents[0].number",
        "bank_accounts[0].account_number",
    ]
    .iter()
    .map(|s| FieldPath::parse(s).unwrap())
    .collect();
    // Two sensitive fields per record: 100 records fit in 200, the 101st does not.
    for i in 0..100 {
        let mut d = p.decide(&req);
        assert!(
            limiter.apply(&p, &req, &mut d, &paths).is_empty(),
            "record {i}"
        );
        assert_eq!(d.field(&p, &paths[2]), FieldEffect::Reveal);
    }
    let mut d = p.decide(&req);
    let exceeded = limiter.apply(&p, &req, &mut d, &paths);
    assert_eq!(exceeded.len(), 1);
    assert_eq!(exceeded[0].limit, "sensitive-per-hour");
    let f = d.field_decision(&p, &paths[2]).unwrap();
    assert_eq!(
        (f.effect, f.reason.clone()),
        (
            FieldEffect::Deny,
            Reason::RateLimited("sensitive-per-hour".into())
        )
    );
    assert_eq!(
        d.field(&p, &paths[0]),
        FieldEffect::Reveal,
        "non-sensitive fields are not limited"
    );
    // Another principal is counted apart; two hours later the first is free again.
    let mut other = req.clone();
    other.principal.id = "u-2".into();
    let mut d = p.decide(&other);
    assert!(limiter.apply(&p, &other, &mut d, &paths).is_empty());
    let mut later = req.clone();
    later.context.time = Some(datetime!(2026-11-27 12:00:01 +08:00));
    let mut d = p.decide(&later);
    assert!(limiter.apply(&p, &later, &mut d, &paths).is_empty());
    // No time in the request: limited fields fail closed.
    let mut no_time = req.clone();
    no_time.principal.id = "u-3".into();
    no_time.context.time = None;
    let mut d = p.decide(&no_time);
    assert_eq!(limiter.apply(&p, &no_time, &mut d, &paths).len(), 1);
    assert_eq!(d.field(&p, &paths[1]), FieldEffect::Deny);
}

#[test]
fn rate_limiter_is_shared_across_threads() {
    let p = std::sync::Arc::new(policy());
    let limiter = std::sync::Arc::new(RateLimiter::default());
    let paths = vec![FieldPath::parse("id_documents[0].number").unwrap()];
    let revealed: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (p, limiter, paths) = (p.clone(), limiter.clone(), paths.clone());
                s.spawn(move || {
                    let req = request(&["accountant"], Action::Read, "payments");
                    (0..100)
                        .filter(|_| {
                            let mut d = p.decide(&req);
                            limiter.apply(&p, &req, &mut d, &paths).is_empty()
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(
        revealed, 200,
        "exactly the limit, whatever the interleaving"
    );
}

fn problems(doc: &str) -> Vec<String> {
    match Policy::from_toml(doc, Schema::builtin()) {
        Err(coffer::Error::Policy { problems }) => {
            problems.0.iter().map(ToString::to_string).collect()
        }
        other => panic!("expected policy problems, got {other:?}"),
    }
}

#[test]
fn load_errors_are_all_reported_with_lines() {
    let doc = r#"version = 1
default = "deny"
[roles.clerk]
inherits = ["nobody"]
[purposes.bookkeeping]
[[rules]]
id = "r1"
effect = "allow"
roles = ["clerk", "ghost"]
actions = ["read", "peek"]
fields = ["name", "nmae", "class:secret", "phones[0]"]
[[rules]]
id = "r2"
effect = "mask"
actions = ["read"]
fields = ["*"]
mask = "clear"
purposes = ["gossip"]
when = [{ attr = "principal.shoe_size", gt = 40 }, { attr = "context.hour", eq = "noon" }, { attr = "context.ticket", frobnicate = 1 }]
require = ["ticket", "blessing"]
audit = "loud"
[[rules]]
id = "r1"
effect = "permit"
colour = "red"
"#;
    let all = problems(doc).join("\n");
    for expected in [
        "line 4, column 13: role `clerk` inherits unknown role `nobody`",
        "line 9, column 19: rule `r1`: unknown role `ghost`",
        "line 10, column 20: rule `r1`: unknown action `peek`",
        "line 11, column 19: field selector `nmae` matches no field",
        "line 11, column 27: unknown classification `secret`",
        "line 11, column 43: field `phones[0]`: policies address every element of a list with `[]`",
        "allow rule `r1` must name the purposes it serves",
        "line 17, column 8: rule `r2`: a mask rule cannot reveal",
        "line 18, column 13: rule `r2`: unknown purpose `gossip`",
        "line 19, column 18: unknown attribute `principal.shoe_size`",
        "`context.hour` eq: expected a number value, found a string",
        "unknown key `frobnicate` in a condition",
        "`require` belongs to allow rules only",
        "unknown requirement `blessing`",
        "unknown audit level `loud`",
        "unknown key `colour` in a rule",
        "unknown effect `permit`",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
}

#[test]
fn document_level_errors() {
    assert!(
        problems("version = 2\ndefault = \"allow\"\n[purposes.p]\n")
            .join("\n")
            .contains("unsupported policy version")
    );
    assert!(
        problems("version = 1\ndefault = \"allow\"\n[purposes.p]\n")
            .join("\n")
            .contains("`default` must be \"deny\"")
    );
    assert!(
        problems("version = 1\ndefault = \"deny\"\n")
            .join("\n")
            .contains("declares no purposes")
    );
    let cycle = "version = 1\ndefault = \"deny\"\n[roles.a]\ninherits = [\"b\"]\n[roles.b]\ninherits = [\"a\"]\n[purposes.p]\n";
    assert!(problems(cycle).join("\n").contains("cycle"));
    let pcycle = "version = 1\ndefault = \"deny\"\n[purposes.a]\nparent = \"b\"\n[purposes.b]\nparent = \"a\"\n";
    assert!(problems(pcycle).join("\n").contains("cycle"));
    let rate = "version = 1\ndefault = \"deny\"\n[purposes.p]\n[[rate_limits]]\nid = \"x\"\nfields = [\"*\"]\nmax = 0\nwindow = \"1y\"\n";
    let all = problems(rate).join("\n");
    assert!(
        all.contains("`max` must be") && all.contains("`window` is a duration"),
        "{all}"
    );
}

#[test]
fn malformed_and_oversized_documents() {
    let err = Policy::from_toml("version = 1\n[[rules]\n", Schema::builtin()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Malformed);
    assert!(err.to_string().contains("line 2"), "{err}");
    let err = Policy::from_json("{\"version\": 1,\n \"rules\": [}", Schema::builtin()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Malformed);
    assert!(err.to_string().contains("line 2"), "{err}");
    let err = Policy::from_toml(
        &"#".repeat(coffer::policy::MAX_POLICY_BYTES + 1),
        Schema::builtin(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded);
    let deep = format!(
        "version = 1\ndefault = \"deny\"\n[purposes.p]\n[[rules]]\nid = \"r\"\neffect = \"deny\"\nactions = [\"read\"]\nfields = [\"*\"]\nwhen = {}{{ attr = \"context.hour\", eq = 1 }}{}\n",
        "{ not = ".repeat(40),
        " }".repeat(40)
    );
    assert_eq!(
        Policy::from_toml(&deep, Schema::builtin())
            .unwrap_err()
            .kind(),
        ErrorKind::LimitExceeded
    );
    // JSON positions are as good as TOML's.
    let json = "{\"version\": 1, \"default\": \"deny\", \"purposes\": {\"p\": {}},\n \"rules\": [{\"id\": \"r\", \"effect\": \"allow\",\n \"actions\": [\"read\"], \"fields\": [\"nope\"], \"purposes\": [\"p\"]}]}";
    match Policy::from_json(json, Schema::builtin()).unwrap_err() {
        coffer::Error::Policy { problems } => {
            assert_eq!(
                (problems.0[0].line, problems.0[0].column),
                (3, 34),
                "{problems}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn policy_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Policy>();
    check::<RateLimiter>();
}

/// `purposes = []` on an allow rule would match every purpose (an empty set reads as "no
/// restriction"): the opposite of what it says. It is refused with its line, on every rule.
#[test]
fn an_empty_purpose_list_is_refused_with_its_line() {
    let doc = r#"version = 1
default = "deny"
[roles.clerk]
[purposes.bookkeeping]
[[rules]]
id = "everything"
effect = "allow"
roles = ["clerk"]
actions = ["read"]
fields = ["*"]
purposes = []
[[rules]]
id = "quiet"
effect = "deny"
roles = ["clerk"]
actions = ["read"]
fields = ["name"]
purposes = []
"#;
    let all = problems(doc).join("\n");
    assert!(
        all.contains("line 11, column 12: rule `everything`: `purposes` is empty; an allow rule must name the purposes it serves"),
        "{all}"
    );
    assert!(
        all.contains("line 18, column 12: rule `quiet`: `purposes` is empty; omit `purposes`"),
        "{all}"
    );
}

/// Rules that share a condition (issue 18: each distinct condition is evaluated once per
/// decision) still each count it: true grants every rule that holds it, false none, an error
/// fails closed in each (counted once per rule), and many grants decide each field as few do.
#[test]
fn shared_conditions_decide_every_rule_that_holds_them() {
    let mut text = String::from(
        "version = 1\nname = \"shared\"\ndefault = \"deny\"\n[roles.clerk]\n[purposes.bookkeeping]\n\
         [[rules]]\nid = \"guard\"\neffect = \"deny\"\nactions = [\"read\"]\nfields = [\"phones[]\"]\n\
         when = [{ attr = \"context.destination_region\", in = [\"US\"] }]\n",
    );
    for i in 0..80 {
        // Forty rules on one condition, forty on another; each covers two of three fields.
        let (attr, value) = if i % 2 == 0 {
            ("context.client", "ui")
        } else {
            ("context.destination_region", "CN")
        };
        let fields = ["\"name\"", "\"phones[]\"", "\"emails[]\""];
        text.push_str(&format!(
            "[[rules]]\nid = \"r{i}\"\neffect = \"allow\"\nroles = [\"clerk\"]\nactions = [\"read\"]\n\
             fields = [{}, {}]\npurposes = [\"bookkeeping\"]\nwhen = [{{ attr = \"{attr}\", eq = \"{value}\" }}]\n",
            fields[i % 3],
            fields[(i + 1) % 3],
        ));
    }
    let p = Policy::from_toml(&text, Schema::builtin()).unwrap();
    let mut req = request(&["clerk"], Action::Read, "bookkeeping");
    let slot = |path: &str| p.slot_for(&FieldPath::parse(path).unwrap()).unwrap();
    // Both conditions true: every field granted by its forty-odd rules, in rule order.
    req.context.client = Some("ui".into());
    req.context.destination_region = Some("CN".into());
    let d = p.decide(&req);
    for path in ["name", "phones[0]", "emails[0]"] {
        let f = d.slot(slot(path)).unwrap();
        assert_eq!(f.effect, FieldEffect::Reveal, "{path}");
        let ids = f.rule_ids(&p);
        let want: Vec<String> = (0..80)
            .filter(|i| {
                let covered = [i % 3, (i + 1) % 3];
                covered.contains(
                    &["name", "phones[0]", "emails[0]"]
                        .iter()
                        .position(|x| *x == path)
                        .unwrap(),
                )
            })
            .map(|i| format!("r{i}"))
            .collect();
        assert_eq!(
            ids,
            want.iter().map(String::as_str).collect::<Vec<_>>(),
            "{path}"
        );
    }
    assert_eq!(d.evaluation_errors(), 0);
    // One condition false: only the other's rules grant.
    req.context.client = Some("batch".into());
    let d = p.decide(&req);
    let ids = d.slot(slot("name")).unwrap().rule_ids(&p);
    assert!(
        !ids.is_empty()
            && ids
                .iter()
                .all(|id| id[1..].parse::<usize>().unwrap() % 2 == 1)
    );
    // The region unknown: the forty rules holding it error (allows do not apply), and so does
    // the guard, which then applies (fail closed); the client's rules still grant.
    req.context.client = Some("ui".into());
    req.context.destination_region = None;
    let d = p.decide(&req);
    assert_eq!(d.evaluation_errors(), 41);
    assert_eq!(d.slot(slot("phones[0]")).unwrap().effect, FieldEffect::Deny);
    let ids = d.slot(slot("name")).unwrap().rule_ids(&p);
    assert!(
        !ids.is_empty()
            && ids
                .iter()
                .all(|id| id[1..].parse::<usize>().unwrap() % 2 == 0)
    );
}
