//! `MapRegion` and `MappedView`, the read-only object with the buffer
//! protocol that `map()`, `region.buffer()` and `cursor.buffer()` hand out.
//!
//! A `MappedView` holds a clone of the engine's [`smmap::MapRegion`], an `Arc`
//! of the mapping: the pages stay mapped while the view, or any `memoryview`
//! of it, lives — even after the manager collected or evicted the region.

use std::os::raw::{c_int, c_void};

use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt, PyMemoryView, PySlice, PyTuple, PyType};

use crate::args::{arg_or, bind, AnyInt, Offset, Size};
use crate::errors;

/// A read-only view of mapped bytes of a file, as `mmap.mmap` offers them for
/// reading: `len()`, int indexing (negative too), slicing to `bytes`, and the
/// buffer protocol (`memoryview(m)`, `struct.unpack_from(fmt, m, ofs)`,
/// `bytes(m)`, `zlib.decompress(m)`).
///
/// The view keeps its pages mapped for as long as it, or any `memoryview` of
/// it, lives.
#[pyclass(name = "MappedView", module = "smmap._smmap", frozen)]
pub(crate) struct MappedView {
    region: smmap::MapRegion,
    start: usize,
    len: usize,
}

impl MappedView {
    /// A view of `len` bytes of `region` from `start` (relative to the
    /// region); the range must lie inside the region.
    pub(crate) fn new(region: smmap::MapRegion, start: usize, len: usize) -> Self {
        debug_assert!(start
            .checked_add(len)
            .is_some_and(|end| end <= region.size()));
        MappedView { region, start, len }
    }

    /// A view of the whole region.
    pub(crate) fn whole(region: smmap::MapRegion) -> Self {
        let len = region.size();
        MappedView {
            region,
            start: 0,
            len,
        }
    }

    /// The viewed bytes.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.region.as_slice()[self.start..self.start + self.len]
    }
}

/// A `memoryview` over a new `MappedView` of `len` bytes of `region` from
/// `start`.
pub(crate) fn memoryview<'py>(
    py: Python<'py>,
    region: smmap::MapRegion,
    start: usize,
    len: usize,
) -> PyResult<Bound<'py, PyMemoryView>> {
    let view = Bound::new(py, MappedView::new(region, start, len))?;
    PyMemoryView::from(view.as_any())
}

/// `data[key]` for a read-only byte sequence: an int gives the byte (negative
/// counts from the end, `IndexError` past either end), a slice gives `bytes`.
pub(crate) fn index_bytes<'py>(
    py: Python<'py>,
    data: &[u8],
    key: &Bound<'py, PyAny>,
) -> PyResult<PyObject> {
    if let Ok(slice) = key.downcast::<PySlice>() {
        let ind = slice.indices(isize::try_from(data.len()).unwrap_or(isize::MAX))?;
        let n = ind.slicelength;
        let out = if ind.step == 1 {
            let start = ind.start as usize;
            PyBytes::new(py, &data[start..start + n])
        } else {
            PyBytes::new_with(py, n, |out| {
                let mut i = ind.start;
                for b in out.iter_mut() {
                    *b = data[i as usize];
                    i += ind.step;
                }
                Ok(())
            })?
        };
        return Ok(out.into_any().unbind());
    }
    let i = index_arg(key)?;
    let len = i128::try_from(data.len()).unwrap_or(i128::MAX);
    let j = if i < 0 { i + len } else { i };
    if j < 0 || j >= len {
        return Err(PyIndexError::new_err("index out of range"));
    }
    Ok(data[j as usize].into_pyobject(py)?.into_any().unbind())
}

/// An index: an int (or an object with `__index__`), else `TypeError`.
pub(crate) fn index_arg(key: &Bound<'_, PyAny>) -> PyResult<i128> {
    if !key.is_instance_of::<PyInt>() && !key.hasattr("__index__")? {
        return Err(PyTypeError::new_err(format!(
            "indices must be integers or slices, not {}",
            key.get_type().name()?
        )));
    }
    crate::args::int_arg(key)
}

#[pymethods]
impl MappedView {
    /// Number of bytes in the view.
    fn __len__(&self) -> usize {
        self.len
    }

    /// `m[i]` is the byte at `i` as an int (negative counts from the end);
    /// `m[a:b]` (any slice) is `bytes`.
    fn __getitem__<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<PyObject> {
        index_bytes(py, self.bytes(), key)
    }

    /// Iterates over the bytes as ints.
    fn __iter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyMemoryView::from(slf.as_any())?.try_iter()?.into_any())
    }

    /// The bytes of the view, copied.
    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.bytes())
    }

    /// Exports the bytes read-only (`readonly=1`, format `B`); a request for a
    /// writable buffer is a `BufferError`.
    ///
    /// # Safety
    ///
    /// Called by Python with a valid `view` to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let bytes = slf.get().bytes();
        let len = ffi::Py_ssize_t::try_from(bytes.len())
            .map_err(|_| PyValueError::new_err("view too large to export"))?;
        // SAFETY: `view` is the Py_buffer Python asked us to fill. The pointer
        // and length describe the mapping held by `slf` (through its
        // `MapRegion`, an Arc of the mapping), and PyBuffer_FillInfo stores a
        // new reference to `slf` in `view.obj`, so the mapping outlives every
        // consumer of the buffer. The memory is never written: readonly=1.
        let rc = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                bytes.as_ptr() as *mut c_void,
                len,
                1,
                flags,
            )
        };
        if rc == -1 {
            // SAFETY: `view` is valid (see above); a failed export must leave
            // `obj` NULL, which PyBuffer_FillInfo does not do on every path.
            unsafe { (*view).obj = std::ptr::null_mut() };
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    /// Nothing to release: the view's reference in `view.obj` is dropped by
    /// Python, which unmaps the pages once nothing else holds them.
    ///
    /// # Safety
    ///
    /// Called by Python with the `view` filled by `__getbuffer__`.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}

    /// A short description, for debugging.
    fn __repr__(&self) -> String {
        format!(
            "<MappedView of {} bytes at offset {}>",
            self.len,
            self.region.ofs_begin() + self.start as u64
        )
    }
}

/// One read-only mapping of `[ofs, ofs + size)` of a file, aligned to
/// `ALLOCATIONGRANULARITY` (smmap's `MapRegion`).
///
/// Regions made by a manager (`cursor.region()`) report the manager's client
/// count: one for the manager and one per cursor using it. A region made
/// directly, `MapRegion(path_or_fd, ofs, size)`, counts its own clients,
/// starting at 1, and releases its mapping when the count drops to 0.
#[pyclass(name = "MapRegion", module = "smmap.util", subclass)]
pub(crate) struct PyMapRegion {
    region: Option<smmap::MapRegion>,
    ofs: u64,
    size: usize,
    /// The client count of a standalone region; `None` for a region the
    /// manager counts.
    own_clients: Option<i64>,
}

impl PyMapRegion {
    /// `MapRegion(path_or_fd, ofs, size)`: a standalone region.
    fn mapping(
        py: Python<'_>,
        path_or_fd: &Bound<'_, PyAny>,
        ofs: Offset,
        size: Size,
    ) -> PyResult<Self> {
        let key = crate::args::path_or_fd(path_or_fd)?;
        let size = if size.0 == 0 { u64::MAX } else { size.0 };
        let region = smmap::MapRegion::new(key, ofs.0, size)
            .map_err(|e| errors::to_py(py, e, Some(path_or_fd)))?;
        Ok(PyMapRegion {
            ofs: region.ofs_begin(),
            size: region.size(),
            region: Some(region),
            own_clients: Some(1),
        })
    }

    /// A handle to a region the manager tracks.
    pub(crate) fn managed(region: smmap::MapRegion) -> Self {
        PyMapRegion {
            ofs: region.ofs_begin(),
            size: region.size(),
            region: Some(region),
            own_clients: None,
        }
    }

    /// The region's window (offset, size), for `MapWindow.from_region`.
    pub(crate) fn window(&self) -> (u64, usize) {
        (self.ofs, self.size)
    }

    fn mapped(&self) -> PyResult<&smmap::MapRegion> {
        self.region
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("the region was released"))
    }
}

#[pymethods]
impl PyMapRegion {
    /// Maps up to `size` bytes of the file at `ofs`, which must be a multiple
    /// of `ALLOCATIONGRANULARITY`; the size is clipped to the file's end, and
    /// 0 means "to the end". `flags` is accepted for compatibility and
    /// ignored (the file is always opened read-only).
    ///
    /// Raises `ValueError` for a negative, unaligned or out-of-file offset,
    /// the matching `OSError` if the file cannot be mapped.
    #[new]
    #[classmethod]
    #[pyo3(signature = (*args, **kwargs))]
    #[pyo3(text_signature = "(path_or_fd, ofs, size, flags=0)")]
    fn new(
        cls: &Bound<'_, PyType>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let py = cls.py();
        // A Python subclass may have a constructor of its own; its
        // `__init__` (or ours, inherited) maps the region.
        if !cls.is(&py.get_type::<PyMapRegion>()) {
            return Ok(PyMapRegion {
                region: None,
                ofs: 0,
                size: 0,
                own_clients: Some(0),
            });
        }
        let names = ["path_or_fd", "ofs", "size", "flags"];
        let [path_or_fd, ofs, size, flags] = bind("MapRegion()", names, args, kwargs)?;
        let missing = |name: &str| {
            PyTypeError::new_err(format!("MapRegion() missing required argument '{name}'"))
        };
        let path_or_fd = path_or_fd.ok_or_else(|| missing("path_or_fd"))?;
        let ofs: Offset = ofs.ok_or_else(|| missing("ofs"))?.extract()?;
        let size: Size = size.ok_or_else(|| missing("size"))?.extract()?;
        let _flags: i32 = arg_or(flags, 0)?;
        Self::mapping(py, &path_or_fd, ofs, size)
    }

    /// Maps the region (see the class documentation). Construction already
    /// did, with the same arguments; this exists so that Python subclasses
    /// can call `super().__init__(...)`.
    #[pyo3(name = "__init__")]
    #[pyo3(signature = (path_or_fd, ofs, size, flags = 0))]
    #[pyo3(text_signature = "($self, path_or_fd, ofs, size, flags=0)")]
    fn init(
        &mut self,
        py: Python<'_>,
        path_or_fd: &Bound<'_, PyAny>,
        ofs: Offset,
        size: Size,
        flags: i32,
    ) -> PyResult<()> {
        let _ = flags;
        if self.region.is_none() {
            *self = Self::mapping(py, path_or_fd, ofs, size)?;
        }
        Ok(())
    }

    /// The mapped bytes, a read-only object with the buffer protocol.
    fn buffer(&self, py: Python<'_>) -> PyResult<Py<MappedView>> {
        Py::new(py, MappedView::whole(self.mapped()?.clone()))
    }

    /// The mapped bytes, a read-only object with the buffer protocol (the
    /// same as `buffer()`).
    fn map(&self, py: Python<'_>) -> PyResult<Py<MappedView>> {
        self.buffer(py)
    }

    /// Absolute offset of the first mapped byte.
    fn ofs_begin(&self) -> u64 {
        self.ofs
    }

    /// Number of mapped bytes.
    fn size(&self) -> usize {
        self.size
    }

    /// Absolute offset one past the last mapped byte.
    fn ofs_end(&self) -> u64 {
        self.ofs + self.size as u64
    }

    /// True if the byte at absolute offset `ofs` is mapped by this region.
    fn includes_ofs(&self, ofs: AnyInt) -> bool {
        i128::from(self.ofs) <= ofs.0 && ofs.0 < i128::from(self.ofs_end())
    }

    /// The number of clients using the region. For a region of a manager:
    /// one for the manager plus one per cursor using it (1 means unused); 0
    /// once the manager dropped it.
    fn client_count(&self) -> i64 {
        match (self.own_clients, &self.region) {
            (Some(n), _) => n,
            (None, Some(r)) => i64::try_from(r.client_count()).unwrap_or(i64::MAX),
            (None, None) => 0,
        }
    }

    /// Adds `ofs` (may be negative) to the client count of a standalone
    /// region; when it reaches 0 the mapping is released. Returns True if it
    /// was released.
    ///
    /// Raises `ValueError` for a region of a manager (the manager keeps that
    /// count) or if the count would go negative.
    #[pyo3(signature = (ofs = 1))]
    fn increment_client_count(&mut self, ofs: i64) -> PyResult<bool> {
        let Some(n) = self.own_clients else {
            return Err(PyValueError::new_err(
                "the manager counts the clients of its regions; use cursors to change them",
            ));
        };
        let now = n.checked_add(ofs).filter(|&v| v >= 0).ok_or_else(|| {
            PyValueError::new_err(format!(
                "increments must match decrements: usage count would be {}",
                i128::from(n) + i128::from(ofs)
            ))
        })?;
        self.own_clients = Some(now);
        if now == 0 {
            self.release();
            return Ok(true);
        }
        Ok(false)
    }

    /// Drops this object's handle to the mapping. The pages stay mapped
    /// while the manager or any view of them still holds them, so releasing
    /// never invalidates bytes Python can read.
    fn release(&mut self) {
        self.region = None;
    }

    /// The offset of the first byte (smmap's `_b` slot).
    #[getter]
    fn _b(&self) -> u64 {
        self.ofs
    }

    /// Two `MapRegion` objects are equal if they are handles to the same
    /// mapping (`cursor.region() == cursor.region()`), as the reference's
    /// identical objects are.
    fn __eq__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        let py = slf.py();
        let Ok(other) = other.downcast::<PyMapRegion>() else {
            return Ok(py.NotImplemented());
        };
        let same = slf.is(other)
            || match (&slf.try_borrow()?.region, &other.try_borrow()?.region) {
                (Some(a), Some(b)) => a.same_mapping(b),
                _ => false,
            };
        Ok(same.into_pyobject(py)?.to_owned().into_any().unbind())
    }

    /// A hash consistent with `==`: from the region's offset and size.
    fn __hash__(&self) -> u64 {
        self.ofs.rotate_left(17) ^ self.size as u64
    }

    /// A short description, for debugging.
    fn __repr__(&self) -> String {
        format!("MapRegion<{}, {}>", self.ofs, self.size)
    }
}
