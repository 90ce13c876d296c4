//! Backups of the key store, and restores that never bring a destroyed key back.
//!
//! A backup is a consistent copy of the store file (SQLite's online backup), private to its
//! owner, with a manifest signed by the store's key: when it was taken, its SHA-256, how many
//! audit entries it holds and the chain's head, and its key counts. A restore checks all of
//! that, then re-applies every destruction recorded after the backup — from the store being
//! replaced when it can still be read, and from the signed destruction certificates the host
//! kept — before the restored store is put in place.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::lifecycle::{Certificate, key_of};
use super::{Coffer, OpenOptions, check_name};
use crate::audit::AuditEntry;
use crate::crypto::{self, MasterKey, b64url, from_b64url};
use crate::error::{Error, Result};
use crate::store::{KeyState, LegalHold, Restriction, RestrictionRow};

const MANIFEST_FORMAT: &str = "coffer-backup/1";

/// The signed description of a backup, written beside it as `<backup>.manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupManifest {
    /// `coffer-backup/1`.
    pub format: String,
    /// When the backup was taken (RFC 3339).
    pub created: String,
    /// Who took it.
    pub actor: String,
    /// The backup file's name (without its folder).
    pub file: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// SHA-256 of its bytes (hexadecimal).
    pub sha256: String,
    /// Audit entries in it.
    pub entries: u64,
    /// The MAC of its last audit entry (base64url): the chain's head.
    pub chain_head: String,
    /// Keys in its keyring.
    pub keyring_keys: u64,
    /// Its KEK versions.
    pub kek_versions: Vec<u32>,
    /// Live data keys in it.
    pub live_data_keys: u64,
    /// Destroyed data keys in it.
    pub destroyed_data_keys: u64,
    /// The signer's Ed25519 public key (base64url): the store's.
    pub public_key: String,
    /// The signature (base64url) over the manifest without it.
    #[serde(default)]
    pub signature: String,
}

impl BackupManifest {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.signature.clear();
        let body = serde_json::to_string(&unsigned).unwrap_or_default();
        crypto::lp(&[MANIFEST_FORMAT.as_bytes(), body.as_bytes()])
    }

    /// Checks the signature against the trusted public key of the store that was backed up.
    pub fn verify(&self, trusted_public_key: &[u8]) -> Result<()> {
        if self.format != MANIFEST_FORMAT {
            return Err(Error::UnsupportedVersion {
                what: format!("backup manifest format; this build reads {MANIFEST_FORMAT}"),
            });
        }
        if from_b64url(&self.public_key).as_deref() != Some(trusted_public_key) {
            return Err(crypto::integrity("backup manifest (signed by another key)"));
        }
        let sig =
            from_b64url(&self.signature).ok_or_else(|| crypto::integrity("backup manifest"))?;
        crypto::verify_signature(trusted_public_key, &self.signed_bytes(), &sig)
    }

    /// The manifest as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a manifest from JSON.
    pub fn from_json(text: &str) -> Result<BackupManifest> {
        serde_json::from_str(text).map_err(|e| crate::record::json_error("backup manifest", &e, ""))
    }

    /// Where the manifest of the backup at `backup` is written: `<backup>.manifest.json`.
    pub fn path_for(backup: &Path) -> PathBuf {
        let mut name = backup.as_os_str().to_owned();
        name.push(".manifest.json");
        PathBuf::from(name)
    }
}

/// What a restore should take as the record of destructions made after the backup.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Who restores (audited).
    pub actor: String,
    /// Signed destruction certificates kept since the backup (more are harmless: keys they
    /// name that the backup no longer holds alive are skipped). Each must verify against the
    /// backed-up store's key.
    pub certificates: Vec<Certificate>,
    /// The caller states that nothing was destroyed after the backup. Without it, a restore
    /// with neither a readable store to replace nor certificates is refused: it could bring
    /// back keys that were destroyed.
    pub no_later_destructions: bool,
    /// The manifest, when not read from `<backup>.manifest.json`.
    pub manifest: Option<BackupManifest>,
}

/// What a restore did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RestoreReport {
    /// When the backup was taken.
    pub backup_created: String,
    /// Audit entries in the backup.
    pub backup_entries: u64,
    /// Where the destructions re-applied came from: `store`, `certificates`, both (`store,
    /// certificates`), or `none` (stated by the caller).
    pub sources: Vec<String>,
    /// Certificates accepted.
    pub certificates: u64,
    /// Data keys destroyed now: destroyed after the backup was taken.
    pub reapplied: u64,
    /// Keys named by the record that the backup holds destroyed already.
    pub already_destroyed: u64,
    /// Keys named by the record that the backup does not hold (made after it).
    pub not_in_backup: u64,
    /// Live data keys the replaced store held that the backup does not: envelopes sealed
    /// under them after the backup no longer open (0 when the replaced store was unreadable).
    pub keys_newer_than_backup: u64,
    /// Erasure restrictions carried over from the replaced store (placed after the backup,
    /// or changed since).
    pub restrictions_carried: u64,
    /// Legal holds in force in the replaced store that the backup lacked, placed again.
    pub holds_carried: u64,
    /// Where the replaced store was moved (`<store>.replaced-<time>`), if there was one.
    pub replaced: Option<String>,
    /// Audit entries in the restored store, which verified from start to end.
    pub entries: u64,
}

fn io_error(path: &Path, e: &std::io::Error) -> Error {
    Error::Io {
        what: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Writes `text` to a new file at `path`, readable and writable by its owner only.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).map_err(|e| io_error(path, &e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| io_error(path, &e))
}

/// Moves `from` (and its `-wal` and `-shm` files) to `to` (and theirs).
fn move_store(from: &Path, to: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut f = from.as_os_str().to_owned();
        f.push(suffix);
        let mut t = to.as_os_str().to_owned();
        t.push(suffix);
        let (f, t) = (PathBuf::from(f), PathBuf::from(t));
        if f.exists() {
            std::fs::rename(&f, &t).map_err(|e| io_error(&f, &e))?;
        }
    }
    Ok(())
}

fn remove_store_files(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut f = path.as_os_str().to_owned();
        f.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(f));
    }
}

impl Coffer {
    /// Backs the store up to `path` (a new file: an existing one is never overwritten) while
    /// other handles and processes go on writing: one consistent state, created readable by
    /// its owner only, with a signed manifest beside it (`<path>.manifest.json`, also
    /// returned). The backup is audited (`store.backup`) in the live store. A copy holds every
    /// live key, wrapped as in the store: keep it as safe as the store, and see
    /// docs/RETENTION.md for what a destruction after it leaves in it.
    pub fn backup(&self, path: impl AsRef<Path>, actor: &str) -> Result<BackupManifest> {
        check_name("actor", actor)?;
        let path = path.as_ref();
        let manifest_path = BackupManifest::path_for(path);
        crate::store::never_overwrite(&manifest_path)?;
        let summary = self.store.backup_to(path)?;
        let finish = || -> Result<BackupManifest> {
            let bytes = std::fs::metadata(path)
                .map_err(|e| io_error(path, &e))?
                .len();
            let sha256 = crypto::sha256_file_hex(path).map_err(|e| io_error(path, &e))?;
            let keyring = self.keyring();
            let mut m = BackupManifest {
                format: MANIFEST_FORMAT.into(),
                created: self.now(),
                actor: actor.into(),
                file: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                bytes,
                sha256,
                entries: summary.entries,
                chain_head: b64url(&summary.chain_head),
                keyring_keys: summary.keyring_keys,
                kek_versions: summary.kek_versions.clone(),
                live_data_keys: summary.live_data_keys,
                destroyed_data_keys: summary.destroyed_data_keys,
                public_key: b64url(&keyring.signing.public_key()),
                signature: String::new(),
            };
            m.signature = b64url(&keyring.signing.sign(&m.signed_bytes()));
            write_private(&manifest_path, &m.to_json())?;
            let mut e = self.entry("store.backup", actor);
            e.detail.insert("file".into(), m.file.clone());
            e.detail.insert("sha256".into(), m.sha256.clone());
            e.detail.insert("entries".into(), m.entries.to_string());
            self.append(vec![e])?;
            Ok(m)
        };
        // A backup without its manifest (or whose taking is not audited) is not left behind.
        finish().inspect_err(|_| {
            let _ = std::fs::remove_file(path);
            let _ = std::fs::remove_file(&manifest_path);
        })
    }

    /// Restores the backup at `backup` as the store at `target`, opened with `master` (the
    /// master key in force when the backup was taken). Refuses to bring a destroyed key back:
    ///
    /// 1. the backup must match its manifest (size, SHA-256, signature by the backup's own
    ///    store key, audit entries and chain head), and its audit chain must verify;
    /// 2. every key destroyed after the backup is destroyed again in the restored copy: those
    ///    the store at `target` records as destroyed, when it can still be opened (it must be
    ///    the same store: same signing key), and those the `certificates` name (each verified);
    ///    with neither, the caller must state `no_later_destructions`;
    /// 3. the restored store's chain is verified again, with one `store.restore` entry
    ///    (sources, counts; and each re-applied certificate is stored again).
    ///
    /// Only then is the copy moved into place; a store that was at `target` is kept beside it
    /// as `<target>.replaced-<time>` (nothing is deleted). Keys made after the backup are not
    /// in it: envelopes sealed under them read as shredded (`keys_newer_than_backup` counts
    /// them when the replaced store was readable). From a readable replaced store, erasure
    /// restrictions and legal holds in force are carried over too; certificates record
    /// neither, so without that store the host must place them again.
    pub fn restore(
        backup: impl AsRef<Path>,
        target: impl AsRef<Path>,
        master: &MasterKey,
        options: RestoreOptions,
    ) -> Result<RestoreReport> {
        let (backup, target) = (backup.as_ref(), target.as_ref());
        check_name("actor", &options.actor)?;
        if !backup.is_file() {
            return Err(Error::NotFound {
                what: format!("backup {}", backup.display()),
            });
        }
        let manifest = match options.manifest.clone() {
            Some(m) => m,
            None => {
                let p = BackupManifest::path_for(backup);
                let text = std::fs::read_to_string(&p).map_err(|e| io_error(&p, &e))?;
                BackupManifest::from_json(&text)?
            }
        };
        // Restored first into a copy beside the target; the target is touched only at the end.
        let mut staging = target.as_os_str().to_owned();
        staging.push(".restoring");
        let staging = PathBuf::from(staging);
        remove_store_files(&staging);
        copy_private(backup, &staging)?;
        // 1. The copy (what is used, not the file it came from, which could change meanwhile)
        // is the one the manifest describes.
        let same = || -> Result<()> {
            let bytes = std::fs::metadata(&staging)
                .map_err(|e| io_error(&staging, &e))?
                .len();
            let sha256 = crypto::sha256_file_hex(&staging).map_err(|e| io_error(&staging, &e))?;
            if bytes != manifest.bytes || sha256 != manifest.sha256 {
                return Err(crypto::integrity(
                    "backup (its size or SHA-256 differs from its manifest)",
                ));
            }
            Ok(())
        };
        let result =
            same().and_then(|()| Self::restore_into(&staging, target, master, &options, &manifest));
        let mut report = match result {
            Ok(r) => r,
            Err(e) => {
                remove_store_files(&staging);
                return Err(e);
            }
        };
        // 4. Into place: the replaced store is moved aside, never deleted.
        if target.exists() {
            let stamp = super::now_text(&crate::clock::SystemClock)
                .replace([':', '-'], "")
                .replace('.', "");
            let mut aside = target.as_os_str().to_owned();
            aside.push(format!(".replaced-{stamp}"));
            let aside = PathBuf::from(aside);
            move_store(target, &aside)?;
            report.replaced = Some(aside.display().to_string());
        }
        move_store(&staging, target)?;
        Ok(report)
    }

    fn restore_into(
        staging: &Path,
        target: &Path,
        master: &MasterKey,
        options: &RestoreOptions,
        manifest: &BackupManifest,
    ) -> Result<RestoreReport> {
        let restored = Coffer::open_with(
            staging,
            master,
            OpenOptions {
                create: false,
                ..OpenOptions::default()
            },
        )?;
        let public_key = restored.signing_public_key();
        manifest.verify(&public_key)?;
        // The trail reaches the manifest's head at the manifest's length (opening an older
        // store's copy may have migrated it, which can only add entries after it).
        let summary = restored.store.summary()?;
        let head = match manifest.entries {
            0 => Vec::new(),
            n => restored
                .store
                .audit_rows(n, 1)?
                .into_iter()
                .find(|r| r.seq == n)
                .map(|r| r.mac)
                .unwrap_or_default(),
        };
        if summary.entries < manifest.entries
            || b64url(&head) != manifest.chain_head
            || summary.live_data_keys != manifest.live_data_keys
            || summary.destroyed_data_keys != manifest.destroyed_data_keys
        {
            return Err(crypto::integrity(
                "backup (its audit trail or keys differ from its manifest)",
            ));
        }
        verify_chain(&restored, "the backup's")?;

        // 2. The record of later destructions.
        let mut sources = Vec::new();
        let mut to_destroy: Vec<(KeyState, String)> = Vec::new();
        let mut certificates: Vec<String> = Vec::new();
        let mut replaced = Replaced::default();
        if target.exists() {
            match Self::read_replaced(target, master, &public_key) {
                Ok(r) => {
                    sources.push("store".to_owned());
                    to_destroy.extend(r.destroyed.iter().cloned());
                    certificates.extend(r.certificates.iter().cloned());
                    replaced = r;
                }
                // An unreadable store is what restores are for: the certificates speak. But a
                // store that only this master key cannot open is readable to its owner, and may
                // record destructions the certificates given do not: refused, not skipped.
                Err(Error::WrongMasterKey) => {
                    return Err(Error::InvalidArgument {
                        name: "master_key",
                        reason: format!(
                            "the store at {} does not open with the backup's master key (was \
                             the master key rotated since the backup?); nothing was restored. \
                             Move that store aside and restore with the destruction \
                             certificates kept since the backup",
                            target.display()
                        ),
                    });
                }
                Err(e @ Error::Integrity { .. }) => return Err(e),
                Err(_) => {}
            }
        }
        let mut accepted = 0;
        for cert in &options.certificates {
            cert.verify(&public_key)?;
            accepted += 1;
            for i in &cert.items {
                to_destroy.push((key_of(i), cert.time.clone()));
            }
            certificates.push(cert.to_json());
        }
        if !options.certificates.is_empty() {
            sources.push("certificates".to_owned());
        }
        if sources.is_empty() {
            if !options.no_later_destructions {
                return Err(Error::InvalidArgument {
                    name: "certificates",
                    reason: format!(
                        "nothing records which keys were destroyed after the backup of {}: \
                         the store at {} cannot be read; pass the destruction certificates \
                         kept since, or state that there were none",
                        manifest.created,
                        target.display()
                    ),
                });
            }
            sources.push("none".to_owned());
        }
        // 3. Destroy again, store the certificates, audit; then verify.
        let (mut reapplied, mut already, mut missing) = (0u64, 0u64, 0u64);
        let (mut restrictions_carried, mut holds_carried) = (0u64, 0u64);
        let today = restored.now();
        let mut e = AuditEntry::new("store.restore", &options.actor, &restored.now());
        e.detail
            .insert("backup_created".into(), manifest.created.clone());
        e.detail.insert("sha256".into(), manifest.sha256.clone());
        e.detail.insert("sources".into(), sources.join(","));
        let mut seen = BTreeSet::new();
        restored.retention_write_with(&mut |tx| {
            (reapplied, already, missing) = (0, 0, 0);
            let stored: BTreeSet<String> = tx.certificates()?.into_iter().collect();
            seen.clear();
            for (k, when) in &to_destroy {
                if !seen.insert((
                    k.tenant.clone(),
                    k.subject.clone(),
                    k.category.clone(),
                    k.version,
                )) {
                    continue;
                }
                match tx.destroy_key(k, when)? {
                    Some(_) => reapplied += 1,
                    None if tx.key_exists(k)? => already += 1,
                    None => missing += 1,
                }
            }
            for c in &certificates {
                if !stored.contains(c) {
                    tx.add_certificate(c)?;
                }
            }
            (restrictions_carried, holds_carried) = (0, 0);
            let had: BTreeSet<_> = tx.all_restrictions()?.into_iter().collect();
            for (tenant, subject, r) in &replaced.restrictions {
                if !had.contains(&(tenant.clone(), subject.clone(), r.clone())) {
                    tx.restrict(&Restriction {
                        tenant,
                        subject,
                        category: &r.category,
                        purposes: &r.purposes,
                        until: r.until.as_deref(),
                        rule: &r.rule,
                        since: &r.since,
                    })?;
                    restrictions_carried += 1;
                }
            }
            let same = |a: &LegalHold, b: &LegalHold| {
                (
                    &a.tenant,
                    &a.subject,
                    &a.category,
                    &a.kind,
                    &a.reason,
                    &a.placed_at,
                ) == (
                    &b.tenant,
                    &b.subject,
                    &b.category,
                    &b.kind,
                    &b.reason,
                    &b.placed_at,
                )
            };
            let holds = tx.active_holds(None, today.get(..10).unwrap_or(&today))?;
            for h in &replaced.holds {
                if !holds.iter().any(|x| same(x, h)) {
                    tx.add_hold(h)?;
                    holds_carried += 1;
                }
            }
            let mut e = e.clone();
            e.detail.insert("reapplied".into(), reapplied.to_string());
            e.detail.insert(
                "restrictions_carried".into(),
                restrictions_carried.to_string(),
            );
            e.detail
                .insert("holds_carried".into(), holds_carried.to_string());
            e.detail.insert("certificates".into(), accepted.to_string());
            Ok(vec![e])
        })?;
        let _ = restored.store.purge_log();
        verify_chain(&restored, "the restored")?;
        let entries = restored.audit_len()?;
        // Live keys of the replaced store that the backup lacks: made after it.
        let mut keys_newer_than_backup = 0;
        restored.store.retention_read(&mut |tx| {
            keys_newer_than_backup = 0;
            for k in &replaced.live {
                if !tx.key_exists(k)? {
                    keys_newer_than_backup += 1;
                }
            }
            Ok(())
        })?;
        drop(restored);
        Ok(RestoreReport {
            backup_created: manifest.created.clone(),
            backup_entries: manifest.entries,
            sources,
            certificates: accepted,
            reapplied,
            already_destroyed: already,
            not_in_backup: missing,
            keys_newer_than_backup,
            restrictions_carried,
            holds_carried,
            replaced: None,
            entries,
        })
    }

    /// Reads, from the store a restore replaces, what must survive the restore.
    fn read_replaced(target: &Path, master: &MasterKey, public_key: &[u8]) -> Result<Replaced> {
        let current = Coffer::open_with(
            target,
            master,
            OpenOptions {
                create: false,
                busy_timeout: std::time::Duration::from_secs(1),
                ..OpenOptions::default()
            },
        )?;
        if current.signing_public_key() != public_key {
            return Err(crypto::integrity(
                "store to replace (it is not the store the backup was taken of)",
            ));
        }
        let mut out = Replaced::default();
        let today = current.now();
        current.store.retention_read(&mut |tx| {
            out.destroyed = tx.destroyed_keys()?;
            out.certificates = tx.certificates()?;
            out.live = tx.live_keys()?;
            out.restrictions = tx.all_restrictions()?;
            out.holds = tx.active_holds(None, today.get(..10).unwrap_or(&today))?;
            Ok(())
        })?;
        Ok(out)
    }
}

/// What a restore takes from the store it replaces.
#[derive(Default)]
struct Replaced {
    /// Destroyed keys, with when.
    destroyed: Vec<(KeyState, String)>,
    /// Destruction certificates (JSON).
    certificates: Vec<String>,
    /// Live keys.
    live: Vec<KeyState>,
    /// Erasure restrictions: `(tenant, subject, restriction)`.
    restrictions: Vec<(String, String, RestrictionRow)>,
    /// Legal holds in force.
    holds: Vec<LegalHold>,
}

/// Refuses, as [`Error::Audit`] naming where, an audit trail (`whose`: "the backup's", …) that
/// does not verify from start to end.
fn verify_chain(c: &Coffer, whose: &str) -> Result<()> {
    let verified = c.audit_verify(None)?;
    if verified.intact {
        return Ok(());
    }
    Err(Error::Audit {
        reason: format!(
            "{whose} audit trail does not verify: {:?} at entry {}",
            verified.first_problem.map(|p| p.1),
            verified.first_problem.map_or(0, |p| p.0)
        ),
    })
}

/// Copies `from` to a new private file `to`.
fn copy_private(from: &Path, to: &Path) -> Result<()> {
    let mut src = std::fs::File::open(from).map_err(|e| io_error(from, &e))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut dst = options.open(to).map_err(|e| io_error(to, &e))?;
    std::io::copy(&mut src, &mut dst)
        .and_then(|_| dst.sync_all())
        .map_err(|e| io_error(to, &e))
}
