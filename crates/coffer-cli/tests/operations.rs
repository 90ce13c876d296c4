//! End-to-end: an operator's day with the `coffer` binary, and what it does with bad input.

use std::path::Path;
use std::process::Command;

mod common;

use common::{Env, POLICY, RETENTION, text};

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn an_operators_day() {
    let env = Env::new("day");
    env.init();
    // A store is never overwritten.
    let again = env.run(&["init"], b"");
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));

    // 10,000 rows, every 250th with a wrong ID check character.
    let o = env.run(
        &[
            "generate",
            "--rows",
            "10000",
            "--invalid-every",
            "250",
            "--tenant",
            "acme",
        ],
        b"",
    );
    assert!(o.status.success());
    std::fs::write(env.path("customers.csv"), &o.stdout).unwrap();
    let o = env.run(
        &[
            "seal",
            "customers.csv",
            "--out",
            "envelopes.jsonl",
            "--json",
        ],
        b"",
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "rejects make exit code 1: {}",
        text(&o)
    );
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["sealed"], 9960);
    assert_eq!(summary["rejected"], 40);
    let envelopes = lines(&env.path("envelopes.jsonl"));
    assert_eq!(envelopes.len(), 9960);
    // Input order is kept across the workers (by default one more than the cores, so at least
    // two): every sealed row in turn, the rejected ones left out.
    assert_eq!(envelopes[0]["record"], "c-0000001");
    assert_eq!(
        envelopes[9959]["record"], "c-0009999",
        "c-0010000 is invalid"
    );
    let expected_ids: Vec<String> = (1..=10_000)
        .filter(|k| k % 250 != 0)
        .map(|k| format!("c-{k:07}"))
        .collect();
    let ids: Vec<&str> = envelopes
        .iter()
        .map(|e| e["record"].as_str().unwrap())
        .collect();
    assert_eq!(ids, expected_ids);
    let rejects = lines(&env.path("envelopes.jsonl.rejects.jsonl"));
    let rejected: Vec<u64> = rejects
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (1..=40).map(|k| k * 250 + 1).collect();
    assert_eq!(
        rejected, expected,
        "exactly the invalid rows, by line (header is line 1)"
    );
    for r in &rejects {
        assert_eq!(r["report"]["issues"][0]["code"], "resident_id.checksum");
    }
    let rejects_text = std::fs::read_to_string(env.path("envelopes.jsonl.rejects.jsonl")).unwrap();
    let csv = std::fs::read_to_string(env.path("customers.csv")).unwrap();
    let bad_row: Vec<&str> = csv.lines().nth(250).unwrap().split(',').collect();
    assert!(
        !rejects_text.contains(bad_row[6]),
        "no ID number in the rejects file"
    );
    assert!(
        !rejects_text.contains(bad_row[4]),
        "no name in the rejects file"
    );

    // Search: the token printed is the one in the envelope.
    let row: Vec<&str> = csv.lines().nth(1234).unwrap().split(',').collect();
    let id = row[6];
    let spaced = format!("{} {} {}\n", &id[..6], &id[6..14], &id[14..]);
    let searcher = [
        "--principal",
        "u-7",
        "--tenant",
        "acme",
        "--role",
        "accountant",
        "--purpose",
        "payments",
    ];
    let o = env.run(
        &[
            &["search", "--field", "id_documents[].number", "--json"][..],
            &searcher[..],
        ]
        .concat(),
        spaced.as_bytes(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let answer: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        answer["audit_seq"].as_u64().unwrap() > 0,
        "the search is audited"
    );
    let token = answer["tokens"][0][0]["token"].as_str().unwrap();
    // Marketing may not search ID numbers: refused (exit 3), and nothing printed.
    let o = env.run(
        &[
            "search",
            "--field",
            "id_documents[].number",
            "--principal",
            "m-1",
            "--tenant",
            "acme",
            "--role",
            "marketing",
            "--purpose",
            "marketing",
        ],
        spaced.as_bytes(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(o.stdout.is_empty());
    let hits: Vec<&serde_json::Value> = envelopes
        .iter()
        .filter(|e| e["index"]["id_documents[0].number"]["1"] == token)
        .collect();
    assert!(hits.iter().any(|e| e["record"] == row[0]), "{token}");

    // Reveal as an accountant for payments: bank account in clear, contacts denied.
    let one = serde_json::to_string(hits.iter().find(|e| e["record"] == row[0]).unwrap()).unwrap();
    let o = env.run(
        &[
            "reveal",
            "--principal",
            "u-7",
            "--tenant",
            "acme",
            "--role",
            "accountant",
            "--purpose",
            "payments",
            "--json",
        ],
        format!("{one}\n").as_bytes(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let view: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(view["fields"]["id_documents[0].number"]["value"], id);
    assert_eq!(view["fields"]["phones[0]"]["state"], "denied");
    // Another tenant's principal gets nothing.
    let o = env.run(
        &[
            "reveal",
            "--principal",
            "x",
            "--tenant",
            "other",
            "--role",
            "accountant",
            "--purpose",
            "payments",
            "--json",
        ],
        format!("{one}\n").as_bytes(),
    );
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains(id),
        "{}",
        text(&o)
    );

    // Policy check on a broken policy: exit code 1 and every problem, with lines.
    let broken = std::fs::read_to_string(POLICY)
        .unwrap()
        .replace(
            "roles = [\"clerk\"]\nactions = [\"read\", \"search\"]\nfields = [\"name\"",
            "roles = [\"clerc\"]\nactions = [\"read\", \"search\"]\nfields = [\"name\"",
        )
        .replace(
            "purposes = [\"statutory_audit\"]",
            "purposes = [\"statutory-audit\"]",
        )
        .replace(
            "fields = [\"name\", \"emails[]\", \"phones[]\"]",
            "fields = [\"name\", \"emails[]\", \"fax[]\"]",
        );
    std::fs::write(env.path("broken.toml"), broken).unwrap();
    let o = env.run(&["policy", "check", "broken.toml"], b"");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    for want in [
        "clerc",
        "statutory-audit",
        "fax[]",
        "3 problem(s)",
        "broken.toml:",
    ] {
        assert!(t.contains(want), "{want} in {t}");
    }
    let o = env.run(&["policy", "check", POLICY], b"");
    assert!(o.status.success(), "{}", text(&o));
    let o = env.run(
        &[
            "policy",
            "explain",
            "--principal",
            "a",
            "--tenant",
            "acme",
            "--role",
            "auditor",
            "--purpose",
            "statutory_audit",
        ],
        b"",
    );
    assert!(
        text(&o).contains("matched, but unmet: ticket"),
        "{}",
        text(&o)
    );

    // Hold, erase, sweep.
    let o = env.run(
        &[
            "hold",
            "add",
            "--tenant",
            "acme",
            "--subject",
            "s-0000002",
            "--reason",
            "inspection",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = env.run(&["hold", "list", "--json"], b"");
    let holds: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(holds[0]["subject"], "s-0000002");
    let o = env.run(
        &[
            "erase",
            "--tenant",
            "acme",
            "--subject",
            "s-0000003",
            "--json",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", text(&o));
    let answer: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let outcomes: Vec<&str> = answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["outcome"].as_str().unwrap())
        .collect();
    assert!(
        outcomes.contains(&"destroyed") && outcomes.contains(&"restricted"),
        "{outcomes:?}"
    );
    let o = env.run(
        &["retention", "plan", "--as-of", "2057-03-01", "--json"],
        b"",
    );
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        plan["review"].as_array().unwrap().len() > 10_000,
        "two categories per customer"
    );
    assert!(
        plan["held"].as_u64().unwrap() >= 2,
        "the held customer's keys"
    );
    let o = env.run(&["sweep", "--json"], b"");
    assert!(o.status.success(), "{}", text(&o));
    let sweep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        sweep["destroyed"].as_array().unwrap().len(),
        0,
        "nothing is due today"
    );

    // Checkpoint, then verify; then tamper and verify again.
    let o = env.run(&["audit", "checkpoint", "--out", "checkpoint.json"], b"");
    assert!(o.status.success(), "{}", text(&o));
    let o = env.run(&["audit", "verify", "--checkpoint", "checkpoint.json"], b"");
    assert!(o.status.success(), "{}", text(&o));
    let o = env.run(&["audit", "export", "--out", "audit.jsonl"], b"");
    assert!(o.status.success(), "{}", text(&o));
    let exported = std::fs::read_to_string(env.path("audit.jsonl")).unwrap();
    assert!(!exported.contains(id), "no plaintext in the audit export");
    // The CSV import sealed in batches: one stored line per batch, one expanded per customer.
    let o = env.run(
        &[
            "audit",
            "export",
            "--expanded",
            "--out",
            "events.jsonl",
            "--json",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", text(&o));
    let answer: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let events = std::fs::read_to_string(env.path("events.jsonl")).unwrap();
    assert_eq!(
        answer["entries"].as_u64(),
        Some(events.lines().count() as u64)
    );
    assert!(!events.contains(id), "no plaintext in the expanded export");
    let count = |text: &str, kind: &str| {
        text.lines()
            .filter(|l| l.contains(&format!("\"kind\":\"{kind}\"")))
            .count()
    };
    assert!(count(&exported, "seal.batch") > 0);
    assert_eq!(count(&events, "seal.batch"), 0);
    assert!(count(&events, "seal") > count(&exported, "seal.batch") + count(&exported, "seal"));
    assert!(!events.contains("\"mac\""));
    {
        let db = rusqlite::Connection::open(env.path("store.db")).unwrap();
        db.execute(
            "UPDATE audit SET entry = replace(entry, 'accountant', 'auditor') WHERE seq = (SELECT min(seq) FROM audit WHERE entry LIKE '%accountant%')",
            [],
        )
        .unwrap();
    }
    let o = env.run(&["audit", "verify", "--json"], b"");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["intact"], false);
    assert_eq!(report["first_problem"]["kind"], "changed");
}

#[test]
fn keys_and_archives_round_trip() {
    let env = Env::new("keys");
    env.init();
    let o = env.run(&["generate", "--rows", "50", "--tenant", "acme"], b"");
    std::fs::write(env.path("in.csv"), &o.stdout).unwrap();
    let o = env.run(&["seal", "in.csv", "-o", "env.jsonl", "--quiet"], b"");
    assert!(o.status.success(), "{}", text(&o));
    let o = env.run(&["keys", "rotate", "kek", "--json"], b"");
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["rewrapped"], 150, "three categories per customer");
    let o = env.run(&["keys", "rotate", "index"], b"");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        env.run(&["keygen", "--out", "archive.key"], b"")
            .status
            .success()
    );
    let o = env.run(
        &[
            "archive",
            "export",
            "env.jsonl",
            "--archive-key-file",
            "archive.key",
            "-o",
            "bundle.json",
            "--principal",
            "aud-1",
            "--tenant",
            "acme",
            "--role",
            "auditor",
            "--purpose",
            "statutory_audit",
            "--ticket",
            "AUD-1",
            "--destination-region",
            "CN",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = env.run(
        &[
            "archive",
            "verify",
            "bundle.json",
            "--archive-key-file",
            "archive.key",
            "--json",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", text(&o));
    let check: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(check["envelopes"], 50);
    assert_eq!(check["contents_checked"], true);
    // A changed bundle does not verify.
    let bundle = std::fs::read_to_string(env.path("bundle.json")).unwrap();
    std::fs::write(
        env.path("bad.json"),
        bundle.replacen("c-0000001", "c-0000999", 1),
    )
    .unwrap();
    let o = env.run(&["archive", "verify", "bad.json"], b"");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = env.run(
        &[
            "archive",
            "restore",
            "bundle.json",
            "--archive-key-file",
            "archive.key",
            "-o",
            "restored.jsonl",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(lines(&env.path("restored.jsonl")).len(), 50);
    // The master key rotates; the old key no longer opens the store.
    assert!(
        env.run(&["keygen", "--out", "new.key"], b"")
            .status
            .success()
    );
    let o = env.run(
        &[
            "keys",
            "rotate",
            "master",
            "--new-master-key-file",
            "new.key",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = env.run(&["audit", "verify"], b"");
    assert_eq!(o.status.code(), Some(4), "the old key: {}", text(&o));
    let o = env.run(&["audit", "verify", "--master-key-file", "new.key"], b"");
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn bad_input_gets_a_message_and_an_exit_code() {
    let env = Env::new("bad");
    // No store yet.
    let o = env.run(&["audit", "verify"], b"");
    assert_eq!(o.status.code(), Some(4));
    assert!(text(&o).contains("coffer init"), "{}", text(&o));
    env.init();
    // Missing file.
    let o = env.run(&["seal", "nope.csv", "-o", "out.jsonl"], b"");
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("nope.csv"), "{}", text(&o));
    // A folder where a file should be: named, and nothing written.
    std::fs::create_dir(env.path("folder.csv")).unwrap();
    let o = env.run(&["seal", "folder.csv", "-o", "out.jsonl"], b"");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("folder.csv: it is a folder"),
        "{}",
        text(&o)
    );
    assert!(!env.path("out.jsonl").exists());
    // Wrong columns: every problem named, nothing written.
    std::fs::write(env.path("cols.csv"), "id,nmae,id_number\nc-1,x,y\n").unwrap();
    let o = env.run(&["seal", "cols.csv", "-o", "out.jsonl"], b"");
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    for want in ["`nmae`", "`tenant`", "`kind`", "`id_type`"] {
        assert!(t.contains(want), "{want} in {t}");
    }
    assert!(!env.path("out.jsonl").exists());
    // Mixed encodings: the GB18030 row is rejected and named, the UTF-8 ones sealed.
    let o = env.run(&["generate", "--rows", "3", "--tenant", "acme"], b"");
    let generated = String::from_utf8(o.stdout).unwrap();
    let name = generated
        .lines()
        .nth(2)
        .unwrap()
        .split(',')
        .nth(4)
        .unwrap()
        .to_owned();
    let (before, after) = generated.split_at(generated.find(&name).unwrap());
    let mut mixed = before.as_bytes().to_vec();
    mixed.extend_from_slice(b"\xd5\xc5\xc8\xfd"); // a name in GB18030
    mixed.extend_from_slice(&after.as_bytes()[name.len()..]);
    std::fs::write(env.path("mixed.csv"), mixed).unwrap();
    let o = env.run(&["seal", "mixed.csv", "-o", "mixed.jsonl"], b"");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let rejects = lines(&env.path("mixed.jsonl.rejects.jsonl"));
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0]["line"], 3);
    assert_eq!(rejects[0]["error"]["code"], "input.encoding");
    assert_eq!(lines(&env.path("mixed.jsonl")).len(), 2);
    // A wrong master key.
    assert!(
        env.run(&["keygen", "--out", "other.key"], b"")
            .status
            .success()
    );
    let o = env.run(&["audit", "verify", "--master-key-file", "other.key"], b"");
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    // Reveal without a policy, or without a role.
    let o = env.run(
        &[
            "reveal",
            "--policy",
            "/nonexistent.toml",
            "--principal",
            "a",
            "--tenant",
            "t",
            "--role",
            "r",
            "--purpose",
            "p",
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = env.run(
        &[
            "reveal",
            "--principal",
            "a",
            "--tenant",
            "t",
            "--purpose",
            "p",
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // A malformed envelope is named by line, and nothing is revealed.
    let o = env.run(
        &[
            "reveal",
            "--principal",
            "a",
            "--tenant",
            "acme",
            "--role",
            "auditor",
            "--purpose",
            "statutory_audit",
        ],
        b"{\"not\": \"an envelope\"}\n",
    );
    // An envelope that is not well-formed fails its integrity check, like a tampered one.
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("line 1"), "{}", text(&o));
    // keygen never overwrites.
    let o = env.run(&["keygen", "--out", "master.key"], b"");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_store_locked_by_another_process_is_reported() {
    let env = Env::new("locked");
    env.init();
    let o = env.run(&["generate", "--rows", "5", "--tenant", "acme"], b"");
    std::fs::write(env.path("in.csv"), &o.stdout).unwrap();
    let db = rusqlite::Connection::open(env.path("store.db")).unwrap();
    db.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let o = env.run(
        &[
            "seal",
            "in.csv",
            "-o",
            "out.jsonl",
            "--busy-timeout-ms",
            "300",
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        text(&o).to_lowercase().contains("busy") || text(&o).contains("locked"),
        "{}",
        text(&o)
    );
    assert!(!env.path("out.jsonl").exists(), "no half-written output");
    db.execute_batch("ROLLBACK").unwrap();
    let o = env.run(&["seal", "in.csv", "-o", "out.jsonl"], b"");
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn an_interrupted_seal_leaves_no_output() {
    let env = Env::new("interrupt");
    env.init();
    let o = env.run(&["generate", "--rows", "200000", "--tenant", "acme"], b"");
    std::fs::write(env.path("big.csv"), &o.stdout).unwrap();
    let child = env
        .command(&["seal", "big.csv", "-o", "big.jsonl", "--quiet"])
        .spawn()
        .unwrap();
    // Wait until the partial file exists, so the interruption lands mid-seal.
    let started = std::time::Instant::now();
    while !std::fs::read_dir(&env.dir)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().contains("coffer-partial"))
    {
        assert!(started.elapsed().as_secs() < 60, "seal never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert!(text(&o).contains("interrupted"), "{}", text(&o));
    assert!(!env.path("big.jsonl").exists());
    assert!(!env.path("big.jsonl.rejects.jsonl").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&env.dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("coffer-partial"))
        .collect();
    assert!(leftovers.is_empty(), "partial files are removed");
    // The store is consistent afterwards.
    let o = env.run(&["audit", "verify"], b"");
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn sweep_approve_and_execute_a_destruction_list() {
    let env = Env::new("sweep");
    env.init();
    // Customers sealed thirty-one years ago (through the library, with its clock set back), so
    // that their accounting retention has run out today.
    {
        let master = coffer::MasterKey::from_file(env.path("master.key")).unwrap();
        let schema = coffer::record::Schema::builtin();
        let past = time::OffsetDateTime::now_utc() - time::Duration::days(365 * 31 + 8);
        let c = coffer::Coffer::open_with(
            env.path("store.db"),
            &master,
            coffer::OpenOptions {
                retention: Some(
                    coffer::retention::Retention::from_toml(
                        &std::fs::read_to_string(RETENTION).unwrap(),
                        schema,
                    )
                    .unwrap(),
                ),
                clock: std::sync::Arc::new(coffer::clock::FixedClock::new(past)),
                ..Default::default()
            },
        )
        .unwrap();
        let records = (1..=3)
            .map(|i| {
                coffer::record::CustomerRecord::from_json(&format!(
                    r#"{{"id":"c-{i}","tenant":"acme","kind":"individual","name":"张三",
                        "id_documents":[{{"type":"cn_resident_id","number":"11010119800101007X"}}],
                        "phones":["13800000000"],
                        "bank_accounts":[{{"account_type":"card","account_number":"6200000000000005"}}]}}"#
                ))
                .unwrap()
            })
            .collect();
        for r in c.seal_many(records, "import-1995").unwrap() {
            r.unwrap();
        }
    }
    let o = env.run(&["retention", "plan", "--json"], b"");
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["review"].as_array().unwrap().len(), 6, "{plan}");
    let o = env.run(&["sweep", "--json"], b"");
    assert!(o.status.success(), "{}", text(&o));
    let sweep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let list = sweep["proposed_list"].as_i64().unwrap().to_string();
    // Executing before the approvals is refused (exit code 3), and nothing is destroyed.
    let o = env.run(&["execute", &list], b"");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = env.run(
        &[
            "approve",
            &list,
            "--approver",
            "wang",
            "--role",
            "archive_head",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", text(&o));
    // The same person cannot approve twice; an unknown role is refused.
    let o = env.run(
        &[
            "approve",
            &list,
            "--approver",
            "wang",
            "--role",
            "accounting_head",
        ],
        b"",
    );
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let o = env.run(
        &[
            "approve",
            &list,
            "--approver",
            "li",
            "--role",
            "accounting_head",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = env.run(&["execute", &list, "--json"], b"");
    assert!(o.status.success(), "{}", text(&o));
    let cert = coffer::Certificate::from_json(std::str::from_utf8(&o.stdout).unwrap()).unwrap();
    assert_eq!(cert.items.len(), 6);
    assert_eq!(cert.approvals.len(), 2);
    // The certificate verifies against the store's public key.
    let store_key = {
        let master = coffer::MasterKey::from_file(env.path("master.key")).unwrap();
        coffer::Coffer::open(env.path("store.db"), &master)
            .unwrap()
            .signing_public_key()
    };
    cert.verify(&store_key).unwrap();
    let o = env.run(&["retention", "plan", "--json"], b"");
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["review"].as_array().unwrap().len(), 0);
    let o = env.run(&["audit", "verify"], b"");
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn sealing_to_standard_output_and_to_a_full_disk() {
    let env = Env::new("stdout");
    env.init();
    let o = env.run(&["generate", "--rows", "3000", "--tenant", "acme"], b"");
    std::fs::write(env.path("in.csv"), &o.stdout).unwrap();
    // `-o -`: the envelopes on standard output, the summary on standard error.
    let o = env.run(
        &[
            "seal",
            "in.csv",
            "-o",
            "-",
            "--rejects",
            "r.jsonl",
            "--quiet",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out.lines().count(), 3000);
    assert!(out.lines().all(|l| l.starts_with('{')));
    assert!(String::from_utf8_lossy(&o.stderr).contains("sealed 3000"));
    // A full disk under the writer: a clear error and a non-zero exit, promptly, and no rejects
    // file that looks complete.
    let started = std::time::Instant::now();
    let o = env
        .command(&[
            "seal",
            "in.csv",
            "-o",
            "-",
            "--rejects",
            "r2.jsonl",
            "--quiet",
        ])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("No space left"),
        "{}",
        text(&o)
    );
    assert!(started.elapsed().as_secs() < 60, "it must not hang");
    assert!(!env.path("r2.jsonl").exists());
}

/// Issue 16 from the command line: a backup with its manifest, an erasure whose certificate
/// says until when older copies hold the keys, a KEK rotation that retires the old KEK in
/// batches, the store lost, a restore refused without a record of later destructions and
/// done with the certificates, after which the erased customer's contact details read
/// shredded and the rest reveal.
#[test]
fn backup_erase_retire_and_restore() {
    let env = Env::new("restore");
    env.init();
    let o = env.run(&["generate", "--rows", "20", "--tenant", "acme"], b"");
    std::fs::write(env.path("in.csv"), &o.stdout).unwrap();
    env.ok(&["seal", "in.csv", "-o", "env.jsonl", "--quiet"], b"");
    let envelopes = std::fs::read_to_string(env.path("env.jsonl")).unwrap();
    let envelopes: Vec<&str> = envelopes.lines().collect();

    let m: serde_json::Value =
        serde_json::from_str(&env.ok(&["backup", "nightly.db", "--json"], b"")).unwrap();
    assert_eq!(m["format"], "coffer-backup/1");
    assert_eq!(m["live_data_keys"], 60);
    assert!(env.path("nightly.db.manifest.json").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["nightly.db", "nightly.db.manifest.json"] {
            let mode = std::fs::metadata(env.path(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }
    // Never over an existing file.
    let o = env.run(&["backup", "nightly.db"], b"");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    let answer: serde_json::Value = serde_json::from_str(&env.ok(
        &[
            "erase",
            "--tenant",
            "acme",
            "--subject",
            "s-0000001",
            "--json",
        ],
        b"",
    ))
    .unwrap();
    assert_eq!(
        answer["backup_exposure"]["kek_versions"],
        serde_json::json!([1])
    );
    assert!(answer["backup_exposure"]["until"].is_string(), "{answer}");
    let cert = &answer["certificate"];
    assert_eq!(cert["backup_exposure"], answer["backup_exposure"]);
    std::fs::write(env.path("certs.jsonl"), format!("{cert}\n")).unwrap();
    // The whole answer of an erasure, kept as it came, serves as well.
    let second = env.ok(
        &[
            "erase",
            "--tenant",
            "acme",
            "--subject",
            "s-0000002",
            "--json",
        ],
        b"",
    );
    std::fs::write(env.path("answer-2.json"), &second).unwrap();
    let second: serde_json::Value = serde_json::from_str(&second).unwrap();
    // Without --json the answer says it in words.
    let o = env.ok(
        &["erase", "--tenant", "acme", "--subject", "s-0000003"],
        b"",
    );
    assert!(o.contains("copies of the store taken before"), "{o}");

    // A rotation that was not retired (or was interrupted) is finished by `--retire`, not
    // doubled: the same version, its older KEK deleted.
    let r: serde_json::Value =
        serde_json::from_str(&env.ok(&["keys", "rotate", "kek", "--json"], b"")).unwrap();
    assert_eq!(r["kek_version"], 2);
    assert_eq!(r["retired"], serde_json::json!([]));
    let r: serde_json::Value = serde_json::from_str(&env.ok(
        &[
            "keys", "rotate", "kek", "--retire", "--batch", "7", "--json",
        ],
        b"",
    ))
    .unwrap();
    assert_eq!(r["kek_version"], 2);
    assert_eq!(r["retired"], serde_json::json!([1]));
    // Again: nothing left to retire, a new rotation is made and retired at once.
    let r: serde_json::Value =
        serde_json::from_str(&env.ok(&["keys", "rotate", "kek", "--retire", "--json"], b""))
            .unwrap();
    assert_eq!(r["retired"], serde_json::json!([2]));

    // The store is lost.
    for s in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(env.path(&format!("store.db{s}")));
    }
    let o = env.run(&["restore", "nightly.db"], b"");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("certificates"));
    assert!(!env.path("store.db").exists());
    let report: serde_json::Value = serde_json::from_str(&env.ok(
        &[
            "restore",
            "nightly.db",
            "--certificates",
            "certs.jsonl",
            "--certificates",
            "answer-2.json",
            "--json",
        ],
        b"",
    ))
    .unwrap();
    assert_eq!(report["sources"], serde_json::json!(["certificates"]));
    assert_eq!(report["certificates"], 2);
    assert_eq!(
        report["reapplied"],
        cert["items"].as_array().unwrap().len()
            + second["certificate"]["items"].as_array().unwrap().len()
    );
    env.ok(&["audit", "verify"], b"");

    let reveal = |envelope: &str| -> serde_json::Value {
        serde_json::from_str(&env.ok(
            &[
                "reveal",
                "--principal",
                "m-1",
                "--tenant",
                "acme",
                "--role",
                "marketing",
                "--purpose",
                "marketing",
                "--json",
            ],
            format!("{envelope}\n").as_bytes(),
        ))
        .unwrap()
    };
    assert_eq!(
        reveal(envelopes[0])["fields"]["phones[0]"]["state"],
        "shredded"
    );
    let kept = reveal(envelopes[5]);
    assert_eq!(kept["fields"]["phones[0]"]["state"], "revealed", "{kept}");
    assert_eq!(
        reveal(envelopes[1])["fields"]["phones[0]"]["state"],
        "shredded"
    );
    // The third erasure had no certificate given and the store was lost: restored, as the
    // operator was told it would be.
    assert_eq!(
        reveal(envelopes[2])["fields"]["phones[0]"]["state"],
        "revealed"
    );

    // Redaction in bulk: the erased customer's envelope loses its contact fields and tokens,
    // the host learns which index columns to clear, the others are left as they are.
    let o = env.run(&["redact", "env.jsonl"], b"");
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 20);
    assert_eq!(lines[0]["changed"], true);
    assert_eq!(
        lines[0]["shredded_categories"],
        serde_json::json!(["contact"])
    );
    let cleared: Vec<&str> = lines[0]["clear_index"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(cleared.contains(&"phones[0]"), "{cleared:?}");
    assert!(lines[0]["envelope"]["index"].get("phones[0]").is_none());
    assert_eq!(lines[1]["changed"], true);
    assert!(lines[2..].iter().all(|l| l["changed"] == false));
    assert!(String::from_utf8_lossy(&o.stderr).contains("2 changed"));
    let redacted = lines[0]["envelope"].to_string();
    assert_eq!(
        reveal(&redacted)["fields"]["phones[0]"]["state"],
        "shredded"
    );
}

/// `coffer store copy`: a store moves to the other backend (PostgreSQL when the run has a
/// server, else another file) and back, each copy verified; the copy is usable through
/// `--store`; a destination that exists is refused, and so is a source the key does not open.
#[test]
fn store_copy_moves_a_store_and_verifies_it() {
    let env = Env::new("storecopy");
    env.init();
    let o = env.run(&["generate", "--rows", "10", "--tenant", "acme"], b"");
    std::fs::write(env.path("in.csv"), &o.stdout).unwrap();
    env.ok(&["seal", "in.csv", "-o", "env.jsonl", "--quiet"], b"");
    env.ok(
        &["erase", "--tenant", "acme", "--subject", "s-0000001"],
        b"",
    );
    let target = match std::env::var("COFFER_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => format!(
            "{url}{}schema=cli_copy_{}",
            if url.contains('?') { '&' } else { '?' },
            std::process::id()
        ),
        _ => env.path("copy.db").display().to_string(),
    };
    let store = env.path("store.db").display().to_string();
    let report: serde_json::Value =
        serde_json::from_str(&env.ok(&["store", "copy", &store, &target, "--json"], b"")).unwrap();
    assert_eq!(report["chain_verified"], true);
    assert_eq!(report["live_data_keys"], 29, "{report}");
    assert_eq!(report["destroyed_data_keys"], 1, "{report}");
    assert_eq!(report["rows"]["data_keys"], 30);
    // Not over a store that exists.
    let o = env.run(&["store", "copy", &store, &target], b"");
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    // The copy is a store like any other: it verifies, and copies back.
    let verified = env.ok(&["--store", &target, "audit", "verify"], b"");
    assert!(verified.contains("intact"), "{verified}");
    let back = env.path("back.db").display().to_string();
    let again: serde_json::Value =
        serde_json::from_str(&env.ok(&["store", "copy", &target, &back, "--json"], b"")).unwrap();
    // Opening the copy to verify it recorded its policy load there: one entry more.
    for t in [
        "data_keys",
        "certificates",
        "restrictions",
        "events",
        "keyring",
    ] {
        assert_eq!(again["rows"][t], report["rows"][t], "{t}");
    }
    assert_eq!(
        again["audit_entries"].as_u64().unwrap(),
        report["audit_entries"].as_u64().unwrap() + 1
    );
    // A source the master key does not open is refused before anything is written.
    std::fs::write(env.path("other.key"), [7u8; 32]).unwrap();
    let o = env.run(
        &[
            "--master-key-file",
            env.path("other.key").to_str().unwrap(),
            "store",
            "copy",
            &store,
            env.path("never.db").to_str().unwrap(),
        ],
        b"",
    );
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!env.path("never.db").exists());
}
