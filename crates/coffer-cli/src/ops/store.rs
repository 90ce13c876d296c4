//! Whole-store operations: backup, restore, and copying a store to another backend.

use super::*;

pub(crate) fn backup(
    out: &mut dyn Write,
    store: &StoreArgs,
    path: &Path,
    json: bool,
) -> Result<ExitCode, Failure> {
    let coffer = store.open(false)?;
    let m = coffer.backup(path, &store.actor)?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&m).map_err(|e| Failure::input(e.to_string()))?
        )?;
    } else {
        writeln!(
            out,
            "backed up to {} ({} bytes, sha256 {}): {} audit entries, {} live and {} destroyed data keys; manifest {}",
            path.display(),
            m.bytes,
            m.sha256,
            m.entries,
            m.live_data_keys,
            m.destroyed_data_keys,
            coffer::BackupManifest::path_for(path).display()
        )?;
    }
    util::ok()
}

/// `coffer store copy`: the source is opened as it is (its master key is checked first, so a
/// copy is never made with a key that cannot verify it), copied, and the copy's chain verified.
pub(crate) fn store_copy(
    out: &mut dyn Write,
    store: &StoreArgs,
    source: &Path,
    destination: &Path,
    json: bool,
) -> Result<ExitCode, Failure> {
    let master = store.master_key()?;
    let src = coffer::store::open(source, false)?;
    // The master key must open the source's keyring (nothing is written to it).
    drop(Coffer::open_with(
        source,
        &master,
        coffer::OpenOptions {
            create: false,
            ..Default::default()
        },
    )?);
    if let Some(file) = destination
        .to_str()
        .filter(|d| !coffer::store::is_server_url(d) && Path::new(d).exists())
    {
        return Err(Failure::input(format!(
            "{file} already exists; `coffer store copy` writes only a new store"
        )));
    }
    let dst = coffer::store::open(destination, true)?;
    let report = coffer::store::copy(src.as_ref(), dst.as_ref())?;
    drop(dst);
    let copy = Coffer::open_with(
        destination,
        &master,
        coffer::OpenOptions {
            create: false,
            ..Default::default()
        },
    )?;
    let verified = copy.audit_verify(None)?;
    if !verified.intact || verified.entries != report.summary.entries {
        return Err(Failure::from(coffer::Error::Integrity {
            what: format!(
                "the copy's audit chain ({} entries, intact: {})",
                verified.entries, verified.intact
            ),
        }));
    }
    if json {
        let rows: serde_json::Map<String, serde_json::Value> = report
            .rows
            .iter()
            .map(|(t, n)| ((*t).to_owned(), (*n).into()))
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "rows": rows,
                "audit_entries": report.summary.entries,
                "chain_verified": true,
                "live_data_keys": report.summary.live_data_keys,
                "destroyed_data_keys": report.summary.destroyed_data_keys,
            })
        )?;
    } else {
        let rows: Vec<String> = report
            .rows
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        writeln!(
            out,
            "copied and verified: {}; audit chain of {} entries intact; {} live and {} destroyed data keys",
            rows.join(", "),
            report.summary.entries,
            report.summary.live_data_keys,
            report.summary.destroyed_data_keys
        )?;
    }
    util::ok()
}

/// Reads certificates from files: each file one JSON document or JSON Lines of them, each a
/// certificate, an array of them, or an answer that carries one (`coffer erase --json`,
/// `coffer sweep --json`: their `certificate`).
fn read_certificates(files: &[PathBuf]) -> Result<Vec<Certificate>, Failure> {
    fn take(v: &serde_json::Value, out: &mut Vec<Certificate>) -> coffer::Result<()> {
        match v {
            serde_json::Value::Array(items) => items.iter().try_for_each(|i| take(i, out)),
            serde_json::Value::Object(o) if o.contains_key("certificate") => {
                match &o["certificate"] {
                    serde_json::Value::Null => Ok(()),
                    c => take(c, out),
                }
            }
            c => {
                out.push(Certificate::from_json(&c.to_string())?);
                Ok(())
            }
        }
    }
    let mut out = Vec::new();
    for f in files {
        let text = read_to_string(f)?;
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => {
                take(&v, &mut out).map_err(|e| Failure::input(format!("{}: {e}", f.display())))?
            }
            Err(_) => {
                for (i, line) in text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                {
                    let at = |e: &dyn std::fmt::Display| {
                        Failure::input(format!("{} line {}: {e}", f.display(), i + 1))
                    };
                    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| at(&e))?;
                    take(&v, &mut out).map_err(|e| at(&e))?;
                }
            }
        }
    }
    Ok(out)
}

pub(crate) fn restore(
    out: &mut dyn Write,
    store: &StoreArgs,
    backup: &Path,
    certificates: &[PathBuf],
    no_later_destructions: bool,
    json: bool,
) -> Result<ExitCode, Failure> {
    let certificates = read_certificates(certificates)?;
    let master = store.master_key()?;
    let report = coffer::Coffer::restore(
        backup,
        &store.store,
        &master,
        coffer::RestoreOptions {
            actor: store.actor.clone(),
            certificates,
            no_later_destructions,
            manifest: None,
        },
    )?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&report).map_err(|e| Failure::input(e.to_string()))?
        )?;
    } else {
        writeln!(
            out,
            "restored {} (backup of {}, {} audit entries, chain verified) as {}",
            backup.display(),
            report.backup_created,
            report.entries,
            store.store.display()
        )?;
        writeln!(
            out,
            "destructions after the backup, from {}: {} key(s) destroyed again, {} already destroyed, {} not in the backup; {} certificate(s) accepted",
            report.sources.join(" and "),
            report.reapplied,
            report.already_destroyed,
            report.not_in_backup,
            report.certificates
        )?;
        if report.keys_newer_than_backup > 0 {
            writeln!(
                out,
                "{} data key(s) made after the backup are not in it: envelopes sealed under them read as shredded",
                report.keys_newer_than_backup
            )?;
        }
        if let Some(r) = &report.replaced {
            writeln!(out, "the replaced store was kept as {r}")?;
        }
        writeln!(
            out,
            "holds and erasure restrictions placed after the backup are not in it: place them again"
        )?;
    }
    util::ok()
}
