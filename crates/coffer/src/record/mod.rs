//! Customer records: the model, field paths, the schema, normalisation and validation.
//!
//! Pure: no I/O, no cryptography, no clock (callers pass `today`).

pub(crate) mod checks;
mod model;
pub mod normalize;
mod path;
mod schema;
mod sensitive;
mod validate;

pub use checks::{
    luhn_check_digit, luhn_ok, resident_id_check_char, upgrade_resident_id_15, uscc_check_char,
};
pub(crate) use model::Place;
pub(crate) use model::json_error;
pub use model::{
    AccountType, BankAccount, CustomerKind, CustomerRecord, DocumentType, Field, IdDocument,
    MAX_CUSTOM_FIELDS, MAX_CUSTOM_KEY_BYTES, MAX_ID_CHARS, MAX_LIST_ITEMS, MAX_RECORD_BYTES,
    MAX_VALUE_BYTES,
};
pub use path::{FieldPath, MAX_PATH_LEN, Segment};
pub(crate) use path::{PathText, truncate_for_message};
pub(crate) use schema::toml_error;
pub use schema::{
    Classification, DEFAULT_SCHEMA_TOML, FIELD_PATTERNS, FieldSpec, IndexSpec, IndexTransform,
    MAX_SCHEMA_BYTES, Protection, RequireAny, Schema, ValidationSettings,
};
pub use sensitive::Sensitive;
pub use validate::{Issue, IssueCode, Severity, ValidationReport};
