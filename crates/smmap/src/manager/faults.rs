//! Refusals of mappings made on purpose, so that tests can make the next
//! mapping fail in the middle of a sequence of reads. With the
//! `fault-injection` feature only; without it, `take` always says "map".

use crate::error::{Error, Result};
use crate::region::MapRegion;
use crate::source::PinnedFile;
use crate::window::MapWindow;

/// Mappings still to refuse (high half) and the error number to refuse
/// them with (low half), in one word: taking a refusal is one
/// compare-and-swap, and none when none is armed.
#[derive(Debug, Default)]
pub(super) struct Faults {
    #[cfg(feature = "fault-injection")]
    armed: std::sync::atomic::AtomicU64,
    /// Mappings still to panic in place of (a bug's panic, for the tests
    /// of what a miss that unwinds leaves).
    #[cfg(feature = "fault-injection")]
    panics: std::sync::atomic::AtomicU32,
}

impl Faults {
    /// Arms `count` refusals with `errno`.
    #[cfg(feature = "fault-injection")]
    pub(super) fn arm(&self, count: usize, errno: i32) {
        let count = u64::from(u32::try_from(count).unwrap_or(u32::MAX));
        self.armed.store(
            (count << 32) | u64::from(errno as u32),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Arms `count` panics in place of mappings.
    #[cfg(feature = "fault-injection")]
    pub(super) fn arm_panics(&self, count: u32) {
        self.panics
            .store(count, std::sync::atomic::Ordering::Relaxed);
    }

    /// A refusal to return instead of mapping, if one is armed (or a panic,
    /// if one is).
    #[inline]
    pub(super) fn take(&self) -> Option<Result<MapRegion>> {
        #[cfg(feature = "fault-injection")]
        {
            use std::sync::atomic::Ordering::Relaxed;
            let panic = self
                .panics
                .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
            if panic.is_ok() {
                panic!("a panic injected in place of a mapping");
            }
            let mut w = self.armed.load(Relaxed);
            while w >> 32 > 0 {
                match self
                    .armed
                    .compare_exchange_weak(w, w - (1 << 32), Relaxed, Relaxed)
                {
                    Ok(_) => return Some(Err(injected(w as u32 as i32))),
                    Err(now) => w = now,
                }
            }
        }
        None
    }

    /// Fills in the file (`pinned`) and window of an injected refusal.
    pub(super) fn name(&self, e: Error, pinned: &PinnedFile, window: MapWindow) -> Error {
        match e {
            Error::Map { file, reason, .. } if file == INJECTED => Error::Map {
                file: pinned.given().clone(),
                offset: window.ofs,
                len: window.size,
                reason,
            },
            e => e,
        }
    }
}

/// The placeholder file of an injected refusal, replaced by `name`: a
/// descriptor (handle) no file is ever opened under.
#[cfg(unix)]
const INJECTED: crate::PathOrFd = crate::PathOrFd::Fd(i32::MIN);
#[cfg(windows)]
const INJECTED: crate::PathOrFd = crate::PathOrFd::Handle(std::ptr::null_mut());

#[cfg(feature = "fault-injection")]
fn injected(errno: i32) -> Error {
    Error::Map {
        file: INJECTED,
        offset: 0,
        len: 0,
        reason: std::io::Error::from_raw_os_error(errno),
    }
}
