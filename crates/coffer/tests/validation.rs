//! Validation of whole records through the public API, with the reference notes' worked vectors.

use coffer::record::{
    CustomerKind, CustomerRecord, IssueCode, Schema, Severity, resident_id_check_char,
};
use time::macros::date;

const TODAY: time::Date = date!(2026 - 11 - 27);

fn individual(extra: &str) -> String {
    format!(
        r#"{{"id":"c-1","tenant":"acme","kind":"individual","name":"张三",
            "id_documents":[{{"type":"cn_resident_id","number":"110101200001010002"}}],
            "phones":["13800000000"]{extra}}}"#
    )
}

fn report_for(json: &str) -> coffer::record::ValidationReport {
    let mut r = CustomerRecord::from_json(json).unwrap();
    r.normalize();
    Schema::builtin().validate(&r, TODAY)
}

fn with_id(number: &str) -> String {
    format!(
        r#"{{"id":"c-1","tenant":"acme","kind":"individual","name":"张三",
            "id_documents":[{{"type":"cn_resident_id","number":"{number}"}}],"phones":["13800000000"]}}"#
    )
}

#[test]
fn a_good_record_is_valid_without_warnings() {
    let report = report_for(&individual(""));
    assert!(report.is_valid(), "{report}");
    assert!(report.issues.is_empty(), "{report}");
}

#[test]
fn resident_id_vectors() {
    for ok in [
        "110101200001010002",
        "440304199912310023",
        "11010119800101007X",
        "11010119800101007x",
        "360426199101010071",
    ] {
        let r = report_for(&with_id(ok));
        assert!(r.is_valid(), "{ok}: {r}");
    }
    for (bad, code) in [
        ("110101200001010000", IssueCode::ResidentIdChecksum),
        ("110101199002300006", IssueCode::ResidentIdDate),
        ("1101012000010100", IssueCode::ResidentIdFormat),
        ("11010120000101000A", IssueCode::ResidentIdFormat),
    ] {
        let r = report_for(&with_id(bad));
        assert!(r.has("id_documents[0].number", code), "{bad}: {r}");
        assert!(!r.is_valid());
    }
}

#[test]
fn full_width_spaced_and_legacy_ids_normalise() {
    // Full-width digits, spaces and a full-width lower-case x.
    assert!(report_for(&with_id("１１０１０１ １９８００１０１ ００７ｘ")).is_valid());
    assert!(report_for(&with_id("110101-19800101-007X")).is_valid());
    // The legacy 15-digit form is upgraded to 18 with its check character.
    let mut r = CustomerRecord::from_json(&with_id("110101900101000")).unwrap();
    r.normalize();
    assert_eq!(r.id_documents[0].number.expose(), "110101199001010007");
    assert!(Schema::builtin().validate(&r, TODAY).is_valid());
}

#[test]
fn impossible_dates_with_a_correct_check_character_fail() {
    for body in [
        "11010119000229001",
        "11010120230229001",
        "11010119991301001",
        "11010119990431001",
        "11010119990100001",
    ] {
        let c = resident_id_check_char(body.as_bytes()).unwrap() as char;
        let r = report_for(&with_id(&format!("{body}{c}")));
        assert!(
            r.has("id_documents[0].number", IssueCode::ResidentIdDate),
            "{body}: {r}"
        );
    }
    // Leap days that exist.
    for body in [
        "11010120000229001",
        "11010119960229001",
        "11010120240229001",
    ] {
        let c = resident_id_check_char(body.as_bytes()).unwrap() as char;
        assert!(
            report_for(&with_id(&format!("{body}{c}"))).is_valid(),
            "{body}"
        );
    }
    // Born after today.
    let body = "11010120261128001";
    let c = resident_id_check_char(body.as_bytes()).unwrap() as char;
    assert!(
        report_for(&with_id(&format!("{body}{c}")))
            .has("id_documents[0].number", IssueCode::ResidentIdFutureBirth)
    );
}

#[test]
fn company_records() {
    let company = |uscc: &str| {
        format!(
            r#"{{"id":"k-1","tenant":"acme","kind":"company","name":"示例科技有限公司",
                "id_documents":[{{"type":"uscc","number":"{uscc}"}}],"emails":["finance@example.cn"],
                "bank_accounts":[{{"bank_name":"中国银行","account_type":"settlement","account_number":"110144556600011"}}]}}"#
        )
    };
    for ok in [
        "91110000MA00000152",
        "91110000000000019B",
        "91110000MA0000AB0M",
        "92440300MA0000015Y",
        "91110000600037341L",
        "9111 0000 ma00 0001 52",
    ] {
        let r = report_for(&company(ok));
        assert!(r.is_valid() && r.issues.is_empty(), "{ok}: {r}");
    }
    assert!(
        report_for(&company("91110000MA00000153"))
            .has("id_documents[0].number", IssueCode::UsccChecksum)
    );
    assert!(
        report_for(&company("91110000MA0000015I"))
            .has("id_documents[0].number", IssueCode::UsccAlphabet)
    );
    // A correct USCC whose embedded organisation code is wrong: a warning only.
    let body = "91110000MA0000016";
    let check = coffer::record::uscc_check_char(body.as_bytes()).unwrap() as char;
    let r = report_for(&company(&format!("{body}{check}")));
    assert!(r.is_valid(), "{r}");
    assert!(r.has("id_documents[0].number", IssueCode::UsccOrgCode));
}

#[test]
fn bank_accounts() {
    let acct = |t: &str, n: &str| {
        individual(&format!(
            r#","bank_accounts":[{{"account_type":"{t}","account_number":"{n}"}}]"#
        ))
    };
    for (t, n) in [
        ("card", "6200000000000005"),
        ("card", "6200 0000 0000 0005"),
        ("card", "620000000000000005"),
        ("card", "6217000000000000004"),
        ("card", "4111111111111111"),
        ("settlement", "110144556600011"),
        ("iban", "DE17 1234 5678 0000 0000 01"),
        ("iban", "gb82west12345698765432"),
    ] {
        let r = report_for(&acct(t, n));
        assert!(r.is_valid(), "{t} {n}: {r}");
    }
    let path = "bank_accounts[0].account_number";
    assert!(report_for(&acct("card", "6200000000000006")).has(path, IssueCode::CardChecksum));
    assert!(report_for(&acct("card", "79927398713")).has(path, IssueCode::CardFormat));
    assert!(report_for(&acct("settlement", "12345A78")).has(path, IssueCode::AccountFormat));
    // A settlement account is never Luhn-checked.
    assert!(report_for(&acct("settlement", "6200000000000006")).is_valid());
    assert!(report_for(&acct("iban", "GB82WEST12345698765433")).has(path, IssueCode::IbanChecksum));
    assert!(report_for(&acct("iban", "DE1712345678000000001")).has(path, IssueCode::IbanLength));
    assert!(report_for(&acct("iban", "ZZ17123456780000000001")).has(path, IssueCode::IbanCountry));
}

#[test]
fn phones_and_emails() {
    let rec = |phones: &str, emails: &str| {
        format!(
            r#"{{"id":"c-1","tenant":"acme","kind":"individual","name":"张三",
                "id_documents":[{{"type":"passport","number":"E12345678","country":"cn"}}],
                "phones":{phones},"emails":{emails}}}"#
        )
    };
    let r = report_for(&rec(
        r#"["+86 138-0000-0000","0086 19200000000","(010) 1234-5678","+44 20 7183 8750"]"#,
        r#"["Zhang.San@EXAMPLE.com","a+b@example.cn"]"#,
    ));
    assert!(r.is_valid() && r.issues.is_empty(), "{r}");
    let r = report_for(&rec(
        r#"["15400000000","12000000000","1380000000","hello"]"#,
        r#"["no-at.example.com","x@-bad.com"]"#,
    ));
    assert!(r.has("phones[0]", IssueCode::MobileUnallocated));
    assert_eq!(
        r.issues
            .iter()
            .find(|i| i.code == IssueCode::MobileUnallocated)
            .unwrap()
            .severity,
        Severity::Warning
    );
    assert!(r.has("phones[1]", IssueCode::MobileFormat));
    assert!(r.has("phones[2]", IssueCode::MobileFormat));
    assert!(r.has("phones[3]", IssueCode::PhoneFormat));
    assert!(r.has("emails[0]", IssueCode::EmailFormat));
    assert!(r.has("emails[1]", IssueCode::EmailDomain));
    let long_local = format!(r#"["{}@example.com"]"#, "a".repeat(65));
    assert!(report_for(&rec("[]", &long_local)).has("emails[0]", IssueCode::EmailTooLong));

    // A strict schema turns the unallocated network code into an error.
    let strict = Schema::from_toml(
        &coffer::record::DEFAULT_SCHEMA_TOML
            .replace("strict_mobile = false", "strict_mobile = true"),
    )
    .unwrap();
    let mut r = CustomerRecord::from_json(&rec(r#"["15400000000"]"#, "[]")).unwrap();
    r.normalize();
    let report = strict.validate(&r, TODAY);
    assert!(!report.is_valid(), "{report}");
}

#[test]
fn completeness_per_kind() {
    let r = report_for(r#"{"id":"c-1","tenant":"acme","kind":"individual"}"#);
    assert!(r.has("name", IssueCode::RequiredMissing), "{r}");
    assert!(
        r.has("id_documents[0].number", IssueCode::RequiredMissing),
        "{r}"
    );
    assert!(r.has("phones", IssueCode::RequireAnyMissing), "{r}");
    let r = report_for(
        r#"{"id":"k-1","tenant":"acme","kind":"company","name":"示例公司","addresses":["上海市浦东新区某路1号"]}"#,
    );
    assert!(
        r.has("id_documents[0].number", IssueCode::RequiredMissing),
        "{r}"
    );
    assert!(!r.has("phones", IssueCode::RequireAnyMissing), "{r}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let json = r#"{"id":"","tenant":"acme","kind":"individual","name":"张\u0007三",
        "id_documents":[{"type":"cn_resident_id","number":"110101200001010000"},{"type":"hk_macau_permit","number":"X123"}],
        "phones":["12000000000"],"emails":["bad"],"addresses":[""],
        "bank_accounts":[{"account_type":"card","account_number":"6200000000000006"}],
        "custom":{"note":"a\u202eb"}}"#;
    let r = report_for(json);
    let codes: Vec<(String, &str)> = r
        .issues
        .iter()
        .map(|i| (i.path.to_string(), i.code.as_str()))
        .collect();
    for expected in [
        ("id", "value.empty"),
        ("name", "value.control_chars"),
        ("id_documents[0].number", "resident_id.checksum"),
        ("id_documents[1].number", "permit.format"),
        ("phones[0]", "phone.mobile_format"),
        ("emails[0]", "email.format"),
        ("addresses[0]", "value.empty"),
        ("bank_accounts[0].account_number", "card.checksum"),
        ("custom.note", "value.control_chars"),
    ] {
        assert!(
            codes
                .iter()
                .any(|(p, c)| p == expected.0 && *c == expected.1),
            "missing {expected:?} in {codes:?}"
        );
    }
    assert_eq!(r.errors().count(), 9, "{codes:?}");
    let json_report: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json_report["valid"], false);
    assert_eq!(json_report["issues"][0]["code"], "value.empty");
}

#[test]
fn too_long_values() {
    let long_name = "张".repeat(201);
    let r = report_for(&format!(
        r#"{{"id":"c-1","tenant":"acme","kind":"individual","name":"{long_name}"}}"#
    ));
    assert!(r.has("name", IssueCode::TooLong), "{r}");
    let ok_name = "张".repeat(200);
    let r = report_for(&format!(
        r#"{{"id":"c-1","tenant":"acme","kind":"individual","name":"{ok_name}"}}"#
    ));
    assert!(!r.has("name", IssueCode::TooLong), "{r}");
}

#[test]
fn check_refuses_invalid_and_returns_normalised_records() {
    let schema = Schema::builtin();
    let rec = CustomerRecord::from_json(&individual(r#","emails":["A@EXAMPLE.COM"]"#)).unwrap();
    let (rec, report) = schema.check(rec, TODAY).unwrap();
    assert!(report.issues.is_empty());
    assert_eq!(rec.emails[0].expose(), "A@example.com");
    assert_eq!(rec.kind, CustomerKind::Individual);
    let bad = CustomerRecord::from_json(&with_id("110101200001010000")).unwrap();
    let err = schema.check(bad, TODAY).unwrap_err();
    assert_eq!(err.kind(), coffer::ErrorKind::Validation);
    assert_eq!(err.code(), 5);
}
