//! The documentation stays true to the code.

use std::path::PathBuf;

fn read(path: &str) -> String {
    std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path),
    )
    .unwrap()
}

#[test]
fn every_validation_code_is_documented() {
    let doc = read("docs/RECORDS.md");
    for code in coffer::record::IssueCode::ALL {
        let row = format!(
            "| `{}` | {} | {} |",
            code.as_str(),
            match code.severity() {
                coffer::record::Severity::Error => "error",
                coffer::record::Severity::Warning => "warning",
            },
            code.message()
        );
        assert!(
            doc.contains(&row),
            "docs/RECORDS.md lacks or misstates `{}`",
            code.as_str()
        );
    }
}

#[test]
fn readme_names_the_test_command_that_ci_runs() {
    let readme = read("README.md");
    let ci = read(".ci/run");
    assert!(readme.contains("./scripts/test"));
    assert!(ci.contains("./scripts/test"));
}

#[test]
fn the_policy_doc_quotes_the_example_policy_exactly() {
    let doc = read("docs/POLICY.md");
    let example = read("examples/policies/accounting-firm.toml");
    assert!(
        doc.contains(&example),
        "docs/POLICY.md must quote examples/policies/accounting-firm.toml verbatim"
    );
    for action in coffer::policy::Action::ALL {
        assert!(
            doc.contains(&format!("`{}`", action.as_str())),
            "docs/POLICY.md does not name the action `{}`",
            action.as_str()
        );
    }
    for attr in [
        "principal.id",
        "principal.tenant",
        "principal.roles",
        "record.tenant",
        "record.kind",
        "record.region",
        "record.subject",
        "context.time",
        "context.hour",
        "context.weekday",
        "context.destination_region",
        "context.ticket",
        "context.second_approver",
        "context.client",
    ] {
        assert!(
            doc.contains(&format!("| `{attr}` |")),
            "docs/POLICY.md does not document `{attr}`"
        );
    }
}

#[test]
fn the_retention_doc_lists_every_built_in_rule() {
    let doc = read("docs/RETENTION.md");
    for pack in [
        "cn-accounting",
        "cn-tax",
        "cn-pipl",
        "cn-aml",
        "de-hgb",
        "eu-gdpr",
    ] {
        let text = read(&format!("crates/coffer/src/retention/packs/{pack}.toml"));
        for line in text.lines().filter(|l| l.starts_with("id = ")) {
            let id = line.trim_start_matches("id = ").trim_matches('"');
            assert!(
                doc.contains(&format!("| `{id}` |")),
                "docs/RETENTION.md does not list `{id}`"
            );
        }
    }
}

/// The fenced code blocks of a Markdown text, in order.
fn code_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.starts_with("```")) {
            (None, true) => current = Some(String::new()),
            (Some(block), true) => {
                out.push(std::mem::take(block));
                current = None;
            }
            (Some(block), false) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, false) => {}
        }
    }
    out
}

#[test]
fn the_chinese_readme_is_kept_in_step() {
    let en = read("README.md");
    let zh = read("README.zh-CN.md");
    let sections = |t: &str| t.lines().filter(|l| l.starts_with("## ")).count();
    assert_eq!(
        sections(&en),
        sections(&zh),
        "README.md and README.zh-CN.md have different sections"
    );
    assert_eq!(
        code_blocks(&en),
        code_blocks(&zh),
        "README.zh-CN.md's examples differ from README.md's: copy them over"
    );
    // Every document is linked from both.
    for entry in
        std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs")).unwrap()
    {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let link = format!("(docs/{name})");
        assert!(en.contains(&link), "README.md does not link docs/{name}");
        assert!(
            zh.contains(&link),
            "README.zh-CN.md does not link docs/{name}"
        );
    }
}

#[test]
fn the_readme_quick_start_commands_exist() {
    // Each `coffer SUBCOMMAND` the README's command-line quick start uses is a real subcommand.
    let en = read("README.md");
    let cli = read("docs/CLI.md");
    let blocks = code_blocks(&en);
    let shell = blocks
        .iter()
        .find(|b| b.contains("coffer init"))
        .expect("the README has a command-line quick start");
    for line in shell.lines() {
        for part in line.split('|') {
            let words: Vec<&str> = part.split_whitespace().collect();
            if words.first() == Some(&"coffer") {
                let sub = words[1];
                assert!(
                    cli.contains(&format!("`{sub}")),
                    "docs/CLI.md does not document `coffer {sub}`"
                );
            }
        }
    }
}

#[test]
fn the_limits_table_states_each_limit() {
    let doc = read("docs/RELIABILITY.md");
    let limits: [(&str, usize, &str); 21] = [
        (
            "MAX_RECORD_BYTES",
            coffer::record::MAX_RECORD_BYTES,
            "bytes",
        ),
        ("MAX_VALUE_BYTES", coffer::record::MAX_VALUE_BYTES, "bytes"),
        ("MAX_LIST_ITEMS", coffer::record::MAX_LIST_ITEMS, "items"),
        (
            "MAX_CUSTOM_FIELDS",
            coffer::record::MAX_CUSTOM_FIELDS,
            "items",
        ),
        (
            "MAX_CUSTOM_KEY_BYTES",
            coffer::record::MAX_CUSTOM_KEY_BYTES,
            "bytes",
        ),
        ("MAX_ID_CHARS", coffer::record::MAX_ID_CHARS, "characters"),
        ("MAX_PATH_LEN", coffer::record::MAX_PATH_LEN, "bytes"),
        (
            "MAX_ENVELOPE_BYTES",
            coffer::envelope::MAX_ENVELOPE_BYTES,
            "bytes",
        ),
        (
            "MAX_POLICY_BYTES",
            coffer::policy::MAX_POLICY_BYTES,
            "bytes",
        ),
        (
            "MAX_POLICY_NESTING",
            coffer::policy::MAX_POLICY_NESTING,
            "levels",
        ),
        ("MAX_RULES", coffer::policy::MAX_RULES, "items"),
        ("MAX_ROLES", coffer::policy::MAX_ROLES, "items"),
        ("MAX_PURPOSES", coffer::policy::MAX_PURPOSES, "items"),
        (
            "MAX_CONDITIONS_PER_RULE",
            coffer::policy::MAX_CONDITIONS_PER_RULE,
            "items",
        ),
        (
            "MAX_SCHEMA_BYTES",
            coffer::record::MAX_SCHEMA_BYTES,
            "bytes",
        ),
        (
            "MAX_RETENTION_BYTES",
            coffer::retention::MAX_RETENTION_BYTES,
            "bytes",
        ),
        ("MAX_BATCH", coffer::wire::MAX_BATCH, "items"),
        (
            "MAX_REPORT_BYTES",
            coffer::report::MAX_REPORT_BYTES,
            "bytes",
        ),
        ("MAX_NAME_BYTES", coffer::MAX_NAME_BYTES, "bytes"),
        ("MAX_SEARCH_VALUES", coffer::MAX_SEARCH_VALUES, "items"),
        (
            "MAX_CLOCK_SKEW_SECS",
            coffer::MAX_CLOCK_SKEW_SECS as usize,
            "seconds",
        ),
    ];
    for (name, value, unit) in limits {
        let cell = format!("`{name}` | {value} {unit} |");
        assert!(
            doc.contains(&cell),
            "docs/RELIABILITY.md's limits table lacks or misstates `{name}` ({value} {unit})"
        );
    }
}

#[test]
fn the_store_schema_version_is_the_one_format_md_states() {
    let doc = read("docs/FORMAT.md")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let stated = format!(
        "`schema_version` (now {}",
        coffer::store::STORE_SCHEMA_VERSION
    );
    assert!(
        doc.contains(&stated),
        "docs/FORMAT.md does not say {stated}…"
    );
}
