//! Search: a blind-index lookup is an access like a reveal. A token answers "does this record
//! hold this value?", so with a masked phone (`138****0000`) and a narrow token, trying the
//! 10^4 completions would find the number. Search is therefore decided per field by the
//! policy's `search` action (default deny), honours erasure restrictions, counts against the
//! rate limits in the store, and writes an audit entry (who, tenant, field, epochs, purpose,
//! how many values; never a value) in the same transaction as the counts.

use super::access::{RateBudget, check_access, effect_text};
use super::{Access, Coffer, IndexToken, normalize_for};
use crate::audit::AuditEntry;
use crate::error::{Error, Result};
use crate::policy::{Action, FieldEffect, Request};
use crate::record::{FieldPath, MAX_VALUE_BYTES};

/// Most values one search may look up (the rate limits count each one).
pub const MAX_SEARCH_VALUES: usize = 10_000;

/// What a search found out: the tokens to look up in the host's database, and the subjects
/// whose rows the host must leave out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchAnswer {
    /// The field's schema pattern (`id_documents[].number`).
    pub field: String,
    /// The audit entry that records the search.
    pub audit_seq: u64,
    /// For each value, in the order given: one token per index epoch still written (look each
    /// up in its epoch's column), or none when the index's transform does not take the value.
    pub tokens: Vec<Vec<IndexToken>>,
    /// Subjects of the principal's tenant whose data in this field's category an erasure
    /// request restricted to purposes other than the search's: drop their rows from what the
    /// tokens find.
    pub withheld_subjects: Vec<String>,
}

impl Coffer {
    /// Searches the blind index of `field` (a pattern such as `id_documents[].number` or a
    /// path such as `phones[0]`) for `value`, in the principal's own tenant. See
    /// [`Coffer::search_many`].
    pub fn search(&self, access: &Access, field: &str, value: &str) -> Result<SearchAnswer> {
        self.search_many(access, field, &[value])
    }

    /// Searches the blind index of `field` for each of `values`, in the principal's tenant (no
    /// other: tenant isolation). The policy decides the `search` action on the field for the
    /// principal's roles and purpose: an allow or a mask lets the search run, a deny (or no
    /// rule) refuses it with [`Error::AccessDenied`]. Every value counts against the policy's
    /// rate limits on the field (kept in the store, across processes); a search that would go
    /// over one is refused with [`Error::RateLimited`] and an alert is written. Allowed or not,
    /// one audit entry records who searched which field, for which purpose, how many values,
    /// and the outcome (never a value); if it cannot be written, no token is returned.
    ///
    /// Values are normalised as sealing normalises them. Expect false positives (see
    /// [`crate::plan_index`]) and confirm by reveal.
    pub fn search_many(
        &self,
        access: &Access,
        field: &str,
        values: &[&str],
    ) -> Result<SearchAnswer> {
        check_access(access)?;
        if values.len() > MAX_SEARCH_VALUES {
            return Err(Error::LimitExceeded {
                what: "values in one search".into(),
                limit: MAX_SEARCH_VALUES,
                unit: "items",
            });
        }
        if values.is_empty() {
            return Err(Error::InvalidArgument {
                name: "values",
                reason: "a search needs at least one value".into(),
            });
        }
        if let Some(i) = values.iter().position(|v| v.len() > MAX_VALUE_BYTES) {
            return Err(Error::LimitExceeded {
                what: format!("search value {i}"),
                limit: MAX_VALUE_BYTES,
                unit: "bytes",
            });
        }
        let policy = self.require_policy()?;
        let (pattern, spec) = self.index_spec(field)?;
        let index = spec.index.ok_or_else(|| Error::InvalidArgument {
            name: "field",
            reason: format!("`{pattern}` has no blind index in the schema"),
        })?;
        let category = spec.category.clone();
        let now = self.request_time(access)?;
        // A check for an index rotation elsewhere (one pragma when nothing changed), so that
        // the tokens cover every epoch in use.
        self.sync_with_store()?;
        let keyring = self.keyring();
        let epochs: Vec<u32> = keyring
            .index
            .iter()
            .filter(|(_, (_, active))| *active)
            .map(|(&e, _)| e)
            .collect();
        let tenant = access.principal.tenant.as_str();
        let slot = FieldPath::parse(&pattern.replace("[]", "[0]"))
            .ok()
            .and_then(|p| policy.slot_for(&p));
        let count = u32::try_from(values.len()).unwrap_or(u32::MAX);

        let mut context = access.context.clone();
        context.time.get_or_insert(now);
        let mut facts = access.record.clone();
        facts.tenant = tenant.to_owned();
        let req = Request {
            principal: access.principal.clone(),
            action: Action::Search,
            purpose: access.purpose.clone(),
            record: facts,
            context,
        };
        let (_, mac) = self.batch(&keyring, &[]);
        let mut entries: Vec<AuditEntry> = Vec::new();
        let mut outcome: Result<()> = Ok(());
        let mut withheld = Vec::new();
        let appended = self.store.retention_tx(&mac, &mut |tx| {
            entries.clear();
            withheld.clear();
            let mut decision = policy.decide(&req);
            let mut budget = RateBudget::read(tx, &policy, access, now);
            self.pause("search.decide");
            let mut admit = |li: usize, _: i64, n: u32| budget.admit(&policy, li, n);
            let slots: Vec<usize> = slot.into_iter().collect();
            let exceeded = crate::policy::rate::apply_search(
                &policy,
                &req,
                &mut decision,
                &slots,
                count,
                &mut admit,
            );
            let fd = slot.and_then(|s| decision.slot(s));
            let effect = effect_text(fd.as_ref());
            outcome = match &fd {
                Some(f) if f.effect != FieldEffect::Deny => Ok(()),
                Some(f) if matches!(f.reason, crate::policy::Reason::RateLimited(_)) => {
                    Err(Error::RateLimited {
                        limit: exceeded
                            .first()
                            .map(|x| x.limit.clone())
                            .unwrap_or_default(),
                    })
                }
                Some(f) => Err(Error::AccessDenied {
                    reason: format!("search on `{pattern}`: {}", f.reason),
                }),
                None => Err(Error::AccessDenied {
                    reason: format!("search on `{pattern}`: not a field of the policy's schema"),
                }),
            };
            let mut e = self.entry("search", &access.principal.id);
            e.tenant = Some(tenant.to_owned());
            e.purpose = Some(access.purpose.clone());
            e.policy_version = Some(policy.version().to_owned());
            e.fields.insert(pattern.clone(), effect);
            e.rules = fd
                .map(|f| f.rule_ids(&policy).into_iter().map(str::to_owned).collect())
                .unwrap_or_default();
            e.detail
                .insert("roles".into(), access.principal.roles.join(","));
            e.detail.insert("count".into(), count.to_string());
            e.detail.insert(
                "epochs".into(),
                epochs
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            );
            if let Some(c) = &access.context.client {
                e.detail.insert("client".into(), c.clone());
            }
            if let Some(d) = decision.denial() {
                e.detail.insert("denied".into(), d.to_string());
            }
            entries.push(e);
            for x in exceeded {
                let mut a = self.entry("rate_limit.exceeded", &access.principal.id);
                a.tenant = Some(tenant.to_owned());
                a.detail.insert("action".into(), "search".into());
                a.detail.insert("field".into(), pattern.clone());
                a.detail.insert("limit".into(), x.limit);
                a.detail.insert("requested".into(), x.requested.to_string());
                a.detail.insert("max".into(), x.max.to_string());
                entries.push(a);
            }
            if outcome.is_ok() {
                budget.commit(tx)?;
                // Subjects whose restriction leaves this purpose out: read in the transaction,
                // so that an erasure committed before the entry is honoured.
                for (subject, purposes) in tx.restricted_subjects(tenant, &category)? {
                    let allowed: Vec<String> = serde_json::from_str(&purposes).unwrap_or_default();
                    if !policy.purpose_served_by(&access.purpose, &allowed) {
                        withheld.push(subject);
                    }
                }
            }
            Ok(entries.iter().map(AuditEntry::canonical).collect())
        });
        let seqs = appended.map_err(|e| Error::Audit {
            reason: e.to_string(),
        })?;
        self.notify(&entries, &seqs);
        outcome?;
        let mut tokens = Vec::with_capacity(values.len());
        for value in values {
            let normalised = normalize_for(&pattern, value);
            let mut of_value = Vec::with_capacity(epochs.len());
            if let Some(transformed) = index.transform.apply(normalised.expose()) {
                for &epoch in &epochs {
                    let key = self.index_key(&keyring, tenant, &pattern, epoch)?;
                    of_value.push(IndexToken {
                        epoch,
                        token: Self::token(&key, transformed.expose(), index.bits),
                    });
                }
            }
            tokens.push(of_value);
        }
        Ok(SearchAnswer {
            field: pattern,
            audit_seq: seqs.first().copied().unwrap_or(0),
            tokens,
            withheld_subjects: withheld,
        })
    }

    /// The schema pattern and spec of a field named by pattern or path.
    fn index_spec(&self, field: &str) -> Result<(String, &crate::record::FieldSpec)> {
        let pattern = if field.contains("[]") || field.ends_with(".*") {
            field.to_owned()
        } else {
            FieldPath::parse(field)?.pattern_key()
        };
        let spec = self
            .schema
            .spec_for_pattern(&pattern)
            .or_else(|| {
                FieldPath::parse(field)
                    .ok()
                    .and_then(|p| self.schema.spec_for(&p))
            })
            .ok_or_else(|| Error::InvalidArgument {
                name: "field",
                reason: format!("`{pattern}` is not a field of the schema"),
            })?;
        Ok((pattern, spec))
    }
}
