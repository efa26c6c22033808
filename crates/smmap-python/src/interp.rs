//! Releasing the interpreter around blocking engine calls, and attaching
//! again only while that is safe: [`detached`].
//!
//! Before 3.14, CPython ends a thread that attaches while the interpreter
//! finalizes (a daemon thread at exit) with `pthread_exit`. That forced
//! unwind would run through this binding's frames and PyO3's panic
//! trampolines, which cannot let it pass (the process aborts). So no thread
//! may come back from an engine call once the interpreter is finalizing.
//!
//! "Begun shutting down" is an `atexit` callback ([`closing`]), registered
//! when the module is imported. `atexit` runs the callbacks last
//! registered first, so the program's own callbacks registered before the
//! import run after it — and one of them may stop and join a daemon thread
//! that reads through smmap. All of them run before the other threads are
//! stopped and the interpreter is marked as finalizing (CPython's
//! `_PyInterpreterState_SetFinalizing`). So the callback sets a flag, after
//! which calls run attached (a read in a finalizer works), and then waits,
//! detached, until every thread inside an engine call has come back and is
//! attached again: from then on no thread is detached in this binding's
//! frames, none will attach there, and a daemon thread runs on as any
//! other until the interpreter stops it.
//!
//! An engine call ends (a wait for an object another thread holds ends
//! when the flag is set; see `guard`), but a long one (a gigabyte copied
//! from a slow disk) would hold the exit up: the callback waits at most
//! [`exit_wait`] (1 s, or `SMMAP_EXIT_WAIT` seconds). Past that it gives
//! up on those threads: it sets a second flag, and a thread that comes back
//! from its call afterwards never attaches again — it stays detached for
//! good, as CPython 3.14 does with such threads, and the process exits
//! with the status the program chose.
//!
//! Each side announces itself before it reads the other's flag. A thread
//! counts itself in its stripe from before it detaches until it is
//! attached again (the callback waits for these), and, within that, as
//! handing over while on its way to detach (until detached) or to attach
//! (until attached). It reads the flag after announcing; the callback sets
//! the flag, then reads the counts. Both sides use sequentially consistent
//! operations, so either the thread sees the flag (and runs attached, or
//! stays detached), or the callback sees the thread and waits for it, for
//! the hand-over at least. The counts are striped over cache lines, so
//! threads releasing the interpreter at once do not share one.
//!
//! The hand-over to detach matters on a free-threaded 3.13, where
//! finalization unlinks the state of every thread still alive (the daemon
//! threads) while it has them stopped, and frees those states once it lets
//! them go; stopping a thread needs only that it be marked detached.
//! CPython's `PyEval_SaveThread` marks the thread detached, then reads its
//! state again, so a daemon thread preempted between the two read freed
//! memory (a crash at exit, once in 200 to 600 exits with four daemon
//! threads reading on a loaded machine). A thread that announced itself
//! before the flag was set holds the callback until `PyEval_SaveThread`
//! has returned; one that sees the flag does not detach at all. A call that
//! panics while detached is caught, so that it too is counted until it is
//! attached (or stays detached), and its panic goes on once the thread is
//! attached again.
//!
//! PyO3 detaches on its own in one more place: filling one of its cells
//! (`PyOnceLock::get_or_init`, `intern!`) for the first time. The binding's
//! cells are filled by [`filled`] instead, attached.
//!
//! Once the flag is set, a thread never waits for an object another thread
//! holds (see `guard`): that thread may be detached for good. The flag is
//! never cleared: a program that runs the `atexit` callbacks itself
//! (`atexit._run_exitfuncs()`) and goes on is shutting down from then on,
//! as `python/README.md` says.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyCFunction;

/// A flag set once by the `atexit` callback; read-mostly, alone on its
/// cache line.
#[repr(align(128))]
struct Flag(AtomicBool);

/// Shutdown has begun: calls run attached.
static CLOSING: Flag = Flag(AtomicBool::new(false));

/// The callback stopped waiting for threads inside calls: one that comes
/// back from its call now stays detached.
static GAVE_UP: Flag = Flag(AtomicBool::new(false));

/// Threads inside a call, from before they detach until attached again
/// (high half, in units of [`INSIDE`]), and of those, the ones handing
/// over: on their way to detach (until detached) or to attach again (until
/// attached) (low half); striped.
#[repr(align(128))]
struct Stripe(AtomicU64);

/// One thread inside a call, in a stripe's count.
const INSIDE: u64 = 1 << 32;
/// The threads handing over, in a stripe's count.
const HANDING: u64 = INSIDE - 1;

const STRIPES: usize = 16;

static ANNOUNCED: [Stripe; STRIPES] = [const { Stripe(AtomicU64::new(0)) }; STRIPES];

thread_local! {
    /// This thread's stripe, dealt round-robin.
    static MY_STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn my_stripe() -> &'static AtomicU64 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let i = MY_STRIPE.with(|s| {
        if s.get() == usize::MAX {
            s.set(NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES);
        }
        s.get()
    });
    &ANNOUNCED[i].0
}

/// True if any stripe counts a thread in `part` of its count.
fn announced(part: u64) -> bool {
    ANNOUNCED
        .iter()
        .any(|s| s.0.load(Ordering::SeqCst) & part != 0)
}

/// How long the `atexit` callback waits for threads inside engine calls:
/// `SMMAP_EXIT_WAIT` seconds if set when the module was imported, else 1 s
/// (in milliseconds).
static EXIT_WAIT_MS: AtomicU64 = AtomicU64::new(1000);

/// How long the `atexit` callback waits for threads inside engine calls.
pub(crate) fn exit_wait() -> Duration {
    Duration::from_millis(EXIT_WAIT_MS.load(Ordering::Relaxed))
}

/// True once the interpreter has begun shutting down.
#[inline]
pub(crate) fn closing() -> bool {
    CLOSING.0.load(Ordering::Acquire)
}

/// The identifier of the interpreter's main thread, the one that runs
/// signal handlers, as `threading.get_ident()` gives it: noted when the
/// module is imported, and made the forking thread's in a forked child (as
/// CPython's `PyOS_AfterFork_Child` does).
static MAIN: AtomicU64 = AtomicU64::new(0);

extern "C" {
    /// CPython's (in the stable ABI): the calling thread's identifier.
    fn PyThread_get_thread_ident() -> std::ffi::c_ulong;
}

/// The calling thread's identifier, as `threading.get_ident()` gives it.
// `c_ulong` is `u64` on Linux and macOS, `u32` on Windows.
#[allow(clippy::useless_conversion)]
fn thread_ident() -> u64 {
    // SAFETY: a plain query of the calling thread's identifier (on POSIX
    // `pthread_self`), callable attached or not, from any thread, and in a
    // forked child's `pthread_atfork` handler.
    u64::from(unsafe { PyThread_get_thread_ident() })
}

/// True if the calling thread is the interpreter's main thread: the only
/// one that runs signal handlers. Runs no Python code.
pub(crate) fn on_main_thread() -> bool {
    thread_ident() == MAIN.load(Ordering::Relaxed)
}

/// Notes which thread is the main one, at import.
fn note_main_thread(py: Python<'_>) {
    // `threading.main_thread()` if `threading` is loaded. Importing it here
    // would, before 3.13, make the importing thread its main thread; and
    // while it is not loaded, no thread was started through it, so the
    // thread importing this module is the main one. (The importing thread
    // too if `threading` cannot say: the import goes on, and the error is
    // dropped, not left set.)
    let named = || -> PyResult<Option<u64>> {
        let threading = py
            .import("sys")?
            .getattr("modules")?
            .call_method1("get", ("threading",))?;
        if threading.is_none() {
            return Ok(None);
        }
        let ident = threading.call_method0("main_thread")?.getattr("ident")?;
        Ok(Some(ident.extract()?))
    };
    let main = named().ok().flatten().unwrap_or_else(thread_ident);
    MAIN.store(main, Ordering::Relaxed);
}

/// Runs `f` (an engine call that may block) with the interpreter released,
/// so that other threads run meanwhile; attached if the interpreter is
/// shutting down. A thread that finishes `f` after the `atexit` callback
/// gave up waiting for it never returns (see the module documentation).
#[inline]
pub(crate) fn detached<T, F>(py: Python<'_>, f: F) -> T
where
    F: Send + FnOnce() -> T,
    T: Send,
{
    if closing() {
        return f();
    }
    let stripe = my_stripe();
    // Inside, and handing over until detached (see the module
    // documentation).
    stripe.fetch_add(INSIDE + 1, Ordering::SeqCst);
    if CLOSING.0.load(Ordering::SeqCst) {
        stripe.fetch_sub(INSIDE + 1, Ordering::Release);
        return f();
    }
    let out = py.detach(move || {
        stripe.fetch_sub(1, Ordering::Release);
        let out = panic::catch_unwind(AssertUnwindSafe(f));
        stripe.fetch_add(1, Ordering::SeqCst);
        if GAVE_UP.0.load(Ordering::SeqCst) {
            stripe.fetch_sub(1, Ordering::SeqCst);
            stay_detached();
        }
        out
    });
    stripe.fetch_sub(INSIDE + 1, Ordering::Release);
    out.unwrap_or_else(|payload| panic::resume_unwind(payload))
}

/// The value in `cell`, made by `make` (attached) if the cell is empty.
///
/// PyO3's own `PyOnceLock::get_or_init` detaches while it fills a cell,
/// unannounced (see the module documentation); this never detaches. Two
/// threads may both make a value; the first stored is kept, and each
/// returns its own, so `make` must give equivalent values.
pub(crate) fn filled<'py, T>(
    py: Python<'py>,
    cell: &PyOnceLock<Py<T>>,
    make: impl FnOnce() -> PyResult<Bound<'py, T>>,
) -> PyResult<Bound<'py, T>> {
    if let Some(value) = cell.get(py) {
        return Ok(value.bind(py).clone());
    }
    let value = make()?;
    // Full already: another thread's value is kept.
    let _ = cell.set(py, value.clone().unbind());
    Ok(value)
}

/// The interned Python string `text`, kept in a cell of the call site's own
/// (as PyO3's `intern!`, without detaching: see [`filled`]).
macro_rules! name {
    ($py:expr, $text:literal) => {{
        static CELL: ::pyo3::sync::PyOnceLock<::pyo3::Py<::pyo3::types::PyString>> =
            ::pyo3::sync::PyOnceLock::new();
        let py: ::pyo3::Python<'_> = $py;
        $crate::interp::filled(py, &CELL, || Ok(::pyo3::types::PyString::intern(py, $text)))
    }};
}
pub(crate) use name;

/// Never attaches again: the `atexit` callback stopped waiting for this
/// thread, and the process exits without it.
fn stay_detached() -> ! {
    loop {
        std::thread::park();
    }
}

/// The `atexit` callback: from now on calls run attached; returns once
/// every thread inside an engine call is attached again, or once it has
/// waited [`exit_wait`] for them and every thread then on its way to
/// attach has.
fn close(py: Python<'_>) {
    CLOSING.0.store(true, Ordering::SeqCst);
    if !announced(u64::MAX) {
        return;
    }
    // They need the interpreter (the GIL) to attach.
    py.detach(|| {
        let deadline = Instant::now() + exit_wait();
        while announced(!HANDING) {
            if Instant::now() >= deadline {
                GAVE_UP.0.store(true, Ordering::SeqCst);
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        while announced(HANDING) {
            std::thread::yield_now();
        }
    });
}

/// Reads `SMMAP_EXIT_WAIT` (seconds, a number not negative): a value that
/// is not one is a `RuntimeWarning`, and the wait stays 1 s.
fn read_exit_wait(py: Python<'_>) -> PyResult<()> {
    let Some(given) = std::env::var_os("SMMAP_EXIT_WAIT") else {
        return Ok(());
    };
    let seconds = given
        .to_str()
        .and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0);
    match seconds {
        Some(s) => {
            EXIT_WAIT_MS.store((s * 1000.0).round() as u64, Ordering::Relaxed);
            Ok(())
        }
        None => {
            let msg = format!(
                "SMMAP_EXIT_WAIT: {:?} is not a number of seconds; waiting 1 s at exit",
                given
            );
            crate::errors::runtime_warning(py, &msg)
        }
    }
}

/// Registers [`close`] with `atexit`, and notes the main thread; the
/// module calls it once, on import.
pub(crate) fn watch(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let callback = PyCFunction::new_closure(
        py,
        Some(c"_closing"),
        Some(c"Marks the interpreter as shutting down (an atexit callback)."),
        |args, _kwargs| -> PyResult<()> {
            close(args.py());
            Ok(())
        },
    )?;
    py.import("atexit")?.call_method1("register", (callback,))?;
    note_main_thread(py);
    read_exit_wait(py)
}

/// After a fork, in the child: the threads counted do not exist there,
/// and the forking thread is the main one.
#[cfg(unix)]
pub(crate) fn forked() {
    for s in &ANNOUNCED {
        s.0.store(0, Ordering::Relaxed);
    }
    // The only thread there, before any other starts: relaxed is enough.
    MAIN.store(thread_ident(), Ordering::Relaxed);
}
