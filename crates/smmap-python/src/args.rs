//! Reading Python arguments: integers that must not be negative, integers
//! that may be, and what a file is known by.
//!
//! Python integers are unbounded; the engine counts in `u64`. An integer too
//! large for `u64` means "as much as there is", so it saturates instead of
//! raising `OverflowError` (the reference accepts `sys.maxsize` and larger).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt, PyString, PyTuple};

/// A Python integer as `i128`: exact within `i64`, saturated beyond it.
/// Anything that is not an integer (no `__index__`) is a `TypeError`.
pub(crate) fn int_arg(ob: &Bound<'_, PyAny>) -> PyResult<i128> {
    match ob.extract::<i64>() {
        Ok(v) => Ok(i128::from(v)),
        Err(e) if e.is_instance_of::<PyOverflowError>(ob.py()) => {
            if ob.lt(0i32)? {
                Ok(i128::MIN)
            } else {
                Ok(i128::MAX)
            }
        }
        Err(e) => Err(e),
    }
}

/// `v` as a `u64` if it is not negative (saturating), else a `ValueError`
/// naming the parameter.
pub(crate) fn non_negative(v: i128, name: &str) -> PyResult<u64> {
    if v < 0 {
        return Err(PyValueError::new_err(format!(
            "{name} must not be negative, got {}",
            show(v)
        )));
    }
    Ok(u64::try_from(v).unwrap_or(u64::MAX))
}

/// A saturated value shown as what it stands for.
fn show(v: i128) -> String {
    if v == i128::MIN {
        "a huge negative number".to_owned()
    } else {
        v.to_string()
    }
}

macro_rules! unsigned_arg {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub(crate) struct $name(pub(crate) u64);

        impl<'py> FromPyObject<'py> for $name {
            #[inline]
            fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
                // The common case first: a small non-negative int.
                if let Ok(v) = ob.extract::<u32>() {
                    return Ok($name(u64::from(v)));
                }
                non_negative(int_arg(ob)?, $what).map($name)
            }
        }
    };
}

unsigned_arg!(
    /// An absolute offset into a file: a non-negative int (`ValueError`
    /// otherwise); larger than `u64` means past any end.
    Offset,
    "offset"
);

unsigned_arg!(
    /// A size in bytes: a non-negative int (`ValueError` otherwise); larger
    /// than `u64` means "as much as there is".
    Size,
    "size"
);

impl Size {
    /// The size as `usize`, saturated.
    pub(crate) fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// A signed Python int, saturated to `i128` (see [`int_arg`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AnyInt(pub(crate) i128);

impl<'py> FromPyObject<'py> for AnyInt {
    fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
        int_arg(ob).map(AnyInt)
    }
}

/// Turns what the caller passed as `path_or_fd` into the engine's
/// [`smmap::PathOrFd`]: an `int` is a file descriptor (borrowed, never
/// closed); `str`, `bytes` and `os.PathLike` are paths.
pub(crate) fn path_or_fd(ob: &Bound<'_, PyAny>) -> PyResult<smmap::PathOrFd> {
    if ob.is_instance_of::<PyInt>() {
        let fd: i32 = ob.extract()?;
        return Ok(smmap::PathOrFd::Fd(fd));
    }
    let py = ob.py();
    // SAFETY: PyOS_FSPath takes any object and returns a new reference to a
    // str or bytes, or NULL with an exception set (TypeError for an object
    // that is not path-like); `from_owned_ptr_or_err` handles both.
    let fspath = unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyOS_FSPath(ob.as_ptr())) }?;
    let path = if let Ok(b) = fspath.downcast::<PyBytes>() {
        PathBuf::from(OsStr::from_bytes(b.as_bytes()))
    } else if fspath.is_instance_of::<PyString>() {
        fspath.extract::<PathBuf>()?
    } else {
        return Err(PyTypeError::new_err(
            "path_or_fd must be an int, str, bytes or os.PathLike",
        ));
    };
    if path.as_os_str().as_bytes().contains(&0) {
        return Err(PyValueError::new_err("embedded null byte in path"));
    }
    Ok(smmap::PathOrFd::Path(path))
}

/// Binds `args` and `kwargs` to the parameters `names`, as a Python signature
/// would: each parameter's value if it was given. `TypeError` (naming
/// `what`) for too many positional arguments, an unknown keyword, or a
/// parameter given twice.
///
/// Used by the constructors, which take `*args, **kwargs` so that Python
/// subclasses may have signatures of their own.
pub(crate) fn bind<'py, const N: usize>(
    what: &str,
    names: [&str; N],
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<[Option<Bound<'py, PyAny>>; N]> {
    let mut vals: [Option<Bound<'py, PyAny>>; N] = std::array::from_fn(|_| None);
    if args.len() > N {
        return Err(PyTypeError::new_err(format!(
            "{what} takes at most {N} arguments ({} given)",
            args.len()
        )));
    }
    for (slot, arg) in vals.iter_mut().zip(args.iter()) {
        *slot = Some(arg);
    }
    for (key, value) in kwargs.into_iter().flatten() {
        let name: String = key.extract()?;
        let Some(i) = names.iter().position(|n| *n == name) else {
            return Err(PyTypeError::new_err(format!(
                "{what} got an unexpected keyword argument '{name}'"
            )));
        };
        if vals[i].is_some() {
            return Err(PyTypeError::new_err(format!(
                "{what} got multiple values for argument '{name}'"
            )));
        }
        vals[i] = Some(value);
    }
    Ok(vals)
}

/// Extracts an optional bound argument, or gives `default`.
pub(crate) fn arg_or<'py, T: FromPyObject<'py>>(
    value: Option<Bound<'py, PyAny>>,
    default: T,
) -> PyResult<T> {
    match value {
        Some(v) => v.extract(),
        None => Ok(default),
    }
}
