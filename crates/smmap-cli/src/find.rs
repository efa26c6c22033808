//! `smmap find PATTERN PATH...`: every offset where a byte pattern occurs.
//!
//! Each file is searched through one shared manager, in ranges searched by
//! `--threads` threads at once (see [`crate::ranges`], where ranges
//! overlap by `pattern length − 1` bytes and each match is kept by the range
//! it starts in), with the engine's [`smmap::SlidingWindowMapBuffer::find_iter`],
//! which sees matches straddling two windows. Matches are printed in offset
//! order.

use std::ffi::OsString;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use crate::limits::{parse_positive, LimitArgs};
use crate::progress::Progress;
use crate::ranges::{self, Plan};
use crate::size::parse_size;
use crate::Exit;

/// Options of `smmap find`.
#[derive(Args, Debug)]
#[command(after_help = "\
Output: one `path:offset` line per match (offsets in decimal, from 0, overlapping matches \
included); with --count one `path:count` line per file; with --json one JSON object per line: \
{\"path\": \"…\", \"offset\": N} per match, or {\"path\": \"…\", \"count\": N} per file with --count. \
On Unix a text line holds the path's bytes as they are; JSON, which holds text, shows a byte \
that is not UTF-8 as U+FFFD.

Exit status: 0 if anything matched, 1 if nothing did, 2 if a file could not be searched \
(the others are still searched).

Examples:
  smmap find PACK repo.pack                     # text pattern
  smmap find --hex 'ff d8 ff e0' -r ~/Pictures  # bytes, every file under a directory
  smmap find --count --window 16MiB --max-memory 256MiB needle big1.bin big2.bin
  smmap find -j 4 --count needle huge.bin        # four threads on one file
  smmap find -- -v notes.txt                     # a pattern that starts with a dash")]
pub struct FindArgs {
    /// The bytes to look for: the argument's bytes as given, or hexadecimal with --hex (one that starts with '-' goes after '--')
    #[arg(value_name = "PATTERN")]
    pattern: OsString,

    /// Files to search; directories too with -r
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,

    /// PATTERN is hexadecimal digits, e.g. 'deadbeef', 'de ad be ef' or '0xDEADBEEF'
    #[arg(long)]
    hex: bool,

    /// Search every regular file under the directories given (symbolic links inside them are not followed; files the kernel makes as they are read, under /proc and /sys, are refused)
    #[arg(short, long)]
    recursive: bool,

    /// Print the number of matches per file instead of their offsets
    #[arg(short, long)]
    count: bool,

    /// Print JSON lines instead of text
    #[arg(long)]
    json: bool,

    /// Threads searching each file, in ranges (default: the number of CPUs)
    #[arg(short = 'j', long, value_name = "N", value_parser = parse_positive)]
    threads: Option<usize>,

    #[command(flatten)]
    limits: LimitArgs,

    /// Match starts per range a thread searches (for tests of the range seams)
    #[arg(long, hide = true, default_value = "16MiB", value_parser = parse_size)]
    chunk: u64,
}

/// One match, as a JSON line.
#[derive(Serialize)]
struct MatchLine<'a> {
    path: &'a str,
    offset: u64,
}

/// One file's count, as a JSON line.
#[derive(Serialize)]
struct CountLine<'a> {
    path: &'a str,
    count: u64,
}

/// Runs `smmap find`.
pub fn run(args: &FindArgs) -> anyhow::Result<()> {
    let pattern = if args.hex {
        parse_hex(&args.pattern.to_string_lossy())?
    } else {
        // The argument's bytes on Unix; its UTF-8 on Windows.
        args.pattern.as_encoded_bytes().to_vec()
    };
    if pattern.is_empty() {
        bail!("the pattern is empty: give at least one byte to look for");
    }
    let plan = Plan {
        range: args.chunk.max(1),
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        count_only: args.count,
    };
    let mut failed = false;
    let files = collect_files(&args.paths, args.recursive, &mut failed);
    let total: u64 = files.iter().map(|(_, size)| size).sum();
    let mut progress = Progress::bytes(total, "searching");
    let out_is_tty = std::io::stdout().is_terminal();
    let mut out = Output {
        writer: BufWriter::new(std::io::stdout().lock()),
        flush_each: out_is_tty,
    };
    let manager = args.limits.manager();
    let mut found = 0u64;
    for (path, size) in &files {
        let shown = path.to_string_lossy();
        let raw = path_bytes(path);
        let mut scanned = 0u64;
        // A failed write to stdout ends the run (once), whatever the error:
        // not a file that could not be searched.
        let mut stdout_failed = false;
        let result = ranges::search(&manager, path, &pattern, plan, |bytes, offsets| {
            scanned += bytes;
            progress.inc(bytes);
            if offsets.is_empty() {
                return Ok(());
            }
            let mut write = || {
                for &offset in offsets {
                    if args.json {
                        out.json(&MatchLine {
                            path: &shown,
                            offset,
                        })?;
                    } else {
                        out.path_line(&raw, offset)?;
                    }
                }
                Ok(())
            };
            // The bar shares the terminal only when stdout is one.
            let written = if out_is_tty {
                progress.suspend(write)
            } else {
                write()
            };
            stdout_failed = written.is_err();
            written
        });
        let count = *result.as_ref().unwrap_or(&0);
        found += count;
        let searched = match result {
            Ok(_) => {
                progress.inc(size.saturating_sub(scanned));
                true
            }
            Err(e) if stdout_failed || crate::is_broken_pipe(&e) => return end(failed, e),
            Err(e) => {
                failed = true;
                progress.suspend(|| report(&e));
                progress.inc(*size);
                false
            }
        };
        if args.count && searched {
            let written = progress.suspend(|| {
                if args.json {
                    out.json(&CountLine {
                        path: &shown,
                        count,
                    })
                } else {
                    out.path_line(&raw, count)
                }
            });
            if let Err(e) = written {
                return end(failed, e);
            }
        }
    }
    progress.finish();
    if let Err(e) = out.writer.flush().context("cannot write to stdout") {
        return end(failed, e);
    }
    if failed {
        Err(Exit(2).into())
    } else if found == 0 {
        Err(Exit(1).into())
    } else {
        Ok(())
    }
}

/// Ends a run whose output could not be written: with status 2 if a file
/// has failed already (that, not the closed pipe, decides the status; the
/// error is said unless the pipe was closed), else with the error.
fn end(failed: bool, e: anyhow::Error) -> anyhow::Result<()> {
    if failed {
        crate::output::say_unless_closed(Err(e));
        return Err(Exit(2).into());
    }
    Err(e)
}

/// Where matches go: stdout, flushed line by line when it is a terminal.
struct Output<W: Write> {
    writer: W,
    flush_each: bool,
}

impl<W: Write> Output<W> {
    fn line(&mut self, line: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
        writeln!(self.writer, "{line}").context("cannot write to stdout")?;
        if self.flush_each {
            self.writer.flush().context("cannot write to stdout")?;
        }
        Ok(())
    }

    /// A `path:number` line, the path written as [`path_bytes`] gives it.
    fn path_line(&mut self, path: &[u8], number: u64) -> anyhow::Result<()> {
        self.writer
            .write_all(path)
            .context("cannot write to stdout")?;
        self.line(format_args!(":{number}"))
    }

    fn json(&mut self, value: &impl Serialize) -> anyhow::Result<()> {
        let text = serde_json::to_string(value).context("cannot encode JSON")?;
        self.line(format_args!("{text}"))
    }
}

/// A path as a text line shows it: on Unix its bytes as they are (what
/// `grep` and `find` print, so that a script can open the file again); on
/// other systems its text, with U+FFFD for what is not Unicode.
fn path_bytes(path: &std::path::Path) -> std::borrow::Cow<'_, [u8]> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::borrow::Cow::Borrowed(path.as_os_str().as_bytes())
    }
    #[cfg(not(unix))]
    match path.to_string_lossy() {
        std::borrow::Cow::Borrowed(text) => std::borrow::Cow::Borrowed(text.as_bytes()),
        std::borrow::Cow::Owned(text) => std::borrow::Cow::Owned(text.into_bytes()),
    }
}

/// Prints an error about one file, leaving the others to be searched.
fn report(e: &anyhow::Error) {
    let _ = writeln!(std::io::stderr(), "smmap: error: {}", crate::describe(e));
}

/// The files to search, with their sizes (0 when unknown: the search will
/// report why). Directories are walked when `recursive`; problems met while
/// walking are reported and set `failed`.
fn collect_files(paths: &[PathBuf], recursive: bool, failed: &mut bool) -> Vec<(PathBuf, u64)> {
    let mut files = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                if recursive {
                    walk(path, &mut files, failed);
                } else {
                    *failed = true;
                    report(&anyhow::anyhow!(
                        "{} is a directory (use -r to search the files in it)",
                        path.display()
                    ));
                }
            }
            Ok(meta) if meta.is_file() => match crate::limits::check_size(path, meta.len()) {
                Ok(()) => files.push((path.clone(), meta.len())),
                Err(e) => {
                    *failed = true;
                    report(&e);
                }
            },
            // A FIFO or a device: the engine refuses it, naming it.
            Ok(meta) => files.push((path.clone(), meta.len())),
            // Missing or unreadable: let the engine say why, naming the path.
            Err(_) => files.push((path.clone(), 0)),
        }
    }
    files
}

/// Adds the regular files under `dir`, in name order, depth first, without
/// following symbolic links.
fn walk(dir: &std::path::Path, files: &mut Vec<(PathBuf, u64)>, failed: &mut bool) {
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        match entry.and_then(|e| Ok((e.metadata()?, e))) {
            // As a file named directly: one whose size says nothing of its
            // bytes (a kernel's) is refused, naming it.
            Ok((meta, e)) if meta.is_file() => {
                match crate::limits::check_size(e.path(), meta.len()) {
                    Ok(()) => files.push((e.into_path(), meta.len())),
                    Err(err) => {
                        *failed = true;
                        report(&err);
                    }
                }
            }
            // Directories, links, FIFOs, sockets, devices: not searched.
            Ok(_) => {}
            Err(e) => {
                *failed = true;
                report(&anyhow::anyhow!("cannot walk {}: {e}", dir.display()));
            }
        }
    }
}

/// Parses a hexadecimal pattern: pairs of digits, optionally prefixed with
/// `0x`, separated by any whitespace, `:` or `-`. Each group between
/// separators is whole bytes (`dead beef`, `de:ad`, not `d ead`): a digit
/// is never paired with one across a separator.
pub fn parse_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    let trimmed = text.trim();
    let body = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
        .unwrap_or(trimmed);
    // Positions are counted in the text as given.
    let skipped = text.len() - body.len() - (text.len() - text.trim_end().len());
    let mut digits = Vec::with_capacity(body.len());
    // Where the current group began: its digits and its character position.
    let mut group = (0usize, 0usize);
    for (i, c) in body.char_indices() {
        let i = i + skipped;
        if c.is_whitespace() || c == ':' || c == '-' {
            odd_group(text, &digits, group)?;
            group = (digits.len(), text[..i].chars().count() + 1);
            continue;
        }
        match c.to_digit(16) {
            Some(d) => digits.push(d as u8),
            None => {
                // Counted in characters, as a person reads the text.
                let at = text[..i].chars().count();
                bail!("invalid hex pattern {text:?}: {c:?} at position {at} is not a hex digit")
            }
        }
    }
    odd_group(text, &digits, group)?;
    Ok(digits
        .chunks(2)
        .map(|pair| pair[0] << 4 | pair[1])
        .collect())
}

/// Refuses a group of hex digits (from `group.0` in `digits`, character
/// `group.1` in `text`) that is not whole bytes.
fn odd_group(text: &str, digits: &[u8], group: (usize, usize)) -> anyhow::Result<()> {
    let n = digits.len() - group.0;
    if n % 2 == 1 {
        bail!(
            "invalid hex pattern {text:?}: the group at position {} has an odd number of hex \
             digits ({n}); each byte takes two",
            group.1
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_patterns() {
        assert_eq!(parse_hex("deadBEEF").unwrap(), [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(parse_hex("0x0a0B").unwrap(), [0x0a, 0x0b]);
        assert_eq!(
            parse_hex(" de ad:be-ef ").unwrap(),
            [0xde, 0xad, 0xbe, 0xef]
        );
        assert!(parse_hex("").unwrap().is_empty());
        let e = parse_hex("zz").unwrap_err().to_string();
        assert!(e.contains("'z'") && e.contains("not a hex digit"), "{e}");
        let e = parse_hex("abc").unwrap_err().to_string();
        assert!(e.contains("odd number"), "{e}");
        // A digit is never paired across a separator: "1 2 3 4" is not
        // 12 34, nor "d ead" de ad.
        for (text, at) in [("1 2 3 4", 0), ("d ead", 0), ("de a d", 3), ("0xab:c:d", 5)] {
            let e = parse_hex(text).unwrap_err().to_string();
            assert!(
                e.contains("odd number") && e.contains(&format!("group at position {at} ")),
                "{text:?}: {e}"
            );
        }
        assert_eq!(parse_hex("01 02:0304").unwrap(), [1, 2, 3, 4]);
        // Positions count in the text as given, prefix and spaces included.
        for (text, at) in [
            ("0xde zz", 5),
            ("  zz", 2),
            (" 0Xab:q ", 6),
            ("\u{3000}zz", 1),
            ("é", 0),
        ] {
            let e = parse_hex(text).unwrap_err().to_string();
            assert!(e.contains(&format!("at position {at} ")), "{text:?}: {e}");
        }
    }
}
