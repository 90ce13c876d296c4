//! The Rust side of the shared known-answer vectors in `tests/vectors/`.

use std::path::PathBuf;

use coffer::ErrorKind;
use coffer::mask::{MaskRule, Masked, Profile};
use coffer::record::{CustomerRecord, Schema};
use serde_json::Value;

fn vector(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("vectors")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn error_table_matches_the_core() {
    let v = vector("errors.json");
    let kinds = v["kinds"].as_array().unwrap();
    assert_eq!(
        kinds.len(),
        ErrorKind::ALL.len(),
        "errors.json and ErrorKind::ALL differ in length"
    );
    for (entry, kind) in kinds.iter().zip(ErrorKind::ALL) {
        assert_eq!(
            entry["code"].as_u64().unwrap(),
            u64::from(kind.code()),
            "{kind}"
        );
        assert_eq!(entry["name"].as_str().unwrap(), kind.name());
        assert_eq!(entry["status_str"].as_str().unwrap(), kind.description());
        assert_eq!(ErrorKind::from_code(kind.code()), Some(kind));
    }
    assert_eq!(v["success"]["code"], 0);
}

#[test]
fn validation_cases() {
    let v = vector("validation.json");
    let today = time::Date::parse(
        v["today"].as_str().unwrap(),
        &time::format_description::well_known::Iso8601::DATE,
    )
    .unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 30);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut record = CustomerRecord::from_json(&case["record"].to_string()).unwrap();
        record.normalize();
        let report = Schema::builtin().validate(&record, today);
        let mut got: Vec<(String, String)> = report
            .issues
            .iter()
            .map(|i| (i.path.to_string(), i.code.as_str().to_owned()))
            .collect();
        let mut want: Vec<(String, String)> = case["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_owned(),
                    p[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{name}");
        assert_eq!(
            report.is_valid(),
            case["valid"].as_bool().unwrap(),
            "{name}"
        );
    }
}

#[test]
fn masking_cases() {
    let v = vector("validation.json");
    for case in v["masking"].as_array().unwrap() {
        let rule = MaskRule::parse(case["form"].as_str().unwrap()).unwrap();
        let profile = Profile::parse(case["profile"].as_str().unwrap()).unwrap();
        let got = rule.apply(case["value"].as_str().unwrap(), profile);
        assert!(
            got == Masked::Text(case["expected"].as_str().unwrap().to_owned()),
            "{} {} -> mismatch",
            case["form"],
            case["profile"]
        );
    }
}

#[test]
fn envelope_known_answers_open() {
    let v = vector("envelopes.json");
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 2);
    for case in cases {
        let keys: std::collections::BTreeMap<(String, u32), Vec<u8>> = case["data_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    (
                        k["category"].as_str().unwrap().to_owned(),
                        k["version"].as_u64().unwrap() as u32,
                    ),
                    coffer::crypto::from_hex(k["key"].as_str().unwrap()).unwrap(),
                )
            })
            .collect();
        let mac_key = coffer::crypto::from_hex(case["envelope_mac_key"].as_str().unwrap()).unwrap();
        let envelope = case["envelope"].as_str().unwrap();
        let opened = coffer::envelope::open_with_keys(envelope, &mac_key, &keys).unwrap();
        let want = case["plaintexts"].as_object().unwrap();
        assert_eq!(opened.len(), want.len(), "{}", case["name"]);
        for (path, value) in want {
            assert_eq!(
                opened[path].expose(),
                value.as_str().unwrap(),
                "{} {path}",
                case["name"]
            );
        }
        // One changed character of a ciphertext is an integrity error, not a wrong value.
        let mut env: serde_json::Value = serde_json::from_str(envelope).unwrap();
        let ct = env["fields"]["name"]["ct"].as_str().unwrap().to_owned();
        let flipped = match ct.strip_prefix('A') {
            Some(rest) => format!("B{rest}"),
            None => format!("A{}", &ct[1..]),
        };
        env["fields"]["name"]["ct"] = flipped.into();
        let err = coffer::envelope::open_with_keys(&env.to_string(), &mac_key, &keys).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
        // The JSON form the C library and the Python module use gives the same plaintexts.
        let json = coffer::wire::open_with_keys_json(envelope, &case.to_string()).unwrap();
        let got: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(&got, &case["plaintexts"], "{}", case["name"]);
    }
}

/// Batch entries in the audit trail: each stored entry is canonical, and expands to exactly the
/// entries the vector lists (computed by `vectors/gen_audit.py`, not by this code).
#[test]
fn audit_batch_entries_expand_as_pinned() {
    let v = vector("audit.json");
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 3);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let text = case["entry"].as_str().unwrap();
        let entry: coffer::audit::AuditEntry = serde_json::from_str(text).unwrap();
        assert_eq!(entry.canonical(), text, "{name}: not canonical");
        let expanded: Vec<String> = coffer::audit::expand(&entry)
            .unwrap()
            .iter()
            .map(coffer::audit::AuditEntry::canonical)
            .collect();
        let want: Vec<&str> = case["expanded"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        assert_eq!(expanded, want, "{name}");
    }
}
