//! Rules, their field sets and conditions, and rate limits: the parts of a policy document
//! below the top-level tables.

use super::*;

pub(super) fn field_set(l: &mut Loader<'_>, node: &Node, names: &Names) -> FieldSet {
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

pub(super) fn load_rule(l: &mut Loader<'_>, node: &Node, names: &Names) -> Option<Rule> {
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
        when_ids: Vec::new(),
        valid_from,
        valid_until,
        mask,
        audit_detail,
        require,
        line,
    })
}

pub(super) fn attr_ref(
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

pub(super) fn literal(
    l: &mut Loader<'_>,
    node: &Node,
    ty: AttrType,
    what: &str,
) -> Option<Literal> {
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

pub(super) const CONDITION_OPS: &[&str] = &[
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

pub(super) fn condition(
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

pub(super) fn load_rate_limit(l: &mut Loader<'_>, node: &Node, names: &Names) -> Option<RateLimit> {
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
