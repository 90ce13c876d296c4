//! `coffer report …` end to end, and its HTML pages rendered in headless Chromium.
#![allow(clippy::print_stderr)] // the browser check says plainly when it is skipped

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::{Env, text};

const OFFICER: &[&str] = &[
    "--principal",
    "dpo-1",
    "--tenant",
    "demo-firm",
    "--role",
    "privacy_officer",
    "--purpose",
    "data_protection",
    "--ticket",
    "DSAR-7",
];

fn with(args: &[&str], more: &[&str]) -> Vec<String> {
    args.iter().chain(more).map(|s| (*s).to_owned()).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A store with 40 customers: the first ten revealed by an accountant through `erp-web`, all
/// forty by an auditor.
fn setup(e: &Env) -> Vec<String> {
    e.init();
    let csv = e.ok(&["generate", "--rows", "40"], b"");
    std::fs::write(e.path("customers.csv"), &csv).unwrap();
    e.ok(&["seal", "customers.csv", "--out", "sealed.jsonl"], b"");
    let envelopes: Vec<String> = std::fs::read_to_string(e.path("sealed.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(envelopes.len(), 40);
    let first_ten = envelopes[..10].join("\n") + "\n";
    e.ok(
        &[
            "reveal",
            "--principal",
            "acc-1",
            "--tenant",
            "demo-firm",
            "--role",
            "accountant",
            "--purpose",
            "payments",
            "--client",
            "erp-web",
        ],
        first_ten.as_bytes(),
    );
    let all = envelopes.join("\n") + "\n";
    e.ok(
        &[
            "reveal",
            "--principal",
            "aud-1",
            "--tenant",
            "demo-firm",
            "--role",
            "auditor",
            "--purpose",
            "statutory_audit",
            "--ticket",
            "AUD-9",
        ],
        all.as_bytes(),
    );
    envelopes
}

fn subject_of(envelope: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(envelope).unwrap();
    v["subject"].as_str().unwrap().to_owned()
}

#[test]
fn every_report_from_the_command_line() {
    let e = Env::new("all");
    let envelopes = setup(&e);

    // Incident: the accountant's reveals through erp-web, ID numbers only.
    let out = e.ok(
        &strs(&with(
            &[
                "--json",
                "report",
                "incident",
                "--through",
                "erp-web",
                "--field",
                "id_documents[].number",
                "--html",
                "incident.html",
            ],
            OFFICER,
        )),
        b"",
    );
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["report"], "incident");
    assert_eq!(r["trail"]["intact"], true);
    let subjects: Vec<String> = r["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subject"].as_str().unwrap().to_owned())
        .collect();
    let mut expected: Vec<String> = envelopes[..10].iter().map(|e| subject_of(e)).collect();
    expected.sort();
    assert_eq!(subjects, expected);
    assert_eq!(r["reveals"], 10);
    // By the auditor: all forty.
    let out = e.ok(
        &strs(&with(
            &["--json", "report", "incident", "--by", "aud-1"],
            OFFICER,
        )),
        b"",
    );
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["subjects"].as_array().unwrap().len(), 40);

    // A subject's report, with its envelope, as Markdown on stdout and an HTML page.
    let subject = subject_of(&envelopes[0]);
    std::fs::write(e.path("one.jsonl"), format!("{}\n", envelopes[0])).unwrap();
    let md = e.ok(
        &strs(&with(
            &[
                "report",
                "subject",
                "--subject",
                &subject,
                "--envelopes",
                "one.jsonl",
                "--html",
                "subject.html",
                "--markdown",
                "subject.md",
            ],
            OFFICER,
        )),
        b"",
    );
    assert!(
        md.starts_with(&format!(
            "# Personal data held about subject {subject} (demo-firm)"
        )),
        "{md}"
    );
    assert!(md.contains("| acc-1 | accountant | payments |"), "{md}");
    assert!(md.contains("| aud-1 | auditor | statutory_audit |"), "{md}");
    assert_eq!(std::fs::read_to_string(e.path("subject.md")).unwrap(), md);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(e.path("subject.html"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "a report with values is private");

    // Access review and check.
    let out = e.ok(
        &strs(&with(
            &[
                "--json",
                "report",
                "access-review",
                "--since",
                "2000-01-01",
                "--html",
                "review.html",
            ],
            OFFICER,
        )),
        b"",
    );
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let accountant = r["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["role"] == "accountant")
        .unwrap();
    let used: u64 = accountant["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["used"].as_u64().unwrap())
        .sum();
    assert!(used >= 10, "{accountant}");
    // The example policy has a high finding (reads of sensitive fields with no transfer
    // guard): exit code 1, and the report is still written.
    let o = e.run(
        &strs(&with(
            &["--json", "report", "check", "--html", "check.html"],
            OFFICER,
        )),
        b"",
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let codes: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "policy.transfer_without_basis",
            "audit.checkpoint_stale",
            "policy.sensitive_without_ticket"
        ]
    );

    // A clerk may not run reports: exit 3, nothing written.
    let o = e.run(
        &[
            "report",
            "check",
            "--principal",
            "clerk-1",
            "--tenant",
            "demo-firm",
            "--role",
            "clerk",
            "--purpose",
            "bookkeeping",
            "--html",
            "nope.html",
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("admin"), "{}", text(&o));
    assert!(!e.path("nope.html").exists());
    // Bad input: exit 2 naming what.
    let o = e.run(
        &strs(&with(
            &["report", "incident", "--from", "yesterday"],
            OFFICER,
        )),
        b"",
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("from"), "{}", text(&o));
    let o = e.run(
        &strs(&with(
            &["report", "incident", "--field", "phones[0]"],
            OFFICER,
        )),
        b"",
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    browser_check(&e);

    // Tamper with one reveal entry: the incident is refused (exit 1) and says where.
    let conn = rusqlite::Connection::open(e.path("store.db")).unwrap();
    let n = conn
        .execute(
            "UPDATE audit SET entry = replace(entry, '\"acc-1\"', '\"acc-9\"') WHERE seq = (SELECT min(seq) FROM audit WHERE entry LIKE '%\"acc-1\"%')",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(conn);
    let o = e.run(
        &strs(&with(
            &["report", "incident", "--html", "broken.html"],
            OFFICER,
        )),
        b"",
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("BROKEN at entry"), "{}", text(&o));
    assert!(!e.path("broken.html").exists());
    let o = e.run(
        &strs(&with(
            &[
                "--json",
                "report",
                "incident",
                "--accept-broken-trail",
                "--html",
                "broken.html",
            ],
            OFFICER,
        )),
        b"",
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["trail"]["intact"], false);
    assert!(
        std::fs::read_to_string(e.path("broken.html"))
            .unwrap()
            .contains("class=\"broken\"")
    );
}

/// Renders each page in headless Chromium (installed by `./scripts/test` from Debian's
/// packages when it can be) and checks the elements a reader needs are there and drawn.
fn browser_check(e: &Env) {
    let chromium = std::env::var_os("COFFER_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            [
                "/usr/bin/chromium",
                "/usr/bin/chromium-browser",
                "/usr/bin/google-chrome",
            ]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
        });
    let Some(chromium) = chromium else {
        eprintln!(
            "SKIPPED: the HTML reports were not rendered in a browser: no Chromium found (install Debian's `chromium` package, or set COFFER_CHROMIUM)"
        );
        return;
    };
    let pages: &[(&str, &[&str])] = &[
        (
            "subject.html",
            &[
                "data-report=\"subject\"",
                "id=\"retention-timeline\"",
                "class=\"span\"",
                "id=\"access-chart\"",
                "class=\"bar\"",
                "id=\"fields\"",
                "id=\"trail\" class=\"intact\"",
            ],
        ),
        (
            "incident.html",
            &[
                "data-report=\"incident\"",
                "id=\"reveals-chart\"",
                "class=\"bar\"",
                "id=\"subjects\"",
                "data-subjects=\"10\"",
            ],
        ),
        (
            "review.html",
            &[
                "data-report=\"access_review\"",
                "id=\"use-chart\"",
                "class=\"grants\" data-role=\"accountant\"",
                "class=\"unused\"",
            ],
        ),
        (
            "check.html",
            &[
                "data-report=\"check\"",
                "id=\"severity-chart\"",
                "id=\"findings\"",
                "data-code=\"policy.transfer_without_basis\"",
            ],
        ),
    ];
    for (page, expected) in pages {
        let file = e.path(page);
        let profile = e.path(&format!("chromium-{page}"));
        let shot = e.path(&format!("{page}.png"));
        let run = |extra: &[String]| -> Output {
            Command::new(&chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1200,1600",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .args(extra)
                .arg(format!("file://{}", file.display()))
                .output()
                .unwrap()
        };
        let dom = run(&["--dump-dom".to_owned()]);
        let dom_text = String::from_utf8_lossy(&dom.stdout);
        assert!(
            dom.status.success() && dom_text.contains("</html>"),
            "{page}: {}",
            text(&dom)
        );
        for want in *expected {
            assert!(
                dom_text.contains(want),
                "{page}: the rendered page lacks {want}"
            );
        }
        // Drawn, not only parsed: a screenshot with more than a blank page's worth of pixels.
        let o = run(&[format!("--screenshot={}", shot.display())]);
        assert!(o.status.success(), "{page}: {}", text(&o));
        let png = std::fs::read(&shot).unwrap_or_default();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{page}: screenshot of {} bytes",
            png.len()
        );
    }
    assert_rendered(&e.path("subject.html"));
}

fn assert_rendered(page: &Path) {
    let html = std::fs::read_to_string(page).unwrap();
    // Static: no script, nothing fetched.
    assert!(
        !html.contains("<script") && !html.contains("http://")
            || html.contains("xmlns=\"http://www.w3.org/2000/svg\"")
    );
    assert!(!html.contains("https://"));
}
