//! [`RetentionTx`] on PostgreSQL: the retention and rate-limit statements of one transaction.

use super::pool::Exec;
use super::{KEY_STATE, key_state, u32_of};
use crate::error::Result;
use crate::store::*;

/// [`RetentionTx`] over one PostgreSQL transaction.
pub(super) struct PgTx<'x, 'c, 't> {
    pub(super) x: &'x Exec<'c, 't>,
}

impl PgTx<'_, '_, '_> {
    fn bump(&self, counter: &str) -> Result<()> {
        self.x.execute(
            "INSERT INTO meta (key, value) VALUES ($1, '1')
             ON CONFLICT (key) DO UPDATE SET value = (meta.value::bigint + 1)::text",
            &[&counter],
        )?;
        Ok(())
    }

    fn counter(&self, counter: &str) -> Result<u64> {
        Ok(self
            .x
            .query_opt("SELECT value FROM meta WHERE key = $1", &[&counter])?
            .and_then(|r| r.get::<_, String>(0).parse().ok())
            .unwrap_or(0))
    }
}

impl RetentionTx for PgTx<'_, '_, '_> {
    fn add_event(
        &self,
        tenant: &str,
        subject: &str,
        event: &str,
        date: &str,
        recorded: &str,
    ) -> Result<()> {
        self.x.execute(
            "INSERT INTO events (tenant, subject, event, date, recorded) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[&tenant, &subject, &event, &date, &recorded],
        )?;
        Ok(())
    }

    fn events(&self, tenant: &str, subject: &str) -> Result<Vec<(String, String)>> {
        Ok(self
            .x
            .query(
                "SELECT event, date FROM events WHERE tenant = $1 AND subject = $2",
                &[&tenant, &subject],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn subject_keys(&self, tenant: &str, subject: &str) -> Result<Vec<KeyState>> {
        Ok(self
            .x
            .query(
                &format!("SELECT {KEY_STATE} FROM data_keys WHERE tenant = $1 AND subject = $2 AND wrapped IS NOT NULL"),
                &[&tenant, &subject],
            )?
            .iter()
            .map(key_state)
            .collect())
    }

    fn subject_key_history(
        &self,
        tenant: &str,
        subject: &str,
    ) -> Result<Vec<(KeyState, Option<String>)>> {
        Ok(self
            .x
            .query(
                &format!("SELECT {KEY_STATE}, destroyed FROM data_keys WHERE tenant = $1 AND subject = $2 ORDER BY category, version"),
                &[&tenant, &subject],
            )?
            .iter()
            .map(|r| (key_state(r), r.get(8)))
            .collect())
    }

    fn restriction_rows(&self, tenant: &str, subject: &str) -> Result<Vec<RestrictionRow>> {
        Ok(self
            .x
            .query(
                "SELECT category, purposes, until, rule, since FROM restrictions WHERE tenant = $1 AND subject = $2 ORDER BY category",
                &[&tenant, &subject],
            )?
            .iter()
            .map(|r| RestrictionRow {
                category: r.get(0),
                purposes: r.get(1),
                until: r.get(2),
                rule: r.get(3),
                since: r.get(4),
            })
            .collect())
    }

    fn lists_in(&self, state: &str) -> Result<Vec<(i64, String, String, String)>> {
        Ok(self
            .x
            .query(
                "SELECT id, created, items, approvals FROM destruction_lists WHERE state = $1 ORDER BY id",
                &[&state],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    fn set_keep_until(&self, k: &KeyState) -> Result<()> {
        self.x.execute(
            "UPDATE data_keys SET keep_until = $5, rule = $6, action = $7 WHERE tenant = $1 AND subject = $2 AND category = $3 AND version = $4",
            &[&k.tenant, &k.subject, &k.category, &i64::from(k.version), &k.keep_until, &k.rule, &k.action],
        )?;
        Ok(())
    }

    fn due_keys(&self, today: &str, limit: usize) -> Result<Vec<KeyState>> {
        Ok(self
            .x
            .query(
                &format!("SELECT {KEY_STATE} FROM data_keys WHERE wrapped IS NOT NULL AND keep_until IS NOT NULL AND keep_until <= $1 ORDER BY keep_until LIMIT $2"),
                &[&today, &(limit as i64)],
            )?
            .iter()
            .map(key_state)
            .collect())
    }

    fn restrictions_of(
        &self,
        tenant: &str,
        subjects: &[&str],
    ) -> Result<Vec<(String, String, String)>> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .x
            .query(
                "SELECT subject, category, purposes FROM restrictions WHERE tenant = $1 AND subject = ANY($2)",
                &[&tenant, &subjects],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    fn restricted_subjects(&self, tenant: &str, category: &str) -> Result<Vec<(String, String)>> {
        Ok(self
            .x
            .query(
                "SELECT subject, purposes FROM restrictions WHERE tenant = $1 AND category = $2 ORDER BY subject",
                &[&tenant, &category],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn destroy_key(&self, k: &KeyState, when: &str) -> Result<Option<u32>> {
        let kek = self.x.query_opt(
            "UPDATE data_keys SET wrapped = NULL, destroyed = $5 WHERE tenant = $1 AND subject = $2 AND category = $3 AND version = $4 AND wrapped IS NOT NULL RETURNING kek_version",
            &[&k.tenant, &k.subject, &k.category, &i64::from(k.version), &when],
        )?
        .map(|r| u32_of(r.get(0)));
        if kek.is_some() {
            self.bump("destructions")?;
        }
        Ok(kek)
    }

    fn override_changes(&self) -> Result<u64> {
        self.counter("overrides")
    }

    fn keyring_signature(&self) -> Result<u64> {
        let r = self.x.query_one(
            "SELECT count(*), count(*) FILTER (WHERE state = 'active'), coalesce(sum(version), 0)::bigint FROM keyring",
            &[],
        )?;
        Ok(signature_of(
            r.get::<_, i64>(0) as u64,
            r.get::<_, i64>(1) as u64,
            r.get::<_, i64>(2) as u64,
        ))
    }

    fn exposed_destructions(&self) -> Result<Vec<(u32, u64, String)>> {
        Ok(self
            .x
            .query(
                "SELECT kek_version, count(*), min(destroyed) FROM data_keys WHERE wrapped IS NULL \
                 AND kek_version IN (SELECT version FROM keyring WHERE kind = 'kek') \
                 GROUP BY kek_version ORDER BY kek_version",
                &[],
            )?
            .iter()
            .map(|r| {
                (
                    u32_of(r.get(0)),
                    r.get::<_, i64>(1) as u64,
                    r.get::<_, Option<String>>(2).unwrap_or_default(),
                )
            })
            .collect())
    }

    fn destroyed_keys(&self) -> Result<Vec<(KeyState, String)>> {
        Ok(self
            .x
            .query(
                "SELECT tenant, subject, category, version, created, destroyed FROM data_keys WHERE wrapped IS NULL",
                &[],
            )?
            .iter()
            .map(|r| {
                (
                    KeyState {
                        tenant: r.get(0),
                        subject: r.get(1),
                        category: r.get(2),
                        version: u32_of(r.get(3)),
                        created: r.get(4),
                        keep_until: None,
                        rule: None,
                        action: None,
                    },
                    r.get::<_, Option<String>>(5).unwrap_or_default(),
                )
            })
            .collect())
    }

    fn live_keys(&self) -> Result<Vec<KeyState>> {
        Ok(self
            .x
            .query(
                &format!("SELECT {KEY_STATE} FROM data_keys WHERE wrapped IS NOT NULL"),
                &[],
            )?
            .iter()
            .map(key_state)
            .collect())
    }

    fn key_exists(&self, k: &KeyState) -> Result<bool> {
        Ok(self
            .x
            .query_one(
                "SELECT count(*) FROM data_keys WHERE tenant = $1 AND subject = $2 AND category = $3 AND version = $4",
                &[&k.tenant, &k.subject, &k.category, &i64::from(k.version)],
            )?
            .get::<_, i64>(0)
            > 0)
    }

    fn all_restrictions(&self) -> Result<Vec<(String, String, RestrictionRow)>> {
        Ok(self
            .x
            .query(
                "SELECT tenant, subject, category, purposes, until, rule, since FROM restrictions",
                &[],
            )?
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    r.get(1),
                    RestrictionRow {
                        category: r.get(2),
                        purposes: r.get(3),
                        until: r.get(4),
                        rule: r.get(5),
                        since: r.get(6),
                    },
                )
            })
            .collect())
    }

    fn certificates(&self) -> Result<Vec<String>> {
        Ok(self
            .x
            .query("SELECT body FROM certificates ORDER BY id", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// One read of everything a handle follows (destructions, rule overrides, the keyring's
    /// signature), folded into one number: it changes whenever any of them does, whoever made
    /// the change.
    fn change_token(&self) -> Result<u64> {
        let r = self.x.query_one(
            "SELECT coalesce((SELECT value FROM meta WHERE key = 'destructions'), '0'),
                    coalesce((SELECT value FROM meta WHERE key = 'overrides'), '0'),
                    count(*), count(*) FILTER (WHERE state = 'active'), coalesce(sum(version), 0)::bigint
             FROM keyring",
            &[],
        )?;
        let destructions: u64 = r.get::<_, String>(0).parse().unwrap_or(0);
        let overrides: u64 = r.get::<_, String>(1).parse().unwrap_or(0);
        let signature = signature_of(
            r.get::<_, i64>(2) as u64,
            r.get::<_, i64>(3) as u64,
            r.get::<_, i64>(4) as u64,
        );
        // Never u64::MAX, which the facade reads as "never seen".
        Ok(
            (signature ^ destructions.rotate_left(17) ^ overrides.rotate_left(41))
                & (u64::MAX >> 1),
        )
    }

    fn destructions(&self) -> Result<u64> {
        self.counter("destructions")
    }

    fn add_hold(&self, h: &LegalHold) -> Result<i64> {
        Ok(self
            .x
            .query_one(
                "INSERT INTO holds (tenant, subject, category, kind, reason, placed_by, placed_at, until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[&h.tenant, &h.subject, &h.category, &h.kind, &h.reason, &h.placed_by, &h.placed_at, &h.until],
            )?
            .get(0))
    }

    fn release_hold(&self, id: i64, by: &str, at: &str) -> Result<bool> {
        Ok(self.x.execute(
            "UPDATE holds SET released_by = $2, released_at = $3 WHERE id = $1 AND released_by IS NULL",
            &[&id, &by, &at],
        )? > 0)
    }

    fn active_holds(&self, tenant: Option<&str>, today: &str) -> Result<Vec<LegalHold>> {
        Ok(self
            .x
            .query(
                "SELECT id, tenant, subject, category, kind, reason, placed_by, placed_at, until, released_by FROM holds
                 WHERE released_by IS NULL AND (until IS NULL OR until > $2) AND ($1::text IS NULL OR tenant = $1) ORDER BY id",
                &[&tenant, &today],
            )?
            .iter()
            .map(|r| LegalHold {
                id: r.get(0),
                tenant: r.get(1),
                subject: r.get(2),
                category: r.get(3),
                kind: r.get(4),
                reason: r.get(5),
                placed_by: r.get(6),
                placed_at: r.get(7),
                until: r.get(8),
                released_by: r.get(9),
            })
            .collect())
    }

    fn rate_usage(&self, key: &RateKey<'_>, start: i64) -> Result<(u32, u32)> {
        let rows = self.x.query(
            "SELECT window_start, count FROM rate_usage
             WHERE limit_id = $1 AND tenant = $2 AND principal = $3 AND width = $4
               AND window_start IN ($5, $5 - $4)",
            &[&key.limit, &key.tenant, &key.principal, &key.width, &start],
        )?;
        Ok(rate_windows(
            start,
            rows.iter()
                .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1))),
        ))
    }

    fn add_rate_usage(&self, key: &RateKey<'_>, start: i64, n: u32) -> Result<()> {
        self.x.execute(
            "INSERT INTO rate_usage (limit_id, tenant, principal, width, window_start, count)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (limit_id, tenant, principal, width, window_start)
             DO UPDATE SET count = rate_usage.count + excluded.count",
            &[
                &key.limit,
                &key.tenant,
                &key.principal,
                &key.width,
                &start,
                &i64::from(n),
            ],
        )?;
        self.x.execute(
            "DELETE FROM rate_usage
             WHERE limit_id = $1 AND tenant = $2 AND principal = $3 AND width = $4
               AND window_start < $5 - $4",
            &[&key.limit, &key.tenant, &key.principal, &key.width, &start],
        )?;
        Ok(())
    }

    fn restrict(&self, r: &Restriction<'_>) -> Result<()> {
        self.x.execute(
            "INSERT INTO restrictions (tenant, subject, category, purposes, until, rule, since) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant, subject, category) DO UPDATE SET purposes = excluded.purposes, until = excluded.until, rule = excluded.rule, since = excluded.since",
            &[&r.tenant, &r.subject, &r.category, &r.purposes, &r.until, &r.rule, &r.since],
        )?;
        Ok(())
    }

    fn add_list(&self, created: &str, items: &str) -> Result<i64> {
        Ok(self
            .x
            .query_one(
                "INSERT INTO destruction_lists (created, state, items, approvals) VALUES ($1, 'proposed', $2, '[]') RETURNING id",
                &[&created, &items],
            )?
            .get(0))
    }

    fn list(&self, id: i64) -> Result<Option<(String, String, String)>> {
        Ok(self
            .x
            .query_opt(
                "SELECT state, items, approvals FROM destruction_lists WHERE id = $1",
                &[&id],
            )?
            .map(|r| (r.get(0), r.get(1), r.get(2))))
    }

    fn list_count(&self) -> Result<i64> {
        Ok(self
            .x
            .query_one("SELECT coalesce(max(id), 0) FROM destruction_lists", &[])?
            .get(0))
    }

    fn update_list(&self, id: i64, state: &str, approvals: &str) -> Result<()> {
        self.x.execute(
            "UPDATE destruction_lists SET state = $2, approvals = $3 WHERE id = $1",
            &[&id, &state, &approvals],
        )?;
        Ok(())
    }

    fn set_override(&self, rule: &str, period: &str, approvals: &str, at: &str) -> Result<()> {
        self.x.execute(
            "INSERT INTO rule_overrides (rule, period, approvals, at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (rule) DO UPDATE SET period = excluded.period, approvals = excluded.approvals, at = excluded.at",
            &[&rule, &period, &approvals, &at],
        )?;
        self.bump("overrides")
    }

    fn overrides(&self) -> Result<Vec<(String, String)>> {
        Ok(self
            .x
            .query("SELECT rule, period FROM rule_overrides", &[])?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn subjects_with(&self, category: &str) -> Result<Vec<(String, String)>> {
        Ok(self
            .x
            .query(
                "SELECT DISTINCT tenant, subject FROM data_keys WHERE category = $1 AND wrapped IS NOT NULL",
                &[&category],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn add_certificate(&self, body: &str) -> Result<i64> {
        Ok(self
            .x
            .query_one(
                "INSERT INTO certificates (body) VALUES ($1) RETURNING id",
                &[&body],
            )?
            .get(0))
    }
}
