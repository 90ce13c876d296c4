//! Quick start: validate and mask a record, then seal it in a store, find it by ID number,
//! reveal it as two roles, and verify the audit trail.
//!
//! Run: cargo run -p coffer --example quickstart
#![allow(clippy::print_stdout)] // an example shows its results on the terminal

use coffer::mask::Profile;
use coffer::policy::{Policy, Principal};
use coffer::record::{CustomerRecord, Schema};
use coffer::{Access, Coffer, MasterKey, OpenOptions};

fn main() -> Result<(), coffer::Error> {
    let record = CustomerRecord::from_json(
        r#"{"id": "c-1", "tenant": "acme", "kind": "individual", "name": "张三",
            "id_documents": [{"type": "cn_resident_id", "number": "11010119800101007x"}],
            "phones": ["+86 138 0000 0000"],
            "bank_accounts": [{"account_type": "card", "account_number": "6200 0000 0000 0005"}]}"#,
    )?;

    // 1. Normalise and validate; an invalid record is refused with a report that names each
    //    field and problem, never a value.
    let schema = Schema::builtin();
    let (checked, report) = schema.check(record.clone(), time::OffsetDateTime::now_utc().date())?;
    assert!(report.is_valid());
    for field in checked.fields() {
        if let Some(spec) = schema.spec_for(&field.path)
            && let coffer::mask::Masked::Text(shown) =
                spec.mask.apply(field.value, Profile::Standard)
        {
            println!("{:<34} {shown}", field.path.to_string());
        }
    }

    // 2. Seal it in a store. The master key comes from the host (a file, an environment
    //    variable, a KMS); Coffer never stores it.
    let dir = std::env::temp_dir().join(format!("coffer-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| coffer::Error::Io {
        what: "temp dir".into(),
        reason: e.to_string(),
    })?;
    let policy = Policy::from_toml(include_str!("../policies/accounting-firm.toml"), schema)?;
    let master = MasterKey::generate()?;
    let coffer = Coffer::open_with(
        dir.join("coffer.db"),
        &master,
        OpenOptions {
            policy: Some(policy),
            ..Default::default()
        },
    )?;
    let envelope = coffer.seal(record, "quickstart")?;
    println!(
        "envelope: {} bytes of JSON for the host's database",
        envelope.to_json().len()
    );

    // 3. Find it by ID number: a search is an access like a reveal (decided, counted against
    //    rate limits, audited); the host looks the token up in its own indexed column.
    let accountant = Access {
        principal: Principal {
            id: "accountant-1".into(),
            tenant: "acme".into(),
            roles: vec!["accountant".into()],
            ..Default::default()
        },
        purpose: "payments".into(),
        ..Default::default()
    };
    let found = coffer.search(&accountant, "id_documents[].number", "110101 19800101 007X")?;
    assert_eq!(
        envelope.token("id_documents[0].number", 1),
        Some(found.tokens[0][0].token.as_str())
    );

    // 4. Reveal it: a clerk sees masks, an accountant paying the customer sees the card.
    for (role, purpose) in [("clerk", "bookkeeping"), ("accountant", "payments")] {
        let access = Access {
            principal: Principal {
                id: format!("{role}-1"),
                tenant: "acme".into(),
                roles: vec![role.into()],
                ..Default::default()
            },
            purpose: purpose.into(),
            ..Default::default()
        };
        let view = coffer.reveal(&envelope, &access)?;
        println!(
            "{role:<10} card: {:?}",
            view.fields["bank_accounts[0].account_number"]
        );
    }

    // 5. Every access is in the tamper-evident audit trail.
    let report = coffer.audit_verify(None)?;
    println!(
        "audit: {} entries, intact: {}",
        report.entries, report.intact
    );
    println!("{:?}", checked.name); // secrets redact themselves: Some([redacted])
    drop(coffer);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
