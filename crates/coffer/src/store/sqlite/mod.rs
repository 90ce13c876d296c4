//! The SQLite store: one file, one connection per handle, writers serialised by SQLite
//! (`BEGIN IMMEDIATE`) across threads and processes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension, ToSql, TransactionBehavior, params};

use super::*;
use crate::error::{Error, Result};

const FORMAT: &str = "coffer-store";

/// Schema migrations: entry `n` takes a store from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE keyring (
        kind TEXT NOT NULL, version INTEGER NOT NULL, wrapped BLOB NOT NULL,
        created TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'active',
        PRIMARY KEY (kind, version));
     CREATE TABLE data_keys (
        tenant TEXT NOT NULL, subject TEXT NOT NULL, category TEXT NOT NULL, version INTEGER NOT NULL,
        kek_version INTEGER NOT NULL, wrapped BLOB, created TEXT NOT NULL, destroyed TEXT,
        PRIMARY KEY (tenant, subject, category, version));
     CREATE INDEX data_keys_by_kek ON data_keys (kek_version) WHERE wrapped IS NOT NULL;
     CREATE TABLE audit (seq INTEGER PRIMARY KEY, entry TEXT NOT NULL, mac BLOB NOT NULL);",
    // 1 -> 2: retention
    "ALTER TABLE data_keys ADD COLUMN keep_until TEXT;
     ALTER TABLE data_keys ADD COLUMN rule TEXT;
     ALTER TABLE data_keys ADD COLUMN action TEXT;
     CREATE INDEX data_keys_due ON data_keys (keep_until) WHERE wrapped IS NOT NULL AND keep_until IS NOT NULL;
     CREATE INDEX data_keys_by_subject ON data_keys (tenant, subject);
     CREATE TABLE events (
        tenant TEXT NOT NULL, subject TEXT NOT NULL, event TEXT NOT NULL, date TEXT NOT NULL, recorded TEXT NOT NULL,
        PRIMARY KEY (tenant, subject, event, date));
     CREATE TABLE holds (
        id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, subject TEXT, category TEXT, kind TEXT NOT NULL,
        reason TEXT NOT NULL, placed_by TEXT NOT NULL, placed_at TEXT NOT NULL, until TEXT,
        released_by TEXT, released_at TEXT);
     CREATE TABLE restrictions (
        tenant TEXT NOT NULL, subject TEXT NOT NULL, category TEXT NOT NULL, purposes TEXT NOT NULL,
        until TEXT, rule TEXT NOT NULL, since TEXT NOT NULL,
        PRIMARY KEY (tenant, subject, category));
     CREATE TABLE destruction_lists (
        id INTEGER PRIMARY KEY, created TEXT NOT NULL, state TEXT NOT NULL, items TEXT NOT NULL,
        approvals TEXT NOT NULL);
     CREATE TABLE certificates (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
     CREATE TABLE rule_overrides (rule TEXT PRIMARY KEY, period TEXT NOT NULL, approvals TEXT NOT NULL, at TEXT NOT NULL);",
    // 2 -> 3: the primary key (tenant, subject, category, version) already serves lookups by
    // (tenant, subject); the extra index cost every key insert a fourth b-tree write.
    "DROP INDEX IF EXISTS data_keys_by_subject;",
    // 3 -> 4: rate-limit usage, so that limits hold across processes and restarts (they were
    // counted in each handle's memory, so reopening the store started every count afresh).
    "CREATE TABLE rate_usage (
        limit_id TEXT NOT NULL, tenant TEXT NOT NULL, principal TEXT NOT NULL,
        width INTEGER NOT NULL, window_start INTEGER NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (limit_id, tenant, principal, width, window_start));",
    // 4 -> 5: the audit trail may hold batch entries (`seal.batch`, `reveal.batch`: one entry
    // for a batch's records). The tables stay as they are; the version moves so that a build
    // that cannot expand them refuses the store rather than reporting without them.
    "",
];

/// Reads a store's summary on `conn` (inside one read transaction where the caller holds one).
fn summary(conn: &Connection) -> Result<StoreSummary> {
    let (entries, chain_head) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM audit), coalesce((SELECT mac FROM audit ORDER BY seq DESC LIMIT 1), x'')",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?)),
        )
        .map_err(store_error)?;
    let rows = keyring_rows(conn)?;
    let (live_data_keys, destroyed_data_keys) = conn
        .query_row(
            "SELECT coalesce(sum(wrapped IS NOT NULL), 0), coalesce(sum(wrapped IS NULL), 0) FROM data_keys",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )
        .map_err(store_error)?;
    Ok(summary_of(
        entries,
        chain_head,
        &rows,
        live_data_keys,
        destroyed_data_keys,
    ))
}

mod retention;
use retention::SqliteTx;

/// The SQLite store. One connection per handle, behind a mutex; SQLite serialises writers
/// across processes, with a busy timeout of five seconds.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Creates the store file, empty and readable by its owner only (0600), unless it exists.
/// SQLite gives the write-ahead log and shared-memory files it creates beside it the same
/// permissions.
fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::Io {
            what: format!("key store {}", path.display()),
            reason: e.to_string(),
        }),
    }
}

pub(crate) fn store_error(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked) => Error::StoreBusy {
            reason: "the store is locked by another process or connection".into(),
        },
        Some(ReadOnly) => Error::ReadOnly {
            reason: "the store file or its folder is not writable".into(),
        },
        Some(NotADatabase) => Error::Store {
            reason: "the file is not a Coffer key store (not an SQLite database)".into(),
        },
        Some(CannotOpen) => Error::Store {
            reason: "the store file cannot be opened".into(),
        },
        _ => Error::Store {
            reason: e.to_string(),
        },
    }
}

impl SqliteStore {
    /// Opens (and, with `create`, creates) a store file, checking that it is a Coffer store of a
    /// version this build reads, and migrating an older one.
    pub fn open(path: impl AsRef<Path>, create: bool) -> Result<SqliteStore> {
        Self::open_with_timeout(path, create, std::time::Duration::from_secs(5))
    }

    /// [`SqliteStore::open`], waiting at most `busy_timeout` for another process's lock before
    /// failing with [`Error::StoreBusy`].
    pub fn open_with_timeout(
        path: impl AsRef<Path>,
        create: bool,
        busy_timeout: std::time::Duration,
    ) -> Result<SqliteStore> {
        Self::open_checked(path, create, busy_timeout, &|_| Ok(()))
    }

    /// [`SqliteStore::open_with_timeout`], calling `verify` with the keyring's rows (none for a
    /// new store) before anything is written: no pragma that writes, no migration. Coffer checks
    /// there that the master key opens the keyring, so a wrong key leaves the file untouched.
    pub fn open_checked(
        path: impl AsRef<Path>,
        create: bool,
        busy_timeout: std::time::Duration,
        verify: &dyn Fn(&[KeyringRow]) -> Result<()>,
    ) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        // SQLite opens "" as a private temporary database: a store that vanishes on close.
        if path.as_os_str().is_empty() {
            return Err(Error::InvalidArgument {
                name: "path",
                reason: "the store's path is empty".into(),
            });
        }
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        } else if !path.exists() && !path.to_string_lossy().starts_with("file:") {
            return Err(Error::NotFound {
                what: format!("key store {}", path.display()),
            });
        }
        if create && !path.to_string_lossy().starts_with("file:") {
            create_private(&path)?;
        }
        let conn = Connection::open_with_flags(&path, flags).map_err(store_error)?;
        conn.busy_timeout(busy_timeout).map_err(store_error)?;
        // Checks the header before anything is written: a foreign file is refused untouched.
        let has_meta: bool = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(store_error)?
            > 0;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(store_error)?;
        if !has_meta && tables > 0 {
            return Err(Error::Store {
                reason: "the file is an SQLite database, but not a Coffer key store".into(),
            });
        }
        if has_meta {
            // The keyring's columns have been the same since the first schema version.
            verify(&keyring_rows(&conn)?)?;
        }
        // A new file gets 16 KiB pages (SQLite's default is 4 KiB): a batch's commit writes a
        // quarter as many WAL frames and checkpoint pages, each a write call with its own
        // kernel work. A page size is fixed when the file is made, so an existing store keeps
        // its own.
        if tables == 0 {
            conn.query_row("PRAGMA page_size = 16384", [], |_| Ok(()))
                .optional()
                .map_err(store_error)?;
        }
        for pragma in [
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = FULL",
            "PRAGMA secure_delete = ON",
            "PRAGMA foreign_keys = ON",
            // 32 MiB of page cache (the default is 2 MiB): bulk sealing into a store of
            // millions of keys touches many index pages per batch.
            "PRAGMA cache_size = -32768",
            // Statement journals (a multi-row INSERT inside a transaction keeps one, to undo
            // just that statement) and temporary tables stay in memory. SQLite otherwise
            // spills a statement journal over 64 KiB to an unlinked file in the temp
            // directory: a write call per page during bulk sealing, and copies of key and
            // audit pages on a disk that `secure_delete` and crypto-shredding never reach.
            "PRAGMA temp_store = MEMORY",
        ] {
            conn.query_row(pragma, [], |_| Ok(()))
                .optional()
                .map_err(store_error)?;
        }
        // Checkpoint every 16 MiB of WAL rather than 4 (SQLite's 1000 pages of 4 KiB): pages
        // that bulk sealing rewrites batch after batch (index leaves, the audit tail) are
        // copied back once, not four times. In pages of this file's size.
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(store_error)?;
        conn.query_row(
            &format!(
                "PRAGMA wal_autocheckpoint = {}",
                (16 << 20) / page_size.clamp(512, 65_536)
            ),
            [],
            |_| Ok(()),
        )
        .optional()
        .map_err(store_error)?;
        let store = SqliteStore {
            conn: Mutex::new(conn),
            path,
        };
        store.migrate()?;
        Ok(store)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn schema_version(conn: &Connection) -> Result<u32> {
        match conn
            .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()
        {
            Ok(Some(format)) if format == FORMAT => conn
                .query_row(
                    "SELECT value FROM meta WHERE key = 'schema_version'",
                    [],
                    |r| r.get::<_, String>(0),
                )
                .map_err(store_error)?
                .parse()
                .map_err(|_| Error::Store {
                    reason: "the store's schema version is unreadable".into(),
                }),
            Ok(Some(_)) => Err(Error::Store {
                reason: "the file is not a Coffer key store".into(),
            }),
            Ok(None) | Err(_) => Ok(0),
        }
    }

    fn migrate(&self) -> Result<()> {
        let mut conn = self.lock();
        // Read first: a current store is opened without writing (a read-only one too).
        let found = Self::schema_version(&conn)?;
        if found > STORE_SCHEMA_VERSION {
            return Err(Error::UnsupportedVersion {
                what: format!(
                    "the store has schema version {found}; this build reads up to {STORE_SCHEMA_VERSION}"
                ),
            });
        }
        if found == STORE_SCHEMA_VERSION {
            return Ok(());
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(store_error)?;
        // Again inside the transaction: another process may have migrated meanwhile.
        let current = Self::schema_version(&tx)?;
        if current > STORE_SCHEMA_VERSION {
            return Err(Error::UnsupportedVersion {
                what: format!(
                    "the store has schema version {current}; this build reads up to {STORE_SCHEMA_VERSION}"
                ),
            });
        }
        for (v, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.execute_batch(sql).map_err(store_error)?;
            let next = v as u32 + 1;
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('format', ?1)",
                params![FORMAT],
            )
            .map_err(store_error)?;
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)",
                params![next.to_string()],
            )
            .map_err(store_error)?;
        }
        tx.commit().map_err(store_error)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write<T>(
        &self,
        audit: &AuditBatch<'_>,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<(T, Vec<u64>)> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(store_error)?;
        let out = f(&tx)?;
        let seqs = append(&tx, audit)?;
        tx.commit().map_err(store_error)?;
        Ok((out, seqs))
    }
}

fn append(tx: &rusqlite::Transaction<'_>, audit: &AuditBatch<'_>) -> Result<Vec<u64>> {
    if audit.entries.is_empty() {
        return Ok(Vec::new());
    }
    let last: Option<(i64, Vec<u8>)> = tx
        .query_row(
            "SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(store_error)?;
    let (mut seq, prev) = last.map_or((0u64, Vec::new()), |(s, m)| (s as u64, m));
    let mut rows: Vec<(i64, &str, [u8; 32])> = Vec::with_capacity(audit.entries.len());
    for entry in &audit.entries {
        seq += 1;
        let mac = (audit.mac)(rows.last().map_or(&prev[..], |r| &r.2[..]), seq, entry);
        rows.push((seq as i64, entry, mac));
    }
    insert_rows(
        tx,
        "INSERT INTO audit (seq, entry, mac) VALUES",
        &rows,
        |(seq, entry, mac), out| {
            out.extend([seq as &dyn ToSql, entry, mac]);
        },
    )?;
    Ok(rows.iter().map(|r| r.0 as u64).collect())
}

/// Rows per multi-row `INSERT`: one statement for many rows saves a run of the statement and
/// its bindings per row (inserting a batch's data keys and audit entries row by row was ≈ 10%
/// of sealing new customers).
const ROWS_PER_INSERT: usize = 32;

/// Inserts `rows` with `head` (`INSERT INTO t (a, b) VALUES`, or `INSERT OR IGNORE …`):
/// `ROWS_PER_INSERT` rows a statement, the rest one by one, every statement prepared once per
/// connection. `values` gives a row's values in the columns' order. Returns how many rows were
/// inserted (fewer than given when `OR IGNORE` skipped some).
fn insert_rows<'a, R>(
    tx: &rusqlite::Transaction<'_>,
    head: &str,
    rows: &'a [R],
    values: impl Fn(&'a R, &mut Vec<&'a dyn ToSql>),
) -> Result<usize> {
    let Some(first) = rows.first() else {
        return Ok(0);
    };
    let mut bound: Vec<&'a dyn ToSql> = Vec::new();
    values(first, &mut bound);
    let width = bound.len();
    let group = |n: usize| {
        let one = format!("({})", vec!["?"; width].join(", "));
        format!("{head} {}", vec![one; n].join(", "))
    };
    let mut inserted = 0;
    let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
    if rows.len() >= ROWS_PER_INSERT {
        let mut stmt = tx
            .prepare_cached(&group(ROWS_PER_INSERT))
            .map_err(store_error)?;
        for chunk in chunks.by_ref() {
            bound.clear();
            for row in chunk {
                values(row, &mut bound);
            }
            inserted += stmt
                .execute(rusqlite::params_from_iter(&bound))
                .map_err(store_error)?;
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut stmt = tx.prepare_cached(&group(1)).map_err(store_error)?;
        for row in rest {
            bound.clear();
            values(row, &mut bound);
            inserted += stmt
                .execute(rusqlite::params_from_iter(&bound))
                .map_err(store_error)?;
        }
    }
    Ok(inserted)
}

fn keyring_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyringRow> {
    Ok(KeyringRow {
        kind: r.get(0)?,
        version: r.get(1)?,
        wrapped: r.get(2)?,
        created: r.get(3)?,
        state: r.get(4)?,
    })
}

fn data_key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DataKeyRow> {
    Ok(DataKeyRow {
        tenant: r.get(0)?,
        subject: r.get(1)?,
        category: r.get(2)?,
        version: r.get(3)?,
        kek_version: r.get(4)?,
        wrapped: r.get(5)?,
        created: r.get(6)?,
    })
}

const DATA_KEY_COLUMNS: &str = "tenant, subject, category, version, kek_version, wrapped, created";

impl KeyStore for SqliteStore {
    fn keyring(&self) -> Result<Vec<KeyringRow>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT kind, version, wrapped, created, state FROM keyring ORDER BY kind, version",
            )
            .map_err(store_error)?;
        let rows = stmt.query_map([], keyring_row).map_err(store_error)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(store_error)
    }

    fn init_keyring(&self, rows: &[KeyringRow], audit: &AuditBatch<'_>) -> Result<Vec<u64>> {
        self.write(audit, |tx| {
            let n: i64 = tx
                .query_row("SELECT count(*) FROM keyring", [], |r| r.get(0))
                .map_err(store_error)?;
            if n > 0 {
                return Err(Error::Store {
                    reason: "the store already has a keyring".into(),
                });
            }
            insert_keyring(tx, rows)
        })
        .map(|(_, s)| s)
    }

    fn rewrap_keyring(
        &self,
        rewrap: &mut dyn FnMut(&[KeyringRow]) -> Result<Vec<KeyringRow>>,
        audit: &AuditBatch<'_>,
    ) -> Result<Vec<u64>> {
        self.write(audit, |tx| {
            let rows = keyring_rows(tx)?;
            let new = rewrap(&rows)?;
            check_rewrap(rows.len(), new.len())?;
            let mut st = tx
                .prepare_cached("UPDATE keyring SET wrapped = ?3 WHERE kind = ?1 AND version = ?2")
                .map_err(store_error)?;
            for r in &new {
                st.execute(params![r.kind, r.version, r.wrapped])
                    .map_err(store_error)?;
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
        self.write(audit, |tx| {
            verify(&keyring_rows(tx)?)?;
            insert_keyring(tx, std::slice::from_ref(row))
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
        self.write(audit, |tx| {
            let n = tx
                .execute(
                    "UPDATE keyring SET state = ?3 WHERE kind = ?1 AND version = ?2",
                    params![kind, version, state],
                )
                .map_err(store_error)?;
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
        let conn = self.lock();
        let sql = match version {
            Some(_) => format!(
                "SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE tenant = ?1 AND subject = ?2 AND category = ?3 AND version = ?4"
            ),
            None => format!(
                "SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE tenant = ?1 AND subject = ?2 AND category = ?3 AND ?4 IS NULL ORDER BY version DESC LIMIT 1"
            ),
        };
        let mut stmt = conn.prepare_cached(&sql).map_err(store_error)?;
        stmt.query_row(params![tenant, subject, category, version], data_key_row)
            .optional()
            .map_err(store_error)
    }

    fn data_keys_batch(
        &self,
        ids: &[(&str, &str, &str, Option<u32>)],
    ) -> Result<Vec<Option<DataKeyRow>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.lock();
        // One snapshot for the whole batch: one lock round trip instead of one per key.
        let tx = conn.transaction().map_err(store_error)?;
        let mut out = Vec::with_capacity(ids.len());
        {
            let mut newest = tx
                .prepare_cached(&format!(
                    "SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE tenant = ?1 AND subject = ?2 AND category = ?3 ORDER BY version DESC LIMIT 1"
                ))
                .map_err(store_error)?;
            let mut exact = tx
                .prepare_cached(&format!(
                    "SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE tenant = ?1 AND subject = ?2 AND category = ?3 AND version = ?4"
                ))
                .map_err(store_error)?;
            // Every key of one subject, for a run of newest-version lookups of its categories.
            let mut of_subject = tx
                .prepare_cached(&format!(
                    "SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE tenant = ?1 AND subject = ?2"
                ))
                .map_err(store_error)?;
            let mut rest = ids;
            while let Some(&(t, s, c, v)) = rest.first() {
                // A run of newest-version lookups for one subject (a batch's ids come sorted, a
                // customer's categories together): one query reads all its keys, where a query
                // per category found a new customer's nothing three times over (issue 18,
                // eleventh step).
                let run = rest
                    .iter()
                    .take_while(|&&(t2, s2, _, v2)| t2 == t && s2 == s && v2.is_none())
                    .count();
                if v.is_none() && run > 1 {
                    let keys: Vec<DataKeyRow> = of_subject
                        .query_map(params![t, s], data_key_row)
                        .and_then(Iterator::collect)
                        .map_err(store_error)?;
                    for &(_, _, c, _) in &rest[..run] {
                        out.push(
                            keys.iter()
                                .filter(|k| k.category == c)
                                .max_by_key(|k| k.version)
                                .cloned(),
                        );
                    }
                    rest = &rest[run..];
                    continue;
                }
                let row = match v {
                    None => newest.query_row(params![t, s, c], data_key_row),
                    Some(v) => exact.query_row(params![t, s, c, v], data_key_row),
                };
                out.push(row.optional().map_err(store_error)?);
                rest = &rest[1..];
            }
        }
        tx.commit().map_err(store_error)?;
        Ok(out)
    }

    fn insert_data_keys(
        &self,
        rows: &[NewDataKey<'_>],
        audit: &AuditBatch<'_>,
    ) -> Result<Option<Vec<u64>>> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(store_error)?;
        // A KEK retired by another process since the caller loaded its keyring: a key wrapped
        // under it could never be opened. The caller reloads its keyring and retries.
        let keks: BTreeSet<u32> = rows.iter().map(|r| r.kek_version).collect();
        for v in keks {
            let present: bool = tx
                .prepare_cached("SELECT count(*) FROM keyring WHERE kind = 'kek' AND version = ?1")
                .and_then(|mut st| st.query_row([v], |r| r.get::<_, i64>(0)))
                .map_err(store_error)?
                > 0;
            if !present {
                return Ok(None);
            }
        }
        // `OR IGNORE` rather than `ON CONFLICT DO NOTHING`: both skip a version another process
        // stored first, but under the latter a NOT NULL violation would abort the statement
        // midway, so SQLite kept a statement journal, a copy of every page each statement
        // touched (13% of this insert's time; issue 18, nineteenth step). No value here can be
        // NULL, so the two skip exactly the same rows.
        let inserted = insert_rows(
            &tx,
            "INSERT OR IGNORE INTO data_keys (tenant, subject, category, version, kek_version, wrapped, created) VALUES",
            rows,
            |r, out| {
                out.extend([
                    &r.tenant as &dyn ToSql,
                    &r.subject,
                    &r.category,
                    &r.version,
                    &r.kek_version,
                    &r.wrapped,
                    &r.created,
                ]);
            },
        )?;
        if inserted < rows.len() {
            // Another process made one of these keys first: write nothing (the transaction
            // rolls back when dropped).
            return Ok(None);
        }
        let seqs = append(&tx, audit)?;
        tx.commit().map_err(store_error)?;
        Ok(Some(seqs))
    }

    fn data_keys_to_rewrap(&self, kek_version: u32, limit: usize) -> Result<Vec<DataKeyRow>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE wrapped IS NOT NULL AND kek_version < ?1 LIMIT ?2"
            ))
            .map_err(store_error)?;
        let rows = stmt
            .query_map(params![kek_version, limit as i64], data_key_row)
            .map_err(store_error)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(store_error)
    }

    fn rewrap_data_keys(&self, rows: &[DataKeyRow], audit: &AuditBatch<'_>) -> Result<Vec<u64>> {
        self.write(audit, |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE data_keys SET wrapped = ?5, kek_version = ?6 WHERE tenant = ?1 AND subject = ?2 AND category = ?3 AND version = ?4 AND wrapped IS NOT NULL",
                )
                .map_err(store_error)?;
            for r in rows {
                stmt.execute(params![r.tenant, r.subject, r.category, r.version, r.wrapped, r.kek_version]).map_err(store_error)?;
            }
            Ok(())
        })
        .map(|(_, s)| s)
    }

    fn retire_keks(&self, below: u32, audit: &AuditBatch<'_>) -> Result<(Vec<u32>, Vec<u64>)> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(store_error)?;
        let live: i64 = tx
            .query_row(
                "SELECT count(*) FROM data_keys WHERE wrapped IS NOT NULL AND kek_version < ?1",
                [below],
                |r| r.get(0),
            )
            .map_err(store_error)?;
        refuse_retiring_with_live_keys(live, below)?;
        let versions: Vec<u32> = tx
            .prepare(
                "SELECT version FROM keyring WHERE kind = 'kek' AND version < ?1 ORDER BY version",
            )
            .and_then(|mut st| {
                st.query_map([below], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<u32>>>()
            })
            .map_err(store_error)?;
        if versions.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        // `secure_delete` overwrites the deleted rows' bytes in the page; the caller then
        // empties the write-ahead log (`purge_log`).
        tx.execute(
            "DELETE FROM keyring WHERE kind = 'kek' AND version < ?1",
            [below],
        )
        .map_err(store_error)?;
        let seqs = append(&tx, audit)?;
        tx.commit().map_err(store_error)?;
        Ok((versions, seqs))
    }
}

impl AuditLog for SqliteStore {
    fn append_audit(&self, audit: &AuditBatch<'_>) -> Result<Vec<u64>> {
        self.write(audit, |_| Ok(())).map(|(_, s)| s)
    }

    fn audit_rows(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditRow>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, entry, mac FROM audit WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(store_error)?;
        let rows = stmt
            .query_map(params![from_seq as i64, limit as i64], |r| {
                Ok(AuditRow {
                    seq: r.get::<_, i64>(0)? as u64,
                    entry: r.get(1)?,
                    mac: r.get(2)?,
                })
            })
            .map_err(store_error)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(store_error)
    }

    fn audit_len(&self) -> Result<u64> {
        let conn = self.lock();
        conn.query_row("SELECT count(*) FROM audit", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(store_error)
    }
}

impl RetentionStore for SqliteStore {
    fn retention_tx(
        &self,
        mac: ChainMac<'_>,
        f: &mut dyn FnMut(&dyn RetentionTx) -> Result<Vec<String>>,
    ) -> Result<Vec<u64>> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(store_error)?;
        let entries = f(&SqliteTx { conn: &tx })?;
        let seqs = append(&tx, &AuditBatch { entries, mac })?;
        tx.commit().map_err(store_error)?;
        Ok(seqs)
    }

    fn retention_read(&self, f: &mut dyn FnMut(&dyn RetentionTx) -> Result<()>) -> Result<()> {
        let conn = self.lock();
        f(&SqliteTx { conn: &conn })
    }

    fn purge_log(&self) -> Result<bool> {
        let conn = self.lock();
        // A reader in another process can hold the log's start for a moment: a few tries.
        for attempt in 0..5 {
            let busy: i64 = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                .map_err(store_error)?;
            if busy == 0 {
                return Ok(true);
            }
            std::thread::sleep(std::time::Duration::from_millis(10 << attempt));
        }
        Ok(false)
    }
}

impl WholeStore for SqliteStore {
    fn summary(&self) -> Result<StoreSummary> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(store_error)?;
        summary(&tx)
    }

    fn backup_to(&self, path: &Path) -> Result<StoreSummary> {
        if path.as_os_str().is_empty() {
            return Err(Error::InvalidArgument {
                name: "path",
                reason: "the backup's path is empty".into(),
            });
        }
        never_overwrite(path)?;
        create_private(path)?;
        let copy = || -> Result<StoreSummary> {
            let conn = self.lock();
            let mut dst = Connection::open(path).map_err(store_error)?;
            {
                // SQLite's online backup: every page in one step, under one read transaction of
                // the source, so the copy is one consistent state however others write.
                let backup = rusqlite::backup::Backup::new(&conn, &mut dst).map_err(store_error)?;
                match backup.step(-1).map_err(store_error)? {
                    rusqlite::backup::StepResult::Done => {}
                    other => {
                        return Err(Error::Store {
                            reason: format!("the backup did not complete ({other:?})"),
                        });
                    }
                }
            }
            drop(conn);
            // A backup is one self-contained file: no write-ahead log beside it.
            dst.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
                .map_err(store_error)?;
            let s = summary(&dst)?;
            dst.close().map_err(|(_, e)| store_error(e))?;
            Ok(s)
        };
        copy().inspect_err(|_| {
            let _ = std::fs::remove_file(path);
        })
    }

    fn dump(&self) -> Result<Vec<TableRows>> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(store_error)?;
        let mut out = Vec::with_capacity(TABLES.len());
        for (table, columns) in TABLES {
            let mut st = tx
                .prepare(&format!(
                    "SELECT {} FROM {table} ORDER BY 1, 2",
                    columns.join(", ")
                ))
                .map_err(store_error)?;
            let rows = st
                .query_map([], |r| {
                    (0..columns.len())
                        .map(|i| {
                            Ok(match r.get::<_, rusqlite::types::Value>(i)? {
                                rusqlite::types::Value::Null => Cell::Null,
                                rusqlite::types::Value::Integer(v) => Cell::Int(v),
                                rusqlite::types::Value::Real(v) => Cell::Text(v.to_string()),
                                rusqlite::types::Value::Text(v) => Cell::Text(v),
                                rusqlite::types::Value::Blob(v) => Cell::Blob(v),
                            })
                        })
                        .collect::<rusqlite::Result<Vec<Cell>>>()
                })
                .map_err(store_error)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(store_error)?;
            out.push(TableRows { table, rows });
        }
        Ok(out)
    }

    fn load(&self, tables: &[TableRows]) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(store_error)?;
        let used: i64 = tx
            .query_row(
                "SELECT (SELECT count(*) FROM keyring) + (SELECT count(*) FROM audit)",
                [],
                |r| r.get(0),
            )
            .map_err(store_error)?;
        refuse_unless_new(used)?;
        for t in tables {
            let columns = columns_of(t.table)?;
            let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
            let mut st = tx
                .prepare(&format!(
                    "INSERT OR REPLACE INTO {} ({}) VALUES ({})",
                    t.table,
                    columns.join(", "),
                    marks.join(", ")
                ))
                .map_err(store_error)?;
            for row in &t.rows {
                if is_own_meta(t.table, row) {
                    continue;
                }
                let values: Vec<rusqlite::types::Value> = row
                    .iter()
                    .map(|c| match c {
                        Cell::Null => rusqlite::types::Value::Null,
                        Cell::Int(v) => rusqlite::types::Value::Integer(*v),
                        Cell::Text(v) => rusqlite::types::Value::Text(v.clone()),
                        Cell::Blob(v) => rusqlite::types::Value::Blob(v.clone()),
                    })
                    .collect();
                st.execute(rusqlite::params_from_iter(values))
                    .map_err(store_error)?;
            }
        }
        tx.commit().map_err(store_error)
    }
}

fn keyring_rows(conn: &Connection) -> Result<Vec<KeyringRow>> {
    conn.prepare_cached(
        "SELECT kind, version, wrapped, created, state FROM keyring ORDER BY kind, version",
    )
    .and_then(|mut st| {
        st.query_map([], keyring_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(store_error)
}

fn insert_keyring(tx: &rusqlite::Transaction<'_>, rows: &[KeyringRow]) -> Result<()> {
    let mut stmt = tx
        .prepare_cached("INSERT INTO keyring (kind, version, wrapped, created, state) VALUES (?1, ?2, ?3, ?4, ?5)")
        .map_err(store_error)?;
    for r in rows {
        stmt.execute(params![r.kind, r.version, r.wrapped, r.created, r.state])
            .map_err(store_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch lookup answers every id as a lookup of its own does, whether it falls in a run of
    /// one subject's categories (read in one query) or not: rotated keys give their newest
    /// version, a destroyed newest key is still the newest, a category or subject without keys
    /// is `None`, and exact versions, repeats and ids out of order are answered in place.
    #[test]
    fn a_batch_lookup_answers_as_single_lookups_do() {
        let dir = std::env::temp_dir().join(format!("coffer-batch-lookup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(dir.join("s.db"), true).unwrap();
        {
            let conn = store.lock();
            for (t, s, c, v, wrapped) in [
                ("t", "a", "contact", 1, Some(vec![1u8])),
                ("t", "a", "contact", 2, Some(vec![2])),
                ("t", "a", "contact", 3, None),
                ("t", "a", "identity", 1, Some(vec![4])),
                ("t", "b", "identity", 1, Some(vec![5])),
                ("t", "b", "identity", 2, Some(vec![6])),
                ("u", "a", "contact", 7, Some(vec![7])),
            ] {
                conn.execute(
                    "INSERT INTO data_keys (tenant, subject, category, version, kek_version, wrapped, created) VALUES (?1, ?2, ?3, ?4, 1, ?5, 'now')",
                    params![t, s, c, v, wrapped],
                )
                .unwrap();
            }
        }
        let ids: Vec<(&str, &str, &str, Option<u32>)> = vec![
            ("t", "a", "contact", None),
            ("t", "a", "financial", None),
            ("t", "a", "identity", None),
            ("t", "b", "contact", None),
            ("t", "b", "identity", None),
            ("t", "c", "contact", None),
            ("t", "c", "identity", None),
            ("t", "a", "contact", Some(2)),
            ("t", "a", "contact", Some(9)),
            ("t", "a", "identity", None),
            ("u", "a", "contact", None),
            ("u", "a", "identity", None),
            ("t", "a", "contact", None),
            ("t", "b", "identity", None),
            ("t", "b", "identity", None),
        ];
        let batch = store.data_keys_batch(&ids).unwrap();
        assert_eq!(batch.len(), ids.len());
        let show = |r: &Option<DataKeyRow>| {
            r.as_ref().map(|r| {
                (
                    r.tenant.clone(),
                    r.subject.clone(),
                    r.category.clone(),
                    r.version,
                    r.wrapped.clone(),
                )
            })
        };
        for (&(t, s, c, v), got) in ids.iter().zip(&batch) {
            let one = store.data_key(t, s, c, v).unwrap();
            assert_eq!(show(got), show(&one), "{t}/{s}/{c}/{v:?}");
        }
        // What the store holds, spelt out for the runs read in one query.
        let versions: Vec<Option<u32>> = batch
            .iter()
            .take(7)
            .map(|r| r.as_ref().map(|r| r.version))
            .collect();
        assert_eq!(
            versions,
            [Some(3), None, Some(1), None, Some(2), None, None]
        );
        assert!(batch[0].as_ref().unwrap().wrapped.is_none());
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A bulk insert's statement journal never reaches a file in the temp directory (where
    /// neither `secure_delete` nor crypto-shredding would find its copies of key pages).
    #[test]
    fn temporary_data_stays_in_memory() {
        let dir = std::env::temp_dir().join(format!("coffer-temp-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(dir.join("s.db"), true).unwrap();
        let mode: i64 = store
            .lock()
            .query_row("PRAGMA temp_store", [], |r| r.get(0))
            .unwrap();
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(mode, 2, "temp_store = MEMORY");
    }
}
