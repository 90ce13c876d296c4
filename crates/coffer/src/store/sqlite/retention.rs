//! [`RetentionTx`] on SQLite: the retention and rate-limit statements of one transaction (or
//! one read) on the store's connection.

use rusqlite::{Connection, OptionalExtension, params};

use super::store_error;
use crate::error::Result;
use crate::store::*;

/// [`RetentionTx`] over one SQLite connection or transaction.
pub(super) struct SqliteTx<'a> {
    pub(super) conn: &'a Connection,
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
        let rows = rows
            .collect::<rusqlite::Result<Vec<(i64, i64)>>>()
            .map_err(store_error)?;
        Ok(rate_windows(start, rows))
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
