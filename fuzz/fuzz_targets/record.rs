//! Record JSON: parse (bytes, so invalid UTF-8 too), normalise, validate, and print the report.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut record) = coffer::record::CustomerRecord::from_json_bytes(data) {
        record.normalize();
        let today = time::macros::date!(2026 - 11 - 27);
        let report = coffer::record::Schema::builtin().validate(&record, today);
        let _ = report.to_json();
        let _ = record.to_json();
    }
});
