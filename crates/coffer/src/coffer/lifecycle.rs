//! Retention on the facade: lifecycle events, holds, erasure, sweep, approvals, destruction and
//! signed certificates.

use std::collections::{BTreeMap, BTreeSet};

use time::Date;

use super::{Coffer, check_name, key_name};
use crate::HashMap;
use crate::audit::AuditEntry;
use crate::crypto::b64url;
use crate::error::{Error, Result};
use std::sync::Arc;

use crate::retention::{Event, Lifecycle, Lock, Period, Retention};
use crate::store::{KeyState, LegalHold, Restriction, RetentionTx};

fn iso(d: Date) -> String {
    crate::clock::text::date(d)
}

/// The date of a stored date or instant (its first ten characters).
fn parse_iso(s: &str) -> Option<Date> {
    crate::clock::text::parse_date(s.get(..10).unwrap_or(s))
}

pub(crate) use crate::retention::types::CERT_FORMAT;
pub use crate::retention::types::{
    Approval, BackupExposure, Certificate, DestructionItem, ErasureAnswer, ErasureItem, Hold,
    SweepPlan, SweepReport,
};

/// A subject's restrictions: category → the purposes that may still reveal it.
pub(crate) type Restrictions = BTreeMap<String, Vec<String>>;

/// Restrictions by tenant, then subject (only subjects that have any).
pub(crate) type SubjectRestrictions<'s> = HashMap<&'s str, HashMap<String, Restrictions>>;

pub(super) fn key_of(i: &DestructionItem) -> KeyState {
    KeyState {
        tenant: i.tenant.clone(),
        subject: i.subject.clone(),
        category: i.category.clone(),
        version: i.version,
        created: String::new(),
        keep_until: None,
        rule: None,
        action: None,
    }
}

fn covers(h: &LegalHold, tenant: &str, subject: &str, category: &str) -> bool {
    h.tenant == tenant
        && h.subject.as_deref().is_none_or(|s| s == subject)
        && h.category.as_deref().is_none_or(|c| c == category)
}

impl Coffer {
    pub(super) fn retention(&self) -> Result<Arc<Retention>> {
        self.retention
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| Error::Unsupported {
                what: "no retention rules are loaded".into(),
            })
    }

    fn has_retention(&self) -> bool {
        self.retention
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }

    /// Applies the company-rule overrides recorded in the store to the loaded rules.
    pub(crate) fn load_overrides(&self) -> Result<()> {
        let Some(base) = &self.retention_base else {
            return Ok(());
        };
        let mut overrides = BTreeMap::new();
        self.store.retention_read(&mut |tx| {
            for (rule, period) in tx.overrides()? {
                if let Some(p) = Period::parse(&period) {
                    overrides.insert(rule, p);
                }
            }
            Ok(())
        })?;
        *self
            .retention
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(Arc::new(base.with_overrides(&overrides)));
        Ok(())
    }

    /// Overrides the period of a company rule, with the approvals of at least the configured
    /// number of distinct approvers in approver roles; audited, and every key under the rule
    /// gets its keep-until date again. A statutory rule cannot be overridden.
    pub fn override_rule(
        &self,
        rule: &str,
        period: Period,
        approvals: &[(&str, &str)],
        actor: &str,
    ) -> Result<()> {
        check_name("actor", actor)?;
        let retention = self.retention()?;
        let r = retention.rule(rule).ok_or_else(|| Error::NotFound {
            what: format!("retention rule `{rule}`"),
        })?;
        if r.lock == Lock::Statutory {
            return Err(Error::RetentionRule {
                reason: format!(
                    "`{rule}` is a statutory rule: it can be lengthened in the rules, never overridden"
                ),
            });
        }
        let mut distinct = BTreeSet::new();
        for (who, role) in approvals {
            if !retention.approver_roles().contains(*role) {
                return Err(Error::Approval {
                    reason: format!("the role `{role}` may not approve overrides"),
                });
            }
            if !distinct.insert(*who) {
                return Err(Error::Approval {
                    reason: format!("`{who}` approved twice; distinct approvers are needed"),
                });
            }
        }
        if distinct.len() < retention.approvals_required() {
            return Err(Error::Approval {
                reason: format!(
                    "{} of {} approvals",
                    distinct.len(),
                    retention.approvals_required()
                ),
            });
        }
        let at = self.now();
        let approvals_json = serde_json::to_string(
            &approvals
                .iter()
                .map(|(w, r)| Approval {
                    approver: (*w).into(),
                    role: (*r).into(),
                    at: at.clone(),
                })
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default();
        let mut e = self.entry("retention.override", actor);
        e.detail.insert("rule".into(), rule.into());
        e.detail.insert("from".into(), r.period.to_text());
        e.detail.insert("to".into(), period.to_text());
        e.detail.insert(
            "approvers".into(),
            distinct.iter().copied().collect::<Vec<_>>().join(","),
        );
        let categories = retention.categories_of(rule);
        self.retention_write(vec![e], &mut |tx| {
            tx.set_override(rule, &period.to_text(), &approvals_json, &at)
        })?;
        self.load_overrides()?;
        for category in categories {
            let mut subjects = Vec::new();
            self.store.retention_read(&mut |tx| {
                subjects = tx.subjects_with(&category)?;
                Ok(())
            })?;
            for (tenant, subject) in subjects {
                self.refresh_retention(&tenant, &subject)?;
            }
        }
        Ok(())
    }

    fn today(&self) -> Date {
        self.clock.today()
    }

    fn lifecycle(tx: &dyn RetentionTx, key: &KeyState) -> Result<Lifecycle> {
        let mut life = Lifecycle {
            created: parse_iso(&key.created),
            events: BTreeMap::new(),
        };
        for (e, d) in tx.events(&key.tenant, &key.subject)? {
            if let (Some(e), Some(d)) = (Event::parse(&e), parse_iso(&d)) {
                let slot = life.events.entry(e).or_insert(d);
                if d > *slot {
                    *slot = d;
                }
            }
        }
        Ok(life)
    }

    fn recompute(&self, tx: &dyn RetentionTx, tenant: &str, subject: &str) -> Result<()> {
        let Ok(retention) = self.retention() else {
            return Ok(());
        };
        let keys = tx.subject_keys(tenant, subject)?;
        let Some(first) = keys.first() else {
            return Ok(());
        };
        // The subject's events, read once for all its keys.
        let events = Self::lifecycle(tx, first)?.events;
        for mut key in keys {
            let life = Lifecycle {
                created: parse_iso(&key.created),
                events: events.clone(),
            };
            let k = retention.keep_until(&key.category, &life);
            key.keep_until = k.date.map(iso);
            key.rule = Some(k.rule);
            key.action = Some(k.action.as_str().to_owned());
            tx.set_keep_until(&key)?;
        }
        Ok(())
    }

    /// Computes keep-until dates for a subject's keys (called when keys are created).
    pub(crate) fn refresh_retention(&self, tenant: &str, subject: &str) -> Result<()> {
        if !self.has_retention() {
            return Ok(());
        }
        let mac = |_: &[u8], _: u64, _: &str| [0u8; 32];
        self.store.retention_tx(&mac, &mut |tx| {
            self.recompute(tx, tenant, subject).map(|()| Vec::new())
        })?;
        Ok(())
    }

    /// [`Self::refresh_retention`] for many subjects in one transaction, each once however
    /// often it is named; nothing (not even the set of subjects) when no rules are loaded.
    pub(crate) fn refresh_retention_many<'a>(
        &self,
        subjects: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<()> {
        if !self.has_retention() {
            return Ok(());
        }
        let subjects: BTreeSet<(&str, &str)> = subjects.into_iter().collect();
        if subjects.is_empty() {
            return Ok(());
        }
        let mac = |_: &[u8], _: u64, _: &str| [0u8; 32];
        self.store.retention_tx(&mac, &mut |tx| {
            for &(tenant, subject) in &subjects {
                self.recompute(tx, tenant, subject)?;
            }
            Ok(Vec::new())
        })?;
        Ok(())
    }

    fn retention_write(
        &self,
        entries: Vec<AuditEntry>,
        f: &mut dyn FnMut(&dyn RetentionTx) -> Result<()>,
    ) -> Result<()> {
        self.audited(entries, |b| {
            let seqs = self
                .store
                .retention_tx(b.mac, &mut |tx| f(tx).map(|()| b.entries.clone()))?;
            Ok(((), seqs))
        })
    }

    /// Records a lifecycle event of a subject (`relationship_ended`, `account_closed`, …) and
    /// recomputes the keep-until dates of its data keys. An event dated after today is refused.
    pub fn record_event(
        &self,
        tenant: &str,
        subject: &str,
        event: Event,
        date: Date,
        actor: &str,
    ) -> Result<()> {
        check_name("actor", actor)?;
        check_name("tenant", tenant)?;
        check_name("subject", subject)?;
        self.sync_with_store()?;
        if !event.is_reported() {
            return Err(Error::InvalidArgument {
                name: "event",
                reason: format!("`{}` is derived, not reported", event.as_str()),
            });
        }
        if date > self.today() {
            return Err(Error::InvalidArgument {
                name: "date",
                reason: "lifecycle events cannot be dated in the future".into(),
            });
        }
        self.retention()?;
        let mut e = self.entry("retention.event", actor);
        e.tenant = Some(tenant.into());
        e.subject = Some(subject.into());
        e.detail.insert("event".into(), event.as_str().into());
        e.detail.insert("date".into(), iso(date));
        let recorded = self.now();
        self.retention_write(vec![e], &mut |tx| {
            tx.add_event(tenant, subject, event.as_str(), &iso(date), &recorded)?;
            self.recompute(tx, tenant, subject)
        })
    }

    /// Places a legal hold; returns its id. A hold blocks every destruction it covers until it is
    /// released (or its end passes; open-matter holds have none).
    pub fn place_hold(&self, hold: Hold, actor: &str) -> Result<i64> {
        check_name("actor", actor)?;
        check_name("tenant", &hold.tenant)?;
        if hold.reason.trim().is_empty() {
            return Err(Error::InvalidArgument {
                name: "reason",
                reason: "a hold needs a reason".into(),
            });
        }
        if let Some(c) = &hold.category
            && !crate::record::FIELD_PATTERNS
                .iter()
                .filter_map(|p| self.schema.spec_for_pattern(p))
                .any(|s| &s.category == c)
        {
            return Err(Error::InvalidArgument {
                name: "category",
                reason: format!("`{c}` is not a retention category of the schema"),
            });
        }
        if hold.open_matter && hold.until.is_some() {
            return Err(Error::InvalidArgument {
                name: "until",
                reason: "an open-matter hold lasts until the matter is closed".into(),
            });
        }
        let row = LegalHold {
            id: 0,
            tenant: hold.tenant.clone(),
            subject: hold.subject.clone(),
            category: hold.category.clone(),
            kind: if hold.open_matter {
                "open_matter"
            } else {
                "legal"
            }
            .into(),
            reason: hold.reason.clone(),
            placed_by: actor.into(),
            placed_at: self.now(),
            until: hold.until.map(iso),
            released_by: None,
        };
        let mut e = self.entry("hold.place", actor);
        e.tenant = Some(hold.tenant.clone());
        e.subject = hold.subject.clone();
        e.detail.insert("kind".into(), row.kind.clone());
        if let Some(c) = &hold.category {
            e.detail.insert("category".into(), c.clone());
        }
        let mut id = 0;
        self.retention_write(vec![e], &mut |tx| {
            id = tx.add_hold(&row)?;
            Ok(())
        })?;
        Ok(id)
    }

    /// Releases a hold.
    pub fn release_hold(&self, id: i64, actor: &str) -> Result<()> {
        check_name("actor", actor)?;
        let mut e = self.entry("hold.release", actor);
        e.detail.insert("hold".into(), id.to_string());
        let at = self.now();
        self.retention_write(vec![e], &mut |tx| {
            if tx.release_hold(id, actor, &at)? {
                Ok(())
            } else {
                Err(Error::NotFound {
                    what: format!("active hold {id}"),
                })
            }
        })
    }

    /// The holds in force (optionally of one tenant).
    pub fn holds(&self, tenant: Option<&str>) -> Result<Vec<LegalHold>> {
        let today = iso(self.today());
        let mut out = Vec::new();
        self.store.retention_read(&mut |tx| {
            out = tx.active_holds(tenant, &today)?;
            Ok(())
        })?;
        Ok(out)
    }

    fn certificate(
        &self,
        occasion: &str,
        actor: &str,
        items: Vec<DestructionItem>,
        approvals: Vec<Approval>,
        keks: &BTreeSet<u32>,
    ) -> Certificate {
        let keyring = self.keyring();
        let time = self.now();
        let backup_exposure = self.backup_exposure(keks, &time);
        let mut cert = Certificate {
            format: CERT_FORMAT.into(),
            time,
            actor: actor.into(),
            occasion: occasion.into(),
            items,
            approvals,
            backup_exposure,
            public_key: b64url(&keyring.signing.public_key()),
            signature: String::new(),
        };
        cert.signature = b64url(&keyring.signing.sign(&cert.signed_bytes()));
        cert
    }

    /// What a destruction at `time` of keys wrapped under `keks` leaves in older copies.
    fn backup_exposure(&self, keks: &BTreeSet<u32>, time: &str) -> Option<BackupExposure> {
        if keks.is_empty() {
            return None;
        }
        let until = self
            .retention()
            .ok()
            .and_then(|r| r.backups_kept())
            .and_then(|p| p.after(self.today()))
            .map(iso);
        let versions = keks
            .iter()
            .map(|v| format!("v{v}"))
            .collect::<Vec<_>>()
            .join(", ");
        Some(BackupExposure {
            copies_before: time.into(),
            kek_versions: keks.iter().copied().collect(),
            until,
            ends_sooner: format!(
                "when KEK {versions} is retired (`coffer keys rotate kek --retire`) and then the \
                 master key is rotated and its old value destroyed: no copy then holds a KEK \
                 that a living master key opens"
            ),
        })
    }

    /// After a destruction committed: drops the destroyed keys from this handle's caches, and
    /// empties the store's write-ahead log so that no copy of their wrapped form stays on disk
    /// (best effort: the destruction stands either way, and a log a reader kept from being
    /// emptied is emptied by the next destruction or SQLite's own checkpoints).
    fn forget_keys(&self, items: &[DestructionItem]) {
        if !items.is_empty() {
            let _ = self.store.purge_log();
        }
        let mut cache = self
            .keys
            .data_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut latest = self
            .keys
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut name = Vec::new();
        for i in items {
            let (t, s, c) = (&i.tenant, &i.subject, &i.category);
            cache.remove(key_name(&mut name, t, s, c, Some(i.version)));
            latest.remove(key_name(&mut name, t, s, c, None));
        }
    }

    fn item(&self, k: &KeyState, rule: &str) -> DestructionItem {
        let basis = self
            .retention()
            .ok()
            .and_then(|r| r.rule(rule).map(|r| r.basis.clone()))
            .unwrap_or_default();
        DestructionItem {
            tenant: k.tenant.clone(),
            subject: k.subject.clone(),
            category: k.category.clone(),
            version: k.version,
            rule: rule.into(),
            basis,
            due: k.keep_until.clone().unwrap_or_default(),
        }
    }

    /// An erasure request of a data subject (PIPL art. 47, GDPR art. 17): every category whose
    /// period is over, or that no rule requires keeping, is destroyed now; the rest is restricted
    /// (only the purposes its rules name may reveal it) until its period ends, when the sweep
    /// destroys it. Refused, with nothing destroyed, while a hold covers the subject.
    pub fn erase(&self, tenant: &str, subject: &str, actor: &str) -> Result<ErasureAnswer> {
        check_name("actor", actor)?;
        check_name("tenant", tenant)?;
        check_name("subject", subject)?;
        self.sync_with_store()?;
        let retention = self.retention()?;
        let today = self.today();
        let today_iso = iso(today);
        let mut items = Vec::new();
        let mut destroyed = Vec::new();
        let mut e = self.entry("erasure", actor);
        e.tenant = Some(tenant.into());
        e.subject = Some(subject.into());
        let now = self.now();
        let mut certificate = None;
        // The audit entry records the outcome, which the transaction decides: it is built there
        // and appended, with the certificate of what was destroyed, in the same transaction.
        let mut keks = BTreeSet::new();
        self.retention_write_with(&mut |tx| {
            items.clear();
            destroyed.clear();
            keks.clear();
            // The holds are read in the transaction that destroys: a hold placed by another
            // process commits wholly before (and is honoured) or after.
            let holds = tx.active_holds(Some(tenant), &today_iso)?;
            self.pause("destroy.check_holds");
            let keys = tx.subject_keys(tenant, subject)?;
            if let Some(h) = holds
                .iter()
                .find(|h| keys.iter().any(|k| covers(h, tenant, subject, &k.category)))
            {
                return Err(Error::LegalHold {
                    reason: format!(
                        "hold {} ({}) covers this subject; nothing was erased",
                        h.id, h.kind
                    ),
                });
            }
            for ev in [Event::PurposeAchieved, Event::ConsentWithdrawn] {
                tx.add_event(tenant, subject, ev.as_str(), &today_iso, &now)?;
            }
            self.recompute(tx, tenant, subject)?;
            let mut by_category: BTreeMap<String, Vec<KeyState>> = BTreeMap::new();
            for k in tx.subject_keys(tenant, subject)? {
                by_category.entry(k.category.clone()).or_default().push(k);
            }
            for (category, keys) in &by_category {
                let k = retention.keep_until(category, &Self::lifecycle(tx, &keys[0])?);
                let basis = retention
                    .rule(&k.rule)
                    .map(|r| r.basis.clone())
                    .unwrap_or_default();
                let fields: Vec<String> = crate::record::FIELD_PATTERNS
                    .iter()
                    .filter(|p| {
                        self.schema
                            .spec_for_pattern(p)
                            .is_some_and(|s| &s.category == category)
                    })
                    .map(|p| (*p).to_owned())
                    .collect();
                if k.date.is_some_and(|d| d <= today) {
                    for key in keys {
                        if let Some(kek) = tx.destroy_key(key, &now)? {
                            destroyed.push(self.item(key, &k.rule));
                            keks.insert(kek);
                        }
                    }
                    items.push(ErasureItem {
                        category: category.clone(),
                        fields,
                        outcome: "destroyed".into(),
                        until: None,
                        purposes: Vec::new(),
                        rule: k.rule.clone(),
                        basis,
                    });
                } else {
                    let purposes = retention.restricted_purposes(category);
                    let until = k.date.map(iso);
                    let purposes_json = serde_json::to_string(&purposes).unwrap_or_default();
                    tx.restrict(&Restriction {
                        tenant,
                        subject,
                        category,
                        purposes: &purposes_json,
                        until: until.as_deref(),
                        rule: &k.rule,
                        since: &now,
                    })?;
                    items.push(ErasureItem {
                        category: category.clone(),
                        fields,
                        outcome: "restricted".into(),
                        until,
                        purposes,
                        rule: k.rule.clone(),
                        basis,
                    });
                }
            }
            let mut e = e.clone();
            for i in &items {
                e.fields.insert(i.category.clone(), i.outcome.clone());
            }
            let mut entries = vec![e];
            certificate = None;
            if !destroyed.is_empty() {
                let (c, ce) =
                    self.certify_in(tx, "erasure", actor, destroyed.clone(), Vec::new(), &keks)?;
                certificate = Some(c);
                entries.push(ce);
            }
            Ok(entries)
        })?;
        self.forget_keys(&destroyed);
        let backup_exposure = certificate.as_ref().and_then(|c| c.backup_exposure.clone());
        Ok(ErasureAnswer {
            items,
            certificate,
            backup_exposure,
        })
    }

    /// Signs a certificate for `items` and stores it inside `tx`, so that a destruction and its
    /// certificate commit together or not at all; returns it with its audit entry.
    fn certify_in(
        &self,
        tx: &dyn RetentionTx,
        occasion: &str,
        actor: &str,
        items: Vec<DestructionItem>,
        approvals: Vec<Approval>,
        keks: &BTreeSet<u32>,
    ) -> Result<(Certificate, AuditEntry)> {
        let cert = self.certificate(occasion, actor, items, approvals, keks);
        tx.add_certificate(&cert.to_json())?;
        let mut e = self.entry("certificate", actor);
        e.detail.insert("occasion".into(), cert.occasion.clone());
        e.detail
            .insert("items".into(), cert.items.len().to_string());
        e.detail.insert("signature".into(), cert.signature.clone());
        Ok((cert, e))
    }

    /// Runs `f` in one retention transaction whose audit entries `f` builds from what the
    /// transaction finds; they are appended in the same transaction.
    pub(super) fn retention_write_with(
        &self,
        f: &mut dyn FnMut(&dyn RetentionTx) -> Result<Vec<AuditEntry>>,
    ) -> Result<()> {
        let keyring = self.keyring();
        let (_, mac) = self.batch(&keyring, &[]);
        let mut entries = Vec::new();
        let seqs = self.store.retention_tx(&mac, &mut |tx| {
            entries = f(tx)?;
            Ok(entries.iter().map(AuditEntry::canonical).collect())
        })?;
        self.notify(&entries, &seqs);
        Ok(())
    }

    /// What a sweep would do now, without doing it: the keys `destroy` rules let go, the keys
    /// `review` (or `archive`) rules let go that are not already on a list, and how many due
    /// keys a hold covers. One indexed range query over the keep-until dates.
    pub fn plan_sweep(&self) -> Result<SweepPlan> {
        self.sync_with_store()?;
        self.retention()?;
        let today = iso(self.today());
        let holds = self.holds(None)?;
        let mut due = Vec::new();
        let mut listed: crate::HashSet<(String, String, String, u32)> = crate::HashSet::default();
        self.store.retention_read(&mut |tx| {
            due = tx.due_keys(&today, usize::MAX >> 1)?;
            // Keys already on a list waiting for approval are not proposed again.
            for id in 1..=tx.list_count()? {
                if let Some((state, items, _)) = tx.list(id)?
                    && state != "executed"
                {
                    for i in
                        serde_json::from_str::<Vec<DestructionItem>>(&items).unwrap_or_default()
                    {
                        listed.insert((i.tenant, i.subject, i.category, i.version));
                    }
                }
            }
            Ok(())
        })?;
        let mut plan = SweepPlan {
            destroy: Vec::new(),
            review: Vec::new(),
            held: 0,
        };
        for k in due {
            if holds
                .iter()
                .any(|h| covers(h, &k.tenant, &k.subject, &k.category))
            {
                plan.held += 1;
                continue;
            }
            let rule = k.rule.clone().unwrap_or_default();
            match k.action.as_deref() {
                Some("destroy") => plan.destroy.push(self.item(&k, &rule)),
                Some("review" | "archive")
                    if !listed.contains(&(
                        k.tenant.clone(),
                        k.subject.clone(),
                        k.category.clone(),
                        k.version,
                    )) =>
                {
                    plan.review.push(self.item(&k, &rule));
                }
                _ => {}
            }
        }
        Ok(plan)
    }

    /// Finds what is due and acts: destroys at once what `destroy` rules let go (with a signed
    /// certificate), proposes a destruction list for what `review` rules let go, and skips what
    /// a hold covers.
    pub fn sweep(&self, actor: &str) -> Result<SweepReport> {
        check_name("actor", actor)?;
        let plan = self.plan_sweep()?;
        let mut report = SweepReport {
            destroyed: Vec::new(),
            certificate: None,
            backup_exposure: None,
            proposed_list: None,
            proposed: Vec::new(),
            held: plan.held,
        };
        let now = self.now();
        if !plan.destroy.is_empty() {
            let mut items = Vec::new();
            let mut cert = None;
            // The destruction, its certificate and their audit entries: one transaction.
            let today = iso(self.today());
            let mut keks = BTreeSet::new();
            self.retention_write_with(&mut |tx| {
                items.clear();
                keks.clear();
                // The plan's holds were read before; they are read again here, in the
                // transaction that destroys, so that a hold placed meanwhile is honoured.
                let holds = tx.active_holds(None, &today)?;
                self.pause("destroy.check_holds");
                for i in &plan.destroy {
                    if holds
                        .iter()
                        .any(|h| covers(h, &i.tenant, &i.subject, &i.category))
                    {
                        report.held += 1;
                        continue;
                    }
                    // A key another process destroyed meanwhile is not certified twice.
                    if let Some(kek) = tx.destroy_key(&key_of(i), &now)? {
                        items.push(i.clone());
                        keks.insert(kek);
                    }
                }
                let mut e = self.entry("destroy", actor);
                e.detail.insert("occasion".into(), "sweep".into());
                e.detail.insert("keys".into(), items.len().to_string());
                let (c, ce) =
                    self.certify_in(tx, "sweep", actor, items.clone(), Vec::new(), &keks)?;
                cert = Some(c);
                Ok(vec![e, ce])
            })?;
            self.forget_keys(&items);
            report.destroyed = items;
            report.backup_exposure = cert.as_ref().and_then(|c| c.backup_exposure.clone());
            report.certificate = cert;
        }
        if !plan.review.is_empty() {
            let items = plan.review;
            let body = serde_json::to_string(&items).unwrap_or_default();
            let mut e = self.entry("destruction_list.propose", actor);
            e.detail.insert("items".into(), items.len().to_string());
            let mut id = 0;
            self.retention_write(vec![e], &mut |tx| {
                id = tx.add_list(&now, &body)?;
                Ok(())
            })?;
            report.proposed_list = Some(id);
            report.proposed = items;
        }
        Ok(report)
    }

    /// Approves a destruction list as `approver` in `role`. The role must be one the retention
    /// rules name; each approver counts once.
    pub fn approve(&self, list: i64, approver: &str, role: &str) -> Result<()> {
        let retention = self.retention()?;
        if !retention.approver_roles().contains(role) {
            return Err(Error::Approval {
                reason: format!("the role `{role}` may not approve destructions"),
            });
        }
        let mut e = self.entry("destruction_list.approve", approver);
        e.detail.insert("list".into(), list.to_string());
        e.detail.insert("role".into(), role.into());
        let at = self.now();
        let required = retention.approvals_required();
        self.retention_write(vec![e], &mut |tx| {
            let (state, _, approvals) = tx.list(list)?.ok_or_else(|| Error::NotFound {
                what: format!("destruction list {list}"),
            })?;
            if state == "executed" {
                return Err(Error::Approval {
                    reason: format!("destruction list {list} was already executed"),
                });
            }
            let mut approvals: Vec<Approval> = serde_json::from_str(&approvals).unwrap_or_default();
            if approvals.iter().any(|a| a.approver == approver) {
                return Err(Error::Approval {
                    reason: format!(
                        "`{approver}` has already approved list {list}; a second approver is needed"
                    ),
                });
            }
            approvals.push(Approval {
                approver: approver.into(),
                role: role.into(),
                at: at.clone(),
            });
            let state = if approvals.len() >= required {
                "approved"
            } else {
                "proposed"
            };
            tx.update_list(
                list,
                state,
                &serde_json::to_string(&approvals).unwrap_or_default(),
            )
        })
    }

    /// Executes an approved destruction list: destroys its keys (skipping any a hold now covers)
    /// and returns the signed certificate.
    pub fn execute(&self, list: i64, actor: &str) -> Result<Certificate> {
        check_name("actor", actor)?;
        let retention = self.retention()?;
        let today = iso(self.today());
        let now = self.now();
        let mut items = Vec::new();
        let mut approvals = Vec::new();
        let mut cert = None;
        let required = retention.approvals_required();
        // The destruction, its certificate and their audit entries: one transaction; the list
        // state guards re-execution.
        let mut keks = BTreeSet::new();
        self.retention_write_with(&mut |tx| {
            items.clear();
            keks.clear();
            let (state, listed, approved) = tx.list(list)?.ok_or_else(|| Error::NotFound { what: format!("destruction list {list}") })?;
            approvals = serde_json::from_str(&approved).unwrap_or_default();
            if state != "approved" || approvals.len() < required {
                return Err(Error::Approval {
                    reason: format!("destruction list {list} has {} of {required} approvals; nothing was destroyed", approvals.len()),
                });
            }
            // Read in the transaction that destroys (see `erase`).
            let holds = tx.active_holds(None, &today)?;
            self.pause("destroy.check_holds");
            for i in serde_json::from_str::<Vec<DestructionItem>>(&listed).unwrap_or_default() {
                if holds.iter().any(|h| covers(h, &i.tenant, &i.subject, &i.category)) {
                    continue;
                }
                if let Some(kek) = tx.destroy_key(&key_of(&i), &now)? {
                    items.push(i);
                    keks.insert(kek);
                }
            }
            tx.update_list(list, "executed", &approved)?;
            let mut e = self.entry("destroy", actor);
            e.detail.insert("occasion".into(), format!("list {list}"));
            e.detail.insert("keys".into(), items.len().to_string());
            let (c, ce) = self.certify_in(
                tx,
                &format!("list {list}"),
                actor,
                items.clone(),
                approvals.clone(),
                &keks,
            )?;
            cert = Some(c);
            Ok(vec![e, ce])
        })?;
        self.forget_keys(&items);
        cert.ok_or_else(|| Error::Internal {
            message: "the destruction committed without its certificate".into(),
        })
    }

    /// The restrictions of each subject that has any, for the policy: category → purposes that
    /// may still reveal, read in one go. They are read whether or not this handle has retention
    /// rules loaded: an erasure's restrictions are facts in the store, and bind every process
    /// that opens it (an application that only reveals may well open it without rules). A
    /// purposes list that does not parse restricts the category to no purpose.
    pub(crate) fn restrictions_many<'s>(
        tx: &dyn RetentionTx,
        subjects: &BTreeSet<(&'s str, &'s str)>,
    ) -> Result<SubjectRestrictions<'s>> {
        let mut out = SubjectRestrictions::default();
        if subjects.is_empty() {
            return Ok(out);
        }
        // The set is ordered by tenant: one group of statements per tenant.
        let mut by_tenant: BTreeMap<&'s str, Vec<&'s str>> = BTreeMap::new();
        for &(tenant, subject) in subjects {
            by_tenant.entry(tenant).or_default().push(subject);
        }
        for (&tenant, list) in &by_tenant {
            let of_tenant = out.entry(tenant).or_default();
            for (subject, category, purposes) in tx.restrictions_of(tenant, list)? {
                of_tenant.entry(subject).or_default().insert(
                    category,
                    serde_json::from_str(&purposes).unwrap_or_default(),
                );
            }
        }
        Ok(out)
    }
}
