//! Validation: is a record accurate (formats, check characters, dates) and complete (what its
//! kind requires)? Every problem is reported at once, each with its path, a stable code and a
//! static message: no message can contain a value, because messages are not built from one.

use std::fmt;

use serde::Serialize;
use time::Date;

use super::checks::{
    EmailProblem, IbanProblem, PhoneKind, PhoneProblem, ResidentIdProblem, UsccProblem,
    check_email, check_iban, check_resident_id, check_uscc, classify_phone, cn_mobile_allocated,
    luhn_ok, uscc_org_code_ok,
};
use super::model::{AccountType, CustomerRecord, DocumentType, MAX_ID_CHARS};
use super::path::FieldPath;
use super::schema::{FieldSpec, Schema, slot};

/// Whether an issue makes the record invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The record is refused.
    Error,
    /// Worth a look; the record is accepted.
    Warning,
}

macro_rules! issue_codes {
    ($( $variant:ident = $code:literal, $sev:ident, $msg:literal; )*) => {
        /// A stable code for one kind of validation problem. The string form never changes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum IssueCode {
            $( #[doc = $msg] $variant, )*
        }

        impl IssueCode {
            /// Every code.
            pub const ALL: &'static [IssueCode] = &[$(Self::$variant),*];

            /// The stable dotted code, e.g. `resident_id.checksum`.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $code,)* }
            }

            /// The default severity.
            pub const fn severity(self) -> Severity {
                match self { $(Self::$variant => Severity::$sev,)* }
            }

            /// A fixed explanation, free of any value.
            pub const fn message(self) -> &'static str {
                match self { $(Self::$variant => $msg,)* }
            }
        }
    };
}

issue_codes! {
    RequiredMissing = "required.missing", Error, "a field required for this kind of customer is missing";
    RequireAnyMissing = "required.any_missing", Error, "none of a group of fields, one of which is required, has a value";
    Empty = "value.empty", Error, "the value is empty";
    TooLong = "value.too_long", Error, "the value is longer than the schema allows";
    ControlChars = "value.control_chars", Error, "the value contains control or bidirectional-override characters";
    ResidentIdFormat = "resident_id.format", Error, "a resident ID is 17 digits followed by a digit or X (or 15 digits in the legacy form)";
    ResidentIdDate = "resident_id.date", Error, "the birth date in the ID is not a real calendar date";
    ResidentIdFutureBirth = "resident_id.future_birth_date", Error, "the birth date in the ID is in the future";
    ResidentIdTooEarly = "resident_id.birth_date_too_early", Error, "the birth date in the ID is before the earliest year the schema accepts";
    ResidentIdChecksum = "resident_id.checksum", Error, "the check character does not match (ISO 7064 MOD 11-2)";
    HmtPermitRegion = "hmt_permit.region", Error, "a Hong Kong, Macau or Taiwan residence permit starts with 81, 82 or 83";
    UsccFormat = "uscc.format", Error, "a Unified Social Credit Code is 18 characters with digits in positions 3 to 8";
    UsccAlphabet = "uscc.alphabet", Error, "a Unified Social Credit Code uses digits and capital letters except I, O, Z, S and V";
    UsccChecksum = "uscc.checksum", Error, "the check character does not match (GB 32100-2015)";
    UsccOrgCode = "uscc.org_code_checksum", Warning, "the embedded organisation code's check character does not match (GB 11714)";
    PassportFormat = "passport.format", Error, "a passport number is 5 to 20 letters and digits";
    PermitFormat = "permit.format", Error, "the travel permit number does not have the issuing authority's format";
    DocumentFormat = "document.format", Error, "a document number is 1 to 64 letters and digits";
    DocumentCountry = "document.country", Error, "a country is an ISO 3166-1 alpha-2 or alpha-3 code";
    CardFormat = "card.format", Error, "a card number is 12 to 19 digits";
    CardChecksum = "card.checksum", Error, "the card number's check digit does not match (Luhn)";
    AccountFormat = "account.format", Error, "a settlement account number is 8 to 32 digits";
    IbanFormat = "iban.format", Error, "an IBAN is a country code, two check digits and up to 30 letters and digits";
    IbanCountry = "iban.country", Error, "the country does not issue IBANs";
    IbanLength = "iban.length", Error, "the IBAN's length does not match its country's";
    IbanChecksum = "iban.checksum", Error, "the IBAN's check digits do not match (ISO 7064 MOD 97-10)";
    PhoneFormat = "phone.format", Error, "not a Chinese mobile or landline number, nor an international number in E.164 form";
    MobileFormat = "phone.mobile_format", Error, "a Chinese mobile number is 11 digits starting 13 to 19";
    MobileUnallocated = "phone.mobile_unallocated", Warning, "the mobile network code is not in the allocation table";
    EmailFormat = "email.format", Error, "not an e-mail address (WHATWG grammar)";
    EmailTooLong = "email.too_long", Error, "the local part is over 64 characters or the address over 254";
    EmailDomain = "email.domain", Error, "the e-mail domain is not a valid host name";
}

impl fmt::Display for IssueCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for IssueCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One problem with one field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// Where.
    pub path: FieldPath,
    /// What, as a stable code.
    pub code: IssueCode,
    /// Error or warning.
    pub severity: Severity,
    /// The fixed explanation of the code.
    pub message: &'static str,
}

impl Issue {
    fn new(path: FieldPath, code: IssueCode) -> Self {
        Issue {
            path,
            code,
            severity: code.severity(),
            message: code.message(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {sev} {}: {}", self.path, self.code, self.message)
    }
}

/// Every problem found in one record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ValidationReport {
    /// The problems, in record order.
    pub issues: Vec<Issue>,
}

impl ValidationReport {
    /// Whether the record is acceptable (warnings allowed).
    pub fn is_valid(&self) -> bool {
        !self.issues.iter().any(|i| i.severity == Severity::Error)
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Issue> {
        self.issues.iter().filter(|i| i.severity == Severity::Error)
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Issue> {
        self.issues
            .iter()
            .filter(|i| i.severity == Severity::Warning)
    }

    /// Whether an issue with this code was found at this path.
    pub fn has(&self, path: &str, code: IssueCode) -> bool {
        self.issues
            .iter()
            .any(|i| i.code == code && i.path.to_string() == path)
    }

    /// The report as JSON: `{"valid": bool, "issues": [{"path", "code", "severity", "message"}]}`.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Wire<'a> {
            valid: bool,
            issues: &'a [Issue],
        }
        serde_json::to_string(&Wire {
            valid: self.is_valid(),
            issues: &self.issues,
        })
        .unwrap_or_default()
    }
}

impl fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.errors().count();
        write!(
            f,
            "{errors} error(s), {} warning(s)",
            self.issues.len() - errors
        )?;
        for i in &self.issues {
            write!(f, "; {i}")?;
        }
        Ok(())
    }
}

/// Lazily built paths: most records have no issue, so no path is allocated for them.
struct Checker<'s> {
    schema: &'s Schema,
    today: Date,
    issues: Vec<Issue>,
}

fn bad_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

impl Checker<'_> {
    fn push(&mut self, path: impl FnOnce() -> FieldPath, code: IssueCode) {
        self.issues.push(Issue::new(path(), code));
    }

    /// Empty, too long, control characters. Returns whether the value is worth checking further.
    fn text(&mut self, path: &dyn Fn() -> FieldPath, value: &str, max_chars: usize) -> bool {
        if value.is_empty() {
            self.push(path, IssueCode::Empty);
            return false;
        }
        let mut ok = true;
        // Byte length bounds character count from above, so most values skip the count.
        if value.len() > max_chars && value.chars().count() > max_chars {
            self.push(path, IssueCode::TooLong);
            ok = false;
        }
        if value.chars().any(bad_char) {
            self.push(path, IssueCode::ControlChars);
            ok = false;
        }
        ok
    }

    fn spec_text(&mut self, path: &dyn Fn() -> FieldPath, value: &str, spec: &FieldSpec) -> bool {
        self.text(path, value, spec.max_length)
    }

    fn document(&mut self, i: usize, doc_type: DocumentType, number: &str, country: Option<&str>) {
        let path = || FieldPath::key("id_documents").at(i).child("number");
        if !self.spec_text(&path, number, self.schema.slot(slot::DOC_NUMBER)) {
            return;
        }
        let settings = *self.schema.validation();
        let code = match doc_type {
            DocumentType::CnResidentId
            | DocumentType::CnResidentId15
            | DocumentType::HmtResidencePermit => {
                if doc_type == DocumentType::HmtResidencePermit
                    && !["81", "82", "83"].iter().any(|p| number.starts_with(p))
                {
                    Some(IssueCode::HmtPermitRegion)
                } else {
                    match check_resident_id(number, self.today, settings.min_birth_year) {
                        Ok(()) => None,
                        Err(ResidentIdProblem::Format) => Some(IssueCode::ResidentIdFormat),
                        Err(ResidentIdProblem::Date) => Some(IssueCode::ResidentIdDate),
                        Err(ResidentIdProblem::FutureBirthDate) => {
                            Some(IssueCode::ResidentIdFutureBirth)
                        }
                        Err(ResidentIdProblem::BirthDateTooEarly) => {
                            Some(IssueCode::ResidentIdTooEarly)
                        }
                        Err(ResidentIdProblem::Checksum) => Some(IssueCode::ResidentIdChecksum),
                    }
                }
            }
            DocumentType::Uscc => match check_uscc(number) {
                Ok(()) if !uscc_org_code_ok(number) => Some(IssueCode::UsccOrgCode),
                Ok(()) => None,
                Err(UsccProblem::Format) => Some(IssueCode::UsccFormat),
                Err(UsccProblem::Alphabet) => Some(IssueCode::UsccAlphabet),
                Err(UsccProblem::Checksum) => Some(IssueCode::UsccChecksum),
            },
            DocumentType::Passport => {
                let ok = (5..=20).contains(&number.len())
                    && number
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
                (!ok).then_some(IssueCode::PassportFormat)
            }
            DocumentType::HkMacauPermit => {
                // H or M and 8 digits (since 2013), or 10 digits (older books).
                let b = number.as_bytes();
                let ok = matches!(b.first(), Some(b'H' | b'M'))
                    && (b.len() == 9 || b.len() == 11)
                    && b[1..].iter().all(u8::is_ascii_digit);
                (!ok).then_some(IssueCode::PermitFormat)
            }
            DocumentType::TaiwanPermit => {
                let ok = (8..=10).contains(&number.len())
                    && number
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
                (!ok).then_some(IssueCode::PermitFormat)
            }
            DocumentType::Other => {
                let ok = number
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
                (!ok).then_some(IssueCode::DocumentFormat)
            }
        };
        if let Some(code) = code {
            self.push(path, code);
        }
        if let Some(c) = country
            && !((2..=3).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            self.push(
                || FieldPath::key("id_documents").at(i).child("country"),
                IssueCode::DocumentCountry,
            );
        }
    }

    fn phone(&mut self, i: usize, phone: &str) {
        let path = || FieldPath::key("phones").at(i);
        if !self.spec_text(&path, phone, self.schema.slot(slot::PHONE)) {
            return;
        }
        match classify_phone(phone) {
            Ok(PhoneKind::CnMobile) if !cn_mobile_allocated(phone) => {
                let mut issue = Issue::new(path(), IssueCode::MobileUnallocated);
                if self.schema.validation().strict_mobile {
                    issue.severity = Severity::Error;
                }
                self.issues.push(issue);
            }
            Ok(_) => {}
            Err(PhoneProblem::Format) => self.push(path, IssueCode::PhoneFormat),
            Err(PhoneProblem::MobileFormat) => self.push(path, IssueCode::MobileFormat),
        }
    }

    fn email(&mut self, i: usize, email: &str) {
        let path = || FieldPath::key("emails").at(i);
        if !self.spec_text(&path, email, self.schema.slot(slot::EMAIL)) {
            return;
        }
        match check_email(email) {
            Ok(()) => {}
            Err(EmailProblem::Format) => self.push(path, IssueCode::EmailFormat),
            Err(EmailProblem::TooLong) => self.push(path, IssueCode::EmailTooLong),
            Err(EmailProblem::Domain) => self.push(path, IssueCode::EmailDomain),
        }
    }

    fn account(&mut self, i: usize, account_type: AccountType, number: &str) {
        let path = || {
            FieldPath::key("bank_accounts")
                .at(i)
                .child("account_number")
        };
        if !self.spec_text(&path, number, self.schema.slot(slot::ACCOUNT_NUMBER)) {
            return;
        }
        let digits = number.bytes().all(|b| b.is_ascii_digit());
        let code = match account_type {
            AccountType::Card if !digits || !(12..=19).contains(&number.len()) => {
                Some(IssueCode::CardFormat)
            }
            AccountType::Card if !luhn_ok(number) => Some(IssueCode::CardChecksum),
            AccountType::Card => None,
            AccountType::Settlement => {
                (!digits || !(8..=32).contains(&number.len())).then_some(IssueCode::AccountFormat)
            }
            AccountType::Iban => match check_iban(number) {
                Ok(()) => None,
                Err(IbanProblem::Format) => Some(IssueCode::IbanFormat),
                Err(IbanProblem::Country) => Some(IssueCode::IbanCountry),
                Err(IbanProblem::Length) => Some(IssueCode::IbanLength),
                Err(IbanProblem::Checksum) => Some(IssueCode::IbanChecksum),
            },
        };
        if let Some(code) = code {
            self.push(path, code);
        }
    }
}

impl Schema {
    /// Validates a record that has been [normalised](CustomerRecord::normalize): formats, check
    /// characters, birth dates (not after `today`), lengths, control characters, and the fields
    /// its kind requires. Returns every problem at once; warnings do not make it invalid.
    pub fn validate(&self, record: &CustomerRecord, today: Date) -> ValidationReport {
        let mut c = Checker {
            schema: self,
            today,
            issues: Vec::new(),
        };

        for (name, value) in [
            ("id", Some(&record.id)),
            ("tenant", Some(&record.tenant)),
            ("subject", record.subject.as_ref()),
        ] {
            if let Some(v) = value {
                c.text(&|| FieldPath::key(name), v, MAX_ID_CHARS);
            }
        }
        if let Some(name) = &record.name {
            c.spec_text(
                &|| FieldPath::key("name"),
                name.expose(),
                self.slot(slot::NAME),
            );
        }
        for (i, d) in record.id_documents.iter().enumerate() {
            c.document(i, d.doc_type, d.number.expose(), d.country.as_deref());
        }
        for (i, p) in record.phones.iter().enumerate() {
            c.phone(i, p.expose());
        }
        for (i, e) in record.emails.iter().enumerate() {
            c.email(i, e.expose());
        }
        for (i, a) in record.addresses.iter().enumerate() {
            c.spec_text(
                &|| FieldPath::key("addresses").at(i),
                a.expose(),
                self.slot(slot::ADDRESS),
            );
        }
        for (i, a) in record.bank_accounts.iter().enumerate() {
            let base = || FieldPath::key("bank_accounts").at(i);
            if let Some(v) = &a.bank_name {
                c.spec_text(
                    &|| base().child("bank_name"),
                    v.expose(),
                    self.slot(slot::BANK_NAME),
                );
            }
            if let Some(v) = &a.branch {
                c.spec_text(
                    &|| base().child("branch"),
                    v.expose(),
                    self.slot(slot::BRANCH),
                );
            }
            c.account(i, a.account_type, a.account_number.expose());
        }
        for (k, v) in &record.custom {
            c.spec_text(
                &|| FieldPath::key("custom").child(k),
                v.expose(),
                self.custom_spec(k),
            );
        }

        self.check_completeness(record, &mut c);
        ValidationReport { issues: c.issues }
    }

    fn check_completeness(&self, record: &CustomerRecord, c: &mut Checker<'_>) {
        let kind = record.kind;
        let present = |pattern: &str| -> bool {
            match pattern {
                "name" => record.name.as_ref().is_some_and(|n| !n.is_empty()),
                "id_documents[].type" | "id_documents[].number" => !record.id_documents.is_empty(),
                "id_documents[].country" => record.id_documents.iter().any(|d| d.country.is_some()),
                "phones[]" => !record.phones.is_empty(),
                "emails[]" => !record.emails.is_empty(),
                "addresses[]" => !record.addresses.is_empty(),
                "bank_accounts[].bank_name" => {
                    record.bank_accounts.iter().any(|a| a.bank_name.is_some())
                }
                "bank_accounts[].branch" => record.bank_accounts.iter().any(|a| a.branch.is_some()),
                "bank_accounts[].account_type" | "bank_accounts[].account_number" => {
                    !record.bank_accounts.is_empty()
                }
                "custom.*" => !record.custom.is_empty(),
                other => other
                    .strip_prefix("custom.")
                    .is_some_and(|k| record.custom.contains_key(k)),
            }
        };
        // The path of a missing pattern: its list (`phones`) or its first element's member.
        let path_of = |pattern: &str| -> FieldPath {
            let concrete = pattern.replace("[]", "[0]");
            let concrete = concrete.trim_end_matches(".*").trim_end_matches("[0]");
            FieldPath::parse(concrete).unwrap_or_else(|_| FieldPath::key("record"))
        };
        for (i, pattern) in super::schema::FIELD_PATTERNS.iter().enumerate() {
            if self.slot(i).required.contains(&kind) && !present(pattern) {
                c.push(|| path_of(pattern), IssueCode::RequiredMissing);
            }
        }
        for (key, spec) in self.declared_custom() {
            if spec.required.contains(&kind) && !record.custom.contains_key(key) {
                c.push(
                    || FieldPath::key("custom").child(key),
                    IssueCode::RequiredMissing,
                );
            }
        }
        for group in self.require_any() {
            if group.kinds.contains(&kind) && !group.fields.iter().any(|f| present(f)) {
                c.push(|| path_of(&group.fields[0]), IssueCode::RequireAnyMissing);
            }
        }
    }

    /// Normalises a record, validates it, and returns it with the report; a record with any
    /// error is refused with [`crate::Error::Validation`], which carries the whole report.
    pub fn check(
        &self,
        mut record: CustomerRecord,
        today: Date,
    ) -> crate::Result<(CustomerRecord, ValidationReport)> {
        record.normalize();
        let report = self.validate(&record, today);
        if report.is_valid() {
            Ok((record, report))
        } else {
            Err(crate::Error::Validation { report })
        }
    }
}
