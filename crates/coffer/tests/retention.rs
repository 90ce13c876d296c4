//! Retention through the facade, over thirty-one years on a clock the test moves.

mod common;
use std::path::PathBuf;
use std::sync::Arc;

use coffer::clock::FixedClock;
use coffer::policy::{Context, Policy, Principal};
use coffer::record::{CustomerRecord, Schema};
use coffer::retention::{Event, Retention};
use coffer::{Access, Coffer, ErrorKind, FieldView, Hold, MasterKey, OpenOptions};
use time::macros::{date, datetime};

const POLICY: &str = include_str!("../../../examples/policies/accounting-firm.toml");

const RULES: &str = r#"
version = 1
packs = ["cn-accounting", "cn-pipl"]
approver_roles = ["archive_head", "accounting_head"]
approvals_required = 2

[categories]
identity = ["cn.acc.voucher"]          # the customer's identity is on the vouchers: 30 years
banking = ["cn.acc.bank.statement"]    # bank details on statements: 10 years
contact = ["cn.pipl.default"]          # marketing contacts: until the purpose is achieved
profile = ["cn.pipl.default"]
"#;

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn setup(name: &str) -> (Dir, Arc<FixedClock>, Coffer, MasterKey) {
    let dir = std::env::temp_dir().join(format!("coffer-retention-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let clock = Arc::new(FixedClock::new(datetime!(2026-03-01 09:00 UTC)));
    let key = MasterKey::generate().unwrap();
    let c = open(&dir, &clock, &key);
    (Dir(dir), clock, c, key)
}

fn open(dir: &std::path::Path, clock: &Arc<FixedClock>, key: &MasterKey) -> Coffer {
    Coffer::open_with(
        common::store_in(dir),
        key,
        OpenOptions {
            policy: Some(Policy::from_toml(POLICY, Schema::builtin()).unwrap()),
            retention: Some(Retention::from_toml(RULES, Schema::builtin()).unwrap()),
            clock: clock.clone(),
            ..Default::default()
        },
    )
    .unwrap()
}

fn company() -> CustomerRecord {
    CustomerRecord::from_json(
        r#"{"id":"k-1","tenant":"firm-a","subject":"acme-co","kind":"company","name":"示例科技有限公司",
            "id_documents":[{"type":"uscc","number":"91110000MA00000152"}],
            "phones":["13912345678"],"emails":["marketing.contact@example.cn"],
            "bank_accounts":[{"bank_name":"示例银行","account_type":"settlement","account_number":"110144556600011"}]}"#,
    )
    .unwrap()
}

/// `n` companies, each its own subject (`k-i`, subject `co-i`), sealed in one batch.
fn seal_companies(c: &Coffer, n: usize) -> Vec<coffer::Envelope> {
    let records: Vec<CustomerRecord> = (0..n)
        .map(|i| {
            let mut r = company();
            r.id = format!("k-{i}");
            r.subject = Some(format!("co-{i}"));
            r
        })
        .collect();
    c.seal_many(records, "import")
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

fn who(roles: &[&str], purpose: &str, ticket: bool) -> Access {
    Access {
        principal: Principal {
            id: format!("{}-1", roles[0]),
            tenant: "firm-a".into(),
            roles: roles.iter().map(|r| (*r).into()).collect(),
            ..Default::default()
        },
        purpose: purpose.into(),
        context: Context {
            ticket: ticket.then(|| "AUD-7".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn thirty_one_years_of_a_company_customer() {
    let (dir, clock, c, key) = setup("scenario");
    let env = c.seal(company(), "importer").unwrap();
    let backup = env.to_json().to_string();

    // Year 2: the customer asks to be erased. Marketing contacts go now; identity and bank
    // details must stay (accounting archives), restricted.
    clock.set(datetime!(2027-06-15 10:00 UTC));
    let answer = c.erase("firm-a", "acme-co", "dpo").unwrap();
    let outcome = |cat: &str| {
        answer
            .items
            .iter()
            .find(|i| i.category == cat)
            .unwrap()
            .clone()
    };
    assert_eq!(outcome("contact").outcome, "destroyed");
    assert!(outcome("contact").fields.contains(&"phones[]".to_string()));
    assert_eq!(outcome("identity").outcome, "restricted");
    assert_eq!(
        outcome("identity").until.as_deref(),
        Some("2058-01-01"),
        "30 years from the day after FY2027 ends"
    );
    assert_eq!(outcome("banking").until.as_deref(), Some("2038-01-01"));
    assert!(
        outcome("identity")
            .purposes
            .contains(&"statutory_audit".to_string())
    );
    assert!(outcome("identity").basis.contains("会计档案管理办法"));
    let cert = answer.certificate.unwrap();
    cert.verify(&c.signing_public_key()).unwrap();
    assert_eq!(cert.items.len(), 1);

    // A bookkeeper can no longer read the restricted fields; an auditor with a ticket can.
    let v = c
        .reveal(&env, &who(&["accountant"], "payments", false))
        .unwrap();
    assert!(
        matches!(&v.fields["bank_accounts[0].account_number"], FieldView::Denied(r) if r.contains("restricted"))
    );
    assert_eq!(
        v.fields["phones[0]"],
        FieldView::Denied("no rule allows it (default deny)".into())
    );
    let v = c
        .reveal(&env, &who(&["auditor"], "statutory_audit", true))
        .unwrap();
    assert_eq!(
        v.revealed("bank_accounts[0].account_number"),
        Some("110144556600011")
    );
    assert_eq!(v.revealed("name"), Some("示例科技有限公司"));
    assert_eq!(v.fields["phones[0]"], FieldView::Shredded);

    // Year 10: a claim is disputed; an open-matter hold is placed.
    clock.set(datetime!(2036-02-01 10:00 UTC));
    let hold = c
        .place_hold(
            Hold {
                tenant: "firm-a".into(),
                subject: Some("acme-co".into()),
                reason: "unsettled claim 2036-17".into(),
                open_matter: true,
                ..Default::default()
            },
            "counsel",
        )
        .unwrap();
    // Year 13: the bank statements' period is over, but the hold keeps them.
    clock.set(datetime!(2039-01-02 10:00 UTC));
    let r = c.sweep("ops").unwrap();
    assert!(r.proposed.is_empty());
    assert_eq!(r.held, 1);
    assert_eq!(
        c.erase("firm-a", "acme-co", "dpo").unwrap_err().kind(),
        ErrorKind::LegalHold
    );
    c.release_hold(hold, "counsel").unwrap();

    // The sweep now proposes the bank details; two approvers in approver roles are needed.
    let r = c.sweep("ops").unwrap();
    assert_eq!(r.proposed.len(), 1);
    assert_eq!(r.proposed[0].category, "banking");
    let list = r.proposed_list.unwrap();
    assert!(
        c.sweep("ops").unwrap().proposed.is_empty(),
        "not proposed twice"
    );
    assert_eq!(
        c.execute(list, "ops").unwrap_err().kind(),
        ErrorKind::Approval
    );
    c.approve(list, "wang", "archive_head").unwrap();
    assert_eq!(
        c.approve(list, "wang", "archive_head").unwrap_err().kind(),
        ErrorKind::Approval
    );
    assert_eq!(
        c.approve(list, "li", "intern").unwrap_err().kind(),
        ErrorKind::Approval
    );
    assert_eq!(
        c.execute(list, "ops").unwrap_err().kind(),
        ErrorKind::Approval,
        "one approver is not enough"
    );
    c.approve(list, "zhao", "accounting_head").unwrap();
    let cert = c.execute(list, "ops").unwrap();
    cert.verify(&c.signing_public_key()).unwrap();
    assert_eq!(cert.approvals.len(), 2);
    assert!(c.approve(list, "qian", "archive_head").is_err());

    // Year 31: the identity's 30 years are over.
    clock.set(datetime!(2058-01-02 10:00 UTC));
    let r = c.sweep("ops").unwrap();
    assert_eq!(r.proposed.len(), 1);
    let list = r.proposed_list.unwrap();
    c.approve(list, "wang", "archive_head").unwrap();
    c.approve(list, "zhao", "accounting_head").unwrap();
    let cert = c.execute(list, "ops").unwrap();
    cert.verify(&c.signing_public_key()).unwrap();
    let reread = coffer::Certificate::from_json(&cert.to_json()).unwrap();
    reread.verify(&c.signing_public_key()).unwrap();
    let mut forged = reread.clone();
    forged.items[0].subject = "someone-else".into();
    assert_eq!(
        forged.verify(&c.signing_public_key()).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    // An unsigned field riding along is refused when the certificate is read.
    let mut extra: serde_json::Value = serde_json::from_str(&cert.to_json()).unwrap();
    extra["note"] = "approved by the board".into();
    assert!(coffer::Certificate::from_json(&extra.to_string()).is_err());

    // Everything reads as shredded, also from the envelope copied in year one (a backup).
    let old = c.open_envelope(&backup).unwrap();
    let v = c
        .reveal(&old, &who(&["auditor"], "statutory_audit", true))
        .unwrap();
    for p in [
        "name",
        "id_documents[0].number",
        "bank_accounts[0].account_number",
        "phones[0]",
    ] {
        assert_eq!(v.fields[p], FieldView::Shredded, "{p}");
    }
    assert!(c.audit_verify(None).unwrap().intact);
    drop(c);

    // No key bytes or values are left in the database (file or tables).
    let bytes = common::store_bytes(&common::store_in(&dir.0));
    for p in [
        "110144556600011",
        "13912345678",
        "marketing.contact@example.cn",
        "示例科技有限公司",
    ] {
        assert!(
            !bytes.windows(p.len()).any(|w| w == p.as_bytes()),
            "{p} in the file"
        );
    }
    let _ = key;
}

#[test]
fn destroyed_key_bytes_are_gone_from_the_file() {
    if !common::sqlite_only("destroyed_key_bytes_are_gone_from_the_file") {
        return;
    }
    let (dir, clock, c, key) = setup("keybytes");
    let env = c.seal(company(), "importer").unwrap();
    // Capture the wrapped key bytes of the contact category before destruction.
    drop(c);
    let conn = rusqlite::Connection::open(dir.0.join("coffer.db")).unwrap();
    let wrapped: Vec<u8> = conn
        .query_row(
            "SELECT wrapped FROM data_keys WHERE category = 'contact'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    let c = open(&dir.0, &clock, &key);
    clock.set(datetime!(2026-04-01 09:00 UTC));
    c.record_event(
        "firm-a",
        "acme-co",
        Event::PurposeAchieved,
        date!(2026 - 03 - 31),
        "crm",
    )
    .unwrap();
    let r = c.sweep("ops").unwrap();
    assert_eq!(
        r.destroyed.len(),
        1,
        "the PIPL default rule destroys at once"
    );
    r.certificate
        .unwrap()
        .verify(&c.signing_public_key())
        .unwrap();
    assert_eq!(
        c.reveal(&env, &who(&["marketing"], "marketing", false))
            .unwrap()
            .fields["emails[0]"],
        FieldView::Shredded
    );
    drop(c);
    // Checkpoint the WAL into the main file, then look for the wrapped bytes anywhere.
    let conn = rusqlite::Connection::open(dir.0.join("coffer.db")).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(conn);
    let mut bytes = std::fs::read(dir.0.join("coffer.db")).unwrap();
    if let Ok(wal) = std::fs::read(dir.0.join("coffer.db-wal")) {
        bytes.extend(wal);
    }
    assert!(
        !bytes
            .windows(wrapped.len())
            .any(|w| w == wrapped.as_slice()),
        "the destroyed wrapped key is still in the file"
    );
}

#[test]
fn permanent_rules_are_never_swept_and_bad_input_is_refused() {
    let dir = std::env::temp_dir().join(format!("coffer-retention-perm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _guard = Dir(dir.clone());
    let clock = Arc::new(FixedClock::new(datetime!(2026-03-01 09:00 UTC)));
    let rules = RULES.replace(
        "identity = [\"cn.acc.voucher\"]",
        "identity = [\"cn.acc.voucher\", \"cn.acc.report.annual\"]",
    );
    let c = Coffer::open_with(
        dir.join("c.db"),
        &MasterKey::generate().unwrap(),
        OpenOptions {
            retention: Some(Retention::from_toml(&rules, Schema::builtin()).unwrap()),
            clock: clock.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    c.seal(company(), "importer").unwrap();
    clock.set(datetime!(2226-01-01 00:00 UTC));
    let r = c.sweep("ops").unwrap();
    assert!(
        r.proposed.iter().all(|i| i.category != "identity"),
        "a permanent rule is never swept"
    );
    // Events in the future, derived events, holds without reason, unknown lists.
    assert_eq!(
        c.record_event(
            "firm-a",
            "acme-co",
            Event::RelationshipEnded,
            date!(2300 - 01 - 01),
            "x"
        )
        .unwrap_err()
        .kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        c.record_event(
            "firm-a",
            "acme-co",
            Event::Created,
            date!(2100 - 01 - 01),
            "x"
        )
        .unwrap_err()
        .kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        c.place_hold(
            Hold {
                tenant: "firm-a".into(),
                ..Default::default()
            },
            "x"
        )
        .unwrap_err()
        .kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        c.approve(999, "wang", "archive_head").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        c.execute(999, "ops").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        c.release_hold(999, "x").unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn archives_verify_offline_and_restore_into_a_fresh_store() {
    let (dir, clock, a, _key) = setup("archive");
    let envs: Vec<_> = (0..3)
        .map(|i| {
            let mut r = company();
            r.id = format!("k-{i}");
            r.subject = Some(format!("acme-{i}"));
            a.seal(r, "importer").unwrap()
        })
        .collect();
    // The contacts of acme-2 were destroyed before the export: they stay shredded.
    clock.set(datetime!(2026-04-01 09:00 UTC));
    a.record_event(
        "firm-a",
        "acme-2",
        Event::PurposeAchieved,
        date!(2026 - 03 - 31),
        "crm",
    )
    .unwrap();
    assert_eq!(a.sweep("ops").unwrap().destroyed.len(), 1);

    let archive_key = [7u8; 32];
    let mut exporter = who(&["auditor"], "statutory_audit", true);
    exporter.context.destination_region = Some("CN".into());
    let bundle = a.archive_export(&envs, &archive_key, &exporter).unwrap();
    let text = bundle.to_json();
    let bundle = coffer::ArchiveBundle::from_json(&text).unwrap();
    let pk = a.signing_public_key();
    let check = bundle.verify(&pk, None).unwrap();
    assert_eq!((check.envelopes, check.contents_checked), (3, false));
    let full = bundle.verify(&pk, Some(&archive_key)).unwrap();
    assert!(full.contents_checked);
    assert_eq!(
        full.shredded, 1,
        "acme-2's contacts were destroyed before the export"
    );
    assert_eq!(
        bundle.verify(&pk, Some(&[8u8; 32])).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    let mut tampered = bundle.clone();
    tampered.envelopes.swap(0, 1);
    assert_eq!(
        tampered.verify(&pk, None).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    assert_eq!(
        bundle.verify(&[0u8; 32], None).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    for p in ["110144556600011", "13912345678", "示例科技有限公司"] {
        assert!(!text.contains(p), "the bundle holds {p} in clear");
    }

    // A fresh store, another master key: restore, then reveal and search there.
    let dir_b = dir.0.join("b");
    std::fs::create_dir_all(&dir_b).unwrap();
    let b = open(&dir_b, &clock, &MasterKey::generate().unwrap());
    let restored = b
        .archive_restore(&bundle, &archive_key, &pk, "ops")
        .unwrap();
    assert_eq!(restored.len(), 3);
    // The old store's envelopes do not open in the new one; the restored ones do.
    assert_eq!(
        b.open_envelope(&envs[0].to_json()).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    let again = b.open_envelope(&restored[0].to_json()).unwrap();
    let v = b
        .reveal(&again, &who(&["accountant"], "payments", false))
        .unwrap();
    assert_eq!(
        v.revealed("bank_accounts[0].account_number"),
        Some("110144556600011")
    );
    let tokens = common::tokens(&b, "firm-a", "phones[]", "139 1234 5678").unwrap();
    assert_eq!(restored[0].index()["phones[0]"]["1"], tokens[0].token);
    let v = b
        .reveal(&restored[2], &who(&["marketing"], "marketing", false))
        .unwrap();
    assert_eq!(v.fields["phones[0]"], FieldView::Shredded);
    assert!(b.audit_verify(None).unwrap().intact);
}

#[test]
fn company_rules_can_be_overridden_by_two_approvers_statutory_ones_never() {
    let (dir, clock, c, key) = setup("override");
    c.seal(company(), "importer").unwrap();
    let year = coffer::retention::Period::parse("1y").unwrap();
    let two = [("wang", "archive_head"), ("zhao", "accounting_head")];
    assert_eq!(
        c.override_rule("cn.acc.voucher", year, &two, "ops")
            .unwrap_err()
            .kind(),
        ErrorKind::Retention
    );
    assert_eq!(
        c.override_rule("cn.pipl.default", year, &two[..1], "ops")
            .unwrap_err()
            .kind(),
        ErrorKind::Approval
    );
    assert_eq!(
        c.override_rule(
            "cn.pipl.default",
            year,
            &[("wang", "archive_head"), ("wang", "accounting_head")],
            "ops"
        )
        .unwrap_err()
        .kind(),
        ErrorKind::Approval
    );
    assert_eq!(
        c.override_rule(
            "cn.pipl.default",
            year,
            &[("wang", "archive_head"), ("li", "intern")],
            "ops"
        )
        .unwrap_err()
        .kind(),
        ErrorKind::Approval
    );
    assert_eq!(
        c.override_rule("nope", year, &two, "ops")
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    // Keep contacts for a year after their purpose ends, instead of destroying them at once.
    c.override_rule("cn.pipl.default", year, &two, "ops")
        .unwrap();
    clock.set(datetime!(2026-04-01 09:00 UTC));
    c.record_event(
        "firm-a",
        "acme-co",
        Event::PurposeAchieved,
        date!(2026 - 03 - 31),
        "crm",
    )
    .unwrap();
    assert!(c.sweep("ops").unwrap().destroyed.is_empty());
    drop(c);
    // The override is in the store: it holds after a reopen.
    let c = open(&dir.0, &clock, &key);
    clock.set(datetime!(2027-03-30 09:00 UTC));
    assert!(c.sweep("ops").unwrap().destroyed.is_empty());
    clock.set(datetime!(2027-03-31 09:00 UTC));
    assert_eq!(c.sweep("ops").unwrap().destroyed.len(), 1);
    assert!(c.audit_verify(None).unwrap().intact);
}

/// An erasure's restrictions are facts in the store, not a feature of the process that loaded
/// retention rules: an application that opens the same store without rules (an ERP that only
/// reveals, a script) must still be held to them.
#[test]
fn restrictions_hold_for_a_process_opened_without_retention_rules() {
    let (dir, clock, c, key) = setup("restrict-no-rules");
    let env = c.seal(company(), "import").unwrap();
    let accountant = who(&["accountant"], "payments", false);
    let before = c.reveal(&env, &accountant).unwrap();
    assert!(
        before.revealed("bank_accounts[0].account_number").is_some(),
        "the accountant sees the account before the erasure"
    );
    c.erase("firm-a", "acme-co", "dpo").unwrap();
    drop(c);
    // The same store, opened with the policy only.
    let plain = Coffer::open_with(
        common::store_in(&dir.0),
        &key,
        OpenOptions {
            policy: Some(Policy::from_toml(POLICY, Schema::builtin()).unwrap()),
            clock: clock.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    let after = plain.reveal(&env, &accountant).unwrap();
    assert!(
        matches!(
            after.fields.get("bank_accounts[0].account_number"),
            Some(FieldView::Denied(_))
        ),
        "restricted to the statutory audit: {:?}",
        after.fields.get("bank_accounts[0].account_number")
    );
    assert!(after.revealed("id_documents[0].number").is_none());
    // The auditor, for the audit, still sees what the law keeps.
    let auditor = who(&["auditor"], "statutory_audit", true);
    let seen = plain.reveal_many(&[env.clone(), env], &auditor).unwrap();
    for v in &seen {
        assert!(v.revealed("bank_accounts[0].account_number").is_some());
    }
}

/// Crypto-shredding holds for every handle on the store, not only the one that destroyed: a
/// long-running application that has a key in its cache must not keep revealing (or sealing
/// under) a key another process destroyed.
#[test]
fn a_key_destroyed_by_another_handle_is_not_used_from_a_cache() {
    let (dir, clock, eraser, key) = setup("shred-cache");
    let env = eraser.seal(company(), "import").unwrap();
    // The ERP: its own handle, which reveals the customer (so their keys are cached).
    let erp = open(&dir.0, &clock, &key);
    let auditor = who(&["auditor"], "statutory_audit", true);
    let before = erp.reveal(&env, &auditor).unwrap();
    assert!(before.revealed("phones[0]").is_some());
    // The privacy officer's tool erases the customer: contacts destroyed now.
    let answer = eraser.erase("firm-a", "acme-co", "dpo").unwrap();
    assert!(answer.certificate.is_some());
    let after = erp.reveal(&env, &auditor).unwrap();
    assert!(
        matches!(after.fields.get("phones[0]"), Some(FieldView::Shredded)),
        "the ERP's cached key was used after its destruction: {:?}",
        after.fields.get("phones[0]")
    );
    assert!(matches!(
        after.fields.get("emails[0]"),
        Some(FieldView::Shredded)
    ));
    // Still kept by law, still there.
    assert!(after.revealed("id_documents[0].number").is_some());
    // A new record for the same customer, sealed by the ERP, goes under a new contact key that
    // is not destroyed: it opens from a third handle.
    let mut again = company();
    again.id = "k-2".into();
    let sealed = erp.seal(again, "erp").unwrap();
    let third = open(&dir.0, &clock, &key);
    let view = third.reveal(&sealed, &auditor).unwrap();
    assert!(
        view.revealed("phones[0]").is_some(),
        "sealed under a destroyed key: {:?}",
        view.fields.get("phones[0]")
    );
    assert!(third.audit_verify(None).unwrap().intact);
}

/// A batch of many subjects, some erased (in both chunks the store reads restrictions in):
/// exactly those are restricted.
#[test]
fn a_large_batch_reads_each_subjects_restrictions() {
    let (_dir, _clock, c, _key) = setup("restrict-batch");
    let envelopes = seal_companies(&c, 600);
    for i in [3, 550] {
        c.erase("firm-a", &format!("co-{i}"), "dpo").unwrap();
    }
    // The privacy officer has no rate limit, and data protection is not a purpose the rules
    // keep restricted data for.
    let officer = who(&["privacy_officer"], "data_protection", true);
    let views = c.reveal_many(&envelopes, &officer).unwrap();
    let restricted: Vec<usize> = views
        .iter()
        .enumerate()
        .filter(|(_, v)| {
            matches!(
                v.fields.get("bank_accounts[0].account_number"),
                Some(FieldView::Denied(r)) if r.contains("restricted")
            )
        })
        .map(|(i, _)| i)
        .collect();
    assert_eq!(restricted, vec![3, 550]);
    assert_eq!(
        views
            .iter()
            .filter(|v| v.revealed("bank_accounts[0].account_number").is_some())
            .count(),
        598,
        "the others are revealed"
    );
}

/// A large batch of many subjects finds each subject's keys once and reads a destroyed
/// category as shredded for exactly the subjects whose key it was: the same views, field by
/// field, as batches too small to be fetched ahead.
#[test]
fn a_large_batch_of_many_subjects_shows_what_small_batches_show() {
    let (_dir, _clock, c, _key) = setup("many-subjects");
    let envelopes = seal_companies(&c, 300);
    // Their contact keys are destroyed at once (nothing requires keeping a company's phone).
    for i in [7, 250] {
        c.erase("firm-a", &format!("co-{i}"), "dpo").unwrap();
    }
    let auditor = who(&["auditor"], "statutory_audit", true);
    let whole = c.reveal_many(&envelopes, &auditor).unwrap();
    let parts: Vec<_> = envelopes
        .chunks(50)
        .flat_map(|part| c.reveal_many(part, &auditor).unwrap())
        .collect();
    assert_eq!(whole.len(), 300);
    for (i, (a, b)) in whole.iter().zip(&parts).enumerate() {
        assert!(a.fields == b.fields, "k-{i}");
        let phone = &a.fields["phones[0]"];
        if i == 7 || i == 250 {
            assert_eq!(*phone, FieldView::Shredded, "k-{i}");
        } else {
            assert!(!matches!(phone, FieldView::Shredded), "k-{i}");
        }
        assert_eq!(
            a.revealed("bank_accounts[0].account_number"),
            Some("110144556600011"),
            "k-{i}"
        );
    }
}

/// An override approved through one handle (the archive head's tool) governs the dates another,
/// already running handle computes: otherwise the ERP, recording that a customer's purpose was
/// achieved, would date their contacts by the old rule, and the next sweep would destroy what
/// the firm had decided to keep for a year.
#[test]
fn an_override_approved_elsewhere_reaches_a_running_handle() {
    let (dir, clock, ops, key) = setup("override-elsewhere");
    let erp = open(&dir.0, &clock, &key);
    erp.seal(company(), "erp").unwrap();
    let year = coffer::retention::Period::parse("1y").unwrap();
    let two = [("wang", "archive_head"), ("zhao", "accounting_head")];
    ops.override_rule("cn.pipl.default", year, &two, "ops")
        .unwrap();
    clock.set(datetime!(2026-04-01 09:00 UTC));
    erp.record_event(
        "firm-a",
        "acme-co",
        Event::PurposeAchieved,
        date!(2026 - 03 - 31),
        "crm",
    )
    .unwrap();
    assert!(
        ops.sweep("ops").unwrap().destroyed.is_empty(),
        "dated by the rule as it was before the override"
    );
    clock.set(datetime!(2027-03-31 09:00 UTC));
    assert_eq!(ops.sweep("ops").unwrap().destroyed.len(), 1);
}
