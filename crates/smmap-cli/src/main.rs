//! `smmap`: the sliding-window memory-map manager put to work from the shell.
//!
//! Subcommands: `bench` (measure the engine against raw `mmap` and `pread` on
//! this machine), `find` (byte patterns in files of any size), `dump` (hex +
//! ASCII), `read` (typed values) and `stat` (what a full scan would map).
//! Every file is read through the engine under fixed memory and mapping
//! budgets (`--window`, `--max-memory`, `--max-handles`).
//!
//! Exit status: 0 on success, 1 when `find` found nothing, 2 on any error
//! (the message goes to stderr and names the file and offset), 130 when
//! interrupted. Writing to a closed pipe (`smmap find … | head`) ends the
//! program quietly with status 0. A file truncated by another process while
//! it is mapped ends the program by `SIGBUS` (see the README).

mod bench;
mod dump;
mod find;
mod limits;
mod output;
mod progress;
mod ranges;
mod read;
mod size;
mod stat;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The command line.
#[derive(Parser, Debug)]
#[command(
    name = "smmap",
    version,
    about = "Benchmark, search, dump and read files of any size through a sliding-window memory-map manager",
    long_about = "Benchmark, search, dump and read files of any size through a sliding-window \
memory-map manager: windows of files are mapped on demand, the mapped bytes and the number of \
live mappings stay under fixed limits, and the least-recently-used unused window is unmapped when \
a new one is needed.",
    after_help = "Examples:\n  \
smmap bench                          # measure this machine (1 GiB file + 2,000 small files)\n  \
smmap find -r 'PACK' /var/lib/repos  # every offset of a pattern, in every file under a directory\n  \
smmap dump data.bin --offset 4k --length 64\n  \
smmap read data.bin --offset 8 --type u32be --count 4\n  \
smmap stat --window 64MiB big.iso\n\n\
Sizes: 4096, 0x1000, 4k, 64MiB, 1GiB (k/M/G/T = 1024ⁿ; KB/MB/GB = 1000ⁿ).\n\
Exit status: 0 success, 1 `find` found nothing, 2 error, 130 interrupted."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
enum Command {
    /// Measure the engine against raw whole-file mmap and pread on this machine
    Bench(bench::BenchArgs),
    /// Print every offset where a byte pattern occurs
    Find(find::FindArgs),
    /// Print a hex + ASCII dump (the format of `hexdump -C -v`)
    Dump(dump::DumpArgs),
    /// Print typed values (u8…u64, i8…i64, f32, f64, le/be) at an offset
    Read(read::ReadArgs),
    /// Print file sizes and how many windows and bytes a full scan would map
    Stat(stat::StatArgs),
}

/// An error that has already been reported (or needs no message) and only
/// sets the exit status.
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
                return ExitCode::from(*code);
            }
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            // Writing the message may itself fail (stderr closed): nothing
            // more can be done then.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "smmap: error: {}", describe(&e));
            ExitCode::from(2)
        }
    }
}

/// Parses the command line and runs the subcommand.
fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(args) => bench::run(&args),
        Command::Find(args) => find::run(&args),
        Command::Dump(args) => dump::run(&args),
        Command::Read(args) => read::run(&args),
        Command::Stat(args) => stat::run(&args),
    }
}

/// The error and its causes on one line, `outer: inner: …`, leaving out a
/// cause whose text an outer message already includes (the engine's errors
/// repeat the operating system's reason in their own message).
pub fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// True if the error comes from writing to a pipe whose reader has gone.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_subcommand_has_an_example() {
        for sub in Cli::command().get_subcommands() {
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(help.contains("smmap "), "{} has no example", sub.get_name());
        }
    }

    #[test]
    fn causes_are_not_repeated() {
        // "No such file" on Unix and Windows alike, in the system's words.
        let io = std::io::Error::from_raw_os_error(2);
        let context = format!("cannot stat f: {io}");
        let inner = anyhow::Error::new(io).context(context.clone());
        assert_eq!(describe(&inner), context);
        let outer = anyhow::anyhow!("low").context("high");
        assert_eq!(describe(&outer), "high: low");
    }

    #[test]
    fn broken_pipe_is_recognised_through_context() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let e = anyhow::Error::new(io).context("writing a match");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
