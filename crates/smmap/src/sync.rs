//! The primitives the lock-free protocols are written against: the standard
//! library's, or loom's models of them when the crate is built with
//! `--cfg loom`, so that `RUSTFLAGS="--cfg loom" cargo test -p smmap --lib
//! --release loom` explores every interleaving of each protocol's scenarios
//! (within three preemptions for the three-thread models of the election and
//! the room; see the `loom` tests beside each protocol).
//!
//! The words of the protocols go through here — the claim word
//! ([`crate::claim`]), a file's descriptor word (`manager::desc`), the
//! ledger's counters and the cell bitmap (`manager::ledger`,
//! `manager::cells`), the evictor's election (`manager::election`), the
//! count of a file's waiters (`manager::signal`), the wait for room and
//! its count of landings (`manager::room`, modelled with the miss's
//! decision in `manager::miss`) and the frequency sketch's counters — and the mutexes and condition variables
//! the engine waits on, which loom must see to run threads that block.
//!
//! Loom's `UnsafeCell` hands out its pointer through a closure so that it
//! can see each access; the shim below gives the standard one the same
//! shape, which compiles to nothing.
//!
//! Loom treats `SeqCst` loads, stores and read-modify-writes as `AcqRel`,
//! so where a protocol needs a total order across two words (a release that
//! must either be seen by the evictor or see the memory limit passed) it
//! says so with an explicit `fence(SeqCst)`, which loom does model.

#[cfg(loom)]
use loom::sync::atomic::fence;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
use std::sync::atomic::fence;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

pub(crate) use std::sync::atomic::Ordering;

/// What a `SeqCst` access between two words guarantees, modelled for
/// loom: a `SeqCst` fence there, nothing otherwise (where the accesses
/// themselves are `SeqCst`, which loom treats as `AcqRel`).
#[inline(always)]
pub(crate) fn sc_fence() {
    #[cfg(loom)]
    fence(Ordering::SeqCst);
}

/// A `SeqCst` fence, in every build: for protocols whose other side is a
/// lock rather than a `SeqCst` access (see `manager::election`).
#[inline(always)]
pub(crate) fn sc_fence_always() {
    fence(Ordering::SeqCst);
}

/// A cell whose contents are reached through a closure, as loom's is.
#[cfg(not(loom))]
#[derive(Debug, Default)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Reads through the pointer `f` is given.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Writes through the pointer `f` is given.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// Keeps `T` on a cache line of its own (two, where the processor fetches
/// lines in pairs), so that threads writing neighbouring values do not
/// take the line from each other.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}
