//! The ways of reading, each a [`Method`] that hands every thread a
//! [`Reader`]: the engine's buffer (under either read policy) and cursor,
//! one raw whole-file `memmap2` mapping per file, `pread`, and a fresh
//! mapping of the window per read (map, touch, unmap: the floor any
//! always-mapping cursor pays), and an oracle that knows which files are hot
//! (the floor of any reader under the budget).
//!
//! Adding a method: a variant of [`MethodId`], its key and label, an arm in
//! [`MethodId::prepare`], and a `Reader`.

use std::fs::File;
use std::io::{BufRead, Seek, SeekFrom};
#[cfg(unix)]
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use anyhow::{bail, Context};
#[cfg(unix)]
use memmap2::Advice;
use memmap2::{Mmap, MmapOptions};
use smmap::{AccessHint, Manager, ReadPolicy, SlidingWindowMapBuffer, WindowCursor};

use super::data::{byte_sum, mix};
use super::workloads::Budget;

/// `pread` on Windows: `seek_read`, which reads at the offset given (and
/// moves the file position, which the bench never uses).
#[cfg(windows)]
trait FileExt {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

#[cfg(windows)]
impl FileExt for File {
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(self, buf, offset)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => (buf, offset) = (&mut buf[n..], offset + n as u64),
            }
        }
        Ok(())
    }
}

/// The files of a workload, and what the baselines keep of them from run to
/// run: a raw mapping of each whole file and, where the limit on open files
/// leaves room beside both managers' descriptors, an open descriptor.
pub struct FileSet {
    /// Where they are.
    pub paths: Vec<PathBuf>,
    /// Their sizes.
    pub sizes: Vec<u64>,
    /// Each file open, for `pread` and the per-read mappings.
    pub open: Descriptors,
}

impl FileSet {
    /// Opens every file; keeps each open if `keep` (else the baselines
    /// open them for each run: see [`Descriptors`]).
    pub fn open(paths: Vec<PathBuf>, keep: bool) -> anyhow::Result<Self> {
        let open = open_all(&paths)?;
        let sizes = open
            .iter()
            .zip(&paths)
            .map(|(f, p)| {
                let meta = f.metadata();
                Ok(meta
                    .with_context(|| format!("cannot stat {}", p.display()))?
                    .len())
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let open = Descriptors::new(paths.clone(), keep.then_some(open));
        Ok(FileSet { paths, sizes, open })
    }

    /// The first `count` files, each mapped whole, afresh: a workload's
    /// raw maps start with no page mapped, as its managers do, so the first
    /// run pays the page faults alike for every method.
    pub fn map(&self, count: usize) -> anyhow::Result<Vec<Mmap>> {
        self.paths
            .iter()
            .take(count)
            .map(|p| {
                let f = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
                map_whole(&f, p)
            })
            .collect()
    }

    /// Total bytes.
    pub fn bytes(&self) -> u64 {
        self.sizes.iter().sum()
    }
}

/// `file` (at `path`, for the error) mapped whole, read-only.
pub fn map_whole(file: &File, path: &Path) -> anyhow::Result<Mmap> {
    // SAFETY: a read-only mapping of a file the benchmark only reads (its
    // own data, written before, or a trace's files); a file changed
    // meanwhile by someone else is a SIGBUS, as for every user of memory
    // maps.
    unsafe { Mmap::map(file) }.with_context(|| format!("cannot map {}", path.display()))
}

/// Opens every file of `paths`.
fn open_all(paths: &[PathBuf]) -> anyhow::Result<Vec<File>> {
    paths
        .iter()
        .map(|p| {
            File::open(p).with_context(|| {
                format!(
                    "cannot open {}: the baselines keep all {} files open while they run \
                     (raise `ulimit -n` or use fewer --files)",
                    p.display(),
                    paths.len()
                )
            })
        })
        .collect()
}

/// The baselines' descriptors, one per file: kept open for the whole bench
/// where the limit on open files holds them beside both managers' (see
/// `data::descriptor_plan`), else
/// opened when a run's first reader asks (before the clock starts), shared
/// by that run's threads and closed when its last reader goes, so that the
/// engine, run while no baseline runs (see `workloads::measure`), has the
/// descriptors the baselines would otherwise hold.
pub struct Descriptors {
    paths: Vec<PathBuf>,
    kept: Option<Arc<Vec<File>>>,
    shared: Mutex<Weak<Vec<File>>>,
}

impl Descriptors {
    /// The descriptors of `paths`, kept open if `kept` holds them.
    pub fn new(paths: Vec<PathBuf>, kept: Option<Vec<File>>) -> Self {
        Descriptors {
            paths,
            kept: kept.map(Arc::new),
            shared: Mutex::new(Weak::new()),
        }
    }

    /// Whether the descriptors stay open between runs.
    pub fn kept(&self) -> bool {
        self.kept.is_some()
    }

    /// Every file, open for as long as the result lives.
    pub fn get(&self) -> anyhow::Result<Arc<Vec<File>>> {
        if let Some(kept) = &self.kept {
            return Ok(Arc::clone(kept));
        }
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = shared.upgrade() {
            return Ok(open);
        }
        let open = Arc::new(open_all(&self.paths)?);
        *shared = Arc::downgrade(&open);
        Ok(open)
    }
}

/// How a workload reads its files, as the methods need to know it.
#[derive(Clone, Debug)]
pub struct Access {
    /// Each read releases its window (many files, one read at a time each);
    /// otherwise each thread keeps one buffer or cursor per file.
    pub release: bool,
    /// A front-to-back scan: the engine's cursors and the raw mappings are
    /// told so (`madvise(MADV_SEQUENTIAL)`). Random reads get no hint: the
    /// engine passes a hint to the kernel once per window, which would
    /// charge the random reads a system call that raw mmap never pays.
    pub sequential: bool,
    /// The engine's window size.
    pub window: u64,
    /// The workload's managers with its budget, adaptive and always-map:
    /// the engine's methods of one policy share one, as the readers of a
    /// program do (and, the large file mapped once, read the same pages).
    pub managers: [Manager; 2],
    /// The workload's budget (for the oracle).
    pub budget: Budget,
}

impl Access {
    /// The manager of `policy`.
    fn manager(&self, policy: ReadPolicy) -> Manager {
        match policy {
            ReadPolicy::AlwaysMap => self.managers[1].clone(),
            _ => self.managers[0].clone(),
        }
    }
}

/// One read: `len` bytes at `offset` of file `file`.
#[derive(Clone, Copy, Debug)]
pub struct Op {
    /// Index into the workload's [`FileSet`].
    pub file: u32,
    /// Where the read starts.
    pub offset: u64,
    /// How many bytes.
    pub len: u64,
}

/// A way of reading, set up once per workload and kept from run to run.
pub trait Method: Sync {
    /// A reader for one thread, made before the clock starts.
    fn reader(&self) -> anyhow::Result<Box<dyn Reader + '_>>;

    /// The engine's manager, whose counters the report shows.
    fn manager(&self) -> Option<&Manager> {
        None
    }
}

/// One thread's reads.
pub trait Reader {
    /// The checksum of a list of reads: each read's [`byte_sum`] folded in
    /// order with [`mix`].
    fn fold(&mut self, ops: &[Op]) -> anyhow::Result<u64>;

    /// [`fold`](Self::fold) of a list whose reads are all of one byte (the
    /// caller checks, before the clock starts).
    fn fold_bytes(&mut self, ops: &[Op]) -> anyhow::Result<u64> {
        self.fold(ops)
    }
}

/// What reads one file for one thread.
trait FileReader {
    /// The sum of the `len` bytes at `offset`; `scratch` is the thread's
    /// buffer, for methods that copy.
    fn sum(&mut self, offset: u64, len: u64, scratch: &mut [u8]) -> anyhow::Result<u64>;

    /// The byte at `offset`: [`sum`](Self::sum) of one byte, without the
    /// branches on the length.
    #[inline(always)]
    fn byte(&mut self, offset: u64, scratch: &mut [u8]) -> anyhow::Result<u64> {
        self.sum(offset, 1, scratch)
    }
}

/// A [`FileReader`] per file, and the thread's scratch buffer.
struct PerFile<F> {
    files: Vec<F>,
    scratch: Vec<u8>,
}

impl<F> PerFile<F> {
    fn new(files: Vec<F>) -> Self {
        PerFile {
            files,
            scratch: Vec::new(),
        }
    }

    /// With a scratch buffer of `n` bytes.
    fn with_scratch(files: Vec<F>, n: usize) -> Self {
        PerFile {
            files,
            scratch: vec![0; n],
        }
    }
}

/// The checksum of `ops`, 1-byte reads of `one` file, in a loop of its own,
/// as a program reading bytes writes it. With the other lengths' paths in
/// the loop, the compiler kept the checksum and the list's position on the
/// stack for the readers whose byte has a slow path (the engine's buffer and
/// cursor), and in registers for the raw map: 22 instructions a read
/// against 15, where this loop has 16 against 12 (BENCHMARKS.md §4).
#[inline(never)]
fn fold_bytes_of<F: FileReader>(
    one: &mut F,
    ops: &[Op],
    scratch: &mut [u8],
) -> anyhow::Result<u64> {
    ops.iter()
        .try_fold(0, |h, op| Ok(mix(h, one.byte(op.offset, scratch)?)))
}

impl<F: FileReader> Reader for PerFile<F> {
    fn fold_bytes(&mut self, ops: &[Op]) -> anyhow::Result<u64> {
        if let [_] = self.files[..] {
            let mut one = self.files.pop().expect("one file");
            let h = fold_bytes_of(&mut one, ops, &mut self.scratch);
            self.files.push(one);
            return h;
        }
        self.fold(ops)
    }

    fn fold(&mut self, ops: &[Op]) -> anyhow::Result<u64> {
        let scratch = &mut self.scratch[..];
        // A lone file's reader is moved into a local for the loop, as a
        // program reading one file holds it: its state is then on the
        // stack, not behind the vector.
        if let [_] = self.files[..] {
            let mut one = self.files.pop().expect("one file");
            let h = ops.iter().try_fold(0, |h, op| {
                let v = if op.len == 1 {
                    one.byte(op.offset, scratch)?
                } else {
                    one.sum(op.offset, op.len, scratch)?
                };
                Ok(mix(h, v))
            });
            self.files.push(one);
            return h;
        }
        let files = &mut self.files;
        ops.iter().try_fold(0, |h, op| {
            let f = &mut files[op.file as usize];
            Ok(mix(h, f.sum(op.offset, op.len, scratch)?))
        })
    }
}

/// The ways of reading, in the order of the table's columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MethodId {
    /// [`SlidingWindowMapBuffer`], adaptive read policy (the default).
    Buffer,
    /// [`SlidingWindowMapBuffer`], [`ReadPolicy::AlwaysMap`].
    BufferMap,
    /// [`WindowCursor`] and `use_region`.
    Cursor,
    /// One `memmap2` mapping of each whole file, no limits.
    Mmap,
    /// `pread(2)` into a buffer.
    Pread,
    /// `mmap` of the window, touch, `munmap`, for every read.
    MapUnmap,
    /// The files the budget holds read through their whole-file mappings,
    /// the rest with `pread`: a reader told in advance which files are hot
    /// (they come first), under the engine's budget.
    Oracle,
}

impl MethodId {
    /// All of them, in column order.
    pub const ALL: [MethodId; 7] = [
        MethodId::Buffer,
        MethodId::BufferMap,
        MethodId::Cursor,
        MethodId::Mmap,
        MethodId::Pread,
        MethodId::MapUnmap,
        MethodId::Oracle,
    ];

    /// The name in JSON fields (`{key}_ns`, `{key}_ratio`, `{key}_stats`).
    pub fn key(self) -> &'static str {
        match self {
            MethodId::Buffer => "buffer",
            MethodId::BufferMap => "buffer_map",
            MethodId::Cursor => "cursor",
            MethodId::Mmap => "mmap",
            MethodId::Pread => "pread",
            MethodId::MapUnmap => "map_unmap",
            MethodId::Oracle => "oracle",
        }
    }

    /// The column heading.
    pub fn label(self) -> &'static str {
        match self {
            MethodId::Buffer => "buffer",
            MethodId::BufferMap => "buf(map)",
            MethodId::Cursor => "cursor",
            MethodId::Mmap => "raw mmap",
            MethodId::Pread => "pread",
            MethodId::MapUnmap => "map+unmap",
            MethodId::Oracle => "oracle",
        }
    }

    /// Sets the method up for a workload on `files`.
    pub fn prepare<'a>(
        self,
        files: &'a FileSet,
        access: &Access,
    ) -> anyhow::Result<Box<dyn Method + 'a>> {
        Ok(match self {
            MethodId::Buffer => Box::new(Engine::new(files, access, ReadPolicy::Adaptive, true)?),
            MethodId::BufferMap => {
                Box::new(Engine::new(files, access, ReadPolicy::AlwaysMap, true)?)
            }
            MethodId::Cursor => Box::new(Engine::new(files, access, ReadPolicy::Adaptive, false)?),
            MethodId::Mmap => Box::new(RawMaps::new(files, access)?),
            MethodId::Pread => Box::new(Pread { files }),
            MethodId::MapUnmap => Box::new(MapUnmap {
                files,
                window: access.window,
            }),
            MethodId::Oracle => Box::new(Oracle::new(files, &access.budget)?),
        })
    }
}

/// The engine: a manager with the workload's budget, read through buffers
/// or bare cursors.
///
/// Like the baselines, which open every file and map it once for all the
/// runs of a workload, the engine knows every file for all the runs: an idle
/// cursor per file keeps the manager's entry for it, and so the descriptor
/// the manager opens in the first run (within `max_open_files`) — until the
/// method's last run, where the methods take turns (`workloads::measure`).
struct Engine<'a> {
    files: &'a FileSet,
    manager: Manager,
    release: bool,
    sequential: bool,
    buffers: bool,
    /// One idle cursor per file, never read through.
    _known: Vec<WindowCursor>,
}

impl<'a> Engine<'a> {
    fn new(
        files: &'a FileSet,
        access: &Access,
        policy: ReadPolicy,
        buffers: bool,
    ) -> anyhow::Result<Self> {
        let manager = access.manager(policy);
        let known = files
            .paths
            .iter()
            .map(|p| manager.make_cursor(p))
            .collect::<Result<_, _>>()?;
        Ok(Engine {
            files,
            manager,
            release: access.release,
            sequential: access.sequential,
            buffers,
            _known: known,
        })
    }

    fn cursor(&self, i: usize) -> anyhow::Result<WindowCursor> {
        let mut c = self.manager.make_cursor(&self.files.paths[i])?;
        c.set_access_hint(self.sequential.then_some(AccessHint::Sequential));
        Ok(c)
    }
}

impl Engine<'_> {
    /// A reader of cursors; `RELEASE` is the workload's `release`, a
    /// constant so that the reads of the engine's methods test it no more
    /// than the baselines', which have no such flag.
    fn cursors<const RELEASE: bool>(&self) -> anyhow::Result<Box<dyn Reader + '_>> {
        let cursors = (0..self.files.paths.len())
            .map(|i| {
                Ok(CursorFile::<RELEASE> {
                    cursor: self.cursor(i)?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Box::new(PerFile::new(cursors)))
    }

    /// A reader of buffers (see [`cursors`](Self::cursors)).
    fn buffers<const RELEASE: bool>(&self) -> anyhow::Result<Box<dyn Reader + '_>> {
        let bufs = (0..self.files.paths.len())
            .map(|i| {
                let mut buf = SlidingWindowMapBuffer::new(self.cursor(i)?, 0, u64::MAX)?;
                if RELEASE {
                    buf.end_access();
                }
                Ok(BufferFile::<RELEASE> { buf })
            })
            .collect::<anyhow::Result<_>>()?;
        if RELEASE && self.manager.read_policy() == ReadPolicy::AlwaysMap {
            // Always mapping, a buffer maps its first window when made:
            // unmapped again, so that the reads start from nothing mapped,
            // as the hit ratio and MIN's are counted, and pay their maps.
            self.manager.collect();
        }
        Ok(Box::new(PerFile::new(bufs)))
    }
}

impl Method for Engine<'_> {
    fn reader(&self) -> anyhow::Result<Box<dyn Reader + '_>> {
        match (self.buffers, self.release) {
            (false, false) => self.cursors::<false>(),
            (false, true) => self.cursors::<true>(),
            (true, false) => self.buffers::<false>(),
            (true, true) => self.buffers::<true>(),
        }
    }

    fn manager(&self) -> Option<&Manager> {
        Some(&self.manager)
    }
}

/// Reads of more bytes than this go through `BufRead`, a window at a time.
const SLICE_MAX: u64 = 1 << 20;

/// A buffer: a view of the whole file kept for every read, or, with
/// `RELEASE`, pointed at each read (`begin_access`) and released after it
/// (`end_access`).
struct BufferFile<const RELEASE: bool> {
    buf: SlidingWindowMapBuffer,
}

impl<const RELEASE: bool> BufferFile<RELEASE> {
    /// The sum of `len` bytes from index `i`.
    #[inline(always)]
    fn sum_in(&mut self, i: u64, len: u64) -> anyhow::Result<u64> {
        let b = &mut self.buf;
        if len == 1 {
            return Ok(u64::from(b.get(i)?));
        }
        if len <= SLICE_MAX {
            return Ok(byte_sum(&b.slice(i..i + len)?));
        }
        b.seek(SeekFrom::Start(i))?;
        let mut left = len;
        let mut sum = 0u64;
        while left > 0 {
            let chunk = b.fill_buf()?;
            if chunk.is_empty() {
                bail!(
                    "the buffer of {} ended {left} bytes early, at offset {}",
                    path_of(b.cursor()),
                    b.offset() + i + (len - left)
                );
            }
            let n = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            sum += byte_sum(&chunk[..n]);
            b.consume(n);
            left -= n as u64;
        }
        Ok(sum)
    }
}

impl<const RELEASE: bool> FileReader for BufferFile<RELEASE> {
    #[inline(always)]
    fn byte(&mut self, offset: u64, _: &mut [u8]) -> anyhow::Result<u64> {
        if RELEASE {
            return self.sum(offset, 1, &mut []);
        }
        Ok(u64::from(self.buf.get(offset)?))
    }

    #[inline(always)]
    fn sum(&mut self, offset: u64, len: u64, _: &mut [u8]) -> anyhow::Result<u64> {
        if !RELEASE {
            return self.sum_in(offset, len);
        }
        self.buf.begin_access(None, offset, len)?;
        let sum = self.sum_in(0, len);
        self.buf.end_access();
        sum
    }
}

/// The path of `cursor`'s file, for an error.
#[cold]
fn path_of(cursor: &WindowCursor) -> String {
    cursor
        .path()
        .map_or_else(|| "a file".to_string(), |p| p.display().to_string())
}

/// A cursor moved window by window with `use_region`; with `RELEASE`, the
/// window is released after each read (`unuse_region`).
struct CursorFile<const RELEASE: bool> {
    cursor: WindowCursor,
}

impl<const RELEASE: bool> FileReader for CursorFile<RELEASE> {
    #[inline(always)]
    fn byte(&mut self, offset: u64, _: &mut [u8]) -> anyhow::Result<u64> {
        if RELEASE {
            return self.sum(offset, 1, &mut []);
        }
        match self.cursor.use_region(offset, 1)?.buffer().first() {
            Some(&b) => Ok(u64::from(b)),
            None => bail!(
                "the cursor could not map offset {offset} of {}",
                path_of(&self.cursor)
            ),
        }
    }

    #[inline(always)]
    fn sum(&mut self, offset: u64, len: u64, _: &mut [u8]) -> anyhow::Result<u64> {
        let c = &mut self.cursor;
        if len == 1 && !RELEASE {
            return match c.use_region(offset, 1)?.buffer().first() {
                Some(&b) => Ok(u64::from(b)),
                None => bail!(
                    "the cursor could not map offset {offset} of {}",
                    path_of(&self.cursor)
                ),
            };
        }
        let mut done = 0u64;
        let mut sum = 0u64;
        while done < len {
            let at = offset + done;
            let want = usize::try_from(len - done).unwrap_or(usize::MAX);
            let view = c.use_region(at, want)?.buffer();
            if view.is_empty() {
                bail!("the cursor could not map offset {at} of {}", path_of(c));
            }
            sum += byte_sum(view);
            done += view.len() as u64;
        }
        if RELEASE {
            c.unuse_region();
        }
        Ok(sum)
    }
}

/// The raw whole-file mappings, made for the workload (and so for all its
/// runs); a scan tells the kernel it is one.
struct RawMaps {
    maps: Vec<Mmap>,
}

impl RawMaps {
    fn new(files: &FileSet, access: &Access) -> anyhow::Result<Self> {
        let maps = files.map(files.paths.len())?;
        if access.sequential {
            for m in &maps {
                advise_sequential(m);
            }
        }
        Ok(RawMaps { maps })
    }
}

/// Tells the kernel a raw map is read front to back. Advice is advice: a
/// kernel that ignores it changes nothing, and Windows takes none for a
/// view.
fn advise_sequential(map: &Mmap) {
    #[cfg(unix)]
    let _ = map.advise(Advice::Sequential);
    #[cfg(windows)]
    let _ = map;
}

impl Method for RawMaps {
    fn reader(&self) -> anyhow::Result<Box<dyn Reader + '_>> {
        Ok(Box::new(PerFile::new(
            self.maps.iter().map(MapFile).collect(),
        )))
    }
}

/// A whole-file mapping.
struct MapFile<'a>(&'a Mmap);

impl FileReader for MapFile<'_> {
    #[inline(always)]
    fn byte(&mut self, offset: u64, _: &mut [u8]) -> anyhow::Result<u64> {
        Ok(u64::from(self.0[offset as usize]))
    }

    #[inline(always)]
    fn sum(&mut self, offset: u64, len: u64, _: &mut [u8]) -> anyhow::Result<u64> {
        let at = offset as usize;
        if len == 1 {
            return Ok(u64::from(self.0[at]));
        }
        Ok(byte_sum(&self.0[at..at + len as usize]))
    }
}

/// `pread` into the thread's buffer, a MiB at a time at most.
struct Pread<'a> {
    files: &'a FileSet,
}

impl Method for Pread<'_> {
    fn reader(&self) -> anyhow::Result<Box<dyn Reader + '_>> {
        let largest = self.files.sizes.iter().copied().max().unwrap_or(0);
        let open = self.files.open.get()?;
        let files = (0..open.len())
            .map(|i| PreadFile(Arc::clone(&open), i, &self.files.paths))
            .collect();
        Ok(Box::new(PerFile::with_scratch(
            files,
            largest.min(SLICE_MAX) as usize,
        )))
    }
}

/// File `.1` of the open files `.0`, at `.2[.1]` (for the error).
struct PreadFile<'a>(Arc<Vec<File>>, usize, &'a [PathBuf]);

impl FileReader for PreadFile<'_> {
    #[inline(always)]
    fn sum(&mut self, offset: u64, len: u64, scratch: &mut [u8]) -> anyhow::Result<u64> {
        if scratch.is_empty() && len > 0 {
            bail!("no buffer to read into");
        }
        let mut done = 0u64;
        let mut sum = 0u64;
        while done < len {
            let n = (len - done).min(scratch.len() as u64) as usize;
            let block = &mut scratch[..n];
            let at = offset + done;
            self.0[self.1].read_exact_at(block, at).with_context(|| {
                format!(
                    "cannot read {n} bytes at offset {at} of {}",
                    self.2[self.1].display()
                )
            })?;
            sum += byte_sum(block);
            done += n as u64;
        }
        Ok(sum)
    }
}

/// For every read, maps the window the engine would map for it (the whole
/// file when a window holds it, else `window` bytes from the read's page),
/// reads, and unmaps: the system calls and the page fault that any cursor
/// pays when it has to map a window per read.
struct MapUnmap<'a> {
    files: &'a FileSet,
    window: u64,
}

impl Method for MapUnmap<'_> {
    fn reader(&self) -> anyhow::Result<Box<dyn Reader + '_>> {
        let open = self.files.open.get()?;
        let files = (0..self.files.paths.len())
            .map(|i| MapUnmapFile {
                files: self.files,
                open: Arc::clone(&open),
                i,
                window: self.window,
            })
            .collect();
        Ok(Box::new(PerFile::new(files)))
    }
}

/// File `i` of a set, mapped per read.
struct MapUnmapFile<'a> {
    files: &'a FileSet,
    /// The set's files, open for this run.
    open: Arc<Vec<File>>,
    i: usize,
    window: u64,
}

impl FileReader for MapUnmapFile<'_> {
    fn sum(&mut self, offset: u64, len: u64, _: &mut [u8]) -> anyhow::Result<u64> {
        let size = self.files.sizes[self.i];
        let granularity = *smmap::ALLOCATIONGRANULARITY;
        let mut done = 0u64;
        let mut sum = 0u64;
        while done < len {
            let at = offset + done;
            let (start, n_map) = if self.window == 0 || self.window >= size {
                (0, size)
            } else {
                let start = at - at % granularity;
                (start, self.window.min(size - start))
            };
            // SAFETY: as for the whole-file mappings in `FileSet::open`.
            let map = unsafe {
                MmapOptions::new()
                    .offset(start)
                    .len(n_map as usize)
                    .map(&self.open[self.i])
            }
            .with_context(|| format!("cannot map {}", self.files.paths[self.i].display()))?;
            let from = (at - start) as usize;
            let n = (n_map - (at - start)).min(len - done) as usize;
            sum += byte_sum(&map[from..from + n]);
            done += n as u64;
        }
        Ok(sum)
    }
}

/// Reads the first files, as many as the budget holds (whole, in pages, and
/// one mapping each), through their whole-file mappings, and the rest with
/// `pread`: what a reader that knew in advance which files are hot could do
/// under the engine's budget. The skewed row's hot files come first, so
/// there this is the floor of any reader that keeps to the budget.
struct Oracle<'a> {
    files: &'a FileSet,
    /// The first files, read through their mappings (made for the
    /// workload, as the raw maps are).
    maps: Vec<Mmap>,
}

impl<'a> Oracle<'a> {
    fn new(files: &'a FileSet, budget: &Budget) -> anyhow::Result<Self> {
        Ok(Oracle {
            files,
            maps: files.map(oracle_files(&files.sizes, budget))?,
        })
    }
}

/// How many of the files of `sizes` the oracle maps under `budget`: the
/// first ones, as many as it holds, each charged in whole pages as the
/// bench's budgets charge them (see `hot_budget`).
pub fn oracle_files(sizes: &[u64], budget: &Budget) -> usize {
    let (memory, handles) = (
        budget.max_memory.unwrap_or(u64::MAX),
        budget.max_handles.unwrap_or(usize::MAX),
    );
    let page = *smmap::ALLOCATIONGRANULARITY;
    let mut charged = 0u64;
    sizes
        .iter()
        .take(handles)
        .take_while(|&&size| {
            charged = charged.saturating_add(size.div_ceil(page) * page);
            charged <= memory
        })
        .count()
}

impl Method for Oracle<'_> {
    fn reader(&self) -> anyhow::Result<Box<dyn Reader + '_>> {
        let largest = self.files.sizes.iter().copied().max().unwrap_or(0);
        let open = self.files.open.get()?;
        let files = (0..self.files.paths.len())
            .map(|i| match self.maps.get(i) {
                Some(map) => OracleFile::Mapped(MapFile(map)),
                None => OracleFile::Read(PreadFile(Arc::clone(&open), i, &self.files.paths)),
            })
            .collect();
        Ok(Box::new(PerFile::with_scratch(
            files,
            largest.min(SLICE_MAX) as usize,
        )))
    }
}

/// A file the oracle maps, or one it reads.
enum OracleFile<'a> {
    Mapped(MapFile<'a>),
    Read(PreadFile<'a>),
}

impl FileReader for OracleFile<'_> {
    #[inline(always)]
    fn sum(&mut self, offset: u64, len: u64, scratch: &mut [u8]) -> anyhow::Result<u64> {
        match self {
            OracleFile::Mapped(f) => f.sum(offset, len, scratch),
            OracleFile::Read(f) => f.sum(offset, len, scratch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file held in memory.
    struct Bytes(Vec<u8>);

    impl FileReader for Bytes {
        fn sum(&mut self, offset: u64, len: u64, _: &mut [u8]) -> anyhow::Result<u64> {
            let at = offset as usize;
            match self.0.get(at..at + len as usize) {
                Some(b) => Ok(byte_sum(b)),
                None => bail!("read of {len} bytes at {offset} past the end"),
            }
        }
    }

    fn files(n: usize) -> Vec<Bytes> {
        (0..n)
            .map(|f| Bytes((0..1000).map(|i| (i * 7 + f * 13) as u8).collect()))
            .collect()
    }

    fn bytes_at(file_count: u32) -> Vec<Op> {
        (0..500u64)
            .map(|i| Op {
                file: (i % u64::from(file_count)) as u32,
                offset: i * 37 % 1000,
                len: 1,
            })
            .collect()
    }

    #[test]
    fn the_loop_of_bytes_sums_as_the_general_loop() {
        for n in [1, 3] {
            let ops = bytes_at(n as u32);
            let general = PerFile::new(files(n)).fold(&ops).unwrap();
            let mut reader = PerFile::new(files(n));
            assert_eq!(reader.fold_bytes(&ops).unwrap(), general, "{n} files");
            // The lone file is back in its place for the next list.
            assert_eq!(reader.files.len(), n);
            assert_eq!(reader.fold_bytes(&ops).unwrap(), general, "{n} files");
        }
    }

    #[test]
    fn the_loop_of_bytes_passes_on_a_reader_error() {
        let mut ops = bytes_at(1);
        ops[100].offset = 1000;
        let mut reader = PerFile::new(files(1));
        let e = reader.fold_bytes(&ops).unwrap_err();
        assert!(e.to_string().contains("at 1000"), "{e}");
        assert_eq!(reader.files.len(), 1);
    }
}
