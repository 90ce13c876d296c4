//! A small spanned document tree, read from TOML or JSON, so that the policy loader can report
//! every problem at once with its line and column whatever the format.

use crate::error::{Error, Format, Result, line_column_at};

/// Deepest nesting of arrays and tables accepted in a policy document.
pub const MAX_POLICY_NESTING: usize = 32;

/// One value with the byte offset where it starts.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) at: usize,
    pub(crate) value: Value,
}

#[derive(Clone, Debug)]
pub(crate) enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A TOML date-time, as its RFC 3339 text.
    Datetime(String),
    Array(Vec<Node>),
    Table(Vec<(Key, Node)>),
}

#[derive(Clone, Debug)]
pub(crate) struct Key {
    pub(crate) at: usize,
    pub(crate) name: String,
}

impl Value {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Datetime(_) => "a date-time",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }
}

/// Refuses documents nested deeper than `max` before any parser recurses into them.
fn check_nesting(text: &str, format: Format, max: usize) -> Result<()> {
    let mut depth = 0usize;
    let mut in_string: Option<u8> = None;
    let mut escaped = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match in_string {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if b == b'\\' && q == b'"' {
                    escaped = true;
                } else if b == q {
                    in_string = None;
                }
            }
            None => match b {
                b'"' | b'\'' if format == Format::Toml || b == b'"' => in_string = Some(b),
                b'#' if format == Format::Toml => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b'[' | b'{' => {
                    depth += 1;
                    if depth > max {
                        return Err(Error::LimitExceeded {
                            what: "policy document nesting".into(),
                            limit: max,
                            unit: "levels",
                        });
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        i += 1;
    }
    Ok(())
}

/// Reads a TOML document.
pub(crate) fn parse_toml(text: &str, what: &'static str) -> Result<Node> {
    check_nesting(text, Format::Toml, MAX_POLICY_NESTING)?;
    let root =
        toml::de::DeTable::parse(text).map_err(|e| crate::record::toml_error(what, text, &e))?;
    let at = root.span().start;
    Ok(Node {
        at,
        value: toml_table(root.get_ref(), what, text)?,
    })
}

fn toml_table(table: &toml::de::DeTable<'_>, what: &'static str, text: &str) -> Result<Value> {
    let mut out = Vec::with_capacity(table.len());
    for (k, v) in table.iter() {
        let key = Key {
            at: k.span().start,
            name: k.get_ref().to_string(),
        };
        out.push((
            key,
            Node {
                at: v.span().start,
                value: toml_value(v.get_ref(), what, text, v.span().start)?,
            },
        ));
    }
    Ok(Value::Table(out))
}

fn toml_value(
    v: &toml::de::DeValue<'_>,
    what: &'static str,
    text: &str,
    at: usize,
) -> Result<Value> {
    use toml::de::DeValue;
    let bad_number = || {
        let (line, column) = line_column_at(text, at);
        Error::Malformed {
            what,
            format: Format::Toml,
            line,
            column,
            reason: "number out of range".into(),
        }
    };
    Ok(match v {
        DeValue::String(s) => Value::Str(s.to_string()),
        DeValue::Integer(i) => {
            let digits: String = i.as_str().chars().filter(|c| *c != '_').collect();
            let (neg, digits) = match digits.strip_prefix('-') {
                Some(d) => (true, d.to_owned()),
                None => (false, digits.trim_start_matches('+').to_owned()),
            };
            let digits = digits
                .trim_start_matches("0x")
                .trim_start_matches("0o")
                .trim_start_matches("0b");
            let n = i64::from_str_radix(digits, i.radix()).map_err(|_| bad_number())?;
            Value::Int(if neg { -n } else { n })
        }
        DeValue::Float(f) => {
            let s: String = f.as_str().chars().filter(|c| *c != '_').collect();
            let n: f64 = s.parse().map_err(|_| bad_number())?;
            if !n.is_finite() {
                return Err(bad_number());
            }
            Value::Float(n)
        }
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::Datetime(d.to_string()),
        DeValue::Array(items) => {
            let mut out = Vec::new();
            for item in items.iter() {
                out.push(Node {
                    at: item.span().start,
                    value: toml_value(item.get_ref(), what, text, item.span().start)?,
                });
            }
            Value::Array(out)
        }
        DeValue::Table(t) => toml_table(t, what, text)?,
    })
}

/// Reads a JSON document (RFC 8259), keeping the offset of every value and key.
pub(crate) fn parse_json(text: &str, what: &'static str) -> Result<Node> {
    check_nesting(text, Format::Json, MAX_POLICY_NESTING)?;
    // serde_json checks the syntax and gives good messages; the walk below then only has to
    // record positions in text known to be valid JSON.
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        return Err(crate::record::json_error(what, &e, ""));
    }
    let mut r = JsonReader {
        text,
        bytes: text.as_bytes(),
        i: 0,
        what,
    };
    r.skip_ws();
    let node = r.value()?;
    Ok(node)
}

struct JsonReader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    i: usize,
    what: &'static str,
}

impl JsonReader<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.bytes.len()
            && matches!(self.bytes[self.i], b' ' | b'\t' | b'\n' | b'\r')
        {
            self.i += 1;
        }
    }

    fn fail(&self, reason: &str) -> Error {
        let (line, column) = line_column_at(self.text, self.i);
        Error::Malformed {
            what: self.what,
            format: Format::Json,
            line,
            column,
            reason: reason.into(),
        }
    }

    fn expect(&mut self, b: u8) -> Result<()> {
        self.skip_ws();
        if self.bytes.get(self.i) == Some(&b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.fail("unexpected character"))
        }
    }

    fn value(&mut self) -> Result<Node> {
        self.skip_ws();
        let at = self.i;
        let value = match self.bytes.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut entries = Vec::new();
                self.skip_ws();
                if self.bytes.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.skip_ws();
                        let key_at = self.i;
                        let name = self.string()?;
                        self.expect(b':')?;
                        let v = self.value()?;
                        entries.push((Key { at: key_at, name }, v));
                        self.skip_ws();
                        match self.bytes.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.fail("expected `,` or `}`")),
                        }
                    }
                }
                Value::Table(entries)
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.bytes.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        items.push(self.value()?);
                        self.skip_ws();
                        match self.bytes.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.fail("expected `,` or `]`")),
                        }
                    }
                }
                Value::Array(items)
            }
            Some(b'"') => Value::Str(self.string()?),
            Some(b't') if self.text[self.i..].starts_with("true") => {
                self.i += 4;
                Value::Bool(true)
            }
            Some(b'f') if self.text[self.i..].starts_with("false") => {
                self.i += 5;
                Value::Bool(false)
            }
            Some(b'n') if self.text[self.i..].starts_with("null") => {
                return Err(self.fail("null is not allowed in a policy; leave the key out"));
            }
            Some(_) => {
                let start = self.i;
                while self.i < self.bytes.len()
                    && matches!(
                        self.bytes[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                let s = &self.text[start..self.i];
                if let Ok(n) = s.parse::<i64>() {
                    Value::Int(n)
                } else {
                    match s.parse::<f64>() {
                        Ok(f) if f.is_finite() => Value::Float(f),
                        _ => return Err(self.fail("number out of range")),
                    }
                }
            }
            None => return Err(self.fail("unexpected end of input")),
        };
        Ok(Node { at, value })
    }

    fn string(&mut self) -> Result<String> {
        self.skip_ws();
        let start = self.i;
        if self.bytes.get(self.i) != Some(&b'"') {
            return Err(self.fail("expected a string"));
        }
        self.i += 1;
        while self.i < self.bytes.len() {
            match self.bytes[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    // The text was checked by serde_json: the literal decodes.
                    return serde_json::from_str(&self.text[start..self.i])
                        .map_err(|_| self.fail("invalid string"));
                }
                _ => self.i += 1,
            }
        }
        Err(self.fail("unterminated string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: &Node) -> Vec<String> {
        match &n.value {
            Value::Table(t) => t.iter().map(|(k, _)| k.name.clone()).collect(),
            _ => vec![],
        }
    }

    #[test]
    fn toml_and_json_give_the_same_tree_with_positions() {
        let t = parse_toml("a = 1\n[b]\nc = [\"x\", 2.5, true]\n", "doc").unwrap();
        let j = parse_json("{\"a\": 1,\n \"b\": {\"c\": [\"x\", 2.5, true]}}", "doc").unwrap();
        assert_eq!(keys(&t), vec!["a", "b"]);
        assert_eq!(keys(&j), vec!["a", "b"]);
        let Value::Table(jt) = &j.value else { panic!() };
        assert_eq!(
            line_column_at(
                "{\"a\": 1,\n \"b\": {\"c\": [\"x\", 2.5, true]}}",
                jt[1].0.at
            ),
            (2, 2)
        );
    }

    #[test]
    fn nesting_is_bounded_before_parsing() {
        let deep = format!("a = {}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            parse_toml(&deep, "doc").unwrap_err().kind(),
            crate::ErrorKind::LimitExceeded
        );
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            parse_json(&deep, "doc").unwrap_err().kind(),
            crate::ErrorKind::LimitExceeded
        );
        // Brackets inside strings and comments do not count.
        assert!(
            parse_toml(
                &format!("a = \"{}\" # {}\n", "[".repeat(100), "{".repeat(100)),
                "doc"
            )
            .is_ok()
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        match parse_toml("a = 1\nb = \n", "doc").unwrap_err() {
            Error::Malformed { line, .. } => assert_eq!(line, 2),
            e => panic!("{e:?}"),
        }
        match parse_json("{\"a\": 1,\n \"b\": }", "doc").unwrap_err() {
            Error::Malformed { line, .. } => assert_eq!(line, 2),
            e => panic!("{e:?}"),
        }
        assert!(parse_json("{\"a\": null}", "doc").is_err());
    }
}
