//! Tracing from Python: `smmap.trace_to(path)`, and the environment
//! variable `SMMAP_TRACE=path`, which traces an unmodified program (read
//! when the module is imported). Every manager made or first used
//! afterwards records into the one trace (see `smmap::Trace`); the trace is
//! finished (its end record written) when the interpreter exits, or by the
//! next `trace_to`. A forked child records nothing: its parent's trace is
//! the parent's, and the child never writes to it (not even the end record
//! or the parent's buffered records, which the child's copy also holds).
//! Nor does a child process that imports smmap afresh, unless the name
//! holds `%p` (see [`from_env`]).

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

use crate::interp;

/// The trace managers record into.
struct Recording {
    trace: smmap::Trace,
    /// The process that opened it.
    pid: u32,
    /// Its file, which errors name.
    path: PathBuf,
}

/// The trace in progress, if any.
///
/// A forked child takes this lock too (a manager made anew there asks for
/// the trace), so no thread may hold it across a fork. None does: it is
/// taken only by threads attached to the interpreter, and held for a clone,
/// a compare or a swap, with no Python code and no detach under it; and
/// `os.fork()` runs with every other thread unable to run Python code (the
/// GIL is held; free-threaded, the world is stopped, which waits for an
/// attached thread to reach a Python boundary, after it lets go).
static TRACE: Mutex<Option<Recording>> = Mutex::new(None);

/// The trace a manager made now records into, if any (none in a forked
/// child). Takes a lock no Python code runs under.
pub(crate) fn current() -> Option<smmap::Trace> {
    let t = TRACE.lock().unwrap_or_else(PoisonError::into_inner);
    t.as_ref()
        .filter(|r| r.pid == std::process::id())
        .map(|r| r.trace.clone())
}

/// Records what every manager made (or first used) from now on reads into
/// a new trace file at `path` (replacing one there), for
/// `smmap bench --replay`; `None` stops recording. The trace in progress, if
/// any, is finished first (so `path` may name it: it is then recorded
/// anew). Raises `OSError` if that trace cannot be finished (then nothing
/// records) or the file cannot be made.
#[pyfunction]
#[pyo3(signature = (path))]
pub(crate) fn trace_to(py: Python<'_>, path: Option<Bound<'_, PyAny>>) -> PyResult<()> {
    // Converted first: `__fspath__` may raise, and then nothing changes.
    let given = match path {
        Some(p) if !p.is_none() => Some((crate::args::path_arg(&p)?, p)),
        _ => None,
    };
    start(py, given)
}

/// Finishes the trace in progress, then records into `given`'s path (and
/// the object the caller named it by, for errors), if any.
fn start(py: Python<'_>, given: Option<(PathBuf, Bound<'_, PyAny>)>) -> PyResult<()> {
    let old = TRACE.lock().unwrap_or_else(PoisonError::into_inner).take();
    finish(py, old)?;
    let Some((path, named)) = given else {
        return Ok(());
    };
    let file = interp::detached(py, || std::fs::File::create(&path)).map_err(|e| {
        os_error(
            &e,
            format!("cannot record a trace into {}: {e}", path.display()),
            Some(&named),
        )
    })?;
    let new = Recording {
        trace: smmap::Trace::to_writer(file),
        pid: std::process::id(),
        path,
    };
    // Another thread's `trace_to` may have started a trace since the one
    // above was taken: it is finished in turn, as this call's would be by
    // a later call.
    let other = TRACE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .replace(new);
    finish(py, other)
}

/// Finishes the trace in progress (at exit): its end record is written.
#[pyfunction]
pub(crate) fn _finish_trace(py: Python<'_>) -> PyResult<()> {
    let old = TRACE.lock().unwrap_or_else(PoisonError::into_inner).take();
    finish(py, old)
}

fn finish(py: Python<'_>, old: Option<Recording>) -> PyResult<()> {
    match old {
        Some(r) if r.pid == std::process::id() => interp::detached(py, || r.trace.finish())
            .map_err(|e| {
                let msg = format!("cannot finish the trace {}: {e}", r.path.display());
                os_error(&e, msg, None)
            }),
        // A forked child's copy of its parent's trace: dropping the last
        // handle would write the end record (and the parent's buffered
        // records) into the parent's file.
        Some(parent) => {
            std::mem::forget(parent);
            Ok(())
        }
        None => Ok(()),
    }
}

/// An `OSError` saying `msg` (without the " (os error N)" that Python shows
/// as "[Errno N]" itself), with `e`'s number where it has one, and the file
/// as the caller named it, if given.
fn os_error(e: &std::io::Error, mut msg: String, file: Option<&Bound<'_, PyAny>>) -> PyErr {
    if let Some(at) = msg.rfind(" (os error ") {
        msg.truncate(at);
    }
    match (e.raw_os_error(), file) {
        (Some(errno), Some(f)) => PyOSError::new_err((errno, msg, f.clone().unbind())),
        (Some(errno), None) => PyOSError::new_err((errno, msg)),
        (None, _) => PyOSError::new_err(msg),
    }
}

/// At import: `SMMAP_TRACE`, if set, names the trace to record into. A
/// trace that cannot be made is a `RuntimeWarning`, not a failed import:
/// the program runs on, untraced.
///
/// A child process inherits the variable and would make the same file
/// anew, over its parent's trace: so the variable is taken out of
/// `os.environ` once read, unless the name holds `%p`, which is replaced by
/// the process id, so that each process that imports smmap records into a
/// file of its own.
pub(crate) fn from_env(py: Python<'_>) -> PyResult<()> {
    let given = match std::env::var_os("SMMAP_TRACE") {
        Some(p) if !p.is_empty() => p,
        _ => return Ok(()),
    };
    let path = match per_process(&given, std::process::id()) {
        Some(p) => p,
        None => {
            py.import("os")?
                .getattr("environ")?
                .call_method1("pop", ("SMMAP_TRACE", py.None()))?;
            given
        }
    };
    let named = path.as_os_str().into_pyobject(py)?.into_any();
    match start(py, Some((PathBuf::from(path), named))) {
        Ok(()) => Ok(()),
        Err(e) => {
            let msg = format!("SMMAP_TRACE: {}; not tracing", e.value(py));
            crate::errors::runtime_warning(py, &msg)
        }
    }
}

/// `name` with each `%p` replaced by `pid`, if it holds one.
fn per_process(name: &OsStr, pid: u32) -> Option<OsString> {
    let bytes = name.as_encoded_bytes();
    if !bytes.windows(2).any(|w| w == b"%p") {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() + 8);
    let mut rest = bytes;
    while let Some(at) = rest.windows(2).position(|w| w == b"%p") {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(pid.to_string().as_bytes());
        rest = &rest[at + 2..];
    }
    out.extend_from_slice(rest);
    // SAFETY: `out` is `name`'s encoded bytes, cut only before and after
    // the ASCII characters "%p" and joined with ASCII digits between; the
    // encoding may be split and joined at ASCII characters.
    Some(unsafe { OsString::from_encoded_bytes_unchecked(out) })
}
