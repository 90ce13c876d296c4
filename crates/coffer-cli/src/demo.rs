//! `coffer demo`: a walk-through on synthetic customers, from sealing to a tampered audit trail.
//!
//! Every customer is synthetic (see `synth.rs`): none belongs to a real person or company.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use coffer::clock::{Clock, FixedClock};
use coffer::policy::{Action, Context, Policy, Principal, RecordFacts, Request, RuleStatus};
use coffer::record::{CustomerRecord, Schema};
use coffer::retention::Retention;
use coffer::{Access, Coffer, Envelope, FieldView, MasterKey, OpenOptions};

use crate::synth;
use crate::util::Failure;

const POLICY: &str = include_str!("../../../examples/policies/accounting-firm.toml");
const RETENTION: &str = include_str!("../../../examples/policies/retention.toml");
const TENANT: &str = "demo-firm";

fn heading(out: &mut dyn Write, n: u32, title: &str) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(out, "{n}. {title}")?;
    writeln!(out, "{}", "-".repeat(title.chars().count() + 3))
}

/// The ticket the auditor's engagement carries (the policy requires one for statutory audits).
const TICKET: &str = "AUD-2026-0042";

fn access(role: &str, purpose: &str) -> Access {
    Access {
        principal: Principal {
            id: format!("{role}-1"),
            tenant: TENANT.into(),
            roles: vec![role.into()],
            ..Default::default()
        },
        purpose: purpose.into(),
        context: Context {
            ticket: (role == "auditor").then(|| TICKET.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn shown(f: &FieldView) -> String {
    match f {
        FieldView::Revealed(v) => v.expose().to_owned(),
        FieldView::Masked(m) => format!("{m} (masked)"),
        FieldView::Denied(_) => "— denied".into(),
        FieldView::Shredded => "— shredded".into(),
    }
}

/// The fields the demo shows side by side.
const SHOWN: [&str; 5] = [
    "name",
    "id_documents[0].number",
    "phones[0]",
    "emails[0]",
    "bank_accounts[0].account_number",
];

fn views_table(
    out: &mut dyn Write,
    coffer: &Coffer,
    env: &Envelope,
    who: &[(&str, &str)],
) -> Result<(), Failure> {
    let views = who
        .iter()
        .map(|(role, purpose)| coffer.reveal(env, &access(role, purpose)))
        .collect::<Result<Vec<_>, _>>()?;
    write!(out, "  {:<32}", "field")?;
    for (role, purpose) in who {
        write!(out, " {:<30}", format!("{role} / {purpose}"))?;
    }
    writeln!(out)?;
    for path in SHOWN {
        write!(out, "  {path:<32}")?;
        for v in &views {
            let cell = v.fields.get(path).map_or("-".into(), shown);
            // Pad by display columns: Chinese characters take two.
            let width: usize = cell
                .chars()
                .map(|c| if c >= '\u{1100}' && c != '—' { 2 } else { 1 })
                .sum();
            let pad = 30usize.saturating_sub(width);
            write!(out, " {cell}{}", " ".repeat(pad))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

pub(crate) fn run(
    out: &mut dyn Write,
    dir: Option<PathBuf>,
    customers: usize,
) -> Result<ExitCode, Failure> {
    let customers = customers.clamp(10, 1_000_000) as u64;
    let (dir, temporary) = match dir {
        Some(d) => (d, false),
        None => (
            std::env::temp_dir().join(format!("coffer-demo-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::input(format!("cannot create {}: {e}", dir.display())))?;
    let db = dir.join("demo.db");
    if db.exists() {
        return Err(Failure::input(format!(
            "{} exists: give the demo an empty folder",
            db.display()
        )));
    }
    let result = walk(out, &db, customers);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    } else if result.is_ok() {
        writeln!(out, "\nThe demo's store is kept in {}.", db.display())?;
    }
    result
}

fn walk(out: &mut dyn Write, db: &std::path::Path, customers: u64) -> Result<ExitCode, Failure> {
    let started = Instant::now();
    let schema = Schema::builtin().clone();
    let policy = Policy::from_toml(POLICY, &schema)?;
    let retention = Retention::from_toml(RETENTION, &schema)?;
    let today = time::macros::datetime!(2026-11-27 10:00 +8);
    let clock = Arc::new(FixedClock::new(today));
    let master = MasterKey::generate()?;
    let coffer = Coffer::open_with(
        db,
        &master,
        OpenOptions {
            schema: schema.clone(),
            policy: Some(Policy::from_toml(POLICY, &schema)?),
            retention: Some(retention),
            clock: Arc::clone(&clock) as Arc<dyn Clock>,
            ..Default::default()
        },
    )?;
    writeln!(
        out,
        "Coffer {} — a walk-through on {customers} synthetic customers of `{TENANT}`.",
        coffer::VERSION
    )?;
    writeln!(
        out,
        "Store: {} (SQLite). Policy and retention rules: examples/policies/. Today is {}.",
        db.display(),
        today.date()
    )?;

    heading(
        out,
        1,
        "Seal: every sensitive field encrypted under the customer's own keys",
    )?;
    let t = Instant::now();
    let mut table: Vec<Envelope> = Vec::with_capacity(customers as usize);
    let mut by_id_token: HashMap<String, usize> = HashMap::new();
    let mut i = 1;
    while i <= customers {
        let end = (i + 999).min(customers);
        let batch = (i..=end)
            .map(|n| CustomerRecord::from_json(&synth::record_json(&synth::customer(n), TENANT)))
            .collect::<Result<Vec<_>, _>>()?;
        for env in coffer.seal_many(batch, "demo-import")? {
            let env = env?;
            if let Some(token) = env.token("id_documents[0].number", 1) {
                by_id_token.insert(token.to_owned(), table.len());
            }
            table.push(env);
        }
        i = end + 1;
    }
    let secs = t.elapsed().as_secs_f64();
    writeln!(
        out,
        "  {} customers sealed in {:.2} s ({:.0}/s): validated, normalised, encrypted, audited.",
        table.len(),
        secs,
        table.len() as f64 / secs
    )?;
    let sample = &table[table.len() / 2];
    let json = sample.to_json();
    writeln!(
        out,
        "  The host stores each envelope ({} bytes of JSON) beside the customer's row. What an \
         attacker with that column sees:",
        json.len()
    )?;
    for (path, epochs) in sample.index().iter().take(3) {
        let tokens: Vec<&str> = epochs.values().map(String::as_str).collect();
        writeln!(
            out,
            "    {path:<32} blind-index token {}",
            tokens.join(", ")
        )?;
    }
    writeln!(
        out,
        "    … and ciphertext, masked forms included (envelope version {}); the keys live in \
         the store, wrapped under the master key.",
        sample.version()
    )?;

    heading(
        out,
        2,
        "Search by ID number without decrypting anything: a blind index",
    )?;
    let wanted = synth::customer(customers / 2 + 1);
    let typed = format!(
        "{} {} {}",
        &wanted.resident_id[..6],
        &wanted.resident_id[6..14],
        &wanted.resident_id[14..].to_lowercase()
    );
    let found = coffer.search(
        &access("clerk", "bookkeeping"),
        "id_documents[].number",
        &typed,
    )?;
    let token = found
        .tokens
        .first()
        .and_then(|t| t.first())
        .map(|t| t.token.clone())
        .unwrap_or_default();
    let found = by_id_token.get(&token).map(|&n| &table[n]);
    writeln!(
        out,
        "  A clerk types the ID as \"{typed}\": normalised, keyed-hashed to token {token}."
    )?;
    let Some(found) = found else {
        writeln!(out, "  (not found: the demo's index is broken)")?;
        return Ok(ExitCode::from(crate::util::EXIT_NO));
    };
    writeln!(
        out,
        "  The host's indexed column finds record {} — the only match among {}.",
        found.record(),
        table.len()
    )?;

    heading(
        out,
        3,
        "Reveal: the policy decides per field, for each role and purpose",
    )?;
    views_table(
        out,
        &coffer,
        found,
        &[
            ("clerk", "bookkeeping"),
            ("accountant", "payments"),
            ("auditor", "statutory_audit"),
        ],
    )?;
    writeln!(
        out,
        "  Every reveal above is in the audit trail first: who, which fields, what effect, why."
    )?;

    heading(out, 4, "A denial, explained")?;
    let mut no_ticket = access("auditor", "statutory_audit");
    no_ticket.context.ticket = None;
    let view = coffer.reveal(found, &no_ticket)?;
    writeln!(
        out,
        "  The auditor asks again without an engagement ticket: {} of {} fields denied. Why:",
        view.fields
            .values()
            .filter(|f| matches!(f, FieldView::Denied(_)))
            .count(),
        view.fields.len()
    )?;
    let explanation = policy.explain(&Request {
        principal: no_ticket.principal.clone(),
        action: Action::Read,
        purpose: no_ticket.purpose.clone(),
        record: RecordFacts {
            tenant: TENANT.into(),
            ..Default::default()
        },
        context: Context {
            time: Some(clock.now()),
            ..Default::default()
        },
    });
    for rule in &explanation.rules {
        if !matches!(rule.status, RuleStatus::NotApplicable(_)) {
            writeln!(
                out,
                "    rule {} (line {}): {}",
                rule.id, rule.line, rule.status
            )?;
        }
    }
    for (pattern, effect, reason, _) in &explanation.fields {
        if pattern == "bank_accounts[].account_number" {
            writeln!(out, "    {pattern}: {}: {reason}", effect.as_str())?;
        }
    }
    let view = coffer.reveal(found, &access("marketing", "marketing"))?;
    writeln!(
        out,
        "  Marketing, for marketing, sees the phone ({}) but never the ID number ({}): rule \
         marketing-never-ids.",
        view.fields.get("phones[0]").map_or("-".into(), shown),
        view.fields
            .get("id_documents[0].number")
            .map_or("-".into(), shown)
    )?;

    heading(
        out,
        5,
        "An erasure request, weighed against the duty to keep accounting records",
    )?;
    let subject = wanted.subject.clone();
    coffer.record_event(
        TENANT,
        &subject,
        coffer::retention::Event::RelationshipEnded,
        today.date(),
        "demo-crm",
    )?;
    let answer = coffer.erase(TENANT, &subject, "privacy-officer")?;
    for item in &answer.items {
        writeln!(
            out,
            "  {:<9} {:<10}{}  — {}",
            item.category,
            item.outcome,
            item.until
                .as_deref()
                .map_or(String::new(), |u| format!(" until {u}")),
            item.rule
        )?;
    }
    if let Some(c) = &answer.certificate {
        c.verify(&coffer.signing_public_key())?;
        writeln!(
            out,
            "  Destroyed at once with a signed certificate ({} key(s)); verified.",
            c.items.len()
        )?;
    }
    views_table(
        out,
        &coffer,
        found,
        &[("accountant", "payments"), ("auditor", "statutory_audit")],
    )?;
    writeln!(
        out,
        "  Contacts are gone for good; identity and bank details stay, restricted to the audit."
    )?;

    heading(
        out,
        6,
        "Thirty years later: the sweep, two approvals, and destruction",
    )?;
    clock.set(time::macros::datetime!(2057-03-01 10:00 +8));
    writeln!(out, "  The clock moves to {}.", clock.now().date())?;
    let sweep = coffer.sweep("archive-clerk")?;
    writeln!(
        out,
        "  The sweep destroys {} key(s) whose rule says destroy, proposes {} for review (list {}), \
         holds back {}.",
        sweep.destroyed.len(),
        sweep.proposed.len(),
        sweep.proposed_list.map_or("none".into(), |l| l.to_string()),
        sweep.held
    )?;
    if let Some(list) = sweep.proposed_list {
        coffer.approve(list, "wang.archive", "archive_head")?;
        coffer.approve(list, "li.accounting", "accounting_head")?;
        writeln!(
            out,
            "  Approved by the archive head and the head of accounting."
        )?;
        let cert = coffer.execute(list, "archive-clerk")?;
        cert.verify(&coffer.signing_public_key())?;
        writeln!(
            out,
            "  Executed: {} key(s) destroyed; the certificate names each rule and legal basis, \
             both approvals, and verifies against the store's public key.",
            cert.items.len()
        )?;
        if let Some(item) = cert.items.first() {
            writeln!(
                out,
                "    e.g. {} {} v{}: {} ({})",
                item.subject, item.category, item.version, item.rule, item.basis
            )?;
        }
    }
    views_table(out, &coffer, found, &[("auditor", "statutory_audit")])?;

    heading(
        out,
        7,
        "Reports: what a customer may ask, and whose data an incident touched",
    )?;
    let mut officer = access("privacy_officer", "data_protection");
    officer.context.ticket = Some("DSAR-2057-7".into());
    let none = coffer::report::ReportOptions::default();
    let subject_report = coffer.subject_report(TENANT, &subject, &[], &officer, &none)?;
    writeln!(
        out,
        "  Subject {subject}: {} field path(s) on record, {} of {} key(s) destroyed, {} access(es) \
         on file, every one with who, when, why and what was shown.",
        subject_report.fields.len(),
        subject_report
            .keys
            .iter()
            .filter(|k| k.destroyed.is_some())
            .count(),
        subject_report.keys.len(),
        subject_report.accesses.len()
    )?;
    let incident = coffer.affected(
        &coffer::report::IncidentQuery {
            principal: Some("accountant-1".into()),
            fields: vec!["class:sensitive".into()],
            ..Default::default()
        },
        &officer,
        &none,
    )?;
    writeln!(
        out,
        "  Had accountant-1's account been stolen: {} customer(s) whose ID or account numbers it \
         saw in clear ({} reveal(s)), from the verified audit trail.",
        incident.subjects.len(),
        incident.reveals
    )?;
    let check = coffer.compliance_check(&Default::default(), &officer, &none)?;
    writeln!(
        out,
        "  The compliance check lists {} finding(s): {}.",
        check.findings.len(),
        check
            .findings
            .iter()
            .map(|f| f.code.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(
        out,
        "  (`coffer report subject|incident|access-review|check --html FILE` draws them as pages.)"
    )?;

    heading(
        out,
        8,
        "The audit trail proves what happened, and notices tampering",
    )?;
    let report = coffer.audit_verify(None)?;
    writeln!(
        out,
        "  {} entries, chain intact: {}.",
        report.entries, report.intact
    )?;
    drop(coffer);
    {
        let conn = rusqlite::Connection::open(db)
            .map_err(|e| Failure::input(format!("cannot open the demo store: {e}")))?;
        let changed = conn
            .execute(
                "UPDATE audit SET entry = replace(entry, '\"marketing-1\"', '\"auditor-1\"') \
                 WHERE seq = (SELECT min(seq) FROM audit WHERE entry LIKE '%marketing-1%')",
                [],
            )
            .map_err(|e| Failure::input(format!("cannot tamper with the demo store: {e}")))?;
        writeln!(
            out,
            "  Someone with write access to the database rewrites {changed} row so the marketing \
             request looks like the auditor's…"
        )?;
    }
    let coffer = Coffer::open_with(
        db,
        &master,
        OpenOptions {
            schema,
            clock: Arc::clone(&clock) as Arc<dyn Clock>,
            ..Default::default()
        },
    )?;
    let report = coffer.audit_verify(None)?;
    match report.first_problem {
        Some((seq, what)) => writeln!(
            out,
            "  …and verification catches it: chain broken at entry #{seq} ({what})."
        )?,
        None => writeln!(out, "  …and verification MISSED it (this is a bug).")?,
    }
    writeln!(
        out,
        "\nDone in {:.1} s. Everything above runs the same from C and Python.",
        started.elapsed().as_secs_f64()
    )?;
    Ok(if report.intact {
        ExitCode::from(crate::util::EXIT_NO)
    } else {
        ExitCode::SUCCESS
    })
}
