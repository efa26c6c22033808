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
//! exceptions, and runs a read that misses the current region (which may
//! map, or `pread`) detached from the interpreter.

use pyo3::exceptions::{PyIndexError, PyMemoryError, PyOverflowError, PyValueError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt, PySlice, PyTuple};
use pyo3::PyTraverseError;

use crate::args::{index_arg, int_value, show, AnyInt, Given, Offset, Size, SliceBounds};
use crate::cursor::{CursorState, PyCursor};
use crate::errors;
use crate::guard::{Guarded, State, StateGuard};
use crate::interp;
use crate::region::copy_bytes;

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
/// `OSError`, `FileReplacedError`; `RuntimeError` for one another thread
/// was using when the process forked, or holds during shutdown.
///
/// A buffer is a context manager: leaving the `with` block calls
/// `end_access()`, as dropping the buffer does.
// (Not in the docstring above, which the public class shows as its own:
// this is the implementation; the class Python sees is a subclass of it
// that answers `buf[key]` on a hit without PyO3's call overhead, see
// `fast`.)
#[pyclass(
    name = "SlidingWindowMapBuffer",
    module = "smmap._smmap",
    subclass,
    frozen
)]
pub(crate) struct PyBuffer {
    state: Guarded<BufState>,
}

pub(crate) struct BufState {
    pub(crate) cursor: Option<Py<PyCursor>>,
    /// Absolute offset of index 0.
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

/// Nothing to redo after a fork: the cursor opens its file again itself.
impl State for BufState {
    const CLASS: &'static str = "SlidingWindowMapBuffer";
}

impl BufState {
    /// The relative index `i` (negative from the end) as an absolute
    /// offset, if it lies in the buffer.
    #[inline]
    pub(crate) fn absolute_in_range(&self, i: i128) -> Option<u64> {
        absolute_in_range(self.offset, self.len, i)
    }
}

/// The relative index `i` (negative from the end) of `[offset, offset +
/// len)` as an absolute offset, if it lies there.
#[inline]
fn absolute_in_range(offset: u64, len: u64, i: i128) -> Option<u64> {
    let len = i128::from(len);
    let j = if i < 0 { i + len } else { i };
    (0..len).contains(&j).then(|| offset + j as u64)
}

/// What a read needs of the buffer, taken in one go: the buffer's state is
/// let go before the cursor's is taken (one state at a time, see `guard`).
/// A read that another thread's `begin_access` overtakes reads the view it
/// started with.
///
/// The cursor is a `Bound`, whose drop gives its reference back at once:
/// `fast` reads through a view outside PyO3's count of attached calls, where
/// dropping a `Py` queues the reference in PyO3's process-wide pool (a lock
/// every such read would take), to be given back — perhaps the cursor's
/// last, running its finalizers — by whichever thread next comes back from
/// `detach`, maybe while it holds a state.
struct View<'py> {
    cursor: Option<Bound<'py, PyCursor>>,
    /// Absolute offset of index 0.
    offset: u64,
    len: u64,
}

impl View<'_> {
    /// The cursor's state.
    #[inline]
    fn cursor<'a>(&'a self, py: Python<'_>) -> PyResult<StateGuard<'a, CursorState>> {
        match &self.cursor {
            Some(c) => c.get().state(py),
            None => Err(out_of_range(0, self, None)),
        }
    }

    /// The byte at relative index `i`: the engine cursor's `byte_at`, whose
    /// hit is one comparison and one load.
    #[inline]
    fn byte(&self, py: Python<'_>, i: i128) -> PyResult<u8> {
        let Some(abs) = absolute_in_range(self.offset, self.len, i) else {
            return Err(self.index_error(py, i));
        };
        let mut c = self.cursor(py)?;
        let inner = &mut *c.inner;
        let read = if inner.holds(abs, 1) {
            inner.byte_at(abs)
        } else {
            interp::detached(py, || inner.byte_at(abs))
        };
        read.map_err(|e| read_error(py, &c, e, self))
    }

    /// The buffer's `IndexError` for relative index `i`, naming the
    /// cursor's file (whose state it takes, with no state held).
    #[cold]
    fn index_error(&self, py: Python<'_>, i: i128) -> PyErr {
        let file = match &self.cursor {
            Some(c) => match c.get().describe_file(py) {
                Ok((file, _)) => file,
                Err(e) => return e,
            },
            None => None,
        };
        out_of_range(i, self, file.as_deref())
    }

    /// `n` bytes from relative index `start`, clipped to the buffer: copied
    /// straight from the mapping when the current region holds them all,
    /// stitched together by the engine cursor's `read_at` otherwise.
    ///
    /// Raises `MemoryError` if a copy of `n` bytes cannot be allocated;
    /// nothing of that size is allocated before Python's `bytes` itself.
    fn read<'py>(&self, py: Python<'py>, start: u64, n: u64) -> PyResult<Bound<'py, PyBytes>> {
        let n = n.min(self.len.saturating_sub(start));
        if n == 0 {
            return Ok(PyBytes::new(py, b""));
        }
        let abs = self.offset + start;
        let mut c = self.cursor(py)?;
        let c = &mut *c;
        if c.inner.holds(abs, n) {
            // The common case: the current region holds it all, one copy.
            return match c.inner.chunk_at(abs) {
                Ok(chunk) => match copy_bytes(py, &chunk[..n as usize]) {
                    Some(bytes) => Ok(bytes),
                    None => Err(too_large(py, c, abs, n)),
                },
                Err(e) => Err(read_error(py, c, e, self)),
            };
        }
        let inner = &mut *c.inner;
        let read = new_bytes(py, n, |out| {
            Ok(interp::detached(py, || inner.read_at(abs, out)))
        })?;
        match read {
            Some((_, Ok(got))) if got < n as usize => Err(out_of_range(
                i128::from(start) + got as i128,
                self,
                c.file_name().as_deref(),
            )),
            Some((bytes, Ok(_))) => Ok(bytes),
            Some((_, Err(e))) => Err(read_error(py, c, e, self)),
            None => Err(too_large(py, c, abs, n)),
        }
    }

    /// The bytes at `count` relative indices from `start`, `step` apart
    /// (every index inside the buffer), byte by byte into the `bytes` object.
    fn read_strided<'py>(
        &self,
        py: Python<'py>,
        start: u64,
        step: i64,
        count: u64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut c = self.cursor(py)?;
        let c = &mut *c;
        let offset = self.offset;
        let inner = &mut *c.inner;
        let read = new_bytes(py, count, |out| {
            let mut at = start as i64;
            for b in out.iter_mut() {
                let abs = offset + at as u64;
                let byte = if inner.holds(abs, 1) {
                    inner.byte_at(abs)
                } else {
                    interp::detached(py, || inner.byte_at(abs))
                };
                match byte {
                    Ok(v) => *b = v,
                    Err(e) => return Ok(Err(e)),
                }
                at += step;
            }
            Ok(Ok(()))
        })?;
        match read {
            Some((bytes, Ok(()))) => Ok(bytes),
            Some((_, Err(e))) => Err(read_error(py, c, e, self)),
            None => Err(too_large(py, c, offset + start, count)),
        }
    }
}

/// Moves `cursor` to `offset` for a buffer of up to `size` bytes there:
/// the buffer's length, or `None` if it cannot be used (a cursor of no
/// file, an offset at or past the end of the file).
fn begin_at(py: Python<'_>, cursor: &PyCursor, offset: u64, size: Size) -> PyResult<Option<u64>> {
    let mut c = cursor.state(py)?;
    let Some(fsize) = c.inner.file_size() else {
        return Ok(None);
    };
    if let Err(e) = c.move_to(py, offset, size.as_usize()) {
        return Err(c.error(py, e));
    }
    if !c.inner.is_valid() {
        return Ok(None);
    }
    Ok(Some(size.0.min(fsize - offset)))
}

/// The buffer's `IndexError` for relative index `i` of `view`, naming the
/// buffer's length and offset and `file` (as [`CursorState::file_name`]
/// names it).
#[cold]
fn out_of_range(i: i128, view: &View<'_>, file: Option<&str>) -> PyErr {
    PyIndexError::new_err(format!(
        "buffer index out of range: index {} of a buffer of {} bytes at offset {} of {}",
        show(i),
        view.len,
        view.offset,
        file.unwrap_or("no file")
    ))
}

/// The Python exception for an engine error while reading the buffer: an
/// offset past the end of the cursor's file (possible only if the cursor was
/// re-pointed at a shorter file) is the buffer's `IndexError`; anything else
/// is the cursor's error.
#[cold]
fn read_error(py: Python<'_>, c: &CursorState, e: smmap::Error, view: &View<'_>) -> PyErr {
    match e {
        smmap::Error::OutOfRange { offset, .. } => out_of_range(
            i128::from(offset) - i128::from(view.offset),
            view,
            c.file_name().as_deref(),
        ),
        e => c.error(py, e),
    }
}

/// A `bytes` object of `n` bytes, filled by `fill`, with what `fill`
/// returned; `None` if Python cannot allocate it (the caller raises
/// [`too_large`] then).
fn new_bytes<'py, R>(
    py: Python<'py>,
    n: u64,
    fill: impl FnOnce(&mut [u8]) -> PyResult<R>,
) -> PyResult<Option<(Bound<'py, PyBytes>, R)>> {
    // `bytes` holds at most `isize::MAX` bytes (less its header).
    let Some(len) = usize::try_from(n)
        .ok()
        .filter(|&n| isize::try_from(n).is_ok())
    else {
        return Ok(None);
    };
    let mut filled = None;
    let result = PyBytes::new_with(py, len, |out| {
        filled = Some(fill(out)?);
        Ok(())
    });
    match (result, filled) {
        (Ok(bytes), Some(r)) => Ok(Some((bytes, r))),
        // The allocation itself failed: `MemoryError`, or `OverflowError`
        // just below `isize::MAX`.
        (Err(e), None)
            if e.is_instance_of::<PyMemoryError>(py) || e.is_instance_of::<PyOverflowError>(py) =>
        {
            Ok(None)
        }
        (Err(e), _) => Err(e),
        (Ok(_), None) => unreachable!("new_with fills what it returns"),
    }
}

/// The engine's `TooLarge` error for a copy of `n` bytes at absolute offset
/// `abs` of the cursor's file: a `MemoryError` naming the file, offset and
/// length.
#[cold]
fn too_large(py: Python<'_>, c: &CursorState, abs: u64, n: u64) -> PyErr {
    let Some(file) = c.inner.path_or_fd().cloned() else {
        return errors::not_associated();
    };
    c.error(
        py,
        smmap::Error::TooLarge {
            file,
            offset: abs,
            len: n,
        },
    )
}

/// The constructor's `ValueError` for a buffer that cannot be used: the
/// reference's message, then the offset asked for, the cursor's file and
/// its size (those of one of this package's cursors: `begin_access` may be
/// a subclass's, which takes other objects). Python code runs here
/// (`str(offset)`): no state is held.
#[cold]
fn not_usable(cursor: &Bound<'_, PyAny>, offset: Option<&Bound<'_, PyAny>>) -> PyErr {
    // An offset whose `__str__` fails is not named: the `ValueError` is
    // still the error to raise.
    let offset = match offset.map(|o| o.str()) {
        Some(Ok(o)) => o.to_string(),
        Some(Err(_)) => "(not printable)".to_owned(),
        None => "0".to_owned(),
    };
    let file = match cursor.cast::<PyCursor>() {
        Ok(c) => match c.get().describe_file(cursor.py()) {
            Ok((Some(name), Some(size))) => format!(" of {name}, a file of {size} bytes"),
            Ok((Some(name), None)) => format!(" of {name}"),
            Ok((None, _)) => " of a cursor with no file".to_owned(),
            Err(e) => return e,
        },
        Err(_) => String::new(),
    };
    PyValueError::new_err(format!(
        "Failed to allocate the buffer - probably the given offset is out of bounds: \
         offset {offset}{file}"
    ))
}

impl PyBuffer {
    /// The buffer's state, for the duration of one call.
    #[inline]
    fn state(&self, py: Python<'_>) -> PyResult<StateGuard<'_, BufState>> {
        self.state.lock(py)
    }

    /// What a read needs (see [`View`]).
    #[inline]
    fn view<'py>(&self, py: Python<'py>) -> PyResult<View<'py>> {
        let st = self.state(py)?;
        Ok(View {
            cursor: st.cursor.as_ref().map(|c| c.bind(py).clone()),
            offset: st.offset,
            len: st.len,
        })
    }

    /// `buf[i]` (relative, negative from the end) as a Python int.
    #[inline]
    fn item(&self, py: Python<'_>, i: i128) -> PyResult<Py<PyAny>> {
        let b = self.view(py)?.byte(py, i)?;
        Ok(b.into_pyobject(py)?.into_any().unbind())
    }

    /// `buf[slice]`, its bounds read already, with Python's slice semantics.
    pub(crate) fn slice<'py>(
        &self,
        py: Python<'py>,
        bounds: SliceBounds,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let view = self.view(py)?;
        let ind = bounds.adjust(view.len);
        if ind.step == 1 || ind.count <= 1 {
            view.read(py, ind.start, ind.count)
        } else {
            view.read_strided(py, ind.start, ind.step, ind.count)
        }
    }

    /// The state if no thread holds it, for the fast path (see `fast`),
    /// which leaves anything else to the methods here.
    #[inline]
    pub(crate) fn try_state(&self) -> Option<StateGuard<'_, BufState>> {
        self.state.try_lock()
    }
}

#[pymethods]
impl PyBuffer {
    /// A buffer without a cursor, which `__init__` sets up (see the crate
    /// documentation: the arguments are `__init__`'s).
    #[new]
    #[pyo3(
        signature = (*_args, **_kwargs),
        text_signature = "(cursor=None, offset=0, size=sys.maxsize, flags=0)"
    )]
    fn __new__(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        PyBuffer {
            state: Guarded::new(BufState {
                cursor: None,
                offset: 0,
                len: 0,
            }),
        }
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

    /// A buffer over `[offset, offset + size)` of the cursor's file (`size`
    /// clipped to the file's end): as the reference, `__init__(cursor=None,
    /// offset=0, size=sys.maxsize, flags=0)` calls
    /// `self.begin_access(cursor, ...)` (a subclass's, if it has one) with
    /// the arguments given when a cursor is given. Without one,
    /// `begin_access()` must be called before use. `flags` is accepted for
    /// compatibility and ignored.
    ///
    /// Raises `ValueError` if the cursor is given but the buffer cannot be
    /// used (offset at or past the end of the file, cursor without a file) or
    /// the offset or size is negative; with a cursor, `TypeError` for an
    /// offset, size or flags of None, which `begin_access` refuses (as the
    /// reference's fails on them).
    #[pyo3(signature = (cursor = None, offset = Given::Missing, size = Given::Missing, flags = Given::Missing))]
    fn __init__<'py>(
        slf: &Bound<'py, Self>,
        cursor: Option<&Bound<'py, PyAny>>,
        offset: Given<'py>,
        size: Given<'py>,
        flags: Given<'py>,
    ) -> PyResult<()> {
        let py = slf.py();
        let Some(cursor) = cursor.filter(|c| !c.is_none()) else {
            let old = {
                let mut st = slf.get().state(py)?;
                st.len = 0;
                st.cursor.take()
            };
            drop(old);
            return Ok(());
        };
        let shown_offset = match &offset {
            Given::Passed(o) => Some(o.clone()),
            Given::Missing => None,
        };
        let given = PyDict::new(py);
        for (name, value) in [("offset", offset), ("size", size), ("flags", flags)] {
            if let Given::Passed(value) = value {
                given.set_item(name, value)?;
            }
        }
        let usable =
            slf.call_method(interp::name!(py, "begin_access")?, (cursor,), Some(&given))?;
        if !usable.is_truthy()? {
            return Err(not_usable(cursor, shown_offset.as_ref()));
        }
        Ok(())
    }

    /// The cursor is a Python object the buffer holds.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(st) = self.state.try_lock() {
            visit.call(&st.cursor)?;
        }
        Ok(())
    }

    /// Breaks a reference cycle: ends access (as dropping the buffer does)
    /// and forgets the cursor.
    fn __clear__(&self) {
        let cursor = self.state.try_lock().and_then(|mut st| {
            st.len = 0;
            st.cursor.take()
        });
        if let Some(c) = &cursor {
            if let Some(mut c) = c.get().try_state() {
                c.release();
            }
        }
        drop(cursor);
    }

    /// The number of bytes in the view (0 after `end_access()`).
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(usize::try_from(self.state(py)?.len).unwrap_or(usize::MAX))
    }

    /// `buf[i]`: the byte at relative index `i` as an int (negative counts
    /// from the end; `IndexError` past either end). `buf[a:b]` (any slice):
    /// `bytes`.
    ///
    /// (The public class answers hits without this method: see `fast`.)
    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        if let Ok(int) = key.cast_exact::<PyInt>() {
            return self.item(py, int_value(int));
        }
        if let Ok(slice) = key.cast::<PySlice>() {
            // The bounds' `__index__` runs before the state is taken.
            let bounds = SliceBounds::unpack(slice)?;
            return Ok(self.slice(py, bounds)?.into_any().unbind());
        }
        let i = index_arg(key)?;
        self.item(py, i)
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
        let view = self.view(py)?;
        let len = i128::from(view.len);
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
        view.read(py, i as u64, (j - i) as u64)
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
        let given = cursor.is_some();
        let cursor = match cursor {
            Some(c) => c.unbind(),
            None => {
                let mut st = self.state(py)?;
                match &st.cursor {
                    Some(c) => c.clone_ref(py),
                    None => {
                        st.len = 0;
                        return Ok(false);
                    }
                }
            }
        };
        // The cursor moves with the buffer's state let go; then the buffer
        // takes the new view (or none, if the cursor failed) in one step.
        // Without a cursor given, that is only if it still reads through
        // the same one: another thread's `begin_access` that switched it
        // meanwhile stands.
        let opened = begin_at(py, cursor.get(), offset.0, size);
        let usable = match &opened {
            Ok(Some(len)) => Some(*len),
            _ => None,
        };
        let (replaced, spare) = {
            let mut st = self.state(py)?;
            let same = st.cursor.as_ref().is_some_and(|c| c.is(&cursor));
            if given || same {
                st.len = usable.unwrap_or(0);
                if usable.is_some() {
                    st.offset = offset.0;
                }
            }
            if given {
                (st.cursor.replace(cursor), None)
            } else {
                (None, Some(cursor))
            }
        };
        // References are dropped with no state held.
        drop((replaced, spare));
        opened.map(|o| o.is_some())
    }

    /// Releases the cursor's region; the buffer is empty (length 0) until
    /// `begin_access()` is called again. Called when the buffer is dropped.
    fn end_access(&self, py: Python<'_>) -> PyResult<()> {
        let cursor = {
            let mut st = self.state(py)?;
            st.len = 0;
            st.cursor.as_ref().map(|c| c.clone_ref(py))
        };
        if let Some(c) = &cursor {
            c.get().release(py)?;
        }
        Ok(())
    }

    /// The cursor that provides access to the data, or None.
    fn cursor(&self, py: Python<'_>) -> PyResult<Option<Py<PyCursor>>> {
        Ok(self.state(py)?.cursor.as_ref().map(|c| c.clone_ref(py)))
    }

    /// A short description, for debugging.
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let st = self.state(py)?;
        Ok(format!(
            "<SlidingWindowMapBuffer [{}, {}) of {} bytes>",
            st.offset,
            st.offset + st.len,
            st.len
        ))
    }
}

impl Drop for PyBuffer {
    fn drop(&mut self) {
        // As the reference's `__del__`: release the cursor's region now.
        let Some(cursor) = self.state.get_mut().and_then(|st| st.cursor.take()) else {
            return;
        };
        // PyO3 drops a class's value in its `tp_dealloc`, attached: this
        // attaches to nothing new (and makes no attempt to during shutdown).
        let attached = Python::try_attach(|py| {
            if let Some(mut c) = cursor.get().state_quietly(py) {
                c.release();
            }
        });
        match attached {
            Some(()) => drop(cursor),
            // Never attached: the reference is leaked, not queued for later.
            None => std::mem::forget(cursor),
        }
    }
}
