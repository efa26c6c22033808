//! `MapRegion` and `MappedView`, the read-only object with the buffer
//! protocol that `map()`, `region.buffer()` and `cursor.buffer()` hand out.
//!
//! A `MappedView` holds a clone of the engine's [`smmap::MapRegion`], an `Arc`
//! of the mapping: the pages stay mapped while the view, or any `memoryview`
//! of it, lives — even after the manager collected or evicted the region.
//! In a forked child, a view or region from before the fork stays readable
//! (the child has the same mappings) and is leaked when dropped (see
//! `fork`).

use std::os::raw::{c_int, c_void};

use pyo3::exceptions::{PyIndexError, PyMemoryError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyMemoryView, PySlice, PyTuple};

use crate::args::{index_arg, show, AnyInt, Offset, Size};
use crate::errors;
use crate::fork::Local;
use crate::guard::{Guarded, State};
use crate::interp;

/// A read-only view of mapped bytes of a file, as `mmap.mmap` offers them for
/// reading: `len()`, int indexing (negative too), slicing to `bytes`,
/// `find`/`rfind`, and the buffer protocol (`memoryview(m)`,
/// `struct.unpack_from(fmt, m, ofs)`, `bytes(m)`, `zlib.decompress(m)`).
/// It has no file position (`read`, `seek`, `tell`), nothing to close and
/// nothing to write.
///
/// The view keeps its pages mapped for as long as it, or any `memoryview` of
/// it, lives.
#[pyclass(name = "MappedView", module = "smmap._smmap", frozen)]
pub(crate) struct MappedView {
    region: Local<smmap::MapRegion>,
    start: usize,
    len: usize,
}

impl MappedView {
    /// A view of `len` bytes of `region` from `start` (relative to the
    /// region); the range must lie inside the region.
    pub(crate) fn new(region: Local<smmap::MapRegion>, start: usize, len: usize) -> Self {
        debug_assert!(start
            .checked_add(len)
            .is_some_and(|end| end <= region.size()));
        MappedView { region, start, len }
    }

    /// A view of the whole region.
    pub(crate) fn whole(region: Local<smmap::MapRegion>) -> Self {
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

    /// The file offset of the view's first byte.
    fn file_offset(&self) -> u64 {
        self.region.ofs_begin() + self.start as u64
    }

    /// `find(sub, start, end)` of `mmap.mmap` with `how` (first or last
    /// match) over the view.
    fn search(
        &self,
        sub: &Bound<'_, PyAny>,
        start: Option<isize>,
        end: Option<isize>,
        how: fn(&[u8], &[u8]) -> Option<usize>,
    ) -> PyResult<isize> {
        let sub = needle(sub)?;
        let (lo, hi) = search_bounds(self.len, start, end);
        if hi < lo {
            return Ok(-1);
        }
        Ok(how(&self.bytes()[lo..hi], &sub).map_or(-1, |i| (lo + i) as isize))
    }
}

/// A `memoryview` over a new `MappedView` of `len` bytes of `region` from
/// `start`.
pub(crate) fn memoryview<'py>(
    py: Python<'py>,
    region: Local<smmap::MapRegion>,
    start: usize,
    len: usize,
) -> PyResult<Bound<'py, PyMemoryView>> {
    let view = Bound::new(py, MappedView::new(region, start, len))?;
    PyMemoryView::from(view.as_any())
}

/// The bytes of `sub`, a bytes-like object (what `mmap.mmap.find` takes: an
/// int is a `TypeError`, not a byte value).
fn needle(sub: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = sub.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if sub.is_instance_of::<pyo3::types::PyInt>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "a bytes-like object is required, not '{}'",
            sub.get_type().name()?
        )));
    }
    Ok(PyMemoryView::from(sub)?
        .call_method0("tobytes")?
        .cast_into::<PyBytes>()?
        .as_bytes()
        .to_vec())
}

/// `start` and `end` of a search in `len` bytes, as `mmap.mmap.find` takes
/// them: negative counts from the end, both clamped to `[0, len]`.
fn search_bounds(len: usize, start: Option<isize>, end: Option<isize>) -> (usize, usize) {
    let clamp = |v: isize| {
        let len = len as i128;
        let v = v as i128;
        (if v < 0 { v + len } else { v }).clamp(0, len) as usize
    };
    (start.map_or(0, clamp), end.map_or(len, clamp))
}

/// A `bytes` copy of `data`, or `None` if Python cannot allocate one (its
/// `MemoryError` taken): PyO3's `PyBytes::new` panics then. Runs no Python
/// code, so it may be called with a cursor's state held.
pub(crate) fn copy_bytes<'py>(py: Python<'py>, data: &[u8]) -> Option<Bound<'py, PyBytes>> {
    // SAFETY: `data` is valid for reads of `data.len()` bytes, a length that
    // fits `Py_ssize_t` as every slice's fits `isize`; CPython copies them
    // before it returns, and returns a new reference or null with an
    // exception set, as `from_owned_ptr_or_err` expects.
    let made = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyBytes_FromStringAndSize(data.as_ptr().cast(), data.len() as ffi::Py_ssize_t),
        )
    };
    made.ok()?.cast_into::<PyBytes>().ok()
}

/// The `MemoryError` of a copy of `n` bytes from file offset `offset` that
/// Python could not allocate.
fn no_room_to_copy(n: usize, offset: u64) -> PyErr {
    PyMemoryError::new_err(format!(
        "cannot copy {n} bytes of the file from offset {offset}: out of memory"
    ))
}

/// `data[key]` for a read-only byte sequence whose first byte is at file
/// offset `base`: an int gives the byte (negative counts from the end,
/// `IndexError` past either end), a slice gives `bytes` (`MemoryError`,
/// naming the offset, if they cannot be allocated).
pub(crate) fn index_bytes<'py>(
    py: Python<'py>,
    data: &[u8],
    base: u64,
    key: &Bound<'py, PyAny>,
) -> PyResult<Py<PyAny>> {
    if let Ok(slice) = key.cast::<PySlice>() {
        let ind = slice.indices(isize::try_from(data.len()).unwrap_or(isize::MAX))?;
        let n = ind.slicelength;
        let at = base.saturating_add(ind.start.max(0) as u64);
        let out = if ind.step == 1 {
            let start = ind.start as usize;
            copy_bytes(py, &data[start..start + n]).ok_or_else(|| no_room_to_copy(n, at))?
        } else {
            // The k-th byte is at start + k * step, inside the data for
            // every k below n (so no product overflows; a running sum
            // would step once past the last one).
            PyBytes::new_with(py, n, |out| {
                for (k, b) in out.iter_mut().enumerate() {
                    *b = data[(ind.start + k as isize * ind.step) as usize];
                }
                Ok(())
            })
            .map_err(|_| no_room_to_copy(n, at))?
        };
        return Ok(out.into_any().unbind());
    }
    let i = index_arg(key)?;
    let len = i128::try_from(data.len()).unwrap_or(i128::MAX);
    let j = if i < 0 { i + len } else { i };
    if j < 0 || j >= len {
        return Err(PyIndexError::new_err(format!(
            "index out of range: index {} of a view of {} bytes",
            show(i),
            data.len()
        )));
    }
    Ok(data[j as usize].into_pyobject(py)?.into_any().unbind())
}

#[pymethods]
impl MappedView {
    /// Number of bytes in the view.
    fn __len__(&self) -> usize {
        self.len
    }

    /// `m[i]` is the byte at `i` as an int (negative counts from the end);
    /// `m[a:b]` (any slice) is `bytes`.
    fn __getitem__<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        index_bytes(py, self.bytes(), self.file_offset(), key)
    }

    /// Iterates over the bytes as ints.
    fn __iter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyMemoryView::from(slf.as_any())?.try_iter()?.into_any())
    }

    /// The bytes of the view, copied (`MemoryError`, naming the offset, if
    /// they cannot be allocated).
    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        copy_bytes(py, self.bytes()).ok_or_else(|| no_room_to_copy(self.len, self.file_offset()))
    }

    /// The lowest index at which the bytes-like `sub` is found within
    /// `m[start:end]`, or -1, as `mmap.mmap.find` (the view has no file
    /// position: `start` defaults to 0).
    #[pyo3(signature = (sub, start=None, end=None))]
    fn find(
        &self,
        sub: &Bound<'_, PyAny>,
        start: Option<isize>,
        end: Option<isize>,
    ) -> PyResult<isize> {
        self.search(sub, start, end, memchr::memmem::find)
    }

    /// The highest index at which the bytes-like `sub` is found within
    /// `m[start:end]`, or -1, as `mmap.mmap.rfind`.
    #[pyo3(signature = (sub, start=None, end=None))]
    fn rfind(
        &self,
        sub: &Bound<'_, PyAny>,
        start: Option<isize>,
        end: Option<isize>,
    ) -> PyResult<isize> {
        self.search(sub, start, end, memchr::memmem::rfind)
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
/// `ALLOCATIONGRANULARITY` (smmap's `MapRegion`). Weak references to it may
/// be made, as to the reference's.
///
/// Regions made by a manager (`cursor.region()`) report the manager's client
/// count: one for the manager and one per cursor using it. A region made
/// directly, `MapRegion(path_or_fd, ofs, size)`, counts its own clients,
/// starting at 1, and releases its mapping when the count drops to 0.
#[pyclass(name = "MapRegion", module = "smmap.util", subclass, frozen, weakref)]
pub(crate) struct PyMapRegion {
    state: Guarded<RegionState>,
}

/// What a region holds.
struct RegionState {
    region: Option<Local<smmap::MapRegion>>,
    ofs: u64,
    size: usize,
    /// The client count of a standalone region; `None` for a region the
    /// manager counts.
    own_clients: Option<i64>,
}

/// Nothing to redo after a fork: the region stays readable, and is leaked
/// when dropped (see `fork`).
impl State for RegionState {
    const CLASS: &'static str = "MapRegion";
}

impl PyMapRegion {
    fn with(state: RegionState) -> Self {
        PyMapRegion {
            state: Guarded::new(state),
        }
    }

    /// A handle to a region the manager tracks.
    pub(crate) fn managed(region: Local<smmap::MapRegion>) -> Self {
        PyMapRegion::with(RegionState {
            ofs: region.ofs_begin(),
            size: region.size(),
            region: Some(region),
            own_clients: None,
        })
    }

    /// `(ofs, size)`.
    fn window(&self, py: Python<'_>) -> PyResult<(u64, usize)> {
        let st = self.state.lock(py)?;
        Ok((st.ofs, st.size))
    }

    /// A handle to the mapping (a clone of the engine's region).
    fn mapped(&self, py: Python<'_>) -> PyResult<Local<smmap::MapRegion>> {
        let st = self.state.lock(py)?;
        st.region.clone().ok_or_else(|| {
            PyValueError::new_err(format!(
                "the region of {} bytes at offset {} was released",
                st.size, st.ofs
            ))
        })
    }
}

#[pymethods]
impl PyMapRegion {
    /// An unmapped region, which `__init__` maps (see the crate
    /// documentation: the arguments are `__init__`'s).
    #[new]
    #[pyo3(signature = (*_args, **_kwargs), text_signature = "(path_or_fd, ofs, size, flags=0)")]
    fn __new__(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        PyMapRegion::with(RegionState {
            region: None,
            ofs: 0,
            size: 0,
            own_clients: Some(0),
        })
    }

    /// Maps up to `size` bytes of the file at `ofs`, which must be a multiple
    /// of `ALLOCATIONGRANULARITY`; the size is clipped to the file's end, and
    /// 0 means "to the end". `flags` is accepted for compatibility and
    /// ignored (the file is always opened read-only). The interpreter is not
    /// held while the file is opened and mapped.
    ///
    /// Raises `ValueError` for a negative, unaligned or out-of-file offset,
    /// the matching `OSError` if the file cannot be mapped.
    #[pyo3(signature = (path_or_fd, ofs, size, flags = 0))]
    fn __init__(
        &self,
        py: Python<'_>,
        path_or_fd: &Bound<'_, PyAny>,
        ofs: Offset,
        size: Size,
        flags: i32,
    ) -> PyResult<()> {
        let _ = flags;
        let key = crate::args::path_or_fd(path_or_fd)?;
        let size = if size.0 == 0 { u64::MAX } else { size.0 };
        let region = interp::detached(py, || smmap::MapRegion::new(key, ofs.0, size))
            .map_err(|e| errors::to_py(py, e, Some(path_or_fd)))?;
        let region = Local::new(region);
        let new = RegionState {
            ofs: region.ofs_begin(),
            size: region.size(),
            region: Some(region),
            own_clients: Some(1),
        };
        let old = std::mem::replace(&mut *self.state.lock(py)?, new);
        drop(old);
        Ok(())
    }

    /// The mapped bytes, a read-only object with the buffer protocol.
    fn buffer(&self, py: Python<'_>) -> PyResult<Py<MappedView>> {
        Py::new(py, MappedView::whole(self.mapped(py)?))
    }

    /// The mapped bytes, a read-only object with the buffer protocol (the
    /// same as `buffer()`).
    fn map(&self, py: Python<'_>) -> PyResult<Py<MappedView>> {
        self.buffer(py)
    }

    /// Absolute offset of the first mapped byte.
    fn ofs_begin(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.window(py)?.0)
    }

    /// Number of mapped bytes.
    fn size(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.window(py)?.1)
    }

    /// Absolute offset one past the last mapped byte.
    fn ofs_end(&self, py: Python<'_>) -> PyResult<u64> {
        let (ofs, size) = self.window(py)?;
        Ok(ofs + size as u64)
    }

    /// True if the byte at absolute offset `ofs` is mapped by this region.
    fn includes_ofs(&self, py: Python<'_>, ofs: AnyInt) -> PyResult<bool> {
        let (begin, size) = self.window(py)?;
        let begin = i128::from(begin);
        Ok(begin <= ofs.0 && ofs.0 < begin + size as i128)
    }

    /// The number of clients using the region. For a region of a manager:
    /// one for the manager plus one per cursor using it (1 means unused); 0
    /// once the manager dropped it.
    fn client_count(&self, py: Python<'_>) -> PyResult<i64> {
        let st = self.state.lock(py)?;
        Ok(match (st.own_clients, &st.region) {
            (Some(n), _) => n,
            (None, Some(r)) => i64::try_from(r.client_count()).unwrap_or(i64::MAX),
            (None, None) => 0,
        })
    }

    /// Adds `ofs` (may be negative) to the client count of a standalone
    /// region; when it reaches 0 the mapping is released. Returns True if it
    /// was released.
    ///
    /// Raises `ValueError` for a region of a manager (the manager keeps that
    /// count) or if the count would go negative.
    #[pyo3(signature = (ofs = 1))]
    fn increment_client_count(&self, py: Python<'_>, ofs: i64) -> PyResult<bool> {
        let mut st = self.state.lock(py)?;
        let Some(n) = st.own_clients else {
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
        st.own_clients = Some(now);
        if now == 0 {
            st.region = None;
            return Ok(true);
        }
        Ok(false)
    }

    /// Drops this object's handle to the mapping. The pages stay mapped
    /// while the manager or any view of them still holds them, so releasing
    /// never invalidates bytes Python can read.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let old = self.state.lock(py)?.region.take();
        drop(old);
        Ok(())
    }

    /// The offset of the first byte (smmap's `_b` slot).
    #[getter]
    fn _b(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.window(py)?.0)
    }

    /// Two `MapRegion` objects are equal if they are handles to the same
    /// mapping (`cursor.region() == cursor.region()`), as the reference's
    /// identical objects are.
    fn __eq__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let Ok(other) = other.cast::<PyMapRegion>() else {
            return Ok(py.NotImplemented());
        };
        let same = slf.is(other) || {
            let a = slf.get().state.lock(py)?.region.clone();
            let b = other.get().state.lock(py)?.region.clone();
            matches!((a, b), (Some(a), Some(b)) if a.same_mapping(&b))
        };
        Ok(same.into_pyobject(py)?.to_owned().into_any().unbind())
    }

    /// A hash consistent with `==`: from the region's offset and size.
    fn __hash__(&self, py: Python<'_>) -> PyResult<u64> {
        let (ofs, size) = self.window(py)?;
        Ok(ofs.rotate_left(17) ^ size as u64)
    }

    /// A short description, for debugging.
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let (ofs, size) = self.window(py)?;
        Ok(format!("MapRegion<{ofs}, {size}>"))
    }
}
