//! `smmap read PATH --offset N --type T [--count K]`: typed values.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use smmap::{SlidingWindowMapBuffer, ValueType};

use crate::limits::{check_file, LimitArgs};
use crate::output;
use crate::size::{parse_count, parse_size};

/// Options of `smmap read`.
#[derive(Args, Debug)]
#[command(after_help = "\
Types: u8 u16 u32 u64 i8 i16 i32 i64 f32 f64, with a byte-order suffix le (little endian, the \
default) or be (big endian): u32be, i64le, f64be. Values are read one after the other from \
OFFSET and printed one per line, in decimal. A value that straddles two windows is read whole.

Examples:
  smmap read pack.idx --offset 8 --type u32be --count 256   # a git pack index fan-out table
  smmap read data.bin --offset 0x10 --type f64le
  smmap read image.png --offset 16 --type u32be --count 2   # PNG width and height")]
pub struct ReadArgs {
    /// The file to read
    #[arg(value_name = "PATH")]
    path: PathBuf,

    /// Offset of the first value (a size: 4096, 0x1000, 4k)
    #[arg(short, long, value_name = "N", value_parser = parse_size)]
    offset: u64,

    /// The type of each value: u8…u64, i8…i64, f32, f64, with le or be
    #[arg(short = 't', long = "type", value_name = "TYPE")]
    ty: ValueType,

    /// How many values to read, one after the other
    #[arg(short = 'k', long, value_name = "K", default_value = "1", value_parser = parse_count)]
    count: usize,

    #[command(flatten)]
    limits: LimitArgs,
}

/// Runs `smmap read`.
pub fn run(args: &ReadArgs) -> anyhow::Result<()> {
    let path = &args.path;
    check_file(path, "; read needs a file")?;
    let manager = args.limits.manager();
    let cursor = manager.make_cursor(path)?;
    let size = cursor.file_size().unwrap_or(0);
    let width = args.ty.size() as u64;
    let bytes = (args.count as u64).checked_mul(width);
    let end = bytes.and_then(|b| args.offset.checked_add(b));
    // No values past the end either (as `dump` refuses an offset there).
    match end {
        Some(end) if end <= size => {}
        _ => bail!(
            "cannot read {} × {} ({}) at offset {} of {}: the file has {}",
            args.count,
            args.ty,
            bytes.map_or_else(|| "too many bytes".to_string(), output::bytes),
            args.offset,
            path.display(),
            output::bytes(size)
        ),
    }
    if args.count == 0 {
        return Ok(());
    }
    let mut buffer = SlidingWindowMapBuffer::new(cursor, args.offset, u64::MAX)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    for i in 0..args.count as u64 {
        let at = i * width;
        let value = buffer.read_typed(at, args.ty).with_context(|| {
            format!(
                "cannot read {} at offset {} of {}",
                args.ty,
                args.offset + at,
                path.display()
            )
        })?;
        writeln!(out, "{value}").context("cannot write to stdout")?;
    }
    out.flush().context("cannot write to stdout")?;
    Ok(())
}
