//! Field paths (`bank_accounts[0].account_number`) and schema patterns (`bank_accounts[].account_number`).

use std::fmt;

use crate::error::{Error, Result};

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A named member (`name`, `bank_accounts`, a custom key).
    Key(String),
    /// A list position, from 0.
    Index(usize),
}

/// The address of one value in a customer record, e.g. `phones[1]` or
/// `bank_accounts[0].account_number`. Paths are structure, not data: they may be logged.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(Vec<Segment>);

/// The longest field path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 256;

impl FieldPath {
    /// Builds a path from segments.
    pub fn from_segments(segments: Vec<Segment>) -> Self {
        FieldPath(segments)
    }

    /// A one-segment path.
    pub fn key(name: &str) -> Self {
        FieldPath(vec![Segment::Key(name.to_owned())])
    }

    /// This path with a member appended.
    pub fn child(&self, name: &str) -> Self {
        let mut s = self.0.clone();
        s.push(Segment::Key(name.to_owned()));
        FieldPath(s)
    }

    /// This path with a list position appended.
    pub fn at(&self, index: usize) -> Self {
        let mut s = self.0.clone();
        s.push(Segment::Index(index));
        FieldPath(s)
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// Parses `a.b[3].c`. Keys are ASCII letters, digits and `_`; indexes are decimal.
    pub fn parse(text: &str) -> Result<Self> {
        parse_segments(text, false).map(|(segs, _)| FieldPath(segs))
    }

    /// The schema key of this path: every index replaced by `[]` (`phones[]`).
    pub fn pattern_key(&self) -> String {
        let mut out = String::new();
        for seg in &self.0 {
            match seg {
                Segment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Index(_) => out.push_str("[]"),
            }
        }
        out
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldPath({self})")
    }
}

impl std::str::FromStr for FieldPath {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl serde::Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A path's text as an envelope keeps it: the common paths of the schema's own fields
/// (`name`, `phones[0]`, `id_documents[1].number`) are text shared by every envelope, made once
/// for the process, and any other path (a custom field, a long list, one read from JSON) is its
/// own. It compares, orders and hashes as its text, so maps keyed by it are looked up by `&str`
/// and kept in the same order as before.
#[derive(Clone)]
pub(crate) enum PathText {
    Shared(&'static str),
    Owned(Box<str>),
}

impl PathText {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            PathText::Shared(s) => s,
            PathText::Owned(s) => s,
        }
    }
}

impl std::ops::Deref for PathText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for PathText {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for PathText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for PathText {}

impl PartialOrd for PathText {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathText {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for PathText {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Display for PathText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Paths are structure, not data.
impl fmt::Debug for PathText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<String> for PathText {
    fn from(s: String) -> Self {
        PathText::Owned(s.into_boxed_str())
    }
}

impl From<&str> for PathText {
    fn from(s: &str) -> Self {
        PathText::Owned(s.into())
    }
}

impl PartialEq<str> for PathText {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for PathText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Parses a path or, with `pattern`, a pattern in which `[]` stands for any index and a final
/// `*` for any key. Returns the segments (`[]` as `Index(usize::MAX)`, `*` as `Key("*")`).
pub(crate) fn parse_segments(text: &str, pattern: bool) -> Result<(Vec<Segment>, bool)> {
    let bad = |reason: &str| Error::InvalidArgument {
        name: "field path",
        reason: format!("`{}`: {reason}", truncate_for_message(text)),
    };
    if text.is_empty() {
        return Err(bad("empty path"));
    }
    if text.len() > MAX_PATH_LEN {
        return Err(Error::LimitExceeded {
            what: "field path".into(),
            limit: MAX_PATH_LEN,
            unit: "bytes",
        });
    }
    let bytes = text.as_bytes();
    let mut segs = Vec::new();
    let mut i = 0;
    let mut wildcard = false;
    let mut expect_key = true;
    while i < bytes.len() {
        match bytes[i] {
            b'[' => {
                if segs.is_empty() {
                    return Err(bad("a path starts with a name"));
                }
                let close = text[i..]
                    .find(']')
                    .map(|j| i + j)
                    .ok_or_else(|| bad("unclosed `[`"))?;
                let inner = &text[i + 1..close];
                if inner.is_empty() {
                    if !pattern {
                        return Err(bad("`[]` is only allowed in schema patterns"));
                    }
                    segs.push(Segment::Index(usize::MAX));
                } else {
                    if !inner.bytes().all(|b| b.is_ascii_digit()) || inner.len() > 6 {
                        return Err(bad("a list index is a decimal number below 1000000"));
                    }
                    if pattern {
                        return Err(bad("schema patterns use `[]`, not a position"));
                    }
                    segs.push(Segment::Index(
                        inner.parse().map_err(|_| bad("bad list index"))?,
                    ));
                }
                i = close + 1;
                expect_key = false;
            }
            b'.' => {
                if expect_key {
                    return Err(bad("empty name"));
                }
                expect_key = true;
                i += 1;
            }
            _ => {
                if !expect_key {
                    return Err(bad("expected `.` or `[` after a name or index"));
                }
                let end = text[i..].find(['.', '[']).map_or(text.len(), |j| i + j);
                let key = &text[i..end];
                if pattern && key == "*" {
                    if end != text.len() {
                        return Err(bad("`*` may only end a pattern"));
                    }
                    wildcard = true;
                } else if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(bad("names are ASCII letters, digits and `_`"));
                }
                segs.push(Segment::Key(key.to_owned()));
                i = end;
                expect_key = false;
            }
        }
    }
    if expect_key {
        return Err(bad("a path cannot end with `.`"));
    }
    Ok((segs, wildcard))
}

/// At most 64 characters of a caller-supplied identifier for an error message, with control
/// characters escaped. Only used for structural text (keys, paths), never for values.
pub(crate) fn truncate_for_message(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(64)
        .flat_map(char::escape_default)
        .collect();
    if text.chars().count() > 64 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shared and owned texts are the same key: a map holding both is ordered, and found by
    /// `&str`, exactly as a map of strings is (the envelope's MAC and JSON follow its order).
    #[test]
    fn path_texts_order_and_compare_as_their_text() {
        let texts = [
            "phones[1]",
            "phones[0]",
            "custom.a",
            "name",
            "phones[10]",
            "emails[0]",
        ];
        let mixed: std::collections::BTreeMap<PathText, usize> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let key = if i % 2 == 0 {
                    PathText::Shared(t)
                } else {
                    PathText::from(*t)
                };
                (key, i)
            })
            .collect();
        let plain: std::collections::BTreeMap<String, usize> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| ((*t).to_owned(), i))
            .collect();
        assert!(
            mixed
                .iter()
                .map(|(k, v)| (k.as_str(), *v))
                .eq(plain.iter().map(|(k, v)| (k.as_str(), *v)))
        );
        for t in texts {
            assert_eq!(mixed.get(t), plain.get(t), "{t}");
            assert_eq!(PathText::Shared(t), PathText::from(t));
            assert_eq!(format!("{:?}", PathText::Shared(t)), format!("{t:?}"));
        }
        assert_eq!(mixed.get("phones[2]"), None);
    }

    #[test]
    fn parses_and_displays() {
        for p in [
            "name",
            "phones[0]",
            "bank_accounts[12].account_number",
            "custom.vip_level",
        ] {
            assert_eq!(FieldPath::parse(p).unwrap().to_string(), p);
        }
        let p = FieldPath::parse("bank_accounts[3].account_number").unwrap();
        assert_eq!(p.pattern_key(), "bank_accounts[].account_number");
    }

    #[test]
    fn rejects_bad_paths() {
        for p in [
            "", ".a", "a.", "a..b", "[0]", "a[", "a[x]", "a[]", "a b", "a[0]b", "a[-1]", "张三",
        ] {
            assert!(FieldPath::parse(p).is_err(), "{p}");
        }
        assert!(FieldPath::parse(&"a".repeat(300)).is_err());
    }

    #[test]
    fn patterns() {
        let (segs, wild) = parse_segments("custom.*", true).unwrap();
        assert!(wild);
        assert_eq!(segs.len(), 2);
        assert!(parse_segments("phones[]", true).is_ok());
        assert!(parse_segments("phones[0]", true).is_err());
        assert!(parse_segments("custom.*.x", true).is_err());
    }
}
