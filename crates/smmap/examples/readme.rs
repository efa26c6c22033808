//! The README's example, kept compiling: `cargo run -p smmap --example readme [FILE]`
//! reads a file (by default, this example's own source) through a window.

fn main() -> Result<(), smmap::Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| file!().to_string());
    let manager = smmap::SlidingWindowMapManager::new();
    let mut cursor = manager.make_cursor(path.as_str())?;
    cursor.use_region(3, 100)?; // map a window holding offset 3
    let bytes: &[u8] = cursor.buffer(); // borrowed: the window cannot move
    println!(
        "{} bytes at offset {}: {:?}",
        bytes.len(),
        cursor.ofs_begin(),
        String::from_utf8_lossy(bytes)
    );
    let mut buf = smmap::SlidingWindowMapBuffer::new(cursor, 0, u64::MAX)?;
    println!(
        "the file has {} bytes; \"smmap\" first at {:?}",
        buf.len(),
        buf.find(b"smmap", 0)?
    );
    Ok(())
}
