//! The compliance reports on a store with known accesses, erasures and holds, checked exactly.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use coffer::clock::FixedClock;
use coffer::policy::{Policy, Principal};
use coffer::record::{CustomerRecord, Schema};
use coffer::report::{CheckOptions, IncidentQuery, Report, ReportOptions, Severity};
use coffer::retention::Retention;
use coffer::{Access, Coffer, Envelope, ErrorKind, Hold, MasterKey, OpenOptions};
use time::macros::datetime;

const POLICY: &str = include_str!("../../../examples/policies/accounting-firm.toml");
const RETENTION: &str = include_str!("../../../examples/policies/retention.toml");

struct Store {
    dir: PathBuf,
    clock: Arc<FixedClock>,
    key: MasterKey,
    c: Coffer,
    envs: Vec<Envelope>,
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn record(id: &str, subject: &str) -> CustomerRecord {
    CustomerRecord::from_json(&format!(
        r#"{{"id":"{id}","tenant":"acme","subject":"{subject}","kind":"individual","name":"张三",
            "id_documents":[{{"type":"cn_resident_id","number":"11010119800101007X"}}],
            "phones":["13800000000"],"emails":["zhang@example.com"],
            "bank_accounts":[{{"account_type":"card","account_number":"6200000000000005"}}]}}"#
    ))
    .unwrap()
}

fn who(id: &str, role: &str, purpose: &str) -> Access {
    Access {
        principal: Principal {
            id: id.into(),
            tenant: "acme".into(),
            roles: vec![role.into()],
            ..Default::default()
        },
        purpose: purpose.into(),
        ..Default::default()
    }
}

/// The privacy officer, under case DSAR-7.
fn officer() -> Access {
    let mut a = who("dpo-1", "privacy_officer", "data_protection");
    a.context.ticket = Some("DSAR-7".into());
    a
}

fn open(dir: &std::path::Path, clock: &Arc<FixedClock>, key: &MasterKey) -> Coffer {
    Coffer::open_with(
        common::store_in(dir),
        key,
        OpenOptions {
            policy: Some(Policy::from_toml(POLICY, Schema::builtin()).unwrap()),
            retention: Some(Retention::from_toml(RETENTION, Schema::builtin()).unwrap()),
            clock: clock.clone(),
            ..Default::default()
        },
    )
    .unwrap()
}

/// Three customers, then a known history:
/// - 03-02 10:00 accountant acc-1 reveals c-1 for payments (names, IDs, bank; phones denied);
/// - 03-03 10:00 clerk clerk-1 reveals c-2 for bookkeeping (ID number masked);
/// - 03-04 11:00 auditor-1 reveals c-1 and c-3 in full through the client `audit-portal`;
/// - 03-05 09:30 marketing mkt-1 reveals c-2 (name, phones, e-mails in clear);
/// - 03-06 erasure request for s-3 (contact destroyed, identity and banking restricted), and a
///   legal hold on s-2;
/// - now: 03-10 12:00.
fn store(name: &str) -> Store {
    let dir = std::env::temp_dir().join(format!("coffer-reports-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let clock = Arc::new(FixedClock::new(datetime!(2026-03-01 09:00 UTC)));
    let key = MasterKey::generate().unwrap();
    let c = open(&dir, &clock, &key);
    let envs: Vec<Envelope> = (1..=3)
        .map(|i| {
            c.seal(record(&format!("c-{i}"), &format!("s-{i}")), "importer")
                .unwrap()
        })
        .collect();
    clock.set(datetime!(2026-03-02 10:00 UTC));
    c.reveal(&envs[0], &who("acc-1", "accountant", "payments"))
        .unwrap();
    clock.set(datetime!(2026-03-03 10:00 UTC));
    c.reveal(&envs[1], &who("clerk-1", "clerk", "bookkeeping"))
        .unwrap();
    clock.set(datetime!(2026-03-04 11:00 UTC));
    let mut auditor = who("auditor-1", "auditor", "statutory_audit");
    auditor.context.ticket = Some("AUD-1".into());
    auditor.context.client = Some("audit-portal".into());
    c.reveal_many(&[envs[0].clone(), envs[2].clone()], &auditor)
        .unwrap();
    clock.set(datetime!(2026-03-05 09:30 UTC));
    c.reveal(&envs[1], &who("mkt-1", "marketing", "marketing"))
        .unwrap();
    clock.set(datetime!(2026-03-06 09:00 UTC));
    c.erase("acme", "s-3", "dpo-1").unwrap();
    c.place_hold(
        Hold {
            tenant: "acme".into(),
            subject: Some("s-2".into()),
            category: None,
            reason: "tax inspection 2026-17".into(),
            until: None,
            open_matter: false,
        },
        "legal-1",
    )
    .unwrap();
    clock.set(datetime!(2026-03-10 12:00 UTC));
    Store {
        dir,
        clock,
        key,
        c,
        envs,
    }
}

fn none() -> ReportOptions {
    ReportOptions::default()
}

#[test]
fn a_subject_report_lists_what_is_held_and_who_saw_it() {
    let s = store("subject");
    let before = s.c.audit_len().unwrap();
    let r =
        s.c.subject_report("acme", "s-1", &s.envs[..1], &officer(), &none())
            .unwrap();
    assert_eq!(r.format, "coffer-report/1");
    assert_eq!((r.tenant.as_str(), r.subject.as_str()), ("acme", "s-1"));
    assert_eq!(r.requested_by, "dpo-1");
    assert!(r.trail.intact);
    assert_eq!(r.records, ["c-1"]);
    // Every path of the record, with its category and what the officer sees.
    let paths: Vec<(&str, &str, &str)> = r
        .fields
        .iter()
        .map(|f| (f.path.as_str(), f.category.as_str(), f.state.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            ("bank_accounts[0].account_number", "banking", "sealed"),
            ("bank_accounts[0].account_type", "banking", "clear"),
            ("emails[0]", "contact", "sealed"),
            ("id_documents[0].number", "identity", "sealed"),
            ("id_documents[0].type", "identity", "clear"),
            ("name", "identity", "sealed"),
            ("phones[0]", "contact", "sealed"),
        ]
    );
    let id = r
        .fields
        .iter()
        .find(|f| f.path == "id_documents[0].number")
        .unwrap();
    assert_eq!(id.shown.as_deref(), Some("revealed"));
    assert_eq!(id.value.as_ref().unwrap().expose(), "11010119800101007X");
    // Kept under the voucher rule: thirty years from the end of the fiscal year it was made in.
    assert_eq!(id.rule.as_deref(), Some("cn.acc.voucher"));
    assert_eq!(id.keep_until.as_deref(), Some("2057-01-01"));
    assert!(!id.restricted);
    // Keys, one per category; no holds, restrictions or events.
    let keys: Vec<(&str, u32, bool)> = r
        .keys
        .iter()
        .map(|k| (k.category.as_str(), k.version, k.destroyed.is_some()))
        .collect();
    assert_eq!(
        keys,
        [
            ("banking", 1, false),
            ("contact", 1, false),
            ("identity", 1, false)
        ]
    );
    assert!(r.holds.is_empty() && r.restrictions.is_empty() && r.events.is_empty());
    // The two accesses, exactly.
    let accesses: Vec<(&str, &str, Option<&str>)> = r
        .accesses
        .iter()
        .map(|a| (a.time.as_str(), a.actor.as_str(), a.purpose.as_deref()))
        .collect();
    assert_eq!(
        accesses,
        [
            ("2026-03-02T10:00:00Z", "acc-1", Some("payments")),
            ("2026-03-04T11:00:00Z", "auditor-1", Some("statutory_audit")),
        ]
    );
    let acc = &r.accesses[0];
    assert_eq!(acc.roles, ["accountant"]);
    assert_eq!(acc.fields["id_documents[0].number"], "reveal");
    assert_eq!(acc.fields["phones[0]"], "deny:no_matching_allow");
    assert_eq!(r.accesses[1].fields.len(), 7);
    let kinds: Vec<&str> = r.changes.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, ["key.create", "seal"]);
    // The report and the officer's reveal are both in the trail.
    assert_eq!(s.c.audit_len().unwrap(), before + 2);
    // Debug never shows a value; the renderings do (they are the answer).
    let report = Report::Subject(r);
    assert!(!format!("{report:?}").contains("11010119800101007X"));
    assert!(report.to_json().contains("11010119800101007X"));
    let md = report.to_markdown();
    assert!(
        md.contains("| c-1 | id_documents[0].number | identity | sealed | 11010119800101007X |")
    );
    assert!(md.contains("acc-1"));
    let html = report.to_html();
    assert!(html.contains("id=\"retention-timeline\"") && html.contains("id=\"access-chart\""));
    // Back from JSON, the same report.
    let again = Report::from_json(&report.to_json()).unwrap();
    assert_eq!(again.to_json(), report.to_json());
}

#[test]
fn a_subject_report_without_envelopes_shows_paths_erasure_and_holds() {
    let s = store("erased");
    let r =
        s.c.subject_report("acme", "s-3", &[], &officer(), &none())
            .unwrap();
    assert_eq!(r.records, ["c-3"]);
    // From the trail's seal entry: paths, no values.
    assert!(
        r.fields
            .iter()
            .all(|f| f.shown.is_none() && f.value.is_none())
    );
    let state = |p: &str| {
        let f = r.fields.iter().find(|f| f.path == p).unwrap();
        (f.state.as_str(), f.restricted)
    };
    assert_eq!(state("phones[0]"), ("shredded", false));
    assert_eq!(state("emails[0]"), ("shredded", false));
    assert_eq!(state("id_documents[0].number"), ("sealed", true));
    assert_eq!(state("bank_accounts[0].account_number"), ("sealed", true));
    let contact = r.keys.iter().find(|k| k.category == "contact").unwrap();
    assert_eq!(contact.destroyed.as_deref(), Some("2026-03-06T09:00:00Z"));
    let restricted: Vec<&str> = r.restrictions.iter().map(|x| x.category.as_str()).collect();
    assert_eq!(restricted, ["banking", "identity"]);
    assert!(
        r.restrictions
            .iter()
            .all(|x| x.purposes.contains(&"statutory_audit".to_owned()))
    );
    let events: Vec<(&str, &str)> = r
        .events
        .iter()
        .map(|e| (e.date.as_str(), e.event.as_str()))
        .collect();
    assert_eq!(
        events,
        [
            ("2026-03-06", "consent_withdrawn"),
            ("2026-03-06", "purpose_achieved")
        ]
    );
    let kinds: Vec<&str> = r.changes.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, ["key.create", "seal", "erasure"]);
    assert_eq!(r.accesses.len(), 1);

    // s-2 is under a hold.
    let r =
        s.c.subject_report("acme", "s-2", &[], &officer(), &none())
            .unwrap();
    assert_eq!(r.holds.len(), 1);
    assert_eq!(r.holds[0].reason, "tax inspection 2026-17");
    assert_eq!(r.accesses.len(), 2);

    // Nobody we know: an empty, well-formed answer.
    let r =
        s.c.subject_report("acme", "s-404", &[], &officer(), &none())
            .unwrap();
    assert!(r.records.is_empty() && r.fields.is_empty() && r.keys.is_empty());
    assert!(r.accesses.is_empty() && r.changes.is_empty());
    assert!(Report::Subject(r).to_html().contains("Nothing is held"));
}

#[test]
fn reports_are_for_those_the_policy_lets_run_them() {
    let s = store("denied");
    let before = s.c.audit_len().unwrap();
    let err =
        s.c.subject_report(
            "acme",
            "s-1",
            &[],
            &who("clerk-1", "clerk", "bookkeeping"),
            &none(),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AccessDenied);
    assert!(err.to_string().contains("admin"), "{err}");
    // The officer without a case number: the rule's requirement is unmet.
    let mut no_ticket = officer();
    no_ticket.context.ticket = None;
    let err =
        s.c.affected(&IncidentQuery::default(), &no_ticket, &none())
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AccessDenied);
    // Another tenant's officer gets nothing of acme's.
    let mut other = officer();
    other.principal.tenant = "globex".into();
    let err =
        s.c.subject_report("acme", "s-1", &[], &other, &none())
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AccessDenied);
    // Nor may acme's officer scope another tenant's incident.
    let other_tenant = IncidentQuery {
        tenant: Some("globex".into()),
        ..Default::default()
    };
    let err =
        s.c.affected(&other_tenant, &officer(), &none())
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AccessDenied);
    let err =
        s.c.access_review(
            datetime!(2026-01-01 0:00 UTC),
            &who("acc-1", "accountant", "payments"),
            &none(),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AccessDenied);
    let err =
        s.c.compliance_check(
            &CheckOptions::default(),
            &who("mkt-1", "marketing", "marketing"),
            &none(),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AccessDenied);
    // Refusals write nothing.
    assert_eq!(s.c.audit_len().unwrap(), before);
    // An empty subject is an argument error, named.
    let err =
        s.c.subject_report("acme", "", &[], &officer(), &none())
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("`subject`"), "{err}");
    // Envelopes of another subject are refused.
    let err =
        s.c.subject_report("acme", "s-1", &s.envs[1..2], &officer(), &none())
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

fn ids(r: &coffer::report::IncidentReport) -> Vec<(&str, u64)> {
    r.subjects
        .iter()
        .map(|s| (s.subject.as_str(), s.reveals))
        .collect()
}

#[test]
fn an_incident_is_scoped_from_the_trail() {
    let s = store("incident");
    let q = |f: &[&str]| IncidentQuery {
        from: Some("2026-03-01".into()),
        until: Some("2026-03-08".into()),
        fields: f.iter().map(|x| (*x).to_owned()).collect(),
        ..Default::default()
    };
    // Who had an ID number revealed in clear: s-1 twice (accountant, auditor), s-3 once
    // (auditor); s-2's was masked for the clerk and denied to marketing.
    let r =
        s.c.affected(&q(&["id_documents[].number"]), &officer(), &none())
            .unwrap();
    assert!(r.trail.intact);
    assert_eq!(ids(&r), [("s-1", 2), ("s-3", 1)]);
    assert_eq!(r.reveals, 3);
    assert_eq!(r.subjects[0].fields["id_documents[0].number"], 2);
    assert_eq!(r.subjects[0].principals, ["acc-1", "auditor-1"]);
    assert_eq!(r.subjects[0].first, "2026-03-02T10:00:00Z");
    assert_eq!(r.subjects[0].last, "2026-03-04T11:00:00Z");
    assert_eq!(r.fields["id_documents[].number"], 3);
    assert_eq!(r.by_day["2026-03-02"], 1);
    assert_eq!(r.by_day["2026-03-04"], 2);
    assert_eq!(r.principals["auditor-1"], 2);
    assert_eq!(r.query.tenant.as_deref(), Some("acme"));

    // Phones: marketing saw s-2's, the auditor s-1's and s-3's.
    let r =
        s.c.affected(&q(&["phones[]"]), &officer(), &none())
            .unwrap();
    assert_eq!(ids(&r), [("s-1", 1), ("s-2", 1), ("s-3", 1)]);
    // By principal, by client, by class.
    let mut by = q(&[]);
    by.principal = Some("acc-1".into());
    assert_eq!(
        ids(&s.c.affected(&by, &officer(), &none()).unwrap()),
        [("s-1", 1)]
    );
    let mut by = q(&["class:sensitive"]);
    by.client = Some("audit-portal".into());
    let r = s.c.affected(&by, &officer(), &none()).unwrap();
    assert_eq!(ids(&r), [("s-1", 1), ("s-3", 1)]);
    assert_eq!(
        r.patterns,
        ["bank_accounts[].account_number", "id_documents[].number"]
    );
    // A window that holds only the marketing reveal.
    let mut w = q(&[]);
    w.from = Some("2026-03-05T00:00:00Z".into());
    w.until = Some("2026-03-05T23:59:59Z".into());
    let r = s.c.affected(&w, &officer(), &none()).unwrap();
    assert_eq!(ids(&r), [("s-2", 1)]);
    assert_eq!(
        r.subjects[0].fields.keys().collect::<Vec<_>>(),
        ["emails[0]", "name", "phones[0]"]
    );
}

#[test]
fn incident_windows_and_fields_are_checked() {
    let s = store("windows");
    // In the future, or empty: a well-formed, empty answer that says why.
    let q = IncidentQuery {
        from: Some("2030-01-01".into()),
        until: Some("2030-02-01".into()),
        ..Default::default()
    };
    let r = s.c.affected(&q, &officer(), &none()).unwrap();
    assert!(r.subjects.is_empty() && r.reveals == 0);
    assert!(
        r.notes.iter().any(|n| n.contains("future")),
        "{:?}",
        r.notes
    );
    let q = IncidentQuery {
        from: Some("2026-03-04".into()),
        until: Some("2026-03-04".into()),
        ..Default::default()
    };
    let r = s.c.affected(&q, &officer(), &none()).unwrap();
    assert!(r.subjects.is_empty());
    assert!(r.notes.iter().any(|n| n.contains("empty")));
    // Backwards, malformed, or naming no field: errors that say which.
    for (q, name) in [
        (
            IncidentQuery {
                from: Some("2026-03-05".into()),
                until: Some("2026-03-04".into()),
                ..Default::default()
            },
            "from",
        ),
        (
            IncidentQuery {
                from: Some("last tuesday".into()),
                ..Default::default()
            },
            "from",
        ),
        (
            IncidentQuery {
                fields: vec!["phones[0]".into()],
                ..Default::default()
            },
            "fields",
        ),
        (
            IncidentQuery {
                fields: vec!["class:secret".into()],
                ..Default::default()
            },
            "fields",
        ),
    ] {
        let err = s.c.affected(&q, &officer(), &none()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{q:?}");
        assert!(err.to_string().contains(name), "{err}");
    }
    // No window and no fields: every personal field up to now (the clerk saw s-2's name).
    let r =
        s.c.affected(&IncidentQuery::default(), &officer(), &none())
            .unwrap();
    assert_eq!(ids(&r), [("s-1", 2), ("s-2", 2), ("s-3", 1)]);
}

#[test]
fn a_tampered_trail_is_never_scoped_silently() {
    let s = store("tampered");
    // Erase the accountant's reveal from the story: rewrite its entry in place.
    let changed = common::sql(
        &common::store_in(&s.dir),
        "UPDATE audit SET entry = replace(entry, '\"acc-1\"', '\"acc-2\"') WHERE entry LIKE '%\"kind\":\"reveal\"%\"acc-1\"%'",
    );
    assert_eq!(changed, 1);
    let q = IncidentQuery {
        fields: vec!["id_documents[].number".into()],
        ..Default::default()
    };
    let before = s.c.audit_len().unwrap();
    let err = s.c.affected(&q, &officer(), &none()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(err.to_string().contains("BROKEN at entry"), "{err}");
    assert!(err.to_string().contains("changed"), "{err}");
    assert_eq!(s.c.audit_len().unwrap(), before, "no report, no entry");
    // The other reports refuse too, but the compliance check reports it as its first finding.
    let err =
        s.c.subject_report("acme", "s-1", &[], &officer(), &none())
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    let check =
        s.c.compliance_check(&CheckOptions::default(), &officer(), &none())
            .unwrap();
    assert_eq!(check.findings[0].code, "audit.chain_broken");
    assert_eq!(check.findings[0].severity, Severity::Critical);
    // Asked to go on anyway (forensics), the answer carries the broken trail in plain sight.
    let r =
        s.c.affected(
            &q,
            &officer(),
            &ReportOptions {
                accept_broken_trail: true,
                checkpoint: None,
            },
        )
        .unwrap();
    assert!(!r.trail.intact);
    assert_eq!(ids(&r), [("s-1", 2), ("s-3", 1)]);
    let html = Report::Incident(r).to_html();
    assert!(html.contains("class=\"broken\""));
    // The open Coffer's key still verifies the untouched rows; a fresh handle agrees.
    let again = open(&s.dir, &s.clock, &s.key);
    assert!(!again.audit_verify(None).unwrap().intact);
}

#[test]
fn a_row_that_is_no_entry_is_counted_not_fatal() {
    let s = store("garbage");
    let n = common::sql(
        &common::store_in(&s.dir),
        "UPDATE audit SET entry = 'not an entry' WHERE seq = (SELECT min(seq) FROM audit WHERE entry LIKE '%\"clerk-1\"%')",
    );
    assert_eq!(n, 1);
    let err =
        s.c.affected(&IncidentQuery::default(), &officer(), &none())
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    let accept = ReportOptions {
        accept_broken_trail: true,
        checkpoint: None,
    };
    let r =
        s.c.affected(&IncidentQuery::default(), &officer(), &accept)
            .unwrap();
    // The chain check flags the row; the scope never reads it as a reveal (it is not one).
    assert!(!r.trail.intact);
    assert!(r.trail.problem_seq.is_some());
    // The clerk's reveal is the unreadable row: s-2 was seen by marketing only.
    assert_eq!(ids(&r), [("s-1", 2), ("s-2", 1), ("s-3", 1)]);
    let check =
        s.c.compliance_check(&CheckOptions::default(), &officer(), &none())
            .unwrap();
    let codes: Vec<&str> = check.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(
        &codes[..2],
        ["audit.chain_broken", "audit.unreadable_entries"]
    );
}

#[test]
fn the_access_review_counts_each_grant_used() {
    let s = store("review");
    let r =
        s.c.access_review(datetime!(2026-03-01 0:00 UTC), &officer(), &none())
            .unwrap();
    let grant = |role: &str, field: &str, purpose: &str| {
        r.roles
            .iter()
            .find(|x| x.role == role)
            .unwrap()
            .grants
            .iter()
            .find(|g| g.field == field && g.purpose == purpose)
            .cloned()
            .unwrap_or_else(|| panic!("no grant {role} {field} {purpose}"))
    };
    let g = grant("accountant", "bank_accounts[].account_number", "payments");
    assert_eq!(
        (g.rule.as_str(), g.effect.as_str(), g.used),
        ("accountant-payments", "reveal", 1)
    );
    assert_eq!(g.last_used.as_deref(), Some("2026-03-02T10:00:00Z"));
    assert_eq!(
        grant("accountant", "bank_accounts[].account_number", "tax_filing").used,
        0
    );
    // The senior accountant inherits the grant, and nobody in that role used it.
    let senior = r
        .roles
        .iter()
        .find(|x| x.role == "senior_accountant")
        .unwrap();
    assert_eq!(senior.inherits, ["accountant"]);
    assert_eq!(
        grant(
            "senior_accountant",
            "bank_accounts[].account_number",
            "payments"
        )
        .used,
        0
    );
    // The clerk's ID numbers are masked by an unconditional mask rule.
    let g = grant("clerk", "id_documents[].number", "bookkeeping");
    assert_eq!((g.effect.as_str(), g.used), ("mask", 1));
    // The auditor's grant needs a ticket; marketing never reaches an ID number.
    let g = grant("auditor", "id_documents[].number", "statutory_audit");
    assert_eq!((g.requires.clone(), g.used), (vec!["ticket".to_owned()], 2));
    assert!(
        r.roles
            .iter()
            .find(|x| x.role == "marketing")
            .unwrap()
            .grants
            .iter()
            .all(|g| !g.field.starts_with("id_documents"))
    );
    assert_eq!(grant("marketing", "phones[]", "marketing").used, 1);
    // Customer service's grant is conditional (office hours) and was never used.
    let g = grant("customer_service", "phones[]", "customer_service");
    assert!(g.conditional && g.used == 0 && g.effect == "mask");
    let unused = r
        .roles
        .iter()
        .flat_map(|x| &x.grants)
        .filter(|g| g.used == 0)
        .count() as u64;
    assert_eq!(r.unused, unused);
    assert!(unused > 0);
    // Since a date after every access: nothing was used.
    let r =
        s.c.access_review(datetime!(2026-03-09 0:00 UTC), &officer(), &none())
            .unwrap();
    assert!(r.roles.iter().flat_map(|x| &x.grants).all(|g| g.used == 0));
    let err =
        s.c.access_review(datetime!(2027-01-01 0:00 UTC), &officer(), &none())
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn the_compliance_check_finds_what_has_slipped() {
    let s = store("check");
    let codes = |c: &coffer::report::ComplianceCheck| {
        c.findings
            .iter()
            .map(|f| f.code.clone())
            .collect::<Vec<_>>()
    };
    let check =
        s.c.compliance_check(&CheckOptions::default(), &officer(), &none())
            .unwrap();
    assert_eq!(
        codes(&check),
        [
            "policy.transfer_without_basis",
            "audit.checkpoint_stale",
            "policy.sensitive_without_ticket"
        ]
    );
    let no_ticket = &check.findings[2];
    assert_eq!(no_ticket.severity, Severity::Medium);
    // The accountants' rule; not the clerks' (their ID numbers are always masked), nor
    // marketing's (contact details are personal, not sensitive), nor the auditors'.
    assert_eq!(no_ticket.total, 1, "{:?}", no_ticket.objects);
    assert_eq!(
        no_ticket.objects[0],
        "rule `accountant-payments` (line 54): id_documents[].number, bank_accounts[].account_number"
    );
    assert_eq!(check.counts["high"], 1);

    // A checkpoint clears its finding; thirty-one years later the voucher period has ended
    // for customers whose purpose was achieved... and ten for the bank details: overdue keys,
    // keys never rotated, and (after a sweep proposes a list) a list no one approves.
    s.c.audit_checkpoint("dpo-1").unwrap();
    let check =
        s.c.compliance_check(&CheckOptions::default(), &officer(), &none())
            .unwrap();
    assert!(!codes(&check).contains(&"audit.checkpoint_stale".to_owned()));
    s.c.record_event(
        "acme",
        "s-1",
        coffer::retention::Event::RelationshipEnded,
        time::macros::date!(2026 - 03 - 10),
        "dpo-1",
    )
    .unwrap();
    s.clock.set(datetime!(2057-06-01 09:00 UTC));
    let check =
        s.c.compliance_check(&CheckOptions::default(), &officer(), &none())
            .unwrap();
    let c = codes(&check);
    assert_eq!(c[0], "retention.overdue", "{c:?}");
    assert!(
        c.contains(&"keys.rotation_due".to_owned())
            && c.contains(&"audit.checkpoint_stale".to_owned())
    );
    let overdue = &check.findings[0];
    assert!(
        overdue.objects.iter().any(|o| o.starts_with("acme/s-1/")),
        "{:?}",
        overdue.objects
    );
    let list = s.c.sweep("archivist").unwrap().proposed_list.unwrap();
    s.clock.set(datetime!(2057-08-01 09:00 UTC));
    let check =
        s.c.compliance_check(&CheckOptions::default(), &officer(), &none())
            .unwrap();
    let c = codes(&check);
    assert!(
        c.contains(&"retention.list_awaiting_approval".to_owned()),
        "{c:?}"
    );
    assert!(!c.contains(&"retention.overdue".to_owned()), "{c:?}");
    // Approved by both, never executed: awaiting execution now.
    s.c.approve(list, "wang", "archive_head").unwrap();
    s.c.approve(list, "li", "accounting_head").unwrap();
    let c = codes(
        &s.c.compliance_check(&CheckOptions::default(), &officer(), &none())
            .unwrap(),
    );
    assert!(
        c.contains(&"retention.list_awaiting_execution".to_owned()),
        "{c:?}"
    );
    assert!(
        !c.contains(&"retention.list_awaiting_approval".to_owned()),
        "{c:?}"
    );
    // Thresholds are the caller's.
    let lax = CheckOptions {
        max_key_age_days: 100_000,
        max_list_age_days: 100_000,
        checkpoint_interval_days: 100_000,
        max_backup_exposure_days: 100_000,
    };
    let c = codes(&s.c.compliance_check(&lax, &officer(), &none()).unwrap());
    assert!(
        !c.iter()
            .any(|c| c.starts_with("keys.") || c.starts_with("retention.list")),
        "{c:?}"
    );
    let html = Report::Check(
        s.c.compliance_check(&CheckOptions::default(), &officer(), &none())
            .unwrap(),
    )
    .to_html();
    assert!(html.contains("id=\"findings\"") && html.contains("id=\"severity-chart\""));
}

#[test]
fn report_requests_through_the_wire() {
    let s = store("wire");
    let access = r#"{"principal":{"id":"dpo-1","tenant":"acme","roles":["privacy_officer"]},"purpose":"data_protection","context":{"ticket":"DSAR-7"}}"#;
    let out = coffer::wire::report_json(
        &s.c,
        &format!(r#"{{"report":"incident","access":{access},"query":{{"fields":["phones[]"]}}}}"#),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["report"], "incident");
    assert_eq!(v["subjects"].as_array().unwrap().len(), 3);
    let html = coffer::wire::render_report_json(&out, "html").unwrap();
    assert!(html.contains("data-report=\"incident\""));
    for (bad, kind) in [
        ("{", ErrorKind::Malformed),
        (r#"{"report":"gossip"}"#, ErrorKind::InvalidArgument),
        (r#"{"report":"subject"}"#, ErrorKind::InvalidArgument),
        (
            &*format!(r#"{{"report":"subject","access":{access},"tenant":"acme"}}"#),
            ErrorKind::InvalidArgument,
        ),
        (
            &*format!(r#"{{"report":"check","access":{access},"options":{{"max_key_age":1}}}}"#),
            ErrorKind::InvalidArgument,
        ),
        (
            &*format!(r#"{{"report":"access_review","access":{access},"since":"soon"}}"#),
            ErrorKind::InvalidArgument,
        ),
        (
            &*format!(r#"{{"report":"check","access":{access},"extra":1}}"#),
            ErrorKind::InvalidArgument,
        ),
    ] {
        let err = coffer::wire::report_json(&s.c, bad).unwrap_err();
        assert_eq!(err.kind(), kind, "{bad}: {err}");
    }
    assert_eq!(
        coffer::wire::render_report_json(&out, "pdf")
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        coffer::wire::render_report_json(r#"{"report":"incident"}"#, "html")
            .unwrap_err()
            .kind(),
        ErrorKind::Malformed
    );
}

#[test]
fn declared_custom_fields_are_scoped_like_the_others() {
    let dir = std::env::temp_dir().join(format!("coffer-reports-custom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let schema = Schema::from_toml(&format!(
        "{}\n[fields.\"custom.vip_level\"]\nclass = \"sensitive\"\nprotection = \"encrypted\"\nmask = \"withhold\"\ncategory = \"profile\"\nmax_length = 10\n",
        coffer::record::DEFAULT_SCHEMA_TOML
    ))
    .unwrap();
    let c = Coffer::open_with(
        common::store_in(&dir),
        &MasterKey::generate().unwrap(),
        OpenOptions {
            policy: Some(Policy::from_toml(POLICY, &schema).unwrap()),
            schema,
            ..Default::default()
        },
    )
    .unwrap();
    let mut r = record("c-1", "s-1");
    r.custom.insert("vip_level".into(), "gold".into());
    let env = c.seal(r, "importer").unwrap();
    let mut auditor = who("auditor-1", "auditor", "statutory_audit");
    auditor.context.ticket = Some("AUD-1".into());
    c.reveal(&env, &auditor).unwrap();
    for fields in [
        vec![],
        vec!["custom.vip_level".to_owned()],
        vec!["custom.*".to_owned()],
    ] {
        let q = IncidentQuery {
            fields: fields.clone(),
            ..Default::default()
        };
        let r = c.affected(&q, &officer(), &none()).unwrap();
        assert_eq!(ids(&r), [("s-1", 1)], "{fields:?}");
    }
    let q = IncidentQuery {
        fields: vec!["custom.vip_level".into()],
        ..Default::default()
    };
    let r = c.affected(&q, &officer(), &none()).unwrap();
    assert_eq!(r.subjects[0].fields["custom.vip_level"], 1);
    // This store was opened without retention rules: the check says so first among the highs.
    let check = c
        .compliance_check(&CheckOptions::default(), &officer(), &none())
        .unwrap();
    let f = check
        .findings
        .iter()
        .find(|f| f.code == "retention.not_configured")
        .unwrap();
    assert_eq!((f.severity, f.total), (Severity::High, 1));
    drop(c);
    let _ = std::fs::remove_dir_all(&dir);
}
