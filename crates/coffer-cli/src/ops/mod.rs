//! The store commands: each opens the store, does one thing, and prints a short account (or
//! JSON with `--json`).

use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use coffer::crypto::{b64url, from_b64url};
use coffer::policy::{Action, Policy, Request};
use coffer::{Access, ArchiveBundle, Certificate, Coffer, DestructionItem, Envelope, FieldView};
use serde_json::json;
use zeroize::Zeroizing;

use crate::AccessArgs;
use crate::util::{
    self, EXIT_NO, Failure, Output, StoreArgs, read_key_file, read_to_string, write_output,
};

mod store;
pub(crate) use store::{backup, restore, store_copy};

/// Envelopes are read in batches of this many for `reveal_many`.
const REVEAL_BATCH: usize = 1000;

/// Prints a command's one-line answer: `value` with `--json`, else `text`.
fn answer(
    out: &mut dyn Write,
    json: bool,
    value: serde_json::Value,
    text: impl std::fmt::Display,
) -> io::Result<()> {
    if json {
        writeln!(out, "{value}")
    } else {
        writeln!(out, "{text}")
    }
}

pub(crate) fn init(
    out: &mut dyn Write,
    store: &StoreArgs,
    json: bool,
) -> Result<ExitCode, Failure> {
    let coffer = store.open(true)?;
    let key = b64url(&coffer.signing_public_key());
    if json {
        writeln!(
            out,
            "{}",
            json!({"store": store.store.display().to_string(), "public_key": key, "schema": coffer.schema().name()})
        )?;
    } else {
        writeln!(
            out,
            "created {} (schema {})",
            store.store.display(),
            coffer.schema().name()
        )?;
        writeln!(
            out,
            "public key (verifies its certificates and archives): {key}"
        )?;
        writeln!(
            out,
            "Keep the master key apart from the store: whoever holds both can read everything."
        )?;
    }
    util::ok()
}

pub(crate) fn keygen(out: &mut dyn Write, file: Option<&Path>) -> Result<ExitCode, Failure> {
    let key = coffer::MasterKey::generate()?;
    let text = key.to_base64();
    match file {
        None => writeln!(out, "{}", text.as_str())?,
        Some(p) => {
            if p.exists() {
                return Err(Failure::input(format!(
                    "{} exists; keygen never overwrites a key",
                    p.display()
                )));
            }
            let mut f = util::AtomicFile::create(p)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.commit()?;
            writeln!(out, "wrote a new master key to {} (mode 0600)", p.display())?;
        }
    }
    util::ok()
}

pub(crate) fn access(args: &AccessArgs) -> Result<Access, Failure> {
    if let Some(p) = &args.access {
        return coffer::wire::access_from_json(&read_to_string(p)?)
            .map_err(|e| Failure::input(format!("{}: {e}", p.display())));
    }
    let need = |v: &Option<String>, flag: &str| {
        v.clone()
            .ok_or_else(|| Failure::input(format!("{flag} is required (or pass --access FILE)")))
    };
    if args.roles.is_empty() {
        return Err(Failure::input("--role is required (or pass --access FILE)"));
    }
    Ok(Access {
        principal: coffer::policy::Principal {
            id: need(&args.principal, "--principal")?,
            tenant: need(&args.tenant, "--tenant")?,
            roles: args.roles.clone(),
            ..Default::default()
        },
        purpose: need(&args.purpose, "--purpose")?,
        context: coffer::policy::Context {
            ticket: args.ticket.clone(),
            second_approver: args.second_approver.clone(),
            destination_region: args.destination_region.clone(),
            client: args.client.clone(),
            ..Default::default()
        },
        record: coffer::policy::RecordFacts {
            region: args.record_region.clone(),
            ..Default::default()
        },
    })
}

fn open_input(file: Option<&Path>) -> Result<Box<dyn BufRead>, Failure> {
    Ok(match file {
        None => Box::new(io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(io::stdin().lock()),
        Some(p) => Box::new(io::BufReader::new(util::open_file(p)?)),
    })
}

/// Reads envelopes (JSON Lines) in batches, calling `f` on each.
pub(crate) fn envelope_batches(
    coffer: &Coffer,
    file: Option<&Path>,
    mut f: impl FnMut(Vec<Envelope>) -> Result<(), Failure>,
) -> Result<u64, Failure> {
    let name = file.map_or("standard input".to_owned(), |p| p.display().to_string());
    let mut batch = Vec::with_capacity(REVEAL_BATCH);
    let mut n = 0u64;
    for (i, line) in open_input(file)?.lines().enumerate() {
        if util::interrupted() {
            return Err(Failure::interrupted());
        }
        let line = line.map_err(|e| Failure::input(format!("{name}: line {}: {e}", i + 1)))?;
        if line.trim().is_empty() {
            continue;
        }
        let env = coffer.open_envelope(&line).map_err(|e| Failure {
            message: format!("{name}: line {}: {e}", i + 1),
            ..e.into()
        })?;
        batch.push(env);
        n += 1;
        if batch.len() == REVEAL_BATCH {
            f(std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        f(batch)?;
    }
    Ok(n)
}

pub(crate) fn reveal(
    out: &mut dyn Write,
    store: &StoreArgs,
    file: Option<PathBuf>,
    args: &AccessArgs,
    json: bool,
) -> Result<ExitCode, Failure> {
    if store.policy.is_none() {
        return Err(Failure::input(
            "reveal needs the access policy: pass --policy FILE or set COFFER_POLICY",
        ));
    }
    let access = access(args)?;
    let coffer = store.open(false)?;
    envelope_batches(&coffer, file.as_deref(), |envs| {
        for view in coffer.reveal_many(&envs, &access)? {
            if json {
                let text = coffer::wire::view_to_json(&view);
                out.write_all(text.as_bytes())?;
                out.write_all(b"\n")?;
            } else {
                writeln!(out, "record {} (audit #{}):", view.record, view.audit_seq)?;
                for (path, field) in &view.fields {
                    let shown: Zeroizing<String> = Zeroizing::new(match field {
                        FieldView::Revealed(v) => v.expose().to_owned(),
                        FieldView::Masked(m) => format!("{m}  (masked)"),
                        FieldView::Denied(why) => format!("—  (denied: {why})"),
                        FieldView::Shredded => "—  (shredded: its key was destroyed)".into(),
                    });
                    writeln!(out, "  {path:<34} {}", shown.as_str())?;
                }
            }
        }
        Ok(())
    })?;
    util::ok()
}

pub(crate) fn redact(
    out: &mut dyn Write,
    store: &StoreArgs,
    file: Option<PathBuf>,
) -> Result<ExitCode, Failure> {
    let coffer = store.open(false)?;
    let (mut changed, mut columns) = (0u64, 0u64);
    let n = envelope_batches(&coffer, file.as_deref(), |envs| {
        for r in coffer.redact_many(&envs, &store.actor)? {
            changed += u64::from(r.changed);
            columns += r.clear_index.len() as u64;
            out.write_all(coffer::wire::redaction_to_json(&r).as_bytes())?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })?;
    // The summary goes to standard error: standard output is the envelopes.
    let _ = writeln!(
        io::stderr(),
        "{n} envelope(s) read, {changed} changed, {columns} index column(s) to clear"
    );
    util::ok()
}

pub(crate) fn search(
    out: &mut dyn Write,
    store: &StoreArgs,
    field: &str,
    value: Option<String>,
    access_args: &AccessArgs,
    json: bool,
) -> Result<ExitCode, Failure> {
    let access = access(access_args)?;
    let values: Vec<Zeroizing<String>> = match value {
        Some(v) => vec![Zeroizing::new(v)],
        None => {
            let limit = (coffer::record::MAX_VALUE_BYTES + 2) * coffer::MAX_SEARCH_VALUES;
            let mut s = Zeroizing::new(String::new());
            io::stdin()
                .lock()
                .take(limit as u64 + 1)
                .read_to_string(&mut s)
                .map_err(|e| Failure::input(format!("standard input: {e}")))?;
            if s.len() > limit {
                return Err(Failure::input(format!(
                    "standard input: more than {limit} bytes"
                )));
            }
            s.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| Zeroizing::new(l.trim_end_matches('\r').to_owned()))
                .collect()
        }
    };
    let coffer = store.open(false)?;
    let refs: Vec<&str> = values.iter().map(|v| v.as_str()).collect();
    let answer = coffer.search_many(&access, field, &refs)?;
    if json {
        writeln!(out, "{}", coffer::wire::search_answer_to_json(&answer))?;
    } else {
        for (i, tokens) in answer.tokens.iter().enumerate() {
            let label = if answer.tokens.len() > 1 {
                format!("value {}: ", i + 1)
            } else {
                String::new()
            };
            if tokens.is_empty() {
                writeln!(
                    out,
                    "{label}no token: the value does not index (empty after normalising)"
                )?;
            }
            for t in tokens {
                writeln!(out, "{label}epoch {}: {}", t.epoch, t.token)?;
            }
        }
        if !answer.withheld_subjects.is_empty() {
            writeln!(
                out,
                "leave out the rows of these subjects (restricted after an erasure request): {}",
                answer.withheld_subjects.join(", ")
            )?;
        }
    }
    util::ok()
}

pub(crate) fn index_plan(
    out: &mut dyn Write,
    records: u64,
    distinct: u64,
    json: bool,
) -> Result<ExitCode, Failure> {
    let plan = coffer::plan_index(records, distinct);
    if json {
        writeln!(out, "{}", coffer::wire::plan_to_json(&plan))?;
    } else {
        writeln!(
            out,
            "for {records} records with {distinct} distinct values: index_bits = {} \
             (sensible range {}–{})",
            plan.recommended_bits, plan.min_bits, plan.max_bits
        )?;
        writeln!(
            out,
            "  a search returns about {:.1} false match(es) to filter after decrypting; records \
             sharing a token share the value with probability {:.2}",
            plan.expected_false_positives, plan.same_value_probability
        )?;
    }
    util::ok()
}

fn load_policy_file(
    store: &StoreArgs,
    file: &Path,
) -> Result<Result<Policy, coffer::Error>, Failure> {
    let schema = store.load_schema()?;
    let text = read_to_string(file)?;
    let is_json = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    Ok(if is_json {
        Policy::from_json(&text, &schema)
    } else {
        Policy::from_toml(&text, &schema)
    })
}

pub(crate) fn policy_check(
    out: &mut dyn Write,
    store: &StoreArgs,
    file: &Path,
    json: bool,
) -> Result<ExitCode, Failure> {
    match load_policy_file(store, file)? {
        Ok(policy) => {
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({"valid": true, "name": policy.name(), "version": policy.version(),
                           "rules": policy.rule_count(), "roles": policy.roles(), "purposes": policy.purposes()})
                )?;
            } else {
                writeln!(
                    out,
                    "{}: policy `{}` is valid: {} rule(s), {} role(s), {} purpose(s); version {}",
                    file.display(),
                    policy.name(),
                    policy.rule_count(),
                    policy.roles().len(),
                    policy.purposes().len(),
                    policy.version()
                )?;
            }
            util::ok()
        }
        Err(e) => {
            let problems: Vec<String> = match &e {
                coffer::Error::Policy { problems } | coffer::Error::Schema { problems } => {
                    problems.0.iter().map(ToString::to_string).collect()
                }
                other => vec![other.to_string()],
            };
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({"valid": false, "code": e.code(), "problems": problems})
                )?;
            } else {
                for p in &problems {
                    writeln!(out, "{}:{p}", file.display())?;
                }
                writeln!(out, "{} problem(s)", problems.len())?;
            }
            Ok(ExitCode::from(EXIT_NO))
        }
    }
}

pub(crate) fn policy_explain(
    out: &mut dyn Write,
    store: &StoreArgs,
    args: &AccessArgs,
    action: &str,
    json: bool,
) -> Result<ExitCode, Failure> {
    let file = store.policy.as_ref().ok_or_else(|| {
        Failure::input("policy explain needs the policy: pass --policy FILE or set COFFER_POLICY")
    })?;
    let policy = load_policy_file(store, file)?
        .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
    let access = access(args)?;
    let action = Action::parse(action)
        .ok_or_else(|| Failure::input(format!("--action: unknown action {action:?}")))?;
    let mut record = access.record.clone();
    record.tenant = access.principal.tenant.clone();
    let mut context = access.context.clone();
    context
        .time
        .get_or_insert_with(time::OffsetDateTime::now_utc);
    let explanation = policy.explain(&Request {
        principal: access.principal,
        action,
        purpose: access.purpose,
        record,
        context,
    });
    if json {
        let fields: Vec<_> = explanation
            .fields
            .iter()
            .map(|(path, effect, reason, rules)| {
                json!({"field": path, "effect": effect.as_str(), "reason": reason, "rules": rules})
            })
            .collect();
        let rules: Vec<_> = explanation
            .rules
            .iter()
            .map(|r| json!({"rule": r.id, "status": r.status.to_string()}))
            .collect();
        writeln!(
            out,
            "{}",
            json!({"policy_version": explanation.policy_version,
                   "denial": explanation.denial.as_ref().map(ToString::to_string),
                   "rules": rules, "fields": fields})
        )?;
    } else {
        write!(out, "{explanation}")?;
    }
    util::ok()
}

fn items_table(out: &mut dyn Write, title: &str, items: &[DestructionItem]) -> io::Result<()> {
    writeln!(out, "{title}: {}", items.len())?;
    for i in items.iter().take(20) {
        writeln!(
            out,
            "  {}/{} {} v{}  rule {} ({})",
            i.tenant, i.subject, i.category, i.version, i.rule, i.basis
        )?;
    }
    if items.len() > 20 {
        writeln!(out, "  … and {} more (--json lists all)", items.len() - 20)?;
    }
    Ok(())
}

fn need_retention(store: &StoreArgs, what: &str) -> Result<(), Failure> {
    if store.retention.is_none() {
        return Err(Failure::input(format!(
            "{what} needs the retention rules: pass --retention FILE or set COFFER_RETENTION"
        )));
    }
    Ok(())
}

pub(crate) fn retention_plan(
    out: &mut dyn Write,
    store: &StoreArgs,
    as_of: Option<&str>,
    json: bool,
) -> Result<ExitCode, Failure> {
    need_retention(store, "retention plan")?;
    let at = as_of.map(|t| util::parse_when(t, "--as-of")).transpose()?;
    let coffer = store.open_at(false, at)?;
    let plan = coffer.plan_sweep()?;
    if json {
        writeln!(
            out,
            "{}",
            json!({"destroy": plan.destroy, "review": plan.review, "held": plan.held})
        )?;
    } else {
        items_table(out, "would destroy (destroy rules)", &plan.destroy)?;
        items_table(out, "would propose for review", &plan.review)?;
        writeln!(out, "held back by legal holds: {}", plan.held)?;
    }
    util::ok()
}

fn print_certificate(out: &mut dyn Write, c: &Certificate) -> io::Result<()> {
    writeln!(
        out,
        "certificate: {} item(s) destroyed {} by {} ({}), signed; {} approval(s)",
        c.items.len(),
        c.time,
        c.actor,
        c.occasion,
        c.approvals.len()
    )?;
    if let Some(x) = &c.backup_exposure {
        writeln!(
            out,
            "copies of the store taken before {} still hold these keys{}; sooner {}",
            x.copies_before,
            x.until.as_deref().map_or(
                " for as long as those copies are kept".to_owned(),
                |u| format!(" until {u} (backups kept under the retention rules)")
            ),
            x.ends_sooner
        )?;
    }
    Ok(())
}

pub(crate) fn sweep(
    out: &mut dyn Write,
    store: &StoreArgs,
    json: bool,
) -> Result<ExitCode, Failure> {
    need_retention(store, "sweep")?;
    let coffer = store.open(false)?;
    let report = coffer.sweep(&store.actor)?;
    if json {
        writeln!(out, "{}", coffer::wire::sweep_to_json(&report))?;
    } else {
        items_table(out, "destroyed", &report.destroyed)?;
        if let Some(c) = &report.certificate {
            print_certificate(out, c)?;
        }
        match report.proposed_list {
            Some(id) => items_table(
                out,
                &format!(
                    "proposed destruction list {id} (needs approval, then `coffer execute {id}`)"
                ),
                &report.proposed,
            )?,
            None => writeln!(out, "no destruction list proposed")?,
        }
        writeln!(out, "held back by legal holds: {}", report.held)?;
    }
    util::ok()
}

pub(crate) fn approve(
    out: &mut dyn Write,
    store: &StoreArgs,
    list: i64,
    approver: &str,
    role: &str,
    json: bool,
) -> Result<ExitCode, Failure> {
    need_retention(store, "approve")?;
    let coffer = store.open(false)?;
    coffer.approve(list, approver, role)?;
    answer(
        out,
        json,
        json!({"list": list, "approved_by": approver, "role": role}),
        format!("list {list} approved by {approver} as {role}"),
    )?;
    util::ok()
}

pub(crate) fn execute(
    out: &mut dyn Write,
    store: &StoreArgs,
    list: i64,
    json: bool,
) -> Result<ExitCode, Failure> {
    need_retention(store, "execute")?;
    let coffer = store.open(false)?;
    let cert = coffer.execute(list, &store.actor)?;
    if json {
        writeln!(out, "{}", cert.to_json())?;
    } else {
        items_table(out, &format!("list {list} destroyed"), &cert.items)?;
        print_certificate(out, &cert)?;
    }
    util::ok()
}

pub(crate) fn hold_add(
    out: &mut dyn Write,
    store: &StoreArgs,
    hold: coffer::Hold,
    json: bool,
) -> Result<ExitCode, Failure> {
    let coffer = store.open(false)?;
    let id = coffer.place_hold(hold, &store.actor)?;
    answer(out, json, json!({"hold": id}), format!("hold {id} placed"))?;
    util::ok()
}

pub(crate) fn hold_release(
    out: &mut dyn Write,
    store: &StoreArgs,
    id: i64,
    json: bool,
) -> Result<ExitCode, Failure> {
    let coffer = store.open(false)?;
    coffer.release_hold(id, &store.actor)?;
    answer(
        out,
        json,
        json!({"released": id}),
        format!("hold {id} released"),
    )?;
    util::ok()
}

pub(crate) fn hold_list(
    out: &mut dyn Write,
    store: &StoreArgs,
    tenant: Option<&str>,
    json: bool,
) -> Result<ExitCode, Failure> {
    let coffer = store.open(false)?;
    let holds = coffer.holds(tenant)?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&holds).map_err(|e| Failure::input(e.to_string()))?
        )?;
    } else if holds.is_empty() {
        writeln!(out, "no holds")?;
    } else {
        for h in &holds {
            writeln!(
                out,
                "{:>4}  {} / {} / {}  {}  placed by {} at {}: {}",
                h.id,
                h.tenant,
                h.subject.as_deref().unwrap_or("every subject"),
                h.category.as_deref().unwrap_or("every category"),
                h.kind,
                h.placed_by,
                h.placed_at,
                h.reason
            )?;
        }
    }
    util::ok()
}

pub(crate) fn erase(
    out: &mut dyn Write,
    store: &StoreArgs,
    tenant: &str,
    subject: &str,
    json: bool,
) -> Result<ExitCode, Failure> {
    need_retention(store, "erase")?;
    let coffer = store.open(false)?;
    let answer = coffer.erase(tenant, subject, &store.actor)?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&answer).map_err(|e| Failure::input(e.to_string()))?
        )?;
    } else {
        for i in &answer.items {
            let until = i
                .until
                .as_deref()
                .map_or(String::new(), |u| format!(" until {u}"));
            writeln!(
                out,
                "  {:<10} {}{until}  (rule {}; fields {})",
                i.category,
                i.outcome,
                i.rule,
                i.fields.join(", ")
            )?;
        }
        if let Some(c) = &answer.certificate {
            print_certificate(out, c)?;
        }
    }
    util::ok()
}

pub(crate) fn audit_verify(
    out: &mut dyn Write,
    store: &StoreArgs,
    checkpoint: Option<&Path>,
    json: bool,
) -> Result<ExitCode, Failure> {
    let coffer = store.open(false)?;
    let checkpoint = checkpoint
        .map(|p| {
            coffer::audit::Checkpoint::from_json(&read_to_string(p)?)
                .map_err(|e| Failure::input(format!("{}: {e}", p.display())))
        })
        .transpose()?;
    let report = coffer.audit_verify(checkpoint.as_ref())?;
    if json {
        writeln!(
            out,
            "{}",
            json!({"intact": report.intact, "entries": report.entries, "last_seq": report.last_seq,
                   "checkpoint_checked": report.checkpoint_checked,
                   "first_problem": report.first_problem.as_ref().map(|(seq, t)| json!({"seq": seq, "kind": t.to_string()}))})
        )?;
    } else if report.intact {
        writeln!(
            out,
            "audit trail intact: {} entries, up to #{}{}",
            report.entries,
            report.last_seq,
            if report.checkpoint_checked {
                ", and it reaches the checkpoint"
            } else {
                ""
            }
        )?;
    } else {
        let (seq, what) = report
            .first_problem
            .as_ref()
            .map_or((0, "unknown".to_owned()), |(s, t)| (*s, t.to_string()));
        writeln!(
            out,
            "AUDIT TRAIL BROKEN at entry #{seq}: {what} ({} entries read)",
            report.entries
        )?;
    }
    Ok(if report.intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NO)
    })
}

pub(crate) fn audit_export(
    out: &mut dyn Write,
    store: &StoreArgs,
    to: Option<&Path>,
    expanded: bool,
    json: bool,
) -> Result<ExitCode, Failure> {
    let coffer = store.open(false)?;
    let mut file = Output::create(to)?;
    let n = if expanded {
        coffer.audit_export_expanded(&mut file)?
    } else {
        coffer.audit_export(&mut file)?
    };
    let to_stdout = file.is_stdout();
    file.commit()?;
    if !to_stdout {
        answer(
            out,
            json,
            json!({"entries": n}),
            if expanded {
                format!("exported {n} events")
            } else {
                format!("exported {n} entries")
            },
        )?;
    }
    util::ok()
}

pub(crate) fn audit_checkpoint(
    out: &mut dyn Write,
    store: &StoreArgs,
    to: Option<&Path>,
    json: bool,
) -> Result<ExitCode, Failure> {
    let coffer = store.open(false)?;
    let cp = coffer.audit_checkpoint(&store.actor)?;
    write_output(to, &cp.to_json())?;
    if to.is_some() {
        answer(
            out,
            json,
            json!({"seq": cp.seq}),
            format!("checkpoint at entry #{}; keep it outside the store", cp.seq),
        )?;
    }
    util::ok()
}

pub(crate) enum Rotation {
    Kek { retire: bool, batch: usize },
    Index,
    Master(PathBuf),
}

pub(crate) fn rotate(
    out: &mut dyn Write,
    store: &StoreArgs,
    which: Rotation,
    json: bool,
) -> Result<ExitCode, Failure> {
    let coffer = store.open(false)?;
    let answer = match which {
        Rotation::Kek { retire, batch } => {
            // With --retire, a rotation left unfinished (older KEKs still in the keyring) is
            // resumed rather than a new one started.
            let versions = coffer.kek_versions();
            let version = if retire && versions.len() > 1 {
                versions.last().copied().unwrap_or(1)
            } else {
                coffer.rotate_kek(&store.actor)?
            };
            let mut rewrapped = 0usize;
            loop {
                if util::interrupted() {
                    // Safe to stop: every batch is one transaction; run again to finish.
                    return Err(Failure {
                        message: format!(
                            "interrupted after rewrapping {rewrapped} data keys; the rotation \
                             is consistent, run `coffer keys rotate kek{}` again to finish it",
                            if retire { " --retire" } else { "" }
                        ),
                        ..Failure::interrupted()
                    });
                }
                let n = coffer.continue_kek_rotation(batch.max(1), &store.actor)?;
                if n == 0 {
                    break;
                }
                rewrapped += n;
            }
            let retired = if retire {
                coffer.retire_keks(&store.actor)?
            } else {
                Vec::new()
            };
            json!({"kek_version": version, "rewrapped": rewrapped, "retired": retired})
        }
        Rotation::Index => {
            let epoch = coffer.rotate_index_key(&store.actor)?;
            json!({"index_epoch": epoch})
        }
        Rotation::Master(file) => {
            let new = coffer::MasterKey::from_file(&file)
                .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
            coffer.rotate_master_key(&new, &store.actor)?;
            json!({"master_key": "rotated"})
        }
    };
    if json {
        writeln!(out, "{answer}")?;
    } else if let Some(v) = answer.get("kek_version") {
        writeln!(
            out,
            "KEK version {v}; {} data keys rewrapped",
            answer["rewrapped"]
        )?;
        if let Some(r) = answer["retired"].as_array().filter(|r| !r.is_empty()) {
            let r: Vec<String> = r.iter().map(ToString::to_string).collect();
            writeln!(
                out,
                "retired KEK version(s) {}: deleted for good; rotate the master key and destroy \
                 its old value to end what older copies of the store can recover",
                r.join(", ")
            )?;
        }
    } else if let Some(e) = answer.get("index_epoch") {
        writeln!(
            out,
            "index epoch {e}: new envelopes carry tokens for it; backfill, then retire the old epoch"
        )?;
    } else {
        writeln!(out, "master key rotated: use the new key file from now on")?;
    }
    util::ok()
}

fn public_key(coffer: Option<&Coffer>, given: Option<&str>) -> Result<Vec<u8>, Failure> {
    match (given, coffer) {
        (Some(k), _) => from_b64url(k.trim())
            .ok_or_else(|| Failure::input("--public-key: expected base64url text")),
        (None, Some(c)) => Ok(c.signing_public_key()),
        (None, None) => Err(Failure::input("--public-key is required")),
    }
}

pub(crate) fn archive_export(
    out: &mut dyn Write,
    store: &StoreArgs,
    file: &Path,
    key_file: &Path,
    to: &Path,
    access_args: &AccessArgs,
    json: bool,
) -> Result<ExitCode, Failure> {
    let access = access(access_args)?;
    let key = read_key_file(key_file, "archive key")?;
    let coffer = store.open(false)?;
    let mut envelopes = Vec::new();
    envelope_batches(&coffer, Some(file), |batch| {
        envelopes.extend(batch);
        Ok(())
    })?;
    let bundle = coffer.archive_export(&envelopes, &key, &access)?;
    write_output(Some(to), &bundle.to_json())?;
    answer(
        out,
        json,
        json!({"envelopes": envelopes.len(), "out": to.display().to_string()}),
        format!(
            "archived {} envelope(s) into {}",
            envelopes.len(),
            to.display()
        ),
    )?;
    util::ok()
}

pub(crate) fn archive_verify(
    out: &mut dyn Write,
    store: &StoreArgs,
    file: &Path,
    key: Option<&str>,
    key_file: Option<&Path>,
    json: bool,
) -> Result<ExitCode, Failure> {
    let bundle = ArchiveBundle::from_json(&read_to_string(file)?)
        .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
    let coffer = if key.is_none() {
        Some(store.open(false)?)
    } else {
        None
    };
    let pk = public_key(coffer.as_ref(), key)?;
    let archive_key = key_file
        .map(|p| read_key_file(p, "archive key"))
        .transpose()?;
    match bundle.verify(&pk, archive_key.as_deref().map(Vec::as_slice)) {
        Ok(check) => {
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({"valid": true, "envelopes": check.envelopes, "keys": check.keys,
                           "contents_checked": check.contents_checked, "shredded": check.shredded})
                )?;
            } else {
                writeln!(
                    out,
                    "bundle verifies: {} envelope(s), {} key(s){}",
                    check.envelopes,
                    check.keys,
                    if check.contents_checked {
                        ", every key and envelope checked"
                    } else {
                        " (signature and manifest; give --archive-key-file to check contents)"
                    }
                )?;
            }
            util::ok()
        }
        Err(e) if e.kind() == coffer::ErrorKind::Integrity => {
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({"valid": false, "code": e.code(), "message": e.to_string()})
                )?;
            } else {
                writeln!(out, "BUNDLE DOES NOT VERIFY: {e}")?;
            }
            Ok(ExitCode::from(EXIT_NO))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn archive_restore(
    out: &mut dyn Write,
    store: &StoreArgs,
    file: &Path,
    key: Option<&str>,
    key_file: &Path,
    to: &Path,
    json: bool,
) -> Result<ExitCode, Failure> {
    let bundle = ArchiveBundle::from_json(&read_to_string(file)?)
        .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
    let archive_key = read_key_file(key_file, "archive key")?;
    let coffer = store.open(false)?;
    let pk = public_key(Some(&coffer), key)?;
    let envelopes = coffer.archive_restore(&bundle, &archive_key, &pk, &store.actor)?;
    let mut file_out = Output::create(Some(to))?;
    for e in &envelopes {
        file_out.write_all(e.to_json().as_bytes())?;
        file_out.write_all(b"\n")?;
    }
    file_out.commit()?;
    answer(
        out,
        json,
        json!({"restored": envelopes.len(), "out": to.display().to_string()}),
        format!(
            "restored {} envelope(s) into {}",
            envelopes.len(),
            to.display()
        ),
    )?;
    util::ok()
}
