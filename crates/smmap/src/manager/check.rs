//! The manager seen whole: the statistics, summed part by part, and the
//! invariant check, which asks each part in turn and checks that they
//! agree.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::counters::Counter;
use super::slots::What;
use super::{Kind, Shared};
use crate::stats::Stats;
use crate::sys::page_cost;

/// A snapshot of the counters (see [`Manager::stats`](super::Manager::stats)).
pub(super) fn stats(s: &Shared) -> Stats {
    let c = &s.counters;
    let (windows, charged, memory) = s.ledger.tracked();
    let entries = s.files.entries();
    let over_limit_bytes = charged.saturating_sub(s.limits.max_memory_size);
    // A region published between the reads of the ledger and of the peaks
    // is tracked before it raises the peaks: a peak is never below what the
    // same snapshot shows now.
    let (peak_windows, peak_mapped_bytes, peak_over_limit_bytes) = c.peaks();
    let (peak_windows, peak_mapped_bytes, peak_over_limit_bytes) = (
        peak_windows.max(windows),
        peak_mapped_bytes.max(memory),
        peak_over_limit_bytes.max(over_limit_bytes),
    );
    let reuses = c.get(Counter::Reuses);
    Stats {
        hits: c.get(Counter::Hits),
        misses: c.get(Counter::Misses) + reuses,
        reuses,
        maps: c.get(Counter::Maps),
        map_failures: c.get(Counter::MapFailures),
        retries: c.get(Counter::Retries),
        waits: c.get(Counter::Waits),
        preads: c.get(Counter::Preads),
        pread_bytes: c.get(Counter::PreadBytes),
        pread_windows: c.get(Counter::PreadWindows),
        ghost_hits: c.get(Counter::GhostHits),
        fd_opens: c.get(Counter::FdOpens),
        evictions: c.get(Counter::Evictions),
        collected: c.get(Counter::Collected),
        open_files: entries.iter().filter(|e| e.slots().mapped() > 0).count(),
        known_files: entries.len(),
        mapped_bytes: memory,
        charged_bytes: charged,
        peak_mapped_bytes,
        open_descriptors: s.files.open_descs(),
        ghosts: s.sketch.counted(),
        windows,
        peak_windows,
        over_limit_bytes,
        peak_over_limit_bytes,
    }
}

/// Checks every invariant the parts keep, and that they agree; the first
/// broken one is described in the error. Exact while no other thread uses
/// the manager; sound while others do: it holds the evictor's hand
/// throughout, so no cell it reads is emptied, and each file's lock while
/// it reads that file's cells, so none of them is published meanwhile.
pub(super) fn verify(s: &Shared) -> Result<(), String> {
    let _hand = s.evictor.lock(s);
    let limits = &s.limits;
    let g = *crate::ALLOCATIONGRANULARITY;
    let entries = s.files.entries();
    let (mut regions, mut charged, mut memory, mut unused) = (0usize, 0u64, 0u64, 0usize);
    let mut cells_named = HashSet::new();
    for entry in &entries {
        let name = entry.pinned().given();
        if !s.files.lists(entry) {
            return Err(format!("{name} is not indexed under its key"));
        }
        let slots = entry.slots();
        let size = entry.size();
        let mut prev_end = 0;
        let mut mapped = 0;
        for (start, slot) in slots.iter() {
            let end = slot.end;
            let what = format!("[{start}, {end}) of {name}");
            if start % g != 0 || start < prev_end || end <= start {
                return Err(format!("{what} is unaligned, empty or overlaps"));
            }
            if end > size {
                return Err(format!("{what} passes the file end {size}"));
            }
            // Aligning both ends may add up to a granule on each side.
            let most = crate::align_to_mmap(limits.window_cap(), true).saturating_add(g);
            if limits.kind == Kind::Sliding && end - start > most {
                return Err(format!("{what} is larger than the window size"));
            }
            prev_end = end;
            let What::Mapped(c) = slot.what else {
                // Exact only with no other thread at work (see `verify`): a
                // miss may be mapping it now.
                return Err(format!(
                    "{what} is pending: a window being mapped (none should be, \
                     with no other thread at work) or one a miss left behind"
                ));
            };
            if !s.cells.is_reserved(c as usize) || !cells_named.insert(c) {
                return Err(format!("{what} names cell {c}, free or named twice"));
            }
            let cell = s.cells.get(c);
            let seen = cell.claim.seen();
            let clients = cell.claim.clients_of(seen.generation());
            let span = cell.span();
            if clients == 0 {
                return Err(format!("{what} is tracked with no client"));
            }
            if (span.begin, span.end, cell.serial()) != (start, end, entry.serial()) {
                return Err(format!(
                    "{what}: its cell holds [{}, {}) of entry {}",
                    span.begin,
                    span.end,
                    cell.serial()
                ));
            }
            // SAFETY: the file's slots name the cell as mapped, under the
            // file's lock, and this thread holds the hand: only the evictor,
            // holding the hand, empties a published cell, so the region
            // stays in it while the reference is used.
            let region = unsafe { cell.region() };
            if (region.ofs_begin(), region.ofs_end()) != (start, end)
                || region.client_count() != clients
            {
                return Err(format!("{what}: its cell's region is {region:?}"));
            }
            // SAFETY: this thread holds the evictor's lock, and the region
            // is live (as above).
            if !Arc::ptr_eq(&unsafe { cell.file() }, entry) {
                return Err(format!("{what}: its cell names another file"));
            }
            unused += usize::from(clients == 1);
            mapped += 1;
            charged += page_cost(end - start);
            memory += end - start;
        }
        if mapped != slots.mapped() {
            return Err(format!(
                "{name} counts {} regions, has {mapped}",
                slots.mapped()
            ));
        }
        regions += mapped;
        let spans: HashMap<u32, (u64, u64)> = slots
            .iter()
            .filter_map(|(start, slot)| match slot.what {
                What::Mapped(c) => Some((c, (start, slot.end))),
                What::Pending => None,
            })
            .collect();
        for ((lo, hi), cell) in entry.table().entries(size) {
            let c = cell.index();
            match spans.get(&c) {
                Some(&(start, end)) if start < hi && end > lo => {}
                _ => return Err(format!("{name}'s table names cell {c} for [{lo}, {hi}), which no region of it there is")),
            }
        }
        for (start, slot) in slots.iter() {
            let What::Mapped(c) = slot.what else { continue };
            // A region covering a table slot whole is the one it names.
            let t = entry.table().slot_size();
            if t != u64::MAX {
                let first = start.div_ceil(t) * t;
                let mut lo = first;
                while lo < slot.end {
                    let hi = lo.saturating_add(t).min(size);
                    if hi <= slot.end && entry.table().get(lo).map(|c| c.index()) != Some(c) {
                        return Err(format!(
                            "{name}'s table does not name the region covering [{lo}, {hi})"
                        ));
                    }
                    lo = lo.saturating_add(t);
                }
            }
            if entry.table().get(start).is_none() {
                return Err(format!(
                    "{name}'s table names nothing where a region starts at {start}"
                ));
            }
        }
        if entry.desc().is_open()
            && !s
                .files
                .ring_files()
                .iter()
                .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(entry)))
        {
            return Err(format!("{name}'s descriptor is open but not in the ring"));
        }
    }
    let used = s.cells.used();
    if used != regions {
        return Err(format!("{used} cells reserved for {regions} regions"));
    }
    if used > limits.max_open_handles {
        return Err(format!(
            "{used} regions exceed max_open_handles {}",
            limits.max_open_handles
        ));
    }
    let reserved = (0..s.cells.capacity())
        .filter(|&i| s.cells.is_reserved(i))
        .count();
    if reserved != used {
        return Err(format!("{reserved} cells marked reserved, {used} counted"));
    }
    let (tracked, tracked_charged, tracked_memory) = s.ledger.tracked();
    if (tracked, tracked_charged, tracked_memory) != (regions, charged, memory) {
        return Err(format!(
            "the ledger tracks {tracked} regions ({tracked_charged} charged, {tracked_memory} bytes), the regions add up to {regions} ({charged}, {memory})"
        ));
    }
    if s.ledger.committed() != charged {
        return Err(format!(
            "{} bytes committed for {charged} bytes of regions",
            s.ledger.committed()
        ));
    }
    if charged > limits.max_memory_size && unused > 0 {
        return Err(format!(
            "{charged} bytes exceed the limit while {unused} regions are unused"
        ));
    }
    let open = entries.iter().filter(|e| e.desc().is_open()).count();
    if open != s.files.open_descs()
        || open != s.files.kept_descs()
        || open > s.files.max_open_files()
    {
        return Err(format!(
            "{open} cached descriptors, {} counted open and {} kept, limit {}",
            s.files.open_descs(),
            s.files.kept_descs(),
            s.files.max_open_files()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// A region being published is tracked by the ledger before it raises
    /// the peaks: a snapshot taken between the two shows no peak below what
    /// it shows now.
    #[test]
    fn a_peak_is_never_below_the_snapshots_own_figure() {
        let g = *crate::ALLOCATIONGRANULARITY;
        let m = crate::SlidingWindowMapManager::builder()
            .max_memory_size(g)
            .build();
        let s = &m.manager().shared;
        // A region of 3 pages tracked, its peaks not yet noted: 3 pages
        // charged, 2 past the limit.
        s.ledger.track(3 * g - 1, 3 * g);
        let st = m.stats();
        assert_eq!((st.windows, st.mapped_bytes), (1, 3 * g - 1), "{st:?}");
        assert_eq!(st.over_limit_bytes, 2 * g);
        assert_eq!(
            (
                st.peak_windows,
                st.peak_mapped_bytes,
                st.peak_over_limit_bytes
            ),
            (1, 3 * g - 1, 2 * g),
            "{st:?}"
        );
        s.ledger.untrack(3 * g - 1, 3 * g);
    }
}
