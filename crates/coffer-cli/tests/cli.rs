//! End-to-end tests that run the `coffer` binary.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn coffer(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails before reading its input closes the pipe: that is not a test failure.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn demo_runs() {
    let o = coffer(&["demo"], "");
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    for expected in [
        "customers sealed",
        "the only match among 3000",
        "matched, but unmet: ticket",
        "— shredded",
        "restricted until 2057-01-01",
        "verifies against the store's public key",
        "chain intact: true",
        "verification catches it: chain broken at entry #",
    ] {
        assert!(t.contains(expected), "missing {expected}");
    }
}

#[test]
fn validate_reports_invalid_lines_and_exits_1() {
    let input = concat!(
        r#"{"id":"c-1","tenant":"t","kind":"individual","name":"张三","id_documents":[{"type":"cn_resident_id","number":"110101200001010002"}],"phones":["13800000000"]}"#,
        "\n\n",
        r#"{"id":"c-2","tenant":"t","kind":"individual","name":"李四","id_documents":[{"type":"cn_resident_id","number":"110101200001010000"}],"phones":["13800000000"]}"#,
        "\n",
        "{broken\n"
    );
    let o = coffer(&["validate", "--today", "2026-11-27"], input);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("line 3 (c-2): INVALID"), "{t}");
    assert!(t.contains("resident_id.checksum"), "{t}");
    assert!(t.contains("line 4: UNREADABLE"), "{t}");
    assert!(t.contains("3 record(s), 1 valid, 2 invalid"), "{t}");
    assert!(!t.contains("110101200001010000"), "{t}");

    let o = coffer(&["validate", "--json", "--today", "2026-11-27"], input);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["report"]["valid"], true);
    assert_eq!(lines[1]["line"], 3);
    assert_eq!(lines[2]["report"]["error"]["code"], "malformed");
}

#[test]
fn validate_all_good_exits_0_and_bad_arguments_exit_2() {
    let good = r#"{"id":"k","tenant":"t","kind":"company","name":"示例","id_documents":[{"type":"uscc","number":"91110000MA00000152"}],"emails":["a@example.cn"]}"#;
    assert_eq!(coffer(&["validate"], good).status.code(), Some(0));
    assert_eq!(
        coffer(&["validate", "/nonexistent/file.jsonl"], "")
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        coffer(&["validate", "--today", "yesterday"], good)
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn mask_reads_stdin() {
    let o = coffer(&["mask", "--rule", "phone"], "13800000000\n01012345678\n");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "138****0000\n010-****78\n"
    );
    let o = coffer(
        &["mask", "--rule", "id_number", "--profile", "privileged"],
        "110101200001010002\n",
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "110101********0002\n");
    assert_eq!(
        coffer(&["mask", "--rule", "nope"], "x\n").status.code(),
        Some(2)
    );
}

#[test]
fn schema_check_lists_every_problem() {
    let dir = std::env::temp_dir().join(format!("coffer-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("schema.toml");
    let shown = coffer(&["schema", "show"], "");
    let broken = String::from_utf8_lossy(&shown.stdout)
        .replace("mask = \"name\"", "mask = \"nmae\"")
        .replace(
            "class = \"personal\"\nprotection = \"encrypted\"\nindex = \"lowercase\"",
            "class = \"personal\"\nprotection = \"sealed\"\nindex = \"lowercase\"",
        );
    std::fs::write(&path, broken).unwrap();
    let o = coffer(&["schema", "check", path.to_str().unwrap()], "");
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(t.contains("unknown mask `nmae`"), "{t}");
    assert!(t.contains("unknown protection `sealed`"), "{t}");
    assert!(t.contains("2 problem(s)"), "{t}");
    std::fs::write(&path, String::from_utf8_lossy(&shown.stdout).as_bytes()).unwrap();
    assert_eq!(
        coffer(&["schema", "check", path.to_str().unwrap()], "")
            .status
            .code(),
        Some(0)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The subcommands `coffer PATH --help` lists (without clap's own `help`).
fn subcommands(path: &[&str]) -> Vec<String> {
    let mut args = path.to_vec();
    args.push("--help");
    let o = coffer(&args, "");
    assert!(o.status.success(), "{path:?}: {}", text(&o));
    let help = String::from_utf8(o.stdout).unwrap();
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_command_has_help_with_an_example() {
    let mut leaves = Vec::new();
    let mut todo: Vec<Vec<String>> = subcommands(&[]).into_iter().map(|c| vec![c]).collect();
    assert!(todo.len() > 20, "{todo:?}");
    while let Some(path) = todo.pop() {
        let path_ref: Vec<&str> = path.iter().map(String::as_str).collect();
        let children = subcommands(&path_ref);
        if children.is_empty() {
            leaves.push(path);
        } else {
            todo.extend(children.into_iter().map(|c| {
                let mut p = path.clone();
                p.push(c);
                p
            }));
        }
    }
    for path in &leaves {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let o = coffer(&args, "");
        let help = String::from_utf8(o.stdout).unwrap();
        assert!(
            help.lines()
                .any(|l| l.contains("Example: ")
                    && l.contains(&format!("coffer {}", path.join(" ")))),
            "`coffer {}` has no example in its help",
            path.join(" ")
        );
        assert!(help.contains("--json"), "`coffer {}`", path.join(" "));
    }
    // The top-level help documents the exit codes.
    let o = coffer(&["--help"], "");
    let help = String::from_utf8(o.stdout).unwrap();
    assert!(help.contains("Exit codes:"), "{help}");
    for code in ["0", "1", "2", "3", "4", "130"] {
        let line = format!("\n  {code:<5}");
        assert!(help.contains(&line), "exit code {code} in {help}");
    }
    assert!(leaves.len() >= 30, "{leaves:?}");
}
