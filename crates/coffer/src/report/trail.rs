//! Reading the audit trail for reports: entries parsed without copying their text, times,
//! the field patterns a report selects, and the check that refuses a broken trail.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use time::OffsetDateTime;

use super::{ReportOptions, TrailCheck};
use crate::HashMap;
use crate::audit::AuditReport;
use crate::error::{Error, Result};
use crate::record::{Classification, FIELD_PATTERNS, FieldPath, Schema};
use crate::store::AuditRow;

/// The fields of an audit entry a report reads, borrowed from the row's text where it can.
#[derive(Deserialize)]
pub(crate) struct EntryView<'a> {
    #[serde(borrow)]
    pub(crate) time: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) kind: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) actor: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) tenant: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) record: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) subject: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) purpose: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) fields: Pairs<'a>,
    #[serde(borrow, default)]
    pub(crate) rules: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) detail: Pairs<'a>,
}

/// A JSON object of strings as a list of pairs (no map to build per entry).
#[derive(Default)]
pub(crate) struct Pairs<'a>(pub(crate) Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Pairs<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> std::result::Result<Pairs<'a>, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<BorrowedText<'a>, BorrowedText<'a>>()? {
                    out.push((k.0, v.0));
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'a> Pairs<'a> {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    pub(crate) fn owned(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

pub(crate) struct BorrowedText<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BorrowedText<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Cow::<'a, str>::deserialize(d).map(BorrowedText)
    }
}

/// The entry's fields, or `None` for a row that is not an entry (only a forged row can be: the
/// chain check flags it, and the report counts it as unreadable).
pub(crate) fn parse_entry(row: &AuditRow) -> Option<EntryView<'_>> {
    serde_json::from_str(&row.entry).ok()
}

/// `row` as a reveal or archive-export entry of `tenant`, found by its kind's exact text before it is parsed;
/// `None` for any other row. A row that is not an entry at all is counted in `unreadable`.
pub(crate) fn tenant_reveal<'r>(
    row: &'r AuditRow,
    tenant: &str,
    unreadable: &mut u64,
) -> Option<EntryView<'r>> {
    if !row.entry.contains("\"kind\":\"reveal\"")
        && !row.entry.contains("\"kind\":\"archive.export\"")
    {
        return None;
    }
    let Some(e) = parse_entry(row) else {
        *unreadable += 1;
        return None;
    };
    ((e.kind == "reveal" || e.kind == "archive.export") && e.tenant.as_deref() == Some(tenant))
        .then_some(e)
}

/// When an entry was written; `None`, counted in `unreadable`, if its time does not parse.
pub(crate) fn entry_time(e: &EntryView<'_>, unreadable: &mut u64) -> Option<OffsetDateTime> {
    let t = crate::clock::text::parse_instant(&e.time);
    if t.is_none() {
        *unreadable += 1;
    }
    t
}

/// The pattern of each concrete path, kept only if it is one of `keep` (every pattern when
/// `keep` is `None`). Paths repeat across millions of entries, so each is looked up, and
/// filtered, once; after that it costs one hash lookup.
pub(crate) struct PathPatterns<'k> {
    keep: Option<&'k BTreeSet<String>>,
    cache: HashMap<String, Option<String>>,
}

impl<'k> PathPatterns<'k> {
    pub(crate) fn new(keep: Option<&'k BTreeSet<String>>) -> Self {
        PathPatterns {
            keep,
            cache: HashMap::default(),
        }
    }

    pub(crate) fn get(&mut self, schema: &Schema, path: &str) -> Option<String> {
        if let Some(p) = self.cache.get(path) {
            return p.clone();
        }
        let p = pattern_of(schema, path).filter(|p| self.keep.is_none_or(|k| k.contains(p)));
        self.cache.insert(path.to_owned(), p.clone());
        p
    }
}

/// An instant from RFC 3339, or an ISO date meaning its midnight UTC.
pub(crate) fn parse_instant(name: &'static str, text: &str) -> Result<OffsetDateTime> {
    crate::clock::text::parse_instant_or_date(text).ok_or_else(|| Error::InvalidArgument {
        name,
        reason: "expected an RFC 3339 date-time (2026-11-27T08:00:00Z) or a date (2026-11-27)"
            .into(),
    })
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    crate::clock::text::instant(t)
}

/// Which field patterns a list of selectors names (the policy's selector language, without
/// positions).
pub(crate) fn select_patterns(schema: &Schema, selectors: &[String]) -> Result<BTreeSet<String>> {
    let mut known: Vec<String> = FIELD_PATTERNS.iter().map(|p| (*p).to_owned()).collect();
    known.extend(schema.declared_custom().map(|(k, _)| format!("custom.{k}")));
    let spec = |p: &str| schema.spec_for_pattern(p);
    let personal =
        |p: &String| spec(p).is_some_and(|s| s.classification >= Classification::Personal);
    if selectors.is_empty() {
        return Ok(known.into_iter().filter(personal).collect());
    }
    let mut out = BTreeSet::new();
    for sel in selectors {
        let matched: Vec<&String> = if sel == "*" {
            known.iter().collect()
        } else if let Some(class) = sel.strip_prefix("class:") {
            let class = Classification::parse(class).ok_or_else(|| Error::InvalidArgument {
                name: "fields",
                reason: format!("`{sel}`: unknown classification"),
            })?;
            known
                .iter()
                .filter(|p| spec(p).is_some_and(|s| s.classification == class))
                .collect()
        } else if let Some(cat) = sel.strip_prefix("category:") {
            known
                .iter()
                .filter(|p| spec(p).is_some_and(|s| s.category == cat))
                .collect()
        } else if let Some(prefix) = sel.strip_suffix('*') {
            known.iter().filter(|p| p.starts_with(prefix)).collect()
        } else {
            known.iter().filter(|p| *p == sel).collect()
        };
        if matched.is_empty() {
            return Err(Error::InvalidArgument {
                name: "fields",
                reason: format!(
                    "`{sel}` names no field of schema `{}` (use patterns such as `phones[]`, `bank_accounts[].*`, `class:sensitive` or `category:banking`; positions such as `phones[0]` are not patterns)",
                    schema.name()
                ),
            });
        }
        out.extend(matched.into_iter().cloned());
    }
    Ok(out)
}

/// The pattern of a concrete path (`phones[2]` → `phones[]`; an undeclared custom field →
/// `custom.*`), as the policy and the schema name it.
pub(crate) fn pattern_of(schema: &Schema, path: &str) -> Option<String> {
    let p = FieldPath::parse(path).ok()?;
    let key = p.pattern_key();
    if schema.spec_for_pattern(&key).is_some() {
        Some(key)
    } else if key.starts_with("custom.") {
        Some("custom.*".into())
    } else {
        None
    }
}

pub(crate) fn check_trail(
    report: &AuditReport,
    unreadable: u64,
    options: &ReportOptions,
    what: &str,
) -> Result<TrailCheck> {
    let mut trail = TrailCheck::from(report);
    trail.unreadable = unreadable;
    if (!trail.intact || unreadable > 0) && !options.accept_broken_trail {
        return Err(Error::Integrity {
            what: format!(
                "audit trail: {}; no {what} was made from it, because an answer built on a broken trail could silently miss accesses (ask again accepting the broken trail to see what the rest says)",
                trail.summary()
            ),
        });
    }
    Ok(trail)
}
