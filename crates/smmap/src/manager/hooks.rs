//! Points on the miss path where a unit test runs code of its own, on the
//! missing thread, to put another thread's step exactly there: a window
//! published and released between the evictor's walk and the look for
//! windows in flight, or the last cell taken between a copy read's look
//! for room and its reservation. Such races have no other deterministic
//! test. Compiled into the crate's unit tests only; elsewhere [`at`] is
//! empty.

/// Where a hook may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Point {
    /// A miss has placed its window and gives up its previous region,
    /// before it reserves room.
    BeforeReserve,
    /// The evictor's walk evicted nothing, before the look for windows
    /// other threads are mapping.
    AfterEmptyWalk,
}

#[cfg(test)]
type Hook = (Point, Box<dyn FnOnce()>);

#[cfg(test)]
thread_local! {
    static HOOK: std::cell::RefCell<Option<Hook>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` once, on this thread, the next time it passes `point`.
#[cfg(test)]
pub(crate) fn set(point: Point, f: impl FnOnce() + 'static) {
    HOOK.with(|h| *h.borrow_mut() = Some((point, Box::new(f))));
}

/// True if the hook set on this thread has not run yet.
#[cfg(test)]
pub(crate) fn pending() -> bool {
    HOOK.with(|h| h.borrow().is_some())
}

/// The miss passes `point`: runs the hook set for it, if any.
#[inline(always)]
pub(crate) fn at(point: Point) {
    #[cfg(test)]
    {
        let hook = HOOK.with(|h| {
            let mut h = h.borrow_mut();
            match &*h {
                Some((p, _)) if *p == point => h.take().map(|(_, f)| f),
                _ => None,
            }
        });
        if let Some(f) = hook {
            f();
        }
    }
    #[cfg(not(test))]
    let _ = point;
}
