//! [`Trace`]: a record of what a program reads through a manager — each
//! cursor made, cloned, released and dropped, and each read with its file,
//! offset, length and how the engine served it — in a compact file that
//! `smmap bench --replay` runs again under other limits, beside `pread`, a
//! raw map of every file and the best offline policy.
//!
//! # The format (version 1)
//!
//! The file starts with the 8 bytes `SMMAPTR\x01`. Records follow, each a
//! tag byte and its fields; every number is an unsigned LEB128 varint
//! (7 bits a byte, low first), an offset a zigzag-encoded varint of its
//! difference from the end of the same cursor's previous read:
//!
//! | tag | record | fields |
//! |---|---|---|
//! | 1 | a file, met for the first time | file id (from 0, in order), size, name length, name (the path as given — on Unix its bytes as the system has them, elsewhere UTF-8 — or `file descriptor N`) |
//! | 2 | a cursor made on a file | cursor id (from 0, in order), file id |
//! | 3 | a cursor cloned | cursor id, the id of the cursor it was cloned from |
//! | 4 | a cursor dropped | cursor id |
//! | 5 | a cursor's region released ([`unuse_region`](crate::WindowCursor::unuse_region), a buffer's `end_access`) | cursor id |
//! | 6 | a read | cursor id, how (one byte: bits 0–2 the [`Op`], bits 3–4 the [`Served`]), offset, length |
//! | 7 | every unused region unmapped ([`Manager::collect`](crate::Manager::collect)) | — |
//! | 8 | the end: the recording finished (written when the last handle of the [`Trace`] goes) | — |
//!
//! A trace without its end record was cut short (the program was killed,
//! or is still recording), and is refused.
//!
//! A read of a few bytes costs 5 to 8 bytes of trace. Recording takes one
//! lock (the trace's) per record, with the bytes buffered in memory and
//! written 64 KiB at a time; a write that fails stops the recording, and
//! [`Trace::flush`] reports it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::cursor::WindowCursor;
use crate::manager::Manager;
use crate::source::PathOrFd;

const MAGIC: &[u8; 8] = b"SMMAPTR\x01";
const FLUSH_AT: usize = 64 * 1024;

const TAG_FILE: u8 = 1;
const TAG_CURSOR: u8 = 2;
const TAG_CLONE: u8 = 3;
const TAG_DROP: u8 = 4;
const TAG_RELEASE: u8 = 5;
const TAG_READ: u8 = 6;
const TAG_COLLECT: u8 = 7;
const TAG_END: u8 = 8;

/// Which cursor operation a read was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// [`WindowCursor::use_region`](crate::WindowCursor::use_region): a
    /// mapped window, `len` the size asked (0: as much as possible).
    Map,
    /// One byte, copied ([`WindowCursor::byte_at`](crate::WindowCursor::byte_at),
    /// a buffer's `get`).
    Byte,
    /// The bytes from the offset to the end of its window or copy, `len`
    /// the bytes the reader means to read (a buffer's `slice`, `BufRead`,
    /// [`WindowCursor::chunk_at`](crate::WindowCursor::chunk_at)).
    Chunk,
    /// `len` bytes copied out ([`WindowCursor::read_at`](crate::WindowCursor::read_at)).
    ReadAt,
    /// A buffer's `begin_access` mapping its first window (the always-map
    /// policy).
    First,
}

/// How the engine served a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Served {
    /// By the region or copy the cursor held, or the region it released
    /// last, taken back.
    Held,
    /// By another region mapped already (a switch).
    Mapped,
    /// By a window mapped for it.
    NewWindow,
    /// By a copy (`pread`), or nothing (past the end, or an error).
    Copied,
}

impl Op {
    const ALL: [Op; 5] = [Op::Map, Op::Byte, Op::Chunk, Op::ReadAt, Op::First];

    fn code(self) -> u8 {
        Op::ALL.iter().position(|&o| o == self).unwrap_or(0) as u8
    }
}

impl Served {
    const ALL: [Served; 4] = [
        Served::Held,
        Served::Mapped,
        Served::NewWindow,
        Served::Copied,
    ];

    fn code(self) -> u8 {
        Served::ALL.iter().position(|&s| s == self).unwrap_or(0) as u8
    }
}

/// A trace being recorded: give it to a manager
/// ([`ManagerBuilder::trace`](crate::ManagerBuilder::trace)), and every
/// cursor of that manager records what it does. Clones share one file.
/// The bytes are written 64 KiB at a time and when the last clone (and the
/// last manager and cursor using it) goes, or on [`flush`](Self::flush).
///
/// Each path is one file of the trace, whichever manager's cursors read it
/// (told apart by the absolute path it was resolved to, so one relative
/// name met again after a `chdir` is another file, under the same name);
/// a lent descriptor is one per manager's entry of it.
///
/// A process that forks while recording: the child holds a copy of the
/// parent's unwritten records and the same file, so a child that drops
/// its last handle writes them, and an end record, into the parent's
/// trace, which is then refused. In the child, [`std::mem::forget`] every
/// handle (or leave with `_exit`), as the Python package does.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let data = dir.path().join("data");
/// # std::fs::write(&data, vec![7u8; 10_000])?;
/// let trace_path = dir.path().join("reads.trace");
/// let trace = smmap::Trace::create(&trace_path)?;
/// let manager = smmap::SlidingWindowMapManager::builder().trace(trace.clone()).build();
/// let mut buf = smmap::SlidingWindowMapBuffer::new(manager.make_cursor(&data)?, 0, u64::MAX)?;
/// assert_eq!(buf.get(5000)?, 7);
/// trace.flush()?; // what is recorded so far is on disk
/// // The end record is written once the last handle goes.
/// drop((buf, manager, trace));
/// let recorded = smmap::TraceReader::open(&trace_path)?;
/// assert_eq!(recorded.files()[0].size, 10_000);
/// assert_eq!(recorded.reads().count(), 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Trace {
    inner: Arc<Mutex<Sink>>,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace").finish_non_exhaustive()
    }
}

/// What tells the files of a trace apart (see `Sink::files`).
#[derive(PartialEq, Eq, Hash)]
enum FileKey {
    Path(std::path::PathBuf),
    Lent(u64, u64),
}

struct Sink {
    out: Box<dyn Write + Send>,
    buf: Vec<u8>,
    /// Trace file ids: by the absolute path a name was resolved to for a
    /// file named by one (every cursor on a path records the same file,
    /// whichever manager made it, and however often its entry went and
    /// came back: the replay reads it by that path; a relative name met
    /// again after a `chdir` is another file, recorded under the same
    /// name), and by the manager's id and entry serial for a lent
    /// descriptor (whose number may name another file later).
    files: HashMap<FileKey, u64>,
    next_cursor: u64,
    /// The end of each cursor's previous read (offsets are coded against
    /// it).
    ends: HashMap<u64, u64>,
    /// The first write error; recording stops there.
    failed: Option<io::Error>,
    /// The end record is written: nothing more is recorded.
    finished: bool,
}

impl Trace {
    /// Records into a new file at `path` (replacing one there). The error,
    /// if the file cannot be made, names `path`.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Trace> {
        let path = path.as_ref();
        let file = File::create(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create the trace {}: {e}", path.display()),
            )
        })?;
        Ok(Trace::to_writer(file))
    }

    /// Records into `out`.
    pub fn to_writer(out: impl Write + Send + 'static) -> Trace {
        let mut buf = Vec::with_capacity(FLUSH_AT + 64);
        buf.extend_from_slice(MAGIC);
        Trace {
            inner: Arc::new(Mutex::new(Sink {
                out: Box::new(out),
                buf,
                files: HashMap::new(),
                next_cursor: 0,
                ends: HashMap::new(),
                failed: None,
                finished: false,
            })),
        }
    }

    fn sink(&self) -> std::sync::MutexGuard<'_, Sink> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes what is recorded so far (without the end record, which the
    /// last handle writes when it goes); returns the first error any write
    /// met (after which nothing more was recorded, and the writer, not
    /// flushed again, is left alone), or says that the writer panicked.
    pub fn flush(&self) -> io::Result<()> {
        let mut s = self.sink();
        s.write_out();
        s.with_out(|out| out.flush());
        match &s.failed {
            None => Ok(()),
            Some(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }

    /// Ends the recording: writes the end record and flushes, as the last
    /// handle does when it goes; what is done afterwards is not recorded.
    /// For a trace that lives as long as the process (one named by
    /// `SMMAP_TRACE` in Python), at exit. Returns the first write error.
    pub fn finish(&self) -> io::Result<()> {
        {
            let mut s = self.sink();
            s.end();
        }
        self.flush()
    }

    /// A new cursor on the file of entry `serial` of manager `manager`
    /// (named `name`, resolved to the absolute path `resolved` where it is
    /// a path, of `size` bytes); returns its id.
    pub(crate) fn cursor(
        &self,
        manager: u64,
        serial: u64,
        name: &PathOrFd,
        resolved: Option<&Path>,
        size: u64,
    ) -> u64 {
        let mut s = self.sink();
        let key = match (resolved, name) {
            (Some(abs), _) => FileKey::Path(abs.to_owned()),
            (None, PathOrFd::Path(p)) => FileKey::Path(p.clone()),
            (None, _) => FileKey::Lent(manager, serial),
        };
        let next_file = s.files.len() as u64;
        let file = *s.files.entry(key).or_insert(next_file);
        // After the end record, nothing (the file's name neither).
        if file == next_file && !s.finished {
            let name = name_bytes(name);
            s.put(TAG_FILE, &[file, size, name.len() as u64]);
            s.buf.extend_from_slice(&name);
        }
        let id = s.next_cursor;
        s.next_cursor += 1;
        s.put(TAG_CURSOR, &[id, file]);
        s.done();
        id
    }

    /// Cursor `from` cloned; returns the clone's id.
    pub(crate) fn clone_cursor(&self, from: u64) -> u64 {
        let mut s = self.sink();
        let id = s.next_cursor;
        s.next_cursor += 1;
        let end = s.ends.get(&from).copied();
        if let Some(end) = end {
            s.ends.insert(id, end);
        }
        s.put(TAG_CLONE, &[id, from]);
        s.done();
        id
    }

    /// Cursor `id` dropped.
    pub(crate) fn drop_cursor(&self, id: u64) {
        let mut s = self.sink();
        s.ends.remove(&id);
        s.put(TAG_DROP, &[id]);
        s.done();
    }

    /// Cursor `id` released its region.
    pub(crate) fn release(&self, id: u64) {
        let mut s = self.sink();
        s.put(TAG_RELEASE, &[id]);
        s.done();
    }

    /// Every unused region unmapped.
    pub(crate) fn collect(&self) {
        let mut s = self.sink();
        s.put(TAG_COLLECT, &[]);
        s.done();
    }

    /// A read by cursor `id`.
    pub(crate) fn read(&self, id: u64, op: Op, offset: u64, len: u64, served: Served) {
        let mut s = self.sink();
        let prev = s.ends.insert(id, offset.saturating_add(len)).unwrap_or(0);
        let how = u64::from(op.code() | (served.code() << 3));
        s.put(
            TAG_READ,
            &[id, how, zigzag(offset.wrapping_sub(prev) as i64), len],
        );
        s.done();
    }
}

impl Sink {
    fn put(&mut self, tag: u8, fields: &[u64]) {
        if self.finished {
            return;
        }
        self.buf.push(tag);
        for &f in fields {
            put_varint(&mut self.buf, f);
        }
    }

    /// Writes the buffer out once it is large enough.
    fn done(&mut self) {
        if self.buf.len() >= FLUSH_AT {
            self.write_out();
        }
    }

    /// Writes the end record, once.
    fn end(&mut self) {
        if !self.finished {
            self.buf.push(TAG_END);
            self.finished = true;
        }
        self.write_out();
    }

    fn write_out(&mut self) {
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            self.with_out(|out| out.write_all(&buf));
            self.buf = buf;
        }
        self.buf.clear();
    }

    /// Runs `f` on the writer unless a write failed before; its error, or
    /// a panic of the writer's, becomes the first error and ends the
    /// recording. The writer is the caller's code, run from the middle of
    /// the engine's paths (a read, a release, a cursor's drop): a panic
    /// that unwound from here could leave a region counted for good, or
    /// abort the process from a destructor, so it is caught (the panic
    /// hook has reported it already) and the writer is not used again.
    fn with_out(&mut self, f: impl FnOnce(&mut dyn Write) -> io::Result<()>) {
        if self.failed.is_some() {
            return;
        }
        let out = &mut *self.out;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(out))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.failed = Some(e),
            Err(_) => self.failed = Some(io::Error::other("the trace's writer panicked")),
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.end();
        self.with_out(|out| out.flush());
    }
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// How a trace names a file: a path by its bytes as the system has them
/// (on Unix, any bytes; elsewhere UTF-8, so that a name that is not valid
/// Unicode is recorded with replacement characters), a lent descriptor as
/// `file descriptor N`.
fn name_bytes(name: &PathOrFd) -> Vec<u8> {
    match name {
        #[cfg(unix)]
        PathOrFd::Path(p) => std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()).to_vec(),
        #[cfg(not(unix))]
        PathOrFd::Path(p) => p.to_string_lossy().into_owned().into_bytes(),
        _ => name.to_string().into_bytes(),
    }
}

/// The name of a file record, as [`name_bytes`] wrote it.
fn name_of(bytes: &[u8]) -> PathBuf {
    #[cfg(unix)]
    {
        PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(bytes))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// A file a trace read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceFile {
    /// Its name as the program gave it: a path, or `file descriptor N` for
    /// a descriptor lent to the manager.
    pub name: PathBuf,
    /// Its size when first met.
    pub size: u64,
}

/// One record of a trace, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Cursor `id` made on file `file` (an index into
    /// [`TraceReader::files`]).
    Cursor {
        /// The cursor.
        id: u64,
        /// The file.
        file: usize,
    },
    /// Cursor `id` cloned from cursor `from`.
    Clone {
        /// The new cursor.
        id: u64,
        /// The cursor cloned.
        from: u64,
    },
    /// Cursor `id` dropped.
    Drop {
        /// The cursor.
        id: u64,
    },
    /// Cursor `id` released its region.
    Release {
        /// The cursor.
        id: u64,
    },
    /// A read by cursor `cursor`.
    Read {
        /// The cursor.
        cursor: u64,
        /// Which operation.
        op: Op,
        /// The absolute offset.
        offset: u64,
        /// The length asked for (see [`Op`]).
        len: u64,
        /// How the engine served it when it was recorded.
        served: Served,
    },
    /// Every unused region unmapped.
    Collect,
}

/// One read of a trace with the file it read ([`TraceReader::file_reads`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRead {
    /// The file, an index into [`TraceReader::files`].
    pub file: usize,
    /// Which operation.
    pub op: Op,
    /// The absolute offset.
    pub offset: u64,
    /// The length asked for (see [`Op`]).
    pub len: u64,
    /// How the engine served it when it was recorded.
    pub served: Served,
}

/// A trace file that cannot be read: it names the file, and the record and
/// byte where reading stopped.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the trace {path}: {what} (record {record}, byte {byte})")]
pub struct TraceError {
    /// The trace.
    pub path: PathBuf,
    /// Records read before it (the first is 0).
    pub record: u64,
    /// Where in the file.
    pub byte: u64,
    /// What is wrong.
    pub what: String,
}

/// A trace, read whole and checked: its files and its events.
#[derive(Clone, Debug)]
pub struct TraceReader {
    files: Vec<TraceFile>,
    events: Vec<Event>,
}

impl TraceReader {
    /// Reads and checks the trace at `path`.
    ///
    /// The trace is read whole, and its events are kept in memory (32 bytes
    /// each on 64-bit targets, against 5 to 8 in the file). Its header is
    /// read first, so a file that is not a trace (an image given by mistake,
    /// or `/dev/zero`) is refused after 8 bytes.
    ///
    /// Errors: the file cannot be read, is not a trace, or is truncated or
    /// corrupt — a record cut short, an unknown record, a cursor or file
    /// used before it is made — named by record and byte.
    pub fn open(path: impl AsRef<Path>) -> Result<TraceReader, TraceError> {
        use std::io::Read;
        let path = path.as_ref();
        let mut bytes = Vec::new();
        let mut read = || -> io::Result<()> {
            let mut file = File::open(path)?;
            (&mut file)
                .take(MAGIC.len() as u64)
                .read_to_end(&mut bytes)?;
            if bytes.len() == MAGIC.len() && bytes[..7] == MAGIC[..7] {
                file.read_to_end(&mut bytes)?;
            }
            Ok(())
        };
        read().map_err(|e| TraceError {
            path: path.to_owned(),
            record: 0,
            byte: bytes.len() as u64,
            what: e.to_string(),
        })?;
        Self::from_bytes(path, &bytes)
    }

    /// Reads and checks a trace held in memory (decompressed, say); `path`
    /// names it in errors, which are [`open`](Self::open)'s.
    pub fn from_bytes(path: impl AsRef<Path>, bytes: &[u8]) -> Result<TraceReader, TraceError> {
        Self::parse(bytes).map_err(|(record, byte, what)| TraceError {
            path: path.as_ref().to_owned(),
            record,
            byte,
            what,
        })
    }

    /// Decodes `bytes`; on error, the record, byte and what is wrong.
    fn parse(bytes: &[u8]) -> Result<TraceReader, (u64, u64, String)> {
        if bytes.len() < MAGIC.len() || bytes[..7] != MAGIC[..7] {
            return Err((0, 0, "not a trace (no SMMAPTR header)".into()));
        }
        if bytes[7] != MAGIC[7] {
            return Err((0, 7, format!("trace version {} (this reads 1)", bytes[7])));
        }
        let mut r = Bytes { bytes, at: 8 };
        let (mut files, mut events) = (Vec::new(), Vec::new());
        let mut cursors: HashMap<u64, u64> = HashMap::new();
        let mut next_cursor = 0u64;
        let mut record = 0u64;
        let mut ended = false;
        while r.at < bytes.len() {
            let start = r.at as u64;
            let fail = |what: String| (record, start, what);
            let tag = r.byte().map_err(fail)?;
            if ended {
                return Err(fail("records after the end record".into()));
            }
            let known = |id: u64, cursors: &HashMap<u64, u64>| {
                cursors
                    .contains_key(&id)
                    .then_some(())
                    .ok_or_else(|| fail(format!("cursor {id} is used before it is made")))
            };
            let made = |id: u64, next: &mut u64| {
                if id != *next {
                    return Err(fail(format!(
                        "cursor {id} made out of order (expected {next})"
                    )));
                }
                *next += 1;
                Ok(())
            };
            match tag {
                TAG_FILE => {
                    let (id, size, len) = (
                        r.var().map_err(fail)?,
                        r.var().map_err(fail)?,
                        r.var().map_err(fail)?,
                    );
                    if id != files.len() as u64 {
                        return Err(fail(format!(
                            "file {id} out of order (expected {})",
                            files.len()
                        )));
                    }
                    let name = r.take(len).map_err(fail)?;
                    files.push(TraceFile {
                        name: name_of(name),
                        size,
                    });
                }
                TAG_CURSOR => {
                    let (id, file) = (r.var().map_err(fail)?, r.var().map_err(fail)?);
                    if file >= files.len() as u64 {
                        return Err(fail(format!("cursor {id} names file {file}, not yet met")));
                    }
                    made(id, &mut next_cursor)?;
                    cursors.insert(id, 0);
                    events.push(Event::Cursor {
                        id,
                        file: file as usize,
                    });
                }
                TAG_CLONE => {
                    let (id, from) = (r.var().map_err(fail)?, r.var().map_err(fail)?);
                    known(from, &cursors)?;
                    made(id, &mut next_cursor)?;
                    let end = cursors[&from];
                    cursors.insert(id, end);
                    events.push(Event::Clone { id, from });
                }
                TAG_DROP => {
                    let id = r.var().map_err(fail)?;
                    known(id, &cursors)?;
                    cursors.remove(&id);
                    events.push(Event::Drop { id });
                }
                TAG_RELEASE => {
                    let id = r.var().map_err(fail)?;
                    known(id, &cursors)?;
                    events.push(Event::Release { id });
                }
                TAG_READ => {
                    let cursor = r.var().map_err(fail)?;
                    let how = r.var().map_err(fail)?;
                    let delta = unzigzag(r.var().map_err(fail)?);
                    let len = r.var().map_err(fail)?;
                    known(cursor, &cursors)?;
                    let op = *Op::ALL
                        .get((how & 7) as usize)
                        .ok_or_else(|| fail(format!("unknown read operation {}", how & 7)))?;
                    let served = *Served::ALL
                        .get(((how >> 3) & 3) as usize)
                        .ok_or_else(|| fail("unknown service".into()))?;
                    if how >> 5 != 0 {
                        return Err(fail(format!("unknown read bits {how:#x}")));
                    }
                    let end = cursors[&cursor];
                    let offset = end.wrapping_add(delta as u64);
                    cursors.insert(cursor, offset.saturating_add(len));
                    events.push(Event::Read {
                        cursor,
                        op,
                        offset,
                        len,
                        served,
                    });
                }
                TAG_COLLECT => events.push(Event::Collect),
                TAG_END => ended = true,
                other => return Err(fail(format!("unknown record type {other}"))),
            }
            record += 1;
        }
        if !ended {
            return Err((
                record,
                r.at as u64,
                "truncated: no end record (the recording was cut short, or is still going on)"
                    .into(),
            ));
        }
        Ok(TraceReader { files, events })
    }

    /// The files, by id.
    pub fn files(&self) -> &[TraceFile] {
        &self.files
    }

    /// Every event, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The reads, in order: `(cursor, op, offset, len, served)`.
    pub fn reads(&self) -> impl Iterator<Item = &Event> + '_ {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Read { .. }))
    }

    /// The reads, in order, each with the file its cursor was on.
    pub fn file_reads(&self) -> Vec<FileRead> {
        let mut file_of = HashMap::new();
        let mut out = Vec::new();
        for e in &self.events {
            match *e {
                Event::Cursor { id, file } => {
                    file_of.insert(id, file);
                }
                Event::Clone { id, from } => {
                    if let Some(&f) = file_of.get(&from) {
                        file_of.insert(id, f);
                    }
                }
                Event::Read {
                    cursor,
                    op,
                    offset,
                    len,
                    served,
                } => {
                    if let Some(&file) = file_of.get(&cursor) {
                        out.push(FileRead {
                            file,
                            op,
                            offset,
                            len,
                            served,
                        });
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Does again through `manager` what the trace recorded: the same
    /// cursors on the same files — `paths[i]` for the trace's file `i` —
    /// made, cloned, released and dropped, and the same reads, in order.
    /// What each read is served by depends on `manager`'s limits (give it a
    /// [`Trace`] to record that); `on_read` is called after each read with
    /// what it gave (see [`Replayed`]). A `read_at` is replayed into one
    /// buffer of at most what the file holds past its offset, and at most
    /// 1 GiB, whatever length the trace says.
    ///
    /// Errors: `paths` has fewer paths than the trace has files
    /// ([`Error::NotAssociated`](crate::Error::NotAssociated)), or a file
    /// cannot be opened or is shorter than when it was recorded (an error
    /// naming it). A read that fails fails as it did when it was recorded,
    /// or not (`on_read` sees its error); the replay goes on, as the
    /// program did.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("f");
    /// std::fs::write(&path, vec![7u8; 100_000])?;
    /// let recording = smmap::Trace::create(dir.path().join("t"))?;
    /// let manager = smmap::SlidingWindowMapManager::builder().trace(recording).build();
    /// let mut cursor = manager.make_cursor(&path)?;
    /// assert_eq!(cursor.byte_at(70_000)?, 7);
    /// drop((cursor, manager)); // the trace is finished with its last handle
    ///
    /// let trace = smmap::TraceReader::open(dir.path().join("t"))?;
    /// let again = smmap::SlidingWindowMapManager::builder().window_size(4096).build();
    /// let mut got = Vec::new();
    /// trace.replay(&again, &[&path], |r| got.push((r.read.offset, r.bytes.map(|b| b[0]).ok())))?;
    /// assert_eq!(got, [(70_000, Some(7))]);
    /// # Ok(()) }
    /// ```
    pub fn replay(
        &self,
        manager: &Manager,
        paths: &[impl AsRef<Path>],
        mut on_read: impl FnMut(Replayed<'_>),
    ) -> crate::Result<()> {
        if paths.len() < self.files.len() {
            return Err(crate::Error::NotAssociated);
        }
        // Each cursor, with its file.
        let mut cursors: HashMap<u64, (WindowCursor, usize)> = HashMap::new();
        let mut scratch = Vec::new();
        let mut index = 0;
        for e in &self.events {
            match *e {
                Event::Cursor { id, file } => {
                    let c = manager.make_cursor(paths[file].as_ref())?;
                    let want = self.files[file].size;
                    if c.file_size() < Some(want) {
                        return Err(crate::Error::OutOfRange {
                            file: c.path_or_fd().cloned().unwrap_or(PathOrFd::UNNAMED),
                            // The first byte of the traced file this
                            // one lacks.
                            offset: c.file_size().unwrap_or(0),
                            view: None,
                            size: c.file_size().unwrap_or(0),
                        });
                    }
                    cursors.insert(id, (c, file));
                }
                Event::Clone { id, from } => {
                    let copy = cursors.get(&from).cloned();
                    if let Some(copy) = copy {
                        cursors.insert(id, copy);
                    }
                }
                Event::Drop { id } => {
                    cursors.remove(&id);
                }
                Event::Release { id } => {
                    if let Some((c, _)) = cursors.get_mut(&id) {
                        c.unuse_region();
                    }
                }
                Event::Collect => {
                    manager.collect();
                }
                Event::Read {
                    cursor,
                    op,
                    offset,
                    len,
                    served,
                } => {
                    let Some((c, file)) = cursors.get_mut(&cursor) else {
                        continue;
                    };
                    let read = FileRead {
                        file: *file,
                        op,
                        offset,
                        len,
                        served,
                    };
                    let mut byte = [0u8; 1];
                    let bytes = match op {
                        Op::Map => c.use_region(offset, len as usize).map(|c| c.buffer()),
                        Op::Byte => match c.byte_at(offset) {
                            Ok(b) => {
                                byte[0] = b;
                                Ok(&byte[..])
                            }
                            Err(e) => Err(e),
                        },
                        Op::Chunk => c.chunk_for(offset, len),
                        Op::ReadAt => {
                            // No more than the file holds past `offset`
                            // (one byte past its end, to fail as recorded).
                            let left = c.file_size().map_or(0, |s| s.saturating_sub(offset));
                            let n = len.min(left.max(1)).min(1 << 30) as usize;
                            if scratch.len() < n {
                                scratch.resize(n, 0);
                            }
                            c.read_at(offset, &mut scratch[..n])
                                .map(|got| &scratch[..got])
                        }
                        Op::First => c.map_first(offset).map(|()| &[][..]),
                    };
                    on_read(Replayed {
                        index,
                        read,
                        bytes: bytes.as_deref(),
                    });
                    index += 1;
                }
            }
        }
        Ok(())
    }
}

/// One read [`TraceReader::replay`] did again.
#[derive(Debug)]
pub struct Replayed<'a> {
    /// Its index among the trace's reads.
    pub index: usize,
    /// The read as recorded (`served`: how it was served then).
    pub read: FileRead,
    /// What it gave: the bytes it made readable from its offset (the
    /// cursor's view for [`Op::Map`], the chunk, the byte, the bytes
    /// copied; none for [`Op::First`]), or the error it met.
    pub bytes: Result<&'a [u8], &'a crate::Error>,
}

/// A cursor over the bytes of a trace.
struct Bytes<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Bytes<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| "truncated".to_string())?;
        self.at += 1;
        Ok(b)
    }

    fn var(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self
                .byte()
                .map_err(|_| "truncated in a number".to_string())?;
            if shift == 63 && b > 1 {
                // The tenth byte holds only bit 63.
                break;
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a number longer than 64 bits".into())
    }

    fn take(&mut self, n: u64) -> Result<&[u8], String> {
        let n = usize::try_from(n).map_err(|_| "a name too long".to_string())?;
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| "truncated in a name".to_string())?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trace recorded into memory.
    fn recorded(f: impl FnOnce(&Trace)) -> Vec<u8> {
        let out = Arc::new(Mutex::new(Vec::new()));
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let t = Trace::to_writer(Shared(out.clone()));
        f(&t);
        drop(t);
        let v = out.lock().unwrap().clone();
        v
    }

    #[test]
    fn a_trace_that_cannot_be_made_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("t.trace");
        let Err(e) = Trace::create(&path) else {
            panic!("no directory to make it in");
        };
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let msg = e.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
    }

    #[test]
    fn records_decode_as_written() {
        let bytes = recorded(|t| {
            let a = t.cursor(1, 7, &PathOrFd::from("pack"), None, 1 << 40);
            t.read(a, Op::Byte, 5, 1, Served::Copied);
            t.read(a, Op::Chunk, 1 << 39, 4096, Served::NewWindow);
            let b = t.clone_cursor(a);
            t.read(b, Op::Map, 3, 0, Served::Mapped);
            t.release(a);
            t.collect();
            let c = t.cursor(2, 7, &PathOrFd::from("other"), None, 10);
            t.read(c, Op::ReadAt, 9, 1, Served::Held);
            t.drop_cursor(b);
        });
        let r = TraceReader::parse(&bytes).unwrap();
        assert_eq!(
            r.files(),
            [
                TraceFile {
                    name: "pack".into(),
                    size: 1 << 40
                },
                TraceFile {
                    name: "other".into(),
                    size: 10
                }
            ]
        );
        use Event::*;
        assert_eq!(
            r.events(),
            [
                Cursor { id: 0, file: 0 },
                Read {
                    cursor: 0,
                    op: Op::Byte,
                    offset: 5,
                    len: 1,
                    served: Served::Copied
                },
                Read {
                    cursor: 0,
                    op: Op::Chunk,
                    offset: 1 << 39,
                    len: 4096,
                    served: Served::NewWindow
                },
                Clone { id: 1, from: 0 },
                Read {
                    cursor: 1,
                    op: Op::Map,
                    offset: 3,
                    len: 0,
                    served: Served::Mapped
                },
                Release { id: 0 },
                Collect,
                Cursor { id: 2, file: 1 },
                Read {
                    cursor: 2,
                    op: Op::ReadAt,
                    offset: 9,
                    len: 1,
                    served: Served::Held
                },
                Drop { id: 1 },
            ]
        );
        assert_eq!(r.reads().count(), 4);
        // A few bytes per read.
        assert!(bytes.len() < 80, "{}", bytes.len());
    }

    #[test]
    fn a_finished_trace_is_whole_and_records_nothing_more() {
        let bytes = recorded(|t| {
            let a = t.cursor(1, 1, &PathOrFd::from("f"), None, 100);
            t.read(a, Op::Byte, 5, 1, Served::Copied);
            t.finish().unwrap();
            t.read(a, Op::Byte, 6, 1, Served::Copied);
            t.drop_cursor(a);
        });
        let r = TraceReader::parse(&bytes).unwrap();
        assert_eq!(r.reads().count(), 1);
        assert_eq!(r.events().len(), 2);
    }

    /// A file met after the end record writes nothing either (its name
    /// after the end record made the whole trace unreadable).
    #[test]
    fn a_file_met_after_the_end_leaves_the_trace_whole() {
        let bytes = recorded(|t| {
            let a = t.cursor(1, 1, &PathOrFd::from("f"), None, 100);
            t.read(a, Op::Byte, 5, 1, Served::Copied);
            t.finish().unwrap();
            let b = t.cursor(1, 2, &PathOrFd::from("a-file-met-late"), None, 100);
            t.read(b, Op::Byte, 6, 1, Served::Copied);
        });
        let r = TraceReader::parse(&bytes).unwrap();
        assert_eq!(r.files().len(), 1);
        assert_eq!(r.reads().count(), 1);
    }

    /// One path is one file of the trace, whichever manager's cursor reads
    /// it and however often its entry is made anew (another serial); one
    /// relative name resolved to two files is two files of the trace; a lent
    /// descriptor is one file per manager entry, since its number may name
    /// another file later.
    #[test]
    fn a_path_is_one_file_of_the_trace() {
        let bytes = recorded(|t| {
            t.cursor(1, 1, &PathOrFd::from("pack"), None, 100);
            t.cursor(1, 9, &PathOrFd::from("pack"), None, 100);
            t.cursor(2, 1, &PathOrFd::from("pack"), None, 100);
            t.cursor(2, 2, &PathOrFd::from("idx"), None, 10);
            // One relative name, resolved in two working directories.
            let (a, b) = (Path::new("/a/data"), Path::new("/b/data"));
            t.cursor(1, 5, &PathOrFd::from("data"), Some(a), 10);
            t.cursor(2, 5, &PathOrFd::from("data"), Some(a), 10);
            t.cursor(1, 6, &PathOrFd::from("data"), Some(b), 10);
            #[cfg(unix)]
            {
                t.cursor(1, 3, &PathOrFd::Fd(5), None, 10);
                t.cursor(1, 4, &PathOrFd::Fd(5), None, 10);
                t.cursor(2, 3, &PathOrFd::Fd(5), None, 10);
            }
        });
        let r = TraceReader::parse(&bytes).unwrap();
        let names: Vec<_> = r.files().iter().map(|f| f.name.to_str().unwrap()).collect();
        let lent = if cfg!(unix) { 3 } else { 0 };
        assert_eq!(names.len(), 4 + lent, "{names:?}");
        assert_eq!(names[..4], ["pack", "idx", "data", "data"]);
        let files: Vec<usize> = r
            .events()
            .iter()
            .filter_map(|e| match e {
                Event::Cursor { file, .. } => Some(*file),
                _ => None,
            })
            .collect();
        assert_eq!(files[..7], [0, 0, 0, 1, 2, 2, 3]);
        if cfg!(unix) {
            assert_eq!(files[7..], [4, 5, 6]);
        }
    }

    /// A name that is not UTF-8 (any bytes, on Unix) is read back as it
    /// was given, so that the replay finds the file; a lent descriptor is
    /// named as errors name it.
    #[cfg(unix)]
    #[test]
    fn a_name_that_is_not_utf8_is_read_back_as_given() {
        use std::os::unix::ffi::OsStrExt;
        let odd = Path::new(std::ffi::OsStr::from_bytes(b"/data/pack-\xff\xfe.pack"));
        let bytes = recorded(|t| {
            t.cursor(1, 1, &PathOrFd::Path(odd.to_owned()), None, 100);
            t.cursor(1, 2, &PathOrFd::Fd(7), None, 10);
        });
        let r = TraceReader::parse(&bytes).unwrap();
        let names: Vec<&Path> = r.files().iter().map(|f| f.name.as_path()).collect();
        assert_eq!(names, [odd, Path::new("file descriptor 7")]);
    }

    #[test]
    fn truncated_and_corrupt_traces_say_where() {
        let good = recorded(|t| {
            let a = t.cursor(1, 1, &PathOrFd::from("f"), None, 100);
            t.read(a, Op::Byte, 5, 1, Served::Copied);
        });
        assert!(TraceReader::parse(&good).is_ok());
        // Cut short: in the middle of the read, and right before the end.
        let (rec, byte, what) = TraceReader::parse(&good[..good.len() - 2]).unwrap_err();
        assert_eq!(rec, 2, "the read is the third record");
        assert!(what.contains("truncated"), "{what}");
        assert!(byte > 8);
        let (rec, _, what) = TraceReader::parse(&good[..good.len() - 1]).unwrap_err();
        assert_eq!(rec, 3);
        assert!(what.contains("no end record"), "{what}");
        let mut bad = good[..good.len() - 1].to_vec();
        bad.push(42);
        let (rec, _, what) = TraceReader::parse(&bad).unwrap_err();
        assert_eq!((rec, what.as_str()), (3, "unknown record type 42"));
        let mut after = good.clone();
        after.push(TAG_COLLECT);
        assert!(TraceReader::parse(&after)
            .unwrap_err()
            .2
            .contains("after the end"));
        let (_, _, what) = TraceReader::parse(b"GIF89a..").unwrap_err();
        assert!(what.contains("not a trace"), "{what}");
        let mut v2 = good.clone();
        v2[7] = 2;
        assert!(TraceReader::parse(&v2).unwrap_err().2.contains("version 2"));
        // A read by a cursor never made.
        let mut orphan = MAGIC.to_vec();
        orphan.extend_from_slice(&[TAG_READ, 9, 0, 0, 1, TAG_END]);
        let (rec, byte, what) = TraceReader::parse(&orphan).unwrap_err();
        assert_eq!((rec, byte), (0, 8));
        assert!(what.contains("cursor 9"), "{what}");
        // The error names the file.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cut.trace");
        std::fs::write(&p, &good[..good.len() - 2]).unwrap();
        let e = TraceReader::open(&p).unwrap_err();
        assert!(
            e.to_string().contains("cut.trace") && e.to_string().contains("record 2"),
            "{e}"
        );
        let e = TraceReader::open(dir.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    /// A file that is not a trace is refused on its header: an endless one
    /// is not read to its end.
    #[cfg(unix)]
    #[test]
    fn a_file_that_is_not_a_trace_is_refused_on_its_header() {
        let e = TraceReader::open("/dev/zero").unwrap_err();
        assert_eq!((e.record, e.byte), (0, 0), "{e}");
        assert!(e.to_string().contains("not a trace"), "{e}");
        let e = TraceReader::open("/dev/null").unwrap_err();
        assert!(e.to_string().contains("not a trace"), "{e}");
    }

    #[test]
    fn a_number_past_64_bits_is_refused() {
        let file = |size: &[u8]| {
            let mut t = MAGIC.to_vec();
            t.extend([TAG_FILE, 0]);
            t.extend_from_slice(size);
            t.extend([1, b'f', TAG_END]);
            t
        };
        let mut max = Vec::new();
        put_varint(&mut max, u64::MAX);
        assert_eq!(max.len(), 10);
        let t = TraceReader::parse(&file(&max)).unwrap();
        assert_eq!(t.files()[0].size, u64::MAX);
        // The tenth byte carries bit 63 only: more is past 64 bits.
        for last in [2, 0x7e] {
            let mut over = max.clone();
            over[9] = last;
            let (rec, byte, what) = TraceReader::parse(&file(&over)).unwrap_err();
            assert_eq!((rec, byte), (0, 8));
            assert!(what.contains("longer than 64 bits"), "{what}");
        }
    }

    #[test]
    fn a_failed_write_stops_recording_and_is_reported() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::StorageFull, "no room"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let t = Trace::to_writer(Full);
        let a = t.cursor(1, 1, &PathOrFd::from("f"), None, 100);
        assert!(t.finish().is_err(), "finishing reports the write error too");
        t.read(a, Op::Byte, 5, 1, Served::Copied);
        let e = t.flush().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        // Nothing panics afterwards.
        t.read(a, Op::Byte, 6, 1, Served::Copied);
        assert!(t.flush().is_err());
    }
}
