//! [`SharedLock`]: a mutex that every file of a manager shares — the file
//! registry, the descriptor ring, the evictor's hand and the wait for room.
//! None of them is taken on a steady-state read path (a hit, a switch to a
//! window already mapped, a copy read, a release and a take-back; the
//! evictor's is tried by a release only while the manager is over its
//! memory limit); with the
//! `fault-injection` feature each acquisition is counted per thread
//! ([`crate::shared_locks_taken`]), and a test proves it.

use std::sync::{PoisonError, TryLockError};

use crate::sync::{Condvar, Mutex, MutexGuard};

impl<T: Default> Default for SharedLock<T> {
    fn default() -> Self {
        SharedLock::new(T::default())
    }
}

/// A mutex all files of a manager share (see the module documentation).
#[derive(Debug)]
pub(crate) struct SharedLock<T> {
    inner: Mutex<T>,
}

#[cfg(feature = "fault-injection")]
thread_local! {
    static TAKEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts one acquisition by this thread (with `fault-injection`).
#[inline]
fn count() {
    #[cfg(feature = "fault-injection")]
    TAKEN.with(|t| t.set(t.get() + 1));
}

/// Acquisitions of locks that all files of a manager share, made by the
/// calling thread so far (with the `fault-injection` feature: for the test
/// that proves the steady-state read paths take none).
#[cfg(feature = "fault-injection")]
pub fn shared_locks_taken() -> u64 {
    TAKEN.with(std::cell::Cell::get)
}

impl<T> SharedLock<T> {
    pub(crate) fn new(value: T) -> Self {
        SharedLock {
            inner: Mutex::new(value),
        }
    }

    /// The value, waiting for the lock. Every update under these locks
    /// completes before anything that could panic, so a poisoned lock is
    /// taken as it is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        count();
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value, if no other thread holds the lock.
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        count();
        match self.inner.try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Waits on `cond`, the lock given up meanwhile.
    pub(crate) fn wait<'a>(&self, cond: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        count();
        cond.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }
}
