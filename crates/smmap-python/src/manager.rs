//! `StaticWindowMapManager` and its subclass `SlidingWindowMapManager`: one
//! shared [`smmap::Manager`] behind smmap 6.0.0's manager API.
//!
//! In a process forked from the one that made it, a manager makes a new
//! engine manager with the same limits (the old one is leaked, see `fork`):
//! what the parent had mapped is not counted in the child.

use pyo3::exceptions::{PyAssertionError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::args::{non_negative, AnyInt, Size};
use crate::cursor::PyCursor;
use crate::errors;
use crate::fork::Local;
use crate::guard::{Guarded, State};
use crate::interp;
use crate::region::PyMapRegion;
use crate::util::PyMapWindow;

/// Python's `sys.maxsize` on this platform, the reference's default
/// `max_open_handles` (kept in the signatures; the engine caps it at
/// [`smmap::default_max_open_handles`]).
const SYS_MAXSIZE: i128 = isize::MAX as i128;

/// `smmap.util.MapRegionList`, the default `MapRegionListCls`.
static DEFAULT_REGION_LIST: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Provides cursors that map whole files, one region per file, unmapping
/// the least-recently-used unused files to stay within its limits (smmap's
/// `StaticWindowMapManager`). Safe to share between threads; in a forked
/// child, one made before the fork makes a new engine manager with the same
/// limits.
///
/// `window_size`: -1 (any negative) picks 1024 MiB on 64-bit systems (64 MiB
/// on 32-bit); 0 means unlimited. For this manager it only limits the size of
/// a cursor's view; regions always map the whole file.
/// `max_memory_size`: the most bytes mapped at once; 0 picks 8192 MiB on
/// 64-bit (1024 MiB on 32-bit). Exceeded only while every region is in use.
/// `max_open_handles`: the most regions mapped at once (at least 1). The
/// default (`sys.maxsize`, as the reference's signature says) and any larger
/// value mean half the kernel's limit on mappings per process
/// (`/proc/sys/vm/max_map_count` // 2: 32765 with Linux's default of 65530;
/// unlimited where the kernel states no limit), which is also the cap: a
/// process whose mappings use up that limit fails in its allocator before a
/// manager could unmap anything. `max_file_handles()` returns the limit in
/// effect.
#[pyclass(
    name = "StaticWindowMapManager",
    module = "smmap.mman",
    subclass,
    frozen
)]
pub(crate) struct PyStaticManager {
    /// Which engine manager a default configuration makes.
    sliding: bool,
    /// Set by `__init__`; a manager whose `__init__` never ran (a subclass
    /// that does not call `super().__init__()`) gets the default limits on
    /// first use. Replaced only by `__init__`: cursors made before keep the
    /// engine manager they were made with.
    config: Guarded<Option<Config>>,
}

/// A manager and the limits it was made with.
struct Config {
    inner: Local<smmap::Manager>,
    /// Which engine manager it is.
    sliding: bool,
    /// `(window_size, max_memory_size, max_open_handles)` as resolved from
    /// the arguments (`max_open_handles` as given, before the engine caps
    /// it).
    limits: (u64, u64, u64),
}

/// In a forked child: a new engine manager with the same limits.
impl State for Option<Config> {
    const CLASS: &'static str = "manager";

    fn after_fork(&mut self) {
        if let Some(c) = self {
            *c = build(c.sliding, c.limits);
        }
    }
}

/// Reads the three limits, checking them as the binding promises: negative
/// sizes are `ValueError`, and `max_open_handles` must be at least 1.
fn limits(
    window_size: AnyInt,
    max_memory_size: AnyInt,
    max_open_handles: AnyInt,
) -> PyResult<(u64, u64, u64)> {
    let window = if window_size.0 < 0 {
        smmap::default_window_size()
    } else {
        u64::try_from(window_size.0).unwrap_or(u64::MAX)
    };
    let memory = non_negative(max_memory_size.0, "max_memory_size")?;
    let handles = non_negative(max_open_handles.0, "max_open_handles")?;
    if handles == 0 {
        return Err(PyValueError::new_err("max_open_handles must be at least 1"));
    }
    Ok((window, memory, handles))
}

/// The default limits of either manager.
fn default_limits(sliding: bool) -> (u64, u64, u64) {
    let window = if sliding { -1 } else { 0 };
    limits(AnyInt(window), AnyInt(0), AnyInt(SYS_MAXSIZE)).expect("the defaults are valid")
}

fn build(sliding: bool, (window, memory, handles): (u64, u64, u64)) -> Config {
    let handles_usize = usize::try_from(handles).unwrap_or(usize::MAX);
    let trace = crate::trace::current();
    let inner: smmap::Manager = if sliding {
        let mut b = smmap::SlidingWindowMapManager::builder();
        if let Some(t) = trace {
            b = b.trace(t);
        }
        b.window_size(window)
            .max_memory_size(memory)
            .max_open_handles(handles_usize)
            .build()
            .into()
    } else {
        let mut b = smmap::StaticWindowMapManager::builder();
        if let Some(t) = trace {
            b = b.trace(t);
        }
        b.window_size(window)
            .max_memory_size(memory)
            .max_open_handles(handles_usize)
            .build()
            .into()
    };
    Config {
        inner: Local::new(inner),
        sliding,
        limits: (window, memory, handles),
    }
}

impl PyStaticManager {
    fn unset_with(sliding: bool) -> Self {
        PyStaticManager {
            sliding,
            config: Guarded::new(None),
        }
    }

    /// The engine's manager (a cheap handle).
    pub(crate) fn manager(&self, py: Python<'_>) -> PyResult<smmap::Manager> {
        let mut config = self.config.lock(py)?;
        let config =
            config.get_or_insert_with(|| build(self.sliding, default_limits(self.sliding)));
        Ok(smmap::Manager::clone(&config.inner))
    }

    /// The handle limit in effect, shown as at most `sys.maxsize`.
    fn effective_handles(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self
            .manager(py)?
            .max_file_handles()
            .min(isize::MAX as usize))
    }

    /// `__init__`: makes a new engine manager unless one with these limits
    /// is there already.
    fn configure(&self, py: Python<'_>, limits: (u64, u64, u64)) -> PyResult<()> {
        let old = {
            let mut config = self.config.lock(py)?;
            if config.as_ref().is_some_and(|c| c.limits == limits) {
                return Ok(());
            }
            config.replace(build(self.sliding, limits))
        };
        drop(old);
        Ok(())
    }
}

#[pymethods]
impl PyStaticManager {
    /// A manager with no limits set yet: `__init__` sets them, or the first
    /// use picks the defaults (see the crate documentation: the arguments
    /// are `__init__`'s).
    #[new]
    #[pyo3(
        signature = (*_args, **_kwargs),
        text_signature = "(window_size=0, max_memory_size=0, max_open_handles=sys.maxsize)"
    )]
    fn __new__(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        PyStaticManager::unset_with(false)
    }

    /// A manager with the given limits (see the class documentation). Called
    /// again (or through `super().__init__(...)` with other limits), it makes
    /// a new engine manager; cursors made before keep the old one.
    #[pyo3(signature = (window_size = AnyInt(0), max_memory_size = AnyInt(0), max_open_handles = AnyInt(SYS_MAXSIZE)))]
    fn __init__(
        &self,
        py: Python<'_>,
        window_size: AnyInt,
        max_memory_size: AnyInt,
        max_open_handles: AnyInt,
    ) -> PyResult<()> {
        self.configure(py, limits(window_size, max_memory_size, max_open_handles)?)
    }

    /// A cursor on the file named by `path_or_fd` (a path as `str`, `bytes`
    /// or `os.PathLike`, or an open file descriptor as `int`). The cursor maps
    /// nothing until `use_region()`. It is made by the manager's
    /// `WindowCursorCls`, as `WindowCursorCls(manager,
    /// MapRegionListCls(path_or_fd))` when either class attribute names a
    /// class of its own (a subclass's, say).
    ///
    /// A file descriptor is borrowed, never closed, and must stay open while
    /// new windows of it are mapped. The file's size and identity (device
    /// and inode) are read when the manager first meets the file, and kept
    /// while any cursor or region of it lives; a relative path is resolved
    /// then, too. A path the manager knows is not looked at again: the new
    /// cursor joins the file's. Every later window is mapped from that same
    /// file: a path renamed over or replaced since, or a descriptor number
    /// that now names another file, raises `FileReplacedError`, never
    /// another file's bytes. Once a read has raised it for a path, a new
    /// cursor by that path meets the file now there (the cursors made
    /// before keep the old one). The interpreter is not held while the file
    /// is opened.
    ///
    /// Raises the matching `OSError` (`FileNotFoundError`,
    /// `IsADirectoryError`, `PermissionError`, …) if the file cannot be used.
    fn make_cursor<'py>(
        slf: &Bound<'py, Self>,
        path_or_fd: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let cursor_cls = slf.getattr(interp::name!(py, "WindowCursorCls")?)?;
        let list_cls = slf.getattr_opt(interp::name!(py, "MapRegionListCls")?)?;
        let default_list = interp::filled(py, &DEFAULT_REGION_LIST, || {
            Ok(py
                .import("smmap.util")?
                .getattr("MapRegionList")?
                .cast_into()?)
        })?;
        let custom_list = list_cls.as_ref().filter(|c| !c.is(&default_list));
        if custom_list.is_some() || !cursor_cls.is(py.get_type::<PyCursor>()) {
            let regions = match &list_cls {
                Some(cls) => cls.call1((path_or_fd,))?,
                None => default_list.call1((path_or_fd,))?,
            };
            return cursor_cls.call1((slf, regions));
        }
        let key = crate::args::path_or_fd(path_or_fd)?;
        let manager = slf.get().manager(py)?;
        let cursor = interp::detached(py, || manager.make_cursor(key))
            .map_err(|e| errors::to_py(py, e, Some(path_or_fd)))?;
        let cursor = PyCursor::new(
            Local::new(cursor),
            Some(slf.clone().unbind()),
            Some(path_or_fd.clone().unbind()),
        );
        Ok(Bound::new(py, cursor)?.into_any())
    }

    /// Unmaps every region no cursor uses; returns how many.
    fn collect(&self, py: Python<'_>) -> PyResult<usize> {
        let m = self.manager(py)?;
        Ok(interp::detached(py, || m.collect()))
    }

    /// Unmaps least-recently-used unused regions until `size` more bytes fit
    /// under the memory limit, or every unused region if `size` is 0;
    /// returns how many.
    fn _collect_lru_region(&self, py: Python<'_>, size: Size) -> PyResult<usize> {
        let m = self.manager(py)?;
        Ok(interp::detached(py, || m.collect_lru_region(size.0)))
    }

    /// Number of mapped regions. Each region counts as one file handle.
    fn num_file_handles(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.manager(py)?.num_file_handles())
    }

    /// Number of files with at least one mapped region.
    fn num_open_files(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.manager(py)?.num_open_files())
    }

    /// The size of each window when new regions are mapped (0: unlimited).
    fn window_size(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.manager(py)?.window_size())
    }

    /// Bytes mapped now, in total.
    fn mapped_memory_size(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.manager(py)?.mapped_memory_size())
    }

    /// The most regions ("file handles") that may be mapped at once: the
    /// `max_open_handles` given, capped at half of `vm.max_map_count` (which
    /// is also the default: 32765 with Linux's default map count).
    /// `sys.maxsize` where the kernel states no limit, as the reference.
    fn max_file_handles(&self, py: Python<'_>) -> PyResult<usize> {
        self.effective_handles(py)
    }

    /// The most bytes that may be mapped at once (unless every region is in
    /// use).
    fn max_mapped_memory_size(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.manager(py)?.max_mapped_memory_size())
    }

    /// Only does something on Windows, where a file cannot be deleted while
    /// it is mapped or open; returns None elsewhere, as the reference does.
    ///
    /// On Windows it does what `collect()` does — unmaps every window no
    /// cursor uses and closes every handle the manager keeps — and returns
    /// how many windows it unmapped. That is more than `base_path` asks
    /// (the files of every path, not only those under it; what goes is
    /// mapped again when read), and less than the reference does: a window
    /// a cursor uses stays mapped, where the reference unmaps it under the
    /// cursor. Drop those cursors, then call `collect()`, and the file is
    /// free.
    fn force_map_handle_removal_win(
        &self,
        py: Python<'_>,
        base_path: &Bound<'_, PyAny>,
    ) -> PyResult<Option<usize>> {
        let _ = base_path;
        if cfg!(windows) {
            let m = self.manager(py)?;
            Ok(Some(interp::detached(py, || m.collect())))
        } else {
            Ok(None)
        }
    }

    /// Counters of what the manager has done (an extension: not in smmap
    /// 6.0.0), every one the engine keeps: hits, misses, maps, evictions,
    /// waits for other threads, reads served by `pread` instead of a
    /// mapping (`preads`, `pread_bytes`, `pread_windows`) and windows
    /// mapped once proven hot (`ghost_hits`), descriptors opened and kept, current and peak mapped
    /// bytes and windows, bytes charged against the memory limit (whole
    /// pages), and more.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.manager(py)?.stats();
        let d = PyDict::new(py);
        for (name, value) in s.fields() {
            d.set_item(name, value)?;
        }
        Ok(d)
    }

    /// Checks the manager's internal invariants (an extension, for tests):
    /// raises `AssertionError` describing the first broken one.
    fn _verify_invariants(&self, py: Python<'_>) -> PyResult<()> {
        let m = self.manager(py)?;
        // Detached: the check waits for the evictor's hand, which a thread
        // mapping or unmapping holds.
        interp::detached(py, || m.verify_invariants()).map_err(PyAssertionError::new_err)
    }

    /// The class of window arithmetic (smmap's configuration attribute).
    /// The engine places windows itself: this class is not used.
    #[classattr]
    #[allow(non_snake_case)]
    fn MapWindowCls(py: Python<'_>) -> Py<PyType> {
        py.get_type::<PyMapWindow>().unbind()
    }

    /// The class of regions (smmap's configuration attribute). The engine
    /// maps regions itself: this class is not used.
    #[classattr]
    #[allow(non_snake_case)]
    fn MapRegionCls(py: Python<'_>) -> Py<PyType> {
        py.get_type::<PyMapRegion>().unbind()
    }

    /// The class of cursors `make_cursor` makes (smmap's configuration
    /// attribute).
    #[classattr]
    #[allow(non_snake_case)]
    fn WindowCursorCls(py: Python<'_>) -> Py<PyType> {
        py.get_type::<PyCursor>().unbind()
    }

    /// Bytes in a megabyte, 1048576 (smmap's class attribute, which its
    /// subclasses read). The defaults do not read it: overriding it changes
    /// nothing here.
    #[classattr]
    #[allow(non_snake_case)]
    fn _MB_in_bytes() -> u64 {
        1024 * 1024
    }

    /// A short description, for debugging.
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let m = slf.get().manager(py)?;
        Ok(format!(
            "{}(window_size={}, max_memory_size={}, max_open_handles={})",
            slf.get_type().qualname()?,
            m.window_size(),
            m.max_mapped_memory_size(),
            slf.get().effective_handles(py)?
        ))
    }
}

/// Maps windows of at most `window_size` bytes of any number of files,
/// placed between the file's existing regions and aligned to the allocation
/// granularity; once the memory or handle limit is reached, the
/// least-recently-used unused windows are unmapped (smmap's
/// `SlidingWindowMapManager`). Unlike the reference, it is thread-safe.
///
/// Same parameters as `StaticWindowMapManager`, but `window_size` defaults
/// to -1 (1024 MiB on 64-bit systems).
#[pyclass(name = "SlidingWindowMapManager", module = "smmap.mman", extends = PyStaticManager, subclass, frozen)]
pub(crate) struct PySlidingManager;

#[pymethods]
impl PySlidingManager {
    /// A manager with no limits set yet (see `StaticWindowMapManager`).
    #[new]
    #[pyo3(
        signature = (*_args, **_kwargs),
        text_signature = "(window_size=-1, max_memory_size=0, max_open_handles=sys.maxsize)"
    )]
    fn __new__(
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyClassInitializer<Self> {
        PyClassInitializer::from(PyStaticManager::unset_with(true)).add_subclass(PySlidingManager)
    }

    /// A manager with the given limits (see the class documentation).
    #[pyo3(signature = (window_size = AnyInt(-1), max_memory_size = AnyInt(0), max_open_handles = AnyInt(SYS_MAXSIZE)))]
    fn __init__(
        slf: &Bound<'_, Self>,
        window_size: AnyInt,
        max_memory_size: AnyInt,
        max_open_handles: AnyInt,
    ) -> PyResult<()> {
        let l = limits(window_size, max_memory_size, max_open_handles)?;
        slf.as_super().get().configure(slf.py(), l)
    }
}
