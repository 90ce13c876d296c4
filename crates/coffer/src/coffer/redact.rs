//! Redaction: what an envelope still carries of a destroyed category, removed.
//!
//! Destroying a category's key makes its ciphertexts and (since envelope version 2) its masked
//! forms unreadable, but they stay in the host's copy of the envelope, and so do the category's
//! blind-index tokens, which still link the customer's rows to a value for anyone holding the
//! index key. A redaction returns the envelope without them, lists the fields it removed in
//! the envelope itself (they read `shredded`), and names the index columns the host must clear.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;

use super::Coffer;
use crate::crypto;
use crate::envelope::{self, Envelope};
use crate::error::{Error, Result};

/// What a redaction did to one envelope.
#[derive(Clone, Debug)]
pub struct Redaction {
    /// The envelope to store in place of the old one (version 2, its MAC recomputed).
    pub envelope: Envelope,
    /// Whether it differs from the old one: something was removed, or a version 1 envelope
    /// was rewritten with its masked forms sealed.
    pub changed: bool,
    /// The retention categories whose key is destroyed: their ciphertexts, masked forms and
    /// tokens were removed.
    pub shredded_categories: Vec<String>,
    /// The field paths whose blind-index tokens were removed: clear the host's index columns
    /// for them (e.g. `id_documents[0].number`).
    pub clear_index: Vec<String>,
}

/// A redaction's summary, without the envelope: what the JSON forms carry beside it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct RedactionSummary<'a> {
    pub(crate) record: &'a str,
    pub(crate) changed: bool,
    pub(crate) shredded_categories: &'a [String],
    pub(crate) clear_index: &'a [String],
}

impl Redaction {
    pub(crate) fn summary(&self) -> RedactionSummary<'_> {
        RedactionSummary {
            record: self.envelope.record(),
            changed: self.changed,
            shredded_categories: &self.shredded_categories,
            clear_index: &self.clear_index,
        }
    }
}

impl Coffer {
    /// Redacts one envelope (see [`Coffer::redact_many`]).
    pub fn redact(&self, envelope: &Envelope, actor: &str) -> Result<Redaction> {
        self.redact_many(std::slice::from_ref(envelope), actor)?
            .pop()
            .ok_or_else(|| Error::Internal {
                message: "a redaction returned nothing".into(),
            })
    }

    /// Redacts envelopes: for every retention category whose data key this store records as
    /// destroyed, the sealed fields, sealed masked forms and blind-index tokens are removed
    /// (the removed paths are kept in the envelope's `shredded` list and read `shredded`), and
    /// a version 1 envelope is rewritten as version 2 (its clear masked forms sealed under
    /// their live category's key). A key the store does not have at all is
    /// [`Error::KeyNotFound`], nothing redacted: only a recorded destruction removes data.
    /// Each envelope's MAC is checked first. One `redact` audit entry (counts, no values).
    pub fn redact_many(&self, envelopes: &[Envelope], actor: &str) -> Result<Vec<Redaction>> {
        super::check_name("actor", actor)?;
        self.sync_with_store()?;
        let keyring = self.keyring();
        for env in envelopes {
            env.check_mac(&keyring.envelope_mac)?;
        }
        // The state of every key the envelopes name, in one read.
        let ids: BTreeSet<(String, String, String, u32)> = envelopes
            .iter()
            .flat_map(|e| {
                e.keys
                    .iter()
                    .map(|(c, v)| (e.tenant.clone(), e.subject.clone(), c.clone(), *v))
            })
            .collect();
        let query: Vec<(&str, &str, &str, Option<u32>)> = ids
            .iter()
            .map(|(t, s, c, v)| (t.as_str(), s.as_str(), c.as_str(), Some(*v)))
            .collect();
        let mut destroyed: BTreeSet<(String, String, String, u32)> = BTreeSet::new();
        for (id, row) in ids.iter().zip(self.store.data_keys_batch(&query)?) {
            match row {
                None => {
                    return Err(Error::KeyNotFound {
                        what: format!(
                            "data key {}:{} of a subject of tenant {} (nothing was redacted: \
                             only a destruction this store recorded removes data)",
                            id.2, id.3, id.0
                        ),
                    });
                }
                Some(r) if r.wrapped.is_none() => {
                    destroyed.insert(id.clone());
                }
                Some(_) => {}
            }
        }
        let mut out = Vec::with_capacity(envelopes.len());
        let mut changed_count = 0usize;
        let mut shredded_fields = 0usize;
        for env in envelopes {
            let dead: BTreeSet<&str> = env
                .keys
                .iter()
                .filter(|(c, v)| {
                    destroyed.contains(&(
                        env.tenant.clone(),
                        env.subject.clone(),
                        (*c).clone(),
                        **v,
                    ))
                })
                .map(|(c, _)| c.as_str())
                .collect();
            let mut new = env.clone();
            let mut clear_index = Vec::new();
            let paths: Vec<(String, String)> = new
                .fields
                .iter()
                .filter(|(_, f)| dead.contains(&*f.category))
                .map(|(p, f)| (p.to_string(), f.category.to_string()))
                .collect();
            for (path, category) in paths {
                new.fields.remove(path.as_str());
                new.masked.remove(&path);
                if new.index.remove(path.as_str()).is_some() {
                    clear_index.push(path.clone());
                }
                new.shredded.insert(path, category);
                shredded_fields += 1;
            }
            new.sealed_masks.retain(|_, m| !dead.contains(&*m.category));
            let upgraded = new.version == 1;
            if upgraded {
                self.seal_v1_masks(&mut new)?;
            }
            let changed = upgraded
                || !clear_index.is_empty()
                || new.shredded != env.shredded
                || new.sealed_masks.len() != env.sealed_masks.len();
            if changed {
                new.mac = new.compute_mac(&keyring.envelope_mac);
                changed_count += 1;
            }
            out.push(Redaction {
                envelope: if changed { new } else { env.clone() },
                changed,
                shredded_categories: dead.iter().map(|c| (*c).to_owned()).collect(),
                clear_index,
            });
        }
        let mut e = self.entry("redact", actor);
        e.detail
            .insert("envelopes".into(), envelopes.len().to_string());
        e.detail.insert("changed".into(), changed_count.to_string());
        e.detail
            .insert("shredded_fields".into(), shredded_fields.to_string());
        self.append(vec![e])?;
        Ok(out)
    }

    /// Rewrites a version 1 envelope as version 2: its clear masked forms sealed under their
    /// (live) category's mask key.
    fn seal_v1_masks(&self, env: &mut Envelope) -> Result<()> {
        let clear = std::mem::take(&mut env.masked);
        let mut ciphers: BTreeMap<Arc<str>, Arc<crypto::AeadKey>> = BTreeMap::new();
        // The fields keep their version 1 ciphers, which version 2 shares: the envelope becomes
        // version 2 (not the newest), and its masked forms are sealed as version 2 seals them.
        env.version = 2;
        let mut counter = 0u32;
        for (path, form) in clear {
            let form = zeroize::Zeroizing::new(form);
            let Some(category) = env.fields.get(path.as_str()).map(|f| f.category.clone()) else {
                continue;
            };
            if !ciphers.contains_key(&category) {
                let version = env
                    .keys
                    .get(&*category)
                    .copied()
                    .ok_or_else(|| crypto::integrity("envelope"))?;
                let key = self
                    .data_key(&env.tenant, &env.subject, &category, version)?
                    .ok_or_else(|| Error::KeyNotFound {
                        what: format!("data key {category}:{version}"),
                    })?;
                ciphers.insert(
                    category.clone(),
                    envelope::mask_cipher(env, &key, &category)?,
                );
            }
            let sealed =
                envelope::seal_mask(&ciphers[&category], env, &path, &category, counter, &form)?;
            env.sealed_masks.insert(path.into(), sealed);
            counter += 1;
        }
        Ok(())
    }
}
