//! A command's report on standard output: pretty JSON (`--json`) or the
//! command's own table.

use std::io::{BufWriter, StdoutLock, Write};

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
