//! Facts about the operating system that placement depends on.
//!
//! A mapping must start at a multiple of the allocation granularity (the page
//! size on POSIX systems). It is read once, at run time, from `sysconf`.

use std::sync::LazyLock;

/// The granularity a mapping's file offset must be aligned to, in bytes.
///
/// Read from the operating system the first time it is used (the page size on
/// Linux and macOS, typically 4096 or 16384).
///
/// ```
/// assert!(smmap::ALLOCATIONGRANULARITY.is_power_of_two());
/// ```
pub static ALLOCATIONGRANULARITY: LazyLock<u64> = LazyLock::new(read_granularity);

fn read_granularity() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    // A system that cannot tell its page size still maps at 4 KiB boundaries.
    u64::try_from(page)
        .ok()
        .filter(|p| p.is_power_of_two())
        .unwrap_or(4096)
}

/// Aligns `num` to a multiple of [`ALLOCATIONGRANULARITY`]: down, or up when
/// `round_up` is true and `num` is not aligned already.
///
/// Rounding up saturates at the largest aligned `u64` instead of overflowing.
///
/// ```
/// let g = *smmap::ALLOCATIONGRANULARITY;
/// assert_eq!(smmap::align_to_mmap(1, false), 0);
/// assert_eq!(smmap::align_to_mmap(1, true), g);
/// assert_eq!(smmap::align_to_mmap(g, true), g);
/// ```
pub fn align_to_mmap(num: u64, round_up: bool) -> u64 {
    let g = *ALLOCATIONGRANULARITY;
    let down = num - num % g;
    if round_up && down != num {
        down.checked_add(g).unwrap_or(down)
    } else {
        down
    }
}

/// True on a 64-bit system, where the defaults allow much larger windows and
/// memory limits than on a 32-bit one.
pub fn is_64_bit() -> bool {
    cfg!(target_pointer_width = "64")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granularity_is_a_power_of_two() {
        assert!(ALLOCATIONGRANULARITY.is_power_of_two());
        assert!(*ALLOCATIONGRANULARITY >= 4096);
    }

    #[test]
    fn alignment_edges() {
        let g = *ALLOCATIONGRANULARITY;
        assert_eq!(align_to_mmap(0, false), 0);
        assert_eq!(align_to_mmap(0, true), 0);
        assert_eq!(align_to_mmap(g - 1, false), 0);
        assert_eq!(align_to_mmap(g - 1, true), g);
        assert_eq!(align_to_mmap(g + 1, true), 2 * g);
        assert_eq!(align_to_mmap(3 * g, false), 3 * g);
        assert_eq!(align_to_mmap(u64::MAX, false), u64::MAX - u64::MAX % g);
        assert_eq!(align_to_mmap(u64::MAX, true), u64::MAX - u64::MAX % g);
    }

    #[test]
    fn pointer_width() {
        assert_eq!(is_64_bit(), std::mem::size_of::<usize>() == 8);
    }
}
