//! Property tests: generated valid identifiers pass, every single-character substitution of
//! them fails, and normalisation is idempotent.

use coffer::record::{
    CustomerRecord, IssueCode, Schema, luhn_check_digit, normalize, resident_id_check_char,
    uscc_check_char,
};
use proptest::prelude::*;
use time::macros::date;

const TODAY: time::Date = date!(2026 - 11 - 27);
const USCC_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// A valid 18-character resident ID: any 6-digit region, a real date 1900–2025, any sequence.
fn resident_id() -> impl Strategy<Value = String> {
    (100_000u32..=999_999, 0i64..(125 * 365), 0u32..1000).prop_map(|(region, days, seq)| {
        let birth = date!(1900 - 01 - 01) + time::Duration::days(days);
        let body = format!(
            "{region:06}{:04}{:02}{:02}{seq:03}",
            birth.year(),
            u8::from(birth.month()),
            birth.day()
        );
        let check = resident_id_check_char(body.as_bytes()).unwrap() as char;
        format!("{body}{check}")
    })
}

fn uscc() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!['1', '5', '9', 'Y']),
        100_000u32..=999_999,
        prop::collection::vec(0usize..31, 9),
    )
        .prop_map(|(authority, region, body)| {
            let alphabet: Vec<char> = USCC_ALPHABET.chars().collect();
            let mut s = format!("{authority}1{region:06}");
            s.extend(body.into_iter().map(|i| alphabet[i]));
            let check = uscc_check_char(s.as_bytes()).unwrap() as char;
            s.push(check);
            s
        })
}

fn card() -> impl Strategy<Value = String> {
    prop::collection::vec(0u8..10, 10..=17).prop_map(|digits| {
        let payload: String = std::iter::once('6')
            .chain(digits.into_iter().map(|d| (b'0' + d) as char))
            .collect();
        let check = luhn_check_digit(&payload).unwrap() as char;
        format!("{payload}{check}")
    })
}

fn record_with_doc(doc_type: &str, number: &str) -> String {
    let kind = if doc_type == "uscc" {
        "company"
    } else {
        "individual"
    };
    format!(
        r#"{{"id":"c","tenant":"t","kind":"{kind}","name":"张三","phones":["13800000000"],
            "id_documents":[{{"type":"{doc_type}","number":"{number}"}}]}}"#
    )
}

fn report(json: &str) -> coffer::record::ValidationReport {
    let mut r = CustomerRecord::from_json(json).unwrap();
    r.normalize();
    Schema::builtin().validate(&r, TODAY)
}

/// Every way to change exactly one character of `s` to another from `alphabet`.
fn substitutions(s: &str, alphabet: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    for i in 0..chars.len() {
        for a in alphabet.chars().filter(|&a| a != chars[i]) {
            let mut c = chars.clone();
            c[i] = a;
            out.push(c.into_iter().collect());
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn generated_resident_ids_pass_and_every_substitution_fails(id in resident_id()) {
        prop_assert!(report(&record_with_doc("cn_resident_id", &id)).is_valid());
        for s in substitutions(&id, "0123456789X") {
            let r = report(&record_with_doc("cn_resident_id", &s));
            prop_assert!(!r.is_valid(), "substitution accepted");
            prop_assert!(r.errors().all(|i| i.path.to_string() == "id_documents[0].number"));
        }
    }

    #[test]
    fn generated_usccs_pass_and_every_substitution_fails(code in uscc()) {
        prop_assert!(report(&record_with_doc("uscc", &code)).is_valid());
        for s in substitutions(&code, USCC_ALPHABET) {
            prop_assert!(!report(&record_with_doc("uscc", &s)).is_valid());
        }
    }

    #[test]
    fn generated_cards_pass_and_every_digit_substitution_fails(pan in card()) {
        let json = |n: &str| format!(
            r#"{{"id":"c","tenant":"t","kind":"individual","name":"张三","phones":["13800000000"],
                "id_documents":[{{"type":"passport","number":"E12345678"}}],
                "bank_accounts":[{{"account_type":"card","account_number":"{n}"}}]}}"#);
        prop_assert!(report(&json(&pan)).is_valid());
        for s in substitutions(&pan, "0123456789") {
            prop_assert!(report(&json(&s)).has("bank_accounts[0].account_number", IssueCode::CardChecksum));
        }
    }

    #[test]
    fn normalisers_are_idempotent(s in "\\PC{0,40}") {
        for f in [normalize::text, normalize::name, normalize::identifier, normalize::phone, normalize::email] {
            let once = f(&s);
            let twice = f(once.expose());
            prop_assert_eq!(once.expose(), twice.expose());
        }
    }

    #[test]
    fn normalisers_are_idempotent_on_phone_like_input(s in "[+0０８6１3 ()\\-]{0,4}[0-9０-９ \\-]{0,16}") {
        let once = normalize::phone(&s);
        let twice = normalize::phone(once.expose());
        prop_assert_eq!(once.expose(), twice.expose());
    }

    #[test]
    fn record_normalisation_is_idempotent(id in resident_id(), name in "[张王李 ]{1,6}", phone in "(\\+86|0086)? ?1[3-9][0-9]{9}") {
        let json = format!(
            r#"{{"id":" c ","tenant":"t","kind":"individual","name":"{name}","phones":["{phone}"],
                "emails":[" A@EXAMPLE.com "],"id_documents":[{{"type":"cn_resident_id","number":"{}"}}]}}"#,
            id.to_lowercase());
        let mut once = CustomerRecord::from_json(&json).unwrap();
        once.normalize();
        let mut twice = once.clone();
        twice.normalize();
        prop_assert_eq!(&once, &twice);
        prop_assert_eq!(once.id_documents[0].number.expose(), id.as_str());
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(s in "\\PC{0,200}") {
        let _ = CustomerRecord::from_json(&s);
    }

    #[test]
    fn masking_arbitrary_text_never_panics(s in "\\PC{0,40}") {
        for form in coffer::mask::MaskForm::ALL {
            for p in [coffer::mask::Profile::Standard, coffer::mask::Profile::Privileged] {
                let _ = coffer::mask::partial(form, p, &s);
            }
        }
    }
}
