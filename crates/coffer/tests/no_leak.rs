//! Plaintext never appears in `Debug` or `Display` output of records, reports or errors.
//!
//! Sentinel values are planted in every field, including invalid ones that produce validation
//! issues and malformed ones that produce parse errors; then everything Coffer formats is
//! searched for them.

use coffer::record::{CustomerRecord, Schema};
use time::macros::date;

const SENTINELS: &[&str] = &[
    "SENTINELNAME",
    "110101200001010002",
    "110101200001010000",
    "13912345678",
    "15400000017",
    "sentinel.mail@example.com",
    "SENTINELSTREET",
    "6200000000000005",
    "6200000000000006",
    "SENTINELBANK",
    "SENTINELCUSTOM",
    "GB82WEST12345698765433",
];

fn assert_clean(what: &str, text: &str) {
    for s in SENTINELS {
        assert!(!text.contains(s), "{what} leaks a planted value: {text}");
        // Also after the normalisation Coffer applies (digits only, upper case).
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        if digits.len() >= 8 {
            assert!(
                !text.contains(&digits),
                "{what} leaks the digits of a planted value: {text}"
            );
        }
    }
}

fn planted_record() -> String {
    r#"{"id":"c-1","tenant":"acme","kind":"individual","name":"SENTINELNAME",
        "id_documents":[{"type":"cn_resident_id","number":"110101200001010002"},
                        {"type":"cn_resident_id","number":"110101200001010000"}],
        "phones":["13912345678","15400000017"],"emails":["sentinel.mail@example.com"],
        "addresses":["SENTINELSTREET\u0001"],
        "bank_accounts":[{"bank_name":"SENTINELBANK","account_type":"card","account_number":"6200000000000005"},
                         {"account_type":"card","account_number":"6200000000000006"},
                         {"account_type":"iban","account_number":"GB82WEST12345698765433"}],
        "custom":{"note":"SENTINELCUSTOM"}}"#
        .to_owned()
}

#[test]
fn records_reports_and_errors_never_print_values() {
    let mut record = CustomerRecord::from_json(&planted_record()).unwrap();
    assert_clean("record Debug", &format!("{record:?}"));
    assert_clean("record pretty Debug", &format!("{record:#?}"));
    for f in record.fields() {
        assert_clean("field path", &f.path.to_string());
    }
    record.normalize();
    assert_clean("normalised record Debug", &format!("{record:?}"));

    let today = date!(2026 - 11 - 27);
    let report = Schema::builtin().validate(&record, today);
    assert!(!report.is_valid());
    assert!(report.issues.len() >= 4, "{report}");
    assert_clean("report Display", &report.to_string());
    assert_clean("report Debug", &format!("{report:?}"));
    assert_clean("report JSON", &report.to_json());

    let err = Schema::builtin().check(record, today).unwrap_err();
    assert_clean("validation error Display", &err.to_string());
    assert_clean("validation error Debug", &format!("{err:?}"));
}

#[test]
fn parse_errors_never_print_values() {
    // Each document puts a planted value where the parser will choke on it.
    let broken = [
        r#"{"id":"c","tenant":"t","kind":"individual","phones":"13912345678"}"#.to_owned(),
        r#"{"id":"c","tenant":"t","kind":"individual","name":13912345678}"#.to_owned(),
        r#"{"id":"c","tenant":"t","kind":"SENTINELNAME"}"#.to_owned(),
        r#"{"id":"c","tenant":"t","kind":"individual","bank_accounts":[{"account_type":"6200000000000005","account_number":"1"}]}"#.to_owned(),
        r#"{"id":"c","tenant":"t","kind":"individual","id_documents":[{"type":"cn_resident_id","number":110101200001010002}]}"#.to_owned(),
        r#"{"id":"c","tenant":"t","kind":"individual","custom":{"note":["SENTINELCUSTOM"]}}"#.to_owned(),
        r#"{"id":"c","tenant":"t","kind":"individual","name":"SENTINELNAME" "#.to_owned(),
        r#"{"id":"c","tenant":"t","kind":"individual","emails":{"sentinel.mail@example.com":1}}"#.to_owned(),
        r#"{"id":"c","tenant":"t","kind":"individual","phones":[13912345678.5]}"#.to_owned(),
        r#"{"id":"c","tenant":"t","kind":"individual","name":"SENTINELNAME", "expected ":"x"}"#.to_owned(),
        r#"["SENTINELNAME"]"#.to_owned(),
        r#""13912345678""#.to_owned(),
        r#"13912345678"#.to_owned(),
    ];
    for doc in &broken {
        let err = CustomerRecord::from_json(doc).unwrap_err();
        assert_clean("parse error Display", &err.to_string());
        assert_clean("parse error Debug", &format!("{err:?}"));
    }
    // Invalid UTF-8 right after a planted value.
    let mut bytes = br#"{"id":"c","tenant":"t","kind":"individual","name":"SENTINELNAME"#.to_vec();
    bytes.push(0xC0);
    let err = CustomerRecord::from_json_bytes(&bytes).unwrap_err();
    assert_clean("UTF-8 error", &format!("{err} {err:?}"));
}

#[test]
fn limit_and_schema_errors_never_print_values() {
    let long = format!(
        "SENTINELNAME{}",
        "x".repeat(coffer::record::MAX_VALUE_BYTES)
    );
    let doc = format!(r#"{{"id":"c","tenant":"t","kind":"individual","name":"{long}"}}"#);
    let err = CustomerRecord::from_json(&doc).unwrap_err();
    assert_eq!(err.kind(), coffer::ErrorKind::LimitExceeded);
    assert_clean("limit error", &format!("{err} {err:?}"));

    // A value pasted into a schema where a class belongs: the problem names the key's position.
    let schema =
        coffer::record::DEFAULT_SCHEMA_TOML.replace("class = \"personal\"", "class = 13912345678");
    let err = Schema::from_toml(&schema).unwrap_err();
    assert_clean("schema error", &format!("{err} {err:?}"));
}

#[test]
fn masked_forms_are_redacted_in_debug() {
    let m = coffer::mask::MaskRule::Clear.apply("13912345678", coffer::mask::Profile::Standard);
    assert_clean("Masked Debug", &format!("{m:?}"));
}
