//! One file searched in ranges by a pool of threads, the matches handed
//! back in offset order.
//!
//! The file is cut into ranges of match *starts*: range `k` holds the
//! starts `[k × range, (k + 1) × range)`. A thread searches range `k`
//! through a buffer over those bytes and the `pattern length − 1` after
//! them, with the engine's [`SlidingWindowMapBuffer::find_iter`] (which
//! sees matches straddling two windows), and keeps the matches that start
//! inside the range: every match is found by exactly one range. That is all
//! the seam handling here; the window seams are the engine's.
//!
//! Every thread has its own cursor on one shared manager. The calling
//! thread receives each range's matches and hands them on in order; threads
//! run at most a few ranges ahead of it, and a thread keeps at most
//! [`PIECE`] offsets of a range (the calling thread searches the rest of a
//! range that has more, as it hands them on), so memory stays bounded when
//! the output is slow or every byte matches.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Condvar, Mutex};

use anyhow::Context;
use smmap::{Manager, SlidingWindowMapBuffer, WindowCursor};

/// How a file is searched.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Match starts per range (at least 1).
    pub range: u64,
    /// Threads (at least 1).
    pub threads: usize,
    /// Only count: no offsets are kept.
    pub count_only: bool,
}

/// The most offsets kept of one piece of a range: 512 KiB.
const PIECE: usize = 1 << 16;

/// What one piece of a range found.
enum Found {
    /// The matches' absolute offsets; `rest`: the range's match start
    /// (relative to the range) where the search stopped with [`PIECE`]
    /// offsets kept, if it did.
    Offsets {
        offsets: Vec<u64>,
        rest: Option<u64>,
    },
    Count(u64),
}

/// Searches the file at `path` for `pattern` (not empty). Calls `on_range`
/// once or more per range, in order, with the number of match starts each
/// call covers and their matches' absolute offsets in increasing order
/// (none with `count_only`; at most [`PIECE`] a call). Returns the number of
/// matches.
pub fn search(
    manager: &Manager,
    path: &Path,
    pattern: &[u8],
    plan: Plan,
    mut on_range: impl FnMut(u64, &[u64]) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let cursor = manager.make_cursor(path)?;
    let size = cursor.file_size().unwrap_or(0);
    let m = pattern.len() as u64;
    if size < m || m == 0 {
        return Ok(0);
    }
    let starts = size - m + 1;
    let range = plan.range.max(1);
    let ranges = starts.div_ceil(range);
    let search = Range {
        path,
        pattern,
        size,
        starts,
        range,
        count_only: plan.count_only,
    };
    let mut total = 0u64;
    // Hands on range `k`'s first piece, then searches and hands on the
    // rest of the range, piece by piece, with this thread's buffer.
    let mut deliver = |k: u64,
                       mut found: Found,
                       buffer: &mut Option<SlidingWindowMapBuffer>,
                       cursor: &mut Option<WindowCursor>| {
        let mut from = 0u64;
        loop {
            match found {
                Found::Offsets { offsets, rest } => {
                    total += offsets.len() as u64;
                    let end = rest.unwrap_or_else(|| search.starts_of(k));
                    on_range(end - from, &offsets)?;
                    let Some(rest) = rest else {
                        return Ok(());
                    };
                    from = rest;
                    found = search.run(k, from, buffer, cursor)?;
                }
                Found::Count(n) => {
                    total += n;
                    return on_range(search.starts_of(k), &[]);
                }
            }
        }
    };
    let threads = plan
        .threads
        .clamp(1, usize::try_from(ranges).unwrap_or(usize::MAX));
    let mut buffer = None;
    if threads == 1 {
        let mut cursor = Some(cursor);
        for k in 0..ranges {
            let found = search.run(k, 0, &mut buffer, &mut cursor)?;
            deliver(k, found, &mut buffer, &mut cursor)?;
        }
        return Ok(total);
    }
    let mut own = Some(cursor.clone());
    parallel(&search, cursor, ranges, threads, |k, found| {
        deliver(k, found, &mut buffer, &mut own)
    })?;
    Ok(total)
}

/// The ranges of one file.
struct Range<'a> {
    path: &'a Path,
    pattern: &'a [u8],
    size: u64,
    /// Offsets where a match may start: `size − pattern length + 1`.
    starts: u64,
    range: u64,
    count_only: bool,
}

impl Range<'_> {
    /// How many match starts range `k` holds.
    fn starts_of(&self, k: u64) -> u64 {
        let first = k * self.range;
        self.range.min(self.starts - first)
    }

    /// Searches range `k` from its match start `from` (relative to the
    /// range) with the thread's buffer (made from `cursor` the first time),
    /// keeping at most [`PIECE`] offsets.
    fn run(
        &self,
        k: u64,
        from: u64,
        buffer: &mut Option<SlidingWindowMapBuffer>,
        cursor: &mut Option<WindowCursor>,
    ) -> anyhow::Result<Found> {
        let m = self.pattern.len() as u64;
        let start = k * self.range + from;
        let starts = self.starts_of(k) - from;
        // A match starting at `start + i` for i < starts ends before
        // `start + starts + m − 1`: that is the view searched.
        let view = (starts + m - 1).min(self.size - start);
        let buf = match (buffer.as_mut(), cursor.take()) {
            (Some(b), _) => {
                b.begin_access(None, start, view)?;
                b
            }
            (None, Some(c)) => buffer.insert(SlidingWindowMapBuffer::new(c, start, view)?),
            (None, None) => unreachable!("the cursor is moved into the buffer exactly once"),
        };
        let mut offsets = Vec::new();
        let mut count = 0u64;
        for found in buf.find_iter(self.pattern) {
            let rel = found.with_context(|| {
                format!("cannot search {} from offset {start}", self.path.display())
            })?;
            if rel >= starts {
                break;
            }
            count += 1;
            if !self.count_only {
                if offsets.len() == PIECE {
                    return Ok(Found::Offsets {
                        offsets,
                        rest: Some(from + rel),
                    });
                }
                offsets.push(start + rel);
            }
        }
        Ok(if self.count_only {
            Found::Count(count)
        } else {
            Found::Offsets {
                offsets,
                rest: None,
            }
        })
    }
}

/// The ranges searched by `threads` threads, delivered in order by this one.
fn parallel(
    search: &Range<'_>,
    cursor: WindowCursor,
    ranges: u64,
    threads: usize,
    mut deliver: impl FnMut(u64, Found) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    // Threads take the next range; none starts a range more than `ahead`
    // past the next one to deliver.
    let ahead = 2 * threads as u64;
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let delivered = (Mutex::new(0u64), Condvar::new());
    let (tx, rx) = mpsc::channel::<(u64, anyhow::Result<Found>)>();
    // Ends the search: the threads stop at their next range, and none
    // waits for a delivery any more.
    let finish = |result: anyhow::Result<()>| {
        stop.store(true, Ordering::Relaxed);
        delivered.1.notify_all();
        result
    };
    std::thread::scope(|scope| {
        for i in 0..threads {
            let (tx, next, stop, delivered) = (tx.clone(), &next, &stop, &delivered);
            let mut cursor = Some(cursor.clone());
            // A thread that cannot start ends the search with an error;
            // those started see `stop` and end.
            let started = std::thread::Builder::new().spawn_scoped(scope, move || {
                let mut buffer = None;
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= ranges {
                        return;
                    }
                    {
                        let (lock, cv) = delivered;
                        let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
                        while k >= *done + ahead && !stop.load(Ordering::Relaxed) {
                            done = cv.wait(done).unwrap_or_else(|e| e.into_inner());
                        }
                    }
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let found = search.run(k, 0, &mut buffer, &mut cursor);
                    let failed = found.is_err();
                    if tx.send((k, found)).is_err() || failed {
                        return;
                    }
                }
            });
            if let Err(e) = started {
                return finish(Err(anyhow::anyhow!(
                    "cannot start search thread {} of {threads}: {e}; try fewer threads (-j)",
                    i + 1
                )));
            }
        }
        drop(tx);
        drop(cursor);
        let mut pending = BTreeMap::new();
        let mut want = 0u64;
        while want < ranges {
            let Ok((k, found)) = rx.recv() else {
                return finish(Err(anyhow::anyhow!("a search thread ended early")));
            };
            pending.insert(k, found);
            while let Some(found) = pending.remove(&want) {
                let delivered_ok = found.and_then(|f| deliver(want, f));
                if let Err(e) = delivered_ok {
                    return finish(Err(e));
                }
                want += 1;
                *delivered.0.lock().unwrap_or_else(|e| e.into_inner()) = want;
                delivered.1.notify_all();
            }
        }
        finish(Ok(()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every match is handed on once, in order, at most [`PIECE`] at a
    /// time, and the calls cover every match start once: with one thread
    /// and several, ranges of more matches than a piece holds, and
    /// overlapping matches.
    #[test]
    fn every_match_is_handed_on_once_in_pieces_of_at_most_piece() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        let size = 3 * PIECE as u64 + 1000;
        std::fs::write(&path, vec![b'a'; size as usize]).unwrap();
        let manager: Manager = smmap::SlidingWindowMapManager::builder()
            .window_size(64 * 1024)
            .build()
            .into();
        for pattern in [&b"a"[..], b"aa"] {
            for (threads, range) in [
                (1, 2 * PIECE as u64 + 7),
                (4, 2 * PIECE as u64 + 7),
                (3, 999),
            ] {
                let plan = Plan {
                    range,
                    threads,
                    count_only: false,
                };
                let mut seen = Vec::new();
                let mut covered = 0u64;
                let n = search(&manager, &path, pattern, plan, |bytes, offsets| {
                    assert!(offsets.len() <= PIECE, "{}", offsets.len());
                    covered += bytes;
                    seen.extend_from_slice(offsets);
                    Ok(())
                })
                .unwrap();
                let starts = size - pattern.len() as u64 + 1;
                assert_eq!(n, starts, "{threads} threads, range {range}");
                assert_eq!(covered, starts);
                assert!(seen.iter().copied().eq(0..starts), "{threads} threads");
            }
        }
    }
}
