//! Cached descriptors: [`DescSlot`], a file's descriptor, which threads read
//! and map through without any lock while another may close it; and
//! [`DescRing`], which keeps the number kept open (not being closed) within `max_open_files`,
//! closing the least recently used first (by CLOCK).
//!
//! # The descriptor word
//!
//! | bits   | name      | meaning |
//! |--------|-----------|---------|
//! | 0..32  | `USERS`   | threads reading or mapping through the descriptor now |
//! | 32     | `OPEN`    | a descriptor is cached |
//! | 33     | `CLOSING` | it is to be closed once its users are gone; nobody new enters |
//! | 34     | `BUSY`    | a thread is putting a descriptor in |
//! | 35     | `USED`    | used since the ring's hand last passed (CLOCK's bit) |
//!
//! | state | word | who moves it out, and how |
//! |---|---|---|
//! | empty | `0` | a thread that opened the file: [`install`](DescSlot::install), `0 → BUSY` by compare-and-swap (`Acquire`: the last closer's `Release` store of `0` is seen, so its take of the old descriptor is done), writes the descriptor, stores `OPEN | USED` (`Release`: the descriptor is written before a reader sees `OPEN`) |
//! | open | `OPEN, users n` | a reader: [`enter`](DescSlot::enter) `n + 1` and `USED` by compare-and-swap (`Acquire`, pairing with the install's store), leaves `n − 1` (`AcqRel`: the user who leaves last may close, so it must see every other user's reads done); the ring or `collect`: [`close`](DescSlot::close) sets `CLOSING` by compare-and-swap (`AcqRel`, for the same reason when no user is left); the ring's hand clears `USED` (`Relaxed`: a lossy bit) |
//! | closing | `OPEN | CLOSING, users n` | the last user to leave (or the closer, if there were none) takes the descriptor, closes it, and stores `0` (`Release`) |
//!
//! [`is_open`](DescSlot::is_open) loads the word (`Acquire`) for the
//! invariant check and the ring. Beside the words the manager keeps two
//! counts ([`DescCount`], `Relaxed`: numbers for the ring and the
//! statistics, ordering nothing): `open`, the descriptors not closed yet
//! (one being closed included, until its last user leaves), and `kept`,
//! those open and not being closed — what the ring bounds by
//! `max_open_files`. An install adds to both; the closer that sets
//! `CLOSING` takes one from `kept` at once, and whoever closes the
//! descriptor one from `open`.
//!
//! Exactly one thread sees the users reach zero with `CLOSING` set — the
//! closer if none were left when it set the bit, else the last user to
//! leave — and nobody enters once `CLOSING` is set, so the descriptor is
//! closed once, and never while a thread reads through it.

use std::fs::File;
use std::sync::Weak;

use super::shared_lock::SharedLock;

use super::entry::FileEntry;
use crate::sync::{AtomicU64, AtomicUsize, Ordering, UnsafeCell};

const USERS: u64 = 0xffff_ffff;
const OPEN: u64 = 1 << 32;
const CLOSING: u64 = 1 << 33;
const BUSY: u64 = 1 << 34;
const USED: u64 = 1 << 35;

/// The counts of a manager's cached descriptors (see the module
/// documentation).
#[derive(Debug, Default)]
pub(crate) struct DescCount {
    /// Not closed yet.
    open: AtomicUsize,
    /// Open and not being closed.
    kept: AtomicUsize,
}

impl DescCount {
    /// Descriptors not closed yet.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Descriptors open and not being closed.
    pub(crate) fn kept(&self) -> usize {
        self.kept.load(Ordering::Relaxed)
    }
}

/// A file's cached descriptor (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct DescSlot {
    word: AtomicU64,
    file: UnsafeCell<Option<File>>,
}

// SAFETY: `file` is written only by the thread that holds `BUSY` (putting
// one in) or that saw the users reach zero with `CLOSING` set (taking it
// out), and read only by threads counted in `USERS` that entered while
// `OPEN` was set without `CLOSING` and have not left — the word's
// transitions make these exclusive (module
// documentation). `File` is `Send + Sync`.
unsafe impl Sync for DescSlot {}

/// A thread's use of a cached descriptor: it stays open until this is
/// dropped.
pub(crate) struct DescUse<'a> {
    slot: &'a DescSlot,
    count: &'a DescCount,
}

impl DescUse<'_> {
    /// The descriptor.
    pub(crate) fn file(&self) -> &File {
        // SAFETY: this use is counted in `USERS` while `OPEN` is set, so the
        // descriptor is neither closed nor replaced until it is dropped.
        self.slot
            .file
            .with(|p| unsafe { (*p).as_ref() })
            .expect("an open slot holds its descriptor")
    }
}

impl Drop for DescUse<'_> {
    fn drop(&mut self) {
        let was = self.slot.word.fetch_sub(1, Ordering::AcqRel);
        if was & USERS == 1 && was & CLOSING != 0 {
            self.slot.finish_close(self.count);
        }
    }
}

impl DescSlot {
    /// Counts the caller as a user of the cached descriptor, if there is
    /// one that is not being closed, and marks it used.
    #[inline]
    pub(crate) fn enter<'a>(&'a self, count: &'a DescCount) -> Option<DescUse<'a>> {
        let mut w = self.word.load(Ordering::Relaxed);
        loop {
            if w & (OPEN | CLOSING | BUSY) != OPEN {
                return None;
            }
            match self.word.compare_exchange_weak(
                w,
                (w + 1) | USED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(DescUse { slot: self, count }),
                Err(now) => w = now,
            }
        }
    }

    /// Caches `file` if no descriptor is cached (nor being closed or put
    /// in); otherwise hands it back. `count` counts the manager's cached
    /// descriptors.
    pub(crate) fn install(&self, file: File, count: &DescCount) -> Result<(), File> {
        if self
            .word
            .compare_exchange(0, BUSY, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(file);
        }
        // SAFETY: `BUSY` is ours: nobody else reads or writes the slot.
        self.file.with_mut(|p| unsafe { *p = Some(file) });
        count.open.fetch_add(1, Ordering::Relaxed);
        count.kept.fetch_add(1, Ordering::Relaxed);
        self.word.store(OPEN | USED, Ordering::Release);
        Ok(())
    }

    /// True if a descriptor is cached and not being closed.
    pub(crate) fn is_open(&self) -> bool {
        self.word.load(Ordering::Acquire) & (OPEN | CLOSING) == OPEN
    }

    /// Clears the used mark; true if it was set (the ring's hand).
    fn clear_used(&self) -> bool {
        self.word.fetch_and(!USED, Ordering::Relaxed) & USED != 0
    }

    /// Closes the cached descriptor once its users are gone (at once if
    /// there are none). `None` if there was nothing to close (or a closing
    /// was asked for already); else whether it is closed now (`true`:
    /// `open` counts it no more) or left to its last user (`false`). Either
    /// way `kept` counts it no more.
    pub(crate) fn close(&self, count: &DescCount) -> Option<bool> {
        let mut w = self.word.load(Ordering::Relaxed);
        loop {
            if w & (OPEN | CLOSING) != OPEN {
                // Nothing open (or being put in), or closing already.
                return None;
            }
            match self.word.compare_exchange_weak(
                w,
                w | CLOSING,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => w = now,
            }
        }
        count.kept.fetch_sub(1, Ordering::Relaxed);
        if w & USERS == 0 {
            self.finish_close(count);
            return Some(true);
        }
        Some(false)
    }

    /// Closes the descriptor: the caller saw the users reach zero with
    /// `CLOSING` set.
    fn finish_close(&self, count: &DescCount) {
        // SAFETY: exactly one thread gets here for each closing (module
        // documentation), and nobody else reads or writes the slot now.
        let file = self.file.with_mut(|p| unsafe { (*p).take() });
        drop(file);
        count.open.fetch_sub(1, Ordering::Relaxed);
        self.word.store(0, Ordering::Release);
    }

    /// Closes the descriptor of a slot no other thread can reach (its file
    /// entry is going).
    pub(crate) fn close_owned(&mut self, count: &DescCount) {
        // SAFETY: `&mut self`: nobody else holds the slot.
        let file = self.file.with_mut(|p| unsafe { (*p).take() });
        if file.is_some() {
            count.open.fetch_sub(1, Ordering::Relaxed);
            // Being closed, it was taken from `kept` already (its users are
            // gone: nobody else holds the slot).
            if self.word.load(Ordering::Relaxed) & CLOSING == 0 {
                count.kept.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// The files with a cached descriptor, in the order their descriptors were
/// opened, and CLOCK's hand over them: closing one beyond the limit takes
/// the first from the hand not used since the hand last passed it. Entries
/// of files already gone are dropped as the hand meets them, and whenever
/// they would be half of the ring.
#[derive(Debug, Default)]
pub(crate) struct DescRing {
    ring: SharedLock<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    files: Vec<Weak<FileEntry>>,
    hand: usize,
}

impl DescRing {
    /// Records that `file` cached a descriptor, then closes the least
    /// recently used ones while more than `max` are kept (open and not
    /// being closed: a closing left to readers, by this pass or an earlier
    /// one, is no longer kept).
    pub(crate) fn opened(&self, file: Weak<FileEntry>, count: &DescCount, max: usize) {
        let mut r = self.ring.lock();
        if r.files.len() >= 2 * count.open().max(8) {
            r.files
                .retain(|f| f.upgrade().is_some_and(|f| f.desc().is_open()));
            r.hand = 0;
        }
        r.files.push(file);
        // Readers mark descriptors used without this lock, and may mark
        // each again before the hand comes round: past one lap of spared
        // ones, the descriptor at the hand goes, used or not, so that the
        // pass ends within the limit.
        let mut spared = 0;
        while count.kept() > max {
            if r.files.is_empty() {
                break;
            }
            let at = r.hand % r.files.len();
            let Some(f) = r.files[at].upgrade().filter(|f| f.desc().is_open()) else {
                r.files.swap_remove(at);
                continue;
            };
            if spared <= r.files.len() && f.desc().clear_used() {
                spared += 1;
                r.hand = at + 1;
                super::hooks::at(super::hooks::Point::RingSpared);
                continue;
            }
            f.desc().close(count);
            r.files.swap_remove(at);
        }
    }

    /// Closes every cached descriptor (once its readers are done). Under
    /// the ring's lock throughout: a thread that finds the descriptor table
    /// full while another thread closes waits until it is done, and then
    /// finds room, instead of an empty ring and a table still full.
    pub(crate) fn close_all(&self, count: &DescCount) -> usize {
        let mut r = self.ring.lock();
        r.hand = 0;
        let files = std::mem::take(&mut r.files);
        files
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|f| f.desc().close(count).is_some())
            .count()
    }

    /// The files in the ring, for the invariant check.
    pub(crate) fn files(&self) -> Vec<Weak<FileEntry>> {
        self.ring.lock().files.clone()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn file() -> File {
        tempfile::tempfile().unwrap()
    }

    #[test]
    fn enter_close_and_install_again() {
        let count = DescCount::default();
        let slot = DescSlot::default();
        assert!(slot.enter(&count).is_none(), "nothing cached");
        assert_eq!(slot.close(&count), None, "nothing to close");
        slot.install(file(), &count).unwrap();
        assert!(slot.install(file(), &count).is_err(), "one at a time");
        assert_eq!(count.open(), 1);
        let user = slot.enter(&count).unwrap();
        let _ = user.file().metadata().unwrap();
        // Closing waits for the user; nobody new enters meanwhile.
        assert_eq!(slot.close(&count), Some(false));
        assert_eq!((count.open(), count.kept()), (1, 0), "open, no longer kept");
        assert_eq!(slot.close(&count), None, "asked for already");
        assert!(slot.enter(&count).is_none() && !slot.is_open());
        assert!(slot.install(file(), &count).is_err(), "still closing");
        assert_eq!(count.open(), 1);
        drop(user);
        assert_eq!(count.open(), 0, "closed by the last user");
        slot.install(file(), &count).unwrap();
        assert_eq!(slot.close(&count), Some(true), "no users: closed at once");
        assert_eq!(count.open(), 0);
        assert!(slot.enter(&count).is_none());
    }

    #[test]
    fn the_used_mark_is_cleared_by_the_hand() {
        let count = DescCount::default();
        let slot = DescSlot::default();
        slot.install(file(), &count).unwrap();
        assert!(slot.clear_used(), "used when put in");
        assert!(!slot.clear_used());
        drop(slot.enter(&count));
        assert!(slot.clear_used(), "used by a reader");
    }
}

/// Every interleaving of the descriptor word's users (`RUSTFLAGS="--cfg
/// loom"`).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// A count and a slot with a descriptor in it.
    fn installed() -> (Arc<DescCount>, Arc<DescSlot>) {
        let count = Arc::new(DescCount::default());
        let slot = Arc::new(DescSlot::default());
        slot.install(tempfile::tempfile().unwrap(), &count).unwrap();
        (count, slot)
    }

    /// A reader enters and reads while another thread closes: the reader
    /// either gets in before the closing and reads an open descriptor
    /// (loom reports a read racing the close), or does not get in; the
    /// descriptor is closed exactly once either way.
    #[test]
    fn loom_a_descriptor_is_never_closed_under_a_reader() {
        loom::model(|| {
            let (count, slot) = installed();
            let reader = {
                let (slot, count) = (slot.clone(), count.clone());
                loom::thread::spawn(move || {
                    if let Some(u) = slot.enter(&count) {
                        let _ = u.file();
                    }
                })
            };
            assert!(slot.close(&count).is_some());
            reader.join().unwrap();
            assert_eq!((count.open(), count.kept()), (0, 0), "closed once");
            assert!(!slot.is_open());
            slot.install(tempfile::tempfile().unwrap(), &count).unwrap();
            assert_eq!(count.open(), 1);
        });
    }

    /// Two threads put a descriptor in at once, one of them closing after:
    /// one descriptor is cached at most at any time, and the count of open
    /// ones agrees.
    #[test]
    fn loom_installs_race_with_a_close() {
        loom::model(|| {
            let count = Arc::new(DescCount::default());
            let slot = Arc::new(DescSlot::default());
            let installer = {
                let (slot, count) = (slot.clone(), count.clone());
                loom::thread::spawn(move || {
                    slot.install(tempfile::tempfile().unwrap(), &count).is_ok()
                })
            };
            let mine = slot.install(tempfile::tempfile().unwrap(), &count).is_ok();
            let closed = slot.close(&count).is_some();
            let theirs = installer.join().unwrap();
            // Both put one in only if the first was closed in between.
            assert!(!(mine && theirs) || closed, "two descriptors cached");
            let cached = usize::from(slot.is_open());
            assert_eq!(count.open(), cached);
            assert_eq!(count.kept(), cached);
            if closed {
                assert!(mine || theirs);
            }
        });
    }

    /// Two readers in, one closing: the descriptor is closed once, by
    /// whichever leaves last (or by the closer if none is in), never under
    /// a reader (loom reports a read racing the close), and the counts go
    /// back to nothing.
    #[test]
    fn loom_the_last_of_two_readers_closes() {
        loom::model(|| {
            let (count, slot) = installed();
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let (slot, count) = (slot.clone(), count.clone());
                    loom::thread::spawn(move || {
                        if let Some(u) = slot.enter(&count) {
                            let _ = u.file();
                        }
                    })
                })
                .collect();
            assert!(slot.close(&count).is_some());
            for r in readers {
                r.join().unwrap();
            }
            assert_eq!((count.open(), count.kept()), (0, 0), "closed once");
            assert!(!slot.is_open());
        });
    }

    /// A reader racing an install reads the descriptor written, or finds
    /// none: the install's `Release` store of `OPEN` pairs with the
    /// reader's `Acquire` (loom reports a read of the descriptor racing
    /// its write).
    #[test]
    fn loom_a_reader_sees_a_whole_install() {
        loom::model(|| {
            let count = Arc::new(DescCount::default());
            let slot = Arc::new(DescSlot::default());
            let installer = {
                let (slot, count) = (slot.clone(), count.clone());
                loom::thread::spawn(move || {
                    slot.install(tempfile::tempfile().unwrap(), &count).unwrap();
                })
            };
            if let Some(u) = slot.enter(&count) {
                let _ = u.file();
            }
            installer.join().unwrap();
            assert_eq!((count.open(), count.kept()), (1, 1));
            assert!(slot.is_open());
        });
    }
}
