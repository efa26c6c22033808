//! Points on the miss path (and in `make_cursor`) where a unit test runs code of its own, on the
//! missing thread, to put another thread's step exactly there: a window
//! published and released between the evictor's walk and the look for
//! windows in flight, the last cell taken between a copy read's look for
//! room and its reservation, readers marking descriptors used while the
//! ring's hand passes, the descriptor table found full while a miss sleeps
//! for room or for the hand, a file found replaced while a cursor on it is
//! being made. Such races have no other deterministic
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
    /// A miss is about to sleep: for the evictor's hand (to reserve room,
    /// or to retry a map refused for want of memory), or for room held by
    /// windows other threads are mapping.
    BeforeSleep,
    /// The descriptor ring's hand spared a descriptor used since it last
    /// passed (readers mark them used without the ring's lock).
    RingSpared,
    /// `make_cursor` has read the identity of a file the manager did not
    /// know, before it lists it.
    BeforeAttach,
}

#[cfg(test)]
struct Hook {
    point: Point,
    /// Runs left.
    times: usize,
    f: Box<dyn FnMut()>,
}

#[cfg(test)]
thread_local! {
    static HOOK: std::cell::RefCell<Option<Hook>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` once, on this thread, the next time it passes `point`.
#[cfg(test)]
pub(crate) fn set(point: Point, f: impl FnOnce() + 'static) {
    let mut f = Some(f);
    set_times(point, 1, move || {
        if let Some(f) = f.take() {
            f()
        }
    });
}

/// Runs `f` on this thread each of the next `times` times it passes
/// `point`.
#[cfg(test)]
pub(crate) fn set_times(point: Point, times: usize, f: impl FnMut() + 'static) {
    HOOK.with(|h| {
        *h.borrow_mut() = Some(Hook {
            point,
            times,
            f: Box::new(f),
        })
    });
}

/// True if the hook set on this thread has runs left.
#[cfg(test)]
pub(crate) fn pending() -> bool {
    HOOK.with(|h| h.borrow().as_ref().is_some_and(|h| h.times > 0))
}

/// The miss passes `point`: runs the hook set for it, if any (taken out
/// while it runs, so that it may pass hook points itself).
#[inline(always)]
pub(crate) fn at(point: Point) {
    #[cfg(test)]
    {
        let hook = HOOK.with(|h| {
            let mut h = h.borrow_mut();
            match &*h {
                Some(hook) if hook.point == point && hook.times > 0 => h.take(),
                _ => None,
            }
        });
        if let Some(mut hook) = hook {
            (hook.f)();
            hook.times -= 1;
            HOOK.with(|h| {
                let mut h = h.borrow_mut();
                if h.is_none() && hook.times > 0 {
                    *h = Some(hook);
                }
            });
        }
    }
    #[cfg(not(test))]
    let _ = point;
}
