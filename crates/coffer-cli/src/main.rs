//! `coffer`: the command-line tool around the Coffer library.
//!
//! Exit codes (also in `coffer --help` and `docs/CLI.md`): 0 success; 1 the answer is no
//! (records rejected, problems found, a chain or signature that does not verify); 2 usage errors
//! and input that cannot be read; 3 refused by the library (access denied, a hold, a missing
//! approval, not found); 4 the store failed (missing, locked, wrong master key); 130 interrupted.

use std::io::{self, BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use coffer::mask::{MaskRule, Masked, Profile};
use coffer::record::{CustomerKind, DEFAULT_SCHEMA_TOML, Schema};

mod demo;
mod input;
mod ops;
mod report;
mod seal;
mod synth;
mod util;

use util::{EXIT_INPUT, Failure, StoreArgs};

// Sealing in bulk allocates many small, short-lived buffers from two threads at once; glibc's
// allocator spent a third of `coffer seal`'s time on them, mimalloc a fraction of that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    the answer is no: records rejected, problems found, a chain or signature that does not verify
  2    usage error, or input that cannot be read or parsed
  3    refused: access denied, rate limited, a legal hold, a missing approval, not found
  4    the store failed: missing, locked by another process, wrong master key, damaged
  130  interrupted (Ctrl-C): no output file was written

Environment: COFFER_STORE, COFFER_MASTER_KEY (the key's text) or COFFER_MASTER_KEY_FILE,
COFFER_SCHEMA, COFFER_POLICY, COFFER_RETENTION, COFFER_ACTOR.";

#[derive(Parser)]
#[command(
    name = "coffer",
    version,
    about = "Field-level protection for customer records in accounting and ERP systems.",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// The store (an SQLite file).
    #[arg(long, global = true, env = "COFFER_STORE", default_value = "coffer.db")]
    store: PathBuf,
    /// A file holding the master key (32 raw bytes, or hex or base64 text). Without it, the
    /// key's text is read from COFFER_MASTER_KEY.
    #[arg(long, global = true, env = "COFFER_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    /// The record schema (TOML); the built-in one if not given.
    #[arg(long, global = true, env = "COFFER_SCHEMA")]
    schema: Option<PathBuf>,
    /// The access policy (TOML); needed by `reveal`.
    #[arg(long, global = true, env = "COFFER_POLICY")]
    policy: Option<PathBuf>,
    /// The retention rules (TOML); needed by `erase`, `retention plan` and `sweep`.
    #[arg(long, global = true, env = "COFFER_RETENTION")]
    retention: Option<PathBuf>,
    /// Who is acting, for the audit trail (default: $USER).
    #[arg(long, global = true, env = "COFFER_ACTOR")]
    actor: Option<String>,
    /// How long to wait for another process's lock on the store, in milliseconds.
    #[arg(long, global = true, default_value_t = 5000)]
    busy_timeout_ms: u64,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
}

/// Who asks, for what: the access request of `reveal` and `policy explain`.
#[derive(Args, Clone, Default)]
pub(crate) struct AccessArgs {
    /// The principal's id (a user or service).
    #[arg(long)]
    principal: Option<String>,
    /// The principal's tenant (firm or company book).
    #[arg(long)]
    tenant: Option<String>,
    /// A role the principal holds (repeat for several).
    #[arg(long = "role")]
    roles: Vec<String>,
    /// The purpose, as named in the policy.
    #[arg(long)]
    purpose: Option<String>,
    /// A ticket or case number justifying the access.
    #[arg(long)]
    ticket: Option<String>,
    /// A second person who approved the access.
    #[arg(long)]
    second_approver: Option<String>,
    /// Where the data is going (e.g. CN, DE).
    #[arg(long)]
    destination_region: Option<String>,
    /// Where the record is held (e.g. CN).
    #[arg(long)]
    record_region: Option<String>,
    /// The client application or channel the request comes through (recorded in the audit
    /// trail; incident scoping can select by it).
    #[arg(long)]
    client: Option<String>,
    /// The whole request as a JSON file instead (the C API's access JSON).
    #[arg(long, conflicts_with_all = ["principal", "roles", "purpose"])]
    access: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// A walk-through on a few thousand synthetic customers: seal, search, reveal as three
    /// roles, a denial explained, an erasure, thirty years of retention, certificates and a
    /// tampered audit trail caught.
    ///
    /// Example: coffer demo
    Demo {
        /// Keep the demo's store in this folder (default: a temporary folder, removed after).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// How many synthetic customers.
        #[arg(long, default_value_t = 3000)]
        customers: usize,
    },
    /// Write synthetic customers as CSV (valid check characters, clearly fake), for trials and
    /// benchmarks.
    ///
    /// Example: coffer generate --rows 10000 --invalid-every 100 > customers.csv
    Generate {
        /// How many rows.
        #[arg(long, default_value_t = 1000)]
        rows: u64,
        /// The tenant column's value.
        #[arg(long, default_value = "demo-firm")]
        tenant: String,
        /// Give every Nth row a wrong ID check character (0: none).
        #[arg(long, default_value_t = 0)]
        invalid_every: u64,
    },
    /// Create a store.
    ///
    /// Example: coffer keygen --out master.key && coffer init --store books.db --master-key-file master.key
    Init,
    /// Make a new random master key (base64), for a key file or a secret manager.
    ///
    /// Example: coffer keygen --out master.key
    Keygen {
        /// Write it to this file (created with mode 0600, never overwritten) instead of
        /// standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Validate customer records from CSV or JSON Lines.
    ///
    /// Prints one report per record: its line number, whether it is valid, and every issue
    /// with its field path and code (never a value). Exit code 1 if any record is invalid.
    ///
    /// Example: coffer validate customers.csv --tenant acme --json > reports.jsonl
    Validate {
        /// The input file; `-` or nothing for standard input (JSON Lines).
        file: Option<PathBuf>,
        #[command(flatten)]
        input: InputArgs,
        /// Check birth dates against this date (YYYY-MM-DD) instead of today.
        #[arg(long)]
        today: Option<String>,
    },
    /// Seal customer records from CSV or JSON Lines into envelopes (JSON Lines), on every core.
    ///
    /// Each envelope goes to --out in input order; each row that cannot be sealed goes to the
    /// rejects file with its line number and report (never its values). Both files appear only
    /// when complete. Exit code 1 if any row was rejected.
    ///
    /// Example: coffer seal customers.csv --tenant acme --out envelopes.jsonl
    Seal {
        /// The input file; `-` or nothing for standard input (JSON Lines).
        file: Option<PathBuf>,
        #[command(flatten)]
        input: InputArgs,
        /// Where the envelopes go (`-` for standard output).
        #[arg(long, short)]
        out: PathBuf,
        /// Where rejected rows go (default: OUT.rejects.jsonl).
        #[arg(long)]
        rejects: Option<PathBuf>,
        /// Records per batch (one audit transaction each).
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Worker threads (default: one more than the cores, so that one seals while another
        /// waits for the store).
        #[arg(long)]
        threads: Option<usize>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Reveal envelopes (JSON Lines) as a principal, decided by the policy and audited.
    ///
    /// Example: coffer reveal envelopes.jsonl --policy policy.toml --principal u-7 --tenant acme --role accountant --purpose payments
    Reveal {
        /// The envelopes file; `-` or nothing for standard input.
        file: Option<PathBuf>,
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Redact envelopes (JSON Lines): remove what categories with destroyed keys left in them
    /// (ciphertexts, masked forms, blind-index tokens) and rewrite version 1 envelopes as
    /// version 2. Writes one line per envelope: `{"record", "changed", "shredded_categories",
    /// "clear_index", "envelope"}`; store each `envelope` in place of the old one and clear
    /// the index columns `clear_index` names.
    ///
    /// Example: coffer redact envelopes.jsonl > redacted.jsonl
    Redact {
        /// The envelopes file; `-` or nothing for standard input.
        file: Option<PathBuf>,
    },
    /// Print the blind-index tokens for field values, to look up in the host's database.
    ///
    /// A search is an access like a reveal: the policy decides it (action `search`), it counts
    /// against the rate limits and it is audited. Values are read from standard input, one per
    /// line, when not given, which keeps them out of the shell's history and the process list.
    ///
    /// Example: printf '110101 19800101 007X\n' | coffer search --field 'id_documents[].number' --principal u-1 --tenant acme --role accountant --purpose payments
    Search {
        /// The field pattern, e.g. `id_documents[].number` or `phones[]`.
        #[arg(long)]
        field: String,
        /// The value (default: one per line from standard input).
        value: Option<String>,
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Blind-index planning.
    #[command(subcommand)]
    Index(IndexCommand),
    /// Check and explain access policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Retention: what a sweep would do.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Destroy the keys whose retention has ended (destroy rules), and propose destruction
    /// lists for the rest (review rules).
    ///
    /// Example: coffer sweep --retention retention.toml
    Sweep,
    /// Approve a destruction list.
    ///
    /// Example: coffer approve 3 --approver wang --role archive_head
    Approve {
        /// The list's id (from `coffer sweep`).
        list: i64,
        /// Who approves.
        #[arg(long)]
        approver: String,
        /// In which role (one of the retention rules' approver_roles).
        #[arg(long)]
        role: String,
    },
    /// Carry out an approved destruction list; prints its signed certificate.
    ///
    /// Example: coffer execute 3 --json > certificate.json
    Execute {
        /// The list's id.
        list: i64,
    },
    /// Legal holds.
    #[command(subcommand)]
    Hold(HoldCommand),
    /// Whole stores: copy one to another backend.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Back the store up to a new file while others go on using it, with a signed manifest
    /// beside it (BACKUP.manifest.json). Both are created readable by their owner only.
    ///
    /// Example: coffer backup /backups/coffer-2026-12-04.db
    Backup {
        /// The backup file to create (never overwritten).
        path: PathBuf,
    },
    /// Restore a backup as the store (--store), never bringing a destroyed key back: every
    /// destruction recorded after the backup is applied again, from the store being replaced
    /// when it can still be read and from the certificates given. The replaced store is kept
    /// beside it as STORE.replaced-TIME. Stop every process using the store first.
    ///
    /// Example: coffer restore /backups/coffer-2026-12-04.db --certificates certs.jsonl
    Restore {
        /// The backup file (its manifest is read from BACKUP.manifest.json).
        backup: PathBuf,
        /// Destruction certificates kept since the backup: a JSON certificate, an array of
        /// them, or JSON Lines of them, or of the answers of `erase --json` and `sweep --json`
        /// that carry them; repeat for several files.
        #[arg(long)]
        certificates: Vec<PathBuf>,
        /// State that nothing was destroyed after the backup (needed when the store being
        /// replaced is unreadable and no certificate is given).
        #[arg(long)]
        no_later_destructions: bool,
    },
    /// Answer a data subject's erasure request: destroy what no law keeps, restrict the rest.
    ///
    /// Example: coffer erase --tenant acme --subject s-17
    Erase {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The data subject.
        #[arg(long)]
        subject: String,
    },
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Key rotation.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Archives: envelopes with their keys, signed, for long-term storage or another store.
    #[command(subcommand)]
    Archive(ArchiveCommand),
    /// Mask values read from standard input, one per line.
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
    /// Compliance reports: a subject's own report, incident scoping, access review and a
    /// compliance check (Markdown, --json, or --html FILE with charts).
    #[command(subcommand)]
    Report(report::ReportCommand),
}

#[derive(Args, Clone)]
struct InputArgs {
    /// The input format (default: by extension, `.csv` or else JSON Lines).
    #[arg(long, value_enum)]
    format: Option<input::Format>,
    /// The tenant for rows without a `tenant` column.
    #[arg(long)]
    tenant: Option<String>,
    /// The kind (individual or company) for rows without a `kind` column.
    #[arg(long)]
    kind: Option<String>,
}

impl InputArgs {
    fn defaults(&self) -> Result<input::Defaults, Failure> {
        Ok(input::Defaults {
            tenant: self.tenant.clone(),
            kind: self
                .kind
                .as_deref()
                .map(|k| {
                    CustomerKind::parse(k).ok_or_else(|| {
                        Failure::input(format!("--kind: expected individual or company, got {k:?}"))
                    })
                })
                .transpose()?,
        })
    }
}

#[derive(Subcommand)]
enum IndexCommand {
    /// Recommend a blind-index width for a number of records and distinct values.
    ///
    /// Example: coffer index plan --records 1000000 --distinct 1000000
    Plan {
        /// How many records will be indexed.
        #[arg(long)]
        records: u64,
        /// How many distinct values the field takes.
        #[arg(long)]
        distinct: u64,
    },
}

// Parsed once per run: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum PolicyCommand {
    /// Load a policy and report every problem with its line and column (exit code 1 if any).
    ///
    /// Example: coffer policy check policy.toml
    Check {
        /// The policy file (TOML, or JSON by extension).
        file: PathBuf,
    },
    /// Explain why a request gets what it gets: every rule, whether it applied and why, and
    /// each field's effect.
    ///
    /// Example: coffer policy explain --policy policy.toml --principal u-7 --tenant acme --role clerk --purpose payments
    Explain {
        #[command(flatten)]
        access: AccessArgs,
        /// The action: read, search, write, export, erase or admin.
        #[arg(long, default_value = "read")]
        action: String,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// What a sweep would destroy, propose for review, and hold back (changes nothing).
    ///
    /// Example: coffer retention plan --retention retention.toml --as-of 2056-01-01
    Plan {
        /// Plan as of this date instead of today (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
}

#[derive(Subcommand)]
enum HoldCommand {
    /// Place a legal hold: covered keys are never destroyed while it lasts.
    ///
    /// Example: coffer hold add --tenant acme --subject s-17 --reason "tax inspection 2026-14"
    Add {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// One subject (default: every subject of the tenant).
        #[arg(long)]
        subject: Option<String>,
        /// One retention category (default: every one).
        #[arg(long)]
        category: Option<String>,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Until when (YYYY-MM-DD; default: until released).
        #[arg(long)]
        until: Option<String>,
        /// An open matter: never lapses by itself.
        #[arg(long)]
        open_matter: bool,
    },
    /// Release a hold (keys it covered become due for their rules again).
    ///
    /// Example: coffer hold list --tenant acme --json && coffer hold release 4
    Release {
        /// The hold's id.
        id: i64,
    },
    /// List holds, with what each covers and until when.
    ///
    /// Example: coffer hold list --tenant acme
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the audit chain (and that it reaches a checkpoint); exit code 1 if broken.
    ///
    /// Example: coffer audit verify --checkpoint checkpoint.json
    Verify {
        /// A checkpoint kept outside the store (from `coffer audit checkpoint`).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Export the audit trail as JSON Lines (entries carry no plaintext).
    ///
    /// As stored, each entry with its seq and chain MAC: a batch of seals, reveals or key
    /// creations is one entry (`seal.batch` …) listing its records. With --expanded, one line
    /// per event instead, for reading or a SIEM.
    ///
    /// Example: coffer audit export --out audit-2026.jsonl
    Export {
        /// Write here instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// One line per event: each record of a batch entry on its own line, with the batch's
        /// seq and its place in it (`item`, from 0), and no MAC (the chain's MAC is over the
        /// stored entry; keep the plain export as evidence).
        #[arg(long)]
        expanded: bool,
    },
    /// Write a checkpoint of the chain's head, to keep outside the store.
    ///
    /// Example: coffer audit checkpoint --out /mnt/offsite/checkpoint-2026-11-27.json
    Checkpoint {
        /// Write here instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy a whole store into a new one, on the same or another backend (an SQLite file, or
    /// a PostgreSQL URL `postgres://user@host/db?schema=coffer`), then verify the copy: every
    /// table read back equal, the same summary, and the audit chain verified with the master
    /// key. The destination must be new; the source is only read (one snapshot).
    ///
    /// Example: coffer store copy coffer.db 'postgres://coffer@db.internal/erp?sslmode=require'
    Copy {
        /// The store to copy (file or URL).
        source: PathBuf,
        /// The new store (file or URL).
        destination: PathBuf,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Rotate a key: `kek` (then rewrap every data key), `index` (a new blind-index epoch),
    /// or `master` (rewrap the keyring under --new-master-key-file).
    ///
    /// With `kek --retire`, the older KEKs are then deleted for good, so that no copy of the
    /// store taken from then on can open a data key destroyed before (see docs/RETENTION.md).
    /// Batched and resumable: interrupted, run it again and it finishes the same rotation.
    ///
    /// Example: coffer keys rotate kek --retire
    Rotate {
        /// Which key.
        #[arg(value_enum)]
        which: WhichKey,
        /// The new master key file (for `master`).
        #[arg(long)]
        new_master_key_file: Option<PathBuf>,
        /// For `kek`: delete the older KEKs once every live data key is rewrapped.
        #[arg(long)]
        retire: bool,
        /// For `kek`: data keys rewrapped per transaction.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum WhichKey {
    Kek,
    Index,
    Master,
}

// Parsed once per run: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum ArchiveCommand {
    /// Export envelopes (JSON Lines) with their data keys, re-wrapped under an archive key,
    /// in a signed bundle.
    ///
    /// The policy must allow the principal the `export` action on every field; one audit entry
    /// per data subject records the export.
    ///
    /// Example: coffer archive export envelopes.jsonl --archive-key-file archive.key --out 2026.bundle.json --principal u-1 --tenant acme --role auditor --purpose statutory_audit --ticket AUD-7
    Export {
        /// The envelopes file.
        file: PathBuf,
        /// The archive key (32 bytes; make one with `coffer keygen`).
        #[arg(long)]
        archive_key_file: PathBuf,
        /// The bundle file.
        #[arg(long, short)]
        out: PathBuf,
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Verify a bundle offline against the exporting store's public key; with the archive key,
    /// also every key and envelope. Exit code 1 if it does not verify.
    ///
    /// Example: coffer archive verify 2026.bundle.json --public-key "$(cat store.pub)" --archive-key-file archive.key
    Verify {
        /// The bundle.
        file: PathBuf,
        /// The exporting store's public key (base64url; `coffer init` prints it). Default:
        /// this store's.
        #[arg(long)]
        public_key: Option<String>,
        /// The archive key, to check the contents too.
        #[arg(long)]
        archive_key_file: Option<PathBuf>,
    },
    /// Restore a bundle into this store; writes the envelopes, MAC'd and indexed for it.
    ///
    /// Example: coffer archive restore 2026.bundle.json --public-key "$(cat store.pub)" --archive-key-file archive.key --out restored.jsonl
    Restore {
        /// The bundle.
        file: PathBuf,
        /// The exporting store's public key (base64url). Default: this store's.
        #[arg(long)]
        public_key: Option<String>,
        /// The archive key.
        #[arg(long)]
        archive_key_file: PathBuf,
        /// Where the restored envelopes go (JSON Lines).
        #[arg(long, short)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum SchemaCommand {
    /// Print the built-in schema (TOML), a starting point for your own.
    ///
    /// Example: coffer schema show > my-schema.toml
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
    util::install_interrupt_handler();
    let g = &cli.global;
    let store = StoreArgs {
        store: g.store.clone(),
        master_key_file: g.master_key_file.clone(),
        schema: g.schema.clone(),
        policy: g.policy.clone(),
        retention: g.retention.clone(),
        busy_timeout_ms: g.busy_timeout_ms,
        actor: g
            .actor
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "coffer-cli".into()),
    };
    let json = g.json;
    // Not `stdout().lock()`: `coffer seal -o -` writes standard output from its writer thread,
    // which would wait forever for a lock this thread held.
    let mut out = BufWriter::new(io::stdout());
    let result = run(cli.command, &store, json, &mut out);
    let flushed = out.flush();
    match (result, flushed) {
        (Ok(code), Ok(())) => code,
        (Err(e), _) => {
            let _ = writeln!(io::stderr(), "coffer: {e}");
            ExitCode::from(e.code)
        }
        // A closed pipe (`coffer validate | head`) is not an error worth a message.
        (Ok(_), Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        (Ok(_), Err(e)) => {
            let _ = writeln!(io::stderr(), "coffer: {e}");
            ExitCode::from(EXIT_INPUT)
        }
    }
}

fn run(
    command: Command,
    store: &StoreArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<ExitCode, Failure> {
    match command {
        Command::Demo { dir, customers } => demo::run(out, dir, customers),
        Command::Generate {
            rows,
            tenant,
            invalid_every,
        } => {
            synth::write_csv(out, rows, &tenant, invalid_every)?;
            util::ok()
        }
        Command::Init => ops::init(out, store, json),
        Command::Keygen { out: file } => ops::keygen(out, file.as_deref()),
        Command::Validate { file, input, today } => {
            validate(out, store, file, &input, today.as_deref(), json)
        }
        Command::Seal {
            file,
            input,
            out: to,
            rejects,
            batch,
            threads,
            quiet,
        } => seal::run(
            store,
            seal::SealArgs {
                format: input.format,
                defaults: input.defaults()?,
                file,
                out: to,
                rejects,
                batch,
                threads,
                progress: !quiet,
                json,
            },
        ),
        Command::Reveal { file, access } => ops::reveal(out, store, file, &access, json),
        Command::Redact { file } => ops::redact(out, store, file),
        Command::Report(command) => report::run(out, store, command, json),
        Command::Search {
            field,
            value,
            access,
        } => ops::search(out, store, &field, value, &access, json),
        Command::Index(IndexCommand::Plan { records, distinct }) => {
            ops::index_plan(out, records, distinct, json)
        }
        Command::Policy(PolicyCommand::Check { file }) => {
            ops::policy_check(out, store, &file, json)
        }
        Command::Policy(PolicyCommand::Explain { access, action }) => {
            ops::policy_explain(out, store, &access, &action, json)
        }
        Command::Retention(RetentionCommand::Plan { as_of }) => {
            ops::retention_plan(out, store, as_of.as_deref(), json)
        }
        Command::Sweep => ops::sweep(out, store, json),
        Command::Approve {
            list,
            approver,
            role,
        } => ops::approve(out, store, list, &approver, &role, json),
        Command::Execute { list } => ops::execute(out, store, list, json),
        Command::Hold(HoldCommand::Add {
            tenant,
            subject,
            category,
            reason,
            until,
            open_matter,
        }) => ops::hold_add(
            out,
            store,
            coffer::Hold {
                tenant,
                subject,
                category,
                reason,
                until: until
                    .map(|u| {
                        coffer::wire::parse_date(&u).map_err(|_| {
                            Failure::input(format!("--until: expected YYYY-MM-DD, got {u:?}"))
                        })
                    })
                    .transpose()?,
                open_matter,
            },
            json,
        ),
        Command::Hold(HoldCommand::Release { id }) => ops::hold_release(out, store, id, json),
        Command::Hold(HoldCommand::List { tenant }) => {
            ops::hold_list(out, store, tenant.as_deref(), json)
        }
        Command::Erase { tenant, subject } => ops::erase(out, store, &tenant, &subject, json),
        Command::Backup { path } => ops::backup(out, store, &path, json),
        Command::Store(StoreCommand::Copy {
            source,
            destination,
        }) => ops::store_copy(out, store, &source, &destination, json),
        Command::Restore {
            backup,
            certificates,
            no_later_destructions,
        } => ops::restore(
            out,
            store,
            &backup,
            &certificates,
            no_later_destructions,
            json,
        ),
        Command::Audit(AuditCommand::Verify { checkpoint }) => {
            ops::audit_verify(out, store, checkpoint.as_deref(), json)
        }
        Command::Audit(AuditCommand::Export { out: to, expanded }) => {
            ops::audit_export(out, store, to.as_deref(), expanded, json)
        }
        Command::Audit(AuditCommand::Checkpoint { out: to }) => {
            ops::audit_checkpoint(out, store, to.as_deref(), json)
        }
        Command::Keys(KeysCommand::Rotate {
            which,
            new_master_key_file,
            retire,
            batch,
        }) => ops::rotate(
            out,
            store,
            match which {
                WhichKey::Kek => ops::Rotation::Kek { retire, batch },
                WhichKey::Index => ops::Rotation::Index,
                WhichKey::Master => {
                    ops::Rotation::Master(new_master_key_file.ok_or_else(|| {
                        Failure::input("keys rotate master needs --new-master-key-file")
                    })?)
                }
            },
            json,
        ),
        Command::Archive(ArchiveCommand::Export {
            file,
            archive_key_file,
            out: to,
            access,
        }) => ops::archive_export(out, store, &file, &archive_key_file, &to, &access, json),
        Command::Archive(ArchiveCommand::Verify {
            file,
            public_key,
            archive_key_file,
        }) => ops::archive_verify(
            out,
            store,
            &file,
            public_key.as_deref(),
            archive_key_file.as_deref(),
            json,
        ),
        Command::Archive(ArchiveCommand::Restore {
            file,
            public_key,
            archive_key_file,
            out: to,
        }) => ops::archive_restore(
            out,
            store,
            &file,
            public_key.as_deref(),
            &archive_key_file,
            &to,
            json,
        ),
        Command::Mask { rule, profile } => mask(out, &rule, profile),
        Command::Schema(SchemaCommand::Show) => {
            out.write_all(DEFAULT_SCHEMA_TOML.as_bytes())?;
            util::ok()
        }
        Command::Schema(SchemaCommand::Check { file }) => schema_check(out, &file),
    }
}

fn parse_today(today: Option<&str>) -> Result<time::Date, Failure> {
    match today {
        None => Ok(time::OffsetDateTime::now_utc().date()),
        Some(s) => coffer::wire::parse_date(s).map_err(|_| {
            Failure::input(format!("--today: expected a date as YYYY-MM-DD, got {s:?}"))
        }),
    }
}

fn validate(
    out: &mut dyn Write,
    store: &StoreArgs,
    file: Option<PathBuf>,
    input: &InputArgs,
    today: Option<&str>,
    json: bool,
) -> Result<ExitCode, Failure> {
    let schema: Schema = store.load_schema()?;
    let today = parse_today(today)?;
    let format = input::detect(input.format, file.as_deref());
    let mut rows = input::open(file.as_ref(), format, input.defaults()?)?;
    let (mut total, mut invalid) = (0usize, 0usize);
    while let Some(row) = rows.next_row() {
        if util::interrupted() {
            return Err(Failure::interrupted());
        }
        let row = row?;
        total += 1;
        let line_no = row.line;
        let outcome = row.record.map(|mut record| {
            record.normalize();
            (record.id.clone(), schema.validate(&record, today))
        });
        let valid = outcome.as_ref().is_ok_and(|(_, r)| r.is_valid());
        if !valid {
            invalid += 1;
        }
        match (&outcome, json) {
            (Ok((id, report)), true) => writeln!(
                out,
                "{{\"line\":{line_no},\"id\":{},\"report\":{}}}",
                serde_json::Value::from(id.as_str()),
                report.to_json()
            )?,
            (Err(e), true) => {
                let error = serde_json::json!({"code": e.code, "message": e.message});
                writeln!(
                    out,
                    "{{\"line\":{line_no},\"report\":{{\"valid\":false,\"error\":{error}}}}}"
                )?;
            }
            (Ok((id, report)), false) if !report.issues.is_empty() => {
                writeln!(
                    out,
                    "line {line_no} ({id}): {}",
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
            (Err(e), false) => writeln!(out, "line {line_no}: UNREADABLE: {}", e.message)?,
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
        ExitCode::from(util::EXIT_NO)
    } else {
        ExitCode::SUCCESS
    })
}

fn mask(out: &mut dyn Write, rule: &str, profile: ProfileArg) -> Result<ExitCode, Failure> {
    let rule = MaskRule::parse(rule)
        .ok_or_else(|| Failure::input(format!("unknown mask rule {rule:?}")))?;
    let profile = match profile {
        ProfileArg::Standard => Profile::Standard,
        ProfileArg::Privileged => Profile::Privileged,
    };
    for line in io::stdin().lock().lines() {
        let line = zeroize::Zeroizing::new(line?);
        match rule.apply(line.trim_end_matches('\r'), profile) {
            Masked::Text(t) => writeln!(out, "{t}")?,
            Masked::Withheld => writeln!(out)?,
            Masked::KeyedHash => {
                return Err(Failure::input("keyed_hash masking needs an opened store"));
            }
        }
    }
    util::ok()
}

fn schema_check(out: &mut dyn Write, file: &std::path::Path) -> Result<ExitCode, Failure> {
    match Schema::from_toml(&util::read_to_string(file)?) {
        Ok(schema) => {
            writeln!(
                out,
                "{}: schema `{}` is valid",
                file.display(),
                schema.name()
            )?;
            util::ok()
        }
        Err(coffer::Error::Schema { problems }) => {
            for p in &problems.0 {
                writeln!(out, "{}:{p}", file.display())?;
            }
            writeln!(out, "{} problem(s)", problems.0.len())?;
            Ok(ExitCode::from(util::EXIT_NO))
        }
        Err(e) => {
            writeln!(out, "{}: {e}", file.display())?;
            Ok(ExitCode::from(util::EXIT_NO))
        }
    }
}
