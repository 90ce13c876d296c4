//! The native part of the `coffer` Python module. The Python package (`python/coffer`) is the
//! public face; this module converts arguments and results and holds no logic of its own.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use coffer::mask::{MaskRule, Masked, Profile};
use coffer::record::{CustomerRecord, Schema as CoreSchema};
use coffer::{Error, ErrorKind};

mod convert;
mod read;
mod vault;

// The extension's own allocations (envelopes, views, JSON) only: Python's objects keep
// Python's allocator, and every string crosses into Python as a copy. Under glibc's allocator
// `reveal_many` spent about 40% of its time in malloc and free.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Builds the Python exception for an error kind: the class comes from `coffer._errors`, so
/// that each can also inherit the matching built-in (`ValueError`, `PermissionError`, …).
pub(crate) fn error_from_kind(py: Python<'_>, kind: ErrorKind, message: String) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = py
            .import("coffer._errors")?
            .getattr("class_for_code")?
            .call1((kind.code(),))?;
        Ok(PyErr::from_value(
            cls.call1((message.clone(), kind.code()))?,
        ))
    };
    build().unwrap_or_else(|e| e)
}

/// Runs `f` without the GIL behind a panic boundary: a panic in Coffer becomes
/// `coffer.InternalError` (an `Exception`), where PyO3 would raise `PanicException`, a
/// `BaseException` that `except Exception` does not catch. The panic's message is not passed
/// on: nothing of it reaches Python (Coffer's own messages never hold values, but a panic's
/// might come from elsewhere).
pub(crate) fn guarded<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> Result<T, Error> + Send,
) -> PyResult<T> {
    match py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))) {
        Ok(result) => result.map_err(|e| to_py_err(py, e)),
        Err(_) => Err(error_from_kind(
            py,
            ErrorKind::Internal,
            "internal error: Coffer panicked (a bug; please report it). Nothing was returned, \
             and the store is as its last committed transaction left it"
                .into(),
        )),
    }
}

/// Panics inside the boundary on purpose, so that the tests can check that a panic reaches
/// Python as `InternalError`.
#[pyfunction]
fn _test_panic(py: Python<'_>) -> PyResult<()> {
    guarded(py, || -> Result<(), Error> {
        panic!("a deliberate panic, to test the boundary")
    })
}

pub(crate) fn to_py_err(py: Python<'_>, e: Error) -> PyErr {
    let err = error_from_kind(py, e.kind(), e.to_string());
    if let Some(report) = e.validation_report() {
        let value = err.value(py);
        if let Ok(obj) = convert::json_text_to_py(py, &report.to_json()) {
            let _ = value.setattr("_report", obj);
        }
    }
    err
}

/// Reads a record given as a dict, a JSON `str` or UTF-8 `bytes`. Every copy of the record's
/// text made here is wiped when dropped.
pub(crate) fn record_from(py: Python<'_>, record: &Bound<'_, PyAny>) -> PyResult<CustomerRecord> {
    match record_input(record)? {
        RecordInput::Read(record) => Ok(record),
        RecordInput::Text(text) => guarded(py, || CustomerRecord::from_json_bytes(text.bytes())),
    }
}

/// A record as the host gave it, taken with the GIL: read already, or its JSON text for
/// `CustomerRecord::from_json_bytes` to parse (without the GIL) and explain.
// The large variant is the usual one: boxing it would allocate for every record.
#[allow(clippy::large_enum_variant)]
pub(crate) enum RecordInput {
    /// A dict read straight into a record ([`read::record`]).
    Read(CustomerRecord),
    /// The text of a `str` or `bytes`, or of a dict that [`read::record`] left to it.
    Text(convert::WipedJson),
}

/// Takes a record given as a dict, a JSON `str` or UTF-8 `bytes`: a dict is read as a record
/// when it is one, and written as JSON text otherwise, for the parser's error.
pub(crate) fn record_input(record: &Bound<'_, PyAny>) -> PyResult<RecordInput> {
    if record.is_instance_of::<pyo3::types::PyDict>() {
        match read::record(record) {
            Ok(Some(read)) => return Ok(RecordInput::Read(read)),
            Ok(None) => {}
            Err(read::Changed) => return Err(changed_while_read(record.py())),
        }
    }
    record_text(record).map(RecordInput::Text)
}

/// The error of a record that a list subclass's `__iter__` changed while it was being read.
fn changed_while_read(py: Python<'_>) -> PyErr {
    error_from_kind(
        py,
        ErrorKind::InvalidArgument,
        "record: a dict in it changed while it was being read".into(),
    )
}

/// A record's JSON text, read from a dict, a JSON `str` or UTF-8 `bytes` into a buffer that is
/// wiped when dropped, for `CustomerRecord::from_json_bytes` to parse without the GIL (its
/// limits, and its errors, which name the field). A dict is written straight as JSON text, with
/// no tree of values in between. Text past the record size limit is not copied: the parser
/// refuses it by its length.
pub(crate) fn record_text(record: &Bound<'_, PyAny>) -> PyResult<convert::WipedJson> {
    let limit = coffer::record::MAX_RECORD_BYTES;
    if let Ok(s) = record.cast::<PyString>() {
        Ok(convert::WipedJson::copy_of(s.to_str()?.as_bytes(), limit))
    } else if let Ok(b) = record.cast::<PyBytes>() {
        Ok(convert::WipedJson::copy_of(b.as_bytes(), limit))
    } else if record.is_instance_of::<pyo3::types::PyDict>() {
        // Reading the dict runs no Python code but a list subclass's `__iter__`, which could
        // change the record while it is read. PyO3 panics on a dict that changes size while it
        // is iterated: that is this record's error, not a `PanicException`.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // A typical record is a few hundred bytes.
            let mut text = convert::WipedJson::new(1024, limit);
            convert::write_json(record, &convert::Where::Arg("record"), 0, &mut text)?;
            Ok(text)
        }))
        .unwrap_or_else(|_| Err(changed_while_read(record.py())))
    } else {
        Err(PyTypeError::new_err(format!(
            "record must be a dict, a JSON str or UTF-8 bytes, not {}",
            convert::type_name(record)
        )))
    }
}

fn parse_date(py: Python<'_>, today: Option<&str>) -> PyResult<time::Date> {
    match today {
        None => Ok(time::OffsetDateTime::now_utc().date()),
        Some(s) => coffer::clock::text::parse_date(s).ok_or_else(|| {
            error_from_kind(
                py,
                ErrorKind::InvalidArgument,
                "today: expected an ISO date (YYYY-MM-DD)".into(),
            )
        }),
    }
}

/// A loaded, checked schema (immutable; safe to share between threads).
#[pyclass(frozen, module = "coffer._native")]
struct Schema {
    inner: CoreSchema,
}

#[pymethods]
impl Schema {
    /// The built-in customer-record schema.
    #[staticmethod]
    fn builtin() -> Self {
        Schema {
            inner: CoreSchema::builtin().clone(),
        }
    }

    /// Loads a schema from TOML text; every problem is reported at once with its line.
    #[staticmethod]
    fn from_toml(py: Python<'_>, text: &str) -> PyResult<Self> {
        let text = text.to_owned();
        guarded(py, || CoreSchema::from_toml(&text)).map(|inner| Schema { inner })
    }

    /// The schema's name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn __repr__(&self) -> String {
        format!(
            "Schema(name={:?}, version={})",
            self.inner.name(),
            self.inner.version()
        )
    }
}

/// Normalises and validates a record; returns the report as a dict.
#[pyfunction]
#[pyo3(signature = (record, today=None, schema=None))]
fn validate<'py>(
    py: Python<'py>,
    record: &Bound<'py, PyAny>,
    today: Option<&str>,
    schema: Option<&Bound<'py, Schema>>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut record = record_from(py, record)?;
    let today = parse_date(py, today)?;
    let schema = schema.map(|s| s.get().inner.clone());
    let report = py.detach(|| {
        record.normalize();
        schema
            .as_ref()
            .unwrap_or(CoreSchema::builtin())
            .validate(&record, today)
            .to_json()
    });
    convert::json_text_to_py(py, &report)
}

/// Normalises a record; returns it as a dict.
#[pyfunction]
fn normalize<'py>(py: Python<'py>, record: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let mut record = record_from(py, record)?;
    let json = py.detach(|| {
        record.normalize();
        record.to_json()
    });
    convert::json_text_to_py(py, &json)
}

/// Normalises and validates a record; returns the normalised record as a dict, or raises
/// `ValidationError` carrying the report.
#[pyfunction]
#[pyo3(signature = (record, today=None, schema=None))]
fn check<'py>(
    py: Python<'py>,
    record: &Bound<'py, PyAny>,
    today: Option<&str>,
    schema: Option<&Bound<'py, Schema>>,
) -> PyResult<Bound<'py, PyAny>> {
    let record = record_from(py, record)?;
    let today = parse_date(py, today)?;
    let schema = schema.map(|s| s.get().inner.clone());
    let json = py
        .detach(|| {
            schema
                .as_ref()
                .unwrap_or(CoreSchema::builtin())
                .check(record, today)
                .map(|(r, _)| r.to_json())
        })
        .map_err(|e| to_py_err(py, e))?;
    convert::json_text_to_py(py, &json)
}

/// Masks a value; returns the display form, or `None` when the rule withholds it.
#[pyfunction]
#[pyo3(signature = (value, rule, profile="standard"))]
fn mask(py: Python<'_>, value: &str, rule: &str, profile: &str) -> PyResult<Option<String>> {
    let rule = MaskRule::parse(rule).ok_or_else(|| {
        error_from_kind(
            py,
            ErrorKind::InvalidArgument,
            format!("unknown mask rule {rule:?}"),
        )
    })?;
    let profile = Profile::parse(profile).ok_or_else(|| {
        error_from_kind(
            py,
            ErrorKind::InvalidArgument,
            "profile must be \"standard\" or \"privileged\"".into(),
        )
    })?;
    match rule.apply(value, profile) {
        Masked::Text(t) => Ok(Some(t)),
        Masked::Withheld => Ok(None),
        Masked::KeyedHash => Err(error_from_kind(
            py,
            ErrorKind::Unsupported,
            "keyed_hash masking needs the key store of an opened Coffer".into(),
        )),
    }
}

/// Every error kind as `(code, name, description)`.
#[pyfunction]
fn error_kinds() -> Vec<(u32, &'static str, &'static str)> {
    ErrorKind::ALL
        .iter()
        .map(|k| (k.code(), k.name(), k.description()))
        .collect()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", coffer::VERSION)?;
    m.add_class::<Schema>()?;
    m.add_class::<vault::Vault>()?;
    m.add_class::<vault::NativeEnvelope>()?;
    m.add_class::<vault::ViewFields>()?;
    m.add_class::<vault::ViewBase>()?;
    m.add_function(wrap_pyfunction!(vault::generate_master_key, m)?)?;
    m.add_function(wrap_pyfunction!(vault::open_with_keys, m)?)?;
    m.add_function(wrap_pyfunction!(vault::certificate_verify, m)?)?;
    m.add_function(wrap_pyfunction!(vault::restore, m)?)?;
    m.add_function(wrap_pyfunction!(vault::archive_verify, m)?)?;
    m.add_function(wrap_pyfunction!(vault::render_report, m)?)?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(mask, m)?)?;
    m.add_function(wrap_pyfunction!(error_kinds, m)?)?;
    m.add_function(wrap_pyfunction!(_test_panic, m)?)?;
    Ok(())
}
