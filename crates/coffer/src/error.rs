//! One error model for Rust, C and Python.
//!
//! [`Error`] carries structure (paths, line and column, limits); [`ErrorKind`] is its fieldless
//! classification, whose numeric [`code`](ErrorKind::code) is the C `coffer_status` and the
//! Python exception's `.code`. Codes never change meaning and are never reused; the table is
//! pinned by `tests/vectors/errors.json`, which the Rust, C and Python suites all check.
//!
//! No message ever contains a field's value: only paths, positions, stable codes and limits.

use std::fmt;

use crate::record::ValidationReport;

/// The result type of every fallible Coffer operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Stable classification of an [`Error`], with a numeric code shared by every language.
///
/// Code `0` is success in C and has no variant here. Kinds marked *reserved* are used by parts
/// of Coffer that later releases add (the vault, retention, audit); their codes are fixed now so
/// that bindings written today keep working.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum ErrorKind {
    /// A bug in Coffer, or a panic caught at a language boundary.
    Internal = 1,
    /// An argument is missing, NULL, of the wrong type or out of range.
    InvalidArgument = 2,
    /// Input is not well-formed JSON, TOML or UTF-8, or does not have the expected shape.
    Malformed = 3,
    /// Input exceeds a documented size or count limit.
    LimitExceeded = 4,
    /// A customer record failed validation; the report lists every problem.
    Validation = 5,
    /// A schema document is invalid.
    Schema = 6,
    /// A policy document is invalid.
    Policy = 7,
    /// The access policy denies the request.
    AccessDenied = 8,
    /// A rate limit was exceeded.
    RateLimited = 9,
    /// A ciphertext, envelope or signature failed its integrity check.
    Integrity = 10,
    /// A format or store version this build does not read.
    UnsupportedVersion = 11,
    /// A key that the operation needs is not in the key store.
    KeyNotFound = 12,
    /// The master key does not open this key store.
    WrongMasterKey = 13,
    /// The data key was destroyed; the value is gone for good.
    Shredded = 14,
    /// A retention rule forbids the operation, or a retention document is invalid.
    Retention = 15,
    /// A legal hold blocks the operation.
    LegalHold = 16,
    /// An approval is missing, duplicated or given by a role that may not approve.
    Approval = 17,
    /// A named object (subject, record, hold, list) does not exist.
    NotFound = 18,
    /// The embedded store failed.
    Store = 19,
    /// The store is locked by another process or connection.
    StoreBusy = 20,
    /// The store is read-only.
    ReadOnly = 21,
    /// An audit entry could not be written; the operation was not carried out.
    Audit = 22,
    /// Audit verification found a changed, removed, inserted or reordered entry.
    AuditTampered = 23,
    /// A file could not be read or written.
    Io = 24,
    /// The handle was closed.
    Closed = 25,
    /// The operation is not supported by this build or configuration.
    Unsupported = 26,
    /// The store's server cannot be reached (down, restarting, connection lost); nothing was
    /// done, and the same call can be retried once it is back.
    StoreUnavailable = 27,
}

impl ErrorKind {
    /// Every kind, in code order.
    pub const ALL: [ErrorKind; 27] = [
        Self::Internal,
        Self::InvalidArgument,
        Self::Malformed,
        Self::LimitExceeded,
        Self::Validation,
        Self::Schema,
        Self::Policy,
        Self::AccessDenied,
        Self::RateLimited,
        Self::Integrity,
        Self::UnsupportedVersion,
        Self::KeyNotFound,
        Self::WrongMasterKey,
        Self::Shredded,
        Self::Retention,
        Self::LegalHold,
        Self::Approval,
        Self::NotFound,
        Self::Store,
        Self::StoreBusy,
        Self::ReadOnly,
        Self::Audit,
        Self::AuditTampered,
        Self::Io,
        Self::Closed,
        Self::Unsupported,
        Self::StoreUnavailable,
    ];

    /// The stable numeric code (the C `coffer_status`, the Python `.code`).
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The kind with this code, if any.
    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.code() == code)
    }

    /// The stable snake-case name, as in `tests/vectors/errors.json`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::InvalidArgument => "invalid_argument",
            Self::Malformed => "malformed",
            Self::LimitExceeded => "limit_exceeded",
            Self::Validation => "validation",
            Self::Schema => "schema",
            Self::Policy => "policy",
            Self::AccessDenied => "access_denied",
            Self::RateLimited => "rate_limited",
            Self::Integrity => "integrity",
            Self::UnsupportedVersion => "unsupported_version",
            Self::KeyNotFound => "key_not_found",
            Self::WrongMasterKey => "wrong_master_key",
            Self::Shredded => "shredded",
            Self::Retention => "retention",
            Self::LegalHold => "legal_hold",
            Self::Approval => "approval",
            Self::NotFound => "not_found",
            Self::Store => "store",
            Self::StoreBusy => "store_busy",
            Self::ReadOnly => "read_only",
            Self::Audit => "audit",
            Self::AuditTampered => "audit_tampered",
            Self::Io => "io",
            Self::Closed => "closed",
            Self::Unsupported => "unsupported",
            Self::StoreUnavailable => "store_unavailable",
        }
    }

    /// A short, static description (the C `coffer_status_str`).
    pub const fn description(self) -> &'static str {
        match self {
            Self::Internal => "internal error",
            Self::InvalidArgument => "invalid argument",
            Self::Malformed => "malformed input",
            Self::LimitExceeded => "input exceeds a limit",
            Self::Validation => "record failed validation",
            Self::Schema => "invalid schema",
            Self::Policy => "invalid policy",
            Self::AccessDenied => "access denied",
            Self::RateLimited => "rate limit exceeded",
            Self::Integrity => "integrity check failed",
            Self::UnsupportedVersion => "unsupported version",
            Self::KeyNotFound => "key not found",
            Self::WrongMasterKey => "wrong master key",
            Self::Shredded => "data destroyed",
            Self::Retention => "retention rule violation",
            Self::LegalHold => "blocked by a legal hold",
            Self::Approval => "approval missing or invalid",
            Self::NotFound => "not found",
            Self::Store => "key store error",
            Self::StoreBusy => "key store busy",
            Self::ReadOnly => "key store is read-only",
            Self::Audit => "audit entry could not be written",
            Self::AuditTampered => "audit trail tampered",
            Self::Io => "input/output error",
            Self::Closed => "handle closed",
            Self::Unsupported => "unsupported operation",
            Self::StoreUnavailable => "key store unavailable",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The textual format of a document that failed to parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// JSON (records, requests, envelopes).
    Json,
    /// TOML (schemas, policies, retention rules).
    Toml,
    /// UTF-8 text in general.
    Utf8,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Json => "JSON",
            Self::Toml => "TOML",
            Self::Utf8 => "UTF-8",
        })
    }
}

/// A problem found in a configuration document (schema, policy, retention rules), with its
/// position. Documents are configuration, not customer data, so problems may quote keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentProblem {
    /// 1-based line, or 0 when the problem has no single position.
    pub line: usize,
    /// 1-based column (in characters), or 0 when the problem has no single position.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for DocumentProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "line {}, column {}: {}",
                self.line, self.column, self.message
            )
        } else {
            f.write_str(&self.message)
        }
    }
}

/// Every problem found in one document, reported at once.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DocumentProblems(pub Vec<DocumentProblem>);

impl fmt::Display for DocumentProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s)", self.0.len())?;
        for p in &self.0 {
            write!(f, "; {p}")?;
        }
        Ok(())
    }
}

/// Every error Coffer returns. Match on [`Error::kind`] for a stable classification.
///
/// Messages name paths, positions and limits, never values.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input is not well-formed, or does not have the expected shape.
    #[error("malformed {format} in {what} at line {line}, column {column}: {reason}")]
    Malformed {
        /// What was being read (e.g. `customer record`).
        what: &'static str,
        /// The format.
        format: Format,
        /// 1-based line (0 if unknown).
        line: usize,
        /// 1-based column (0 if unknown).
        column: usize,
        /// What is wrong, with the field path where known; never a value.
        reason: String,
    },
    /// Input exceeds a documented limit.
    #[error("{what} exceeds the limit of {limit} {unit}")]
    LimitExceeded {
        /// What is too large (e.g. `customer record JSON`).
        what: String,
        /// The limit.
        limit: usize,
        /// The unit of the limit (`bytes`, `characters`, `items`, `levels`).
        unit: &'static str,
    },
    /// An argument is missing or out of range.
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument {
        /// The argument's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A record failed validation.
    #[error("record failed validation: {report}")]
    Validation {
        /// Every problem found, with paths and codes.
        report: ValidationReport,
    },
    /// A schema document is invalid.
    #[error("invalid schema: {problems}")]
    Schema {
        /// Every problem found.
        problems: DocumentProblems,
    },
    /// A policy document is invalid.
    #[error("invalid policy: {problems}")]
    Policy {
        /// Every problem found.
        problems: DocumentProblems,
    },
    /// A ciphertext, envelope, wrapped key, MAC or signature failed its integrity check. One
    /// opaque error for every such failure: it says what was being checked, never why.
    #[error("integrity check failed: {what}")]
    Integrity {
        /// What was being checked (e.g. `envelope`, `field \`phones[0]\``).
        what: String,
    },
    /// The master key does not open this store's keyring.
    #[error("wrong master key: it does not open the keyring of this store")]
    WrongMasterKey,
    /// A version of a format or store this build does not read.
    #[error("unsupported version: {what}")]
    UnsupportedVersion {
        /// What, and which versions this build reads.
        what: String,
    },
    /// A key is not in the key store.
    #[error("key not found: {what}")]
    KeyNotFound {
        /// Which key.
        what: String,
    },
    /// A retention document is invalid.
    #[error("invalid retention rules: {problems}")]
    Retention {
        /// Every problem found.
        problems: DocumentProblems,
    },
    /// A retention rule forbids the operation.
    #[error("retention: {reason}")]
    RetentionRule {
        /// Why.
        reason: String,
    },
    /// A legal hold blocks the operation.
    #[error("blocked by a legal hold: {reason}")]
    LegalHold {
        /// Which hold, and what it blocks.
        reason: String,
    },
    /// An approval is missing, repeated, or given by a role that may not approve.
    #[error("approval: {reason}")]
    Approval {
        /// What is wrong.
        reason: String,
    },
    /// The data key was destroyed: the value is gone for good.
    #[error("data destroyed: {what} can no longer be read")]
    Shredded {
        /// What was asked for.
        what: String,
    },
    /// A named object does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What.
        what: String,
    },
    /// The policy denies the operation as a whole.
    #[error("access denied: {reason}")]
    AccessDenied {
        /// Why.
        reason: String,
    },
    /// A rate limit of the policy refused the request as a whole.
    #[error("rate limit exceeded: `{limit}`")]
    RateLimited {
        /// The limit's id.
        limit: String,
    },
    /// The embedded store failed.
    #[error("key store error: {reason}")]
    Store {
        /// What went wrong.
        reason: String,
    },
    /// The store is locked by another process or connection.
    #[error("key store busy: {reason}")]
    StoreBusy {
        /// What was locked.
        reason: String,
    },
    /// The store's server cannot be reached; nothing was done.
    #[error("key store unavailable: {reason}")]
    StoreUnavailable {
        /// What failed (never a value).
        reason: String,
    },
    /// The store is read-only.
    #[error("key store is read-only: {reason}")]
    ReadOnly {
        /// What could not be written.
        reason: String,
    },
    /// An audit entry could not be written; the operation was not carried out.
    #[error("audit entry could not be written, so nothing was done: {reason}")]
    Audit {
        /// Why.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{what}: {reason}")]
    Io {
        /// Which file.
        what: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The operation is not supported by this build or in this context.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What is not supported, and what to do instead.
        what: String,
    },
    /// A bug, or a panic caught at a boundary.
    #[error("internal error: {message}")]
    Internal {
        /// What happened (never a value).
        message: String,
    },
}

impl Error {
    /// The stable classification of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Malformed { .. } => ErrorKind::Malformed,
            Self::LimitExceeded { .. } => ErrorKind::LimitExceeded,
            Self::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            Self::Validation { .. } => ErrorKind::Validation,
            Self::Schema { .. } => ErrorKind::Schema,
            Self::Policy { .. } => ErrorKind::Policy,
            Self::Integrity { .. } => ErrorKind::Integrity,
            Self::WrongMasterKey => ErrorKind::WrongMasterKey,
            Self::UnsupportedVersion { .. } => ErrorKind::UnsupportedVersion,
            Self::KeyNotFound { .. } => ErrorKind::KeyNotFound,
            Self::Shredded { .. } => ErrorKind::Shredded,
            Self::Retention { .. } | Self::RetentionRule { .. } => ErrorKind::Retention,
            Self::LegalHold { .. } => ErrorKind::LegalHold,
            Self::Approval { .. } => ErrorKind::Approval,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::AccessDenied { .. } => ErrorKind::AccessDenied,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::Store { .. } => ErrorKind::Store,
            Self::StoreBusy { .. } => ErrorKind::StoreBusy,
            Self::ReadOnly { .. } => ErrorKind::ReadOnly,
            Self::Audit { .. } => ErrorKind::Audit,
            Self::Io { .. } => ErrorKind::Io,
            Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::StoreUnavailable { .. } => ErrorKind::StoreUnavailable,
            Self::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// The stable numeric code of this error's kind.
    pub fn code(&self) -> u32 {
        self.kind().code()
    }

    /// The validation report, when this is a validation error.
    pub fn validation_report(&self) -> Option<&ValidationReport> {
        match self {
            Self::Validation { report } => Some(report),
            _ => None,
        }
    }

    pub(crate) fn malformed_utf8(
        what: &'static str,
        bytes: &[u8],
        err: std::str::Utf8Error,
    ) -> Self {
        let valid = &bytes[..err.valid_up_to()];
        // The prefix is valid UTF-8 by construction; count lines and characters in it.
        let text = std::str::from_utf8(valid).unwrap_or_default();
        let (line, column) = line_column_of_end(text);
        Error::Malformed {
            what,
            format: Format::Utf8,
            line,
            column,
            reason: format!("invalid UTF-8 at byte offset {}", err.valid_up_to()),
        }
    }
}

/// Rewrites a serde message so that it names kinds and expectations, never input values.
pub(crate) fn sanitize_serde_message(msg: &str) -> String {
    // The expectation text comes last and is ours (type and variant names); take the last
    // occurrence so that a value containing the separator cannot smuggle itself in.
    let expected = msg.rfind(", expected ").map(|i| &msg[i + 2..]);
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            let kind = match rest.split(' ').next().unwrap_or("") {
                "string" => "a string",
                "integer" => "an integer",
                "floating" => "a number",
                "boolean" => "a boolean",
                "map" => "an object",
                "sequence" => "an array",
                "null" | "unit" => "null",
                "char" => "a character",
                _ => "a value",
            };
            let what = if prefix.starts_with("invalid type") {
                "wrong type"
            } else {
                "invalid value"
            };
            return match expected {
                Some(e) => format!("{what}: found {kind}, {e}"),
                None => format!("{what}: found {kind}"),
            };
        }
    }
    if msg.starts_with("unknown variant") {
        return match expected {
            Some(e) => format!("unknown variant, {e}"),
            None => "unknown variant".into(),
        };
    }
    if msg.starts_with("unknown field")
        || msg.starts_with("missing field")
        || msg.starts_with("duplicate field")
        || msg.starts_with("custom key")
        || msg.starts_with("invalid length")
    {
        // Field names are structure; any name longer than a real one is cut short.
        return match msg.split_once('`') {
            Some((head, rest)) => match rest.split_once('`') {
                Some((name, tail)) => format!(
                    "{head}`{}`{tail}",
                    crate::record::truncate_for_message(name)
                ),
                None => msg.chars().take(160).collect(),
            },
            None => msg.chars().take(160).collect(),
        };
    }
    // Syntax errors ("expected value", "EOF while parsing a string", ...) carry no input.
    if msg.contains('`') || msg.contains('"') {
        return "invalid value".into();
    }
    msg.to_owned()
}

/// The 1-based line and column (in characters) just past the end of `text`.
pub(crate) fn line_column_of_end(text: &str) -> (usize, usize) {
    let line = text.bytes().filter(|&b| b == b'\n').count() + 1;
    let last = text.rfind('\n').map_or(text, |i| &text[i + 1..]);
    (line, last.chars().count() + 1)
}

/// The 1-based line and column (in characters) of byte offset `offset` in `text`.
pub(crate) fn line_column_at(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    line_column_of_end(&text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_dense_unique_and_round_trip() {
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(kind.code() as usize, i + 1);
            assert_eq!(ErrorKind::from_code(kind.code()), Some(*kind));
        }
        assert_eq!(ErrorKind::from_code(0), None);
        assert_eq!(ErrorKind::from_code(999), None);
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        assert_eq!(line_column_at("ab\n张三x", 9), (2, 3));
        assert_eq!(line_column_at("ab\n张三x", 8), (2, 2));
        assert_eq!(line_column_at("abc", 0), (1, 1));
        // Offsets inside a character clamp back to its start.
        assert_eq!(line_column_at("张", 1), (1, 1));
    }
}
