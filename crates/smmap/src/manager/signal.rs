//! [`Signal`]: a condition variable that wakes only when someone waits.
//!
//! A file's lock guards its slots, and a thread that finds a window of the
//! file being mapped (or a region being evicted) waits on the file's
//! condition variable until that changes. Nearly always no one waits, but
//! the standard library's `notify_all` is a system call (`futex` wake) all
//! the same: two per miss that maps and evicts, a cost the kernel's own
//! `mmap` + `munmap` do not have. A count of the waiters, kept beside the
//! condition variable, lets a change with no one to wake skip the call.
//!
//! | `waiters` | how it changes | ordering, and why it suffices |
//! |---|---|---|
//! | n | a thread about to wait adds 1, **holding the lock**; then `wait` releases the lock | `Relaxed`: the lock orders it (below) |
//! | n + 1 → n | the waiter, woken (or spuriously), takes 1 off, holding the lock again | `Relaxed` |
//! | read | a thread that changed what waiters wait for, **under the lock**, reads it after taking the lock; it notifies if it is not 0 | `Relaxed` |
//!
//! No wake-up is lost. Every change a waiter waits for is made under the
//! lock, and a waiter looks at the state and adds itself under the lock
//! too. If the waiter held the lock after the change, it saw the change
//! and does not wait. Otherwise its addition came before it released the
//! lock in `wait`, which came before the changer took the lock, so the
//! addition happens before the changer's read, and the read returns it or
//! a later value of the counter; every later value counts this waiter
//! until it is woken, since only the waiter takes its own 1 off. Checked
//! with loom (`loom_a_change_under_the_lock_wakes_every_waiter`).

use std::sync::PoisonError;

use crate::sync::{AtomicUsize, Condvar, MutexGuard, Ordering};

/// A condition variable and the count of its waiters (see the module
/// documentation).
#[derive(Debug, Default)]
pub(crate) struct Signal {
    changed: Condvar,
    waiters: AtomicUsize,
}

impl Signal {
    /// Waits, the lock of `guard` given up meanwhile, until a
    /// [`notify`](Self::notify) (or spuriously). The caller looked at what
    /// it waits for under this same lock.
    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.waiters.fetch_add(1, Ordering::Relaxed);
        let guard = self
            .changed
            .wait(guard)
            .unwrap_or_else(PoisonError::into_inner);
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        guard
    }

    /// Wakes every waiter, if there is one. The caller made the change they
    /// wait for under the lock they wait with, and took that lock after
    /// (or still holds it).
    pub(crate) fn notify(&self) {
        if self.waiters.load(Ordering::Relaxed) > 0 {
            self.changed.notify_all();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[test]
    fn a_change_wakes_the_waiter_and_none_is_counted_after() {
        for _ in 0..50 {
            let shared = Arc::new((Mutex::new(false), Signal::default()));
            let waiter = {
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let (lock, signal) = &*shared;
                    let mut done = lock.lock().unwrap();
                    while !*done {
                        done = signal.wait(done);
                    }
                })
            };
            std::thread::sleep(Duration::from_micros(200));
            let (lock, signal) = &*shared;
            *lock.lock().unwrap() = true;
            signal.notify();
            waiter.join().unwrap();
            assert_eq!(signal.waiters.load(Ordering::Relaxed), 0);
        }
    }

    #[test]
    fn no_waiter_no_wake_up() {
        let signal = Signal::default();
        signal.notify();
        assert_eq!(signal.waiters.load(Ordering::Relaxed), 0);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::{Arc, Mutex};

    /// Two waiters and a changer, every interleaving: a lost wake-up would
    /// leave a waiter blocked for good, which loom reports as a deadlock.
    #[test]
    fn loom_a_change_under_the_lock_wakes_every_waiter() {
        loom::model(|| {
            let shared = Arc::new((Mutex::new(false), Signal::default()));
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let shared = shared.clone();
                    loom::thread::spawn(move || {
                        let (lock, signal) = &*shared;
                        let mut done = lock.lock().unwrap();
                        while !*done {
                            done = signal.wait(done);
                        }
                    })
                })
                .collect();
            {
                let (lock, signal) = &*shared;
                *lock.lock().unwrap() = true;
                signal.notify();
            }
            for w in waiters {
                w.join().unwrap();
            }
            assert_eq!(shared.1.waiters.load(Ordering::Relaxed), 0);
        });
    }
}
