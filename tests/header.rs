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

/// Every function the header declares is called by a C test program, and every one that takes
/// a pointer is in `tests/c/test_nulls.c` (NULL for each pointer).
#[test]
fn every_declared_function_is_tested_from_c() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let header = std::fs::read_to_string(root.join("include/coffer.h")).unwrap();
    let mut tests = String::new();
    for entry in std::fs::read_dir(root.join("tests/c")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "c") {
            tests.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    let nulls = std::fs::read_to_string(root.join("tests/c/test_nulls.c")).unwrap();
    let mut untested = Vec::new();
    let mut without_null_test = Vec::new();
    let mut declared = 0;
    for line in header
        .lines()
        .filter(|l| !l.starts_with("//") && !l.starts_with("typedef") && l.ends_with(");"))
    {
        let Some(open) = line.find('(') else {
            continue;
        };
        let Some(name) = line[..open]
            .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .filter(|n| n.starts_with("coffer_"))
        else {
            continue;
        };
        declared += 1;
        if !tests.contains(&format!("{name}(")) {
            untested.push(name.to_owned());
        }
        let params = &line[open..];
        if line.starts_with("coffer_status")
            && params.contains('*')
            && !nulls.contains(&format!("{name}("))
        {
            without_null_test.push(name.to_owned());
        }
    }
    assert!(
        declared >= 40,
        "only {declared} functions found in the header"
    );
    assert!(
        untested.is_empty(),
        "not called by any C test: {untested:?}"
    );
    assert!(
        without_null_test.is_empty(),
        "no NULL-pointer test in tests/c/test_nulls.c: {without_null_test:?}"
    );
}
