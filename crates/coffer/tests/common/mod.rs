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

    /// The store of this test: its file in the folder, or, when `COFFER_TEST_POSTGRES` is
    /// set, a schema of its own on that PostgreSQL server (see [`store_in`]).
    pub(crate) fn db(&self) -> std::path::PathBuf {
        store_in(&self.0)
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

/// The PostgreSQL server the store-facing tests run against instead of SQLite files, if any
/// (`scripts/test` sets `COFFER_TEST_POSTGRES` for its second pass).
pub(crate) fn postgres() -> Option<String> {
    std::env::var("COFFER_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
}

/// The store that lives "in" a test's folder: `DIR/coffer.db`, or, against PostgreSQL, the
/// schema named after the folder (each test's folder is named after the test and the process,
/// so each test has a fresh schema of its own).
pub(crate) fn store_in(dir: &std::path::Path) -> std::path::PathBuf {
    match postgres() {
        Some(url) => {
            let name: String = dir
                .file_name()
                .unwrap()
                .to_string_lossy()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            // The folder's name, and a hash of its whole path (two tests may use folders of
            // the same name under different parents).
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            dir.hash(&mut h);
            let schema = format!(
                "t_{}_{:08x}",
                &name[name.len().saturating_sub(48)..],
                h.finish() as u32
            );
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}schema={schema}").into()
        }
        None => dir.join("coffer.db"),
    }
}

/// Runs SQL statements on the store at `location` directly, as an attacker with access to the
/// database would (SQLite file or PostgreSQL schema); returns the rows the last one changed.
pub(crate) fn sql(location: &std::path::Path, statements: &str) -> u64 {
    let text = location.to_string_lossy();
    if text.starts_with("postgres://") {
        let (base, schema) = text.rsplit_once("?schema=").unwrap();
        let mut client = postgres::Client::connect(base, postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("SET search_path TO {schema}"))
            .unwrap();
        let mut changed = 0;
        for st in statements.split(';').filter(|s| !s.trim().is_empty()) {
            changed = client.execute(st, &[]).unwrap();
        }
        changed
    } else {
        let conn = rusqlite::Connection::open(location).unwrap();
        let mut changed = 0;
        for st in statements.split(';').filter(|s| !s.trim().is_empty()) {
            changed = conn.execute(st, []).unwrap() as u64;
        }
        changed
    }
}

/// What the store at `location` holds, to compare before and after something that must not
/// write: an SQLite file's bytes, or a PostgreSQL store's summary (entries, chain head, keys).
pub(crate) fn fingerprint(location: &std::path::Path) -> Vec<u8> {
    if postgres().is_some() {
        let s = coffer::store::open(location, false)
            .unwrap()
            .summary()
            .unwrap();
        format!("{s:?}").into_bytes()
    } else {
        std::fs::read(location).unwrap()
    }
}

/// Everything the store at `location` holds, as bytes to search: an SQLite file and its
/// write-ahead log, or every row of every table of a PostgreSQL store's schema as text (bytea
/// columns in hex, which a search for text values still covers).
pub(crate) fn store_bytes(location: &std::path::Path) -> Vec<u8> {
    let text = location.to_string_lossy();
    if let Some((base, schema)) = text.rsplit_once("?schema=") {
        let mut client = postgres::Client::connect(base, postgres::NoTls).unwrap();
        let tables: Vec<String> = client
            .query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
                &[&schema],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut out = Vec::new();
        for t in tables {
            for r in client
                .query(&format!("SELECT t::text FROM {schema}.{t} t"), &[])
                .unwrap()
            {
                out.extend(r.get::<_, String>(0).into_bytes());
            }
        }
        out
    } else {
        let mut bytes = std::fs::read(location).unwrap();
        if let Ok(wal) = std::fs::read(format!("{}-wal", location.display())) {
            bytes.extend(wal);
        }
        bytes
    }
}

/// Whether this run's store is an SQLite file: tests of the file itself (its bytes, its
/// permissions, SQLite's own errors) say so and stop when it is not.
pub(crate) fn sqlite_only(test: &str) -> bool {
    if postgres().is_some() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("{test}: a test of the SQLite file itself; not run against PostgreSQL");
        }
        return false;
    }
    true
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
