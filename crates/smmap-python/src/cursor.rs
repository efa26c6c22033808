//! `WindowCursor`: a position in one file, holding at most one region.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyMemoryView;

use crate::args::{AnyInt, Offset, Size};
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
#[pyclass(name = "WindowCursor", module = "smmap.mman", subclass)]
pub(crate) struct PyCursor {
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
        PyCursor {
            inner,
            manager,
            source,
        }
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
        PyCursor {
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
    #[pyo3(signature = (manager = None, regions = None))]
    fn py_new(
        py: Python<'_>,
        manager: Option<Bound<'_, PyStaticManager>>,
        regions: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let Some(regions) = regions.filter(|r| !r.is_none()) else {
            let inner = smmap::WindowCursor::new(manager.as_ref().map(|m| m.get().inner.clone()));
            return Ok(PyCursor::new(inner, manager.map(Bound::unbind), None));
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
            .inner
            .make_cursor(key)
            .map_err(|e| errors::to_py(py, e, Some(&source)))?;
        Ok(PyCursor::new(
            inner,
            Some(manager.unbind()),
            Some(source.unbind()),
        ))
    }

    /// Returns the cursor itself.
    fn __enter__(slf: PyRefMut<'_, Self>) -> PyRefMut<'_, Self> {
        slf
    }

    /// Releases the cursor's region (as `_destroy()`).
    #[pyo3(signature = (exc_type = None, exc_value = None, traceback = None))]
    fn __exit__(
        &mut self,
        exc_type: Option<&Bound<'_, PyAny>>,
        exc_value: Option<&Bound<'_, PyAny>>,
        traceback: Option<&Bound<'_, PyAny>>,
    ) {
        let _ = (exc_type, exc_value, traceback);
        self._destroy();
    }

    /// Releases the cursor's region at once. The cursor stays associated
    /// with its file; the file is forgotten by the manager once no cursor
    /// and no region of it remain.
    fn _destroy(&mut self) {
        self.inner.unuse_region();
    }

    /// Makes this cursor a copy of `rhs` (without releasing what it held:
    /// see `assign()`).
    fn _copy_from(slf: &Bound<'_, Self>, rhs: &Bound<'_, Self>) {
        Self::assign(slf, rhs);
    }

    /// An independent cursor on the same file and region (`copy.copy`).
    fn __copy__(&self, py: Python<'_>) -> Self {
        self.copy(py)
    }

    /// Makes this cursor an independent copy of `rhs`, releasing what it
    /// held before.
    fn assign(slf: &Bound<'_, Self>, rhs: &Bound<'_, Self>) {
        if slf.is(rhs) {
            return;
        }
        let py = slf.py();
        let copy = rhs.borrow().copy(py);
        *slf.borrow_mut() = copy;
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
    /// a file, the matching `OSError` if a region cannot be mapped.
    #[pyo3(signature = (offset = Offset(0), size = Size(0), flags = 0))]
    #[pyo3(text_signature = "($self, offset=0, size=0, flags=0)")]
    fn use_region(
        mut slf: PyRefMut<'_, Self>,
        offset: Offset,
        size: Size,
        flags: i32,
    ) -> PyResult<PyRefMut<'_, Self>> {
        let _ = flags;
        let py = slf.py();
        slf.move_to(py, offset.0, size.as_usize())?;
        Ok(slf)
    }

    /// Releases the current region; does nothing without one. The cursor
    /// stays associated with its file.
    fn unuse_region(&mut self) {
        self.inner.unuse_region();
    }

    /// A `memoryview` of the bytes `[ofs_begin(), ofs_end())`. It keeps its
    /// pages mapped while it lives, even after the cursor moves or the
    /// manager collects the region.
    ///
    /// Raises `ValueError` if the cursor is not valid.
    fn buffer<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyMemoryView>> {
        let region = self.region_or_err()?;
        let start = (self.inner.ofs_begin() - region.ofs_begin()) as usize;
        region::memoryview(py, region.clone(), start, self.inner.size())
    }

    /// The whole current region, which may start before and end after the
    /// cursor's view: a read-only object with the buffer protocol, `len()`,
    /// indexing and slicing. With a `StaticWindowMapManager` it is the whole
    /// file.
    ///
    /// Raises `ValueError` if the cursor is not valid.
    fn map(&self, py: Python<'_>) -> PyResult<Py<MappedView>> {
        Py::new(py, MappedView::whole(self.region_or_err()?.clone()))
    }

    /// True if the cursor holds a region it can read from.
    fn is_valid(&self) -> bool {
        self.inner.is_valid()
    }

    /// True if the cursor is associated with a file.
    fn is_associated(&self) -> bool {
        self.inner.is_associated()
    }

    /// Absolute offset of the first byte of the view (meaningful only when
    /// valid).
    fn ofs_begin(&self) -> u64 {
        self.inner.ofs_begin()
    }

    /// Absolute offset one past the last byte of the view.
    fn ofs_end(&self) -> u64 {
        self.inner.ofs_end()
    }

    /// Number of bytes in the view.
    fn size(&self) -> usize {
        self.inner.size()
    }

    /// The current region, or None if nothing is mapped.
    fn region(&self) -> Option<PyMapRegion> {
        self.inner.region().cloned().map(PyMapRegion::managed)
    }

    /// True if absolute offset `ofs` lies in the cursor's view.
    fn includes_ofs(&self, ofs: AnyInt) -> bool {
        u64::try_from(ofs.0).is_ok_and(|v| self.inner.includes_ofs(v))
    }

    /// The size of the file, as read when the manager first met it.
    ///
    /// Raises `ValueError` if the cursor is associated with no file.
    fn file_size(&self) -> PyResult<u64> {
        self.inner.file_size().ok_or_else(errors::not_associated)
    }

    /// The path or file descriptor the file was named with.
    ///
    /// Raises `ValueError` if the cursor is associated with no file.
    fn path_or_fd(&self, py: Python<'_>) -> PyResult<PyObject> {
        self.associated_source(py)
    }

    /// The path the file was named with.
    ///
    /// Raises `ValueError` if it was named by a file descriptor.
    fn path(&self, py: Python<'_>) -> PyResult<PyObject> {
        let source = self.associated_source(py)?;
        if self.inner.fd().is_some() {
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
        let source = self.associated_source(py)?;
        if self.inner.path().is_some() {
            return Err(PyValueError::new_err(
                "File descriptor queried although mapping was generated from path",
            ));
        }
        Ok(source)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let file = match &self.source {
            Some(s) if self.inner.is_associated() => s.bind(py).repr()?.to_string(),
            _ => "None".to_owned(),
        };
        Ok(if self.inner.is_valid() {
            format!(
                "<WindowCursor {file} [{}, {})>",
                self.inner.ofs_begin(),
                self.inner.ofs_end()
            )
        } else {
            format!("<WindowCursor {file} (no region)>")
        })
    }
}
