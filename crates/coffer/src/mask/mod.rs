//! Display forms that de-identify a value (GB/T 35273 §7.2 display restriction).
//!
//! A [`MaskRule`] is one of a fixed, typed set, ordered from most to least restrictive by its
//! [`MaskOperator`]: withhold, keyed hash, a partial form, clear. Partial forms are CN-aware
//! (张* for a name, 138****0000 for a mobile) and come in two [`Profile`]s: `standard` for
//! everyone, `privileged` (a little wider) for roles that must match or verify identity.
//!
//! Masked values are de-identified, not anonymous (PIPL art. 73): they are still personal data.
//! This module does no cryptography: a keyed hash is computed by the vault, which holds the key;
//! [`MaskRule::apply`] says when one is needed.

use std::fmt;

use unicode_segmentation::UnicodeSegmentation;

mod address;
use address::mask_address;

/// The kind of transformation, ordered from most restrictive (`Withhold`) to least (`Clear`):
/// `a < b` means `a` reveals less than `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MaskOperator {
    /// Nothing is shown.
    Withhold,
    /// A keyed token stands in for the value: equal values can be matched, none read.
    KeyedHash,
    /// Part of the value is shown (see [`MaskForm`]).
    Partial,
    /// The whole value is shown.
    Clear,
}

/// Which parts of a value a partial form keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MaskForm {
    /// A name: the first character (the surname) and one `*` per hidden character; Latin names
    /// keep each part's initial. Privileged: also the last character of names of 3 or more.
    Name,
    /// A phone: a Chinese mobile keeps 3+4 (`138****0000`); a landline its area code and the
    /// last 2 digits (privileged: 4); an international number its first 2 and last 4 digits.
    Phone,
    /// An identity document number: first 1 + last 1 in a fixed-length run; privileged first 6
    /// + last 4. The birth date inside a resident ID is never shown.
    IdNumber,
    /// A card number: the last 4 after a fixed run (privileged: BIN 6 + last 4, PCI DSS 3.4.1).
    Card,
    /// An account number: the last 4.
    Account,
    /// An IBAN: country, check digits and last 4 (privileged: and the bank code).
    Iban,
    /// An e-mail address: the first character of the local part and the domain (privileged: 2).
    Email,
    /// An address: a recognised province and prefecture-level city (privileged: and a
    /// district or county name right after them: at most 6 Han characters ending in 区, 县 or
    /// 旗), copied from a fixed list, never from the input; a Latin-script address only a
    /// recognised country at its end. Anything unrecognised shows nothing (`****`).
    Address,
    /// A date: the year (privileged: year and month).
    Date,
    /// The last 4 characters.
    Last4,
    /// The first character.
    Initial,
}

impl MaskForm {
    /// Every form.
    pub const ALL: [MaskForm; 11] = [
        Self::Name,
        Self::Phone,
        Self::IdNumber,
        Self::Card,
        Self::Account,
        Self::Iban,
        Self::Email,
        Self::Address,
        Self::Date,
        Self::Last4,
        Self::Initial,
    ];

    /// The stable name used in schemas and policies.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Phone => "phone",
            Self::IdNumber => "id_number",
            Self::Card => "card",
            Self::Account => "account",
            Self::Iban => "iban",
            Self::Email => "email",
            Self::Address => "address",
            Self::Date => "date",
            Self::Last4 => "last4",
            Self::Initial => "initial",
        }
    }
}

/// How wide a partial form is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Profile {
    /// For general display (lists, reports, outbound documents).
    #[default]
    Standard,
    /// For staff who must match or verify identity; a little wider, never the whole value.
    Privileged,
}

impl Profile {
    /// The stable name (`standard`, `privileged`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Privileged => "privileged",
        }
    }

    /// The profile with this name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "standard" => Some(Self::Standard),
            "privileged" => Some(Self::Privileged),
            _ => None,
        }
    }
}

/// A masking rule: an operator, with a form when it is partial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaskRule {
    /// Show nothing.
    Withhold,
    /// Show a keyed token.
    KeyedHash,
    /// Show part of the value.
    Partial(MaskForm),
    /// Show the value.
    Clear,
}

/// The result of applying a [`MaskRule`].
#[derive(Clone, PartialEq, Eq)]
pub enum Masked {
    /// Nothing may be shown.
    Withheld,
    /// A keyed token must be shown; the caller that holds the key computes it.
    KeyedHash,
    /// The display form.
    Text(String),
}

impl fmt::Debug for Masked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A partial form is still personal data, and `Clear` puts the whole value here.
        match self {
            Self::Withheld => f.write_str("Withheld"),
            Self::KeyedHash => f.write_str("KeyedHash"),
            Self::Text(_) => f.write_str("Text([redacted])"),
        }
    }
}

impl MaskRule {
    /// The operator of this rule, for ordering rules by restrictiveness.
    pub const fn operator(self) -> MaskOperator {
        match self {
            Self::Withhold => MaskOperator::Withhold,
            Self::KeyedHash => MaskOperator::KeyedHash,
            Self::Partial(_) => MaskOperator::Partial,
            Self::Clear => MaskOperator::Clear,
        }
    }

    /// Parses `withhold`, `keyed_hash`, `clear` or a form name (`name`, `phone`, …).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "withhold" => Some(Self::Withhold),
            "keyed_hash" => Some(Self::KeyedHash),
            "clear" => Some(Self::Clear),
            _ => MaskForm::ALL
                .into_iter()
                .find(|f| f.as_str() == name)
                .map(Self::Partial),
        }
    }

    /// The stable name of this rule.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Withhold => "withhold",
            Self::KeyedHash => "keyed_hash",
            Self::Partial(f) => f.as_str(),
            Self::Clear => "clear",
        }
    }

    /// Applies the rule to a (normalised) value.
    pub fn apply(self, value: &str, profile: Profile) -> Masked {
        match self {
            Self::Withhold => Masked::Withheld,
            Self::KeyedHash => Masked::KeyedHash,
            Self::Clear => Masked::Text(value.to_owned()),
            Self::Partial(form) => Masked::Text(partial(form, profile, value)),
        }
    }
}

impl fmt::Display for MaskRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const STAR: char = '*';

fn stars(n: usize) -> String {
    masked("", n, "")
}

/// `head`, `n` stars, then `tail`, written into one string of exactly their size (`format!`
/// of `stars(n)` grew its string, leaving copies of the kept characters behind unwiped, and
/// was a third of masking).
fn masked(head: &str, n: usize, tail: &str) -> String {
    let mut out = String::with_capacity(head.len() + n + tail.len());
    out.push_str(head);
    out.extend(std::iter::repeat_n(STAR, n));
    out.push_str(tail);
    out
}

fn first_chars(value: &str, n: usize) -> &str {
    value
        .char_indices()
        .nth(n)
        .map_or(value, |(i, _)| &value[..i])
}

fn last_chars(value: &str, n: usize) -> &str {
    let count = value.chars().count();
    if count <= n {
        return value;
    }
    value
        .char_indices()
        .nth(count - n)
        .map_or(value, |(i, _)| &value[i..])
}

/// The partial form of `value`. Never panics, whatever the input; a value too short to keep
/// anything safely becomes a run of `*`.
pub fn partial(form: MaskForm, profile: Profile, value: &str) -> String {
    let privileged = profile == Profile::Privileged;
    let len = value.chars().count();
    match form {
        MaskForm::Name => mask_name(value, privileged),
        MaskForm::Phone => mask_phone(value, privileged),
        MaskForm::IdNumber => match (len, privileged) {
            (18, false) => masked(first_chars(value, 1), 16, last_chars(value, 1)),
            (18, true) => masked(first_chars(value, 6), 8, last_chars(value, 4)),
            (6.., false) => masked(first_chars(value, 1), 6, last_chars(value, 1)),
            (8.., true) => masked(first_chars(value, 2), 6, last_chars(value, 3)),
            _ => stars(6),
        },
        MaskForm::Card => match (len, privileged) {
            (14.., true) => masked(first_chars(value, 6), 6, last_chars(value, 4)),
            (10.., _) => masked("", 12, last_chars(value, 4)),
            _ => stars(4),
        },
        MaskForm::Account => {
            if len >= 8 {
                masked("", 4, last_chars(value, 4))
            } else {
                stars(4)
            }
        }
        MaskForm::Iban => mask_iban(value, privileged),
        MaskForm::Email => match value.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
                let keep = if privileged && local.chars().count() > 2 {
                    2
                } else {
                    1
                };
                let head = first_chars(local, keep);
                let mut out = String::with_capacity(head.len() + 4 + domain.len());
                out.push_str(head);
                out.push_str("***@");
                out.push_str(domain);
                out
            }
            _ => stars(3),
        },
        MaskForm::Address => mask_address(value, privileged),
        MaskForm::Date => {
            let digits: String = value.chars().filter(char::is_ascii_digit).collect();
            match (digits.len(), privileged) {
                (8, false) => format!("{}-**-**", &digits[..4]),
                (8, true) => format!("{}-{}-**", &digits[..4], &digits[4..6]),
                _ => "****-**-**".into(),
            }
        }
        MaskForm::Last4 => {
            if len > 4 {
                masked("", 4, last_chars(value, 4))
            } else {
                stars(4)
            }
        }
        MaskForm::Initial => match value.graphemes(true).next() {
            Some(g) if len > 1 => masked(g, 3, ""),
            _ => stars(3),
        },
    }
}

fn mask_name(value: &str, privileged: bool) -> String {
    let starts_cjk = value.chars().next().is_some_and(|c| c as u32 >= 0x2E80);
    if starts_cjk || !value.contains(' ') {
        let g: Vec<&str> = value.graphemes(true).collect();
        return match g.len() {
            0 => String::new(),
            1 => stars(1),
            n if privileged && n >= 3 => masked(g[0], n - 2, g[n - 1]),
            n => masked(g[0], n - 1, ""),
        };
    }
    value
        .split(' ')
        .map(|part| {
            let g: Vec<&str> = part.graphemes(true).collect();
            match g.first() {
                Some(first) => masked(first, g.len() - 1, ""),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn mask_phone(value: &str, privileged: bool) -> String {
    use crate::record::checks::{PhoneKind, classify_phone, cn_area_code_len};
    match classify_phone(value) {
        Ok(PhoneKind::CnMobile) => masked(&value[..3], 4, &value[7..]),
        Ok(PhoneKind::CnLandline) => {
            let area = cn_area_code_len(value);
            let keep = if privileged { 4 } else { 2 };
            format!("{}-****{}", &value[..area], last_chars(value, keep))
        }
        Ok(PhoneKind::E164) => masked(first_chars(value, 3), 4, last_chars(value, 4)),
        Err(_) if value.chars().count() > 6 => masked("", 4, last_chars(value, 2)),
        Err(_) => stars(4),
    }
}

/// Length of the bank identifier at the start of the BBAN, for the privileged IBAN form.
fn iban_bank_code_len(country: &str) -> usize {
    match country {
        "DE" => 8,
        "FR" | "MC" => 5,
        "IT" | "SM" => 6,
        "AT" | "CH" | "LI" => 5,
        _ => 4,
    }
}

fn mask_iban(value: &str, privileged: bool) -> String {
    if !value.is_ascii() || value.len() < 12 {
        return stars(4);
    }
    let bank = if privileged {
        iban_bank_code_len(&value[..2])
    } else {
        0
    };
    let head = 4 + bank;
    if value.len() < head + 8 {
        return masked(&value[..4], value.len() - 8, &value[value.len() - 4..]);
    }
    masked(
        &value[..head],
        value.len() - head - 4,
        &value[value.len() - 4..],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use MaskForm::*;
    use Profile::*;

    fn m(form: MaskForm, profile: Profile, v: &str) -> String {
        partial(form, profile, v)
    }

    #[test]
    fn operators_are_ordered() {
        assert!(MaskOperator::Withhold < MaskOperator::KeyedHash);
        assert!(MaskOperator::KeyedHash < MaskOperator::Partial);
        assert!(MaskOperator::Partial < MaskOperator::Clear);
        for name in [
            "withhold",
            "keyed_hash",
            "clear",
            "name",
            "id_number",
            "last4",
        ] {
            assert_eq!(MaskRule::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(MaskRule::parse("nope"), None);
    }

    #[test]
    fn cn_forms() {
        assert_eq!(m(Name, Standard, "张三"), "张*");
        assert_eq!(m(Name, Standard, "欧阳娜娜"), "欧***");
        assert_eq!(m(Name, Privileged, "欧阳娜娜"), "欧**娜");
        assert_eq!(m(Name, Standard, "Zhang San"), "Z**** S**");
        assert_eq!(m(Name, Standard, "𠀀三"), "𠀀*");
        assert_eq!(m(Phone, Standard, "13800000000"), "138****0000");
        assert_eq!(m(Phone, Standard, "01012345678"), "010-****78");
        assert_eq!(m(Phone, Privileged, "01012345678"), "010-****5678");
        assert_eq!(m(Phone, Standard, "+442071838750"), "+44****8750");
        assert_eq!(
            m(IdNumber, Standard, "110101200001010002"),
            "1****************2"
        );
        assert_eq!(
            m(IdNumber, Privileged, "110101200001010002"),
            "110101********0002"
        );
        assert_eq!(m(Card, Standard, "6200000000000005"), "************0005");
        assert_eq!(m(Card, Privileged, "6200000000000005"), "620000******0005");
        assert_eq!(m(Account, Standard, "11014455660001"), "****0001");
        assert_eq!(
            m(Iban, Standard, "DE17123456780000000001"),
            "DE17**************0001"
        );
        assert_eq!(
            m(Iban, Privileged, "DE17123456780000000001"),
            "DE1712345678******0001"
        );
        assert_eq!(
            m(Email, Standard, "zhang.san@example.com"),
            "z***@example.com"
        );
        assert_eq!(
            m(Email, Privileged, "zhang.san@example.com"),
            "zh***@example.com"
        );
        assert_eq!(m(Address, Standard, "北京市东城区某街道1号"), "北京市****");
        assert_eq!(
            m(Address, Privileged, "北京市东城区某街道1号"),
            "北京市东城区****"
        );
        assert_eq!(
            m(Address, Standard, "广东省深圳市南山区某路2号"),
            "广东省深圳市****"
        );
        assert_eq!(
            m(Address, Privileged, "广东省深圳市南山区某路2号"),
            "广东省深圳市南山区****"
        );
        assert_eq!(
            m(Address, Standard, "1 Main St, Springfield, IL, USA"),
            "****, USA"
        );
        assert_eq!(m(Date, Standard, "2000-01-01"), "2000-**-**");
        assert_eq!(m(Date, Privileged, "20000101"), "2000-01-**");
    }

    /// Characters of the output that are not mask or layout characters.
    fn shown(out: &str) -> usize {
        out.chars()
            .filter(|c| !matches!(c, '*' | '-' | ' ' | ',' | '@'))
            .count()
    }

    fn digit_runs(out: &str) -> usize {
        let mut longest = 0;
        let mut run = 0;
        for c in out.chars() {
            run = if c.is_ascii_digit() { run + 1 } else { 0 };
            longest = longest.max(run);
        }
        longest
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Every mask shows only what its rule documents, whatever the input: the address only
        /// words of its allow-list (never a run of digits), the name only initials, the forms
        /// that keep digits no more than they say.
        #[test]
        fn every_mask_shows_only_its_share(
            value in "[0-9a-zA-Z 张三李四北京市上海区县省路号,@.+-]{0,40}",
            place in proptest::sample::select(address::allowed_words()),
            tail in "[0-9a-zA-Z 张三路号区,]{0,20}",
        ) {
            for input in [value.clone(), format!("{place}{tail}"), format!("{tail}{place}{value}")] {
                for profile in [Standard, Privileged] {
                    let privileged = profile == Privileged;
                    for form in MaskForm::ALL {
                        let out = m(form, profile, &input);
                        let max = match (form, privileged) {
                            (Name | Address | Email, _) => usize::MAX,
                            (Phone, _) => 7,
                            (IdNumber, false) | (Initial, _) => 2,
                            (IdNumber, true) | (Card, true) => 10,
                            (Card, false) | (Account, _) | (Last4, _) => 4,
                            (Iban, false) => 8,
                            (Iban, true) => 16,
                            (Date, false) => 4,
                            (Date, true) => 6,
                        };
                        proptest::prop_assert!(shown(&out) <= max, "{form:?} {profile:?}: {input:?} -> {out:?}");
                        match form {
                            Address => {
                                proptest::prop_assert!(digit_runs(&out) == 0, "{input:?} -> {out:?}");
                                let words = address::allowed_words();
                                let kept = out.trim_end_matches('*').trim_start_matches("****, ");
                                // The recognised places, then (privileged) a district name.
                                let mut rest = kept;
                                for _ in 0..2 {
                                    if let Some(w) = words.iter().filter(|w| rest.starts_with(**w)).max_by_key(|w| w.len()) {
                                        rest = &rest[w.len()..];
                                    }
                                }
                                let district_ok = rest.is_empty()
                                    || (privileged && rest.chars().count() <= 6
                                        && rest.chars().all(|c| c as u32 >= 0x3400 && !c.is_ascii())
                                        && rest.ends_with(['区', '县', '旗']));
                                proptest::prop_assert!(district_ok, "{input:?} -> {out:?}: {rest:?} is not on the list");
                            }
                            Name => {
                                proptest::prop_assert!(digit_runs(&out) <= 1, "{input:?} -> {out:?}");
                                let parts = input.split(' ').filter(|p| !p.is_empty()).count().max(1);
                                proptest::prop_assert!(shown(&out) <= parts + 1, "{input:?} -> {out:?}");
                            }
                            Email => {
                                let local = out.rsplit_once('@').map_or(out.as_str(), |(l, _)| l);
                                proptest::prop_assert!(shown(local) <= 2, "{input:?} -> {out:?}");
                                if let Some((_, domain)) = out.rsplit_once('@') {
                                    proptest::prop_assert!(input.ends_with(&format!("@{domain}")), "{input:?} -> {out:?}");
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn id_number_never_shows_the_birth_date() {
        let id = "110101200001010002";
        for p in [Standard, Privileged] {
            assert!(!m(IdNumber, p, id).contains("20000101"));
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        for v in [
            "",
            "a",
            "张",
            "@",
            "a@",
            "@b",
            "🙂🙂",
            "1",
            "+",
            "0",
            "北京市",
            "DE",
            "e\u{301}",
        ] {
            for f in MaskForm::ALL {
                for p in [Standard, Privileged] {
                    let _ = m(f, p, v);
                }
            }
        }
    }
}
