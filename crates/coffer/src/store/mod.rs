//! The embedded key store: one SQLite file with the keyring, the wrapped data keys and the audit
//! log, behind a trait so that a shared server-backed store can replace it.
//!
//! Only this module talks to SQLite. Every mutation appends its audit entries in the same
//! transaction (`BEGIN IMMEDIATE`), so that the chain stays unbroken across threads and
//! processes, and a change whose audit entry cannot be written does not happen.

use std::path::Path;

use crate::error::{Error, Result};

/// The store format this build writes, and the newest it reads.
pub const STORE_SCHEMA_VERSION: u32 = 5;

#[cfg(feature = "postgres")]
mod pg;
mod sqlite;
#[cfg(feature = "postgres")]
pub use pg::PgStore;
pub use sqlite::SqliteStore;

/// Whether `location` names a PostgreSQL store (`postgres://…` or `postgresql://…`) rather
/// than an SQLite file.
pub fn is_server_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// Opens the store at `location` (a PostgreSQL URL or an SQLite file's path) as it is, without
/// a master key: for tools that move or inspect stores, and for tests that wrap a store.
pub fn open(location: impl AsRef<Path>, create: bool) -> Result<Box<dyn Store>> {
    open_location(
        location.as_ref(),
        create,
        std::time::Duration::from_secs(5),
        &|_| Ok(()),
    )
}

/// Opens the store at `location`: a PostgreSQL URL, or an SQLite file's path. `verify` sees
/// the keyring's rows (none for a new store) before anything is written.
pub(crate) fn open_location(
    location: &Path,
    create: bool,
    busy_timeout: std::time::Duration,
    verify: &dyn Fn(&[KeyringRow]) -> Result<()>,
) -> Result<Box<dyn Store>> {
    match location.to_str() {
        #[cfg(feature = "postgres")]
        Some(url) if is_server_url(url) => Ok(Box::new(PgStore::open_checked(
            url,
            create,
            busy_timeout,
            verify,
        )?)),
        #[cfg(not(feature = "postgres"))]
        Some(url) if is_server_url(url) => Err(Error::Unsupported {
            what: "this build has no PostgreSQL store (the `postgres` feature is off)".into(),
        }),
        _ => Ok(Box::new(SqliteStore::open_checked(
            location,
            create,
            busy_timeout,
            verify,
        )?)),
    }
}

/// One wrapped key of the keyring.
#[derive(Clone, Debug)]
pub struct KeyringRow {
    /// `kek`, `index`, `audit_mac`, `envelope_mac`, `mask`, `signing`.
    pub kind: String,
    /// The version (for `index`, the epoch).
    pub version: u32,
    /// The key, wrapped under the master key.
    pub wrapped: Vec<u8>,
    /// When it was made (RFC 3339).
    pub created: String,
    /// `active`, or `retired` (index epochs no longer written).
    pub state: String,
}

/// One wrapped data key.
#[derive(Clone, Debug)]
pub struct DataKeyRow {
    /// The tenant.
    pub tenant: String,
    /// The data subject.
    pub subject: String,
    /// The retention category.
    pub category: String,
    /// The key's version.
    pub version: u32,
    /// The KEK version that wraps it.
    pub kek_version: u32,
    /// The wrapped key; `None` once destroyed.
    pub wrapped: Option<Vec<u8>>,
    /// When it was made.
    pub created: String,
}

/// A new data key to insert: its names and creation time borrowed from the caller (a batch of
/// new keys is written without copying them).
#[derive(Clone, Debug)]
pub struct NewDataKey<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The data subject.
    pub subject: &'a str,
    /// The retention category.
    pub category: &'a str,
    /// The key's version.
    pub version: u32,
    /// The KEK version that wraps it.
    pub kek_version: u32,
    /// The wrapped key.
    pub wrapped: Vec<u8>,
    /// When it was made.
    pub created: &'a str,
}

/// One row of the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// The entry, canonical JSON.
    pub entry: String,
    /// `HMAC(audit key, previous mac ‖ seq ‖ entry)`.
    pub mac: Vec<u8>,
}

/// Computes a chained MAC: `(previous mac, seq, entry) -> mac`.
pub type ChainMac<'a> = &'a (dyn Fn(&[u8], u64, &str) -> [u8; 32] + Sync);

/// Audit entries to append in the same transaction as a change.
pub struct AuditBatch<'a> {
    /// The entries, canonical JSON (their `seq` is assigned by the store).
    pub entries: Vec<String>,
    /// The chain MAC.
    pub mac: ChainMac<'a>,
}

/// What a store (or a copy of one) holds: what a backup's manifest states and a restore
/// checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSummary {
    /// Audit entries.
    pub entries: u64,
    /// The MAC of the last entry (empty for an empty trail).
    pub chain_head: Vec<u8>,
    /// Keyring rows.
    pub keyring_keys: u64,
    /// The KEK versions in the keyring.
    pub kek_versions: Vec<u32>,
    /// Live data keys.
    pub live_data_keys: u64,
    /// Destroyed data keys.
    pub destroyed_data_keys: u64,
}

/// What Coffer needs from a key store.
///
/// Split by concern into [`KeyStore`], [`AuditLog`], [`RetentionStore`] and [`WholeStore`]; a
/// type that implements the four (and is `Send + Sync`) is a `Store`.
pub trait Store: KeyStore + AuditLog + RetentionStore + WholeStore + Send + Sync {}

impl<T: KeyStore + AuditLog + RetentionStore + WholeStore + Send + Sync> Store for T {}

/// The key hierarchy's rows: the keyring (wrapped under the master key) and the wrapped data
/// keys. Every write appends its audit entries in the same transaction.
pub trait KeyStore {
    /// Every keyring row.
    fn keyring(&self) -> Result<Vec<KeyringRow>>;
    /// Writes the first keyring of a new store; fails if one exists.
    fn init_keyring(&self, rows: &[KeyringRow], audit: &AuditBatch<'_>) -> Result<Vec<u64>>;
    /// Rewraps every keyring row (master-key rotation): reads the rows, passes them to
    /// `rewrap`, and writes back the wrapped keys it returns, all in one write transaction, so
    /// that a key another process adds meanwhile is either rewrapped or added after, never
    /// lost.
    fn rewrap_keyring(
        &self,
        rewrap: &mut dyn FnMut(&[KeyringRow]) -> Result<Vec<KeyringRow>>,
        audit: &AuditBatch<'_>,
    ) -> Result<Vec<u64>>;
    /// Adds one keyring row (a new KEK version or index epoch).
    ///
    /// `verify` sees the rows as they are inside the transaction, before the new one goes in:
    /// the caller checks that its master key still opens them (another process may have
    /// rotated it), so that a key wrapped under a retired master key is never added.
    fn add_keyring_row(
        &self,
        row: &KeyringRow,
        verify: &dyn Fn(&[KeyringRow]) -> Result<()>,
        audit: &AuditBatch<'_>,
    ) -> Result<Vec<u64>>;
    /// Marks an index epoch retired.
    fn set_keyring_state(
        &self,
        kind: &str,
        version: u32,
        state: &str,
        audit: &AuditBatch<'_>,
    ) -> Result<Vec<u64>>;
    /// A data key: `version`, or the newest when `None`.
    fn data_key(
        &self,
        tenant: &str,
        subject: &str,
        category: &str,
        version: Option<u32>,
    ) -> Result<Option<DataKeyRow>>;
    /// Many data keys at once, in order: each `(tenant, subject, category, version)`, or the
    /// newest of the category when the version is `None`. One read transaction where the store
    /// can.
    fn data_keys_batch(
        &self,
        ids: &[(&str, &str, &str, Option<u32>)],
    ) -> Result<Vec<Option<DataKeyRow>>> {
        ids.iter()
            .map(|(t, s, c, v)| self.data_key(t, s, c, *v))
            .collect()
    }
    /// Inserts new data keys and their audit entries in one transaction, all or nothing.
    /// When another process has made any of the same (tenant, subject, category, version)
    /// first, nothing is written and `Ok(None)` is returned: the caller takes the stored keys
    /// and retries with the rest. Otherwise returns the sequence numbers of the entries.
    fn insert_data_keys(
        &self,
        rows: &[NewDataKey<'_>],
        audit: &AuditBatch<'_>,
    ) -> Result<Option<Vec<u64>>>;
    /// Up to `limit` live data keys wrapped under a KEK older than `kek_version`.
    fn data_keys_to_rewrap(&self, kek_version: u32, limit: usize) -> Result<Vec<DataKeyRow>>;
    /// Stores rewrapped data keys.
    fn rewrap_data_keys(&self, rows: &[DataKeyRow], audit: &AuditBatch<'_>) -> Result<Vec<u64>>;
    /// Deletes, for good, every KEK version older than `below`, in one transaction with its
    /// audit entries, and returns the versions deleted (none when there were none, and then
    /// nothing is written) with the entries' sequence numbers. Refused
    /// with [`Error::InvalidArgument`] while a live data key is still wrapped under one of them (the
    /// check is made inside the transaction that deletes).
    fn retire_keks(&self, below: u32, audit: &AuditBatch<'_>) -> Result<(Vec<u32>, Vec<u64>)>;
}

/// The audit chain: appends (entries and their chained MACs, in one transaction) and reads.
pub trait AuditLog {
    /// Appends audit entries on their own.
    fn append_audit(&self, audit: &AuditBatch<'_>) -> Result<Vec<u64>>;
    /// Audit rows from `from_seq`, at most `limit`.
    fn audit_rows(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditRow>>;
    /// How many audit rows there are.
    fn audit_len(&self) -> Result<u64>;
}

/// Retention state (events, holds, restrictions, keep-until dates, destruction lists and
/// certificates, rule overrides) and rate-limit usage, read and written through [`RetentionTx`]
/// inside one transaction whose audit entries commit with it.
pub trait RetentionStore {
    /// Runs retention statements (events, holds, restrictions, keep-until dates, destruction
    /// lists, destruction) in one transaction; `f` returns the audit entries that record what
    /// it did, which are appended in the same transaction.
    fn retention_tx(
        &self,
        mac: ChainMac<'_>,
        f: &mut dyn FnMut(&dyn RetentionTx) -> Result<Vec<String>>,
    ) -> Result<Vec<u64>>;
    /// Reads retention state.
    fn retention_read(&self, f: &mut dyn FnMut(&dyn RetentionTx) -> Result<()>) -> Result<()>;
    /// After a destruction: moves what committed into the main file and empties the
    /// write-ahead log, so that no older copy of a destroyed key's page is left in either
    /// (deleted content itself is overwritten: `secure_delete`). `Ok(false)` when readers in
    /// other connections kept the log from being emptied; it is then emptied by a later call or
    /// SQLite's own checkpoints. Stores without such a log do nothing.
    fn purge_log(&self) -> Result<bool> {
        Ok(true)
    }
}

/// The store as a whole: its summary, backups, and copies to another store.
pub trait WholeStore {
    /// What the store holds now (one read).
    fn summary(&self) -> Result<StoreSummary>;
    /// Writes a consistent copy of the whole store to `path` (a new file, created private)
    /// while other connections go on writing, and returns what the copy holds.
    fn backup_to(&self, path: &Path) -> Result<StoreSummary> {
        let _ = path;
        Err(Error::Unsupported {
            what: "this store cannot make backups".into(),
        })
    }
    /// Every row of every table ([`TABLES`]), read in one snapshot: what [`copy`] moves.
    fn dump(&self) -> Result<Vec<TableRows>> {
        Err(Error::Unsupported {
            what: "this store cannot be copied".into(),
        })
    }
    /// Writes a [`WholeStore::dump`] of another store into this one, in one transaction. Refused
    /// unless this store is new (no keyring, no audit entries); nothing is written then.
    fn load(&self, tables: &[TableRows]) -> Result<()> {
        let _ = tables;
        Err(Error::Unsupported {
            what: "this store cannot be copied into".into(),
        })
    }
}

/// The tables of a store and their columns, the same on every backend, in the order [`copy`]
/// moves them. `meta` keeps the store's change counters; its format keys are each store's own.
pub const TABLES: &[(&str, &[&str])] = &[
    ("meta", &["key", "value"]),
    (
        "keyring",
        &["kind", "version", "wrapped", "created", "state"],
    ),
    (
        "data_keys",
        &[
            "tenant",
            "subject",
            "category",
            "version",
            "kek_version",
            "wrapped",
            "created",
            "destroyed",
            "keep_until",
            "rule",
            "action",
        ],
    ),
    ("audit", &["seq", "entry", "mac"]),
    (
        "events",
        &["tenant", "subject", "event", "date", "recorded"],
    ),
    (
        "holds",
        &[
            "id",
            "tenant",
            "subject",
            "category",
            "kind",
            "reason",
            "placed_by",
            "placed_at",
            "until",
            "released_by",
            "released_at",
        ],
    ),
    (
        "restrictions",
        &[
            "tenant", "subject", "category", "purposes", "until", "rule", "since",
        ],
    ),
    (
        "destruction_lists",
        &["id", "created", "state", "items", "approvals"],
    ),
    ("certificates", &["id", "body"]),
    ("rule_overrides", &["rule", "period", "approvals", "at"]),
    (
        "rate_usage",
        &[
            "limit_id",
            "tenant",
            "principal",
            "width",
            "window_start",
            "count",
        ],
    ),
];

/// `meta` keys that belong to each store (its format and migrations), never copied.
const OWN_META: &[&str] = &["format", "schema_version", "pg_migrations"];

/// Whether a row of `table` is one of a store's own `meta` rows, which a copy leaves alone.
pub(crate) fn is_own_meta(table: &str, row: &[Cell]) -> bool {
    table == "meta" && matches!(row.first(), Some(Cell::Text(k)) if OWN_META.contains(&k.as_str()))
}

/// The columns of `table`, as [`TABLES`] lists them.
pub(crate) fn columns_of(table: &str) -> Result<&'static [&'static str]> {
    TABLES
        .iter()
        .find(|(name, _)| *name == table)
        .map(|(_, columns)| *columns)
        .ok_or_else(|| Error::Internal {
            message: format!("unknown table {table}"),
        })
}

/// A store's summary from its counts and keyring rows (each backend counts in its own SQL).
pub(crate) fn summary_of(
    entries: u64,
    chain_head: Vec<u8>,
    keyring: &[KeyringRow],
    live_data_keys: u64,
    destroyed_data_keys: u64,
) -> StoreSummary {
    StoreSummary {
        entries,
        chain_head,
        keyring_keys: keyring.len() as u64,
        kek_versions: keyring
            .iter()
            .filter(|r| r.kind == "kek")
            .map(|r| r.version)
            .collect(),
        live_data_keys,
        destroyed_data_keys,
    }
}

/// A keyring rewrap must give back as many keys as it was given.
pub(crate) fn check_rewrap(before: usize, after: usize) -> Result<()> {
    if before != after {
        return Err(Error::Internal {
            message: "a keyring rewrap changed the number of keys".into(),
        });
    }
    Ok(())
}

/// KEKs older than `below` may be retired only once no live data key (`live` of them, counted
/// inside the retiring transaction) is still wrapped under one.
pub(crate) fn refuse_retiring_with_live_keys(
    live: i64,
    below: impl std::fmt::Display,
) -> Result<()> {
    if live > 0 {
        return Err(Error::InvalidArgument {
            name: "kek",
            reason: format!(
                "{live} live data key(s) are still wrapped under a KEK older than version {below}: \
                 finish the rotation (continue_kek_rotation) before retiring"
            ),
        });
    }
    Ok(())
}

/// A principal's usage in the window starting at `start` and in the one before it, from the
/// stored `(window_start, count)` rows of those two windows.
pub(crate) fn rate_windows(start: i64, rows: impl IntoIterator<Item = (i64, i64)>) -> (u32, u32) {
    let (mut current, mut previous) = (0u32, 0u32);
    for (at, n) in rows {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if at == start {
            current = n;
        } else {
            previous = n;
        }
    }
    (current, previous)
}

/// Refuses to load a copy into a store that holds keys or audit entries (`used` of them).
pub(crate) fn refuse_unless_new(used: i64) -> Result<()> {
    if used > 0 {
        return Err(Error::InvalidArgument {
            name: "destination",
            reason: "the destination store is not new (it has keys or audit entries)".into(),
        });
    }
    Ok(())
}

/// One value of a row being copied. Its `Debug` names the type only: a copied row holds
/// wrapped keys and audit entries.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl std::fmt::Debug for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Cell::Null => "Null",
            Cell::Int(_) => "Int(..)",
            Cell::Text(_) => "Text(..)",
            Cell::Blob(_) => "Blob(..)",
        })
    }
}

/// The rows of one table, columns as in [`TABLES`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRows {
    /// The table.
    pub table: &'static str,
    /// Its rows, in primary-key order.
    pub rows: Vec<Vec<Cell>>,
}

/// What [`copy`] moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyReport {
    /// Rows by table.
    pub rows: Vec<(&'static str, u64)>,
    /// What the copy holds (equal to the source's at the time of its snapshot).
    pub summary: StoreSummary,
}

/// Copies a whole store into a new one (another backend, or the same), then checks the copy:
/// every table read back equal to what was read from the source (one snapshot of it), and the
/// summaries (entries, chain head, keys) equal. The audit chain itself is verified by the
/// caller with the master key (`Coffer::audit_verify`), which this level does not hold.
pub fn copy(src: &dyn Store, dst: &dyn Store) -> Result<CopyReport> {
    let tables = src.dump()?;
    dst.load(&tables)?;
    let back = dst.dump()?;
    for (a, b) in tables.iter().zip(&back) {
        let own = |r: &&Vec<Cell>| !is_own_meta(a.table, r);
        // Compared as sets: the two backends may sort text differently (collations).
        let (mut ra, mut rb): (Vec<_>, Vec<_>) = (
            a.rows.iter().filter(own).collect(),
            b.rows.iter().filter(own).collect(),
        );
        ra.sort();
        rb.sort();
        if ra != rb {
            return Err(Error::Integrity {
                what: format!(
                    "the copy's table {} (differs from the source's: {} rows read, {} written)",
                    a.table,
                    ra.len(),
                    rb.len()
                ),
            });
        }
    }
    let summary = dst.summary()?;
    Ok(CopyReport {
        rows: tables
            .iter()
            .map(|t| (t.table, t.rows.len() as u64))
            .collect(),
        summary,
    })
}

/// Retention state (and, since store schema 4, rate-limit usage) inside one transaction or one
/// read: thin typed statements over the store, implemented by each backend.
pub trait RetentionTx {
    /// Records a lifecycle event.
    fn add_event(
        &self,
        tenant: &str,
        subject: &str,
        event: &str,
        date: &str,
        recorded: &str,
    ) -> Result<()>;

    /// A subject's events: `(event, date)`.
    fn events(&self, tenant: &str, subject: &str) -> Result<Vec<(String, String)>>;

    /// A subject's live data keys.
    fn subject_keys(&self, tenant: &str, subject: &str) -> Result<Vec<KeyState>>;

    /// Every data key of a subject, live or destroyed, with when it was destroyed, ordered by
    /// category and version.
    fn subject_key_history(
        &self,
        tenant: &str,
        subject: &str,
    ) -> Result<Vec<(KeyState, Option<String>)>>;

    /// A subject's restrictions in full.
    fn restriction_rows(&self, tenant: &str, subject: &str) -> Result<Vec<RestrictionRow>>;

    /// Destruction lists in a state (`proposed`, `approved`…): `(id, created, items JSON,
    /// approvals JSON)`.
    fn lists_in(&self, state: &str) -> Result<Vec<(i64, String, String, String)>>;

    /// Sets a key's keep-until date, rule and action.
    fn set_keep_until(&self, k: &KeyState) -> Result<()>;

    /// Live keys whose keep-until date is on or before `today` (ISO date), in date order.
    fn due_keys(&self, today: &str, limit: usize) -> Result<Vec<KeyState>>;

    /// The restrictions of many subjects of one tenant, `(subject, category, purposes JSON)`,
    /// in a few statements rather than one per subject.
    fn restrictions_of(
        &self,
        tenant: &str,
        subjects: &[&str],
    ) -> Result<Vec<(String, String, String)>>;

    /// Every subject of `tenant` with a restriction on `category`, with the purposes (JSON)
    /// that may still use it.
    fn restricted_subjects(&self, tenant: &str, category: &str) -> Result<Vec<(String, String)>>;

    /// Destroys a data key: the wrapped key is overwritten (`secure_delete`) and removed, and
    /// the store's destruction count goes up (see [`RetentionTx::destructions`]). Returns the
    /// KEK version it was wrapped under, or `None` when it was already destroyed.
    fn destroy_key(&self, k: &KeyState, when: &str) -> Result<Option<u32>>;

    /// How many rule overrides have ever been recorded in this store: a handle that sees it
    /// change loads them again, so that the dates it computes follow them.
    fn override_changes(&self) -> Result<u64>;

    /// The keyring's signature: rows, active rows and the sum of versions (see
    /// `keyring_signature` in the facade, which computes it from the rows it loaded). Versions
    /// only grow, so a rotation followed by a retirement (one row in, one out) still changes it.
    fn keyring_signature(&self) -> Result<u64>;

    /// Destroyed data keys whose KEK is still in the keyring, by KEK version: `(version,
    /// count, earliest destruction)`. A copy of the store taken before their destruction
    /// still holds them wrapped under that KEK.
    fn exposed_destructions(&self) -> Result<Vec<(u32, u64, String)>>;

    /// Every destroyed data key, with when it was destroyed.
    fn destroyed_keys(&self) -> Result<Vec<(KeyState, String)>>;

    /// Every live data key.
    fn live_keys(&self) -> Result<Vec<KeyState>>;

    /// Whether the store has this data key, live or destroyed.
    fn key_exists(&self, k: &KeyState) -> Result<bool>;

    /// Every restriction: `(tenant, subject, restriction)`.
    fn all_restrictions(&self) -> Result<Vec<(String, String, RestrictionRow)>>;

    /// Every stored destruction certificate (JSON), oldest first.
    fn certificates(&self) -> Result<Vec<String>>;

    /// SQLite's `data_version` for this connection: it changes when another connection (another
    /// handle, another process) commits, and not for this connection's own commits.
    fn change_token(&self) -> Result<u64>;

    /// How many data keys have ever been destroyed in this store, by any process: a handle
    /// that sees it change drops the keys it holds in memory, so that no cached copy outlives
    /// its destruction.
    fn destructions(&self) -> Result<u64>;

    /// Adds a hold; returns its id.
    fn add_hold(&self, h: &LegalHold) -> Result<i64>;

    /// Releases a hold.
    fn release_hold(&self, id: i64, by: &str, at: &str) -> Result<bool>;

    /// Holds not released whose end (if any) is after `today`.
    fn active_holds(&self, tenant: Option<&str>, today: &str) -> Result<Vec<LegalHold>>;

    /// The fields a principal revealed under a rate limit (of `width` seconds) in the fixed
    /// window that starts at `start` and in the one before it: `(current, previous)`.
    fn rate_usage(&self, key: &RateKey<'_>, start: i64) -> Result<(u32, u32)>;

    /// Adds `n` fields to the window that starts at `start` (added, not overwritten, so that
    /// two processes never lose each other's counts), and forgets that principal's windows
    /// too old to count.
    fn add_rate_usage(&self, key: &RateKey<'_>, start: i64, n: u32) -> Result<()>;

    /// Restricts a category of a subject (see [`Restriction`]).
    fn restrict(&self, r: &Restriction<'_>) -> Result<()>;

    /// Stores a destruction list; returns its id.
    fn add_list(&self, created: &str, items: &str) -> Result<i64>;

    /// A destruction list: `(state, items JSON, approvals JSON)`.
    fn list(&self, id: i64) -> Result<Option<(String, String, String)>>;

    /// The highest destruction list id (0 when there is none).
    fn list_count(&self) -> Result<i64>;

    /// Updates a destruction list's state and approvals.
    fn update_list(&self, id: i64, state: &str, approvals: &str) -> Result<()>;

    /// Records an override of a company rule's period.
    fn set_override(&self, rule: &str, period: &str, approvals: &str, at: &str) -> Result<()>;

    /// The overridden periods: `(rule, period)`.
    fn overrides(&self) -> Result<Vec<(String, String)>>;

    /// The subjects with live keys in a category: `(tenant, subject)`.
    fn subjects_with(&self, category: &str) -> Result<Vec<(String, String)>>;

    /// Stores a destruction certificate; returns its id.
    fn add_certificate(&self, body: &str) -> Result<i64>;
}

/// Whose usage under which rate limit: a principal (of a tenant) under a limit of `width`
/// seconds.
#[derive(Clone, Copy, Debug)]
pub struct RateKey<'a> {
    /// The limit's id.
    pub limit: &'a str,
    /// The principal's tenant.
    pub tenant: &'a str,
    /// The principal's id.
    pub principal: &'a str,
    /// The window's width in seconds.
    pub width: i64,
}

/// A data key as retention sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyState {
    /// The tenant.
    pub tenant: String,
    /// The subject.
    pub subject: String,
    /// The category.
    pub category: String,
    /// The version.
    pub version: u32,
    /// When it was created (RFC 3339).
    pub created: String,
    /// Its keep-until date (ISO date), if computed and finite.
    pub keep_until: Option<String>,
    /// The rule that gives it.
    pub rule: Option<String>,
    /// The action at expiry.
    pub action: Option<String>,
}

/// A category of a subject restricted after an erasure request.
#[derive(Clone, Debug)]
pub struct Restriction<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The subject.
    pub subject: &'a str,
    /// The retention category.
    pub category: &'a str,
    /// The purposes that may still reveal it (JSON array).
    pub purposes: &'a str,
    /// Until when (ISO date), if the period has begun.
    pub until: Option<&'a str>,
    /// The rule that keeps it.
    pub rule: &'a str,
    /// Since when.
    pub since: &'a str,
}

/// A stored restriction.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RestrictionRow {
    /// The category.
    pub category: String,
    /// The purposes that may still reveal it (JSON array).
    pub purposes: String,
    /// Until when (ISO date), if the period has begun.
    pub until: Option<String>,
    /// The rule that keeps it.
    pub rule: String,
    /// Since when.
    pub since: String,
}

pub use crate::retention::types::LegalHold;

/// Refuses a backup's file (or its manifest) that already exists: a backup never overwrites.
pub(crate) fn never_overwrite(path: &Path) -> Result<()> {
    if path.exists() {
        return Err(Error::InvalidArgument {
            name: "path",
            reason: format!(
                "{} already exists; a backup never overwrites a file",
                path.display()
            ),
        });
    }
    Ok(())
}

/// The keyring signature of `rows` rows, `active` of them active, whose versions sum to
/// `versions`.
pub(crate) fn signature_of(rows: u64, active: u64, versions: u64) -> u64 {
    (rows << 48) ^ (active << 32) ^ (versions & 0xffff_ffff)
}
