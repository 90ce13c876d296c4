//! The JSON that crosses the C API and the Python module: access requests, open options, holds,
//! batches of records and envelopes, checkpoints, certificates, archive bundles, report
//! documents rendered in every format, and search requests, parsed and then run against a real
//! store (normalisation, index transforms, limits, the decision and its audit entry).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// A store with the example policy and a lookup role that may search without a rate limit, made
/// once per fuzzing process.
fn store() -> &'static coffer::Coffer {
    static STORE: std::sync::OnceLock<coffer::Coffer> = std::sync::OnceLock::new();
    STORE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("coffer-fuzz-wire-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let policy = format!(
            "{}{}",
            include_str!("../../examples/policies/accounting-firm.toml"),
            "\n[roles.lookup]\n[[rules]]\nid = \"lookup\"\neffect = \"allow\"\nroles = [\"lookup\"]\n\
             actions = [\"search\"]\nfields = [\"*\"]\npurposes = [\"bookkeeping\"]\n"
        );
        coffer::Coffer::open_with(
            dir.join("s.db"),
            &coffer::MasterKey::from_bytes(&[3u8; 32]).unwrap(),
            coffer::OpenOptions {
                policy: Some(
                    coffer::policy::Policy::from_toml(&policy, coffer::record::Schema::builtin())
                        .unwrap(),
                ),
                ..Default::default()
            },
        )
        .unwrap()
    })
}

const LOOKUP: &str =
    r#"{"principal":{"id":"fuzz","tenant":"acme","roles":["lookup"]},"purpose":"bookkeeping"}"#;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match selector % 11 {
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
        9 => drop(coffer::wire::search_request_from_json(text)),
        10 => drop(coffer::wire::search_json(store(), LOOKUP, text)),
        _ => {
            if let Ok(bundle) = coffer::ArchiveBundle::from_json(text) {
                let _ = bundle.verify(&[0u8; 32], Some(&[7u8; 32]));
            }
        }
    }
});
