//! The manager's shared state and the core algorithm: finding, placing and
//! evicting regions. Everything here runs under the manager's lock.
//!
//! Data structures, and why:
//! - files live in a slab indexed by a small integer that a cursor keeps, so
//!   a miss finds its file without hashing the path; the index is stable
//!   while the file has a cursor or a region;
//! - each file's regions are in a `BTreeMap` by offset (ordered lookup and
//!   neighbours in `O(log n)`);
//! - unused regions (client count 1) are in a `BTreeMap` keyed by a
//!   monotonically increasing stamp taken when they became unused: the first
//!   entry is the true least-recently-used one, found and removed in
//!   `O(log n)` without scanning all regions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::region::MapRegion;
use crate::region_list::MapRegionList;
use crate::source::PathOrFd;
use crate::stats::Stats;
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

/// How the manager tells files apart. A path is its own key. A descriptor
/// number is reused by the operating system once closed, so a descriptor is
/// keyed with the device and inode it referred to: a new file behind a
/// recycled number is a new entry, never the old file's regions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FileKey {
    pub(crate) source: PathOrFd,
    pub(crate) identity: Option<(u64, u64)>,
}

/// The state behind the manager's lock.
#[derive(Default)]
pub(crate) struct State {
    index: HashMap<FileKey, usize>,
    files: Vec<Option<MapRegionList>>,
    free: Vec<usize>,
    lru: BTreeMap<u64, (usize, u64)>,
    clock: u64,
    memory: u64,
    handles: usize,
    /// Bytes and handles of windows being mapped without the lock.
    reserved_memory: u64,
    reserved_handles: usize,
    stats: Stats,
}

/// What the first half of the miss path found.
pub(crate) enum Obtain {
    /// A mapped region holds the offset; one more client is counted on it.
    Found(MapRegion),
    /// A window to map without the lock; its room is reserved.
    Map(Reservation),
}

/// A window being mapped without the lock.
pub(crate) struct Reservation {
    idx: usize,
    offset: u64,
    pub(crate) window: MapWindow,
    pub(crate) source: Arc<PathOrFd>,
    pub(crate) file_size: u64,
}

impl Reservation {
    /// Maps the window (the part of the miss path done without the lock).
    pub(crate) fn map(&self) -> Result<MapRegion> {
        MapRegion::map(
            &self.source,
            self.window.ofs,
            self.window.size,
            self.file_size,
        )
    }
}

/// What the second half of the miss path concluded.
pub(crate) enum Finish {
    /// The region holding the offset, with one more client counted on it.
    Done(MapRegion),
    /// The mapping was refused for lack of a resource; every unused region
    /// was unmapped: map once more.
    Retry,
    /// Another thread's region took part of the window: start again.
    Again,
}

/// Regions removed from the manager, to be dropped (unmapped) after the lock
/// is released.
pub(crate) type Released = Vec<MapRegion>;

impl State {
    /// The slab index and size of an already known file, counting one more
    /// cursor on it.
    pub(crate) fn attach_known(&mut self, key: &FileKey) -> Option<(usize, u64, Arc<PathOrFd>)> {
        let idx = *self.index.get(key)?;
        let list = self.file_mut(idx);
        list.cursors += 1;
        Some((idx, list.file_size(), list.source().clone()))
    }

    /// Registers a file whose size the caller read, or counts a cursor on it
    /// if another thread registered it meanwhile.
    pub(crate) fn attach(&mut self, key: FileKey, size: u64) -> (usize, u64, Arc<PathOrFd>) {
        if let Some(found) = self.attach_known(&key) {
            return found;
        }
        let source = Arc::new(key.source.clone());
        let mut list = MapRegionList::with_size(source.clone(), size);
        list.identity = key.identity;
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
        (idx, size, source)
    }

    /// One cursor fewer on the file; forgets the file when nothing uses it.
    pub(crate) fn detach(&mut self, idx: usize) {
        let list = self.file_mut(idx);
        list.cursors -= 1;
        self.forget_if_idle(idx);
    }

    /// One more cursor on the file (a cloned cursor).
    pub(crate) fn add_cursor(&mut self, idx: usize) {
        self.file_mut(idx).cursors += 1;
    }

    pub(crate) fn add_hits(&mut self, hits: u64) {
        self.stats.hits += hits;
    }

    fn forget_if_idle(&mut self, idx: usize) {
        let list = self.files[idx].as_ref().expect("live file index");
        if list.cursors == 0 && list.is_empty() {
            let list = self.files[idx].take().expect("live file index");
            self.index.remove(&list.key());
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
    pub(crate) fn release(
        &mut self,
        limits: &Limits,
        idx: usize,
        region: &MapRegion,
        released: &mut Released,
    ) {
        if region.add_clients(-1) == 1 {
            self.clock += 1;
            let stamp = self.clock;
            let start = region.ofs_begin();
            if let Some(slot) = self.file_mut(idx).slot_mut(start) {
                slot.lru = Some(stamp);
                self.lru.insert(stamp, (idx, start));
            }
            if self.committed_memory() > limits.max_memory_size {
                let n = self.evict_while(released, |st| {
                    st.committed_memory() > limits.max_memory_size
                });
                self.stats.evictions += n as u64;
            }
        }
    }

    /// A cursor starts using `region` of file `idx`, which the manager tracks.
    pub(crate) fn acquire(&mut self, idx: usize, region: &MapRegion) {
        if region.add_clients(1) == 2 {
            if let Some(slot) = self.file_mut(idx).slot_mut(region.ofs_begin()) {
                if let Some(stamp) = slot.lru.take() {
                    self.lru.remove(&stamp);
                }
            }
        }
    }

    /// The first half of the miss path: the region of file `idx` holding
    /// `offset` if one is mapped (with one more client counted on it), or
    /// else the window to map for it, with room made within the limits and
    /// its bytes and handle reserved so that no other thread takes them while
    /// it is mapped without the lock. `want` is the number of bytes the
    /// cursor would like from `offset` (clamped to the window size, >= 1).
    pub(crate) fn begin_obtain(
        &mut self,
        limits: &Limits,
        idx: usize,
        offset: u64,
        want: u64,
        released: &mut Released,
    ) -> Result<Obtain> {
        if let Some((_, slot)) = self.file(idx).slot_at(offset) {
            let region = slot.region.clone();
            self.acquire(idx, &region);
            self.stats.reuses += 1;
            return Ok(Obtain::Found(region));
        }
        let window = self.place(limits, idx, offset, want);
        let n = self.evict_while(released, |st| {
            st.committed_memory().saturating_add(window.size) > limits.max_memory_size
                || st.committed_handles() >= limits.max_open_handles
        });
        self.stats.evictions += n as u64;
        let list = self.file(idx);
        if self.committed_handles() >= limits.max_open_handles {
            return Err(Error::HandleLimit {
                file: list.path_or_fd().clone(),
                offset,
                limit: limits.max_open_handles,
            });
        }
        let reservation = Reservation {
            idx,
            offset,
            window,
            source: list.source().clone(),
            file_size: list.file_size(),
        };
        self.reserved_memory += window.size;
        self.reserved_handles += 1;
        Ok(Obtain::Map(reservation))
    }

    /// The second half of the miss path, after `mapped` was mapped without
    /// the lock: gives the reservation back and inserts the region, unless
    /// another thread mapped an overlapping one meanwhile (then that one is
    /// used, or the caller starts again). A refusal for lack of a resource
    /// unmaps every unused region and asks the caller to try once more.
    pub(crate) fn finish_obtain(
        &mut self,
        limits: &Limits,
        reservation: &Reservation,
        mapped: Result<MapRegion>,
        retried: bool,
        released: &mut Released,
    ) -> Result<Finish> {
        let (idx, offset) = (reservation.idx, reservation.offset);
        self.reserved_memory -= reservation.window.size;
        self.reserved_handles -= 1;
        let region = match mapped {
            Ok(region) => region,
            Err(e) if e.is_exhaustion() && !retried => {
                self.stats.map_failures += 1;
                self.stats.retries += 1;
                self.stats.evictions += self.evict_while(released, |_| true) as u64;
                return Ok(Finish::Retry);
            }
            Err(e) => {
                self.stats.map_failures += 1;
                return Err(e);
            }
        };
        if self
            .file(idx)
            .overlaps(region.ofs_begin(), region.ofs_end())
        {
            // Another thread placed a region here while we mapped.
            self.stats.discarded += 1;
            released.push(region);
            return Ok(match self.file(idx).slot_at(offset) {
                Some((_, slot)) => {
                    let region = slot.region.clone();
                    self.acquire(idx, &region);
                    self.stats.reuses += 1;
                    Finish::Done(region)
                }
                None => Finish::Again,
            });
        }
        // The manager's client is the one the region was created with; the
        // cursor is the second.
        region.add_clients(1);
        self.file_mut(idx).insert(region.clone());
        self.handles += 1;
        self.memory += region.size() as u64;
        self.stats.maps += 1;
        self.note_peaks(limits);
        Ok(Finish::Done(region))
    }

    pub(crate) fn count_miss(&mut self) {
        self.stats.misses += 1;
    }

    fn committed_memory(&self) -> u64 {
        self.memory + self.reserved_memory
    }

    fn committed_handles(&self) -> usize {
        self.handles + self.reserved_handles
    }

    /// Where the new region for `offset` goes: from `offset`, grown towards
    /// the neighbouring regions up to the window size, aligned, and clipped
    /// to the next region or the file's end.
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
    /// evictions or as collected).
    fn evict_while(
        &mut self,
        released: &mut Released,
        mut more: impl FnMut(&State) -> bool,
    ) -> usize {
        let mut n = 0;
        while more(self) {
            let Some((_, (idx, start))) = self.lru.pop_first() else {
                break;
            };
            let slot = self
                .file_mut(idx)
                .remove(start)
                .expect("LRU entries name tracked regions");
            debug_assert_eq!(slot.region.client_count(), 1);
            slot.region.add_clients(-1);
            self.memory -= slot.region.size() as u64;
            self.handles -= 1;
            released.push(slot.region);
            self.forget_if_idle(idx);
            n += 1;
        }
        n
    }

    /// Unmaps every unused region; returns how many.
    pub(crate) fn collect(&mut self, released: &mut Released) -> usize {
        self.collect_lru(0, u64::MAX, released)
    }

    /// Unmaps least-recently-used unused regions until `size` more bytes fit
    /// under `max_memory` (all unused regions when `size` is 0).
    pub(crate) fn collect_lru(
        &mut self,
        size: u64,
        max_memory: u64,
        released: &mut Released,
    ) -> usize {
        let n = self.evict_while(released, |st| {
            size == 0 || st.committed_memory().saturating_add(size) > max_memory
        });
        self.stats.collected += n as u64;
        n
    }

    fn note_peaks(&mut self, limits: &Limits) {
        let s = &mut self.stats;
        s.peak_mapped_bytes = s.peak_mapped_bytes.max(self.memory);
        s.peak_windows = s.peak_windows.max(self.handles);
        let over = self.memory.saturating_sub(limits.max_memory_size);
        s.peak_over_limit_bytes = s.peak_over_limit_bytes.max(over);
    }

    pub(crate) fn memory(&self) -> u64 {
        self.memory
    }

    pub(crate) fn handles(&self) -> usize {
        self.handles
    }

    pub(crate) fn open_files(&self) -> usize {
        self.files
            .iter()
            .flatten()
            .filter(|l| !l.is_empty())
            .count()
    }

    pub(crate) fn stats(&self, limits: &Limits) -> Stats {
        Stats {
            open_files: self.open_files(),
            known_files: self.index.len(),
            mapped_bytes: self.memory,
            windows: self.handles,
            over_limit_bytes: self.memory.saturating_sub(limits.max_memory_size),
            ..self.stats
        }
    }

    /// Checks every invariant the algorithm maintains; the first broken one
    /// is described in the error.
    pub(crate) fn verify(&self, limits: &Limits) -> std::result::Result<(), String> {
        let g = *crate::ALLOCATIONGRANULARITY;
        let (mut memory, mut handles, mut unused) = (0u64, 0usize, 0usize);
        for (idx, list) in self.files.iter().enumerate() {
            let Some(list) = list else { continue };
            if self.index.get(&list.key()) != Some(&idx) {
                return Err(format!("{} is not indexed at {idx}", list.path_or_fd()));
            }
            if list.cursors == 0 && list.is_empty() {
                return Err(format!(
                    "{} is idle but still registered",
                    list.path_or_fd()
                ));
            }
            let mut prev_end = 0;
            for (&start, slot) in list.slots() {
                let r = &slot.region;
                let what = format!("{r:?} of {}", list.path_or_fd());
                if start != r.ofs_begin() || start % g != 0 {
                    return Err(format!("{what} is keyed at {start} or unaligned"));
                }
                if start < prev_end {
                    return Err(format!("{what} overlaps the region before it"));
                }
                if r.ofs_end() > list.file_size() || r.size() == 0 {
                    return Err(format!("{what} passes the file end {}", list.file_size()));
                }
                // Aligning both ends may add up to a granule on each side.
                let most = crate::align_to_mmap(limits.window_cap(), true).saturating_add(g);
                if limits.kind == Kind::Sliding && r.size() as u64 > most {
                    return Err(format!("{what} is larger than the window size"));
                }
                let clients = r.client_count();
                match (clients, slot.lru) {
                    (0, _) => return Err(format!("{what} is tracked with no client")),
                    (1, Some(stamp)) if self.lru.get(&stamp) == Some(&(idx, start)) => unused += 1,
                    (1, _) => return Err(format!("{what} is unused but not in the LRU list")),
                    (_, Some(_)) => return Err(format!("{what} is used but in the LRU list")),
                    _ => {}
                }
                prev_end = r.ofs_end();
                memory += r.size() as u64;
                handles += 1;
            }
        }
        if unused != self.lru.len() {
            return Err(format!(
                "{} LRU entries for {unused} unused regions",
                self.lru.len()
            ));
        }
        if (memory, handles) != (self.memory, self.handles) {
            return Err(format!(
                "accounting says {} bytes in {} regions, the regions add up to {memory} in {handles}",
                self.memory, self.handles
            ));
        }
        if handles + self.reserved_handles > limits.max_open_handles {
            return Err(format!(
                "{handles} regions exceed max_open_handles {}",
                limits.max_open_handles
            ));
        }
        if memory > limits.max_memory_size && unused > 0 {
            return Err(format!(
                "{memory} bytes exceed the limit while {unused} regions are unused"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ALLOCATIONGRANULARITY;

    fn g() -> u64 {
        *ALLOCATIONGRANULARITY
    }

    fn setup(pages: u64) -> (tempfile::TempDir, State, usize) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; (pages * g()) as usize]).unwrap();
        let mut st = State::default();
        let key = FileKey {
            source: PathOrFd::from(path.as_path()),
            identity: None,
        };
        let (idx, _, _) = st.attach(key, pages * g());
        (dir, st, idx)
    }

    fn limits(kind: Kind, window: u64, memory: u64, handles: usize) -> Limits {
        Limits {
            kind,
            window_size: window,
            max_memory_size: memory,
            max_open_handles: handles,
        }
    }

    /// Runs both halves of the miss path, as `Manager::obtain` does.
    fn obtain(st: &mut State, l: &Limits, idx: usize, offset: u64) -> MapRegion {
        let mut rel = Released::new();
        match st.begin_obtain(l, idx, offset, 1, &mut rel).unwrap() {
            Obtain::Found(r) => r,
            Obtain::Map(res) => {
                let mapped = res.map();
                match st.finish_obtain(l, &res, mapped, false, &mut rel).unwrap() {
                    Finish::Done(r) => r,
                    _ => panic!("no race in a single thread"),
                }
            }
        }
    }

    #[test]
    fn placement_fills_between_neighbours() {
        let (_d, mut st, idx) = setup(20);
        let l = limits(Kind::Sliding, 4 * g(), u64::MAX, usize::MAX);
        let a = obtain(&mut st, &l, idx, 0);
        let b = obtain(&mut st, &l, idx, 10 * g());
        assert_eq!((a.ofs_begin(), a.ofs_end()), (0, 4 * g()));
        // One byte wanted at 10g: grown left towards a's end up to the
        // window size, [6g + 1, 10g + 1), then aligned: [6g, 11g).
        assert_eq!((b.ofs_begin(), b.ofs_end()), (6 * g(), 11 * g()));
        // Between them, the gap [4g, 6g) is filled exactly.
        let gap = st.place(&l, idx, 5 * g(), 1);
        assert_eq!(gap, MapWindow::new(4 * g(), 2 * g()));
        // After the last region: [15g + 1, 19g + 1), aligned to [15g, 20g),
        // which the file's end allows.
        let last = st.place(&l, idx, 19 * g(), 1);
        assert_eq!(last, MapWindow::new(15 * g(), 5 * g()));
        // Wanting a whole window from 12g grows right instead.
        let forward = st.place(&l, idx, 12 * g(), 4 * g());
        assert_eq!(forward, MapWindow::new(12 * g(), 4 * g()));
        let s = limits(Kind::Static, 0, u64::MAX, usize::MAX);
        assert_eq!(st.place(&s, idx, 19 * g(), 1), MapWindow::new(0, 20 * g()));
        st.verify(&l).unwrap();
    }

    #[test]
    fn a_mapping_in_flight_holds_its_handle_and_bytes() {
        let (_d, mut st, idx) = setup(8);
        let l = limits(Kind::Sliding, g(), 2 * g(), 1);
        let mut rel = Released::new();
        let Ok(Obtain::Map(res)) = st.begin_obtain(&l, idx, 0, 1, &mut rel) else {
            panic!("a miss")
        };
        assert_eq!((st.committed_handles(), st.committed_memory()), (1, g()));
        // While it is mapped without the lock, no second window may be placed.
        let e = st
            .begin_obtain(&l, idx, 4 * g(), 1, &mut rel)
            .err()
            .expect("refused");
        assert!(matches!(e, Error::HandleLimit { limit: 1, .. }), "{e}");
        let mapped = res.map();
        let Ok(Finish::Done(r)) = st.finish_obtain(&l, &res, mapped, false, &mut rel) else {
            panic!("done")
        };
        assert_eq!((st.committed_handles(), st.reserved_memory), (1, 0));
        assert_eq!(r.client_count(), 2);
        st.verify(&l).unwrap();
    }

    #[test]
    fn a_lost_race_uses_the_winner_or_starts_again() {
        let (_d, mut st, idx) = setup(8);
        let l = limits(Kind::Sliding, 2 * g(), u64::MAX, usize::MAX);
        let mut rel = Released::new();
        let Ok(Obtain::Map(mine)) = st.begin_obtain(&l, idx, g(), 1, &mut rel) else {
            panic!("a miss")
        };
        // Another thread maps the same window first.
        let theirs = obtain(&mut st, &l, idx, g());
        let mapped = mine.map();
        match st
            .finish_obtain(&l, &mine, mapped, false, &mut rel)
            .unwrap()
        {
            Finish::Done(r) => assert!(r.same_mapping(&theirs)),
            _ => panic!("the winner's region holds the offset"),
        }
        assert_eq!(st.stats.discarded, 1);
        assert_eq!(rel.len(), 1, "our mapping is dropped after the lock");
        assert_eq!(theirs.client_count(), 3);
        st.verify(&l).unwrap();
    }

    #[test]
    fn refusal_for_lack_of_resources_retries_once() {
        let (_d, mut st, idx) = setup(8);
        let l = limits(Kind::Sliding, g(), u64::MAX, usize::MAX);
        let unused = obtain(&mut st, &l, idx, 5 * g());
        let mut rel = Released::new();
        st.release(&l, idx, &unused, &mut rel);
        let enomem = || {
            Err(Error::Map {
                file: PathOrFd::Fd(3),
                offset: 0,
                len: g(),
                reason: std::io::Error::from_raw_os_error(libc::ENOMEM),
            })
        };
        let Ok(Obtain::Map(res)) = st.begin_obtain(&l, idx, 0, 1, &mut rel) else {
            panic!("a miss")
        };
        assert!(matches!(
            st.finish_obtain(&l, &res, enomem(), false, &mut rel),
            Ok(Finish::Retry)
        ));
        assert_eq!(
            (st.handles(), st.stats.retries, st.stats.evictions),
            (0, 1, 1),
            "every unused region went"
        );
        let Ok(Obtain::Map(res)) = st.begin_obtain(&l, idx, 0, 1, &mut rel) else {
            panic!("a miss")
        };
        let e = st
            .finish_obtain(&l, &res, enomem(), true, &mut rel)
            .err()
            .expect("no second retry");
        assert_eq!(e.raw_os_error(), Some(libc::ENOMEM));
        assert_eq!(st.stats.map_failures, 2);
        assert_eq!(st.committed_handles(), 0);
        st.verify(&l).unwrap();
    }
}
