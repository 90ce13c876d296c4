//! Synthetic, deterministic inputs shared by the benches.

/// The typical individual record of the `validate` bench: name, resident ID, two phones, an
/// e-mail, an address, a card and a settlement account, written as people type them (spaces,
/// `+86`, a lower-case `x`), so that normalisation has work to do.
pub const TYPICAL_INDIVIDUAL: &str = r#"{
  "id": "c-000123", "tenant": "demo-firm", "kind": "individual",
  "name": "张三",
  "id_documents": [{"type": "cn_resident_id", "number": "11010119800101007x"}],
  "phones": ["+86 138 0000 0000", "010-12345678"],
  "emails": ["Zhang.San@Example.com"],
  "addresses": ["北京市东城区示例街道1号"],
  "bank_accounts": [
    {"bank_name": "示例银行", "account_type": "card", "account_number": "6200 0000 0000 0005"},
    {"bank_name": "示例银行", "account_type": "settlement", "account_number": "110144556600011"}
  ]
}"#;

/// Whether the benches run as a smoke test (`COFFER_BENCH_SMOKE` set, as the test command does
/// with `cargo bench -- --test`): the same code on data small enough to build in seconds, so that
/// every bench is compiled and run once on every change without its million-row fixtures.
pub fn smoke() -> bool {
    std::env::var_os("COFFER_BENCH_SMOKE").is_some()
}
