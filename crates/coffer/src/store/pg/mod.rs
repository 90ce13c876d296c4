//! The shared PostgreSQL store, for several application servers on one database.
//!
//! Every operation that is one SQLite transaction is one PostgreSQL transaction. Writers are
//! serialised by a transaction-scoped advisory lock on the store (one per schema), taken first
//! in every write: the audit chain stays one linear chain whoever appends, and the checks a
//! write makes inside its transaction (a key made first by another process, a KEK retired, a
//! key still live) see every earlier commit, as under SQLite's `BEGIN IMMEDIATE`. Reads take no
//! lock. Handles learn of other processes' destructions, keyring changes and rule overrides
//! through [`RetentionTx::change_token`], read on the same paths as SQLite's data version.
//!
//! The location is a libpq-style URL, `postgres://user[:password]@host[:port]/database`, with
//! `sslmode` (`disable`, `prefer`, `require`), `connect_timeout` and the like, and two
//! parameters of Coffer's own: `schema` (the PostgreSQL schema that holds Coffer's tables,
//! `coffer` unless given) and `sslrootcert` (a PEM file of the certificate authorities to trust;
//! the system's roots otherwise). Certificates are always verified when TLS is used.

use std::cell::RefCell;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use postgres::Row;

use super::*;
use crate::error::{Error, Result};
use std::collections::BTreeSet;

/// The format name in `meta`, as in SQLite.
const FORMAT: &str = "coffer-store";

/// Schema migrations: entry `n` takes a PostgreSQL store from version `n` to `n + 1`. The first
/// creates the tables of SQLite schema 4 at once (the two backends hold the same things), so
/// `meta.schema_version` means the same on both.
const MIGRATIONS: &[&str] = &["CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE keyring (
        kind TEXT NOT NULL, version BIGINT NOT NULL, wrapped BYTEA NOT NULL,
        created TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'active',
        PRIMARY KEY (kind, version));
     CREATE TABLE data_keys (
        tenant TEXT NOT NULL, subject TEXT NOT NULL, category TEXT NOT NULL, version BIGINT NOT NULL,
        kek_version BIGINT NOT NULL, wrapped BYTEA, created TEXT NOT NULL, destroyed TEXT,
        keep_until TEXT, rule TEXT, action TEXT,
        PRIMARY KEY (tenant, subject, category, version));
     CREATE INDEX data_keys_by_kek ON data_keys (kek_version) WHERE wrapped IS NOT NULL;
     CREATE INDEX data_keys_due ON data_keys (keep_until) WHERE wrapped IS NOT NULL AND keep_until IS NOT NULL;
     CREATE INDEX data_keys_by_category ON data_keys (category) WHERE wrapped IS NOT NULL;
     CREATE TABLE audit (seq BIGINT PRIMARY KEY, entry TEXT NOT NULL, mac BYTEA NOT NULL);
     CREATE TABLE events (
        tenant TEXT NOT NULL, subject TEXT NOT NULL, event TEXT NOT NULL, date TEXT NOT NULL, recorded TEXT NOT NULL,
        PRIMARY KEY (tenant, subject, event, date));
     CREATE TABLE holds (
        id BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, subject TEXT, category TEXT, kind TEXT NOT NULL,
        reason TEXT NOT NULL, placed_by TEXT NOT NULL, placed_at TEXT NOT NULL, until TEXT,
        released_by TEXT, released_at TEXT);
     CREATE TABLE restrictions (
        tenant TEXT NOT NULL, subject TEXT NOT NULL, category TEXT NOT NULL, purposes TEXT NOT NULL,
        until TEXT, rule TEXT NOT NULL, since TEXT NOT NULL,
        PRIMARY KEY (tenant, subject, category));
     CREATE TABLE destruction_lists (
        id BIGSERIAL PRIMARY KEY, created TEXT NOT NULL, state TEXT NOT NULL, items TEXT NOT NULL,
        approvals TEXT NOT NULL);
     CREATE TABLE certificates (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL);
     CREATE TABLE rule_overrides (rule TEXT PRIMARY KEY, period TEXT NOT NULL, approvals TEXT NOT NULL, at TEXT NOT NULL);
     CREATE TABLE rate_usage (
        limit_id TEXT NOT NULL, tenant TEXT NOT NULL, principal TEXT NOT NULL,
        width BIGINT NOT NULL, window_start BIGINT NOT NULL, count BIGINT NOT NULL,
        PRIMARY KEY (limit_id, tenant, principal, width, window_start));",
    // Schema 5: the audit trail may hold batch entries (`seal.batch`, `reveal.batch`). The
    // tables stay as they are; the version moves so that a build that cannot expand them
    // refuses the store rather than reporting without them.
    "SELECT 1;"];

/// The logical store version the migrations above reach.
const SCHEMA_AT: [u32; 2] = [4, 5];

/// How many connections one handle keeps at most.
const POOL_SIZE: usize = 8;

/// Maps a PostgreSQL error: the server gone is `StoreUnavailable`, a lock wait past the
/// timeout or a serialisation failure `StoreBusy`, a read-only server `ReadOnly`. Only the
/// error's code and message are kept: PostgreSQL's `DETAIL` can quote a row's values.
pub(crate) fn pg_error(e: postgres::Error) -> Error {
    use postgres::error::SqlState;
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let reason = format!("PostgreSQL {}: {}", code.code(), db.message());
        return if *code == SqlState::LOCK_NOT_AVAILABLE
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::QUERY_CANCELED
        {
            Error::StoreBusy { reason }
        } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
            Error::ReadOnly { reason }
        } else if code.code().starts_with("08")
            || code.code().starts_with("57P")
            || *code == SqlState::TOO_MANY_CONNECTIONS
            || *code == SqlState::CANNOT_CONNECT_NOW
        {
            Error::StoreUnavailable { reason }
        } else {
            Error::Store { reason }
        };
    }
    // Not the server's answer: the connection (refused, reset, timed out, closed) or TLS. The
    // cause is named (the driver's own text is only "error connecting to server").
    let cause = std::error::Error::source(&e).map(ToString::to_string);
    let text = match &cause {
        Some(c) => format!("{e}: {c}"),
        None => e.to_string(),
    };
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    if e.is_closed() || io || text.contains("timed out") {
        Error::StoreUnavailable {
            reason: format!("the PostgreSQL server cannot be reached: {text}"),
        }
    } else {
        Error::Store {
            reason: format!("PostgreSQL: {text}"),
        }
    }
}

mod pool;
mod retention;
mod whole;
use pool::{Conn, Exec, Pool};
use retention::PgTx;

/// The PostgreSQL store.
pub struct PgStore {
    pool: Arc<Pool>,
    /// The location without its password, for messages.
    shown: String,
    schema: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.shown)
            .finish()
    }
}

/// The URL's parameters of Coffer's own, taken out before the rest goes to the driver.
struct Location {
    url: String,
    schema: String,
    root_cert: Option<String>,
    shown: String,
}

fn parse_location(url: &str) -> Result<Location> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let (mut schema, mut root_cert) = ("coffer".to_owned(), None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("schema", v)) => schema = v.to_owned(),
            Some(("sslrootcert", v)) => root_cert = Some(percent_decode(v)),
            _ => kept.push(pair),
        }
    }
    let valid = schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(Error::InvalidArgument {
            name: "location",
            reason: "the `schema` parameter must be 1 to 63 lowercase letters, digits and \
                     underscores, not starting with a digit"
                .into(),
        });
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    // The password, if any, never reaches a message.
    let shown = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &base[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}@{}", &base[..scheme + 3], &base[at + 1..])
        }
        _ => base.to_owned(),
    };
    Ok(Location {
        url,
        shown: format!("{shown} (schema {schema})"),
        schema,
        root_cert,
    })
}

/// Decodes `%XX` escapes (a path in a URL's query).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn tls_config(root_cert: Option<&str>) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| Error::Io {
                what: format!("sslrootcert {path}"),
                reason: e.to_string(),
            })?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let bad = |e: String| Error::InvalidArgument {
                    name: "sslrootcert",
                    reason: format!("{path} is not a PEM file of certificates: {e}"),
                };
                let cert = cert.map_err(|e| bad(e.to_string()))?;
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal {
            message: format!("TLS configuration: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl PgStore {
    /// Opens (and, with `create`, creates) the store at `url`: connects, checks the keyring
    /// with `verify` before anything is written (a wrong master key leaves the database as it
    /// was), and migrates. Waits for another writer's lock at most `busy_timeout`.
    pub fn open_checked(
        url: &str,
        create: bool,
        busy_timeout: Duration,
        verify: &dyn Fn(&[KeyringRow]) -> Result<()>,
    ) -> Result<PgStore> {
        let location = parse_location(url)?;
        let mut config: postgres::Config =
            location
                .url
                .parse()
                .map_err(|e: postgres::Error| Error::InvalidArgument {
                    name: "location",
                    reason: format!("not a PostgreSQL URL: {e}"),
                })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.application_name("coffer");
        let tls = match config.get_ssl_mode() {
            postgres::config::SslMode::Disable => None,
            _ => Some(tls_config(location.root_cert.as_deref())?),
        };
        let schema = location.schema.clone();
        let setup = format!(
            "SET search_path TO {schema}; SET lock_timeout = {}; SET client_min_messages = warning;",
            busy_timeout.as_millis().max(1)
        );
        let store = PgStore {
            pool: Arc::new(Pool {
                config,
                tls,
                idle: Mutex::new((Vec::new(), 0)),
                freed: Condvar::new(),
                setup,
            }),
            shown: location.shown,
            schema,
        };
        let has_meta = store.read(|x| {
            Ok(x.query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'meta'",
                &[&store.schema],
            )?
            .get::<_, i64>(0)
                > 0)
        })?;
        if !has_meta && !create {
            return Err(Error::NotFound {
                what: format!("key store {}", store.shown),
            });
        }
        if has_meta {
            store.read(|x| verify(&keyring_rows(x)?))?;
        }
        store.migrate()?;
        Ok(store)
    }

    /// Where the store is (without its password).
    pub fn location(&self) -> &str {
        &self.shown
    }

    /// Runs `f` in a read-only transaction.
    fn read<T>(&self, f: impl FnOnce(&Exec<'_, '_>) -> Result<T>) -> Result<T> {
        let mut pooled = self.pool.get()?;
        let Conn {
            client, statements, ..
        } = pooled.conn();
        let tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .start()
            .map_err(pg_error)?;
        let x = Exec {
            tx: RefCell::new(tx),
            statements: RefCell::new(statements),
        };
        let out = f(&x)?;
        x.commit()?;
        Ok(out)
    }

    /// Runs `f` in a write transaction that holds the store's writer lock, then appends
    /// `audit` and commits. `f` returning `Ok(None)` rolls back and writes nothing.
    fn write_with<T>(
        &self,
        audit: Option<&AuditBatch<'_>>,
        f: impl FnOnce(&Exec<'_, '_>) -> Result<Option<T>>,
    ) -> Result<Option<(T, Vec<u64>)>> {
        let mut pooled = self.pool.get()?;
        let Conn {
            client, statements, ..
        } = pooled.conn();
        let tx = client.transaction().map_err(pg_error)?;
        let x = Exec {
            tx: RefCell::new(tx),
            statements: RefCell::new(statements),
        };
        x.query(
            "SELECT pg_advisory_xact_lock(hashtext('coffer:' || current_schema()))",
            &[],
        )?;
        let Some(out) = f(&x)? else {
            return Ok(None);
        };
        let seqs = match audit {
            Some(a) => append(&x, a)?,
            None => Vec::new(),
        };
        x.commit()?;
        Ok(Some((out, seqs)))
    }

    fn write<T>(
        &self,
        audit: &AuditBatch<'_>,
        f: impl FnOnce(&Exec<'_, '_>) -> Result<T>,
    ) -> Result<(T, Vec<u64>)> {
        self.write_with(Some(audit), |x| f(x).map(Some))
            .map(|o| o.expect("a write that returns Some commits"))
    }

    fn migrate(&self) -> Result<()> {
        let mut pooled = self.pool.get()?;
        let Conn { client, .. } = pooled.conn();
        let mut tx = client.transaction().map_err(pg_error)?;
        // Creating the schema and migrating are serialised across processes by the same lock
        // as every write. The schema is created only when missing: `CREATE SCHEMA IF NOT
        // EXISTS` needs the CREATE privilege on the database even when it exists, which a role
        // that only uses the store does not have.
        tx.batch_execute(&format!(
            "SELECT pg_advisory_xact_lock(hashtext('coffer:{0}'))",
            self.schema
        ))
        .map_err(pg_error)?;
        let has_schema = tx
            .query_opt(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1",
                &[&self.schema],
            )
            .map_err(pg_error)?
            .is_some();
        if !has_schema {
            tx.batch_execute(&format!("CREATE SCHEMA {}", self.schema))
                .map_err(pg_error)?;
        }
        let has_meta: bool = tx
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'meta'",
                &[&self.schema],
            )
            .map_err(pg_error)?
            .get::<_, i64>(0)
            > 0;
        let mut applied = 0usize;
        if has_meta {
            let format: Option<String> = tx
                .query_opt("SELECT value FROM meta WHERE key = 'format'", &[])
                .map_err(pg_error)?
                .map(|r| r.get(0));
            if format.as_deref() != Some(FORMAT) {
                return Err(Error::Store {
                    reason: format!(
                        "{} holds a `meta` table, but not a Coffer key store",
                        self.shown
                    ),
                });
            }
            let found: u32 = tx
                .query_one("SELECT value FROM meta WHERE key = 'pg_migrations'", &[])
                .map_err(pg_error)?
                .get::<_, String>(0)
                .parse()
                .map_err(|_| Error::Store {
                    reason: "the store's migration count is unreadable".into(),
                })?;
            if found as usize > MIGRATIONS.len() {
                return Err(Error::UnsupportedVersion {
                    what: format!(
                        "the PostgreSQL store has {found} migrations applied; this build knows {}",
                        MIGRATIONS.len()
                    ),
                });
            }
            let version: u32 = tx
                .query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[])
                .map_err(pg_error)?
                .and_then(|r| r.get::<_, String>(0).parse().ok())
                .unwrap_or(0);
            if version > STORE_SCHEMA_VERSION {
                return Err(Error::UnsupportedVersion {
                    what: format!(
                        "the store has schema version {version}; this build reads up to {STORE_SCHEMA_VERSION}"
                    ),
                });
            }
            applied = found as usize;
        }
        if applied == MIGRATIONS.len() {
            return Ok(());
        }
        for (n, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            tx.batch_execute(sql).map_err(pg_error)?;
            for (key, value) in [
                ("format", FORMAT.to_owned()),
                ("schema_version", SCHEMA_AT[n].to_string()),
                ("pg_migrations", (n + 1).to_string()),
            ] {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[&key, &value],
                )
                .map_err(pg_error)?;
            }
        }
        tx.commit().map_err(pg_error)
    }
}

fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn keyring_row(r: &Row) -> KeyringRow {
    KeyringRow {
        kind: r.get(0),
        version: u32_of(r.get(1)),
        wrapped: r.get(2),
        created: r.get(3),
        state: r.get(4),
    }
}

fn keyring_rows(x: &Exec<'_, '_>) -> Result<Vec<KeyringRow>> {
    Ok(x.query(
        "SELECT kind, version, wrapped, created, state FROM keyring ORDER BY kind, version",
        &[],
    )?
    .iter()
    .map(keyring_row)
    .collect())
}

const DATA_KEY_COLUMNS: &str = "tenant, subject, category, version, kek_version, wrapped, created";

fn data_key_row(r: &Row) -> DataKeyRow {
    DataKeyRow {
        tenant: r.get(0),
        subject: r.get(1),
        category: r.get(2),
        version: u32_of(r.get(3)),
        kek_version: u32_of(r.get(4)),
        wrapped: r.get(5),
        created: r.get(6),
    }
}

const KEY_STATE: &str = "tenant, subject, category, version, created, keep_until, rule, action";

fn key_state(r: &Row) -> KeyState {
    KeyState {
        tenant: r.get(0),
        subject: r.get(1),
        category: r.get(2),
        version: u32_of(r.get(3)),
        created: r.get(4),
        keep_until: r.get(5),
        rule: r.get(6),
        action: r.get(7),
    }
}

/// Appends audit entries after the chain's head, in one statement. The caller holds the
/// writer lock, so the head it reads is the head it extends.
fn append(x: &Exec<'_, '_>, audit: &AuditBatch<'_>) -> Result<Vec<u64>> {
    if audit.entries.is_empty() {
        return Ok(Vec::new());
    }
    let last = x.query_opt("SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1", &[])?;
    let (mut seq, mut prev) = last.map_or((0u64, Vec::new()), |r| {
        (r.get::<_, i64>(0) as u64, r.get::<_, Vec<u8>>(1))
    });
    let n = audit.entries.len();
    let (mut seqs, mut macs) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for entry in &audit.entries {
        seq += 1;
        let mac = (audit.mac)(&prev, seq, entry);
        prev = mac.to_vec();
        seqs.push(seq as i64);
        macs.push(mac.to_vec());
    }
    x.execute(
        "INSERT INTO audit (seq, entry, mac) SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[])",
        &[&seqs, &audit.entries, &macs],
    )?;
    Ok(seqs.into_iter().map(|s| s as u64).collect())
}

fn summary(x: &Exec<'_, '_>) -> Result<StoreSummary> {
    let r = x.query_one(
        "SELECT (SELECT count(*) FROM audit), coalesce((SELECT mac FROM audit ORDER BY seq DESC LIMIT 1), ''::bytea),
                (SELECT count(*) FILTER (WHERE wrapped IS NOT NULL) FROM data_keys),
                (SELECT count(*) FILTER (WHERE wrapped IS NULL) FROM data_keys)",
        &[],
    )?;
    Ok(summary_of(
        r.get::<_, i64>(0) as u64,
        r.get(1),
        &keyring_rows(x)?,
        r.get::<_, i64>(2) as u64,
        r.get::<_, i64>(3) as u64,
    ))
}

impl KeyStore for PgStore {
    fn keyring(&self) -> Result<Vec<KeyringRow>> {
        self.read(keyring_rows)
    }

    fn init_keyring(&self, rows: &[KeyringRow], audit: &AuditBatch<'_>) -> Result<Vec<u64>> {
        self.write(audit, |x| {
            let n: i64 = x.query_one("SELECT count(*) FROM keyring", &[])?.get(0);
            if n > 0 {
                return Err(Error::Store {
                    reason: "the store already has a keyring".into(),
                });
            }
            insert_keyring(x, rows)
        })
        .map(|(_, s)| s)
    }

    fn rewrap_keyring(
        &self,
        rewrap: &mut dyn FnMut(&[KeyringRow]) -> Result<Vec<KeyringRow>>,
        audit: &AuditBatch<'_>,
    ) -> Result<Vec<u64>> {
        self.write(audit, |x| {
            let rows = keyring_rows(x)?;
            let new = rewrap(&rows)?;
            check_rewrap(rows.len(), new.len())?;
            for r in &new {
                x.execute(
                    "UPDATE keyring SET wrapped = $3 WHERE kind = $1 AND version = $2",
                    &[&r.kind, &i64::from(r.version), &r.wrapped],
                )?;
            }
            Ok(())
        })
        .map(|(_, s)| s)
    }

    fn add_keyring_row(
        &self,
        row: &KeyringRow,
        verify: &dyn Fn(&[KeyringRow]) -> Result<()>,
        audit: &AuditBatch<'_>,
    ) -> Result<Vec<u64>> {
        self.write(audit, |x| {
            verify(&keyring_rows(x)?)?;
            insert_keyring(x, std::slice::from_ref(row))
        })
        .map(|(_, s)| s)
    }

    fn set_keyring_state(
        &self,
        kind: &str,
        version: u32,
        state: &str,
        audit: &AuditBatch<'_>,
    ) -> Result<Vec<u64>> {
        self.write(audit, |x| {
            let n = x.execute(
                "UPDATE keyring SET state = $3 WHERE kind = $1 AND version = $2",
                &[&kind, &i64::from(version), &state],
            )?;
            if n == 0 {
                return Err(Error::NotFound {
                    what: format!("{kind} key version {version}"),
                });
            }
            Ok(())
        })
        .map(|(_, s)| s)
    }

    fn data_key(
        &self,
        tenant: &str,
        subject: &str,
        category: &str,
        version: Option<u32>,
    ) -> Result<Option<DataKeyRow>> {
        let ids = [(tenant, subject, category, version)];
        Ok(self.data_keys_batch(&ids)?.pop().flatten())
    }

    fn data_keys_batch(
        &self,
        ids: &[(&str, &str, &str, Option<u32>)],
    ) -> Result<Vec<Option<DataKeyRow>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for the whole batch: the ids go in as arrays, each id's row (the
        // exact version, or the newest) comes back with the id's position.
        let n = ids.len();
        let (mut pos, mut t, mut s, mut c, mut v) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (i, (tenant, subject, category, version)) in ids.iter().enumerate() {
            pos.push(i as i64);
            t.push(*tenant);
            s.push(*subject);
            c.push(*category);
            v.push(version.map(i64::from));
        }
        self.read(|x| {
            let rows = x.query(
                &format!(
                    "SELECT q.pos, k.{cols} FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[])
                         AS q(pos, tenant, subject, category, version)
                     CROSS JOIN LATERAL (
                         SELECT {DATA_KEY_COLUMNS} FROM data_keys d
                         WHERE d.tenant = q.tenant AND d.subject = q.subject AND d.category = q.category
                           AND (q.version IS NULL OR d.version = q.version)
                         ORDER BY d.version DESC LIMIT 1) k",
                    cols = "tenant, k.subject, k.category, k.version, k.kek_version, k.wrapped, k.created"
                ),
                &[&pos, &t, &s, &c, &v],
            )?;
            let mut out = vec![None; n];
            for r in rows {
                let i = r.get::<_, i64>(0) as usize;
                out[i] = Some(DataKeyRow {
                    tenant: r.get(1),
                    subject: r.get(2),
                    category: r.get(3),
                    version: u32_of(r.get(4)),
                    kek_version: u32_of(r.get(5)),
                    wrapped: r.get(6),
                    created: r.get(7),
                });
            }
            Ok(out)
        })
    }

    fn insert_data_keys(
        &self,
        rows: &[NewDataKey<'_>],
        audit: &AuditBatch<'_>,
    ) -> Result<Option<Vec<u64>>> {
        let out = self.write_with(Some(audit), |x| {
            // A KEK retired by another process since the caller loaded its keyring: the caller
            // reloads its keyring and retries.
            let keks: Vec<i64> = rows
                .iter()
                .map(|r| i64::from(r.kek_version))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let present: i64 = x
                .query_one(
                    "SELECT count(*) FROM keyring WHERE kind = 'kek' AND version = ANY($1)",
                    &[&keks],
                )?
                .get(0);
            if present as usize != keks.len() {
                return Ok(None);
            }
            let n = rows.len();
            let (mut t, mut s, mut c, mut v, mut k, mut w, mut cr) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for r in rows {
                t.push(r.tenant);
                s.push(r.subject);
                c.push(r.category);
                v.push(i64::from(r.version));
                k.push(i64::from(r.kek_version));
                w.push(r.wrapped.as_slice());
                cr.push(r.created);
            }
            let inserted = x.execute(
                "INSERT INTO data_keys (tenant, subject, category, version, kek_version, wrapped, created)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bytea[], $7::text[])
                 ON CONFLICT DO NOTHING",
                &[&t, &s, &c, &v, &k, &w, &cr],
            )?;
            // Another process made one of these keys first: write nothing (the transaction
            // rolls back when dropped).
            Ok((inserted as usize == n).then_some(()))
        })?;
        Ok(out.map(|(_, seqs)| seqs))
    }

    fn data_keys_to_rewrap(&self, kek_version: u32, limit: usize) -> Result<Vec<DataKeyRow>> {
        self.read(|x| {
            Ok(x.query(
                &format!(
                    "SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE wrapped IS NOT NULL AND kek_version < $1 LIMIT $2"
                ),
                &[&i64::from(kek_version), &(limit as i64)],
            )?
            .iter()
            .map(data_key_row)
            .collect())
        })
    }

    fn rewrap_data_keys(&self, rows: &[DataKeyRow], audit: &AuditBatch<'_>) -> Result<Vec<u64>> {
        self.write(audit, |x| {
            for r in rows {
                x.execute(
                    "UPDATE data_keys SET wrapped = $5, kek_version = $6 WHERE tenant = $1 AND subject = $2 AND category = $3 AND version = $4 AND wrapped IS NOT NULL",
                    &[&r.tenant, &r.subject, &r.category, &i64::from(r.version), &r.wrapped, &i64::from(r.kek_version)],
                )?;
            }
            Ok(())
        })
        .map(|(_, s)| s)
    }

    fn retire_keks(&self, below: u32, audit: &AuditBatch<'_>) -> Result<(Vec<u32>, Vec<u64>)> {
        let below = i64::from(below);
        let out = self.write_with(Some(audit), |x| {
            let live: i64 = x
                .query_one(
                    "SELECT count(*) FROM data_keys WHERE wrapped IS NOT NULL AND kek_version < $1",
                    &[&below],
                )?
                .get(0);
            refuse_retiring_with_live_keys(live, below)?;
            let versions: Vec<u32> = x
                .query(
                    "DELETE FROM keyring WHERE kind = 'kek' AND version < $1 RETURNING version",
                    &[&below],
                )?
                .iter()
                .map(|r| u32_of(r.get(0)))
                .collect();
            let mut versions = versions;
            versions.sort_unstable();
            Ok((!versions.is_empty()).then_some(versions))
        })?;
        Ok(out.unwrap_or_default())
    }
}

impl AuditLog for PgStore {
    fn append_audit(&self, audit: &AuditBatch<'_>) -> Result<Vec<u64>> {
        self.write(audit, |_| Ok(())).map(|(_, s)| s)
    }

    fn audit_rows(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditRow>> {
        self.read(|x| {
            Ok(x.query(
                "SELECT seq, entry, mac FROM audit WHERE seq >= $1 ORDER BY seq LIMIT $2",
                &[&(from_seq as i64), &(limit as i64)],
            )?
            .iter()
            .map(|r| AuditRow {
                seq: r.get::<_, i64>(0) as u64,
                entry: r.get(1),
                mac: r.get(2),
            })
            .collect())
        })
    }

    fn audit_len(&self) -> Result<u64> {
        self.read(|x| {
            Ok(x.query_one("SELECT count(*) FROM audit", &[])?
                .get::<_, i64>(0) as u64)
        })
    }
}

impl RetentionStore for PgStore {
    fn retention_tx(
        &self,
        mac: ChainMac<'_>,
        f: &mut dyn FnMut(&dyn RetentionTx) -> Result<Vec<String>>,
    ) -> Result<Vec<u64>> {
        let out = self.write_with(None, |x| {
            let entries = f(&PgTx { x })?;
            append(x, &AuditBatch { entries, mac }).map(Some)
        })?;
        Ok(out.map(|(seqs, _)| seqs).unwrap_or_default())
    }

    fn retention_read(&self, f: &mut dyn FnMut(&dyn RetentionTx) -> Result<()>) -> Result<()> {
        self.read(|x| f(&PgTx { x }))
    }
}

fn insert_keyring(x: &Exec<'_, '_>, rows: &[KeyringRow]) -> Result<()> {
    for r in rows {
        x.execute(
            "INSERT INTO keyring (kind, version, wrapped, created, state) VALUES ($1, $2, $3, $4, $5)",
            &[&r.kind, &i64::from(r.version), &r.wrapped, &r.created, &r.state],
        )?;
    }
    Ok(())
}
