//! The compliance reports (see [`crate::report`]): each authorised by the policy (action
//! `admin`), built from the key store and one verifying pass over the audit trail, and recorded
//! in the trail before it is returned.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::HashMap;
use crate::clock::text::parse_instant as instant_of;
use time::OffsetDateTime;

use super::{Access, Coffer, now_text};
use crate::audit::{self, AuditEntry, AuditReport};
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::policy::{Action, FieldEffect, Policy, Request};
use crate::record::Sensitive;
use crate::record::{FieldPath, Protection};
use crate::report::grants::{policy_findings, review_grants};
pub(crate) use crate::report::trail::parse_instant;
use crate::report::trail::{
    PathPatterns, check_trail, entry_time, parse_entry, rfc3339, select_patterns, tenant_reveal,
};
use crate::report::{
    AccessRecord, AccessReview, AffectedSubject, ChangeRecord, CheckOptions, ComplianceCheck,
    Finding, HeldField, IncidentQuery, IncidentReport, REPORT_FORMAT, ReportOptions, Severity,
    SubjectEvent, SubjectKey, SubjectReport, SubjectRestriction, TrailCheck,
};
use crate::store::AuditRow;

/// Rows read from the store per batch while a report walks the trail.
const TRAIL_BATCH: usize = 4096;

impl Coffer {
    /// Walks the whole trail once, verifying it, and hands each row to `visit`. Two threads
    /// in a pipeline: this one reads rows and checks the chain, the other runs `visit` on the
    /// rows already checked, batch by batch (the rows are moved, not copied).
    fn scan_trail(
        &self,
        options: &ReportOptions,
        mut visit: impl FnMut(&AuditRow) -> Result<()> + Send,
    ) -> Result<AuditReport> {
        let keyring = self.keyring();
        if let Some(cp) = &options.checkpoint {
            cp.verify_signature(&keyring.signing.public_key())?;
        }
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<AuditRow>>(4);
            let reader = s.spawn(move || -> Result<()> {
                for batch in rx {
                    for row in &batch {
                        visit(row)?;
                    }
                }
                Ok(())
            });
            let mut batch = Vec::with_capacity(TRAIL_BATCH);
            let mut stopped = false;
            let report = audit::verify_visit(
                &keyring.audit_mac,
                |from| self.store.audit_rows(from, TRAIL_BATCH),
                options.checkpoint.as_ref(),
                |row| {
                    // A batch entry is read as the entries it stands for, put together on this
                    // thread (which checks one MAC for the whole batch) while the other reads.
                    match audit::expand_row(&row) {
                        Some(rows) => batch.extend(rows),
                        None => batch.push(row),
                    }
                    if batch.len() >= TRAIL_BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(TRAIL_BATCH));
                        if tx.send(full).is_err() {
                            // The reader stopped on an error; it says which below.
                            stopped = true;
                            return Err(Error::Internal {
                                message: "the report stopped reading the audit trail".into(),
                            });
                        }
                    }
                    Ok(())
                },
            );
            if !batch.is_empty() && !stopped {
                let _ = tx.send(batch);
            }
            drop(tx);
            let read = reader.join().map_err(|_| Error::Internal {
                message: "a report's reader thread panicked".into(),
            })?;
            read?;
            report
        })
    }

    /// The policy, if it lets `access` run `report` (action `admin` on every one of `patterns`
    /// in `tenant`); an access-denied error naming what is missing otherwise.
    fn authorize_report(
        &self,
        access: &Access,
        report: &str,
        tenant: &str,
        patterns: &[String],
    ) -> Result<Arc<Policy>> {
        let policy = self.require_policy()?;
        let mut context = access.context.clone();
        if context.time.is_none() {
            context.time = Some(self.clock.now());
        }
        let mut record = access.record.clone();
        record.tenant = tenant.to_owned();
        let req = Request {
            principal: access.principal.clone(),
            action: Action::Admin,
            purpose: access.purpose.clone(),
            record,
            context,
        };
        let decision = policy.decide(&req);
        if let Some(d) = decision.denial() {
            return Err(Error::AccessDenied {
                reason: format!("the {report} report: {d}"),
            });
        }
        let missing: Vec<&str> = patterns
            .iter()
            .filter(|p| {
                // A declared custom field without a slot of its own is decided as `custom.*`.
                policy
                    .slot_of
                    .get(p.as_str())
                    .copied()
                    .or_else(|| p.starts_with("custom.").then_some(policy.custom_slot))
                    .and_then(|s| decision.slot(s))
                    .is_none_or(|fd| fd.effect == FieldEffect::Deny)
            })
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(Error::AccessDenied {
                reason: format!(
                    "the {report} report needs the policy to allow action `admin` for purpose `{}` on every field it covers; not granted: {}",
                    access.purpose,
                    missing.join(", ")
                ),
            });
        }
        Ok(policy)
    }

    fn all_patterns(&self, policy: &Policy) -> Vec<String> {
        policy.slots.clone()
    }

    fn report_entry(&self, kind: &str, access: &Access, tenant: &str) -> AuditEntry {
        let mut e = self.entry(kind, &access.principal.id);
        e.tenant = Some(tenant.to_owned());
        e.purpose = Some(access.purpose.clone());
        e.detail
            .insert("roles".into(), access.principal.roles.join(","));
        e
    }

    // ---- subject report ----------------------------------------------------------------

    /// What is held about one data subject and who has seen it (PIPL art. 45, GDPR art. 15):
    /// every field path held, with its category, retention rule and keep-until date; holds;
    /// restrictions; lifecycle events; and the access history from the audit trail.
    ///
    /// `envelopes` are the subject's records as the host holds them; with them, each field's
    /// value appears as the policy shows it to `access` (revealed, masked or denied), through
    /// an ordinary, audited reveal. Without them the report lists paths from the trail only.
    /// A subject the store knows nothing of gets an empty, well-formed report.
    pub fn subject_report(
        &self,
        tenant: &str,
        subject: &str,
        envelopes: &[Envelope],
        access: &Access,
        options: &ReportOptions,
    ) -> Result<SubjectReport> {
        for (name, value) in [("tenant", tenant), ("subject", subject)] {
            if value.is_empty() {
                return Err(Error::InvalidArgument {
                    name,
                    reason: "must not be empty".into(),
                });
            }
        }
        let all = self.all_patterns(&*self.require_policy()?);
        let policy = self.authorize_report(access, "subject", tenant, &all)?;
        let keyring = self.keyring();
        for (i, env) in envelopes.iter().enumerate() {
            env.check_mac(&keyring.envelope_mac)?;
            if env.tenant != tenant || env.subject != subject {
                return Err(Error::InvalidArgument {
                    name: "envelopes",
                    reason: format!(
                        "envelope {i} (record `{}`) belongs to another tenant or subject",
                        env.record
                    ),
                });
            }
        }
        // One pass over the trail: the subject's entries, found by their exact JSON text first.
        let needle = format!(
            "\"subject\":{}",
            serde_json::to_string(subject).unwrap_or_default()
        );
        let mut accesses = Vec::new();
        let mut changes = Vec::new();
        let mut records: Vec<String> = Vec::new();
        let mut sealed: HashMap<String, BTreeMap<String, String>> = HashMap::default();
        let mut unreadable = 0u64;
        let trail = self.scan_trail(options, |row| {
            if !row.entry.contains(&needle) {
                return Ok(());
            }
            let Some(e) = parse_entry(row) else {
                unreadable += 1;
                return Ok(());
            };
            if e.tenant.as_deref() != Some(tenant) || e.subject.as_deref() != Some(subject) {
                return Ok(());
            }
            let record = e.record.as_ref().map(|r| r.to_string());
            if e.kind == "reveal" || e.kind == "archive.export" {
                accesses.push(AccessRecord {
                    seq: row.seq,
                    time: e.time.to_string(),
                    actor: e.actor.to_string(),
                    roles: e
                        .detail
                        .get("roles")
                        .map(|r| {
                            r.split(',')
                                .filter(|r| !r.is_empty())
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                    purpose: e.purpose.as_ref().map(|p| p.to_string()),
                    record,
                    fields: e.fields.owned(),
                });
                return Ok(());
            }
            if e.kind == "seal"
                && let Some(r) = &record
            {
                if !sealed.contains_key(r) {
                    records.push(r.clone());
                }
                sealed.insert(r.clone(), e.fields.owned());
            }
            changes.push(ChangeRecord {
                seq: row.seq,
                time: e.time.to_string(),
                kind: e.kind.to_string(),
                actor: e.actor.to_string(),
                record,
                fields: e.fields.owned(),
            });
            Ok(())
        })?;
        let trail = check_trail(&trail, unreadable, options, "subject report")?;

        let mut keys = Vec::new();
        let mut restrictions = Vec::new();
        let mut events = Vec::new();
        self.store.retention_read(&mut |tx| {
            keys = tx
                .subject_key_history(tenant, subject)?
                .into_iter()
                .map(|(k, destroyed)| SubjectKey {
                    category: k.category,
                    version: k.version,
                    created: k.created,
                    keep_until: k.keep_until,
                    rule: k.rule,
                    action: k.action,
                    destroyed,
                })
                .collect();
            restrictions = tx
                .restriction_rows(tenant, subject)?
                .into_iter()
                .map(|r| SubjectRestriction {
                    purposes: serde_json::from_str(&r.purposes).unwrap_or_default(),
                    category: r.category,
                    until: r.until,
                    rule: r.rule,
                    since: r.since,
                })
                .collect();
            let mut ev: Vec<SubjectEvent> = tx
                .events(tenant, subject)?
                .into_iter()
                .map(|(event, date)| SubjectEvent { event, date })
                .collect();
            ev.sort_by(|a, b| (&a.date, &a.event).cmp(&(&b.date, &b.event)));
            events = ev;
            Ok(())
        })?;
        let holds: Vec<_> = self
            .holds(Some(tenant))?
            .into_iter()
            .filter(|h| h.subject.as_deref().is_none_or(|s| s == subject))
            .collect();

        // Recorded before anything is revealed: no report leaves without its entry.
        let mut e = self.report_entry("report.subject", access, tenant);
        e.subject = Some(subject.to_owned());
        e.detail
            .insert("accesses".into(), accesses.len().to_string());
        e.detail
            .insert("envelopes".into(), envelopes.len().to_string());
        self.append(vec![e])?;

        let views = if envelopes.is_empty() {
            Vec::new()
        } else {
            self.reveal_many(envelopes, access)?
        };
        let mut by_record: BTreeMap<String, (Option<&Envelope>, Option<&super::View>)> =
            BTreeMap::new();
        for (env, view) in envelopes.iter().zip(&views) {
            if !sealed.contains_key(&env.record) && !records.contains(&env.record) {
                records.push(env.record.clone());
            }
            by_record.insert(env.record.clone(), (Some(env), Some(view)));
        }
        let live_key = |category: &str| {
            keys.iter()
                .rev()
                .find(|k| k.category == category && k.destroyed.is_none())
        };
        let mut fields = Vec::new();
        for record in &records {
            let (env, view) = by_record.get(record).copied().unwrap_or((None, None));
            // The paths: the envelope's if given, else the last seal the trail recorded.
            let paths: BTreeMap<String, String> = match env {
                Some(env) => env
                    .fields
                    .keys()
                    .map(|p| (p.to_string(), "sealed".to_owned()))
                    .chain(
                        env.clear
                            .keys()
                            .map(|p| (p.to_string(), "clear".to_owned())),
                    )
                    .collect(),
                None => sealed.get(record).cloned().unwrap_or_default(),
            };
            for (path, how) in paths {
                let spec = FieldPath::parse(&path)
                    .ok()
                    .and_then(|p| self.schema.spec_for(&p).cloned());
                let (category, classification, protected) = match &spec {
                    Some(s) => (
                        s.category.clone(),
                        s.classification.as_str().to_owned(),
                        s.protection == Protection::Encrypted,
                    ),
                    None => (String::new(), String::new(), how == "sealed"),
                };
                let key = live_key(&category);
                let state = if how == "clear" || !protected {
                    "clear"
                } else if key.is_none() && keys.iter().any(|k| k.category == category) {
                    "shredded"
                } else {
                    "sealed"
                };
                let latest = key.or_else(|| keys.iter().rev().find(|k| k.category == category));
                let (shown, value, reason) = match view.and_then(|v| v.fields.get(&path)) {
                    Some(f) => {
                        let (state, value, reason) = f.parts();
                        (
                            Some(state),
                            value.map(Sensitive::from),
                            reason.map(str::to_owned),
                        )
                    }
                    None => (None, None, None),
                };
                fields.push(HeldField {
                    record: record.clone(),
                    path,
                    restricted: restrictions.iter().any(|r| r.category == category),
                    category,
                    classification,
                    state: state.into(),
                    rule: latest.and_then(|k| k.rule.clone()),
                    keep_until: latest.and_then(|k| k.keep_until.clone()),
                    action: latest.and_then(|k| k.action.clone()),
                    shown: shown.map(str::to_owned),
                    value,
                    reason,
                });
            }
        }
        Ok(SubjectReport {
            format: REPORT_FORMAT.into(),
            generated: self.now(),
            requested_by: access.principal.id.clone(),
            purpose: access.purpose.clone(),
            policy_version: policy.version().to_owned(),
            tenant: tenant.into(),
            subject: subject.into(),
            trail,
            records,
            fields,
            keys,
            holds,
            restrictions,
            events,
            accesses,
            changes,
        })
    }

    // ---- incident scoping --------------------------------------------------------------

    /// Incident scoping (PIPL art. 57): from the audit trail, every subject whose `query.fields`
    /// were revealed in clear by the query's principal or client within its window, with
    /// counts. The trail is verified in the same pass; a broken trail is refused unless
    /// `options.accept_broken_trail`, and then the answer says so.
    pub fn affected(
        &self,
        query: &IncidentQuery,
        access: &Access,
        options: &ReportOptions,
    ) -> Result<IncidentReport> {
        let tenant = query
            .tenant
            .clone()
            .unwrap_or_else(|| access.principal.tenant.clone());
        let patterns = select_patterns(&self.schema, &query.fields)?;
        let pattern_list: Vec<String> = patterns.iter().cloned().collect();
        self.authorize_report(access, "incident", &tenant, &pattern_list)?;
        let now = self.clock.now();
        let from = query
            .from
            .as_deref()
            .map(|t| parse_instant("from", t))
            .transpose()?;
        let until = match query.until.as_deref() {
            Some(t) => parse_instant("until", t)?,
            None => now,
        };
        if let Some(f) = from
            && f > until
        {
            return Err(Error::InvalidArgument {
                name: "from",
                reason: "the window starts after it ends".into(),
            });
        }
        let mut notes = Vec::new();
        if from == Some(until) {
            notes.push("the window is empty: it starts where it ends".to_owned());
        }
        if from.is_some_and(|f| f > now) {
            notes.push(
                "the window lies in the future: nothing can have been revealed in it yet"
                    .to_owned(),
            );
        }
        let mut filled = query.clone();
        filled.tenant = Some(tenant.clone());
        filled.from = from.map(rfc3339);
        filled.until = Some(rfc3339(until));

        let mut subjects: HashMap<(String, String), AffectedSubject> = HashMap::default();
        let mut totals: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_day: BTreeMap<String, u64> = BTreeMap::new();
        let mut principals: BTreeMap<String, u64> = BTreeMap::new();
        let mut reveals = 0u64;
        let (mut searches, mut searched_values, mut alerts) = (0u64, 0u64, 0u64);
        let mut path_patterns = PathPatterns::new(Some(&patterns));
        // Nothing can match an empty window or one in the future; the trail is still verified.
        let empty = from == Some(until) || from.is_some_and(|f| f > now);
        let mut unreadable = 0u64;
        let trail = self.scan_trail(options, |row| {
            if empty {
                return Ok(());
            }
            // Searches and rate-limit alerts: counted, not scoped to subjects (a search names
            // none).
            if row.entry.contains("\"kind\":\"search\"")
                || row.entry.contains("\"kind\":\"rate_limit.exceeded\"")
            {
                let Some(e) = parse_entry(row) else {
                    unreadable += 1;
                    return Ok(());
                };
                if e.tenant.as_deref() != Some(tenant.as_str())
                    || query.principal.as_deref().is_some_and(|p| p != e.actor)
                {
                    return Ok(());
                }
                let Some(at) = entry_time(&e, &mut unreadable) else {
                    return Ok(());
                };
                if at >= until || from.is_some_and(|f| at < f) {
                    return Ok(());
                }
                if e.kind == "rate_limit.exceeded" {
                    alerts += 1;
                } else if e.kind == "search"
                    && query
                        .client
                        .as_deref()
                        .is_none_or(|c| Some(c) == e.detail.get("client"))
                {
                    searches += 1;
                    searched_values += e
                        .detail
                        .get("count")
                        .and_then(|n| n.parse::<u64>().ok())
                        .unwrap_or(0);
                }
                return Ok(());
            }
            let Some(e) = tenant_reveal(row, &tenant, &mut unreadable) else {
                return Ok(());
            };
            if query.principal.as_deref().is_some_and(|p| p != e.actor) {
                return Ok(());
            }
            if query
                .client
                .as_deref()
                .is_some_and(|c| Some(c) != e.detail.get("client"))
            {
                return Ok(());
            }
            let Some(at) = entry_time(&e, &mut unreadable) else {
                return Ok(());
            };
            if at >= until || from.is_some_and(|f| at < f) {
                return Ok(());
            }
            let mut hit: Vec<(&str, String)> = Vec::new();
            for (path, effect) in &e.fields.0 {
                // An export hands the field over in a form the archive key opens: as good as
                // revealed in clear.
                if effect != "reveal" && effect != "export" {
                    continue;
                }
                if let Some(p) = path_patterns.get(&self.schema, path) {
                    hit.push((path.as_ref(), p));
                }
            }
            if hit.is_empty() {
                return Ok(());
            }
            reveals += 1;
            let subject = e.subject.as_deref().unwrap_or_default();
            let s = subjects
                .entry((tenant.clone(), subject.to_owned()))
                .or_insert_with(|| AffectedSubject {
                    tenant: tenant.clone(),
                    subject: subject.to_owned(),
                    reveals: 0,
                    fields: BTreeMap::new(),
                    first: e.time.to_string(),
                    last: String::new(),
                    principals: Vec::new(),
                });
            s.reveals += 1;
            s.last = e.time.to_string();
            if !s.principals.iter().any(|p| p == &e.actor) {
                s.principals.push(e.actor.to_string());
            }
            for (path, pattern) in hit {
                *s.fields.entry(path.to_owned()).or_default() += 1;
                *totals.entry(pattern).or_default() += 1;
            }
            *by_day
                .entry(e.time.get(..10).unwrap_or_default().to_owned())
                .or_default() += 1;
            *principals.entry(e.actor.to_string()).or_default() += 1;
            Ok(())
        })?;
        let trail = check_trail(&trail, unreadable, options, "incident scope")?;
        let mut subjects: Vec<AffectedSubject> = subjects.into_values().collect();
        subjects.sort_by(|a, b| (&a.tenant, &a.subject).cmp(&(&b.tenant, &b.subject)));

        let mut e = self.report_entry("report.incident", access, &tenant);
        if let Some(p) = &query.principal {
            e.detail.insert("principal".into(), p.clone());
        }
        if let Some(c) = &query.client {
            e.detail.insert("client".into(), c.clone());
        }
        if let Some(f) = &filled.from {
            e.detail.insert("from".into(), f.clone());
        }
        e.detail.insert("until".into(), rfc3339(until));
        e.detail
            .insert("subjects".into(), subjects.len().to_string());
        e.detail.insert("reveals".into(), reveals.to_string());
        if !trail.intact {
            e.detail.insert("trail".into(), trail.summary());
        }
        self.append(vec![e])?;
        Ok(IncidentReport {
            format: REPORT_FORMAT.into(),
            generated: self.now(),
            requested_by: access.principal.id.clone(),
            purpose: access.purpose.clone(),
            query: filled,
            patterns: pattern_list,
            trail,
            reveals,
            subjects,
            fields: totals,
            by_day,
            principals,
            searches,
            searched_values,
            rate_limit_alerts: alerts,
            notes,
        })
    }

    // ---- access review -----------------------------------------------------------------

    /// An access review (least privilege): per role of the policy, every grant that lets it
    /// read a personal or sensitive field, for which purpose, under which rule, narrowed by
    /// which guardrails; and from the audit trail, how often each grant was used since
    /// `since`. Grants never used are candidates for removal.
    pub fn access_review(
        &self,
        since: OffsetDateTime,
        access: &Access,
        options: &ReportOptions,
    ) -> Result<AccessReview> {
        let policy = self.require_policy()?;
        let tenant = access.principal.tenant.clone();
        let policy = {
            let all = self.all_patterns(&policy);
            self.authorize_report(access, "access review", &tenant, &all)?
        };
        let now = self.clock.now();
        if since > now {
            return Err(Error::InvalidArgument {
                name: "since",
                reason: "lies in the future; a review counts use from a past date".into(),
            });
        }
        let mut roles = review_grants(&self.schema, &policy);
        // Usage: reveal entries since the date, by (role, purpose, rule, pattern).
        let mut used: HashMap<(String, String, String, String), (u64, String)> = HashMap::default();
        let mut path_patterns = PathPatterns::new(None);
        let mut unreadable = 0u64;
        let trail = self.scan_trail(options, |row| {
            let Some(e) = tenant_reveal(row, &tenant, &mut unreadable) else {
                return Ok(());
            };
            let Some(at) = entry_time(&e, &mut unreadable) else {
                return Ok(());
            };
            if at < since {
                return Ok(());
            }
            let purpose = e.purpose.as_deref().unwrap_or_default();
            let entry_roles = e.detail.get("roles").unwrap_or_default();
            for (path, effect) in &e.fields.0 {
                if effect.starts_with("deny") {
                    continue;
                }
                let Some(pattern) = path_patterns.get(&self.schema, path) else {
                    continue;
                };
                for role in entry_roles.split(',').filter(|r| !r.is_empty()) {
                    for rule in &e.rules {
                        let u = used
                            .entry((
                                role.to_owned(),
                                purpose.to_owned(),
                                rule.to_string(),
                                pattern.clone(),
                            ))
                            .or_insert((0, String::new()));
                        u.0 += 1;
                        u.1 = e.time.to_string();
                    }
                }
            }
            Ok(())
        })?;
        let trail = check_trail(&trail, unreadable, options, "access review")?;
        let mut unused = 0;
        for r in &mut roles {
            for g in &mut r.grants {
                // A grant for a purpose serves its sub-purposes too.
                let Some(&gp) = policy.purposes.get(&g.purpose) else {
                    continue;
                };
                for ((role, purpose, rule, pattern), (n, last)) in &used {
                    let serves = policy
                        .purposes
                        .get(purpose)
                        .is_some_and(|&q| policy.purpose_ancestry[q] & (1u128 << gp) != 0);
                    if role == &r.role && rule == &g.rule && pattern == &g.field && serves {
                        g.used += n;
                        if g.last_used.as_deref().is_none_or(|l| l < last.as_str()) {
                            g.last_used = Some(last.clone());
                        }
                    }
                }
                if g.used == 0 {
                    unused += 1;
                }
            }
        }
        let mut e = self.report_entry("report.access_review", access, &tenant);
        e.detail.insert("since".into(), rfc3339(since));
        e.detail.insert("unused".into(), unused.to_string());
        self.append(vec![e])?;
        Ok(AccessReview {
            format: REPORT_FORMAT.into(),
            generated: self.now(),
            requested_by: access.principal.id.clone(),
            purpose: access.purpose.clone(),
            policy_version: policy.version().to_owned(),
            since: rfc3339(since),
            trail,
            roles,
            unused,
        })
    }

    // ---- compliance check --------------------------------------------------------------

    /// A compliance check: findings, each with a stable code, a severity and the objects
    /// concerned. See docs/REPORTS.md for every code.
    pub fn compliance_check(
        &self,
        check: &CheckOptions,
        access: &Access,
        options: &ReportOptions,
    ) -> Result<ComplianceCheck> {
        let tenant = access.principal.tenant.clone();
        let policy = {
            let p = self.require_policy()?;
            let all = self.all_patterns(&p);
            self.authorize_report(access, "compliance check", &tenant, &all)?
        };
        let now = self.clock.now();
        let days_ago = |d: u32| now - time::Duration::days(i64::from(d));
        let mut findings = Vec::new();

        // The trail: whole, and checkpointed often enough.
        let mut last_checkpoint: Option<String> = None;
        let mut unreadable = 0u64;
        let report = self.scan_trail(options, |row| {
            match parse_entry(row) {
                None => unreadable += 1,
                Some(e) if e.kind == "audit.checkpoint" => {
                    last_checkpoint = Some(e.time.to_string());
                }
                Some(_) => {}
            }
            Ok(())
        })?;
        let mut trail = TrailCheck::from(&report);
        trail.unreadable = unreadable;
        if unreadable > 0 {
            findings.push(Finding::new(
                "audit.unreadable_entries",
                Severity::Critical,
                format!("{unreadable} audit row(s) are not entries Coffer wrote"),
                vec!["audit trail".into()],
            ));
        }
        if !trail.intact {
            findings.push(Finding::new(
                "audit.chain_broken",
                Severity::Critical,
                format!("the audit trail does not verify: {}", trail.summary()),
                vec![format!("audit entry {}", trail.problem_seq.unwrap_or(0))],
            ));
        }
        let stale = match &last_checkpoint {
            None => true,
            Some(t) => instant_of(t).is_none_or(|t| t < days_ago(check.checkpoint_interval_days)),
        };
        if stale {
            findings.push(Finding::new(
                "audit.checkpoint_stale",
                Severity::Medium,
                match &last_checkpoint {
                    None => "the audit trail has never been checkpointed: a truncated tail would go unnoticed".to_owned(),
                    Some(_) => format!("the last audit checkpoint is older than {} days", check.checkpoint_interval_days),
                },
                vec![match &last_checkpoint {
                    None => "audit trail (no checkpoint)".to_owned(),
                    Some(t) => format!("audit trail (last checkpoint {t})"),
                }],
            ));
        }

        // Fields the retention rules do not cover.
        match self.retention() {
            Err(_) => findings.push(Finding::new(
                "retention.not_configured",
                Severity::High,
                "no retention rules are loaded: nothing is ever destroyed, and erasure requests cannot be weighed against duties to keep",
                vec!["retention rules".into()],
            )),
            Ok(retention) => {
                let uncovered: Vec<String> = policy
                    .slots
                    .iter()
                    .filter(|p| {
                        self.schema.spec_for_pattern(p).is_some_and(|s| {
                            s.protection == Protection::Encrypted
                                && retention.rules_for(&s.category).next().is_none()
                        })
                    })
                    .cloned()
                    .collect();
                if !uncovered.is_empty() {
                    findings.push(Finding::new(
                        "retention.uncategorised_field",
                        Severity::High,
                        "sealed fields whose retention category no rule covers: they are kept forever",
                        uncovered,
                    ));
                }
                // Keys past their date with no hold and no destruction list.
                let plan = self.plan_sweep()?;
                let overdue: Vec<String> = plan
                    .destroy
                    .iter()
                    .chain(&plan.review)
                    .filter(|i| i.tenant == tenant)
                    .map(|i| {
                        format!(
                            "{}/{}/{} v{} (due {} under {})",
                            i.tenant, i.subject, i.category, i.version, i.due, i.rule
                        )
                    })
                    .collect();
                if !overdue.is_empty() {
                    findings.push(Finding::new(
                        "retention.overdue",
                        Severity::Critical,
                        "data keys past their keep-until date, under no hold and on no destruction list: run the sweep",
                        overdue,
                    ));
                }
                // Lists proposed (or approved and not executed) too long ago: data is kept past
                // its date while they wait.
                let (mut unapproved, mut unexecuted) = (Vec::new(), Vec::new());
                self.store.retention_read(&mut |tx| {
                    for (state, out) in [("proposed", &mut unapproved), ("approved", &mut unexecuted)] {
                        for (id, created, _, approvals) in tx.lists_in(state)? {
                            let old = instant_of(&created)
                                .is_some_and(|c| c < days_ago(check.max_list_age_days));
                            if old {
                                let n = serde_json::from_str::<Vec<serde_json::Value>>(&approvals)
                                    .map_or(0, |v| v.len());
                                out.push(format!(
                                    "list {id} (proposed {created}, {n} of {} approvals)",
                                    retention.approvals_required()
                                ));
                            }
                        }
                    }
                    Ok(())
                })?;
                for (code, objects, what) in [
                    ("retention.list_awaiting_approval", unapproved, "approval"),
                    ("retention.list_awaiting_execution", unexecuted, "execution"),
                ] {
                    if !objects.is_empty() {
                        findings.push(Finding::new(
                            code,
                            Severity::High,
                            format!(
                                "destruction lists awaiting {what} for more than {} days: data is kept past its date",
                                check.max_list_age_days
                            ),
                            objects,
                        ));
                    }
                }
            }
        }

        // Keys not rotated within the configured age.
        let mut old_keys = Vec::new();
        for row in self.store.keyring()? {
            let newest = match row.kind.as_str() {
                "kek" | "index" => row.state == "active",
                _ => false,
            };
            if !newest {
                continue;
            }
            let created = instant_of(&row.created);
            if created.is_some_and(|c| c < days_ago(check.max_key_age_days)) {
                old_keys.push((row.kind.clone(), row.version, row.created.clone()));
            }
        }
        // Only the newest version of each kind matters: an older one is being replaced.
        let mut newest: BTreeMap<String, (u32, String)> = BTreeMap::new();
        for row in self.store.keyring()? {
            if matches!(row.kind.as_str(), "kek" | "index") {
                let e = newest.entry(row.kind.clone()).or_insert((0, String::new()));
                if row.version >= e.0 {
                    *e = (row.version, row.created.clone());
                }
            }
        }
        let stale_keys: Vec<String> = old_keys
            .into_iter()
            .filter(|(k, v, _)| newest.get(k).is_some_and(|(nv, _)| nv == v))
            .map(|(k, v, c)| format!("{k} v{v} (created {c})"))
            .collect();
        if !stale_keys.is_empty() {
            findings.push(Finding::new(
                "keys.rotation_due",
                Severity::Medium,
                format!("keys not rotated within {} days", check.max_key_age_days),
                stale_keys,
            ));
        }

        // Destroyed keys whose KEK is still in the keyring, destroyed long ago: any copy of the
        // store taken before their destruction still recovers them through it.
        let mut exposed = Vec::new();
        self.store.retention_read(&mut |tx| {
            exposed = tx.exposed_destructions()?;
            Ok(())
        })?;
        let exposed: Vec<String> = exposed
            .into_iter()
            .filter(|(_, _, earliest)| {
                instant_of(earliest).is_some_and(|t| t < days_ago(check.max_backup_exposure_days))
            })
            .map(|(v, n, earliest)| {
                format!("kek v{v}: {n} destroyed data key(s), the first destroyed {earliest}")
            })
            .collect();
        if !exposed.is_empty() {
            findings.push(Finding::new(
                "keys.backup_exposure",
                Severity::High,
                format!(
                    "data keys destroyed more than {} days ago are still recoverable from copies of the store taken before: the KEK that wraps them is still in the keyring; run `coffer keys rotate kek --retire`, then rotate the master key and destroy its old value",
                    check.max_backup_exposure_days
                ),
                exposed,
            ));
        }

        // Policy rules that reveal sensitive fields without a ticket, or abroad without a basis.
        let (no_ticket, no_basis) = policy_findings(&self.schema, &policy);
        if !no_ticket.is_empty() {
            findings.push(Finding::new(
                "policy.sensitive_without_ticket",
                Severity::Medium,
                "allow rules reveal sensitive fields in clear without requiring a ticket",
                no_ticket,
            ));
        }
        if !no_basis.is_empty() {
            findings.push(Finding::new(
                "policy.transfer_without_basis",
                Severity::High,
                "allow rules reveal sensitive fields with no condition keeping them in CN or requiring a transfer basis (PIPL art. 38)",
                no_basis,
            ));
        }

        findings.sort_by(|a, b| (a.severity, &a.code).cmp(&(b.severity, &b.code)));
        let mut counts = BTreeMap::new();
        for f in &findings {
            *counts.entry(f.severity.as_str().to_owned()).or_default() += 1;
        }
        let mut e = self.report_entry("report.check", access, &tenant);
        e.detail
            .insert("findings".into(), findings.len().to_string());
        self.append(vec![e])?;
        Ok(ComplianceCheck {
            format: REPORT_FORMAT.into(),
            generated: now_text(self.clock.as_ref()),
            requested_by: access.principal.id.clone(),
            purpose: access.purpose.clone(),
            options: *check,
            trail,
            findings,
            counts,
        })
    }
}
