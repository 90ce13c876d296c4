//! Every documented limit (docs/RELIABILITY.md, "Limits"), at the limit and just past it: at the
//! limit the input is accepted; one past, it is refused with a typed error that names what is too
//! large and the limit, and never echoes the input.

use coffer::policy::{MAX_POLICY_BYTES, MAX_ROLES, Policy};
use coffer::record::{
    CustomerRecord, FieldPath, MAX_CUSTOM_FIELDS, MAX_LIST_ITEMS, MAX_PATH_LEN, MAX_RECORD_BYTES,
    MAX_VALUE_BYTES, Schema,
};
use coffer::{Coffer, ErrorKind, MasterKey, OpenOptions};

const POLICY: &str = include_str!("../../../examples/policies/accounting-firm.toml");
const RETENTION: &str = include_str!("../../../examples/policies/retention.toml");

fn limit_error(e: &coffer::Error, what: &str, limit: usize) {
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    let msg = e.to_string();
    assert!(msg.contains(what), "{msg} should name {what}");
    assert!(
        msg.contains(&limit.to_string()),
        "{msg} should give {limit}"
    );
}

/// A record JSON of exactly `len` bytes (padded with spaces after the closing brace).
fn record_of_len(len: usize) -> String {
    let mut text = String::from(r#"{"id":"c-1","tenant":"acme","kind":"company","name":"示例"}"#);
    text.push_str(&" ".repeat(len - text.len()));
    text
}

#[test]
fn record_json_bytes() {
    assert!(CustomerRecord::from_json(&record_of_len(MAX_RECORD_BYTES)).is_ok());
    let e = CustomerRecord::from_json(&record_of_len(MAX_RECORD_BYTES + 1)).unwrap_err();
    limit_error(&e, "customer record JSON", MAX_RECORD_BYTES);
    let e = CustomerRecord::from_json_bytes(record_of_len(MAX_RECORD_BYTES + 1).as_bytes())
        .unwrap_err();
    limit_error(&e, "customer record JSON", MAX_RECORD_BYTES);
}

#[test]
fn field_value_bytes() {
    let with = |n: usize| {
        format!(
            r#"{{"id":"c-1","tenant":"acme","kind":"company","custom":{{"note":"{}"}}}}"#,
            "秘".repeat(n / 3) + &"x".repeat(n % 3)
        )
    };
    assert!(CustomerRecord::from_json(&with(MAX_VALUE_BYTES)).is_ok());
    let e = CustomerRecord::from_json(&with(MAX_VALUE_BYTES + 1)).unwrap_err();
    limit_error(&e, "custom.note", MAX_VALUE_BYTES);
    assert!(!e.to_string().contains('秘'), "the value is not echoed");
}

#[test]
fn list_items() {
    let with = |n: usize| {
        let phones: Vec<String> = (0..n).map(|i| format!("\"1380000{i:04}\"")).collect();
        format!(
            r#"{{"id":"c-1","tenant":"acme","kind":"company","phones":[{}]}}"#,
            phones.join(",")
        )
    };
    assert!(CustomerRecord::from_json(&with(MAX_LIST_ITEMS)).is_ok());
    let e = CustomerRecord::from_json(&with(MAX_LIST_ITEMS + 1)).unwrap_err();
    limit_error(&e, "phones", MAX_LIST_ITEMS);
}

#[test]
fn custom_fields() {
    let with = |n: usize| {
        let fields: Vec<String> = (0..n).map(|i| format!("\"f{i}\":\"v\"")).collect();
        format!(
            r#"{{"id":"c-1","tenant":"acme","kind":"company","custom":{{{}}}}}"#,
            fields.join(",")
        )
    };
    assert!(CustomerRecord::from_json(&with(MAX_CUSTOM_FIELDS)).is_ok());
    let e = CustomerRecord::from_json(&with(MAX_CUSTOM_FIELDS + 1)).unwrap_err();
    limit_error(&e, "custom", MAX_CUSTOM_FIELDS);
}

#[test]
fn field_path_length() {
    let path = |n: usize| format!("custom.{}", "k".repeat(n - "custom.".len()));
    assert!(FieldPath::parse(&path(MAX_PATH_LEN)).is_ok());
    let e = FieldPath::parse(&path(MAX_PATH_LEN + 1)).unwrap_err();
    limit_error(&e, "field path", MAX_PATH_LEN);
}

#[test]
fn envelope_bytes() {
    let dir = std::env::temp_dir().join(format!("coffer-limits-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let c = Coffer::open(dir.join("s.db"), &MasterKey::generate().unwrap()).unwrap();
    let env = c
        .seal(
            CustomerRecord::from_json(
                r#"{"id":"k-1","tenant":"acme","kind":"company","name":"示例","emails":["a@example.cn"],
                    "id_documents":[{"type":"uscc","number":"91110000MA00000152"}]}"#,
            )
            .unwrap(),
            "t",
        )
        .unwrap();
    let max = coffer::envelope::MAX_ENVELOPE_BYTES;
    let mut text = env.to_json().to_string();
    text.push_str(&" ".repeat(max - text.len()));
    assert!(
        c.open_envelope(&text).is_ok(),
        "an envelope of exactly the limit opens"
    );
    text.push(' ');
    limit_error(&c.open_envelope(&text).unwrap_err(), "envelope", max);
    drop(c);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn policy_bytes_and_roles() {
    let schema = Schema::builtin();
    let padded = |len: usize| {
        let mut text = POLICY.to_owned();
        text.push_str("\n#");
        text.push_str(&"p".repeat(len - text.len()));
        text
    };
    assert!(Policy::from_toml(&padded(MAX_POLICY_BYTES), schema).is_ok());
    let e = Policy::from_toml(&padded(MAX_POLICY_BYTES + 1), schema).unwrap_err();
    limit_error(&e, "policy document", MAX_POLICY_BYTES);
    // Roles: a count over the limit is a policy problem with its position.
    let declared = Policy::from_toml(POLICY, schema).unwrap().roles().len();
    let roles = |n: usize| {
        let mut text = POLICY.to_owned();
        for i in 0..n - declared {
            text.push_str(&format!("[roles.extra_{i}]\n"));
        }
        text
    };
    assert!(Policy::from_toml(&roles(MAX_ROLES), schema).is_ok());
    let e = Policy::from_toml(&roles(MAX_ROLES + 1), schema).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Policy, "{e}");
    assert!(
        e.to_string()
            .contains(&format!("more than {MAX_ROLES} roles")),
        "{e}"
    );
}

#[test]
fn policy_nesting() {
    let max = coffer::policy::MAX_POLICY_NESTING;
    // The nesting is counted before the document is parsed: `max` levels pass the count (and
    // then fail as a policy, being arrays), one more is refused as too deep.
    let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let e = Policy::from_json(&nested(max), Schema::builtin()).unwrap_err();
    assert_ne!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    limit_error(
        &Policy::from_json(&nested(max + 1), Schema::builtin()).unwrap_err(),
        "nesting",
        max,
    );
}

#[test]
fn schema_and_retention_bytes() {
    let pad = |doc: &str, len: usize| {
        let mut text = doc.to_owned();
        text.push_str("\n#");
        text.push_str(&"p".repeat(len - text.len()));
        text
    };
    let max = coffer::record::MAX_SCHEMA_BYTES;
    let doc = coffer::record::DEFAULT_SCHEMA_TOML;
    assert!(Schema::from_toml(&pad(doc, max)).is_ok());
    limit_error(
        &Schema::from_toml(&pad(doc, max + 1)).unwrap_err(),
        "schema document",
        max,
    );
    let max = coffer::retention::MAX_RETENTION_BYTES;
    let schema = Schema::builtin();
    assert!(coffer::retention::Retention::from_toml(&pad(RETENTION, max), schema).is_ok());
    limit_error(
        &coffer::retention::Retention::from_toml(&pad(RETENTION, max + 1), schema).unwrap_err(),
        "retention document",
        max,
    );
}

#[test]
fn batch_items() {
    let max = coffer::wire::MAX_BATCH;
    let array = |n: usize| format!("[{}]", vec!["{}"; n].join(","));
    assert_eq!(
        coffer::wire::array_items(&array(max), "records", max)
            .unwrap()
            .len(),
        max
    );
    limit_error(
        &coffer::wire::array_items(&array(max + 1), "records", max).unwrap_err(),
        "records",
        max,
    );
}

#[test]
fn deep_json_nesting_is_a_typed_error_not_a_crash() {
    // serde_json stops at 128 levels; far deeper input must still end in an error, not a stack
    // overflow, in every JSON entry point.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let object = format!(
        r#"{{"id":"c-1","tenant":"acme","kind":"company","custom":{}}}"#,
        deep
    );
    assert_eq!(
        CustomerRecord::from_json(&object).unwrap_err().kind(),
        ErrorKind::Malformed
    );
    assert!(coffer::Envelope::from_json(&deep).is_err());
    assert!(coffer::wire::access_from_json(&deep).is_err());
    assert!(coffer::wire::open_options_from_json(&deep).is_err());
    assert!(coffer::wire::array_items(&deep, "records", 10).is_err());
    assert_eq!(
        Policy::from_json(&deep, Schema::builtin())
            .unwrap_err()
            .kind(),
        ErrorKind::LimitExceeded
    );
    let dir = std::env::temp_dir().join(format!("coffer-limits-deep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let c = Coffer::open_with(
        dir.join("s.db"),
        &MasterKey::generate().unwrap(),
        OpenOptions {
            policy: Some(Policy::from_toml(POLICY, Schema::builtin()).unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(coffer::wire::seal_many_json(&c, &deep, "t").is_err());
    assert!(coffer::wire::reveal_many_json(&c, &deep, "{}").is_err());
    drop(c);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Names that land in the audit trail (actor, principal, tenant, subject, purpose, roles) are
/// neither empty nor longer than `MAX_NAME_BYTES`; a search looks up at most
/// `MAX_SEARCH_VALUES` values of at most `MAX_VALUE_BYTES` each; a store path is never empty.
#[test]
fn names_search_values_and_paths() {
    use coffer::policy::Principal;
    use coffer::{Access, MAX_NAME_BYTES, MAX_SEARCH_VALUES};
    let dir = std::env::temp_dir().join(format!("coffer-limits-names-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let c = Coffer::open_with(
        dir.join("s.db"),
        &MasterKey::generate().unwrap(),
        OpenOptions {
            policy: Some(Policy::from_toml(POLICY, Schema::builtin()).unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    let before = c.audit_len().unwrap();
    let record = || {
        CustomerRecord::from_json(
            r#"{"id":"c-1","tenant":"acme","kind":"company","name":"示例",
                "id_documents":[{"type":"uscc","number":"91350100M000100Y43"}],
                "phones":["13800000000"]}"#,
        )
        .unwrap()
    };
    // The actor.
    let at_limit = "a".repeat(MAX_NAME_BYTES);
    c.seal(record(), &at_limit).unwrap();
    let huge = "a".repeat(10 << 20);
    limit_error(
        &c.seal(record(), &huge).unwrap_err(),
        "actor",
        MAX_NAME_BYTES,
    );
    let e = c.seal(record(), "").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains("actor"), "{e}");
    assert_eq!(
        c.erase("", "s-1", "dpo").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        c.erase("acme", " ", "dpo").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    // The access.
    let access = |id: &str, tenant: &str| Access {
        principal: Principal {
            id: id.into(),
            tenant: tenant.into(),
            roles: vec!["accountant".into()],
            ..Default::default()
        },
        purpose: "payments".into(),
        ..Default::default()
    };
    let field = "id_documents[].number";
    let ok = access("u-1", "acme");
    for bad in [access("", "acme"), access("u-1", "")] {
        let e = c.search(&bad, field, "91350100M000100Y43").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    }
    limit_error(
        &c.search(&access(&huge, "acme"), field, "x").unwrap_err(),
        "principal.id",
        MAX_NAME_BYTES,
    );
    // Search values.
    assert!(c.search(&ok, field, &"1".repeat(MAX_VALUE_BYTES)).is_ok());
    limit_error(
        &c.search(&ok, field, &huge).unwrap_err(),
        "search value 0",
        MAX_VALUE_BYTES,
    );
    let many = vec!["1"; MAX_SEARCH_VALUES + 1];
    limit_error(
        &c.search_many(&ok, field, &many).unwrap_err(),
        "values in one search",
        MAX_SEARCH_VALUES,
    );
    // Nothing of the refused calls reached the trail: one seal and one search were accepted
    // (the seal writes its key entry and its own).
    assert_eq!(c.audit_len().unwrap(), before + 3);
    let mut trail = Vec::new();
    c.audit_export(&mut trail).unwrap();
    assert!(trail.len() < 64 * 1024, "no 10 MB name in the trail");
    drop(c);
    // An empty store path.
    let e = Coffer::open("", &MasterKey::generate().unwrap()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains("path"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
