//! `WindowCursor`: a position in one file, holding at most one region.
//!
//! The Python object is `frozen` and keeps its state in a [`Guarded`]: the
//! hot path (`use_region` on the current region, `buf[i]`) takes it with a
//! plain load and store under the GIL, a compare-and-swap without it. An
//! engine call that may block (a miss: open, mmap, pread) runs detached from
//! the interpreter, so other Python threads keep running meanwhile.
//!
//! In a process forked from the one that made it, a cursor opens its file
//! again on first use, through its manager (which makes a new engine
//! manager there), and moves to where it was (see [`Reopen`]).

use pyo3::exceptions::PyValueError;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMemoryView, PyTuple};
use pyo3::PyTraverseError;

use crate::args::{AnyInt, Offset, Size};
use crate::errors;
use crate::fork::Local;
use crate::guard::{Guarded, State, StateGuard};
use crate::interp;
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
/// makes an independent cursor on the same region (of the cursor's own
/// class: `type(cursor)()`, then `_copy_from(cursor)`, as the reference).
///
/// In a forked child, a cursor from before the fork opens its file again on
/// first use and moves to the window it held; one another thread was using
/// at the fork raises `RuntimeError` there (make a new one). During
/// shutdown, one another thread holds raises `RuntimeError`.
#[pyclass(name = "WindowCursor", module = "smmap.mman", subclass, frozen)]
pub(crate) struct PyCursor {
    state: Guarded<CursorState>,
}

/// What a cursor holds.
pub(crate) struct CursorState {
    pub(crate) inner: Local<smmap::WindowCursor>,
    manager: Option<Py<PyStaticManager>>,
    /// The `path_or_fd` the caller named the file with.
    source: Option<Py<PyAny>>,
    /// Set in a forked child until the file is open again there; `inner` is
    /// then a cursor of no file.
    reopen: Option<Reopen>,
}

/// Where a cursor copied by `fork()` was, to open its file again there: the
/// name the file was opened with (a relative path is resolved again, from
/// the child's working directory) and the view it held.
struct Reopen {
    file: Option<smmap::PathOrFd>,
    view: Option<(u64, usize)>,
}

impl State for CursorState {
    const CLASS: &'static str = "WindowCursor";

    /// Notes where the cursor was and drops nothing of the engine cursor,
    /// the parent's (see `fork`): reading its own fields takes no lock.
    fn after_fork(&mut self) {
        if self.reopen.is_none() {
            let old = &self.inner;
            self.reopen = Some(Reopen {
                file: old.path_or_fd().cloned(),
                view: old.is_valid().then(|| (old.ofs_begin(), old.size())),
            });
        }
        self.inner = Local::new(smmap::WindowCursor::new(None));
    }
}

impl PyCursor {
    pub(crate) fn new(
        inner: Local<smmap::WindowCursor>,
        manager: Option<Py<PyStaticManager>>,
        source: Option<Py<PyAny>>,
    ) -> Self {
        PyCursor::from_state(CursorState {
            inner,
            manager,
            source,
            reopen: None,
        })
    }

    fn from_state(state: CursorState) -> Self {
        PyCursor {
            state: Guarded::new(state),
        }
    }

    /// The cursor's state, for the duration of one call.
    #[inline]
    pub(crate) fn state(&self, py: Python<'_>) -> PyResult<StateGuard<'_, CursorState>> {
        let st = self.state.lock(py)?;
        if st.reopen.is_none() {
            return Ok(st);
        }
        self.reopen(py, st)
    }

    /// In a forked child: opens the cursor's file again, through its manager,
    /// and moves to the view it held; then the state, as [`state`](Self::state).
    /// The state is let go meanwhile (one state at a time: the manager's is
    /// taken; the engine opens and maps detached). An error (the file is
    /// gone) leaves the cursor to open it again on its next use.
    #[cold]
    fn reopen<'a>(
        &'a self,
        py: Python<'_>,
        st: StateGuard<'a, CursorState>,
    ) -> PyResult<StateGuard<'a, CursorState>> {
        let file = st.reopen.as_ref().and_then(|r| r.file.clone());
        let view = st.reopen.as_ref().and_then(|r| r.view);
        let manager = st.manager.as_ref().map(|m| m.clone_ref(py));
        drop(st);
        let engine_manager = match &manager {
            Some(m) => Some(m.get().manager(py)?),
            None => None,
        };
        // Before the state is taken again: dropping a reference may run
        // Python code.
        drop(manager);
        let made = interp::detached(py, move || -> smmap::Result<smmap::WindowCursor> {
            let mut c = match (engine_manager, file) {
                (Some(m), Some(file)) => m.make_cursor(file)?,
                (m, _) => smmap::WindowCursor::new(m),
            };
            if let Some((offset, size)) = view {
                c.use_region(offset, size)?;
            }
            Ok(c)
        });
        let mut st = self.state.lock(py)?;
        if let Some(released) = st.reopen.as_ref().map(|r| r.view.is_none()) {
            match made {
                Ok(mut c) => {
                    // A release meanwhile (another thread's `unuse_region`)
                    // forgot the view: it holds for the region just mapped.
                    if released {
                        c.unuse_region();
                    }
                    st.inner = Local::new(c);
                    st.reopen = None;
                }
                Err(e) => return Err(st.error(py, e)),
            }
        }
        Ok(st)
    }

    /// Releases the cursor's region (`unuse_region`, `_destroy`, a buffer's
    /// `end_access`): without opening a forked child's file again, which a
    /// release has no need of (see [`CursorState::release`]).
    pub(crate) fn release(&self, py: Python<'_>) -> PyResult<()> {
        self.state.lock(py)?.release();
        Ok(())
    }

    /// The cursor's file as a message names it (see
    /// [`CursorState::file_name`]) and its size, as far as they are known.
    /// A cursor of a forked child is not opened again for it.
    pub(crate) fn describe_file(&self, py: Python<'_>) -> PyResult<(Option<String>, Option<u64>)> {
        let st = self.state.lock(py)?;
        Ok((st.file_name(), st.inner.file_size()))
    }

    /// The cursor's state, for a destructor (see `Guarded::lock_quietly`):
    /// `None` if it cannot be had. A cursor of a forked child is not opened
    /// again for it.
    pub(crate) fn state_quietly(&self, py: Python<'_>) -> Option<StateGuard<'_, CursorState>> {
        self.state.lock_quietly(py)
    }

    /// The cursor's state if no thread holds it, without waiting (see
    /// `Guarded::try_lock`).
    #[inline]
    pub(crate) fn try_state(&self) -> Option<StateGuard<'_, CursorState>> {
        self.state.try_lock()
    }

    /// Runs `f` on the state; an engine error becomes the Python exception
    /// for this cursor's file once the state is released.
    fn engine<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut CursorState) -> smmap::Result<R>,
    ) -> PyResult<R> {
        let (result, source) = {
            let mut st = self.state(py)?;
            let result = f(&mut st);
            let source = match &result {
                Err(_) => st.source.as_ref().map(|s| s.clone_ref(py)),
                Ok(_) => None,
            };
            (result, source)
        };
        result.map_err(|e| errors::to_py(py, e, source.as_ref().map(|s| s.bind(py))))
    }

    /// Reads a value of the state.
    fn read<R>(&self, py: Python<'_>, f: impl FnOnce(&CursorState) -> R) -> PyResult<R> {
        Ok(f(&*self.state(py)?))
    }

    /// Replaces the state; the old one is dropped once it is released
    /// (dropping Python references may run Python code).
    fn replace(&self, py: Python<'_>, new: CursorState) -> PyResult<()> {
        let old = std::mem::replace(&mut *self.state.lock(py)?, new);
        drop(old);
        Ok(())
    }
}

impl CursorState {
    /// Releases the region held. In a forked child whose cursor has not
    /// opened its file again yet, forgets the view it would have mapped
    /// there instead: a release never opens a file (which may be gone) nor
    /// maps a window only to unmap it; the file is opened on the next use.
    pub(crate) fn release(&mut self) {
        if let Some(r) = &mut self.reopen {
            r.view = None;
        }
        self.inner.unuse_region();
    }

    /// The state of `WindowCursor(manager, regions)`.
    fn made(
        py: Python<'_>,
        manager: Option<Bound<'_, PyStaticManager>>,
        regions: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let engine_manager = match &manager {
            Some(m) => Some(m.get().manager(py)?),
            None => None,
        };
        let Some(regions) = regions.filter(|r| !r.is_none()) else {
            return Ok(CursorState {
                inner: Local::new(smmap::WindowCursor::new(engine_manager)),
                manager: manager.map(Bound::unbind),
                source: None,
                reopen: None,
            });
        };
        let (Some(manager), Some(engine_manager)) = (manager, engine_manager) else {
            return Err(PyValueError::new_err(
                "a cursor with regions needs a manager",
            ));
        };
        let source = regions.call_method0("path_or_fd")?;
        let key = crate::args::path_or_fd(&source)?;
        let inner = interp::detached(py, || engine_manager.make_cursor(key))
            .map_err(|e| errors::to_py(py, e, Some(&source)))?;
        Ok(CursorState {
            inner: Local::new(inner),
            manager: Some(manager.unbind()),
            source: Some(source.unbind()),
            reopen: None,
        })
    }

    /// The cursor's file as a message names it: its path, or "file
    /// descriptor N" (the engine's name for it, made without running Python
    /// code); None without a file. In a forked child, the file it will open
    /// again.
    pub(crate) fn file_name(&self) -> Option<String> {
        let file = match &self.reopen {
            Some(r) => r.file.as_ref(),
            None => self.inner.path_or_fd(),
        };
        file.map(ToString::to_string)
    }

    /// The Python exception for an engine error on this cursor's file.
    pub(crate) fn error(&self, py: Python<'_>, e: smmap::Error) -> PyErr {
        errors::to_py(py, e, self.source.as_ref().map(|s| s.bind(py)))
    }

    /// Moves the cursor to absolute `offset`: nothing but a range check when
    /// the current region holds it; detached from the interpreter when the
    /// manager must find, open or map.
    #[inline]
    pub(crate) fn move_to(
        &mut self,
        py: Python<'_>,
        offset: u64,
        size: usize,
    ) -> smmap::Result<()> {
        let inner = &mut *self.inner;
        if inner.holds(offset, 1) {
            inner.use_region(offset, size)?;
        } else {
            interp::detached(py, || inner.use_region(offset, size).map(|_| ()))?;
        }
        Ok(())
    }

    fn region_or_err(&self) -> PyResult<&smmap::MapRegion> {
        self.inner
            .region()
            .ok_or_else(|| errors::invalid_cursor(self.file_name().as_deref()))
    }

    fn associated_source(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
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
            reopen: None,
        }
    }
}

#[pymethods]
impl PyCursor {
    /// A cursor of no manager and no file, which `__init__` sets up (see the
    /// crate documentation: the arguments are `__init__`'s).
    #[new]
    #[pyo3(signature = (*_args, **_kwargs), text_signature = "(manager=None, regions=None)")]
    fn __new__(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        PyCursor::new(Local::new(smmap::WindowCursor::new(None)), None, None)
    }

    /// Returns the cursor itself.
    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Calls `_destroy()`.
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

    /// A cursor of `manager`, associated with no file; or, with `regions` (a
    /// `MapRegionList`), associated with the file it names.
    #[pyo3(signature = (manager = None, regions = None))]
    fn __init__(
        &self,
        py: Python<'_>,
        manager: Option<Bound<'_, PyStaticManager>>,
        regions: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let state = CursorState::made(py, manager, regions)?;
        self.replace(py, state)
    }

    /// The manager and the file's name are Python objects the cursor holds.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(st) = self.state.try_lock() {
            visit.call(&st.manager)?;
            visit.call(&st.source)?;
        }
        Ok(())
    }

    /// Breaks a reference cycle: forgets the manager and the file's name
    /// (the engine cursor keeps working).
    fn __clear__(&self) {
        let taken = self
            .state
            .try_lock()
            .map(|mut st| (st.manager.take(), st.source.take()));
        drop(taken);
    }

    /// Releases the cursor's region at once. The cursor stays associated
    /// with its file; the file is forgotten by the manager once no cursor
    /// and no region of it remain.
    fn _destroy(&self, py: Python<'_>) -> PyResult<()> {
        self.unuse_region(py)
    }

    /// Makes this cursor a copy of `rhs`, releasing what it held before (as
    /// `assign()`).
    fn _copy_from(slf: &Bound<'_, Self>, rhs: &Bound<'_, Self>) -> PyResult<()> {
        Self::assign(slf, rhs)
    }

    /// An independent cursor on the same file and region (`copy.copy`), of
    /// the cursor's own class: `type(self)()`, then `_copy_from(self)`.
    fn __copy__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        if slf.is_exact_instance_of::<Self>() {
            let copy = slf.get().read(py, |st| st.copy(py))?;
            return Ok(Bound::new(py, PyCursor::from_state(copy))?.into_any());
        }
        let copy = slf.get_type().call0()?;
        copy.call_method1("_copy_from", (slf,))?;
        Ok(copy)
    }

    /// Makes this cursor an independent copy of `rhs`, releasing what it
    /// held before.
    fn assign(slf: &Bound<'_, Self>, rhs: &Bound<'_, Self>) -> PyResult<()> {
        if slf.is(rhs) {
            return Ok(());
        }
        let py = slf.py();
        let copy = rhs.get().read(py, |st| st.copy(py))?;
        slf.get().replace(py, copy)
    }

    /// Points the cursor at absolute `offset`, with a view of up to `size`
    /// bytes (0 or None: as many as possible), clamped to the window size and the
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
    /// When the file cannot be opened, the cursor keeps the region it held
    /// (unless the call waited first, for another thread's window or for
    /// room, having given it back); when a new region cannot be mapped, it
    /// holds none. Either way it can
    /// be used again.
    #[pyo3(signature = (offset = Offset(0), size = None, flags = 0))]
    #[pyo3(text_signature = "($self, offset=0, size=0, flags=0)")]
    fn use_region(
        slf: Bound<'_, Self>,
        offset: Offset,
        size: Option<Size>,
        flags: i32,
    ) -> PyResult<Bound<'_, Self>> {
        let _ = flags;
        // The reference's `size or fsize`: None is "as much as possible".
        let size = size.unwrap_or(Size(0));
        let py = slf.py();
        slf.get()
            .engine(py, |st| st.move_to(py, offset.0, size.as_usize()))?;
        Ok(slf)
    }

    /// Releases the current region; does nothing without one. The cursor
    /// stays associated with its file.
    fn unuse_region(&self, py: Python<'_>) -> PyResult<()> {
        self.release(py)
    }

    /// A `memoryview` of the bytes `[ofs_begin(), ofs_end())`. It keeps its
    /// pages mapped while it lives, even after the cursor moves or the
    /// manager collects the region.
    ///
    /// Raises `ValueError` if the cursor is not valid.
    fn buffer<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyMemoryView>> {
        let (region, start, len) = self.read(py, |st| {
            let region = st.region_or_err()?;
            let start = (st.inner.ofs_begin() - region.ofs_begin()) as usize;
            Ok::<_, PyErr>((Local::new(region.clone()), start, st.inner.size()))
        })??;
        region::memoryview(py, region, start, len)
    }

    /// The whole current region, which may start before and end after the
    /// cursor's view: a read-only object with the buffer protocol, `len()`,
    /// indexing and slicing, whose items are ints (as `bytes`', not as
    /// `mmap.mmap`'s). A new object on each call. With a
    /// `StaticWindowMapManager` it is the whole file.
    ///
    /// Raises `ValueError` if the cursor is not valid.
    fn map(&self, py: Python<'_>) -> PyResult<Py<MappedView>> {
        let region = self.read(py, |st| st.region_or_err().cloned())??;
        Py::new(py, MappedView::whole(Local::new(region)))
    }

    /// True if the cursor holds a region it can read from.
    fn is_valid(&self, py: Python<'_>) -> PyResult<bool> {
        self.read(py, |st| st.inner.is_valid())
    }

    /// True if the cursor is associated with a file.
    fn is_associated(&self, py: Python<'_>) -> PyResult<bool> {
        self.read(py, |st| st.inner.is_associated())
    }

    /// Absolute offset of the first byte of the view. Without a region, the
    /// offset of the last view held (0 if none).
    fn ofs_begin(&self, py: Python<'_>) -> PyResult<u64> {
        self.read(py, |st| st.inner.ofs_begin())
    }

    /// Absolute offset one past the last byte of the view (`ofs_begin()`
    /// without a region).
    fn ofs_end(&self, py: Python<'_>) -> PyResult<u64> {
        self.read(py, |st| st.inner.ofs_end())
    }

    /// Number of bytes in the view (0 without a region).
    fn size(&self, py: Python<'_>) -> PyResult<usize> {
        self.read(py, |st| st.inner.size())
    }

    /// The current region, or None if nothing is mapped.
    fn region(&self, py: Python<'_>) -> PyResult<Option<PyMapRegion>> {
        let region = self.read(py, |st| st.inner.region().cloned())?;
        Ok(region.map(|r| PyMapRegion::managed(Local::new(r))))
    }

    /// True if absolute offset `ofs` lies in the cursor's view (False
    /// without a region).
    fn includes_ofs(&self, py: Python<'_>, ofs: AnyInt) -> PyResult<bool> {
        self.read(py, |st| {
            u64::try_from(ofs.0).is_ok_and(|v| st.inner.includes_ofs(v))
        })
    }

    /// The size of the file, as read when the manager first met it.
    ///
    /// Raises `ValueError` if the cursor is associated with no file.
    fn file_size(&self, py: Python<'_>) -> PyResult<u64> {
        self.read(py, |st| st.inner.file_size())?
            .ok_or_else(errors::not_associated)
    }

    /// The path or file descriptor the file was named with.
    ///
    /// Raises `ValueError` if the cursor is associated with no file.
    fn path_or_fd(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.read(py, |st| st.associated_source(py))?
    }

    /// The path the file was named with.
    ///
    /// Raises `ValueError` if it was named by a file descriptor.
    fn path(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let (source, by_fd) = self.read(py, |st| {
            let lent = st.inner.path_or_fd().is_some_and(|f| f.path().is_none());
            (st.associated_source(py), lent)
        })?;
        if by_fd {
            return Err(PyValueError::new_err(
                "Path queried although mapping was applied to a file descriptor",
            ));
        }
        source
    }

    /// The file descriptor the file was named with (it may have been closed
    /// by its owner since).
    ///
    /// Raises `ValueError` if it was named by a path.
    fn fd(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let (source, by_path) = self.read(py, |st| {
            (st.associated_source(py), st.inner.path().is_some())
        })?;
        if by_path {
            return Err(PyValueError::new_err(
                "File descriptor queried although mapping was generated from path",
            ));
        }
        source
    }

    /// How many times a thread has begun to wait for this cursor, queued
    /// behind the thread using it. Not part of smmap's API: the package's
    /// tests start a thread once the one before it is in line.
    fn _waits_begun(&self) -> u64 {
        self.state.waits_begun()
    }

    /// A short description, for debugging.
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let (source, range) = self.read(py, |st| {
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
        })?;
        // repr() of the path runs Python code: the state is not held here.
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
