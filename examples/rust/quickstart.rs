//! Quick start: read, normalise, validate and mask a customer record.
//!
//! Run: cargo run -p coffer --example quickstart
#![allow(clippy::print_stdout)] // an example shows its results on the terminal

use coffer::mask::Profile;
use coffer::record::{CustomerRecord, Schema};

fn main() -> Result<(), coffer::Error> {
    let record = CustomerRecord::from_json(
        r#"{"id": "c-1", "tenant": "acme", "kind": "individual", "name": "张三",
            "id_documents": [{"type": "cn_resident_id", "number": "11010119800101007x"}],
            "phones": ["+86 138 0000 0000"]}"#,
    )?;
    let today = time::OffsetDateTime::now_utc().date();

    // Normalise, then validate against the built-in schema; an invalid record is refused with
    // a report that names each field and problem, never a value.
    let schema = Schema::builtin();
    let (record, report) = schema.check(record, today)?;
    assert!(report.is_valid());

    // Display forms follow the schema's mask rule for each field.
    for field in record.fields() {
        if let Some(spec) = schema.spec_for(&field.path)
            && let coffer::mask::Masked::Text(shown) =
                spec.mask.apply(field.value, Profile::Standard)
        {
            println!("{:<24} {shown}", field.path.to_string());
        }
    }
    // Secrets redact themselves.
    println!("{:?}", record.name);
    Ok(())
}
