//! Audit verification on arbitrary rows: a store's audit table is filled with the input's rows
//! (entry text and MAC), and verification must answer (intact or not) without panicking.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

struct Store {
    path: std::path::PathBuf,
    key: coffer::MasterKey,
}

fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("coffer-fuzz-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.db");
        let key = coffer::MasterKey::generate().unwrap();
        drop(coffer::Coffer::open(&path, &key).unwrap());
        Store { path, key }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = store();
    {
        let conn = rusqlite::Connection::open(&s.path).unwrap();
        conn.execute("DELETE FROM audit WHERE seq > 1", []).unwrap();
        // Rows separated by 0xFF: the entry text, then 32 bytes of MAC (what is there).
        for (i, row) in data.split(|&b| b == 0xFF).take(64).enumerate() {
            let (entry, mac) = row.split_at(row.len().saturating_sub(32));
            let entry = String::from_utf8_lossy(entry);
            conn.execute(
                "INSERT INTO audit (seq, entry, mac) VALUES (?1, ?2, ?3)",
                rusqlite::params![(i + 2) as i64, entry, mac],
            )
            .unwrap();
        }
    }
    let c = coffer::Coffer::open(&s.path, &s.key).unwrap();
    if let Ok(report) = c.audit_verify(None) {
        // Arbitrary rows never verify, except when there are none.
        assert!(!report.intact || report.entries <= 1 || data.is_empty());
    }
});
