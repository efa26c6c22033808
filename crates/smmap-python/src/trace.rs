//! Tracing from Python: `smmap.trace_to(path)`, and the environment
//! variable `SMMAP_TRACE=path`, which traces an unmodified program (read
//! when the module is imported). Every manager made or first used
//! afterwards records into the one trace (see `smmap::Trace`); the trace is
//! finished (its end record written) when the interpreter exits, or by the
//! next `trace_to`. A forked child records nothing: its parent's trace is
//! the parent's, and the child never writes to it (not even the end record
//! or the parent's buffered records, which the child's copy also holds).

use std::sync::{Mutex, PoisonError};

use pyo3::exceptions::{PyOSError, PyRuntimeWarning};
use pyo3::prelude::*;

use crate::interp;

/// The trace managers record into, and the process that opened it.
///
/// A forked child takes this lock too (a manager made anew there asks for
/// the trace), so no thread may hold it across a fork. None does: it is
/// taken only by threads attached to the interpreter, and held for a clone,
/// a compare or a swap, with no Python code and no detach under it; and
/// `os.fork()` runs with every other thread unable to run Python code (the
/// GIL is held; free-threaded, the world is stopped, which waits for an
/// attached thread to reach a Python boundary, after it lets go).
static TRACE: Mutex<Option<(smmap::Trace, u32)>> = Mutex::new(None);

/// The trace a manager made now records into, if any (none in a forked
/// child). Takes a lock no Python code runs under.
pub(crate) fn current() -> Option<smmap::Trace> {
    let t = TRACE.lock().unwrap_or_else(PoisonError::into_inner);
    t.as_ref()
        .filter(|(_, pid)| *pid == std::process::id())
        .map(|(t, _)| t.clone())
}

/// Records what every manager made (or first used) from now on reads into
/// a new trace file at `path` (replacing one there), for
/// `smmap bench --replay`; `None` stops recording. The trace in progress, if
/// any, is finished first. Raises `OSError` if the file cannot be made.
#[pyfunction]
#[pyo3(signature = (path))]
pub(crate) fn trace_to(py: Python<'_>, path: Option<std::path::PathBuf>) -> PyResult<()> {
    let new = match &path {
        Some(p) => Some(
            interp::detached(py, || smmap::Trace::create(p)).map_err(|e| {
                PyOSError::new_err((
                    e.raw_os_error().unwrap_or(0),
                    format!("cannot record a trace into {}: {e}", p.display()),
                ))
            })?,
        ),
        None => None,
    };
    let old = {
        let mut t = TRACE.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *t, new.map(|n| (n, std::process::id())))
    };
    finish(py, old)
}

/// Finishes the trace in progress (at exit): its end record is written.
#[pyfunction]
pub(crate) fn _finish_trace(py: Python<'_>) -> PyResult<()> {
    let old = TRACE.lock().unwrap_or_else(PoisonError::into_inner).take();
    finish(py, old)
}

fn finish(py: Python<'_>, old: Option<(smmap::Trace, u32)>) -> PyResult<()> {
    match old {
        Some((t, pid)) if pid == std::process::id() => interp::detached(py, || t.finish())
            .map_err(|e| PyOSError::new_err(format!("cannot finish the trace: {e}"))),
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

/// At import: `SMMAP_TRACE`, if set, names the trace to record into. A
/// trace that cannot be made is a `RuntimeWarning`, not a failed import:
/// the program runs on, untraced.
pub(crate) fn from_env(py: Python<'_>) -> PyResult<()> {
    match std::env::var_os("SMMAP_TRACE") {
        Some(p) if !p.is_empty() => match trace_to(py, Some(p.into())) {
            Ok(()) => Ok(()),
            Err(e) => {
                let msg = format!("SMMAP_TRACE: {}; not tracing", e.value(py));
                let msg =
                    std::ffi::CString::new(msg.replace('\0', "?")).expect("NULs are replaced");
                PyErr::warn(py, &py.get_type::<PyRuntimeWarning>(), &msg, 1)
            }
        },
        _ => Ok(()),
    }
}
