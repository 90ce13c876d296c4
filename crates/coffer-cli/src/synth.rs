//! Synthetic customers: valid check characters, clearly fake (example.com e-mails, 示例 places,
//! region 110101 with sequence numbers no registry issued to anyone we could know). Used by
//! `coffer demo`, `coffer generate` and the tests.

use std::io::{self, Write};

use coffer::record::{luhn_check_digit, resident_id_check_char};

const SURNAMES: [&str; 12] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙",
];
const GIVEN: [&str; 16] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
];

/// One synthetic customer's values.
pub(crate) struct Customer {
    pub(crate) id: String,
    pub(crate) subject: String,
    pub(crate) name: String,
    pub(crate) resident_id: String,
    pub(crate) phone: String,
    pub(crate) email: String,
    pub(crate) address: String,
    pub(crate) card: String,
}

/// The `i`-th synthetic customer (deterministic).
pub(crate) fn customer(i: u64) -> Customer {
    let name = format!(
        "{}{}{}",
        SURNAMES[(i % 12) as usize],
        GIVEN[((i / 12) % 16) as usize],
        GIVEN[((i / 192) % 16) as usize]
    );
    // Birth dates from 1950-01-01 over ~50 years; the sequence number varies with i.
    let birth = time::macros::date!(1950 - 01 - 01)
        + time::Duration::days(((i.wrapping_mul(7919)) % 18_250) as i64);
    let body = format!(
        "110101{:04}{:02}{:02}{:03}",
        birth.year(),
        u8::from(birth.month()),
        birth.day(),
        i % 1000
    );
    let check = resident_id_check_char(body.as_bytes()).unwrap_or(b'0') as char;
    let card_payload = format!("620000{:09}", i % 1_000_000_000);
    let card_check = luhn_check_digit(&card_payload).unwrap_or(b'0') as char;
    Customer {
        id: format!("c-{i:07}"),
        subject: format!("s-{i:07}"),
        name,
        resident_id: format!("{body}{check}"),
        phone: format!("139{:08}", i % 100_000_000),
        email: format!("customer{i}@example.com"),
        // Real provinces and cities (the address mask shows only recognised ones), a clearly
        // fictitious street.
        address: format!(
            "{}示例路{}号",
            PLACES[i as usize % PLACES.len()],
            i % 10_000 + 1
        ),
        card: format!("{card_payload}{card_check}"),
    }
}

/// The customer as a record (JSON) of `tenant`.
pub(crate) fn record_json(c: &Customer, tenant: &str) -> String {
    serde_json::json!({
        "id": c.id, "tenant": tenant, "subject": c.subject, "kind": "individual", "name": c.name,
        "id_documents": [{"type": "cn_resident_id", "number": c.resident_id}],
        "phones": [c.phone], "emails": [c.email], "addresses": [c.address],
        "bank_accounts": [{"bank_name": "示例银行", "account_type": "card", "account_number": c.card}],
    })
    .to_string()
}

/// The CSV header `generate` writes.
/// Where the synthetic customers live: province, city and district.
const PLACES: [&str; 4] = [
    "北京市朝阳区",
    "上海市浦东新区",
    "广东省深圳市南山区",
    "浙江省杭州市西湖区",
];

pub(crate) const CSV_HEADER: &str = "id,tenant,subject,kind,name,id_type,id_number,phone,email,address,bank_name,account_type,account_number";

/// Writes `rows` customers as CSV; every `invalid_every`-th row (if not 0) gets a wrong check
/// character in its ID number.
pub(crate) fn write_csv(
    out: &mut dyn Write,
    rows: u64,
    tenant: &str,
    invalid_every: u64,
) -> io::Result<()> {
    writeln!(out, "{CSV_HEADER}")?;
    for i in 1..=rows {
        let mut c = customer(i);
        if invalid_every > 0 && i % invalid_every == 0 {
            let last = c.resident_id.pop().unwrap_or('0');
            c.resident_id.push(if last == '1' { '2' } else { '1' });
        }
        writeln!(
            out,
            "{},{tenant},{},individual,{},cn_resident_id,{},{},{},{},示例银行,card,{}",
            c.id, c.subject, c.name, c.resident_id, c.phone, c.email, c.address, c.card
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer::record::{CustomerRecord, Schema};

    #[test]
    fn synthetic_customers_are_valid() {
        for i in [1, 2, 999, 1000, 123_456, 9_999_999] {
            let r = CustomerRecord::from_json(&record_json(&customer(i), "t")).unwrap();
            let today = time::macros::date!(2026 - 11 - 27);
            let (_, report) = Schema::builtin().check(r, today).unwrap();
            assert!(report.is_valid(), "{i}: {report}");
        }
    }
}
