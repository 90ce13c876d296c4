//! Markdown and static HTML renderings of the reports. The HTML is one self-contained page:
//! inline CSS, inline SVG charts, no script and nothing fetched, so it can be mailed, archived
//! or opened on an air-gapped machine. Every text is escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{
    AccessReview, ComplianceCheck, IncidentReport, Report, Severity, SubjectReport, TrailCheck,
};

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text for Markdown: pipes and line breaks would break a table, and a customer's name must
/// never become markup (`<img onerror=…>` in a viewer that renders inline HTML), so `&`, `<` and
/// `>` become entities, which every CommonMark renderer shows as the characters.
fn md(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn opt(s: Option<&String>) -> &str {
    s.map_or("—", String::as_str)
}

// ---- layout --------------------------------------------------------------------------------

/// A report laid out once, then rendered as Markdown or HTML: the two formats always say the
/// same thing. Attribute strings are HTML attributes, already escaped; Markdown ignores them.
struct Doc {
    kind: &'static str,
    title: String,
    generated: String,
    by: String,
    purpose: String,
    trail: TrailCheck,
    blocks: Vec<Block>,
}

enum Block {
    Heading(String),
    Para {
        attrs: String,
        text: String,
    },
    Note(String),
    Table(Table),
    List {
        attrs: &'static str,
        items: Vec<(&'static str, String)>,
    },
    /// Inline SVG; HTML only.
    Chart(String),
}

struct Table {
    attrs: String,
    headers: &'static [&'static str],
    rows: Vec<(String, Vec<Cell>)>,
}

enum Cell {
    Text(String),
    /// A state in place of a value (`denied`, `not shown`).
    Em(String),
    Severity(Severity),
    /// A count, with the objects it counts.
    Count(u64, Vec<String>),
}

fn para(attrs: impl Into<String>, text: impl Into<String>) -> Block {
    Block::Para {
        attrs: attrs.into(),
        text: text.into(),
    }
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

fn subject_doc(s: &SubjectReport) -> Doc {
    let mut blocks = vec![Block::Heading("Data held".into())];
    if s.fields.is_empty() {
        blocks.push(para(
            "id=\"nothing-held\"",
            "Nothing is held about this subject.",
        ));
    } else {
        let rows = s
            .fields
            .iter()
            .map(|f| {
                let value = match (&f.value, f.shown.as_deref()) {
                    (Some(v), _) => text(v.expose()),
                    (None, Some(shown)) => Cell::Em(shown.into()),
                    (None, None) => Cell::Em("not shown".into()),
                };
                let state = if f.restricted {
                    format!("{}, restricted", f.state)
                } else {
                    f.state.clone()
                };
                (
                    format!(
                        "data-path=\"{}\" data-state=\"{}\"",
                        esc(&f.path),
                        esc(&f.state)
                    ),
                    vec![
                        text(&*f.record),
                        text(&*f.path),
                        text(&*f.category),
                        text(state),
                        value,
                        text(opt(f.keep_until.as_ref())),
                        text(opt(f.rule.as_ref())),
                    ],
                )
            })
            .collect();
        blocks.push(Block::Table(Table {
            attrs: "id=\"fields\"".into(),
            headers: &[
                "record",
                "field",
                "category",
                "state",
                "value",
                "kept until",
                "rule",
            ],
            rows,
        }));
    }
    blocks.push(Block::Heading("Retention".into()));
    blocks.push(Block::Chart(timeline(s)));
    let mut items = Vec::new();
    for k in &s.keys {
        items.push((
            "key",
            format!(
                "{} key v{}: made {}, kept until {} under {}{}",
                k.category,
                k.version,
                k.created,
                opt(k.keep_until.as_ref()),
                opt(k.rule.as_ref()),
                k.destroyed
                    .as_ref()
                    .map_or(String::new(), |d| format!(", destroyed {d}"))
            ),
        ));
    }
    for h in &s.holds {
        items.push((
            "hold",
            format!("Legal hold {} ({}): {}", h.id, h.kind, h.reason),
        ));
    }
    for r in &s.restrictions {
        items.push((
            "restriction",
            format!(
                "{} restricted under {} until {}; only for {}",
                r.category,
                r.rule,
                opt(r.until.as_ref()),
                r.purposes.join(", ")
            ),
        ));
    }
    for e in &s.events {
        items.push(("event", format!("{}: {}", e.date, e.event)));
    }
    if !items.is_empty() {
        blocks.push(Block::List {
            attrs: "id=\"retention-facts\"",
            items,
        });
    }
    blocks.push(Block::Heading("Who has seen it".into()));
    let mut by_month: BTreeMap<String, u64> = BTreeMap::new();
    for a in &s.accesses {
        *by_month
            .entry(a.time.get(..7).unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    blocks.push(Block::Chart(bar_chart(
        "access-chart",
        "Accesses by month",
        by_month.iter().map(|(k, v)| (k.as_str(), *v)),
    )));
    if s.accesses.is_empty() {
        blocks.push(para("id=\"no-access\"", "No access is recorded."));
    } else {
        let rows = s
            .accesses
            .iter()
            .map(|a| {
                let fields: Vec<String> =
                    a.fields.iter().map(|(p, e)| format!("{p}: {e}")).collect();
                (
                    String::new(),
                    vec![
                        text(&*a.time),
                        text(&*a.actor),
                        text(a.roles.join(", ")),
                        text(opt(a.purpose.as_ref())),
                        text(fields.join("; ")),
                    ],
                )
            })
            .collect();
        blocks.push(Block::Table(Table {
            attrs: "id=\"accesses\"".into(),
            headers: &["when", "who", "roles", "purpose", "fields"],
            rows,
        }));
    }
    if !s.changes.is_empty() {
        blocks.push(Block::Heading("Other recorded events".into()));
        blocks.push(Block::List {
            attrs: "id=\"changes\"",
            items: s
                .changes
                .iter()
                .map(|c| ("change", format!("{} {} by {}", c.time, c.kind, c.actor)))
                .collect(),
        });
    }
    Doc {
        kind: "subject",
        title: format!(
            "Personal data held about subject {} ({})",
            s.subject, s.tenant
        ),
        generated: s.generated.clone(),
        by: s.requested_by.clone(),
        purpose: s.purpose.clone(),
        trail: s.trail.clone(),
        blocks,
    }
}

fn incident_doc(i: &IncidentReport) -> Doc {
    let q = &i.query;
    let mut blocks = vec![para(
        "class=\"meta\"",
        format!(
            "Window {} to {}; tenant {}; principal {}; client {}; fields {}.",
            opt(q.from.as_ref()),
            opt(q.until.as_ref()),
            opt(q.tenant.as_ref()),
            opt(q.principal.as_ref()),
            opt(q.client.as_ref()),
            i.patterns.join(", ")
        ),
    )];
    blocks.extend(i.notes.iter().map(|n| Block::Note(n.clone())));
    blocks.push(para(
        format!("id=\"totals\" data-subjects=\"{}\"", i.subjects.len()),
        format!(
            "{} subjects, {} reveals in clear.",
            i.subjects.len(),
            i.reveals
        ),
    ));
    if i.searches > 0 || i.rate_limit_alerts > 0 {
        blocks.push(para(
            format!(
                "id=\"searches\" data-searches=\"{}\" data-alerts=\"{}\"",
                i.searches, i.rate_limit_alerts
            ),
            format!(
                "{} blind-index searches looked up {} values; {} rate-limit alerts.",
                i.searches, i.searched_values, i.rate_limit_alerts
            ),
        ));
    }
    blocks.push(Block::Chart(bar_chart(
        "reveals-chart",
        "Reveals in clear by day",
        i.by_day.iter().map(|(k, v)| (k.as_str(), *v)),
    )));
    if !i.subjects.is_empty() {
        let rows = i
            .subjects
            .iter()
            .map(|s| {
                let fields: Vec<String> =
                    s.fields.iter().map(|(p, n)| format!("{p} ×{n}")).collect();
                (
                    String::new(),
                    vec![
                        text(&*s.tenant),
                        text(&*s.subject),
                        text(s.reveals.to_string()),
                        text(fields.join(", ")),
                        text(&*s.first),
                        text(&*s.last),
                        text(s.principals.join(", ")),
                    ],
                )
            })
            .collect();
        blocks.push(Block::Table(Table {
            attrs: "id=\"subjects\"".into(),
            headers: &[
                "tenant", "subject", "reveals", "fields", "first", "last", "by",
            ],
            rows,
        }));
    }
    Doc {
        kind: "incident",
        title: "Incident scope".into(),
        generated: i.generated.clone(),
        by: i.requested_by.clone(),
        purpose: i.purpose.clone(),
        trail: i.trail.clone(),
        blocks,
    }
}

fn review_doc(a: &AccessReview) -> Doc {
    let mut blocks = vec![
        para(
            "class=\"meta\"",
            format!(
                "Policy {}; use counted since {}.",
                a.policy_version, a.since
            ),
        ),
        para("id=\"unused\"", format!("{} grants unused.", a.unused)),
        Block::Chart(bar_chart(
            "use-chart",
            "Reveals through each role's grants",
            a.roles
                .iter()
                .map(|r| (r.role.as_str(), r.grants.iter().map(|g| g.used).sum())),
        )),
    ];
    for r in &a.roles {
        blocks.push(Block::Heading(r.role.clone()));
        if !r.inherits.is_empty() {
            blocks.push(para(
                "class=\"meta\"",
                format!("Inherits {}.", r.inherits.join(", ")),
            ));
        }
        if r.grants.is_empty() {
            blocks.push(para("", "No grant on personal fields."));
            continue;
        }
        let rows = r
            .grants
            .iter()
            .map(|g| {
                (
                    format!("class=\"{}\"", if g.used == 0 { "unused" } else { "used" }),
                    vec![
                        text(&*g.field),
                        text(&*g.purpose),
                        text(&*g.rule),
                        text(&*g.effect),
                        text(g.requires.join(", ")),
                        text(g.used.to_string()),
                        text(opt(g.last_used.as_ref())),
                    ],
                )
            })
            .collect();
        blocks.push(Block::Table(Table {
            attrs: format!("class=\"grants\" data-role=\"{}\"", esc(&r.role)),
            headers: &[
                "field",
                "purpose",
                "rule",
                "effect",
                "requires",
                "used",
                "last used",
            ],
            rows,
        }));
    }
    Doc {
        kind: "access_review",
        title: "Access review".into(),
        generated: a.generated.clone(),
        by: a.requested_by.clone(),
        purpose: a.purpose.clone(),
        trail: a.trail.clone(),
        blocks,
    }
}

fn check_doc(c: &ComplianceCheck) -> Doc {
    let mut blocks = vec![Block::Chart(bar_chart(
        "severity-chart",
        "Findings by severity",
        ["critical", "high", "medium", "low"]
            .map(|sev| (sev, c.counts.get(sev).copied().unwrap_or(0))),
    ))];
    if c.findings.is_empty() {
        blocks.push(para("id=\"no-findings\"", "No findings."));
    } else {
        let rows = c
            .findings
            .iter()
            .map(|f| {
                (
                    format!("data-code=\"{}\"", esc(&f.code)),
                    vec![
                        Cell::Severity(f.severity),
                        text(&*f.code),
                        text(&*f.message),
                        Cell::Count(f.total, f.objects.clone()),
                    ],
                )
            })
            .collect();
        blocks.push(Block::Table(Table {
            attrs: "id=\"findings\"".into(),
            headers: &["severity", "code", "finding", "concerned"],
            rows,
        }));
    }
    Doc {
        kind: "check",
        title: "Compliance check".into(),
        generated: c.generated.clone(),
        by: c.requested_by.clone(),
        purpose: c.purpose.clone(),
        trail: c.trail.clone(),
        blocks,
    }
}

fn doc(r: &Report) -> Doc {
    match r {
        Report::Subject(s) => subject_doc(s),
        Report::Incident(i) => incident_doc(i),
        Report::AccessReview(a) => review_doc(a),
        Report::Check(c) => check_doc(c),
    }
}

// ---- Markdown ------------------------------------------------------------------------------

pub(super) fn markdown(r: &Report) -> String {
    let d = doc(r);
    let mut o = String::new();
    let _ = writeln!(o, "# {}\n", md(&d.title));
    let _ = writeln!(o, "- Generated: {}", md(&d.generated));
    let _ = writeln!(
        o,
        "- Requested by: {} (purpose: {})",
        md(&d.by),
        md(&d.purpose)
    );
    let _ = writeln!(o, "- Audit trail: {}\n", md(&d.trail.summary()));
    if !d.trail.intact {
        let _ = writeln!(
            o,
            "> **The audit trail does not verify.** What follows was read from a trail that was changed; it may be incomplete.\n"
        );
    }
    for b in &d.blocks {
        match b {
            Block::Heading(h) => {
                let _ = writeln!(o, "## {}\n", md(h));
            }
            Block::Para { text, .. } => {
                let _ = writeln!(o, "{}\n", md(text));
            }
            Block::Note(n) => {
                let _ = writeln!(o, "> {}\n", md(n));
            }
            Block::List { items, .. } => {
                for (_, item) in items {
                    let _ = writeln!(o, "- {}", md(item));
                }
                o.push('\n');
            }
            Block::Table(t) => {
                let _ = writeln!(o, "| {} |", t.headers.join(" | "));
                let _ = writeln!(o, "|{}", "---|".repeat(t.headers.len()));
                for (_, cells) in &t.rows {
                    let cells: Vec<String> = cells
                        .iter()
                        .map(|c| match c {
                            Cell::Text(s) => md(s),
                            Cell::Em(s) => format!("({})", md(s)),
                            Cell::Severity(s) => format!("**{}**", s.as_str()),
                            Cell::Count(n, objects) if objects.is_empty() => n.to_string(),
                            Cell::Count(n, objects) => format!("{n}: {}", md(&objects.join("; "))),
                        })
                        .collect();
                    let _ = writeln!(o, "| {} |", cells.join(" | "));
                }
                o.push('\n');
            }
            Block::Chart(_) => {}
        }
    }
    o
}

// ---- HTML ----------------------------------------------------------------------------------

const STYLE: &str = "body{font:14px/1.45 system-ui,'Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif;margin:2em auto;max-width:72em;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}.meta{color:#555}.broken{background:#fde2e1;border:1px solid #d33;padding:.6em}
.intact{color:#186a3b}.sev-critical{color:#fff;background:#b00020}.sev-high{background:#f5a623}.sev-medium{background:#f8e71c}.sev-low{background:#ddd}
.badge{padding:0 .4em;border-radius:3px;font-size:.85em}svg text{font:11px system-ui,sans-serif}
.note{background:#eef4fb;border-left:4px solid #4a90d9;padding:.4em .8em}";

fn page(title: &str, kind: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body data-report=\"{kind}\">\n{body}</body>\n</html>\n",
        esc(title)
    )
}

/// A bar chart of counts by label (days, months, roles or severities, in the order given), as
/// inline SVG. Each bar is labelled when there are few; else the first and last are.
fn bar_chart<'a>(id: &str, title: &str, data: impl IntoIterator<Item = (&'a str, u64)>) -> String {
    let data: Vec<(&str, u64)> = data.into_iter().collect();
    let mut o = String::new();
    let (w, h, pad) = (720.0f64, 180.0f64, 28.0f64);
    let max = data.iter().map(|d| d.1).max().unwrap_or(0).max(1) as f64;
    let n = data.len().max(1) as f64;
    let slot = (w - 2.0 * pad) / n;
    // Few bars stay slim: one month of accesses is not a wall of colour.
    let bw = (slot - 2.0).clamp(1.0, 48.0);
    let _ = write!(
        o,
        "<figure><svg id=\"{id}\" class=\"chart\" role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {w} {h}\" width=\"100%\" xmlns=\"http://www.w3.org/2000/svg\">\n<title>{}</title>\n",
        esc(title),
        esc(title)
    );
    let _ = writeln!(
        o,
        "<line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>",
        h - pad,
        w - pad,
        h - pad
    );
    let label_all = data.len() <= 16;
    for (i, (label, v)) in data.iter().enumerate() {
        let bh = (h - 2.0 * pad) * (*v as f64) / max;
        let x = pad + slot * i as f64 + (slot - bw) / 2.0;
        let _ = writeln!(
            o,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"#4a90d9\" data-label=\"{}\" data-value=\"{v}\"><title>{}: {v}</title></rect>",
            h - pad - bh,
            esc(label),
            esc(label)
        );
        if label_all || i == 0 || i + 1 == data.len() {
            let _ = writeln!(
                o,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{} ({v})</text>",
                x + bw / 2.0,
                // Neighbours' labels alternate between two lines so that long ones do not collide.
                if data.len() > 4 && i % 2 == 1 {
                    h - 2.0
                } else {
                    h - 14.0
                },
                esc(label)
            );
        }
    }
    let _ = writeln!(o, "<text x=\"{pad}\" y=\"16\">max {}</text>", max as u64);
    o.push_str("</svg></figure>\n");
    o
}

/// Days since 1970 of an ISO date's first ten characters.
fn day_number(s: &str) -> Option<i64> {
    let d = crate::clock::text::parse_date(s.get(..10)?)?;
    Some(i64::from(d.to_julian_day()))
}

/// Retention timelines: one bar per data key, from its creation to its keep-until date (or
/// its destruction), with today marked.
fn timeline(s: &SubjectReport) -> String {
    let today = day_number(&s.generated);
    let spans: Vec<(String, i64, Option<i64>, &str)> = s
        .keys
        .iter()
        .filter_map(|k| {
            let start = day_number(&k.created)?;
            let (end, state) = match (&k.destroyed, &k.keep_until) {
                (Some(d), _) => (day_number(d), "destroyed"),
                (None, Some(u)) => (day_number(u), "kept"),
                (None, None) => (None, "open"),
            };
            Some((format!("{} v{}", k.category, k.version), start, end, state))
        })
        .collect();
    let mut o = String::new();
    let (w, row, pad, left) = (720.0f64, 26.0f64, 20.0f64, 130.0f64);
    let h = pad * 2.0 + row * spans.len().max(1) as f64;
    let lo = spans.iter().map(|s| s.1).chain(today).min().unwrap_or(0);
    let hi = spans
        .iter()
        .filter_map(|s| s.2)
        .chain(today)
        .max()
        .unwrap_or(lo + 1)
        .max(lo + 1);
    let x = |d: i64| left + (w - left - pad) * ((d - lo) as f64) / ((hi - lo) as f64);
    let _ = writeln!(
        o,
        "<figure><svg id=\"retention-timeline\" class=\"chart timeline\" role=\"img\" aria-label=\"Retention timeline\" viewBox=\"0 0 {w} {h}\" width=\"100%\" xmlns=\"http://www.w3.org/2000/svg\">\n<title>Retention timeline: each data key from creation to its keep-until date</title>"
    );
    for (i, (label, start, end, state)) in spans.iter().enumerate() {
        let y = pad + row * i as f64;
        let x1 = x(*start);
        let x2 = end.map_or(w - pad, x);
        let color = match *state {
            "destroyed" => "#999",
            "open" => "#9bc4ef",
            _ => "#4a90d9",
        };
        let _ = writeln!(
            o,
            "<text x=\"4\" y=\"{:.1}\">{}</text>",
            y + 15.0,
            esc(label)
        );
        let _ = writeln!(
            o,
            "<rect class=\"span\" data-state=\"{state}\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"16\" fill=\"{color}\"><title>{}: {state}</title></rect>",
            y + 3.0,
            (x2 - x1).max(2.0),
            esc(label)
        );
    }
    // The axis: the first and last years shown.
    let year =
        |d: i64| time::Date::from_julian_day(i32::try_from(d).unwrap_or(0)).map_or(0, |d| d.year());
    let _ = writeln!(
        o,
        "<text class=\"axis\" x=\"{left:.1}\" y=\"{:.1}\">{}</text><text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
        h - 2.0,
        year(lo),
        w - pad,
        h - 2.0,
        year(hi)
    );
    if let Some(t) = today {
        let tx = x(t);
        let _ = writeln!(
            o,
            "<line class=\"today\" x1=\"{tx:.1}\" y1=\"4\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#d33\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"12\" fill=\"#d33\">today</text>",
            h - 16.0,
            tx + 3.0
        );
    }
    o.push_str("</svg></figure>\n");
    o
}

pub(super) fn html(r: &Report) -> String {
    let d = doc(r);
    let mut o = String::new();
    let _ = write!(
        o,
        "<h1>{}</h1>\n<p class=\"meta\">Generated {} for {} (purpose: {}).</p>\n",
        esc(&d.title),
        esc(&d.generated),
        esc(&d.by),
        esc(&d.purpose)
    );
    if d.trail.intact {
        let _ = writeln!(
            o,
            "<p id=\"trail\" class=\"intact\">Audit trail verified: {}.</p>",
            esc(&d.trail.summary())
        );
    } else {
        let _ = writeln!(
            o,
            "<p id=\"trail\" class=\"broken\"><strong>The audit trail does not verify: {}.</strong> What follows was read from a trail that was changed; it may be incomplete.</p>",
            esc(&d.trail.summary())
        );
    }
    let attrs = |a: &str| {
        if a.is_empty() {
            String::new()
        } else {
            format!(" {a}")
        }
    };
    for b in &d.blocks {
        match b {
            Block::Heading(h) => {
                let _ = writeln!(o, "<h2>{}</h2>", esc(h));
            }
            Block::Para { attrs: a, text } => {
                let _ = writeln!(o, "<p{}>{}</p>", attrs(a), esc(text));
            }
            Block::Note(n) => {
                let _ = writeln!(o, "<p class=\"note\">{}</p>", esc(n));
            }
            Block::List { attrs: a, items } => {
                let _ = writeln!(o, "<ul{}>", attrs(a));
                for (class, item) in items {
                    let _ = writeln!(o, "<li class=\"{class}\">{}</li>", esc(item));
                }
                o.push_str("</ul>\n");
            }
            Block::Table(t) => {
                let _ = write!(o, "<table{}><thead><tr>", attrs(&t.attrs));
                for h in t.headers {
                    let _ = write!(o, "<th>{}</th>", esc(h));
                }
                o.push_str("</tr></thead><tbody>\n");
                for (a, cells) in &t.rows {
                    let _ = write!(o, "<tr{}>", attrs(a));
                    for c in cells {
                        let _ = match c {
                            Cell::Text(s) => write!(o, "<td>{}</td>", esc(s)),
                            Cell::Em(s) => write!(o, "<td><em>{}</em></td>", esc(s)),
                            Cell::Severity(s) => write!(
                                o,
                                "<td><span class=\"badge sev-{0}\">{0}</span></td>",
                                s.as_str()
                            ),
                            Cell::Count(n, objects) if objects.is_empty() => {
                                write!(o, "<td>{n}</td>")
                            }
                            Cell::Count(n, objects) => {
                                let list: Vec<String> = objects.iter().map(|x| esc(x)).collect();
                                write!(
                                    o,
                                    "<td>{n} <details><summary>list</summary>{}</details></td>",
                                    list.join("<br>")
                                )
                            }
                        };
                    }
                    o.push_str("</tr>\n");
                }
                o.push_str("</tbody></table>\n");
            }
            Block::Chart(svg) => o.push_str(svg),
        }
    }
    page(&d.title, d.kind, &o)
}

#[cfg(test)]
mod tests {
    use super::super::{AffectedSubject, IncidentQuery, IncidentReport, TrailCheck};
    use super::*;

    #[test]
    fn text_never_becomes_markup() {
        let evil = "<img src=x onerror=alert(1)>|&amp;";
        let r = Report::Incident(IncidentReport {
            format: "coffer-report/1".into(),
            generated: "2026-11-27T08:00:00Z".into(),
            requested_by: evil.into(),
            purpose: "data_protection".into(),
            query: IncidentQuery::default(),
            patterns: vec![],
            trail: TrailCheck {
                intact: true,
                entries: 1,
                last_seq: 1,
                problem_seq: None,
                problem: None,
                checkpoint_checked: false,
                unreadable: 0,
            },
            reveals: 1,
            subjects: vec![AffectedSubject {
                tenant: "t".into(),
                subject: evil.into(),
                reveals: 1,
                fields: BTreeMap::new(),
                first: String::new(),
                last: String::new(),
                principals: vec![evil.into()],
            }],
            fields: BTreeMap::new(),
            by_day: BTreeMap::from([(evil.to_owned(), 1)]),
            principals: BTreeMap::new(),
            searches: 0,
            searched_values: 0,
            rate_limit_alerts: 0,
            notes: vec![evil.into()],
        });
        for text in [markdown(&r), html(&r)] {
            assert!(!text.contains("<img"), "{text}");
            assert!(text.contains("&lt;img src=x onerror=alert(1)&gt;"));
            assert!(text.contains("&amp;amp;"));
        }
        assert!(markdown(&r).contains("\\|"));
    }
}
