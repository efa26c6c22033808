//! Methods several classes share, written once (PyO3's `multiple-pymethods`
//! lets a macro add them).
//!
//! Construction: every class is constructed as a Python class with an
//! `__init__` is. `__new__(cls, *args, **kwargs)` ignores its arguments and makes an object
//! in a "not set up" state ([`Unset::unset`]); `__init__` (the type's
//! `tp_init`, with the class's real signature, which PyO3 parses) reads the
//! arguments and sets the object up. So a Python subclass may have a
//! constructor of its own and call `super().__init__(...)`, or inherit ours;
//! `copy` and `pickle` may make an object with `cls.__new__(cls)` alone; and
//! no class binds arguments by hand.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::buffer::PyBuffer;
use crate::cursor::PyCursor;
use crate::manager::{PySlidingManager, PyStaticManager};
use crate::region::PyMapRegion;
use crate::util::PyMapWindow;

/// A class whose objects `__init__` sets up.
pub(crate) trait Unset: pyo3::PyClass + Sized {
    /// The object before `__init__`.
    fn unset() -> PyClassInitializer<Self>;
}

/// `__new__` for each class: [`Unset::unset`], whatever the arguments. The
/// class's signature, as `inspect.signature(cls)` shows it, is its
/// `__init__`'s.
macro_rules! new_is_unset {
    ($($class:ty => $signature:tt),* $(,)?) => {$(
        #[pymethods]
        impl $class {
            /// Makes an object that `__init__` then sets up.
            #[new]
            #[pyo3(signature = (*_args, **_kwargs), text_signature = $signature)]
            fn __new__(
                _args: &Bound<'_, PyTuple>,
                _kwargs: Option<&Bound<'_, PyDict>>,
            ) -> PyClassInitializer<Self> {
                <Self as Unset>::unset()
            }
        }
    )*};
}

new_is_unset!(
    PyMapWindow => "(offset, size)",
    PyMapRegion => "(path_or_fd, ofs, size, flags=0)",
    PyCursor => "(manager=None, regions=None)",
    PyBuffer => "(cursor=None, offset=0, size=sys.maxsize, flags=0)",
    PyStaticManager => "(window_size=0, max_memory_size=0, max_open_handles=sys.maxsize)",
    PySlidingManager => "(window_size=-1, max_memory_size=0, max_open_handles=sys.maxsize)",
);

/// `with obj:` for the classes that release something on leaving the block:
/// `__enter__` returns the object, `__exit__` calls the named method.
macro_rules! context_manager {
    ($($class:ty => $release:ident),* $(,)?) => {$(
        #[pymethods]
        impl $class {
            /// Returns the object itself.
            fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
                slf
            }

            #[doc = concat!("Calls `", stringify!($release), "()`.")]
            #[pyo3(signature = (_exc_type = None, _exc_value = None, _traceback = None))]
            fn __exit__(
                &self,
                py: Python<'_>,
                _exc_type: Option<&Bound<'_, PyAny>>,
                _exc_value: Option<&Bound<'_, PyAny>>,
                _traceback: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<()> {
                self.$release(py)
            }
        }
    )*};
}

context_manager!(PyCursor => _destroy, PyBuffer => end_access);
