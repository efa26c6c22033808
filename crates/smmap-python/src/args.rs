//! Reading Python arguments: integers that must not be negative, integers
//! that may be, and what a file is known by.
//!
//! An integer argument is an `int` or any object with `__index__`, which is
//! called exactly once (its exception propagates; what it returned is what
//! is compared and used). Python integers are unbounded; the engine counts
//! in `u64`. An integer too large for `u64` means "as much as there is", so
//! it saturates instead of raising `OverflowError` (the reference accepts
//! `sys.maxsize` and larger).
//!
//! Every conversion here may run Python code (`__index__`, `__fspath__`), so
//! each happens before a method takes its object's state (see `guard`).

use std::os::raw::c_int;
use std::path::PathBuf;

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PySlice, PyString};

/// The value of a Python `int` as `i128`: exact within `i64`, saturated
/// beyond it (`i128::MAX` or `i128::MIN`).
#[inline]
pub(crate) fn int_value(int: &Bound<'_, PyInt>) -> i128 {
    let mut overflow: c_int = 0;
    // SAFETY: `int` is an `int` object; PyLong_AsLongLongAndOverflow sets
    // `overflow` to ±1 instead of raising when the value does not fit, and
    // cannot fail otherwise for an `int`.
    let v = unsafe { ffi::PyLong_AsLongLongAndOverflow(int.as_ptr(), &mut overflow) };
    match overflow {
        0 => i128::from(v),
        1 => i128::MAX,
        _ => i128::MIN,
    }
}

/// A Python integer argument as `i128` (see [`int_value`]). Anything else is
/// what `__index__` raises: `TypeError` for an object without it.
pub(crate) fn int_arg(ob: &Bound<'_, PyAny>) -> PyResult<i128> {
    if let Ok(int) = ob.cast_exact::<PyInt>() {
        return Ok(int_value(int));
    }
    // SAFETY: PyNumber_Index takes any object and returns a new reference to
    // an `int` (calling `__index__` once), or NULL with the exception set.
    let index = unsafe { Bound::from_owned_ptr_or_err(ob.py(), ffi::PyNumber_Index(ob.as_ptr())) }?;
    // SAFETY: PyNumber_Index returns an `int` (or, before 3.10, a subclass).
    Ok(int_value(unsafe { index.cast_unchecked::<PyInt>() }))
}

extern "C" {
    /// CPython's `PyIndex_Check`, a function in the stable ABI since 3.8
    /// (pyo3-ffi 0.28 links it under PyPy's name in limited-API builds).
    fn PyIndex_Check(o: *mut ffi::PyObject) -> c_int;
}

/// An index (`buf[i]`, `view[i]`): an `int` or an object with `__index__`,
/// else `TypeError` "indices must be integers or slices".
pub(crate) fn index_arg(key: &Bound<'_, PyAny>) -> PyResult<i128> {
    // SAFETY: PyIndex_Check only reads the object's type.
    if unsafe { PyIndex_Check(key.as_ptr()) } == 0 {
        return Err(PyTypeError::new_err(format!(
            "indices must be integers or slices, not {}",
            key.get_type().name()?
        )));
    }
    int_arg(key)
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
pub(crate) fn show(v: i128) -> String {
    match v {
        i128::MIN => "a huge negative number".to_owned(),
        i128::MAX => "a huge number".to_owned(),
        v => v.to_string(),
    }
}

macro_rules! unsigned_arg {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub(crate) struct $name(pub(crate) u64);

        impl<'a, 'py> FromPyObject<'a, 'py> for $name {
            type Error = PyErr;

            #[inline]
            fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
                non_negative(int_arg(&ob)?, $what).map($name)
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

/// A signed Python int, saturated to `i128` (see [`int_value`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AnyInt(pub(crate) i128);

impl<'a, 'py> FromPyObject<'a, 'py> for AnyInt {
    type Error = PyErr;

    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        int_arg(&ob).map(AnyInt)
    }
}

/// An argument as the caller passed it, `None` included, told apart from one
/// left out (an `Option` argument is `None` for both): for a method that
/// passes on only what it was given.
#[derive(Debug)]
pub(crate) enum Given<'py> {
    /// Left out.
    Missing,
    /// Passed, whatever it is.
    Passed(Bound<'py, PyAny>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for Given<'py> {
    type Error = PyErr;

    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(Given::Passed(ob.to_owned()))
    }
}

/// Turns what the caller passed as `path_or_fd` into the engine's
/// [`smmap::PathOrFd`]: an `int` is a file descriptor (borrowed, never
/// closed; on Windows, the handle behind it); `str`, `bytes` and
/// `os.PathLike` are paths, as `os.fsencode` (Unix) or `os.fsdecode`
/// (Windows) makes them (on Unix, a `str` that the file system encoding
/// cannot encode, such as a lone surrogate, raises its `UnicodeEncodeError`).
pub(crate) fn path_or_fd(ob: &Bound<'_, PyAny>) -> PyResult<smmap::PathOrFd> {
    if let Ok(int) = ob.cast::<PyInt>() {
        let v = int_value(int);
        let fd = i32::try_from(v).map_err(|_| {
            PyOverflowError::new_err(format!(
                "path_or_fd: file descriptor {} is out of range",
                show(v)
            ))
        })?;
        return lent(ob.py(), fd);
    }
    Ok(smmap::PathOrFd::Path(path_arg(ob)?))
}

/// A path argument: `str`, `bytes` or `os.PathLike`, as [`path_or_fd`]
/// takes them.
pub(crate) fn path_arg(ob: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    let py = ob.py();
    // SAFETY: PyOS_FSPath takes any object and returns a new reference to a
    // str or bytes (calling `__fspath__` once), or NULL with an exception set
    // (TypeError for an object that is not path-like).
    let fspath = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyOS_FSPath(ob.as_ptr())) }?;
    to_path(&fspath)
}

/// A file descriptor lent by Python.
#[cfg(unix)]
fn lent(_py: Python<'_>, fd: i32) -> PyResult<smmap::PathOrFd> {
    Ok(smmap::PathOrFd::Fd(fd))
}

/// A file descriptor lent by Python, as the handle behind it. The
/// descriptor belongs to Python's C runtime, whose table this extension
/// cannot see, so Python's own `msvcrt.get_osfhandle` is asked (a closed
/// descriptor raises its `OSError`, `EBADF`).
#[cfg(windows)]
fn lent(py: Python<'_>, fd: i32) -> PyResult<smmap::PathOrFd> {
    let handle: isize = py
        .import("msvcrt")?
        .call_method1("get_osfhandle", (fd,))?
        .extract()?;
    Ok(smmap::PathOrFd::Handle(
        handle as std::os::windows::io::RawHandle,
    ))
}

/// The path a `str` or `bytes` from `os.fspath` names: its bytes as
/// `os.fsencode` gives them.
#[cfg(unix)]
fn to_path(fspath: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let py = fspath.py();
    let encoded = if fspath.is_instance_of::<PyString>() {
        // SAFETY: PyUnicode_EncodeFSDefault takes a str and returns a new
        // reference to bytes, or NULL with the encoder's exception set.
        unsafe {
            Bound::from_owned_ptr_or_err(py, ffi::PyUnicode_EncodeFSDefault(fspath.as_ptr()))
        }?
    } else {
        fspath.clone()
    };
    let Ok(bytes) = encoded.cast::<PyBytes>() else {
        return Err(not_a_path());
    };
    let bytes = bytes.as_bytes();
    if bytes.contains(&0) {
        return Err(PyValueError::new_err("embedded null byte in path"));
    }
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
}

/// The path a `str` or `bytes` from `os.fspath` names. Windows paths are
/// UTF-16: a `str` is taken as it is (lone surrogates included), `bytes`
/// are decoded as `os.fsdecode` does.
#[cfg(windows)]
fn to_path(fspath: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    use std::os::windows::ffi::OsStrExt;
    let text = if fspath.is_instance_of::<PyString>() {
        fspath.clone()
    } else if fspath.is_instance_of::<PyBytes>() {
        fspath
            .py()
            .import("os")?
            .call_method1("fsdecode", (fspath,))?
    } else {
        return Err(not_a_path());
    };
    let path: std::ffi::OsString = text.extract()?;
    if path.encode_wide().any(|unit| unit == 0) {
        return Err(PyValueError::new_err("embedded null byte in path"));
    }
    Ok(PathBuf::from(path))
}

fn not_a_path() -> PyErr {
    PyTypeError::new_err("path_or_fd must be an int, str, bytes or os.PathLike")
}

/// A slice's bounds, read (with `__index__`, which may run Python code)
/// before the length they apply to is known: `PySlice_Unpack` now,
/// [`SliceBounds::adjust`] once the object's state is held.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SliceBounds {
    start: ffi::Py_ssize_t,
    stop: ffi::Py_ssize_t,
    step: ffi::Py_ssize_t,
}

/// Indices of a slice for a given length, as `slice.indices(len)`: every
/// index is in `[0, len)` when `len > 0`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SliceIndices {
    pub(crate) start: u64,
    pub(crate) step: i64,
    pub(crate) count: u64,
}

impl SliceBounds {
    /// Reads the bounds of `slice` (`ValueError` for a zero step, whatever
    /// `__index__` raises).
    pub(crate) fn unpack(slice: &Bound<'_, PySlice>) -> PyResult<Self> {
        let (mut start, mut stop, mut step) = (0, 0, 0);
        // SAFETY: `slice` is a slice object; the out-pointers are valid.
        if unsafe { ffi::PySlice_Unpack(slice.as_ptr(), &mut start, &mut stop, &mut step) } < 0 {
            return Err(PyErr::fetch(slice.py()));
        }
        Ok(SliceBounds { start, stop, step })
    }

    /// The indices for an object of `len` items.
    pub(crate) fn adjust(self, len: u64) -> SliceIndices {
        let SliceBounds {
            mut start,
            mut stop,
            step,
        } = self;
        let len = ffi::Py_ssize_t::try_from(len).unwrap_or(ffi::Py_ssize_t::MAX);
        // SAFETY: plain arithmetic on the three values (no object).
        let count = unsafe { ffi::PySlice_AdjustIndices(len, &mut start, &mut stop, step) };
        SliceIndices {
            start: if count > 0 { start as u64 } else { 0 },
            step: step as i64,
            count: count as u64,
        }
    }
}
