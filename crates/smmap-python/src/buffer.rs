//! `SlidingWindowMapBuffer`: a bytes-like view of `[offset, offset + len)`
//! of a file, read through a cursor whose window slides to the reads.
//!
//! The buffer shares the caller's `WindowCursor` object (as the reference
//! does: `buf.cursor()` is the cursor passed in, and it moves as the buffer
//! reads), so it drives that cursor through the engine's public cursor API
//! rather than owning an engine `SlidingWindowMapBuffer`, which would have to
//! take the cursor away from Python. Reads go through the cursor's own
//! stitching (`byte_at`, `chunk_at`, `read_at`, in absolute offsets); the
//! binding only turns relative indices into offsets and errors into
//! exceptions.

use std::cell::{Ref, RefCell, RefMut};

use pyo3::exceptions::{
    PyIndexError, PyMemoryError, PyOverflowError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::GILProtected;
use pyo3::types::{PyBytes, PyDict, PyInt, PySlice, PyTuple, PyType};

use crate::args::{arg_or, bind, AnyInt, Offset, Size};
use crate::cursor::{CursorState, PyCursor};
use crate::region::index_arg;

/// The constructor's parameters.
const NAMES: [&str; 4] = ["cursor", "offset", "size", "flags"];

/// Python's `sys.maxsize`, the reference's default buffer size.
const SYS_MAXSIZE: u64 = isize::MAX as u64;

/// A bytes-like object over `[offset, offset + size)` of a file, read through
/// a cursor whose window moves to wherever the reads go (smmap's
/// `SlidingWindowMapBuffer`).
///
/// Index 0 is the byte at `offset`: indices are relative to the buffer.
/// `len(buf)` is `size` clipped to the file's end. `buf[i]` is an int
/// (negative counts from the end; `IndexError` past either end); `buf[a:b]`
/// is `bytes`, stitched together across windows as needed (`MemoryError` if
/// it is too large to copy). Reads raise the cursor's errors: the matching
/// `OSError`, `FileReplacedError`.
///
/// A buffer is a context manager: leaving the `with` block calls
/// `end_access()`, as dropping the buffer does.
///
/// (Frozen, with its state behind the GIL, for the same reason as
/// `WindowCursor`: no atomic borrow flags on the `buf[i]` path.)
#[pyclass(
    name = "SlidingWindowMapBuffer",
    module = "smmap.buf",
    subclass,
    frozen
)]
pub(crate) struct PyBuffer {
    state: GILProtected<RefCell<BufState>>,
}

struct BufState {
    cursor: Option<Py<PyCursor>>,
    /// Absolute offset of index 0.
    offset: u64,
    len: u64,
}

fn in_use() -> PyErr {
    PyRuntimeError::new_err("the buffer is already in use by this thread")
}

impl PyBuffer {
    #[inline]
    fn view<'py>(&'py self, py: Python<'py>) -> PyResult<Ref<'py, BufState>> {
        self.state.get(py).try_borrow().map_err(|_| in_use())
    }

    fn view_mut<'py>(&'py self, py: Python<'py>) -> PyResult<RefMut<'py, BufState>> {
        self.state.get(py).try_borrow_mut().map_err(|_| in_use())
    }
}

impl BufState {
    #[inline]
    fn cursor_ref<'py>(&'py self, py: Python<'py>) -> PyResult<RefMut<'py, CursorState>> {
        match &self.cursor {
            Some(c) => c.get().state(py),
            None => Err(PyIndexError::new_err("buffer index out of range")),
        }
    }

    /// `begin_access` with the cursor already chosen.
    fn begin(&mut self, py: Python<'_>, offset: u64, size: Size) -> PyResult<bool> {
        let Some(cursor) = &self.cursor else {
            return Ok(false);
        };
        let mut c = cursor.get().state(py)?;
        let Some(fsize) = c.inner.file_size() else {
            return Ok(false);
        };
        c.move_to(py, offset, size.as_usize())?;
        if !c.inner.is_valid() {
            return Ok(false);
        }
        drop(c);
        self.offset = offset;
        self.len = size.0.min(fsize - offset);
        Ok(true)
    }

    /// The relative index `i` (negative from the end) as an absolute offset.
    #[inline]
    fn absolute(&self, i: i128) -> PyResult<u64> {
        let len = i128::from(self.len);
        let j = if i < 0 { i + len } else { i };
        if j < 0 || j >= len {
            return Err(PyIndexError::new_err("buffer index out of range"));
        }
        Ok(self.offset + j as u64)
    }

    /// The byte at relative index `i`: the engine cursor's `byte_at`, whose
    /// hit is one comparison and one load.
    #[inline]
    fn byte(&self, py: Python<'_>, i: i128) -> PyResult<u8> {
        let abs = self.absolute(i)?;
        let mut c = self.cursor_ref(py)?;
        match c.inner.byte_at(abs) {
            Ok(b) => Ok(b),
            Err(e) => Err(read_error(py, &c, e)),
        }
    }

    /// `n` bytes from relative index `start` (`start + n <= len`): copied
    /// straight from the mapping when one window holds them all, stitched
    /// together by the engine cursor's `read_at` otherwise.
    ///
    /// Raises `MemoryError` if a copy of `n` bytes cannot be allocated;
    /// nothing of that size is allocated before Python's `bytes` itself.
    fn read<'py>(&self, py: Python<'py>, start: u64, n: u64) -> PyResult<Bound<'py, PyBytes>> {
        if n == 0 {
            return Ok(PyBytes::new(py, b""));
        }
        let abs = self.offset + start;
        let mut c = self.cursor_ref(py)?;
        // The common case: the window holding `abs` holds it all.
        let whole = c.inner.chunk_at(abs).map(|chunk| {
            usize::try_from(n)
                .ok()
                .filter(|&n| n <= chunk.len())
                .map(|n| PyBytes::new(py, &chunk[..n]))
        });
        match whole {
            Ok(Some(bytes)) => return Ok(bytes),
            Ok(None) => {}
            Err(e) => return Err(read_error(py, &c, e)),
        }
        let c = &mut *c;
        let bytes = new_bytes(py, n, |out| match c.inner.read_at(abs, out) {
            Ok(got) if got == out.len() => Ok(()),
            Ok(_) => Err(PyIndexError::new_err("buffer index out of range")),
            Err(e) => Err(read_error(py, c, e)),
        })?;
        bytes.ok_or_else(|| too_large(py, c, abs, n))
    }

    /// `buf[slice]` as `bytes`, with Python's slice semantics.
    fn get_slice<'py>(
        &self,
        py: Python<'py>,
        slice: &Bound<'py, PySlice>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let ind = slice.indices(isize::try_from(self.len).unwrap_or(isize::MAX))?;
        if ind.step == 1 || ind.slicelength <= 1 {
            let start = if ind.slicelength == 0 {
                0
            } else {
                ind.start as u64
            };
            return self.read(py, start, ind.slicelength as u64);
        }
        // A stride: byte by byte, into the `bytes` object itself. `indices`
        // keeps every index in `[0, len)`.
        let mut c = self.cursor_ref(py)?;
        let c = &mut *c;
        let first = self.offset + ind.start as u64;
        let n = ind.slicelength as u64;
        let bytes = new_bytes(py, n, |out| {
            let mut i = ind.start;
            for b in out.iter_mut() {
                let abs = self.offset + i as u64;
                *b = match c.inner.byte_at(abs) {
                    Ok(b) => b,
                    Err(e) => return Err(read_error(py, c, e)),
                };
                i += ind.step;
            }
            Ok(())
        })?;
        bytes.ok_or_else(|| too_large(py, c, first, n))
    }
}

/// The Python exception for an engine error while reading the buffer: an
/// offset past the end of the cursor's file (possible only if the cursor was
/// re-pointed at a shorter file) is the buffer's `IndexError`; anything else
/// is the cursor's error.
#[cold]
fn read_error(py: Python<'_>, c: &CursorState, e: smmap::Error) -> PyErr {
    match e {
        smmap::Error::OutOfRange { .. } => PyIndexError::new_err("buffer index out of range"),
        e => c.error(py, e),
    }
}

/// A `bytes` object of `n` bytes, filled by `fill`; `None` if Python cannot
/// allocate it (the caller raises [`too_large`] then).
fn new_bytes<'py>(
    py: Python<'py>,
    n: u64,
    fill: impl FnOnce(&mut [u8]) -> PyResult<()>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    // `bytes` holds at most `isize::MAX` bytes (less its header).
    let Some(len) = usize::try_from(n)
        .ok()
        .filter(|&n| isize::try_from(n).is_ok())
    else {
        return Ok(None);
    };
    let mut filled = false;
    let result = PyBytes::new_with(py, len, |out| {
        filled = true;
        fill(out)
    });
    match result {
        Ok(bytes) => Ok(Some(bytes)),
        // The allocation itself failed: `MemoryError`, or `OverflowError`
        // just below `isize::MAX`.
        Err(e)
            if !filled
                && (e.is_instance_of::<PyMemoryError>(py)
                    || e.is_instance_of::<PyOverflowError>(py)) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The engine's `TooLarge` error for a copy of `n` bytes at absolute offset
/// `abs` of the cursor's file: a `MemoryError` naming the file, offset and
/// length.
#[cold]
fn too_large(py: Python<'_>, c: &CursorState, abs: u64, n: u64) -> PyErr {
    let file = c
        .inner
        .path_or_fd()
        .cloned()
        .unwrap_or(smmap::PathOrFd::Fd(-1));
    c.error(
        py,
        smmap::Error::TooLarge {
            file,
            offset: abs,
            len: n,
        },
    )
}

#[pymethods]
impl PyBuffer {
    /// A buffer over `[offset, offset + size)` of the cursor's file (`size`
    /// clipped to the file's end). Without a cursor, `begin_access()` must be
    /// called before use. `flags` is accepted for compatibility and ignored.
    ///
    /// Raises `ValueError` if the cursor is given but the buffer cannot be
    /// used (offset at or past the end of the file, cursor without a file) or
    /// the offset or size is negative.
    #[new]
    #[classmethod]
    #[pyo3(signature = (*args, **kwargs))]
    #[pyo3(text_signature = "(cursor=None, offset=0, size=sys.maxsize, flags=0)")]
    fn new(
        cls: &Bound<'_, PyType>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let py = cls.py();
        let buf = PyBuffer {
            state: GILProtected::new(RefCell::new(BufState {
                cursor: None,
                offset: 0,
                len: 0,
            })),
        };
        // A Python subclass may have a constructor of its own; its
        // `__init__` (or ours, inherited) sets the buffer up.
        if cls.is(&py.get_type::<PyBuffer>()) {
            let [cursor, offset, size, flags] =
                bind("SlidingWindowMapBuffer()", NAMES, args, kwargs)?;
            buf.init(
                py,
                arg_or(cursor, None)?,
                arg_or(offset, Offset(0))?,
                arg_or(size, Size(SYS_MAXSIZE))?,
                arg_or(flags, 0)?,
            )?;
        }
        Ok(buf)
    }

    /// Sets the buffer up (see the class documentation). Construction
    /// already did, with the same arguments; this exists so that Python
    /// subclasses can call `super().__init__(...)`.
    #[pyo3(name = "__init__")]
    #[pyo3(signature = (cursor = None, offset = Offset(0), size = Size(SYS_MAXSIZE), flags = 0))]
    #[pyo3(text_signature = "($self, cursor=None, offset=0, size=sys.maxsize, flags=0)")]
    fn init(
        &self,
        py: Python<'_>,
        cursor: Option<Bound<'_, PyCursor>>,
        offset: Offset,
        size: Size,
        flags: i32,
    ) -> PyResult<()> {
        if let Some(c) = cursor {
            if !self.begin_access(py, Some(c), offset, size, flags)? {
                return Err(PyValueError::new_err(
                    "Failed to allocate the buffer - probably the given offset is out of bounds",
                ));
            }
        }
        Ok(())
    }

    /// Returns the buffer itself.
    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Calls `end_access()`.
    #[pyo3(signature = (exc_type = None, exc_value = None, traceback = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        exc_value: Option<&Bound<'_, PyAny>>,
        traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let _ = (exc_type, exc_value, traceback);
        self.end_access(py)
    }

    /// The number of bytes in the view (0 after `end_access()`).
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(usize::try_from(self.view(py)?.len).unwrap_or(usize::MAX))
    }

    /// `buf[i]`: the byte at relative index `i` as an int (negative counts
    /// from the end; `IndexError` past either end). `buf[a:b]` (any slice):
    /// `bytes`.
    fn __getitem__<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<PyObject> {
        let this = self.view(py)?;
        if let Ok(int) = key.downcast_exact::<PyInt>() {
            // Beyond i64 is past any end.
            let i = int.extract::<i64>().map_or(i128::MAX, i128::from);
            return Ok(this.byte(py, i)?.into_pyobject(py)?.into_any().unbind());
        }
        if let Ok(slice) = key.downcast::<PySlice>() {
            return Ok(this.get_slice(py, slice)?.into_any().unbind());
        }
        let i = index_arg(key)?;
        Ok(this.byte(py, i)?.into_pyobject(py)?.into_any().unbind())
    }

    /// `bytes` of relative indices `[i, j)`, with the reference's rules:
    /// negative indices count from the end, `j == sys.maxsize` means the end;
    /// out-of-range bounds are clipped.
    fn __getslice__<'py>(
        &self,
        py: Python<'py>,
        i: AnyInt,
        j: AnyInt,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let this = self.view(py)?;
        let len = i128::from(this.len);
        let mut i = i.0;
        let mut j = j.0;
        if i < 0 {
            i += len;
        }
        if j == i128::from(SYS_MAXSIZE) {
            j = len;
        }
        if j < 0 {
            j += len;
        }
        let i = i.clamp(0, len);
        let j = j.clamp(i, len);
        this.read(py, i as u64, (j - i) as u64)
    }

    /// Points the buffer at `[offset, offset + size)` of the cursor's file,
    /// switching to `cursor` if one is given; returns True if the buffer can
    /// be used (False for an offset at or past the end of the file, or a
    /// cursor without a file). `flags` is accepted and ignored.
    ///
    /// Raises `ValueError` for a negative offset or size, the matching
    /// `OSError` if the first window cannot be mapped.
    #[pyo3(signature = (cursor = None, offset = Offset(0), size = Size(SYS_MAXSIZE), flags = 0))]
    #[pyo3(text_signature = "($self, cursor=None, offset=0, size=sys.maxsize, flags=0)")]
    fn begin_access(
        &self,
        py: Python<'_>,
        cursor: Option<Bound<'_, PyCursor>>,
        offset: Offset,
        size: Size,
        flags: i32,
    ) -> PyResult<bool> {
        let _ = flags;
        let mut this = self.view_mut(py)?;
        let old = match cursor {
            Some(c) => this.cursor.replace(c.unbind()),
            None => None,
        };
        this.len = 0;
        let result = this.begin(py, offset.0, size);
        drop(this);
        // The replaced cursor is released with no borrow held.
        drop(old);
        result
    }

    /// Releases the cursor's region; the buffer is empty (length 0) until
    /// `begin_access()` is called again. Called when the buffer is dropped.
    fn end_access(&self, py: Python<'_>) -> PyResult<()> {
        let mut this = self.view_mut(py)?;
        this.len = 0;
        if let Some(c) = &this.cursor {
            c.get().state(py)?.inner.unuse_region();
        }
        Ok(())
    }

    /// The cursor that provides access to the data, or None.
    fn cursor(&self, py: Python<'_>) -> PyResult<Option<Py<PyCursor>>> {
        Ok(self.view(py)?.cursor.as_ref().map(|c| c.clone_ref(py)))
    }

    /// A short description, for debugging.
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let this = self.view(py)?;
        Ok(format!(
            "<SlidingWindowMapBuffer [{}, {}) of {} bytes>",
            this.offset,
            this.offset + this.len,
            this.len
        ))
    }
}

impl Drop for PyBuffer {
    fn drop(&mut self) {
        // As the reference's `__del__`: release the cursor's region now.
        // Python drops its objects with the GIL held, so this only takes
        // the thread's GIL count.
        Python::with_gil(|py| {
            let cursor = match self.state.get(py).try_borrow_mut() {
                Ok(mut state) => state.cursor.take(),
                Err(_) => None,
            };
            if let Some(cursor) = cursor {
                if let Ok(mut c) = cursor.get().state(py) {
                    c.inner.unuse_region();
                }
            }
        });
    }
}
