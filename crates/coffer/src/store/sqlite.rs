//! The SQLite store: one file, one connection per handle, writers serialised by SQLite
//! (`BEGIN IMMEDIATE`) across threads and processes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

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
    Ok(StoreSummary {
        entries,
        chain_head,
        keyring_keys: rows.len() as u64,
        kek_versions: rows
            .iter()
            .filter(|r| r.kind == "kek")
            .map(|r| r.version)
            .collect(),
        live_data_keys,
        destroyed_data_keys,
    })
}

/// [`RetentionTx`] over one SQLite connection or transaction.
struct SqliteTx<'a> {
    conn: &'a Connection,
}

fn key_state(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyState> {
    Ok(KeyState {
        tenant: r.get(0)?,
        subject: r.get(1)?,
        category: r.get(2)?,
        version: r.get(3)?,
        created: r.get(4)?,
        keep_until: r.get(5)?,
        rule: r.get(6)?,
        action: r.get(7)?,
    })
}

const KEY_STATE: &str = "tenant, subject, category, version, created, keep_until, rule, action";

impl SqliteTx<'_> {
    /// Adds one to a change counter in `meta`.
    fn bump(&self, counter: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, '1')
                 ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
            )
            .and_then(|mut st| st.execute([counter]))
            .map(|_| ())
            .map_err(store_error)
    }

    /// A change counter in `meta` (0 if never bumped).
    fn counter(&self, counter: &str) -> Result<u64> {
        let text: Option<String> = self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .and_then(|mut st| st.query_row([counter], |r| r.get(0)).optional())
            .map_err(store_error)?;
        Ok(text.and_then(|t| t.parse().ok()).unwrap_or(0))
    }
}

impl RetentionTx for SqliteTx<'_> {
    /// Records a lifecycle event.
    fn add_event(
        &self,
        tenant: &str,
        subject: &str,
        event: &str,
        date: &str,
        recorded: &str,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO events (tenant, subject, event, date, recorded) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![tenant, subject, event, date, recorded],
            )
            .map(|_| ())
            .map_err(store_error)
    }

    /// A subject's events: `(event, date)`.
    fn events(&self, tenant: &str, subject: &str) -> Result<Vec<(String, String)>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT event, date FROM events WHERE tenant = ?1 AND subject = ?2")
            .map_err(store_error)?;
        let rows = st
            .query_map(params![tenant, subject], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(store_error)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(store_error)
    }

    /// A subject's live data keys.
    fn subject_keys(&self, tenant: &str, subject: &str) -> Result<Vec<KeyState>> {
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT {KEY_STATE} FROM data_keys WHERE tenant = ?1 AND subject = ?2 AND wrapped IS NOT NULL"))
            .map_err(store_error)?;
        let rows = st
            .query_map(params![tenant, subject], key_state)
            .map_err(store_error)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(store_error)
    }

    /// Every data key of a subject, live or destroyed, with when it was destroyed, ordered by
    /// category and version.
    fn subject_key_history(
        &self,
        tenant: &str,
        subject: &str,
    ) -> Result<Vec<(KeyState, Option<String>)>> {
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT {KEY_STATE}, destroyed FROM data_keys WHERE tenant = ?1 AND subject = ?2 ORDER BY category, version"))
            .map_err(store_error)?;
        let rows = st
            .query_map(params![tenant, subject], |r| Ok((key_state(r)?, r.get(8)?)))
            .map_err(store_error)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(store_error)
    }

    /// A subject's restrictions in full.
    fn restriction_rows(&self, tenant: &str, subject: &str) -> Result<Vec<RestrictionRow>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT category, purposes, until, rule, since FROM restrictions WHERE tenant = ?1 AND subject = ?2 ORDER BY category",
            )
            .map_err(store_error)?;
        let rows = st
            .query_map(params![tenant, subject], |r| {
                Ok(RestrictionRow {
                    category: r.get(0)?,
                    purposes: r.get(1)?,
                    until: r.get(2)?,
                    rule: r.get(3)?,
                    since: r.get(4)?,
                })
            })
            .map_err(store_error)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(store_error)
    }

    /// Destruction lists in a state (`proposed`, `approved`…): `(id, created, items JSON,
    /// approvals JSON)`.
    fn lists_in(&self, state: &str) -> Result<Vec<(i64, String, String, String)>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, created, items, approvals FROM destruction_lists WHERE state = ?1 ORDER BY id",
            )
            .map_err(store_error)?;
        let rows = st
            .query_map(params![state], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(store_error)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(store_error)
    }

    /// Sets a key's keep-until date, rule and action.
    fn set_keep_until(&self, k: &KeyState) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE data_keys SET keep_until = ?5, rule = ?6, action = ?7 WHERE tenant = ?1 AND subject = ?2 AND category = ?3 AND version = ?4")
            .and_then(|mut st| st.execute(params![k.tenant, k.subject, k.category, k.version, k.keep_until, k.rule, k.action]))
            .map(|_| ())
            .map_err(store_error)
    }

    /// Live keys whose keep-until date is on or before `today` (ISO date), in date order.
    fn due_keys(&self, today: &str, limit: usize) -> Result<Vec<KeyState>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {KEY_STATE} FROM data_keys WHERE wrapped IS NOT NULL AND keep_until IS NOT NULL AND keep_until <= ?1 ORDER BY keep_until LIMIT ?2"
            ))
            .map_err(store_error)?;
        let rows = st
            .query_map(params![today, limit as i64], key_state)
            .map_err(store_error)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(store_error)
    }

    /// The restrictions of many subjects of one tenant, `(subject, category, purposes JSON)`,
    /// in a few statements rather than one per subject.
    fn restrictions_of(
        &self,
        tenant: &str,
        subjects: &[&str],
    ) -> Result<Vec<(String, String, String)>> {
        let mut out = Vec::new();
        for chunk in subjects.chunks(500) {
            // A few statement sizes, padded by repeating the last subject (harmless in `IN`),
            // so that batches of every size share four cached statements instead of churning
            // the statement cache the other queries use.
            let Some(last) = chunk.last() else { continue };
            let size = [1, 16, 128, 500]
                .into_iter()
                .find(|&n| n >= chunk.len())
                .unwrap_or(500);
            let marks: Vec<String> = (0..size).map(|i| format!("?{}", i + 2)).collect();
            let sql = format!(
                "SELECT subject, category, purposes FROM restrictions WHERE tenant = ?1 AND subject IN ({})",
                marks.join(",")
            );
            let mut st = self.conn.prepare_cached(&sql).map_err(store_error)?;
            let values: Vec<&dyn rusqlite::ToSql> =
                std::iter::once(&tenant as &dyn rusqlite::ToSql)
                    .chain(chunk.iter().map(|s| s as &dyn rusqlite::ToSql))
                    .chain(std::iter::repeat_n(
                        last as &dyn rusqlite::ToSql,
                        size - chunk.len(),
                    ))
                    .collect();
            let rows = st
                .query_map(values.as_slice(), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(store_error)?;
            for row in rows {
                out.push(row.map_err(store_error)?);
            }
        }
        Ok(out)
    }

    /// Every subject of `tenant` with a restriction on `category`, with the purposes (JSON)
    /// that may still use it.
    fn restricted_subjects(&self, tenant: &str, category: &str) -> Result<Vec<(String, String)>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT subject, purposes FROM restrictions WHERE tenant = ?1 AND category = ?2 ORDER BY subject",
            )
            .map_err(store_error)?;
        let rows = st
            .query_map(params![tenant, category], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(store_error)?;
        rows.map(|r| r.map_err(store_error)).collect()
    }

    /// Destroys a data key: the wrapped key is overwritten (`secure_delete`) and removed, and
    /// the store's destruction count goes up (see [`RetentionTx::destructions`]). Returns the
    /// KEK version it was wrapped under, or `None` when it was already destroyed.
    fn destroy_key(&self, k: &KeyState, when: &str) -> Result<Option<u32>> {
        let kek = self
            .conn
            .prepare_cached("UPDATE data_keys SET wrapped = NULL, destroyed = ?5 WHERE tenant = ?1 AND subject = ?2 AND category = ?3 AND version = ?4 AND wrapped IS NOT NULL RETURNING kek_version")
            .and_then(|mut st| st.query_row(params![k.tenant, k.subject, k.category, k.version, when], |r| r.get::<_, u32>(0)).optional())
            .map_err(store_error)?;
        if kek.is_some() {
            self.bump("destructions")?;
        }
        Ok(kek)
    }

    /// How many rule overrides have ever been recorded in this store: a handle that sees it
    /// change loads them again, so that the dates it computes follow them.
    fn override_changes(&self) -> Result<u64> {
        self.counter("overrides")
    }

    /// The keyring's signature: rows, active rows and the sum of versions (see
    /// `keyring_signature` in the facade, which computes it from the rows it loaded). Versions
    /// only grow, so a rotation followed by a retirement (one row in, one out) still changes it.
    fn keyring_signature(&self) -> Result<u64> {
        let (rows, active, versions): (i64, i64, i64) = self
            .conn
            .prepare_cached("SELECT count(*), coalesce(sum(state = 'active'), 0), coalesce(sum(version), 0) FROM keyring")
            .and_then(|mut st| st.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
            .map_err(store_error)?;
        Ok(crate::store::signature_of(
            rows as u64,
            active as u64,
            versions as u64,
        ))
    }

    /// Destroyed data keys whose KEK is still in the keyring, by KEK version: `(version,
    /// count, earliest destruction)`. A copy of the store taken before their destruction
    /// still holds them wrapped under that KEK.
    fn exposed_destructions(&self) -> Result<Vec<(u32, u64, String)>> {
        self.conn
            .prepare_cached(
                "SELECT kek_version, count(*), min(destroyed) FROM data_keys WHERE wrapped IS NULL \
                 AND kek_version IN (SELECT version FROM keyring WHERE kind = 'kek') \
                 GROUP BY kek_version ORDER BY kek_version",
            )
            .and_then(|mut st| {
                st.query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get::<_, i64>(1)? as u64,
                        r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(store_error)
    }

    /// Every destroyed data key, with when it was destroyed.
    fn destroyed_keys(&self) -> Result<Vec<(KeyState, String)>> {
        self.conn
            .prepare_cached("SELECT tenant, subject, category, version, created, destroyed FROM data_keys WHERE wrapped IS NULL")
            .and_then(|mut st| {
                st.query_map([], |r| {
                    Ok((
                        KeyState {
                            tenant: r.get(0)?,
                            subject: r.get(1)?,
                            category: r.get(2)?,
                            version: r.get(3)?,
                            created: r.get(4)?,
                            keep_until: None,
                            rule: None,
                            action: None,
                        },
                        r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(store_error)
    }

    /// Every live data key.
    fn live_keys(&self) -> Result<Vec<KeyState>> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {KEY_STATE} FROM data_keys WHERE wrapped IS NOT NULL"
            ))
            .and_then(|mut st| {
                st.query_map([], key_state)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(store_error)
    }

    /// Whether the store has this data key, live or destroyed.
    fn key_exists(&self, k: &KeyState) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT count(*) FROM data_keys WHERE tenant = ?1 AND subject = ?2 AND category = ?3 AND version = ?4")
            .and_then(|mut st| st.query_row(params![k.tenant, k.subject, k.category, k.version], |r| r.get::<_, i64>(0)))
            .map(|n| n > 0)
            .map_err(store_error)
    }

    /// Every restriction: `(tenant, subject, restriction)`.
    fn all_restrictions(&self) -> Result<Vec<(String, String, RestrictionRow)>> {
        self.conn
            .prepare_cached(
                "SELECT tenant, subject, category, purposes, until, rule, since FROM restrictions",
            )
            .and_then(|mut st| {
                st.query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        RestrictionRow {
                            category: r.get(2)?,
                            purposes: r.get(3)?,
                            until: r.get(4)?,
                            rule: r.get(5)?,
                            since: r.get(6)?,
                        },
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(store_error)
    }

    /// Every stored destruction certificate (JSON), oldest first.
    fn certificates(&self) -> Result<Vec<String>> {
        self.conn
            .prepare_cached("SELECT body FROM certificates ORDER BY id")
            .and_then(|mut st| {
                st.query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .map_err(store_error)
    }

    /// SQLite's `data_version` for this connection: it changes when another connection (another
    /// handle, another process) commits, and not for this connection's own commits.
    fn change_token(&self) -> Result<u64> {
        self.conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut st| st.query_row([], |r| r.get::<_, i64>(0)))
            .map(|v| v as u64)
            .map_err(store_error)
    }

    /// How many data keys have ever been destroyed in this store, by any process: a handle
    /// that sees it change drops the keys it holds in memory, so that no cached copy outlives
    /// its destruction.
    fn destructions(&self) -> Result<u64> {
        self.counter("destructions")
    }

    /// Adds a hold; returns its id.
    fn add_hold(&self, h: &LegalHold) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO holds (tenant, subject, category, kind, reason, placed_by, placed_at, until) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![h.tenant, h.subject, h.category, h.kind, h.reason, h.placed_by, h.placed_at, h.until],
            )
            .map_err(store_error)?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Releases a hold.
    fn release_hold(&self, id: i64, by: &str, at: &str) -> Result<bool> {
        self.conn
            .execute("UPDATE holds SET released_by = ?2, released_at = ?3 WHERE id = ?1 AND released_by IS NULL", params![id, by, at])
            .map(|n| n > 0)
            .map_err(store_error)
    }

    /// Holds not released whose end (if any) is after `today`.
    fn active_holds(&self, tenant: Option<&str>, today: &str) -> Result<Vec<LegalHold>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, tenant, subject, category, kind, reason, placed_by, placed_at, until, released_by FROM holds
                 WHERE released_by IS NULL AND (until IS NULL OR until > ?2) AND (?1 IS NULL OR tenant = ?1) ORDER BY id",
            )
            .map_err(store_error)?;
        let rows = st
            .query_map(params![tenant, today], |r| {
                Ok(LegalHold {
                    id: r.get(0)?,
                    tenant: r.get(1)?,
                    subject: r.get(2)?,
                    category: r.get(3)?,
                    kind: r.get(4)?,
                    reason: r.get(5)?,
                    placed_by: r.get(6)?,
                    placed_at: r.get(7)?,
                    until: r.get(8)?,
                    released_by: r.get(9)?,
                })
            })
            .map_err(store_error)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(store_error)
    }

    /// The fields a principal revealed under a rate limit (of `width` seconds) in the fixed
    /// window that starts at `start` and in the one before it: `(current, previous)`.
    fn rate_usage(&self, key: &RateKey<'_>, start: i64) -> Result<(u32, u32)> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT window_start, count FROM rate_usage
                 WHERE limit_id = ?1 AND tenant = ?2 AND principal = ?3 AND width = ?4
                   AND window_start IN (?5, ?5 - ?4)",
            )
            .map_err(store_error)?;
        let rows = st
            .query_map(
                params![key.limit, key.tenant, key.principal, key.width, start],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )
            .map_err(store_error)?;
        let (mut current, mut previous) = (0u32, 0u32);
        for row in rows {
            let (at, n) = row.map_err(store_error)?;
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            if at == start {
                current = n;
            } else {
                previous = n;
            }
        }
        Ok((current, previous))
    }

    /// Adds `n` fields to the window that starts at `start` (added, not overwritten, so that
    /// two processes never lose each other's counts), and forgets that principal's windows
    /// too old to count.
    fn add_rate_usage(&self, key: &RateKey<'_>, start: i64, n: u32) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO rate_usage (limit_id, tenant, principal, width, window_start, count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (limit_id, tenant, principal, width, window_start)
                 DO UPDATE SET count = count + excluded.count",
            )
            .and_then(|mut st| {
                st.execute(params![
                    key.limit,
                    key.tenant,
                    key.principal,
                    key.width,
                    start,
                    i64::from(n)
                ])
            })
            .map_err(store_error)?;
        self.conn
            .prepare_cached(
                "DELETE FROM rate_usage
                 WHERE limit_id = ?1 AND tenant = ?2 AND principal = ?3 AND width = ?4
                   AND window_start < ?5 - ?4",
            )
            .and_then(|mut st| {
                st.execute(params![
                    key.limit,
                    key.tenant,
                    key.principal,
                    key.width,
                    start
                ])
            })
            .map(|_| ())
            .map_err(store_error)
    }

    /// Restricts a category of a subject (see [`Restriction`]).
    fn restrict(&self, r: &Restriction<'_>) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO restrictions (tenant, subject, category, purposes, until, rule, since) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![r.tenant, r.subject, r.category, r.purposes, r.until, r.rule, r.since],
            )
            .map(|_| ())
            .map_err(store_error)
    }

    /// Stores a destruction list; returns its id.
    fn add_list(&self, created: &str, items: &str) -> Result<i64> {
        self.conn
            .execute("INSERT INTO destruction_lists (created, state, items, approvals) VALUES (?1, 'proposed', ?2, '[]')", params![created, items])
            .map_err(store_error)?;
        Ok(self.conn.last_insert_rowid())
    }

    /// A destruction list: `(state, items JSON, approvals JSON)`.
    fn list(&self, id: i64) -> Result<Option<(String, String, String)>> {
        self.conn
            .query_row(
                "SELECT state, items, approvals FROM destruction_lists WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(store_error)
    }

    /// The highest destruction list id (0 when there is none).
    fn list_count(&self) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT coalesce(max(id), 0) FROM destruction_lists",
                [],
                |r| r.get(0),
            )
            .map_err(store_error)
    }

    /// Updates a destruction list's state and approvals.
    fn update_list(&self, id: i64, state: &str, approvals: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE destruction_lists SET state = ?2, approvals = ?3 WHERE id = ?1",
                params![id, state, approvals],
            )
            .map(|_| ())
            .map_err(store_error)
    }

    /// Records an override of a company rule's period.
    fn set_override(&self, rule: &str, period: &str, approvals: &str, at: &str) -> Result<()> {
        self.conn
            .execute("INSERT OR REPLACE INTO rule_overrides (rule, period, approvals, at) VALUES (?1, ?2, ?3, ?4)", params![rule, period, approvals, at])
            .map_err(store_error)?;
        self.bump("overrides")
    }

    /// The overridden periods: `(rule, period)`.
    fn overrides(&self) -> Result<Vec<(String, String)>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT rule, period FROM rule_overrides")
            .map_err(store_error)?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(store_error)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(store_error)
    }

    /// The subjects with live keys in a category: `(tenant, subject)`.
    fn subjects_with(&self, category: &str) -> Result<Vec<(String, String)>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT DISTINCT tenant, subject FROM data_keys WHERE category = ?1 AND wrapped IS NOT NULL")
            .map_err(store_error)?;
        let rows = st
            .query_map(params![category], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(store_error)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(store_error)
    }

    /// Stores a destruction certificate; returns its id.
    fn add_certificate(&self, body: &str) -> Result<i64> {
        self.conn
            .execute("INSERT INTO certificates (body) VALUES (?1)", params![body])
            .map_err(store_error)?;
        Ok(self.conn.last_insert_rowid())
    }
}

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
        for pragma in [
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = FULL",
            "PRAGMA secure_delete = ON",
            "PRAGMA foreign_keys = ON",
            // 32 MiB of page cache (the default is 2 MiB): bulk sealing into a store of
            // millions of keys touches many index pages per batch.
            "PRAGMA cache_size = -32768",
            // Checkpoint every 16 MiB of WAL rather than 4: pages that bulk sealing rewrites
            // batch after batch (index leaves, the audit tail) are copied back once, not four
            // times.
            "PRAGMA wal_autocheckpoint = 4000",
        ] {
            conn.query_row(pragma, [], |_| Ok(()))
                .optional()
                .map_err(store_error)?;
        }
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
    let (mut seq, mut prev) = last.map_or((0u64, Vec::new()), |(s, m)| (s as u64, m));
    let mut stmt = tx
        .prepare_cached("INSERT INTO audit (seq, entry, mac) VALUES (?1, ?2, ?3)")
        .map_err(store_error)?;
    let mut seqs = Vec::with_capacity(audit.entries.len());
    for entry in &audit.entries {
        seq += 1;
        let mac = (audit.mac)(&prev, seq, entry);
        stmt.execute(params![seq as i64, entry, &mac[..]])
            .map_err(store_error)?;
        prev = mac.to_vec();
        seqs.push(seq);
    }
    Ok(seqs)
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
            if new.len() != rows.len() {
                return Err(Error::Internal {
                    message: "a keyring rewrap changed the number of keys".into(),
                });
            }
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
        ids: &[(String, String, String, Option<u32>)],
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
            for (t, s, c, v) in ids {
                let row = match v {
                    None => newest.query_row(params![t, s, c], data_key_row),
                    Some(v) => exact.query_row(params![t, s, c, v], data_key_row),
                };
                out.push(row.optional().map_err(store_error)?);
            }
        }
        tx.commit().map_err(store_error)?;
        Ok(out)
    }

    fn insert_data_keys(
        &self,
        rows: &[DataKeyRow],
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
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO data_keys (tenant, subject, category, version, kek_version, wrapped, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING")
                .map_err(store_error)?;
            for row in rows {
                let inserted = insert
                    .execute(params![
                        row.tenant,
                        row.subject,
                        row.category,
                        row.version,
                        row.kek_version,
                        row.wrapped,
                        row.created
                    ])
                    .map_err(store_error)?;
                if inserted == 0 {
                    // Another process made this key first: write nothing (the transaction
                    // rolls back when dropped).
                    return Ok(None);
                }
            }
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
        if live > 0 {
            return Err(Error::InvalidArgument {
                name: "kek",
                reason: format!(
                    "{live} live data key(s) are still wrapped under a KEK older than version {below}: \
                     finish the rotation (continue_kek_rotation) before retiring"
                ),
            });
        }
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
        if used > 0 {
            return Err(Error::InvalidArgument {
                name: "destination",
                reason: "the destination store is not new (it has keys or audit entries)".into(),
            });
        }
        for t in tables {
            let (_, columns) = TABLES
                .iter()
                .find(|(name, _)| *name == t.table)
                .ok_or_else(|| Error::Internal {
                    message: format!("unknown table {}", t.table),
                })?;
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
                if t.table == "meta"
                    && matches!(row.first(), Some(Cell::Text(k)) if OWN_META.contains(&k.as_str()))
                {
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
