//! Issue 16: what a destruction leaves in copies of the store, KEK retirement, backups, and
//! restores that never bring a destroyed key back.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use coffer::report::{CheckOptions, ReportOptions};
use coffer::{
    Access, BackupManifest, Coffer, ErrorKind, FieldView, MasterKey, OpenOptions, RestoreOptions,
};

mod common;
use common::{Dir, clock, customer, open_with_rules, who};

fn reader() -> Access {
    who("mk-1", "marketing", "marketing")
}

/// The wrapped bytes of a data key, and of the KEK rows, read straight from the file.
fn wrapped_key(db: &Path, subject: &str, category: &str) -> Vec<u8> {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT wrapped FROM data_keys WHERE subject = ?1 AND category = ?2",
            [subject, category],
            |r| r.get(0),
        )
        .unwrap()
}

fn wrapped_kek(db: &Path, version: u32) -> Vec<u8> {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT wrapped FROM keyring WHERE kind = 'kek' AND version = ?1",
            [version],
            |r| r.get(0),
        )
        .unwrap()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The bytes of a store's files (main, log) that exist.
fn files_of(db: &Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-journal"]
        .iter()
        .map(|s| PathBuf::from(format!("{}{s}", db.display())))
        .filter(|p| p.exists())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

fn check(c: &Coffer, max_backup_exposure_days: u32) -> Vec<String> {
    let mut officer = who("dpo-1", "privacy_officer", "data_protection");
    officer.context.ticket = Some("CHK-1".into());
    c.compliance_check(
        &CheckOptions {
            max_backup_exposure_days,
            ..CheckOptions::default()
        },
        &officer,
        &ReportOptions::default(),
    )
    .unwrap()
    .findings
    .into_iter()
    .map(|f| f.code)
    .collect()
}

fn phone_of(c: &Coffer, env: &coffer::Envelope) -> FieldView {
    c.reveal(env, &reader()).unwrap().fields["phones[0]"].clone()
}

/// A destruction states how long older copies can still recover it; the compliance check
/// flags destroyed keys whose KEK outlives the configured age; retiring the KEK deletes it for
/// good, after which neither the destroyed key nor the retired KEK is anywhere in the store's
/// files or in a backup taken then — while every live key still opens, also from a handle
/// that loaded its keyring before the retirement.
#[test]
fn kek_retirement_leaves_no_destroyed_key_material_in_the_store_or_a_backup() {
    if !common::sqlite_only(
        "kek_retirement_leaves_no_destroyed_key_material_in_the_store_or_a_backup",
    ) {
        return;
    }
    let d = Dir::new("retire");
    let key = MasterKey::generate().unwrap();
    let clock = clock();
    let c = open_with_rules(&d.db(), &key, &clock).unwrap();
    let stale = open_with_rules(&d.db(), &key, &clock).unwrap();
    let gone = c.seal(customer("c-1", "13912345678"), "import").unwrap();
    let kept = c.seal(customer("c-2", "13800001111"), "import").unwrap();
    let destroyed_key = wrapped_key(&d.db(), "s-c-1", "contact");
    let kek1 = wrapped_kek(&d.db(), 1);

    let answer = c.erase("acme", "s-c-1", "dpo").unwrap();
    let exposure = answer.backup_exposure.clone().expect("a key was destroyed");
    assert_eq!(exposure.kek_versions, vec![1]);
    // 2026-12-01 plus the example rules' `backups_kept = "35d"`.
    assert_eq!(exposure.until.as_deref(), Some("2027-01-05"));
    let cert = answer.certificate.clone().unwrap();
    assert_eq!(cert.backup_exposure.as_ref(), Some(&exposure));
    cert.verify(&c.signing_public_key()).unwrap();
    // The statement is signed: changing it breaks the certificate.
    let mut forged = cert.clone();
    forged.backup_exposure.as_mut().unwrap().until = Some("2026-12-02".into());
    assert_eq!(
        forged.verify(&c.signing_public_key()).unwrap_err().kind(),
        ErrorKind::Integrity
    );

    // Not flagged while younger than the configured age; flagged past it.
    assert!(!check(&c, 30).contains(&"keys.backup_exposure".to_owned()));
    clock.advance(time::Duration::days(31));
    assert!(check(&c, 30).contains(&"keys.backup_exposure".to_owned()));

    // Retirement waits for the rewrap: nothing is deleted while a live key needs KEK 1.
    assert_eq!(c.rotate_kek("ops").unwrap(), 2);
    let err = c.retire_keks("ops").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert_eq!(wrapped_kek(&d.db(), 1), kek1);
    while c.continue_kek_rotation(1, "ops").unwrap() > 0 {}
    assert_eq!(c.retire_keks("ops").unwrap(), vec![1]);
    assert_eq!(c.retire_keks("ops").unwrap(), Vec::<u32>::new());
    assert!(!check(&c, 30).contains(&"keys.backup_exposure".to_owned()));

    // Everything live still opens, here and from the handle that still had KEK 1 loaded,
    // which also seals (under KEK 2, not the retired one).
    assert_eq!(
        phone_of(&c, &kept),
        FieldView::Revealed("13800001111".into())
    );
    assert_eq!(phone_of(&stale, &gone), FieldView::Shredded);
    let later = stale
        .seal(customer("c-3", "13700002222"), "import")
        .unwrap();
    drop(stale);
    let fresh = open_with_rules(&d.db(), &key, &clock).unwrap();
    assert_eq!(
        phone_of(&fresh, &later),
        FieldView::Revealed("13700002222".into())
    );
    assert_eq!(
        phone_of(&fresh, &kept),
        FieldView::Revealed("13800001111".into())
    );

    // A backup taken now, and the store's own files (handles still open), hold neither the
    // destroyed key nor the retired KEK that wrapped it.
    let backup = d.path("after-retirement.db");
    c.backup(&backup, "ops").unwrap();
    let mut scanned = files_of(&d.db());
    scanned.extend(files_of(&backup));
    assert!(scanned.len() >= 2);
    for (name, bytes) in &scanned {
        assert!(!contains(bytes, &destroyed_key), "destroyed key in {name}");
        assert!(!contains(bytes, &kek1), "retired KEK in {name}");
    }
    // The trail records the retirement, and verifies.
    let mut trail = Vec::new();
    c.audit_export(&mut trail).unwrap();
    let trail = String::from_utf8(trail).unwrap();
    assert!(trail.contains("\"key.retire\""));
    assert!(c.audit_verify(None).unwrap().intact);
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A backup taken while another thread seals is one consistent state whose manifest is
/// signed, matches it, and is private; it never overwrites a file.
#[test]
fn a_backup_is_consistent_private_signed_and_never_overwrites() {
    if !common::sqlite_only("a_backup_is_consistent_private_signed_and_never_overwrites") {
        return;
    }
    let d = Dir::new("consistent");
    let key = MasterKey::generate().unwrap();
    let clock = clock();
    let c = Arc::new(open_with_rules(&d.db(), &key, &clock).unwrap());
    c.seal(customer("c-0", "13912345678"), "import").unwrap();
    let writer = {
        let c = Arc::clone(&c);
        std::thread::spawn(move || {
            for i in 1..200 {
                c.seal(customer(&format!("c-{i}"), "13912345678"), "import")
                    .unwrap();
            }
        })
    };
    let mut manifests = Vec::new();
    for n in 0..5 {
        let p = d.path(&format!("b{n}.db"));
        manifests.push((p.clone(), c.backup(&p, "ops").unwrap()));
    }
    writer.join().unwrap();
    for (p, m) in &manifests {
        m.verify(&c.signing_public_key()).unwrap();
        let on_disk = BackupManifest::from_json(
            &std::fs::read_to_string(BackupManifest::path_for(p)).unwrap(),
        )
        .unwrap();
        assert_eq!(&on_disk, m);
        #[cfg(unix)]
        {
            assert_eq!(mode(p), 0o600);
            assert_eq!(mode(&BackupManifest::path_for(p)), 0o600);
        }
        assert!(!PathBuf::from(format!("{}-wal", p.display())).exists());
        // Its trail verifies, and holds what the manifest says (checked on a scratch copy:
        // opening a store writes to it).
        let scratch = d.path("scratch.db");
        let _ = std::fs::remove_file(&scratch);
        std::fs::copy(p, &scratch).unwrap();
        let b = Coffer::open_with(
            &scratch,
            &key,
            OpenOptions {
                create: false,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(b.audit_verify(None).unwrap().intact);
        assert_eq!(b.audit_len().unwrap(), m.entries);
    }
    // Never over an existing file.
    let err = c.backup(&manifests[0].0, "ops").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    // Each backup is in the live trail.
    let mut trail = Vec::new();
    c.audit_export(&mut trail).unwrap();
    assert_eq!(
        String::from_utf8(trail)
            .unwrap()
            .matches("\"store.backup\"")
            .count(),
        5
    );
    // A manifest whose figures were changed no longer verifies.
    let mut forged = manifests[0].1.clone();
    forged.entries += 1;
    assert_eq!(
        forged.verify(&c.signing_public_key()).unwrap_err().kind(),
        ErrorKind::Integrity
    );
}

/// The drill: back up, seal more, erase, lose the store, restore from the backup with the
/// certificates kept since. The erased contact stays shredded, what the backup held opens,
/// what was sealed after it reads shredded (its keys are not in the backup), and the trail verifies.
#[test]
fn restore_drill_from_certificates_keeps_destroyed_keys_destroyed() {
    if !common::sqlite_only("restore_drill_from_certificates_keeps_destroyed_keys_destroyed") {
        return;
    }
    let d = Dir::new("drill");
    let key = MasterKey::generate().unwrap();
    let clock = clock();
    let c = open_with_rules(&d.db(), &key, &clock).unwrap();
    let erased = c.seal(customer("c-1", "13912345678"), "import").unwrap();
    let kept = c.seal(customer("c-2", "13800001111"), "import").unwrap();
    assert_eq!(
        phone_of(&c, &erased),
        FieldView::Revealed("13912345678".into())
    );
    let backup = d.path("nightly.db");
    let manifest = c.backup(&backup, "ops").unwrap();
    let after = c.seal(customer("c-3", "13700002222"), "import").unwrap();
    let answer = c.erase("acme", "s-c-1", "dpo").unwrap();
    let cert = answer.certificate.unwrap();
    drop(c);

    // The store is lost.
    for s in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{s}", d.db().display()));
    }
    // Without a record of later destructions the restore is refused, and writes nothing.
    let err = Coffer::restore(
        &backup,
        d.db(),
        &key,
        RestoreOptions {
            actor: "ops".into(),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(!d.db().exists());
    // A wrong master key is refused.
    let err = Coffer::restore(
        &backup,
        d.db(),
        &MasterKey::generate().unwrap(),
        RestoreOptions {
            actor: "ops".into(),
            certificates: vec![cert.clone()],
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongMasterKey);
    assert!(!d.db().exists());

    let report = Coffer::restore(
        &backup,
        d.db(),
        &key,
        RestoreOptions {
            actor: "ops".into(),
            certificates: vec![cert.clone()],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(report.sources, vec!["certificates".to_owned()]);
    assert_eq!(report.reapplied, cert.items.len() as u64);
    assert!(report.reapplied >= 1);
    assert_eq!(report.backup_entries, manifest.entries);
    assert_eq!(report.replaced, None);

    let r = open_with_rules(&d.db(), &key, &clock).unwrap();
    assert_eq!(phone_of(&r, &erased), FieldView::Shredded);
    assert_eq!(
        phone_of(&r, &kept),
        FieldView::Revealed("13800001111".into())
    );
    // Sealed after the backup: its keys are not in it, so it reads as gone for good.
    assert_eq!(phone_of(&r, &after), FieldView::Shredded);
    assert!(r.audit_verify(None).unwrap().intact);
    let mut trail = Vec::new();
    r.audit_export(&mut trail).unwrap();
    let trail = String::from_utf8(trail).unwrap();
    assert!(trail.contains("\"store.restore\""));
    // The destroyed key's bytes are not in the restored store's files.
    drop(r);
    let restored = std::fs::read(d.db()).unwrap();
    let original = rusqlite::Connection::open(&backup)
        .unwrap()
        .query_row(
            "SELECT wrapped FROM data_keys WHERE subject = 's-c-1' AND category = 'contact'",
            [],
            |r| r.get::<_, Vec<u8>>(0),
        )
        .unwrap();
    assert!(!contains(&restored, &original));

    // A certificate signed by another store is refused.
    let other = Dir::new("drill-other");
    let o = open_with_rules(&other.db(), &key, &clock).unwrap();
    o.seal(customer("c-1", "13912345678"), "import").unwrap();
    let foreign = o
        .erase("acme", "s-c-1", "dpo")
        .unwrap()
        .certificate
        .unwrap();
    let err = Coffer::restore(
        &backup,
        d.path("elsewhere.db"),
        &key,
        RestoreOptions {
            actor: "ops".into(),
            certificates: vec![foreign],
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(!d.path("elsewhere.db").exists());
}

/// Restoring over a store that can still be read takes its destructions (no certificate
/// needed), its erasure restrictions and its holds, and keeps it aside; a backup changed by
/// one byte is refused.
#[test]
fn restore_over_a_readable_store_reapplies_its_destructions_and_refuses_a_changed_backup() {
    if !common::sqlite_only(
        "restore_over_a_readable_store_reapplies_its_destructions_and_refuses_a_changed_backup",
    ) {
        return;
    }
    let d = Dir::new("over");
    let key = MasterKey::generate().unwrap();
    let clock = clock();
    let c = open_with_rules(&d.db(), &key, &clock).unwrap();
    let erased = c.seal(customer("c-1", "13912345678"), "import").unwrap();
    let backup = d.path("b.db");
    c.backup(&backup, "ops").unwrap();
    let answer = c.erase("acme", "s-c-1", "dpo").unwrap();
    let cert = answer.certificate.unwrap();
    let restricted = answer
        .items
        .iter()
        .filter(|i| i.outcome == "restricted")
        .count() as u64;
    assert!(restricted >= 1, "{:?}", answer.items);
    c.place_hold(
        coffer::Hold {
            tenant: "acme".into(),
            subject: Some("s-c-9".into()),
            reason: "tax inspection 2026-17".into(),
            ..Default::default()
        },
        "legal",
    )
    .unwrap();
    drop(c);

    // One byte changed in the backup: refused before anything is written.
    let bytes = std::fs::read(&backup).unwrap();
    let changed = d.path("changed.db");
    let mut b = bytes.clone();
    let at = b.len() / 2;
    b[at] ^= 1;
    std::fs::write(&changed, &b).unwrap();
    std::fs::copy(
        BackupManifest::path_for(&backup),
        BackupManifest::path_for(&changed),
    )
    .unwrap();
    let err = Coffer::restore(
        &changed,
        d.db(),
        &key,
        RestoreOptions {
            actor: "ops".into(),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);

    let report = Coffer::restore(
        &backup,
        d.db(),
        &key,
        RestoreOptions {
            actor: "ops".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(report.sources, vec!["store".to_owned()]);
    assert_eq!(report.reapplied, cert.items.len() as u64);
    // The erasure's restrictions and the hold, placed after the backup, came across.
    assert_eq!(report.restrictions_carried, restricted);
    assert_eq!(report.holds_carried, 1);
    let aside = PathBuf::from(report.replaced.clone().unwrap());
    assert!(aside.exists());
    let r = open_with_rules(&d.db(), &key, &clock).unwrap();
    assert_eq!(phone_of(&r, &erased), FieldView::Shredded);
    assert!(r.audit_verify(None).unwrap().intact);
    let holds = r.holds(Some("acme")).unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].subject.as_deref(), Some("s-c-9"));
    // Restoring again over the restored store changes nothing more.
    drop(r);
    let again = Coffer::restore(
        &backup,
        d.db(),
        &key,
        RestoreOptions {
            actor: "ops".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(again.holds_carried, 1);
    assert_eq!(again.restrictions_carried, restricted);
    assert_eq!(again.reapplied, report.reapplied);
}

/// A store to replace that opens only with a newer master key may record destructions the
/// caller has no certificate for: the restore is refused, nothing written, and says why.
#[test]
fn restore_over_a_store_whose_master_key_was_rotated_is_refused() {
    if !common::sqlite_only("restore_over_a_store_whose_master_key_was_rotated_is_refused") {
        return;
    }
    let d = Dir::new("rotated");
    let key = MasterKey::generate().unwrap();
    let clock = clock();
    let c = open_with_rules(&d.db(), &key, &clock).unwrap();
    c.seal(customer("c-1", "13912345678"), "import").unwrap();
    let backup = d.path("b.db");
    c.backup(&backup, "ops").unwrap();
    c.erase("acme", "s-c-1", "dpo").unwrap();
    c.rotate_master_key(&MasterKey::generate().unwrap(), "ops")
        .unwrap();
    drop(c);
    let before = std::fs::read(d.db()).unwrap();
    let err = Coffer::restore(
        &backup,
        d.db(),
        &key,
        RestoreOptions {
            actor: "ops".into(),
            no_later_destructions: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("rotated"), "{err}");
    assert_eq!(std::fs::read(d.db()).unwrap(), before);
    assert!(!PathBuf::from(format!("{}.restoring", d.db().display())).exists());
}

/// `store::copy` moves a whole store (to PostgreSQL when the run has one, else to another
/// file) and the copy is the same store: the chain verifies under the same key, what was
/// destroyed stays destroyed, restrictions and holds come across, and a copy into a store
/// that is not new is refused with nothing written.
#[test]
fn a_store_copied_to_another_backend_is_the_same_store() {
    let d = Dir::new("storecopy");
    let source = d.path("source.db");
    let key = MasterKey::generate().unwrap();
    let clock = clock();
    let c = open_with_rules(&source, &key, &clock).unwrap();
    let kept = c.seal(customer("c-1", "13912345678"), "import").unwrap();
    let erased = c.seal(customer("c-2", "13987654321"), "import").unwrap();
    c.erase("acme", "s-c-2", "dpo").unwrap();
    drop(c);
    let target = d.db();
    let src = coffer::store::open(&source, false).unwrap();
    let dst = coffer::store::open(&target, true).unwrap();
    let report = coffer::store::copy(src.as_ref(), dst.as_ref()).unwrap();
    assert_eq!(report.summary, src.summary().unwrap());
    assert!(report.summary.destroyed_data_keys > 0);
    // Not into a store that is not new.
    let again = coffer::store::copy(src.as_ref(), dst.as_ref()).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::InvalidArgument, "{again}");
    assert_eq!(dst.summary().unwrap(), report.summary, "nothing written");
    drop(dst);
    let copy = open_with_rules(&target, &key, &clock).unwrap();
    assert!(copy.audit_verify(None).unwrap().intact);
    let auditor = who("aud-1", "auditor", "statutory_audit");
    let v = copy.reveal(&kept, &auditor).unwrap();
    assert!(matches!(v.fields["phones[0]"], FieldView::Revealed(_)));
    let v = copy.reveal(&erased, &auditor).unwrap();
    assert_eq!(v.fields["phones[0]"], FieldView::Shredded);
    // The copy goes on: a new seal there opens.
    let more = copy.seal(customer("c-3", "13700000000"), "import").unwrap();
    assert!(matches!(
        copy.reveal(&more, &auditor).unwrap().fields["phones[0]"],
        FieldView::Revealed(_)
    ));
    assert!(copy.audit_verify(None).unwrap().intact);
}
