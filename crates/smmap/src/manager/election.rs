//! [`Election`]: one thread at a time does a kind of work (the evictor's),
//! and a thread that wants it done while another is at it does not wait: it
//! leaves a note, and the worker reads the note when it lets go and works
//! again.
//!
//! | word | states | who moves it |
//! |---|---|---|
//! | the lock | free, held | [`lock`](Election::lock) (waits), [`try_lock`](Election::try_lock) and [`ask`](Election::ask) (do not) take it; dropping the guard frees it |
//! | `note` | clear, set | [`ask`](Election::ask) sets it before trying the lock, and clears it once it holds the lock; [`asked`](Election::asked), after the guard is dropped, reads it |
//!
//! Why no request is lost: an asker sets the note, then tries the lock; a
//! holder lets go of the lock, then reads the note; a `SeqCst` fence sits
//! between the two steps on each side. So if the asker's try fails (the
//! lock was still held), the holder's read comes after the note was set, and
//! it works again — or the asker's try succeeds and it works itself. (This
//! is the store-buffering pattern; without the fences both could miss each
//! other.)

use super::shared_lock::SharedLock;
use crate::sync::{sc_fence_always, AtomicBool, MutexGuard, Ordering};

/// One worker at a time, and requests that are never lost (see the module
/// documentation).
#[derive(Debug, Default)]
pub(crate) struct Election<T> {
    lock: SharedLock<T>,
    note: AtomicBool,
}

impl<T> Election<T> {
    /// The worker's state, waiting for the lock.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.lock.lock()
    }

    /// The worker's state, if no other thread holds it.
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.lock.try_lock()
    }

    /// Asks for the work: the worker's state, to do it now, if no thread
    /// holds it; otherwise `None`, and the holder works again once it lets
    /// go ([`asked`](Self::asked)).
    pub(crate) fn ask(&self) -> Option<MutexGuard<'_, T>> {
        self.note.store(true, Ordering::SeqCst);
        sc_fence_always();
        let guard = self.lock.try_lock()?;
        // Held: the work done now answers every request made so far. The
        // clear may erase a note another asker set after this one's (which
        // then found the lock held and left): that asker's release comes
        // before its note, and so before this clear, in the single order of
        // `SeqCst` accesses, which the work's `SeqCst` sweep follows
        // (`loom_two_releasers_and_a_miss_over_the_limit`).
        self.note.store(false, Ordering::SeqCst);
        Some(guard)
    }

    /// For a holder that has just let go: true if the work was asked for
    /// meanwhile (then it [asks](Self::ask) for it itself).
    pub(crate) fn asked(&self) -> bool {
        sc_fence_always();
        self.note.load(Ordering::SeqCst)
    }
}

/// Every interleaving of a release over the memory limit and a miss that
/// commits bytes past it (`RUSTFLAGS="--cfg loom"`), with the claim word,
/// the ledger and the election of the engine: no unused region is left
/// while the limit is passed.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::claim::{Claim, Sweep};
    use crate::manager::ledger::Ledger;
    use loom::sync::Arc;

    /// Asks `hand` for the work, doing `work` each time it wins, until no
    /// request is left (as `Shared::after_last_client`'s evictor does).
    fn ask_until_answered(hand: &Election<()>, work: impl Fn()) {
        while let Some(guard) = hand.ask() {
            work();
            drop(guard);
            if !hand.asked() {
                break;
            }
        }
    }

    struct World {
        claim: Claim,
        ledger: Ledger,
        hand: Election<()>,
    }

    impl World {
        /// The evictor's work: evict the region if it is unused while the
        /// ledger is over its limit.
        fn evict_over(&self) {
            if self.ledger.is_over() && self.claim.sweep(true) == Sweep::Evicted {
                self.ledger.free(10);
            }
        }

        /// Asks for the work until no request is left.
        fn ask(&self) {
            ask_until_answered(&self.hand, || self.evict_over());
        }
    }

    #[test]
    fn loom_no_unused_region_is_left_over_the_limit() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            // One region of 10 bytes, at the limit, in use by a cursor.
            let w = Arc::new(World {
                claim: Claim::new(),
                ledger: Ledger::new(10),
                hand: Election::default(),
            });
            w.claim.publish(2);
            assert!(w.ledger.try_reserve(10));
            let releaser = {
                let w = w.clone();
                loom::thread::spawn(move || {
                    if w.claim.give_back() == 1 && w.ledger.is_over() {
                        w.ask();
                    }
                })
            };
            // A miss that found every region in use: it commits 5 bytes past
            // the limit, holding the hand, then looks again.
            {
                let guard = w.hand.lock();
                w.ledger.force(5);
                w.evict_over();
                drop(guard);
                if w.hand.asked() {
                    w.ask();
                }
            }
            releaser.join().unwrap();
            assert_eq!(w.claim.clients_of(1), 0, "the unused region was evicted");
            assert_eq!(w.ledger.committed(), 5);
        });
    }

    /// Two regions, two releasers and the miss that passes the limit, with
    /// the evictor's work as it is (not forced: a region used since the
    /// hand last passed is spared once, so it walks twice): whoever asks
    /// last, and whichever note a winner's clear erases, no unused region
    /// is left while the limit is passed.
    #[test]
    fn loom_two_releasers_and_a_miss_over_the_limit() {
        struct Two {
            claims: [Claim; 2],
            ledger: Ledger,
            hand: Election<()>,
        }
        impl Two {
            fn evict_over(&self) {
                for c in self.claims.iter().chain(self.claims.iter()) {
                    if !self.ledger.is_over() {
                        break;
                    }
                    if c.seen().is_live() && c.sweep(false) == Sweep::Evicted {
                        self.ledger.free(10);
                    }
                }
            }
            fn ask(&self) {
                ask_until_answered(&self.hand, || self.evict_over());
            }
        }
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            // Two regions of 10 bytes, at the limit, each used once since
            // the hand passed and held by a cursor.
            let w = Arc::new(Two {
                claims: [Claim::new(), Claim::new()],
                ledger: Ledger::new(20),
                hand: Election::default(),
            });
            for c in &w.claims {
                let gen = c.publish(1);
                assert!(c.try_take(gen, c.seen()));
            }
            assert!(w.ledger.try_reserve(20));
            let releasers: Vec<_> = (0..2)
                .map(|i| {
                    let w = w.clone();
                    loom::thread::spawn(move || {
                        if w.claims[i].give_back() == 1 && w.ledger.is_over() {
                            w.ask();
                        }
                    })
                })
                .collect();
            {
                let guard = w.hand.lock();
                // Over by more than one region: both must go once unused.
                w.ledger.force(15);
                w.evict_over();
                drop(guard);
                if w.hand.asked() {
                    w.ask();
                }
            }
            for r in releasers {
                r.join().unwrap();
            }
            let idle = w.claims.iter().filter(|c| c.clients_of(1) == 1).count();
            assert!(
                !w.ledger.is_over() || idle == 0,
                "{idle} unused regions left over the limit"
            );
        });
    }
}
