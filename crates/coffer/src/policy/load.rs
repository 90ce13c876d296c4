//! Loading a policy document: every key checked, every problem reported with its position.

use std::collections::HashMap;
use std::sync::Arc;

use time::OffsetDateTime;

use super::doc::{Key, Node, Value, parse_json, parse_toml};
use super::{
    Action, AttrRef, AttrType, BUILTIN_ATTRIBUTES, CmpOp, Cond, Effect, FieldSet, Literal,
    MaskChoice, Policy, RATE_READ, RATE_SEARCH, RateLimit, Requirement, Rule,
};
use crate::error::{DocumentProblem, DocumentProblems, Error, Format, Result, line_column_at};
use crate::mask::{MaskOperator, MaskRule, Profile};
use crate::record::{Classification, FIELD_PATTERNS, Schema};

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
    use time::format_description::well_known::{Iso8601, Rfc3339};
    OffsetDateTime::parse(text, &Rfc3339).ok().or_else(|| {
        time::Date::parse(text, &Iso8601::DATE)
            .ok()
            .map(|d| d.midnight().assume_utc())
    })
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
        roles: HashMap::new(),
        purposes: HashMap::new(),
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
                let mut ids: HashMap<String, usize> = HashMap::new();
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

fn field_set(l: &mut Loader<'_>, node: &Node, names: &Names) -> FieldSet {
    let mut set: FieldSet = 0;
    for (sel, at) in l.str_list(node, "`fields`") {
        let mut hit: FieldSet = 0;
        if let Some(class) = sel.strip_prefix("class:") {
            match Classification::parse(class) {
                Some(c) => {
                    for (i, sc) in names.slot_class.iter().enumerate() {
                        if *sc == c {
                            hit |= 1 << i;
                        }
                    }
                }
                None => {
                    l.at(at, format!("unknown classification `{class}`; expected public, internal, personal or sensitive"));
                    continue;
                }
            }
        } else if let Some(cat) = sel.strip_prefix("category:") {
            for (i, sc) in names.slot_category.iter().enumerate() {
                if sc == cat {
                    hit |= 1 << i;
                }
            }
        } else if sel.contains(|c: char| c.is_ascii_digit()) && sel.contains('[') {
            l.at(at, format!("field `{sel}`: policies address every element of a list with `[]` (e.g. `phones[]`)"));
            continue;
        } else {
            for (i, pattern) in names.slots.iter().enumerate() {
                if glob(sel, pattern) {
                    hit |= 1 << i;
                }
            }
        }
        if hit == 0 {
            l.at(
                at,
                format!("field selector `{sel}` matches no field of the schema"),
            );
        }
        set |= hit;
    }
    set
}

fn load_rule(l: &mut Loader<'_>, node: &Node, names: &Names) -> Option<Rule> {
    let t = l.table(node, "a rule")?;
    l.keys(
        t,
        &[
            "id",
            "effect",
            "description",
            "roles",
            "actions",
            "fields",
            "purposes",
            "when",
            "valid_from",
            "valid_until",
            "mask",
            "profile",
            "audit",
            "require",
        ],
        "a rule",
    );
    let before = l.problems.len();
    let id = match get(t, "id") {
        Some(n) => l.str(n, "`id`").map(str::to_owned),
        None => {
            l.at(node.at, "a rule needs an `id`".into());
            None
        }
    };
    let rule_name = id.clone().unwrap_or_else(|| "?".into());
    let effect = match get(t, "effect") {
        Some(n) => {
            match l.str(n, "`effect`") {
                Some("allow") => Some(Effect::Allow),
                Some("mask") => Some(Effect::Mask),
                Some("deny") => Some(Effect::Deny),
                Some(other) => {
                    l.at(n.at, format!("rule `{rule_name}`: unknown effect `{other}`; expected allow, mask or deny"));
                    None
                }
                None => None,
            }
        }
        None => {
            l.at(node.at, format!("rule `{rule_name}` needs an `effect`"));
            None
        }
    };
    let roles = get(t, "roles").map(|n| {
        let mut bits = 0u128;
        for (r, at) in l.str_list(n, "`roles`") {
            match names.roles.get(r) {
                Some(&i) => bits |= 1 << i,
                None => l.at(at, format!("rule `{rule_name}`: unknown role `{r}`")),
            }
        }
        bits
    });
    let mut actions = 0u8;
    match get(t, "actions") {
        Some(n) => {
            for (a, at) in l.str_list(n, "`actions`") {
                match Action::parse(a) {
                    Some(a) => actions |= a.bit(),
                    None => l.at(at, format!("rule `{rule_name}`: unknown action `{a}`; expected read, search, write, export, erase or admin")),
                }
            }
        }
        None => l.at(node.at, format!("rule `{rule_name}` needs `actions`")),
    }
    let fields = match get(t, "fields") {
        Some(n) => field_set(l, n, names),
        None => {
            l.at(
                node.at,
                format!("rule `{rule_name}` needs `fields` (use [\"*\"] for every field)"),
            );
            0
        }
    };
    let mut purposes = 0u128;
    if let Some(n) = get(t, "purposes") {
        let listed = l.str_list(n, "`purposes`");
        // An empty list would read as "no purpose restriction": on an allow rule that grants
        // every purpose (the opposite of what it says), so it is refused on every rule.
        if matches!(&n.value, Value::Array(items) if items.is_empty()) {
            let hint = if effect == Some(Effect::Allow) {
                "an allow rule must name the purposes it serves (PIPL art. 6)"
            } else {
                "omit `purposes` to cover every purpose"
            };
            l.at(
                n.at,
                format!("rule `{rule_name}`: `purposes` is empty; {hint}"),
            );
        }
        for (p, at) in listed {
            match names.purposes.get(p) {
                Some(&i) => purposes |= 1 << i,
                None => l.at(at, format!("rule `{rule_name}`: unknown purpose `{p}`")),
            }
        }
    }
    if effect == Some(Effect::Allow) && purposes == 0 && get(t, "purposes").is_none() {
        l.at(
            node.at,
            format!("allow rule `{rule_name}` must name the purposes it serves (PIPL art. 6)"),
        );
    }
    let mut when = Vec::new();
    if let Some(n) = get(t, "when") {
        let mut budget = MAX_CONDITIONS_PER_RULE;
        match &n.value {
            Value::Array(items) => {
                for item in items {
                    if let Some(c) = condition(l, item, names, &mut budget, &rule_name) {
                        when.push(c);
                    }
                }
            }
            _ => {
                if let Some(c) = condition(l, n, names, &mut budget, &rule_name) {
                    when.push(c);
                }
            }
        }
    }
    let valid_from = get(t, "valid_from").and_then(|n| l.time(n, "`valid_from`"));
    let valid_until = get(t, "valid_until").and_then(|n| l.time(n, "`valid_until`"));
    if let (Some(f), Some(u), Some(n)) = (valid_from, valid_until, get(t, "valid_until"))
        && u <= f
    {
        l.at(
            n.at,
            format!("rule `{rule_name}`: `valid_until` must be after `valid_from`"),
        );
    }
    let mut mask = None;
    let mask_node = get(t, "mask");
    let profile_node = get(t, "profile");
    if effect == Some(Effect::Mask) {
        let choice = match mask_node.map(|n| (n, l.str(n, "`mask`"))) {
            None | Some((_, Some("default"))) => Some(MaskChoice::SchemaDefault),
            Some((n, Some(name))) => match MaskRule::parse(name) {
                Some(r) if r.operator() == MaskOperator::Clear => {
                    l.at(
                        n.at,
                        format!("rule `{rule_name}`: a mask rule cannot reveal; use an allow rule"),
                    );
                    None
                }
                Some(r) => Some(MaskChoice::Rule(r)),
                None => {
                    l.at(n.at, format!("rule `{rule_name}`: unknown mask `{name}`"));
                    None
                }
            },
            Some((_, None)) => None,
        };
        let profile = match profile_node.map(|n| (n, l.str(n, "`profile`"))) {
            None => Some(Profile::Standard),
            Some((n, Some(p))) => {
                let parsed = Profile::parse(p);
                if parsed.is_none() {
                    l.at(n.at, format!("rule `{rule_name}`: unknown profile `{p}`; expected standard or privileged"));
                }
                parsed
            }
            Some((_, None)) => None,
        };
        if let (Some(c), Some(p)) = (choice, profile) {
            mask = Some((c, p));
        }
    } else {
        for (key, n) in [("mask", mask_node), ("profile", profile_node)] {
            if let Some(n) = n {
                l.at(
                    n.at,
                    format!("rule `{rule_name}`: `{key}` belongs to mask rules only"),
                );
            }
        }
    }
    let audit_detail = match get(t, "audit") {
        None => false,
        Some(n) => match l.str(n, "`audit`") {
            Some("detail") => true,
            Some("summary") => false,
            Some(other) => {
                l.at(n.at, format!("rule `{rule_name}`: unknown audit level `{other}`; expected detail or summary"));
                false
            }
            None => false,
        },
    };
    let mut require = 0u8;
    if let Some(n) = get(t, "require") {
        if effect != Some(Effect::Allow) {
            l.at(
                n.at,
                format!("rule `{rule_name}`: `require` belongs to allow rules only"),
            );
        }
        for (r, at) in l.str_list(n, "`require`") {
            match r {
                "ticket" => require |= Requirement::Ticket.bit(),
                "second_approver" => require |= Requirement::SecondApprover.bit(),
                other => l.at(at, format!("rule `{rule_name}`: unknown requirement `{other}`; expected ticket or second_approver")),
            }
        }
    }
    if let Some(d) = get(t, "description") {
        l.str(d, "`description`");
    }
    if l.problems.len() > before {
        return None;
    }
    let (line, _) = line_column_at(l.text, node.at);
    Some(Rule {
        id: id?,
        effect: effect?,
        roles,
        actions,
        fields,
        purposes,
        when,
        valid_from,
        valid_until,
        mask,
        audit_detail,
        require,
        line,
    })
}

fn attr_ref(
    l: &mut Loader<'_>,
    name: &str,
    at: usize,
    names: &Names,
) -> Option<(AttrRef, AttrType)> {
    let Some(&ty) = names.attributes.get(name) else {
        l.at(
            at,
            format!("unknown attribute `{name}`; declare it under [attributes] with its type"),
        );
        return None;
    };
    let r = match name {
        "principal.id" => AttrRef::PrincipalId,
        "principal.tenant" => AttrRef::PrincipalTenant,
        "principal.roles" => AttrRef::PrincipalRoles,
        "record.tenant" => AttrRef::RecordTenant,
        "record.kind" => AttrRef::RecordKind,
        "record.region" => AttrRef::RecordRegion,
        "record.subject" => AttrRef::RecordSubject,
        "context.time" => AttrRef::ContextTime,
        "context.hour" => AttrRef::ContextHour,
        "context.weekday" => AttrRef::ContextWeekday,
        "context.destination_region" => AttrRef::ContextDestinationRegion,
        "context.ticket" => AttrRef::ContextTicket,
        "context.second_approver" => AttrRef::ContextSecondApprover,
        "context.client" => AttrRef::ContextClient,
        other => {
            let (scope, rest) = other.split_once('.')?;
            match scope {
                "principal" => AttrRef::Principal(rest.to_owned()),
                "record" => AttrRef::Record(rest.to_owned()),
                _ => AttrRef::Context(rest.to_owned()),
            }
        }
    };
    Some((r, ty))
}

fn literal(l: &mut Loader<'_>, node: &Node, ty: AttrType, what: &str) -> Option<Literal> {
    let lit = match (&node.value, ty) {
        (Value::Str(s), AttrType::String | AttrType::Set) => Some(Literal::String(s.clone())),
        (Value::Int(i), AttrType::Number) => Some(Literal::Number(*i as f64)),
        (Value::Float(f), AttrType::Number) => Some(Literal::Number(*f)),
        (Value::Bool(b), AttrType::Bool) => Some(Literal::Bool(*b)),
        (Value::Datetime(s) | Value::Str(s), AttrType::Time) => parse_time(s).map(Literal::Time),
        _ => None,
    };
    if lit.is_none() {
        l.at(
            node.at,
            format!(
                "{what}: expected a {} value, found {}",
                ty.as_str(),
                node.value.type_name()
            ),
        );
    }
    lit
}

const CONDITION_OPS: &[&str] = &[
    "eq",
    "ne",
    "in",
    "not_in",
    "lt",
    "le",
    "gt",
    "ge",
    "present",
    "contains",
    "not_contains",
    "eq_attr",
    "ne_attr",
];

fn condition(
    l: &mut Loader<'_>,
    node: &Node,
    names: &Names,
    budget: &mut usize,
    rule: &str,
) -> Option<Cond> {
    if *budget == 0 {
        l.at(
            node.at,
            format!("rule `{rule}` has more than {MAX_CONDITIONS_PER_RULE} conditions"),
        );
        return None;
    }
    *budget -= 1;
    let t = l.table(node, "a condition")?;
    let list = |l: &mut Loader<'_>, n: &Node, budget: &mut usize| -> Option<Vec<Cond>> {
        match &n.value {
            Value::Array(items) if !items.is_empty() => {
                let out: Vec<Cond> = items
                    .iter()
                    .filter_map(|i| condition(l, i, names, budget, rule))
                    .collect();
                (out.len() == items.len()).then_some(out)
            }
            _ => {
                l.at(
                    n.at,
                    "`all` and `any` take a non-empty array of conditions".into(),
                );
                None
            }
        }
    };
    if let Some(n) = get(t, "all") {
        l.keys(t, &["all"], "a condition");
        return list(l, n, budget).map(Cond::All);
    }
    if let Some(n) = get(t, "any") {
        l.keys(t, &["any"], "a condition");
        return list(l, n, budget).map(Cond::Any);
    }
    if let Some(n) = get(t, "not") {
        l.keys(t, &["not"], "a condition");
        return condition(l, n, names, budget, rule).map(|c| Cond::Not(Box::new(c)));
    }
    let mut allowed = vec!["attr"];
    allowed.extend_from_slice(CONDITION_OPS);
    l.keys(t, &allowed, "a condition");
    let Some(attr_node) = get(t, "attr") else {
        l.at(
            node.at,
            "a condition needs `attr` (or is `all`, `any` or `not`)".into(),
        );
        return None;
    };
    let attr_name = l.str(attr_node, "`attr`")?;
    let (attr, ty) = attr_ref(l, attr_name, attr_node.at, names)?;
    let ops: Vec<&(Key, Node)> = t
        .iter()
        .filter(|(k, _)| CONDITION_OPS.contains(&k.name.as_str()))
        .collect();
    let [(op, value)] = ops.as_slice() else {
        l.at(
            node.at,
            format!(
                "a condition on `{attr_name}` needs exactly one operator: {}",
                CONDITION_OPS.join(", ")
            ),
        );
        return None;
    };
    let what = format!("`{attr_name}` {}", op.name);
    match op.name.as_str() {
        "eq" | "ne" => {
            if ty == AttrType::Set || ty == AttrType::Time {
                l.at(
                    op.at,
                    format!(
                        "{what}: `{}` is not for {} attributes",
                        op.name,
                        ty.as_str()
                    ),
                );
                return None;
            }
            let lit = literal(l, value, ty, &what)?;
            Some(if op.name == "eq" {
                Cond::Eq(attr, lit)
            } else {
                Cond::Ne(attr, lit)
            })
        }
        "in" | "not_in" => {
            if ty == AttrType::Set || ty == AttrType::Time {
                l.at(
                    op.at,
                    format!(
                        "{what}: `{}` is not for {} attributes",
                        op.name,
                        ty.as_str()
                    ),
                );
                return None;
            }
            let Value::Array(items) = &value.value else {
                l.at(value.at, format!("{what}: expected an array"));
                return None;
            };
            let lits: Vec<Literal> = items
                .iter()
                .filter_map(|i| literal(l, i, ty, &what))
                .collect();
            if lits.len() != items.len() {
                return None;
            }
            Some(if op.name == "in" {
                Cond::In(attr, lits)
            } else {
                Cond::NotIn(attr, lits)
            })
        }
        "lt" | "le" | "gt" | "ge" => {
            if !matches!(ty, AttrType::Number | AttrType::Time) {
                l.at(
                    op.at,
                    format!("{what}: comparisons are for number and time attributes"),
                );
                return None;
            }
            let cmp = match op.name.as_str() {
                "lt" => CmpOp::Lt,
                "le" => CmpOp::Le,
                "gt" => CmpOp::Gt,
                _ => CmpOp::Ge,
            };
            Some(Cond::Cmp(attr, cmp, literal(l, value, ty, &what)?))
        }
        "present" => match value.value {
            Value::Bool(b) => Some(Cond::Present(attr, b)),
            _ => {
                l.at(value.at, format!("{what}: expected true or false"));
                None
            }
        },
        "contains" | "not_contains" => {
            if ty != AttrType::Set {
                l.at(
                    op.at,
                    format!("{what}: `{}` is for set attributes", op.name),
                );
                return None;
            }
            let s = l.str(value, &what)?.to_owned();
            Some(if op.name == "contains" {
                Cond::Contains(attr, s)
            } else {
                Cond::NotContains(attr, s)
            })
        }
        _ => {
            let other_name = l.str(value, &what)?;
            let (other, other_ty) = attr_ref(l, other_name, value.at, names)?;
            if other_ty != ty || ty == AttrType::Set {
                l.at(
                    value.at,
                    format!(
                        "{what}: `{attr_name}` and `{other_name}` must have the same, non-set type"
                    ),
                );
                return None;
            }
            Some(if op.name == "eq_attr" {
                Cond::EqAttr(attr, other)
            } else {
                Cond::NeAttr(attr, other)
            })
        }
    }
}

fn load_rate_limit(l: &mut Loader<'_>, node: &Node, names: &Names) -> Option<RateLimit> {
    let t = l.table(node, "a rate limit")?;
    l.keys(
        t,
        &[
            "id",
            "description",
            "roles",
            "actions",
            "fields",
            "max",
            "window",
        ],
        "a rate limit",
    );
    let before = l.problems.len();
    let id = get(t, "id")
        .and_then(|n| l.str(n, "`id`"))
        .map(str::to_owned);
    if id.is_none() {
        l.at(node.at, "a rate limit needs an `id`".into());
    }
    let roles = get(t, "roles").map(|n| {
        let mut bits = 0u128;
        for (r, at) in l.str_list(n, "`roles`") {
            match names.roles.get(r) {
                Some(&i) => bits |= 1 << i,
                None => l.at(at, format!("rate limit: unknown role `{r}`")),
            }
        }
        bits
    });
    // Reveals and searches both count by default: a search is a lookup of the value.
    let actions = match get(t, "actions") {
        None => RATE_READ | RATE_SEARCH,
        Some(n) => {
            let mut bits = 0u8;
            for (a, at) in l.str_list(n, "`actions`") {
                match a {
                    "read" => bits |= RATE_READ,
                    "search" => bits |= RATE_SEARCH,
                    _ => l.at(
                        at,
                        format!(
                            "rate limit: action `{a}` is not counted (use \"read\" or \"search\")"
                        ),
                    ),
                }
            }
            if bits == 0 {
                l.at(n.at, "rate limit: `actions` names no action".into());
            }
            bits
        }
    };
    let fields = match get(t, "fields") {
        Some(n) => field_set(l, n, names),
        None => {
            l.at(node.at, "a rate limit needs `fields`".into());
            0
        }
    };
    let max = match get(t, "max").map(|n| (n.at, &n.value)) {
        Some((_, Value::Int(m))) if (1..=1_000_000_000).contains(m) => u32::try_from(*m).ok(),
        Some((at, _)) => {
            l.at(at, "`max` must be an integer from 1 to 1000000000".into());
            None
        }
        None => {
            l.at(node.at, "a rate limit needs `max`".into());
            None
        }
    };
    let window_secs = match get(t, "window") {
        Some(n) => {
            let parsed = l.str(n, "`window`").and_then(parse_window);
            if parsed.is_none() {
                l.at(n.at, "`window` is a duration such as \"1h\", \"30m\", \"1d\" or \"3600s\", at most 31 days".into());
            }
            parsed
        }
        None => {
            l.at(node.at, "a rate limit needs `window`".into());
            None
        }
    };
    if l.problems.len() > before {
        return None;
    }
    Some(RateLimit {
        id: id?,
        roles,
        actions,
        fields,
        max: max?,
        window_secs: window_secs?,
    })
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
