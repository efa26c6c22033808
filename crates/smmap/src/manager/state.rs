//! The manager's shared state and the core algorithm: finding, placing and
//! evicting regions. Everything here runs under the manager's lock; the
//! system calls (map, unmap) happen outside it, in `Manager`.
//!
//! Data structures, and why:
//! - files live in a slab indexed by a small integer that a cursor keeps, so
//!   a miss finds its file without hashing the path; the index is stable
//!   while the file has a cursor or a slot;
//! - each file's slots (mapped regions, and windows being mapped) are in a
//!   `BTreeMap` by offset: ordered lookup and neighbours in `O(log n)`;
//! - regions released at least once are in a doubly linked list ([`Lru`]),
//!   every unused one among them, least recently used first. A cursor that
//!   released its region without moving on parks on it and takes it back,
//!   and releases it again, without the lock (see [`crate::claim`]): it
//!   stays in the list meanwhile, and the evictor passes over regions in
//!   use or taken back since its last pass (CLOCK's second chance), moving
//!   them to the back;
//! - cached descriptors are in a CLOCK ring ([`DescRing`]): marking one used
//!   on a miss is a store, not a reordering.
//!
//! The limits count what the operating system holds. A window being mapped
//! without the lock is *pending*: it holds its handle and bytes, and sits in
//! its file's slots, so that a miss inside it waits for it instead of
//! mapping it twice. An evicted region is *unmapping* until the thread that
//! evicted it has unmapped it: its handle and bytes are not free before. So
//! `mapped + pending + unmapping` never exceeds `max_open_handles`, and the
//! operating system never holds more. A miss that evicts unmaps first and
//! then asks again. When the room a miss needs is held only by other
//! threads' pending or unmapping windows, the miss waits for them;
//! [`Error::HandleLimit`] means every mapped region is in use by a cursor.

use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;

use super::desc_ring::DescRing;
use super::heat::Heat;
use super::lru::{Entry, Lru};
use super::region_list::{MapRegionList, Slot};
use super::ReadPolicy;
use crate::claim::{Claims, Eviction};
use crate::error::{Error, Result};
use crate::region::MapRegion;
use crate::source::{FileKey, PinnedFile};
use crate::stats::Stats;
use crate::sys::page_cost;
use crate::window::MapWindow;

/// Which placement the manager uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One region per file, mapping the whole file.
    Static,
    /// Windows of at most `window_size` placed between existing regions.
    Sliding,
}

/// The manager's configuration, with the special values already resolved.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) kind: Kind,
    /// 0 means unlimited (whole file).
    pub(crate) window_size: u64,
    pub(crate) max_memory_size: u64,
    pub(crate) max_open_handles: usize,
    /// Descriptors kept open, at most.
    pub(crate) max_open_files: usize,
    pub(crate) policy: ReadPolicy,
}

impl Limits {
    /// The cap on one window; `u64::MAX` when unlimited.
    pub(crate) fn window_cap(&self) -> u64 {
        if self.window_size == 0 {
            u64::MAX
        } else {
            self.window_size
        }
    }
}

/// Handles and bytes (charged in whole pages) of a set of mappings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Room {
    pub(super) handles: usize,
    pub(super) bytes: u64,
}

impl Room {
    fn add(&mut self, handles: usize, bytes: u64) {
        self.handles += handles;
        self.bytes += bytes;
    }

    fn sub(&mut self, other: Room) {
        self.handles -= other.handles;
        self.bytes -= other.bytes;
    }
}

/// Regions evicted under the lock, to be dropped (unmapped) after it is
/// released, and their room, which stays counted as unmapping until then.
#[derive(Default)]
pub(super) struct Released {
    pub(super) regions: Vec<MapRegion>,
    pub(super) room: Room,
}

/// The state behind the manager's lock.
#[derive(Default)]
pub(super) struct State {
    index: HashMap<FileKey, usize>,
    files: Vec<Option<MapRegionList>>,
    free: Vec<usize>,
    /// The regions released at least once (every unused one, and those
    /// cursors took back without the lock), least recently used first.
    lru: Lru,
    /// The window size heat is counted in.
    window_cap: u64,
    /// Exact bytes of the tracked regions (what `mapped_memory_size` says).
    memory: u64,
    /// Tracked regions, charged in whole pages.
    mapped: Room,
    /// Windows being mapped without the lock.
    pending: Room,
    /// Evicted regions not yet unmapped.
    unmapping: Room,
    /// Bumped whenever a pending window or an unmapping finishes; a miss
    /// that waits, waits for it to change.
    generation: u64,
    /// The next file entry's serial number.
    serial: u64,
    /// How often each window was asked for lately (the adaptive policy's
    /// proof of heat).
    heat: Heat,
    /// Files with a cached descriptor, and which closes first.
    descs: DescRing,
    stats: Stats,
}

/// What a cursor asks for on a miss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    /// A mapped region (the cursor API).
    Map,
    /// `len` bytes from the offset, to be copied: a mapped region when the
    /// policy maps it, or else a descriptor to `pread` them through.
    Bytes(u64),
}

/// What the first half of the miss path found.
pub(super) enum Obtain {
    /// A mapped region holds the offset; one more client is counted on it.
    Found(MapRegion),
    /// A window to map without the lock; its room is reserved and its slot
    /// is pending.
    Map(Reservation),
    /// The offset is in a window another thread is mapping, or the room
    /// needed is held by other threads' pending or unmapping windows: wait
    /// until the generation is no longer this one, then ask again.
    Wait(u64),
    /// Regions were evicted to make room: unmap them, then ask again.
    Unmap,
    /// The file's descriptor is needed: open the file, then ask again.
    Open,
    /// Copy `len` bytes from the offset through `desc` (`pread`); the
    /// cursor's previous region is kept.
    Copy { desc: Arc<File>, len: u64 },
}

/// A window being mapped without the lock.
pub(super) struct Reservation {
    pub(super) idx: usize,
    pub(super) window: MapWindow,
    pub(super) cost: u64,
    pub(super) desc: Arc<File>,
}

/// What the second half of the miss path concluded.
pub(super) enum Finish {
    /// The region holding the offset, with one more client counted on it.
    Done(MapRegion),
    /// The mapping was refused for lack of memory; every unused region was
    /// evicted: map once more.
    Retry,
}

impl State {
    /// An empty state for a manager with these limits: window counts that
    /// halve every 16 handles' worth of asks at least (16 × 16 to 16 × 4096;
    /// more when more windows are read, see [`Heat`]).
    pub(super) fn new(limits: &Limits) -> Self {
        State {
            heat: Heat::new(16 * limits.max_open_handles.clamp(16, 4096)),
            window_cap: limits.window_cap(),
            ..State::default()
        }
    }

    /// The slab index of the file `key` names, counting one more cursor on
    /// it, if the manager knows it.
    pub(super) fn attach_known(&mut self, key: &FileKey) -> Option<(usize, Arc<PinnedFile>)> {
        let idx = *self.index.get(key)?;
        let list = self.file_mut(idx);
        list.cursors += 1;
        Some((idx, list.file().clone()))
    }

    /// Registers a file the caller pinned, or counts a cursor on the entry
    /// another thread registered meanwhile.
    pub(super) fn attach(&mut self, file: PinnedFile) -> (usize, Arc<PinnedFile>) {
        let key = file.key();
        if let Some(found) = self.attach_known(&key) {
            return found;
        }
        let file = Arc::new(file);
        self.serial += 1;
        let mut list = MapRegionList::new(file.clone(), self.serial);
        list.cursors = 1;
        let idx = match self.free.pop() {
            Some(i) => {
                self.files[i] = Some(list);
                i
            }
            None => {
                self.files.push(Some(list));
                self.files.len() - 1
            }
        };
        self.index.insert(key, idx);
        (idx, file)
    }

    /// One cursor fewer on the file; forgets the file when nothing uses it.
    pub(super) fn detach(&mut self, idx: usize) {
        self.file_mut(idx).cursors -= 1;
        self.forget_if_idle(idx);
    }

    /// One more cursor on the file (a cloned cursor).
    pub(super) fn add_cursor(&mut self, idx: usize) {
        self.file_mut(idx).cursors += 1;
    }

    pub(super) fn add_hits(&mut self, hits: u64) {
        self.stats.hits += hits;
    }

    pub(super) fn count_miss(&mut self) {
        self.stats.misses += 1;
    }

    /// The key of the window of file `idx` holding `offset`, for [`Heat`].
    fn heat_key(&self, idx: usize, offset: u64) -> (u64, u64) {
        (self.file(idx).serial, offset / self.window_cap.max(1))
    }

    /// Counts one ask for the window of file `idx` holding `offset` (once
    /// per miss, however many times the miss path asks again).
    pub(super) fn count_ask(&mut self, idx: usize, offset: u64) {
        let key = self.heat_key(idx, offset);
        self.heat.ask(key);
    }

    pub(super) fn count_wait(&mut self) {
        self.stats.waits += 1;
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    fn forget_if_idle(&mut self, idx: usize) {
        let list = self.file(idx);
        if list.cursors == 0 && list.is_empty() {
            let key = list.file().key();
            if let Some((_, at)) = list.desc {
                self.close_desc(at);
            }
            self.files[idx] = None;
            self.index.remove(&key);
            self.free.push(idx);
        }
    }

    fn file_mut(&mut self, idx: usize) -> &mut MapRegionList {
        self.files[idx]
            .as_mut()
            .expect("a cursor's file stays registered while it lives")
    }

    fn file(&self, idx: usize) -> &MapRegionList {
        self.files[idx]
            .as_ref()
            .expect("a cursor's file stays registered while it lives")
    }

    /// A cursor stops using `region` of file `idx`. If the manager is over
    /// its memory limit (possible only while every region was in use), the
    /// now unused regions are evicted until it is not.
    ///
    /// The cursor's handle is taken by value and dropped here, under the
    /// lock: were it dropped after, another thread could evict the region
    /// and count it unmapped while this handle still kept it mapped.
    pub(super) fn release(
        &mut self,
        limits: &Limits,
        idx: usize,
        region: MapRegion,
        released: &mut Released,
    ) {
        let claims = region.claims();
        if claims.release() != 1 {
            return;
        }
        let start = region.ofs_begin();
        let list = self.files[idx]
            .as_mut()
            .expect("a cursor's file stays registered while it lives");
        if let Some(Slot::Mapped { region: r, lru }) = list.slot_mut(start) {
            if r.same_mapping(&region) {
                match *lru {
                    Some(entry) => self.lru.move_to_back(entry),
                    None => {
                        *lru = Some(self.lru.push(idx, start));
                        claims.list();
                    }
                }
            }
        }
        drop(region);
        self.evict_over(limits, released);
    }

    /// True if the manager is over its memory limit (possible only while
    /// every region was in use).
    pub(super) fn is_over(&self, limits: &Limits) -> bool {
        self.mapped.bytes + self.pending.bytes > limits.max_memory_size
    }

    /// Evicts unused regions while the manager is over its memory limit.
    pub(super) fn evict_over(&mut self, limits: &Limits, released: &mut Released) {
        let n = self.evict_while(released, false, |st, _| st.is_over(limits));
        self.stats.evictions += n as u64;
    }

    /// File `idx`'s cached descriptor, marked used.
    fn touch_desc(&mut self, idx: usize) -> Option<Arc<File>> {
        let (desc, at) = self.files[idx].as_ref()?.desc.as_ref()?;
        self.descs.touch(*at);
        Some(desc.clone())
    }

    /// Closes the cached descriptor at position `at` of the ring (once the
    /// threads reading through it are done with it).
    fn close_desc(&mut self, at: usize) {
        let idx = self.descs.file(at);
        self.file_mut(idx).desc = None;
        if let Some(moved) = self.descs.remove(at) {
            if let Some((_, pos)) = &mut self.file_mut(moved).desc {
                *pos = at;
            }
        }
    }

    /// Caches `desc` as file `idx`'s descriptor (unless another thread did
    /// meanwhile), closing the least recently used ones beyond the limit.
    /// (A descriptor a thread is reading or mapping through is closed when
    /// it is done.)
    pub(super) fn install_desc(&mut self, limits: &Limits, idx: usize, desc: File) {
        if self.file(idx).desc.is_some() {
            return;
        }
        self.stats.fd_opens += 1;
        let at = self.descs.push(idx);
        self.file_mut(idx).desc = Some((Arc::new(desc), at));
        while self.descs.len() > limits.max_open_files {
            let Some(at) = self.descs.victim() else {
                break;
            };
            self.close_desc(at);
        }
    }

    /// Closes every cached descriptor (the descriptor table is full);
    /// returns how many.
    pub(super) fn close_descs(&mut self) -> usize {
        let n = self.descs.len();
        for idx in self.descs.drain() {
            if let Some(list) = self.files[idx].as_mut() {
                list.desc = None;
            }
        }
        n
    }

    /// Releases the cursor's previous region, if it still has one.
    pub(super) fn release_previous(
        &mut self,
        limits: &Limits,
        idx: usize,
        previous: &mut Option<MapRegion>,
        released: &mut Released,
    ) {
        if let Some(region) = previous.take() {
            self.release(limits, idx, region, released);
        }
    }

    /// A cursor starts using `region` of file `idx`, which the manager tracks.
    /// It stays in the LRU list, if it is there: the evictor passes over
    /// regions in use.
    pub(super) fn acquire(&mut self, region: &MapRegion) {
        region.claims().acquire();
    }

    /// A copy read of `len` bytes through `desc`, counted.
    fn copy(&mut self, desc: Arc<File>, len: u64) -> Obtain {
        self.stats.preads += 1;
        self.stats.pread_bytes += len;
        Obtain::Copy { desc, len }
    }

    /// The room committed: tracked, pending and unmapping.
    fn committed(&self) -> Room {
        let mut room = self.mapped;
        room.add(self.pending.handles, self.pending.bytes);
        room.add(self.unmapping.handles, self.unmapping.bytes);
        room
    }

    /// True if room will be given back or put to use soon: windows being
    /// mapped or unmapped.
    fn in_flight(&self) -> bool {
        self.pending.handles + self.unmapping.handles > 0
    }

    /// The first half of the miss path: the region of file `idx` holding
    /// `offset` if one is mapped (with one more client counted on it); or
    /// else the window to map for it, with room made within the limits and
    /// reserved so that no other thread takes it while it is mapped without
    /// the lock; or a wait, when the offset or the room is another thread's
    /// for now. `want` is the number of bytes the cursor would like from
    /// `offset` (clamped to the window size, >= 1).
    ///
    /// The cursor's `previous` region is released (taken) once its next one
    /// is certain: found, waited for, or about to be mapped through the
    /// file's descriptor, which is asked for ([`Obtain::Open`]) before
    /// anything is released, so that a file that cannot be opened leaves the
    /// cursor with the region it had. A copy keeps it too.
    ///
    /// With [`Want::Bytes`] and the adaptive policy, a window that would
    /// have to evict to be mapped is not, unless it has proved hotter than
    /// the least recently used window it would evict ([`Heat::admits`]): the
    /// bytes are copied ([`Obtain::Copy`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn begin_obtain(
        &mut self,
        limits: &Limits,
        idx: usize,
        offset: u64,
        want_size: u64,
        previous: &mut Option<MapRegion>,
        want: Want,
        admitted: &mut bool,
        released: &mut Released,
    ) -> Result<Obtain> {
        match self.file(idx).slot_at(offset) {
            Some((_, Slot::Mapped { region, .. })) => {
                let region = region.clone();
                self.acquire(&region);
                self.release_previous(limits, idx, previous, released);
                self.stats.reuses += 1;
                return Ok(Obtain::Found(region));
            }
            Some((_, Slot::Pending { .. })) => {
                if want == Want::Map {
                    self.release_previous(limits, idx, previous, released);
                }
                return Ok(Obtain::Wait(self.generation));
            }
            None => {}
        }
        let window = self.place(limits, idx, offset, want_size);
        let cost = page_cost(window.size);
        let room = {
            let c = self.committed();
            c.handles < limits.max_open_handles
                && c.bytes.saturating_add(cost) <= limits.max_memory_size
        };
        let Some(desc) = self.touch_desc(idx) else {
            return Ok(Obtain::Open);
        };
        let copies = match want {
            Want::Bytes(len) if limits.policy == ReadPolicy::Adaptive => Some(len),
            _ => None,
        };
        if let (Some(len), false) = (copies, room) {
            // Map only a window hotter than one that can be evicted now.
            let asked = self.heat.count(self.heat_key(idx, offset));
            if self.victim_heat().is_some_and(|v| Heat::admits(asked, v)) {
                *admitted = true;
            } else {
                return Ok(self.copy(desc, len));
            }
        }
        self.release_previous(limits, idx, previous, released);
        // What this thread evicts is unmapped before it asks again.
        let short = |st: &State, rel: &Released| {
            let mut c = st.committed();
            c.sub(rel.room);
            c.handles >= limits.max_open_handles
                || c.bytes.saturating_add(cost) > limits.max_memory_size
        };
        let n = self.evict_while(released, false, short);
        self.stats.evictions += n as u64;
        if !released.regions.is_empty() {
            return Ok(Obtain::Unmap);
        }
        let committed = self.committed();
        let no_handle = committed.handles >= limits.max_open_handles;
        let no_memory = committed.bytes.saturating_add(cost) > limits.max_memory_size;
        if (no_handle || no_memory) && self.in_flight() {
            return Ok(Obtain::Wait(self.generation));
        }
        if let (Some(len), true) = (copies, no_handle || no_memory) {
            // Every region left is in use: a copy read copies rather than
            // fail for lack of a handle or map past the memory limit.
            return Ok(self.copy(desc, len));
        }
        if no_handle {
            return Err(Error::HandleLimit {
                file: self.file(idx).file().given().clone(),
                offset,
                limit: limits.max_open_handles,
            });
        }
        // Short of memory with every region in use: the limit may be
        // exceeded (and the excess is evicted as soon as one is released).
        self.file_mut(idx)
            .insert_pending(window.ofs, window.ofs_end());
        self.pending.add(1, cost);
        Ok(Obtain::Map(Reservation {
            idx,
            window,
            cost,
            desc,
        }))
    }

    /// The second half of the miss path, after the reserved window was
    /// mapped (or not) without the lock: the pending slot becomes the region,
    /// or goes. A refusal for lack of memory (`ENOMEM`, which is also how
    /// Linux says the map count is used up) evicts every unused region and
    /// asks the caller to try once more.
    pub(super) fn finish_obtain(
        &mut self,
        limits: &Limits,
        reservation: &Reservation,
        mapped: Result<MapRegion>,
        retried: bool,
        admitted: bool,
        released: &mut Released,
    ) -> Result<Finish> {
        let idx = reservation.idx;
        self.pending.sub(Room {
            handles: 1,
            bytes: reservation.cost,
        });
        self.generation += 1;
        let region = match mapped {
            Ok(region) => region,
            Err(e) => {
                self.file_mut(idx).remove(reservation.window.ofs);
                self.stats.map_failures += 1;
                if e.is_exhaustion() && !retried {
                    self.stats.retries += 1;
                    self.stats.evictions += self.evict_while(released, true, |_, _| true) as u64;
                    return Ok(Finish::Retry);
                }
                return Err(e);
            }
        };
        debug_assert_eq!(region.cost(), reservation.cost);
        // The manager's client is the one the region was created with; the
        // cursor is the second.
        region.claims().acquire();
        self.file_mut(idx).complete(region.clone());
        self.mapped.add(1, region.cost());
        self.memory += region.size() as u64;
        self.stats.maps += 1;
        self.stats.ghost_hits += u64::from(admitted);
        self.note_peaks(limits);
        Ok(Finish::Done(region))
    }

    /// Evicted regions of `room` are unmapped: their room is free.
    pub(super) fn unmapped(&mut self, room: Room) {
        if room != Room::default() {
            self.unmapping.sub(room);
            self.generation += 1;
        }
    }

    /// Where the new region for `offset` goes: from `offset`, grown towards
    /// the neighbouring slots up to the window size, aligned, and clipped to
    /// the next slot or the file's end.
    fn place(&self, limits: &Limits, idx: usize, offset: u64, want: u64) -> MapWindow {
        let list = self.file(idx);
        if limits.kind == Kind::Static {
            return MapWindow::new(0, list.file_size());
        }
        let cap = limits.window_cap();
        let (left, right) = list.neighbours(offset);
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

    /// Evicts least-recently-used unused regions while `more` holds and there
    /// are any; returns how many it evicted (the caller counts them as
    /// evictions or as collected). Their room moves to `unmapping` until the
    /// caller has unmapped them.
    ///
    /// The list holds regions in use too (cursors take released regions
    /// back without the lock), and regions taken back since the last pass
    /// get a second chance (CLOCK): both go to the back, their hits counted
    /// as asks in their heat. Each region is passed over at most twice per
    /// call. `force` evicts unused regions whatever their hits.
    fn evict_while(
        &mut self,
        released: &mut Released,
        force: bool,
        mut more: impl FnMut(&State, &Released) -> bool,
    ) -> usize {
        let mut n = 0;
        let mut turns = 2 * self.lru.len();
        while more(self, released) {
            let Some((entry, idx, start)) = self.hand(&mut turns, |c| match c.try_evict(force) {
                Eviction::Done => None,
                Eviction::Spared { hits } => Some(hits),
            }) else {
                break;
            };
            self.lru.remove(entry);
            let region = self
                .file_mut(idx)
                .remove(start)
                .expect("LRU entries name mapped regions");
            let room = Room {
                handles: 1,
                bytes: region.cost(),
            };
            self.mapped.sub(room);
            self.memory -= region.size() as u64;
            self.unmapping.add(room.handles, room.bytes);
            released.room.add(room.handles, room.bytes);
            released.regions.push(region);
            self.forget_if_idle(idx);
            n += 1;
        }
        n
    }

    /// CLOCK's hand over the LRU list: the first entry `take` accepts
    /// (`None`; for eviction, `take` has evicted it). The entries it spares
    /// (`Some(hits)`: in use, or taken back `hits` times since the last
    /// pass) go to the back, their hits counted as asks in their heat, at
    /// most `turns` times in all. `None` if the list is empty or the turns
    /// ran out.
    fn hand(
        &mut self,
        turns: &mut usize,
        take: impl Fn(&Claims) -> Option<u64>,
    ) -> Option<(Entry, usize, u64)> {
        loop {
            let (entry, idx, start) = self.lru.front()?;
            let region = match self.file(idx).slot_at(start) {
                Some((_, Slot::Mapped { region, .. })) => region,
                _ => unreachable!("LRU entries name mapped regions"),
            };
            let Some(hits) = take(region.claims()) else {
                return Some((entry, idx, start));
            };
            if *turns == 0 {
                return None;
            }
            *turns -= 1;
            let key = self.heat_key(idx, start);
            self.heat.add(key, hits);
            self.lru.move_to_back(entry);
        }
    }

    /// The heat of the region the next eviction would take: the first in
    /// the LRU list that is unused and was not taken back since the last
    /// pass; those before it go to the back, as [`evict_while`] would move
    /// them. `None` if no region can be evicted now (every listed one is in
    /// use, or the list is empty).
    ///
    /// [`evict_while`]: Self::evict_while
    fn victim_heat(&mut self) -> Option<u32> {
        let mut turns = 2 * self.lru.len();
        let (_, idx, start) = self.hand(&mut turns, Claims::sweep)?;
        Some(self.heat.count(self.heat_key(idx, start)))
    }

    /// Evicts least-recently-used unused regions until `size` more bytes fit
    /// under `max_memory` (every unused region when `size` is 0); returns
    /// how many.
    pub(super) fn collect_lru(
        &mut self,
        size: u64,
        max_memory: u64,
        released: &mut Released,
    ) -> usize {
        let n = self.evict_while(released, size == 0, |st, _| {
            size == 0
                || (st.mapped.bytes + st.pending.bytes).saturating_add(page_cost(size)) > max_memory
        });
        self.stats.collected += n as u64;
        n
    }

    fn note_peaks(&mut self, limits: &Limits) {
        let s = &mut self.stats;
        s.peak_mapped_bytes = s.peak_mapped_bytes.max(self.memory);
        s.peak_windows = s.peak_windows.max(self.mapped.handles);
        let over = self.mapped.bytes.saturating_sub(limits.max_memory_size);
        s.peak_over_limit_bytes = s.peak_over_limit_bytes.max(over);
    }

    pub(super) fn memory(&self) -> u64 {
        self.memory
    }

    pub(super) fn handles(&self) -> usize {
        self.mapped.handles
    }

    pub(super) fn open_files(&self) -> usize {
        self.files
            .iter()
            .flatten()
            .filter(|l| l.mapped() > 0)
            .count()
    }

    pub(super) fn stats(&self, limits: &Limits) -> Stats {
        Stats {
            open_files: self.open_files(),
            known_files: self.index.len(),
            mapped_bytes: self.memory,
            charged_bytes: self.mapped.bytes,
            windows: self.mapped.handles,
            open_descriptors: self.descs.len(),
            ghosts: self.heat.len(),
            over_limit_bytes: self.mapped.bytes.saturating_sub(limits.max_memory_size),
            ..self.stats
        }
    }

    /// Checks every invariant the algorithm maintains; the first broken one
    /// is described in the error.
    pub(super) fn verify(&self, limits: &Limits) -> std::result::Result<(), String> {
        let g = *crate::ALLOCATIONGRANULARITY;
        let (mut mapped, mut pending, mut memory, mut unused, mut in_list) =
            (Room::default(), Room::default(), 0u64, 0usize, 0usize);
        for (idx, list) in self.files.iter().enumerate() {
            let Some(list) = list else { continue };
            let name = list.file().given();
            if self.index.get(&list.file().key()) != Some(&idx) {
                return Err(format!("{name} is not indexed at {idx}"));
            }
            if list.cursors == 0 && list.is_empty() {
                return Err(format!("{name} is idle but still registered"));
            }
            let (mut prev_end, mut regions) = (0, 0);
            for (&start, slot) in list.slots() {
                let (end, what) = match slot {
                    Slot::Mapped { region, .. } => {
                        (region.ofs_end(), format!("{region:?} of {name}"))
                    }
                    Slot::Pending { end } => (*end, format!("pending [{start}, {end}) of {name}")),
                };
                if start % g != 0 || start < prev_end || end <= start {
                    return Err(format!("{what} is unaligned, empty or overlaps"));
                }
                if end > list.file_size() {
                    return Err(format!("{what} passes the file end {}", list.file_size()));
                }
                // Aligning both ends may add up to a granule on each side.
                let most = crate::align_to_mmap(limits.window_cap(), true).saturating_add(g);
                if limits.kind == Kind::Sliding && end - start > most {
                    return Err(format!("{what} is larger than the window size"));
                }
                prev_end = end;
                let Slot::Mapped { region: r, lru } = slot else {
                    pending.add(1, page_cost(end - start));
                    continue;
                };
                if start != r.ofs_begin() {
                    return Err(format!("{what} is keyed at {start}"));
                }
                let listed = r.claims().is_listed();
                match (r.client_count(), lru) {
                    (0, _) => return Err(format!("{what} is tracked with no client")),
                    (n, &Some(entry)) if self.lru.get(entry) == Some((idx, start)) && listed => {
                        in_list += 1;
                        unused += usize::from(n == 1);
                    }
                    (_, Some(_)) => return Err(format!("{what} is in the LRU list unmarked")),
                    (1, None) => return Err(format!("{what} is unused but not in the LRU list")),
                    (_, None) if listed => {
                        return Err(format!("{what} is marked listed, but is not"))
                    }
                    _ => {}
                }
                regions += 1;
                mapped.add(1, r.cost());
                memory += r.size() as u64;
            }
            if regions != list.mapped() {
                return Err(format!(
                    "{name} counts {} regions, has {regions}",
                    list.mapped()
                ));
            }
        }
        let cached = self
            .files
            .iter()
            .flatten()
            .filter(|l| l.desc.is_some())
            .count();
        if cached != self.descs.len() || cached > limits.max_open_files.max(1) {
            return Err(format!(
                "{cached} cached descriptors, {} in the ring, limit {}",
                self.descs.len(),
                limits.max_open_files
            ));
        }
        for (at, idx) in self.descs.files().enumerate() {
            let here = self.files.get(idx).and_then(Option::as_ref);
            if here.and_then(|l| l.desc.as_ref()).map(|d| d.1) != Some(at) {
                return Err(format!(
                    "descriptor ring position {at} names file {idx}, which is not there"
                ));
            }
        }
        if in_list != self.lru.len() {
            return Err(format!(
                "{} LRU entries for {in_list} listed regions",
                self.lru.len()
            ));
        }
        if (mapped, memory) != (self.mapped, self.memory) {
            return Err(format!(
                "accounting says {:?} ({} bytes), the regions add up to {mapped:?} ({memory} bytes)",
                self.mapped, self.memory
            ));
        }
        if pending != self.pending {
            return Err(format!(
                "reservations say {:?}, the pending slots add up to {pending:?}",
                self.pending
            ));
        }
        let committed = self.committed();
        if committed.handles > limits.max_open_handles {
            return Err(format!(
                "{committed:?} (mapped, pending and unmapping) exceed max_open_handles {}",
                limits.max_open_handles
            ));
        }
        if self.mapped.bytes + self.pending.bytes > limits.max_memory_size && unused > 0 {
            return Err(format!(
                "{} bytes exceed the limit while {unused} regions are unused",
                self.mapped.bytes + self.pending.bytes
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
