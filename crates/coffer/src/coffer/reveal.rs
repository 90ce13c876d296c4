//! Revealing: envelopes in, views out. Each field is decided by the policy, the decision
//! audited (with the rate counts it spends) in one transaction, and only then opened.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::*;
use crate::HashMap;
use crate::audit::{AuditEntry, TenantBatches};
use crate::crypto::{self};
use crate::envelope::{self, Envelope};
use crate::error::{Error, Result};
use crate::mask::{MaskForm, MaskRule, Masked, Profile};
use crate::policy::{Action, FieldEffect, Policy, Request};
use crate::record::FieldPath;

impl Coffer {
    /// Reads an envelope from JSON and checks its MAC.
    pub fn open_envelope(&self, json: &str) -> Result<Envelope> {
        let env = Envelope::from_json(json)?;
        env.check_mac(&self.keyring().envelope_mac)?;
        Ok(env)
    }

    // ---- revealing -------------------------------------------------------------------------

    pub(super) fn plan_reveal(
        &self,
        policy: &Policy,
        env: &Envelope,
        access: &Access,
        paths: &[&PathSlot],
        restricted: Option<&lifecycle::Restrictions>,
        batch: &mut RevealBatch<'_>,
    ) -> (crate::policy::Decision, RevealText, Vec<AuditEntry>) {
        let req = batch.request.aim(self, access, env, restricted);
        let mut decision = policy.decide(req);
        let slots: Vec<usize> = paths.iter().filter_map(|p| p.2).collect();
        let exceeded =
            crate::policy::rate::apply_with(policy, req, &mut decision, &slots, batch.admit);
        let mut detail: BTreeMap<&str, Cow<'_, str>> = BTreeMap::new();
        detail.insert("roles", Cow::Borrowed(&batch.request.roles));
        if let Some(c) = &access.context.client {
            // Incident scoping asks "what went out through this client?".
            detail.insert("client", Cow::Borrowed(c));
        }
        if let Some(d) = decision.denial() {
            detail.insert("denied", Cow::Owned(d.to_string()));
        }
        if decision.evaluation_errors() > 0 {
            detail.insert(
                "evaluation_errors",
                Cow::Owned(decision.evaluation_errors().to_string()),
            );
        }
        if decision.audit_detail() {
            detail.insert("audit", Cow::Borrowed("detail"));
        }
        let mut rules: Vec<&str> = Vec::new();
        for (_, _, slot) in paths.iter().copied() {
            if let Some(fd) = slot.and_then(|s| decision.slot(s)) {
                rules.extend(fd.rule_ids(policy));
            }
        }
        rules.sort_unstable();
        rules.dedup();
        let fields = Effects {
            paths,
            decision: &decision,
        };
        let e = if batch.whole {
            RevealText::Whole(reveal_entry(&RevealEntry {
                time: batch.time,
                kind: "reveal",
                actor: &access.principal.id,
                tenant: &env.tenant,
                record: &env.record,
                subject: &env.subject,
                purpose: &access.purpose,
                policy_version: policy.version(),
                fields,
                rules,
                detail,
            }))
        } else {
            RevealText::Parts {
                fields: batch.texts.fields(&fields),
                rules: batch.texts.rules(&rules),
                detail: batch.texts.detail(&detail),
            }
        };
        let alerts = exceeded
            .into_iter()
            .map(|x| {
                let mut a = self.entry("rate_limit.exceeded", &access.principal.id);
                a.tenant = Some(env.tenant.clone());
                a.record = Some(env.record.clone());
                a.detail.insert("limit".into(), x.limit);
                a.detail.insert("requested".into(), x.requested.to_string());
                a.detail.insert("max".into(), x.max.to_string());
                a
            })
            .collect();
        (decision, e, alerts)
    }

    /// Whether a field's view needs its value decrypted: revealed, or masked other than as the
    /// envelope's stored standard mask.
    pub(super) fn must_open(
        &self,
        env: &Envelope,
        effect: FieldEffect,
        path_text: &str,
        path: &FieldPath,
    ) -> bool {
        match effect {
            FieldEffect::Reveal => true,
            FieldEffect::Mask { rule, profile } => {
                // Addresses are always masked afresh: envelopes sealed before the allow-list
                // address mask stored a form that could keep a street or a phone number.
                !(profile == Profile::Standard
                    && rule != MaskRule::Partial(MaskForm::Address)
                    && self.schema.spec_for(path).is_some_and(|s| s.mask == rule)
                    && env.has_stored_mask(path_text))
            }
            FieldEffect::Deny => false,
        }
    }

    pub(super) fn build_view(
        &self,
        env: &Envelope,
        decision: &crate::policy::Decision,
        audit_seq: u64,
        paths: &[&PathSlot],
        held: &[Held<'_>],
        keys: ViewKeys<'_, '_>,
    ) -> Result<View> {
        let keyring = self.keyring();
        // In the paths' order, which is the map's: built in one pass at the end.
        let mut fields = Vec::with_capacity(paths.len());
        // One cipher per retention category: a data-key lookup and an HKDF, not one per field.
        let mut ciphers: HashMap<&str, Option<Arc<crypto::AeadKey>>> = HashMap::default();
        let mut mask_ciphers: HashMap<&str, Option<Arc<crypto::AeadKey>>> = HashMap::default();
        for ((path_text, path, slot), held) in paths.iter().copied().zip(held) {
            let path_text = path_text.clone();
            let fd = slot.and_then(|s| decision.slot(s));
            let effect = fd.as_ref().map_or(FieldEffect::Deny, |f| f.effect);
            // Written only for a field denied.
            let reason = || match &fd {
                Some(f) => f.reason.to_string(),
                None => "not a field of the policy's schema".to_owned(),
            };
            if effect == FieldEffect::Deny {
                fields.push((path_text, FieldView::Denied(reason())));
                continue;
            }
            let mut stored_mask = None;
            // Decrypt only what the decision needs.
            let value = match *held {
                // Removed by a redaction: its key was destroyed.
                Held::Shredded => {
                    fields.push((path_text, FieldView::Shredded));
                    continue;
                }
                Held::Clear(v) => Some(v.clone()),
                Held::Sealed(f, key) => {
                    // (tenant, subject, category, version): a sealed field whose category the
                    // envelope has no key version for is damage.
                    let id = key
                        .and_then(|i| keys.ids.get(i).copied())
                        .ok_or_else(|| crypto::integrity("envelope"))?;
                    // The category's data key: loaded for the batch, else read (`None` once
                    // destroyed).
                    let data_key = || match keys.loaded.get(&id) {
                        Some(k) => Ok(k.clone()),
                        None => self.data_key(id.0, id.1, id.2, id.3),
                    };
                    if self.must_open(env, effect, &path_text, path) {
                        if !ciphers.contains_key(&*f.category) {
                            let cipher = data_key()?
                                .map(|dk| envelope::field_cipher(env, &dk, &f.category))
                                .transpose()?;
                            ciphers.insert(&f.category, cipher);
                        }
                        match &ciphers[&*f.category] {
                            None => {
                                fields.push((path_text, FieldView::Shredded));
                                continue;
                            }
                            Some(cipher) => Some(envelope::open_field(cipher, env, &path_text, f)?),
                        }
                    } else {
                        // The stored standard mask is shown only while the category's key exists:
                        // a destroyed category reads shredded for every effect, masks included.
                        if matches!(keys.loaded.get(&id), Some(None)) {
                            fields.push((path_text, FieldView::Shredded));
                            continue;
                        }
                        // Version 2: the stored mask is sealed under the category's mask key.
                        if let Some(m) = env.sealed_masks.get(path_text.as_str()) {
                            if !mask_ciphers.contains_key(&*m.category) {
                                let cipher = data_key()?
                                    .map(|dk| envelope::mask_cipher(env, &dk, &m.category))
                                    .transpose()?;
                                mask_ciphers.insert(&m.category, cipher);
                            }
                            match &mask_ciphers[&*m.category] {
                                None => {
                                    fields.push((path_text, FieldView::Shredded));
                                    continue;
                                }
                                Some(cipher) => {
                                    stored_mask =
                                        Some(envelope::open_mask(cipher, env, &path_text, m)?);
                                }
                            }
                        }
                        None
                    }
                }
            };
            let view = match (effect, value) {
                (FieldEffect::Reveal, Some(v)) => FieldView::Revealed(v),
                (FieldEffect::Mask { .. }, None) => FieldView::Masked(match stored_mask {
                    Some(m) => m.expose().to_owned(),
                    None => env.masked.get(&path_text).cloned().unwrap_or_default(),
                }),
                (FieldEffect::Mask { rule, profile }, Some(v)) => {
                    match rule.apply(v.expose(), profile) {
                        Masked::Text(t) => FieldView::Masked(t),
                        Masked::KeyedHash => FieldView::Masked(self.keyed_token(
                            &keyring,
                            &env.tenant,
                            &path.pattern_key(),
                            v.expose(),
                        )),
                        Masked::Withheld => FieldView::Denied("withheld by a mask rule".into()),
                    }
                }
                _ => FieldView::Denied(reason()),
            };
            fields.push((path_text, view));
        }
        Ok(View {
            record: env.record.clone(),
            policy_version: decision.policy_version().to_owned(),
            audit_seq,
            // Ascending and distinct (an envelope holds each path once), so the map is built
            // from the sorted run, not by a search per field.
            fields: fields.into_iter().collect(),
        })
    }

    pub(super) fn require_policy(&self) -> Result<Arc<Policy>> {
        self.policy().ok_or_else(|| Error::Unsupported {
            what: "no policy is loaded; Coffer reveals nothing without one".into(),
        })
    }

    /// Reveals an envelope to `access`: decides with the policy, applies rate limits, commits
    /// the audit entry, and only then decrypts what the decision allows (masked forms are
    /// computed from it where needed). If the audit entry cannot be written, nothing is returned.
    pub fn reveal(&self, envelope: &Envelope, access: &Access) -> Result<View> {
        let mut views = self.reveal_many(std::slice::from_ref(envelope), access)?;
        views.pop().ok_or_else(|| Error::Internal {
            message: "reveal produced no view".into(),
        })
    }

    /// Reveals many envelopes to one principal, with one audit transaction for the batch.
    /// Takes envelopes or anything that borrows one (`Arc<Envelope>`, `&Envelope`), so that
    /// bindings holding them shared pass them without copies.
    pub fn reveal_many<E: std::borrow::Borrow<Envelope> + Sync>(
        &self,
        envelopes: &[E],
        access: &Access,
    ) -> Result<Vec<View>> {
        let envelopes: Vec<&Envelope> = envelopes.iter().map(E::borrow).collect();
        let envelopes = envelopes.as_slice();
        check_access(access)?;
        let _running = BatchRunning::start();
        let policy = self.require_policy()?;
        let keyring = self.keyring();
        // A batch of `PREFETCH_FROM` envelopes or more has left the cache by the time each pass
        // comes back to it: every pass below that reads envelopes then fetches the next one
        // into the cache while it works on one (`Envelope::prefetch`). A smaller one stays in
        // the cache, where the hint only costs.
        let ahead: &[&Envelope] = if envelopes.len() >= PREFETCH_FROM {
            envelopes
        } else {
            &[]
        };
        let fetch_after = |k: usize| {
            if let Some(next) = ahead.get(k + 1) {
                next.prefetch();
            }
        };
        // Every MAC checked before anything is decided or written (on every core for a large
        // batch); the first envelope that fails, in the batch's order, is the error.
        in_parallel((0..envelopes.len()).collect(), |i| {
            fetch_after(i);
            envelopes[i].check_mac(&keyring.envelope_mac)
        })?
        .into_iter()
        .collect::<Result<()>>()?;
        let mut decisions = Vec::with_capacity(envelopes.len());
        let mut entries: Vec<String> = Vec::with_capacity(envelopes.len());
        let mut reveal_index = Vec::with_capacity(envelopes.len());
        // Each distinct path of the batch parsed, and its policy slot found, once (envelopes
        // of one schema share most of their paths); each envelope's paths in order.
        let mut table: Vec<PathSlot> = Vec::new();
        let mut known: HashMap<&str, usize> = HashMap::default();
        let mut orders: Vec<Vec<usize>> = Vec::with_capacity(envelopes.len());
        // Where each envelope holds each of its paths, in the same order.
        let mut helds: Vec<Vec<Held<'_>>> = Vec::with_capacity(envelopes.len());
        // Each data key the batch's envelopes name, once, found while each envelope is in the
        // cache (the keys pass below then reads no envelope), and the batch's subjects.
        let mut key_ids: Vec<KeyId<'_>> = Vec::new();
        let mut key_index: HashMap<KeyId<'_>, usize> = HashMap::default();
        let mut subjects: BTreeSet<(&str, &str)> = BTreeSet::new();
        // The envelope at hand's categories, each with its key's place in `key_ids` (one buffer
        // for the batch).
        let mut categories: Vec<(&str, usize)> = Vec::new();
        for (k, env) in envelopes.iter().enumerate() {
            fetch_after(k);
            subjects.insert((env.tenant.as_str(), env.subject.as_str()));
            categories.clear();
            categories.extend(env.keys.iter().map(|(c, &v)| {
                let id = (env.tenant.as_str(), env.subject.as_str(), c.as_str(), v);
                let i = *key_index.entry(id).or_insert_with(|| {
                    key_ids.push(id);
                    key_ids.len() - 1
                });
                (c.as_str(), i)
            }));
            let key_of = |f: &envelope::SealedField| {
                categories
                    .iter()
                    .find(|(c, _)| *c == &*f.category)
                    .map(|&(_, i)| i)
            };
            let mut here: Vec<(&str, Held<'_>)> = env
                .fields
                .iter()
                .map(|(p, f)| (p.as_str(), Held::Sealed(f, key_of(f))))
                .chain(env.clear.iter().map(|(p, v)| (p.as_str(), Held::Clear(v))))
                .chain(env.shredded.keys().map(|p| (p.as_str(), Held::Shredded)))
                .collect();
            here.sort_unstable_by_key(|h| h.0);
            let mut order = Vec::with_capacity(here.len());
            helds.push(here.iter().map(|h| h.1).collect());
            for (p, _) in here {
                let i = match known.get(p) {
                    Some(&i) => i,
                    None => {
                        let fp = FieldPath::parse(p)?;
                        let slot = policy.slot_for(&fp);
                        table.push((p.to_owned(), fp, slot));
                        known.insert(p, table.len() - 1);
                        table.len() - 1
                    }
                };
                order.push(i);
            }
            orders.push(order);
        }
        let parsed: Vec<Vec<&PathSlot>> = orders
            .iter()
            .map(|o| o.iter().map(|&i| &table[i]).collect())
            .collect();
        let unrestricted = BTreeMap::new();
        // One time for the whole batch, the handle's own, so that its rate-limit counts fall in
        // one window that no request can move.
        let now = self.request_time(access)?;
        let (_, mac) = self.batch(&keyring, &[]);
        let listened = self.has_subscribers();
        // Restrictions and rate-limit counts are read, the batch decided, the counts added and
        // the entries appended in one write transaction: another process's erasure or reveals
        // land wholly before or wholly after it, never between the read and the write.
        let appended = self.store.retention_tx(&mac, &mut |tx| {
            decisions.clear();
            entries.clear();
            reveal_index.clear();
            // If the restrictions cannot be read, every envelope is planned as fully
            // restricted; if the counts cannot, limited fields are denied.
            let restrictions = Self::restrictions_many(tx, &subjects).ok();
            let mut budget = RateBudget::read(tx, &policy, access, now);
            self.pause("reveal.decide");
            let time = self.now();
            let mut admit = |li: usize, _: i64, n: u32| budget.admit(&policy, li, n);
            let mut batch = RevealBatch {
                time: &time,
                admit: &mut admit,
                request: RequestTemplate::new(access, now),
                whole: true,
                texts: PartTexts::default(),
            };
            // A tenant with two or more envelopes in the batch gets one `reveal.batch` entry
            // for them (see `audit::expand`); a tenant's only envelope, its plain `reveal` entry.
            let mut batches = TenantBatches::new(envelopes.iter().map(|e| e.tenant.as_str()));
            for (k, (env, paths)) in envelopes.iter().zip(&parsed).enumerate() {
                if let Some(next) = ahead.get(k + 1) {
                    next.prefetch_names();
                }
                let restricted = restrictions.as_ref().map(|r| {
                    r.get(env.tenant.as_str())
                        .and_then(|t| t.get(env.subject.as_str()))
                        .unwrap_or(&unrestricted)
                });
                batch.whole = !batches.batched(&env.tenant);
                let (d, e, alerts) =
                    self.plan_reveal(&policy, env, access, paths, restricted, &mut batch);
                decisions.push(d);
                match e {
                    RevealText::Whole(text) => {
                        reveal_index.push(entries.len());
                        entries.push(text);
                    }
                    RevealText::Parts {
                        fields,
                        rules,
                        detail,
                    } => {
                        // Its place is the batch entry's, written below.
                        reveal_index.push(usize::MAX);
                        batches.push(
                            &env.tenant,
                            k,
                            Some(&env.record),
                            Some(&env.subject),
                            &fields,
                            &rules,
                            &detail,
                        );
                    }
                }
                entries.extend(alerts.iter().map(AuditEntry::canonical));
            }
            let mut head = AuditEntry::new("reveal", &access.principal.id, &time);
            head.purpose = Some(access.purpose.clone());
            head.policy_version = Some(policy.version().to_owned());
            for (text, members) in batches.finish(&head) {
                for k in members {
                    reveal_index[k] = entries.len();
                }
                entries.push(text);
            }
            budget.commit(tx)?;
            // Subscribers get the entries read back from their text after the commit.
            Ok(if listened {
                entries.clone()
            } else {
                std::mem::take(&mut entries)
            })
        });
        let seqs = appended.map_err(|e| Error::Audit {
            reason: e.to_string(),
        })?;
        if listened {
            self.notify_texts(&entries, &seqs);
        }
        // After the entries commit: a destruction that committed before them is seen, so no
        // key is used from the cache after its destruction is in the trail.
        self.sync_with_store()?;
        // The keys the views need, in one read rather than one per envelope and category.
        let mut needed = vec![false; key_ids.len()];
        for ((d, paths), held) in decisions.iter().zip(&parsed).zip(&helds) {
            for ((_, _, slot), held) in paths.iter().copied().zip(held) {
                // Every category a shown field belongs to, opened or not: a masked field of a
                // destroyed category must read shredded, so its key's state is needed too (a
                // cache lookup, or one unwrap on a miss; no field key is derived unless a field
                // is opened).
                if let Held::Sealed(_, Some(i)) = *held
                    && !needed[i]
                    && slot
                        .and_then(|s| d.slot(s))
                        .is_some_and(|f| f.effect != FieldEffect::Deny)
                {
                    needed[i] = true;
                }
            }
        }
        let wanted: Vec<KeyId<'_>> = key_ids
            .iter()
            .zip(&needed)
            .filter_map(|(&id, &n)| n.then_some(id))
            .collect();
        let ready = self.load_data_keys(wanted.into_iter())?;
        // Everything the views need is decided, audited and loaded: opening the fields is
        // pure work per envelope, shared out over the cores for large batches.
        let build = |k: usize| {
            fetch_after(k);
            let seq = seqs.get(reveal_index[k]).copied().unwrap_or(0);
            self.build_view(
                envelopes[k],
                &decisions[k],
                seq,
                &parsed[k],
                &helds[k],
                ViewKeys {
                    ids: &key_ids,
                    loaded: &ready,
                },
            )
        };
        in_parallel((0..envelopes.len()).collect(), build)?
            .into_iter()
            .collect()
    }

    // ---- audit -----------------------------------------------------------------------------
}

/// The smallest batch whose envelopes are fetched ahead of each pass (`reveal_many`). An
/// envelope is some seventy allocations, about 7.7 KB of heap: a hundred of them are about what
/// a core's 512 KB–1 MB second-level cache holds, 256 (2 MB) are well past it. Measured
/// (BENCHMARKS, issue 18's tenth step): 1,000 envelopes revealed 1.1–1.2× faster with the hint;
/// 100 freshly read from JSON, still in the cache, 5–10% slower.
const PREFETCH_FROM: usize = 256;

/// A data key's id: tenant, subject, category and version, borrowed from an envelope.
type KeyId<'a> = (&'a str, &'a str, &'a str, u32);

/// The data keys a batch's views open with: every key id the batch names (a [`Held::Sealed`]
/// field holds its key's place here), and the keys loaded for them (`None` once destroyed).
#[derive(Clone, Copy)]
pub(super) struct ViewKeys<'b, 'a> {
    ids: &'b [KeyId<'a>],
    loaded: &'b LoadedKeys<'a>,
}

/// A path of an envelope: its text, parsed, and its slot in the policy (if it has one).
pub(super) type PathSlot = (String, FieldPath, Option<usize>);

/// Where an envelope holds one of its paths: found while the batch gathers the paths, so that
/// building the view searches the envelope's maps for none of them again.
#[derive(Clone, Copy)]
pub(super) enum Held<'e> {
    /// With its data key's place in the batch's key ids (`None` if the envelope names no
    /// version for its category).
    Sealed(&'e envelope::SealedField, Option<usize>),
    Clear(&'e crate::record::Sensitive),
    /// Removed by a redaction.
    Shredded,
}

/// A batch's reveal request: the parts that are the same for every envelope (who, why, when)
/// built once, and the record's facts aimed at each envelope in turn (a request built anew
/// for every envelope copied the principal, the purpose and the context each time).
pub(super) struct RequestTemplate {
    req: Request,
    /// The principal's roles as the audit entry lists them.
    roles: String,
}

impl RequestTemplate {
    pub(super) fn new(access: &Access, now: time::OffsetDateTime) -> Self {
        let mut context = access.context.clone();
        // The host's time (already checked to be near the clock) keeps its offset for hour
        // conditions; without one, the clock's.
        context.time.get_or_insert(now);
        RequestTemplate {
            req: Request {
                principal: access.principal.clone(),
                action: Action::Read,
                purpose: access.purpose.clone(),
                record: access.record.clone(),
                context,
            },
            roles: access.principal.roles.join(","),
        }
    }

    /// The request for `env`: the host's facts with the envelope's tenant, kind and subject,
    /// and its restricted categories (from the store; if they could not be read, `None`, every
    /// category is treated as restricted to no purpose: fail closed).
    fn aim(
        &mut self,
        coffer: &Coffer,
        access: &Access,
        env: &Envelope,
        restricted: Option<&lifecycle::Restrictions>,
    ) -> &Request {
        let facts = &mut self.req.record;
        facts.tenant.clone_from(&env.tenant);
        facts.kind = Some(env.kind);
        match &mut facts.subject {
            Some(s) => s.clone_from(&env.subject),
            None => facts.subject = Some(env.subject.clone()),
        }
        facts.restricted.clone_from(&access.record.restricted);
        match restricted {
            Some(r) => facts
                .restricted
                .extend(r.iter().map(|(c, p)| (c.clone(), p.clone()))),
            None => {
                for spec in crate::record::FIELD_PATTERNS
                    .iter()
                    .filter_map(|p| coffer.schema.spec_for_pattern(p))
                {
                    facts.restricted.insert(spec.category.clone(), Vec::new());
                }
            }
        }
        &self.req
    }
}

/// The fields of a reveal's [`AuditEntry`], in its order, borrowed from the decision: its
/// canonical text is written without building the entry (whose maps of paths and effects
/// were most of the cost of auditing a reveal).
#[derive(serde::Serialize)]
pub(super) struct RevealEntry<'a> {
    pub(super) time: &'a str,
    pub(super) kind: &'a str,
    pub(super) actor: &'a str,
    pub(super) tenant: &'a str,
    pub(super) record: &'a str,
    pub(super) subject: &'a str,
    pub(super) purpose: &'a str,
    pub(super) policy_version: &'a str,
    #[serde(skip_serializing_if = "Effects::is_empty")]
    pub(super) fields: Effects<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) rules: Vec<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) detail: BTreeMap<&'a str, Cow<'a, str>>,
}

/// Every path with its effect (`reveal`, `mask:…`, `deny:…`), as [`EffectText`] writes it.
/// The paths come sorted; a path given twice keeps its last effect, as a map would.
pub(super) struct Effects<'a> {
    pub(super) paths: &'a [&'a PathSlot],
    pub(super) decision: &'a crate::policy::Decision,
}

impl Effects<'_> {
    fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The canonical JSON that serialising these effects gives, written directly: no path
    /// (names, indexes, ASCII custom keys) and no effect text needs escaping, so each is
    /// copied as it is (a path that would takes serde's way). A reveal batch writes this for
    /// every record; through serde, escaping each path and effect byte by byte and formatting
    /// each effect took some 5,000 instructions a record.
    pub(super) fn text(&self) -> String {
        let size = 16 + 40 * self.paths.len();
        let mut map = PlainMap::new(size);
        self.each(|path, effect| map.entry(path, &effect));
        map.finish().unwrap_or_else(|| entry_text(self, size))
    }

    /// Each path with its effect's text, in order, a path given twice once (its last).
    fn each(&self, mut f: impl FnMut(&str, Cow<'static, str>)) {
        for (i, (path, _, slot)) in self.paths.iter().copied().enumerate() {
            if self.paths.get(i + 1).is_some_and(|next| next.0 == *path) {
                continue;
            }
            let fd = slot.and_then(|s| self.decision.slot(s));
            f(
                path,
                access::effect_str(fd.as_ref().map(|f| (f.effect, f.reason))),
            );
        }
    }
}

impl serde::Serialize for Effects<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        for (i, (text, _, slot)) in self.paths.iter().copied().enumerate() {
            if self.paths.get(i + 1).is_some_and(|next| next.0 == *text) {
                continue;
            }
            let fd = slot.and_then(|s| self.decision.slot(s));
            map.serialize_entry(text, &EffectText(fd.as_ref()))?;
        }
        map.end()
    }
}

/// One reveal's audit entry: its whole canonical text, or (for a record of a batch entry) the
/// parts that differ from one record of the batch to the next, as canonical JSON.
pub(super) enum RevealText {
    Whole(String),
    Parts {
        fields: Arc<str>,
        rules: Arc<str>,
        detail: Arc<str>,
    },
}

/// The fields, rules and detail texts of a batch's last record planned. The records of one
/// reveal batch mostly share them (one request, one policy, the same fields); the batch entry
/// keeps each distinct text once anyway, so a record whose parts equal the last one's takes
/// its texts instead of writing them again.
#[derive(Default)]
pub(super) struct PartTexts {
    fields: LastWritten<Vec<(String, Cow<'static, str>)>, Arc<str>>,
    rules: LastWritten<Vec<String>, Arc<str>>,
    detail: LastWritten<Vec<(String, String)>, Arc<str>>,
}

impl PartTexts {
    /// The effects on each path (`fields`) as canonical JSON.
    fn fields(&mut self, effects: &Effects<'_>) -> Arc<str> {
        self.fields.get(
            |had| {
                let (mut same, mut n) = (true, 0);
                effects.each(|path, effect| {
                    same = same && had.get(n).is_some_and(|(p, e)| p == path && *e == effect);
                    n += 1;
                });
                same && n == had.len()
            },
            || {
                let mut from = Vec::new();
                effects.each(|path, effect| from.push((path.to_owned(), effect)));
                (from, Arc::from(effects.text()))
            },
        )
    }

    /// `rules` as canonical JSON.
    fn rules(&mut self, rules: &[&str]) -> Arc<str> {
        self.rules.get(
            |had| had.len() == rules.len() && had.iter().zip(rules).all(|(a, b)| a == b),
            || {
                let from = rules.iter().map(|r| (*r).to_owned()).collect();
                (from, Arc::from(entry_text(&rules, 64)))
            },
        )
    }

    /// `detail` as canonical JSON.
    fn detail(&mut self, detail: &BTreeMap<&str, Cow<'_, str>>) -> Arc<str> {
        self.detail.get(
            |had| {
                had.len() == detail.len()
                    && had
                        .iter()
                        .zip(detail)
                        .all(|((a, b), (c, d))| a == c && b == d)
            },
            || {
                let from = detail
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.to_string()))
                    .collect();
                (from, Arc::from(entry_text(detail, 64)))
            },
        )
    }
}

/// A reveal's entry as canonical text.
pub(super) fn reveal_entry(e: &RevealEntry<'_>) -> String {
    entry_text(e, 256 + 40 * e.fields.paths.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Context, Principal, RecordFacts};
    use crate::record::Schema;

    /// The effects a reveal batch writes for each record are exactly serde's canonical JSON of
    /// them: for every role of the example policy (reveals, masks of both profiles, denials of
    /// every kind), paths given twice, paths the policy does not know, and texts that JSON must
    /// escape.
    #[test]
    fn effects_are_written_as_serde_writes_them() {
        let policy = Policy::from_toml(
            include_str!("../../../../examples/policies/accounting-firm.toml"),
            Schema::builtin(),
        )
        .unwrap();
        let paths = [
            "addresses[0]",
            "bank_accounts[0].account_number",
            "bank_accounts[0].bank_name",
            "custom.vip_level",
            "emails[0]",
            "emails[0]",
            "id_documents[0].number",
            "id_documents[0].type",
            "name",
            "phones[0]",
            "phones[1]",
        ];
        let slots = |texts: &[&str]| -> Vec<PathSlot> {
            texts
                .iter()
                .map(|t| {
                    let fp = FieldPath::parse(t).unwrap_or_else(|_| FieldPath::parse("x").unwrap());
                    let slot = policy.slot_for(&fp);
                    ((*t).to_owned(), fp, slot)
                })
                .collect()
        };
        let plain = slots(&paths);
        let odd = slots(&["a\"b", "back\\slash", "line\nbreak", "tab\t", "名字", "z"]);
        let roles = [
            "clerk",
            "accountant",
            "auditor",
            "customer_service",
            "marketing",
            "privacy_officer",
            "nobody",
        ];
        const PURPOSES: [&str; 5] = [
            "bookkeeping",
            "payments",
            "statutory_audit",
            "marketing",
            "customer_service",
        ];
        let (mut written, mut all) = (0, String::new());
        // A batch's records share the last record's text when theirs is the same: the text
        // shared is the record's own, after any other, and the same text is shared.
        let (mut memo, mut decisions) = (PartTexts::default(), Vec::new());
        for role in roles {
            for (purpose, ticket) in PURPOSES
                .into_iter()
                .flat_map(|p| [(p, Some("T-1".to_owned())), (p, None)])
            {
                let req = Request {
                    principal: Principal {
                        id: "u-1".into(),
                        tenant: "firm-a".into(),
                        roles: vec![role.into()],
                        ..Default::default()
                    },
                    action: Action::Read,
                    purpose: purpose.into(),
                    record: RecordFacts {
                        tenant: "firm-a".into(),
                        ..Default::default()
                    },
                    context: Context {
                        ticket,
                        time: Some(time::macros::datetime!(2026-11-27 10:00 +08:00)),
                        ..Default::default()
                    },
                };
                let decision = policy.decide(&req);
                for set in [&plain, &odd] {
                    let refs: Vec<&PathSlot> = set.iter().collect();
                    for n in 0..=refs.len() {
                        let effects = Effects {
                            paths: &refs[..n],
                            decision: &decision,
                        };
                        let text = effects.text();
                        assert_eq!(text, entry_text(&effects, 0), "{role} {purpose}");
                        let shared = memo.fields(&effects);
                        assert_eq!(*shared, *text, "{role} {purpose}");
                        assert!(Arc::ptr_eq(&shared, &memo.fields(&effects)));
                        all.push_str(&text);
                        written += 1;
                    }
                }
                decisions.push(decision);
            }
        }
        // The same paths, one decision after another: each record's own effects.
        let refs: Vec<&PathSlot> = plain.iter().collect();
        let mut distinct = BTreeSet::new();
        for decision in &decisions {
            let effects = Effects {
                paths: &refs,
                decision,
            };
            assert_eq!(*memo.fields(&effects), *effects.text());
            distinct.insert(effects.text());
        }
        assert!(distinct.len() > 5, "{}", distinct.len());
        assert_eq!(
            written,
            roles.len() * PURPOSES.len() * 2 * (paths.len() + 1 + 7)
        );
        for effect in [
            ":\"reveal\"",
            ":standard\"",
            ":privileged\"",
            "deny:rule",
            "deny:no_matching_allow",
            "deny:unmet",
            "deny:request",
            "deny:unknown_field",
        ] {
            assert!(all.contains(effect), "no {effect}");
        }
    }
}
