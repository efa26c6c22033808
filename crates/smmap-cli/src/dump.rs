//! `smmap dump PATH`: a hex + ASCII dump in the format of `hexdump -C -v`.

use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use smmap::SlidingWindowMapBuffer;

use crate::limits::{check_file, LimitArgs};
use crate::output;
use crate::size::parse_size;

/// Bytes per line of the dump.
const LINE: usize = 16;

/// Options of `smmap dump`.
#[derive(Args, Debug)]
#[command(after_help = "\
Output: the format of `hexdump -C -v -s OFFSET -n LENGTH`: each line is the absolute offset \
(8 or more hex digits), 16 bytes in hex (an extra space after the 8th) and the same bytes as \
ASCII between bars ('.' for anything not printable); a last line holds the offset just past \
the dump. An empty file prints nothing. An offset at or past the end of a file is an error \
(hexdump prints the file's end offset).

Examples:
  smmap dump data.bin                            # the whole file
  smmap dump data.bin --offset 0x1000 --length 64
  smmap dump big.iso --offset 32k --length 2k --window 1MiB")]
pub struct DumpArgs {
    /// The file to dump
    #[arg(value_name = "PATH")]
    path: PathBuf,

    /// First byte to dump (a size: 4096, 0x1000, 4k)
    #[arg(short, long, value_name = "N", default_value = "0", value_parser = parse_size)]
    offset: u64,

    /// Bytes to dump (default: to the end of the file; clipped to it)
    #[arg(short = 'n', long, value_name = "N", value_parser = parse_size)]
    length: Option<u64>,

    #[command(flatten)]
    limits: LimitArgs,
}

/// Runs `smmap dump`.
pub fn run(args: &DumpArgs) -> anyhow::Result<()> {
    let path = &args.path;
    check_file(path, "; dump needs a file")?;
    let manager = args.limits.manager();
    let cursor = manager.make_cursor(path)?;
    let size = cursor.file_size().unwrap_or(0);
    let length = args.length.unwrap_or(u64::MAX);
    if size == 0 && args.offset == 0 {
        return Ok(());
    }
    if size == 0 {
        bail!(
            "offset {} is past the end of {} (an empty file)",
            args.offset,
            path.display()
        );
    }
    if args.offset >= size {
        bail!(
            "offset {} is past the end of {} ({}; the last offset is {})",
            args.offset,
            path.display(),
            output::bytes(size),
            size - 1
        );
    }
    if length == 0 {
        return Ok(());
    }
    let mut buffer = SlidingWindowMapBuffer::new(cursor, args.offset, length)?;
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut block = vec![0u8; 1 << 16];
    let mut offset = args.offset;
    let mut text = String::with_capacity(80 * (block.len() / LINE));
    loop {
        let n = read_full(&mut buffer, &mut block)
            .with_context(|| format!("cannot read {} at offset {offset}", path.display()))?;
        if n == 0 {
            break;
        }
        text.clear();
        for line in block[..n].chunks(LINE) {
            format_line(&mut text, offset, line);
            offset += line.len() as u64;
        }
        out.write_all(text.as_bytes())
            .context("cannot write to stdout")?;
    }
    writeln!(out, "{offset:08x}").context("cannot write to stdout")?;
    out.flush().context("cannot write to stdout")?;
    Ok(())
}

/// Reads until `block` is full or the buffer ends, so that every line but
/// the last has 16 bytes.
fn read_full(buffer: &mut SlidingWindowMapBuffer, block: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < block.len() {
        match buffer.read(&mut block[done..])? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

/// Appends one `hexdump -C` line for `bytes` (at most 16) at `offset`.
pub fn format_line(out: &mut String, offset: u64, bytes: &[u8]) {
    use std::fmt::Write as _;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let _ = write!(out, "{offset:08x}  ");
    for i in 0..LINE {
        match bytes.get(i) {
            Some(&b) => {
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
                out.push(' ');
            }
            None => out.push_str("   "),
        }
        if i == 7 {
            out.push(' ');
        }
    }
    out.push_str(" |");
    out.extend(bytes.iter().map(|&b| {
        if (0x20..0x7f).contains(&b) {
            b as char
        } else {
            '.'
        }
    }));
    out.push_str("|\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_match_hexdump() {
        let mut s = String::new();
        format_line(&mut s, 0, b"Hello\n");
        assert_eq!(
            s,
            "00000000  48 65 6c 6c 6f 0a                                 |Hello.|\n"
        );
        s.clear();
        format_line(
            &mut s,
            0x1_0000_0010,
            &(0u8..16).map(|i| i + 0x41).collect::<Vec<_>>(),
        );
        assert_eq!(
            s,
            "100000010  41 42 43 44 45 46 47 48  49 4a 4b 4c 4d 4e 4f 50  |ABCDEFGHIJKLMNOP|\n"
        );
        s.clear();
        format_line(&mut s, 5, &[0, 0x7f, 0x80, 0xff, b' ', b'~', 1, 2, 3]);
        assert_eq!(
            s,
            "00000005  00 7f 80 ff 20 7e 01 02  03                       |.... ~...|\n"
        );
    }
}
