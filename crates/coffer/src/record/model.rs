//! The customer record: what a firm holds about one customer, and its JSON form.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::path::{FieldPath, PathText, truncate_for_message};
use super::schema::slot;
use super::{Sensitive, normalize};
use crate::error::{Error, Format, Result};

/// How many items of each list have their paths' texts shared by every envelope.
pub(crate) const SHARED_ITEMS: usize = 8;

/// Largest customer record JSON accepted, in bytes.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Largest single value (a name, an address, a custom field), in bytes.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Most entries in one list (`phones`, `emails`, `addresses`, `id_documents`, `bank_accounts`).
pub const MAX_LIST_ITEMS: usize = 32;
/// Most custom fields in one record.
pub const MAX_CUSTOM_FIELDS: usize = 64;
/// Longest custom-field key, in bytes (`[A-Za-z0-9_]`).
pub const MAX_CUSTOM_KEY_BYTES: usize = 64;
/// Longest record id, tenant or subject id, in characters.
pub const MAX_ID_CHARS: usize = 128;

/// Whether a record describes a natural person or an organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerKind {
    /// A natural person.
    Individual,
    /// A company or other organisation.
    Company,
}

impl CustomerKind {
    /// Every kind.
    pub const ALL: [CustomerKind; 2] = [Self::Individual, Self::Company];

    /// The stable name (`individual`, `company`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Individual => "individual",
            Self::Company => "company",
        }
    }

    /// The kind with this name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for CustomerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of an identity document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    /// Chinese resident identity card (居民身份证), 18 characters; a 15-digit number given with
    /// this type is upgraded to 18 by normalisation.
    CnResidentId,
    #[serde(rename = "cn_resident_id_15")]
    /// The legacy 15-digit resident ID (GB 11643-1989); normalisation upgrades it to an
    /// 18-character [`DocumentType::CnResidentId`].
    CnResidentId15,
    /// A passport of any country (number and optional issuing `country`).
    Passport,
    /// Mainland travel permit for Hong Kong and Macau residents (港澳居民来往内地通行证).
    HkMacauPermit,
    /// Mainland travel permit for Taiwan residents (台湾居民来往大陆通行证).
    TaiwanPermit,
    /// Residence permit for Hong Kong, Macau and Taiwan residents (港澳台居民居住证), which has
    /// the resident ID's layout and check character.
    HmtResidencePermit,
    /// Unified Social Credit Code (统一社会信用代码, GB 32100-2015) of an organisation.
    Uscc,
    /// Any other document; only length and characters are checked.
    Other,
}

impl DocumentType {
    /// Every document type.
    pub const ALL: [DocumentType; 8] = [
        Self::CnResidentId,
        Self::CnResidentId15,
        Self::Passport,
        Self::HkMacauPermit,
        Self::TaiwanPermit,
        Self::HmtResidencePermit,
        Self::Uscc,
        Self::Other,
    ];

    /// The document type with this stable name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The stable name used in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CnResidentId => "cn_resident_id",
            Self::CnResidentId15 => "cn_resident_id_15",
            Self::Passport => "passport",
            Self::HkMacauPermit => "hk_macau_permit",
            Self::TaiwanPermit => "taiwan_permit",
            Self::HmtResidencePermit => "hmt_residence_permit",
            Self::Uscc => "uscc",
            Self::Other => "other",
        }
    }
}

/// An identity document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdDocument {
    /// The document type.
    #[serde(rename = "type")]
    pub doc_type: DocumentType,
    /// The document number.
    pub number: Sensitive,
    /// The issuing country (ISO 3166-1 alpha-2 or alpha-3), mainly for passports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// How a bank account is numbered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountType {
    /// A payment card number (PAN), 12–19 digits with a Luhn check digit.
    Card,
    /// A settlement or passbook account (对公账号 and similar): digits only, no universal check.
    Settlement,
    /// An IBAN (ISO 13616).
    Iban,
}

impl AccountType {
    /// Every account type.
    pub const ALL: [AccountType; 3] = [Self::Card, Self::Settlement, Self::Iban];

    /// The account type with this stable name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The stable name used in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::Settlement => "settlement",
            Self::Iban => "iban",
        }
    }
}

/// A bank account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankAccount {
    /// The bank's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_name: Option<Sensitive>,
    /// The branch (开户行).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<Sensitive>,
    /// How the number is formed.
    pub account_type: AccountType,
    /// The card, account number or IBAN.
    pub account_number: Sensitive,
}

/// What a firm holds about one customer.
///
/// Every value that could identify a person is a [`Sensitive`], so `{:?}` on a record shows its
/// structure and `[redacted]` in place of each value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerRecord {
    /// The record's id in the host system.
    pub id: String,
    /// The firm or company book the record belongs to.
    pub tenant: String,
    /// The data subject the record describes; the record id when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Individual or company.
    pub kind: CustomerKind,
    /// The person's or company's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Sensitive>,
    /// Identity documents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_documents: Vec<IdDocument>,
    /// Phone numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<Sensitive>,
    /// E-mail addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<Sensitive>,
    /// Postal addresses, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Sensitive>,
    /// Bank accounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bank_accounts: Vec<BankAccount>,
    /// Free fields, by key (`[A-Za-z0-9_]`, at most 64 bytes); values are strings.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "deserialize_custom"
    )]
    pub custom: BTreeMap<String, Sensitive>,
}

fn deserialize_custom<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<BTreeMap<String, Sensitive>, D::Error> {
    let map = BTreeMap::<String, Sensitive>::deserialize(deserializer)?;
    for key in map.keys() {
        if key.is_empty()
            || key.len() > MAX_CUSTOM_KEY_BYTES
            || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(serde::de::Error::custom(format!(
                "custom key `{}` must be 1 to {MAX_CUSTOM_KEY_BYTES} ASCII letters, digits or `_`",
                truncate_for_message(key)
            )));
        }
    }
    Ok(map)
}

/// One value of a record with its path, as [`CustomerRecord::fields`] lists them. `Debug`
/// shows the path, never the value.
#[derive(Clone)]
pub struct Field<'a> {
    /// Where the value is.
    pub path: FieldPath,
    /// The value (plaintext: keep it out of logs).
    pub value: &'a str,
}

/// Where a value sits in a record: a member (`name`), a list item (`phones[1]`), a member of a
/// list item (`bank_accounts[0].account_number`) or a custom field (`custom.vip_level`). The
/// same path as a [`FieldPath`], without its allocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Place<'a> {
    top: &'static str,
    index: Option<usize>,
    member: Option<&'a str>,
    /// Its pattern's place in [`FIELD_PATTERNS`](super::FIELD_PATTERNS).
    pub(crate) slot: usize,
}

impl<'a> Place<'a> {
    const fn new(
        top: &'static str,
        index: Option<usize>,
        member: Option<&'a str>,
        slot: usize,
    ) -> Self {
        Place {
            top,
            index,
            member,
            slot,
        }
    }

    /// The place as a [`FieldPath`].
    pub(crate) fn path(&self) -> FieldPath {
        let mut p = FieldPath::key(self.top);
        if let Some(i) = self.index {
            p = p.at(i);
        }
        if let Some(m) = self.member {
            p = p.child(m);
        }
        p
    }

    /// The path's text (`bank_accounts[0].account_number`), as [`FieldPath`]'s `Display`
    /// writes it, written straight into a string of its size (`Display` goes through `fmt`,
    /// which cost a seal more than the copy).
    pub(crate) fn text(&self) -> String {
        let mut out =
            String::with_capacity(self.top.len() + self.member.map_or(0, |m| m.len() + 1) + 2 + 20);
        out.push_str(self.top);
        if let Some(i) = self.index {
            out.push('[');
            if i < 10 {
                out.push(char::from(b'0' + i as u8));
            } else {
                out.push_str(&i.to_string());
            }
            out.push(']');
        }
        if let Some(m) = self.member {
            out.push('.');
            out.push_str(m);
        }
        out
    }

    /// The path's text as an envelope keeps it: shared for the schema's own fields in the
    /// first [`SHARED_ITEMS`] items of a list, its own text otherwise (see [`PathText`]).
    pub(crate) fn key(&self) -> PathText {
        /// Every shared path by slot: whether the slot's field is in a list, and its texts by
        /// list position (one text for a field that is not), written once for the process.
        static SHARED: std::sync::LazyLock<Vec<(bool, Vec<String>)>> =
            std::sync::LazyLock::new(|| {
                super::FIELD_PATTERNS[..slot::CUSTOM]
                    .iter()
                    .map(|pattern| match pattern.split_once("[]") {
                        Some((top, member)) => (
                            true,
                            (0..SHARED_ITEMS)
                                .map(|i| format!("{top}[{i}]{member}"))
                                .collect(),
                        ),
                        None => (false, vec![(*pattern).to_owned()]),
                    })
                    .collect()
            });
        let shared = match (SHARED.get(self.slot), self.index) {
            (Some((true, texts)), Some(i)) => texts.get(i),
            (Some((false, texts)), None) => texts.first(),
            _ => None,
        };
        match shared {
            Some(text) => {
                debug_assert_eq!(*text, self.text());
                PathText::Shared(text)
            }
            None => PathText::from(self.text()),
        }
    }

    /// The key of a custom field (`vip_level` of `custom.vip_level`).
    pub(crate) fn custom_key(&self) -> Option<&'a str> {
        if self.top == "custom" {
            self.member
        } else {
            None
        }
    }

    /// The schema pattern (`bank_accounts[].account_number`, `custom.vip_level`): the
    /// [`FieldPath::pattern_key`] of [`Self::path`].
    pub(crate) fn pattern(&self) -> std::borrow::Cow<'static, str> {
        match self.custom_key() {
            Some(k) => std::borrow::Cow::Owned(format!("custom.{k}")),
            None => std::borrow::Cow::Borrowed(super::FIELD_PATTERNS[self.slot]),
        }
    }
}

impl fmt::Display for Place<'_> {
    /// The path's text: [`Place::text`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl fmt::Debug for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Field")
            .field("path", &self.path.to_string())
            .field("value", &"[redacted]")
            .finish()
    }
}

impl CustomerRecord {
    /// Reads a record from JSON text. Unknown keys, wrong types and malformed JSON are
    /// [`Error::Malformed`] with line, column and field path; sizes over the documented limits
    /// are [`Error::LimitExceeded`]. Messages never include a value.
    pub fn from_json(text: &str) -> Result<Self> {
        if text.len() > MAX_RECORD_BYTES {
            return Err(Error::LimitExceeded {
                what: "customer record JSON".into(),
                limit: MAX_RECORD_BYTES,
                unit: "bytes",
            });
        }
        // Tracking the path of every value costs more than the parse itself, and the path is
        // only needed to explain a failure: parse plainly, and again with tracking on error.
        let record: CustomerRecord = match serde_json::from_str(text) {
            Ok(record) => record,
            Err(plain) => {
                let mut de = serde_json::Deserializer::from_str(text);
                let err = match serde_path_to_error::deserialize::<_, CustomerRecord>(&mut de) {
                    Err(e) => json_error("customer record", e.inner(), &e.path().to_string()),
                    // Only trailing characters can fail the plain parse but not this one.
                    Ok(_) => json_error("customer record", &plain, ""),
                };
                return Err(err);
            }
        };
        record.check_limits()?;
        Ok(record)
    }

    /// Reads a record from UTF-8 bytes; invalid UTF-8 is [`Error::Malformed`] with its position.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(Error::LimitExceeded {
                what: "customer record JSON".into(),
                limit: MAX_RECORD_BYTES,
                unit: "bytes",
            });
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Error::malformed_utf8("customer record", bytes, e))?;
        Self::from_json(text)
    }

    /// Writes the record as JSON. The buffer is wiped when the returned value is dropped.
    pub fn to_json(&self) -> Zeroizing<String> {
        // Sized up front so that growing the buffer does not leave unwiped copies behind.
        let estimate = 512
            + self
                .places()
                .iter()
                .map(|(_, value)| value.len() * 2 + 48)
                .sum::<usize>();
        let mut buf = Zeroizing::new(Vec::with_capacity(estimate));
        // Serialising plain strings, enums and maps into a Vec cannot fail.
        if serde_json::to_writer(&mut *buf, self).is_err() {
            buf.clear();
        }
        let bytes = std::mem::take(&mut *buf);
        Zeroizing::new(String::from_utf8(bytes).unwrap_or_default())
    }

    /// The data subject: `subject`, or the record id when there is none.
    pub fn subject_id(&self) -> &str {
        self.subject.as_deref().unwrap_or(&self.id)
    }

    /// Every value in the record with its path, in a stable order. Document and account types
    /// are listed too (`id_documents[0].type`), since a schema may classify them.
    pub fn fields(&self) -> Vec<Field<'_>> {
        self.places()
            .into_iter()
            .map(|(place, value)| Field {
                path: place.path(),
                value,
            })
            .collect()
    }

    /// What [`Self::fields`] lists, with each path as a [`Place`] that is written out only
    /// where it is needed (a `FieldPath` per value, built and dropped, was a tenth of a seal).
    pub(crate) fn places(&self) -> Vec<(Place<'_>, &str)> {
        let mut out = Vec::with_capacity(
            1 + 3 * self.id_documents.len()
                + self.phones.len()
                + self.emails.len()
                + self.addresses.len()
                + 4 * self.bank_accounts.len()
                + self.custom.len(),
        );
        if let Some(n) = &self.name {
            out.push((Place::new("name", None, None, slot::NAME), n.expose()));
        }
        for (i, d) in self.id_documents.iter().enumerate() {
            let at = |member, slot| Place::new("id_documents", Some(i), Some(member), slot);
            out.push((at("type", slot::DOC_TYPE), d.doc_type.as_str()));
            out.push((at("number", slot::DOC_NUMBER), d.number.expose()));
            if let Some(c) = &d.country {
                out.push((at("country", slot::DOC_COUNTRY), c.as_str()));
            }
        }
        for (list, values, slot) in [
            ("phones", &self.phones, slot::PHONE),
            ("emails", &self.emails, slot::EMAIL),
            ("addresses", &self.addresses, slot::ADDRESS),
        ] {
            for (i, v) in values.iter().enumerate() {
                out.push((Place::new(list, Some(i), None, slot), v.expose()));
            }
        }
        for (i, a) in self.bank_accounts.iter().enumerate() {
            let at = |member, slot| Place::new("bank_accounts", Some(i), Some(member), slot);
            if let Some(v) = &a.bank_name {
                out.push((at("bank_name", slot::BANK_NAME), v.expose()));
            }
            if let Some(v) = &a.branch {
                out.push((at("branch", slot::BRANCH), v.expose()));
            }
            out.push((
                at("account_type", slot::ACCOUNT_TYPE),
                a.account_type.as_str(),
            ));
            out.push((
                at("account_number", slot::ACCOUNT_NUMBER),
                a.account_number.expose(),
            ));
        }
        for (k, v) in &self.custom {
            out.push((
                Place::new("custom", None, Some(k), slot::CUSTOM),
                v.expose(),
            ));
        }
        out
    }

    /// Rewrites every value in its canonical form (see the `normalize` module): full-width
    /// characters folded, separators removed where they carry no meaning, `x` to `X`, phone
    /// prefixes, e-mail domains lower-cased, 15-digit resident IDs upgraded to 18. Idempotent.
    pub fn normalize(&mut self) {
        // A value already in normal form is kept (most are): copying it would only cost a
        // buffer to write, wipe and free.
        for id in [&mut self.id, &mut self.tenant]
            .into_iter()
            .chain(self.subject.as_mut())
        {
            if !normalize::is_text(id) {
                *id = normalize::text(id).expose().to_owned();
            }
        }
        if let Some(n) = &self.name {
            self.name = Some(normalize::name(n.expose()));
        }
        for d in &mut self.id_documents {
            d.number = normalize::identifier(d.number.expose());
            if matches!(
                d.doc_type,
                DocumentType::CnResidentId | DocumentType::CnResidentId15
            ) && let Some(upgraded) = super::checks::upgrade_resident_id_15(d.number.expose())
            {
                d.number = Sensitive::new(upgraded);
                d.doc_type = DocumentType::CnResidentId;
            }
            if d.doc_type == DocumentType::CnResidentId15 && d.number.len() == 18 {
                // Already upgraded: an 18-character value is a current resident ID.
                d.doc_type = DocumentType::CnResidentId;
            }
            if let Some(c) = &d.country {
                d.country = Some(normalize::country(c));
            }
        }
        for p in &mut self.phones {
            *p = normalize::phone(p.expose());
        }
        for e in &mut self.emails {
            *e = normalize::email(e.expose());
        }
        for a in &mut self.addresses {
            keep_or_text(a);
        }
        for acct in &mut self.bank_accounts {
            for v in [&mut acct.bank_name, &mut acct.branch]
                .into_iter()
                .flatten()
            {
                keep_or_text(v);
            }
            acct.account_number = normalize::identifier(acct.account_number.expose());
        }
        for v in self.custom.values_mut() {
            keep_or_text(v);
        }
    }

    /// Checks the limits that [`Self::from_json`] checks once it has parsed a record: items a
    /// list, custom fields, bytes a value ([`Error::LimitExceeded`]). For a record read
    /// through its `Deserialize` from something other than JSON text (a binding reads a Python
    /// `dict` this way), whose caller answers for the text's size limit.
    pub fn check_limits(&self) -> Result<()> {
        let lists = [
            ("id_documents", self.id_documents.len()),
            ("phones", self.phones.len()),
            ("emails", self.emails.len()),
            ("addresses", self.addresses.len()),
            ("bank_accounts", self.bank_accounts.len()),
        ];
        for (name, len) in lists {
            if len > MAX_LIST_ITEMS {
                return Err(Error::LimitExceeded {
                    what: format!("`{name}`"),
                    limit: MAX_LIST_ITEMS,
                    unit: "items",
                });
            }
        }
        if self.custom.len() > MAX_CUSTOM_FIELDS {
            return Err(Error::LimitExceeded {
                what: "`custom`".into(),
                limit: MAX_CUSTOM_FIELDS,
                unit: "fields",
            });
        }
        for (place, value) in self.places() {
            if value.len() > MAX_VALUE_BYTES {
                return Err(Error::LimitExceeded {
                    what: format!("`{place}`"),
                    limit: MAX_VALUE_BYTES,
                    unit: "bytes",
                });
            }
        }
        Ok(())
    }
}

/// Turns a serde_json error into [`Error::Malformed`] without any value from the input.
pub(crate) fn json_error(what: &'static str, inner: &serde_json::Error, path: &str) -> Error {
    let raw = inner.to_string();
    let suffix = format!(" at line {} column {}", inner.line(), inner.column());
    let msg = raw.strip_suffix(&suffix).unwrap_or(&raw);
    let mut reason = crate::error::sanitize_serde_message(msg);
    if !path.is_empty() && path != "." {
        reason = format!("at `{path}`: {reason}");
    }
    Error::Malformed {
        what,
        format: Format::Json,
        line: inner.line(),
        column: inner.column(),
        reason,
    }
}

/// [`normalize::text`] of `v`, unless `v` is already in that form (then kept as it is).
fn keep_or_text(v: &mut Sensitive) {
    if !normalize::is_text(v.expose()) {
        *v = normalize::text(v.expose());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
        "id": "c-1", "tenant": "acme", "kind": "individual", "name": "张三",
        "id_documents": [{"type": "cn_resident_id", "number": "110101200001010002"}],
        "phones": ["13800000000"], "emails": ["zhang.san@example.com"],
        "addresses": ["北京市东城区某街道1号"],
        "bank_accounts": [{"bank_name": "中国银行", "account_type": "card", "account_number": "6200000000000005"}],
        "custom": {"vip_level": "gold"}
    }"#;

    #[test]
    fn type_names_parse_back() {
        for t in DocumentType::ALL {
            assert_eq!(DocumentType::parse(t.as_str()), Some(t));
        }
        for t in AccountType::ALL {
            assert_eq!(AccountType::parse(t.as_str()), Some(t));
        }
        assert_eq!(DocumentType::parse("Passport"), None);
        assert_eq!(AccountType::parse(""), None);
    }

    #[test]
    fn round_trip() {
        let r = CustomerRecord::from_json(SAMPLE).unwrap();
        let again = CustomerRecord::from_json(&r.to_json()).unwrap();
        assert_eq!(r, again);
        assert_eq!(r.subject_id(), "c-1");
        let paths: Vec<String> = r.fields().iter().map(|f| f.path.to_string()).collect();
        assert!(paths.contains(&"bank_accounts[0].account_number".to_string()));
        assert!(paths.contains(&"custom.vip_level".to_string()));
    }

    /// A place's text is its path's, at list positions of one digit and of more.
    #[test]
    fn place_text_is_the_path_text() {
        let mut r = CustomerRecord::from_json(SAMPLE).unwrap();
        r.phones = (0..12)
            .map(|i| Sensitive::new(format!("1380000{i:04}")))
            .collect();
        let places = r.places();
        assert!(places.iter().any(|(p, _)| p.text() == "phones[11]"));
        for (place, _) in &places {
            assert_eq!(place.text(), place.path().to_string());
            assert_eq!(place.text(), place.to_string());
        }
    }

    /// An envelope's key for every place is its path's text: shared for the schema's own
    /// fields in the first items of a list, its own for a custom field and a list's later items.
    #[test]
    fn place_key_is_the_path_text_shared_where_common() {
        let mut r = CustomerRecord::from_json(SAMPLE).unwrap();
        // Every slot of the schema's own fields, and lists longer than the shared texts.
        r.id_documents[0].country = Some("CN".into());
        r.bank_accounts[0].branch = Some(Sensitive::new("示例支行"));
        let many = SHARED_ITEMS + 3;
        r.phones = (0..many)
            .map(|i| Sensitive::new(format!("1380000{i:04}")))
            .collect();
        r.id_documents = (0..many).map(|_| r.id_documents[0].clone()).collect();
        r.bank_accounts = (0..many).map(|_| r.bank_accounts[0].clone()).collect();
        let places = r.places();
        let (mut shared, mut own) = (0, 0);
        for (place, _) in &places {
            let key = place.key();
            assert_eq!(key.as_str(), place.text());
            let common =
                place.custom_key().is_none() && place.index.is_none_or(|i| i < SHARED_ITEMS);
            match key {
                PathText::Shared(_) if common => shared += 1,
                PathText::Owned(_) if !common => own += 1,
                _ => panic!("`{}` shared: {common}, but not so", place.text()),
            }
        }
        assert!(places.iter().any(|(p, _)| p.key() == "custom.vip_level"));
        assert!(
            places
                .iter()
                .any(|(p, _)| p.key() == "bank_accounts[10].account_number")
        );
        let slots: std::collections::BTreeSet<usize> = places.iter().map(|(p, _)| p.slot).collect();
        assert_eq!(slots.len(), super::super::FIELD_PATTERNS.len(), "{slots:?}");
        assert!(shared > 0 && own > 3, "{shared} shared, {own} own");
    }

    #[test]
    fn unknown_key_is_named_with_position() {
        let err =
            CustomerRecord::from_json(r#"{"id":"1","tenant":"t","kind":"company","nmae":"x"}"#)
                .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`nmae`"), "{msg}");
        assert!(msg.contains("line 1"), "{msg}");
    }

    #[test]
    fn wrong_types_do_not_echo_values() {
        let err = CustomerRecord::from_json(
            r#"{"id":"1","tenant":"t","kind":"individual","phones":"13812345678"}"#,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(!msg.contains("13812345678"), "{msg}");
        assert!(msg.contains("phones"), "{msg}");
        let err =
            CustomerRecord::from_json(r#"{"id":"1","tenant":"t","kind":"张三丰"}"#).unwrap_err();
        assert!(!err.to_string().contains("张三丰"), "{err}");
        let err = CustomerRecord::from_json(
            r#"{"id":"1","tenant":"t","kind":"individual","name":13812345678}"#,
        )
        .unwrap_err();
        assert!(!err.to_string().contains("13812345678"), "{err}");
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = CustomerRecord::from_json("{\n  \"id\": \"1\",\n  oops\n}").unwrap_err();
        match err {
            Error::Malformed { line, column, .. } => assert_eq!((line, column), (3, 3)),
            other => panic!("{other:?}"),
        }
        assert!(
            CustomerRecord::from_json(r#"{"id":"1","tenant":"t","kind":"company"} trailing"#)
                .is_err()
        );
    }

    #[test]
    fn invalid_utf8_has_position() {
        let mut bytes = br#"{"id":"1","tenant":"t","kind":"company","name":""#.to_vec();
        bytes.extend_from_slice(&[0xff, b'"', b'}']);
        let err = CustomerRecord::from_json_bytes(&bytes).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Malformed);
        assert!(err.to_string().contains("byte offset 48"), "{err}");
    }

    #[test]
    fn limits() {
        let big = format!(
            r#"{{"id":"1","tenant":"t","kind":"company","name":"{}"}}"#,
            "a".repeat(MAX_VALUE_BYTES + 1)
        );
        assert_eq!(
            CustomerRecord::from_json(&big).unwrap_err().kind(),
            crate::ErrorKind::LimitExceeded
        );
        let phones = vec!["\"13800000000\""; MAX_LIST_ITEMS + 1].join(",");
        let many = format!(r#"{{"id":"1","tenant":"t","kind":"company","phones":[{phones}]}}"#);
        assert_eq!(
            CustomerRecord::from_json(&many).unwrap_err().kind(),
            crate::ErrorKind::LimitExceeded
        );
        let huge = " ".repeat(MAX_RECORD_BYTES + 1);
        assert_eq!(
            CustomerRecord::from_json(&huge).unwrap_err().kind(),
            crate::ErrorKind::LimitExceeded
        );
        let bad_key = r#"{"id":"1","tenant":"t","kind":"company","custom":{"a b":"x"}}"#;
        assert_eq!(
            CustomerRecord::from_json(bad_key).unwrap_err().kind(),
            crate::ErrorKind::Malformed
        );
        let deep = format!(
            r#"{{"id":"1","tenant":"t","kind":"company","custom":{}}}"#,
            "[".repeat(10_000)
        );
        assert_eq!(
            CustomerRecord::from_json(&deep).unwrap_err().kind(),
            crate::ErrorKind::Malformed
        );
    }

    #[test]
    fn normalize_upgrades_legacy_ids() {
        let mut r = CustomerRecord::from_json(
            r#"{"id":"1","tenant":"t","kind":"individual","id_documents":[{"type":"cn_resident_id_15","number":"110101 900101 000"}]}"#,
        )
        .unwrap();
        r.normalize();
        assert_eq!(r.id_documents[0].doc_type, DocumentType::CnResidentId);
        assert_eq!(r.id_documents[0].number.expose(), "110101199001010007");
    }
}
