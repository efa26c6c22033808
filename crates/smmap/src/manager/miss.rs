//! The miss path: a cursor asks for an offset its region does not hold, and
//! the manager finds the region that holds it, places and maps a new one,
//! or — for a read that copies — says to `pread` it.
//!
//! In order, each step taking only what it needs:
//!
//! 1. **A region mapped already**, found through the file's table and taken
//!    by its claim word: no lock ([`Shared::find`]; the cursor tries it
//!    first). Failing that, the file's slots, under the file's lock — a
//!    window another thread is mapping there is waited for, on the file's
//!    own condition variable.
//! 2. **A copy** (a read that copies, under the adaptive policy), when
//!    there is no room for the window and it has not proved hotter than
//!    the window the evictor would take next: no lock at all, but the
//!    file's descriptor word.
//! 3. **A new window**: the descriptor is had first (opened without any
//!    lock if it is not cached, before anything is released, so that a file
//!    that cannot be opened leaves the cursor with its region — unless a
//!    cursor that maps found another thread mapping the window, and gave
//!    its region back to wait for it); the window
//!    is placed and marked pending in the file's slots; the cursor's
//!    previous region is given back; room is reserved — a cell (the handle
//!    budget) and bytes, by compare-and-swap, evicting under the evictor's
//!    hand when there is none (the descriptor is let go of before any
//!    sleep for the hand or for room, and had again after it, so that a
//!    thread that finds the process's descriptor table full meanwhile can
//!    close it); the window is mapped without any lock; and the region is
//!    published in its cell, its slot and the file's table.

use std::fs::File;
use std::sync::Arc;

use super::counters::Counter;
use super::desc::DescUse;
use super::entry::FileEntry;
use super::evictor::{HandGuard, Need, Swept};
use super::hooks::{self, Point};
use super::slots::{Slot, Slots, What};
use super::{Kind, Limits, ReadPolicy, Shared, Want};
use crate::error::{Error, Result};
use crate::held::Lease;
use crate::region::MapRegion;
use crate::sys::page_cost;
use crate::trace::Served;
use crate::window::MapWindow;

/// What a miss gave a cursor.
pub(crate) enum Fetched<'a> {
    /// A mapped region holding the offset, counted for the cursor: one
    /// mapped already ([`Served::Mapped`]) or mapped for it
    /// ([`Served::NewWindow`]).
    Mapped(Lease, Served),
    /// Copy `len` bytes from the offset through `desc` (`pread`).
    Copy { desc: Desc<'a>, len: u64 },
    /// Nothing: the offset is at or past the end.
    Nothing,
}

/// A descriptor to read or map through: the file's cached one, or one
/// opened for this read alone (when the cache was being changed).
pub(crate) enum Desc<'a> {
    Cached(DescUse<'a>),
    Own(File),
}

impl Desc<'_> {
    pub(crate) fn file(&self) -> &File {
        match self {
            Desc::Cached(u) => u.file(),
            Desc::Own(f) => f,
        }
    }
}

/// A window placed pending by a miss, and the room reserved for it: given
/// up when dropped (the miss found it will not map it, or unwound) unless
/// [`mapped`](Self::mapped) first.
struct Pending<'a> {
    shared: &'a Shared,
    entry: &'a FileEntry,
    /// Where the window starts (its slot's key).
    start: u64,
    /// Its cell and bytes, once reserved.
    room: Option<(u32, u64)>,
}

impl Pending<'_> {
    /// The window is mapped, to be published: nothing to give up.
    fn mapped(self) {
        std::mem::forget(self);
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let s = self.shared;
        s.abandon(self.entry, self.start);
        if let Some((cell, cost)) = self.room {
            s.ledger.free(cost);
            s.cells.free(cell);
            s.room.landed();
        }
    }
}

/// What reserving room concluded.
enum Room<'a> {
    /// This cell and the window's bytes are reserved; with the hand, if
    /// regions were evicted for them, which the caller keeps until the
    /// window is mapped.
    Cell(u32, Option<HandGuard<'a>>),
    /// A read that copies copies instead.
    Copy,
}

impl Shared {
    /// The miss path at `offset` of `entry`'s file for a cursor that wants
    /// `want_size` bytes from it (at least 1) as `want` says, after the
    /// lock-free look-up ([`Shared::find`]) failed. `previous`, the cursor's
    /// region, is given back (taken) once the cursor is sure to move: a
    /// region found, or a window placed (before room is reserved for it, so
    /// that the evictor may take the region given back) — after which the
    /// read may still be copied (the hand busy, or admission refused by the
    /// hand) or fail, without it; and for [`Want::Map`] past the end, or
    /// where another thread is mapping the window. A copy decided before a
    /// window is placed, or a file that cannot be opened otherwise, leaves
    /// it.
    pub(crate) fn obtain<'e>(
        &self,
        entry: &'e Arc<FileEntry>,
        offset: u64,
        want_size: u64,
        previous: &mut Option<Lease>,
        want: Want,
    ) -> Result<Fetched<'e>> {
        if offset >= entry.size() {
            if want == Want::Map {
                self.release(previous);
            }
            return Ok(Fetched::Nothing);
        }
        let key = (entry.serial(), offset / self.limits.slot_window());
        let asks = self.sketch.add(key, 1);
        let copies = match want {
            Want::Bytes { start, len } if self.limits.policy == ReadPolicy::Adaptive => {
                Some((start, len))
            }
            _ => None,
        };
        // A read that copies, finding no room, maps only a window that may
        // be hotter than its victim (then a ghost hit, if it is mapped).
        let mut admitted = false;
        if let Some((start, len)) = copies {
            if !self.has_room(entry, offset) {
                if !self.sketch.may_admit(asks) {
                    if let Some(lease) = self.mapped_off_the_table(entry, offset, previous) {
                        return Ok(Fetched::Mapped(lease, Served::Mapped));
                    }
                    self.counters.add(Counter::Misses, 1);
                    return self.copy(entry, start, len, None);
                }
                admitted = true;
            }
        }
        let (window, desc) = match self.place_pending(entry, offset, want_size, previous, want)? {
            Placed::Found(lease) => return Ok(Fetched::Mapped(lease, Served::Mapped)),
            Placed::Pending(window, desc) => (window, desc),
        };
        // From here the window's slot is pending, and then its cell and
        // bytes reserved, until it is published or given up: if this
        // thread unwinds (a panic) meanwhile, they are given up all the
        // same, so that no thread waits for the window for good.
        let mut pending = Pending {
            shared: self,
            entry,
            start: window.ofs,
            room: None,
        };
        self.counters.add(Counter::Misses, 1);
        self.release(previous);
        hooks::at(Point::BeforeReserve);
        let cost = page_cost(window.size);
        // A window that took an evicted region's room is mapped under the
        // hand, as the region was unmapped: the kernel serialises maps and
        // unmaps on its own lock anyway, and a thread waiting for the hand
        // sleeps instead of running on a CPU that each unmap would have to
        // interrupt to flush its TLB (with two threads mapping on two
        // cores, 15-25 % of the time of a map per read).
        // A read that copies evicts only for a window hotter than its
        // victim, whether it saw room for it or not: another thread may
        // have taken that room since.
        let admission = copies.map(|_| asks);
        let mut desc = Some(desc);
        let (cell, mut hand) = match self.reserve(entry, offset, cost, admission, &mut desc) {
            Ok(Room::Cell(cell, hand)) => (cell, hand),
            Ok(Room::Copy) => {
                drop(pending);
                let (start, len) = copies.expect("only a copy read copies");
                // Through the descriptor this miss holds (a read that copies
                // never sleeps in `reserve`, so it still has it): taken
                // anew, one closed meanwhile would have the file opened
                // again, which may fail (renamed over, removed) with the
                // cursor's region given back already.
                return self.copy(entry, start, len, desc);
            }
            Err(e) => {
                drop(pending);
                return Err(e);
            }
        };
        pending.room = Some((cell, cost));
        let mut retried = false;
        loop {
            // The descriptor was let go of if this miss slept (in
            // `reserve`, or for the hand below): it is had again, from the
            // file's cache if it is still there; else the file is opened
            // without the hand (the room is reserved already), so that a
            // slow open stalls no other miss. A file that can no longer be
            // opened gives the window's room and slot up, through `pending`.
            let d = match desc {
                Some(ref d) => d,
                None => {
                    let again = match entry.enter_desc() {
                        Some(u) => Desc::Cached(u),
                        None => {
                            drop(hand.take());
                            self.desc(entry)?
                        }
                    };
                    desc.insert(again)
                }
            };
            let mapped = self
                .faults
                .take()
                .unwrap_or_else(|| {
                    MapRegion::map_opened(entry.pinned(), d.file(), window.ofs, window.size)
                })
                .map_err(|e| self.faults.name(e, entry.pinned(), window));
            match mapped {
                Ok(region) => {
                    // Mapped: the descriptor is needed no more (not while
                    // publishing, nor while letting go of the hand).
                    drop(desc);
                    pending.mapped();
                    let lease = self.publish(entry, cell, region, admitted);
                    drop(hand);
                    return Ok(Fetched::Mapped(lease, Served::NewWindow));
                }
                Err(e) => {
                    self.counters.add(Counter::MapFailures, 1);
                    if e.is_exhaustion() && !retried {
                        // The kernel is out of memory or of maps: unmap
                        // every unused region and try once more.
                        retried = true;
                        self.counters.add(Counter::Retries, 1);
                        let mut held = match hand.take() {
                            Some(h) => h,
                            None => self.hand(&mut desc),
                        };
                        let all = Need {
                            handle: false,
                            bytes: u64::MAX,
                        };
                        if let Swept::Evicted(n) = held.evict(all, true, None) {
                            self.counters.add(Counter::Evictions, n as u64);
                        }
                        hand = Some(held);
                        continue;
                    }
                    drop(desc);
                    drop(hand);
                    drop(pending);
                    return Err(e);
                }
            }
        }
    }

    /// True if a window for `offset` would fit without evicting (a hint:
    /// the window placed may be smaller, and other threads reserve too).
    fn has_room(&self, entry: &FileEntry, offset: u64) -> bool {
        let w = self.limits.slot_window();
        let lo = if w == u64::MAX { 0 } else { offset / w * w };
        let hi = lo.saturating_add(w).min(entry.size());
        self.cells.used() < self.limits.max_open_handles && self.ledger.fits(page_cost(hi - lo))
    }

    /// A copy of `len` bytes from `offset` through the file's descriptor:
    /// `held`, if the caller has it already.
    fn copy<'e>(
        &self,
        entry: &'e Arc<FileEntry>,
        offset: u64,
        len: u64,
        held: Option<Desc<'e>>,
    ) -> Result<Fetched<'e>> {
        let desc = match held {
            Some(d) => d,
            None => self.desc(entry)?,
        };
        self.counters.add(Counter::Preads, 1);
        self.counters.add(Counter::PreadBytes, len);
        let w = self.limits.slot_window();
        let windows = if w == u64::MAX || len == 0 {
            1
        } else {
            (offset.saturating_add(len) - 1) / w - offset / w + 1
        };
        self.counters.add(Counter::PreadWindows, windows);
        Ok(Fetched::Copy { desc, len })
    }

    /// The file's cached descriptor, or one opened now (and cached, unless
    /// another thread cached one meanwhile). Opening takes no lock of the
    /// manager's; when the process's descriptor table is full, the cached
    /// descriptors are closed and the file opened once more.
    fn desc<'e>(&self, entry: &'e Arc<FileEntry>) -> Result<Desc<'e>> {
        if let Some(u) = entry.enter_desc() {
            return Ok(Desc::Cached(u));
        }
        let file = self.open(entry)?;
        self.counters.add(Counter::FdOpens, 1);
        match entry.install_desc(file) {
            Ok(()) => match entry.enter_desc() {
                Some(u) => Ok(Desc::Cached(u)),
                // Closed at once (by the ring's pass of this install, when
                // every other descriptor kept was used since the hand
                // passed, or by a thread that found the table full and
                // closed every cached descriptor): read through a
                // descriptor of this read's own.
                None => {
                    let own = self.open(entry)?;
                    self.counters.add(Counter::FdOpens, 1);
                    Ok(Desc::Own(own))
                }
            },
            Err(file) => Ok(Desc::Own(file)),
        }
    }

    /// Opens `entry`'s file; when the process's descriptor table is full,
    /// closes the descriptors the manager keeps (or waits for the thread
    /// closing them) and opens once more. A file found replaced retires
    /// the entry: the next cursor made by its name meets the new file.
    fn open(&self, entry: &FileEntry) -> Result<File> {
        let opened = match entry.pinned().open() {
            Err(e) if descriptors_full(&e) => {
                self.files.close_descs();
                entry.pinned().open()
            }
            opened => opened,
        };
        if let Err(Error::Replaced { .. }) = opened {
            self.files.retire(entry);
        }
        Ok(opened?.0)
    }

    /// Under the file's lock: the region holding `offset` if one is mapped
    /// (waiting for a window being mapped there), or else the new window,
    /// placed and marked pending, with the descriptor to map it through.
    /// A mapped region holding `offset` that the file's table does not
    /// name, taken (and the cursor's region given back), for a read about
    /// to copy: a region placed off the slots, in the gap between others,
    /// or one of several windows in a slot of a coarse table (a file of
    /// more than [`MAX_SLOTS`](super::table::MAX_SLOTS) windows). Such a
    /// region is mapped, so reading it costs no room; copying instead would
    /// leave it unused, for the hand to evict. Only where the table names a
    /// region for the offset's slot (one that, [`Shared::find`] found, does
    /// not hold the offset) can such a region exist: a slot naming none
    /// has no region overlapping it. Then this takes the file's lock once,
    /// and never waits: a region being evicted, or being mapped, is left,
    /// and the read copies.
    fn mapped_off_the_table(
        &self,
        entry: &FileEntry,
        offset: u64,
        previous: &mut Option<Lease>,
    ) -> Option<Lease> {
        entry.table().get(offset)?;
        let slots = entry.slots();
        let Some((
            _,
            Slot {
                what: What::Mapped(c),
                ..
            },
        )) = slots.at(offset)
        else {
            return None;
        };
        let cell = self.cells.get(c);
        let seen = cell.claim.seen();
        if !cell.claim.try_take(seen.generation(), seen) {
            return None;
        }
        drop(slots);
        self.release(previous);
        self.counters.add(Counter::Reuses, 1);
        Some(Lease {
            cell: std::ptr::NonNull::from(cell),
            gen: seen.generation(),
            span: cell.span(),
        })
    }

    fn place_pending<'e>(
        &self,
        entry: &'e Arc<FileEntry>,
        offset: u64,
        want_size: u64,
        previous: &mut Option<Lease>,
        want: Want,
    ) -> Result<Placed<'e>> {
        let mut desc: Option<Desc<'e>> = None;
        loop {
            let mut slots = entry.slots();
            match slots.at(offset) {
                Some((
                    _,
                    Slot {
                        what: What::Mapped(c),
                        ..
                    },
                )) => {
                    let cell = self.cells.get(c);
                    let seen = cell.claim.seen();
                    if cell.claim.try_take(seen.generation(), seen) {
                        drop(slots);
                        self.release(previous);
                        self.counters.add(Counter::Reuses, 1);
                        return Ok(Placed::Found(Lease {
                            cell: std::ptr::NonNull::from(cell),
                            gen: seen.generation(),
                            span: cell.span(),
                        }));
                    }
                    let now = cell.claim.seen();
                    if now.generation() == seen.generation() && now.is_live() {
                        if now.is_full() {
                            // Counted by as many cursors as it can.
                            return Err(Error::TooManyCursors {
                                file: entry.pinned().given().clone(),
                                offset,
                                limit: crate::claim::MAX_CURSORS,
                            });
                        }
                        // Full when looked at, a cursor gone since: take
                        // it again.
                        continue;
                    }
                    // Evicted: the evictor takes it out of the slots next.
                    self.counters.add(Counter::Waits, 1);
                    desc = None;
                    drop(entry.wait(slots));
                    continue;
                }
                Some((
                    _,
                    Slot {
                        what: What::Pending,
                        ..
                    },
                )) => {
                    if want == Want::Map && previous.is_some() {
                        // The cursor moves there whatever happens: its
                        // region goes back before it waits.
                        drop(slots);
                        self.release(previous);
                        continue;
                    }
                    // Not holding a descriptor while asleep: a thread that
                    // finds the descriptor table full could not close it.
                    self.counters.add(Counter::Waits, 1);
                    desc = None;
                    drop(entry.wait(slots));
                    continue;
                }
                None => {}
            }
            let Some(d) = desc.take().or_else(|| entry.enter_desc().map(Desc::Cached)) else {
                drop(slots);
                desc = Some(self.desc(entry)?);
                continue;
            };
            let window = place(&self.limits, &slots, entry.size(), offset, want_size);
            slots.insert_pending(window.ofs, window.ofs_end());
            return Ok(Placed::Pending(window, d));
        }
    }

    /// Reserves a cell and `cost` bytes for a window of `entry` at
    /// `offset`, evicting under the hand if there is no room. A read that
    /// copies (`admission`: its window's asks) copies rather than evict a
    /// region as hot as its window, wait for the hand, fail or pass the
    /// memory limit. `desc`, the descriptor to map the window through, is
    /// let go of (emptied) before any sleep — for the hand, or for room
    /// that windows in flight hold — so that a thread that finds the
    /// process's descriptor table full meanwhile can close it.
    fn reserve(
        &self,
        entry: &FileEntry,
        offset: u64,
        cost: u64,
        admission: Option<u32>,
        desc: &mut Option<Desc<'_>>,
    ) -> Result<Room<'_>> {
        if let Some(cell) = self.try_room(cost) {
            return Ok(Room::Cell(cell, None));
        }
        let copies = admission.is_some();
        if admission.is_some_and(|asks| !self.sketch.may_admit(asks)) {
            return Ok(Room::Copy);
        }
        let mut hand = if copies {
            match self.evictor.try_lock(self) {
                Some(h) => h,
                None => return Ok(Room::Copy),
            }
        } else {
            self.hand(desc)
        };
        loop {
            if let Some(cell) = self.try_room(cost) {
                hand.publish_next_victim();
                return Ok(Room::Cell(cell, Some(hand)));
            }
            let need = Need {
                handle: self.cells.used() >= self.limits.max_open_handles,
                bytes: self.ledger.short_by(cost),
            };
            if !need.handle && need.bytes == 0 {
                // Room came back since the try above: take it, rather than
                // walk for nothing and then pass the memory limit.
                continue;
            }
            let landings = self.room.landings();
            match hand.evict(need, false, admission) {
                Swept::Rejected(n) => {
                    self.counters.add(Counter::Evictions, n as u64);
                    return Ok(Room::Copy);
                }
                Swept::Evicted(n) if n > 0 => {
                    self.counters.add(Counter::Evictions, n as u64);
                    continue;
                }
                Swept::Evicted(_) => {}
            }
            hooks::at(Point::AfterEmptyWalk);
            // Nothing left to evict: the rest is in use, or being mapped by
            // other threads (then the room may come back: wait for it, from
            // the generation before the look, so that a window published
            // right after it ends the wait). The look reads the regions
            // tracked, then the cells used: the regions fall only under the
            // hand, held here, and a window is tracked after its cell is
            // reserved, so the cells used then are at least the regions
            // read before and every window in flight at either read. Equal,
            // nothing was in flight, and the cells used were all regions.
            let mut used = 0;
            if let Some(seen) = self.room.watch(|| {
                let regions = self.ledger.tracked().0;
                used = self.cells.used();
                used > regions
            }) {
                if copies {
                    return Ok(Room::Copy);
                }
                *desc = None;
                drop(hand);
                self.counters.add(Counter::Waits, 1);
                hooks::at(Point::BeforeSleep);
                self.room.wait(seen);
                hand = self.evictor.lock(self);
                continue;
            }
            if copies {
                return Ok(Room::Copy);
            }
            // A window that landed during the walk (published, maybe
            // released since) was not walked: walk again (see `Room`).
            if self.room.landings() != landings {
                continue;
            }
            // `need` was taken before the walk: a cell another thread held
            // then (a mapping that failed since, a reservation given back
            // for want of bytes) may have been free at the look. Only a
            // limit reached then is an error (decided from the look's own
            // count: read again, it could count a window that another miss
            // began since, in flight); otherwise look again.
            if need.handle && used < self.limits.max_open_handles {
                continue;
            }
            if need.handle {
                return Err(Error::HandleLimit {
                    file: entry.pinned().given().clone(),
                    offset,
                    limit: self.limits.max_open_handles,
                });
            }
            // Short of memory with every region in use: the limit is passed
            // (and the excess evicted as soon as one is released).
            let Some(cell) = self.cells.reserve() else {
                continue;
            };
            self.ledger.force(cost);
            // A region released since the walk above goes now, or its
            // releaser sees the limit passed.
            hand.evict_over();
            return Ok(Room::Cell(cell, None));
        }
    }

    /// The evictor's hand; if another thread holds it, `desc` is let go of
    /// (emptied) before this one sleeps for it.
    fn hand(&self, desc: &mut Option<Desc<'_>>) -> HandGuard<'_> {
        if let Some(h) = self.evictor.try_lock(self) {
            return h;
        }
        *desc = None;
        hooks::at(Point::BeforeSleep);
        self.evictor.lock(self)
    }

    /// A cell and `cost` bytes, if both are free now.
    fn try_room(&self, cost: u64) -> Option<u32> {
        let cell = self.cells.reserve()?;
        if self.ledger.try_reserve(cost) {
            return Some(cell);
        }
        self.cells.free(cell);
        self.room.changed();
        None
    }

    /// The window pending at `start` of `entry`'s file will not be mapped:
    /// its slot goes, and the threads waiting for it look again.
    fn abandon(&self, entry: &FileEntry, start: u64) {
        entry.slots().remove(start);
        entry.notify();
    }

    /// Publishes the mapped `region` in the reserved `cell`, its file's slot
    /// and table, with the cursor's client counted; counts it (and, if
    /// `admitted`, as a ghost hit).
    fn publish(
        &self,
        entry: &Arc<FileEntry>,
        cell: u32,
        region: MapRegion,
        admitted: bool,
    ) -> Lease {
        let (begin, end) = (region.ofs_begin(), region.ofs_end());
        let size = end - begin;
        let cost = page_cost(size);
        let c = self.cells.get(cell);
        region.set_home(&self.cells, cell, c.claim.next_generation());
        let lease = {
            let mut slots = entry.slots();
            slots.complete(begin, cell);
            let gen = c.publish(region, entry.clone(), entry.serial(), 2);
            entry.table().insert(c, begin, end, entry.size());
            Lease {
                cell: std::ptr::NonNull::from(c),
                gen,
                span: c.span(),
            }
        };
        entry.notify();
        let (windows, tracked, memory) = self.ledger.track(size, cost);
        self.counters
            .note_peaks(windows, memory, tracked.saturating_sub(self.ledger.max()));
        self.counters.add(Counter::Maps, 1);
        if admitted {
            self.counters.add(Counter::GhostHits, 1);
        }
        self.room.landed();
        lease
    }
}

/// What [`Shared::place_pending`] found.
enum Placed<'a> {
    Found(Lease),
    Pending(MapWindow, Desc<'a>),
}

/// Where the new region for `offset` goes, among `slots` of a file of
/// `size` bytes, for a cursor that wants `want` bytes from `offset`.
///
/// A static manager maps the whole file. Otherwise, when the bytes wanted
/// fit in the window-size slot holding `offset` and nothing occupies that
/// slot, the window is the slot: aligned windows, which the file's table
/// finds in one step. Otherwise the window starts at `offset`, grows
/// towards the neighbouring slots up to the window size, is aligned to the
/// granularity and clipped to the next slot or the file's end.
pub(crate) fn place(
    limits: &Limits,
    slots: &Slots,
    size: u64,
    offset: u64,
    want: u64,
) -> MapWindow {
    if limits.kind == Kind::Static {
        return MapWindow::new(0, size);
    }
    let w = limits.slot_window();
    let lo = if w == u64::MAX { 0 } else { offset / w * w };
    let hi = lo.saturating_add(w).min(size);
    let wanted_end = offset.saturating_add(want.max(1)).min(size);
    if wanted_end <= hi && slots.is_free(lo, hi) {
        return MapWindow::new(lo, hi - lo);
    }
    let cap = limits.window_cap();
    let (left, right) = slots.neighbours(offset, size);
    let mut mid = MapWindow::new(offset, want.min(right.ofs - offset));
    mid.extend_left_to(&left, cap);
    mid.extend_right_to(&right, cap);
    mid.align();
    // Slots start aligned and end aligned or at the file's end, so
    // aligning down never reaches into the left neighbour.
    debug_assert!(mid.ofs >= left.ofs_end(), "{mid:?} overlaps {left:?}");
    if mid.ofs_end() > right.ofs {
        mid.size = right.ofs - mid.ofs;
    }
    debug_assert!(
        mid.ofs <= offset && offset < mid.ofs_end(),
        "{mid:?} misses {offset}"
    );
    mid
}

/// True if opening failed because a descriptor table is full.
fn descriptors_full(e: &Error) -> bool {
    matches!(e, Error::Open { .. })
        && e.raw_os_error()
            .is_some_and(crate::sys::is_descriptor_table_full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g() -> u64 {
        *crate::ALLOCATIONGRANULARITY
    }

    fn sliding(window: u64) -> Limits {
        Limits {
            kind: Kind::Sliding,
            window_size: window,
            max_memory_size: u64::MAX,
            max_open_handles: usize::MAX,
            max_open_files: 8,
            policy: ReadPolicy::Adaptive,
        }
    }

    /// A manager of one-granule windows and two handles, and a file of
    /// four granules in `dir`, each granule's bytes its index.
    fn two_handles(dir: &std::path::Path) -> (crate::SlidingWindowMapManager, std::path::PathBuf) {
        let path = dir.join("f");
        let bytes: Vec<u8> = (0..4 * g()).map(|i| (i / g()) as u8).collect();
        std::fs::write(&path, bytes).unwrap();
        let m = crate::SlidingWindowMapManager::builder()
            .window_size(g())
            .max_open_handles(2)
            .build();
        (m, path)
    }

    /// Another thread's window lands between the evictor's walk (which
    /// skipped its cell, reserved but not yet published) and the look for
    /// windows in flight (which finds none, as it has landed), and its
    /// cursor releases it: the miss walks again and evicts it, instead of
    /// saying that every region is in use.
    #[test]
    fn a_window_that_lands_during_the_walk_is_walked_again() {
        let dir = tempfile::tempdir().unwrap();
        let (m, path) = two_handles(dir.path());
        let s = m.manager().shared.clone();
        let mut a = m.make_cursor(&path).unwrap();
        a.use_region(0, 1).unwrap();
        // Thread B's window in flight: its cell and bytes reserved.
        let cost = page_cost(g());
        let cell = s.cells.reserve().unwrap();
        assert!(s.ledger.try_reserve(cost));
        let (m2, p2) = (m.clone(), path.clone());
        hooks::set(Point::AfterEmptyWalk, move || {
            // B's window lands in that room, and B releases it. (This
            // thread holds the hand here: B's miss must find room without
            // it, as it does in the cell just freed.)
            let s = &m2.manager().shared;
            s.ledger.free(cost);
            s.cells.free(cell);
            let mut b = m2.make_cursor(&p2).unwrap();
            b.use_region(g(), 1).unwrap();
            b.unuse_region();
        });
        let mut c = m.make_cursor(&path).unwrap();
        c.use_region(2 * g(), 1)
            .expect("B's region was unused: evicted");
        assert!(!hooks::pending(), "the walk found nothing to evict");
        assert_eq!(c.buffer()[0], 2);
        assert_eq!(a.buffer()[0], 0);
        m.verify_invariants().unwrap();
        let st = m.stats();
        assert_eq!((st.windows, st.maps, st.evictions), (2, 3, 1), "{st:?}");
    }

    /// A cursor being made has read the file at its path, and before it
    /// lists it another cursor's read finds the path renamed over and
    /// retires the file's entry: the cursor being made reads the path again
    /// and meets the new file, as every cursor made after the refusal does
    /// (it used to list the old file under the path again, and the next
    /// cursors by that name were refused once more).
    #[test]
    #[cfg(unix)] // Windows refuses to rename over a mapped file.
    fn a_cursor_made_while_its_file_is_found_replaced_meets_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let (path, next) = (dir.path().join("f"), dir.path().join("next"));
        std::fs::write(&path, vec![1u8; 2 * g() as usize]).unwrap();
        std::fs::write(&next, vec![2u8; 2 * g() as usize]).unwrap();
        let m = crate::SlidingWindowMapManager::builder()
            .window_size(g())
            .build();
        let (m2, p2) = (m.clone(), path.clone());
        hooks::set(Point::BeforeAttach, move || {
            // Another cursor meets the old file, which is then renamed
            // over; with its descriptor closed, its next map finds that.
            let mut z = m2.make_cursor(&p2).unwrap();
            z.use_region(0, 1).unwrap();
            assert_eq!(z.buffer()[0], 1);
            std::fs::rename(&next, &p2).unwrap();
            m2.collect();
            let e = z.use_region(g(), 1).unwrap_err();
            assert!(matches!(e, Error::Replaced { .. }), "{e}");
        });
        let mut a = m.make_cursor(&path).unwrap();
        assert!(!hooks::pending(), "the hook ran");
        a.use_region(g(), 1).expect("the file now at the path");
        assert_eq!(a.buffer()[0], 2);
        let mut b = m.make_cursor(&path).unwrap();
        b.use_region(0, 1).unwrap();
        assert_eq!(b.buffer()[0], 2);
        // The old file's entry (retired; its window is still mapped) and
        // the new one's.
        assert_eq!(m.stats().known_files, 2);
        m.verify_invariants().unwrap();
    }

    /// Reserves a cell and `cost` bytes as another thread's window in
    /// flight would, and returns what gives them up, as that thread would
    /// (once, whoever calls it first). A watchdog calls it after 30 s: a
    /// miss that sleeps for that room without passing the hook point its
    /// test set fails the test instead of hanging it.
    fn in_flight(s: &Arc<Shared>, cost: u64) -> Arc<dyn Fn() + Send + Sync> {
        use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
        let cell = s.cells.reserve().unwrap();
        assert!(s.ledger.try_reserve(cost));
        let done = Arc::new(AtomicBool::new(false));
        let give_up: Arc<dyn Fn() + Send + Sync> = {
            let (s, done) = (s.clone(), done.clone());
            Arc::new(move || {
                if !done.swap(true, SeqCst) {
                    s.ledger.free(cost);
                    s.cells.free(cell);
                    s.room.landed();
                }
            })
        };
        let watchdog = give_up.clone();
        std::thread::spawn(move || {
            let t = std::time::Instant::now();
            while !done.load(SeqCst) && t.elapsed() < std::time::Duration::from_secs(30) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            watchdog();
        });
        give_up
    }

    /// Another thread takes the evictor's hand and holds it until told to
    /// let go (or for 30 s, so that a miss that sleeps for it without
    /// passing the hook point its test set fails the test instead of
    /// hanging it).
    fn hold_hand(s: &Arc<Shared>) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let s = s.clone();
        let holder = std::thread::spawn(move || {
            let hand = s.evictor.lock(&s);
            held_tx.send(()).unwrap();
            let _ = go_rx.recv_timeout(std::time::Duration::from_secs(30));
            drop(hand);
        });
        held_rx.recv().unwrap();
        (go_tx, holder)
    }

    /// What a thread that finds the process's descriptor table full does:
    /// closes every cached descriptor; the file's closes at once only if no
    /// reader (and no sleeping miss) holds it.
    fn table_full_closes_the_files_descriptor(s: &Shared) {
        assert_eq!(s.files.close_descs(), 1);
        assert_eq!(s.files.open_descs(), 0, "closed at once: nobody holds it");
    }

    /// A copy read that placed its window (giving its region back) and then
    /// copies, the hand being busy, reads through the descriptor it holds.
    /// Taken anew, the descriptor — closed meanwhile by a thread that
    /// found the process's table full — had the file opened again, renamed
    /// over since: the read failed (`Replaced`), its region gone.
    #[test]
    #[cfg(unix)] // Windows refuses to rename over a mapped file.
    fn a_copy_after_its_window_is_placed_reads_through_the_descriptor_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let (m, path) = two_handles(dir.path());
        let next = dir.path().join("next");
        std::fs::write(&next, vec![9u8; 4 * g() as usize]).unwrap();
        let s = m.manager().shared.clone();
        let mut a = m.make_cursor(&path).unwrap();
        a.use_region(0, 1).unwrap();
        let mut b = m.make_cursor(&path).unwrap();
        b.use_region(g(), 1).unwrap();
        // Window 2 asked for often (copied, both handles being in use; a
        // read of window 3 between, so that each misses its copy), then a
        // region let go of: a read of window 2 may evict for it.
        let mut c = m.make_cursor(&path).unwrap();
        for _ in 0..crate::manager::sketch::ADMIT_ASKS {
            assert_eq!(c.byte_at(2 * g()).unwrap(), 2);
            assert_eq!(c.byte_at(3 * g()).unwrap(), 3);
        }
        b.unuse_region();
        let held = Arc::new(std::sync::Mutex::new(None));
        let (s2, h2, p2) = (s.clone(), held.clone(), path.clone());
        hooks::set(Point::BeforeReserve, move || {
            *h2.lock().unwrap() = Some(hold_hand(&s2));
            assert_eq!(s2.files.close_descs(), 1);
            assert_eq!(s2.files.open_descs(), 1, "the miss holds it");
            std::fs::rename(&next, &p2).unwrap();
        });
        let chunk = a.chunk_at(2 * g()).map(|c| c[0]);
        let taken = held.lock().unwrap().take();
        let (go, holder) =
            taken.unwrap_or_else(|| panic!("the hook did not run: {chunk:?}, {:?}", m.stats()));
        go.send(()).unwrap();
        holder.join().unwrap();
        assert_eq!(chunk.expect("copied through the descriptor held"), 2);
        assert_eq!(s.files.open_descs(), 0, "closed once the copy was read");
        let st = m.stats();
        assert_eq!((st.maps, st.fd_opens), (2, 1), "{st:?}");
        m.verify_invariants().unwrap();
    }

    /// A miss that sleeps until room held by another thread's window in
    /// flight comes back holds no descriptor meanwhile: a thread that finds
    /// the process's descriptor table full then can close it. The miss has
    /// the file opened again once it has room.
    #[test]
    fn a_miss_asleep_for_room_holds_no_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let (m, path) = two_handles(dir.path());
        let s = m.manager().shared.clone();
        let mut a = m.make_cursor(&path).unwrap();
        a.use_region(0, 1).unwrap();
        let give_up = in_flight(&s, page_cost(g()));
        let s2 = s.clone();
        hooks::set(Point::BeforeSleep, move || {
            table_full_closes_the_files_descriptor(&s2);
            give_up();
        });
        let mut c = m.make_cursor(&path).unwrap();
        c.use_region(2 * g(), 1).expect("the room came back");
        assert!(!hooks::pending(), "the miss slept for the room");
        assert_eq!(c.buffer()[0], 2);
        assert_eq!(a.buffer()[0], 0);
        m.verify_invariants().unwrap();
        let st = m.stats();
        assert_eq!(
            (st.windows, st.maps, st.fd_opens, st.waits),
            (2, 2, 2, 1),
            "{st:?}"
        );
    }

    /// The file is renamed away while a miss sleeps for room: the miss
    /// cannot open it again, fails naming it, and gives up its window's
    /// slot and room; with the file back, the same read maps.
    #[test]
    fn a_miss_that_cannot_open_its_file_after_sleeping_gives_its_room_up() {
        let dir = tempfile::tempdir().unwrap();
        let (m, path) = two_handles(dir.path());
        let away = dir.path().join("away");
        let s = m.manager().shared.clone();
        let mut a = m.make_cursor(&path).unwrap();
        a.use_region(0, 1).unwrap();
        let give_up = in_flight(&s, page_cost(g()));
        let (s2, p2, away2) = (s.clone(), path.clone(), away.clone());
        hooks::set(Point::BeforeSleep, move || {
            table_full_closes_the_files_descriptor(&s2);
            std::fs::rename(&p2, &away2).unwrap();
            give_up();
        });
        let mut c = m.make_cursor(&path).unwrap();
        let err = c.use_region(2 * g(), 1).unwrap_err();
        assert!(!hooks::pending(), "the miss slept for the room");
        assert!(matches!(err, Error::Open { .. }), "{err:?}");
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        assert_eq!(a.buffer()[0], 0, "the other cursor reads on");
        m.verify_invariants().unwrap();
        let st = m.stats();
        assert_eq!(
            (st.windows, st.maps),
            (1, 1),
            "nothing left pending: {st:?}"
        );
        std::fs::rename(&away, &path).unwrap();
        c.use_region(2 * g(), 1)
            .expect("the slot and the room were given up");
        assert_eq!(c.buffer()[0], 2);
        m.verify_invariants().unwrap();
    }

    /// A miss that sleeps for the evictor's hand holds no descriptor
    /// meanwhile, as one that sleeps for room.
    #[test]
    fn a_miss_asleep_for_the_hand_holds_no_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let (m, path) = two_handles(dir.path());
        let s = m.manager().shared.clone();
        let mut a = m.make_cursor(&path).unwrap();
        a.use_region(0, 1).unwrap();
        a.unuse_region();
        let mut b = m.make_cursor(&path).unwrap();
        b.use_region(g(), 1).unwrap();
        let (go, holder) = hold_hand(&s);
        let s2 = s.clone();
        hooks::set(Point::BeforeSleep, move || {
            table_full_closes_the_files_descriptor(&s2);
            let _ = go.send(());
        });
        let mut c = m.make_cursor(&path).unwrap();
        c.use_region(2 * g(), 1)
            .expect("A's region was unused: evicted");
        holder.join().unwrap();
        assert!(!hooks::pending(), "the miss slept for the hand");
        assert_eq!(c.buffer()[0], 2);
        assert_eq!(b.buffer()[0], 1);
        m.verify_invariants().unwrap();
        let st = m.stats();
        assert_eq!((st.maps, st.evictions, st.fd_opens), (3, 1, 2), "{st:?}");
    }

    /// A map refused for want of memory is tried again under the hand; a
    /// miss that must sleep for it first holds no descriptor meanwhile.
    #[cfg(feature = "fault-injection")]
    #[test]
    fn a_retry_asleep_for_the_hand_holds_no_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let (m, path) = two_handles(dir.path());
        let s = m.manager().shared.clone();
        let mut a = m.make_cursor(&path).unwrap();
        a.use_region(0, 1).unwrap();
        let (go, holder) = hold_hand(&s);
        let s2 = s.clone();
        hooks::set(Point::BeforeSleep, move || {
            table_full_closes_the_files_descriptor(&s2);
            let _ = go.send(());
        });
        // Room for the window: no hand needed until the refusal.
        m.fail_next_maps(1, crate::sys::NO_MEMORY);
        let mut c = m.make_cursor(&path).unwrap();
        c.use_region(g(), 1).expect("mapped on the retry");
        holder.join().unwrap();
        assert!(!hooks::pending(), "the retry slept for the hand");
        assert_eq!(c.buffer()[0], 1);
        assert_eq!(a.buffer()[0], 0);
        m.verify_invariants().unwrap();
        let st = m.stats();
        assert_eq!(
            (st.maps, st.map_failures, st.retries, st.fd_opens),
            (2, 1, 1, 2),
            "{st:?}"
        );
    }

    /// A read that copies saw room for its window, but another thread took
    /// the last handle before it reserved any: it copies rather than evict
    /// a region for a window asked for once (which admission refuses).
    #[test]
    fn a_read_that_copies_and_loses_the_room_evicts_only_as_admission_says() {
        let dir = tempfile::tempdir().unwrap();
        let (m, path) = two_handles(dir.path());
        let mut a = m.make_cursor(&path).unwrap();
        a.use_region(0, 1).unwrap();
        a.unuse_region();
        let (m2, p2) = (m.clone(), path.clone());
        hooks::set(Point::BeforeReserve, move || {
            let mut b = m2.make_cursor(&p2).unwrap();
            b.use_region(g(), 1).unwrap();
        });
        let mut c = m.make_cursor(&path).unwrap();
        let mut out = [0u8; 16];
        assert_eq!(c.read_at(2 * g() + 5, &mut out).unwrap(), 16);
        assert!(!hooks::pending(), "the other window took the last handle");
        assert_eq!(out, [2u8; 16]);
        m.verify_invariants().unwrap();
        let st = m.stats();
        assert_eq!(
            (st.windows, st.maps, st.evictions, st.preads),
            (2, 2, 0, 1),
            "{st:?}"
        );
    }

    #[test]
    fn windows_go_on_slots_when_the_bytes_wanted_fit_one() {
        let l = sliding(4 * g());
        let mut s = Slots::default();
        let size = 20 * g() + 5;
        // A byte at 5g + 3: the slot [4g, 8g).
        assert_eq!(
            place(&l, &s, size, 5 * g() + 3, 1),
            MapWindow::new(4 * g(), 4 * g())
        );
        // The last slot ends at the file's end.
        assert_eq!(
            place(&l, &s, size, 20 * g(), 1),
            MapWindow::new(20 * g(), 5)
        );
        // A window size that is not a whole number of granules: slots of
        // the size rounded up.
        let odd = sliding(3 * g() + 1);
        assert_eq!(
            place(&odd, &s, size, 5 * g(), 1),
            MapWindow::new(4 * g(), 4 * g())
        );
        // Whole files for a static manager and for unlimited windows.
        let whole = Limits {
            kind: Kind::Static,
            ..l
        };
        assert_eq!(place(&whole, &s, size, 9 * g(), 1), MapWindow::new(0, size));
        assert_eq!(
            place(&sliding(0), &s, size, 9 * g(), 1),
            MapWindow::new(0, size)
        );
        // Bytes wanted past the slot's end: the window starts at the
        // offset (aligned down) and takes the window size.
        assert_eq!(
            place(&l, &s, size, 5 * g() + 3, 4 * g()),
            MapWindow::new(5 * g(), 5 * g())
        );
        s.insert_pending(5 * g(), 10 * g());
        s.complete(5 * g(), 0);
        // A slot partly taken: the window grows towards the neighbours
        // (left first) up to the window size, aligned, clipped to the right
        // neighbour.
        assert_eq!(place(&l, &s, size, 4 * g(), 1), MapWindow::new(0, 5 * g()));
        // Between two neighbours, exactly the gap.
        s.insert_pending(0, 2 * g());
        assert_eq!(
            place(&l, &s, size, 3 * g(), 1),
            MapWindow::new(2 * g(), 3 * g())
        );
    }
}

/// The decision of [`Shared::reserve`] when its walk evicts nothing, in
/// every interleaving with other threads' windows (`RUSTFLAGS="--cfg
/// loom"`). The model keeps the real cells, ledger, claim words and room,
/// and walks and decides as `reserve` does, without files or mappings.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::super::{cells::Cells, ledger::Ledger, room::Room};
    use crate::claim::Sweep;
    use crate::sync::{AtomicBool, Ordering};
    use loom::sync::Arc;

    const MAX: usize = 2;

    #[derive(Debug, PartialEq)]
    enum Got {
        Cell(u32),
        HandleLimit,
        Forced,
    }

    struct World {
        cells: Cells,
        ledger: Ledger,
        room: Room,
    }

    impl World {
        fn new(bytes: u64) -> Self {
            World {
                cells: Cells::new(MAX),
                ledger: Ledger::new(bytes),
                room: Room::default(),
            }
        }

        /// `Shared::try_room`.
        fn try_room(&self, cost: u64) -> Option<u32> {
            let c = self.cells.reserve()?;
            if self.ledger.try_reserve(cost) {
                return Some(c);
            }
            self.cells.free(c);
            self.room.changed();
            None
        }

        /// `Shared::publish`, the mapping cursor counted.
        fn land(&self, c: u32) {
            self.cells.get(c).claim.publish(2);
            self.ledger.track(1, 1);
            self.room.landed();
        }

        /// The evictor's walk (two turns); true if it evicted. `saw` is
        /// set if it met cell `watched` reserved but not published.
        fn walk(&self, watched: u32, saw: &mut bool) -> bool {
            *saw = false;
            for i in (0..MAX).chain(0..MAX) {
                if !self.cells.is_reserved(i) {
                    continue;
                }
                let cell = self.cells.get(i as u32);
                if !cell.claim.seen().is_live() {
                    *saw |= i as u32 == watched;
                    continue;
                }
                if cell.claim.sweep(false) == Sweep::Evicted {
                    self.ledger.untrack(1, 1);
                    self.ledger.free(1);
                    self.cells.free(i as u32);
                    self.room.changed();
                    return true;
                }
            }
            false
        }

        /// `Shared::reserve` for a window of one byte, as it decides;
        /// `look` runs where another thread's step would be noticed, and
        /// `decided` with the decision's inputs once it fails or forces.
        fn reserve(&self, watched: u32, saw: &mut bool, mut look: impl FnMut()) -> Got {
            loop {
                if let Some(c) = self.try_room(1) {
                    return Got::Cell(c);
                }
                let handle = self.cells.used() >= MAX;
                let landings = self.room.landings();
                if self.walk(watched, saw) {
                    continue;
                }
                let mut used = 0;
                if let Some(g) = self.room.watch(|| {
                    let regions = self.ledger.tracked().0;
                    used = self.cells.used();
                    used > regions
                }) {
                    self.room.wait(g);
                    continue;
                }
                look();
                if self.room.landings() != landings {
                    continue;
                }
                if handle && used < MAX {
                    continue;
                }
                return if handle {
                    Got::HandleLimit
                } else {
                    Got::Forced
                };
            }
        }
    }

    /// A window that lands while the walk passes its cell, and is
    /// released before the miss looks for windows in flight, is walked
    /// again: the miss never fails with that region unused and unwalked.
    #[test]
    fn loom_a_window_landed_during_the_walk_is_walked_again() {
        // Bounded as the room's three-thread models are: the walk's loops
        // make the unbounded space too large to explore in minutes.
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(2);
        model.check(|| {
            let w = Arc::new(World::new(u64::MAX));
            let a = w.try_room(1).unwrap();
            w.land(a); // held for good
            let b = w.try_room(1).unwrap(); // in flight
            let gone = Arc::new(AtomicBool::new(false));
            let t = {
                let (w, gone) = (w.clone(), gone.clone());
                loom::thread::spawn(move || {
                    w.land(b);
                    w.cells.get(b).claim.give_back();
                    gone.store(true, Ordering::Release);
                })
            };
            let (mut saw, mut released) = (false, false);
            let got = w.reserve(b, &mut saw, || released = gone.load(Ordering::Acquire));
            t.join().unwrap();
            assert!(
                !(got == Got::HandleLimit && saw && released),
                "failed with the region that landed during the walk unused and unwalked"
            );
            if released && got != Got::HandleLimit {
                assert_eq!(got, Got::Cell(b), "the unused region's cell");
            }
        });
    }

    /// A miss never fails while another thread's window is in flight as
    /// the miss sees it when it decides, however a third thread's
    /// reservations come and go (one given back for want of bytes, then
    /// one that lands) between the look's two reads.
    #[test]
    fn loom_no_failure_while_a_window_is_in_flight() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let w = Arc::new(World::new(2));
            let b = w.try_room(1).unwrap();
            let y = {
                let w = w.clone();
                loom::thread::spawn(move || {
                    assert_eq!(w.try_room(2), None, "only one byte is left");
                    if let Some(c) = w.try_room(1) {
                        w.land(c);
                    }
                })
            };
            let l = {
                let w = w.clone();
                loom::thread::spawn(move || w.land(b))
            };
            let mut saw = false;
            let mut in_flight = false;
            let got = w.reserve(b, &mut saw, || {
                in_flight = !w.cells.get(b).claim.seen().is_live();
            });
            y.join().unwrap();
            l.join().unwrap();
            assert!(
                !(matches!(got, Got::HandleLimit | Got::Forced) && in_flight),
                "{got:?} while the window was in flight"
            );
        });
    }
}
