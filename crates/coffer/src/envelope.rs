//! The sealed envelope: what the host stores for a record (see `docs/FORMAT.md`). Version 2
//! seals the masked display forms under a key derived from their category's data key, so
//! they die with it, and records which fields a redaction removed; version 1 (masked forms in
//! clear) is still read.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::crypto::{
    self, AeadKey, MacKey, MacWriter, SecretKey, from_b64url, hkdf32, hkdf32_each, integrity,
};
use crate::error::{Error, Result};
use crate::record::{CustomerKind, PathText, Sensitive};

/// The envelope format version this build writes, and the newest it reads (it reads 1 and 2
/// too).
pub const ENVELOPE_VERSION: u32 = 3;
/// Largest envelope accepted, in bytes.
pub const MAX_ENVELOPE_BYTES: usize = 4 * 1024 * 1024;

/// One sealed field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SealedField {
    /// Shared by every field and masked form of the category in one envelope (a record's
    /// dozen sealed items name two or three categories: a string each was a dozen allocations
    /// per seal, read and drop, and as many cache lines for a reveal to fetch).
    pub(crate) category: Arc<str>,
    pub(crate) counter: u32,
    pub(crate) ciphertext: Vec<u8>,
}

/// An envelope's items by path, in path order: a sorted vector rather than a `BTreeMap`. A
/// record has a few dozen paths at most in practice; a vector is one allocation to make and
/// free, is read front to back by the MAC, the JSON and the reveal, and is built by one sort
/// ([`path_map`], or `collect`: both keep the last of repeated paths, as `BTreeMap::insert`
/// does). Tree nodes, filled one insert at a time, were a tenth of a seal (issue 18, fifteenth
/// step).
pub(crate) type PathMap<V> = litemap::LiteMap<PathText, V>;

/// A field's blind-index tokens: index epoch (as text, the order the format sorts them in) →
/// token. One or two entries, so a vector; a `BTreeMap` allocated a node for eleven.
pub(crate) type Tokens = litemap::LiteMap<String, String>;

/// The [`PathMap`] of `items` in any order, sorted once; of repeated paths the last is kept.
pub(crate) fn path_map<V>(mut items: Vec<(PathText, V)>) -> PathMap<V> {
    // Stable, and for the few items of a record an insertion sort that allocates nothing.
    items.sort_by(|a, b| a.0.cmp(&b.0));
    // `dedup_by` keeps the first of a run; the later item's value goes into it first.
    items.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            std::mem::swap(&mut later.1, &mut kept.1);
        }
        same
    });
    PathMap::from_sorted_store_unchecked(items)
}

/// A sealed customer record. Its fields are encrypted per retention category; its clear fields,
/// blind-index tokens and masked display forms sit beside them; a MAC covers all of it, so a
/// changed bit anywhere is an integrity error. `Debug` shows structure, never values.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    pub(crate) tenant: String,
    pub(crate) record: String,
    pub(crate) subject: String,
    pub(crate) kind: CustomerKind,
    pub(crate) schema: String,
    pub(crate) salt: [u8; 16],
    /// Retention category → data-key version.
    pub(crate) keys: litemap::LiteMap<String, u32>,
    pub(crate) fields: PathMap<SealedField>,
    pub(crate) clear: PathMap<Sensitive>,
    pub(crate) index: PathMap<Tokens>,
    /// Version 1: standard masked forms in clear.
    pub(crate) masked: BTreeMap<String, String>,
    /// Version 2: standard masked forms sealed under their category's mask key.
    pub(crate) sealed_masks: PathMap<SealedField>,
    /// Version 2: fields a redaction removed (their category's key was destroyed): path →
    /// category.
    pub(crate) shredded: BTreeMap<String, String>,
    /// 1, 2 or 3.
    pub(crate) version: u32,
    pub(crate) mac: [u8; 32],
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("tenant", &self.tenant)
            .field("record", &self.record)
            .field("subject", &self.subject)
            .field("kind", &self.kind)
            .field("keys", &self.key_versions())
            .field("sealed", &self.fields.keys().collect::<Vec<_>>())
            .field("clear", &self.clear.keys().collect::<Vec<_>>())
            .field("indexed", &self.index.keys().collect::<Vec<_>>())
            .field("masked", &"[redacted]")
            .field("shredded", &self.shredded.keys().collect::<Vec<_>>())
            .field("version", &self.version)
            .finish()
    }
}

/// The base64 texts (ciphertexts, the salt, the MAC) are borrowed from the JSON being read
/// (they are decoded at once; a copy of each was an allocation per field for nothing).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireField<'a> {
    #[serde(borrow)]
    c: Cow<'a, str>,
    n: u32,
    #[serde(borrow)]
    ct: Cow<'a, str>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    coffer: u32,
    tenant: String,
    record: String,
    subject: String,
    kind: CustomerKind,
    schema: String,
    #[serde(borrow)]
    salt: Cow<'a, str>,
    keys: BTreeMap<String, u32>,
    #[serde(borrow)]
    fields: BTreeMap<String, WireField<'a>>,
    clear: BTreeMap<String, Sensitive>,
    index: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(borrow)]
    masked: BTreeMap<String, WireMask<'a>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    shredded: BTreeMap<String, String>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    mac: Option<Cow<'a, str>>,
}

/// A masked form: in clear (version 1) or sealed (versions 2 and 3).
#[derive(Serialize)]
#[serde(untagged)]
enum WireMask<'a> {
    Clear(String),
    Sealed(WireField<'a>),
}

/// Read by what the JSON holds: a string is a form in clear, an object a sealed field (as
/// `#[serde(untagged)]` would read them, without buffering each object into serde's
/// intermediate values first, which was a third of the allocations of reading an envelope).
impl<'de: 'a, 'a> Deserialize<'de> for WireMask<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Form<'a>(std::marker::PhantomData<WireMask<'a>>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Form<'a> {
            type Value = WireMask<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a masked form: a string, or a sealed field")
            }
            fn visit_str<E: serde::de::Error>(
                self,
                v: &str,
            ) -> std::result::Result<WireMask<'a>, E> {
                Ok(WireMask::Clear(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(
                self,
                v: String,
            ) -> std::result::Result<WireMask<'a>, E> {
                Ok(WireMask::Clear(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<WireMask<'a>, A::Error> {
                WireField::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(WireMask::Sealed)
            }
        }
        d.deserialize_any(Form(std::marker::PhantomData))
    }
}

/// Writes an envelope as its wire JSON straight into a byte buffer: the same text, key for
/// key and byte for byte, as serialising `Envelope::wire` with `serde_json` (a test holds the
/// two together), without serde's per-byte escaping of base64 and of names that need none
/// (through serde, writing an envelope was an eighth of `coffer seal`'s time).
struct JsonOut<'a>(&'a mut Vec<u8>);

impl JsonOut<'_> {
    fn raw(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    /// A JSON string: as it is when nothing in it needs escaping (the common case: names,
    /// paths, ids), otherwise through `serde_json`, so the escaping is always serde's.
    fn string(&mut self, s: &str) {
        if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            // Writing into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *self.0, s);
        } else {
            self.0.push(b'"');
            self.raw(s);
            self.0.push(b'"');
        }
    }

    /// `"key":`, with the separating comma unless it is the first of its object.
    fn key(&mut self, first: bool, k: &str) {
        if !first {
            self.0.push(b',');
        }
        self.string(k);
        self.0.push(b':');
    }

    fn number(&mut self, n: u32) {
        self.0
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    /// Bytes as a string of URL-safe base64 without padding, encoded in place.
    fn b64(&mut self, bytes: &[u8]) {
        use base64::Engine;
        const ENGINE: base64::engine::GeneralPurpose =
            base64::engine::general_purpose::URL_SAFE_NO_PAD;
        self.0.push(b'"');
        let at = self.0.len();
        let len = base64::encoded_len(bytes.len(), false).unwrap_or(0);
        self.0.resize(at + len, 0);
        let written = ENGINE.encode_slice(bytes, &mut self.0[at..]).unwrap_or(0);
        self.0.truncate(at + written);
        self.0.push(b'"');
    }

    /// A map of strings.
    fn strings<'v>(&mut self, map: impl IntoIterator<Item = (&'v str, &'v str)>) {
        self.0.push(b'{');
        for (i, (k, v)) in map.into_iter().enumerate() {
            self.key(i == 0, k);
            self.string(v);
        }
        self.0.push(b'}');
    }

    /// A map of sealed fields, each as `{"c": category, "n": counter, "ct": ciphertext}`.
    fn fields(&mut self, map: &PathMap<SealedField>) {
        self.0.push(b'{');
        for (i, (path, f)) in map.iter().enumerate() {
            self.key(i == 0, path);
            self.raw("{\"c\":");
            self.string(&f.category);
            self.raw(",\"n\":");
            self.number(f.counter);
            self.raw(",\"ct\":");
            self.b64(&f.ciphertext);
            self.0.push(b'}');
        }
        self.0.push(b'}');
    }

    fn envelope(&mut self, e: &Envelope) {
        self.raw("{\"coffer\":");
        self.number(e.version);
        self.raw(",\"tenant\":");
        self.string(&e.tenant);
        self.raw(",\"record\":");
        self.string(&e.record);
        self.raw(",\"subject\":");
        self.string(&e.subject);
        self.raw(",\"kind\":");
        self.string(e.kind.as_str());
        self.raw(",\"schema\":");
        self.string(&e.schema);
        self.raw(",\"salt\":");
        self.b64(&e.salt);
        self.raw(",\"keys\":{");
        for (i, (category, version)) in e.keys.iter().enumerate() {
            self.key(i == 0, category);
            self.number(*version);
        }
        self.raw("},\"fields\":");
        self.fields(&e.fields);
        self.raw(",\"clear\":");
        self.strings(e.clear.iter().map(|(p, v)| (p.as_str(), v.expose())));
        self.raw(",\"index\":{");
        for (i, (path, tokens)) in e.index.iter().enumerate() {
            self.key(i == 0, path);
            self.strings(tokens.iter().map(|(epoch, t)| (epoch.as_str(), t.as_str())));
        }
        self.raw("},\"masked\":");
        if e.version == 1 {
            self.strings(e.masked.iter().map(|(p, m)| (p.as_str(), m.as_str())));
        } else {
            self.fields(&e.sealed_masks);
        }
        if !e.shredded.is_empty() {
            self.raw(",\"shredded\":");
            self.strings(e.shredded.iter().map(|(p, c)| (p.as_str(), c.as_str())));
        }
        self.raw(",\"mac\":");
        self.b64(&e.mac);
        self.0.push(b'}');
    }
}

#[cfg(test)]
fn wire_field(f: &SealedField) -> WireField<'static> {
    WireField {
        c: Cow::Owned(f.category.to_string()),
        n: f.counter,
        ct: Cow::Owned(crypto::b64url(&f.ciphertext)),
    }
}

#[derive(Deserialize)]
struct VersionOnly {
    coffer: serde_json::Value,
}

impl Envelope {
    /// The envelope as [`Wire`]: what [`JsonOut`] writes, kept to check that it still does.
    #[cfg(test)]
    fn wire(&self) -> Wire<'static> {
        Wire {
            coffer: self.version,
            tenant: self.tenant.clone(),
            record: self.record.clone(),
            subject: self.subject.clone(),
            kind: self.kind,
            schema: self.schema.clone(),
            salt: Cow::Owned(crypto::b64url(&self.salt)),
            keys: self.key_versions(),
            fields: self
                .fields
                .iter()
                .map(|(p, f)| (p.to_string(), wire_field(f)))
                .collect(),
            clear: self
                .clear
                .iter()
                .map(|(p, v)| (p.to_string(), v.clone()))
                .collect(),
            index: self.index(),
            masked: if self.version == 1 {
                self.masked
                    .iter()
                    .map(|(p, m)| (p.clone(), WireMask::Clear(m.clone())))
                    .collect()
            } else {
                self.sealed_masks
                    .iter()
                    .map(|(p, f)| (p.to_string(), WireMask::Sealed(wire_field(f))))
                    .collect()
            },
            shredded: self.shredded.clone(),
            mac: Some(Cow::Owned(crypto::b64url(&self.mac))),
        }
    }

    /// Writes the bytes the MAC covers: every element of the envelope but the MAC, in a fixed
    /// order, each length-prefixed (a 4-byte big-endian length, then the bytes), ciphertexts
    /// and salt raw. Canonical without any JSON rules, and streamed into the MAC rather than
    /// gathered first.
    fn mac_feed(&self, b: &mut MacWriter) {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes();
        b.put(match self.version {
            1 => b"coffer/v1/envelope",
            2 => b"coffer/v2/envelope",
            _ => b"coffer/v3/envelope",
        });
        b.put(&self.version.to_be_bytes());
        for part in [&self.tenant, &self.record, &self.subject] {
            b.put(part.as_bytes());
        }
        b.put(self.kind.as_str().as_bytes());
        b.put(self.schema.as_bytes());
        b.put(&self.salt);
        b.put(&count(self.keys.len()));
        for (c, v) in &self.keys {
            b.put(c.as_bytes());
            b.put(&v.to_be_bytes());
        }
        b.put(&count(self.fields.len()));
        for (p, f) in &self.fields {
            b.put(p.as_bytes());
            b.put(f.category.as_bytes());
            b.put(&f.counter.to_be_bytes());
            b.put(&f.ciphertext);
        }
        b.put(&count(self.clear.len()));
        for (p, v) in &self.clear {
            b.put(p.as_bytes());
            b.put(v.expose().as_bytes());
        }
        b.put(&count(self.index.len()));
        for (p, epochs) in &self.index {
            b.put(p.as_bytes());
            b.put(&count(epochs.len()));
            for (e, t) in epochs {
                b.put(e.as_bytes());
                b.put(t.as_bytes());
            }
        }
        if self.version == 1 {
            b.put(&count(self.masked.len()));
            for (p, v) in &self.masked {
                b.put(p.as_bytes());
                b.put(v.as_bytes());
            }
        } else {
            b.put(&count(self.sealed_masks.len()));
            for (p, f) in &self.sealed_masks {
                b.put(p.as_bytes());
                b.put(f.category.as_bytes());
                b.put(&f.counter.to_be_bytes());
                b.put(&f.ciphertext);
            }
            b.put(&count(self.shredded.len()));
            for (p, c) in &self.shredded {
                b.put(p.as_bytes());
                b.put(c.as_bytes());
            }
        }
    }

    /// Asks the CPU to start loading the envelope's memory into its cache (every path,
    /// ciphertext, clear value, category and token) without waiting for any of it. A batch
    /// passes over a thousand envelopes several times (MACs, paths, decisions, views), each pass
    /// finding the last one's envelopes out of the cache; fetching the next envelope while the
    /// current one is worked on turns a chain of waits into one (issue 18, ninth and tenth
    /// steps).
    pub(crate) fn prefetch(&self) {
        self.prefetch_names();
        for c in self.keys.keys() {
            prefetch(c.as_bytes());
        }
        for (p, f) in self.fields.iter().chain(&self.sealed_masks) {
            prefetch(p.as_bytes());
            prefetch(f.category.as_bytes());
            prefetch(&f.ciphertext);
        }
        for (p, v) in &self.clear {
            prefetch(p.as_bytes());
            prefetch(v.expose().as_bytes());
        }
        for (p, t) in &self.index {
            prefetch(p.as_bytes());
            for (e, v) in t {
                prefetch(e.as_bytes());
                prefetch(v.as_bytes());
            }
        }
        for p in self.shredded.keys() {
            prefetch(p.as_bytes());
        }
    }

    /// [`Envelope::prefetch`] of the tenant, record and subject only (what deciding a reveal
    /// reads of an envelope).
    pub(crate) fn prefetch_names(&self) {
        for part in [&self.tenant, &self.record, &self.subject] {
            prefetch(part.as_bytes());
        }
    }

    pub(crate) fn compute_mac(&self, key: &MacKey) -> [u8; 32] {
        key.sign_with(|w| self.mac_feed(w))
    }

    pub(crate) fn check_mac(&self, key: &MacKey) -> Result<()> {
        if key.verify_with(|w| self.mac_feed(w), &self.mac) {
            Ok(())
        } else {
            Err(integrity("envelope"))
        }
    }

    /// The envelope as JSON text, what the host stores. (Clear fields and blind-index tokens
    /// are in it; sealed fields, and since version 2 masked forms, are not readable without the
    /// keys.)
    pub fn to_json(&self) -> zeroize::Zeroizing<String> {
        // Written into a buffer sized from a generous estimate of the text, so that growing
        // it (which leaves the old copy behind, unwiped) is rare.
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(self.json_size_hint()));
        JsonOut(&mut out).envelope(self);
        let bytes = std::mem::take(&mut *out);
        zeroize::Zeroizing::new(String::from_utf8(bytes).unwrap_or_default())
    }

    /// Room for the JSON text: every ciphertext grows by a third in base64, and each item
    /// has a few dozen bytes of names and punctuation.
    fn json_size_hint(&self) -> usize {
        let sealed: usize = self
            .fields
            .values()
            .chain(self.sealed_masks.values())
            .map(|f| f.ciphertext.len() * 4 / 3 + 48)
            .sum();
        let clear: usize = self
            .clear
            .iter()
            .map(|(p, v)| p.len() + v.expose().len() + 8)
            .sum();
        let index: usize = self.index.values().map(|t| t.len() * 64).sum();
        512 + sealed + clear + index + self.masked.len() * 64 + self.shredded.len() * 48
    }

    /// Reads an envelope (version 1, 2 or 3). A version this build does not read is
    /// [`Error::UnsupportedVersion`]; anything else that is not a well-formed envelope is
    /// [`Error::Integrity`]: an envelope is a sealed artefact, and damage to it is
    /// damage to its integrity. The MAC is checked when the envelope is opened.
    pub fn from_json(text: &str) -> Result<Envelope> {
        if text.len() > MAX_ENVELOPE_BYTES {
            return Err(Error::LimitExceeded {
                what: "envelope".into(),
                limit: MAX_ENVELOPE_BYTES,
                unit: "bytes",
            });
        }
        let wire: Wire<'_> = match serde_json::from_str(text) {
            Ok(w) => w,
            Err(_) => {
                if let Ok(v) = serde_json::from_str::<VersionOnly>(text)
                    && !v.coffer.as_u64().is_some_and(|n| (1..=3).contains(&n))
                {
                    return Err(Error::UnsupportedVersion {
                        what: format!(
                            "envelope version {}; this build reads versions 1 to {ENVELOPE_VERSION}",
                            v.coffer
                        ),
                    });
                }
                return Err(integrity("envelope (not a well-formed envelope)"));
            }
        };
        if !(1..=ENVELOPE_VERSION).contains(&wire.coffer) {
            return Err(Error::UnsupportedVersion {
                what: format!(
                    "envelope version {}; this build reads versions 1 to {ENVELOPE_VERSION}",
                    wire.coffer
                ),
            });
        }
        let bad = || integrity("envelope (bad encoding)");
        let salt: [u8; 16] = from_b64url(&wire.salt)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(bad)?;
        let mac: [u8; 32] = wire
            .mac
            .as_deref()
            .and_then(from_b64url)
            .and_then(|m| m.try_into().ok())
            .ok_or_else(bad)?;
        // Each category's name once for the envelope, shared by its fields and masked forms.
        let mut categories: Vec<Arc<str>> = Vec::new();
        let mut sealed = |f: WireField<'_>| -> Result<SealedField> {
            let category = match categories.iter().find(|c| ***c == *f.c) {
                Some(c) => Arc::clone(c),
                None => {
                    let c: Arc<str> = Arc::from(&*f.c);
                    categories.push(Arc::clone(&c));
                    c
                }
            };
            Ok(SealedField {
                ciphertext: from_b64url(&f.ct).ok_or_else(bad)?,
                category,
                counter: f.n,
            })
        };
        // The wire's maps are in path order: each insert lands at the end.
        let mut fields = PathMap::new();
        for (path, f) in wire.fields {
            fields.insert(PathText::from(path), sealed(f)?);
        }
        // Version 1 has masked forms in clear and nothing shredded; versions 2 and 3 sealed
        // forms.
        let (mut masked, mut sealed_masks) = (BTreeMap::new(), PathMap::new());
        for (path, m) in wire.masked {
            match (wire.coffer, m) {
                (1, WireMask::Clear(t)) => {
                    masked.insert(path, t);
                }
                (2 | 3, WireMask::Sealed(f)) => {
                    sealed_masks.insert(PathText::from(path), sealed(f)?);
                }
                _ => return Err(integrity("envelope (a masked form of the wrong version)")),
            }
        }
        if wire.coffer == 1 && !wire.shredded.is_empty() {
            return Err(integrity(
                "envelope (a version 1 envelope cannot be redacted)",
            ));
        }
        // A path is sealed, in clear or shredded: one of the three, never two (a reveal finds
        // each path's value where it gathered the path, and looks for it nowhere else).
        if !disjoint(
            fields.keys().map(|p| p.as_str()),
            wire.clear.keys().map(String::as_str),
        ) || !wire
            .shredded
            .keys()
            .all(|p| !fields.contains_key(p.as_str()) && !wire.clear.contains_key(p))
        {
            return Err(integrity("envelope (a path in two places)"));
        }
        Ok(Envelope {
            tenant: wire.tenant,
            record: wire.record,
            subject: wire.subject,
            kind: wire.kind,
            schema: wire.schema,
            salt,
            keys: wire.keys.into_iter().collect(),
            fields,
            clear: wire
                .clear
                .into_iter()
                .map(|(p, v)| (PathText::from(p), v))
                .collect(),
            index: wire
                .index
                .into_iter()
                .map(|(p, t)| (PathText::from(p), t.into_iter().collect()))
                .collect(),
            masked,
            sealed_masks,
            shredded: wire.shredded,
            version: wire.coffer,
            mac,
        })
    }

    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The record id.
    pub fn record(&self) -> &str {
        &self.record
    }

    /// The data subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Individual or company.
    pub fn kind(&self) -> CustomerKind {
        self.kind
    }

    /// The data-key version used per retention category (a map made for the call).
    pub fn key_versions(&self) -> BTreeMap<String, u32> {
        self.keys.iter().map(|(c, v)| (c.clone(), *v)).collect()
    }

    /// Blind-index tokens: field path → index epoch → token, for the host's indexed columns
    /// (a map made for the call; [`token`](Self::token) finds one without copying).
    pub fn index(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.index
            .iter()
            .map(|(p, t)| {
                let tokens = t.iter().map(|(e, t)| (e.clone(), t.clone())).collect();
                (p.to_string(), tokens)
            })
            .collect()
    }

    /// The blind-index token of the field at `path` under index epoch `epoch`, if the
    /// envelope has one.
    pub fn token(&self, path: &str, epoch: u32) -> Option<&str> {
        let mut digits = itoa::Buffer::new();
        self.index
            .get(path)?
            .get(digits.format(epoch))
            .map(String::as_str)
    }

    /// Masked display forms (standard profile) in clear: only version 1 envelopes have them
    /// (empty since version 2, whose masked forms are sealed and shown through a reveal whose
    /// decision is to mask). Still personal data (de-identified, not anonymous).
    pub fn masked(&self) -> &BTreeMap<String, String> {
        &self.masked
    }

    /// The envelope format version: 1, 2 or 3.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Fields a redaction removed because their category's key was destroyed: path →
    /// retention category.
    pub fn shredded(&self) -> &BTreeMap<String, String> {
        &self.shredded
    }

    /// Every field path the envelope holds, sealed, clear or shredded by a redaction.
    pub fn paths(&self) -> Vec<String> {
        let mut p: Vec<String> = self
            .fields
            .keys()
            .chain(self.clear.keys())
            .map(|p| p.to_string())
            .chain(self.shredded.keys().cloned())
            .collect();
        p.sort();
        p
    }

    /// Whether a standard masked form is stored for `path` (clear in version 1, sealed in 2).
    pub(crate) fn has_stored_mask(&self, path: &str) -> bool {
        self.masked.contains_key(path) || self.sealed_masks.contains_key(path)
    }
}

/// Whether two ascending sequences of paths have none in common (a walk through both, no
/// lookups).
fn disjoint<'a>(a: impl Iterator<Item = &'a str>, b: impl Iterator<Item = &'a str>) -> bool {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
        match x.cmp(y) {
            std::cmp::Ordering::Less => {
                a.next();
            }
            std::cmp::Ordering::Greater => {
                b.next();
            }
            std::cmp::Ordering::Equal => return false,
        }
    }
    true
}

/// A hint to the CPU to bring every cache line of `bytes` in: nothing is read into the
/// program and nothing can fault, so the bytes (values in clear among them) go nowhere but the
/// cache, where reading them would put them anyway. A no-op on other architectures.
#[allow(unsafe_code)]
#[inline]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: `prefetcht0` (SSE, baseline on x86-64) only hints the cache; it reads no
        // memory into a register, cannot fault even on a bad address, and this one is inside
        // `bytes`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// A data key, with the field and mask ciphers envelope version 3 derives from it once, on
/// first use, and keeps beside it: in the key cache they live and die with the key (a
/// destroyed key's entry goes, ciphers and all; the key bytes are wiped, the ciphers' key
/// schedules, held by `ring`, are not: see docs/SECURITY.md). Derefs to its [`SecretKey`].
pub(crate) struct DataKey {
    secret: SecretKey,
    ciphers: OnceLock<Option<KeyCiphers>>,
}

/// Version 3's ciphers of one data key: fields, and standard masked forms.
struct KeyCiphers {
    field: Arc<AeadKey>,
    mask: Arc<AeadKey>,
}

impl DataKey {
    pub(crate) fn new(secret: SecretKey) -> DataKey {
        DataKey {
            secret,
            ciphers: OnceLock::new(),
        }
    }

    /// `HKDF-SHA256(data key, no salt, lp("coffer/v3/field"))` and `… lp("coffer/v3/mask")`
    /// as AES-256-GCM keys, derived on first use.
    fn ciphers(&self) -> Result<&KeyCiphers> {
        self.ciphers
            .get_or_init(|| {
                let [field, mask] = hkdf32_each(
                    self.secret.expose(),
                    &[],
                    [&[b"coffer/v3/field"], &[b"coffer/v3/mask"]],
                )
                .ok()?;
                Some(KeyCiphers {
                    field: Arc::new(AeadKey::new(&field).ok()?),
                    mask: Arc::new(AeadKey::new(&mask).ok()?),
                })
            })
            .as_ref()
            .ok_or_else(|| Error::Internal {
                message: "deriving a data key's ciphers".into(),
            })
    }
}

impl std::ops::Deref for DataKey {
    type Target = SecretKey;
    fn deref(&self) -> &SecretKey {
        &self.secret
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

/// The record key of one retention category in one seal (versions 1 and 2):
/// `HKDF-SHA256(data key, salt, "coffer/v1/record" ‖ tenant ‖ record ‖ category)`, parts
/// length-prefixed.
fn record_key(
    data_key: &SecretKey,
    salt: &[u8; 16],
    tenant: &str,
    record: &str,
    category: &str,
) -> Result<SecretKey> {
    hkdf32(
        data_key.expose(),
        salt,
        &[
            b"coffer/v1/record",
            tenant.as_bytes(),
            record.as_bytes(),
            category.as_bytes(),
        ],
    )
}

/// The AES-256-GCM key of one retention category's fields in this envelope: version 3 its
/// data key's field cipher (the same for every envelope under that key); versions 1 and 2 a
/// record key derived from the data key and the envelope's salt.
pub(crate) fn field_cipher(
    env: &Envelope,
    data_key: &DataKey,
    category: &str,
) -> Result<Arc<AeadKey>> {
    if env.version >= 3 {
        return Ok(Arc::clone(&data_key.ciphers()?.field));
    }
    Ok(Arc::new(AeadKey::new(&record_key(
        data_key,
        &env.salt,
        &env.tenant,
        &env.record,
        category,
    )?)?))
}

/// The AES-256-GCM key of one retention category's sealed masked forms in this envelope:
/// version 3 its data key's mask cipher; version 2
/// `HKDF-SHA256(data key, salt, "coffer/v2/mask" ‖ tenant ‖ record ‖ category)`.
pub(crate) fn mask_cipher(
    env: &Envelope,
    data_key: &DataKey,
    category: &str,
) -> Result<Arc<AeadKey>> {
    if env.version >= 3 {
        return Ok(Arc::clone(&data_key.ciphers()?.mask));
    }
    Ok(Arc::new(AeadKey::new(&hkdf32(
        data_key.expose(),
        &env.salt,
        &[
            b"coffer/v2/mask",
            env.tenant.as_bytes(),
            env.record.as_bytes(),
            category.as_bytes(),
        ],
    )?)?))
}

/// The nonce of the sealed item with `counter`: version 3 the salt's first 12 bytes with the
/// counter XORed into the last four (its keys serve every envelope under a data key, so
/// every seal draws its own IV); versions 1 and 2 the counter alone (their keys are the
/// seal's own).
fn nonce(env: &Envelope, counter: u32) -> [u8; 12] {
    if env.version >= 3 {
        let mut iv = [0u8; 12];
        iv.copy_from_slice(&env.salt[..12]);
        crypto::iv_nonce(&iv, counter)
    } else {
        crypto::counter_nonce(counter)
    }
}

/// What a sealed item is: a field's value, or its standard masked form.
#[derive(Clone, Copy)]
enum Item {
    Field,
    Mask,
}

/// Hands `f` the associated data of `path`'s sealed item: version 3 `lp(label, tenant, record,
/// path)` (the key no longer names the record, so the AAD does), with `label`
/// `"coffer/v3/field"` or `"coffer/v3/mask"`; versions 1 and 2 `lp("coffer/v1/field", path)`
/// and `lp("coffer/v2/mask", path)`.
fn with_aad<R>(env: &Envelope, item: Item, path: &str, f: impl FnOnce(&[u8]) -> R) -> R {
    let v3 = env.version >= 3;
    let label: &[u8] = match (item, v3) {
        (Item::Field, true) => b"coffer/v3/field",
        (Item::Mask, true) => b"coffer/v3/mask",
        (Item::Field, false) => b"coffer/v1/field",
        (Item::Mask, false) => b"coffer/v2/mask",
    };
    if v3 {
        crypto::with_lp(
            &[
                label,
                env.tenant.as_bytes(),
                env.record.as_bytes(),
                path.as_bytes(),
            ],
            f,
        )
    } else {
        crypto::with_lp(&[label, path.as_bytes()], f)
    }
}

/// Seals `text`, the item of `path` (in `category`), with its category's cipher of that kind
/// under the item's counter (the envelope's version, salt, tenant and record must be set).
fn seal_item(
    item: Item,
    cipher: &AeadKey,
    env: &Envelope,
    (path, category): (&str, &Arc<str>),
    counter: u32,
    text: &str,
) -> Result<SealedField> {
    Ok(SealedField {
        category: Arc::clone(category),
        counter,
        ciphertext: with_aad(env, item, path, |aad| {
            cipher.seal(nonce(env, counter), aad, text.as_bytes())
        })?,
    })
}

/// Opens the sealed item of `path` as UTF-8 text; a failure names the field or masked form.
fn open_item(
    item: Item,
    cipher: &AeadKey,
    env: &Envelope,
    path: &str,
    f: &SealedField,
) -> Result<Sensitive> {
    // Named only when it fails (a name written for every field opened was a cost of its own).
    let failed = || {
        integrity(&match item {
            Item::Field => format!("field `{path}`"),
            Item::Mask => format!("masked form of `{path}`"),
        })
    };
    let plain = with_aad(env, item, path, |aad| {
        cipher.open(nonce(env, f.counter), aad, &f.ciphertext, "")
    })
    .map_err(|_| failed())?;
    let text = std::str::from_utf8(&plain).map_err(|_| failed())?;
    Ok(Sensitive::new(text))
}

/// Seals one field's value of `path` (in `category`) with its category's field cipher, under
/// the envelope's field counter `counter`.
pub(crate) fn seal_field(
    cipher: &AeadKey,
    env: &Envelope,
    path: &str,
    category: &Arc<str>,
    counter: u32,
    value: &str,
) -> Result<SealedField> {
    seal_item(Item::Field, cipher, env, (path, category), counter, value)
}

/// Seals one standard masked form of `path` (in `category`) with its category's mask cipher,
/// under the envelope's mask counter `counter`.
pub(crate) fn seal_mask(
    cipher: &AeadKey,
    env: &Envelope,
    path: &str,
    category: &Arc<str>,
    counter: u32,
    form: &str,
) -> Result<SealedField> {
    seal_item(Item::Mask, cipher, env, (path, category), counter, form)
}

/// Opens one sealed masked form with its category's mask cipher.
pub(crate) fn open_mask(
    cipher: &AeadKey,
    env: &Envelope,
    path: &str,
    f: &SealedField,
) -> Result<Sensitive> {
    open_item(Item::Mask, cipher, env, path, f)
}

/// Decrypts one sealed field with its category's cipher (see [`field_cipher`]).
pub(crate) fn open_field(
    cipher: &AeadKey,
    env: &Envelope,
    path: &str,
    f: &SealedField,
) -> Result<Sensitive> {
    open_item(Item::Field, cipher, env, path, f)
}

/// Opens an envelope with explicit keys, outside any store: the envelope MAC key and the data
/// keys by (category, version). Returns every field's plaintext, sealed and clear, and for a
/// version 2 or 3 envelope each sealed masked form as `masked:<path>`. For
/// conformance tests in other languages and for offline recovery; applications use
/// [`crate::Coffer::reveal`], which decides and audits.
pub fn open_with_keys(
    envelope_json: &str,
    envelope_mac_key: &[u8],
    data_keys: &BTreeMap<(String, u32), Vec<u8>>,
) -> Result<BTreeMap<String, Sensitive>> {
    let env = Envelope::from_json(envelope_json)?;
    env.check_mac(&MacKey::new(SecretKey::from_bytes(envelope_mac_key)?))?;
    // The data key of a category, at the version the envelope names.
    let key_of = |category: &str| -> Result<DataKey> {
        let version = env
            .keys
            .get(category)
            .copied()
            .ok_or_else(|| integrity("envelope"))?;
        let key = data_keys
            .get(&(category.to_owned(), version))
            .ok_or_else(|| Error::KeyNotFound {
                what: format!("data key {category}:{version}"),
            })?;
        SecretKey::from_bytes(key).map(DataKey::new)
    };
    let mut out: BTreeMap<String, Sensitive> = env
        .clear
        .iter()
        .map(|(p, v)| (p.to_string(), v.clone()))
        .collect();
    for (path, f) in &env.fields {
        let cipher = field_cipher(&env, &key_of(&f.category)?, &f.category)?;
        out.insert(path.to_string(), open_field(&cipher, &env, path, f)?);
    }
    for (path, f) in &env.sealed_masks {
        let cipher = mask_cipher(&env, &key_of(&f.category)?, &f.category)?;
        out.insert(format!("masked:{path}"), open_mask(&cipher, &env, path, f)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed envelope vectors (`tests/vectors/envelopes.json`): each case's `name` and
    /// `envelope` text, among others.
    fn vector_cases() -> Vec<serde_json::Value> {
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/vectors/envelopes.json")).unwrap();
        vectors["cases"].as_array().unwrap().clone()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// `path_map` holds what a `BTreeMap` built by inserting the same items in the same
        /// order holds, in the same order: each path once, with the value inserted last.
        #[test]
        fn path_map_is_a_btree_map_built_by_inserts(
            items in proptest::collection::vec(("[a-c]{0,3}(\\[[0-9]\\])?", 0u32..1000), 0..40),
        ) {
            let tree: BTreeMap<String, u32> = items.iter().cloned().collect();
            let map = path_map(
                items.into_iter().map(|(p, v)| (PathText::from(p), v)).collect(),
            );
            let listed: Vec<(String, u32)> =
                map.iter().map(|(p, v)| (p.to_string(), *v)).collect();
            proptest::prop_assert_eq!(listed, tree.into_iter().collect::<Vec<_>>());
        }
    }

    /// A path is sealed, in clear or shredded, never two of these: text that puts one path in
    /// two places is not a well-formed envelope, whatever its MAC.
    #[test]
    fn a_path_in_two_places_is_refused() {
        for case in &vector_cases() {
            let env = Envelope::from_json(case["envelope"].as_str().unwrap()).unwrap();
            let sealed = env.fields.keys().next().unwrap().clone();
            let clear = env.clear.keys().next().unwrap().clone();
            let mut doubled = Vec::new();
            let mut e = env.clone();
            e.clear.insert(sealed.clone(), Sensitive::new("x"));
            doubled.push(e);
            if env.version > 1 {
                let mut e = env.clone();
                e.shredded.insert(sealed.to_string(), "identity".into());
                doubled.push(e);
                let mut e = env.clone();
                e.shredded.insert(clear.to_string(), "identity".into());
                doubled.push(e);
            }
            for e in doubled {
                let err = Envelope::from_json(&e.to_json()).unwrap_err();
                assert!(
                    err.to_string().contains("a path in two places"),
                    "{}: {err}",
                    case["name"]
                );
            }
        }
    }

    /// A sealed field or masked form opens to exactly its text (empty, one byte, multi-byte,
    /// long), and an item that authenticates but is not UTF-8 (only a holder of the key could
    /// make one) is an integrity error that names the field, with no value.
    #[test]
    fn opened_items_are_their_text_and_never_invalid_utf8() {
        let text = vector_cases()[0]["envelope"].as_str().unwrap().to_owned();
        let env = Envelope::from_json(&text).unwrap();
        let cipher = AeadKey::new(&SecretKey::generate().unwrap()).unwrap();
        let category: Arc<str> = Arc::from("identity");
        let long = "账".repeat(300);
        for (counter, value) in ["", "x", "李伟", long.as_str()].into_iter().enumerate() {
            let counter = counter as u32;
            let f = seal_field(&cipher, &env, "name", &category, counter, value).unwrap();
            assert_eq!(
                open_field(&cipher, &env, "name", &f).unwrap().expose(),
                value
            );
            let m = seal_mask(&cipher, &env, "name", &category, counter, value).unwrap();
            assert_eq!(
                open_mask(&cipher, &env, "name", &m).unwrap().expose(),
                value
            );
        }
        for bytes in [&[0xff][..], &[b'a', 0xc3], &[0xe8, 0xb4]] {
            let ciphertext = with_aad(&env, Item::Field, "secret.path", |aad| {
                cipher.seal(nonce(&env, 9), aad, bytes).unwrap()
            });
            let f = SealedField {
                category: Arc::clone(&category),
                counter: 9,
                ciphertext,
            };
            let err = open_field(&cipher, &env, "secret.path", &f).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Integrity, "{err}");
            assert!(err.to_string().contains("field `secret.path`"), "{err}");
        }
    }

    /// An envelope read from JSON names each category once: its sealed fields and masked
    /// forms of one category share one name (not a string each), and it is written back as it
    /// was read.
    #[test]
    fn a_read_envelope_shares_each_category_name() {
        for case in &vector_cases() {
            let text = case["envelope"].as_str().unwrap();
            let env = Envelope::from_json(text).unwrap();
            let items: Vec<&SealedField> = env
                .fields
                .values()
                .chain(env.sealed_masks.values())
                .collect();
            for a in &items {
                for b in &items {
                    assert_eq!(
                        Arc::ptr_eq(&a.category, &b.category),
                        a.category == b.category,
                        "{}",
                        case["name"]
                    );
                }
            }
            let names: std::collections::BTreeSet<&str> =
                items.iter().map(|f| &*f.category).collect();
            assert!(names.len() >= 2, "{}", case["name"]);
            assert_eq!(*env.to_json(), text, "{}", case["name"]);
        }
    }

    /// Prefetching reads nothing into the program: it leaves every envelope (committed
    /// vectors, and one whose strings and ciphertexts are empty or span many cache lines) as it
    /// was, MAC and all, and never panics whatever the lengths.
    #[test]
    fn prefetching_changes_nothing_whatever_the_lengths() {
        for case in &vector_cases() {
            let text = case["envelope"].as_str().unwrap();
            let env = Envelope::from_json(text).unwrap();
            let mut odd = env.clone();
            odd.tenant.clear();
            if let Some(f) = odd.fields.iter_mut().next().map(|(_, f)| f) {
                f.ciphertext.clear();
            }
            if let Some(f) = odd.sealed_masks.iter_mut().next().map(|(_, f)| f) {
                f.ciphertext = vec![7; 64 * 5 + 1];
            }
            odd.clear.insert("z".repeat(200).into(), Sensitive::new(""));
            for e in [&env, &odd] {
                let before = e.clone();
                e.prefetch();
                e.prefetch_names();
                assert!(*e == before, "{}", case["name"]);
            }
            assert_eq!(*env.to_json(), text, "{}", case["name"]);
        }
    }

    /// Base64 texts are borrowed from the JSON and masked forms read by their shape; what is
    /// read must not depend on either. A text written with JSON escapes (which cannot be
    /// borrowed) reads as the same envelope, and a masked form that is neither a string nor a
    /// sealed field, or a sealed field with a field too many or too few, is refused.
    #[test]
    fn escaped_texts_and_odd_masked_forms_read_as_before() {
        for case in &vector_cases() {
            let text = case["envelope"].as_str().unwrap();
            let env = Envelope::from_json(text).unwrap();
            let mut doc: serde_json::Value = serde_json::from_str(text).unwrap();
            // Every character of every string as a \uXXXX escape: the same JSON value, nothing
            // borrowable.
            let escaped = escape_every_string(&serde_json::to_string(&doc).unwrap());
            assert_eq!(
                Envelope::from_json(&escaped).unwrap(),
                env,
                "{}",
                case["name"]
            );
            let masked = doc["masked"].as_object_mut().unwrap();
            let Some(path) = masked.keys().next().cloned() else {
                continue;
            };
            let form = masked[&path].clone();
            let mut odd = vec![
                serde_json::json!(7),
                serde_json::json!(null),
                serde_json::json!([]),
            ];
            if form.is_object() {
                let mut extra = form.clone();
                extra["x"] = serde_json::json!(1);
                let mut short = form.clone();
                short.as_object_mut().unwrap().remove("ct");
                odd.extend([extra, short]);
            }
            for o in odd {
                let mut d = doc.clone();
                d["masked"][&path] = o.clone();
                let err = Envelope::from_json(&d.to_string()).unwrap_err();
                assert!(
                    err.to_string().contains("not a well-formed envelope"),
                    "{} {o}: {err}",
                    case["name"]
                );
            }
        }
    }

    /// JSON text with every character inside every string written as a `\u` escape.
    fn escape_every_string(json: &str) -> String {
        let mut out = String::new();
        let mut in_string = false;
        let mut chars = json.chars();
        while let Some(c) = chars.next() {
            match (in_string, c) {
                (false, '"') => {
                    in_string = true;
                    out.push('"');
                }
                (true, '"') => {
                    in_string = false;
                    out.push('"');
                }
                (true, '\\') => {
                    // Already an escape: kept as it is.
                    out.push('\\');
                    out.extend(chars.next());
                }
                (true, c) => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
                (false, c) => out.push(c),
            }
        }
        out
    }

    /// `to_json` writes from the envelope without building a [`Wire`]: the text must stay
    /// what serialising the `Wire` gives, byte for byte, for every version, and the committed
    /// vectors (written by earlier builds) must come back unchanged.
    #[test]
    fn envelopes_are_written_as_their_wire_form() {
        let cases = vector_cases();
        assert_eq!(cases.len(), 6);
        for case in cases {
            let text = case["envelope"].as_str().unwrap();
            let mut env = Envelope::from_json(text).unwrap();
            assert_eq!(*env.to_json(), text, "{}", case["name"]);
            assert_eq!(
                *env.to_json(),
                serde_json::to_string(&env.wire()).unwrap(),
                "{}",
                case["name"]
            );
            // With shredded fields, and with text that needs escaping.
            if env.version > 1 {
                env.shredded.insert("phones[9]".into(), "contact".into());
            }
            env.clear
                .insert("notes \"q\"\n".into(), Sensitive::new("a\\b \u{1}"));
            let json = env.to_json();
            assert_eq!(*json, serde_json::to_string(&env.wire()).unwrap());
            let back = Envelope::from_json(&json).unwrap();
            assert_eq!(*back.to_json(), *json);
            // Every string the writer puts out, each with something to escape: what it
            // writes must still be serde's text (the MAC no longer matches; only the text is
            // compared).
            let odd = |s: &str| format!("{s}\"\\\u{7f}\u{1f}\t\u{8}é");
            env.tenant = odd(&env.tenant);
            env.record = odd(&env.record);
            env.subject = odd(&env.subject);
            env.schema = odd(&env.schema);
            env.keys = env.keys.iter().map(|(c, v)| (odd(c), *v)).collect();
            env.index = env
                .index
                .iter()
                .map(|(p, t)| {
                    let tokens = t.iter().map(|(e, t)| (odd(e), odd(t))).collect();
                    (PathText::from(odd(p)), tokens)
                })
                .collect();
            env.masked = env.masked.iter().map(|(p, m)| (odd(p), odd(m))).collect();
            for (_, f) in env.fields.iter_mut().chain(env.sealed_masks.iter_mut()) {
                f.category = odd(&f.category).into();
                f.counter = u32::MAX - f.counter;
            }
            assert_eq!(*env.to_json(), serde_json::to_string(&env.wire()).unwrap());
            env.version = env.version.max(2);
            env.shredded.insert(odd("emails[0]"), odd("contact"));
            assert_eq!(*env.to_json(), serde_json::to_string(&env.wire()).unwrap());
            env.fields.clear();
            env.sealed_masks.clear();
            env.keys.clear();
            env.index.clear();
            assert_eq!(*env.to_json(), serde_json::to_string(&env.wire()).unwrap());
        }
    }
}
