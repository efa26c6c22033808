//! `WindowCursor`: a position in one file, holding at most one region.
//!
//! The Python object is `frozen` and keeps its state in a
//! `GILProtected<RefCell<_>>`: the GIL already serializes every access, so
//! the cheap non-atomic `RefCell` replaces PyO3's atomic borrow flag on the
//! hot path (`buf[i]` borrows the cursor on every call). No borrow is held
//! while Python code could run.

use std::cell::{RefCell, RefMut};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::GILProtected;
use pyo3::types::{PyDict, PyMemoryView, PyTuple, PyType};

use crate::args::{arg_or, bind, AnyInt, Offset, Size};
use crate::errors;
use crate::manager::PyStaticManager;
use crate::region::{self, MappedView, PyMapRegion};

/// A pointer into a file of a manager, keeping its region mapped while it
/// uses it (smmap's `WindowCursor`). Cursors come from
/// `manager.make_cursor(path_or_fd)`; `WindowCursor(manager)` makes one
/// associated with no file, which `assign()` can fill.
///
/// `use_region(offset, size)` points it at `offset`; `buffer()` is then a
/// `memoryview` of the bytes `[ofs_begin(), ofs_end())`, which stays readable
/// even after the cursor moves or the manager collects the region.
///
/// A cursor is a context manager: leaving the `with` block releases its
/// region. Dropping it releases everything at once. `copy.copy(cursor)`
/// makes an independent cursor on the same region.
#[pyclass(name = "WindowCursor", module = "smmap.mman", subclass, frozen)]
pub(crate) struct PyCursor {
    state: GILProtected<RefCell<CursorState>>,
}

/// What a cursor holds.
pub(crate) struct CursorState {
    pub(crate) inner: smmap::WindowCursor,
    manager: Option<Py<PyStaticManager>>,
    /// The `path_or_fd` the caller named the file with.
    source: Option<PyObject>,
}

impl PyCursor {
    pub(crate) fn new(
        inner: smmap::WindowCursor,
        manager: Option<Py<PyStaticManager>>,
        source: Option<PyObject>,
    ) -> Self {
        PyCursor::from_state(CursorState {
            inner,
            manager,
            source,
        })
    }

    fn from_state(state: CursorState) -> Self {
        PyCursor {
            state: GILProtected::new(RefCell::new(state)),
        }
    }

    /// The cursor's state, borrowed for the duration of one call.
    #[inline]
    pub(crate) fn state<'py>(&'py self, py: Python<'py>) -> PyResult<RefMut<'py, CursorState>> {
        self.state
            .get(py)
            .try_borrow_mut()
            .map_err(|_| PyRuntimeError::new_err("the cursor is already in use by this thread"))
    }
}

impl CursorState {
    /// The state of `WindowCursor(manager, regions)`.
    fn made(
        py: Python<'_>,
        manager: Option<Bound<'_, PyStaticManager>>,
        regions: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let Some(regions) = regions.filter(|r| !r.is_none()) else {
            let inner = smmap::WindowCursor::new(manager.as_ref().map(|m| m.get().manager(py)));
            return Ok(CursorState {
                inner,
                manager: manager.map(Bound::unbind),
                source: None,
            });
        };
        let Some(manager) = manager else {
            return Err(PyValueError::new_err(
                "a cursor with regions needs a manager",
            ));
        };
        let source = regions.call_method0("path_or_fd")?;
        let key = crate::args::path_or_fd(&source)?;
        let inner = manager
            .get()
            .manager(py)
            .make_cursor(key)
            .map_err(|e| errors::to_py(py, e, Some(&source)))?;
        Ok(CursorState {
            inner,
            manager: Some(manager.unbind()),
            source: Some(source.unbind()),
        })
    }

    /// The Python exception for an engine error on this cursor's file.
    pub(crate) fn error(&self, py: Python<'_>, e: smmap::Error) -> PyErr {
        errors::to_py(py, e, self.source.as_ref().map(|s| s.bind(py)))
    }

    /// Moves the cursor to absolute `offset`; nothing but a range check when
    /// the current region holds it.
    #[inline]
    pub(crate) fn move_to(&mut self, py: Python<'_>, offset: u64, size: usize) -> PyResult<()> {
        match self.inner.use_region(offset, size) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.error(py, e)),
        }
    }

    fn region_or_err(&self) -> PyResult<&smmap::MapRegion> {
        self.inner.region().ok_or_else(errors::invalid_cursor)
    }

    fn associated_source(&self, py: Python<'_>) -> PyResult<PyObject> {
        match (&self.source, self.inner.is_associated()) {
            (Some(s), true) => Ok(s.clone_ref(py)),
            _ => Err(errors::not_associated()),
        }
    }

    fn copy(&self, py: Python<'_>) -> Self {
        CursorState {
            inner: self.inner.clone(),
            manager: self.manager.as_ref().map(|m| m.clone_ref(py)),
            source: self.source.as_ref().map(|s| s.clone_ref(py)),
        }
    }
}

#[pymethods]
impl PyCursor {
    /// A cursor of `manager`, associated with no file; or, with `regions` (a
    /// `MapRegionList`), associated with the file it names.
    #[new]
    #[classmethod]
    #[pyo3(signature = (*args, **kwargs))]
    #[pyo3(text_signature = "(manager=None, regions=None)")]
    fn py_new(
        cls: &Bound<'_, PyType>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let py = cls.py();
        // A Python subclass may have a constructor of its own; its
        // `__init__` (or ours, inherited) associates the cursor.
        if !cls.is(&py.get_type::<PyCursor>()) {
            return Ok(PyCursor::new(smmap::WindowCursor::new(None), None, None));
        }
        let [manager, regions] = bind("WindowCursor()", ["manager", "regions"], args, kwargs)?;
        Ok(PyCursor::from_state(CursorState::made(
            py,
            arg_or(manager, None)?,
            regions,
        )?))
    }

    /// Associates the cursor (see `WindowCursor(manager, regions)`).
    /// Construction already did, with the same arguments; this exists so
    /// that Python subclasses can call `super().__init__(...)`.
    #[pyo3(name = "__init__")]
    #[pyo3(signature = (manager = None, regions = None))]
    #[pyo3(text_signature = "($self, manager=None, regions=None)")]
    fn init(
        &self,
        py: Python<'_>,
        manager: Option<Bound<'_, PyStaticManager>>,
        regions: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let state = CursorState::made(py, manager, regions)?;
        let old = std::mem::replace(&mut *self.state(py)?, state);
        drop(old);
        Ok(())
    }

    /// Returns the cursor itself.
    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Releases the cursor's region (as `_destroy()`).
    #[pyo3(signature = (exc_type = None, exc_value = None, traceback = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        exc_value: Option<&Bound<'_, PyAny>>,
        traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let _ = (exc_type, exc_value, traceback);
        self._destroy(py)
    }

    /// Releases the cursor's region at once. The cursor stays associated
    /// with its file; the file is forgotten by the manager once no cursor
    /// and no region of it remain.
    fn _destroy(&self, py: Python<'_>) -> PyResult<()> {
        self.state(py)?.inner.unuse_region();
        Ok(())
    }

    /// Makes this cursor a copy of `rhs` (without releasing what it held:
    /// see `assign()`).
    fn _copy_from(slf: &Bound<'_, Self>, rhs: &Bound<'_, Self>) -> PyResult<()> {
        Self::assign(slf, rhs)
    }

    /// An independent cursor on the same file and region (`copy.copy`).
    fn __copy__(&self, py: Python<'_>) -> PyResult<Self> {
        Ok(PyCursor::from_state(self.state(py)?.copy(py)))
    }

    /// Makes this cursor an independent copy of `rhs`, releasing what it
    /// held before.
    fn assign(slf: &Bound<'_, Self>, rhs: &Bound<'_, Self>) -> PyResult<()> {
        if slf.is(rhs) {
            return Ok(());
        }
        let py = slf.py();
        let copy = rhs.get().state(py)?.copy(py);
        let old = std::mem::replace(&mut *slf.get().state(py)?, copy);
        // Dropped after the borrow ends: releasing Python references may run
        // Python code.
        drop(old);
        Ok(())
    }

    /// Points the cursor at absolute `offset`, with a view of up to `size`
    /// bytes (0: as many as possible), clamped to the window size and the
    /// file; returns the cursor itself. `flags` is accepted for
    /// compatibility and ignored (files are opened read-only).
    ///
    /// The view may be smaller than asked: the region ends at the file's end
    /// or where a neighbouring region begins. An `offset` at or past the end
    /// of the file leaves the cursor invalid (`is_valid()` is False); that is
    /// not an error.
    ///
    /// Raises `ValueError` for a negative offset or size or a cursor without
    /// a file, the matching `OSError` if a region cannot be mapped:
    /// `FileNotFoundError` if the path is gone, `OSError(ENODEV)` if it is
    /// no longer a regular file, `FileReplacedError` (errno `ESTALE`) if the
    /// path or descriptor now names another file than the one first opened.
    /// When the file cannot be opened, the cursor keeps the region it held;
    /// when a new region cannot be mapped, it holds none. Either way it can
    /// be used again.
    #[pyo3(signature = (offset = Offset(0), size = Size(0), flags = 0))]
    #[pyo3(text_signature = "($self, offset=0, size=0, flags=0)")]
    fn use_region(
        slf: Bound<'_, Self>,
        offset: Offset,
        size: Size,
        flags: i32,
    ) -> PyResult<Bound<'_, Self>> {
        let _ = flags;
        let py = slf.py();
        slf.get()
            .state(py)?
            .move_to(py, offset.0, size.as_usize())?;
        Ok(slf)
    }

    /// Releases the current region; does nothing without one. The cursor
    /// stays associated with its file.
    fn unuse_region(&self, py: Python<'_>) -> PyResult<()> {
        self.state(py)?.inner.unuse_region();
        Ok(())
    }

    /// A `memoryview` of the bytes `[ofs_begin(), ofs_end())`. It keeps its
    /// pages mapped while it lives, even after the cursor moves or the
    /// manager collects the region.
    ///
    /// Raises `ValueError` if the cursor is not valid.
    fn buffer<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyMemoryView>> {
        let (region, start, len) = {
            let st = self.state(py)?;
            let region = st.region_or_err()?;
            let start = (st.inner.ofs_begin() - region.ofs_begin()) as usize;
            (region.clone(), start, st.inner.size())
        };
        region::memoryview(py, region, start, len)
    }

    /// The whole current region, which may start before and end after the
    /// cursor's view: a read-only object with the buffer protocol, `len()`,
    /// indexing and slicing. With a `StaticWindowMapManager` it is the whole
    /// file.
    ///
    /// Raises `ValueError` if the cursor is not valid.
    fn map(&self, py: Python<'_>) -> PyResult<Py<MappedView>> {
        let region = self.state(py)?.region_or_err()?.clone();
        Py::new(py, MappedView::whole(region))
    }

    /// True if the cursor holds a region it can read from.
    fn is_valid(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.state(py)?.inner.is_valid())
    }

    /// True if the cursor is associated with a file.
    fn is_associated(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.state(py)?.inner.is_associated())
    }

    /// Absolute offset of the first byte of the view (meaningful only when
    /// valid).
    fn ofs_begin(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.state(py)?.inner.ofs_begin())
    }

    /// Absolute offset one past the last byte of the view.
    fn ofs_end(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.state(py)?.inner.ofs_end())
    }

    /// Number of bytes in the view.
    fn size(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.state(py)?.inner.size())
    }

    /// The current region, or None if nothing is mapped.
    fn region(&self, py: Python<'_>) -> PyResult<Option<PyMapRegion>> {
        Ok(self
            .state(py)?
            .inner
            .region()
            .cloned()
            .map(PyMapRegion::managed))
    }

    /// True if absolute offset `ofs` lies in the cursor's view.
    fn includes_ofs(&self, py: Python<'_>, ofs: AnyInt) -> PyResult<bool> {
        let st = self.state(py)?;
        Ok(u64::try_from(ofs.0).is_ok_and(|v| st.inner.includes_ofs(v)))
    }

    /// The size of the file, as read when the manager first met it.
    ///
    /// Raises `ValueError` if the cursor is associated with no file.
    fn file_size(&self, py: Python<'_>) -> PyResult<u64> {
        self.state(py)?
            .inner
            .file_size()
            .ok_or_else(errors::not_associated)
    }

    /// The path or file descriptor the file was named with.
    ///
    /// Raises `ValueError` if the cursor is associated with no file.
    fn path_or_fd(&self, py: Python<'_>) -> PyResult<PyObject> {
        self.state(py)?.associated_source(py)
    }

    /// The path the file was named with.
    ///
    /// Raises `ValueError` if it was named by a file descriptor.
    fn path(&self, py: Python<'_>) -> PyResult<PyObject> {
        let st = self.state(py)?;
        let source = st.associated_source(py)?;
        if st.inner.fd().is_some() {
            return Err(PyValueError::new_err(
                "Path queried although mapping was applied to a file descriptor",
            ));
        }
        Ok(source)
    }

    /// The file descriptor the file was named with (it may have been closed
    /// by its owner since).
    ///
    /// Raises `ValueError` if it was named by a path.
    fn fd(&self, py: Python<'_>) -> PyResult<PyObject> {
        let st = self.state(py)?;
        let source = st.associated_source(py)?;
        if st.inner.path().is_some() {
            return Err(PyValueError::new_err(
                "File descriptor queried although mapping was generated from path",
            ));
        }
        Ok(source)
    }

    /// A short description, for debugging.
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let (source, range) = {
            let st = self.state(py)?;
            let source = st
                .source
                .as_ref()
                .filter(|_| st.inner.is_associated())
                .map(|s| s.clone_ref(py));
            let range = st
                .inner
                .is_valid()
                .then(|| (st.inner.ofs_begin(), st.inner.ofs_end()));
            (source, range)
        };
        // repr() of the path runs Python code: no borrow is held here.
        let file = match source {
            Some(s) => s.bind(py).repr()?.to_string(),
            None => "None".to_owned(),
        };
        Ok(match range {
            Some((begin, end)) => format!("<WindowCursor {file} [{begin}, {end})>"),
            None => format!("<WindowCursor {file} (no region)>"),
        })
    }
}
