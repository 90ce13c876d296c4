//! Envelope parsing and opening: any text is refused with a typed error or opens; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Keys of the known-answer vectors' first case: a well-formed envelope under them opens.
const KEYS: &str = include_str!("../keys.json");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = coffer::Envelope::from_json(text);
    let _ = coffer::wire::open_with_keys_json(text, KEYS);
});
