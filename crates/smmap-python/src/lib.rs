//! `smmap._smmap`: the native module behind the Python package `smmap`, a
//! drop-in replacement for smmap 6.0.0 on the Rust engine.
//!
//! A thin binding: every class wraps an engine type, reproduces the Python
//! signature of smmap 6.0.0, and converts engine errors to Python exceptions
//! only at the boundary (see `errors`). The pure-Python modules `smmap.mman`,
//! `smmap.buf` and `smmap.util` re-export from here.
//!
//! Construction is a Python class's: each class's `__new__(cls, *args,
//! **kwargs)` ignores its arguments and makes an object in a "not set up"
//! state, and `__init__` (the class's real signature, which PyO3 parses)
//! reads them and sets the object up. So a Python subclass may have a
//! constructor of its own and call `super().__init__(...)`, or inherit ours;
//! `copy` and `pickle` may make an object with `cls.__new__(cls)` alone; and
//! no class binds arguments by hand.
//!
//! Memory safety: every object that exposes mapped bytes to Python (the
//! `MappedView` behind `map()` and `buffer()`) holds a clone of the engine's
//! `MapRegion`, an `Arc` of the mapping, so the pages stay mapped while any
//! view lives, whatever the manager does meanwhile.
//!
//! The interpreter's rules: each object's state is taken and waited for as
//! `guard` says (no Python code while it is held, waits detached and in
//! turn, Ctrl-C ends them); blocking engine calls release the interpreter
//! through `interp`, which also keeps daemon threads from attaching again at
//! shutdown; `fork` keeps a forked child from ever waiting for a lock held
//! by a thread of its parent.

mod args;
mod buffer;
mod cursor;
mod errors;
mod fast;
mod fork;
mod guard;
mod interp;
mod manager;
mod region;
mod trace;
mod util;
mod waiters;

use pyo3::prelude::*;

/// The native module. Every class guards its own state (see `guard`), so
/// the module runs without the GIL on a free-threaded interpreter.
#[pymodule(gil_used = false)]
mod _smmap {
    #[pymodule_export]
    use super::cursor::PyCursor;
    #[pymodule_export]
    use super::manager::{PySlidingManager, PyStaticManager};
    #[pymodule_export]
    use super::region::{MappedView, PyMapRegion};
    #[pymodule_export]
    use super::trace::{_finish_trace, trace_to};
    #[pymodule_export]
    use super::util::{align_to_mmap, is_64_bit, PyMapWindow};

    use super::*;

    /// Adds the constants and the exception class; watches for forks and
    /// for the interpreter's shutdown.
    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        fork::watch();
        interp::watch(m)?;
        trace::from_env(m.py())?;
        m.add("ALLOCATIONGRANULARITY", *smmap::ALLOCATIONGRANULARITY)?;
        // The buffer class Python sees: PyO3's, with a fast `buf[key]`.
        let buffer = m.py().get_type::<buffer::PyBuffer>();
        m.add("SlidingWindowMapBuffer", fast::public_buffer_type(&buffer)?)?;
        m.add(
            "FileReplacedError",
            m.py().get_type::<errors::FileReplacedError>(),
        )?;
        Ok(())
    }
}
