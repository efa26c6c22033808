//! Engine errors as Python exceptions, converted only here, at the boundary.
//!
//! - The operating system refused (missing file, directory, no permission,
//!   closed descriptor, no memory): `OSError(errno, message, filename)`, which
//!   Python itself turns into the matching subclass — `FileNotFoundError`,
//!   `IsADirectoryError`, `PermissionError`, …
//! - Every window allowed by `max_open_handles` is in use: `OSError` with
//!   `EMFILE` ("too many open files"), the resource the limit models.
//! - Not a regular file (FIFO, device): `OSError` with `ENODEV`, as `mmap(2)`.
//! - An offset past the end, an unaligned region offset, a cursor without a
//!   file: `ValueError`.

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use smmap::{Error, PathOrFd};

/// "Too many open files" (the same number on Linux, macOS and the BSDs).
const EMFILE: i32 = 24;
/// "Operation not supported by device", what `mmap(2)` says of a FIFO.
const ENODEV: i32 = 19;

/// The Python exception for an engine error. `filename` is the object the
/// caller named the file with (set as the exception's `filename` when the
/// file is a path); without it the engine's path is used.
pub(crate) fn to_py(py: Python<'_>, e: Error, filename: Option<&Bound<'_, PyAny>>) -> PyErr {
    let fname: Option<PyObject> = match e.file() {
        Some(PathOrFd::Path(p)) => match filename {
            Some(f) if !f.is_none() => Some(f.clone().unbind()),
            _ => p
                .clone()
                .into_pyobject(py)
                .ok()
                .map(|o| o.into_any().unbind()),
        },
        _ => None,
    };
    let mut msg = e.to_string();
    // Python shows the errno itself ("[Errno 2] ..."); drop Rust's copy.
    if let Some(at) = msg.rfind(" (os error ") {
        msg.truncate(at);
    }
    if let Some(errno) = e.raw_os_error() {
        return os_error(py, Some(errno), msg, fname);
    }
    match e {
        Error::HandleLimit { .. } => os_error(py, Some(EMFILE), msg, fname),
        Error::NotRegularFile { .. } => os_error(py, Some(ENODEV), msg, fname),
        Error::OutOfRange { .. } | Error::Unaligned { .. } | Error::NotAssociated => {
            PyValueError::new_err(msg)
        }
        _ => os_error(py, None, msg, fname),
    }
}

/// `OSError(errno, msg, filename)`; Python picks the subclass from `errno`.
fn os_error(py: Python<'_>, errno: Option<i32>, msg: String, filename: Option<PyObject>) -> PyErr {
    match (errno, filename) {
        (Some(n), Some(f)) => PyOSError::new_err((n, msg, f)),
        (Some(n), None) => PyOSError::new_err((n, msg)),
        (None, f) => {
            let err = PyOSError::new_err(msg);
            if let Some(f) = f {
                // Setting an attribute of a fresh OSError cannot fail in a
                // way worth reporting over the error itself.
                let _ = err.value(py).setattr("filename", f);
            }
            err
        }
    }
}

/// The `ValueError` for using a cursor that holds no region.
pub(crate) fn invalid_cursor() -> PyErr {
    PyValueError::new_err(
        "the cursor is not valid: call use_region() with an offset inside the file first",
    )
}

/// The `ValueError` for asking a cursor without a file about its file.
pub(crate) fn not_associated() -> PyErr {
    PyValueError::new_err("the cursor is not associated with a file")
}
