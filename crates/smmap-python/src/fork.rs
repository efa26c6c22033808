//! The process an object was made in: a generation that a forked child
//! increments, and [`Local`], an engine object that is dropped only in the
//! process that made it.
//!
//! `fork()` copies the memory of every object but only the forking thread.
//! A lock another thread held at that moment stays held in the child, by a
//! thread that does not exist there: the child must never wait for one.
//! That holds for the engine's locks, whatever they are, because the child
//! never touches an engine object made before the fork, not even to drop
//! it: each is a [`Local`], leaked in the child, and the binding makes new
//! ones there (see `guard` for the binding's own locks, and the classes for
//! what each makes anew). A leak in a forked child costs memory the child
//! shares with its parent until it writes to it.
//!
//! The child handler (`pthread_atfork`) increments the generation before
//! `fork()` returns in the child, while it is the only thread there. The
//! generation is read with one relaxed load: a value only ever changes in a
//! child, before any of its threads but the forking one exists, and those
//! are started after it (a happens-before edge).

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};

/// The generation, alone on its cache line: read on every lock, written
/// only by a forked child.
#[repr(align(128))]
struct Generation(AtomicU64);

static GENERATION: Generation = Generation(AtomicU64::new(0));

/// This process's generation: 0 in the process that loaded the module, one
/// more in each forked child than in its parent.
#[inline(always)]
pub(crate) fn generation() -> u64 {
    GENERATION.0.load(Ordering::Relaxed)
}

/// Registers the child handler, once per process (a child inherits it).
pub(crate) fn watch() {
    #[cfg(unix)]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: `forked` is a plain function that only stores to
            // atomics and asks for the calling thread's identifier
            // (`PyThread_get_thread_ident`: `pthread_self` once the runtime
            // is initialised, as it is before any module is imported; it
            // takes no lock and allocates nothing, as a child handler must
            // not), and this library is never unloaded (CPython does not
            // unload extension modules), so the pointer stays valid.
            let rc = unsafe { libc::pthread_atfork(None, None, Some(forked)) };
            // ENOMEM is the only failure: without the handler, a forked
            // child would find the locks as they were at the fork.
            assert_eq!(rc, 0, "pthread_atfork failed");
        });
    }
}

/// The child handler: the child is a new generation; every object made
/// before is from the previous one.
#[cfg(unix)]
extern "C" fn forked() {
    GENERATION.0.fetch_add(1, Ordering::Relaxed);
    crate::interp::forked();
}

/// An engine object, with the generation it was made in: dropped there,
/// leaked anywhere else (a forked child may find its locks held).
pub(crate) struct Local<T> {
    born: u64,
    value: ManuallyDrop<T>,
}

impl<T> Local<T> {
    /// `value`, made in this process.
    #[inline]
    pub(crate) fn new(value: T) -> Self {
        Local {
            born: generation(),
            value: ManuallyDrop::new(value),
        }
    }

    /// True if it was made in this process (not before a fork).
    #[inline]
    pub(crate) fn is_current(&self) -> bool {
        self.born == generation()
    }
}

impl<T> Deref for Local<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Local<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: Clone> Clone for Local<T> {
    /// A clone belongs to the same process as the original: cloning an
    /// object from before a fork (an `Arc` of a mapping, say) touches no
    /// lock, but dropping what it shares might.
    fn clone(&self) -> Self {
        Local {
            born: self.born,
            value: self.value.clone(),
        }
    }
}

impl<T> Drop for Local<T> {
    fn drop(&mut self) {
        if self.is_current() {
            // SAFETY: dropped once, here; `value` is not used after.
            unsafe { ManuallyDrop::drop(&mut self.value) };
        }
    }
}
