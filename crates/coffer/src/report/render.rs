//! Markdown and static HTML renderings of the reports. The HTML is one self-contained page:
//! inline CSS, inline SVG charts, no script and nothing fetched, so it can be mailed, archived
//! or opened on an air-gapped machine. Every text is escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{AccessReview, ComplianceCheck, IncidentReport, Report, SubjectReport, TrailCheck};

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

pub(super) fn markdown(r: &Report) -> String {
    let mut o = String::new();
    match r {
        Report::Subject(s) => subject_md(&mut o, s),
        Report::Incident(i) => incident_md(&mut o, i),
        Report::AccessReview(a) => review_md(&mut o, a),
        Report::Check(c) => check_md(&mut o, c),
    }
    o
}

fn header_md(
    o: &mut String,
    title: &str,
    generated: &str,
    by: &str,
    purpose: &str,
    trail: &TrailCheck,
) {
    let _ = writeln!(o, "# {}\n", md(title));
    let _ = writeln!(o, "- Generated: {}", md(generated));
    let _ = writeln!(o, "- Requested by: {} (purpose: {})", md(by), md(purpose));
    let _ = writeln!(o, "- Audit trail: {}\n", md(&trail.summary()));
}

fn subject_md(o: &mut String, s: &SubjectReport) {
    header_md(
        o,
        &format!(
            "Personal data held about subject {} ({})",
            s.subject, s.tenant
        ),
        &s.generated,
        &s.requested_by,
        &s.purpose,
        &s.trail,
    );
    let _ = writeln!(o, "## Data held\n");
    if s.fields.is_empty() {
        let _ = writeln!(o, "Nothing is held about this subject.\n");
    } else {
        let _ = writeln!(
            o,
            "| record | field | category | state | value | kept until | rule |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|");
        for f in &s.fields {
            let value = match (&f.value, f.shown.as_deref()) {
                (Some(v), _) => md(v.expose()),
                (None, Some(shown)) => format!("({shown})"),
                (None, None) => "(not shown)".into(),
            };
            let state = if f.restricted {
                format!("{}, restricted", f.state)
            } else {
                f.state.clone()
            };
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} |",
                md(&f.record),
                md(&f.path),
                md(&f.category),
                md(&state),
                value,
                md(opt(f.keep_until.as_ref())),
                md(opt(f.rule.as_ref()))
            );
        }
        o.push('\n');
    }
    if !s.holds.is_empty() {
        let _ = writeln!(o, "## Legal holds\n");
        for h in &s.holds {
            let _ = writeln!(o, "- Hold {} ({}): {}", h.id, md(&h.kind), md(&h.reason));
        }
        o.push('\n');
    }
    if !s.restrictions.is_empty() {
        let _ = writeln!(o, "## Restricted after an erasure request\n");
        for r in &s.restrictions {
            let _ = writeln!(
                o,
                "- {}: kept under {} until {}; only for {}",
                md(&r.category),
                md(&r.rule),
                md(opt(r.until.as_ref())),
                md(&r.purposes.join(", "))
            );
        }
        o.push('\n');
    }
    if !s.events.is_empty() {
        let _ = writeln!(o, "## Lifecycle events\n");
        for e in &s.events {
            let _ = writeln!(o, "- {}: {}", md(&e.date), md(&e.event));
        }
        o.push('\n');
    }
    let _ = writeln!(o, "## Who has seen it\n");
    if s.accesses.is_empty() {
        let _ = writeln!(o, "No access is recorded.\n");
    } else {
        let _ = writeln!(o, "| when | who | roles | purpose | fields |");
        let _ = writeln!(o, "|---|---|---|---|---|");
        for a in &s.accesses {
            let fields: Vec<String> = a.fields.iter().map(|(p, e)| format!("{p}: {e}")).collect();
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                md(&a.time),
                md(&a.actor),
                md(&a.roles.join(", ")),
                md(opt(a.purpose.as_ref())),
                md(&fields.join("; "))
            );
        }
        o.push('\n');
    }
    if !s.changes.is_empty() {
        let _ = writeln!(o, "## Other recorded events\n");
        for c in &s.changes {
            let _ = writeln!(o, "- {} {} by {}", md(&c.time), md(&c.kind), md(&c.actor));
        }
    }
}

fn incident_md(o: &mut String, i: &IncidentReport) {
    header_md(
        o,
        "Incident scope",
        &i.generated,
        &i.requested_by,
        &i.purpose,
        &i.trail,
    );
    let q = &i.query;
    let _ = writeln!(
        o,
        "Window {} to {}; tenant {}; principal {}; client {}; fields {}.\n",
        md(opt(q.from.as_ref())),
        md(opt(q.until.as_ref())),
        md(opt(q.tenant.as_ref())),
        md(opt(q.principal.as_ref())),
        md(opt(q.client.as_ref())),
        md(&i.patterns.join(", "))
    );
    for n in &i.notes {
        let _ = writeln!(o, "> {}\n", md(n));
    }
    let _ = writeln!(
        o,
        "**{} subjects**, {} reveals in clear.\n",
        i.subjects.len(),
        i.reveals
    );
    if !i.subjects.is_empty() {
        let _ = writeln!(
            o,
            "| tenant | subject | reveals | fields | first | last | by |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|");
        for s in &i.subjects {
            let fields: Vec<String> = s.fields.iter().map(|(p, n)| format!("{p} ×{n}")).collect();
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} |",
                md(&s.tenant),
                md(&s.subject),
                s.reveals,
                md(&fields.join(", ")),
                md(&s.first),
                md(&s.last),
                md(&s.principals.join(", "))
            );
        }
    }
}

fn review_md(o: &mut String, a: &AccessReview) {
    header_md(
        o,
        "Access review",
        &a.generated,
        &a.requested_by,
        &a.purpose,
        &a.trail,
    );
    let _ = writeln!(
        o,
        "Policy {}; use counted since {}; {} grants unused.\n",
        md(&a.policy_version),
        md(&a.since),
        a.unused
    );
    for r in &a.roles {
        let _ = writeln!(o, "## {}\n", md(&r.role));
        if r.grants.is_empty() {
            let _ = writeln!(o, "No grant on personal fields.\n");
            continue;
        }
        let _ = writeln!(o, "| field | purpose | rule | effect | requires | used |");
        let _ = writeln!(o, "|---|---|---|---|---|---|");
        for g in &r.grants {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                md(&g.field),
                md(&g.purpose),
                md(&g.rule),
                md(&g.effect),
                md(&g.requires.join(", ")),
                g.used
            );
        }
        o.push('\n');
    }
}

fn check_md(o: &mut String, c: &ComplianceCheck) {
    header_md(
        o,
        "Compliance check",
        &c.generated,
        &c.requested_by,
        &c.purpose,
        &c.trail,
    );
    if c.findings.is_empty() {
        let _ = writeln!(o, "No findings.");
    }
    for f in &c.findings {
        let _ = writeln!(
            o,
            "- **{}** `{}`: {} ({} concerned)",
            f.severity.as_str(),
            md(&f.code),
            md(&f.message),
            f.total
        );
        for x in &f.objects {
            let _ = writeln!(o, "  - {}", md(x));
        }
    }
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

fn header_html(
    o: &mut String,
    title: &str,
    generated: &str,
    by: &str,
    purpose: &str,
    trail: &TrailCheck,
) {
    let _ = write!(
        o,
        "<h1>{}</h1>\n<p class=\"meta\">Generated {} for {} (purpose: {}).</p>\n",
        esc(title),
        esc(generated),
        esc(by),
        esc(purpose)
    );
    if trail.intact {
        let _ = writeln!(
            o,
            "<p id=\"trail\" class=\"intact\">Audit trail verified: {}.</p>",
            esc(&trail.summary())
        );
    } else {
        let _ = writeln!(
            o,
            "<p id=\"trail\" class=\"broken\"><strong>The audit trail does not verify: {}.</strong> What follows was read from a trail that was changed; it may be incomplete.</p>",
            esc(&trail.summary())
        );
    }
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
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s.get(..10)?, &format).ok()?;
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
    match r {
        Report::Subject(s) => subject_html(s),
        Report::Incident(i) => incident_html(i),
        Report::AccessReview(a) => review_html(a),
        Report::Check(c) => check_html(c),
    }
}

fn subject_html(s: &SubjectReport) -> String {
    let title = format!(
        "Personal data held about subject {} ({})",
        s.subject, s.tenant
    );
    let mut o = String::new();
    header_html(
        &mut o,
        &title,
        &s.generated,
        &s.requested_by,
        &s.purpose,
        &s.trail,
    );
    o.push_str("<h2>Data held</h2>\n");
    if s.fields.is_empty() {
        o.push_str("<p id=\"nothing-held\">Nothing is held about this subject.</p>\n");
    } else {
        o.push_str("<table id=\"fields\"><thead><tr><th>record</th><th>field</th><th>category</th><th>state</th><th>value</th><th>kept until</th><th>rule</th></tr></thead><tbody>\n");
        for f in &s.fields {
            let value = match (&f.value, f.shown.as_deref()) {
                (Some(v), _) => esc(v.expose()),
                (None, Some(shown)) => format!("<em>{}</em>", esc(shown)),
                (None, None) => "<em>not shown</em>".into(),
            };
            let _ = writeln!(
                o,
                "<tr data-path=\"{}\" data-state=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{value}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.path),
                esc(&f.state),
                esc(&f.record),
                esc(&f.path),
                esc(&f.category),
                esc(&f.state),
                if f.restricted { ", restricted" } else { "" },
                esc(opt(f.keep_until.as_ref())),
                esc(opt(f.rule.as_ref()))
            );
        }
        o.push_str("</tbody></table>\n");
    }
    o.push_str("<h2>Retention</h2>\n");
    o.push_str(&timeline(s));
    if !s.holds.is_empty() || !s.restrictions.is_empty() || !s.events.is_empty() {
        o.push_str("<ul id=\"retention-facts\">\n");
        for h in &s.holds {
            let _ = writeln!(
                o,
                "<li class=\"hold\">Legal hold {} ({}): {}</li>",
                h.id,
                esc(&h.kind),
                esc(&h.reason)
            );
        }
        for r in &s.restrictions {
            let _ = writeln!(
                o,
                "<li class=\"restriction\">{} restricted under {} until {}; only for {}</li>",
                esc(&r.category),
                esc(&r.rule),
                esc(opt(r.until.as_ref())),
                esc(&r.purposes.join(", "))
            );
        }
        for e in &s.events {
            let _ = writeln!(
                o,
                "<li class=\"event\">{}: {}</li>",
                esc(&e.date),
                esc(&e.event)
            );
        }
        o.push_str("</ul>\n");
    }
    o.push_str("<h2>Who has seen it</h2>\n");
    let mut by_month: BTreeMap<String, u64> = BTreeMap::new();
    for a in &s.accesses {
        *by_month
            .entry(a.time.get(..7).unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    o.push_str(&bar_chart(
        "access-chart",
        "Accesses by month",
        by_month.iter().map(|(k, v)| (k.as_str(), *v)),
    ));
    o.push_str("<table id=\"accesses\"><thead><tr><th>when</th><th>who</th><th>roles</th><th>purpose</th><th>fields</th></tr></thead><tbody>\n");
    for a in &s.accesses {
        let fields: Vec<String> = a.fields.iter().map(|(p, e)| format!("{p}: {e}")).collect();
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.time),
            esc(&a.actor),
            esc(&a.roles.join(", ")),
            esc(opt(a.purpose.as_ref())),
            esc(&fields.join("; "))
        );
    }
    o.push_str("</tbody></table>\n");
    page(&title, "subject", &o)
}

fn incident_html(i: &IncidentReport) -> String {
    let mut o = String::new();
    header_html(
        &mut o,
        "Incident scope",
        &i.generated,
        &i.requested_by,
        &i.purpose,
        &i.trail,
    );
    let q = &i.query;
    let _ = writeln!(
        o,
        "<p class=\"meta\">Window {} to {}; tenant {}; principal {}; client {}; fields {}.</p>",
        esc(opt(q.from.as_ref())),
        esc(opt(q.until.as_ref())),
        esc(opt(q.tenant.as_ref())),
        esc(opt(q.principal.as_ref())),
        esc(opt(q.client.as_ref())),
        esc(&i.patterns.join(", "))
    );
    for n in &i.notes {
        let _ = writeln!(o, "<p class=\"note\">{}</p>", esc(n));
    }
    let _ = writeln!(
        o,
        "<p id=\"totals\"><strong data-subjects=\"{}\">{} subjects</strong>, {} reveals in clear.</p>",
        i.subjects.len(),
        i.subjects.len(),
        i.reveals
    );
    o.push_str(&bar_chart(
        "reveals-chart",
        "Reveals in clear by day",
        i.by_day.iter().map(|(k, v)| (k.as_str(), *v)),
    ));
    o.push_str("<table id=\"subjects\"><thead><tr><th>tenant</th><th>subject</th><th>reveals</th><th>fields</th><th>first</th><th>last</th><th>by</th></tr></thead><tbody>\n");
    for s in &i.subjects {
        let fields: Vec<String> = s.fields.iter().map(|(p, n)| format!("{p} ×{n}")).collect();
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.tenant),
            esc(&s.subject),
            s.reveals,
            esc(&fields.join(", ")),
            esc(&s.first),
            esc(&s.last),
            esc(&s.principals.join(", "))
        );
    }
    o.push_str("</tbody></table>\n");
    page("Incident scope", "incident", &o)
}

fn review_html(a: &AccessReview) -> String {
    let mut o = String::new();
    header_html(
        &mut o,
        "Access review",
        &a.generated,
        &a.requested_by,
        &a.purpose,
        &a.trail,
    );
    let _ = writeln!(
        o,
        "<p class=\"meta\">Policy {}; use counted since {}; <strong id=\"unused\">{} grants unused</strong>.</p>",
        esc(&a.policy_version),
        esc(&a.since),
        a.unused
    );
    o.push_str(&bar_chart(
        "use-chart",
        "Reveals through each role's grants",
        a.roles
            .iter()
            .map(|r| (r.role.as_str(), r.grants.iter().map(|g| g.used).sum())),
    ));
    for r in &a.roles {
        let _ = writeln!(o, "<h2>{}</h2>", esc(&r.role));
        if r.grants.is_empty() {
            o.push_str("<p>No grant on personal fields.</p>\n");
            continue;
        }
        let _ = writeln!(
            o,
            "<table class=\"grants\" data-role=\"{}\"><thead><tr><th>field</th><th>purpose</th><th>rule</th><th>effect</th><th>requires</th><th>used</th><th>last used</th></tr></thead><tbody>",
            esc(&r.role)
        );
        for g in &r.grants {
            let _ = writeln!(
                o,
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if g.used == 0 { "unused" } else { "used" },
                esc(&g.field),
                esc(&g.purpose),
                esc(&g.rule),
                esc(&g.effect),
                esc(&g.requires.join(", ")),
                g.used,
                esc(opt(g.last_used.as_ref()))
            );
        }
        o.push_str("</tbody></table>\n");
    }
    page("Access review", "access_review", &o)
}

fn check_html(c: &ComplianceCheck) -> String {
    let mut o = String::new();
    header_html(
        &mut o,
        "Compliance check",
        &c.generated,
        &c.requested_by,
        &c.purpose,
        &c.trail,
    );
    o.push_str(&bar_chart(
        "severity-chart",
        "Findings by severity",
        ["critical", "high", "medium", "low"]
            .map(|sev| (sev, c.counts.get(sev).copied().unwrap_or(0))),
    ));
    if c.findings.is_empty() {
        o.push_str("<p id=\"no-findings\">No findings.</p>\n");
    } else {
        o.push_str("<table id=\"findings\"><thead><tr><th>severity</th><th>code</th><th>finding</th><th>concerned</th></tr></thead><tbody>\n");
        for f in &c.findings {
            let objects: Vec<String> = f.objects.iter().map(|x| esc(x)).collect();
            let _ = writeln!(
                o,
                "<tr data-code=\"{}\"><td><span class=\"badge sev-{}\">{}</span></td><td><code>{}</code></td><td>{}</td><td>{} <details><summary>list</summary>{}</details></td></tr>",
                esc(&f.code),
                f.severity.as_str(),
                f.severity.as_str(),
                esc(&f.code),
                esc(&f.message),
                f.total,
                objects.join("<br>")
            );
        }
        o.push_str("</tbody></table>\n");
    }
    page("Compliance check", "check", &o)
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
