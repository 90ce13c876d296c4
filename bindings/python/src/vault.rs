//! The store from Python: a handle over the facade whose methods take and give the JSON forms
//! of `coffer::wire` (the same the C library uses), with the GIL released around the work.
//! The Python package (`coffer._vault`) turns them into Python objects.

use std::sync::{Arc, RwLock};

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use coffer::{Coffer, Error, ErrorKind, MasterKey, wire};

use crate::{error_from_kind, to_py_err};

/// An open store. Thread-safe: share one between threads; calls release the GIL.
#[pyclass(frozen, module = "coffer._native")]
pub(crate) struct Vault {
    inner: RwLock<Option<Arc<Coffer>>>,
}

impl Vault {
    fn get(&self, py: Python<'_>) -> PyResult<Arc<Coffer>> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                error_from_kind(
                    py,
                    ErrorKind::Closed,
                    "the Coffer was closed; open it again".into(),
                )
            })
    }

    /// Runs `f` on the store without the GIL.
    fn call<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Coffer) -> Result<T, Error> + Send,
    ) -> PyResult<T> {
        let c = self.get(py)?;
        py.detach(move || f(&c)).map_err(|e| to_py_err(py, e))
    }
}

#[pymethods]
impl Vault {
    /// Opens (or creates) the store at `path` with a 32-byte master key and open options (JSON).
    #[staticmethod]
    #[pyo3(signature = (path, master_key, options=None))]
    fn open(
        py: Python<'_>,
        path: &str,
        master_key: &[u8],
        options: Option<&str>,
    ) -> PyResult<Self> {
        let key = MasterKey::from_bytes(master_key).map_err(|e| to_py_err(py, e))?;
        let path = path.to_owned();
        let options = options.map(str::to_owned);
        let c = py
            .detach(move || wire::open_json(&path, &key, options.as_deref()))
            .map_err(|e| to_py_err(py, e))?;
        Ok(Vault {
            inner: RwLock::new(Some(Arc::new(c))),
        })
    }

    /// Closes the store and wipes its keys (once no call is still running). Idempotent.
    fn close(&self) {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_none()
    }

    /// Seals a record given as a dict, a JSON `str` or UTF-8 `bytes`; the envelope as JSON.
    fn seal(&self, py: Python<'_>, record: &Bound<'_, PyAny>, actor: &str) -> PyResult<String> {
        let record = crate::record_from(py, record)?;
        self.call(py, |c| c.seal(record, actor).map(|e| e.to_json()))
            .map(|s| s.to_string())
    }

    fn seal_many(&self, py: Python<'_>, records: &str, actor: &str) -> PyResult<String> {
        self.call(py, |c| wire::seal_many_json(c, records, actor))
            .map(|s| s.to_string())
    }

    /// The view as JSON. It holds plaintext; the Python side keeps it only inside `View`.
    fn reveal(&self, py: Python<'_>, envelope: &str, access: &str) -> PyResult<String> {
        self.call(py, |c| wire::reveal_json(c, envelope, access))
            .map(|s| s.to_string())
    }

    fn reveal_many(&self, py: Python<'_>, envelopes: &str, access: &str) -> PyResult<String> {
        self.call(py, |c| wire::reveal_many_json(c, envelopes, access))
            .map(|s| s.to_string())
    }

    fn search_index(
        &self,
        py: Python<'_>,
        tenant: &str,
        field: &str,
        value: &str,
    ) -> PyResult<String> {
        self.call(py, |c| {
            c.search_index(tenant, field, value)
                .map(|t| wire::tokens_to_json(&t))
        })
    }

    #[pyo3(signature = (checkpoint=None))]
    fn audit_verify(&self, py: Python<'_>, checkpoint: Option<&str>) -> PyResult<String> {
        self.call(py, |c| wire::audit_verify_json(c, checkpoint))
    }

    fn audit_checkpoint(&self, py: Python<'_>, actor: &str) -> PyResult<String> {
        self.call(py, |c| c.audit_checkpoint(actor).map(|cp| cp.to_json()))
    }

    fn audit_export(&self, py: Python<'_>) -> PyResult<String> {
        self.call(py, wire::audit_export_text)
    }

    fn signing_public_key<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let pk = self.call(py, |c| Ok(c.signing_public_key()))?;
        Ok(PyBytes::new(py, pk.as_ref()))
    }

    fn __repr__(&self) -> &'static str {
        if self.closed() {
            "<coffer.Coffer (closed)>"
        } else {
            "<coffer.Coffer>"
        }
    }
}

/// A new random 32-byte master key.
#[pyfunction]
pub(crate) fn generate_master_key<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
    let key = MasterKey::generate().map_err(|e| to_py_err(py, e))?;
    Ok(PyBytes::new(py, key.to_bytes().as_ref()))
}

/// Opens an envelope with explicit keys (see `coffer::wire::open_with_keys_json`): for
/// conformance tests and offline recovery.
#[pyfunction]
pub(crate) fn open_with_keys(py: Python<'_>, envelope: &str, keys: &str) -> PyResult<String> {
    py.detach(|| wire::open_with_keys_json(envelope, keys))
        .map(|s| s.to_string())
        .map_err(|e| to_py_err(py, e))
}
