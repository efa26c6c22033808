//! Engine errors as Python exceptions, converted only here, at the boundary.
//!
//! Every `OSError` is built as `OSError(errno, message, filename)` — the
//! engine's message, which names the file and says what went wrong — so
//! Python picks the matching subclass from the errno and `str(e)` reads
//! `[Errno 2] cannot open …: No such file or directory: 'path'`. `filename`
//! is the object the caller named the file with, and is set only when the
//! file is a path (a descriptor's message says "file descriptor N").
//!
//! - The operating system refused (missing file, directory, no permission,
//!   closed descriptor, no memory to map): its errno, so `FileNotFoundError`,
//!   `IsADirectoryError`, `PermissionError`, … A refusal the operating system
//!   gave no number for: `EIO`. An empty path, which the engine cannot make
//!   absolute and so never hands to the operating system: `ENOENT`
//!   (`FileNotFoundError`), as `os.stat("")` raises.
//! - The file is no longer the one first opened (a path renamed over or
//!   replaced, a descriptor number that now names another file):
//!   [`FileReplacedError`], an `OSError` with `ESTALE` ("stale file handle").
//! - The file shrank below a window to map (another process truncated it):
//!   `OSError` with `EIO`. Not `ESTALE`: the file is the same one, its bytes
//!   are what is gone — what the kernel reports as `SIGBUS`/`EIO` when a
//!   mapped page past the end is read — and `ESTALE` stays the sign of a
//!   replaced file.
//! - Every window allowed by `max_open_handles` is in use: `OSError` with
//!   `EMFILE` ("too many open files"), the resource the limit models. So is
//!   a window already used by the most cursors one window counts
//!   (16,777,214, reached only by leaking cursors).
//! - Not a regular file (FIFO, device): `OSError` with `ENODEV`, as `mmap(2)`.
//! - A copy too large to allocate: `MemoryError` with the engine's message.
//! - An offset past the end, an unaligned region offset, a cursor without a
//!   file: `ValueError`.
//!
//! On Windows the operating system's number is a Windows error code: it is
//! passed as `OSError`'s fourth argument, `winerror`, from which Python
//! derives the errno and the subclass; the numbers chosen here (`EIO`,
//! `EISDIR`, …) are errnos of Windows' C runtime too. A replaced file has
//! no errno of its own there: `EIO`.
//!
//! An `OSError` is never given a `filename` without an errno (Python would
//! print `[Errno None] None: 'path'`); an engine error with no errno that
//! applies is a one-argument `OSError(message)`.

use pyo3::create_exception;
use pyo3::exceptions::{PyMemoryError, PyOSError, PyRuntimeWarning, PyValueError};
use pyo3::prelude::*;
use smmap::{Error, PathOrFd};

/// "No such file or directory" (the same number on Linux, macOS, the BSDs
/// and in Windows' C runtime).
const ENOENT: i32 = 2;
/// "Input/output error" (the same number on Linux, macOS and the BSDs).
const EIO: i32 = 5;
/// "Operation not supported by device", what `mmap(2)` says of a FIFO
/// (the same number on Linux, macOS and the BSDs).
const ENODEV: i32 = 19;
/// "Too many open files" (the same number on Linux, macOS and the BSDs).
const EMFILE: i32 = 24;
/// "Is a directory" (the same number on Linux, macOS, the BSDs and in
/// Windows' C runtime).
const EISDIR: i32 = 21;

/// The number an `OSError` is built with.
#[derive(Clone, Copy)]
enum Number {
    /// The operating system's own code for its refusal (an errno on Unix,
    /// a Windows error code on Windows).
    System(i32),
    /// An errno chosen here.
    Errno(i32),
}

create_exception!(
    smmap.util,
    FileReplacedError,
    PyOSError,
    "The file is no longer the one the manager first opened: its path was \
renamed over or replaced, or its file descriptor number now names another \
file. No window of the other file is ever mapped in its place.\n\n\
An OSError with errno ESTALE; filename is the path the cursor was made \
with (None for a file descriptor, which the message names). Windows already \
mapped keep reading the original file. Once this error has been raised, a \
new cursor made with the same path opens the new file, while the cursors \
made before keep the original; so does any new cursor once every cursor of \
the original is gone (and its regions collected)."
);

/// The Python exception for an engine error. `filename` is the object the
/// caller named the file with (set as the exception's `filename` when the
/// file is a path); without it the engine's path is used.
pub(crate) fn to_py(py: Python<'_>, e: Error, filename: Option<&Bound<'_, PyAny>>) -> PyErr {
    let fname: Option<Py<PyAny>> = match e.file() {
        Some(PathOrFd::Path(p)) => match filename {
            Some(f) if !f.is_none() => Some(f.clone().unbind()),
            // A `str`, as the caller's path usually is, decoded in C as
            // `os.fsdecode` does: no Python code runs here, and callers
            // may hold an object's state (a `PathBuf` would become a
            // `pathlib.Path`, importing and running Python).
            _ => p
                .as_os_str()
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
    let errno = match &e {
        Error::OutOfRange { .. } | Error::Unaligned { .. } | Error::NotAssociated => {
            return PyValueError::new_err(msg);
        }
        Error::TooLarge { .. } => return PyMemoryError::new_err(msg),
        Error::Replaced { .. } => {
            // ESTALE differs between systems: the engine knows this one's
            // (Windows has none).
            let errno = e.raw_os_error().unwrap_or(EIO);
            return match fname {
                Some(f) => FileReplacedError::new_err((errno, msg, f)),
                None => FileReplacedError::new_err((errno, msg)),
            };
        }
        Error::HandleLimit { .. } | Error::TooManyCursors { .. } => Some(Number::Errno(EMFILE)),
        Error::NotRegularFile { .. } => Some(Number::Errno(ENODEV)),
        Error::FileShrunk { .. } => Some(Number::Errno(EIO)),
        Error::IsADirectory { .. } => Some(Number::Errno(EISDIR)),
        Error::Open { .. } | Error::Stat { .. } | Error::Map { .. } if names_no_file(&e) => {
            Some(Number::Errno(ENOENT))
        }
        Error::Open { .. } | Error::Stat { .. } | Error::Map { .. } => {
            Some(e.raw_os_error().map_or(Number::Errno(EIO), Number::System))
        }
        _ => e
            .io_error()
            .and_then(std::io::Error::raw_os_error)
            .map(Number::System),
    };
    os_error(errno, msg, fname)
}

/// True for an error about the empty path, which names no file: the engine
/// refuses it before the operating system sees it (it cannot make it
/// absolute), with no number; the operating system's answer is `ENOENT`.
fn names_no_file(e: &Error) -> bool {
    e.raw_os_error().is_none()
        && matches!(e.file(), Some(PathOrFd::Path(p)) if p.as_os_str().is_empty())
}

/// `OSError(errno, msg, filename)`; Python picks the subclass from `errno`
/// (on Windows, a system code goes as `winerror`, from which Python derives
/// both). Without a number, `OSError(msg)` (the message names the file).
fn os_error(number: Option<Number>, msg: String, filename: Option<Py<PyAny>>) -> PyErr {
    let errno = match number {
        None => return PyOSError::new_err(msg),
        #[cfg(windows)]
        Some(Number::System(code)) => return PyOSError::new_err((0, msg, filename, code)),
        #[cfg(not(windows))]
        Some(Number::System(errno)) => errno,
        Some(Number::Errno(errno)) => errno,
    };
    match filename {
        Some(f) => PyOSError::new_err((errno, msg, f)),
        None => PyOSError::new_err((errno, msg)),
    }
}

/// The `ValueError` for using a cursor that holds no region, naming its
/// file if it has one.
pub(crate) fn invalid_cursor(file: Option<&str>) -> PyErr {
    let on = file.map(|f| format!(" on {f}")).unwrap_or_default();
    PyValueError::new_err(format!(
        "the cursor{on} is not valid: call use_region() with an offset inside the file first"
    ))
}

/// The `ValueError` for asking a cursor without a file about its file.
pub(crate) fn not_associated() -> PyErr {
    PyValueError::new_err("the cursor is not associated with a file")
}

/// Issues a `RuntimeWarning` saying `msg` (a NUL in it shown as `?`), as
/// for a setting read from the environment that cannot be used.
pub(crate) fn runtime_warning(py: Python<'_>, msg: &str) -> PyResult<()> {
    let msg = std::ffi::CString::new(msg.replace('\0', "?")).expect("NULs are replaced");
    PyErr::warn(py, &py.get_type::<PyRuntimeWarning>(), &msg, 1)
}
