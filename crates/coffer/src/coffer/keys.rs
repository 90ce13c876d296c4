//! The key hierarchy: the keyring (KEKs, index keys, the MAC, mask and signing keys, wrapped
//! under the master key), data keys (wrapped under a KEK, cached, created on first use),
//! blind-index keys and tokens, and their rotation and retirement. The state is one type,
//! [`KeyManager`]; the operations that also audit, or follow other processes' changes, are
//! methods of the facade that hold it.

use std::sync::atomic::AtomicU64;

use super::*;
use crate::audit::TenantBatches;

/// The keyring, unwrapped: every key the master key wraps, by kind and version.
pub(super) struct Keyring {
    /// Key-encryption keys by version, prepared for AES-GCM once per load (they wrap and
    /// unwrap every data key).
    pub(super) keks: BTreeMap<u32, crypto::AeadKey>,
    /// Index root keys by epoch, with whether the epoch is still written.
    pub(super) index: BTreeMap<u32, (SecretKey, bool)>,
    pub(super) audit_mac: MacKey,
    pub(super) envelope_mac: MacKey,
    pub(super) mask: SecretKey,
    pub(super) signing: SigningKey,
}

impl Keyring {
    /// The newest KEK (a keyring always has one: loading refuses a keyring without).
    pub(super) fn current_kek(&self) -> Result<(u32, &crypto::AeadKey)> {
        self.keks
            .iter()
            .next_back()
            .map(|(v, k)| (*v, k))
            .ok_or_else(|| Error::KeyNotFound {
                what: "the keyring has no key-encryption key".into(),
            })
    }
}

pub(super) fn keyring_aad(kind: &str, version: u32) -> Vec<u8> {
    lp(&[
        b"coffer/v1/keyring",
        kind.as_bytes(),
        &version.to_be_bytes(),
    ])
}

pub(super) fn data_key_aad(
    tenant: &str,
    subject: &str,
    category: &str,
    version: u32,
    kek_version: u32,
) -> Vec<u8> {
    lp(&[
        b"coffer/v1/data-key",
        tenant.as_bytes(),
        subject.as_bytes(),
        category.as_bytes(),
        &version.to_be_bytes(),
        &kek_version.to_be_bytes(),
    ])
}

pub(super) const KEYRING_KINDS: [&str; 5] = ["kek", "index", "audit_mac", "envelope_mac", "mask"];

/// Changes when a key is added to or deleted from the keyring or an index epoch is retired, not
/// when the keyring is rewrapped under a new master key: rows, active rows and the sum of
/// versions (`store::signature_of`). The store computes the same from its table
/// ([`crate::store::RetentionTx::keyring_signature`]).
pub(super) fn keyring_signature(rows: &[KeyringRow]) -> u64 {
    let active = rows.iter().filter(|r| r.state == "active").count() as u64;
    let versions = rows.iter().map(|r| u64::from(r.version)).sum();
    crate::store::signature_of(rows.len() as u64, active, versions)
}

pub(super) fn new_keyring(master: &MasterKey, now: &str) -> Result<(Vec<KeyringRow>, Keyring)> {
    let mut rows = Vec::new();
    let mut keys = HashMap::default();
    for kind in KEYRING_KINDS {
        let k = SecretKey::generate()?;
        rows.push(KeyringRow {
            kind: kind.into(),
            version: 1,
            wrapped: crypto::wrap(&master.0, &keyring_aad(kind, 1), k.expose())?,
            created: now.into(),
            state: "active".into(),
        });
        keys.insert(kind, k);
    }
    let signing = SigningKey::generate()?;
    rows.push(KeyringRow {
        kind: "signing".into(),
        version: 1,
        wrapped: crypto::wrap(&master.0, &keyring_aad("signing", 1), signing.pkcs8())?,
        created: now.into(),
        state: "active".into(),
    });
    let take = |keys: &mut HashMap<&str, SecretKey>, k: &str| {
        keys.remove(k).ok_or_else(|| Error::Internal {
            message: "keyring".into(),
        })
    };
    let keyring = Keyring {
        keks: BTreeMap::from([(1, crypto::AeadKey::new(&take(&mut keys, "kek")?)?)]),
        index: BTreeMap::from([(1, (take(&mut keys, "index")?, true))]),
        audit_mac: MacKey::new(take(&mut keys, "audit_mac")?),
        envelope_mac: MacKey::new(take(&mut keys, "envelope_mac")?),
        mask: take(&mut keys, "mask")?,
        signing,
    };
    Ok((rows, keyring))
}

pub(super) fn load_keyring(master: &MasterKey, rows: &[KeyringRow]) -> Result<Keyring> {
    let mut keks = BTreeMap::new();
    let mut index = BTreeMap::new();
    let (mut audit_mac, mut envelope_mac, mut mask, mut signing) = (None, None, None, None);
    for (i, r) in rows.iter().enumerate() {
        let raw = match crypto::unwrap(
            &master.0,
            &keyring_aad(&r.kind, r.version),
            &r.wrapped,
            "keyring",
        ) {
            Ok(raw) => raw,
            // The first row that does not open means the wrong master key; a later one, a
            // damaged keyring.
            Err(_) if i == 0 => return Err(Error::WrongMasterKey),
            Err(e) => return Err(e),
        };
        match r.kind.as_str() {
            "kek" => {
                keks.insert(
                    r.version,
                    crypto::AeadKey::new(&SecretKey::from_bytes(&raw)?)?,
                );
            }
            "index" => {
                index.insert(
                    r.version,
                    (SecretKey::from_bytes(&raw)?, r.state == "active"),
                );
            }
            "audit_mac" => audit_mac = Some(SecretKey::from_bytes(&raw)?),
            "envelope_mac" => envelope_mac = Some(SecretKey::from_bytes(&raw)?),
            "mask" => mask = Some(SecretKey::from_bytes(&raw)?),
            "signing" => signing = Some(SigningKey::from_pkcs8(&raw)?),
            _ => {}
        }
    }
    let missing = |what: &str| Error::KeyNotFound {
        what: format!("the keyring has no {what} key"),
    };
    if keks.is_empty() {
        return Err(missing("key-encryption"));
    }
    Ok(Keyring {
        keks,
        index,
        audit_mac: MacKey::new(audit_mac.ok_or_else(|| missing("audit"))?),
        envelope_mac: MacKey::new(envelope_mac.ok_or_else(|| missing("envelope"))?),
        mask: mask.ok_or_else(|| missing("mask"))?,
        signing: signing.ok_or_else(|| missing("signing"))?,
    })
}

/// The key hierarchy as one handle holds it: the master key, the unwrapped keyring, the caches
/// of unwrapped data keys, newest versions and blind-index keys, and what they were last
/// checked against in the store. The caches are only ever trusted between two reads of the
/// store's change token (`Coffer::sync_with_store`): a destruction, rotation or retirement by
/// any process empties or reloads them before the next use.
pub(super) struct KeyManager {
    pub(super) master: RwLock<MasterKey>,
    pub(super) keyring: RwLock<Arc<Keyring>>,
    /// Unwrapped data keys by [`key_name`] with the version.
    pub(super) data_keys: Mutex<HashMap<KeyName, Option<Arc<DataKey>>>>,
    /// The newest version of each (tenant, subject, category), by [`key_name`] without one.
    pub(super) latest: Mutex<HashMap<KeyName, u32>>,
    /// The store's destruction count when the two caches above were last checked against it.
    pub(super) destructions_seen: AtomicU64,
    /// The keyring's signature (see `keyring_signature`) when it was last loaded.
    pub(super) keyring_seen: AtomicU64,
    /// The store's change token when the counters above were last read (`u64::MAX`: never).
    pub(super) data_version_seen: AtomicU64,
    pub(super) index_keys: Mutex<IndexKeys>,
    /// How many unwrapped data keys the cache keeps at most.
    pub(super) cache_capacity: usize,
}

impl KeyManager {
    pub(super) fn new(
        master: MasterKey,
        keyring: Keyring,
        signature: u64,
        cache_capacity: usize,
    ) -> KeyManager {
        KeyManager {
            master: RwLock::new(master),
            keyring: RwLock::new(Arc::new(keyring)),
            data_keys: Mutex::new(HashMap::default()),
            latest: Mutex::new(HashMap::default()),
            destructions_seen: AtomicU64::new(0),
            keyring_seen: AtomicU64::new(signature),
            data_version_seen: AtomicU64::new(u64::MAX),
            index_keys: Mutex::new(IndexKeys::default()),
            cache_capacity: cache_capacity.max(16),
        }
    }
}

/// Blind-index keys by tenant, field pattern and epoch, prepared for HMAC: nested so that a
/// seal or search looks its keys up by `&str` (a tuple of `String`s had to be built for every
/// token), and each key's HMAC state is prepared once rather than for every token.
#[derive(Default)]
pub(super) struct IndexKeys {
    by_tenant: HashMap<String, HashMap<String, EpochKeys>>,
    len: usize,
}

/// One field pattern's index keys, by epoch (a keyring has one epoch or a few).
type EpochKeys = Vec<(u32, Arc<MacKey>)>;

impl IndexKeys {
    pub(super) fn get(&self, tenant: &str, pattern: &str, epoch: u32) -> Option<Arc<MacKey>> {
        self.by_tenant
            .get(tenant)?
            .get(pattern)?
            .iter()
            .find(|(e, _)| *e == epoch)
            .map(|(_, k)| Arc::clone(k))
    }

    /// Keeps `key` (replacing the one kept for the same tenant, pattern and epoch); a full
    /// cache is emptied before a new entry (keys are cheap to derive again).
    pub(super) fn insert(
        &mut self,
        capacity: usize,
        tenant: &str,
        pattern: &str,
        epoch: u32,
        key: Arc<MacKey>,
    ) {
        if let Some(slot) = self
            .by_tenant
            .get_mut(tenant)
            .and_then(|p| p.get_mut(pattern))
            .and_then(|keys| keys.iter_mut().find(|(e, _)| *e == epoch))
        {
            slot.1 = key;
            return;
        }
        if self.len >= capacity {
            self.clear();
        }
        self.by_tenant
            .entry(tenant.to_owned())
            .or_default()
            .entry(pattern.to_owned())
            .or_default()
            .push((epoch, key));
        self.len += 1;
    }

    pub(super) fn clear(&mut self) {
        self.by_tenant.clear();
        self.len = 0;
    }
}

impl Coffer {
    pub(super) fn master_key(&self) -> MasterKey {
        self.keys
            .master
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(super) fn keyring(&self) -> Arc<Keyring> {
        self.keys
            .keyring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(super) fn reload_keyring(&self) -> Result<Arc<Keyring>> {
        let rows = self.store.keyring()?;
        let k = Arc::new(load_keyring(&self.master_key(), &rows)?);
        self.keys.keyring_seen.store(
            keyring_signature(&rows),
            std::sync::atomic::Ordering::Release,
        );
        *self
            .keys
            .keyring
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = k.clone();
        self.keys
            .index_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        Ok(k)
    }

    // ---- data keys ------------------------------------------------------------------------

    /// Catches up with what other processes changed in the store, in one read:
    ///
    /// - if any data key was destroyed since the last check (by this handle or another), drops
    ///   every data key held in memory: a cached copy must not outlive its destruction, and
    ///   new data must not be sealed under it;
    /// - if a key was added to the keyring or an index epoch retired (a KEK or index rotation
    ///   elsewhere), reloads the keyring, so that seals index under the epochs in use and
    ///   searches cover them;
    /// - if a retention-rule override was approved, loads the overrides again, so that the
    ///   keep-until dates this handle computes follow it.
    ///
    /// All are rare. When no other connection has committed since the last check, the check is
    /// one pragma; otherwise three small reads, under one lock.
    pub(super) fn sync_with_store(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        let (mut now, mut signature, mut overrides) = (0, 0, 0);
        let mut version = None;
        self.store.retention_read(&mut |tx| {
            // SQLite's data version moves only when another connection commits: if it has not
            // moved, nothing but this handle (which keeps itself current) changed the store,
            // and the counters need not be read. This keeps the check off hot paths such as
            // search (one pragma instead of three queries).
            let v = tx.change_token()?;
            if v == self.keys.data_version_seen.load(Ordering::Acquire) {
                return Ok(());
            }
            version = Some(v);
            now = tx.destructions()?;
            signature = tx.keyring_signature()?;
            overrides = tx.override_changes()?;
            Ok(())
        })?;
        let Some(version) = version else {
            return Ok(());
        };
        if self.keys.keyring_seen.load(Ordering::Acquire) != signature {
            self.reload_keyring()?;
        }
        if self.overrides_seen.load(Ordering::Acquire) != overrides {
            self.load_overrides()?;
            self.overrides_seen.store(overrides, Ordering::Release);
        }
        if self.keys.destructions_seen.swap(now, Ordering::AcqRel) != now {
            self.keys
                .data_keys
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear();
            self.keys
                .latest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear();
        }
        // Only now: a failure above leaves the version unseen, so the next call reads again.
        self.keys
            .data_version_seen
            .store(version, Ordering::Release);
        Ok(())
    }

    /// Caches a data key (or its destruction) under its [`key_name`] with the version.
    pub(super) fn cache_put(&self, name: &[u8], key: Option<Arc<DataKey>>) {
        let mut cache = self
            .keys
            .data_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Dropping evicted entries wipes the keys (SecretKey zeroizes on drop).
        bounded_insert(&mut cache, self.keys.cache_capacity, name.into(), key);
    }

    /// Remembers the newest version of a data key (bounded: a bulk import of a million
    /// customers must not keep three million entries).
    pub(super) fn latest_put(&self, latest: &mut HashMap<KeyName, u32>, name: &[u8], version: u32) {
        bounded_insert(
            latest,
            self.keys.cache_capacity.saturating_mul(4),
            name.into(),
            version,
        );
    }

    /// The unwrapped data key, or `None` when it was destroyed or never existed.
    pub(super) fn data_key(
        &self,
        tenant: &str,
        subject: &str,
        category: &str,
        version: u32,
    ) -> Result<Option<Arc<DataKey>>> {
        let mut name = Vec::new();
        let name = key_name(&mut name, tenant, subject, category, Some(version));
        if let Some(k) = self
            .keys
            .data_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
        {
            return Ok(k.clone());
        }
        let row = self
            .store
            .data_key(tenant, subject, category, Some(version))?;
        let key = match row.and_then(|r| r.wrapped.map(|w| (w, r.kek_version))) {
            None => None,
            Some((wrapped, kek_version)) => Some(Arc::new(self.unwrap_data_key(
                tenant,
                subject,
                category,
                version,
                kek_version,
                &wrapped,
            )?)),
        };
        self.cache_put(name, key.clone());
        Ok(key)
    }

    pub(super) fn unwrap_data_key(
        &self,
        tenant: &str,
        subject: &str,
        category: &str,
        version: u32,
        kek_version: u32,
        wrapped: &[u8],
    ) -> Result<DataKey> {
        let mut keyring = self.keyring();
        if !keyring.keks.contains_key(&kek_version) {
            // Another process rotated the KEK.
            keyring = self.reload_keyring()?;
        }
        let kek = keyring
            .keks
            .get(&kek_version)
            .ok_or_else(|| Error::KeyNotFound {
                what: format!("key-encryption key version {kek_version}"),
            })?;
        let raw = kek.unwrap(
            &data_key_aad(tenant, subject, category, version, kek_version),
            wrapped,
            "wrapped data key",
        )?;
        SecretKey::from_bytes(&raw).map(DataKey::new)
    }

    /// The newest live data key of a (tenant, subject, category), created on first use.
    pub(super) fn current_data_key(
        &self,
        tenant: &str,
        subject: &str,
        category: &str,
        actor: &str,
    ) -> Result<(u32, Arc<DataKey>)> {
        let mut name = Vec::new();
        let name = key_name(&mut name, tenant, subject, category, None);
        let cached = self
            .keys
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .copied();
        if let Some(v) = cached
            && let Some(k) = self.data_key(tenant, subject, category, v)?
        {
            return Ok((v, k));
        }
        let row = self.store.data_key(tenant, subject, category, None)?;
        let (version, key) = match row {
            Some(r) if r.wrapped.is_some() => {
                let v = r.version;
                (
                    v,
                    self.data_key(tenant, subject, category, v)?
                        .ok_or_else(|| Error::KeyNotFound {
                            what: "data key".into(),
                        })?,
                )
            }
            // None yet, or the newest was destroyed: make the next version.
            other => self.create_data_key(
                tenant,
                subject,
                category,
                other.map_or(1, |r| r.version + 1),
                actor,
            )?,
        };
        self.latest_put(
            &mut self
                .keys
                .latest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            name,
            version,
        );
        Ok((version, key))
    }

    pub(super) fn create_data_key(
        &self,
        tenant: &str,
        subject: &str,
        category: &str,
        version: u32,
        actor: &str,
    ) -> Result<(u32, Arc<DataKey>)> {
        let key = self
            .store_data_keys(
                &self.keyring(),
                "key.create",
                &[(tenant, subject, category, version)],
                vec![SecretKey::generate()?],
                actor,
            )?
            .pop()
            .ok_or_else(|| Error::Internal {
                message: "no data key stored".into(),
            })?;
        Ok((version, key))
    }

    /// The audit entries of the data keys a transaction stores, as canonical text: one entry
    /// of `kind` per subject (`detail.keys`: `category:version,…`), or, for a tenant with two
    /// or more subjects among them, one `<kind>.batch` entry for that tenant's subjects (see
    /// [`audit::expand`]).
    fn key_entries(
        &self,
        kind: &str,
        actor: &str,
        groups: BTreeMap<(&str, &str), String>,
    ) -> Vec<String> {
        let mut batches = TenantBatches::new(groups.keys().map(|&(tenant, _)| tenant));
        let time = self.now();
        let mut texts = Vec::new();
        for (i, ((tenant, subject), keys)) in groups.into_iter().enumerate() {
            if batches.batched(tenant) {
                let detail =
                    serde_json::to_string(&BTreeMap::from([("keys", keys)])).unwrap_or_default();
                batches.push(tenant, i, None, Some(subject), "{}", "[]", &detail);
            } else {
                let mut e = AuditEntry::new(kind, actor, &time);
                e.tenant = Some(tenant.to_owned());
                e.subject = Some(subject.to_owned());
                e.detail.insert("keys".into(), keys);
                texts.push(e.canonical());
            }
        }
        let head = AuditEntry::new(kind, actor, &time);
        texts.extend(batches.finish(&head).into_iter().map(|(text, _)| text));
        texts
    }

    /// Stores data keys (new, or imported from an archive: `keys[i]` is `ids[i]`) wrapped
    /// under the current KEK, in one transaction with their audit entries (see
    /// [`Self::key_entries`]), then refreshes their subjects' keep-until dates in one
    /// more, and returns the keys in the order of `ids`. A version another process stored
    /// first wins: its key is returned (and cached) in place of ours, and ours is neither
    /// stored nor audited.
    pub(super) fn store_data_keys(
        &self,
        keyring: &Keyring,
        kind: &str,
        ids: &[DataKeyRef<'_>],
        keys: Vec<SecretKey>,
        actor: &str,
    ) -> Result<Vec<Arc<DataKey>>> {
        if ids.len() != keys.len() {
            return Err(Error::Internal {
                message: "data keys and their ids differ in number".into(),
            });
        }
        let mut ours: Vec<Option<SecretKey>> = keys.into_iter().map(Some).collect();
        let mut out: Vec<Option<Arc<DataKey>>> = vec![None; ids.len()];
        let mut pending: Vec<usize> = (0..ids.len()).collect();
        // Each round either stores every pending key or finds at least one made by another
        // process (or the KEK it wrapped under retired by another process: the next round
        // reloads the keyring); a handful of rounds ends any race.
        let mut reloaded: Option<Arc<Keyring>> = None;
        let mut name = Vec::new();
        for round in 0..8 {
            if pending.is_empty() {
                break;
            }
            if round > 0 {
                reloaded = Some(self.reload_keyring()?);
            }
            let (kek_version, kek) = reloaded.as_deref().unwrap_or(keyring).current_kek()?;
            let created = self.now();
            let mut nonces = crypto::RandomBatch::new(12 * pending.len())?;
            let mut rows = Vec::with_capacity(pending.len());
            // Each subject's keys as `category:version,…`, written straight into one string.
            let mut groups: BTreeMap<(&str, &str), String> = BTreeMap::new();
            for &i in &pending {
                let (tenant, subject, category, version) = ids[i];
                let key = ours[i].as_ref().ok_or_else(|| Error::Internal {
                    message: "data key already taken".into(),
                })?;
                rows.push(NewDataKey {
                    tenant,
                    subject,
                    category,
                    version,
                    kek_version,
                    wrapped: kek.wrap_with(
                        nonces.take()?,
                        &data_key_aad(tenant, subject, category, version, kek_version),
                        key.expose(),
                    )?,
                    created: &created,
                });
                push_key_version(
                    groups.entry((tenant, subject)).or_default(),
                    category,
                    version,
                );
            }
            let texts = self.key_entries(kind, actor, groups);
            let (_, mac) = self.batch(keyring, &[]);
            let batch = AuditBatch {
                entries: texts,
                mac: &mac,
            };
            let stored = self.store.insert_data_keys(&rows, &batch)?;
            if let Some(seqs) = stored {
                for &i in &pending {
                    let key = Arc::new(DataKey::new(ours[i].take().ok_or_else(|| {
                        Error::Internal {
                            message: "data key already taken".into(),
                        }
                    })?));
                    let (t, s, c, v) = ids[i];
                    self.cache_put(
                        key_name(&mut name, t, s, c, Some(v)),
                        Some(Arc::clone(&key)),
                    );
                    out[i] = Some(key);
                }
                self.notify_texts(&batch.entries, &seqs);
                pending.clear();
                break;
            }
            // Another process made some of these versions first: use its keys.
            let mut rest = Vec::new();
            for &i in &pending {
                let (tenant, subject, category, version) = ids[i];
                match self
                    .store
                    .data_key(tenant, subject, category, Some(version))?
                {
                    Some(theirs) => {
                        let w = theirs.wrapped.as_ref().ok_or_else(|| Error::KeyNotFound {
                            what: "data key".into(),
                        })?;
                        let key = Arc::new(self.unwrap_data_key(
                            tenant,
                            subject,
                            category,
                            version,
                            theirs.kek_version,
                            w,
                        )?);
                        self.cache_put(
                            key_name(&mut name, tenant, subject, category, Some(version)),
                            Some(Arc::clone(&key)),
                        );
                        out[i] = Some(key);
                    }
                    None => rest.push(i),
                }
            }
            pending = rest;
        }
        if !pending.is_empty() {
            return Err(Error::StoreBusy {
                reason: "other processes kept creating the same data keys".into(),
            });
        }
        // The keys' keep-until dates, from their creation and their subjects' events (each
        // subject once, however many of its keys were stored).
        self.refresh_retention_many(ids.iter().map(|&(t, s, _, _)| (t, s)))?;
        out.into_iter()
            .map(|k| {
                k.ok_or_else(|| Error::Internal {
                    message: "a data key was not stored".into(),
                })
            })
            .collect()
    }

    // ---- blind indexes ---------------------------------------------------------------------

    pub(super) fn index_key(
        &self,
        keyring: &Keyring,
        tenant: &str,
        pattern: &str,
        epoch: u32,
    ) -> Result<Arc<MacKey>> {
        if let Some(k) = self
            .keys
            .index_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(tenant, pattern, epoch)
        {
            return Ok(k);
        }
        let (root, _) = keyring
            .index
            .get(&epoch)
            .ok_or_else(|| Error::KeyNotFound {
                what: format!("index epoch {epoch}"),
            })?;
        let key = Arc::new(MacKey::new(hkdf32(
            root.expose(),
            b"coffer/v1/index",
            &[tenant.as_bytes(), pattern.as_bytes()],
        )?));
        self.keys
            .index_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                self.keys.cache_capacity,
                tenant,
                pattern,
                epoch,
                Arc::clone(&key),
            );
        Ok(key)
    }

    /// A blind-index token: the first `bits` of `HMAC-SHA256(index key, transformed)`, in hex
    /// (the bits past `bits` in the last byte cleared).
    pub(super) fn token(key: &MacKey, transformed: &str, bits: u16) -> String {
        let mut mac = key.sign(&[transformed.as_bytes()]);
        let bytes = usize::from(bits).div_ceil(8).min(32);
        let spare = bytes * 8 - usize::from(bits).min(256);
        if spare > 0 {
            mac[bytes - 1] &= 0xffu8 << spare;
        }
        crypto::hex(&mac[..bytes])
    }

    /// The data keys that `ids` name, from the cache or, for the rest, one read of the store;
    /// `None` for a destroyed key.
    pub(super) fn load_data_keys<'a>(
        &self,
        ids: impl ExactSizeIterator<Item = (&'a str, &'a str, &'a str, u32)>,
    ) -> Result<LoadedKeys<'a>> {
        let mut ready = LoadedKeys::with_capacity_and_hasher(ids.len(), Default::default());
        let mut misses = Vec::new();
        // One buffer for every name looked up: a hit allocates nothing.
        let mut name = Vec::new();
        {
            let cache = self
                .keys
                .data_keys
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for id in ids {
                match cache.get(key_name(&mut name, id.0, id.1, id.2, Some(id.3))) {
                    Some(k) => {
                        ready.insert(id, k.clone());
                    }
                    None => misses.push(id),
                }
            }
        }
        if misses.is_empty() {
            return Ok(ready);
        }
        // Read in a fixed order, whatever order the caller's set gave.
        misses.sort_unstable();
        let query: Vec<(&str, &str, &str, Option<u32>)> = misses
            .iter()
            .map(|&(t, s, c, v)| (t, s, c, Some(v)))
            .collect();
        for (id, row) in misses.into_iter().zip(self.store.data_keys_batch(&query)?) {
            let key = match row.and_then(|r| r.wrapped.map(|w| (w, r.kek_version))) {
                None => None,
                Some((wrapped, kek_version)) => Some(Arc::new(self.unwrap_data_key(
                    id.0,
                    id.1,
                    id.2,
                    id.3,
                    kek_version,
                    &wrapped,
                )?)),
            };
            self.cache_put(
                key_name(&mut name, id.0, id.1, id.2, Some(id.3)),
                key.clone(),
            );
            ready.insert(id, key);
        }
        Ok(ready)
    }

    // ---- rotation --------------------------------------------------------------------------

    /// Rewraps the keyring under a new master key (instant: data keys are untouched).
    pub fn rotate_master_key(&self, new_master: &MasterKey, actor: &str) -> Result<()> {
        check_name("actor", actor)?;
        let now = self.now();
        let old_master = self.master_key();
        let mut e = AuditEntry::new("key.rotate", actor, &now);
        e.detail.insert("key".into(), "master".into());
        // The rows are read inside the transaction that rewrites them: a KEK or index epoch
        // that another process adds concurrently is rewrapped too, or waits until after.
        self.audited(vec![e], |b| {
            let seqs = self.store.rewrap_keyring(
                &mut |rows| {
                    self.pause("rotate_master_key.rewrap");
                    rows.iter()
                        .map(|old| {
                            let aad = keyring_aad(&old.kind, old.version);
                            let raw = crypto::unwrap(&old_master.0, &aad, &old.wrapped, "keyring")?;
                            let wrapped = crypto::wrap(&new_master.0, &aad, &raw)?;
                            Ok(KeyringRow {
                                wrapped,
                                ..old.clone()
                            })
                        })
                        .collect()
                },
                b,
            )?;
            Ok(((), seqs))
        })?;
        *self
            .keys
            .master
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = new_master.clone();
        Ok(())
    }

    /// Starts a KEK rotation: a new KEK version that wraps every data key made from now on.
    /// Then call [`Coffer::continue_kek_rotation`] until it reports nothing left; it resumes
    /// where it stopped, across restarts.
    pub fn rotate_kek(&self, actor: &str) -> Result<u32> {
        check_name("actor", actor)?;
        let version = self.keyring().current_kek()?.0 + 1;
        self.add_keyring_key("kek", version, "version", actor)?;
        Ok(version)
    }

    /// The KEK versions in the keyring, oldest first: more than one while a rotation has not
    /// been retired ([`Coffer::retire_keks`]).
    pub fn kek_versions(&self) -> Vec<u32> {
        self.keyring().keks.keys().copied().collect()
    }

    /// Adds a new key of `kind` (`kek`, `index`) at `version` to the keyring, wrapped under the
    /// master key, with its `key.rotate` audit entry (`label`: what the version is called).
    pub(super) fn add_keyring_key(
        &self,
        kind: &str,
        version: u32,
        label: &str,
        actor: &str,
    ) -> Result<()> {
        let key = SecretKey::generate()?;
        let row = KeyringRow {
            kind: kind.into(),
            version,
            wrapped: crypto::wrap(
                &self.master_key().0,
                &keyring_aad(kind, version),
                key.expose(),
            )?,
            created: self.now(),
            state: "active".into(),
        };
        let mut e = self.entry("key.rotate", actor);
        e.detail.insert("key".into(), kind.into());
        e.detail.insert(label.into(), version.to_string());
        let master = self.master_key();
        self.audited(vec![e], |b| {
            let seqs = self.store.add_keyring_row(
                &row,
                // A master-key rotation by another process may have committed since this
                // handle loaded its keyring: a key wrapped under the old master key would be
                // unreadable.
                &|rows| load_keyring(&master, rows).map(drop),
                b,
            )?;
            Ok(((), seqs))
        })?;
        self.reload_keyring()?;
        Ok(())
    }

    /// Rewraps up to `batch` data keys under the newest KEK; returns how many it rewrapped (0
    /// when the rotation is complete). Each batch is one transaction.
    pub fn continue_kek_rotation(&self, batch: usize, actor: &str) -> Result<usize> {
        check_name("actor", actor)?;
        let keyring = self.reload_keyring()?;
        let (kek_version, kek) = keyring.current_kek()?;
        let rows = self.store.data_keys_to_rewrap(kek_version, batch.max(1))?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut rewrapped = Vec::with_capacity(rows.len());
        for r in rows {
            let Some(w) = &r.wrapped else { continue };
            let key = self.unwrap_data_key(
                &r.tenant,
                &r.subject,
                &r.category,
                r.version,
                r.kek_version,
                w,
            )?;
            let wrapped = kek.wrap(
                &data_key_aad(&r.tenant, &r.subject, &r.category, r.version, kek_version),
                key.expose(),
            )?;
            rewrapped.push(DataKeyRow {
                wrapped: Some(wrapped),
                kek_version,
                ..r
            });
        }
        let mut e = self.entry("key.rewrap", actor);
        e.detail.insert("count".into(), rewrapped.len().to_string());
        e.detail
            .insert("kek_version".into(), kek_version.to_string());
        self.audited(vec![e], |b| {
            let seqs = self.store.rewrap_data_keys(&rewrapped, b)?;
            Ok(((), seqs))
        })?;
        Ok(rewrapped.len())
    }

    /// Retires every KEK older than the current one: deletes them from the keyring for good
    /// (their bytes overwritten, the write-ahead log emptied), once
    /// [`Coffer::continue_kek_rotation`] has rewrapped every live data key. Returns the versions
    /// deleted (none when only the current one exists). A copy of the store taken from now on
    /// holds no retired KEK, so data keys destroyed earlier and kept in older copies cannot be
    /// opened through it; see docs/RETENTION.md. Refused with [`Error::InvalidArgument`], with
    /// nothing deleted, while a live data key is still wrapped under an older KEK.
    pub fn retire_keks(&self, actor: &str) -> Result<Vec<u32>> {
        check_name("actor", actor)?;
        let keyring = self.reload_keyring()?;
        let (current, _) = keyring.current_kek()?;
        let older: Vec<String> = keyring
            .keks
            .keys()
            .filter(|&&v| v < current)
            .map(u32::to_string)
            .collect();
        if older.is_empty() {
            return Ok(Vec::new());
        }
        let mut e = self.entry("key.retire", actor);
        e.detail.insert("key".into(), "kek".into());
        e.detail.insert("versions".into(), older.join(","));
        // Nothing is written (and no entry notified) when there was nothing to retire.
        let retired = self.audited(vec![e], |b| self.store.retire_keks(current, b))?;
        if !retired.is_empty() {
            let _ = self.store.purge_log();
        }
        self.reload_keyring()?;
        Ok(retired)
    }

    /// Makes a new data-key version for a (tenant, subject, category); new seals use it, and
    /// [`Coffer::reseal`] moves old envelopes to it. Old versions stay until retired.
    pub fn rotate_data_key(
        &self,
        tenant: &str,
        subject: &str,
        category: &str,
        actor: &str,
    ) -> Result<u32> {
        check_name("actor", actor)?;
        let next = self
            .store
            .data_key(tenant, subject, category, None)?
            .map_or(1, |r| r.version + 1);
        let (v, _) = self.create_data_key(tenant, subject, category, next, actor)?;
        self.latest_put(
            &mut self
                .keys
                .latest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            key_name(&mut Vec::new(), tenant, subject, category, None),
            v,
        );
        Ok(v)
    }

    /// Starts a new blind-index epoch with a new index root key. Seals write tokens for every
    /// active epoch and searches return one per epoch, until the old one is retired.
    pub fn rotate_index_key(&self, actor: &str) -> Result<u32> {
        check_name("actor", actor)?;
        let epoch = self
            .keyring()
            .index
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            + 1;
        self.add_keyring_key("index", epoch, "epoch", actor)?;
        Ok(epoch)
    }

    /// Stops writing and searching an index epoch (after the host has backfilled the new one).
    pub fn retire_index_epoch(&self, epoch: u32, actor: &str) -> Result<()> {
        check_name("actor", actor)?;
        let keyring = self.keyring();
        if keyring.index.values().filter(|(_, a)| *a).count() <= 1
            && keyring.index.get(&epoch).is_some_and(|(_, a)| *a)
        {
            return Err(Error::InvalidArgument {
                name: "epoch",
                reason: "the last active index epoch cannot be retired".into(),
            });
        }
        let mut e = self.entry("key.retire", actor);
        e.detail.insert("key".into(), "index".into());
        e.detail.insert("epoch".into(), epoch.to_string());
        self.audited(vec![e], |b| {
            let seqs = self.store.set_keyring_state("index", epoch, "retired", b)?;
            Ok(((), seqs))
        })?;
        self.reload_keyring()?;
        Ok(())
    }
}
