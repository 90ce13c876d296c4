//! The JSON that crosses the C API and the Python module: access requests, open options, holds,
//! batches of records and envelopes, checkpoints, certificates, archive bundles, and report
//! documents rendered in every format.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match selector % 9 {
        0 => drop(coffer::wire::access_from_json(text)),
        1 => drop(coffer::wire::open_options_from_json(text)),
        2 => drop(coffer::wire::hold_from_json(text)),
        3 => drop(coffer::wire::envelopes_from_json(text, 64)),
        4 => drop(coffer::wire::array_items(text, "records", 64)),
        5 => drop(coffer::audit::Checkpoint::from_json(text)),
        6 => drop(coffer::Certificate::from_json(text)),
        7 => {
            for format in ["json", "markdown", "html"] {
                drop(coffer::wire::render_report_json(text, format));
            }
        }
        _ => {
            if let Ok(bundle) = coffer::ArchiveBundle::from_json(text) {
                let _ = bundle.verify(&[0u8; 32], Some(&[7u8; 32]));
            }
        }
    }
});
