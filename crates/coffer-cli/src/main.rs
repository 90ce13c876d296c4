//! `coffer`: the command-line tool around the Coffer library.
//!
//! Exit codes: 0 success; 1 the input had invalid records (`validate`) or problems (`schema
//! check`); 2 usage errors, unreadable files and malformed input.

use std::io::{self, BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use coffer::mask::{MaskRule, Masked, Profile};
use coffer::record::{CustomerRecord, DEFAULT_SCHEMA_TOML, Schema};

mod demo;

#[derive(Parser)]
#[command(
    name = "coffer",
    version,
    about = "Field-level protection for customer records in accounting and ERP systems."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Walk through validation and masking of synthetic customer records.
    ///
    /// Example: coffer demo
    Demo,
    /// Validate customer records, one JSON object per line (JSON Lines).
    ///
    /// Prints one report per record: its line number, whether it is valid, and every issue
    /// with its field path and code (never a value). Exit code 1 if any record is invalid.
    ///
    /// Example: coffer validate customers.jsonl --json > reports.jsonl
    Validate {
        /// The JSON Lines file; `-` or nothing for standard input.
        file: Option<PathBuf>,
        /// A schema file (TOML); the built-in schema if not given.
        #[arg(long)]
        schema: Option<PathBuf>,
        /// Check birth dates against this date (YYYY-MM-DD) instead of today.
        #[arg(long)]
        today: Option<String>,
        /// Print machine-readable JSON Lines.
        #[arg(long)]
        json: bool,
    },
    /// Mask values read from standard input, one per line.
    ///
    /// Values are read from standard input, not the command line, so that they do not end
    /// up in the shell's history or the process list.
    ///
    /// Example: printf '13800000000\n' | coffer mask --rule phone
    Mask {
        /// The mask rule: name, phone, id_number, card, account, iban, email, address, date,
        /// last4, initial, withhold or clear.
        #[arg(long)]
        rule: String,
        /// The profile.
        #[arg(long, value_enum, default_value_t = ProfileArg::Standard)]
        profile: ProfileArg,
    },
    /// Show or check schemas.
    #[command(subcommand)]
    Schema(SchemaCommand),
}

#[derive(Subcommand)]
enum SchemaCommand {
    /// Print the built-in schema (TOML), a starting point for your own.
    Show,
    /// Load a schema file and report every problem with its line and column.
    ///
    /// Example: coffer schema check my-schema.toml
    Check {
        /// The schema file.
        file: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ProfileArg {
    Standard,
    Privileged,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = match cli.command {
        Command::Demo => demo::run(&mut out).map(|()| ExitCode::SUCCESS),
        Command::Validate {
            file,
            schema,
            today,
            json,
        } => validate(&mut out, file, schema, today, json),
        Command::Mask { rule, profile } => mask(&mut out, &rule, profile),
        Command::Schema(SchemaCommand::Show) => out
            .write_all(DEFAULT_SCHEMA_TOML.as_bytes())
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
        Command::Schema(SchemaCommand::Check { file }) => schema_check(&mut out, &file),
    };
    let flushed = out.flush();
    match (result, flushed) {
        (Ok(code), Ok(())) => code,
        (Err(e), _) => {
            let _ = writeln!(io::stderr(), "coffer: {e}");
            ExitCode::from(2)
        }
        // A closed pipe (`coffer validate | head`) is not an error worth a message.
        (Ok(_), Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        (Ok(_), Err(e)) => {
            let _ = writeln!(io::stderr(), "coffer: {e}");
            ExitCode::from(2)
        }
    }
}

/// Errors that end a command: a message for the user and exit code 2.
#[derive(Debug)]
struct Failure(String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure(e.to_string())
    }
}

impl From<coffer::Error> for Failure {
    fn from(e: coffer::Error) -> Self {
        Failure(e.to_string())
    }
}

fn read_to_string(path: &PathBuf) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))
}

fn load_schema(path: Option<&PathBuf>) -> Result<Schema, Failure> {
    match path {
        None => Ok(Schema::builtin().clone()),
        Some(p) => Ok(Schema::from_toml(&read_to_string(p)?)?),
    }
}

fn parse_today(today: Option<&str>) -> Result<time::Date, Failure> {
    match today {
        None => Ok(time::OffsetDateTime::now_utc().date()),
        Some(s) => time::Date::parse(s, &time::format_description::well_known::Iso8601::DATE)
            .map_err(|_| Failure(format!("--today: expected a date as YYYY-MM-DD, got {s:?}"))),
    }
}

fn validate(
    out: &mut dyn Write,
    file: Option<PathBuf>,
    schema: Option<PathBuf>,
    today: Option<String>,
    json: bool,
) -> Result<ExitCode, Failure> {
    let schema = load_schema(schema.as_ref())?;
    let today = parse_today(today.as_deref())?;
    let input: Box<dyn BufRead> = match &file {
        None => Box::new(io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(io::stdin().lock()),
        Some(p) => {
            Box::new(io::BufReader::new(std::fs::File::open(p).map_err(|e| {
                Failure(format!("cannot open {}: {e}", p.display()))
            })?))
        }
    };
    let (mut total, mut invalid) = (0usize, 0usize);
    for (n, line) in input.split(b'\n').enumerate() {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        total += 1;
        let line_no = n + 1;
        let outcome = CustomerRecord::from_json_bytes(&line).map(|mut record| {
            record.normalize();
            schema.validate(&record, today)
        });
        let valid = outcome.as_ref().is_ok_and(|r| r.is_valid());
        if !valid {
            invalid += 1;
        }
        match (&outcome, json) {
            (Ok(report), true) => writeln!(
                out,
                "{{\"line\":{line_no},\"report\":{}}}",
                report.to_json()
            )?,
            (Err(e), true) => {
                let error = serde_json::json!({"code": e.code(), "kind": e.kind().name(), "message": e.to_string()});
                writeln!(
                    out,
                    "{{\"line\":{line_no},\"report\":{{\"valid\":false,\"error\":{error}}}}}"
                )?;
            }
            (Ok(report), false) if !report.issues.is_empty() => {
                writeln!(
                    out,
                    "line {line_no}: {}",
                    if valid {
                        "valid, with warnings"
                    } else {
                        "INVALID"
                    }
                )?;
                for issue in &report.issues {
                    writeln!(out, "    {issue}")?;
                }
            }
            (Ok(_), false) => {}
            (Err(e), false) => writeln!(out, "line {line_no}: UNREADABLE: {e}")?,
        }
    }
    if !json {
        writeln!(
            out,
            "{total} record(s), {} valid, {invalid} invalid",
            total - invalid
        )?;
    }
    Ok(if invalid > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn mask(out: &mut dyn Write, rule: &str, profile: ProfileArg) -> Result<ExitCode, Failure> {
    let rule =
        MaskRule::parse(rule).ok_or_else(|| Failure(format!("unknown mask rule {rule:?}")))?;
    let profile = match profile {
        ProfileArg::Standard => Profile::Standard,
        ProfileArg::Privileged => Profile::Privileged,
    };
    for line in io::stdin().lock().lines() {
        let line = line?;
        match rule.apply(line.trim_end_matches('\r'), profile) {
            Masked::Text(t) => writeln!(out, "{t}")?,
            Masked::Withheld => writeln!(out)?,
            Masked::KeyedHash => {
                return Err(Failure("keyed_hash masking needs an opened store".into()));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn schema_check(out: &mut dyn Write, file: &PathBuf) -> Result<ExitCode, Failure> {
    match Schema::from_toml(&read_to_string(file)?) {
        Ok(schema) => {
            writeln!(
                out,
                "{}: schema `{}` is valid",
                file.display(),
                schema.name()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(coffer::Error::Schema { problems }) => {
            for p in &problems.0 {
                writeln!(out, "{}:{p}", file.display())?;
            }
            writeln!(out, "{} problem(s)", problems.0.len())?;
            Ok(ExitCode::from(1))
        }
        Err(e) => {
            writeln!(out, "{}: {e}", file.display())?;
            Ok(ExitCode::from(1))
        }
    }
}
