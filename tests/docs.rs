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
