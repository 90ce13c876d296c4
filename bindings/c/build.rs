//! Gives libcoffer.so a soname, so that programs link against the ABI version, not the file.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "freebsd" || os == "netbsd" || os == "openbsd" {
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcoffer.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
