//! A record given as a `dict`, read straight into a `CustomerRecord` through the record's own
//! `Deserialize`, with no JSON text written and parsed again in between (issue 18: the text
//! and its parse were a fifth of a Python `seal_many`).
//!
//! This is only a fast path. It reads a record exactly when the JSON path (`record_text`, then
//! `CustomerRecord::from_json_bytes`) would accept it, and gives the same record: both feed the
//! same strings to the same `Deserialize`. Anything else, every error included, gives `None`,
//! and the caller takes the JSON path, whose errors name the field and never hold a value. So
//! the errors here carry nothing: a serde message could quote a value, and none is kept.
//!
//! What the JSON path accepts that this path sends back to it (so slower, never different):
//! a number, boolean or `None` where the record has no use for one (always an error there), a
//! `{variant: None}` map for an enum's name, a `str` with lone surrogates, and records whose
//! JSON text might pass the size limit.

use std::cell::Cell;
use std::fmt;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use coffer::record::CustomerRecord;

/// Reads `record`, a `dict`, into a checked record: `None` whenever the JSON path has to decide
/// (see the module's comment). Runs no Python code but a list subclass's `__iter__`; a dict
/// changed by one while it is read makes PyO3 panic, which is caught here and is
/// [`Changed`]: read again, the record might pass, as something it never was.
pub(crate) fn record(record: &Bound<'_, PyAny>) -> Result<Option<CustomerRecord>, Changed> {
    let text_len = Cell::new(0);
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        <CustomerRecord as serde::Deserialize>::deserialize(Reader {
            obj: record,
            text_len: &text_len,
        })
    }))
    .map_err(|_| Changed)?;
    let Ok(record) = read else {
        return Ok(None);
    };
    // The JSON path refuses text over the limit by its length; this bound is never below that
    // length, so a record within it would have passed there too.
    if text_len.get() > coffer::record::MAX_RECORD_BYTES || record.check_limits().is_err() {
        return Ok(None);
    }
    Ok(Some(record))
}

/// A dict in the record changed while it was being read.
pub(crate) struct Changed;

/// Why a value was not read here. It holds nothing: the JSON path explains the failure.
#[derive(Debug)]
pub(crate) struct Fallback;

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the record is read through its JSON text instead")
    }
}

impl std::error::Error for Fallback {}

impl de::Error for Fallback {
    fn custom<T: fmt::Display>(_message: T) -> Self {
        // The message is dropped unread: serde's may quote the value.
        Fallback
    }
}

/// One Python object as a serde `Deserializer`. `text_len` sums a bound on the length of the
/// JSON text that `record_text` would write for everything read.
struct Reader<'a, 'py> {
    obj: &'a Bound<'py, PyAny>,
    text_len: &'a Cell<usize>,
}

/// Adds `bytes` to a text length bound.
fn add(text_len: &Cell<usize>, bytes: usize) {
    text_len.set(text_len.get().saturating_add(bytes));
}

impl Reader<'_, '_> {
    fn add(&self, bytes: usize) {
        add(self.text_len, bytes);
    }

    /// The string's UTF-8, counted at its longest as JSON: six bytes a byte when anything in
    /// it needs escaping (`\u0001`), as it is between quotes when nothing does.
    fn text(&self) -> Option<&str> {
        let text = self.obj.cast::<PyString>().ok()?.to_str().ok()?;
        let escapes = text
            .bytes()
            .fold(false, |e, b| e | (b < 0x20) | (b == b'"') | (b == b'\\'));
        self.add(if escapes { 6 * text.len() } else { text.len() } + 2);
        Some(text)
    }
}

impl<'de> de::Deserializer<'de> for Reader<'_, '_> {
    type Error = Fallback;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fallback> {
        if let Some(text) = self.text() {
            return visitor.visit_str(text);
        }
        if let Ok(dict) = self.obj.cast::<PyDict>() {
            self.add(2);
            return visitor.visit_map(Entries {
                items: dict.iter(),
                value: None,
                text_len: self.text_len,
            });
        }
        if self.obj.is_instance_of::<PyList>() || self.obj.is_instance_of::<PyTuple>() {
            self.add(2);
            // Iterated as the JSON path iterates them, through `__iter__`.
            let items = self.obj.try_iter().map_err(|_| Fallback)?;
            return visitor.visit_seq(Items {
                items,
                text_len: self.text_len,
            });
        }
        // `None`, numbers and booleans have no place in a record but an `Option`'s `None`
        // (read by `deserialize_option`); the JSON path reports them.
        Err(Fallback)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fallback> {
        if self.obj.is_none() {
            self.add(4);
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Fallback> {
        // An enum by its variant's name; the map form goes to the JSON path.
        match self.text() {
            Some(text) => visitor.visit_enum(IntoDeserializer::<Fallback>::into_deserializer(text)),
            None => Err(Fallback),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

/// A dict's entries, keys `str` only.
struct Entries<'a, 'py> {
    items: pyo3::types::iter::BoundDictIterator<'py>,
    value: Option<Bound<'py, PyAny>>,
    text_len: &'a Cell<usize>,
}

impl<'de> de::MapAccess<'de> for Entries<'_, '_> {
    type Error = Fallback;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Fallback> {
        let Some((key, value)) = self.items.next() else {
            return Ok(None);
        };
        if !key.is_instance_of::<PyString>() {
            return Err(Fallback);
        }
        self.value = Some(value);
        // `"key":` and a comma.
        add(self.text_len, 2);
        seed.deserialize(Reader {
            obj: &key,
            text_len: self.text_len,
        })
        .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Fallback> {
        let value = self.value.take().ok_or(Fallback)?;
        seed.deserialize(Reader {
            obj: &value,
            text_len: self.text_len,
        })
    }
}

/// A list's or tuple's items.
struct Items<'a, 'py> {
    items: Bound<'py, pyo3::types::PyIterator>,
    text_len: &'a Cell<usize>,
}

impl<'de> de::SeqAccess<'de> for Items<'_, '_> {
    type Error = Fallback;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Fallback> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let item = item.map_err(|_| Fallback)?;
        // A comma.
        add(self.text_len, 1);
        seed.deserialize(Reader {
            obj: &item,
            text_len: self.text_len,
        })
        .map(Some)
    }
}
