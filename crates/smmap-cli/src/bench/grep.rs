//! `smmap bench --find`: `smmap find --count` on one large page-cached
//! file, with all threads and with one, beside ripgrep
//! (`rg --count-matches -a -F`) when it is on the `PATH`. Every command runs
//! as a process of its own, interleaved with the others, `--repeat` times
//! (at least 5); the counts must agree.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use super::data::{self, Rng};
use super::{BenchArgs, Notes};

/// The pattern looked for; planted three times per MiB of random bytes.
const NEEDLE: &[u8] = b"NEEDLE";

/// One command's runs (JSON with `--json`: `{schema: 1, file_size, threads,
/// matches, commands: [FindRun…]}`).
#[derive(Serialize, Debug)]
struct FindRun {
    /// The command line, program first.
    command: String,
    /// Best wall time, nanoseconds.
    best_ns: u64,
    /// Median wall time, nanoseconds.
    median_ns: u64,
    /// `best_ns` over ripgrep's (absent without ripgrep).
    #[serde(skip_serializing_if = "Option::is_none")]
    vs_ripgrep: Option<f64>,
}

#[derive(Serialize, Debug)]
struct FindReport {
    schema: u32,
    file_size: u64,
    threads: usize,
    matches: u64,
    commands: Vec<FindRun>,
}

/// Runs the comparison.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let repeat = args.repeat.max(5);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let me = std::env::current_exe().context("cannot find the smmap binary")?;
    let me = me.to_string_lossy().into_owned();
    let needle = std::str::from_utf8(NEEDLE).expect("ASCII");
    let rg = Command::new("rg").arg("--version").output().is_ok();
    let mut commands: Vec<Vec<String>> = Vec::new();
    let file = "large.bin";
    if rg {
        commands.push(
            ["rg", "--count-matches", "-a", "-F", needle, file]
                .map(String::from)
                .to_vec(),
        );
    }
    for j in [threads, 1] {
        let j = j.to_string();
        commands.push(vec![
            me.clone(),
            "find".into(),
            "--count".into(),
            "-j".into(),
            j,
            needle.into(),
            file.into(),
        ]);
        if threads == 1 {
            break;
        }
    }
    let mut notes = Notes::new(args.quiet, 1 + (repeat * commands.len()) as u64);
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = data::temp_dir(&parent)?;
    notes.stage(format!(
        "writing {} to {}",
        indicatif::HumanBytes(args.size),
        dir.path().display()
    ));
    write_with_needles(&dir.path().join(file), args.size, args.seed)?;
    notes.progress.inc(1);
    let mut times = vec![Vec::new(); commands.len()];
    let mut matches: Option<(u64, usize)> = None;
    for round in 0..repeat {
        for (i, c) in commands.iter().enumerate() {
            data::check_interrupted()?;
            notes
                .progress
                .set_message(format!("{} (run {} of {repeat})", short(c), round + 1));
            let (time, count) = time_one(c, dir.path())?;
            match matches {
                None => matches = Some((count, i)),
                Some((n, first)) if n != count => bail!(
                    "`{}` counted {count} matches but `{}` counted {n}",
                    short(c),
                    short(&commands[first])
                ),
                Some(_) => {}
            }
            times[i].push(time);
            notes.progress.inc(1);
        }
    }
    notes.progress.finish();
    drop(dir);
    let ns = |d: Duration| d.as_nanos().min(u128::from(u64::MAX)) as u64;
    let rg_best = rg.then(|| times[0].iter().min().copied().unwrap_or_default());
    let runs = commands
        .iter()
        .zip(&mut times)
        .map(|(c, t)| {
            t.sort();
            let best = t[0];
            FindRun {
                command: short(c),
                best_ns: ns(best),
                median_ns: ns(t[t.len() / 2]),
                vs_ripgrep: rg_best.map(|r| best.as_secs_f64() / r.as_secs_f64().max(1e-9)),
            }
        })
        .collect();
    let report = FindReport {
        schema: 1,
        file_size: args.size,
        threads,
        matches: matches.map_or(0, |m| m.0),
        commands: runs,
    };
    crate::output::print(args.json, &report, |out| {
        write_table(out, &report, repeat, rg)
    })
}

/// The command as shown: the program's name (without Windows's `.exe`) and
/// its arguments.
fn short(c: &[String]) -> String {
    let program = Path::new(&c[0])
        .file_stem()
        .map_or(c[0].clone(), |n| n.to_string_lossy().into_owned());
    std::iter::once(program)
        .chain(c[1..].iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `c` in `dir`; its wall time and the count it printed (the number
/// after the last `:` of its output).
fn time_one(c: &[String], dir: &Path) -> anyhow::Result<(Duration, u64)> {
    let start = Instant::now();
    let out = Command::new(&c[0])
        .args(&c[1..])
        .current_dir(dir)
        .output()
        .with_context(|| format!("cannot run {}", short(c)))?;
    let time = start.elapsed();
    // Ctrl-C reaches the command too (the terminal signals the process
    // group): if it died of that, the run was interrupted, not the command
    // at fault.
    data::check_interrupted()?;
    if died_of_interrupt(&out.status) {
        bail!(data::Interrupted);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let count = text.trim().rsplit(':').next().and_then(|n| n.parse().ok());
    match count {
        Some(n) if out.status.success() => Ok((time, n)),
        _ => bail!(
            "`{}` failed ({}): {}{}",
            short(c),
            out.status,
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// True if a command ended by Ctrl-C or a termination request (which may
/// reach it before this process's handler has seen its own).
fn died_of_interrupt(status: &std::process::ExitStatus) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        matches!(status.signal(), Some(libc::SIGINT | libc::SIGTERM))
    }
    #[cfg(windows)]
    {
        // STATUS_CONTROL_C_EXIT.
        status.code() == Some(0xC000_013A_u32 as i32)
    }
}

/// Writes `size` random bytes with [`NEEDLE`] planted three times per MiB.
fn write_with_needles(path: &Path, size: u64, seed: u64) -> anyhow::Result<()> {
    let mut file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut rng = Rng::new(seed ^ 0x6e65);
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        data::check_interrupted()?;
        let n = left.min(block.len() as u64) as usize;
        let block = &mut block[..n];
        rng.fill(block);
        for _ in 0..3 {
            if n > NEEDLE.len() {
                let at = rng.below((n - NEEDLE.len()) as u64) as usize;
                block[at..at + NEEDLE.len()].copy_from_slice(NEEDLE);
            }
        }
        file.write_all(block)
            .with_context(|| format!("cannot write {}", path.display()))?;
        left -= n as u64;
    }
    Ok(())
}

fn write_table(
    out: &mut impl Write,
    r: &FindReport,
    repeat: usize,
    rg: bool,
) -> std::io::Result<()> {
    writeln!(
        out,
        "smmap bench --find: {} of random bytes with {} matches, page-cached; best and median of {repeat} runs",
        indicatif::HumanBytes(r.file_size),
        r.matches
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<44} {:>9} {:>9} {:>8} {:>8}",
        "command", "best ms", "median ms", "GiB/s", "vs rg"
    )?;
    for c in &r.commands {
        let gibs = r.file_size as f64 / (1u64 << 30) as f64 / (c.best_ns.max(1) as f64 / 1e9);
        let vs = c.vs_ripgrep.map_or("-".into(), |v| format!("{v:.2}"));
        writeln!(
            out,
            "{:<44} {:>9.1} {:>9.1} {:>8.2} {:>8}",
            c.command,
            c.best_ns as f64 / 1e6,
            c.median_ns as f64 / 1e6,
            gibs,
            vs
        )?;
    }
    if !rg {
        writeln!(
            out,
            "(ripgrep is not on the PATH: `apt-get install ripgrep` to compare)"
        )?;
    }
    Ok(())
}
