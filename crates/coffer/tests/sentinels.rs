//! No personal data outside ciphertext: unique sentinel values are planted in every field the
//! schema protects (bank and branch names are clear by the schema's design, so not among them), every operation of the vault is run on them (failing ones too), and every output,
//! error message, `Debug` form, audit export, checkpoint, certificate, archive bundle and the
//! store's database files are searched for the sentinels in UTF-8, UTF-16, hex and base64.
//! The C library and the Python module call these same functions and add their own messages:
//! `bindings/python/tests/test_sentinels.py` runs this search over the module's outputs and,
//! through `tests/c/sentinels.c`, over the C library's.

mod common;
use std::sync::Arc;

use base64::Engine;
use coffer::clock::{Clock, FixedClock};
use coffer::policy::{Context, Policy, Principal};
use coffer::record::{CustomerRecord, Schema, luhn_check_digit, resident_id_check_char};
use coffer::retention::Retention;
use coffer::{Access, Coffer, MasterKey, OpenOptions};

const POLICY: &str = include_str!("../../../examples/policies/accounting-firm.toml");
const RETENTION: &str = include_str!("../../../examples/policies/retention.toml");

struct Sentinels {
    values: Vec<String>,
}

impl Sentinels {
    fn new() -> Sentinels {
        let body = "11010119770707123";
        let id = format!(
            "{body}{}",
            resident_id_check_char(body.as_bytes()).unwrap() as char
        );
        let card_body = "621700987654321";
        let card = format!(
            "{card_body}{}",
            luhn_check_digit(card_body).unwrap() as char
        );
        Sentinels {
            values: vec![
                "哨兵测试甲乙".into(),
                id,
                "13987654329".into(),
                "sentinel.q7x@example.org".into(),
                "哨兵省哨兵市七号路".into(),
                card,
                "SENTINELCUSTOM7".into(),
            ],
        }
    }

    fn record(&self, id: &str, subject: &str) -> String {
        let v = &self.values;
        format!(
            r#"{{"id":"{id}","tenant":"acme","subject":"{subject}","kind":"individual","name":"{}",
                "id_documents":[{{"type":"cn_resident_id","number":"{}"}}],
                "phones":["{}"],"emails":["{}"],"addresses":["{}"],
                "bank_accounts":[{{"bank_name":"示例银行","branch":"示例支行","account_type":"card","account_number":"{}"}}],
                "custom":{{"note":"{}"}}}}"#,
            v[0], v[1], v[2], v[3], v[4], v[5], v[6]
        )
    }

    /// Every encoding of every sentinel that a leak could take.
    fn needles(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for s in &self.values {
            let b = s.as_bytes();
            out.push((format!("{s} (UTF-8)"), b.to_vec()));
            let le: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
            let be: Vec<u8> = s.encode_utf16().flat_map(u16::to_be_bytes).collect();
            out.push((format!("{s} (UTF-16LE)"), le));
            out.push((format!("{s} (UTF-16BE)"), be));
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            out.push((format!("{s} (hex)"), hex.clone().into_bytes()));
            out.push((format!("{s} (HEX)"), hex.to_uppercase().into_bytes()));
            // Base64 at each of the three alignments a value can have inside a longer text.
            for engine in [
                &base64::engine::general_purpose::STANDARD,
                &base64::engine::general_purpose::URL_SAFE,
            ] {
                for shift in 0..3usize {
                    let mut padded = vec![0u8; shift];
                    padded.extend_from_slice(b);
                    let enc = engine.encode(&padded);
                    // Drop the characters the prefix and the padding touch.
                    let start = (shift * 4).div_ceil(3) + usize::from(shift > 0);
                    let end = enc.trim_end_matches('=').len().saturating_sub(2);
                    if end > start + 8 {
                        out.push((
                            format!("{s} (base64, shift {shift})"),
                            enc.as_bytes()[start..end].to_vec(),
                        ));
                    }
                }
            }
        }
        out
    }

    fn assert_clean(&self, what: &str, haystack: &[u8]) {
        for (name, needle) in self.needles() {
            assert!(
                !haystack
                    .windows(needle.len())
                    .any(|w| w == needle.as_slice()),
                "{what} contains the planted value {name}"
            );
        }
    }
}

fn access(role: &str, purpose: &str, tenant: &str, ticket: bool) -> Access {
    Access {
        principal: Principal {
            id: format!("{role}-1"),
            tenant: tenant.into(),
            roles: vec![role.into()],
            ..Default::default()
        },
        purpose: purpose.into(),
        context: Context {
            ticket: ticket.then(|| "T-1".to_owned()),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn no_sentinel_outside_ciphertext() {
    let s = Sentinels::new();
    let dir = std::env::temp_dir().join(format!("coffer-sentinels-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("store.db");
    let key = MasterKey::generate().unwrap();
    let schema = Schema::builtin();
    let past = time::OffsetDateTime::now_utc() - time::Duration::days(365 * 40);
    let clock = Arc::new(FixedClock::new(past));
    let c = Coffer::open_with(
        &db,
        &key,
        OpenOptions {
            policy: Some(Policy::from_toml(POLICY, schema).unwrap()),
            retention: Some(Retention::from_toml(RETENTION, schema).unwrap()),
            clock: Arc::clone(&clock) as Arc<dyn Clock>,
            ..Default::default()
        },
    )
    .unwrap();
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut say = |what: &str, text: String| outputs.push((what.to_owned(), text.into_bytes()));

    // Seal: good records, and one whose ID check character is wrong (refused, with a report).
    let good: Vec<CustomerRecord> = (0..3)
        .map(|i| {
            CustomerRecord::from_json(&s.record(&format!("c-{i}"), &format!("s-{i}"))).unwrap()
        })
        .collect();
    let mut bad_json = s.record("c-bad", "s-bad");
    let id = &s.values[1];
    let wrong = format!("{}{}", &id[..17], if id.ends_with('1') { '2' } else { '1' });
    bad_json = bad_json.replace(id.as_str(), &wrong);
    let bad = CustomerRecord::from_json(&bad_json).unwrap();
    say("record Debug", format!("{bad:?}"));
    let mut batch = good.clone();
    batch.push(bad);
    let sealed = c.seal_many(batch, "import").unwrap();
    for r in &sealed {
        match r {
            Ok(env) => {
                say("envelope Debug", format!("{env:?}"));
                say("envelope index", format!("{:?}", env.index()));
                say("envelope masks", format!("{:?}", env.masked()));
            }
            Err(e) => say("seal error", format!("{e} {e:?}")),
        }
    }
    let envs: Vec<_> = sealed.into_iter().flatten().collect();
    assert_eq!(envs.len(), 3);
    // The envelope's JSON: ciphertext, tokens and masked forms only.
    for env in &envs {
        say("envelope JSON", env.to_json().to_string());
    }
    // Malformed input naming a sentinel in the wrong place.
    let e = CustomerRecord::from_json(&s.record("c-x", "s-x").replace("\"phones\"", "\"phonez\""))
        .unwrap_err();
    say("parse error", format!("{e} {e:?}"));

    // Search, reveal (masked, denied, another tenant, revealed), tampering, a wrong key.
    say(
        "tokens",
        format!(
            "{:?}",
            common::tokens(&c, "acme", "id_documents[].number", id).unwrap()
        ),
    );
    for (role, purpose, tenant, ticket) in [
        ("clerk", "bookkeeping", "acme", false),
        ("marketing", "marketing", "acme", false),
        ("accountant", "payments", "other", false),
        ("auditor", "statutory_audit", "acme", true),
    ] {
        match c.reveal(&envs[0], &access(role, purpose, tenant, ticket)) {
            // A view holds plaintext for its caller; its Debug form must not.
            Ok(view) => say("view Debug", format!("{view:?}")),
            Err(e) => say("reveal error", format!("{e} {e:?}")),
        }
    }
    let mut tampered = envs[0].to_json().to_string();
    tampered = tampered.replacen("\"c-0\"", "\"c-9\"", 1);
    if let Err(e) = c.open_envelope(&tampered) {
        say("tamper error", format!("{e} {e:?}"));
    }
    let e = Coffer::open(&db, &MasterKey::generate().unwrap()).unwrap_err();
    say("wrong key error", format!("{e} {e:?}"));

    // Erasure, then forty years on: sweep, approvals, execution, certificates.
    clock.set(time::OffsetDateTime::now_utc());
    let answer = c.erase("acme", "s-1", "privacy").unwrap();
    say("erasure", format!("{answer:?}"));
    let sweep = c.sweep("archive").unwrap();
    say("sweep", coffer::wire::sweep_to_json(&sweep));
    if let Some(list) = sweep.proposed_list {
        c.approve(list, "wang", "archive_head").unwrap();
        c.approve(list, "li", "accounting_head").unwrap();
        say("certificate", c.execute(list, "archive").unwrap().to_json());
    }
    // Archives, the audit trail and its checkpoint.
    let mut exporter = access("auditor", "statutory_audit", "acme", true);
    exporter.context.destination_region = Some("CN".into());
    let bundle = c.archive_export(&envs[2..], &[7u8; 32], &exporter).unwrap();
    say("archive bundle", bundle.to_json());
    let mut export = Vec::new();
    c.audit_export(&mut export).unwrap();
    say("audit export", String::from_utf8(export).unwrap());
    say(
        "checkpoint",
        c.audit_checkpoint("auditor").unwrap().to_json(),
    );
    say(
        "audit report",
        format!("{:?}", c.audit_verify(None).unwrap()),
    );
    // Compliance reports: the trail-only ones carry ids, paths and counts, never a value; a
    // subject report with envelopes holds values for its reader, but not in its Debug form.
    let officer = {
        let mut a = access("privacy_officer", "data_protection", "acme", true);
        a.principal.id = "dpo-1".into();
        a
    };
    let none = coffer::report::ReportOptions::default();
    let reports = [
        coffer::report::Report::Incident(
            c.affected(&coffer::report::IncidentQuery::default(), &officer, &none)
                .unwrap(),
        ),
        coffer::report::Report::AccessReview(
            c.access_review(time::OffsetDateTime::UNIX_EPOCH, &officer, &none)
                .unwrap(),
        ),
        coffer::report::Report::Check(
            c.compliance_check(&Default::default(), &officer, &none)
                .unwrap(),
        ),
        coffer::report::Report::Subject(
            c.subject_report("acme", "s-0", &[], &officer, &none)
                .unwrap(),
        ),
    ];
    for r in &reports {
        say("report JSON", r.to_json().to_string());
        say("report Markdown", r.to_markdown().to_string());
        say("report HTML", r.to_html().to_string());
        say("report Debug", format!("{r:?}"));
    }
    let with_values = c
        .subject_report("acme", "s-2", &envs[2..], &officer, &none)
        .unwrap();
    assert!(with_values.fields.iter().any(|f| f.value.is_some()));
    say("subject report Debug", format!("{with_values:?}"));
    let e = c
        .subject_report(
            "acme",
            "s-2",
            &envs[2..],
            &access("clerk", "bookkeeping", "acme", false),
            &none,
        )
        .unwrap_err();
    say("report error", format!("{e} {e:?}"));
    drop(c);

    for (what, bytes) in &outputs {
        s.assert_clean(what, bytes);
    }
    // The store's files: the database, and its WAL if one is left.
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        s.assert_clean(&path.display().to_string(), &std::fs::read(&path).unwrap());
        files += 1;
    }
    assert!(files >= 1);
    // And the search itself works: a planted value is found in each encoding, at any alignment.
    let leaks: Vec<Vec<u8>> = vec![
        format!("..{}..", s.values[3]).into_bytes(),
        s.values[0]
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect(),
        s.values[1]
            .bytes()
            .map(|b| format!("{b:02X}"))
            .collect::<String>()
            .into_bytes(),
        base64::engine::general_purpose::STANDARD
            .encode(format!("x{}yz", s.values[4]))
            .into_bytes(),
        base64::engine::general_purpose::URL_SAFE
            .encode(format!("xy{}", s.values[5]))
            .into_bytes(),
    ];
    for leak in leaks {
        assert!(
            std::panic::catch_unwind(|| s.assert_clean("a planted leak", &leak)).is_err(),
            "the search missed a planted leak"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
