//! The engine's budgets as command-line options, shared by `find`, `dump`,
//! `read` and `stat`, and the file checks every subcommand makes first.

use std::path::Path;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;
use smmap::{Manager, SlidingWindowMapManager};

use crate::size::{parse_count, parse_size};

/// `--window`, `--max-memory`, `--max-handles`: the budgets of the manager a
/// subcommand reads through. The defaults suit a laptop: 64 MiB windows, at
/// most 1 GiB and 256 windows mapped at once.
#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Largest window mapped at once, per file; 0 maps whole files
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub window: u64,

    /// Most bytes mapped at once, over all files: passed only while every mapped window is in use (a window larger than the limit is still mapped to be read); 0 means the engine's default (8 GiB on 64-bit)
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size)]
    pub max_memory: u64,

    /// Most windows (mappings) alive at once, at least 1
    #[arg(long, value_name = "N", default_value = "256", value_parser = parse_positive)]
    pub max_handles: usize,
}

/// The configuration as it is printed by `stat --json` and in messages.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsReport {
    /// Largest window in bytes; 0 = whole files.
    pub window_size: u64,
    /// Most bytes mapped at once.
    pub max_memory_size: u64,
    /// Most windows mapped at once.
    pub max_open_handles: usize,
    /// The allocation granularity windows are aligned to.
    pub granularity: u64,
}

impl LimitArgs {
    /// A sliding-window manager with these limits.
    pub fn manager(&self) -> Manager {
        SlidingWindowMapManager::builder()
            .window_size(self.window)
            .max_memory_size(self.max_memory)
            .max_open_handles(self.max_handles)
            .build()
            .into()
    }

    /// The limits as the manager resolved them (0 memory = the default).
    pub fn report(&self) -> LimitsReport {
        let m = self.manager();
        LimitsReport {
            window_size: m.window_size(),
            max_memory_size: m.max_mapped_memory_size(),
            max_open_handles: m.max_file_handles(),
            granularity: *smmap::ALLOCATIONGRANULARITY,
        }
    }
}

/// Parses a count of at least 1 (`--max-handles`, `find --threads`).
pub fn parse_positive(s: &str) -> Result<usize, String> {
    match parse_count(s)? {
        0 => Err("must be at least 1".into()),
        n => Ok(n),
    }
}

/// Checks that `path` names something a subcommand can read as one file,
/// with a message that says what is wrong with it otherwise. The engine
/// would refuse the same files; this check gives the message a hint where
/// one helps (`-r` for directories).
pub fn check_file(path: &Path, dir_hint: &str) -> anyhow::Result<u64> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
    if meta.is_dir() {
        bail!("{} is a directory{dir_hint}", path.display());
    }
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    check_size(path, meta.len())?;
    Ok(meta.len())
}

/// Refuses a regular file (never a FIFO, whose open would wait) whose size
/// says 0 but that reads bytes: one the kernel makes as it is read
/// (`/proc`, `/sys`), which no mapping shows. Anything else passes (a file
/// that cannot be opened is the engine's to name).
pub fn check_size(path: &Path, size: u64) -> anyhow::Result<()> {
    use std::io::Read;
    if size == 0 {
        let mut byte = [0u8; 1];
        let mut open = std::fs::OpenOptions::new();
        open.read(true);
        // Without waiting for bytes a kernel file has not made yet
        // (`/proc/kmsg`): such a file is not searched either way.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut open, libc::O_NONBLOCK);
        if let Ok(1) = open.open(path).and_then(|mut f| f.read(&mut byte)) {
            bail!(
                "{} says it holds 0 bytes but reads more (the kernel makes it as it is read, \
as under /proc and /sys): it cannot be memory-mapped",
                path.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_must_be_positive() {
        assert_eq!(parse_positive("64"), Ok(64));
        assert!(parse_positive("0").is_err());
        assert!(parse_positive("x").is_err());
    }

    #[test]
    fn zero_memory_means_the_default() {
        let l = LimitArgs {
            window: 4096,
            max_memory: 0,
            max_handles: 3,
        };
        let r = l.report();
        assert_eq!(r.max_memory_size, smmap::default_max_memory_size());
        assert_eq!((r.window_size, r.max_open_handles), (4096, 3));
    }
}
