//! `coffer demo`: a walk-through of validation, normalisation and masking on synthetic records.
//!
//! Every identifier below is synthetic (the reference notes' test vectors or generated with a
//! valid check character): none belongs to a real person or company.

use std::io::{self, Write};

use coffer::mask::{MaskForm, Profile, partial};
use coffer::record::{CustomerRecord, FIELD_PATTERNS, Protection, Schema};

const TODAY: time::Date = time::macros::date!(2026 - 11 - 27);

const MESSY_INDIVIDUAL: &str = r#"{
  "id": "c-0001", "tenant": "demo-firm", "kind": "individual",
  "name": " 张 三 ",
  "id_documents": [{"type": "cn_resident_id", "number": "１１０１０１ １９８００１０１ ００７ｘ"}],
  "phones": ["+86 138-0000-0000", "(010) 1234-5678"],
  "emails": ["Zhang.San@EXAMPLE.com"],
  "addresses": ["北京市东城区示例街道1号"],
  "bank_accounts": [
    {"bank_name": "示例银行", "branch": "北京分行", "account_type": "card", "account_number": "6200 0000 0000 0005"},
    {"bank_name": "示例银行", "account_type": "settlement", "account_number": "110144556600011"}
  ]
}"#;

const BROKEN_INDIVIDUAL: &str = r#"{
  "id": "c-0002", "tenant": "demo-firm", "kind": "individual",
  "name": "李四",
  "id_documents": [{"type": "cn_resident_id", "number": "110101199002300006"},
                   {"type": "cn_resident_id", "number": "110101200001010000"}],
  "phones": ["12000000000", "15400000000"],
  "emails": ["li.si@-example.com"],
  "bank_accounts": [{"account_type": "card", "account_number": "6200000000000006"},
                    {"account_type": "iban", "account_number": "GB82 WEST 1234 5698 7654 33"}]
}"#;

const COMPANY: &str = r#"{
  "id": "k-0001", "tenant": "demo-firm", "kind": "company",
  "name": "示例科技有限公司",
  "id_documents": [{"type": "uscc", "number": "91110000MA00000152"}],
  "emails": ["finance@example.cn"],
  "addresses": ["广东省深圳市南山区示例路2号"],
  "bank_accounts": [{"bank_name": "Example Bank", "account_type": "iban", "account_number": "DE17 1234 5678 0000 0000 01"}]
}"#;

fn heading(out: &mut dyn Write, n: u32, title: &str) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "{n}. {title}")?;
    writeln!(out, "{}", "-".repeat(title.chars().count() + 3))
}

pub(crate) fn run(out: &mut dyn Write) -> Result<(), crate::Failure> {
    let schema = Schema::builtin();
    writeln!(
        out,
        "Coffer {} — a walk-through of the foundation: validation, normalisation and masking.",
        coffer::VERSION
    )?;
    writeln!(
        out,
        "All records below are synthetic. \"Today\" is {TODAY} for the birth-date checks."
    )?;

    heading(
        out,
        1,
        "The built-in schema: what each field is and how it is protected",
    )?;
    writeln!(
        out,
        "  {:<34} {:<10} {:<10} {:<14} {:<10} category",
        "field", "class", "protection", "index", "mask"
    )?;
    for pattern in FIELD_PATTERNS {
        if let Some(spec) = schema.spec_for_pattern(pattern) {
            let protection = match spec.protection {
                Protection::Clear => "clear",
                Protection::Encrypted => "encrypted",
            };
            let index = spec.index.map_or("-".to_owned(), |i| {
                format!("{}/{}b", i.transform.as_str(), i.bits)
            });
            writeln!(
                out,
                "  {:<34} {:<10} {:<10} {:<14} {:<10} {}",
                pattern,
                spec.classification.as_str(),
                protection,
                index,
                spec.mask.as_str(),
                spec.category
            )?;
        }
    }

    heading(
        out,
        2,
        "Normalisation: one spelling per value, so it always validates, indexes and seals the same way",
    )?;
    let raw = CustomerRecord::from_json(MESSY_INDIVIDUAL)?;
    let (clean, report) = schema.check(raw.clone(), TODAY)?;
    let before = raw.fields();
    let after = clean.fields();
    for (b, a) in before.iter().zip(after.iter()) {
        if b.value != a.value {
            writeln!(
                out,
                "  {:<32} {:?}  ->  {:?}",
                a.path.to_string(),
                b.value,
                a.value
            )?;
        }
    }
    writeln!(
        out,
        "  Result: {} (full-width folded, separators and +86 removed, x -> X, e-mail domain lower-cased)",
        report
    )?;

    heading(
        out,
        3,
        "Validation reports every problem at once, with a path and a stable code, never the value",
    )?;
    let broken = CustomerRecord::from_json(BROKEN_INDIVIDUAL)?;
    match schema.check(broken, TODAY) {
        Ok(_) => writeln!(out, "  (unexpectedly valid)")?,
        Err(e) => {
            let report = e.validation_report().cloned().unwrap_or_default();
            writeln!(
                out,
                "  {} error(s), {} warning(s):",
                report.errors().count(),
                report.warnings().count()
            )?;
            for issue in &report.issues {
                writeln!(out, "    {issue}")?;
            }
            writeln!(
                out,
                "  (The first ID has a correct check character but a 30 February birth date.)"
            )?;
        }
    }

    heading(
        out,
        4,
        "A company: the Unified Social Credit Code and an IBAN",
    )?;
    let (company, report) = schema.check(CustomerRecord::from_json(COMPANY)?, TODAY)?;
    writeln!(out, "  {} {} — {}", company.kind, company.id, report)?;

    heading(
        out,
        5,
        "Masked display forms (the schema's rule for each field), standard and privileged profiles",
    )?;
    writeln!(out, "  {:<32} {:<28} privileged", "field", "standard")?;
    for record in [&clean, &company] {
        for field in record.fields() {
            let Some(spec) = schema.spec_for(&field.path) else {
                continue;
            };
            if spec.protection == Protection::Clear {
                continue;
            }
            let show = |p: Profile| match spec.mask.apply(field.value, p) {
                coffer::mask::Masked::Text(t) => t,
                coffer::mask::Masked::Withheld => "(withheld)".into(),
                coffer::mask::Masked::KeyedHash => "(keyed token)".into(),
            };
            writeln!(
                out,
                "  {:<32} {:<28} {}",
                field.path.to_string(),
                show(Profile::Standard),
                show(Profile::Privileged)
            )?;
        }
    }
    writeln!(
        out,
        "  Card numbers with the card form: {} / {}",
        partial(MaskForm::Card, Profile::Standard, "6200000000000005"),
        partial(MaskForm::Card, Profile::Privileged, "6200000000000005")
    )?;

    heading(out, 6, "Secrets redact themselves")?;
    let debug = format!("{:?}", clean.name);
    writeln!(out, "  format!(\"{{:?}}\", record.name) = {debug}")?;
    writeln!(out)?;
    writeln!(
        out,
        "Next in Coffer: sealing each field under a key hierarchy, access policies, retention and audit."
    )?;
    Ok(())
}
