//! # Coffer
//!
//! Keeps customer records safe inside accounting and ERP systems: it models and validates
//! records, masks them for display, and (in the parts that build on this foundation) seals each
//! sensitive field, decides who may see what, keeps data exactly as long as the law requires,
//! and audits every access.
//!
//! ```
//! use coffer::record::{CustomerRecord, Schema};
//! use coffer::mask::Profile;
//!
//! let record = CustomerRecord::from_json(r#"{
//!     "id": "c-1", "tenant": "acme", "kind": "individual", "name": "张三",
//!     "id_documents": [{"type": "cn_resident_id", "number": "110101 20000101 000x"}],
//!     "phones": ["+86 138 0000 0000"]
//! }"#)?;
//! let today = time::macros::date!(2026 - 11 - 27);
//! let schema = Schema::builtin();
//! let err = schema.check(record.clone(), today).unwrap_err();
//! // The check character is wrong: the report says where and why, never the value.
//! assert!(err.validation_report().unwrap().has("id_documents[0].number", coffer::record::IssueCode::ResidentIdChecksum));
//!
//! let mut fixed = record;
//! fixed.id_documents[0].number = "110101200001010002".into();
//! let (record, _warnings) = schema.check(fixed, today)?;
//! assert_eq!(record.phones[0].expose(), "13800000000");
//! assert_eq!(coffer::mask::partial(coffer::mask::MaskForm::Phone, Profile::Standard, record.phones[0].expose()), "138****0000");
//! # Ok::<(), coffer::Error>(())
//! ```
// Two exceptions: `crypto::clear_ghash_scratch` (three register clears so valgrind can follow
// `ring`'s AES-GCM) and `envelope::prefetch` (a cache hint); `deny` rather than `forbid` so
// that those two functions can say so.
#![deny(unsafe_code)]

pub mod audit;
pub mod clock;
mod coffer;
pub mod crypto;
pub mod envelope;
mod error;
pub mod mask;
pub mod policy;
pub mod record;
pub mod report;
pub mod retention;
pub mod store;
pub mod wire;

/// The hash map of the library's own lookups: foldhash, randomly seeded per map. Its keys are
/// short (paths, names, ids) and looked up per field of every record, where SipHash, the
/// standard library's, cost several percent of a reveal.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// The hash set that goes with [`HashMap`].
pub(crate) type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

pub use coffer::{
    Access, Approval, ArchiveBundle, ArchiveCheck, ArchivedKey, BackupExposure, BackupManifest,
    Certificate, Coffer, DestructionItem, ErasureAnswer, ErasureItem, FieldView, Hold, IndexPlan,
    IndexToken, MAX_CLOCK_SKEW_SECS, MAX_NAME_BYTES, MAX_SEARCH_VALUES, OpenOptions, Redaction,
    RestoreOptions, RestoreReport, SearchAnswer, SweepPlan, SweepReport, View, plan_index,
};
pub use crypto::MasterKey;
pub use envelope::Envelope;
pub use error::{DocumentProblem, DocumentProblems, Error, ErrorKind, Format, Result};

/// This crate's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
