//! Loading a policy document: every key checked, every problem reported with its position.

use std::sync::Arc;

use time::OffsetDateTime;

use super::doc::{Key, Node, Value, parse_json, parse_toml};
use super::{
    Action, AttrRef, AttrType, BUILTIN_ATTRIBUTES, CmpOp, Cond, Effect, FieldSet, Literal,
    MaskChoice, Policy, RATE_READ, RATE_SEARCH, RateLimit, Requirement, Rule,
};
use crate::HashMap;
use crate::error::{DocumentProblem, DocumentProblems, Error, Format, Result, line_column_at};
use crate::mask::{MaskOperator, MaskRule, Profile};
use crate::record::{Classification, FIELD_PATTERNS, Schema};

mod rules;
use rules::{load_rate_limit, load_rule};

/// Largest policy document accepted, in bytes.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;
/// Most rules in one policy.
pub const MAX_RULES: usize = 10_000;
/// Most roles in one policy.
pub const MAX_ROLES: usize = 128;
/// Most purposes in one policy.
pub const MAX_PURPOSES: usize = 128;
/// Most conditions in one rule, nested ones included.
pub const MAX_CONDITIONS_PER_RULE: usize = 64;

struct Loader<'a> {
    text: &'a str,
    problems: Vec<DocumentProblem>,
}

impl Loader<'_> {
    fn at(&mut self, offset: usize, message: String) {
        let (line, column) = line_column_at(self.text, offset);
        self.problems.push(DocumentProblem {
            line,
            column,
            message,
        });
    }

    fn table<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Key, Node)]> {
        match &node.value {
            Value::Table(t) => Some(t),
            other => {
                self.at(
                    node.at,
                    format!("{what} must be a table, not {}", other.type_name()),
                );
                None
            }
        }
    }

    /// Reports unknown and duplicate keys of a table.
    fn keys(&mut self, table: &[(Key, Node)], allowed: &[&str], what: &str) {
        let mut seen: Vec<&str> = Vec::new();
        for (k, _) in table {
            if seen.contains(&k.name.as_str()) {
                self.at(k.at, format!("duplicate key `{}` in {what}", k.name));
            }
            seen.push(&k.name);
            if !allowed.contains(&k.name.as_str()) {
                self.at(
                    k.at,
                    format!(
                        "unknown key `{}` in {what}; expected one of: {}",
                        k.name,
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    fn str<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n str> {
        match &node.value {
            Value::Str(s) => Some(s),
            other => {
                self.at(
                    node.at,
                    format!("{what} must be a string, not {}", other.type_name()),
                );
                None
            }
        }
    }

    fn str_list<'n>(&mut self, node: &'n Node, what: &str) -> Vec<(&'n str, usize)> {
        match &node.value {
            Value::Array(items) => {
                if items.len() > 1000 {
                    self.at(node.at, format!("{what} has more than 1000 items"));
                    return Vec::new();
                }
                items
                    .iter()
                    .filter_map(|i| self.str(i, what).map(|s| (s, i.at)))
                    .collect()
            }
            other => {
                self.at(
                    node.at,
                    format!(
                        "{what} must be an array of strings, not {}",
                        other.type_name()
                    ),
                );
                Vec::new()
            }
        }
    }

    fn time(&mut self, node: &Node, what: &str) -> Option<OffsetDateTime> {
        let text = match &node.value {
            Value::Datetime(s) | Value::Str(s) => s.as_str(),
            other => {
                self.at(
                    node.at,
                    format!("{what} must be a date-time, not {}", other.type_name()),
                );
                return None;
            }
        };
        let parsed = parse_time(text);
        if parsed.is_none() {
            self.at(
                node.at,
                format!(
                    "{what} must be an RFC 3339 date-time (e.g. 2026-01-01T00:00:00Z) or a date"
                ),
            );
        }
        parsed
    }
}

fn get<'n>(table: &'n [(Key, Node)], key: &str) -> Option<&'n Node> {
    table.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
}

/// Parses an RFC 3339 date-time, or a plain date as its midnight UTC.
pub(crate) fn parse_time(text: &str) -> Option<OffsetDateTime> {
    crate::clock::text::parse_instant_or_date(text)
}

fn parse_window(text: &str) -> Option<i64> {
    let (num, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return None,
    };
    (1..=31 * 86_400).contains(&secs).then_some(secs)
}

/// Canonical JSON of a document (keys sorted), for the version hash.
fn canonical(node: &Node) -> serde_json::Value {
    match &node.value {
        Value::Str(s) => serde_json::Value::String(s.clone()),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Datetime(s) => serde_json::Value::String(s.clone()),
        Value::Array(items) => serde_json::Value::Array(items.iter().map(canonical).collect()),
        Value::Table(t) => {
            let map: std::collections::BTreeMap<String, serde_json::Value> = t
                .iter()
                .map(|(k, v)| (k.name.clone(), canonical(v)))
                .collect();
            serde_json::Value::Object(map.into_iter().collect())
        }
    }
}

struct Names {
    roles: HashMap<String, usize>,
    purposes: HashMap<String, usize>,
    attributes: HashMap<String, AttrType>,
    slots: Vec<String>,
    slot_class: Vec<Classification>,
    slot_category: Vec<String>,
}

pub(super) fn load(text: &str, format: Format, schema: &Schema) -> Result<Policy> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(Error::LimitExceeded {
            what: "policy document".into(),
            limit: MAX_POLICY_BYTES,
            unit: "bytes",
        });
    }
    let root = match format {
        Format::Json => parse_json(text, "policy")?,
        _ => parse_toml(text, "policy")?,
    };
    let mut l = Loader {
        text,
        problems: Vec::new(),
    };
    let Some(top) = l.table(&root, "the policy document") else {
        return Err(Error::Policy {
            problems: DocumentProblems(l.problems),
        });
    };
    l.keys(
        top,
        &[
            "version",
            "name",
            "default",
            "attributes",
            "roles",
            "purposes",
            "rules",
            "rate_limits",
        ],
        "the policy",
    );

    match get(top, "version") {
        Some(Node {
            value: Value::Int(1),
            ..
        }) => {}
        Some(n) => l.at(
            n.at,
            "unsupported policy version; this build reads version = 1".into(),
        ),
        None => l.at(root.at, "missing `version = 1`".into()),
    }
    match get(top, "default") {
        Some(n) => {
            if let Some(d) = l.str(n, "`default`")
                && d != "deny"
            {
                l.at(
                    n.at,
                    "`default` must be \"deny\": Coffer denies whatever no rule allows".into(),
                );
            }
        }
        None => l.at(root.at, "missing `default = \"deny\"`".into()),
    }
    let name = get(top, "name")
        .and_then(|n| l.str(n, "`name`"))
        .unwrap_or("policy")
        .to_owned();

    // Field slots: the schema's patterns and its declared custom fields.
    let mut slots: Vec<String> = FIELD_PATTERNS.iter().map(|p| (*p).to_owned()).collect();
    for (key, _) in schema_custom(schema) {
        slots.push(format!("custom.{key}"));
    }
    if slots.len() > 128 {
        return Err(Error::LimitExceeded {
            what: "schema fields for a policy".into(),
            limit: 128,
            unit: "fields",
        });
    }
    let specs: Vec<_> = slots
        .iter()
        .map(|s| schema.spec_for_pattern(s).cloned())
        .collect();
    let mut names = Names {
        roles: HashMap::default(),
        purposes: HashMap::default(),
        attributes: BUILTIN_ATTRIBUTES
            .iter()
            .map(|(n, t)| ((*n).to_owned(), *t))
            .collect(),
        slot_class: specs
            .iter()
            .map(|s| {
                s.as_ref()
                    .map_or(Classification::Sensitive, |s| s.classification)
            })
            .collect(),
        slot_category: specs
            .iter()
            .map(|s| s.as_ref().map_or_else(String::new, |s| s.category.clone()))
            .collect(),
        slots,
    };
    let slot_mask: Vec<MaskRule> = specs
        .iter()
        .map(|s| s.as_ref().map_or(MaskRule::Withhold, |s| s.mask))
        .collect();

    // Custom attributes.
    if let Some(attrs) = get(top, "attributes").and_then(|n| l.table(n, "`attributes`")) {
        for (k, v) in attrs {
            let ok_prefix = ["principal.", "record.", "context."].iter().any(|p| {
                k.name.strip_prefix(p).is_some_and(|rest| {
                    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                })
            });
            if !ok_prefix {
                l.at(
                    k.at,
                    format!(
                        "attribute `{}` must be `principal.NAME`, `record.NAME` or `context.NAME`",
                        k.name
                    ),
                );
                continue;
            }
            if BUILTIN_ATTRIBUTES.iter().any(|(n, _)| *n == k.name) {
                l.at(
                    k.at,
                    format!(
                        "attribute `{}` is built in and cannot be redeclared",
                        k.name
                    ),
                );
                continue;
            }
            match l
                .str(v, "an attribute type")
                .map(|t| (t, AttrType::parse(t)))
            {
                Some((_, Some(t))) => {
                    names.attributes.insert(k.name.clone(), t);
                }
                Some((t, None)) => l.at(
                    v.at,
                    format!(
                        "unknown attribute type `{t}`; expected string, number, bool, time or set"
                    ),
                ),
                None => {}
            }
        }
    }

    // Roles and their inheritance.
    let mut role_inherits: Vec<Vec<(String, usize)>> = Vec::new();
    let mut role_names: Vec<String> = Vec::new();
    if let Some(roles) = get(top, "roles").and_then(|n| l.table(n, "`roles`")) {
        if roles.len() > MAX_ROLES {
            l.at(roles[0].0.at, format!("more than {MAX_ROLES} roles"));
        }
        for (k, v) in roles.iter().take(MAX_ROLES) {
            if !valid_name(&k.name) {
                l.at(
                    k.at,
                    format!(
                        "role `{}`: names are letters, digits, `_`, `-` and `.`",
                        k.name
                    ),
                );
            }
            names.roles.insert(k.name.clone(), role_names.len());
            role_names.push(k.name.clone());
            let mut inherits = Vec::new();
            if let Some(t) = l.table(v, &format!("role `{}`", k.name)) {
                l.keys(
                    t,
                    &["inherits", "description"],
                    &format!("role `{}`", k.name),
                );
                if let Some(i) = get(t, "inherits") {
                    inherits = l
                        .str_list(i, "`inherits`")
                        .into_iter()
                        .map(|(s, at)| (s.to_owned(), at))
                        .collect();
                }
                if let Some(d) = get(t, "description") {
                    l.str(d, "`description`");
                }
            }
            role_inherits.push(inherits);
        }
    }
    let mut role_closure: Vec<u128> = (0..role_names.len()).map(|i| 1u128 << i).collect();
    for (i, inherits) in role_inherits.iter().enumerate() {
        for (parent, at) in inherits {
            match names.roles.get(parent) {
                Some(&p) => role_closure[i] |= 1 << p,
                None => l.at(
                    *at,
                    format!("role `{}` inherits unknown role `{parent}`", role_names[i]),
                ),
            }
        }
    }
    // Transitive closure; a cycle shows up as a role reaching itself through another.
    for _ in 0..role_names.len() {
        for i in 0..role_closure.len() {
            let mut c = role_closure[i];
            for j in super::bits(role_closure[i]) {
                c |= role_closure[j];
            }
            role_closure[i] = c;
        }
    }
    for (i, inherits) in role_inherits.iter().enumerate() {
        for (parent, at) in inherits {
            if let Some(&p) = names.roles.get(parent)
                && role_closure[p] & (1 << i) != 0
            {
                l.at(
                    *at,
                    format!(
                        "role inheritance cycle through `{}` and `{parent}`",
                        role_names[i]
                    ),
                );
            }
        }
    }

    // Purposes and their tree.
    let mut purpose_names: Vec<String> = Vec::new();
    let mut parents: Vec<Option<(String, usize)>> = Vec::new();
    if let Some(purposes) = get(top, "purposes").and_then(|n| l.table(n, "`purposes`")) {
        if purposes.len() > MAX_PURPOSES {
            l.at(
                purposes[0].0.at,
                format!("more than {MAX_PURPOSES} purposes"),
            );
        }
        for (k, v) in purposes.iter().take(MAX_PURPOSES) {
            if !valid_name(&k.name) {
                l.at(
                    k.at,
                    format!(
                        "purpose `{}`: names are letters, digits, `_`, `-` and `.`",
                        k.name
                    ),
                );
            }
            names.purposes.insert(k.name.clone(), purpose_names.len());
            purpose_names.push(k.name.clone());
            let mut parent = None;
            if let Some(t) = l.table(v, &format!("purpose `{}`", k.name)) {
                l.keys(
                    t,
                    &["parent", "description"],
                    &format!("purpose `{}`", k.name),
                );
                if let Some(p) = get(t, "parent") {
                    parent = l.str(p, "`parent`").map(|s| (s.to_owned(), p.at));
                }
                if let Some(d) = get(t, "description") {
                    l.str(d, "`description`");
                }
            }
            parents.push(parent);
        }
    }
    if purpose_names.is_empty() {
        l.at(
            root.at,
            "the policy declares no purposes; every allow rule must name the purposes it serves"
                .into(),
        );
    }
    let mut purpose_ancestry: Vec<u128> = (0..purpose_names.len()).map(|i| 1u128 << i).collect();
    for (i, parent) in parents.iter().enumerate() {
        if let Some((p, at)) = parent {
            match names.purposes.get(p) {
                Some(&pi) => purpose_ancestry[i] |= 1 << pi,
                None => l.at(
                    *at,
                    format!("purpose `{}` has unknown parent `{p}`", purpose_names[i]),
                ),
            }
        }
    }
    for _ in 0..purpose_names.len() {
        for i in 0..purpose_ancestry.len() {
            let mut a = purpose_ancestry[i];
            for j in super::bits(purpose_ancestry[i]) {
                a |= purpose_ancestry[j];
            }
            purpose_ancestry[i] = a;
        }
    }
    for (i, parent) in parents.iter().enumerate() {
        if let Some((p, at)) = parent
            && let Some(&pi) = names.purposes.get(p)
            && purpose_ancestry[pi] & (1 << i) != 0
        {
            l.at(
                *at,
                format!(
                    "purpose tree cycle through `{}` and `{p}`",
                    purpose_names[i]
                ),
            );
        }
    }

    // Rules.
    let mut rules = Vec::new();
    if let Some(list) = get(top, "rules") {
        match &list.value {
            Value::Array(items) => {
                if items.len() > MAX_RULES {
                    l.at(list.at, format!("more than {MAX_RULES} rules"));
                }
                let mut ids: HashMap<String, usize> = HashMap::default();
                for item in items.iter().take(MAX_RULES) {
                    if let Some(rule) = load_rule(&mut l, item, &names) {
                        if ids.insert(rule.id.clone(), item.at).is_some() {
                            l.at(item.at, format!("duplicate rule id `{}`", rule.id));
                        }
                        rules.push(rule);
                    }
                }
            }
            other => l.at(
                list.at,
                format!(
                    "`rules` must be an array of tables ([[rules]]), not {}",
                    other.type_name()
                ),
            ),
        }
    }

    // Rate limits.
    let mut rate_limits = Vec::new();
    if let Some(list) = get(top, "rate_limits") {
        match &list.value {
            Value::Array(items) => {
                for item in items.iter().take(1000) {
                    if let Some(limit) = load_rate_limit(&mut l, item, &names) {
                        rate_limits.push(limit);
                    }
                }
            }
            other => l.at(
                list.at,
                format!(
                    "`rate_limits` must be an array of tables, not {}",
                    other.type_name()
                ),
            ),
        }
    }

    if !l.problems.is_empty() {
        return Err(Error::Policy {
            problems: DocumentProblems(l.problems),
        });
    }

    let canonical = canonical(&root).to_string();
    let version: Arc<str> = Arc::from(crate::crypto::sha256_hex(canonical.as_bytes()));

    // Distinct conditions numbered, so that a decision evaluates each once.
    let mut distinct: HashMap<String, u32> = HashMap::default();
    for rule in &mut rules {
        rule.when_ids = rule
            .when
            .iter()
            .map(|c| {
                let next = u32::try_from(distinct.len()).unwrap_or(u32::MAX);
                *distinct.entry(format!("{c:?}")).or_insert(next)
            })
            .collect();
    }
    let conditions = distinct.len();

    // The index: rules by role and action; rules for every role apart.
    let mut index = vec![Vec::new(); role_names.len() * 6];
    let mut any_role: [Vec<u16>; 6] = Default::default();
    for (i, rule) in rules.iter().enumerate() {
        let i = u16::try_from(i).unwrap_or(u16::MAX);
        for action in Action::ALL {
            if rule.actions & action.bit() == 0 {
                continue;
            }
            match rule.roles {
                None => any_role[action as usize].push(i),
                Some(roles) => {
                    for r in super::bits(roles) {
                        index[r * 6 + action as usize].push(i);
                    }
                }
            }
        }
    }

    let slot_of = names
        .slots
        .iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), i))
        .collect();
    Ok(Policy {
        name,
        version,
        schema_name: schema.name().to_owned(),
        rules,
        rate_limits,
        roles: names.roles,
        role_names,
        role_closure,
        purposes: names.purposes,
        purpose_names,
        purpose_ancestry,
        attributes: names.attributes,
        custom_slot: FIELD_PATTERNS.len() - 1,
        slot_category: names.slot_category,
        slot_mask,
        slots: names.slots,
        slot_of,
        index,
        any_role,
        conditions,
        plans: Default::default(),
    })
}

fn schema_custom(schema: &Schema) -> Vec<(String, ())> {
    schema
        .declared_custom()
        .map(|(k, _)| (k.clone(), ()))
        .collect()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Matches a field selector against a slot pattern: `*` stands for any run of characters.
fn glob(selector: &str, pattern: &str) -> bool {
    match selector.split_once('*') {
        None => selector == pattern,
        Some((head, tail)) => {
            pattern.starts_with(head)
                && (tail.is_empty() && pattern.len() >= head.len()
                    || (head.len()..=pattern.len()).any(|i| glob(tail, &pattern[i..])))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", "bank_accounts[].account_number"));
        assert!(glob("bank_accounts[].*", "bank_accounts[].account_number"));
        assert!(!glob("bank_accounts[].*", "phones[]"));
        assert!(glob("custom.*", "custom.*"));
        assert!(glob("custom.*", "custom.vip"));
        assert!(glob("*number", "id_documents[].number"));
        assert!(!glob("name", "names"));
    }

    #[test]
    fn windows() {
        assert_eq!(parse_window("1h"), Some(3600));
        assert_eq!(parse_window("30m"), Some(1800));
        assert_eq!(parse_window("1d"), Some(86_400));
        assert_eq!(parse_window("90s"), Some(90));
        assert_eq!(parse_window("0s"), None);
        assert_eq!(parse_window("1y"), None);
        assert_eq!(parse_window("h"), None);
        assert_eq!(parse_window("40d"), None);
    }
}
