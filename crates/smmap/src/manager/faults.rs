//! Refusals of mappings made on purpose, so that tests can make the next
//! mapping fail in the middle of a sequence of reads. With the
//! `fault-injection` feature only; without it, `take` always says "map".

use crate::error::{Error, Result};
use crate::region::MapRegion;
use crate::source::PinnedFile;

use super::state::Reservation;

/// Mappings still to refuse, and the error number to refuse them with.
#[derive(Default)]
pub(super) struct Faults {
    #[cfg(feature = "fault-injection")]
    armed: std::sync::Mutex<(usize, i32)>,
}

impl Faults {
    /// Arms `count` refusals with `errno`.
    #[cfg(feature = "fault-injection")]
    pub(super) fn arm(&self, count: usize, errno: i32) {
        *self
            .armed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (count, errno);
    }

    /// A refusal to return instead of mapping, if one is armed.
    #[inline]
    pub(super) fn take(&self) -> Option<Result<MapRegion>> {
        #[cfg(feature = "fault-injection")]
        {
            let mut armed = self
                .armed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if armed.0 > 0 {
                armed.0 -= 1;
                return Some(Err(injected(armed.1)));
            }
        }
        None
    }

    /// Fills in the file (`pinned`) and window of an injected refusal.
    pub(super) fn name(&self, e: Error, pinned: &PinnedFile, reservation: &Reservation) -> Error {
        match e {
            Error::Map { file, reason, .. } if file == INJECTED => Error::Map {
                file: pinned.given().clone(),
                offset: reservation.window.ofs,
                len: reservation.window.size,
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
