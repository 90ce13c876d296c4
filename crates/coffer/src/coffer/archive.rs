//! Archive bundles: envelopes with the keys they need, re-wrapped under an archive key the host
//! keeps, under a signed manifest; verifiable offline and restorable into a fresh store.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Access, Coffer, DataKeyId, DataKeyRef, check_name};
use crate::crypto::{self, SecretKey, b64url, from_b64url, lp};
use crate::envelope::{self, DataKey, Envelope, PathMap, Tokens};
use crate::error::{Error, Result};
use crate::policy::{Action, FieldEffect, Request};
use crate::record::FieldPath;

/// The format this build writes: envelopes and keys under a signed manifest, without the
/// store's envelope MAC key (the signature covers the envelopes).
const ARCHIVE_FORMAT: &str = "coffer-archive/2";
/// The first format, still read: it carried the store's envelope MAC key, wrapped under the
/// archive key, which let whoever held an archive key forge envelopes for that store.
const ARCHIVE_FORMAT_V1: &str = "coffer-archive/1";

/// One data key in a bundle, wrapped under the archive key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedKey {
    /// The tenant.
    pub tenant: String,
    /// The subject.
    pub subject: String,
    /// The retention category.
    pub category: String,
    /// The version.
    pub version: u32,
    /// The key, wrapped under the archive key (b64url).
    pub wrapped: String,
}

/// An archive bundle. Its `signature` covers everything else; `manifest_sha256` is the SHA-256
/// of the canonical content, for quick comparison.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveBundle {
    /// `coffer-archive/2` (`coffer-archive/1` is still read).
    pub format: String,
    /// When it was made.
    pub created: String,
    /// The envelopes (their JSON).
    pub envelopes: Vec<String>,
    /// The data keys they need.
    pub keys: Vec<ArchivedKey>,
    /// Only in `coffer-archive/1` bundles: the envelope MAC key of the exporting store, wrapped
    /// under the archive key (b64url). No longer written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope_mac_key: Option<String>,
    /// SHA-256 of the canonical content.
    pub manifest_sha256: String,
    /// The exporting store's Ed25519 public key (b64url).
    pub public_key: String,
    /// The signature (b64url).
    #[serde(default)]
    pub signature: String,
}

/// What verifying a bundle found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveCheck {
    /// Envelopes in the bundle.
    pub envelopes: usize,
    /// Keys in the bundle.
    pub keys: usize,
    /// Whether every key was unwrapped and every field sealed under a bundled key opened with
    /// the archive key (only when it was given).
    pub contents_checked: bool,
    /// Categories of envelopes whose key was destroyed before the export: they stay shredded.
    pub shredded: usize,
}

fn key_aad(k: &ArchivedKey) -> Vec<u8> {
    lp(&[
        b"coffer/v1/archive-key",
        k.tenant.as_bytes(),
        k.subject.as_bytes(),
        k.category.as_bytes(),
        &k.version.to_be_bytes(),
    ])
}

const MAC_KEY_AAD: &[u8] = b"coffer/v1/archive-envelope-mac";

impl ArchiveBundle {
    fn content(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.signature.clear();
        unsigned.manifest_sha256.clear();
        let body = serde_json::to_string(&unsigned).unwrap_or_default();
        lp(&[self.format.as_bytes(), body.as_bytes()])
    }

    /// The bundle as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a bundle from JSON.
    pub fn from_json(text: &str) -> Result<ArchiveBundle> {
        serde_json::from_str(text).map_err(|e| crate::record::json_error("archive bundle", &e, ""))
    }

    /// Verifies a bundle offline: its format, its manifest hash and its signature against the
    /// exporting store's trusted public key; with the archive key, also that every key unwraps
    /// and every envelope's MAC holds.
    pub fn verify(
        &self,
        trusted_public_key: &[u8],
        archive_key: Option<&[u8]>,
    ) -> Result<ArchiveCheck> {
        if self.format != ARCHIVE_FORMAT && self.format != ARCHIVE_FORMAT_V1 {
            return Err(Error::UnsupportedVersion {
                what: format!(
                    "archive format; this build reads {ARCHIVE_FORMAT} and {ARCHIVE_FORMAT_V1}"
                ),
            });
        }
        if from_b64url(&self.public_key).as_deref() != Some(trusted_public_key) {
            return Err(crypto::integrity("archive bundle (signed by another key)"));
        }
        let content = self.content();
        if crypto::sha256_hex(&content) != self.manifest_sha256 {
            return Err(crypto::integrity("archive bundle manifest"));
        }
        let sig =
            from_b64url(&self.signature).ok_or_else(|| crypto::integrity("archive bundle"))?;
        crypto::verify_signature(trusted_public_key, &content, &sig)?;
        let mut check = ArchiveCheck {
            envelopes: self.envelopes.len(),
            keys: self.keys.len(),
            contents_checked: false,
            shredded: 0,
        };
        if let Some(ak) = archive_key {
            let (mac_key, keys) = self.open_keys(&SecretKey::from_bytes(ak)?)?;
            for text in &self.envelopes {
                let env = Envelope::from_json(text)?;
                if let Some(mac_key) = &mac_key {
                    env.check_mac(&crypto::MacKey::new(mac_key.clone()))?;
                }
                for (c, v) in &env.keys {
                    // A key destroyed before the export is not in the bundle, by design.
                    let id = (env.tenant.clone(), env.subject.clone(), c.clone(), *v);
                    let Some(dk) = keys.get(&id) else {
                        check.shredded += 1;
                        continue;
                    };
                    // Every field under the key opens (its tag holds): the signature covers
                    // the envelopes' text, this covers the keys that go with them.
                    let cipher = envelope::field_cipher(&env, &DataKey::new(dk.clone()), c)?;
                    for (path, f) in env.fields.iter().filter(|(_, f)| *f.category == **c) {
                        envelope::open_field(&cipher, &env, path, f)?;
                    }
                }
            }
            check.contents_checked = true;
        }
        Ok(check)
    }

    #[allow(clippy::type_complexity)]
    fn open_keys(
        &self,
        archive_key: &SecretKey,
    ) -> Result<(
        Option<SecretKey>,
        BTreeMap<(String, String, String, u32), SecretKey>,
    )> {
        let mac_key = match &self.envelope_mac_key {
            None => None,
            Some(text) => {
                let wrapped =
                    from_b64url(text).ok_or_else(|| crypto::integrity("archive bundle"))?;
                Some(SecretKey::from_bytes(&crypto::unwrap(
                    archive_key,
                    MAC_KEY_AAD,
                    &wrapped,
                    "archive envelope key",
                )?)?)
            }
        };
        let mut keys = BTreeMap::new();
        for k in &self.keys {
            let w = from_b64url(&k.wrapped).ok_or_else(|| crypto::integrity("archive bundle"))?;
            let raw = crypto::unwrap(archive_key, &key_aad(k), &w, "archived data key")?;
            keys.insert(
                (
                    k.tenant.clone(),
                    k.subject.clone(),
                    k.category.clone(),
                    k.version,
                ),
                SecretKey::from_bytes(&raw)?,
            );
        }
        Ok((mac_key, keys))
    }
}

impl Coffer {
    /// Exports envelopes with the data keys they need, re-wrapped under `archive_key` (32 bytes,
    /// kept by the host), under a manifest signed with this store's Ed25519 key. A key already
    /// destroyed is not exported: its fields stay shredded in the archive too.
    ///
    /// An export hands over every field in a form anyone with the archive key can read, so the
    /// policy must allow `access` the `export` action on every field of every envelope (in the
    /// principal's tenant, for its purpose, honouring erasure restrictions); otherwise nothing
    /// is exported ([`Error::AccessDenied`], naming the first field refused). One audit entry
    /// per data subject records the export, so subject and incident reports see it.
    pub fn archive_export(
        &self,
        envelopes: &[Envelope],
        archive_key: &[u8],
        access: &Access,
    ) -> Result<ArchiveBundle> {
        super::check_access(access)?;
        let ak = SecretKey::from_bytes(archive_key)?;
        let policy = self.require_policy()?;
        self.request_time(access)?;
        self.sync_with_store()?;
        let keyring = self.keyring();
        let mut needed = BTreeSet::new();
        for env in envelopes {
            env.check_mac(&keyring.envelope_mac)?;
            for (c, v) in &env.keys {
                needed.insert((env.tenant.clone(), env.subject.clone(), c.clone(), *v));
            }
        }
        self.authorize_export(&policy, envelopes, access)?;
        let mut keys = Vec::new();
        for (tenant, subject, category, version) in needed {
            if let Some(dk) = self.data_key(&tenant, &subject, &category, version)? {
                let mut k = ArchivedKey {
                    tenant,
                    subject,
                    category,
                    version,
                    wrapped: String::new(),
                };
                k.wrapped = b64url(&crypto::wrap(&ak, &key_aad(&k), dk.expose())?);
                keys.push(k);
            }
        }
        let mut bundle = ArchiveBundle {
            format: ARCHIVE_FORMAT.into(),
            created: self.now(),
            envelopes: envelopes.iter().map(|e| e.to_json().to_string()).collect(),
            keys,
            envelope_mac_key: None,
            manifest_sha256: String::new(),
            public_key: b64url(&keyring.signing.public_key()),
            signature: String::new(),
        };
        let content = bundle.content();
        bundle.manifest_sha256 = crypto::sha256_hex(&content);
        bundle.signature = b64url(&keyring.signing.sign(&content));
        // One entry per subject: which records and fields left, to whom, for what.
        let mut by_subject: BTreeMap<(&str, &str), Vec<&Envelope>> = BTreeMap::new();
        for env in envelopes {
            by_subject
                .entry((env.tenant.as_str(), env.subject.as_str()))
                .or_default()
                .push(env);
        }
        let entries = by_subject
            .into_iter()
            .map(|((tenant, subject), envs)| {
                let mut e = self.entry("archive.export", &access.principal.id);
                e.tenant = Some(tenant.to_owned());
                e.subject = Some(subject.to_owned());
                if let [one] = envs.as_slice() {
                    e.record = Some(one.record.clone());
                }
                e.purpose = Some(access.purpose.clone());
                e.policy_version = Some(policy.version().to_owned());
                for env in &envs {
                    for p in env.paths() {
                        e.fields.insert(p, "export".into());
                    }
                }
                e.detail
                    .insert("roles".into(), access.principal.roles.join(","));
                e.detail.insert(
                    "records".into(),
                    envs.iter()
                        .map(|e| e.record.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                );
                e.detail
                    .insert("manifest".into(), bundle.manifest_sha256.clone());
                if let Some(c) = &access.context.client {
                    e.detail.insert("client".into(), c.clone());
                }
                e
            })
            .collect();
        self.append(entries)?;
        Ok(bundle)
    }

    /// Refuses an export unless the policy allows `export` in clear on every field of every
    /// envelope.
    fn authorize_export(
        &self,
        policy: &crate::policy::Policy,
        envelopes: &[Envelope],
        access: &Access,
    ) -> Result<()> {
        let subjects: BTreeSet<(&str, &str)> = envelopes
            .iter()
            .map(|e| (e.tenant.as_str(), e.subject.as_str()))
            .collect();
        let mut restrictions = None;
        self.store.retention_read(&mut |tx| {
            restrictions = Self::restrictions_many(tx, &subjects).ok();
            Ok(())
        })?;
        let Some(restrictions) = restrictions else {
            return Err(Error::AccessDenied {
                reason: "export: the erasure restrictions could not be read".into(),
            });
        };
        for env in envelopes {
            let mut facts = access.record.clone();
            facts.tenant = env.tenant.clone();
            facts.kind = Some(env.kind);
            facts.subject = Some(env.subject.clone());
            if let Some(r) = restrictions
                .get(env.tenant.as_str())
                .and_then(|t| t.get(env.subject.as_str()))
            {
                facts
                    .restricted
                    .extend(r.iter().map(|(c, p)| (c.clone(), p.clone())));
            }
            let mut context = access.context.clone();
            context.time.get_or_insert(self.clock.now());
            let req = Request {
                principal: access.principal.clone(),
                action: Action::Export,
                purpose: access.purpose.clone(),
                record: facts,
                context,
            };
            let decision = policy.decide(&req);
            for path in env.paths() {
                let fp = FieldPath::parse(&path)?;
                let allowed = policy
                    .slot_for(&fp)
                    .and_then(|s| decision.slot(s))
                    .map(|f| (f.effect == FieldEffect::Reveal, f.reason.to_string()));
                match allowed {
                    Some((true, _)) => {}
                    Some((false, reason)) => {
                        return Err(Error::AccessDenied {
                            reason: format!(
                                "export of `{path}` of record {}: {reason}; nothing was exported",
                                env.record
                            ),
                        });
                    }
                    None => {
                        return Err(Error::AccessDenied {
                            reason: format!(
                                "export of `{path}`: not a field of the policy's schema; nothing was exported"
                            ),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Restores a bundle into this store: verifies it against the exporting store's trusted
    /// public key, imports its data keys (the same key material, wrapped under this store's
    /// KEK), and returns the envelopes MAC'd by this store with their blind-index tokens
    /// recomputed for its index keys. The host stores the returned envelopes.
    pub fn archive_restore(
        &self,
        bundle: &ArchiveBundle,
        archive_key: &[u8],
        trusted_public_key: &[u8],
        actor: &str,
    ) -> Result<Vec<Envelope>> {
        check_name("actor", actor)?;
        bundle.verify(trusted_public_key, Some(archive_key))?;
        let (old_mac, mut keys) = bundle.open_keys(&SecretKey::from_bytes(archive_key)?)?;
        self.sync_with_store()?;
        let keyring = self.keyring();
        // Keys this store already holds under the same id: the same key is not imported again;
        // a different one is a conflict (nothing is restored, and the local key is never
        // silently kept in place of the archived one); a destroyed one stays destroyed (an
        // archive never brings shredded data back).
        let mut copies = Vec::new();
        let mut destroyed = Vec::new();
        for (id, k) in &keys {
            let (tenant, subject, category, version) = id;
            match self
                .store
                .data_key(tenant, subject, category, Some(*version))?
            {
                None => copies.push((id.clone(), k.clone())),
                Some(row) => match row.wrapped {
                    None => destroyed.push(id.clone()),
                    Some(w) => {
                        let local = self.unwrap_data_key(
                            tenant,
                            subject,
                            category,
                            *version,
                            row.kek_version,
                            &w,
                        )?;
                        let probe = crypto::hmac_sha256(&local, &[b"coffer/v1/key-compare"]);
                        if !crypto::hmac_verify(k, &[b"coffer/v1/key-compare"], &probe) {
                            return Err(crypto::integrity(&format!(
                                "archive bundle: this store holds a different key for {tenant}/{subject} {category} v{version}; nothing was restored"
                            )));
                        }
                    }
                },
            }
        }
        // Nor are the destroyed keys used to recompute blind-index tokens below.
        let kept_destroyed = destroyed.len();
        for id in &destroyed {
            keys.remove(id);
        }
        // The same key material, wrapped under this store's KEK; one transaction for them all.
        let imported = copies.len();
        if !copies.is_empty() {
            let (ids, secrets): (Vec<DataKeyId>, Vec<SecretKey>) = copies.into_iter().unzip();
            let ids: Vec<DataKeyRef<'_>> = ids
                .iter()
                .map(|(t, s, c, v)| (t.as_str(), s.as_str(), c.as_str(), *v))
                .collect();
            self.store_data_keys(&keyring, "key.import", &ids, secrets, actor)?;
        }
        let mut out = Vec::with_capacity(bundle.envelopes.len());
        for text in &bundle.envelopes {
            let mut env = Envelope::from_json(text)?;
            // A first-format bundle carries the old store's MAC key; the signature checked
            // above covers the envelopes of both formats.
            if let Some(old_mac) = &old_mac {
                env.check_mac(&crypto::MacKey::new(old_mac.clone()))?;
            }
            // New index tokens: the same transform and width, under this store's index keys.
            let mut index = PathMap::new();
            for path in env.index.keys() {
                let fp = FieldPath::parse(path)?;
                let Some(spec) = self.schema.spec_for(&fp) else {
                    continue;
                };
                let Some(ix) = spec.index else { continue };
                let value = if let Some(v) = env.clear.get(path.as_str()) {
                    Some(v.clone())
                } else if let Some(f) = env.fields.get(path.as_str()) {
                    let v = env
                        .keys
                        .get(&*f.category)
                        .copied()
                        .ok_or_else(|| crypto::integrity("envelope"))?;
                    match keys.get(&(
                        env.tenant.clone(),
                        env.subject.clone(),
                        f.category.to_string(),
                        v,
                    )) {
                        Some(dk) => Some(envelope::open_field(
                            &*envelope::field_cipher(&env, &DataKey::new(dk.clone()), &f.category)?,
                            &env,
                            path,
                            f,
                        )?),
                        None => None,
                    }
                } else {
                    None
                };
                let Some(value) = value else { continue };
                let Some(t) = ix.transform.apply(value.expose()) else {
                    continue;
                };
                let pattern = fp.pattern_key();
                let mut tokens = Tokens::new();
                for (&epoch, (_, active)) in &keyring.index {
                    if *active {
                        let key = self.index_key(&keyring, &env.tenant, &pattern, epoch)?;
                        tokens.insert(epoch.to_string(), Self::token(&key, t.expose(), ix.bits));
                    }
                }
                index.insert(path.clone(), tokens);
            }
            env.index = index;
            env.mac = env.compute_mac(&keyring.envelope_mac);
            out.push(env);
        }
        let mut e = self.entry("archive.restore", actor);
        e.detail.insert("envelopes".into(), out.len().to_string());
        e.detail.insert("keys".into(), imported.to_string());
        if kept_destroyed > 0 {
            e.detail
                .insert("destroyed_kept".into(), kept_destroyed.to_string());
        }
        e.detail
            .insert("manifest".into(), bundle.manifest_sha256.clone());
        self.append(vec![e])?;
        Ok(out)
    }
}
