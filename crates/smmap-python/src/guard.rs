//! [`Guarded`]: the state of one Python object, for one thread at a time.
//!
//! Every class is `frozen` (PyO3 keeps no borrow flag) and keeps what
//! changes in a `Guarded`, whose lock follows the interpreter's rules:
//!
//! 1. **No Python code runs while a state is held.** Arguments are converted
//!    (`__index__`, `__fspath__`) before a method takes its object's state;
//!    Python references are dropped (which may run `__del__`) and objects the
//!    collector tracks (which may start a collection) are made only after it
//!    is released. So a thread never finds a state held by itself.
//! 2. **A thread waits only while it holds no state**, and **waits
//!    detached** from the interpreter. A method takes one state at a time;
//!    the only code that holds two (the fast `buf[key]`, the collector's
//!    `__clear__`) takes the second with [`try_lock`](Guarded::try_lock) and
//!    gives up rather than wait. So there is no lock order to keep, no
//!    deadlock between states, and the holder — which may itself be detached
//!    in an engine call (open, mmap, pread) — is never kept from
//!    re-attaching to finish.
//! 3. **The wait checks for signals** on the main thread, the only one
//!    that runs signal handlers: every [`PERIOD`] it leaves the queue and
//!    re-attaches to do so (a signal handler, or a collection, which
//!    `PyErr_CheckSignals` runs from 3.12 on, calling a finalizer, may then
//!    use any object, this one included), then goes back to its place in
//!    line. Ctrl-C ends the wait. A wait on any other thread, or in a
//!    destructor, stays queued; it wakes every [`PERIOD`] only to see
//!    whether the interpreter has begun to shut down.
//! 4. **No starvation.** A thread that lets go of a state others wait for
//!    hands it to the first of them in order of arrival (see `waiters`);
//!    it queues behind them if it asks again. With the GIL, a holder gives
//!    the GIL up only inside its detached engine call, so without the
//!    hand-off a waiter, which must re-attach before taking a free state,
//!    would always find it taken again.
//!
//! The lock word holds the process's generation (see `fork`) above two
//! bits, `LOCKED` and `QUEUED` (some thread is queued; only while locked).
//! Taking a free state is one compare of the word with the free word of
//! this generation, and setting it:
//!
//! - With the GIL (every build but the free-threaded one), a plain load and
//!   store: the GIL orders them, as every write of the word is made
//!   attached (the slow paths too, under the queue's mutex); a waiter
//!   touches no word while detached.
//! - Free-threaded (`Py_GIL_DISABLED`), a compare-and-swap.
//!
//! A state made before a fork has another generation. In the child it is
//! adopted on first use (its queue made anew, [`State::after_fork`] run on
//! it) if no thread held it at the fork; one that was held may be
//! half-updated, and every use of it raises `RuntimeError` (it is leaked).
//!
//! Once the interpreter is shutting down (see `interp`), a thread that
//! finds a state held does not wait for it (the holder may be a thread
//! that the `atexit` callback gave up on, detached for good): it raises
//! `RuntimeError`, and a destructor leaves the state alone. A thread
//! already waiting when shutdown begins stops waiting within [`PERIOD`]
//! and tries once more, as such a thread.

use std::cell::UnsafeCell;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::fork;
use crate::interp;
use crate::waiters::{Waiter, Waiters};

/// A thread holds the state.
const LOCKED: u64 = 1;
/// Threads are queued for it (only with `LOCKED`; `QUEUED` alone marks a
/// state being adopted after a fork).
const QUEUED: u64 = 2;
/// The bits below the generation.
const BITS: u32 = 2;

/// How long a waiter sleeps between checks for signals (on the main
/// thread) or for the interpreter's shutdown (on any).
pub(crate) const PERIOD: Duration = Duration::from_millis(10);

/// What a class keeps in its [`Guarded`].
pub(crate) trait State {
    /// The class's name, for messages.
    const CLASS: &'static str;

    /// Makes a state copied by `fork()` usable in the child; called once,
    /// there, before its first use, with no other thread able to reach it.
    /// It must not run Python code or touch an engine object made before
    /// the fork (see `fork`).
    fn after_fork(&mut self) {}
}

/// A value that one thread at a time may use (see the module documentation).
pub(crate) struct Guarded<T: State> {
    word: AtomicU64,
    /// Dropped only by a state of this process's generation (see `Drop`).
    waiters: UnsafeCell<ManuallyDrop<Waiters>>,
    value: UnsafeCell<ManuallyDrop<T>>,
}

// SAFETY: the value is reached only through a `StateGuard` (or `&mut self`),
// and the word lets one `StateGuard` exist at a time: with the GIL, every
// write of the word is made attached, so the GIL orders them (and a detached
// holder's use of the value happens before it re-attaches to release it);
// free-threaded, compare-and-swap (acquire) and release stores order them,
// and a hand-off passes through `Waiter::grant` (release) and `is_granted`
// (acquire). The waiters are reached through their mutex, or replaced by an
// adopter that has the object to itself (see `adopt`). So `&Guarded<T>` may
// be shared by threads as long as `T` may be sent between them.
unsafe impl<T: State + Send> Sync for Guarded<T> {}

/// Why a state was not taken.
enum Refusal {
    /// Held by another thread at a fork: half-updated, maybe.
    InUseAtFork,
    /// Held by another thread while the interpreter shuts down.
    Closing,
    /// A signal handler raised (Ctrl-C: `KeyboardInterrupt`).
    Interrupted(PyErr),
}

impl Refusal {
    #[cold]
    fn into_err<T: State>(self) -> PyErr {
        match self {
            Refusal::InUseAtFork => PyRuntimeError::new_err(format!(
                "this {} was in use by another thread when the process forked, so its state \
                 may be half-updated: make a new one in the child process",
                T::CLASS
            )),
            Refusal::Closing => PyRuntimeError::new_err(format!(
                "the interpreter is shutting down and another thread holds this {}, which it \
                 may never give back",
                T::CLASS
            )),
            Refusal::Interrupted(e) => e,
        }
    }
}

/// The word of a free state of this process's generation.
#[inline(always)]
fn free_word() -> u64 {
    fork::generation() << BITS
}

impl<T: State> Guarded<T> {
    pub(crate) fn new(value: T) -> Self {
        Guarded {
            word: AtomicU64::new(free_word()),
            waiters: UnsafeCell::new(ManuallyDrop::new(Waiters::new())),
            value: UnsafeCell::new(ManuallyDrop::new(value)),
        }
    }

    /// Takes the state if it is free, of this generation, without waiting.
    /// The caller is attached to the interpreter (it has a `Python` token),
    /// or is the collector, which runs with the GIL or with every other
    /// thread stopped.
    #[inline(always)]
    fn try_acquire(&self) -> bool {
        let free = free_word();
        #[cfg(Py_GIL_DISABLED)]
        {
            self.word
                .compare_exchange(free, free | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        }
        #[cfg(not(Py_GIL_DISABLED))]
        {
            // The GIL orders the test and the set against every other write.
            if self.word.load(Ordering::Acquire) != free {
                return false;
            }
            self.word.store(free | LOCKED, Ordering::Relaxed);
            true
        }
    }

    /// The state, for the duration of one call. Waits (detached, in turn
    /// with the other waiters) while another thread holds it; the wait ends
    /// with `KeyboardInterrupt` (or whatever a signal handler raises) on
    /// Ctrl-C. `RuntimeError` for a state another thread held at a fork or
    /// holds while the interpreter shuts down.
    ///
    /// The caller holds no other state (see the module documentation).
    #[inline]
    pub(crate) fn lock(&self, py: Python<'_>) -> PyResult<StateGuard<'_, T>> {
        if self.try_acquire() {
            return Ok(StateGuard { cell: self });
        }
        self.lock_slow(py, true).map_err(Refusal::into_err::<T>)
    }

    /// As [`lock`](Self::lock), for a destructor, which cannot report an
    /// error: signals are left for the interpreter to handle, and a state
    /// that `lock` would refuse is `None`.
    pub(crate) fn lock_quietly(&self, py: Python<'_>) -> Option<StateGuard<'_, T>> {
        if self.try_acquire() {
            return Some(StateGuard { cell: self });
        }
        self.lock_slow(py, false).ok()
    }

    /// The state if no thread holds it, without waiting: for a fast path
    /// that leaves the other case to a slower one, for a second state (see
    /// the module documentation), and for the collector's `__traverse__`
    /// and `__clear__`, which must never wait (a state held by a thread is
    /// also reachable from it, so skipping it is safe). A state made before
    /// a fork and not adopted yet is `None` too. The caller is attached, or
    /// is the collector.
    #[inline(always)]
    pub(crate) fn try_lock(&self) -> Option<StateGuard<'_, T>> {
        // `then`, not `then_some`: a guard made for a failed attempt would
        // release, when dropped, the state another thread holds.
        self.try_acquire().then(|| StateGuard { cell: self })
    }

    /// The state of an object no one else can reach (being dropped); `None`
    /// for one another thread held at a fork (see `Drop`).
    pub(crate) fn get_mut(&mut self) -> Option<&mut T> {
        let w = *self.word.get_mut();
        is_consistent(w).then(|| &mut **self.value.get_mut())
    }

    #[cold]
    fn lock_slow(&self, py: Python<'_>, interruptible: bool) -> Result<StateGuard<'_, T>, Refusal> {
        // Signal handlers run only on the main thread: a wait elsewhere, or
        // one that may not be interrupted, stays in the queue until it is
        // handed the state or the interpreter begins to shut down.
        let checks_signals = interruptible && interp::on_main_thread();
        // Made when the wait first queues (not on a short spin's way), and
        // kept for the whole wait: its ticket keeps its place in line while
        // it is out to check for signals.
        let mut me = None;
        loop {
            let w = self.word.load(Ordering::Acquire);
            let generation = fork::generation();
            if w >> BITS != generation {
                if w & (LOCKED | QUEUED) != 0 {
                    return Err(Refusal::InUseAtFork);
                }
                if let Some(guard) = self.adopt(w, generation) {
                    return Ok(guard);
                }
                continue;
            }
            if w & (LOCKED | QUEUED) == QUEUED {
                // Another thread of this child is adopting it: a moment.
                std::thread::yield_now();
                continue;
            }
            if interp::closing() {
                return self.lock_while_closing();
            }
            // Free-threaded, the holder is most likely another thread in a
            // short call: a moment's spin is cheaper than sleeping.
            #[cfg(Py_GIL_DISABLED)]
            for _ in 0..100 {
                std::hint::spin_loop();
                if self.word.load(Ordering::Relaxed) == generation << BITS && self.try_acquire() {
                    return Ok(StateGuard { cell: self });
                }
            }
            let me = me.get_or_insert_with(Waiter::new);
            if !self.enqueue(me) {
                return Ok(StateGuard { cell: self });
            }
            let granted = interp::detached(py, || {
                me.wait(PERIOD, || checks_signals || interp::closing())
            });
            if granted || !self.leave(me) {
                return Ok(StateGuard { cell: self });
            }
            // Out of the queue, holding nothing: Python code may run.
            if checks_signals {
                py.check_signals().map_err(Refusal::Interrupted)?;
            }
        }
    }

    /// Queues `me` to be handed the state; false if it was free after all
    /// (then this thread holds it).
    fn enqueue(&self, me: &Arc<Waiter>) -> bool {
        let mut queue = self.waiters().lock();
        let mut w = self.word.load(Ordering::Relaxed);
        loop {
            let (new, taken) = if w & LOCKED == 0 {
                (w | LOCKED, true)
            } else if w & QUEUED == 0 {
                (w | QUEUED, false)
            } else {
                break;
            };
            match self
                .word
                .compare_exchange(w, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) if taken => return false,
                Ok(_) => break,
                Err(now) => w = now,
            }
        }
        queue.join(me);
        true
    }

    /// After a wait that timed out: leaves the queue (true), unless the
    /// state was handed to this thread meanwhile (false: it holds it now).
    /// Called attached.
    fn leave(&self, me: &Arc<Waiter>) -> bool {
        let mut queue = self.waiters().lock();
        if me.is_granted() {
            return false;
        }
        queue.leave(me);
        if queue.is_empty() {
            // Still locked: a release would have handed it to `me`. (Or,
            // once the interpreter shuts down, freed by a release that
            // emptied the queue. Either way, no thread is queued now.)
            self.word.fetch_and(!QUEUED, Ordering::Relaxed);
        }
        true
    }

    /// While the interpreter shuts down: the state, if it is free or (when
    /// free-threaded) freed within [`PERIOD`] by a thread still running
    /// attached; `Closing` otherwise. (With the GIL, once the `atexit`
    /// callback has returned, the holder of a state is a thread it gave up
    /// on, detached in an engine call for good; before, a thread whose call
    /// is ending, which gives the state back soon.)
    fn lock_while_closing(&self) -> Result<StateGuard<'_, T>, Refusal> {
        #[cfg(Py_GIL_DISABLED)]
        {
            let start = std::time::Instant::now();
            while start.elapsed() < PERIOD {
                if self.try_acquire() {
                    return Ok(StateGuard { cell: self });
                }
                std::thread::yield_now();
            }
        }
        self.try_lock().ok_or(Refusal::Closing)
    }

    /// A state made before a fork and free then (`stale`): taken by this
    /// thread, made usable here and held (`None` if another thread of this
    /// child adopts it first).
    fn adopt(&self, stale: u64, generation: u64) -> Option<StateGuard<'_, T>> {
        let adopting = (generation << BITS) | QUEUED;
        self.word
            .compare_exchange(stale, adopting, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        // SAFETY: this thread has the object to itself: no thread of this
        // process touches the waiters or the value while the word is of an
        // older generation or marked as adopted (every path above checks
        // that before anything else), and nothing of the forking process's
        // other threads runs here. The old waiters are overwritten, not
        // dropped: their mutex may be held by a thread that does not exist
        // here (what they own is leaked).
        unsafe {
            self.waiters.get().write(ManuallyDrop::new(Waiters::new()));
            (*self.value.get()).after_fork();
        }
        self.word
            .store((generation << BITS) | LOCKED, Ordering::Release);
        Some(StateGuard { cell: self })
    }

    /// The queue, to use under its mutex.
    fn waiters(&self) -> &Waiters {
        // SAFETY: replaced only by `adopt`, which no thread can race (see
        // there); otherwise only shared references are made.
        unsafe { &*self.waiters.get() }
    }

    /// How many times a thread has begun to wait for the state (queued
    /// behind another), in this process: for tests that must know a thread
    /// is in line before they start the next.
    pub(crate) fn waits_begun(&self) -> u64 {
        let w = self.word.load(Ordering::Acquire);
        if w >> BITS != fork::generation() || w & (LOCKED | QUEUED) == QUEUED {
            // A queue of the forking process's, not adopted here yet (see
            // `adopt`): no thread of this one has waited for it.
            return 0;
        }
        self.waiters().lock().drawn()
    }

    /// Lets go of the state: hands it to the first waiter, if any.
    #[inline(always)]
    fn release(&self) {
        let w = self.word.load(Ordering::Relaxed);
        #[cfg(Py_GIL_DISABLED)]
        if w & QUEUED == 0
            && self
                .word
                .compare_exchange(w, w & !LOCKED, Ordering::Release, Ordering::Relaxed)
                .is_ok()
        {
            return;
        }
        #[cfg(not(Py_GIL_DISABLED))]
        if w & QUEUED == 0 {
            // The GIL orders this against every other write.
            self.word.store(w & !LOCKED, Ordering::Release);
            return;
        }
        self.release_slow();
    }

    #[cold]
    fn release_slow(&self) {
        let mut queue = self.waiters().lock();
        if !interp::closing() {
            if let Some(next) = queue.pop_front() {
                if queue.is_empty() {
                    self.word.fetch_and(!QUEUED, Ordering::Relaxed);
                }
                // Still locked: it is the next one's now.
                next.grant();
                return;
            }
        }
        // No one queued; or the interpreter is shutting down, and those
        // queued stop waiting (within `PERIOD`) and try once more for the
        // state, not handed it: a thread may wait for its turn only while
        // others are sure to come back.
        queue.clear();
        self.word.fetch_and(!(LOCKED | QUEUED), Ordering::Release);
    }
}

/// True if a state with lock word `w` is consistent: of this process, or
/// made before a fork and free then.
fn is_consistent(w: u64) -> bool {
    w >> BITS == fork::generation() || w & (LOCKED | QUEUED) == 0
}

impl<T: State> Drop for Guarded<T> {
    fn drop(&mut self) {
        let w = *self.word.get_mut();
        if is_consistent(w) {
            // SAFETY: dropped once, here; the value is not used after.
            unsafe { ManuallyDrop::drop(self.value.get_mut()) };
        }
        // Otherwise it was in use by another thread at a fork and may be
        // half-updated: nothing of it is dropped (its engine objects could
        // not be anyway, see `fork`).
        if w >> BITS == fork::generation() {
            // SAFETY: dropped once, here; the queue is not used after.
            unsafe { ManuallyDrop::drop(self.waiters.get_mut()) };
        }
        // Otherwise the queue is the forking process's, never adopted here:
        // a thread that does not exist here may have been changing it (under
        // its mutex, even with the state free, as a waiter that gave up
        // leaves), so it is left as it is (leaked).
    }
}

/// Exclusive use of a [`Guarded`] value; dropping it lets go of it.
///
/// Dropped while attached (never inside `Python::detach`).
pub(crate) struct StateGuard<'a, T: State> {
    cell: &'a Guarded<T>,
}

impl<T: State> Deref for StateGuard<'_, T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (see `Guarded`'s Sync).
        unsafe { &*self.cell.value.get() }
    }
}

impl<T: State> DerefMut for StateGuard<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard is the only one, and `&mut self` makes this
        // reference unique while it lives.
        unsafe { &mut *self.cell.value.get() }
    }
}

impl<T: State> Drop for StateGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        self.cell.release();
    }
}
