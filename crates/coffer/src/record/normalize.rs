//! Normalisation: one canonical spelling per value, so that the same value always validates,
//! indexes and seals the same way. Every function is idempotent (tested as a property).
//!
//! Intermediate buffers are wiped: each function builds its result in a fresh [`Sensitive`].

use super::Sensitive;

/// Maps a full-width ASCII variant (U+FF01–U+FF5E) to ASCII and the ideographic space to a space.
#[inline]
fn fold_char(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        // Dashes that people type for `-`: hyphen, non-breaking hyphen, figure dash, en dash,
        // em dash, minus sign.
        '\u{2010}'..='\u{2014}' | '\u{2212}' => '-',
        _ => c,
    }
}

/// Full-width to half-width, then trimmed, with runs of white space folded to one space.
pub fn text(value: &str) -> Sensitive {
    let mut out = String::with_capacity(value.len());
    let mut pending_space = false;
    for c in value.chars().map(fold_char) {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    Sensitive::new(out)
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3134F)
}

/// A person's or company's name: [`text`], then no spaces between two CJK characters
/// (`张 三` is `张三`), and the interpunct of transliterated names spelt one way (`·`).
pub fn name(value: &str) -> Sensitive {
    let folded = text(value);
    let chars: Vec<char> = folded.expose().chars().collect();
    let mut out = String::with_capacity(folded.len());
    for (i, &c) in chars.iter().enumerate() {
        let c = match c {
            '\u{2022}' | '\u{30FB}' | '\u{FF65}' | '\u{2027}' | '\u{22C5}' => '\u{00B7}',
            '.' if i > 0 && i + 1 < chars.len() && is_cjk(chars[i - 1]) && is_cjk(chars[i + 1]) => {
                '\u{00B7}'
            }
            _ => c,
        };
        if c == ' ' && i > 0 && i + 1 < chars.len() && is_cjk(chars[i - 1]) && is_cjk(chars[i + 1])
        {
            continue;
        }
        out.push(c);
    }
    Sensitive::new(out)
}

/// An identifier (ID number, USCC, card or account number, IBAN, permit number):
/// full-width folded, white space and dashes removed, ASCII letters upper-cased.
pub fn identifier(value: &str) -> Sensitive {
    let mut out = String::with_capacity(value.len());
    for c in value.chars().map(fold_char) {
        if c.is_whitespace() || c == '-' {
            continue;
        }
        out.push(c.to_ascii_uppercase());
    }
    Sensitive::new(out)
}

/// A phone number. Separators (white space, `-`, `.`, `(`, `)`) are removed; `00` becomes `+`;
/// a Chinese number (`+86`, `0086`, or `86` before an 11-digit mobile) is written in national
/// form (`13800000000`, `01012345678`); any other number stays `+` and digits.
pub fn phone(value: &str) -> Sensitive {
    let mut s = String::with_capacity(value.len());
    for c in value.chars().map(fold_char) {
        if c.is_whitespace() || matches!(c, '-' | '.' | '(' | ')') {
            continue;
        }
        s.push(c);
    }
    let s = Sensitive::new(s);
    let v = s.expose();
    let international = if let Some(rest) = v.strip_prefix("00") {
        Some(rest)
    } else {
        v.strip_prefix('+')
    };
    let out = match international {
        Some(rest) => match rest.strip_prefix("86") {
            // A Chinese mobile, or a landline whose area code lost its leading 0.
            Some(national) if national.starts_with('1') && national.len() == 11 => {
                national.to_owned()
            }
            Some(national) if national.starts_with('0') => national.to_owned(),
            Some(national) if !national.is_empty() => format!("0{national}"),
            _ => format!("+{rest}"),
        },
        None => match v.strip_prefix("86") {
            Some(national) if national.len() == 11 && national.starts_with('1') => {
                national.to_owned()
            }
            _ => v.to_owned(),
        },
    };
    Sensitive::new(out)
}

/// Whether `value` is already as [`text`] writes it (`text(value)` would be a copy of it): every
/// character its own fold, white space only single spaces between other characters. Most
/// values a record holds are, and a record's normalisation then keeps them rather than writing,
/// wiping and freeing a copy of each.
pub fn is_text(value: &str) -> bool {
    let mut previous_space = true;
    for c in value.chars() {
        if c == ' ' {
            if previous_space {
                return false;
            }
            previous_space = true;
        } else if c.is_whitespace() || fold_char(c) != c {
            return false;
        } else {
            previous_space = false;
        }
    }
    !previous_space || value.is_empty()
}

/// An e-mail address: [`text`] without any spaces; the domain lower-cased and, when it is not
/// ASCII, converted to its A-label (punycode) form. The local part keeps its case: whether it
/// matters is up to the mailbox provider.
pub fn email(value: &str) -> Sensitive {
    // [`text`] and then no white space at all is every character folded and white space
    // dropped (the runs `text` writes as one space all go), in one buffer: folding never
    // lengthens a value, so the buffer never moves and leaves no copy unwiped.
    let mut out = String::with_capacity(value.len());
    for c in value.chars().map(fold_char) {
        if !c.is_whitespace() {
            out.push(c);
        }
    }
    let Some(at) = out.rfind('@') else {
        return Sensitive::new(out);
    };
    if let Some(domain) = out.get_mut(at + 1..)
        && domain.is_ascii()
    {
        // An ASCII domain, lower-cased where it stands.
        domain.make_ascii_lowercase();
        return Sensitive::new(out);
    }
    let v = Sensitive::new(out);
    let (local, domain) = v.expose().split_at(at);
    let domain = &domain[1..];
    // An invalid IDN stays as written (lower-cased); validation reports it.
    let domain = idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_lowercase());
    // The IDNA mapping can bring white space back (U+00B8 maps to a space and a combining
    // cedilla): drop it again, or normalising twice would not give the same address.
    let domain: String = domain.chars().filter(|c| !c.is_whitespace()).collect();
    Sensitive::new(format!("{local}@{domain}"))
}

/// Upper-cases an ASCII country code and trims it.
pub fn country(value: &str) -> String {
    text(value).expose().to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `email` as it was written before it was one pass (issue 18, eleventh step): the
    /// reference the one-pass version must agree with.
    fn email_reference(value: &str) -> Sensitive {
        let folded = text(value);
        let v: String = folded
            .expose()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let v = Sensitive::new(v);
        let Some((local, domain)) = v.expose().rsplit_once('@') else {
            return v;
        };
        let domain = if domain.is_ascii() {
            domain.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_lowercase())
        };
        let domain: String = domain.chars().filter(|c| !c.is_whitespace()).collect();
        Sensitive::new(format!("{local}@{domain}"))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// The one-pass `email` writes what the two-pass one wrote, for any text and for
        /// address-like text with full-width forms, odd spaces, several `@` and non-ASCII
        /// domains.
        #[test]
        fn email_agrees_with_its_reference(
            any in "\\PC{0,40}",
            like in "[ \u{3000}\t]{0,2}[a-zA-Zｚ.０-９@＠ ]{0,12}[@＠][a-zA-Z例子中国．.\u{b8} -]{0,12}[ \u{3000}]{0,2}",
        ) {
            for v in [any, like] {
                let (new, reference) = (email(&v), email_reference(&v));
                proptest::prop_assert_eq!(new.expose(), reference.expose());
            }
        }

        /// What `is_text` accepts, `text` leaves as it is, and everything `text` writes is
        /// accepted: a record's normalisation may keep such a value instead of copying it.
        #[test]
        fn is_text_is_exactly_texts_fixed_points(
            any in "\\PC{0,40}",
            spaced in "[ a\u{3000}\t\u{2013}Ａ北]{0,12}",
        ) {
            for v in [any, spaced] {
                let t = text(&v);
                proptest::prop_assert!(is_text(t.expose()));
                proptest::prop_assert_eq!(is_text(&v), t.expose() == v);
            }
        }
    }

    #[test]
    fn is_text_cases() {
        for v in ["", "a", "北京市 东城区", "a b c", "Zhang San"] {
            assert!(is_text(v), "{v:?}");
        }
        for v in [
            " ",
            " a",
            "a ",
            "a  b",
            "a\tb",
            "Ａ",
            "a\u{3000}b",
            "\u{2013}",
        ] {
            assert!(!is_text(v), "{v:?}");
        }
    }

    #[test]
    fn full_width_and_spaces() {
        assert_eq!(
            identifier("１１０１０１ ２０００-０１０１ ０００２").expose(),
            "110101200001010002"
        );
        assert_eq!(
            identifier("11010119800101007x").expose(),
            "11010119800101007X"
        );
        assert_eq!(
            identifier("6200\u{2014}0000 0000 0005").expose(),
            "6200000000000005"
        );
        assert_eq!(
            text("  北京市\u{3000}东城区   某街道 ").expose(),
            "北京市 东城区 某街道"
        );
    }

    #[test]
    fn names() {
        assert_eq!(name(" 张 三 ").expose(), "张三");
        assert_eq!(name("Zhang  San").expose(), "Zhang San");
        assert_eq!(name("ＺＨＡＮＧ").expose(), "ZHANG");
        assert_eq!(name("买买提•艾力").expose(), "买买提·艾力");
        assert_eq!(name("买买提.艾力").expose(), "买买提·艾力");
    }

    #[test]
    fn phones() {
        for (input, want) in [
            ("+86 138-0000-0000", "13800000000"),
            ("0086 13800000000", "13800000000"),
            ("8613800000000", "13800000000"),
            ("（010）1234 5678", "01012345678"),
            ("+86 10 1234 5678", "01012345678"),
            ("+44 (20) 7183 8750", "+442071838750"),
            ("0044 20 7183 8750", "+442071838750"),
            ("１３８ ００００ ００００", "13800000000"),
        ] {
            assert_eq!(phone(input).expose(), want, "{input}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            email(" Zhang.San@EXAMPLE.com ").expose(),
            "Zhang.San@example.com"
        );
        assert_eq!(
            email("ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ").expose(),
            "zhang@example.com"
        );
        assert_eq!(email("a@例子.中国").expose(), "a@xn--fsqu00a.xn--fiqs8s");
        assert_eq!(email("no-at").expose(), "no-at");
        // Found by the idempotence property: IDNA maps U+00B8 to a space and a combining mark.
        let once = email("@\u{1944}\u{b8}");
        assert_eq!(email(once.expose()).expose(), once.expose());
        assert!(!once.expose().contains(' '));
    }
}
