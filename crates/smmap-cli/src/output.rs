//! A command's report on standard output: pretty JSON (`--json`) or the
//! command's own table.

use std::io::{BufWriter, StdoutLock, Write};
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// Writes `report` as JSON when `json` is set, else through `table`, then
/// flushes; a failed write (a closed pipe) is an error that says so.
pub fn print<T: Serialize>(
    json: bool,
    report: &T,
    table: impl FnOnce(&mut BufWriter<StdoutLock<'static>>) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    if json {
        // serde_json's error hides the io::Error from `source()`; turned
        // back into it, a closed pipe is seen as one (`is_broken_pipe`).
        serde_json::to_writer_pretty(&mut out, report)
            .map_err(std::io::Error::from)
            .context("cannot write to stdout")?;
        writeln!(out).context("cannot write to stdout")?;
    } else {
        table(&mut out).context("cannot write to stdout")?;
    }
    out.flush().context("cannot write to stdout")
}

/// Prints a report that comes with a chart drawn to `svg`: `drawn` is how
/// the drawing went, done before, so that a closed stdout (`… | head`)
/// loses no chart. The report is printed either way, then "chart drawn to
/// …" under a table; a chart that could not be drawn is the error, after
/// the figures.
pub fn print_with_chart<T: Serialize>(
    json: bool,
    report: &T,
    table: impl FnOnce(&mut BufWriter<StdoutLock<'static>>) -> std::io::Result<()>,
    svg: &Path,
    drawn: anyhow::Result<()>,
) -> anyhow::Result<()> {
    let printed = print(json, report, table);
    if let Err(e) = drawn {
        say_unless_closed(printed);
        return Err(e);
    }
    printed?;
    if !json {
        line(format_args!("chart drawn to {}", svg.display()))?;
    }
    Ok(())
}

/// Says on stderr why a report could not be written, unless it met a
/// closed pipe (which ends the program quietly): for a report whose
/// command fails for another reason, which decides the exit status.
pub fn say_unless_closed(printed: anyhow::Result<()>) {
    if let Err(e) = printed {
        if !crate::is_broken_pipe(&e) {
            let _ = writeln!(std::io::stderr(), "smmap: error: {}", crate::describe(&e));
        }
    }
}

/// Writes one more line of a table report (after [`print()`]).
pub fn line(text: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

/// A count of bytes in words: "1 byte", "10 bytes".
pub fn bytes(n: u64) -> String {
    if n == 1 {
        "1 byte".to_string()
    } else {
        format!("{n} bytes")
    }
}
