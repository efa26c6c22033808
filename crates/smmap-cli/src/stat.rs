//! `smmap stat PATH...`: file sizes, and what a full front-to-back scan would
//! map under a configuration.
//!
//! The answer is not estimated: each file is scanned by the engine itself
//! with a fresh manager of the configuration given, moving a cursor from
//! window to window without reading a byte (mapping touches no pages), and
//! the windows it mapped are counted.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use indicatif::HumanBytes;

use crate::limits::{check_file, LimitArgs, LimitsReport};
use crate::Exit;

/// Options of `smmap stat`.
#[derive(Args, Debug)]
#[command(after_help = "\
For each file: its size, and how many windows a full front-to-back scan by one cursor that \
maps every window (a sequential reader through the engine; `smmap find` runs several cursors \
and reads what it does not map) maps under --window, --max-memory and --max-handles, how many bytes those windows cover \
in total, the most bytes mapped at once, and how many windows were unmapped to stay within the \
limits. Windows are aligned to the page size, so a window may be up to one page larger than \
--window.

--json prints one object: {\"config\": {\"window_size\", \"max_memory_size\", \"max_open_handles\", \
\"granularity\"}, \"files\": [{\"path\", \"size\", \"windows\", \"mapped_bytes\", \
\"peak_mapped_bytes\", \"evictions\"}]}, all numbers in bytes or counts.

Examples:
  smmap stat big.iso
  smmap stat --window 16MiB --max-memory 32MiB *.pack
  smmap stat --window 0 --json data.bin    # whole-file mapping")]
pub struct StatArgs {
    /// Files to describe
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,

    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    limits: LimitArgs,
}

/// What a full scan of one file maps.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct FileScan {
    /// The path as given.
    pub path: String,
    /// File size in bytes.
    pub size: u64,
    /// Windows mapped by the scan.
    pub windows: u64,
    /// Bytes of all those windows together.
    pub mapped_bytes: u64,
    /// Most bytes mapped at once during the scan.
    pub peak_mapped_bytes: u64,
    /// Windows unmapped during the scan to stay within the limits.
    pub evictions: u64,
}

/// The `--json` document.
#[derive(Serialize)]
struct Report<'a> {
    config: LimitsReport,
    files: &'a [FileScan],
}

/// Runs `smmap stat`.
pub fn run(args: &StatArgs) -> anyhow::Result<()> {
    let mut scans = Vec::new();
    let mut failed = false;
    for path in &args.paths {
        match scan(&args.limits, path) {
            Ok(s) => scans.push(s),
            Err(e) => {
                failed = true;
                let _ = writeln!(std::io::stderr(), "smmap: error: {}", crate::describe(&e));
            }
        }
    }
    let report = Report {
        config: args.limits.report(),
        files: &scans,
    };
    let printed = crate::output::print(args.json, &report, |out| {
        if scans.is_empty() {
            return Ok(());
        }
        write_table(out, &report.config, &scans)
    });
    if failed {
        // A file failed: status 2 whatever became of the report.
        crate::output::say_unless_closed(printed);
        return Err(Exit(2).into());
    }
    printed
}

/// Scans one file with a fresh manager and counts what it mapped.
fn scan(limits: &LimitArgs, path: &std::path::Path) -> anyhow::Result<FileScan> {
    check_file(path, "; stat describes files")?;
    let manager = limits.manager();
    let mut cursor = manager.make_cursor(path)?;
    let size = cursor.file_size().unwrap_or(0);
    let mut mapped_bytes = 0u64;
    let mut offset = 0u64;
    // A new window may start where the last one did (grown left over the
    // room an eviction freed): a window is known by its start and size.
    let mut last_region: Option<(u64, usize)> = None;
    while offset < size {
        cursor.use_region(offset, 0)?;
        let Some(region) = cursor.region() else {
            anyhow::bail!(
                "{}: no window could be placed at offset {offset}",
                path.display()
            );
        };
        let this = (region.ofs_begin(), region.size());
        if last_region != Some(this) {
            mapped_bytes += this.1 as u64;
            last_region = Some(this);
        }
        // Never 0: a valid cursor's view holds at least the byte at `offset`.
        offset = cursor.ofs_end().max(offset + 1);
    }
    drop(cursor);
    let stats = manager.stats();
    Ok(FileScan {
        path: path.to_string_lossy().into_owned(),
        size,
        windows: stats.maps,
        mapped_bytes,
        peak_mapped_bytes: stats.peak_mapped_bytes,
        evictions: stats.evictions,
    })
}

/// Prints the scans as an aligned table under a line naming the limits.
fn write_table(
    out: &mut impl Write,
    limits: &LimitsReport,
    scans: &[FileScan],
) -> std::io::Result<()> {
    let window = if limits.window_size == 0 {
        "whole files".to_string()
    } else {
        HumanBytes(limits.window_size).to_string()
    };
    writeln!(
        out,
        "window {window}, max memory {}, max handles {}, granularity {}",
        HumanBytes(limits.max_memory_size),
        limits.max_open_handles,
        limits.granularity
    )?;
    let width = scans
        .iter()
        .map(|s| s.path.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "{:<width$}  {:>14}  {:>10}  {:>8}  {:>14}  {:>10}  {:>9}",
        "path", "size", "", "windows", "mapped bytes", "peak", "evictions"
    )?;
    for s in scans {
        writeln!(
            out,
            "{:<width$}  {:>14}  {:>10}  {:>8}  {:>14}  {:>10}  {:>9}",
            s.path,
            s.size,
            HumanBytes(s.size).to_string(),
            s.windows,
            s.mapped_bytes,
            HumanBytes(s.peak_mapped_bytes).to_string(),
            s.evictions
        )?;
    }
    Ok(())
}
