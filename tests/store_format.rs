//! A key store made by an earlier build, kept in `tests/vectors/store-v3/`, must open and read
//! with this one: its keys unwrap, its envelopes reveal the same values, its blind-index tokens
//! and audit chain check out, its destruction certificate verifies, and it takes new writes.
//!
//! The envelope vectors pin field encryption given the data keys; this pins the rest of what a
//! firm keeps for decades: the master key → KEK → data key hierarchy, the index keys, the audit
//! MAC chain and the signing key, all inside the SQLite file. A change that would leave old
//! stores unreadable fails here. A fixture is never regenerated: a new store format gets a new
//! folder (`store-v4`) beside this one, and this test keeps opening the old one through the
//! migrations.
//!
//! `COFFER_BLESS_STORE=1 cargo test -p coffer-conformance --test store_format` makes the
//! fixture when its folder does not exist yet.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use coffer::clock::FixedClock;
use coffer::policy::{Context, Policy, Principal};
use coffer::record::{CustomerRecord, Schema};
use coffer::retention::Retention;
use coffer::{Access, Coffer, ErrorKind, MasterKey, OpenOptions};
use serde_json::{Value, json};
use time::macros::datetime;

const POLICY: &str = include_str!("../examples/policies/accounting-firm.toml");
const RETENTION: &str = include_str!("../examples/policies/retention.toml");
const TENANT: &str = "fixture-firm";

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors/store-v3")
}

fn options(clock: Arc<FixedClock>, create: bool) -> OpenOptions {
    let schema = Schema::builtin();
    OpenOptions {
        policy: Some(Policy::from_toml(POLICY, schema).unwrap()),
        retention: Some(Retention::from_toml(RETENTION, schema).unwrap()),
        clock,
        create,
        ..Default::default()
    }
}

/// Who may search `field` under the example policy: an accountant for payments (identity
/// documents), a clerk for bookkeeping (contact details).
fn searcher(field: &str) -> Access {
    let (role, purpose) = if field.starts_with("phones") {
        ("clerk", "bookkeeping")
    } else {
        ("accountant", "payments")
    };
    Access {
        principal: Principal {
            id: format!("{role}-1"),
            tenant: TENANT.into(),
            roles: vec![role.into()],
            ..Default::default()
        },
        purpose: purpose.into(),
        ..Default::default()
    }
}

fn auditor() -> Access {
    Access {
        principal: Principal {
            id: "auditor-1".into(),
            tenant: TENANT.into(),
            roles: vec!["auditor".into()],
            ..Default::default()
        },
        purpose: "statutory_audit".into(),
        context: Context {
            ticket: Some("AUD-2026-001".into()),
            destination_region: Some("CN".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A view's fields as JSON (`state`, and `value` or `reason`), without its audit sequence
/// number, which depends on when it was made.
fn fields_of(view: &coffer::View) -> Value {
    let v: Value = serde_json::from_str(&coffer::wire::view_to_json(view)).unwrap();
    json!({ "record": v["record"], "fields": v["fields"] })
}

fn records() -> Vec<CustomerRecord> {
    [
        r#"{"id":"c-1","tenant":"fixture-firm","kind":"individual","name":"测试甲",
            "id_documents":[{"type":"cn_resident_id","number":"110101200001010002"}],
            "phones":["13800000001"],"emails":["fixture.one@example.com"],
            "addresses":["示例省示例市示例路1号"],
            "bank_accounts":[{"bank_name":"示例银行","account_type":"card","account_number":"6200000000000005"}],
            "custom":{"note":"fixture customer one"}}"#,
        r#"{"id":"c-2","tenant":"fixture-firm","kind":"individual","name":"测试乙",
            "id_documents":[{"type":"cn_resident_id","number":"11010119800101007X"}],
            "phones":["13800000002"],"emails":["fixture.two@example.com"]}"#,
        r#"{"id":"k-1","tenant":"fixture-firm","kind":"company","name":"示例科技有限公司",
            "id_documents":[{"type":"uscc","number":"91110000MA00000152"}],
            "emails":["finance@example.cn"],
            "bank_accounts":[{"bank_name":"示例银行","account_type":"settlement","account_number":"110000000000000000001"}]}"#,
        r#"{"id":"c-3","tenant":"fixture-firm","kind":"individual","name":"测试丙",
            "id_documents":[{"type":"cn_resident_id","number":"440304199912310023"}],
            "phones":["13800000003"]}"#,
    ]
    .iter()
    .map(|j| CustomerRecord::from_json(j).unwrap())
    .collect()
}

/// Makes the fixture: four customers sealed, the index key rotated before the fourth, one
/// erasure (contact details destroyed with a certificate), a completed KEK rotation, a legal
/// hold, and a checkpoint of the audit chain.
fn make_fixture(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let key = MasterKey::generate().unwrap();
    let clock = Arc::new(FixedClock::new(datetime!(2026-11-27 09:00 UTC)));
    let db = dir.join("store.db");
    let (envelopes, certificate, checkpoint, public_key) = {
        let c = Coffer::open_with(&db, &key, options(Arc::clone(&clock), true)).unwrap();
        let mut rs = records();
        let fourth = rs.pop().unwrap();
        let mut envelopes: Vec<String> = c
            .seal_many(rs, "fixture")
            .unwrap()
            .into_iter()
            .map(|e| e.unwrap().to_json().to_string())
            .collect();
        clock.advance(time::Duration::hours(1));
        c.rotate_index_key("fixture").unwrap();
        envelopes.push(c.seal(fourth, "fixture").unwrap().to_json().to_string());
        clock.advance(time::Duration::hours(1));
        let certificate = c
            .erase(TENANT, "c-2", "fixture")
            .unwrap()
            .certificate
            .unwrap()
            .to_json();
        c.rotate_kek("fixture").unwrap();
        while c.continue_kek_rotation(100, "fixture").unwrap() > 0 {}
        c.place_hold(
            coffer::Hold {
                tenant: TENANT.into(),
                subject: Some("k-1".into()),
                category: None,
                reason: "tax inspection 2026-14".into(),
                until: None,
                open_matter: true,
            },
            "fixture",
        )
        .unwrap();
        let checkpoint = c.audit_checkpoint("fixture").unwrap().to_json();
        let public_key = coffer::crypto::b64url(&c.signing_public_key());
        (envelopes, certificate, checkpoint, public_key)
    };
    // The connection is closed: SQLite has folded its write-ahead log into the file.
    assert!(!dir.join("store.db-wal").exists());
    let c = Coffer::open_with(&db, &key, options(Arc::clone(&clock), false)).unwrap();
    let views: Vec<Value> = envelopes
        .iter()
        .map(|e| fields_of(&c.reveal(&c.open_envelope(e).unwrap(), &auditor()).unwrap()))
        .collect();
    let search: Vec<Value> = [
        ("id_documents[].number", "110101200001010002"),
        ("id_documents[].number", "440304199912310023"),
        ("phones[]", "13800000001"),
    ]
    .iter()
    .map(|(field, value)| {
        let tokens = c.search(&searcher(field), field, value).unwrap().tokens.remove(0);
        json!({
            "field": field,
            "value": value,
            "tokens": serde_json::from_str::<Value>(&coffer::wire::tokens_to_json(&tokens)).unwrap(),
        })
    })
    .collect();
    let entries = c.audit_len().unwrap();
    drop(c);
    let fixture = json!({
        "description": "A key store made by coffer 0.1.0 (store schema 3) with a test-only master key. Never regenerate it: a new format gets a new folder. tests/store_format.rs checks that this build opens and reads it.",
        "made_by": format!("coffer {}", env!("CARGO_PKG_VERSION")),
        "store_schema_version": 3,
        "clock": "2026-11-27T11:00:00Z",
        "master_key_hex": hex(&key.to_bytes()[..]),
        "public_key": public_key,
        "tenant": TENANT,
        "envelopes": envelopes,
        "views_as_auditor": views,
        "search": search,
        "certificate": certificate,
        "checkpoint": checkpoint,
        "audit_entries": entries,
    });
    std::fs::write(
        dir.join("fixture.json"),
        serde_json::to_string_pretty(&fixture).unwrap() + "\n",
    )
    .unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_store_made_by_an_earlier_build_opens_and_reads() {
    let dir = fixture_dir();
    if !dir.join("fixture.json").exists() {
        assert!(
            std::env::var_os("COFFER_BLESS_STORE").is_some(),
            "{} is missing; it is made once, with COFFER_BLESS_STORE=1",
            dir.display()
        );
        make_fixture(&dir);
    }
    let f: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("fixture.json")).unwrap()).unwrap();

    // Work on a copy: the fixture itself is never written.
    let work = std::env::temp_dir().join(format!("coffer-store-v3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let db = work.join("store.db");
    std::fs::copy(dir.join("store.db"), &db).unwrap();

    let key = MasterKey::from_text(f["master_key_hex"].as_str().unwrap()).unwrap();
    let clock = Arc::new(FixedClock::new(
        coffer::wire::parse_time(f["clock"].as_str().unwrap()).unwrap(),
    ));

    // The wrong master key is refused, and harms nothing.
    let wrong = MasterKey::generate().unwrap();
    let err = Coffer::open_with(&db, &wrong, options(Arc::clone(&clock), false)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongMasterKey, "{err}");

    let c = Coffer::open_with(&db, &key, options(Arc::clone(&clock), false)).unwrap();

    // The signing key, the certificate and the audit chain up to its checkpoint.
    assert_eq!(
        coffer::crypto::b64url(&c.signing_public_key()),
        f["public_key"].as_str().unwrap()
    );
    let cert = coffer::Certificate::from_json(f["certificate"].as_str().unwrap()).unwrap();
    cert.verify(&c.signing_public_key()).unwrap();
    let checkpoint =
        coffer::audit::Checkpoint::from_json(f["checkpoint"].as_str().unwrap()).unwrap();
    let report = c.audit_verify(Some(&checkpoint)).unwrap();
    assert!(report.intact, "{:?}", report.first_problem);
    assert!(report.checkpoint_checked);
    // Opening appends its own entries (the policy load), never fewer.
    assert!(report.entries >= f["audit_entries"].as_u64().unwrap());

    // Every envelope reveals exactly as it did: values, masks, shredded contacts.
    let envelopes = f["envelopes"].as_array().unwrap();
    let expected = f["views_as_auditor"].as_array().unwrap();
    assert_eq!(envelopes.len(), 4);
    for (e, want) in envelopes.iter().zip(expected) {
        let env = c.open_envelope(e.as_str().unwrap()).unwrap();
        let view = c.reveal(&env, &auditor()).unwrap();
        assert_eq!(&fields_of(&view), want);
    }
    let shredded = expected[1]["fields"]["phones[0]"]["state"].as_str();
    assert_eq!(shredded, Some("shredded"), "the erased customer's phone");
    let revealed = expected[0]["fields"]["id_documents[0].number"]["value"].as_str();
    assert_eq!(revealed, Some("110101200001010002"));

    // The blind-index tokens are the same, for both index epochs.
    for s in f["search"].as_array().unwrap() {
        let field = s["field"].as_str().unwrap();
        let tokens = c
            .search(&searcher(field), field, s["value"].as_str().unwrap())
            .unwrap()
            .tokens
            .remove(0);
        let got: Value = serde_json::from_str(&coffer::wire::tokens_to_json(&tokens)).unwrap();
        assert_eq!(got, s["tokens"], "{}", s["field"]);
        assert_eq!(got.as_array().unwrap().len(), 2, "two index epochs");
    }

    // Redaction (issue 16): each version 1 envelope comes back as version 2 with its masked
    // forms sealed, reading exactly as before; the erased customer's contact fields and their
    // blind-index tokens are gone, and the host is told which index columns to clear.
    let envs: Vec<coffer::Envelope> = envelopes
        .iter()
        .map(|e| c.open_envelope(e.as_str().unwrap()).unwrap())
        .collect();
    assert!(envs.iter().all(|e| e.version() == 1));
    let redacted = c.redact_many(&envs, "fixture-check").unwrap();
    for ((r, want), old) in redacted.iter().zip(expected).zip(&envs) {
        assert!(r.changed);
        assert_eq!(r.envelope.version(), 2);
        assert!(r.envelope.masked().is_empty());
        let text = r.envelope.to_json();
        for m in old.masked().values().filter(|m| m.chars().count() >= 6) {
            assert!(!text.contains(m.as_str()), "a clear masked form is left");
        }
        let again = c.open_envelope(&text).unwrap();
        assert_eq!(&fields_of(&c.reveal(&again, &auditor()).unwrap()), want);
    }
    assert!(redacted[0].shredded_categories.is_empty());
    assert_eq!(redacted[1].shredded_categories, vec!["contact".to_owned()]);
    assert!(redacted[1].clear_index.contains(&"phones[0]".to_owned()));
    assert!(!redacted[1].envelope.index().contains_key("phones[0]"));
    assert_eq!(
        redacted[1]
            .envelope
            .shredded()
            .get("phones[0]")
            .map(String::as_str),
        Some("contact")
    );
    // Redacting a redacted envelope changes nothing.
    let twice = c.redact(&redacted[1].envelope, "fixture-check").unwrap();
    assert!(!twice.changed);
    assert!(twice.clear_index.is_empty());

    // The hold is still there and still protects.
    let holds = c.holds(Some(TENANT)).unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].subject.as_deref(), Some("k-1"));

    // The store takes new writes: a reseal under the current keys, a new customer, and the
    // chain still verifies.
    let env = c.open_envelope(envelopes[0].as_str().unwrap()).unwrap();
    let resealed = c.reseal(&env, "fixture-check").unwrap();
    let view = c.reveal(&resealed, &auditor()).unwrap();
    assert_eq!(fields_of(&view), expected[0]);
    let mut fresh = records().pop().unwrap();
    fresh.id = "c-4".into();
    let sealed = c.seal(fresh, "fixture-check").unwrap();
    assert!(
        c.reveal(&sealed, &auditor())
            .unwrap()
            .revealed("name")
            .is_some()
    );
    let report = c.audit_verify(Some(&checkpoint)).unwrap();
    assert!(report.intact, "{:?}", report.first_problem);
    drop(c);
    std::fs::remove_dir_all(&work).unwrap();
}

/// The page size an SQLite file's header records (bytes 16–17, big-endian; 1 means 65536).
fn page_size(db: &Path) -> u32 {
    let header = std::fs::read(db).unwrap();
    match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u32::from(n),
    }
}

/// New stores are made with 16 KiB pages (fewer WAL frames and checkpoint writes per batch);
/// a store made with another page size keeps it, and takes new writes, when opened.
#[test]
fn new_stores_use_16_kib_pages_and_old_stores_keep_theirs() {
    let work = std::env::temp_dir().join(format!("coffer-page-size-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let clock = Arc::new(FixedClock::new(datetime!(2026-06-01 09:00 UTC)));

    let fresh = work.join("fresh.db");
    let key = MasterKey::generate().unwrap();
    {
        let c = Coffer::open_with(&fresh, &key, options(Arc::clone(&clock), true)).unwrap();
        c.seal_many(records(), "importer").unwrap();
    }
    assert_eq!(page_size(&fresh), 16_384);
    // Closed and opened again: still readable, still 16 KiB.
    {
        let c = Coffer::open_with(&fresh, &key, options(Arc::clone(&clock), false)).unwrap();
        assert!(c.audit_verify(None).unwrap().intact);
    }
    assert_eq!(page_size(&fresh), 16_384);

    let dir = fixture_dir();
    if dir.join("fixture.json").exists() {
        let f: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("fixture.json")).unwrap())
                .unwrap();
        let old = work.join("old.db");
        std::fs::copy(dir.join("store.db"), &old).unwrap();
        let before = page_size(&old);
        assert_eq!(
            before, 4_096,
            "the fixture was made with SQLite's default pages"
        );
        let key = MasterKey::from_text(f["master_key_hex"].as_str().unwrap()).unwrap();
        {
            let c = Coffer::open_with(&old, &key, options(Arc::clone(&clock), false)).unwrap();
            let more: Vec<CustomerRecord> = records()
                .into_iter()
                .map(|r| {
                    let mut v = serde_json::to_value(&r).unwrap();
                    v["id"] = json!(format!("new-{}", v["id"].as_str().unwrap()));
                    serde_json::from_value(v).unwrap()
                })
                .collect();
            for sealed in c.seal_many(more, "importer").unwrap() {
                sealed.unwrap();
            }
            assert!(c.audit_verify(None).unwrap().intact);
        }
        assert_eq!(page_size(&old), before);
    }
    let _ = std::fs::remove_dir_all(&work);
}
