//! `coffer report subject|incident|access-review|check`: the compliance reports, printed as
//! Markdown (or JSON with `--json`) and written as a static HTML page with `--html FILE`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use coffer::report::{CheckOptions, IncidentQuery, Report, ReportOptions, Severity};

use crate::AccessArgs;
use crate::util::{self, EXIT_NO, Failure, StoreArgs, read_to_string};

#[derive(Subcommand)]
pub(crate) enum ReportCommand {
    /// What is held about one data subject and who has seen it (PIPL art. 45, GDPR art. 15).
    ///
    /// With --envelopes (the subject's envelopes, JSON Lines), each field's value appears as
    /// the policy shows it to the principal, through an ordinary audited reveal. Review the
    /// result before handing it to the customer.
    ///
    /// Example: coffer report subject --subject s-1001 --principal dpo-1 --tenant acme
    /// --role privacy_officer --purpose data_protection --ticket DSAR-7 --envelopes s-1001.jsonl
    /// --html s-1001.html
    Subject {
        /// The data subject.
        #[arg(long)]
        subject: String,
        /// The subject's envelopes (JSON Lines), to show values.
        #[arg(long)]
        envelopes: Option<PathBuf>,
        #[command(flatten)]
        access: AccessArgs,
        #[command(flatten)]
        common: ReportArgs,
    },
    /// Incident scoping (PIPL art. 57): every subject whose fields were revealed in clear by a
    /// principal or through a client within a window, with counts.
    ///
    /// Refused (exit code 1) if the audit trail does not verify, unless --accept-broken-trail.
    ///
    /// Example: coffer report incident --by clerk-7 --from 2026-11-01 --until 2026-11-27
    /// --field 'id_documents[].number' --principal dpo-1 --tenant acme --role privacy_officer
    /// --purpose data_protection --ticket INC-3 --html incident.html
    Incident {
        /// Only reveals by this principal (a stolen account).
        #[arg(long)]
        by: Option<String>,
        /// Only reveals through this client application or channel.
        #[arg(long)]
        through: Option<String>,
        /// From (RFC 3339 or YYYY-MM-DD, inclusive).
        #[arg(long)]
        from: Option<String>,
        /// Until (RFC 3339 or YYYY-MM-DD, exclusive; default: now).
        #[arg(long)]
        until: Option<String>,
        /// A field pattern, glob, `class:NAME` or `category:NAME` (repeat; default: every
        /// personal field).
        #[arg(long = "field")]
        fields: Vec<String>,
        #[command(flatten)]
        access: AccessArgs,
        #[command(flatten)]
        common: ReportArgs,
    },
    /// Access review: per role, which personal fields it can read for which purposes, and
    /// which of those grants were used since a date. Unused grants are candidates for removal.
    ///
    /// Example: coffer report access-review --since 2026-01-01 --principal dpo-1 --tenant acme
    /// --role privacy_officer --purpose data_protection --ticket REV-2026 --html review.html
    AccessReview {
        /// Count use from this date (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        since: String,
        #[command(flatten)]
        access: AccessArgs,
        #[command(flatten)]
        common: ReportArgs,
    },
    /// Compliance check: findings with stable codes and severities. Exit code 1 if any finding
    /// is critical or high.
    ///
    /// Example: coffer report check --principal dpo-1 --tenant acme --role privacy_officer
    /// --purpose data_protection --ticket CHK-1 --html check.html
    Check {
        /// Keys older than this many days should be rotated.
        #[arg(long, default_value_t = CheckOptions::default().max_key_age_days)]
        max_key_age_days: u32,
        /// Destruction lists proposed longer ago than this are awaiting approval too long.
        #[arg(long, default_value_t = CheckOptions::default().max_list_age_days)]
        max_list_age_days: u32,
        /// The audit trail should be checkpointed at least this often (days).
        #[arg(long, default_value_t = CheckOptions::default().checkpoint_interval_days)]
        checkpoint_interval_days: u32,
        /// Keys destroyed longer ago than this many days should be past their KEK's retirement.
        #[arg(long, default_value_t = CheckOptions::default().max_backup_exposure_days)]
        max_backup_exposure_days: u32,
        #[command(flatten)]
        access: AccessArgs,
        #[command(flatten)]
        common: ReportArgs,
    },
}

#[derive(Args, Clone)]
pub(crate) struct ReportArgs {
    /// Also write the report as a static HTML page (charts included; no script, nothing
    /// fetched), created with mode 0600.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Also write the report as Markdown.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Answer even if the audit trail does not verify (the report then says so).
    #[arg(long)]
    accept_broken_trail: bool,
    /// A checkpoint the trail must still reach (from `coffer audit checkpoint`).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
}

fn options(args: &ReportArgs) -> Result<ReportOptions, Failure> {
    let checkpoint = args
        .checkpoint
        .as_deref()
        .map(|p| {
            coffer::audit::Checkpoint::from_json(&read_to_string(p)?)
                .map_err(|e| Failure::input(format!("{}: {e}", p.display())))
        })
        .transpose()?;
    Ok(ReportOptions {
        accept_broken_trail: args.accept_broken_trail,
        checkpoint,
    })
}

fn write_file(path: &Path, text: &str) -> Result<(), Failure> {
    let mut f = util::AtomicFile::create(path)?;
    f.write_all(text.as_bytes())?;
    f.commit()
}

pub(crate) fn run(
    out: &mut dyn Write,
    store: &StoreArgs,
    command: ReportCommand,
    json: bool,
) -> Result<ExitCode, Failure> {
    if store.policy.is_none() {
        return Err(Failure::input(
            "reports need the access policy (it decides who may run them): pass --policy FILE or set COFFER_POLICY",
        ));
    }
    let coffer = store.open(false)?;
    let (report, common) = match command {
        ReportCommand::Subject {
            subject,
            envelopes,
            access,
            common,
        } => {
            let a = crate::ops::access(&access)?;
            let mut envs = Vec::new();
            if let Some(p) = &envelopes {
                crate::ops::envelope_batches(&coffer, Some(p), |batch| {
                    envs.extend(batch);
                    Ok(())
                })?;
            }
            let tenant = a.principal.tenant.clone();
            let r = coffer.subject_report(&tenant, &subject, &envs, &a, &options(&common)?)?;
            (Report::Subject(r), common)
        }
        ReportCommand::Incident {
            by,
            through,
            from,
            until,
            fields,
            access,
            common,
        } => {
            let a = crate::ops::access(&access)?;
            let query = IncidentQuery {
                tenant: None,
                principal: by,
                client: through,
                from,
                until,
                fields,
            };
            let r = coffer.affected(&query, &a, &options(&common)?)?;
            (Report::Incident(r), common)
        }
        ReportCommand::AccessReview {
            since,
            access,
            common,
        } => {
            let a = crate::ops::access(&access)?;
            let since = coffer::wire::parse_instant_text("--since", &since)?;
            let r = coffer.access_review(since, &a, &options(&common)?)?;
            (Report::AccessReview(r), common)
        }
        ReportCommand::Check {
            max_key_age_days,
            max_list_age_days,
            checkpoint_interval_days,
            max_backup_exposure_days,
            access,
            common,
        } => {
            let a = crate::ops::access(&access)?;
            let check = CheckOptions {
                max_key_age_days,
                max_list_age_days,
                checkpoint_interval_days,
                max_backup_exposure_days,
            };
            let r = coffer.compliance_check(&check, &a, &options(&common)?)?;
            (Report::Check(r), common)
        }
    };
    if let Some(p) = &common.html {
        write_file(p, &report.to_html())?;
    }
    if let Some(p) = &common.markdown {
        write_file(p, &report.to_markdown())?;
    }
    if json {
        let text = report.to_json();
        out.write_all(text.as_bytes())?;
        out.write_all(b"\n")?;
    } else {
        out.write_all(report.to_markdown().as_bytes())?;
    }
    let serious = match &report {
        Report::Check(c) => c
            .findings
            .iter()
            .any(|f| matches!(f.severity, Severity::Critical | Severity::High)),
        Report::Incident(i) => !i.trail.intact,
        Report::Subject(s) => !s.trail.intact,
        Report::AccessReview(r) => !r.trail.intact,
    };
    if serious {
        return Ok(ExitCode::from(EXIT_NO));
    }
    util::ok()
}
