//! The schema: what each field of a customer record is, and how it is protected.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use toml::Spanned;

use super::model::CustomerKind;
use super::path::{FieldPath, Segment, parse_segments};
use crate::error::{DocumentProblem, DocumentProblems, Error, Result, line_column_at};
use crate::mask::MaskRule;

/// Largest schema document accepted, in bytes.
pub const MAX_SCHEMA_BYTES: usize = 256 * 1024;

/// How sensitive a field is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Classification {
    /// May be published.
    Public,
    /// Business data that is not personal on its own (a document type, a bank's name).
    Internal,
    /// Personal information (PIPL art. 4): names, contact details.
    Personal,
    /// Sensitive personal information (PIPL art. 28): identity numbers, financial accounts.
    Sensitive,
}

impl Classification {
    /// Every classification, least sensitive first.
    pub const ALL: [Classification; 4] = [
        Self::Public,
        Self::Internal,
        Self::Personal,
        Self::Sensitive,
    ];

    /// The stable name (`public`, `internal`, `personal`, `sensitive`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Internal => "internal",
            Self::Personal => "personal",
            Self::Sensitive => "sensitive",
        }
    }

    /// The classification with this name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// Whether a field is stored in clear in the envelope or sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protection {
    /// Stored as is.
    Clear,
    /// Sealed with AES-256-GCM under the field's retention category's data key.
    Encrypted,
}

/// The transform applied to a value before its blind index is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexTransform {
    /// The whole normalised value.
    Exact,
    /// Its last 4 characters.
    Last4,
    /// The birth date in a resident ID (`YYYYMMDD`).
    BirthDate,
    /// Lower-cased.
    Lowercase,
    /// Only its digits.
    Digits,
}

impl IndexTransform {
    /// Every transform.
    pub const ALL: [IndexTransform; 5] = [
        Self::Exact,
        Self::Last4,
        Self::BirthDate,
        Self::Lowercase,
        Self::Digits,
    ];

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Last4 => "last4",
            Self::BirthDate => "birth_date",
            Self::Lowercase => "lowercase",
            Self::Digits => "digits",
        }
    }

    /// Applies the transform to a normalised value; `None` when the value has nothing to index
    /// (no birth date, no digits).
    pub fn apply(self, value: &str) -> Option<super::Sensitive> {
        let out = match self {
            Self::Exact => value.to_owned(),
            Self::Last4 => {
                let n = value.chars().count();
                value.chars().skip(n.saturating_sub(4)).collect()
            }
            Self::BirthDate => {
                let b = value.as_bytes();
                let date = super::checks::resident_id_birth_date(b)?;
                if b.len() != 18 {
                    return None;
                }
                format!(
                    "{:04}{:02}{:02}",
                    date.year(),
                    u8::from(date.month()),
                    date.day()
                )
            }
            Self::Lowercase => value.to_lowercase(),
            Self::Digits => value.chars().filter(char::is_ascii_digit).collect(),
        };
        (!out.is_empty()).then(|| super::Sensitive::new(out))
    }
}

/// A field's blind index: the transform, and how many bits of the token are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IndexSpec {
    /// The transform.
    pub transform: IndexTransform,
    /// Token width in bits (8 to 256). Fewer bits leak less and match more false positives.
    pub bits: u16,
}

/// What the schema says about one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    /// How sensitive it is.
    pub classification: Classification,
    /// Whether it is sealed.
    pub protection: Protection,
    /// Its blind index, if any.
    pub index: Option<IndexSpec>,
    /// How it is masked for display.
    pub mask: MaskRule,
    /// The retention category whose data key seals it.
    pub category: String,
    /// The kinds of customer that must have a value here.
    pub required: Vec<CustomerKind>,
    /// The longest value accepted, in characters.
    pub max_length: usize,
}

/// Validation switches that a schema sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidationSettings {
    /// Reject (rather than warn about) Chinese mobile numbers with an unallocated network code.
    pub strict_mobile: bool,
    /// The earliest birth year accepted in a resident ID.
    pub min_birth_year: i32,
}

impl Default for ValidationSettings {
    fn default() -> Self {
        ValidationSettings {
            strict_mobile: false,
            min_birth_year: 1880,
        }
    }
}

/// "At least one of these fields" for the given kinds of customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequireAny {
    /// The kinds the group applies to.
    pub kinds: Vec<CustomerKind>,
    /// Field patterns, one of which must have a value.
    pub fields: Vec<String>,
}

/// The field patterns a schema must describe, in record order. `custom.*` covers every custom
/// field that has no pattern of its own.
pub const FIELD_PATTERNS: [&str; 12] = [
    "name",
    "id_documents[].type",
    "id_documents[].number",
    "id_documents[].country",
    "phones[]",
    "emails[]",
    "addresses[]",
    "bank_accounts[].bank_name",
    "bank_accounts[].branch",
    "bank_accounts[].account_type",
    "bank_accounts[].account_number",
    "custom.*",
];

/// Index of a pattern in [`FIELD_PATTERNS`], used by validation's fast path.
pub(crate) mod slot {
    pub(crate) const NAME: usize = 0;
    pub(crate) const DOC_TYPE: usize = 1;
    pub(crate) const DOC_NUMBER: usize = 2;
    pub(crate) const DOC_COUNTRY: usize = 3;
    pub(crate) const PHONE: usize = 4;
    pub(crate) const EMAIL: usize = 5;
    pub(crate) const ADDRESS: usize = 6;
    pub(crate) const BANK_NAME: usize = 7;
    pub(crate) const BRANCH: usize = 8;
    pub(crate) const ACCOUNT_TYPE: usize = 9;
    pub(crate) const ACCOUNT_NUMBER: usize = 10;
    pub(crate) const CUSTOM: usize = 11;
}

/// A loaded, checked schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    name: String,
    version: u32,
    slots: Vec<FieldSpec>,
    custom: BTreeMap<String, FieldSpec>,
    require_any: Vec<RequireAny>,
    validation: ValidationSettings,
    /// Each retention category of the fields, as one shared text: every envelope sealed under
    /// the schema names its categories with these (made here once, not for each seal).
    category_names: BTreeMap<String, Arc<str>>,
}

/// The built-in schema's TOML text.
pub const DEFAULT_SCHEMA_TOML: &str = include_str!("data/default_schema.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchema {
    version: Spanned<u32>,
    name: Spanned<String>,
    #[serde(default)]
    validation: Option<RawValidation>,
    #[serde(default)]
    require_any: Vec<RawRequireAny>,
    fields: BTreeMap<Spanned<String>, RawField>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValidation {
    #[serde(default)]
    strict_mobile: bool,
    #[serde(default)]
    min_birth_year: Option<Spanned<i32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequireAny {
    kinds: Vec<Spanned<String>>,
    fields: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    class: Spanned<String>,
    protection: Spanned<String>,
    #[serde(default)]
    index: Option<Spanned<String>>,
    #[serde(default)]
    index_bits: Option<Spanned<u32>>,
    mask: Spanned<String>,
    category: Spanned<String>,
    #[serde(default)]
    required: Vec<Spanned<String>>,
    #[serde(default)]
    max_length: Option<Spanned<u32>>,
}

/// The longest value of each pattern when the schema does not say, in characters.
const DEFAULT_MAX_LENGTH: usize = 1000;
/// The most a schema may allow for one value, in characters (see [`super::MAX_VALUE_BYTES`]).
const MAX_MAX_LENGTH: u32 = 4096;

struct Problems<'a> {
    text: &'a str,
    list: Vec<DocumentProblem>,
}

impl Problems<'_> {
    fn at<T>(&mut self, spanned: &Spanned<T>, message: String) {
        let (line, column) = line_column_at(self.text, spanned.span().start);
        self.list.push(DocumentProblem {
            line,
            column,
            message,
        });
    }
}

impl Schema {
    /// The built-in schema for customer records (`coffer.customer`), shipped with the crate.
    pub fn builtin() -> &'static Schema {
        static BUILTIN: OnceLock<Schema> = OnceLock::new();
        BUILTIN.get_or_init(|| match Schema::from_toml(DEFAULT_SCHEMA_TOML) {
            Ok(s) => s,
            // The built-in text is tested; failing here is a build defect, not a user error.
            Err(e) => unreachable!("the built-in schema is invalid: {e}"),
        })
    }

    /// Loads and checks a schema document. A TOML syntax error is [`Error::Malformed`] with its
    /// line and column; every other problem is reported at once in [`Error::Schema`], each with
    /// its line and column.
    pub fn from_toml(text: &str) -> Result<Schema> {
        if text.len() > MAX_SCHEMA_BYTES {
            return Err(Error::LimitExceeded {
                what: "schema document".into(),
                limit: MAX_SCHEMA_BYTES,
                unit: "bytes",
            });
        }
        let raw: RawSchema = toml::from_str(text).map_err(|e| toml_error("schema", text, &e))?;
        let mut problems = Problems {
            text,
            list: Vec::new(),
        };

        if *raw.version.get_ref() != 1 {
            problems.at(
                &raw.version,
                format!(
                    "unsupported schema version {}; this build reads version 1",
                    raw.version.get_ref()
                ),
            );
        }
        if raw.name.get_ref().trim().is_empty() {
            problems.at(&raw.name, "the schema name is empty".into());
        }

        let validation = match &raw.validation {
            None => ValidationSettings::default(),
            Some(v) => {
                let mut s = ValidationSettings {
                    strict_mobile: v.strict_mobile,
                    ..Default::default()
                };
                if let Some(y) = &v.min_birth_year {
                    if !(1800..=2100).contains(y.get_ref()) {
                        problems.at(y, "min_birth_year must be between 1800 and 2100".into());
                    }
                    s.min_birth_year = *y.get_ref();
                }
                s
            }
        };

        let mut slots: Vec<Option<FieldSpec>> = vec![None; FIELD_PATTERNS.len()];
        let mut custom = BTreeMap::new();
        for (key, field) in &raw.fields {
            let Some(spec) = field_spec(field, &mut problems) else {
                continue;
            };
            let k = key.get_ref().as_str();
            if let Some(i) = FIELD_PATTERNS.iter().position(|p| *p == k) {
                slots[i] = Some(spec);
            } else if let Some(name) = k.strip_prefix("custom.")
                && parse_segments(k, true).is_ok_and(|(s, wild)| s.len() == 2 && !wild)
            {
                custom.insert(name.to_owned(), spec);
            } else {
                problems.at(
                    key,
                    format!(
                        "unknown field pattern `{k}`; known patterns are {}",
                        FIELD_PATTERNS.join(", ")
                    ),
                );
            }
        }
        for (i, pattern) in FIELD_PATTERNS.iter().enumerate() {
            if slots[i].is_none() && !raw.fields.keys().any(|k| k.get_ref() == pattern) {
                problems.list.push(DocumentProblem {
                    line: 0,
                    column: 0,
                    message: format!("field pattern `{pattern}` is not described; every field needs a class, protection, mask and category"),
                });
            }
        }

        let mut require_any = Vec::new();
        for group in &raw.require_any {
            let kinds = parse_kinds(&group.kinds, &mut problems);
            let mut fields = Vec::new();
            for f in &group.fields {
                if FIELD_PATTERNS.contains(&f.get_ref().as_str())
                    || custom.contains_key(f.get_ref().trim_start_matches("custom."))
                {
                    fields.push(f.get_ref().clone());
                } else {
                    problems.at(
                        f,
                        format!("unknown field pattern `{}` in require_any", f.get_ref()),
                    );
                }
            }
            if fields.is_empty() {
                problems.list.push(DocumentProblem {
                    line: 0,
                    column: 0,
                    message: "a require_any group names no field".into(),
                });
            }
            require_any.push(RequireAny { kinds, fields });
        }

        if !problems.list.is_empty() {
            return Err(Error::Schema {
                problems: DocumentProblems(problems.list),
            });
        }
        let slots: Vec<FieldSpec> = slots.into_iter().flatten().collect();
        let category_names = slots
            .iter()
            .chain(custom.values())
            .map(|spec| (spec.category.clone(), Arc::from(spec.category.as_str())))
            .collect();
        Ok(Schema {
            name: raw.name.into_inner(),
            version: 1,
            slots,
            custom,
            require_any,
            validation,
            category_names,
        })
    }

    /// `category`'s name as envelopes sealed under the schema share it: the schema's own
    /// text, or (a category no field has) a new one.
    pub(crate) fn category_name(&self, category: &str) -> Arc<str> {
        self.category_names
            .get(category)
            .map_or_else(|| Arc::from(category), Arc::clone)
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema format version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Validation switches.
    pub fn validation(&self) -> &ValidationSettings {
        &self.validation
    }

    /// "At least one of" groups.
    pub fn require_any(&self) -> &[RequireAny] {
        &self.require_any
    }

    /// The spec of a pattern from [`FIELD_PATTERNS`] or a declared `custom.<key>`.
    pub fn spec_for_pattern(&self, pattern: &str) -> Option<&FieldSpec> {
        if let Some(i) = FIELD_PATTERNS.iter().position(|p| *p == pattern) {
            return self.slots.get(i);
        }
        pattern
            .strip_prefix("custom.")
            .and_then(|k| self.custom.get(k))
    }

    /// The spec that governs a concrete path (`phones[1]`, `custom.vip_level`).
    pub fn spec_for(&self, path: &FieldPath) -> Option<&FieldSpec> {
        if let [Segment::Key(c), Segment::Key(k)] = path.segments()
            && c == "custom"
        {
            return Some(self.custom.get(k).unwrap_or(&self.slots[slot::CUSTOM]));
        }
        self.spec_for_pattern(&path.pattern_key())
    }

    /// The entry for a value of a record: [`Schema::spec_for`] its path, found by the slot
    /// [`CustomerRecord::places`](super::CustomerRecord::places) gave it.
    pub(crate) fn spec_at(&self, place: &super::Place<'_>) -> Option<&FieldSpec> {
        match place.custom_key() {
            Some(key) => Some(self.custom_spec(key)),
            None => self.slots.get(place.slot),
        }
    }

    pub(crate) fn slot(&self, i: usize) -> &FieldSpec {
        &self.slots[i]
    }

    pub(crate) fn custom_spec(&self, key: &str) -> &FieldSpec {
        self.custom.get(key).unwrap_or(&self.slots[slot::CUSTOM])
    }

    pub(crate) fn declared_custom(&self) -> impl Iterator<Item = (&String, &FieldSpec)> {
        self.custom.iter()
    }
}

fn parse_kinds(raw: &[Spanned<String>], problems: &mut Problems<'_>) -> Vec<CustomerKind> {
    let mut kinds = Vec::new();
    for k in raw {
        match CustomerKind::parse(k.get_ref()) {
            Some(kind) if !kinds.contains(&kind) => kinds.push(kind),
            Some(_) => {}
            None => problems.at(
                k,
                format!(
                    "unknown customer kind `{}`; expected `individual` or `company`",
                    k.get_ref()
                ),
            ),
        }
    }
    kinds
}

fn field_spec(f: &RawField, problems: &mut Problems<'_>) -> Option<FieldSpec> {
    let before = problems.list.len();
    let classification = Classification::parse(f.class.get_ref());
    if classification.is_none() {
        problems.at(
            &f.class,
            format!(
                "unknown class `{}`; expected public, internal, personal or sensitive",
                f.class.get_ref()
            ),
        );
    }
    let protection = match f.protection.get_ref().as_str() {
        "clear" => Some(Protection::Clear),
        "encrypted" => Some(Protection::Encrypted),
        other => {
            problems.at(
                &f.protection,
                format!("unknown protection `{other}`; expected clear or encrypted"),
            );
            None
        }
    };
    if classification == Some(Classification::Sensitive) && protection == Some(Protection::Clear) {
        problems.at(
            &f.protection,
            "a sensitive field must be encrypted (PIPL art. 28 and 51)".into(),
        );
    }
    let transform = match &f.index {
        None => None,
        Some(s) if s.get_ref() == "none" => None,
        Some(s) => {
            let t = IndexTransform::ALL
                .into_iter()
                .find(|t| t.as_str() == s.get_ref());
            if t.is_none() {
                problems.at(s, format!("unknown index transform `{}`; expected none, exact, last4, birth_date, lowercase or digits", s.get_ref()));
            }
            t
        }
    };
    let bits = match &f.index_bits {
        None => 16,
        Some(b) => {
            if !(8..=256).contains(b.get_ref()) {
                problems.at(b, "index_bits must be between 8 and 256".into());
            }
            if transform.is_none() {
                problems.at(b, "index_bits is set but the field has no index".into());
            }
            u16::try_from(*b.get_ref()).unwrap_or(256)
        }
    };
    let mask = MaskRule::parse(f.mask.get_ref());
    if mask.is_none() {
        problems.at(&f.mask, format!("unknown mask `{}`", f.mask.get_ref()));
    }
    let category = f.category.get_ref();
    if category.is_empty()
        || category.len() > 64
        || !category
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
    {
        problems.at(
            &f.category,
            "a category is 1 to 64 characters of a-z, 0-9, `_` and `.`".into(),
        );
    }
    let max_length = match &f.max_length {
        None => DEFAULT_MAX_LENGTH,
        Some(m) => {
            if !(1..=MAX_MAX_LENGTH).contains(m.get_ref()) {
                problems.at(
                    m,
                    format!("max_length must be between 1 and {MAX_MAX_LENGTH}"),
                );
            }
            *m.get_ref() as usize
        }
    };
    let required = parse_kinds(&f.required, problems);
    if problems.list.len() > before {
        return None;
    }
    Some(FieldSpec {
        classification: classification?,
        protection: protection?,
        index: transform.map(|transform| IndexSpec { transform, bits }),
        mask: mask?,
        category: category.clone(),
        required,
        max_length,
    })
}

/// Turns a TOML error into [`Error::Malformed`] with line and column.
pub(crate) fn toml_error(what: &'static str, text: &str, err: &toml::de::Error) -> Error {
    let (line, column) = err.span().map_or((0, 0), |s| line_column_at(text, s.start));
    Error::Malformed {
        what,
        format: crate::error::Format::Toml,
        line,
        column,
        reason: crate::error::sanitize_serde_message(err.message().trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every category a field names has one shared text; one that no field names gets its own.
    #[test]
    fn category_names_are_shared_texts_of_the_fields_categories() {
        let s = Schema::builtin();
        let categories: std::collections::BTreeSet<&str> = s
            .slots
            .iter()
            .chain(s.custom.values())
            .map(|spec| spec.category.as_str())
            .collect();
        assert!(categories.len() >= 3, "{categories:?}");
        for c in categories {
            let (a, b) = (s.category_name(c), s.category_name(c));
            assert_eq!(&*a, c);
            assert!(Arc::ptr_eq(&a, &b), "{c}");
        }
        assert_eq!(&*s.category_name("no-such-category"), "no-such-category");
    }

    #[test]
    fn a_field_finds_its_entry_by_slot_as_by_path() {
        let r = crate::record::CustomerRecord::from_json(
            r#"{"id":"c-1","tenant":"t","kind":"individual","name":"张三丰",
                "id_documents":[{"type":"passport","number":"E12345678","country":"CN"}],
                "phones":["13912345678"],"emails":["a@example.com"],"addresses":["x"],
                "bank_accounts":[{"bank_name":"b","branch":"br","account_type":"card","account_number":"6200000000000005"}],
                "custom":{"vip":"yes"}}"#,
        )
        .unwrap();
        let fields = r.fields();
        assert_eq!(fields.len(), 12, "every kind of field is listed");
        let places = r.places();
        assert_eq!(places.len(), fields.len());
        // A declared custom field has its own entry; others fall to `custom.*`.
        let declared = Schema::from_toml(&format!(
            "{DEFAULT_SCHEMA_TOML}\n[fields.\"custom.vip\"]\nclass = \"internal\"\n\
             protection = \"clear\"\nmask = \"clear\"\ncategory = \"crm\"\n"
        ))
        .unwrap();
        for ((place, value), f) in places.iter().zip(&fields) {
            // A place is its field's path, written without one.
            assert_eq!(place.path(), f.path);
            assert_eq!(place.to_string(), f.path.to_string());
            assert_eq!(place.text(), f.path.to_string());
            assert_eq!(place.pattern(), f.path.pattern_key());
            assert_eq!(*value, f.value, "{}", f.path);
            for s in [Schema::builtin(), &declared] {
                assert!(s.spec_at(place).is_some(), "{}", f.path);
                assert_eq!(s.spec_at(place), s.spec_for(&f.path), "{}", f.path);
            }
        }
        let vip = places
            .iter()
            .find(|(p, _)| p.to_string() == "custom.vip")
            .unwrap();
        assert_eq!(declared.spec_at(&vip.0).unwrap().category, "crm");
        let debug = format!("{:?}", fields[0]);
        assert!(
            debug.contains("name") && !debug.contains("张三丰"),
            "{debug}"
        );
    }

    #[test]
    fn builtin_loads_and_covers_every_pattern() {
        let s = Schema::builtin();
        assert_eq!(s.name(), "coffer.customer");
        for p in FIELD_PATTERNS {
            assert!(s.spec_for_pattern(p).is_some(), "{p}");
        }
        let p = FieldPath::parse("bank_accounts[2].account_number").unwrap();
        assert_eq!(
            s.spec_for(&p).unwrap().classification,
            Classification::Sensitive
        );
        let c = FieldPath::parse("custom.anything").unwrap();
        assert_eq!(s.spec_for(&c).unwrap().category, "profile");
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let err = Schema::from_toml("version = 1\nname = \"x\"\n[fields\n").unwrap_err();
        match err {
            Error::Malformed { line, format, .. } => {
                assert_eq!(line, 3);
                assert_eq!(format, crate::error::Format::Toml);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = DEFAULT_SCHEMA_TOML
            .replace(
                "class = \"sensitive\"\nprotection = \"encrypted\"\nindex = \"exact\"",
                "class = \"sensitive\"\nprotection = \"clear\"\nindex = \"exact\"",
            )
            .replace("mask = \"name\"", "mask = \"nmae\"")
            .replace(
                "category = \"contact\"\nmax_length = 300",
                "category = \"Contact!\"\nmax_length = 300",
            )
            .replace("[fields.\"custom.*\"]", "[fields.\"favourite_colour\"]");
        let err = Schema::from_toml(&text).unwrap_err();
        let Error::Schema { problems } = err else {
            panic!("expected a schema error")
        };
        let messages: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
        let all = messages.join("\n");
        assert!(all.contains("sensitive field must be encrypted"), "{all}");
        assert!(all.contains("unknown mask `nmae`"), "{all}");
        assert!(all.contains("a category is"), "{all}");
        assert!(
            all.contains("unknown field pattern `favourite_colour`"),
            "{all}"
        );
        assert!(all.contains("`custom.*` is not described"), "{all}");
        assert!(
            problems.0.iter().filter(|p| p.line > 0).count() >= 4,
            "{all}"
        );
    }

    #[test]
    fn wrong_types_and_unknown_keys_are_malformed() {
        let text = DEFAULT_SCHEMA_TOML.replace("max_length = 200", "max_length = \"long\"");
        assert_eq!(
            Schema::from_toml(&text).unwrap_err().kind(),
            crate::ErrorKind::Malformed
        );
        let text = DEFAULT_SCHEMA_TOML.replace("strict_mobile = false", "strict_mobiles = false");
        let err = Schema::from_toml(&text).unwrap_err();
        assert!(err.to_string().contains("strict_mobiles"), "{err}");
        assert_eq!(
            Schema::from_toml(&"#".repeat(MAX_SCHEMA_BYTES + 1))
                .unwrap_err()
                .kind(),
            crate::ErrorKind::LimitExceeded
        );
    }

    #[test]
    fn index_transforms() {
        let v = "110101200001010002";
        assert_eq!(
            IndexTransform::BirthDate.apply(v).unwrap().expose(),
            "20000101"
        );
        assert_eq!(IndexTransform::Last4.apply(v).unwrap().expose(), "0002");
        assert_eq!(
            IndexTransform::Lowercase.apply("A@B.CN").unwrap().expose(),
            "a@b.cn"
        );
        assert_eq!(
            IndexTransform::Digits.apply("+86-138").unwrap().expose(),
            "86138"
        );
        assert!(IndexTransform::BirthDate.apply("G12345678").is_none());
        assert!(IndexTransform::Digits.apply("abc").is_none());
    }
}
