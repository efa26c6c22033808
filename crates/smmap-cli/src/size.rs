//! Parsing byte counts: `64MiB`, `1GiB`, `4k`, `4096`, `0x1000`.
//!
//! Units, case-insensitive, with an optional `B`:
//!
//! | suffix                | factor |
//! |-----------------------|--------|
//! | none, `B`             | 1      |
//! | `k`, `KiB`            | 1024   |
//! | `M`, `MiB`            | 1024²  |
//! | `G`, `GiB`            | 1024³  |
//! | `T`, `TiB`            | 1024⁴  |
//! | `KB`, `MB`, `GB`, `TB`| 1000ⁿ (SI, as `dd` and disk vendors use them) |
//!
//! A number may be written in hexadecimal with `0x` (no unit then), and may
//! contain `_` separators: `1_000_000`.

/// Parses a byte count such as `64MiB`, `4k`, `4096` or `0x1000`.
///
/// Errors name the input and say what is accepted; overflow of `u64` is an
/// error, not a wrap.
pub fn parse_size(input: &str) -> Result<u64, String> {
    let s: String = input.trim().chars().filter(|&c| c != '_').collect();
    if s.is_empty() {
        return Err("empty size: expected a number such as 4096, 4k, 64MiB or 1GiB".into());
    }
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        // Digits only (`from_str_radix` would take a sign).
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "invalid hexadecimal size {input:?}: expected e.g. 0x1000"
            ));
        }
        return u64::from_str_radix(hex, 16).map_err(|e| match e.kind() {
            std::num::IntErrorKind::PosOverflow => too_large(input),
            _ => format!("invalid hexadecimal size {input:?}: expected e.g. 0x1000"),
        });
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "invalid size {input:?}: expected a number such as 4096, 4k, 64MiB or 1GiB"
        ));
    }
    if unit.starts_with(['.', ',']) && unit[1..].starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "invalid size {input:?}: fractions are not accepted; write a whole number, in a \
             smaller unit if need be (1536MiB, not 1.5GiB)"
        ));
    }
    let factor = unit_factor(unit).ok_or_else(|| {
        format!("invalid unit {unit:?} in size {input:?}: expected k, M, G, T (1024ⁿ, also KiB, MiB…) or KB, MB, GB, TB (1000ⁿ)")
    })?;
    let n: u64 = digits.parse().map_err(|_| too_large(input))?;
    n.checked_mul(factor).ok_or_else(|| too_large(input))
}

/// The error of a size over `u64::MAX` bytes, however it was written.
fn too_large(input: &str) -> String {
    format!(
        "size {input:?} is too large (the limit is {} bytes)",
        u64::MAX
    )
}

/// The multiplier of a unit suffix, `None` if unknown.
fn unit_factor(unit: &str) -> Option<u64> {
    const K: u64 = 1024;
    let u = unit.trim().to_ascii_lowercase();
    Some(match u.as_str() {
        "" | "b" => 1,
        "k" | "ki" | "kib" => K,
        "m" | "mi" | "mib" => K * K,
        "g" | "gi" | "gib" => K * K * K,
        "t" | "ti" | "tib" => K * K * K * K,
        "kb" => 1000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return None,
    })
}

/// Parses a count of things (not bytes): plain or with `_` separators, or a
/// size-like suffix (`4k` = 4096).
pub fn parse_count(input: &str) -> Result<usize, String> {
    let n = parse_size(input)?;
    usize::try_from(n).map_err(|_| format!("{input:?} is too large (the limit is {})", usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_binary_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
        assert_eq!(parse_size("10B"), Ok(10));
        assert_eq!(parse_size(" 1_000 "), Ok(1000));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn si_units_and_hex() {
        assert_eq!(parse_size("1KB"), Ok(1000));
        assert_eq!(parse_size("3MB"), Ok(3_000_000));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("0x1000"), Ok(4096));
        assert_eq!(parse_size("0XfF"), Ok(255));
    }

    #[test]
    fn errors() {
        for bad in ["", "k", "abc", "12q", "1.5GiB", "-4", "0xZZ", "4 kilobytes"] {
            let e = parse_size(bad).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
        assert!(parse_size("99999999999999999999")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_size("16777216TiB").unwrap_err().contains("too large"));
        assert!(parse_size("0x10000000000000000")
            .unwrap_err()
            .contains("too large"));
        for bad in ["0xZZ", "0x+10", "0x-1", "0x"] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains("invalid hexadecimal"), "{bad}: {e}");
        }
        assert!(parse_size("12q").unwrap_err().contains("\"q\""));
        for bad in ["1.5GiB", "0.5", "2,5MB"] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains("fractions are not accepted"), "{bad}: {e}");
        }
        // Too large is said alike however the number is written.
        let limit = "(the limit is 18446744073709551615 bytes)";
        for big in ["99999999999999999999", "16777216TiB", "0x10000000000000000"] {
            let e = parse_size(big).unwrap_err();
            assert_eq!(e, format!("size {big:?} is too large {limit}"));
        }
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("2000"), Ok(2000));
        assert_eq!(parse_count("2k"), Ok(2048));
        assert!(parse_count("x").is_err());
    }
}
