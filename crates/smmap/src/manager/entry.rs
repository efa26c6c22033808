//! [`FileEntry`]: one file the manager knows — the pinned file, its table
//! of windows (read without any lock), its slots and the windows being
//! mapped (under its own lock), and its cached descriptor — and [`Files`],
//! the registry that finds an entry by path or descriptor when a cursor is
//! made.
//!
//! An entry lives as long as something holds it: the cursors on the file
//! and the cells of its regions each hold an `Arc`. The registry holds only
//! a weak reference, and the entry takes itself out of it when it goes, so
//! "a file entry disappears when its last cursor is gone and it has no
//! regions" holds without any bookkeeping; its cached descriptor is closed
//! then too.
//!
//! An entry whose path (or descriptor) was found, on opening, to name
//! another file than the one pinned is *retired*: listed under its serial
//! number instead of its name, so that a new cursor meets the file now
//! there while the cursors of the old one keep it. The registry counts its
//! retirements, so that a cursor being made, which read the file at its
//! path before one of them, does not list that old file under the path
//! again ([`Files::attach`]).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, Weak};

use super::desc::{DescCount, DescRing, DescSlot, DescUse};
use super::shared_lock::SharedLock;
use super::signal::Signal;
use super::slots::Slots;
use super::table::WindowTable;
use crate::source::{FileKey, PinnedFile};
use crate::sync::{AtomicU64, Mutex, MutexGuard, Ordering};

/// One file the manager knows (see the module documentation).
///
/// In declaration order (`repr(C)`): what a switch and a copy read touch —
/// the table, the serial number, the size, the descriptor word — comes
/// first, on one cache line with the `Arc`'s counts where it can.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct FileEntry {
    table: WindowTable,
    /// A number no other entry of the manager ever had (heat keys).
    serial: u64,
    /// The pinned size.
    size: u64,
    desc: DescSlot,
    pinned: PinnedFile,
    slots: Mutex<Slots>,
    /// Signalled when a window of the file being mapped is done, or a
    /// region evicted is gone from the slots (a change made under the
    /// slots' lock).
    changed: Signal,
    files: Arc<Files>,
}

impl FileEntry {
    /// The file as pinned.
    pub(crate) fn pinned(&self) -> &PinnedFile {
        &self.pinned
    }

    /// The pinned size.
    #[inline]
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn serial(&self) -> u64 {
        self.serial
    }

    #[inline]
    pub(crate) fn table(&self) -> &WindowTable {
        &self.table
    }

    pub(crate) fn desc(&self) -> &DescSlot {
        &self.desc
    }

    /// A use of the cached descriptor, if one is open.
    #[inline]
    pub(crate) fn enter_desc(&self) -> Option<DescUse<'_>> {
        self.desc.enter(&self.files.descs)
    }

    /// Caches `desc` as the file's descriptor (unless another thread did
    /// first: then it is handed back), closing the least recently used
    /// beyond `max_open_files`.
    pub(crate) fn install_desc(self: &Arc<Self>, desc: std::fs::File) -> Result<(), std::fs::File> {
        let files = &self.files;
        self.desc.install(desc, &files.descs)?;
        files
            .ring
            .opened(Arc::downgrade(self), &files.descs, files.max_open_files);
        Ok(())
    }

    /// The file's slots, under its lock.
    pub(crate) fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits, the lock given up meanwhile, until a window of the file being
    /// mapped is done or an evicted region is gone.
    pub(crate) fn wait<'a>(&self, guard: MutexGuard<'a, Slots>) -> MutexGuard<'a, Slots> {
        self.changed.wait(guard)
    }

    /// Wakes the threads waiting in [`wait`](Self::wait), if any; called
    /// after a change to the slots, made under their lock.
    pub(crate) fn notify(&self) {
        self.changed.notify();
    }
}

impl FileEntry {
    /// The keys the registry may list the entry under: its name, and its
    /// serial number once retired.
    fn keys(&self) -> [FileKey; 2] {
        [self.pinned.key(), FileKey::Retired(self.serial)]
    }
}

/// True if `index` lists `entry` itself under `key` (not another entry of
/// the same name, nor one gone at the same address).
fn names(index: &HashMap<FileKey, Weak<FileEntry>>, key: &FileKey, entry: &FileEntry) -> bool {
    index
        .get(key)
        .is_some_and(|w| std::ptr::eq(w.as_ptr(), entry as *const FileEntry))
}

impl Drop for FileEntry {
    fn drop(&mut self) {
        let files = self.files.clone();
        {
            let mut index = files.index.lock();
            for key in self.keys() {
                if names(&index, &key, self) {
                    index.remove(&key);
                }
            }
        }
        self.desc.close_owned(&files.descs);
    }
}

/// How many entries the registry had retired when a caller looked a file up
/// and found it unknown: [`Files::attach`] compares it with the count then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Epoch(u64);

/// The files a manager knows, by path or lent descriptor, and the budget of
/// cached descriptors.
#[derive(Debug)]
pub(crate) struct Files {
    index: SharedLock<HashMap<FileKey, Weak<FileEntry>>>,
    /// The next entry's serial number.
    serial: AtomicU64,
    /// Entries retired so far; changed and read under the index's lock
    /// only (see [`Epoch`]).
    retired: AtomicU64,
    /// The counts of cached descriptors.
    descs: DescCount,
    max_open_files: usize,
    ring: DescRing,
    /// The window size entries cut their tables by (`u64::MAX`: whole
    /// files).
    window: u64,
}

impl Files {
    pub(crate) fn new(window: u64, max_open_files: usize) -> Arc<Self> {
        Arc::new(Files {
            index: SharedLock::new(HashMap::new()),
            serial: AtomicU64::new(0),
            retired: AtomicU64::new(0),
            descs: DescCount::default(),
            max_open_files: max_open_files.max(1),
            ring: DescRing::default(),
            window,
        })
    }

    /// The entry `key` names, if the manager knows it; if not (or with no
    /// key), the registry's [`Epoch`] now, for the caller to read the file
    /// and [`attach`](Self::attach) it.
    pub(crate) fn find(&self, key: Option<&FileKey>) -> Result<Arc<FileEntry>, Epoch> {
        let index = self.index.lock();
        key.and_then(|key| index.get(key))
            .and_then(Weak::upgrade)
            .ok_or(Epoch(self.retired.load(Ordering::Relaxed)))
    }

    /// The entry of the file the caller pinned, after [`find`](Self::find)
    /// gave `epoch`: a new one, or the one another thread made meanwhile.
    ///
    /// Refused, with the epoch now, when no entry is listed by the file's
    /// name and an entry has been retired since `epoch`: the caller may
    /// have read the very file that retirement found replaced, before it
    /// was, and listing that file under the name again would give the next
    /// cursors by that name the file they were told was replaced. The
    /// caller reads the file again. (A read after a retirement sees the
    /// file that retirement saw, or a later one: the retirement opened the
    /// path before it took the index's lock, and the reader read the epoch
    /// under that lock after it.)
    pub(crate) fn attach(
        self: &Arc<Self>,
        pinned: PinnedFile,
        epoch: Epoch,
    ) -> Result<Arc<FileEntry>, Epoch> {
        let key = pinned.key();
        let mut index = self.index.lock();
        if let Some(found) = index.get(&key).and_then(Weak::upgrade) {
            return Ok(found);
        }
        let now = Epoch(self.retired.load(Ordering::Relaxed));
        if now != epoch {
            return Err(now);
        }
        let entry = Arc::new(FileEntry {
            table: WindowTable::new(pinned.size, self.window),
            serial: self.serial.fetch_add(1, Ordering::Relaxed) + 1,
            size: pinned.size,
            desc: DescSlot::default(),
            pinned,
            slots: Mutex::new(Slots::default()),
            changed: Signal::default(),
            files: self.clone(),
        });
        index.insert(key, Arc::downgrade(&entry));
        Ok(entry)
    }

    /// Retires `entry`, whose name was found to name another file now: it
    /// is listed by its serial number from now on, so that the next cursor
    /// made by that name pins the file there (its cursors keep `entry`).
    pub(crate) fn retire(&self, entry: &FileEntry) {
        let mut index = self.index.lock();
        let key = entry.pinned.key();
        if names(&index, &key, entry) {
            if let Some(w) = index.remove(&key) {
                index.insert(FileKey::Retired(entry.serial), w);
                // Under the lock, as every read of it.
                self.retired.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// True if `entry` is listed: under its name, or retired.
    pub(crate) fn lists(&self, entry: &Arc<FileEntry>) -> bool {
        let index = self.index.lock();
        entry.keys().iter().any(|key| names(&index, key, entry))
    }

    /// Every entry alive now (for the statistics and the invariant check).
    pub(crate) fn entries(&self) -> Vec<Arc<FileEntry>> {
        self.index
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Closes every cached descriptor (once the reads through them end);
    /// returns how many.
    pub(crate) fn close_descs(&self) -> usize {
        self.ring.close_all(&self.descs)
    }

    /// Cached descriptors not closed yet (one being closed included, until
    /// its last reader leaves).
    pub(crate) fn open_descs(&self) -> usize {
        self.descs.open()
    }

    /// Cached descriptors open and not being closed: what the ring bounds.
    pub(crate) fn kept_descs(&self) -> usize {
        self.descs.kept()
    }

    pub(crate) fn max_open_files(&self) -> usize {
        self.max_open_files
    }

    /// The files in the descriptor ring (for the invariant check).
    pub(crate) fn ring_files(&self) -> Vec<Weak<FileEntry>> {
        self.ring.files()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::source::PinnedFile;

    /// A manager's files that keep one descriptor at most, and three
    /// entries, of files made in `dir` (`f0`, `f1`, `f2`).
    fn three_files(dir: &std::path::Path) -> (Arc<Files>, Vec<Arc<FileEntry>>) {
        let files = Files::new(u64::MAX, 1);
        let entries = (0..3)
            .map(|i| {
                let path = dir.join(format!("f{i}"));
                std::fs::write(&path, b"data").unwrap();
                let pinned = PinnedFile::stat(crate::PathOrFd::from(path.as_path())).unwrap();
                let epoch = files.find(None).unwrap_err();
                files.attach(pinned, epoch).unwrap()
            })
            .collect();
        (files, entries)
    }

    /// [`three_files`] as installs that raced leave them: the first two
    /// threads joined the ring before any descriptor was in, then all
    /// three put theirs in; the third is about to pass.
    fn three_installed(dir: &std::path::Path) -> (Arc<Files>, Vec<Arc<FileEntry>>) {
        let (files, entries) = three_files(dir);
        for e in &entries[..2] {
            files
                .ring
                .opened(Arc::downgrade(e), &files.descs, files.max_open_files);
        }
        for e in &entries {
            let open = std::fs::File::open(dir.join("f0")).unwrap();
            e.desc.install(open, &files.descs).unwrap();
        }
        assert_eq!(files.open_descs(), 3);
        (files, entries)
    }

    /// Installs that raced leave more descriptors open than the limit when
    /// the next thread's pass over the ring begins: the pass closes until
    /// the limit holds, each descriptor closed at once counted once (it
    /// used to count twice, and the pass stopped one short).
    #[test]
    fn a_pass_closes_down_to_the_limit_after_racing_installs() {
        let dir = tempfile::tempdir().unwrap();
        let (files, entries) = three_installed(dir.path());
        files.ring.opened(
            Arc::downgrade(&entries[2]),
            &files.descs,
            files.max_open_files,
        );
        assert_eq!(files.open_descs(), 1);
        assert_eq!(entries.iter().filter(|e| e.desc.is_open()).count(), 1);
    }

    /// Readers that mark every descriptor used again each time the hand
    /// spares one do not keep the pass from ending within the limit (it
    /// gave up after a number of turns, all spent sparing, and left the
    /// excess open until the next install).
    #[test]
    fn a_pass_ends_within_the_limit_while_readers_keep_marking() {
        use crate::manager::hooks::{self, Point};
        let dir = tempfile::tempdir().unwrap();
        let (files, entries) = three_installed(dir.path());
        let readers = entries.clone();
        hooks::set_times(Point::RingSpared, 1000, move || {
            for e in &readers {
                drop(e.enter_desc());
            }
        });
        files.ring.opened(
            Arc::downgrade(&entries[2]),
            &files.descs,
            files.max_open_files,
        );
        assert!(hooks::pending(), "the pass ended");
        hooks::set_times(Point::RingSpared, 0, || {});
        assert_eq!((files.open_descs(), files.kept_descs()), (1, 1));
        assert_eq!(entries.iter().filter(|e| e.desc.is_open()).count(), 1);
    }

    /// A descriptor whose closing an earlier pass left to its reader is no
    /// longer kept: the next pass closes only down to the limit of kept
    /// ones, not the one just put in as well (it counted the closing one
    /// as open, and once its reader left no descriptor was cached at all).
    #[test]
    fn a_closing_left_to_a_reader_is_not_counted_against_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (files, entries) = three_files(dir.path());
        let open = || std::fs::File::open(dir.path().join("f0")).unwrap();
        entries[0].install_desc(open()).unwrap();
        let reader = entries[0].enter_desc().expect("cached");
        // Beyond the limit: the first is closed, once its reader leaves.
        entries[1].install_desc(open()).unwrap();
        assert_eq!((files.open_descs(), files.kept_descs()), (2, 1));
        assert!(!entries[0].desc.is_open() && entries[1].desc.is_open());
        // One kept, one put in: one of the two is closed, no more.
        entries[2].install_desc(open()).unwrap();
        assert_eq!(files.kept_descs(), 1);
        drop(reader);
        assert_eq!(files.open_descs(), 1, "the closing one is gone");
        assert_eq!(entries.iter().filter(|e| e.desc.is_open()).count(), 1);
    }
}
