//! The store from Python: a handle over the facade whose methods take and give the JSON forms
//! of `coffer::wire` (the same the C library uses), with the GIL released around the work.
//! The Python package (`coffer._vault`) turns them into Python objects.

use std::sync::{Arc, RwLock};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyModule, PyString};

use coffer::clock::FixedClock;
use coffer::record::CustomerRecord;
use coffer::retention::Event;
use coffer::{Coffer, Error, ErrorKind, MasterKey, wire};

use crate::{RecordInput, error_from_kind, guarded, to_py_err};

/// An open store. Thread-safe: share one between threads; calls release the GIL.
#[pyclass(frozen, module = "coffer._native")]
pub(crate) struct Vault {
    inner: RwLock<Option<Arc<Coffer>>>,
    /// Set when the store was opened with a fixed clock (for tests and back-dated runs).
    clock: Option<Arc<FixedClock>>,
}

/// An envelope held parsed, for `coffer.SealedRecord` (issue 18): sealing hands it over
/// without writing JSON, revealing takes it back without reading JSON; its JSON is written
/// when the host asks for it, and text from the host is parsed once. Shared, never copied.
#[pyclass(frozen, module = "coffer._native", name = "Envelope")]
pub(crate) struct NativeEnvelope(Arc<coffer::Envelope>);

#[pymethods]
impl NativeEnvelope {
    /// Reads an envelope's JSON (its MAC is checked when it is revealed).
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &str) -> PyResult<Self> {
        let env = guarded(py, || coffer::Envelope::from_json(text))?;
        Ok(NativeEnvelope(Arc::new(env)))
    }

    /// The envelope's JSON, what the host stores (the Rust copy is wiped once Python has its
    /// `str`).
    fn to_json<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, &self.0.to_json())
    }

    fn __repr__(&self) -> &'static str {
        "<coffer._native.Envelope>"
    }
}

/// Python's cyclic garbage collector held off while views are built, and started again (if it
/// was running) when dropped, on success or error. The views hold strings, which cannot form
/// cycles, yet making tens of thousands of objects ran a young-generation collection every few
/// hundred: a fifth of a `reveal_many` call from Python (1,000 envelopes, 17.6 ms against
/// 13.9 ms without them, when each field was a Python object). Through the C API
/// (`PyGC_Disable`, Python 3.10).
struct GcPaused<'py> {
    _gil: Python<'py>,
    was_enabled: bool,
}

impl<'py> GcPaused<'py> {
    fn new(py: Python<'py>) -> Self {
        // SAFETY: called holding the GIL (`py`); PyGC_Disable turns the collector off and
        // returns whether it was on, and cannot fail.
        let was_enabled = unsafe { pyo3::ffi::PyGC_Disable() } != 0;
        GcPaused {
            _gil: py,
            was_enabled,
        }
    }
}

impl Drop for GcPaused<'_> {
    fn drop(&mut self) {
        if self.was_enabled {
            // SAFETY: the GIL is held for `'py`, which this guard does not outlive;
            // PyGC_Enable turns the collector on and cannot fail.
            unsafe { pyo3::ffi::PyGC_Enable() };
        }
    }
}

/// Views as Python objects, built directly: each a `coffer.View` made through
/// `ViewBase.__new__` (so that `View.__new__`, which reads the JSON form, is not run), holding
/// its fields natively.
fn views_to_py<'py>(py: Python<'py>, views: Vec<coffer::View>) -> PyResult<Vec<Py<PyAny>>> {
    let _paused = GcPaused::new(py);
    let class = vault_module(py)?.getattr(pyo3::intern!(py, "View"))?;
    let new = py
        .get_type::<ViewBase>()
        .getattr(pyo3::intern!(py, "__new__"))?;
    views
        .into_iter()
        .map(|v| {
            let record = PyString::new(py, &v.record);
            let policy_version = PyString::new(py, &v.policy_version);
            let audit_seq = v.audit_seq;
            let fields = Bound::new(py, ViewFields(v))?;
            Ok(new
                .call1((&class, record, policy_version, audit_seq, fields))?
                .unbind())
        })
        .collect()
}

/// `coffer._vault`, imported once.
fn vault_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static MODULE: pyo3::sync::PyOnceLock<Py<PyModule>> = pyo3::sync::PyOnceLock::new();
    Ok(MODULE
        .get_or_try_init(py, || py.import("coffer._vault").map(Bound::unbind))?
        .bind(py))
}

/// A revealed view's fields as the reveal made them, handed to [`ViewBase`], which keeps them.
/// The revealed values are in memory wiped when the view is dropped.
#[pyclass(frozen, module = "coffer._native", name = "ViewFields")]
pub(crate) struct ViewFields(coffer::View);

#[pymethods]
impl ViewFields {
    fn __repr__(&self) -> &'static str {
        "<coffer._native.ViewFields>"
    }
}

/// Where a view's fields are.
enum ViewSource {
    /// As the reveal made them: a field's `FieldView`, and its value's `str`, are made when it
    /// is asked for, and values nobody reads never become Python strings.
    Native(Py<ViewFields>),
    /// `FieldView`s already made: a view read from the JSON form, or unpickled. Copied when
    /// the view is made, and never changed.
    Made(Py<PyDict>),
}

/// The native part of `coffer.View` (issue 18): a read-only mapping from field path to
/// `FieldView`, with the record id, the policy version and the audit entry. Its mapping
/// methods are C slots, so that reading a view's fields runs no Python-level method (the
/// Python class adds `Mapping`'s mixins, pickling and `repr`). Immutable, so threads may
/// share it with no lock.
#[pyclass(
    frozen,
    subclass,
    mapping,
    module = "coffer._native",
    name = "ViewBase"
)]
pub(crate) struct ViewBase {
    record: Py<PyString>,
    policy_version: Py<PyString>,
    audit_seq: u64,
    fields: ViewSource,
}

#[pymethods]
impl ViewBase {
    /// `fields` is a reveal's [`ViewFields`] or a dict of `FieldView`s (copied).
    #[new]
    fn new(
        record: Bound<'_, PyString>,
        policy_version: Bound<'_, PyString>,
        audit_seq: u64,
        fields: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let fields = match fields.cast::<ViewFields>() {
            Ok(native) => ViewSource::Native(native.clone().unbind()),
            Err(_) => ViewSource::Made(fields.cast::<PyDict>()?.copy()?.unbind()),
        };
        Ok(ViewBase {
            record: record.unbind(),
            policy_version: policy_version.unbind(),
            audit_seq,
            fields,
        })
    }

    /// The record id.
    #[getter]
    fn record(&self, py: Python<'_>) -> Py<PyString> {
        self.record.clone_ref(py)
    }

    /// The policy version that decided.
    #[getter]
    fn policy_version(&self, py: Python<'_>) -> Py<PyString> {
        self.policy_version.clone_ref(py)
    }

    /// The audit entry that recorded the reveal.
    #[getter]
    fn audit_seq(&self) -> u64 {
        self.audit_seq
    }

    /// What a view holds, shown to Python's cycle collector: a view made from a dict
    /// (unpickled, or `View._of`) holds whatever that dict held, which may lead back to the
    /// view. The collector breaks such a cycle by clearing one of the other objects in it (a
    /// view, being immutable, has no `__clear__`).
    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.record)?;
        visit.call(&self.policy_version)?;
        match &self.fields {
            ViewSource::Native(v) => visit.call(v),
            ViewSource::Made(d) => visit.call(d),
        }
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        match &self.fields {
            ViewSource::Native(v) => v.get().0.fields.len(),
            ViewSource::Made(d) => d.bind(py).len(),
        }
    }

    fn __getitem__<'py>(&self, path: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = path.py();
        let found = match &self.fields {
            ViewSource::Native(v) => match native_field(&v.get().0, path) {
                Some(f) => Some(field_view(py, f)?),
                None => None,
            },
            ViewSource::Made(d) => d.bind(py).get_item(path)?,
        };
        found.ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(path.clone().unbind()))
    }

    fn __contains__(&self, path: &Bound<'_, PyAny>) -> PyResult<bool> {
        match &self.fields {
            ViewSource::Native(v) => Ok(native_field(&v.get().0, path).is_some()),
            ViewSource::Made(d) => d.bind(path.py()).contains(path),
        }
    }

    /// The field paths, in order.
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyIterator>> {
        match &self.fields {
            ViewSource::Native(v) => {
                pyo3::types::PyList::new(py, path_texts(py, v.get().0.fields.keys()))?.try_iter()
            }
            ViewSource::Made(d) => d.bind(py).try_iter(),
        }
    }

    /// Every `(path, FieldView)` pair, in order, each field view made now (`View.items()`
    /// iterates this).
    fn _items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyIterator>> {
        match &self.fields {
            ViewSource::Native(v) => {
                let fields = &v.get().0.fields;
                let paths = path_texts(py, fields.keys());
                let pairs = paths
                    .into_iter()
                    .zip(fields.values())
                    .map(|(path, f)| Ok((path, field_view(py, f)?)))
                    .collect::<PyResult<Vec<_>>>()?;
                pyo3::types::PyList::new(py, pairs)?.try_iter()
            }
            ViewSource::Made(d) => d.bind(py).items().try_iter(),
        }
    }

    /// Every `FieldView`, in path order, each made now (`View.values()` iterates this).
    fn _values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyIterator>> {
        match &self.fields {
            ViewSource::Native(v) => {
                let views = v
                    .get()
                    .0
                    .fields
                    .values()
                    .map(|f| field_view(py, f))
                    .collect::<PyResult<Vec<_>>>()?;
                pyo3::types::PyList::new(py, views)?.try_iter()
            }
            ViewSource::Made(d) => d.bind(py).values().try_iter(),
        }
    }

    /// One field's value when it is revealed or masked, else `None`; with no `FieldView` made.
    fn value<'py>(&self, path: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = path.py();
        match &self.fields {
            ViewSource::Native(v) => Ok(
                match native_field(&v.get().0, path).and_then(|f| f.parts().1) {
                    Some(value) => PyString::new(py, value).into_any(),
                    None => py.None().into_bound(py),
                },
            ),
            ViewSource::Made(d) => match d.bind(py).get_item(path)? {
                Some(f) => f.getattr(pyo3::intern!(py, "value")),
                None => Ok(py.None().into_bound(py)),
            },
        }
    }
}

/// The field at `path` (a `str`; anything else is no path) of a reveal's view.
fn native_field<'v>(
    view: &'v coffer::View,
    path: &Bound<'_, PyAny>,
) -> Option<&'v coffer::FieldView> {
    view.fields
        .get(path.cast::<PyString>().ok()?.to_str().ok()?)
}

/// A field's `FieldView`, made now.
fn field_view<'py>(py: Python<'py>, f: &coffer::FieldView) -> PyResult<Bound<'py, PyAny>> {
    // One interned string per state name, made once: the core's list sizes the table.
    static STATES: pyo3::sync::PyOnceLock<[Py<PyString>; coffer::FieldView::STATES.len()]> =
        pyo3::sync::PyOnceLock::new();
    let states = STATES.get_or_init(py, || {
        coffer::FieldView::STATES.map(|s| PyString::intern(py, s).unbind())
    });
    let (_, value, reason) = f.parts();
    let state = states[f.state_index()].bind(py);
    FieldViews::current(py)?.make(state, value, reason)
}

/// Python strings of the field paths views have had, shared by every view (paths name fields;
/// they hold no value). At most [`MAX_SHARED_PATHS`]: past that, as custom fields could make
/// any number of paths, each view makes its own.
static PATHS: pyo3::sync::PyOnceLock<
    std::sync::Mutex<std::collections::HashMap<String, Py<PyString>, foldhash::fast::RandomState>>,
> = pyo3::sync::PyOnceLock::new();

const MAX_SHARED_PATHS: usize = 10_000;

/// The Python strings of a view's field paths, shared when they can be. The lock is taken
/// once for them all, holding the GIL: no Python code runs while it is held (making a string
/// runs none), so no thread can wait for it while holding what this one needs.
fn path_texts<'a, 'py>(
    py: Python<'py>,
    paths: impl ExactSizeIterator<Item = &'a String>,
) -> Vec<Bound<'py, PyString>> {
    let mut shared = PATHS
        .get_or_init(py, Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut texts = Vec::with_capacity(paths.len());
    for path in paths {
        let text = match shared.get(path.as_str()) {
            Some(text) => text.bind(py).clone(),
            None => {
                let text = PyString::new(py, path);
                if shared.len() < MAX_SHARED_PATHS {
                    shared.insert(path.clone(), text.clone().unbind());
                }
                text
            }
        };
        texts.push(text);
    }
    texts
}

/// Makes `coffer.FieldView`s. It is a `NamedTuple`: a tuple subclass with no storage of its
/// own, whose instances CPython's `tuple.__new__` makes with the class's `tp_alloc` and the
/// items set in place. That is done here directly, without the argument tuple, the items'
/// tuple and the call that going through `tuple.__new__` costs (issue 18: a sixth of a Python
/// `reveal_many`). A class not laid out as a tuple (a changed `FieldView`) goes through
/// `tuple.__new__`.
struct FieldViews<'py> {
    class: Bound<'py, pyo3::types::PyType>,
    /// The class's `tp_alloc`, when its instances are laid out as a tuple's.
    alloc: Option<pyo3::ffi::allocfunc>,
}

/// `coffer._vault`'s namespace, and the `FieldView` class first found in it with its
/// `tp_alloc` (if laid out as a tuple), so that a field view is made without looking the
/// class's layout up again. Each use reads the namespace's `FieldView` (one dict lookup), and
/// looks a class that is not the first one up afresh.
static FIELD_VIEW: pyo3::sync::PyOnceLock<(
    Py<PyDict>,
    Py<pyo3::types::PyType>,
    Option<pyo3::ffi::allocfunc>,
)> = pyo3::sync::PyOnceLock::new();

impl<'py> FieldViews<'py> {
    /// For `coffer._vault.FieldView` as it is now.
    fn current(py: Python<'py>) -> PyResult<Self> {
        let name = pyo3::intern!(py, "FieldView");
        let (namespace, first, alloc) = FIELD_VIEW.get_or_try_init(py, || {
            let namespace = vault_module(py)?.dict();
            let first = FieldViews::new(py, namespace.as_any().get_item(name)?)?;
            PyResult::Ok((namespace.unbind(), first.class.unbind(), first.alloc))
        })?;
        let class = namespace.bind(py).get_item(name)?.ok_or_else(|| {
            pyo3::exceptions::PyAttributeError::new_err("coffer._vault.FieldView")
        })?;
        if class.is(first) {
            return Ok(FieldViews {
                class: first.bind(py).clone(),
                alloc: *alloc,
            });
        }
        FieldViews::new(py, class)
    }

    fn new(py: Python<'py>, class: Bound<'py, PyAny>) -> PyResult<Self> {
        let class = class.cast_into::<pyo3::types::PyType>()?;
        let tuple = py.get_type::<pyo3::types::PyTuple>();
        let mut same_layout = class.is_subclass(&tuple)?;
        for size in [
            "__basicsize__",
            "__itemsize__",
            "__dictoffset__",
            "__weakrefoffset__",
        ] {
            same_layout = same_layout && class.getattr(size)?.eq(tuple.getattr(size)?)?;
        }
        let alloc = if same_layout {
            // SAFETY: `class` is a live type object (held by `class`), and `Py_tp_alloc` is a
            // slot every type has (inherited from `object` when not its own); PyType_GetSlot
            // reads it for heap and static types alike from Python 3.10, the least this module
            // supports.
            let slot =
                unsafe { pyo3::ffi::PyType_GetSlot(class.as_type_ptr(), pyo3::ffi::Py_tp_alloc) };
            if slot.is_null() {
                None
            } else {
                // SAFETY: the `Py_tp_alloc` slot holds an `allocfunc`, and a data pointer and a
                // function pointer have the same size on every platform CPython supports.
                Some(unsafe {
                    std::mem::transmute::<*mut std::ffi::c_void, pyo3::ffi::allocfunc>(slot)
                })
            }
        } else {
            None
        };
        Ok(FieldViews { class, alloc })
    }

    fn make(
        &self,
        state: &Bound<'py, PyString>,
        value: Option<&str>,
        reason: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = self.class.py();
        let Some(alloc) = self.alloc else {
            return py
                .get_type::<pyo3::types::PyTuple>()
                .getattr("__new__")?
                .call1((&self.class, (state, value, reason)));
        };
        let text = |t: Option<&str>| match t {
            Some(t) => PyString::new(py, t).into_any(),
            None => py.None().into_bound(py),
        };
        let items = [state.clone().into_any(), text(value), text(reason)];
        // SAFETY: `alloc` is the class's own `tp_alloc`, called as `tuple.__new__` calls it for
        // a subclass: with the class and its item count. It returns a new reference (or NULL
        // with an exception set) to a zeroed instance whose three items are NULL, which a
        // tuple's traversal and deallocation both accept until they are set.
        let obj = unsafe { alloc(self.class.as_type_ptr(), 3) };
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        // SAFETY: `obj` is the new, owned reference just checked to be non-NULL.
        let obj = unsafe { Bound::from_owned_ptr(py, obj) };
        for (i, item) in (0..).zip(items) {
            // SAFETY: `obj` is a tuple (its class is a tuple subclass laid out as a tuple) of
            // three items that only this function holds (its reference count is 1, as
            // PyTuple_SetItem requires), `i` is below three, and PyTuple_SetItem takes over
            // `item`'s reference, also when it fails.
            if unsafe { pyo3::ffi::PyTuple_SetItem(obj.as_ptr(), i, item.into_ptr()) } != 0 {
                return Err(PyErr::fetch(py));
            }
        }
        // SAFETY: `obj` is a live object of a collected type (a tuple's), held here. Laid out as
        // a tuple, with no `__dict__`, and holding only strings and `None`, it cannot be part of
        // a reference cycle, so the collector need not track it: CPython itself untracks such
        // tuples when it first meets them. Untracking changes nothing else about the object.
        unsafe { pyo3::ffi::PyObject_GC_UnTrack(obj.as_ptr().cast()) };
        Ok(obj)
    }
}

fn time_arg(py: Python<'_>, text: &str) -> PyResult<time::OffsetDateTime> {
    wire::parse_time(text).map_err(|e| to_py_err(py, e))
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
        guarded(py, move || f(&c))
    }
}

#[pymethods]
impl Vault {
    /// Opens (or creates) the store at `path` with a 32-byte master key and open options (JSON);
    /// `clock` (RFC 3339) fixes the store's clock at that instant until `set_clock` moves it.
    #[staticmethod]
    #[pyo3(signature = (path, master_key, options=None, clock=None))]
    fn open(
        py: Python<'_>,
        path: &str,
        master_key: &[u8],
        options: Option<&str>,
        clock: Option<&str>,
    ) -> PyResult<Self> {
        let key = MasterKey::from_bytes(master_key).map_err(|e| to_py_err(py, e))?;
        let fixed = match clock {
            Some(t) => Some(Arc::new(FixedClock::new(time_arg(py, t)?))),
            None => None,
        };
        let path = path.to_owned();
        let options = options.map(str::to_owned);
        let clock = fixed.clone();
        let c = py
            .detach(move || {
                let mut opts = match options.as_deref() {
                    Some(o) => wire::open_options_from_json(o)?,
                    None => coffer::OpenOptions::default(),
                };
                if let Some(clock) = clock {
                    opts.clock = clock;
                }
                Coffer::open_with(&path, &key, opts)
            })
            .map_err(|e| to_py_err(py, e))?;
        Ok(Vault {
            inner: RwLock::new(Some(Arc::new(c))),
            clock: fixed,
        })
    }

    /// Moves the fixed clock (only for a store opened with `clock`).
    fn set_clock(&self, py: Python<'_>, at: &str) -> PyResult<()> {
        let at = time_arg(py, at)?;
        match &self.clock {
            Some(c) => {
                c.set(at);
                Ok(())
            }
            None => Err(error_from_kind(
                py,
                ErrorKind::InvalidArgument,
                "set_clock: this Coffer was opened with the system clock".into(),
            )),
        }
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
    fn seal(
        &self,
        py: Python<'_>,
        record: &Bound<'_, PyAny>,
        actor: &str,
    ) -> PyResult<NativeEnvelope> {
        let record = crate::record_from(py, record)?;
        self.call(py, |c| c.seal(record, actor))
            .map(|e| NativeEnvelope(Arc::new(e)))
    }

    /// Seals a list of records (dicts, JSON `str` or UTF-8 `bytes`) with one audit
    /// transaction: one item per record, in order, the envelope's JSON or the `CofferError`
    /// (not raised) of a record that could not be read or failed validation. A wrong type
    /// raises `TypeError` for the whole call.
    fn seal_many<'py>(
        &self,
        py: Python<'py>,
        records: &Bound<'py, pyo3::types::PyList>,
        actor: &str,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let coffer_error = py.import("coffer._errors")?.getattr("CofferError")?;
        // Each record is read (a dict) or its text taken (anything else) with the GIL; the
        // texts are parsed, and everything sealed, in one call without it. A record that cannot
        // be read or parsed gets its error in its slot.
        let mut inputs = Vec::with_capacity(records.len());
        let mut slots: Vec<Option<PyErr>> = Vec::with_capacity(records.len());
        for item in records.iter() {
            match crate::record_input(&item) {
                Ok(input) => {
                    inputs.push(Some(input));
                    slots.push(None);
                }
                Err(e) if e.is_instance(py, &coffer_error) => {
                    inputs.push(None);
                    slots.push(Some(e));
                }
                Err(e) => return Err(e),
            }
        }
        let (unparsed, sealed) = self.call(py, move |c| {
            let mut valid = Vec::with_capacity(inputs.len());
            let unparsed: Vec<Option<Error>> = inputs
                .into_iter()
                .map(|input| {
                    let parsed = match input {
                        Some(RecordInput::Read(r)) => Ok(r),
                        Some(RecordInput::Text(t)) => CustomerRecord::from_json_bytes(t.bytes()),
                        None => return None,
                    };
                    match parsed {
                        Ok(r) => {
                            valid.push(r);
                            None
                        }
                        Err(e) => Some(e),
                    }
                })
                .collect();
            Ok((unparsed, c.seal_many(valid, actor)?))
        })?;
        for (slot, e) in slots.iter_mut().zip(unparsed) {
            if let Some(e) = e {
                *slot = Some(to_py_err(py, e));
            }
        }
        let mut sealed = sealed.into_iter();
        let mut out = Vec::with_capacity(slots.len());
        for slot in slots {
            let item = match slot {
                Some(e) => e.into_value(py).into_bound(py).into_any(),
                None => match sealed.next() {
                    Some(Ok(env)) => Bound::new(py, NativeEnvelope(Arc::new(env)))?.into_any(),
                    Some(Err(e)) => to_py_err(py, e).into_value(py).into_bound(py).into_any(),
                    None => {
                        return Err(error_from_kind(
                            py,
                            ErrorKind::Internal,
                            "a batch returned fewer results than records".into(),
                        ));
                    }
                },
            };
            out.push(item);
        }
        Ok(out)
    }

    /// The view, as a `coffer.View` built here (no JSON in between).
    fn reveal(
        &self,
        py: Python<'_>,
        envelope: &NativeEnvelope,
        access: &str,
    ) -> PyResult<Py<PyAny>> {
        let env = Arc::clone(&envelope.0);
        let view = self.call(py, move |c| {
            c.reveal_many(&[env], &wire::access_from_json(access)?)
                .map(|mut v| v.pop())
        })?;
        let view = view.ok_or_else(|| {
            error_from_kind(py, ErrorKind::Internal, "reveal produced no view".into())
        })?;
        Ok(views_to_py(py, vec![view])?.remove(0))
    }

    /// The views, as a list of `coffer.View` built here (no JSON in between), of envelopes
    /// held natively.
    fn reveal_many(
        &self,
        py: Python<'_>,
        envelopes: Vec<PyRef<'_, NativeEnvelope>>,
        access: &str,
    ) -> PyResult<Vec<Py<PyAny>>> {
        if envelopes.len() > wire::MAX_BATCH {
            return Err(to_py_err(
                py,
                Error::LimitExceeded {
                    what: "envelopes".into(),
                    limit: wire::MAX_BATCH,
                    unit: "items",
                },
            ));
        }
        let envs: Vec<Arc<coffer::Envelope>> = envelopes.iter().map(|e| Arc::clone(&e.0)).collect();
        drop(envelopes);
        let views = self.call(py, move |c| {
            c.reveal_many(&envs, &wire::access_from_json(access)?)
        })?;
        views_to_py(py, views)
    }

    fn redact(&self, py: Python<'_>, envelopes: &str, actor: &str) -> PyResult<String> {
        self.call(py, |c| wire::redact_many_json(c, envelopes, actor))
            .map(|s| s.to_string())
    }

    fn search(&self, py: Python<'_>, access: &str, request: &str) -> PyResult<String> {
        self.call(py, |c| wire::search_json(c, access, request))
    }

    /// A compliance report (request and answer as JSON; see `coffer::wire::report_json`). A
    /// subject report may hold values: the Python side keeps it only inside `Report`.
    fn report(&self, py: Python<'_>, request: &str) -> PyResult<String> {
        self.call(py, |c| wire::report_json(c, request))
            .map(|s| s.to_string())
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

    fn audit_export_expanded(&self, py: Python<'_>) -> PyResult<String> {
        self.call(py, wire::audit_export_expanded_text)
    }

    fn signing_public_key<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let pk = self.call(py, |c| Ok(c.signing_public_key()))?;
        Ok(PyBytes::new(py, pk.as_ref()))
    }

    // ---- retention ----

    fn record_event(
        &self,
        py: Python<'_>,
        tenant: &str,
        subject: &str,
        event: &str,
        date: &str,
        actor: &str,
    ) -> PyResult<()> {
        self.call(py, |c| {
            let e = Event::parse(event).ok_or_else(|| Error::InvalidArgument {
                name: "event",
                reason: "not a lifecycle event".into(),
            })?;
            c.record_event(tenant, subject, e, wire::parse_date(date)?, actor)
        })
    }

    fn place_hold(&self, py: Python<'_>, hold: &str, actor: &str) -> PyResult<i64> {
        self.call(py, |c| c.place_hold(wire::hold_from_json(hold)?, actor))
    }

    fn release_hold(&self, py: Python<'_>, hold: i64, actor: &str) -> PyResult<()> {
        self.call(py, |c| c.release_hold(hold, actor))
    }

    fn holds(&self, py: Python<'_>) -> PyResult<String> {
        self.call(py, |c| json_of(&c.holds(None)?))
    }

    fn erase(&self, py: Python<'_>, tenant: &str, subject: &str, actor: &str) -> PyResult<String> {
        self.call(py, |c| json_of(&c.erase(tenant, subject, actor)?))
    }

    fn sweep(&self, py: Python<'_>, actor: &str) -> PyResult<String> {
        self.call(py, |c| Ok(wire::sweep_to_json(&c.sweep(actor)?)))
    }

    fn approve(&self, py: Python<'_>, list: i64, approver: &str, role: &str) -> PyResult<()> {
        self.call(py, |c| c.approve(list, approver, role))
    }

    fn execute(&self, py: Python<'_>, list: i64, actor: &str) -> PyResult<String> {
        self.call(py, |c| Ok(c.execute(list, actor)?.to_json()))
    }

    // ---- archives ----

    /// Exports envelopes (a JSON array) with their keys re-wrapped under `archive_key` (32
    /// bytes): the signed bundle as JSON.
    fn archive_export(
        &self,
        py: Python<'_>,
        envelopes: &str,
        archive_key: &[u8],
        access: &str,
    ) -> PyResult<String> {
        self.call(py, |c| {
            let envs = wire::envelopes_from_json(envelopes, wire::MAX_BATCH)?;
            let access = wire::access_from_json(access)?;
            Ok(c.archive_export(&envs, archive_key, &access)?.to_json())
        })
    }

    /// Restores a bundle into this store: the restored envelopes, as JSON texts.
    fn archive_restore(
        &self,
        py: Python<'_>,
        bundle: &str,
        archive_key: &[u8],
        public_key: &[u8],
        actor: &str,
    ) -> PyResult<Vec<String>> {
        self.call(py, |c| {
            let b = coffer::ArchiveBundle::from_json(bundle)?;
            let envs = c.archive_restore(&b, archive_key, public_key, actor)?;
            Ok(envs.iter().map(|e| e.to_json().to_string()).collect())
        })
    }

    // ---- keys ----

    fn rotate_master_key(
        &self,
        py: Python<'_>,
        new_master_key: &[u8],
        actor: &str,
    ) -> PyResult<()> {
        let key = MasterKey::from_bytes(new_master_key).map_err(|e| to_py_err(py, e))?;
        self.call(py, |c| c.rotate_master_key(&key, actor))
    }

    fn rotate_kek(&self, py: Python<'_>, actor: &str) -> PyResult<u32> {
        self.call(py, |c| c.rotate_kek(actor))
    }

    fn continue_kek_rotation(&self, py: Python<'_>, actor: &str) -> PyResult<usize> {
        self.call(py, |c| c.continue_kek_rotation(1000, actor))
    }

    fn retire_keks(&self, py: Python<'_>, actor: &str) -> PyResult<Vec<u32>> {
        self.call(py, |c| c.retire_keks(actor))
    }

    fn kek_versions(&self, py: Python<'_>) -> PyResult<Vec<u32>> {
        self.call(py, |c| Ok(c.kek_versions()))
    }

    fn backup(&self, py: Python<'_>, path: &str, actor: &str) -> PyResult<String> {
        self.call(py, |c| json_of(&c.backup(path, actor)?))
    }

    fn rotate_data_key(
        &self,
        py: Python<'_>,
        tenant: &str,
        subject: &str,
        category: &str,
        actor: &str,
    ) -> PyResult<u32> {
        self.call(py, |c| c.rotate_data_key(tenant, subject, category, actor))
    }

    fn rotate_index_key(&self, py: Python<'_>, actor: &str) -> PyResult<u32> {
        self.call(py, |c| c.rotate_index_key(actor))
    }

    fn retire_index_epoch(&self, py: Python<'_>, epoch: u32, actor: &str) -> PyResult<()> {
        self.call(py, |c| c.retire_index_epoch(epoch, actor))
    }

    // ---- audit subscription ----

    /// Calls `callback(entry_json)` for every audit entry committed from now on, on the thread
    /// that committed it. An exception in the callback is reported with `sys.unraisablehook`
    /// and never undoes the commit.
    fn audit_subscribe(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        if !callback.bind(py).is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "audit subscriber must be callable",
            ));
        }
        let c = self.get(py)?;
        // Registered with the GIL released: another thread may be notifying subscribers and
        // waiting for the GIL to call one; holding it here while Coffer takes its list's lock
        // could deadlock the two.
        py.detach(move || {
            c.subscribe(move |entry| {
                let Ok(text) = serde_json::to_string(entry) else {
                    return;
                };
                Python::attach(|py| {
                    if let Err(e) = callback.call1(py, (text,)) {
                        e.write_unraisable(py, Some(callback.bind(py)));
                    }
                });
            })
        });
        Ok(())
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
    guarded(py, || wire::open_with_keys_json(envelope, keys)).map(|s| s.to_string())
}

fn json_of<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::Internal {
        message: format!("serialising an answer: {e}"),
    })
}

/// Restores a backup as the store at `target` (see `Coffer::restore`); `options` is JSON
/// (`{"actor", "certificates", "no_later_destructions"}`); returns the report (JSON).
#[pyfunction]
pub(crate) fn restore(
    py: Python<'_>,
    backup: &str,
    target: &str,
    master_key: &[u8],
    options: &str,
) -> PyResult<String> {
    let key = MasterKey::from_bytes(master_key).map_err(|e| to_py_err(py, e))?;
    guarded(py, || {
        coffer::wire::restore_json(backup, target, &key, options)
    })
}

/// Verifies a destruction certificate (JSON) against a store's Ed25519 public key.
#[pyfunction]
pub(crate) fn certificate_verify(
    py: Python<'_>,
    certificate: &str,
    public_key: &[u8],
) -> PyResult<()> {
    coffer::Certificate::from_json(certificate)
        .and_then(|c| c.verify(public_key))
        .map_err(|e| to_py_err(py, e))
}

/// Renders a report's JSON as `json`, `markdown` or `html`.
#[pyfunction]
pub(crate) fn render_report(py: Python<'_>, report: &str, format: &str) -> PyResult<String> {
    coffer::wire::render_report_json(report, format)
        .map(|s| s.to_string())
        .map_err(|e| to_py_err(py, e))
}

/// Verifies an archive bundle offline against the exporting store's public key, and its
/// contents too when `archive_key` is given: `(envelopes, keys, contents_checked, shredded)`.
#[pyfunction]
#[pyo3(signature = (bundle, public_key, archive_key=None))]
pub(crate) fn archive_verify(
    py: Python<'_>,
    bundle: &str,
    public_key: &[u8],
    archive_key: Option<&[u8]>,
) -> PyResult<(usize, usize, bool, usize)> {
    py.detach(|| {
        let b = coffer::ArchiveBundle::from_json(bundle)?;
        b.verify(public_key, archive_key)
    })
    .map(|c| (c.envelopes, c.keys, c.contents_checked, c.shredded))
    .map_err(|e| to_py_err(py, e))
}
