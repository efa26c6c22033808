//! [`Guarded`]: the state of one Python object, for one thread at a time.
//!
//! Every class is `frozen` (PyO3 keeps no borrow flag) and keeps what
//! changes in a `Guarded`. One flag says whether a thread holds the state:
//!
//! - With the GIL (every build but the free-threaded one), the GIL already
//!   orders every access of attached threads, so taking the state is a plain
//!   load and store of the flag: no atomic read-modify-write on the
//!   `buf[i]` path.
//! - Free-threaded (`Py_GIL_DISABLED`), it is a compare-and-swap with
//!   acquire/release ordering: correct without any GIL.
//!
//! Two rules make the guard simple:
//!
//! 1. **No Python code runs while a state is held.** Arguments are converted
//!    (`__index__`, `__fspath__`) before a method takes its object's state;
//!    Python references are dropped (which may run `__del__`) and objects the
//!    garbage collector tracks are made only after it is released. So a
//!    thread never finds its own state held: re-entrant use is impossible,
//!    and a held state always means another thread has it.
//! 2. **A thread that must wait does not block the interpreter**: it detaches
//!    (releases the GIL) while it waits, so the holder — which may itself be
//!    detached in a blocking engine call (open, mmap, pread) — can finish
//!    and re-attach. Ctrl-C interrupts the wait.
//!
//! The lock order is buffer, then cursor; a manager's or region's state is
//! never held with another.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// A value that one thread at a time may use (see the module documentation).
pub(crate) struct Guarded<T> {
    held: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a `StateGuard` (or `&mut self`),
// and `held` lets one `StateGuard` exist at a time: with the GIL, every
// attached thread sets and tests it under the GIL, which orders those
// accesses (and a detached holder's use of the value happens before it
// re-attaches to release the flag); free-threaded, the compare-and-swap
// (acquire) and the releasing store (release) order them. So `&Guarded<T>`
// may be shared by threads as long as `T` may be sent between them.
unsafe impl<T: Send> Sync for Guarded<T> {}

impl<T> Guarded<T> {
    pub(crate) const fn new(value: T) -> Self {
        Guarded {
            held: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Takes the flag if no thread holds it. The caller is attached to the
    /// interpreter (it has a `Python` token), or is the garbage collector,
    /// which runs with the GIL or with every other thread stopped.
    #[inline]
    fn try_acquire(&self) -> bool {
        #[cfg(Py_GIL_DISABLED)]
        {
            self.held
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        }
        #[cfg(not(Py_GIL_DISABLED))]
        {
            // The GIL orders the test and the set against every other
            // attached thread.
            if self.held.load(Ordering::Acquire) {
                return false;
            }
            self.held.store(true, Ordering::Relaxed);
            true
        }
    }

    /// The state, for the duration of one call. Waits (detached, so without
    /// blocking the interpreter) while another thread holds it; the wait
    /// ends with `KeyboardInterrupt` (or whatever a signal handler raises)
    /// on Ctrl-C.
    #[inline]
    pub(crate) fn lock(&self, py: Python<'_>) -> PyResult<StateGuard<'_, T>> {
        if self.try_acquire() {
            return Ok(StateGuard { cell: self });
        }
        self.lock_contended(py, true)
    }

    /// As [`lock`](Self::lock), for a caller that cannot report an error
    /// (a destructor): signals are left for the interpreter to handle.
    pub(crate) fn lock_quietly(&self, py: Python<'_>) -> StateGuard<'_, T> {
        if self.try_acquire() {
            return StateGuard { cell: self };
        }
        match self.lock_contended(py, false) {
            Ok(guard) => guard,
            Err(_) => unreachable!("a wait that checks no signal cannot fail"),
        }
    }

    #[cold]
    fn lock_contended(&self, py: Python<'_>, interruptible: bool) -> PyResult<StateGuard<'_, T>> {
        // Free-threaded, the holder is most likely another thread in a short
        // call: a moment's spin is cheaper than detaching.
        #[cfg(Py_GIL_DISABLED)]
        for _ in 0..200 {
            std::hint::spin_loop();
            if !self.held.load(Ordering::Relaxed) && self.try_acquire() {
                return Ok(StateGuard { cell: self });
            }
        }
        let held = &self.held;
        loop {
            py.detach(|| wait_until_free(held));
            if self.try_acquire() {
                return Ok(StateGuard { cell: self });
            }
            if interruptible {
                py.check_signals()?;
            }
        }
    }

    /// The state if no thread holds it, without waiting: for a fast path
    /// that leaves the other case to a slower one, and for the garbage
    /// collector's `__traverse__` and `__clear__`, which must never wait (a
    /// state held by a thread is also reachable from it, so skipping it is
    /// safe). The caller is attached, or is the collector.
    #[inline]
    pub(crate) fn try_lock(&self) -> Option<StateGuard<'_, T>> {
        // `then`, not `then_some`: a guard made for a failed attempt would
        // release, when dropped, the flag another thread holds.
        self.try_acquire().then(|| StateGuard { cell: self })
    }

    /// The state of an object no one else can reach (being dropped).
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

/// Waits, detached, until the flag is clear, or about ten milliseconds have
/// passed (the caller then checks for signals and waits again).
fn wait_until_free(held: &AtomicBool) {
    let start = Instant::now();
    let mut spins = 0u32;
    while held.load(Ordering::Relaxed) {
        if spins < 100 {
            spins += 1;
            std::thread::yield_now();
        } else if start.elapsed() < Duration::from_millis(10) {
            std::thread::sleep(Duration::from_micros(50));
        } else {
            return;
        }
    }
}

/// Exclusive use of a [`Guarded`] value; releasing it clears the flag.
///
/// Dropped while attached (never inside `Python::detach`).
pub(crate) struct StateGuard<'a, T> {
    cell: &'a Guarded<T>,
}

impl<T> Deref for StateGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (see `Guarded`'s Sync).
        unsafe { &*self.cell.value.get() }
    }
}

impl<T> DerefMut for StateGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard is the only one, and `&mut self` makes this
        // reference unique while it lives.
        unsafe { &mut *self.cell.value.get() }
    }
}

impl<T> Drop for StateGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.cell.held.store(false, Ordering::Release);
    }
}
