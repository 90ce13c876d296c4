//! Check-character and format algorithms for the identifiers in customer records.
//!
//! Every function here takes a value that is already normalised (see `normalize`) and says only
//! whether and how it is wrong, never echoing it.

use std::sync::OnceLock;

use time::{Date, Month};

/// ISO 7064 MOD 11-2 weights for the 17 body digits of a resident ID (`2^(17-i) mod 11`).
const RESIDENT_ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const RESIDENT_ID_CHECK: &[u8; 11] = b"10X98765432";

/// What is wrong with an 18-character resident ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResidentIdProblem {
    /// Not 17 digits followed by a digit or `X`.
    Format,
    /// The birth date is not a real calendar date.
    Date,
    /// The birth date is after today.
    FutureBirthDate,
    /// The birth date is before the configured earliest year.
    BirthDateTooEarly,
    /// The check character does not match.
    Checksum,
}

/// The MOD 11-2 check character for 17 body digits (ASCII digits only).
pub fn resident_id_check_char(body: &[u8]) -> Option<u8> {
    if body.len() != 17 || !body.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = body
        .iter()
        .zip(RESIDENT_ID_WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    Some(RESIDENT_ID_CHECK[(sum % 11) as usize])
}

/// The birth date encoded in an 18-character ID, if it is a real date.
pub(crate) fn resident_id_birth_date(id: &[u8]) -> Option<Date> {
    if id.len() < 14 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = std::str::from_utf8(&id[r]).ok()?;
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let year = i32::try_from(num(6..10)?).ok()?;
    let month = Month::try_from(u8::try_from(num(10..12)?).ok()?).ok()?;
    let day = u8::try_from(num(12..14)?).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

/// Checks a normalised 18-character resident ID (or a Hong Kong, Macau or Taiwan residence
/// permit, which shares the layout and check character).
pub(crate) fn check_resident_id(
    id: &str,
    today: Date,
    min_year: i32,
) -> Result<(), ResidentIdProblem> {
    let b = id.as_bytes();
    if b.len() != 18
        || !b[..17].iter().all(u8::is_ascii_digit)
        || !(b[17].is_ascii_digit() || b[17] == b'X')
    {
        return Err(ResidentIdProblem::Format);
    }
    let birth = resident_id_birth_date(b).ok_or(ResidentIdProblem::Date)?;
    if birth > today {
        return Err(ResidentIdProblem::FutureBirthDate);
    }
    if birth.year() < min_year {
        return Err(ResidentIdProblem::BirthDateTooEarly);
    }
    if resident_id_check_char(&b[..17]) != Some(b[17]) {
        return Err(ResidentIdProblem::Checksum);
    }
    Ok(())
}

/// Upgrades a 15-digit resident ID (GB 11643-1989: no century, no check character) to the
/// 18-character form: `19` inserted after the region code, the check character appended.
pub fn upgrade_resident_id_15(id: &str) -> Option<String> {
    let b = id.as_bytes();
    if b.len() != 15 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut body = Vec::with_capacity(18);
    body.extend_from_slice(&b[..6]);
    body.extend_from_slice(b"19");
    body.extend_from_slice(&b[6..]);
    let check = resident_id_check_char(&body)?;
    body.push(check);
    String::from_utf8(body).ok()
}

/// The GB 32100-2015 alphabet: digits and upper-case letters without I, O, Z, S, V.
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// `3^i mod 31`, i = 0..16.
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
/// GB 11714 organisation-code weights.
const ORG_CODE_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// What is wrong with a Unified Social Credit Code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UsccProblem {
    /// Not 18 characters, or positions 3–8 are not digits.
    Format,
    /// A character outside the 31-character alphabet.
    Alphabet,
    /// The check character does not match.
    Checksum,
}

fn uscc_value(c: u8) -> Option<u32> {
    USCC_ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// The GB 32100 check character for the first 17 characters, if they are in the alphabet.
pub fn uscc_check_char(body: &[u8]) -> Option<u8> {
    if body.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (&c, w) in body.iter().zip(USCC_WEIGHTS) {
        sum += uscc_value(c)? * w;
    }
    Some(USCC_ALPHABET[((31 - sum % 31) % 31) as usize])
}

/// Checks a normalised USCC.
pub(crate) fn check_uscc(code: &str) -> Result<(), UsccProblem> {
    let b = code.as_bytes();
    if b.len() != 18 {
        return Err(UsccProblem::Format);
    }
    if !b.iter().all(|&c| uscc_value(c).is_some()) {
        return Err(UsccProblem::Alphabet);
    }
    if !b[2..8].iter().all(u8::is_ascii_digit) {
        return Err(UsccProblem::Format);
    }
    if uscc_check_char(&b[..17]) != Some(b[17]) {
        return Err(UsccProblem::Checksum);
    }
    Ok(())
}

/// Whether the organisation code embedded in a USCC (positions 9–17, GB 11714) has a correct
/// check character. Its letters use plain base-36 values, unlike the USCC's own alphabet.
pub(crate) fn uscc_org_code_ok(code: &str) -> bool {
    let b = code.as_bytes();
    if b.len() != 18 {
        return false;
    }
    let org = &b[8..17];
    let mut sum = 0;
    for (&c, w) in org[..8].iter().zip(ORG_CODE_WEIGHTS) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        sum += v * w;
    }
    let expected = match 11 - sum % 11 {
        10 => b'X',
        11 => b'0',
        n => b'0' + n as u8,
    };
    org[8] == expected
}

/// Whether a string of ASCII digits passes the Luhn check (ISO/IEC 7812-1).
pub fn luhn_ok(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.bytes().rev().enumerate() {
        if !c.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum % 10 == 0
}

/// The Luhn check digit to append to `payload` (ASCII digits).
pub fn luhn_check_digit(payload: &str) -> Option<u8> {
    let mut sum = 0;
    for (i, c) in payload.bytes().rev().enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        let mut d = u32::from(c - b'0');
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    Some(b'0' + ((10 - sum % 10) % 10) as u8)
}

/// IBAN lengths per country (the SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

/// The IBAN length of a country, if it issues IBANs.
pub(crate) fn iban_length(country: &str) -> Option<usize> {
    IBAN_LENGTHS
        .iter()
        .find(|(c, _)| *c == country)
        .map(|&(_, n)| n)
}

/// What is wrong with an IBAN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IbanProblem {
    /// Not two letters, two digits and alphanumerics.
    Format,
    /// The country does not issue IBANs.
    Country,
    /// The length does not match the country's.
    Length,
    /// The mod 97 check fails.
    Checksum,
}

/// Checks a normalised IBAN (ISO 13616, ISO 7064 MOD 97-10).
pub(crate) fn check_iban(iban: &str) -> Result<(), IbanProblem> {
    let b = iban.as_bytes();
    if b.len() < 15
        || b.len() > 34
        || !b[..2].iter().all(u8::is_ascii_uppercase)
        || !b[2..4].iter().all(u8::is_ascii_digit)
        || !b[4..]
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        return Err(IbanProblem::Format);
    }
    let expected = iban_length(&iban[..2]).ok_or(IbanProblem::Country)?;
    if b.len() != expected {
        return Err(IbanProblem::Length);
    }
    if iban_mod97(b) != 1 {
        return Err(IbanProblem::Checksum);
    }
    Ok(())
}

fn iban_mod97(b: &[u8]) -> u32 {
    let mut rem = 0u32;
    for &c in b[4..].iter().chain(&b[..4]) {
        if c.is_ascii_digit() {
            rem = (rem * 10 + u32::from(c - b'0')) % 97;
        } else {
            rem = (rem * 100 + u32::from(c - b'A') + 10) % 97;
        }
    }
    rem
}

/// The kind of a normalised phone number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PhoneKind {
    /// A Chinese mobile number, 11 digits starting `1[3-9]`.
    CnMobile,
    /// A Chinese landline with its area code, starting `0`.
    CnLandline,
    /// An international number in E.164 form (`+` and 7–15 digits).
    E164,
}

/// What is wrong with a phone number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PhoneProblem {
    /// Not a Chinese mobile or landline number, nor an E.164 number.
    Format,
    /// Starts like a Chinese mobile number but is not one (wrong length or second digit).
    MobileFormat,
}

/// Classifies a normalised phone number.
pub(crate) fn classify_phone(phone: &str) -> Result<PhoneKind, PhoneProblem> {
    let b = phone.as_bytes();
    if let Some(rest) = phone.strip_prefix('+') {
        let r = rest.as_bytes();
        return if (7..=15).contains(&r.len()) && r[0] != b'0' && r.iter().all(u8::is_ascii_digit) {
            Ok(PhoneKind::E164)
        } else {
            Err(PhoneProblem::Format)
        };
    }
    if !b.iter().all(u8::is_ascii_digit) || b.is_empty() {
        return Err(PhoneProblem::Format);
    }
    match b[0] {
        b'1' => {
            if b.len() == 11 && (b'3'..=b'9').contains(&b[1]) {
                Ok(PhoneKind::CnMobile)
            } else {
                Err(PhoneProblem::MobileFormat)
            }
        }
        b'0' if (10..=12).contains(&b.len()) && b[1] != b'0' => Ok(PhoneKind::CnLandline),
        _ => Err(PhoneProblem::Format),
    }
}

/// The length of the area code (with its leading `0`) of a normalised Chinese landline:
/// `010` and `02x` are three digits, the rest four.
pub(crate) fn cn_area_code_len(landline: &str) -> usize {
    match landline.as_bytes().get(1) {
        Some(b'1' | b'2') => 3,
        _ => 4,
    }
}

fn mobile_prefix_table() -> &'static [bool; 100] {
    static TABLE: OnceLock<[bool; 100]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [false; 100];
        for line in include_str!("data/cn_mobile_prefixes.txt").lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (lo, hi) = line.split_once('-').unwrap_or((line, line));
            if let (Ok(lo), Ok(hi)) = (lo.parse::<usize>(), hi.parse::<usize>()) {
                for p in lo..=hi.min(199) {
                    if p >= 100 {
                        t[p - 100] = true;
                    }
                }
            }
        }
        t
    })
}

/// Whether a normalised Chinese mobile number's network code is in the allocation table.
pub(crate) fn cn_mobile_allocated(mobile: &str) -> bool {
    mobile
        .get(..3)
        .and_then(|p| p.parse::<usize>().ok())
        .is_some_and(|p| (100..200).contains(&p) && mobile_prefix_table()[p - 100])
}

/// What is wrong with an e-mail address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EmailProblem {
    /// Not `local@domain` in the WHATWG grammar.
    Format,
    /// Local part over 64 octets or address over 254.
    TooLong,
    /// The domain is not a valid host name.
    Domain,
}

/// Checks a normalised e-mail address against the WHATWG "valid e-mail address" grammar and
/// the RFC 5321 length limits.
pub(crate) fn check_email(email: &str) -> Result<(), EmailProblem> {
    let (local, domain) = email.rsplit_once('@').ok_or(EmailProblem::Format)?;
    const LOCAL_EXTRA: &[u8] = b".!#$%&'*+/=?^_`{|}~-";
    if local.is_empty()
        || !local
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || LOCAL_EXTRA.contains(&c))
    {
        return Err(EmailProblem::Format);
    }
    if local.len() > 64 || email.len() > 254 {
        return Err(EmailProblem::TooLong);
    }
    if domain.is_empty() {
        return Err(EmailProblem::Format);
    }
    for label in domain.split('.') {
        let l = label.as_bytes();
        if l.is_empty()
            || l.len() > 63
            || !l[0].is_ascii_alphanumeric()
            || !l[l.len() - 1].is_ascii_alphanumeric()
            || !l.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        {
            return Err(EmailProblem::Domain);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 11 - 27);

    #[test]
    fn resident_id_vectors() {
        for ok in [
            "110101200001010002",
            "440304199912310023",
            "11010119800101007X",
            "360426199101010071",
        ] {
            assert_eq!(check_resident_id(ok, TODAY, 1880), Ok(()), "{ok}");
        }
        assert_eq!(
            check_resident_id("110101200001010000", TODAY, 1880),
            Err(ResidentIdProblem::Checksum)
        );
        // Correct check character for an impossible date (30 February).
        assert_eq!(
            check_resident_id("110101199002300006", TODAY, 1880),
            Err(ResidentIdProblem::Date)
        );
        assert_eq!(
            check_resident_id("11010119800101007", TODAY, 1880),
            Err(ResidentIdProblem::Format)
        );
        assert_eq!(
            check_resident_id("1101011980010100X7", TODAY, 1880),
            Err(ResidentIdProblem::Format)
        );
    }

    #[test]
    fn resident_id_dates() {
        let with_check = |body: &str| {
            let c = resident_id_check_char(body.as_bytes()).unwrap();
            format!("{body}{}", c as char)
        };
        // Leap days: 2000 and 2024 are leap years, 1900 and 2023 are not.
        assert_eq!(
            check_resident_id(&with_check("11010120000229001"), TODAY, 1880),
            Ok(())
        );
        assert_eq!(
            check_resident_id(&with_check("11010120240229001"), TODAY, 1880),
            Ok(())
        );
        assert_eq!(
            check_resident_id(&with_check("11010119000229001"), TODAY, 1880),
            Err(ResidentIdProblem::Date)
        );
        assert_eq!(
            check_resident_id(&with_check("11010120230229001"), TODAY, 1880),
            Err(ResidentIdProblem::Date)
        );
        assert_eq!(
            check_resident_id(&with_check("11010119991301001"), TODAY, 1880),
            Err(ResidentIdProblem::Date)
        );
        assert_eq!(
            check_resident_id(&with_check("11010119990100001"), TODAY, 1880),
            Err(ResidentIdProblem::Date)
        );
        // Born tomorrow, and born before the earliest plausible year.
        assert_eq!(
            check_resident_id(&with_check("11010120261128001"), TODAY, 1880),
            Err(ResidentIdProblem::FutureBirthDate)
        );
        assert_eq!(
            check_resident_id(&with_check("11010120261127001"), TODAY, 1880),
            Ok(())
        );
        assert_eq!(
            check_resident_id(&with_check("11010118790101001"), TODAY, 1880),
            Err(ResidentIdProblem::BirthDateTooEarly)
        );
    }

    #[test]
    fn legacy_15_upgrade() {
        assert_eq!(
            upgrade_resident_id_15("110101900101000").as_deref(),
            Some("110101199001010007")
        );
        assert_eq!(upgrade_resident_id_15("11010190010100"), None);
        assert_eq!(upgrade_resident_id_15("11010190010100X"), None);
    }

    #[test]
    fn uscc_vectors() {
        for ok in [
            "91110000MA00000152",
            "91110000000000019B",
            "91110000MA0000AB0M",
            "92440300MA0000015Y",
            "91110000600037341L",
        ] {
            assert_eq!(check_uscc(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_uscc("91110000MA00000153"), Err(UsccProblem::Checksum));
        assert_eq!(check_uscc("91110000MA0000015I"), Err(UsccProblem::Alphabet));
        assert_eq!(check_uscc("9111000MA00000152"), Err(UsccProblem::Format));
        assert_eq!(check_uscc("911A0000MA00000152"), Err(UsccProblem::Format));
        assert!(uscc_org_code_ok("91110000MA00000152"));
        assert!(uscc_org_code_ok("91110000MA0000AB0M"));
        assert!(uscc_org_code_ok("91110000600037341L"));
    }

    #[test]
    fn luhn_vectors() {
        for ok in [
            "79927398713",
            "6200000000000005",
            "620000000000000005",
            "6217000000000000004",
            "4111111111111111",
        ] {
            assert!(luhn_ok(ok), "{ok}");
            let (payload, check) = ok.split_at(ok.len() - 1);
            assert_eq!(luhn_check_digit(payload), Some(check.as_bytes()[0]));
        }
        assert!(!luhn_ok("6200000000000006"));
        assert!(!luhn_ok(""));
        assert!(!luhn_ok("62000000000000x5"));
    }

    #[test]
    fn iban_vectors() {
        assert_eq!(check_iban("DE17123456780000000001"), Ok(()));
        assert_eq!(check_iban("GB82WEST12345698765432"), Ok(()));
        assert_eq!(
            check_iban("GB82WEST12345698765433"),
            Err(IbanProblem::Checksum)
        );
        assert_eq!(
            check_iban("DE1712345678000000001"),
            Err(IbanProblem::Length)
        );
        assert_eq!(
            check_iban("ZZ17123456780000000001"),
            Err(IbanProblem::Country)
        );
        assert_eq!(
            check_iban("de17123456780000000001"),
            Err(IbanProblem::Format)
        );
    }

    #[test]
    fn phone_vectors() {
        for (p, lenient, strict) in [
            ("13800000000", true, true),
            ("19200000000", true, true),
            ("16200000000", true, true),
            ("15400000000", true, false),
            ("12000000000", false, false),
            ("1380000000", false, false),
        ] {
            assert_eq!(classify_phone(p) == Ok(PhoneKind::CnMobile), lenient, "{p}");
            assert_eq!(lenient && cn_mobile_allocated(p), strict, "{p}");
        }
        assert_eq!(classify_phone("01012345678"), Ok(PhoneKind::CnLandline));
        assert_eq!(cn_area_code_len("01012345678"), 3);
        assert_eq!(cn_area_code_len("075512345678"), 4);
        assert_eq!(classify_phone("+442071838750"), Ok(PhoneKind::E164));
        assert_eq!(classify_phone("+0442071838750"), Err(PhoneProblem::Format));
        assert_eq!(
            classify_phone("+1234567890123456"),
            Err(PhoneProblem::Format)
        );
        assert_eq!(classify_phone(""), Err(PhoneProblem::Format));
    }

    #[test]
    fn email_vectors() {
        assert_eq!(check_email("zhang.san@example.com"), Ok(()));
        assert_eq!(check_email("a+b@example.cn"), Ok(()));
        assert_eq!(check_email("a@localhost"), Ok(()));
        assert_eq!(check_email("no-at.example.com"), Err(EmailProblem::Format));
        assert_eq!(check_email("x@-bad.com"), Err(EmailProblem::Domain));
        assert_eq!(check_email("x@exa_mple.com"), Err(EmailProblem::Domain));
        assert_eq!(
            check_email(&format!("{}@example.com", "a".repeat(65))),
            Err(EmailProblem::TooLong)
        );
        assert_eq!(
            check_email(&format!("a@{}.com", "b".repeat(64))),
            Err(EmailProblem::Domain)
        );
    }
}
