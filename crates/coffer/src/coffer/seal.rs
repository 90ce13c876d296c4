//! Sealing: records in, envelopes out, with the data keys they need made and stored (and
//! audited) in one transaction per batch; resealing under the current keys.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::*;
use crate::HashMap;
use crate::audit::{AuditEntry, TenantBatches};
use crate::crypto::{self, SecretKey, hmac_sha256, lp};
use crate::envelope::{self, Envelope, PathMap, Tokens};
use crate::error::{Error, Result};
use crate::mask::{Masked, Profile};
use crate::record::{CustomerRecord, PathText, Protection, Sensitive};

impl Coffer {
    pub(super) fn seal_one(
        &self,
        keyring: &Keyring,
        record: CustomerRecord,
        actor: &str,
    ) -> Result<Envelope> {
        let (record, _warnings) = self.schema.check(record, self.clock.today())?;
        let mut salt = [0u8; 16];
        crypto::fill_random(&mut salt)?;
        self.seal_checked(keyring, &record, actor, &SealKeys::default(), salt)
    }

    /// Seals a record that the schema has already normalised and checked, under the keys in
    /// `ready` when they are there.
    pub(super) fn seal_checked(
        &self,
        keyring: &Keyring,
        record: &CustomerRecord,
        actor: &str,
        ready: &SealKeys<'_>,
        salt: [u8; 16],
    ) -> Result<Envelope> {
        let (tenant, subject) = (record.tenant.as_str(), record.subject_id());
        let mut env = Envelope {
            tenant: tenant.to_owned(),
            record: record.id.clone(),
            subject: subject.to_owned(),
            kind: record.kind,
            schema: self.schema.name().to_owned(),
            salt,
            keys: litemap::LiteMap::new(),
            fields: PathMap::new(),
            clear: PathMap::new(),
            index: PathMap::new(),
            masked: BTreeMap::new(),
            sealed_masks: PathMap::new(),
            shredded: BTreeMap::new(),
            version: envelope::ENVELOPE_VERSION,
            mac: [0; 32],
        };
        // Per category: its name as the envelope's sealed items share it, the field cipher and
        // the mask cipher, both from its data key (version 3: the key's own, derived once and
        // cached with it).
        // A record has a handful of categories: found by comparing names, in a list.
        type CategoryKeys = (Arc<str>, Arc<crypto::AeadKey>, Arc<crypto::AeadKey>);
        let mut record_keys: Vec<(&str, CategoryKeys)> = Vec::new();
        let (mut counter, mut mask_counter) = (0u32, 0u32);
        // Gathered in the record's order, sorted into the envelope's maps once at the end;
        // sized for a typical customer (six sealed fields, four in clear, three indexed), so
        // most records allocate each list once.
        let (mut fields, mut sealed_masks) = (Vec::with_capacity(8), Vec::with_capacity(8));
        let (mut clear, mut tokens_at) = (Vec::with_capacity(4), Vec::with_capacity(4));
        for (place, value) in record.places() {
            // Shared text for the schema's common paths: copying it into each map that holds
            // the path costs nothing.
            let path = place.key();
            let spec = self.schema.spec_at(&place).ok_or_else(|| Error::Internal {
                message: format!("no schema entry for `{path}`"),
            })?;
            // The indexed form now (no cryptography: the blind-index HMACs run after the field's
            // seals, as they always have).
            let indexed = spec
                .index
                .and_then(|index| index.transform.apply(value).map(|t| (index, t)));
            match spec.protection {
                Protection::Clear => {
                    clear.push((path.clone(), Sensitive::new(value)));
                }
                Protection::Encrypted => {
                    let category = spec.category.as_str();
                    let at = match record_keys.iter().position(|(c, _)| *c == category) {
                        Some(at) => at,
                        None => {
                            // The batch's keys were resolved once for it (a record sealed on
                            // its own looks its keys up here).
                            let (version, dk) = match ready.data.get(&(tenant, subject, category)) {
                                Some((v, k)) => (*v, Arc::clone(k)),
                                None => self.current_data_key(tenant, subject, category, actor)?,
                            };
                            env.keys.insert(category.to_owned(), version);
                            record_keys.push((
                                category,
                                (
                                    self.schema.category_name(category),
                                    envelope::field_cipher(&env, &dk, category)?,
                                    envelope::mask_cipher(&env, &dk, category)?,
                                ),
                            ));
                            record_keys.len() - 1
                        }
                    };
                    let (shared, rk, mk) = &record_keys[at].1;
                    let sealed = envelope::seal_field(rk, &env, &path, shared, counter, value)?;
                    counter += 1;
                    // The standard masked form, sealed under the category's mask key: it dies
                    // with the data key.
                    let form = match spec.mask.apply(value, Profile::Standard) {
                        Masked::Text(t) => Some(zeroize::Zeroizing::new(t)),
                        Masked::KeyedHash => Some(zeroize::Zeroizing::new(self.keyed_token(
                            keyring,
                            tenant,
                            &place.pattern(),
                            value,
                        ))),
                        Masked::Withheld => None,
                    };
                    let sealed_mask = match form {
                        Some(form) => {
                            let m =
                                envelope::seal_mask(mk, &env, &path, shared, mask_counter, &form)?;
                            mask_counter += 1;
                            Some(m)
                        }
                        None => None,
                    };
                    fields.push((path.clone(), sealed));
                    if let Some(m) = sealed_mask {
                        sealed_masks.push((path.clone(), m));
                    }
                }
            }
            if let Some((index, t)) = indexed {
                let pattern = place.pattern();
                let mut tokens = Tokens::new();
                for (&epoch, (_, active)) in &keyring.index {
                    if *active {
                        let found = match &pattern {
                            Cow::Borrowed(p) => ready.index.get(&(tenant, *p, epoch)),
                            Cow::Owned(_) => None,
                        };
                        let token = match found {
                            Some(key) => Self::token(key, t.expose(), index.bits),
                            None => {
                                let key = self.index_key(keyring, tenant, &pattern, epoch)?;
                                Self::token(&key, t.expose(), index.bits)
                            }
                        };
                        tokens.insert(epoch.to_string(), token);
                    }
                }
                tokens_at.push((path, tokens));
            }
        }
        env.fields = envelope::path_map(fields);
        env.clear = envelope::path_map(clear);
        env.sealed_masks = envelope::path_map(sealed_masks);
        env.index = envelope::path_map(tokens_at);
        env.mac = env.compute_mac(&keyring.envelope_mac);
        Ok(env)
    }

    /// The audit entry of a seal (`kind` `seal` or `reseal`), as its canonical text, written
    /// straight from the envelope: the same text as the [`AuditEntry`](crate::audit::AuditEntry)
    /// with the envelope's ids, every field `sealed` or `clear` and the data key versions in
    /// `detail.keys` would give, without building that entry (which was a fifth of a seal's
    /// cost).
    pub(super) fn seal_entry(env: &Envelope, kind: &str, actor: &str, time: &str) -> String {
        /// The fields of [`AuditEntry`] a seal fills, in its order.
        #[derive(serde::Serialize)]
        struct SealEntry<'a> {
            time: &'a str,
            kind: &'a str,
            actor: &'a str,
            tenant: &'a str,
            record: &'a str,
            subject: &'a str,
            // As `AuditEntry` writes an empty map: not at all.
            #[serde(skip_serializing_if = "Outcomes::is_empty")]
            fields: Outcomes<'a>,
            detail: SealDetail,
        }
        entry_text(
            &SealEntry {
                time,
                kind,
                actor,
                tenant: &env.tenant,
                record: &env.record,
                subject: &env.subject,
                fields: Outcomes(env),
                detail: SealDetail::of(env),
            },
            256 + 40 * (env.fields.len() + env.clear.len()),
        )
    }

    /// A seal's `fields` and `detail` as canonical JSON, for a batch entry
    /// ([`BatchBuilder`](crate::audit::BatchBuilder)): the parts of [`Self::seal_entry`] that
    /// differ from one record of a batch to the next.
    pub(super) fn seal_parts(env: &Envelope) -> (String, String) {
        (Outcomes(env).text(), SealDetail::of(env).text())
    }

    /// The audit entries of a batch's seals: one `seal.batch` entry for each tenant with two
    /// or more records in the batch, listing them in order; a tenant's only record gets its
    /// plain `seal` entry.
    fn seal_entries<'e>(
        sealed: impl Iterator<Item = &'e (Envelope, (Arc<str>, Arc<str>))> + Clone,
        actor: &str,
        time: &str,
    ) -> Vec<String> {
        let mut batches = TenantBatches::new(sealed.clone().map(|(env, _)| env.tenant.as_str()));
        let mut entries = Vec::new();
        for (i, (env, (fields, detail))) in sealed.enumerate() {
            if batches.batched(&env.tenant) {
                batches.push(
                    &env.tenant,
                    i,
                    Some(&env.record),
                    Some(&env.subject),
                    fields,
                    "[]",
                    detail,
                );
            } else {
                entries.push(Self::seal_entry(env, "seal", actor, time));
            }
        }
        let head = AuditEntry::new("seal", actor, time);
        entries.extend(batches.finish(&head).into_iter().map(|(text, _)| text));
        entries
    }

    pub(super) fn keyed_token(
        &self,
        keyring: &Keyring,
        tenant: &str,
        pattern: &str,
        value: &str,
    ) -> String {
        let mac = hmac_sha256(
            &keyring.mask,
            &[&lp(&[
                tenant.as_bytes(),
                pattern.as_bytes(),
                value.as_bytes(),
            ])],
        );
        crypto::hex(&mac[..8])
    }

    /// Normalises, validates and seals a record; refused with the validation report if invalid.
    /// The seal is audited before the envelope is returned.
    pub fn seal(&self, record: CustomerRecord, actor: &str) -> Result<Envelope> {
        check_name("actor", actor)?;
        // One path for one record and many: the subject's missing keys are made together,
        // under one audit entry.
        self.seal_many(vec![record], actor)?
            .pop()
            .unwrap_or_else(|| {
                Err(Error::Internal {
                    message: "sealing returned no envelope".into(),
                })
            })
    }

    /// Seals many records, with one audit transaction for the batch. Each record gets its
    /// envelope or its own error (an invalid record does not stop the others).
    pub fn seal_many(
        &self,
        records: Vec<CustomerRecord>,
        actor: &str,
    ) -> Result<Vec<Result<Envelope>>> {
        check_name("actor", actor)?;
        let _running = BatchRunning::start();
        self.sync_with_store()?;
        let keyring = self.keyring();
        let today = self.clock.today();
        // Validation and sealing are work per record: large batches use every core.
        let checked: Vec<Result<CustomerRecord>> = in_parallel(records, |r| {
            self.schema.check(r, today).map(|(r, _warnings)| r)
        })?;
        // New customers' data keys are made up front, in one transaction for the batch, not
        // one durable commit per key.
        // A record's categories are gathered first (a handful, compared in place), so the
        // batch's set gets one insert per record and category rather than one per field.
        // The blind-index keys of the schema's own fields are found here too, once for each
        // tenant, field and epoch (a custom field's are found as each seal needs them).
        let mut needs = Vec::new();
        let mut indexed: BTreeSet<(&str, &'static str)> = BTreeSet::new();
        let mut categories: Vec<&str> = Vec::new();
        for r in checked.iter().flatten() {
            categories.clear();
            for (place, _) in r.places() {
                let Some(spec) = self.schema.spec_at(&place) else {
                    continue;
                };
                if spec.protection == Protection::Encrypted
                    && !categories.contains(&spec.category.as_str())
                {
                    categories.push(&spec.category);
                }
                if spec.index.is_some()
                    && let Cow::Borrowed(pattern) = place.pattern()
                {
                    indexed.insert((r.tenant.as_str(), pattern));
                }
            }
            for &category in &categories {
                needs.push((r.tenant.as_str(), r.subject_id(), category));
            }
        }
        // In order and each once, as a set would hold them: one sort of a vector, where a
        // tree took an allocation and a dozen string comparisons per insert.
        needs.sort_unstable();
        needs.dedup();
        let mut index = HashMap::default();
        for (tenant, pattern) in indexed {
            for (&epoch, (_, active)) in &keyring.index {
                if *active {
                    let key = self.index_key(&keyring, tenant, pattern, epoch)?;
                    index.insert((tenant, pattern, epoch), key);
                }
            }
        }
        let ready = SealKeys {
            data: self.prepare_data_keys(&keyring, needs, actor)?,
            index,
        };
        // Every seal's salt, drawn in one call. The records are sealed where they are: the
        // batch's keys borrow their names.
        let mut random = crypto::RandomBatch::new(16 * checked.len())?;
        let work = checked
            .iter()
            .map(|r| Ok((r.as_ref().ok(), random.take()?)))
            .collect::<Result<Vec<_>>>()?;
        // Each seal's audit parts are written beside it, while its envelope is still in the
        // cache (written afterwards, a batch's envelopes were read back cold).
        let time = self.now();
        // Most records of a batch have the same paths and key versions, so the same parts:
        // each thread keeps its last ones to share.
        let sealed = in_parallel_with(work, |memo: &mut PartsMemo, (r, salt)| {
            r.map(|r| {
                self.seal_checked(&keyring, r, actor, &ready, salt)
                    .map(|env| {
                        let parts = shared_parts(memo, &env);
                        (env, parts)
                    })
            })
        })?;
        // The batch's keys borrow the records' names: let them go before the records move on.
        drop(ready);
        let entries = Self::seal_entries(sealed.iter().flatten().flatten(), actor, &time);
        let sealed: Vec<Result<Envelope>> = sealed
            .into_iter()
            .zip(checked)
            .map(|(sealed, checked)| match (sealed, checked) {
                (Some(r), _) => r.map(|(env, _)| env),
                // Invalid: its own error, as the schema gave it.
                (None, Err(e)) => Err(e),
                (None, Ok(_)) => Err(Error::Internal {
                    message: "a valid record was not sealed".into(),
                }),
            })
            .collect();
        self.append_texts(&keyring, entries)?;
        Ok(sealed)
    }

    /// Makes sure each (tenant, subject, category) has a current data key: takes the known
    /// ones from the cache, looks the unknown ones up in one read transaction and creates the
    /// missing ones (with their audit entries) in one write transaction. Returns every key the
    /// batch seals under, each resolved once for the batch rather than once per record.
    /// `needs` is sorted, each id once.
    pub(super) fn prepare_data_keys<'a>(
        &self,
        keyring: &Keyring,
        needs: Vec<(&'a str, &'a str, &'a str)>,
        actor: &str,
    ) -> Result<BatchKeys<'a>> {
        let mut ready = BatchKeys::with_capacity_and_hasher(needs.len(), Default::default());
        let mut name = Vec::new();
        // The newest version the handle knows of each, under one lock for the batch.
        let mut known = Vec::new();
        let mut unknown = Vec::new();
        {
            let latest = self
                .keys
                .latest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for id @ (t, s, c) in needs {
                match latest.get(key_name(&mut name, t, s, c, None)) {
                    Some(&v) => known.push((id, v)),
                    None => unknown.push(id),
                }
            }
        }
        // Those versions' keys, as a reveal loads them: from the cache under one lock (not
        // nested in the other), the rest in one read of the store. One seen destroyed since is
        // taken the way a seal on its own takes it: its next version made.
        let loaded = self.load_data_keys(known.iter().map(|&((t, s, c), v)| (t, s, c, v)))?;
        for (id @ (tenant, subject, category), v) in known {
            let key = match loaded.get(&(tenant, subject, category, v)) {
                Some(Some(key)) => (v, Arc::clone(key)),
                _ => self.current_data_key(tenant, subject, category, actor)?,
            };
            ready.insert(id, key);
        }
        let query: Vec<(&str, &str, &str, Option<u32>)> =
            unknown.iter().map(|&(t, s, c)| (t, s, c, None)).collect();
        let rows = if query.is_empty() {
            Vec::new()
        } else {
            self.store.data_keys_batch(&query)?
        };
        if rows.len() != query.len() {
            return Err(Error::Internal {
                message: "the store answered a different number of data-key lookups".into(),
            });
        }
        // The names stay borrowed from the records all the way into the store's rows.
        let mut new_ids = Vec::new();
        for (row, id @ (tenant, subject, category)) in rows.into_iter().zip(unknown) {
            match row {
                Some(r) if r.wrapped.is_some() => {
                    let wrapped = r.wrapped.as_deref().unwrap_or_default();
                    let key = self.unwrap_data_key(
                        tenant,
                        subject,
                        category,
                        r.version,
                        r.kek_version,
                        wrapped,
                    )?;
                    ready.insert(id, (r.version, Arc::new(key)));
                }
                // None yet, or the newest was destroyed: make the next version.
                other => {
                    let version = other.map_or(1, |r| r.version + 1);
                    new_ids.push((tenant, subject, category, version));
                }
            }
        }
        let mut random = crypto::RandomBatch::new(32 * new_ids.len())?;
        let new_keys = new_ids
            .iter()
            .map(|_| SecretKey::generate_from(&mut random))
            .collect::<Result<Vec<_>>>()?;
        let keys = self.store_data_keys(keyring, "key.create", &new_ids, new_keys, actor)?;
        let mut latest = self
            .keys
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut name = Vec::new();
        for ((tenant, subject, category, version), key) in new_ids.into_iter().zip(keys) {
            self.latest_put(
                &mut latest,
                key_name(&mut name, tenant, subject, category, None),
                version,
            );
            ready.insert((tenant, subject, category), (version, key));
        }
        Ok(ready)
    }

    /// Reseals an envelope under the newest data keys (after a data-key rotation); the host
    /// replaces the stored envelope with the result.
    pub fn reseal(&self, envelope: &Envelope, actor: &str) -> Result<Envelope> {
        check_name("actor", actor)?;
        self.sync_with_store()?;
        let keyring = self.keyring();
        envelope.check_mac(&keyring.envelope_mac)?;
        let mut values: Vec<(String, Sensitive)> = Vec::new();
        for (path, f) in &envelope.fields {
            let v = envelope
                .keys
                .get(&*f.category)
                .copied()
                .ok_or_else(|| crypto::integrity("envelope"))?;
            let Some(dk) = self.data_key(&envelope.tenant, &envelope.subject, &f.category, v)?
            else {
                return Err(Error::Shredded {
                    what: format!("field `{path}`"),
                });
            };
            let cipher = envelope::field_cipher(envelope, &dk, &f.category)?;
            values.push((
                path.to_string(),
                envelope::open_field(&cipher, envelope, path, f)?,
            ));
        }
        for (path, v) in &envelope.clear {
            values.push((path.to_string(), v.clone()));
        }
        let record = rebuild_record(envelope, values)?;
        let env = self.seal_one(&keyring, record, actor)?;
        self.append_texts(
            &keyring,
            vec![Self::seal_entry(&env, "reseal", actor, &self.now())],
        )?;
        Ok(env)
    }
}

/// Every field's outcome in a seal's audit entry, in path order: `env.fields` and `env.clear`
/// are each sorted and hold different paths.
struct Outcomes<'a>(&'a Envelope);

impl Outcomes<'_> {
    fn is_empty(&self) -> bool {
        self.0.fields.is_empty() && self.0.clear.is_empty()
    }

    /// Each path with its outcome, in path order.
    fn each(&self, mut f: impl FnMut(&str, &'static str)) {
        let mut sealed = self.0.fields.keys().peekable();
        let mut clear = self.0.clear.keys().peekable();
        loop {
            let (path, outcome) = match (sealed.peek(), clear.peek()) {
                (Some(a), Some(b)) if a <= b => (sealed.next(), "sealed"),
                (Some(_), Some(_)) | (None, Some(_)) => (clear.next(), "clear"),
                (Some(_), None) => (sealed.next(), "sealed"),
                (None, None) => break,
            };
            if let Some(path) = path {
                f(path, outcome);
            }
        }
    }

    /// The canonical JSON that serialising the outcomes gives, written directly: no path of
    /// a record needs escaping, so each is copied as it is (one that would takes serde's
    /// way).
    fn text(&self) -> String {
        let size = 16 + 40 * (self.0.fields.len() + self.0.clear.len());
        let mut map = PlainMap::new(size);
        self.each(|path, outcome| map.entry(path, outcome));
        map.finish().unwrap_or_else(|| entry_text(self, size))
    }
}

impl serde::Serialize for Outcomes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.fields.len() + self.0.clear.len()))?;
        let mut result = Ok(());
        self.each(|path, outcome| {
            if result.is_ok() {
                result = map.serialize_entry(path, outcome);
            }
        });
        result?;
        map.end()
    }
}

/// The audit parts ([`Coffer::seal_parts`]) of the last record a thread of a batch sealed,
/// with what they were written from: the field paths sealed and in clear (the `fields` text)
/// and the data key versions (the `detail`).
type PartsMemo =
    LastWritten<(Vec<PathText>, Vec<PathText>, Vec<(String, u32)>), (Arc<str>, Arc<str>)>;

/// A seal's audit parts, shared with the last record's when they are written from the same.
fn shared_parts(memo: &mut PartsMemo, env: &Envelope) -> (Arc<str>, Arc<str>) {
    fn same<V>(had: &[PathText], now: &PathMap<V>) -> bool {
        had.iter()
            .map(|p| p.as_str())
            .eq(now.keys().map(|p| p.as_str()))
    }
    memo.get(
        |(sealed, clear, versions)| {
            same(sealed, &env.fields)
                && same(clear, &env.clear)
                && versions
                    .iter()
                    .map(|(c, v)| (c.as_str(), *v))
                    .eq(env.keys.iter().map(|(c, v)| (c.as_str(), *v)))
        },
        || {
            let from = (
                env.fields.keys().cloned().collect(),
                env.clear.keys().cloned().collect(),
                env.keys.iter().map(|(c, v)| (c.clone(), *v)).collect(),
            );
            let (fields, detail) = Coffer::seal_parts(env);
            (from, (fields.into(), detail.into()))
        },
    )
}

/// A seal's `detail`: the data key versions it sealed under, as `category:version,…`.
#[derive(serde::Serialize)]
struct SealDetail {
    keys: String,
}

impl SealDetail {
    fn of(env: &Envelope) -> SealDetail {
        let mut keys = String::new();
        for (c, v) in &env.keys {
            push_key_version(&mut keys, c, *v);
        }
        SealDetail { keys }
    }

    /// `{"keys":"…"}` as serialising it gives, written directly when the text needs no
    /// escaping (category names never do).
    fn text(&self) -> String {
        let mut map = PlainMap::new(self.keys.len() + 12);
        map.entry("keys", &self.keys);
        map.finish().unwrap_or_else(|| entry_text(self, 64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts a thread shares are the parts each record would have written, whatever came
    /// before it: the same record again, one more path, another key version, another
    /// category, no fields at all; and they are shared only when alike.
    #[test]
    fn shared_parts_are_each_records_own() {
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../../../../tests/vectors/envelopes.json")).unwrap();
        let mut envelopes = Vec::new();
        for case in vectors["cases"].as_array().unwrap() {
            let env = Envelope::from_json(case["envelope"].as_str().unwrap()).unwrap();
            let mut more = env.clone();
            more.clear.insert("notes".into(), Sensitive::new("v"));
            let mut bumped = env.clone();
            if let Some((_, v)) = bumped.keys.iter_mut().next() {
                *v += 1;
            }
            let mut renamed = env.clone();
            renamed.keys.insert("other".into(), 1);
            let mut empty = env.clone();
            empty.fields.clear();
            empty.clear.clear();
            empty.keys.clear();
            envelopes.extend([
                env.clone(),
                env.clone(),
                more,
                env.clone(),
                bumped,
                renamed,
                empty.clone(),
                empty,
                env,
            ]);
        }
        let mut memo = PartsMemo::default();
        let mut last: Option<(Arc<str>, Arc<str>)> = None;
        for (i, env) in envelopes.iter().enumerate() {
            let parts = shared_parts(&mut memo, env);
            let (fields, detail) = Coffer::seal_parts(env);
            assert_eq!(
                (&*parts.0, &*parts.1),
                (fields.as_str(), detail.as_str()),
                "{i}"
            );
            if let Some(prev) = &last {
                let alike = i > 0 && {
                    let before = &envelopes[i - 1];
                    before.fields.keys().eq(env.fields.keys())
                        && before.clear.keys().eq(env.clear.keys())
                        && before.keys == env.keys
                };
                assert_eq!(Arc::ptr_eq(&prev.0, &parts.0), alike, "{i}");
            }
            last = Some(parts);
        }
        assert!(envelopes.len() >= 27);
    }
}
