//! [`Waiters`]: the threads waiting for one object's state, first come,
//! first served. A thread that lets go of the state hands it to the first
//! of them ([`Waiter::grant`]) instead of freeing it, so a thread that asks
//! again at once (as a loop of reads does) queues behind the others instead
//! of taking it back before they could wake.
//!
//! The order is the order of arrival, kept by a ticket each wait draws
//! when it first joins the line: a waiter that leaves the line for a moment
//! (the main thread, to run signal handlers) goes back to its place, ahead
//! of those that came after it, not to the back.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// The queue of one object. Its mutex is held only for a few operations on
/// the queue and the object's lock word, never while waiting, never while
/// detached and never while Python code runs.
pub(crate) struct Waiters(Mutex<Line>);

impl Waiters {
    pub(crate) const fn new() -> Self {
        Waiters(Mutex::new(Line {
            waiting: VecDeque::new(),
            drawn: 0,
        }))
    }

    /// The queue, for a few operations.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Line> {
        // Nothing that holds it can panic half-way through (pushes, pops and
        // atomic stores), so a poisoned queue is as sound as ever.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The waiting threads, in order of their tickets, and the count of
/// tickets drawn.
pub(crate) struct Line {
    waiting: VecDeque<Arc<Waiter>>,
    drawn: u64,
}

impl Line {
    /// Puts `me` in line: a waiter new to it draws the next ticket and goes
    /// to the back; one that left and comes back goes to its place, behind
    /// every waiter that drew before it and ahead of every one after.
    pub(crate) fn join(&mut self, me: &Arc<Waiter>) {
        let ticket = match me.ticket.load(Ordering::Relaxed) {
            NO_TICKET => {
                let t = self.drawn;
                self.drawn += 1;
                me.ticket.store(t, Ordering::Relaxed);
                t
            }
            t => t,
        };
        let at = self
            .waiting
            .partition_point(|w| w.ticket.load(Ordering::Relaxed) < ticket);
        self.waiting.insert(at, Arc::clone(me));
    }

    /// Takes `me` out of line (it keeps its ticket).
    pub(crate) fn leave(&mut self, me: &Arc<Waiter>) {
        self.waiting.retain(|w| !Arc::ptr_eq(w, me));
    }

    /// The first in line, taken out of it.
    pub(crate) fn pop_front(&mut self) -> Option<Arc<Waiter>> {
        self.waiting.pop_front()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Empties the line (the tickets drawn stay counted).
    pub(crate) fn clear(&mut self) {
        self.waiting.clear();
    }

    /// How many waits have drawn a ticket: how many times a thread has
    /// begun to wait for the object.
    pub(crate) fn drawn(&self) -> u64 {
        self.drawn
    }
}

/// A waiter that has not joined a line yet.
const NO_TICKET: u64 = u64::MAX;

/// One waiting thread, for one wait (however often it leaves the queue
/// and comes back meanwhile).
pub(crate) struct Waiter {
    thread: Thread,
    granted: AtomicBool,
    /// Its place in line, drawn when it first joined it ([`Line::join`]);
    /// read and written only under the line's mutex.
    ticket: AtomicU64,
}

impl Waiter {
    /// The calling thread, about to wait.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Waiter {
            thread: std::thread::current(),
            granted: AtomicBool::new(false),
            ticket: AtomicU64::new(NO_TICKET),
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
