//! A decision for a 20-field record with a 50-rule and a 500-rule policy, most rules for other
//! roles, and the same policy decided by `cedar-policy`, one authorisation per field, in the
//! same run.
//!
//! Targets (issue 3): 50 rules, median at most 2 µs per record; 500 rules, at most 10 µs; at
//! least 100 times faster than Cedar per record.

use std::hint::black_box;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context as CedarContext, Entities, EntityUid, PolicySet, Request as CedarRequest,
};
use coffer::policy::{Action, Context, FieldEffect, Policy, Principal, RecordFacts, Request};
use coffer::record::{FieldPath, Schema};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const EXAMPLE: &str = include_str!("../../examples/policies/accounting-firm.toml");

/// The 20 fields of the record: a name, two documents, three phones, two e-mails, two addresses
/// and two bank accounts.
const FIELDS: [&str; 20] = [
    "name",
    "id_documents[0].type",
    "id_documents[0].number",
    "id_documents[1].type",
    "id_documents[1].number",
    "phones[0]",
    "phones[1]",
    "phones[2]",
    "emails[0]",
    "emails[1]",
    "addresses[0]",
    "addresses[1]",
    "bank_accounts[0].bank_name",
    "bank_accounts[0].account_type",
    "bank_accounts[0].account_number",
    "bank_accounts[1].bank_name",
    "bank_accounts[1].branch",
    "bank_accounts[1].account_type",
    "bank_accounts[1].account_number",
    "custom.note",
];

const PATTERNS: [&str; 12] = [
    "name",
    "id_documents[].type",
    "id_documents[].number",
    "id_documents[].country",
    "phones[]",
    "emails[]",
    "addresses[]",
    "bank_accounts[].bank_name",
    "bank_accounts[].branch",
    "bank_accounts[].account_type",
    "bank_accounts[].account_number",
    "custom.*",
];

/// The example policy grown to `total` rules with allow rules for 40 other roles (or, `dense`,
/// all for the requesting clerk), deterministic.
fn coffer_policy_text(total: usize, dense: bool) -> String {
    let mut s = EXAMPLE.to_owned();
    // The example's own rules, counted (a constant here went stale when a rule was added).
    let base = EXAMPLE.lines().filter(|l| l.trim() == "[[rules]]").count();
    for r in 0..40 {
        s = s.replacen(
            "[purposes.bookkeeping]",
            &format!("[roles.other_{r}]\n[purposes.bookkeeping]"),
            1,
        );
    }
    for i in 0..total.saturating_sub(base) {
        let fields: Vec<String> = (0..3)
            .map(|k| format!("{:?}", PATTERNS[(i * 7 + k * 5) % PATTERNS.len()]))
            .collect();
        s.push_str(&format!(
            "\n[[rules]]\nid = \"filler-{i}\"\neffect = \"allow\"\nroles = [\"{}\"]\nactions = [\"read\", \"search\"]\nfields = [{}]\npurposes = [\"bookkeeping\"]\nwhen = [{{ attr = \"context.client\", ne = \"batch\" }}]\n",
            if dense { "clerk".to_owned() } else { format!("other_{}", i % 40) },
            fields.join(", ")
        ));
    }
    s
}

fn cedar_list(patterns: &[&str]) -> String {
    patterns
        .iter()
        .map(|p| format!("{p:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The same rules for Cedar. Fields are resources with their schema pattern, class and category;
/// mask rules are permits annotated `@mask`, whose presence among the reasons masks the field.
fn cedar_policy_text(total: usize) -> String {
    let contact = ["phones[]", "emails[]", "addresses[]"];
    let mut s = String::new();
    s.push_str(&format!(
        "@id(\"clerk-bookkeeping\") permit(principal in Role::\"clerk\", action in [Action::\"read\", Action::\"search\"], resource) when {{ context.purpose == \"bookkeeping\" && [{}].contains(resource.pattern) }};\n",
        cedar_list(&["name", "id_documents[].type", "id_documents[].number", "id_documents[].country", "phones[]", "emails[]", "addresses[]"])
    ));
    s.push_str(&format!(
        "@id(\"clerk-masked-contact\") @mask(\"default\") permit(principal in Role::\"clerk\", action in [Action::\"read\", Action::\"search\"], resource) when {{ [{}].contains(resource.pattern) }};\n",
        cedar_list(&["phones[]", "emails[]", "addresses[]", "id_documents[].number"])
    ));
    s.push_str("@id(\"accountant-payments\") permit(principal in Role::\"accountant\", action in [Action::\"read\", Action::\"search\", Action::\"export\"], resource) when { (context.purpose == \"payments\" || context.purpose == \"tax_filing\") && (resource.pattern == \"name\" || resource.category == \"identity\" || resource.category == \"banking\") };\n");
    s.push_str("@id(\"auditor-statutory\") permit(principal in Role::\"auditor\", action in [Action::\"read\", Action::\"export\"], resource) when { context.purpose == \"statutory_audit\" && context has ticket };\n");
    s.push_str(&format!(
        "@id(\"service-contact\") permit(principal in Role::\"customer_service\", action == Action::\"read\", resource) when {{ context.purpose == \"customer_service\" && context.hour >= 8 && context.hour < 20 && [{}].contains(resource.pattern) }};\n",
        cedar_list(&["name", "phones[]", "emails[]", "addresses[]"])
    ));
    s.push_str(&format!(
        "@id(\"service-masked\") @mask(\"privileged\") permit(principal in Role::\"customer_service\", action == Action::\"read\", resource) when {{ [{}].contains(resource.pattern) }};\n",
        cedar_list(&contact)
    ));
    s.push_str("@id(\"marketing-contact\") permit(principal in Role::\"marketing\", action in [Action::\"read\", Action::\"export\"], resource) when { context.purpose == \"marketing\" && [\"name\", \"emails[]\", \"phones[]\"].contains(resource.pattern) };\n");
    s.push_str("@id(\"marketing-never-ids\") forbid(principal in Role::\"marketing\", action in [Action::\"read\", Action::\"search\", Action::\"export\"], resource) when { resource.category == \"identity\" && resource.pattern != \"name\" || resource.category == \"banking\" };\n");
    s.push_str("@id(\"no-export-abroad-without-basis\") forbid(principal, action == Action::\"export\", resource) when { (resource.class == \"personal\" || resource.class == \"sensitive\") && context.destination_region != \"CN\" && !(context has transfer_basis) };\n");
    s.push_str("@id(\"tenant-isolation\") forbid(principal, action, resource) unless { principal.tenant == context.record_tenant };\n");
    for i in 0..total.saturating_sub(9) {
        let fields: Vec<&str> = (0..3)
            .map(|k| PATTERNS[(i * 7 + k * 5) % PATTERNS.len()])
            .collect();
        s.push_str(&format!(
            "@id(\"filler-{i}\") permit(principal in Role::\"other_{}\", action in [Action::\"read\", Action::\"search\"], resource) when {{ context.purpose == \"bookkeeping\" && context.client != \"batch\" && [{}].contains(resource.pattern) }};\n",
            i % 40,
            cedar_list(&fields)
        ));
    }
    s
}

fn cedar_entities(schema: &Schema) -> Entities {
    let mut list = vec![serde_json::json!({
        "uid": {"type": "User", "id": "u-1"}, "attrs": {"tenant": "firm-a"},
        "parents": [{"type": "Role", "id": "clerk"}]
    })];
    for f in FIELDS {
        let spec = schema.spec_for(&FieldPath::parse(f).unwrap()).unwrap();
        let pattern = FieldPath::parse(f).unwrap().pattern_key();
        let pattern = if pattern.starts_with("custom.") {
            "custom.*".to_owned()
        } else {
            pattern
        };
        list.push(serde_json::json!({
            "uid": {"type": "Field", "id": f},
            "attrs": {"pattern": pattern, "class": spec.classification.as_str(), "category": spec.category},
            "parents": []
        }));
    }
    Entities::from_json_value(serde_json::Value::Array(list), None).unwrap()
}

fn coffer_request() -> Request {
    Request {
        principal: Principal {
            id: "u-1".into(),
            tenant: "firm-a".into(),
            roles: vec!["clerk".into()],
            attributes: Default::default(),
        },
        action: Action::Read,
        purpose: "bookkeeping".into(),
        record: RecordFacts {
            tenant: "firm-a".into(),
            ..Default::default()
        },
        context: Context {
            time: Some(time::macros::datetime!(2026-11-27 10:00 +08:00)),
            client: Some("ui".into()),
            ..Default::default()
        },
    }
}

fn bench(c: &mut Criterion) {
    let schema = Schema::builtin();
    let paths: Vec<FieldPath> = FIELDS
        .iter()
        .map(|f| FieldPath::parse(f).unwrap())
        .collect();
    let mut group = c.benchmark_group("policy");
    group.throughput(Throughput::Elements(1));
    for total in [50usize, 500] {
        let policy = Policy::from_toml(&coffer_policy_text(total, false), schema).unwrap();
        assert_eq!(policy.rule_count(), total);
        let req = coffer_request();
        // The vault looks each field's slot up once per schema, not per decision.
        let slots: Vec<usize> = paths.iter().map(|p| policy.slot_for(p).unwrap()).collect();
        let d = policy.decide(&req);
        let coffer_effects: Vec<FieldEffect> =
            slots.iter().map(|&s| d.slot(s).unwrap().effect).collect();

        group.bench_with_input(BenchmarkId::new("coffer_record", total), &total, |b, _| {
            b.iter(|| {
                let d = policy.decide(black_box(&req));
                let mut revealed = 0;
                for &s in &slots {
                    if matches!(d.slot(s).map(|f| f.effect), Some(FieldEffect::Reveal)) {
                        revealed += 1;
                    }
                }
                black_box(revealed)
            })
        });

        // The same decision, mapping each field's path to its slot on every call.
        group.bench_with_input(
            BenchmarkId::new("coffer_record_paths", total),
            &total,
            |b, _| {
                b.iter(|| {
                    let d = policy.decide(black_box(&req));
                    black_box(
                        paths
                            .iter()
                            .filter(|p| d.field(&policy, p) == FieldEffect::Reveal)
                            .count(),
                    )
                })
            },
        );

        // Every filler rule for the requesting role: the index cannot skip any of them.
        let dense = Policy::from_toml(&coffer_policy_text(total, true), schema).unwrap();
        group.bench_with_input(
            BenchmarkId::new("coffer_record_dense", total),
            &total,
            |b, _| {
                b.iter(|| {
                    let d = dense.decide(black_box(&req));
                    black_box(
                        slots
                            .iter()
                            .filter(|&&s| d.slot(s).map(|f| f.effect) == Some(FieldEffect::Reveal))
                            .count(),
                    )
                })
            },
        );

        let cedar_policies = PolicySet::from_str(&cedar_policy_text(total)).unwrap();
        let entities = cedar_entities(schema);
        let authorizer = Authorizer::new();
        let principal = EntityUid::from_str("User::\"u-1\"").unwrap();
        let action = EntityUid::from_str("Action::\"read\"").unwrap();
        let context = CedarContext::from_json_value(
            serde_json::json!({"purpose": "bookkeeping", "record_tenant": "firm-a", "hour": 10, "client": "ui", "destination_region": "CN"}),
            None,
        )
        .unwrap();
        let resources: Vec<EntityUid> = FIELDS
            .iter()
            .map(|f| EntityUid::from_str(&format!("Field::{f:?}")).unwrap())
            .collect();
        let requests: Vec<CedarRequest> = resources
            .iter()
            .map(|r| {
                CedarRequest::new(
                    principal.clone(),
                    action.clone(),
                    r.clone(),
                    context.clone(),
                    None,
                )
                .unwrap()
            })
            .collect();
        let cedar_decide = |requests: &[CedarRequest]| -> Vec<&'static str> {
            requests
                .iter()
                .map(|r| {
                    let resp = authorizer.is_authorized(r, &cedar_policies, &entities);
                    if resp.decision() == cedar_policy::Decision::Deny {
                        return "deny";
                    }
                    let masked = resp.diagnostics().reason().any(|id| {
                        cedar_policies
                            .policy(id)
                            .is_some_and(|p| p.annotation("mask").is_some())
                    });
                    let granted = resp.diagnostics().reason().any(|id| {
                        cedar_policies
                            .policy(id)
                            .is_some_and(|p| p.annotation("mask").is_none())
                    });
                    match (granted, masked) {
                        (false, _) => "deny",
                        (true, true) => "mask",
                        (true, false) => "reveal",
                    }
                })
                .collect()
        };
        // Both engines must reach the same decisions before their speed is compared.
        let cedar_effects = cedar_decide(&requests);
        let coffer_names: Vec<&str> = coffer_effects.iter().map(|e| e.as_str()).collect();
        assert_eq!(
            coffer_names, cedar_effects,
            "the engines disagree at {total} rules"
        );

        group.bench_with_input(BenchmarkId::new("cedar_record", total), &total, |b, _| {
            b.iter(|| black_box(cedar_decide(black_box(&requests))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
