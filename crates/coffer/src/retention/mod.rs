//! Retention: how long each retention category of a customer's data must be kept, from which
//! event, and what happens then. Pure: dates in, dates out; the vault stores events, holds and
//! keep-until dates, and destroys keys.
//!
//! Composition (see `docs/RETENTION.md`): keep until the latest date any applicable rule gives;
//! a permanent rule, or one whose starting event has not happened, keeps indefinitely; a legal
//! hold blocks every destruction it covers.

pub mod types;

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use time::{Date, Month};
use toml::Spanned;

use crate::error::{DocumentProblem, DocumentProblems, Error, Result, line_column_at};
use crate::record::Schema;

/// Largest retention document accepted, in bytes.
pub const MAX_RETENTION_BYTES: usize = 256 * 1024;

/// The built-in rule packs, by name.
pub const PACKS: &[(&str, &str)] = &[
    ("cn-accounting", include_str!("packs/cn-accounting.toml")),
    ("cn-tax", include_str!("packs/cn-tax.toml")),
    ("cn-pipl", include_str!("packs/cn-pipl.toml")),
    ("cn-aml", include_str!("packs/cn-aml.toml")),
    ("de-hgb", include_str!("packs/de-hgb.toml")),
    ("eu-gdpr", include_str!("packs/eu-gdpr.toml")),
];

/// A lifecycle event that can start a retention period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    /// The data key was created (the customer's data was first sealed).
    Created,
    /// The end of the fiscal year of the subject's latest lifecycle event (or creation).
    FiscalYearEnd,
    /// The end of the calendar year of the subject's latest lifecycle event (or creation).
    CalendarYearEnd,
    /// The business relationship ended.
    RelationshipEnded,
    /// An account was closed.
    AccountClosed,
    /// A transaction was completed.
    TransactionEnded,
    /// An open matter (unsettled claim or debt) was closed.
    MatterClosed,
    /// Consent was withdrawn.
    ConsentWithdrawn,
    /// The purpose of processing was achieved (or an erasure request was made).
    PurposeAchieved,
}

impl Event {
    /// Every event.
    pub const ALL: [Event; 9] = [
        Self::Created,
        Self::FiscalYearEnd,
        Self::CalendarYearEnd,
        Self::RelationshipEnded,
        Self::AccountClosed,
        Self::TransactionEnded,
        Self::MatterClosed,
        Self::ConsentWithdrawn,
        Self::PurposeAchieved,
    ];

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::FiscalYearEnd => "fiscal_year_end",
            Self::CalendarYearEnd => "calendar_year_end",
            Self::RelationshipEnded => "relationship_ended",
            Self::AccountClosed => "account_closed",
            Self::TransactionEnded => "transaction_ended",
            Self::MatterClosed => "matter_closed",
            Self::ConsentWithdrawn => "consent_withdrawn",
            Self::PurposeAchieved => "purpose_achieved",
        }
    }

    /// The event with this name.
    pub fn parse(name: &str) -> Option<Event> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// Whether the host reports this event (the year ends and creation are derived).
    pub const fn is_reported(self) -> bool {
        !matches!(
            self,
            Self::Created | Self::FiscalYearEnd | Self::CalendarYearEnd
        )
    }
}

/// How long a rule keeps data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Period {
    /// Forever.
    Permanent,
    /// Years, months and days after the start.
    Span {
        /// Years.
        years: u16,
        /// Months.
        months: u16,
        /// Days.
        days: u16,
    },
}

impl Period {
    /// Parses `30y`, `6m`, `90d`, `10y6m`, `0d` or `permanent`. At most 200 years.
    pub fn parse(text: &str) -> Option<Period> {
        if text == "permanent" {
            return Some(Period::Permanent);
        }
        let (mut years, mut months, mut days) = (0u32, 0u32, 0u32);
        let mut num = String::new();
        let mut any = false;
        for c in text.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let n: u32 = num.parse().ok()?;
            num.clear();
            match c {
                'y' => years += n,
                'm' => months += n,
                'd' => days += n,
                _ => return None,
            }
            any = true;
        }
        if !num.is_empty() || !any {
            return None;
        }
        let total_days_approx = years * 366 + months * 31 + days;
        if total_days_approx > 200 * 366 {
            return None;
        }
        Some(Period::Span {
            years: years as u16,
            months: months as u16,
            days: days as u16,
        })
    }

    /// The date `self` after `start` (None for permanent, or past the calendar's range).
    /// Months are calendar months; a day that does not exist in the target month (31 April,
    /// 29 February of a common year) becomes that month's last day.
    pub fn after(self, start: Date) -> Option<Date> {
        let Period::Span {
            years,
            months,
            days,
        } = self
        else {
            return None;
        };
        let total_months =
            i32::from(start.month() as u8) - 1 + i32::from(months) + 12 * i32::from(years);
        let year = start.year() + total_months.div_euclid(12);
        let month = Month::try_from(u8::try_from(total_months.rem_euclid(12) + 1).ok()?).ok()?;
        let last = time::util::days_in_month(month, year);
        let date = Date::from_calendar_date(year, month, start.day().min(last)).ok()?;
        date.checked_add(time::Duration::days(i64::from(days)))
    }

    /// Whether this period is at least as long as `other` (permanent is longest). Periods are
    /// compared by their effect on the worst-case start day.
    pub fn at_least(self, other: Period) -> bool {
        match (self, other) {
            (Period::Permanent, _) => true,
            (_, Period::Permanent) => false,
            (a, b) => {
                // From every month's first and last days, in a common and a leap year: a 30-day
                // period is not "at least" one month, since January has 31 days.
                [2023, 2024].iter().all(|&y| {
                    (1..=12u8).all(|m| {
                        let m = Month::try_from(m).unwrap_or(Month::January);
                        let last = time::util::days_in_month(m, y);
                        [1, 28, last].iter().all(|&d| {
                            let s =
                                Date::from_calendar_date(y, m, d.min(last)).unwrap_or(Date::MIN);
                            a.after(s) >= b.after(s)
                        })
                    })
                })
            }
        }
    }

    /// The period as text (`30y`, `permanent`).
    pub fn to_text(self) -> String {
        match self {
            Period::Permanent => "permanent".into(),
            Period::Span {
                years,
                months,
                days,
            } => {
                let mut s = String::new();
                if years > 0 {
                    s.push_str(&format!("{years}y"));
                }
                if months > 0 {
                    s.push_str(&format!("{months}m"));
                }
                if days > 0 || s.is_empty() {
                    s.push_str(&format!("{days}d"));
                }
                s
            }
        }
    }
}

/// What happens when a period ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Destroyed by the sweep at once (crypto-shredding).
    Destroy,
    /// Put on a destruction list that approvers must approve before it is executed.
    Review,
    /// Moved to an archive; listed like `review`.
    Archive,
    /// Never destroyed.
    Keep,
}

impl Action {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Destroy => "destroy",
            Self::Review => "review",
            Self::Archive => "archive",
            Self::Keep => "keep",
        }
    }

    fn parse(name: &str) -> Option<Action> {
        [Self::Destroy, Self::Review, Self::Archive, Self::Keep]
            .into_iter()
            .find(|a| a.as_str() == name)
    }
}

/// How firmly a rule is locked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lock {
    /// Set by law: may be lengthened, never shortened.
    Statutory,
    /// Set by the company: may be overridden, with two approvers, audited.
    Company,
}

/// One retention rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Its id (`cn.acc.voucher`).
    pub id: String,
    /// The minimum period.
    pub period: Period,
    /// The event that starts it.
    pub start: Event,
    /// What happens at the end.
    pub action: Action,
    /// How firmly it is locked.
    pub lock: Lock,
    /// The purposes that may still reveal data restricted under this rule after an erasure
    /// request (e.g. `statutory_audit`).
    pub restricted_purposes: Vec<String>,
    /// The legal basis, as text for notices and certificates.
    pub basis: String,
}

/// A subject's lifecycle, as far as retention needs it: the key's creation and the latest date
/// of each reported event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lifecycle {
    /// When the data key was created.
    pub created: Option<Date>,
    /// The latest date of each reported event.
    pub events: BTreeMap<Event, Date>,
}

impl Lifecycle {
    fn latest_activity(&self) -> Option<Date> {
        self.events.values().copied().chain(self.created).max()
    }
}

/// When a category may be destroyed, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeepUntil {
    /// The first day the data may be destroyed; `None` keeps it indefinitely (a permanent rule,
    /// or a starting event that has not happened).
    pub date: Option<Date>,
    /// The rule that gives the date (the latest), or keeps it indefinitely.
    pub rule: String,
    /// What happens then.
    pub action: Action,
}

/// The loaded retention configuration: rules (built-in packs and the firm's own) and which
/// rules apply to each retention category of the schema.
#[derive(Clone, Debug)]
pub struct Retention {
    rules: BTreeMap<String, Rule>,
    categories: BTreeMap<String, Vec<String>>,
    fiscal_year_end: (Month, u8),
    approver_roles: BTreeSet<String>,
    approvals_required: usize,
    backups_kept: Option<Period>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDoc {
    version: Spanned<u32>,
    #[serde(default)]
    packs: Vec<Spanned<String>>,
    #[serde(default)]
    fiscal_year_end: Option<Spanned<String>>,
    #[serde(default)]
    approver_roles: Vec<Spanned<String>>,
    #[serde(default)]
    approvals_required: Option<Spanned<u32>>,
    #[serde(default)]
    backups_kept: Option<Spanned<String>>,
    categories: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    period: Spanned<String>,
    start: Spanned<String>,
    action: Spanned<String>,
    lock: Spanned<String>,
    #[serde(default)]
    restricted_purposes: Vec<String>,
    basis: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPack {
    rules: Vec<RawRule>,
}

struct Problems<'a> {
    text: &'a str,
    list: Vec<DocumentProblem>,
}

impl Problems<'_> {
    fn at<T>(&mut self, s: &Spanned<T>, message: String) {
        let (line, column) = line_column_at(self.text, s.span().start);
        self.list.push(DocumentProblem {
            line,
            column,
            message,
        });
    }
}

fn rule_from(raw: &RawRule, p: &mut Problems<'_>) -> Option<Rule> {
    let before = p.list.len();
    let period = Period::parse(raw.period.get_ref());
    if period.is_none() {
        p.at(&raw.period, format!("rule `{}`: period `{}` is not `permanent` or years/months/days such as `30y`, `6m`, `90d` (at most 200 years)", raw.id.get_ref(), raw.period.get_ref()));
    }
    let start = Event::parse(raw.start.get_ref());
    if start.is_none() {
        p.at(
            &raw.start,
            format!(
                "rule `{}`: unknown event `{}`; expected one of {}",
                raw.id.get_ref(),
                raw.start.get_ref(),
                Event::ALL
                    .iter()
                    .map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let action = Action::parse(raw.action.get_ref());
    if action.is_none() {
        p.at(
            &raw.action,
            format!(
                "rule `{}`: unknown action `{}`; expected destroy, review, archive or keep",
                raw.id.get_ref(),
                raw.action.get_ref()
            ),
        );
    }
    let lock = match raw.lock.get_ref().as_str() {
        "statutory" => Some(Lock::Statutory),
        "company" => Some(Lock::Company),
        other => {
            p.at(
                &raw.lock,
                format!(
                    "rule `{}`: unknown lock `{other}`; expected statutory or company",
                    raw.id.get_ref()
                ),
            );
            None
        }
    };
    if raw.basis.get_ref().trim().is_empty() {
        p.at(
            &raw.basis,
            format!("rule `{}` needs its legal basis", raw.id.get_ref()),
        );
    }
    if p.list.len() > before {
        return None;
    }
    Some(Rule {
        id: raw.id.get_ref().clone(),
        period: period?,
        start: start?,
        action: action?,
        lock: lock?,
        restricted_purposes: raw.restricted_purposes.clone(),
        basis: raw.basis.get_ref().clone(),
    })
}

impl Retention {
    /// Loads a retention document (TOML) and checks it against the schema's categories. Every
    /// problem is reported at once with its line: unknown packs, rules, events, actions, locks,
    /// categories the schema does not have (or has and the document does not cover), absurd
    /// periods, and a statutory rule shortened.
    pub fn from_toml(text: &str, schema: &Schema) -> Result<Retention> {
        if text.len() > MAX_RETENTION_BYTES {
            return Err(Error::LimitExceeded {
                what: "retention document".into(),
                limit: MAX_RETENTION_BYTES,
                unit: "bytes",
            });
        }
        let raw: RawDoc = toml::from_str(text)
            .map_err(|e| crate::record::toml_error("retention rules", text, &e))?;
        let mut p = Problems {
            text,
            list: Vec::new(),
        };
        if *raw.version.get_ref() != 1 {
            p.at(
                &raw.version,
                "unsupported retention document version; this build reads version = 1".into(),
            );
        }
        let mut rules: BTreeMap<String, Rule> = BTreeMap::new();
        for pack in &raw.packs {
            match PACKS.iter().find(|(n, _)| *n == pack.get_ref()) {
                Some((_, pack_text)) => {
                    let parsed: RawPack =
                        toml::from_str(pack_text).map_err(|e| Error::Internal {
                            message: format!("built-in pack {}: {e}", pack.get_ref()),
                        })?;
                    let mut pp = Problems {
                        text: pack_text,
                        list: Vec::new(),
                    };
                    for r in &parsed.rules {
                        if let Some(rule) = rule_from(r, &mut pp) {
                            rules.insert(rule.id.clone(), rule);
                        }
                    }
                    if !pp.list.is_empty() {
                        return Err(Error::Internal {
                            message: format!("built-in pack {} is invalid", pack.get_ref()),
                        });
                    }
                }
                None => p.at(
                    pack,
                    format!(
                        "unknown rule pack `{}`; built in: {}",
                        pack.get_ref(),
                        PACKS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                    ),
                ),
            }
        }
        for r in &raw.rules {
            let Some(rule) = rule_from(r, &mut p) else {
                continue;
            };
            if let Some(existing) = rules.get(&rule.id)
                && existing.lock == Lock::Statutory
            {
                if !rule.period.at_least(existing.period) {
                    p.at(&r.period, format!("statutory rule `{}` cannot be shortened ({} to {}): it may only be lengthened", rule.id, existing.period.to_text(), rule.period.to_text()));
                    continue;
                }
                if rule.lock != Lock::Statutory {
                    p.at(
                        &r.lock,
                        format!(
                            "statutory rule `{}` cannot be relaxed to a company rule",
                            rule.id
                        ),
                    );
                    continue;
                }
            }
            rules.insert(rule.id.clone(), rule);
        }
        let schema_categories: BTreeSet<String> = crate::record::FIELD_PATTERNS
            .iter()
            .filter_map(|f| schema.spec_for_pattern(f))
            .map(|s| s.category.clone())
            .collect();
        let mut categories = BTreeMap::new();
        for (cat, list) in &raw.categories {
            if !schema_categories.contains(cat.get_ref()) {
                p.at(
                    cat,
                    format!(
                        "unknown category `{}`; the schema's categories are {}",
                        cat.get_ref(),
                        schema_categories
                            .iter()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                continue;
            }
            let mut ids = Vec::new();
            for id in list {
                if rules.contains_key(id.get_ref()) {
                    ids.push(id.get_ref().clone());
                } else {
                    p.at(id, format!("category `{}`: unknown rule `{}` (load its pack or define it under [[rules]])", cat.get_ref(), id.get_ref()));
                }
            }
            if list.is_empty() {
                p.at(cat, format!("category `{}` names no rule", cat.get_ref()));
            }
            categories.insert(cat.get_ref().clone(), ids);
        }
        for c in &schema_categories {
            if !categories.contains_key(c) && !raw.categories.keys().any(|k| k.get_ref() == c) {
                p.list.push(DocumentProblem {
                    line: 0,
                    column: 0,
                    message: format!("the schema's category `{c}` has no retention rule: every category needs one"),
                });
            }
        }
        let fiscal_year_end = match &raw.fiscal_year_end {
            None => (Month::December, 31),
            Some(s) => {
                let parsed = s.get_ref().split_once('-').and_then(|(m, d)| {
                    let m = Month::try_from(m.parse::<u8>().ok()?).ok()?;
                    let d: u8 = d.parse().ok()?;
                    (d >= 1 && d <= time::util::days_in_month(m, 2023)).then_some((m, d))
                });
                parsed.unwrap_or_else(|| {
                    p.at(s, "fiscal_year_end is MM-DD, a day that exists in every year (e.g. 12-31, 03-31)".into());
                    (Month::December, 31)
                })
            }
        };
        let approvals_required = raw
            .approvals_required
            .as_ref()
            .map_or(2, |a| *a.get_ref() as usize);
        if let Some(a) = &raw.approvals_required
            && !(2..=10).contains(a.get_ref())
        {
            p.at(a, "approvals_required is 2 to 10: a destruction needs at least two distinct approvers".into());
        }
        let backups_kept = raw.backups_kept.as_ref().and_then(|b| {
            let parsed = Period::parse(b.get_ref());
            if parsed.is_none() {
                p.at(b, "backups_kept is a period like the rules' (35d, 6m, 1y, or permanent): how long the host keeps a backup or snapshot of the store".into());
            }
            parsed
        });
        if !p.list.is_empty() {
            return Err(Error::Retention {
                problems: DocumentProblems(p.list),
            });
        }
        Ok(Retention {
            backups_kept,
            rules,
            categories,
            fiscal_year_end,
            approver_roles: raw
                .approver_roles
                .iter()
                .map(|r| r.get_ref().clone())
                .collect(),
            approvals_required,
        })
    }

    /// These rules with company rules' periods replaced by `overrides` (statutory rules are
    /// never changed by an override).
    pub fn with_overrides(&self, overrides: &BTreeMap<String, Period>) -> Retention {
        let mut out = self.clone();
        for (id, period) in overrides {
            if let Some(r) = out.rules.get_mut(id)
                && r.lock == Lock::Company
            {
                r.period = *period;
            }
        }
        out
    }

    /// The categories a rule applies to.
    pub fn categories_of(&self, rule: &str) -> Vec<String> {
        self.categories
            .iter()
            .filter(|(_, ids)| ids.iter().any(|i| i == rule))
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// The rule with this id.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.get(id)
    }

    /// The rules that apply to a category.
    pub fn rules_for(&self, category: &str) -> impl Iterator<Item = &Rule> {
        self.categories
            .get(category)
            .into_iter()
            .flatten()
            .filter_map(|id| self.rules.get(id))
    }

    /// The roles whose holders may approve a destruction list.
    pub fn approver_roles(&self) -> &BTreeSet<String> {
        &self.approver_roles
    }

    /// How many distinct approvers a destruction list needs.
    pub fn approvals_required(&self) -> usize {
        self.approvals_required
    }

    /// How long the host keeps a backup or snapshot of the store (`backups_kept`), if the
    /// rules say: it bounds how long a destroyed key stays recoverable from copies taken
    /// before its destruction.
    pub fn backups_kept(&self) -> Option<Period> {
        self.backups_kept
    }

    fn year_end_after(&self, date: Date, fiscal: bool) -> Option<Date> {
        let (m, d) = if fiscal {
            self.fiscal_year_end
        } else {
            (Month::December, 31)
        };
        let this_year = Date::from_calendar_date(date.year(), m, d).ok()?;
        let end = if date <= this_year {
            this_year
        } else {
            Date::from_calendar_date(date.year() + 1, m, d).ok()?
        };
        end.next_day()
    }

    /// When one rule lets data go, given the lifecycle: `Some(None)` keeps indefinitely.
    fn rule_date(&self, rule: &Rule, life: &Lifecycle) -> Option<Date> {
        if rule.period == Period::Permanent || rule.action == Action::Keep {
            return None;
        }
        let start = match rule.start {
            Event::Created => life.created?,
            Event::FiscalYearEnd => self.year_end_after(life.latest_activity()?, true)?,
            Event::CalendarYearEnd => self.year_end_after(life.latest_activity()?, false)?,
            e => *life.events.get(&e)?,
        };
        rule.period.after(start)
    }

    /// When a category of a subject may be destroyed: the latest date any of its rules gives;
    /// indefinitely if any rule is permanent or waits for an event that has not happened.
    pub fn keep_until(&self, category: &str, life: &Lifecycle) -> KeepUntil {
        let mut latest: Option<(Date, &Rule)> = None;
        for rule in self.rules_for(category) {
            match self.rule_date(rule, life) {
                None => {
                    return KeepUntil {
                        date: None,
                        rule: rule.id.clone(),
                        action: rule.action,
                    };
                }
                Some(d) => {
                    if latest.is_none_or(|(l, _)| d > l) {
                        latest = Some((d, rule));
                    }
                }
            }
        }
        match latest {
            Some((d, r)) => KeepUntil {
                date: Some(d),
                rule: r.id.clone(),
                action: r.action,
            },
            // A category with no rule is never destroyed by the sweep (the loader refuses that).
            None => KeepUntil {
                date: None,
                rule: String::new(),
                action: Action::Keep,
            },
        }
    }

    /// The purposes that may reveal a category while it is restricted: those named by every
    /// rule still keeping it.
    pub fn restricted_purposes(&self, category: &str) -> Vec<String> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        for r in self.rules_for(category) {
            out.extend(r.restricted_purposes.iter().cloned());
        }
        out.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn periods() {
        assert_eq!(
            Period::parse("30y"),
            Some(Period::Span {
                years: 30,
                months: 0,
                days: 0
            })
        );
        assert_eq!(
            Period::parse("10y6m"),
            Some(Period::Span {
                years: 10,
                months: 6,
                days: 0
            })
        );
        assert_eq!(Period::parse("permanent"), Some(Period::Permanent));
        for bad in ["", "y", "30", "-1y", "30x", "201y", "1.5y", "30y "] {
            assert_eq!(Period::parse(bad), None, "{bad}");
        }
        let p = Period::parse("30y").unwrap();
        assert_eq!(p.after(date!(2025 - 01 - 01)), Some(date!(2055 - 01 - 01)));
        // Leap days: 29 February plus a year is 28 February; plus four years, 29 February.
        assert_eq!(
            Period::parse("1y").unwrap().after(date!(2024 - 02 - 29)),
            Some(date!(2025 - 02 - 28))
        );
        assert_eq!(
            Period::parse("4y").unwrap().after(date!(2024 - 02 - 29)),
            Some(date!(2028 - 02 - 29))
        );
        assert_eq!(
            Period::parse("1m").unwrap().after(date!(2025 - 01 - 31)),
            Some(date!(2025 - 02 - 28))
        );
        assert!(
            Period::parse("30y")
                .unwrap()
                .at_least(Period::parse("10y").unwrap())
        );
        assert!(
            !Period::parse("30d")
                .unwrap()
                .at_least(Period::parse("1m").unwrap())
        );
        assert!(Period::Permanent.at_least(Period::parse("200y").unwrap()));
    }

    fn config(extra: &str) -> String {
        format!(
            "version = 1\npacks = [\"cn-accounting\", \"cn-pipl\"]\napprover_roles = [\"archive_head\", \"accounting_head\"]\n{extra}\n[categories]\nidentity = [\"cn.acc.voucher\"]\nbanking = [\"cn.acc.bank.statement\"]\ncontact = [\"cn.pipl.default\"]\nprofile = [\"cn.pipl.default\"]\n"
        )
    }

    #[test]
    fn composition() {
        let r = Retention::from_toml(&config(""), Schema::builtin()).unwrap();
        let life = Lifecycle {
            created: Some(date!(2026 - 03 - 01)),
            events: BTreeMap::new(),
        };
        // Vouchers: 30 years from the day after the fiscal year of the last activity ends.
        assert_eq!(
            r.keep_until("identity", &life).date,
            Some(date!(2057 - 01 - 01))
        );
        assert_eq!(
            r.keep_until("banking", &life).date,
            Some(date!(2037 - 01 - 01))
        );
        // Contact data waits for its purpose to be achieved.
        assert_eq!(r.keep_until("contact", &life).date, None);
        let mut life2 = life.clone();
        life2
            .events
            .insert(Event::PurposeAchieved, date!(2027 - 05 - 05));
        assert_eq!(
            r.keep_until("contact", &life2).date,
            Some(date!(2027 - 05 - 05))
        );
        // A later event moves the fiscal-year anchor.
        assert_eq!(
            r.keep_until("identity", &life2).date,
            Some(date!(2058 - 01 - 01))
        );
    }

    #[test]
    fn statutory_rules_cannot_be_shortened_or_relaxed() {
        let short = config(
            "[[rules]]\nid = \"cn.acc.voucher\"\nperiod = \"10y\"\nstart = \"fiscal_year_end\"\naction = \"review\"\nlock = \"statutory\"\nbasis = \"x\"\n",
        );
        let err = Retention::from_toml(&short, Schema::builtin()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Retention);
        assert!(err.to_string().contains("cannot be shortened"), "{err}");
        let relaxed = config(
            "[[rules]]\nid = \"cn.acc.voucher\"\nperiod = \"40y\"\nstart = \"fiscal_year_end\"\naction = \"review\"\nlock = \"company\"\nbasis = \"x\"\n",
        );
        assert!(
            Retention::from_toml(&relaxed, Schema::builtin())
                .unwrap_err()
                .to_string()
                .contains("relaxed")
        );
        let longer = config(
            "[[rules]]\nid = \"cn.acc.voucher\"\nperiod = \"40y\"\nstart = \"fiscal_year_end\"\naction = \"review\"\nlock = \"statutory\"\nbasis = \"x\"\n",
        );
        let r = Retention::from_toml(&longer, Schema::builtin()).unwrap();
        assert_eq!(
            r.rule("cn.acc.voucher").unwrap().period,
            Period::parse("40y").unwrap()
        );
    }

    #[test]
    fn document_problems_are_reported_with_lines() {
        let bad = "version = 1\npacks = [\"cn-nowhere\"]\n[categories]\nidentity = [\"cn.acc.voucher\"]\nvouchers = [\"x\"]\n[[rules]]\nid = \"r\"\nperiod = \"-3y\"\nstart = \"birthday\"\naction = \"burn\"\nlock = \"loose\"\nbasis = \"\"\n";
        let err = Retention::from_toml(bad, Schema::builtin()).unwrap_err();
        let text = err.to_string();
        for expected in [
            "unknown rule pack `cn-nowhere`",
            "unknown category `vouchers`",
            "unknown rule `cn.acc.voucher`",
            "period `-3y`",
            "unknown event `birthday`",
            "unknown action `burn`",
            "unknown lock `loose`",
            "needs its legal basis",
            "category `contact` has no retention rule",
        ] {
            assert!(text.contains(expected), "missing {expected}: {text}");
        }
        assert!(text.contains("line 2"), "{text}");
    }

    #[test]
    fn permanent_keeps_forever() {
        let r = Retention::from_toml(
            &config("").replace(
                "identity = [\"cn.acc.voucher\"]",
                "identity = [\"cn.acc.voucher\", \"cn.acc.report.annual\"]",
            ),
            Schema::builtin(),
        )
        .unwrap();
        let life = Lifecycle {
            created: Some(date!(2026 - 03 - 01)),
            events: BTreeMap::new(),
        };
        let k = r.keep_until("identity", &life);
        assert_eq!((k.date, k.rule.as_str()), (None, "cn.acc.report.annual"));
    }

    #[test]
    fn every_pack_loads() {
        for (name, _) in PACKS {
            let doc = config("").replace(
                "packs = [\"cn-accounting\", \"cn-pipl\"]",
                &format!("packs = [\"cn-accounting\", \"cn-pipl\", \"{name}\"]"),
            );
            assert!(
                Retention::from_toml(&doc, Schema::builtin()).is_ok(),
                "{name}"
            );
        }
    }
}
