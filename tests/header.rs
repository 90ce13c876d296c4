//! `include/coffer.h` must be exactly what cbindgen generates from `bindings/c` now.
//!
//! Regenerate it with: `COFFER_BLESS=1 cargo test -p coffer-conformance --test header`

use std::path::PathBuf;

#[test]
fn header_is_current() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let crate_dir = root.join("bindings/c");
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("read cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();
    let path = root.join("include/coffer.h");
    if std::env::var_os("COFFER_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/coffer.h is stale: it differs from what cbindgen generates from bindings/c.\n\
         Regenerate it with:  COFFER_BLESS=1 cargo test -p coffer-conformance --test header"
    );
}

#[test]
fn header_version_macros_follow_cargo() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let header = std::fs::read_to_string(root.join("include/coffer.h")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let parts: Vec<&str> = version.split('.').collect();
    for (name, value) in ["MAJOR", "MINOR", "PATCH"].iter().zip(parts) {
        let line = format!("#define COFFER_VERSION_{name} {value}");
        assert!(
            header.contains(&line),
            "missing `{line}` in include/coffer.h"
        );
    }
}
