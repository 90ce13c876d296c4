//! Python objects to JSON text, and JSON values to Python objects, strictly: keys must be
//! `str`, and only `None`, `bool`, `int`, `float`, `str`, `list`, `tuple` and `dict` cross.

use std::fmt;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::Value;
use zeroize::Zeroizing;

/// Deepest nesting accepted from Python.
const MAX_DEPTH: usize = 32;

/// Where a value sits in the argument, for error messages: `record["custom"]["k"][2]`. Kept as
/// a chain of borrowed steps and written out only when an error needs it (formatting each
/// step's text up front cost more than writing the value).
#[derive(Clone, Copy)]
pub(crate) enum Where<'a> {
    /// The argument itself, by its name.
    Arg(&'a str),
    /// A dictionary's entry, by its key's UTF-8.
    Key(&'a Where<'a>, &'a [u8]),
    /// A list's or tuple's item.
    Item(&'a Where<'a>, usize),
}

impl fmt::Display for Where<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Where::Arg(name) => f.write_str(name),
            Where::Key(parent, key) => write!(f, "{parent}[{:?}]", String::from_utf8_lossy(key)),
            Where::Item(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// JSON text written from Python objects into memory that is wiped: every buffer it ever
/// used, not only the last (growing copies the text into a larger buffer and wipes the old
/// one, where `Vec`'s own growth would leave the old bytes behind), since the text holds a
/// customer's personal data. Stops at `limit` bytes.
pub(crate) struct WipedJson {
    buf: Zeroizing<Vec<u8>>,
    limit: usize,
}

impl WipedJson {
    pub(crate) fn new(capacity: usize, limit: usize) -> WipedJson {
        WipedJson {
            buf: Zeroizing::new(Vec::with_capacity(capacity)),
            limit,
        }
    }

    /// A wiped copy of `bytes`, or of their first `limit + 1` when they are longer (enough for
    /// the parser to refuse them by their length).
    pub(crate) fn copy_of(bytes: &[u8], limit: usize) -> WipedJson {
        let bytes = &bytes[..bytes.len().min(limit.saturating_add(1))];
        let mut copy = WipedJson::new(bytes.len(), limit);
        copy.buf.extend_from_slice(bytes);
        copy
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Whether the text has gone past its limit (the caller reports it as the limit's error).
    pub(crate) fn over_limit(&self) -> bool {
        self.buf.len() > self.limit
    }

    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.put_between(b"", bytes, b"");
    }

    /// `text` with `before` and `after` around it, in one growth at most.
    #[inline]
    fn put_between(&mut self, before: &[u8], text: &[u8], after: &[u8]) {
        if self.over_limit() {
            return;
        }
        let need = self.buf.len() + before.len() + text.len() + after.len();
        if need > self.buf.capacity() {
            let mut larger = Zeroizing::new(Vec::with_capacity(need.max(2 * self.buf.capacity())));
            larger.extend_from_slice(&self.buf);
            // The old buffer is wiped as it is dropped here.
            self.buf = larger;
        }
        self.buf.extend_from_slice(before);
        self.buf.extend_from_slice(text);
        self.buf.extend_from_slice(after);
    }
}

impl std::io::Write for WipedJson {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.put(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes a Python object as JSON text into `out`, strictly: keys must be `str`, and only
/// `None`, `bool`, `int` (within `i64`), finite `float`, `str`, `list`, `tuple` and `dict`
/// cross, nested at most [`MAX_DEPTH`] deep. `at` names the object in errors. Nothing is
/// parsed into an intermediate tree: the text goes straight to the record's parser.
pub(crate) fn write_json(
    obj: &Bound<'_, PyAny>,
    at: &Where<'_>,
    depth: usize,
    out: &mut WipedJson,
) -> PyResult<()> {
    if depth > MAX_DEPTH {
        return Err(crate::error_from_kind(
            obj.py(),
            coffer::ErrorKind::LimitExceeded,
            format!("{at} is nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    if out.over_limit() {
        // The caller reports the size; nothing more is worth writing.
        return Ok(());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return with_utf8(s, |text| string(text, out));
    }
    if obj.is_none() {
        out.put(b"null");
        return Ok(());
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        out.put(if b.is_true() { b"true" } else { b"false" });
        return Ok(());
    }
    if obj.is_instance_of::<PyInt>() {
        let n: i64 = obj
            .extract()
            .map_err(|_| PyTypeError::new_err(format!("{at}: integer out of range")))?;
        out.put(n.to_string().as_bytes());
        return Ok(());
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let n = serde_json::Number::from_f64(f.value())
            .ok_or_else(|| PyTypeError::new_err(format!("{at}: NaN and infinity are not JSON")))?;
        out.put(n.to_string().as_bytes());
        return Ok(());
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        out.put(b"{");
        for (i, (k, v)) in d.iter().enumerate() {
            let key = k.cast::<PyString>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "{at}: dictionary keys must be str, not {}",
                    type_name(&k)
                ))
            })?;
            with_utf8(key, |key| {
                if plain(key) {
                    out.put_between(if i > 0 { b",\"" } else { b"\"" }, key, b"\":");
                } else {
                    if i > 0 {
                        out.put(b",");
                    }
                    string(key, out)?;
                    out.put(b":");
                }
                write_json(&v, &Where::Key(at, key), depth + 1, out)
            })?;
        }
        out.put(b"}");
        return Ok(());
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        out.put(b"[");
        for (i, item) in obj.try_iter()?.enumerate() {
            if i > 0 {
                out.put(b",");
            }
            write_json(&item?, &Where::Item(at, i), depth + 1, out)?;
        }
        out.put(b"]");
        return Ok(());
    }
    Err(PyTypeError::new_err(format!(
        "{at}: values must be None, bool, int, float, str, list or dict, not {}",
        type_name(obj)
    )))
}

/// Runs `f` on a Python string's UTF-8 bytes, borrowed from the string (Python's memory, and
/// the string's own for ASCII): an owned Rust copy of a customer's data would be freed
/// unwiped, and a `bytes` copy per string was a third of writing a record.
fn with_utf8<R>(s: &Bound<'_, PyString>, f: impl FnOnce(&[u8]) -> PyResult<R>) -> PyResult<R> {
    f(s.to_str()?.as_bytes())
}

/// Whether JSON writes `text` as it is between quotes: no quote, backslash or control character.
fn plain(text: &[u8]) -> bool {
    // Every byte is looked at, without an early exit, so that the loop is vectorised.
    !text.iter().fold(false, |escape, &b| {
        escape | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// A JSON string: as it is between quotes when it has nothing to escape (most names, numbers
/// and addresses), else escaped as `serde_json` escapes it. The bytes are Python's UTF-8; the
/// record's parser checks the whole text again.
fn string(text: &[u8], out: &mut WipedJson) -> PyResult<()> {
    if plain(text) {
        out.put_between(b"\"", text, b"\"");
        return Ok(());
    }
    let text = std::str::from_utf8(text)
        .map_err(|_| PyTypeError::new_err("Python encoded a string as invalid UTF-8"))?;
    // Writing to memory cannot fail.
    serde_json::to_writer(&mut *out, text)
        .map_err(|_| PyTypeError::new_err("writing a string as JSON"))
}

/// The name of `obj`'s type, for error messages.
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

/// Converts JSON text that Coffer produced into Python objects.
pub(crate) fn json_text_to_py<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    let value: Value = serde_json::from_str(text)
        .map_err(|_| PyTypeError::new_err("Coffer produced invalid JSON"))?;
    to_py(py, &value)
}

/// Converts a JSON value into Python objects.
pub(crate) fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into_pyobject(py)?.into_any(),
            None => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}
