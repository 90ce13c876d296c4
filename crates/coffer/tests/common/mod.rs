//! What the long-running tests (crash, load) share: the example policy and retention rules, a
//! customer of one's own subject, and an auditor with a ticket (who may read every field and has
//! no rate limit).
// Each test binary uses its own share of these.
#![allow(dead_code)]

use coffer::Access;
use coffer::policy::{Context, Principal};
use coffer::record::CustomerRecord;

pub(crate) const POLICY: &str = include_str!("../../../../examples/policies/accounting-firm.toml");
pub(crate) const RETENTION: &str = include_str!("../../../../examples/policies/retention.toml");

/// A customer of tenant `acme` with its own subject `s-{id}`: three data keys when sealed.
pub(crate) fn record(id: &str) -> CustomerRecord {
    CustomerRecord::from_json(&format!(
        r#"{{"id":"{id}","tenant":"acme","subject":"s-{id}","kind":"individual","name":"张三",
            "id_documents":[{{"type":"cn_resident_id","number":"11010119800101007X"}}],
            "phones":["13800000000"],
            "bank_accounts":[{{"account_type":"card","account_number":"6200000000000005"}}]}}"#
    ))
    .unwrap()
}

/// An auditor of `acme`, for the statutory audit, with a ticket.
pub(crate) fn auditor() -> Access {
    Access {
        principal: Principal {
            id: "auditor-1".into(),
            tenant: "acme".into(),
            roles: vec!["auditor".into()],
            ..Default::default()
        },
        purpose: "statutory_audit".into(),
        context: Context {
            ticket: Some("AUD-1".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Who may search a field under the example policy: an accountant for payments (identity
/// documents, bank accounts), a clerk for bookkeeping (contact details).
pub(crate) fn searcher(tenant: &str, field: &str) -> Access {
    let (role, purpose) = if field.starts_with("phones") || field.starts_with("emails") {
        ("clerk", "bookkeeping")
    } else {
        ("accountant", "payments")
    };
    Access {
        principal: Principal {
            id: format!("{role}-1"),
            tenant: tenant.into(),
            roles: vec![role.into()],
            ..Default::default()
        },
        purpose: purpose.into(),
        ..Default::default()
    }
}

/// The blind-index tokens of one value, searched as [`searcher`] (the handle must have the
/// example policy loaded).
pub(crate) fn tokens(
    c: &coffer::Coffer,
    tenant: &str,
    field: &str,
    value: &str,
) -> coffer::Result<Vec<coffer::IndexToken>> {
    c.search(&searcher(tenant, field), field, value)
        .map(|mut a| a.tokens.remove(0))
}
