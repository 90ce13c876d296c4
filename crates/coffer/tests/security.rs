//! Attacks on the access paths (issue 15): search as a lookup oracle, rate-limit windows moved
//! by the request, and reveals racing each other between handles.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use coffer::clock::FixedClock;
use coffer::report::{IncidentQuery, ReportOptions};
use coffer::{Coffer, ErrorKind, FieldView, MasterKey};
use time::macros::datetime;

mod common;
use common::{Dir, clock, customer, open_with_rules, who};

fn open(d: &Dir, key: &MasterKey, clock: &Arc<FixedClock>) -> Coffer {
    open_with_rules(&d.db(), key, clock).unwrap()
}

fn entries_of(c: &Coffer, kind: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    c.audit_export(&mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == kind)
        .collect()
}

/// A clerk sees `139****5678` and tries the 10^4 completions through search. The rate limit
/// (200 sensitive fields or searched values an hour) stops the guessing long before it
/// finishes; every attempt is in the trail, and the incident report shows it.
#[test]
fn guessing_a_masked_phone_through_search_is_stopped_and_reported() {
    let d = Dir::new("guess");
    let key = MasterKey::generate().unwrap();
    let clock = clock();
    let c = open(&d, &key, &clock);
    let env = c.seal(customer("c-1", "13912345678"), "import").unwrap();
    let clerk = who("clerk-9", "clerk", "bookkeeping");
    let view = c.reveal(&env, &clerk).unwrap();
    assert_eq!(
        view.fields["phones[0]"],
        FieldView::Masked("139****5678".into())
    );
    // The phone's column holds this token; the attacker looks for it among the guesses.
    let wanted = env.index()["phones[0]"]["1"].clone();
    // The guesses whose token is the phone's. Tokens are 16 bits wide on purpose (many phones
    // share one), so about one guess in 65,536 matches without being the phone: a false lead.
    let mut matched: Vec<String> = Vec::new();
    let mut refused = None;
    for chunk in 0..100 {
        let guesses: Vec<String> = (chunk * 100..chunk * 100 + 100)
            .map(|n| format!("139{n:04}5678"))
            .collect();
        let refs: Vec<&str> = guesses.iter().map(String::as_str).collect();
        match c.search_many(&clerk, "phones[]", &refs) {
            Ok(a) => matched.extend(
                guesses
                    .iter()
                    .zip(&a.tokens)
                    .filter(|(_, t)| t[0].token == wanted)
                    .map(|(g, _)| g.clone()),
            ),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
                assert!(!e.to_string().contains("139"), "{e}");
                refused = Some(chunk);
                break;
            }
        }
    }
    // The example policy allows 300 contact searches an hour: the fourth hundred is refused.
    assert_eq!(refused, Some(3));
    // The phone (1234) is beyond the 300 guesses allowed: whatever matched is a false lead.
    assert!(
        !matched.iter().any(|g| g == "13912345678"),
        "the phone is not among the first 300 guesses"
    );
    assert!(matched.len() <= 2, "{} false leads in 300", matched.len());
    // Two hours later the window has slid and searching runs again, at 300 an hour (a
    // policy sets it as low as the work needs).
    clock.advance(time::Duration::hours(2));
    assert!(c.search_many(&clerk, "phones[]", &["13900005678"]).is_ok());

    // The trail holds every search (allowed or refused) and the alert, and never a value.
    let searches = entries_of(&c, "search");
    assert_eq!(searches.len(), 5);
    assert_eq!(searches[0]["detail"]["count"], "100");
    assert_eq!(searches[0]["tenant"], "acme");
    assert_eq!(searches[0]["purpose"], "bookkeeping");
    assert!(
        searches[0]["fields"]["phones[]"]
            .as_str()
            .unwrap()
            .starts_with("mask:")
    );
    assert!(
        searches[3]["fields"]["phones[]"]
            .as_str()
            .unwrap()
            .starts_with("deny:")
    );
    let alerts = entries_of(&c, "rate_limit.exceeded");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["detail"]["limit"], "contact-searches");
    let mut all = Vec::new();
    c.audit_export(&mut all).unwrap();
    let all = String::from_utf8(all).unwrap();
    assert!(!all.contains("5678"), "no guessed value in the trail");

    // The incident report on the clerk's account shows the searches and the alert.
    let mut dpo = who("dpo-1", "privacy_officer", "data_protection");
    dpo.context.ticket = Some("INC-1".into());
    let r = c
        .affected(
            &IncidentQuery {
                principal: Some("clerk-9".into()),
                // The window ends before its end (`until` is exclusive): past the last search.
                until: Some("2026-12-02".into()),
                ..Default::default()
            },
            &dpo,
            &ReportOptions::default(),
        )
        .unwrap();
    assert_eq!(r.searches, 5);
    assert_eq!(r.searched_values, 401);
    assert_eq!(r.rate_limit_alerts, 1);
    let report = coffer::report::Report::Incident(r);
    assert!(report.to_markdown().contains("rate-limit alerts"));
}

/// Search is decided per field by the policy's `search` action, default deny; a denial is
/// audited; the tenant is the principal's own.
#[test]
fn search_is_decided_audited_and_tenant_bound() {
    let d = Dir::new("decided");
    let key = MasterKey::generate().unwrap();
    let c = open(&d, &key, &clock());
    let env = c.seal(customer("c-1", "13912345678"), "import").unwrap();
    let token = env.index()["id_documents[0].number"]["1"].clone();
    let field = "id_documents[].number";

    let accountant = who("acc-1", "accountant", "payments");
    let a = c
        .search(&accountant, field, "110101 19800101 007x")
        .unwrap();
    assert_eq!(a.tokens[0][0].token, token, "normalised as sealing does");
    assert!(a.audit_seq > 0);
    // Marketing never searches identity numbers; the auditor's rule has no search action.
    for (role, purpose) in [("marketing", "marketing"), ("auditor", "statutory_audit")] {
        let e = c
            .search(&who("x-1", role, purpose), field, "11010119800101007X")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AccessDenied, "{role}: {e}");
        assert!(!e.to_string().contains("1101011980"), "{e}");
    }
    // The accountant for a purpose the rule does not serve: denied.
    let e = c
        .search(
            &who("acc-1", "accountant", "marketing"),
            field,
            "11010119800101007X",
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AccessDenied);
    let searches = entries_of(&c, "search");
    assert_eq!(
        searches.len(),
        4,
        "allowed and denied searches are all audited"
    );
    assert_eq!(searches[0]["fields"][field], "reveal");
    assert_eq!(searches[0]["detail"]["epochs"], "1");
    assert!(
        searches[1]["fields"][field]
            .as_str()
            .unwrap()
            .starts_with("deny:")
    );
    // Another tenant's accountant gets its own tenant's token, which finds nothing here.
    let mut other = accountant.clone();
    other.principal.tenant = "globex".into();
    let a = c.search(&other, field, "11010119800101007X").unwrap();
    assert_ne!(a.tokens[0][0].token, token);
    // No policy, no search.
    let bare = Coffer::open(d.db(), &key).unwrap();
    assert_eq!(
        bare.search(&accountant, field, "11010119800101007X")
            .unwrap_err()
            .kind(),
        ErrorKind::Unsupported
    );
}

/// After an erasure that restricts the identity category to the statutory purposes, a search
/// for another purpose names the subject to leave out.
#[test]
fn restricted_subjects_are_withheld_from_search() {
    let d = Dir::new("withheld");
    let key = MasterKey::generate().unwrap();
    let c = open(&d, &key, &clock());
    c.seal(customer("c-1", "13912345678"), "import").unwrap();
    c.seal(customer("c-2", "13912345679"), "import").unwrap();
    let answer = c.erase("acme", "s-c-1", "dpo").unwrap();
    assert!(
        answer
            .items
            .iter()
            .any(|i| i.category == "identity" && i.outcome == "restricted"),
        "{answer:?}"
    );
    let a = c
        .search(
            &who("acc-1", "accountant", "payments"),
            "id_documents[].number",
            "11010119800101007X",
        )
        .unwrap();
    assert_eq!(a.withheld_subjects, vec!["s-c-1".to_owned()]);
}

/// The request's time neither moves the rate-limit window nor passes far from the clock.
#[test]
fn a_request_dated_elsewhere_is_refused_and_moves_no_window() {
    let d = Dir::new("time");
    let key = MasterKey::generate().unwrap();
    let clock = clock();
    let c = open(&d, &key, &clock);
    let envs = seal_many(&c, 201);
    let accountant = who("acc-1", "accountant", "payments");
    // One sensitive field (the ID number) per record: 200 fill the hour's limit.
    let views = c.reveal_many(&envs[..200], &accountant).unwrap();
    assert_eq!(ids_revealed(&views), 200);
    let limited = |v: &coffer::View| matches!(&v.fields["id_documents[0].number"], FieldView::Denied(r) if r.contains("rate"));
    assert!(limited(&c.reveal(&envs[200], &accountant).unwrap()));
    // A request dated a year ahead is refused, and does not wipe the principal's history.
    let mut ahead = accountant.clone();
    ahead.context.time = Some(datetime!(2027-12-01 10:00 +08:00));
    let e = c.reveal(&envs[200], &ahead).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains("context.time"), "{e}");
    let e = c
        .search(&ahead, "id_documents[].number", "11010119800101007X")
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(limited(&c.reveal(&envs[200], &accountant).unwrap()));
    // A time near the clock (its own offset kept for hour conditions) is accepted.
    let mut near = accountant.clone();
    near.context.time = Some(datetime!(2026-12-01 02:01 UTC));
    assert!(limited(&c.reveal(&envs[200], &near).unwrap()));
}

fn seal_many(c: &Coffer, n: usize) -> Vec<coffer::Envelope> {
    c.seal_many(
        (0..n)
            .map(|i| customer(&format!("c-{i}"), "13912345678"))
            .collect(),
        "import",
    )
    .unwrap()
    .into_iter()
    .map(Result::unwrap)
    .collect()
}

fn ids_revealed(views: &[coffer::View]) -> usize {
    views
        .iter()
        .filter(|v| v.revealed("id_documents[0].number").is_some())
        .count()
}

/// Two handles (two processes) reveal under one principal's limit at the same moment: each
/// reads the count inside the transaction that adds to it, so the second waits for the first
/// and counts from its figure. Were the read outside, both would read 0, both admit 150, and
/// together reveal 300 ID numbers under a limit of 200.
#[test]
fn two_handles_cannot_both_spend_the_same_rate_budget() {
    let d = Dir::new("race");
    let key = MasterKey::generate().unwrap();
    let clock = clock();
    let a = open(&d, &key, &clock);
    let b = Arc::new(open(&d, &key, &clock));
    let envs = seal_many(&a, 300);
    let accountant = who("acc-1", "accountant", "payments");
    let (first, second) = (envs[..150].to_vec(), envs[150..].to_vec());
    // When handle a has read the count, handle b reveals its batch from another thread; a
    // gives it time to get ahead, then decides and commits.
    let started = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel();
    let (b2, acc2) = (Arc::clone(&b), accountant.clone());
    a.set_pause_hook(move |point| {
        if point == "reveal.decide" && !started.swap(true, Ordering::SeqCst) {
            let (b, acc, second, tx) = (Arc::clone(&b2), acc2.clone(), second.clone(), tx.clone());
            std::thread::spawn(move || {
                let _ = tx.send(b.reveal_many(&second, &acc));
            });
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    });
    let mine = a.reveal_many(&first, &accountant).unwrap();
    let theirs = rx.recv().unwrap().unwrap();
    assert_eq!(ids_revealed(&mine), 150, "the first batch fits");
    assert_eq!(
        ids_revealed(&mine) + ids_revealed(&theirs),
        200,
        "the two handles together stay within the limit of 200"
    );
}

/// A master-key rotation reads the keyring inside the transaction that rewrites it. Another
/// handle that starts a KEK rotation at that moment waits, then finds its master key retired
/// and adds nothing: before, the rotation wrote back the rows it had read earlier and deleted
/// the KEK added meanwhile (and every data key wrapped under it with it).
#[test]
fn a_master_key_rotation_loses_no_key_added_meanwhile() {
    let d = Dir::new("master-race");
    let (old, new) = (
        MasterKey::generate().unwrap(),
        MasterKey::generate().unwrap(),
    );
    let clock = clock();
    let a = open(&d, &old, &clock);
    let b = Arc::new(open(&d, &old, &clock));
    let env = a.seal(customer("c-1", "13912345678"), "import").unwrap();
    let started = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel();
    let b2 = Arc::clone(&b);
    a.set_pause_hook(move |point| {
        if point == "rotate_master_key.rewrap" && !started.swap(true, Ordering::SeqCst) {
            let (b, tx) = (Arc::clone(&b2), tx.clone());
            std::thread::spawn(move || {
                let _ = tx.send(b.rotate_kek("ops-b"));
            });
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    });
    a.rotate_master_key(&new, "ops-a").unwrap();
    let theirs = rx.recv().unwrap();
    assert_eq!(
        theirs.unwrap_err().kind(),
        ErrorKind::WrongMasterKey,
        "b's master key was retired while it waited"
    );
    // Every key in the store opens with the new master key, and the data still reveals.
    let c = open(&d, &new, &clock);
    let v = c
        .reveal(&env, &who("acc-1", "accountant", "payments"))
        .unwrap();
    assert_eq!(
        v.revealed("id_documents[0].number"),
        Some("11010119800101007X")
    );
    assert_eq!(
        Coffer::open(d.db(), &old).unwrap_err().kind(),
        ErrorKind::WrongMasterKey
    );
    // b, reopened with the new key, rotates its KEK now.
    drop(b);
    assert_eq!(c.rotate_kek("ops-b").unwrap(), 2);
}

/// An erasure reads the legal holds inside the transaction that destroys: a hold placed by
/// another handle at that moment cannot commit between the check and the destruction; it
/// waits, and lands after the erasure in the trail.
#[test]
fn a_hold_cannot_slip_between_the_check_and_the_destruction() {
    let d = Dir::new("hold-race");
    let key = MasterKey::generate().unwrap();
    let clock = clock();
    let a = open(&d, &key, &clock);
    let b = Arc::new(open(&d, &key, &clock));
    a.seal(customer("c-1", "13912345678"), "import").unwrap();
    let started = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel();
    let rx = std::sync::Mutex::new(rx);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let b2 = Arc::clone(&b);
    a.set_pause_hook(move |point| {
        if point == "destroy.check_holds" && !started.swap(true, Ordering::SeqCst) {
            let (b, tx) = (Arc::clone(&b2), tx.clone());
            std::thread::spawn(move || {
                let _ = tx.send(b.place_hold(
                    coffer::Hold {
                        tenant: "acme".into(),
                        subject: Some("s-c-1".into()),
                        category: None,
                        reason: "litigation".into(),
                        until: None,
                        open_matter: true,
                    },
                    "legal",
                ));
            });
            // The hold must not commit while the erasure is between its check and its
            // destruction.
            let waited = rx
                .lock()
                .unwrap()
                .recv_timeout(std::time::Duration::from_millis(400));
            let _ = done_tx.send(waited.map(|r| r.is_ok()));
        }
    });
    let answer = a.erase("acme", "s-c-1", "dpo").unwrap();
    assert!(answer.items.iter().any(|i| i.outcome == "destroyed"));
    let during = done_rx.recv().unwrap();
    assert!(
        during.is_err(),
        "the hold committed inside the erasure: {during:?}"
    );
    // It commits afterwards, after the erasure's entries.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(b.holds(Some("acme")).unwrap().len(), 1);
    let kinds: Vec<String> = {
        let mut out = Vec::new();
        a.audit_export(&mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let erasure = kinds.iter().position(|k| k == "erasure").unwrap();
    let hold = kinds.iter().position(|k| k.starts_with("hold")).unwrap();
    assert!(erasure < hold, "{kinds:?}");
}

/// An archive export hands every field over to whoever holds the archive key: it needs the
/// policy's `export` action on every field, is recorded once per data subject (so the subject
/// report and the incident scope see it), and no longer ships the store's envelope MAC key.
#[test]
fn archive_export_is_an_audited_access() {
    let d = Dir::new("export");
    let key = MasterKey::generate().unwrap();
    let c = open(&d, &key, &clock());
    let envs = seal_many(&c, 3);
    let archive_key = [9u8; 32];
    // A clerk (masked contacts) and an accountant (no export of contacts) may not.
    for (role, purpose) in [("clerk", "bookkeeping"), ("accountant", "payments")] {
        let e = c
            .archive_export(&envs, &archive_key, &who("x-1", role, purpose))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AccessDenied, "{role}: {e}");
        assert!(e.to_string().contains("nothing was exported"), "{e}");
    }
    assert!(entries_of(&c, "archive.export").is_empty());
    // The auditor, with a ticket and a destination in CN, may.
    let mut auditor = who("aud-1", "auditor", "statutory_audit");
    auditor.context.destination_region = Some("CN".into());
    let bundle = c.archive_export(&envs, &archive_key, &auditor).unwrap();
    assert!(bundle.envelope_mac_key.is_none());
    assert!(!bundle.to_json().contains("envelope_mac_key"));
    assert_eq!(bundle.format, "coffer-archive/2");
    let check = bundle
        .verify(&c.signing_public_key(), Some(&archive_key))
        .unwrap();
    assert!(check.contents_checked);
    // A changed envelope in the bundle breaks its signature.
    let mut forged = bundle.clone();
    forged.envelopes[0] = forged.envelopes[0].replacen("\"c-0\"", "\"c-1\"", 1);
    assert_eq!(
        forged
            .verify(&c.signing_public_key(), Some(&archive_key))
            .unwrap_err()
            .kind(),
        ErrorKind::Integrity
    );
    let exports = entries_of(&c, "archive.export");
    assert_eq!(exports.len(), 3, "one entry per subject");
    assert_eq!(exports[0]["subject"], "s-c-0");
    assert_eq!(exports[0]["purpose"], "statutory_audit");
    assert_eq!(exports[0]["fields"]["id_documents[0].number"], "export");
    // The subject's own report lists the export among the accesses; the incident scope of the
    // auditor's account counts it as data that left in a readable form.
    let mut dpo = who("dpo-1", "privacy_officer", "data_protection");
    dpo.context.ticket = Some("DSAR-1".into());
    let report = c
        .subject_report("acme", "s-c-1", &[], &dpo, &ReportOptions::default())
        .unwrap();
    assert!(
        report.accesses.iter().any(|a| a.actor == "aud-1"
            && a.fields.get("phones[0]").map(String::as_str) == Some("export")),
        "{:?}",
        report.accesses
    );
    let r = c
        .affected(
            &IncidentQuery {
                principal: Some("aud-1".into()),
                until: Some("2026-12-02".into()),
                ..Default::default()
            },
            &dpo,
            &ReportOptions::default(),
        )
        .unwrap();
    assert_eq!(r.subjects.len(), 3);
}

/// The store and the files SQLite keeps beside it are readable by their owner only, whatever
/// the process's umask.
#[cfg(unix)]
#[test]
fn the_store_files_are_private() {
    if !common::sqlite_only("the_store_files_are_private") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let d = Dir::new("perms");
    let c = open(&d, &MasterKey::generate().unwrap(), &clock());
    c.seal(customer("c-1", "13912345678"), "import").unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", d.db().display()));
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is {mode:o}", p.display());
    }
}

/// A wrong master key is refused before anything is written: not a pragma, not a migration.
/// The store made by an earlier build (schema 3) is the case where a migration would run.
#[test]
fn a_wrong_master_key_leaves_an_older_store_untouched() {
    if !common::sqlite_only("a_wrong_master_key_leaves_an_older_store_untouched") {
        return;
    }
    let d = Dir::new("wrong-old");
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/store-v3");
    std::fs::copy(fixture.join("store.db"), d.db()).unwrap();
    let before = std::fs::read(d.db()).unwrap();
    let e = Coffer::open(d.db(), &MasterKey::generate().unwrap()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongMasterKey);
    assert_eq!(
        std::fs::read(d.db()).unwrap(),
        before,
        "the store file changed"
    );
    for suffix in ["-wal", "-journal"] {
        let p = PathBuf::from(format!("{}{suffix}", d.db().display()));
        assert!(
            !p.exists() || std::fs::metadata(&p).unwrap().len() == 0,
            "{} was written",
            p.display()
        );
    }
    // The right key opens (and migrates) it.
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("fixture.json")).unwrap())
            .unwrap();
    let hex = f["master_key_hex"].as_str().unwrap();
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let c = Coffer::open(d.db(), &MasterKey::from_bytes(&bytes).unwrap()).unwrap();
    assert!(c.audit_verify(None).unwrap().intact);
}

/// Verification reads the trail as it is now: a handle that saw a tampered row reports the
/// trail intact again once the row is restored (and broken again if it is changed again).
#[test]
fn verification_follows_the_trail_as_it_is() {
    let d = Dir::new("retamper");
    let key = MasterKey::generate().unwrap();
    let c = open(&d, &key, &clock());
    c.seal(customer("c-1", "13912345678"), "import").unwrap();
    assert!(c.audit_verify(None).unwrap().intact);
    let seq = coffer::store::open(d.db(), false)
        .unwrap()
        .audit_rows(1, 100)
        .unwrap()
        .into_iter()
        .find(|r| r.entry.contains("\"kind\":\"seal\""))
        .unwrap()
        .seq;
    let changed = common::sql(
        &d.db(),
        &format!("UPDATE audit SET entry = replace(entry, 'import', 'imp0rt') WHERE seq = {seq}"),
    );
    assert_eq!(changed, 1);
    let report = c.audit_verify(None).unwrap();
    assert!(!report.intact);
    assert_eq!(report.first_problem.map(|p| p.0), Some(seq));
    common::sql(
        &d.db(),
        &format!("UPDATE audit SET entry = replace(entry, 'imp0rt', 'import') WHERE seq = {seq}"),
    );
    assert!(
        c.audit_verify(None).unwrap().intact,
        "the restored row is seen"
    );
    let mut dpo = who("dpo-1", "privacy_officer", "data_protection");
    dpo.context.ticket = Some("INC-2".into());
    let r = c
        .affected(&IncidentQuery::default(), &dpo, &ReportOptions::default())
        .unwrap();
    assert!(r.trail.intact);
}

/// Restoring an archive into a store that already holds a key of the same id: the same key is
/// fine (a restore can be repeated), a different one is refused with nothing restored (the
/// local key was silently kept, so the archived fields did not open), and a destroyed one stays
/// destroyed.
#[test]
fn archive_restore_never_swaps_or_resurrects_a_key() {
    let (da, db, dc) = (Dir::new("ar-a"), Dir::new("ar-b"), Dir::new("ar-c"));
    let clock = clock();
    let a = open(&da, &MasterKey::generate().unwrap(), &clock);
    let envs = seal_many(&a, 2);
    let mut auditor = who("aud-1", "auditor", "statutory_audit");
    auditor.context.destination_region = Some("CN".into());
    let archive_key = [5u8; 32];
    let bundle = a.archive_export(&envs, &archive_key, &auditor).unwrap();
    let pk = a.signing_public_key();

    // Into a fresh store, twice: the second restore imports nothing new and still opens.
    let b = open(&db, &MasterKey::generate().unwrap(), &clock);
    let restored = b
        .archive_restore(&bundle, &archive_key, &pk, "ops")
        .unwrap();
    let again = b
        .archive_restore(&bundle, &archive_key, &pk, "ops")
        .unwrap();
    let v = b.reveal(&again[0], &auditor).unwrap();
    assert_eq!(
        v.revealed("id_documents[0].number"),
        Some("11010119800101007X")
    );
    // Erase the first customer in b: its contacts are destroyed; a third restore keeps them so.
    let answer = b.erase("acme", "s-c-0", "dpo").unwrap();
    assert!(
        answer
            .items
            .iter()
            .any(|i| i.category == "contact" && i.outcome == "destroyed")
    );
    let third = b
        .archive_restore(&bundle, &archive_key, &pk, "ops")
        .unwrap();
    let v = b.reveal(&third[0], &auditor).unwrap();
    assert_eq!(v.fields["phones[0]"], FieldView::Shredded);
    assert!(
        !third[0].index().contains_key("phones[0]"),
        "no token recomputed from a destroyed key"
    );
    let restores = entries_of(&b, "archive.restore");
    assert_eq!(restores[2]["detail"]["destroyed_kept"], "1");
    let _ = restored;

    // A store that made its own key for the same subject and category: refused, unchanged.
    let c = open(&dc, &MasterKey::generate().unwrap(), &clock);
    let own = seal_many(&c, 1);
    let before = c.audit_len().unwrap();
    let e = c
        .archive_restore(&bundle, &archive_key, &pk, "ops")
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert!(e.to_string().contains("different key"), "{e}");
    assert_eq!(c.audit_len().unwrap(), before, "nothing restored");
    let v = c.reveal(&own[0], &auditor).unwrap();
    assert_eq!(
        v.revealed("id_documents[0].number"),
        Some("11010119800101007X")
    );
}

/// After a destruction, the destroyed key's wrapped bytes are nowhere in the store's files:
/// not in the main file, not in the write-ahead log, not in a free page. (Before, the old page
/// stayed in the log, or in the main file until SQLite's next automatic checkpoint.)
#[test]
fn a_destroyed_key_leaves_no_copy_in_the_store_files() {
    if !common::sqlite_only("a_destroyed_key_leaves_no_copy_in_the_store_files") {
        return;
    }
    let d = Dir::new("scan");
    let key = MasterKey::generate().unwrap();
    let c = open(&d, &key, &clock());
    c.seal(customer("c-1", "13912345678"), "import").unwrap();
    let wrapped: Vec<u8> = rusqlite::Connection::open(d.db())
        .unwrap()
        .query_row(
            "SELECT wrapped FROM data_keys WHERE subject = 's-c-1' AND category = 'contact'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(wrapped.len() >= 32);
    let found = |bytes: &[u8]| {
        bytes
            .windows(wrapped.len())
            .any(|w| w == wrapped.as_slice())
    };
    let files = || {
        ["", "-wal"]
            .iter()
            .map(|s| PathBuf::from(format!("{}{s}", d.db().display())))
            .filter(|p| p.exists())
            .map(|p| std::fs::read(p).unwrap())
            .collect::<Vec<_>>()
    };
    assert!(
        files().iter().any(|b| found(b)),
        "the key is on disk before"
    );
    let answer = c.erase("acme", "s-c-1", "dpo").unwrap();
    assert!(
        answer
            .items
            .iter()
            .any(|i| i.category == "contact" && i.outcome == "destroyed")
    );
    // The handle is still open (no checkpoint on close has happened).
    for bytes in files() {
        assert!(
            !found(&bytes),
            "a copy of the destroyed key is still in the store's files"
        );
    }
}

/// A destroyed category reads shredded for every effect: a clerk, who sees contacts masked,
/// used to get the envelope's stored masked form (`139****5678`) after the contact key was
/// destroyed.
#[test]
fn a_destroyed_category_reads_shredded_even_where_it_was_masked() {
    let d = Dir::new("shredded-mask");
    let key = MasterKey::generate().unwrap();
    let c = open(&d, &key, &clock());
    let env = c.seal(customer("c-1", "13912345678"), "import").unwrap();
    let clerk = who("clerk-1", "clerk", "bookkeeping");
    assert_eq!(
        c.reveal(&env, &clerk).unwrap().fields["phones[0]"],
        FieldView::Masked("139****5678".into())
    );
    let answer = c.erase("acme", "s-c-1", "dpo").unwrap();
    assert!(
        answer
            .items
            .iter()
            .any(|i| i.category == "contact" && i.outcome == "destroyed")
    );
    let v = c.reveal(&env, &clerk).unwrap();
    assert_eq!(v.fields["phones[0]"], FieldView::Shredded);
    // A fresh handle, with nothing cached, says the same.
    drop(c);
    let c = open(&d, &key, &clock());
    assert_eq!(
        c.reveal(&env, &clerk).unwrap().fields["phones[0]"],
        FieldView::Shredded
    );
}

/// Envelope version 2 (issue 16): the standard masked forms are sealed under a key derived
/// from their category's data key, so nothing of a destroyed category stays readable in the
/// envelope; a redaction then removes the dead ciphertexts, masked forms and blind-index
/// tokens, and a redacted envelope cannot be forged or un-redacted.
#[test]
fn masks_die_with_their_key_and_redaction_removes_the_rest() {
    let d = Dir::new("redact");
    let key = MasterKey::generate().unwrap();
    let c = open(&d, &key, &clock());
    let env = c.seal(customer("c-1", "13912345678"), "import").unwrap();
    let other = c.seal(customer("c-2", "13800001111"), "import").unwrap();
    let text = env.to_json().to_string();
    assert!(!text.contains("139****5678"), "the masked form is sealed");
    let token = env.index()["phones[0]"].values().next().unwrap().clone();
    assert!(text.contains(&token));
    let clerk = who("clerk-1", "clerk", "bookkeeping");
    assert_eq!(
        c.reveal(&env, &clerk).unwrap().fields["phones[0]"],
        FieldView::Masked("139****5678".into())
    );
    // A sealed masked form moved onto another record's envelope does not open (its MAC, and
    // the mask key's record binding, refuse it).
    let mut moved: serde_json::Value = serde_json::from_str(&other.to_json()).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
    moved["masked"]["phones[0]"] = theirs["masked"]["phones[0]"].clone();
    assert_eq!(
        c.open_envelope(&moved.to_string()).unwrap_err().kind(),
        ErrorKind::Integrity
    );

    // Nothing to redact while the keys live (the envelope is already version 2).
    let r = c.redact(&env, "ops").unwrap();
    assert!(!r.changed && r.shredded_categories.is_empty() && r.clear_index.is_empty());

    c.erase("acme", "s-c-1", "dpo").unwrap();
    let r = c.redact(&env, "ops").unwrap();
    assert!(r.changed);
    assert_eq!(r.shredded_categories, vec!["contact".to_owned()]);
    assert_eq!(r.clear_index, vec!["phones[0]".to_owned()]);
    let redacted = r.envelope.to_json().to_string();
    assert!(!redacted.contains(&token), "the dead token is gone");
    assert!(
        !redacted.contains(
            &theirs["fields"]["phones[0]"]["ct"]
                .as_str()
                .unwrap()
                .to_owned()
        )
    );
    assert!(
        !redacted.contains(
            &theirs["masked"]["phones[0]"]["ct"]
                .as_str()
                .unwrap()
                .to_owned()
        )
    );
    // The redacted envelope opens, and the removed field reads shredded for every effect.
    let again = c.open_envelope(&redacted).unwrap();
    assert_eq!(
        c.reveal(&again, &clerk).unwrap().fields["phones[0]"],
        FieldView::Shredded
    );
    let marketing = who("m-1", "marketing", "marketing");
    assert_eq!(
        c.reveal(&again, &marketing).unwrap().fields["phones[0]"],
        FieldView::Shredded
    );
    // Its list of shredded fields is under the MAC: dropping it (to pass the envelope off as
    // never having had the field) or un-redacting is refused.
    let mut forged: serde_json::Value = serde_json::from_str(&redacted).unwrap();
    forged.as_object_mut().unwrap().remove("shredded");
    assert_eq!(
        c.open_envelope(&forged.to_string()).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    let mut back: serde_json::Value = serde_json::from_str(&redacted).unwrap();
    back["fields"]["phones[0]"] = theirs["fields"]["phones[0]"].clone();
    assert_eq!(
        c.open_envelope(&back.to_string()).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    // A changed envelope is refused before anything is redacted, and is audited nowhere.
    let mut tampered: serde_json::Value = serde_json::from_str(&text).unwrap();
    tampered["record"] = "c-9".into();
    let err = coffer::Envelope::from_json(&tampered.to_string())
        .and_then(|e| c.redact(&e, "ops"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert_eq!(entries_of(&c, "redact").len(), 2);
}
