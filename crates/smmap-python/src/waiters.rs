//! [`Waiters`]: the threads waiting for one object's state, first come,
//! first served. A thread that lets go of the state hands it to the first
//! of them ([`Waiter::grant`]) instead of freeing it, so a thread that asks
//! again at once (as a loop of reads does) queues behind the others instead
//! of taking it back before they could wake.
//!
//! The order is the order of arrival, kept by a ticket each waiter draws
//! once per wait: a waiter that leaves the queue for a moment (the main
//! thread, to run signal handlers) goes back to its place, ahead of those
//! that came after it, not to the back.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// The queue of one object. Its mutex is held only for a few operations on
/// the queue and the object's lock word, never while waiting, never while
/// detached and never while Python code runs.
pub(crate) struct Waiters(Mutex<VecDeque<Arc<Waiter>>>);

impl Waiters {
    pub(crate) const fn new() -> Self {
        Waiters(Mutex::new(VecDeque::new()))
    }

    /// The queue, for a few operations.
    pub(crate) fn lock(&self) -> MutexGuard<'_, VecDeque<Arc<Waiter>>> {
        // Nothing that holds it can panic half-way through (pushes, pops and
        // atomic stores), so a poisoned queue is as sound as ever.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Puts `me` in `queue` at its place by ticket: behind every waiter that
/// arrived before it, ahead of every one that arrived after.
pub(crate) fn insert(queue: &mut VecDeque<Arc<Waiter>>, me: &Arc<Waiter>) {
    let at = queue.partition_point(|w| w.ticket < me.ticket);
    queue.insert(at, Arc::clone(me));
}

/// One waiting thread, for one wait (however often it leaves the queue
/// and comes back meanwhile).
pub(crate) struct Waiter {
    thread: Thread,
    granted: AtomicBool,
    /// Its place in line: drawn when it began to wait, from a count all
    /// objects share (so two waits' tickets compare as their beginnings do).
    ticket: u64,
}

impl Waiter {
    /// The calling thread, about to wait: its ticket is drawn now.
    pub(crate) fn new() -> Arc<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Arc::new(Waiter {
            thread: std::thread::current(),
            granted: AtomicBool::new(false),
            ticket: NEXT.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Hands it the state (the caller pops it from the queue, under the
    /// queue's mutex) and wakes it.
    pub(crate) fn grant(&self) {
        self.granted.store(true, Ordering::Release);
        self.thread.unpark();
    }

    /// True once the state was handed to it: it holds it now.
    pub(crate) fn is_granted(&self) -> bool {
        self.granted.load(Ordering::Acquire)
    }

    /// Sleeps until the state is handed to it (true), waking every
    /// `period` to ask `give_up`, and returning false once that says so.
    /// Called by the waiting thread itself, detached from the interpreter.
    pub(crate) fn wait(&self, period: Duration, give_up: impl Fn() -> bool) -> bool {
        loop {
            if self.wait_for(period) {
                return true;
            }
            if give_up() {
                return false;
            }
        }
    }

    /// Sleeps until the state is handed to it or `period` has passed;
    /// returns [`is_granted`](Self::is_granted).
    fn wait_for(&self, period: Duration) -> bool {
        let deadline = Instant::now() + period;
        loop {
            if self.is_granted() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            // Wakes on `grant`, on a spurious unpark, or at the deadline.
            std::thread::park_timeout(deadline - now);
        }
    }
}
