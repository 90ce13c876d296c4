//! The vault through its public API, and the attacks it must withstand.

mod common;
use common::Dir;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use coffer::audit::Tampering;
use coffer::policy::{Context, Policy, Principal};
use coffer::record::{CustomerRecord, Schema};
use coffer::{Access, Coffer, Envelope, ErrorKind, FieldView, MasterKey, OpenOptions};

const POLICY: &str = include_str!("../../../examples/policies/accounting-firm.toml");

fn open(path: &Path, key: &MasterKey) -> Coffer {
    open_clocked(path, key, OpenOptions::default().clock)
}

/// A Coffer under the example policy whose clock is `clock`.
fn open_clocked(path: &Path, key: &MasterKey, clock: Arc<dyn coffer::clock::Clock>) -> Coffer {
    let policy = Policy::from_toml(POLICY, Schema::builtin()).unwrap();
    Coffer::open_with(
        path,
        key,
        OpenOptions {
            policy: Some(policy),
            clock,
            ..Default::default()
        },
    )
    .unwrap()
}

/// A clock standing at 10:00 in Beijing on 2026-11-27 (office hours for the example policy).
fn ten_am() -> Arc<coffer::clock::FixedClock> {
    Arc::new(coffer::clock::FixedClock::new(time::macros::datetime!(
        2026-11-27 10:00 +08:00
    )))
}

fn record(id: &str, tenant: &str) -> CustomerRecord {
    CustomerRecord::from_json(&format!(
        r#"{{"id":"{id}","tenant":"{tenant}","kind":"individual","name":"张三丰",
            "id_documents":[{{"type":"cn_resident_id","number":"110101200001010002"}}],
            "phones":["+86 139 1234 5678"],"emails":["sentinel.mail@example.com"],
            "addresses":["北京市东城区示例街道1号"],
            "bank_accounts":[{{"bank_name":"示例银行","account_type":"card","account_number":"6200000000000005"}}]}}"#
    ))
    .unwrap()
}

/// Seals `records` in one batch, every one of which must seal.
fn seal_all(c: &Coffer, records: Vec<CustomerRecord>, actor: &str) -> Vec<Envelope> {
    c.seal_many(records, actor)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

fn access(roles: &[&str], purpose: &str, tenant: &str) -> Access {
    Access {
        principal: Principal {
            id: "u-1".into(),
            tenant: tenant.into(),
            roles: roles.iter().map(|r| (*r).into()).collect(),
            ..Default::default()
        },
        purpose: purpose.into(),
        context: Context {
            ticket: Some("T-1".into()),
            destination_region: Some("CN".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

const PLAINTEXTS: [&str; 5] = [
    "张三丰",
    "110101200001010002",
    "13912345678",
    "sentinel.mail@example.com",
    "6200000000000005",
];

#[test]
fn seal_and_reveal_by_role() {
    let d = Dir::new("roles");
    let key = MasterKey::generate().unwrap();
    let c = open(&d.db(), &key);
    let env = c.seal(record("c-1", "firm-a"), "importer").unwrap();
    // Envelope version 3 (masked forms sealed since version 2, not in clear; fields under
    // their data key's own cipher since version 3).
    assert_eq!(env.version(), 3);
    assert!(env.masked().is_empty());
    assert!(!env.to_json().contains("139****5678"));
    assert!(env.index().contains_key("id_documents[0].number"));

    let v = c
        .reveal(&env, &access(&["accountant"], "payments", "firm-a"))
        .unwrap();
    assert_eq!(
        v.revealed("bank_accounts[0].account_number"),
        Some("6200000000000005")
    );
    assert_eq!(v.revealed("name"), Some("张三丰"));
    assert!(matches!(v.fields["phones[0]"], FieldView::Denied(_)));

    let v = c
        .reveal(&env, &access(&["clerk"], "bookkeeping", "firm-a"))
        .unwrap();
    assert_eq!(
        v.fields["phones[0]"],
        FieldView::Masked("139****5678".into())
    );
    assert_eq!(
        v.fields["id_documents[0].number"],
        FieldView::Masked("1****************2".into())
    );
    assert!(matches!(
        v.fields["bank_accounts[0].account_number"],
        FieldView::Denied(_)
    ));

    // Customer service gets the privileged mask, computed from the decrypted value, in office
    // hours by Coffer's clock (a request's own time must lie near it).
    let at_ten = open_clocked(&d.db(), &key, ten_am());
    let a = access(&["customer_service"], "customer_service", "firm-a");
    let v = at_ten.reveal(&env, &a).unwrap();
    assert_eq!(
        v.fields["addresses[0]"],
        FieldView::Masked("北京市东城区****".into())
    );

    // Another tenant gets nothing.
    let v = c
        .reveal(&env, &access(&["auditor"], "statutory_audit", "firm-b"))
        .unwrap();
    assert!(v.fields.values().all(|f| matches!(f, FieldView::Denied(_))));

    // The envelope survives a round trip through its JSON.
    let again = c.open_envelope(&env.to_json()).unwrap();
    assert_eq!(again, env);
    assert!(c.audit_verify(None).unwrap().intact);
}

#[test]
fn every_flipped_bit_is_refused() {
    let d = Dir::new("flip");
    let key = MasterKey::generate().unwrap();
    let c = open(&d.db(), &key);
    let json = c
        .seal(record("c-1", "firm-a"), "t")
        .unwrap()
        .to_json()
        .to_string();
    let bytes = json.as_bytes();
    let version_at = json.find("\"coffer\":3").unwrap() + 9;
    let mut checked = 0;
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.to_vec();
            b[i] ^= 1 << bit;
            let Ok(text) = String::from_utf8(b) else {
                continue;
            };
            match c.open_envelope(&text) {
                Ok(_) => panic!("flipping bit {bit} of byte {i} was not detected"),
                Err(e) if i == version_at => assert!(matches!(
                    e.kind(),
                    ErrorKind::Integrity | ErrorKind::UnsupportedVersion
                )),
                Err(e) => assert_eq!(e.kind(), ErrorKind::Integrity, "byte {i} bit {bit}: {e}"),
            }
            checked += 1;
        }
    }
    assert!(checked > 5000, "{checked}");
}

fn swap_json(env: &Envelope, f: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&env.to_json()).unwrap();
    f(&mut v);
    v.to_string()
}

#[test]
fn transplanted_ciphertexts_do_not_open() {
    let d = Dir::new("transplant");
    let key = MasterKey::generate().unwrap();
    let c = open(&d.db(), &key);
    let a = c.seal(record("c-1", "firm-a"), "t").unwrap();
    let a2 = c.seal(record("c-1", "firm-a"), "t").unwrap();
    let b = c.seal(record("c-2", "firm-a"), "t").unwrap();
    let t = c.seal(record("c-1", "firm-b"), "t").unwrap();
    let ct = |e: &Envelope, p: &str| {
        serde_json::from_str::<serde_json::Value>(&e.to_json()).unwrap()["fields"][p]["ct"].clone()
    };
    // Another field of the same record.
    let moved = swap_json(&a, |v| v["fields"]["name"]["ct"] = ct(&a, "addresses[0]"));
    // The same field of another record, another tenant, another seal of the same record.
    let other_record = swap_json(&a, |v| v["fields"]["name"]["ct"] = ct(&b, "name"));
    let other_tenant = swap_json(&a, |v| v["fields"]["name"]["ct"] = ct(&t, "name"));
    let other_seal = swap_json(&a, |v| v["fields"]["name"]["ct"] = ct(&a2, "name"));
    // A whole envelope relabelled as another record.
    let relabelled = swap_json(&a, |v| v["record"] = "c-2".into());
    for (what, text) in [
        ("field", moved),
        ("record", other_record),
        ("tenant", other_tenant),
        ("seal", other_seal),
        ("label", relabelled),
    ] {
        assert_eq!(
            c.open_envelope(&text).unwrap_err().kind(),
            ErrorKind::Integrity,
            "{what}"
        );
    }
}

/// A batch large enough that its MACs are checked on several threads and its envelopes fetched
/// ahead: it shows what smaller batches show, and one tampered envelope deep in it fails the
/// whole batch, before anything is decided or audited.
#[test]
fn one_tampered_envelope_in_a_large_batch_stops_it_before_any_entry() {
    let d = Dir::new("tampered-batch");
    let key = MasterKey::generate().unwrap();
    let c = open(&d.db(), &key);
    let records = (0..400)
        .map(|i| record(&format!("c-{i}"), "firm-a"))
        .collect();
    let mut envelopes: Vec<Envelope> = seal_all(&c, records, "t");
    let auditor = access(&["auditor"], "statutory_audit", "firm-a");
    let whole = c.reveal_many(&envelopes, &auditor).unwrap();
    assert_eq!(whole.len(), 400);
    // A batch this large fetches each next envelope ahead of its turn; batches of 100 do not.
    // What is shown is the same either way, envelope by envelope and field by field.
    let parts: Vec<_> = envelopes
        .chunks(100)
        .flat_map(|part| c.reveal_many(part, &auditor).unwrap())
        .collect();
    for (a, b) in whole.iter().zip(&parts) {
        assert_eq!(a.record, b.record);
        assert!(a.fields == b.fields, "record {}", a.record);
    }
    // The envelope relabelled as another record parses, but its MAC no longer holds.
    let relabelled = swap_json(&envelopes[333], |v| v["record"] = "c-0".into());
    envelopes[333] = Envelope::from_json(&relabelled).unwrap();
    let before = c.audit_len().unwrap();
    let err = c.reveal_many(&envelopes, &auditor).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    assert_eq!(c.audit_len().unwrap(), before, "nothing was audited");
}

#[test]
fn a_wrong_master_key_is_refused_before_anything_is_written() {
    let d = Dir::new("wrongkey");
    let key = MasterKey::generate().unwrap();
    let n = {
        let c = open(&d.db(), &key);
        c.seal(record("c-1", "firm-a"), "t").unwrap();
        c.audit_len().unwrap()
    };
    let before = common::fingerprint(&d.db());
    let err = Coffer::open(d.db(), &MasterKey::generate().unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongMasterKey);
    assert_eq!(common::fingerprint(&d.db()), before, "the store changed");
    // Opening with the right key works; it records its policy load, nothing else happened.
    assert_eq!(open(&d.db(), &key).audit_len().unwrap(), n + 1);
}

fn sql(path: &Path, statement: &str) {
    common::sql(path, statement);
}

fn tampered(statement: &str) -> Option<(u64, Tampering)> {
    let d = Dir::new(&format!("tamper{}", statement.len()));
    let key = MasterKey::generate().unwrap();
    {
        let c = open(&d.db(), &key);
        for i in 0..6 {
            c.seal(record(&format!("c-{i}"), "firm-a"), "t").unwrap();
        }
        assert!(c.audit_verify(None).unwrap().intact);
    }
    sql(&d.db(), statement);
    open(&d.db(), &key)
        .audit_verify(None)
        .unwrap()
        .first_problem
}

#[test]
fn audit_tampering_is_detected_and_named() {
    // Seq 1 is store.create, 2 policy.load, then key creation and seals.
    let p = tampered(
        "UPDATE audit SET entry = replace(entry, 'importer', 'nobody') WHERE seq = 5; UPDATE audit SET entry = replace(entry, '\"t\"', '\"x\"') WHERE seq = 5",
    );
    assert_eq!(p, Some((5, Tampering::Changed)));
    assert_eq!(
        tampered("DELETE FROM audit WHERE seq = 4"),
        Some((4, Tampering::Removed))
    );
    // Insert: shift the tail up by one and copy a row into the gap.
    assert_eq!(
        tampered(
            "UPDATE audit SET seq = seq + 100 WHERE seq >= 4; UPDATE audit SET seq = seq - 99 WHERE seq >= 104; INSERT INTO audit (seq, entry, mac) SELECT 4, entry, mac FROM audit WHERE seq = 2"
        ),
        Some((4, Tampering::Inserted))
    );
    // Reorder: swap two rows, entries and MACs together.
    assert_eq!(
        tampered(
            "UPDATE audit SET seq = 1000 WHERE seq = 4; UPDATE audit SET seq = 4 WHERE seq = 5; UPDATE audit SET seq = 5 WHERE seq = 1000"
        ),
        Some((4, Tampering::Reordered))
    );
}

#[test]
fn a_checkpoint_exposes_a_truncated_tail() {
    let d = Dir::new("truncate");
    let key = MasterKey::generate().unwrap();
    let c = open(&d.db(), &key);
    for i in 0..3 {
        c.seal(record(&format!("c-{i}"), "firm-a"), "t").unwrap();
    }
    let cp = c.audit_checkpoint("ops").unwrap();
    let cp = coffer::audit::Checkpoint::from_json(&cp.to_json()).unwrap();
    assert!(c.audit_verify(Some(&cp)).unwrap().intact);
    c.seal(record("c-9", "firm-a"), "t").unwrap();
    assert!(c.audit_verify(Some(&cp)).unwrap().intact);
    drop(c);
    sql(
        &d.db(),
        &format!("DELETE FROM audit WHERE seq >= {}", cp.seq),
    );
    let c = open(&d.db(), &key);
    let report = c.audit_verify(None).unwrap();
    assert!(
        report.intact,
        "without a checkpoint a cut tail cannot be seen"
    );
    let report = c.audit_verify(Some(&cp)).unwrap();
    assert_eq!(
        report.first_problem.map(|p| p.1),
        Some(Tampering::Truncated)
    );
    // A forged checkpoint (signed by another key) is refused.
    let mut forged = cp.clone();
    forged.seq += 1;
    assert_eq!(
        c.audit_verify(Some(&forged)).unwrap_err().kind(),
        ErrorKind::Integrity
    );
}

/// A store with a fault: an audit log that refuses to record reveals (like a disk that fills
/// up at that moment), or another process that creates the next batch's first data key just
/// before this one writes the batch.
struct Faulty {
    inner: Box<dyn coffer::store::Store>,
    refuse_reveals: bool,
    race_next_insert: std::sync::atomic::AtomicBool,
}

impl coffer::store::KeyStore for Faulty {
    fn keyring(&self) -> coffer::Result<Vec<coffer::store::KeyringRow>> {
        self.inner.keyring()
    }
    fn init_keyring(
        &self,
        r: &[coffer::store::KeyringRow],
        a: &coffer::store::AuditBatch<'_>,
    ) -> coffer::Result<Vec<u64>> {
        self.inner.init_keyring(r, a)
    }
    fn rewrap_keyring(
        &self,
        f: &mut dyn FnMut(
            &[coffer::store::KeyringRow],
        ) -> coffer::Result<Vec<coffer::store::KeyringRow>>,
        a: &coffer::store::AuditBatch<'_>,
    ) -> coffer::Result<Vec<u64>> {
        self.inner.rewrap_keyring(f, a)
    }
    fn add_keyring_row(
        &self,
        r: &coffer::store::KeyringRow,
        v: &dyn Fn(&[coffer::store::KeyringRow]) -> coffer::Result<()>,
        a: &coffer::store::AuditBatch<'_>,
    ) -> coffer::Result<Vec<u64>> {
        self.inner.add_keyring_row(r, v, a)
    }
    fn set_keyring_state(
        &self,
        k: &str,
        v: u32,
        s: &str,
        a: &coffer::store::AuditBatch<'_>,
    ) -> coffer::Result<Vec<u64>> {
        self.inner.set_keyring_state(k, v, s, a)
    }
    fn data_key(
        &self,
        t: &str,
        s: &str,
        c: &str,
        v: Option<u32>,
    ) -> coffer::Result<Option<coffer::store::DataKeyRow>> {
        self.inner.data_key(t, s, c, v)
    }
    fn insert_data_keys(
        &self,
        r: &[coffer::store::NewDataKey<'_>],
        a: &coffer::store::AuditBatch<'_>,
    ) -> coffer::Result<Option<Vec<u64>>> {
        if self
            .race_next_insert
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            // The other process's key, with its own audit entry naming just that key.
            let mut entry = coffer::audit::AuditEntry::new(
                "key.create",
                "other-import",
                "2026-12-04T10:00:00Z",
            );
            entry.tenant = Some(r[0].tenant.to_owned());
            entry.subject = Some(r[0].subject.to_owned());
            entry
                .detail
                .insert("keys".into(), format!("{}:{}", r[0].category, r[0].version));
            let theirs = coffer::store::AuditBatch {
                entries: vec![entry.canonical()],
                mac: a.mac,
            };
            assert!(self.inner.insert_data_keys(&r[..1], &theirs)?.is_some());
        }
        self.inner.insert_data_keys(r, a)
    }
    fn data_keys_to_rewrap(
        &self,
        k: u32,
        l: usize,
    ) -> coffer::Result<Vec<coffer::store::DataKeyRow>> {
        self.inner.data_keys_to_rewrap(k, l)
    }
    fn retire_keks(
        &self,
        below: u32,
        a: &coffer::store::AuditBatch<'_>,
    ) -> coffer::Result<(Vec<u32>, Vec<u64>)> {
        self.inner.retire_keks(below, a)
    }
    fn rewrap_data_keys(
        &self,
        r: &[coffer::store::DataKeyRow],
        a: &coffer::store::AuditBatch<'_>,
    ) -> coffer::Result<Vec<u64>> {
        self.inner.rewrap_data_keys(r, a)
    }
}

impl coffer::store::AuditLog for Faulty {
    fn append_audit(&self, a: &coffer::store::AuditBatch<'_>) -> coffer::Result<Vec<u64>> {
        if self.refuse_reveals && a.entries.iter().any(|e| e.contains("\"kind\":\"reveal\"")) {
            return Err(coffer::Error::Store {
                reason: "disk full".into(),
            });
        }
        self.inner.append_audit(a)
    }
    fn audit_rows(&self, f: u64, l: usize) -> coffer::Result<Vec<coffer::store::AuditRow>> {
        self.inner.audit_rows(f, l)
    }
    fn audit_len(&self) -> coffer::Result<u64> {
        self.inner.audit_len()
    }
}

impl coffer::store::RetentionStore for Faulty {
    fn retention_tx(
        &self,
        m: coffer::store::ChainMac<'_>,
        f: &mut dyn FnMut(&dyn coffer::store::RetentionTx) -> coffer::Result<Vec<String>>,
    ) -> coffer::Result<Vec<u64>> {
        // A reveal under a rate limit appends its entries here, with the limit's counts.
        let refuse = self.refuse_reveals;
        self.inner.retention_tx(m, &mut |tx| {
            let entries = f(tx)?;
            if refuse && entries.iter().any(|e| e.contains("\"kind\":\"reveal\"")) {
                return Err(coffer::Error::Store {
                    reason: "disk full".into(),
                });
            }
            Ok(entries)
        })
    }
    fn retention_read(
        &self,
        f: &mut dyn FnMut(&dyn coffer::store::RetentionTx) -> coffer::Result<()>,
    ) -> coffer::Result<()> {
        self.inner.retention_read(f)
    }
}

impl coffer::store::WholeStore for Faulty {
    fn summary(&self) -> coffer::Result<coffer::store::StoreSummary> {
        self.inner.summary()
    }
}

#[test]
fn no_plaintext_when_the_audit_entry_cannot_be_written() {
    let d = Dir::new("noaudit");
    let key = MasterKey::generate().unwrap();
    let env = open(&d.db(), &key)
        .seal(record("c-1", "firm-a"), "t")
        .unwrap();
    let store = coffer::store::open(d.db(), false).unwrap();
    let policy = Policy::from_toml(POLICY, Schema::builtin()).unwrap();
    let c = Coffer::with_store(
        Box::new(Faulty {
            inner: store,
            refuse_reveals: true,
            race_next_insert: false.into(),
        }),
        &key,
        OpenOptions {
            policy: Some(policy),
            ..Default::default()
        },
    )
    .unwrap();
    let err = c
        .reveal(&env, &access(&["accountant"], "payments", "firm-a"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Audit);
    let text = format!("{err} {err:?}");
    for p in PLAINTEXTS {
        assert!(!text.contains(p));
    }
    assert_eq!(
        c.reveal_many(
            std::slice::from_ref(&env),
            &access(&["accountant"], "payments", "firm-a")
        )
        .unwrap_err()
        .kind(),
        ErrorKind::Audit
    );
    // The accountant is under a rate limit (its counts are written with the entry); the
    // auditor is not (the entry is appended alone): neither gets plaintext.
    let err = c
        .reveal(&env, &access(&["auditor"], "statutory_audit", "firm-a"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Audit);
}

#[test]
fn a_read_only_store_reveals_nothing() {
    if !common::sqlite_only("a_read_only_store_reveals_nothing") {
        return;
    }
    let d = Dir::new("readonly");
    let key = MasterKey::generate().unwrap();
    let env = {
        let c = open(&d.db(), &key);
        c.seal(record("c-1", "firm-a"), "t").unwrap()
    };
    let uri = format!("file:{}?mode=ro", d.db().display());
    let store = coffer::store::SqliteStore::open(&uri, false);
    let store = match store {
        Ok(s) => s,
        Err(e) => panic!("opening read-only: {e}"),
    };
    let c = Coffer::with_store(Box::new(store), &key, OpenOptions::default()).unwrap();
    // A policy cannot even be loaded (its loading is audited).
    let err = c
        .set_policy(Policy::from_toml(POLICY, Schema::builtin()).unwrap(), "ops")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadOnly, "{err}");
    let store = coffer::store::SqliteStore::open(&uri, false).unwrap();
    let policy = Policy::from_toml(POLICY, Schema::builtin()).unwrap();
    let result = Coffer::with_store(
        Box::new(store),
        &key,
        OpenOptions {
            policy: Some(policy),
            ..Default::default()
        },
    );
    // Either the open fails (policy load not audited) or the reveal does: never plaintext.
    match result {
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::ReadOnly | ErrorKind::Audit),
            "{e}"
        ),
        Ok(c) => {
            let err = c
                .reveal(&env, &access(&["accountant"], "payments", "firm-a"))
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Audit);
        }
    }
}

#[test]
fn destroyed_keys_read_as_shredded() {
    let d = Dir::new("shred");
    let key = MasterKey::generate().unwrap();
    let c = open(&d.db(), &key);
    let env = c.seal(record("c-1", "firm-a"), "t").unwrap();
    drop(c);
    sql(
        &d.db(),
        "UPDATE data_keys SET wrapped = NULL, destroyed = '2056-01-01' WHERE category = 'banking'",
    );
    let c = open(&d.db(), &key);
    let v = c
        .reveal(&env, &access(&["accountant"], "payments", "firm-a"))
        .unwrap();
    assert_eq!(
        v.fields["bank_accounts[0].account_number"],
        FieldView::Shredded
    );
    assert_eq!(v.revealed("name"), Some("张三丰"));
}

#[test]
fn search_tokens_match_the_envelope_and_differ_by_tenant() {
    let d = Dir::new("search");
    let key = MasterKey::generate().unwrap();
    let c = open(&d.db(), &key);
    let env = c.seal(record("c-1", "firm-a"), "t").unwrap();
    let tokens = common::tokens(
        &c,
        "firm-a",
        "id_documents[].number",
        "110101 20000101 0002",
    )
    .unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(env.index()["id_documents[0].number"]["1"], tokens[0].token);
    assert_eq!(
        common::tokens(&c, "firm-a", "phones[0]", "+86 139-1234-5678").unwrap()[0].token,
        env.index()["phones[0]"]["1"]
    );
    assert_ne!(
        common::tokens(&c, "firm-b", "id_documents[].number", "110101200001010002").unwrap()[0]
            .token,
        tokens[0].token
    );
    assert_eq!(
        common::tokens(&c, "firm-a", "name", "x")
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn rotations_keep_every_envelope_readable() {
    let d = Dir::new("rotate");
    let key = MasterKey::generate().unwrap();
    let c = open(&d.db(), &key);
    let envs: Vec<Envelope> = (0..30)
        .map(|i| c.seal(record(&format!("c-{i}"), "firm-a"), "t").unwrap())
        .collect();
    let acc = access(&["accountant"], "payments", "firm-a");

    // Master key: instant rewrap of the keyring; the old key no longer opens the store.
    let new_key = MasterKey::generate().unwrap();
    c.rotate_master_key(&new_key, "ops").unwrap();
    drop(c);
    assert_eq!(
        Coffer::open(d.db(), &key).unwrap_err().kind(),
        ErrorKind::WrongMasterKey
    );
    let c = open(&d.db(), &new_key);
    assert_eq!(
        c.reveal(&envs[0], &acc).unwrap().revealed("name"),
        Some("张三丰")
    );

    // KEK: resumable batches until nothing is left.
    assert_eq!(c.rotate_kek("ops").unwrap(), 2);
    let mut total = 0;
    loop {
        let n = c.continue_kek_rotation(7, "ops").unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, 30 * 3, "three categories per subject");
    drop(c);
    let c = open(&d.db(), &new_key);
    for e in &envs {
        assert_eq!(
            c.reveal(e, &acc)
                .unwrap()
                .revealed("bank_accounts[0].account_number"),
            Some("6200000000000005")
        );
    }

    // Data key: a new version, and reseal moves an envelope to it; the old one still opens.
    let subject = envs[0].subject().to_owned();
    assert_eq!(
        c.rotate_data_key("firm-a", &subject, "banking", "ops")
            .unwrap(),
        2
    );
    let resealed = c.reseal(&envs[0], "ops").unwrap();
    assert_eq!(resealed.key_versions()["banking"], 2);
    assert_eq!(
        c.reveal(&resealed, &acc)
            .unwrap()
            .revealed("bank_accounts[0].account_number"),
        Some("6200000000000005")
    );
    assert_eq!(
        c.reveal(&envs[0], &acc)
            .unwrap()
            .revealed("bank_accounts[0].account_number"),
        Some("6200000000000005")
    );

    // Index key: both epochs are written and searched until the old one is retired.
    assert_eq!(c.rotate_index_key("ops").unwrap(), 2);
    let e = c.seal(record("c-new", "firm-a"), "t").unwrap();
    assert_eq!(e.index()["id_documents[0].number"].len(), 2);
    // `token` finds each epoch's token as `index` lists it, and nothing for an epoch or a path
    // the envelope has no token for.
    for epoch in [1, 2] {
        assert_eq!(
            e.token("id_documents[0].number", epoch),
            Some(e.index()["id_documents[0].number"][&epoch.to_string()].as_str())
        );
    }
    assert_ne!(
        e.token("id_documents[0].number", 1),
        e.token("id_documents[0].number", 2)
    );
    assert_eq!(e.token("id_documents[0].number", 3), None);
    assert!(!e.index().contains_key("addresses[0]"));
    assert_eq!(e.token("addresses[0]", 1), None);
    assert_eq!(e.token("no_such_field", 1), None);
    assert_eq!(
        common::tokens(&c, "firm-a", "id_documents[].number", "110101200001010002")
            .unwrap()
            .len(),
        2
    );
    c.retire_index_epoch(1, "ops").unwrap();
    let tokens =
        common::tokens(&c, "firm-a", "id_documents[].number", "110101200001010002").unwrap();
    assert_eq!(tokens.iter().map(|t| t.epoch).collect::<Vec<_>>(), vec![2]);
    assert_eq!(
        c.retire_index_epoch(2, "ops").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert!(c.audit_verify(None).unwrap().intact);
}

#[test]
fn no_plaintext_in_the_database_file_or_the_audit_export() {
    if !common::sqlite_only("no_plaintext_in_the_database_file_or_the_audit_export") {
        return;
    }
    let d = Dir::new("plaintext");
    let key = MasterKey::generate().unwrap();
    let c = open(&d.db(), &key);
    let envs: Vec<Envelope> = (0..20)
        .map(|i| c.seal(record(&format!("c-{i}"), "firm-a"), "t").unwrap())
        .collect();
    for e in &envs {
        c.reveal(e, &access(&["accountant"], "payments", "firm-a"))
            .unwrap();
    }
    let _ = c.reveal(&envs[0], &access(&["marketing"], "marketing", "firm-a"));
    let mut export = Vec::new();
    assert!(c.audit_export(&mut export).unwrap() > 40);
    drop(c);
    let mut bytes = std::fs::read(d.db()).unwrap();
    for ext in ["-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{ext}", d.db().display()));
        if let Ok(b) = std::fs::read(p) {
            bytes.extend(b);
        }
    }
    for p in PLAINTEXTS {
        assert!(
            !bytes.windows(p.len()).any(|w| w == p.as_bytes()),
            "the database holds {p}"
        );
        assert!(
            !export.windows(p.len()).any(|w| w == p.as_bytes()),
            "the audit export holds {p}"
        );
    }
    let export = String::from_utf8(export).unwrap();
    assert!(
        export
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
    assert!(export.contains("\"kind\":\"reveal\""));
    assert!(format!("{:?}", envs[0]).contains("[redacted]"));
    // The structure is shown as maps: the data-key versions by category, for one.
    assert!(
        format!("{:?}", envs[0])
            .contains("keys: {\"banking\": 1, \"contact\": 1, \"identity\": 1}"),
        "{:?}",
        envs[0]
    );
    for p in PLAINTEXTS {
        assert!(!format!("{:?}", envs[0]).contains(p));
    }
}

#[test]
fn bad_envelopes_and_bad_store_files() {
    let d = Dir::new("bad");
    let key = MasterKey::generate().unwrap();
    let c = open(&d.db(), &key);
    let json = c
        .seal(record("c-1", "firm-a"), "t")
        .unwrap()
        .to_json()
        .to_string();
    assert_eq!(
        c.open_envelope(&json[..json.len() / 2]).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    assert_eq!(
        c.open_envelope(&json.replace("\"coffer\":3", "\"coffer\":4"))
            .unwrap_err()
            .kind(),
        ErrorKind::UnsupportedVersion
    );
    // A version 3 envelope relabelled version 1 (its sealed masked forms are not version 1's),
    // or version 2 (same shape, other ciphers): a downgrade is an integrity error, caught by
    // the MAC, whose input names the version.
    assert_eq!(
        c.open_envelope(&json.replace("\"coffer\":3", "\"coffer\":1"))
            .unwrap_err()
            .kind(),
        ErrorKind::Integrity
    );
    assert_eq!(
        c.open_envelope(&json.replace("\"coffer\":3", "\"coffer\":2"))
            .unwrap_err()
            .kind(),
        ErrorKind::Integrity
    );
    assert_eq!(
        c.open_envelope(&json.replace("\"coffer\":3", "\"coffer\":3,\"extra\":0"))
            .unwrap_err()
            .kind(),
        ErrorKind::Integrity
    );
    assert_eq!(
        c.open_envelope(&" ".repeat(coffer::envelope::MAX_ENVELOPE_BYTES + 1))
            .unwrap_err()
            .kind(),
        ErrorKind::LimitExceeded
    );
    drop(c);

    // Not a database at all; an SQLite database that is not Coffer's; a newer store.
    let junk = d.0.join("junk.db");
    std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
    assert_eq!(
        Coffer::open(&junk, &key).unwrap_err().kind(),
        ErrorKind::Store
    );
    assert_eq!(
        std::fs::read(&junk).unwrap(),
        vec![0x42u8; 8192],
        "a foreign file was changed"
    );
    let other = d.0.join("other.db");
    sql(
        &other,
        "CREATE TABLE invoices (id INTEGER); INSERT INTO invoices VALUES (1);",
    );
    assert_eq!(
        Coffer::open(&other, &key).unwrap_err().kind(),
        ErrorKind::Store
    );
    sql(
        &d.db(),
        "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
    );
    assert_eq!(
        Coffer::open(d.db(), &key).unwrap_err().kind(),
        ErrorKind::UnsupportedVersion
    );
    let missing = d.0.join("missing.db");
    let err = Coffer::open_with(
        &missing,
        &key,
        OpenOptions {
            create: false,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn subscribers_see_every_committed_entry() {
    let d = Dir::new("subscribe");
    let key = MasterKey::generate().unwrap();
    let c = open(&d.db(), &key);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    c.subscribe(move |e| s.lock().unwrap().push((e.seq, e.entry.kind.clone())));
    let env = c.seal(record("c-1", "firm-a"), "t").unwrap();
    c.reveal(&env, &access(&["clerk"], "bookkeeping", "firm-a"))
        .unwrap();
    let kinds: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, k)| k.clone())
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "seal").count(), 1);
    assert_eq!(kinds.last().map(String::as_str), Some("reveal"));
    assert_eq!(
        seen.lock().unwrap().last().unwrap().0,
        c.audit_len().unwrap()
    );
}

#[test]
fn eight_threads_seal_and_reveal() {
    let d = Dir::new("threads");
    let key = MasterKey::generate().unwrap();
    let c = Arc::new(open(&d.db(), &key));
    let before = c.audit_len().unwrap();
    std::thread::scope(|s| {
        for t in 0..8 {
            let c = c.clone();
            s.spawn(move || {
                // One principal per thread: the policy's rate limit counts per principal.
                let mut a = access(&["accountant"], "payments", "firm-a");
                a.principal.id = format!("u-{t}");
                for i in 0..25 {
                    let env = c
                        .seal(record(&format!("c-{t}-{i}"), "firm-a"), "t")
                        .unwrap();
                    let v = c.reveal(&env, &a).unwrap();
                    assert_eq!(
                        v.revealed("bank_accounts[0].account_number"),
                        Some("6200000000000005")
                    );
                }
            });
        }
    });
    let report = c.audit_verify(None).unwrap();
    assert!(report.intact);
    // 200 seals and 200 reveals; each record is its own subject, so one key.create entry
    // (naming its key per retention category) per record.
    assert_eq!(c.audit_len().unwrap() - before, 200 + 200 + 200);
}

#[test]
fn coffer_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Coffer>();
}

/// Run by `two_processes_share_one_chain` in child processes.
#[test]
#[ignore = "a helper run in child processes"]
fn child_process_worker() {
    let (Ok(path), Ok(key), Ok(tag)) = (
        std::env::var("COFFER_CHILD_DB"),
        std::env::var("COFFER_CHILD_KEY"),
        std::env::var("COFFER_CHILD_TAG"),
    ) else {
        return;
    };
    let key = MasterKey::from_text(&key).unwrap();
    let c = open(Path::new(&path), &key);
    for i in 0..40 {
        let env = c
            .seal(record(&format!("{tag}-{i}"), "firm-a"), &tag)
            .unwrap();
        c.reveal(&env, &access(&["clerk"], "bookkeeping", "firm-a"))
            .unwrap();
    }
}

#[test]
fn two_processes_share_one_chain() {
    let d = Dir::new("processes");
    let key = MasterKey::generate().unwrap();
    let before = open(&d.db(), &key).audit_len().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["p1", "p2"]
        .iter()
        .map(|tag| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "child_process_worker",
                    "--ignored",
                    "--nocapture",
                ])
                .env("COFFER_CHILD_DB", d.db())
                .env("COFFER_CHILD_KEY", key.to_base64().as_str())
                .env("COFFER_CHILD_TAG", tag)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut ch in children {
        assert!(ch.wait().unwrap().success());
    }
    let c = open(&d.db(), &key);
    let report = c.audit_verify(None).unwrap();
    assert!(report.intact, "{report:?}");
    // Each process: one policy.load, and per record a seal, a reveal and one key.create (for
    // the subject's three keys); and this open's own policy.load.
    assert_eq!(c.audit_len().unwrap() - before, 2 * (1 + 40 * 3) + 1);
}

#[test]
fn a_store_locked_by_another_process_is_a_typed_error() {
    if !common::sqlite_only("a_store_locked_by_another_process_is_a_typed_error") {
        return;
    }
    let d = Dir::new("locked");
    let key = MasterKey::generate().unwrap();
    drop(open(&d.db(), &key));
    let holder = rusqlite::Connection::open(d.db()).unwrap();
    holder
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO meta (key, value) VALUES ('lock', 'held');")
        .unwrap();
    let options = || OpenOptions {
        policy: Some(Policy::from_toml(POLICY, Schema::builtin()).unwrap()),
        busy_timeout: std::time::Duration::from_millis(200),
        ..Default::default()
    };
    // Opening reads the keyring (WAL lets it), then loading the policy must write: busy.
    let t = std::time::Instant::now();
    let err = Coffer::open_with(d.db(), &key, options()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StoreBusy, "{err}");
    // The configured wait, not SQLite's or rusqlite's default.
    assert!(
        t.elapsed() < std::time::Duration::from_secs(2),
        "waited {:?}",
        t.elapsed()
    );
    holder.execute_batch("ROLLBACK").unwrap();
    let c = Coffer::open_with(d.db(), &key, options()).unwrap();
    assert!(c.audit_verify(None).unwrap().intact);
}

#[test]
fn a_batch_of_new_customers_gets_its_keys_once_and_audited() {
    let d = Dir::new("batch-keys");
    let key = MasterKey::generate().unwrap();
    let c = open(&d.db(), &key);
    let batch = |from: usize| -> Vec<CustomerRecord> {
        (from..from + 20)
            .map(|i| {
                let mut r = record(&format!("c-{i}"), "firm-a");
                r.subject = Some(format!("s-{}", i % 10));
                r
            })
            .collect()
    };
    let sealed: Vec<Envelope> = seal_all(&c, batch(0), "import");
    let key_entries = |c: &Coffer| {
        expanded_trail(c)
            .into_iter()
            .filter(|(_, e)| e.kind == "key.create")
            .map(|(_, e)| e.detail["keys"].clone())
            .collect::<Vec<_>>()
    };
    let categories = sealed[0].key_versions().len();
    assert!(categories >= 2);
    // Ten subjects, each with one key per category: made once, one entry per subject naming
    // every key.
    let entries = key_entries(&c);
    assert_eq!(entries.len(), 10);
    for keys in &entries {
        assert_eq!(keys.split(',').count(), categories, "{keys}");
        assert!(keys.split(',').all(|k| k.ends_with(":1")), "{keys}");
    }
    // The same subjects again: no new keys.
    for r in c.seal_many(batch(20), "import").unwrap() {
        r.unwrap();
    }
    assert_eq!(key_entries(&c).len(), 10);
    assert!(c.audit_verify(None).unwrap().intact);
    // Every record opens, also from a fresh handle (the keys are in the store, not only cached).
    drop(c);
    let c = open(&d.db(), &key);
    for env in &sealed {
        let v = c
            .reveal(env, &access(&["accountant"], "payments", "firm-a"))
            .unwrap();
        assert_eq!(v.revealed("name"), Some("张三丰"));
    }
}

#[test]
fn a_version_2_store_migrates_and_keeps_its_keys() {
    if !common::sqlite_only("a_version_2_store_migrates_and_keeps_its_keys") {
        return;
    }
    let d = Dir::new("migrate2");
    let key = MasterKey::generate().unwrap();
    let env = {
        let c = open(&d.db(), &key);
        c.seal(record("c-1", "acme"), "t").unwrap()
    };
    // Put the store back in version 2's shape: the (tenant, subject) index it had.
    sql(
        &d.db(),
        "CREATE INDEX data_keys_by_subject ON data_keys (tenant, subject);
         DROP TABLE rate_usage;
         UPDATE meta SET value = '2' WHERE key = 'schema_version';",
    );
    let c = open(&d.db(), &key);
    let conn = rusqlite::Connection::open(d.db()).unwrap();
    let version: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, coffer::store::STORE_SCHEMA_VERSION.to_string());
    let indexes: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'data_keys_by_subject'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 0);
    let rate_usage: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'rate_usage'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rate_usage, 1, "migration 3 -> 4 adds the rate-limit counts");
    let env = c.open_envelope(&env.to_json()).unwrap();
    let view = c
        .reveal(&env, &access(&["accountant"], "payments", "acme"))
        .unwrap();
    assert!(view.revealed("id_documents[0].number").is_some());
    assert!(c.audit_verify(None).unwrap().intact);
}

#[test]
fn a_key_another_process_made_first_is_used_and_not_audited_twice() {
    let d = Dir::new("race");
    let key = MasterKey::generate().unwrap();
    drop(open(&d.db(), &key));
    let c = Coffer::with_store(
        Box::new(Faulty {
            inner: coffer::store::open(d.db(), false).unwrap(),
            refuse_reveals: false,
            race_next_insert: true.into(),
        }),
        &key,
        OpenOptions {
            policy: Some(Policy::from_toml(POLICY, Schema::builtin()).unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    let before = c.audit_len().unwrap();
    // Twenty subjects (more keys than the store inserts in one statement); the other process
    // makes subject s-0's first key just before us.
    const SUBJECTS: usize = 20;
    let records = (0..SUBJECTS)
        .map(|i| {
            let mut r = record(&format!("c-{i}"), "firm-a");
            r.subject = Some(format!("s-{i}"));
            r
        })
        .collect();
    let sealed: Vec<Envelope> = seal_all(&c, records, "import");
    let creations: Vec<coffer::audit::AuditEntry> = expanded_trail(&c)
        .into_iter()
        .filter(|(seq, e)| *seq > before && e.kind == "key.create")
        .map(|(_, e)| e)
        .collect();
    // The other process's entry, then ours for s-0's remaining keys and for each other
    // subject: no key is claimed twice.
    assert_eq!(creations.len(), SUBJECTS + 1, "{creations:?}");
    assert_eq!(creations[0].actor, "other-import");
    let mut claimed: Vec<String> = Vec::new();
    for e in &creations {
        for k in e.detail["keys"].split(',') {
            claimed.push(format!("{}/{k}", e.subject.as_deref().unwrap()));
        }
    }
    let total = claimed.len();
    claimed.sort();
    claimed.dedup();
    assert_eq!(claimed.len(), total, "a key claimed twice: {claimed:?}");
    assert!(c.audit_verify(None).unwrap().intact);
    // Everything opens from a fresh handle.
    drop(c);
    let c = open(&d.db(), &key);
    for env in &sealed {
        let v = c
            .reveal(env, &access(&["accountant"], "payments", "firm-a"))
            .unwrap();
        assert_eq!(v.revealed("name"), Some("张三丰"));
    }
}

/// A batch resolves its blind-index keys once, for each tenant and field in it: records of two
/// tenants sealed together, with an indexed custom field (whose key each seal finds itself),
/// get the tokens each gets sealed alone, and every field opens.
#[test]
fn a_batch_of_two_tenants_is_indexed_as_each_record_alone() {
    let d = Dir::new("batch-index");
    let key = MasterKey::generate().unwrap();
    let schema = Schema::from_toml(&format!(
        "{}\n[fields.\"custom.member_no\"]\nclass = \"personal\"\nprotection = \"encrypted\"\n\
         index = \"exact\"\nmask = \"withhold\"\ncategory = \"profile\"\nmax_length = 20\n",
        coffer::record::DEFAULT_SCHEMA_TOML
    ))
    .unwrap();
    let c = Coffer::open_with(
        d.db(),
        &key,
        OpenOptions {
            policy: Some(Policy::from_toml(POLICY, &schema).unwrap()),
            schema,
            ..Default::default()
        },
    )
    .unwrap();
    let records = || {
        ["firm-a", "firm-b", "firm-a", "firm-b"]
            .iter()
            .enumerate()
            .map(|(i, tenant)| {
                let mut r = record(&format!("c-{i}"), tenant);
                r.subject = Some(format!("s-{i}"));
                r.custom.insert("member_no".into(), "M-0042".into());
                r
            })
            .collect::<Vec<_>>()
    };
    let batch: Vec<Envelope> = seal_all(&c, records(), "import");
    for (r, env) in records().into_iter().zip(&batch) {
        let alone = c.seal(r, "import").unwrap();
        assert_eq!(env.index(), alone.index(), "{}", env.record());
        assert_eq!(env.index().len(), 5, "{:?}", env.index().keys());
        assert_eq!(env.paths(), alone.paths());
        let view = c
            .reveal(env, &access(&["accountant"], "payments", env.tenant()))
            .unwrap();
        assert_eq!(view.revealed("name"), Some("张三丰"));
    }
    // The same values under the other tenant's keys give other tokens.
    for path in batch[0].index().keys() {
        assert_ne!(batch[0].index()[path], batch[1].index()[path], "{path}");
        assert_eq!(batch[0].index()[path], batch[2].index()[path], "{path}");
    }
}

/// Counts of revealed fields under the policy's rate limits (`sensitive-per-hour`: 200 an
/// hour for an accountant).
fn limited(views: &[coffer::View]) -> (usize, usize) {
    let mut revealed = 0;
    let mut denied = 0;
    for v in views {
        for path in ["id_documents[0].number", "bank_accounts[0].account_number"] {
            match v.fields.get(path) {
                Some(FieldView::Revealed(_)) => revealed += 1,
                Some(FieldView::Denied(r)) if r.contains("rate limit `sensitive-per-hour`") => {
                    denied += 1;
                }
                other => panic!("{path}: {other:?}"),
            }
        }
    }
    (revealed, denied)
}

/// A harvester must not reset a rate limit by reopening the store (a new process, a script run
/// again) or by spreading requests over two handles: the counts live in the store.
#[test]
fn rate_limits_hold_across_handles_and_reopening() {
    let d = Dir::new("rate");
    let key = MasterKey::generate().unwrap();
    let clock = Arc::new(coffer::clock::FixedClock::new(
        time::macros::datetime!(2026-11-27 10:05 UTC),
    ));
    let open_at = || open_clocked(&d.db(), &key, clock.clone());
    let envelopes: Vec<Envelope> = open_at()
        .seal_many(
            (0..150)
                .map(|i| record(&format!("c-{i}"), "firm-a"))
                .collect(),
            "import",
        )
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let accountant = access(&["accountant"], "payments", "firm-a");
    // 60 records (120 sensitive fields) through one handle: under the limit.
    let first = open_at()
        .reveal_many(&envelopes[..60], &accountant)
        .unwrap();
    assert_eq!(limited(&first), (120, 0));
    // The same principal through a fresh handle, as a new process would be: 80 more fit, the
    // rest are denied.
    let second = open_at()
        .reveal_many(&envelopes[60..], &accountant)
        .unwrap();
    assert_eq!(limited(&second), (80, 100));
    // Two handles open at once share the count too.
    let (a, b) = (open_at(), open_at());
    let clerk_like = |id: &str| {
        let mut x = access(&["accountant"], "payments", "firm-a");
        x.principal.id = id.into();
        x
    };
    assert_eq!(
        limited(&a.reveal_many(&envelopes[..70], &clerk_like("u-2")).unwrap()),
        (140, 0)
    );
    assert_eq!(
        limited(&b.reveal_many(&envelopes[70..], &clerk_like("u-2")).unwrap()),
        (60, 100)
    );
    // Another principal has a count of its own.
    let other = open_at();
    assert_eq!(
        limited(
            &other
                .reveal_many(&envelopes[..10], &clerk_like("u-3"))
                .unwrap()
        ),
        (20, 0)
    );
    // An hour and more later the window has slid past.
    clock.advance(time::Duration::hours(2));
    assert_eq!(
        limited(&other.reveal_many(&envelopes[..10], &accountant).unwrap()),
        (20, 0)
    );
    // Every denial left its alert in the audit trail, and the chain verifies.
    let mut export = Vec::new();
    other.audit_export(&mut export).unwrap();
    let alerts = String::from_utf8(export)
        .unwrap()
        .matches("\"kind\":\"rate_limit.exceeded\"")
        .count();
    assert_eq!(alerts, 100, "one alert per denied record");
    assert!(other.audit_verify(None).unwrap().intact);
}

/// An index rotation done by another process (the operator's `coffer keys rotate index`, then
/// retiring the old epoch) reaches a long-running handle: what it seals afterwards is indexed
/// under the epoch in use, and its searches cover it. Otherwise records it sealed would be
/// missing from every search once the old epoch is retired.
#[test]
fn an_index_rotation_by_another_handle_reaches_a_running_one() {
    let d = Dir::new("index-elsewhere");
    let key = MasterKey::generate().unwrap();
    let erp = open(&d.db(), &key);
    let first = erp.seal(record("c-1", "firm-a"), "erp").unwrap();
    assert_eq!(
        first.index()["id_documents[0].number"]
            .keys()
            .collect::<Vec<_>>(),
        vec!["1"]
    );
    let ops = open(&d.db(), &key);
    assert_eq!(ops.rotate_index_key("ops").unwrap(), 2);
    ops.retire_index_epoch(1, "ops").unwrap();
    let second = erp.seal(record("c-2", "firm-a"), "erp").unwrap();
    let tokens = second.index()["id_documents[0].number"].clone();
    assert_eq!(tokens.keys().collect::<Vec<_>>(), vec!["2"], "{tokens:?}");
    // The operator's search finds it; so does the ERP's, which uses epoch 2 only now.
    for c in [&ops, &erp] {
        let found =
            common::tokens(c, "firm-a", "id_documents[].number", "110101200001010002").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].epoch, 2);
        assert_eq!(tokens["2"], found[0].token);
    }
    // A master-key rotation elsewhere rewraps the same keys: the running handle, which holds
    // them unwrapped, carries on (it would need the new master key only to load new ones).
    ops.rotate_master_key(&MasterKey::generate().unwrap(), "ops")
        .unwrap();
    let third = erp.seal(record("c-3", "firm-a"), "erp").unwrap();
    assert!(
        erp.reveal(&third, &access(&["accountant"], "payments", "firm-a"))
            .unwrap()
            .revealed("id_documents[0].number")
            .is_some()
    );
    assert!(ops.audit_verify(None).unwrap().intact);
}

/// A PostgreSQL store that cannot be reached is `StoreUnavailable`, and the URL's password
/// never appears in the message; a malformed `schema` parameter is refused before connecting.
#[test]
fn an_unreachable_postgresql_store_is_store_unavailable_and_keeps_its_password() {
    let key = MasterKey::generate().unwrap();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let err = Coffer::open("postgres://app:s3cret-pw@127.0.0.1:1/erp", &key).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StoreUnavailable, "{err}");
    assert!(!err.to_string().contains("s3cret-pw"), "{err}");
    assert!(!format!("{err:?}").contains("s3cret-pw"));
    let err = Coffer::open("postgres://app@127.0.0.1:1/erp?schema=Not-A-Name", &key).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
}

/// Large batches are shared out over the cores: every result still stands at its record's
/// place (a record that fails validation in the middle included), each view carries its own
/// envelope's audit entry, and the trail verifies.
#[test]
fn large_batches_keep_their_order_across_threads() {
    let d = Dir::new("parallel");
    let key = MasterKey::generate().unwrap();
    let c = open(&d.db(), &key);
    let n = 700;
    let mut records: Vec<CustomerRecord> = (0..n)
        .map(|i| {
            let mut r = record(&format!("c-{i}"), "firm-a");
            r.subject = Some(format!("s-{i}"));
            r
        })
        .collect();
    // One bad check character, in the middle.
    records[351] = CustomerRecord::from_json(
        r#"{"id":"c-351","tenant":"firm-a","kind":"individual","name":"李四",
            "id_documents":[{"type":"cn_resident_id","number":"110101200001010003"}]}"#,
    )
    .unwrap();
    let sealed = c.seal_many(records, "import").unwrap();
    assert_eq!(sealed.len(), n);
    let mut envelopes = Vec::new();
    for (i, r) in sealed.into_iter().enumerate() {
        if i == 351 {
            assert_eq!(r.unwrap_err().kind(), ErrorKind::Validation);
        } else {
            let env = r.unwrap();
            assert_eq!(env.record(), format!("c-{i}"));
            envelopes.push(env);
        }
    }
    let views = c
        .reveal_many(&envelopes, &access(&["accountant"], "payments", "firm-a"))
        .unwrap();
    assert_eq!(views.len(), envelopes.len());
    for (env, v) in envelopes.iter().zip(&views) {
        assert_eq!(v.record, env.record());
        assert_eq!(v.revealed("name"), Some("张三丰"));
    }
    // One tenant's batch: one `reveal.batch` entry, which every view names and which lists
    // the views' records in their order, each as the `reveal` entry it would have had alone.
    let seq = views[0].audit_seq;
    assert!(views.iter().all(|v| v.audit_seq == seq));
    let row = coffer::store::open(d.db(), false)
        .unwrap()
        .audit_rows(seq, 1)
        .unwrap()
        .pop()
        .unwrap();
    let batch = canonical_entry(&row);
    assert_eq!(batch.kind, "reveal.batch");
    let expanded = coffer::audit::expand(&batch).unwrap();
    let records: Vec<&str> = expanded
        .iter()
        .map(|e| e.record.as_deref().unwrap())
        .collect();
    let wanted: Vec<&str> = views.iter().map(|v| v.record.as_str()).collect();
    assert_eq!(records, wanted);
    for (e, v) in expanded.iter().zip(&views) {
        assert_eq!(e.kind, "reveal");
        assert_eq!(e.tenant.as_deref(), Some("firm-a"));
        assert_eq!(e.purpose.as_deref(), Some("payments"));
        assert_eq!(e.fields.get("name").map(String::as_str), Some("reveal"));
        assert_eq!(
            e.fields.keys().collect::<Vec<_>>(),
            v.fields.keys().collect::<Vec<_>>()
        );
    }
    // A few dozen bytes a record, not the several hundred of one entry each.
    assert!(
        row.entry.len() < 100 * views.len(),
        "{} bytes",
        row.entry.len()
    );
    assert!(c.audit_verify(None).unwrap().intact);
}

/// The whole trail as exported, each batch entry expanded into its records' entries (each
/// under the batch's `seq`).
fn expanded_trail(c: &Coffer) -> Vec<(u64, coffer::audit::AuditEntry)> {
    let mut out = Vec::new();
    c.audit_export(&mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .flat_map(|l| {
            let seq = serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap();
            let e: coffer::audit::AuditEntry = serde_json::from_str(l).unwrap();
            coffer::audit::expand(&e)
                .unwrap()
                .into_iter()
                .map(move |e| (seq, e))
        })
        .collect()
}

/// An audit row's entry, checked to be stored as its canonical text and to hold none of the
/// test record's values.
fn canonical_entry(row: &coffer::store::AuditRow) -> coffer::audit::AuditEntry {
    let entry: coffer::audit::AuditEntry = serde_json::from_str(&row.entry).unwrap();
    assert_eq!(entry.canonical(), row.entry);
    for secret in [
        "张三丰",
        "110101200001010002",
        "13912345678",
        "6200000000000005",
    ] {
        assert!(!row.entry.contains(secret), "a value in the audit trail");
    }
    entry
}

/// A seal's audit entry is written straight from the envelope, without an `AuditEntry`: it
/// must still be that entry's canonical text, name every field with its outcome in path order
/// and the data key versions, and hold no field's value.
#[test]
fn a_seal_entry_is_the_canonical_text_of_its_audit_entry() {
    let d = Dir::new("seal-entry");
    let key = MasterKey::generate().unwrap();
    let c = open(&d.db(), &key);
    let sealed: Vec<Envelope> = c
        .seal_many(
            vec![record("c-1", "firm-a"), record("c-2", "firm-a")],
            "import",
        )
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    // Each seal of the batch has its own salt.
    let salt = |e: &Envelope| -> String {
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        v["salt"].as_str().unwrap().to_owned()
    };
    assert_ne!(salt(&sealed[0]), salt(&sealed[1]));
    c.reseal(&sealed[0], "rotation").unwrap();
    let rows = coffer::store::open(d.db(), false)
        .unwrap()
        .audit_rows(1, 1000)
        .unwrap();
    let mut seen = Vec::new();
    // The batch's two seals are one `seal.batch` entry; the reseal, its own entry.
    let entries: Vec<coffer::audit::AuditEntry> = rows
        .iter()
        .filter(|r| {
            r.entry.contains("\"kind\":\"seal.batch\"") || r.entry.contains("\"kind\":\"reseal\"")
        })
        .flat_map(|row| coffer::audit::expand(&canonical_entry(row)).unwrap())
        .collect();
    for entry in entries {
        assert!(
            !rows.iter().any(|r| r.entry.contains("\"kind\":\"seal\"")),
            "a batch of one tenant's records writes no plain seal entry"
        );
        let fields: Vec<(&str, &str)> = entry
            .fields
            .iter()
            .map(|(p, o)| (p.as_str(), o.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("addresses[0]", "sealed"),
                ("bank_accounts[0].account_number", "sealed"),
                ("bank_accounts[0].account_type", "clear"),
                ("bank_accounts[0].bank_name", "clear"),
                ("emails[0]", "sealed"),
                ("id_documents[0].number", "sealed"),
                ("id_documents[0].type", "clear"),
                ("name", "sealed"),
                ("phones[0]", "sealed"),
            ]
        );
        assert_eq!(entry.detail["keys"], "banking:1,contact:1,identity:1");
        assert_eq!(entry.tenant.as_deref(), Some("firm-a"));
        seen.push((entry.kind, entry.actor, entry.record.unwrap()));
    }
    assert_eq!(
        seen,
        [
            ("seal".to_owned(), "import".to_owned(), "c-1".to_owned()),
            ("seal".to_owned(), "import".to_owned(), "c-2".to_owned()),
            ("reseal".to_owned(), "rotation".to_owned(), "c-1".to_owned()),
        ]
    );
    assert!(c.audit_verify(None).unwrap().intact);
}

/// A reveal's audit entry is written straight from the decision, without an `AuditEntry`: it
/// must still be that entry's canonical text, with every field's effect as the view shows it,
/// the deciding rules sorted once each, and no field's value.
#[test]
fn a_reveal_entry_is_the_canonical_text_of_its_audit_entry() {
    let d = Dir::new("reveal-entry");
    let key = MasterKey::generate().unwrap();
    let c = open(&d.db(), &key);
    let env = c.seal(record("c-1", "firm-a"), "import").unwrap();
    let mut views = Vec::new();
    for (roles, purpose) in [
        (&["accountant"][..], "payments"),
        (&["clerk"][..], "bookkeeping"),
        (&["nobody"][..], "payments"),
    ] {
        let mut a = access(roles, purpose, "firm-a");
        a.context.client = Some("erp-7".into());
        views.push((c.reveal(&env, &a).unwrap(), roles[0], purpose));
    }
    let rows = coffer::store::open(d.db(), false)
        .unwrap()
        .audit_rows(1, 1000)
        .unwrap();
    for (view, role, purpose) in &views {
        let row = rows.iter().find(|r| r.seq == view.audit_seq).unwrap();
        let entry = canonical_entry(row);
        assert_eq!(entry.kind, "reveal");
        assert_eq!(entry.actor, "u-1");
        assert_eq!(entry.purpose.as_deref(), Some(*purpose));
        assert_eq!(entry.record.as_deref(), Some("c-1"));
        assert_eq!(entry.detail["roles"], *role);
        assert_eq!(entry.detail["client"], "erp-7");
        assert_eq!(
            entry.fields.keys().collect::<Vec<_>>(),
            view.fields.keys().collect::<Vec<_>>()
        );
        for (path, shown) in &view.fields {
            let effect = &entry.fields[path];
            match shown {
                FieldView::Revealed(_) => assert_eq!(effect, "reveal", "{path}"),
                FieldView::Masked(_) => assert!(effect.starts_with("mask:"), "{path}: {effect}"),
                _ => assert!(effect.starts_with("deny:"), "{path}: {effect}"),
            }
        }
        let mut rules = entry.rules.clone();
        rules.sort();
        rules.dedup();
        assert_eq!(rules, entry.rules);
    }
    // The three differ: something revealed, something masked, everything denied.
    let effects = |i: usize| -> Vec<String> {
        let row = rows.iter().find(|r| r.seq == views[i].0.audit_seq).unwrap();
        let e: coffer::audit::AuditEntry = serde_json::from_str(&row.entry).unwrap();
        e.fields.into_values().collect()
    };
    assert!(effects(0).iter().any(|e| e == "reveal"));
    assert!(effects(1).iter().any(|e| e.starts_with("mask:")));
    assert!(effects(2).iter().all(|e| e.starts_with("deny:")));
    assert!(c.audit_verify(None).unwrap().intact);
}

/// The expanded export has one line per event: a batch entry's records each on their own
/// line (its `seq`, their place in it, no MAC), any other entry as stored (its `seq`, no MAC);
/// the plain export keeps one line per stored entry, MAC and all.
#[test]
fn the_expanded_export_has_a_line_per_event() {
    use coffer::audit::{AuditEntry, expand};
    let d = Dir::new("expanded-export");
    let key = MasterKey::generate().unwrap();
    let c = open_clocked(&d.db(), &key, ten_am());
    let records = vec![
        record("c-1", "firm-a"),
        record("c-2", "firm-a"),
        record("c-3", "firm-b"),
        record("c-4", "firm-a"),
    ];
    for r in c.seal_many(records, "import").unwrap() {
        r.unwrap();
    }
    let lines = |expanded: bool| -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let n = if expanded {
            c.audit_export_expanded(&mut out).unwrap()
        } else {
            c.audit_export(&mut out).unwrap()
        };
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len() as u64, n);
        lines
    };
    let stored = lines(false);
    assert_eq!(stored.len() as u64, c.audit_len().unwrap());
    let expanded = lines(true);
    let mut want = Vec::new();
    for line in &stored {
        assert!(line["mac"].is_string());
        let mut entry = line.clone();
        entry.as_object_mut().unwrap().remove("seq");
        entry.as_object_mut().unwrap().remove("mac");
        let entry: AuditEntry = serde_json::from_value(entry).unwrap();
        let batch = entry.kind.ends_with(".batch");
        for (item, e) in expand(&entry).unwrap().into_iter().enumerate() {
            let mut v = serde_json::to_value(&e).unwrap();
            v["seq"] = line["seq"].clone();
            if batch {
                v["item"] = item.into();
            }
            want.push(v);
        }
    }
    assert_eq!(expanded, want);
    // firm-a's three seals are one stored entry and three lines; firm-b's one seal is a
    // plain entry and a line without `item`.
    let seals: Vec<Option<u64>> = expanded
        .iter()
        .filter(|l| l["kind"] == "seal")
        .map(|l| l["item"].as_u64())
        .collect();
    assert_eq!(seals.len(), 4);
    assert_eq!(seals.iter().filter(|i| i.is_none()).count(), 1);
    assert!(seals.contains(&Some(2)));
    assert!(expanded.iter().all(|l| l.get("mac").is_none()));
    assert!(
        !expanded
            .iter()
            .any(|l| l["kind"].as_str().unwrap().ends_with(".batch"))
    );
    assert!(expanded.len() > stored.len());
}

/// A batch's records are audited in one `seal.batch` or `reveal.batch` entry per tenant. It
/// must stand for exactly the entries the records would have written one at a time (same
/// fields, rules and detail, byte for byte), and everything that reads the trail by record
/// (subscribers, the subject report) must see those entries.
#[test]
fn a_batch_entry_expands_to_the_entries_its_records_would_write_alone() {
    use coffer::audit::{AuditEntry, expand};
    let d = Dir::new("batch-entry");
    let key = MasterKey::generate().unwrap();
    let c = open_clocked(&d.db(), &key, ten_am());
    let heard: Arc<Mutex<Vec<(u64, AuditEntry)>>> = Arc::default();
    let h = Arc::clone(&heard);
    c.subscribe(move |e| h.lock().unwrap().push((e.seq, e.entry.clone())));
    // Records of different shapes, so the batch holds several distinct field maps; and one
    // record of another tenant, which keeps its plain entry.
    let mut slim = record("c-2", "firm-a");
    slim.bank_accounts.clear();
    slim.addresses.clear();
    slim.subject = Some("s-2".into());
    let records = || {
        vec![
            record("c-1", "firm-a"),
            slim.clone(),
            record("c-3", "firm-b"),
            record("c-4", "firm-a"),
        ]
    };
    let rows = |from: u64| {
        coffer::store::open(d.db(), false)
            .unwrap()
            .audit_rows(from, 1000)
            .unwrap()
    };
    let entry = |r: &coffer::store::AuditRow| -> AuditEntry {
        let e: AuditEntry = serde_json::from_str(&r.entry).unwrap();
        assert_eq!(e.canonical(), r.entry);
        e
    };

    let before = c.audit_len().unwrap();
    let batch: Vec<Envelope> = seal_all(&c, records(), "import");
    let written: Vec<AuditEntry> = rows(before + 1).iter().map(entry).collect();
    let kinds: Vec<(&str, Option<&str>)> = written
        .iter()
        .map(|e| (e.kind.as_str(), e.tenant.as_deref()))
        .collect();
    // The new subjects' keys too: one entry for firm-a's three subjects, firm-b's own.
    assert_eq!(
        kinds,
        [
            ("key.create", Some("firm-b")),
            ("key.create.batch", Some("firm-a")),
            ("seal", Some("firm-b")),
            ("seal.batch", Some("firm-a"))
        ]
    );
    let keys_batch = expand(&written[1]).unwrap();
    let subjects: Vec<&str> = keys_batch
        .iter()
        .map(|e| e.subject.as_deref().unwrap())
        .collect();
    // (A record without a subject id is its own subject.)
    assert_eq!(subjects, ["c-1", "c-4", "s-2"]);
    assert!(
        keys_batch.iter().all(|e| e.kind == "key.create"
            && e.record.is_none()
            && e.detail["keys"].ends_with(":1"))
    );
    let sealed_batch = written.iter().find(|e| e.kind == "seal.batch").unwrap();
    // Now each firm-a record alone: a plain entry each, which the batch must expand to.
    let mut alone = Vec::new();
    for r in records().into_iter().filter(|r| r.tenant == "firm-a") {
        let from = c.audit_len().unwrap() + 1;
        c.seal(r, "import").unwrap();
        alone.extend(rows(from).iter().map(entry));
    }
    assert!(alone.iter().all(|e| e.kind == "seal"));
    let expanded = expand(sealed_batch).unwrap();
    assert_eq!(expanded, alone);
    let texts = |es: &[AuditEntry]| es.iter().map(AuditEntry::canonical).collect::<Vec<_>>();
    assert_eq!(texts(&expanded), texts(&alone));
    assert!(expanded[0].fields.len() > expanded[1].fields.len());

    // Reveals: the batch, then each firm-a envelope alone.
    let a = access(&["accountant"], "payments", "firm-a");
    let from = c.audit_len().unwrap() + 1;
    let views = c.reveal_many(&batch, &a).unwrap();
    let written: Vec<AuditEntry> = rows(from).iter().map(entry).collect();
    let revealed_batch = written
        .iter()
        .find(|e| e.kind == "reveal.batch")
        .unwrap()
        .clone();
    assert_eq!(views[0].audit_seq, views[1].audit_seq);
    assert_eq!(views[0].audit_seq, views[3].audit_seq);
    assert_ne!(views[0].audit_seq, views[2].audit_seq);
    let mut alone = Vec::new();
    for env in batch.iter().filter(|e| e.tenant() == "firm-a") {
        let from = c.audit_len().unwrap() + 1;
        c.reveal(env, &a).unwrap();
        alone.extend(rows(from).iter().map(entry));
    }
    assert!(alone.iter().all(|e| e.kind == "reveal"));
    let expanded = expand(&revealed_batch).unwrap();
    assert_eq!(texts(&expanded), texts(&alone));
    assert_eq!(expanded, alone);

    // Subscribers heard per-record entries only, a batch's under its one seq.
    let batch_seq = views[0].audit_seq;
    {
        // (Released before the report below, which is itself audited and heard.)
        let heard = heard.lock().unwrap();
        assert!(heard.iter().all(|(_, e)| !e.kind.ends_with(".batch")));
        let at_batch: Vec<&str> = heard
            .iter()
            .filter(|(s, _)| *s == batch_seq)
            .map(|(_, e)| e.record.as_deref().unwrap())
            .collect();
        assert_eq!(at_batch, ["c-1", "c-2", "c-4"]);
    }

    // The subject report finds the batch's seal and reveal of s-2 as its own.
    let mut officer = access(&["privacy_officer"], "data_protection", "firm-a");
    officer.context.ticket = Some("DSAR-7".into());
    let r = c
        .subject_report("firm-a", "s-2", &[], &officer, &Default::default())
        .unwrap();
    assert!(r.trail.intact);
    assert!(
        r.accesses
            .iter()
            .any(|x| x.seq == batch_seq && x.record.as_deref() == Some("c-2"))
    );
    assert!(
        r.changes
            .iter()
            .any(|x| x.kind == "seal" && x.record.as_deref() == Some("c-2"))
    );
    assert_eq!(r.records, ["c-2"]);
    assert!(c.audit_verify(None).unwrap().intact);
}

/// Records of one reveal batch whose rules and audit detail differ from their neighbours'
/// (a rule for bank accounts, which some records lack; a rule with `audit = "detail"` for
/// companies only) are each listed with their own, in runs and alone: the batch entry
/// expands to exactly what each reveal would write alone.
#[test]
fn a_reveal_batch_keeps_each_records_own_rules_and_detail() {
    use coffer::audit::{AuditEntry, expand};
    let d = Dir::new("batch-parts");
    let key = MasterKey::generate().unwrap();
    let policy = format!(
        "{POLICY}\n[[rules]]\nid = \"clerk-bank\"\neffect = \"allow\"\n\
         roles = [\"clerk\"]\nactions = [\"read\"]\nfields = [\"bank_accounts[].*\"]\n\
         purposes = [\"bookkeeping\"]\n\
         [[rules]]\nid = \"clerk-companies-detailed\"\neffect = \"allow\"\n\
         roles = [\"clerk\"]\nactions = [\"read\"]\nfields = [\"name\"]\n\
         purposes = [\"bookkeeping\"]\naudit = \"detail\"\n\
         when = [{{ attr = \"record.kind\", eq = \"company\" }}]\n"
    );
    let c = Coffer::open_with(
        d.db(),
        &key,
        OpenOptions {
            policy: Some(Policy::from_toml(&policy, Schema::builtin()).unwrap()),
            clock: ten_am(),
            ..Default::default()
        },
    )
    .unwrap();
    let full = |id: &str| record(id, "firm-a");
    let no_bank = |id: &str| {
        let mut r = record(id, "firm-a");
        r.bank_accounts.clear();
        r
    };
    let company = |id: &str| {
        CustomerRecord::from_json(&format!(
            r#"{{"id":"{id}","tenant":"firm-a","kind":"company","name":"示例有限公司",
                "id_documents":[{{"type":"uscc","number":"91110000MA00000152"}}],
                "phones":["+86 139 1234 5678"]}}"#
        ))
        .unwrap()
    };
    let no_contact = |id: &str| {
        let mut r = record(id, "firm-a");
        r.phones.clear();
        r.emails.clear();
        r
    };
    let records = vec![
        full("c-1"),
        full("c-2"),
        no_bank("c-3"),
        no_bank("c-4"),
        full("c-5"),
        no_contact("c-6"),
        company("c-7"),
        company("c-8"),
        no_contact("c-9"),
        company("c-10"),
    ];
    let batch: Vec<Envelope> = seal_all(&c, records, "import");
    let rows = |from: u64| -> Vec<AuditEntry> {
        coffer::store::open(d.db(), false)
            .unwrap()
            .audit_rows(from, 1000)
            .unwrap()
            .iter()
            .map(|r| serde_json::from_str(&r.entry).unwrap())
            .collect()
    };
    let a = access(&["clerk"], "bookkeeping", "firm-a");
    let from = c.audit_len().unwrap() + 1;
    c.reveal_many(&batch, &a).unwrap();
    let written = rows(from);
    assert_eq!(written.len(), 1, "{written:?}");
    let expanded = expand(&written[0]).unwrap();
    let mut alone = Vec::new();
    for env in &batch {
        let from = c.audit_len().unwrap() + 1;
        c.reveal(env, &a).unwrap();
        alone.extend(rows(from));
    }
    let texts = |es: &[AuditEntry]| es.iter().map(AuditEntry::canonical).collect::<Vec<_>>();
    assert_eq!(texts(&expanded), texts(&alone));
    // The parts really differ from one record to the next, together and apart.
    let detailed: Vec<bool> = alone
        .iter()
        .map(|e| e.detail.contains_key("audit"))
        .collect();
    assert_eq!(
        detailed,
        [
            false, false, false, false, false, false, true, true, false, true
        ]
    );
    let rule_counts: Vec<usize> = alone.iter().map(|e| e.rules.len()).collect();
    assert_eq!(rule_counts, [3, 3, 2, 2, 3, 3, 3, 3, 3, 3]);
    assert!(
        alone.windows(2).any(|w| w[0].rules != w[1].rules
            && w[0].detail.contains_key("audit") == w[1].detail.contains_key("audit")),
        "rules that differ while the detail does not"
    );
}

/// A batch entry whose body was forged (with a valid MAC, as only the audit key's holder
/// could) does not expand: it is an integrity error, never a silently shorter list.
#[test]
fn a_malformed_batch_entry_does_not_expand() {
    use coffer::audit::{AuditEntry, expand};
    let mut e = AuditEntry::new("seal.batch", "import", "2026-12-04T10:00:00Z");
    for body in [
        "",
        "{}",
        r#"{"fields":[],"rules":[],"details":[],"records":[["c-1","s-1",0,0,0]]}"#,
        r#"{"fields":[{}],"rules":[[]],"details":[{}],"records":[["c-1","s-1",0,0,0]],"x":1}"#,
    ] {
        e.detail.insert("batch".into(), body.into());
        assert_eq!(
            expand(&e).unwrap_err().kind(),
            ErrorKind::Integrity,
            "{body}"
        );
    }
    e.detail.insert(
        "batch".into(),
        r#"{"fields":[{}],"rules":[[]],"details":[{}],"records":[["c-1","s-1",0,0,0]]}"#.into(),
    );
    let one = expand(&e).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].kind, "seal");
    assert!(one[0].detail.is_empty());
    // Any other entry stands for itself.
    let plain = AuditEntry::new("seal", "import", "2026-12-04T10:00:00Z");
    assert_eq!(expand(&plain).unwrap(), [plain]);
}

/// A batch entry is one link of the chain: hiding one record of a batch from the trail
/// (deleting it from the batch's body), changing whose record it was, or giving a record another
/// record's field effects all break that link, and verification names the batch's `seq`.
#[test]
fn tampering_inside_a_batch_entry_is_detected() {
    let attacks = [
        // Drop the second record from the body.
        r#"UPDATE audit SET entry = replace(entry, ',[\"c-2\",\"c-2\",0,0,0]', '') WHERE entry LIKE '%seal.batch%'"#,
        // Say the first record was someone else's.
        r#"UPDATE audit SET entry = replace(entry, '[\"c-1\",\"c-1\"', '[\"c-9\",\"c-9\"') WHERE entry LIKE '%seal.batch%'"#,
        // Point the third record at another field map.
        r#"UPDATE audit SET entry = replace(entry, '[\"c-3\",\"c-3\",1', '[\"c-3\",\"c-3\",0') WHERE entry LIKE '%seal.batch%'"#,
    ];
    for (n, attack) in attacks.iter().enumerate() {
        let d = Dir::new(&format!("batch-tamper-{n}"));
        let key = MasterKey::generate().unwrap();
        let seq = {
            let c = open(&d.db(), &key);
            let mut slim = record("c-3", "firm-a");
            slim.addresses.clear();
            c.seal_many(
                vec![record("c-1", "firm-a"), record("c-2", "firm-a"), slim],
                "t",
            )
            .unwrap();
            assert!(c.audit_verify(None).unwrap().intact);
            c.audit_len().unwrap()
        };
        let stored = || {
            coffer::store::open(d.db(), false)
                .unwrap()
                .audit_rows(seq, 1)
                .unwrap()
                .pop()
                .unwrap()
                .entry
        };
        let before = stored();
        assert!(before.contains("seal.batch"));
        sql(&d.db(), attack);
        let after = stored();
        assert_ne!(before, after, "attack {n} changed nothing");
        let report = open(&d.db(), &key).audit_verify(None).unwrap();
        assert_eq!(
            report.first_problem,
            Some((seq, Tampering::Changed)),
            "attack {n}"
        );
    }
}
