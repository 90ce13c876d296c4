//! What every command shares: failures and exit codes, opening the store, reading files,
//! output that appears whole or not at all, and Ctrl-C.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use coffer::clock::{Clock, FixedClock};
use coffer::policy::Policy;
use coffer::record::Schema;
use coffer::retention::Retention;
use coffer::{Coffer, ErrorKind, MasterKey, OpenOptions};

/// Exit code: the command ran and the answer is no (records rejected, problems found, the audit
/// chain or a signature does not verify).
pub(crate) const EXIT_NO: u8 = 1;
/// Exit code: a usage error, or input that cannot be read or parsed.
pub(crate) const EXIT_INPUT: u8 = 2;
/// Exit code: the library refused (access denied, a hold, a missing approval, not found).
pub(crate) const EXIT_REFUSED: u8 = 3;
/// Exit code: the store failed (missing, locked by another process, wrong master key, damaged).
pub(crate) const EXIT_STORE: u8 = 4;
/// Exit code: interrupted (Ctrl-C); nothing was written to the output files.
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// An error that ends a command: a message for the user and an exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn input(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_INPUT,
            message: message.into(),
        }
    }

    pub(crate) fn interrupted() -> Failure {
        Failure {
            code: EXIT_INTERRUPTED,
            message: "interrupted: no output file was written".into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::input(e.to_string())
    }
}

impl From<coffer::Error> for Failure {
    fn from(e: coffer::Error) -> Self {
        Failure {
            code: exit_code_for(e.kind()),
            message: e.to_string(),
        }
    }
}

/// The exit code for a library error, by kind (documented in `docs/CLI.md`).
pub(crate) fn exit_code_for(kind: ErrorKind) -> u8 {
    use ErrorKind as K;
    match kind {
        K::InvalidArgument
        | K::Malformed
        | K::LimitExceeded
        | K::Validation
        | K::Schema
        | K::Policy
        | K::UnsupportedVersion => EXIT_INPUT,
        K::AccessDenied
        | K::RateLimited
        | K::KeyNotFound
        | K::Shredded
        | K::Retention
        | K::LegalHold
        | K::Approval
        | K::NotFound => EXIT_REFUSED,
        K::Integrity => EXIT_NO,
        _ => EXIT_STORE,
    }
}

/// Opens an input file for streaming; a folder is refused by name here rather than failing
/// on its first read.
pub(crate) fn open_file(path: &Path) -> Result<std::fs::File, Failure> {
    let f = std::fs::File::open(path)
        .map_err(|e| Failure::input(format!("cannot open {}: {e}", path.display())))?;
    if f.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(Failure::input(format!(
            "cannot read {}: it is a folder, not a file",
            path.display()
        )));
    }
    Ok(f)
}

pub(crate) fn read_to_string(path: &Path) -> Result<String, Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::input(format!("cannot read {}: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|e| {
        Failure::input(format!(
            "{} is not UTF-8 (first bad byte at offset {}); convert it, e.g. iconv -f GB18030 -t UTF-8",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// The options every store command shares.
#[derive(Clone, Debug, Default)]
pub(crate) struct StoreArgs {
    pub(crate) store: PathBuf,
    pub(crate) master_key_file: Option<PathBuf>,
    pub(crate) schema: Option<PathBuf>,
    pub(crate) policy: Option<PathBuf>,
    pub(crate) retention: Option<PathBuf>,
    pub(crate) busy_timeout_ms: u64,
    pub(crate) actor: String,
}

impl StoreArgs {
    pub(crate) fn load_schema(&self) -> Result<Schema, Failure> {
        match &self.schema {
            None => Ok(Schema::builtin().clone()),
            Some(p) => Schema::from_toml(&read_to_string(p)?)
                .map_err(|e| Failure::input(format!("{}: {e}", p.display()))),
        }
    }

    pub(crate) fn load_policy(&self, schema: &Schema) -> Result<Option<Policy>, Failure> {
        self.policy
            .as_ref()
            .map(|p| {
                Policy::from_toml(&read_to_string(p)?, schema)
                    .map_err(|e| Failure::input(format!("{}: {e}", p.display())))
            })
            .transpose()
    }

    pub(crate) fn master_key(&self) -> Result<MasterKey, Failure> {
        match &self.master_key_file {
            Some(p) => MasterKey::from_file(p).map_err(|e| Failure::input(e.to_string())),
            None if std::env::var_os("COFFER_MASTER_KEY").is_some() => {
                MasterKey::from_env("COFFER_MASTER_KEY").map_err(|e| Failure::input(e.to_string()))
            }
            None => Err(Failure::input(
                "no master key: pass --master-key-file FILE or set COFFER_MASTER_KEY \
                 (make one with `coffer keygen`)",
            )),
        }
    }

    /// Opens the store; `create` for `coffer init` only, so that a mistyped path is an error
    /// rather than a new, empty store.
    pub(crate) fn open(&self, create: bool) -> Result<Coffer, Failure> {
        self.open_at(create, None)
    }

    /// Opens the store with its clock fixed at `now` (a dry run "as of" another date).
    pub(crate) fn open_at(
        &self,
        create: bool,
        now: Option<time::OffsetDateTime>,
    ) -> Result<Coffer, Failure> {
        // A PostgreSQL URL: the server says whether the store exists.
        let exists = match self.store.to_str() {
            Some(url) if coffer::store::is_server_url(url) => {
                match coffer::store::open(&self.store, false) {
                    Ok(s) => !s.keyring().map_err(Failure::from)?.is_empty(),
                    Err(e) if e.kind() == coffer::ErrorKind::NotFound => false,
                    Err(e) => return Err(e.into()),
                }
            }
            _ => self.store.exists(),
        };
        if create && exists {
            return Err(Failure::input(format!(
                "{} already exists; `coffer init` does not overwrite a store",
                self.store.display()
            )));
        }
        if !create && !exists {
            return Err(Failure {
                code: EXIT_STORE,
                message: format!(
                    "no store at {} (create one with `coffer init`, or pass --store)",
                    self.store.display()
                ),
            });
        }
        let master = self.master_key()?;
        let schema = self.load_schema()?;
        let policy = self.load_policy(&schema)?;
        let retention = self
            .retention
            .as_ref()
            .map(|p| {
                Retention::from_toml(&read_to_string(p)?, &schema)
                    .map_err(|e| Failure::input(format!("{}: {e}", p.display())))
            })
            .transpose()?;
        let mut options = OpenOptions {
            schema,
            policy,
            retention,
            create,
            busy_timeout: std::time::Duration::from_millis(self.busy_timeout_ms),
            ..Default::default()
        };
        if let Some(at) = now {
            options.clock = Arc::new(FixedClock::new(at)) as Arc<dyn Clock>;
        }
        Coffer::open_with(&self.store, &master, options).map_err(|e| {
            let mut f = Failure::from(e);
            f.message = format!("{}: {}", self.store.display(), f.message);
            f
        })
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C handler: the first press asks long commands to stop cleanly (no output
/// file is left behind); the second ends the process at once.
pub(crate) fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
    });
}

pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// A file that appears under its name only when complete: written to a temporary name in the
/// same folder and renamed by [`AtomicFile::commit`]. Dropped uncommitted, it is removed.
pub(crate) struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub(crate) fn create(path: &Path) -> Result<AtomicFile, Failure> {
        let name = path
            .file_name()
            .ok_or_else(|| Failure::input(format!("{} is not a file name", path.display())))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".coffer-partial-{}", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Envelopes, exports and reports are the firm's data: not for other users.
            options.mode(0o600);
        }
        let file = options
            .open(&tmp)
            .map_err(|e| Failure::input(format!("cannot create {}: {e}", tmp.display())))?;
        Ok(AtomicFile {
            path: path.to_owned(),
            tmp,
            file: Some(BufWriter::with_capacity(1 << 16, file)),
        })
    }

    /// Flushes, syncs and renames the file into place.
    pub(crate) fn commit(mut self) -> Result<(), Failure> {
        let file = self
            .file
            .take()
            .ok_or_else(|| Failure::input("file closed"))?;
        let file = file
            .into_inner()
            .map_err(|e| Failure::input(format!("cannot write {}: {e}", self.tmp.display())))?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path)
            .map_err(|e| Failure::input(format!("cannot rename into {}: {e}", self.path.display())))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("file closed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Where a command writes: standard output, or a file that appears only when complete.
pub(crate) enum Output {
    Stdout(BufWriter<io::Stdout>),
    File(AtomicFile),
}

impl Output {
    /// `-` or nothing is standard output.
    pub(crate) fn create(path: Option<&Path>) -> Result<Output, Failure> {
        match path {
            None => Ok(Output::Stdout(BufWriter::new(io::stdout()))),
            Some(p) if p.as_os_str() == "-" => Ok(Output::Stdout(BufWriter::new(io::stdout()))),
            Some(p) => AtomicFile::create(p).map(Output::File),
        }
    }

    pub(crate) fn is_stdout(&self) -> bool {
        matches!(self, Output::Stdout(_))
    }

    pub(crate) fn commit(self) -> Result<(), Failure> {
        match self {
            Output::Stdout(mut s) => s.flush().map_err(Into::into),
            Output::File(f) => f.commit(),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(s) => s.write(buf),
            Output::File(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(s) => s.flush(),
            Output::File(f) => f.flush(),
        }
    }
}

/// Writes a whole text to `path` (or standard output) atomically.
pub(crate) fn write_output(path: Option<&Path>, text: &str) -> Result<(), Failure> {
    let mut out = Output::create(path)?;
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.commit()
}

pub(crate) fn ok() -> Result<ExitCode, Failure> {
    Ok(ExitCode::SUCCESS)
}

/// Reads a key given as a file of 32 raw bytes or their hex/base64 text (archive keys).
pub(crate) fn read_key_file(
    path: &Path,
    what: &str,
) -> Result<zeroize::Zeroizing<Vec<u8>>, Failure> {
    let key = MasterKey::from_file(path)
        .map_err(|e| Failure::input(format!("{what} {}: {e}", path.display())))?;
    Ok(zeroize::Zeroizing::new(key.to_bytes().to_vec()))
}

/// Parses a date (`YYYY-MM-DD`, midnight UTC) or an RFC 3339 time.
pub(crate) fn parse_when(text: &str, flag: &str) -> Result<time::OffsetDateTime, Failure> {
    coffer::wire::parse_time(text)
        .or_else(|_| coffer::wire::parse_date(text).map(|d| d.midnight().assume_utc()))
        .map_err(|_| {
            Failure::input(format!(
                "{flag}: expected YYYY-MM-DD or an RFC 3339 time, got {text:?}"
            ))
        })
}
