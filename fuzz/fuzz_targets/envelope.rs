//! Envelope parsing and opening: any text is refused with a typed error or opens; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Keys of the known-answer vectors' first case (version 1), third (version 2, sealed masked
/// forms) and fifth (version 3, ciphers per data key): a well-formed envelope under them opens.
const KEYS: &str = include_str!("../keys.json");
const KEYS_V2: &str = include_str!("../keys-v2.json");
const KEYS_V3: &str = include_str!("../keys-v3.json");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = coffer::Envelope::from_json(text);
    let _ = coffer::wire::open_with_keys_json(text, KEYS);
    let _ = coffer::wire::open_with_keys_json(text, KEYS_V2);
    let _ = coffer::wire::open_with_keys_json(text, KEYS_V3);
});
