//! Schema, policy (TOML and JSON) and retention documents: every problem reported, nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let schema = coffer::record::Schema::builtin();
    match selector % 4 {
        0 => drop(coffer::record::Schema::from_toml(text)),
        1 => drop(coffer::policy::Policy::from_toml(text, schema)),
        2 => drop(coffer::policy::Policy::from_json(text, schema)),
        _ => drop(coffer::retention::Retention::from_toml(text, schema)),
    }
});
