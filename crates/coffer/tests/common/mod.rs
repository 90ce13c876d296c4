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

/// A scratch folder for one test, removed when dropped: `coffer-{name}-{pid}` in the temporary
/// directory (each test binary is a process of its own, so names need only differ within one).
pub(crate) struct Dir(pub(crate) std::path::PathBuf);

impl Dir {
    pub(crate) fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("coffer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }

    /// The store's file in it.
    pub(crate) fn db(&self) -> std::path::PathBuf {
        self.0.join("coffer.db")
    }

    /// Another file in it.
    pub(crate) fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// 2026-12-01 10:00 in Beijing, a fixed clock the test moves.
pub(crate) fn clock() -> std::sync::Arc<coffer::clock::FixedClock> {
    std::sync::Arc::new(coffer::clock::FixedClock::new(
        time::macros::datetime!(2026-12-01 10:00 +08:00),
    ))
}

/// Opens (or creates) the store at `path` with the example policy and retention rules and
/// `clock`.
pub(crate) fn open_with_rules(
    path: &std::path::Path,
    key: &coffer::MasterKey,
    clock: &std::sync::Arc<coffer::clock::FixedClock>,
) -> coffer::Result<coffer::Coffer> {
    let schema = coffer::record::Schema::builtin();
    coffer::Coffer::open_with(
        path,
        key,
        coffer::OpenOptions {
            policy: Some(coffer::policy::Policy::from_toml(POLICY, schema).unwrap()),
            retention: Some(coffer::retention::Retention::from_toml(RETENTION, schema).unwrap()),
            clock: std::sync::Arc::clone(clock) as std::sync::Arc<dyn coffer::clock::Clock>,
            ..Default::default()
        },
    )
}

/// A principal of `acme` in one role, for one purpose, with a ticket.
pub(crate) fn who(id: &str, role: &str, purpose: &str) -> Access {
    Access {
        principal: Principal {
            id: id.into(),
            tenant: "acme".into(),
            roles: vec![role.into()],
            ..Default::default()
        },
        purpose: purpose.into(),
        context: Context {
            ticket: Some("T-1".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// An individual of `acme` with its own subject `s-{id}`, a resident ID and one phone.
pub(crate) fn customer(id: &str, phone: &str) -> CustomerRecord {
    CustomerRecord::from_json(&format!(
        r#"{{"id":"{id}","tenant":"acme","subject":"s-{id}","kind":"individual","name":"张三",
            "id_documents":[{{"type":"cn_resident_id","number":"11010119800101007X"}}],
            "phones":["{phone}"]}}"#
    ))
    .unwrap()
}
