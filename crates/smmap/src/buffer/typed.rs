//! Typed reads: integers and floats of either byte order at an offset.

use std::fmt;
use std::str::FromStr;

use super::SlidingWindowMapBuffer;
use crate::error::Result;

/// Byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endian {
    /// Least significant byte first.
    Little,
    /// Most significant byte first (network order).
    Big,
}

mod sealed {
    pub trait Sealed {}
}

/// A number that can be read from bytes: `u8`…`u64`, `i8`…`i64`, `f32`, `f64`.
pub trait Primitive: sealed::Sealed + Copy {
    /// Its size in bytes.
    const SIZE: usize;
    /// Decodes it from exactly `SIZE` bytes.
    fn from_bytes(bytes: &[u8], endian: Endian) -> Self;
}

macro_rules! primitive {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Primitive for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            #[inline]
            fn from_bytes(bytes: &[u8], endian: Endian) -> Self {
                let arr = bytes.try_into().expect("exactly SIZE bytes");
                match endian {
                    Endian::Little => <$t>::from_le_bytes(arr),
                    Endian::Big => <$t>::from_be_bytes(arr),
                }
            }
        }
    )*};
}
primitive!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

impl SlidingWindowMapBuffer {
    /// Reads a `T` at index `i` in the given byte order, across windows if it
    /// straddles two.
    ///
    /// Errors: fewer than `T::SIZE` bytes from `i`
    /// ([`Error::OutOfRange`](crate::Error::OutOfRange)), or a window could
    /// not be mapped (the buffer stays usable, as after [`get`](Self::get)).
    #[inline]
    pub fn read_value<T: Primitive>(&mut self, i: u64, endian: Endian) -> Result<T> {
        match self.chunk_for(i, T::SIZE as u64) {
            Ok(chunk) if chunk.len() >= T::SIZE => {
                return Ok(T::from_bytes(&chunk[..T::SIZE], endian));
            }
            // It straddles two windows, or runs past the end (which the
            // stitched read below reports for the whole value).
            Ok(_) | Err(crate::Error::OutOfRange { .. }) => {}
            // A failed map is the caller's to see, once: a second try here
            // would count and trace a second miss, and could hide the first.
            Err(e) => return Err(e),
        }
        let mut bytes = [0u8; 8];
        self.read_exact_at(i, &mut bytes[..T::SIZE])?;
        Ok(T::from_bytes(&bytes[..T::SIZE], endian))
    }

    /// Reads a little-endian `T` at index `i`.
    #[inline]
    pub fn read_le<T: Primitive>(&mut self, i: u64) -> Result<T> {
        self.read_value(i, Endian::Little)
    }

    /// Reads a big-endian `T` at index `i`.
    #[inline]
    pub fn read_be<T: Primitive>(&mut self, i: u64) -> Result<T> {
        self.read_value(i, Endian::Big)
    }

    /// Reads a value of a type chosen at run time (see [`ValueType`]).
    pub fn read_typed(&mut self, i: u64, ty: ValueType) -> Result<Value> {
        let e = ty.endian;
        Ok(match ty.kind {
            Kind::U8 => Value::U8(self.read_value(i, e)?),
            Kind::U16 => Value::U16(self.read_value(i, e)?),
            Kind::U32 => Value::U32(self.read_value(i, e)?),
            Kind::U64 => Value::U64(self.read_value(i, e)?),
            Kind::I8 => Value::I8(self.read_value(i, e)?),
            Kind::I16 => Value::I16(self.read_value(i, e)?),
            Kind::I32 => Value::I32(self.read_value(i, e)?),
            Kind::I64 => Value::I64(self.read_value(i, e)?),
            Kind::F32 => Value::F32(self.read_value(i, e)?),
            Kind::F64 => Value::F64(self.read_value(i, e)?),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F32,
    F64,
}

/// A number type named at run time: `u8`…`u64`, `i8`…`i64`, `f32`, `f64`,
/// with a byte order suffix `le` or `be` (default little endian; none for
/// one-byte types). Parses from strings such as `"u32be"`, `"f64le"`, `"i8"`.
///
/// ```
/// let t: smmap::ValueType = "u32be".parse().unwrap();
/// assert_eq!(t.size(), 4);
/// assert_eq!(t.to_string(), "u32be");
/// assert!("u33".parse::<smmap::ValueType>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ValueType {
    kind: Kind,
    endian: Endian,
}

const NAMES: [(&str, Kind, usize); 10] = [
    ("u8", Kind::U8, 1),
    ("u16", Kind::U16, 2),
    ("u32", Kind::U32, 4),
    ("u64", Kind::U64, 8),
    ("i8", Kind::I8, 1),
    ("i16", Kind::I16, 2),
    ("i32", Kind::I32, 4),
    ("i64", Kind::I64, 8),
    ("f32", Kind::F32, 4),
    ("f64", Kind::F64, 8),
];

impl ValueType {
    /// Size in bytes.
    pub fn size(&self) -> usize {
        NAMES
            .iter()
            .find(|(_, k, _)| *k == self.kind)
            .map_or(0, |n| n.2)
    }

    /// The byte order (little endian for one-byte types, whatever their
    /// suffix).
    pub fn endian(&self) -> Endian {
        self.endian
    }
}

impl FromStr for ValueType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        let (base, endian) = match lower.strip_suffix("le") {
            Some(b) => (b, Endian::Little),
            None => match lower.strip_suffix("be") {
                Some(b) => (b, Endian::Big),
                None => (lower.as_str(), Endian::Little),
            },
        };
        NAMES
            .iter()
            .find(|(n, _, _)| *n == base)
            // A byte has no order: "u8be" is "u8", so that a type prints
            // as it parses and equal types compare equal.
            .map(|&(_, kind, size)| ValueType {
                kind,
                endian: if size == 1 { Endian::Little } else { endian },
            })
            .ok_or_else(|| {
                format!("unknown type {s:?}: expected u8, u16, u32, u64, i8, i16, i32, i64, f32 or f64, with le or be")
            })
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = NAMES
            .iter()
            .find(|(_, k, _)| *k == self.kind)
            .map_or("?", |n| n.0);
        let suffix = match (self.size(), self.endian) {
            (1, _) => "",
            (_, Endian::Little) => "le",
            (_, Endian::Big) => "be",
        };
        write!(f, "{name}{suffix}")
    }
}

/// A number read by [`SlidingWindowMapBuffer::read_typed`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum Value {
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
}

/// Integers in decimal; floats in the shortest form that reads back as the
/// same number, with an exponent where they are very large or very small
/// (`-1.25e-196`, not two hundred zeros), `NaN` and `inf` as such.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::U8(v) => write!(f, "{v}"),
            Value::U16(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::I8(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v:?}"),
            Value::F64(v) => write!(f, "{v:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_short_with_an_exponent_at_the_extremes() {
        for (v, text) in [
            (Value::F64(1.5), "1.5"),
            (Value::F64(-1.25e-196), "-1.25e-196"),
            (Value::F64(1e300), "1e300"),
            (Value::F32(-2.25), "-2.25"),
            (Value::F32(3.0e-30), "3e-30"),
            (Value::F64(f64::NAN), "NaN"),
            (Value::F64(f64::NEG_INFINITY), "-inf"),
            (Value::U64(u64::MAX), "18446744073709551615"),
        ] {
            assert_eq!(v.to_string(), text);
        }
    }

    #[test]
    fn names_round_trip() {
        for (n, _, size) in NAMES {
            for suffix in ["", "le", "be"] {
                let t: ValueType = format!("{n}{suffix}").parse().unwrap();
                assert_eq!(t.size(), size);
                let back: ValueType = t.to_string().parse().unwrap();
                assert_eq!(back, t, "{n}{suffix} prints as {t}");
                if size == 1 {
                    assert_eq!(t, n.parse().unwrap(), "a byte has no order");
                }
            }
        }
        assert_eq!("U16BE".parse::<ValueType>().unwrap().endian(), Endian::Big);
        for bad in ["", "u", "u33", "le", "f16", "u32xe"] {
            let e = bad.parse::<ValueType>().unwrap_err();
            assert!(e.contains("unknown type"), "{e}");
        }
    }

    #[test]
    fn decoding() {
        assert_eq!(u32::from_bytes(&[1, 2, 3, 4], Endian::Big), 0x0102_0304);
        assert_eq!(u32::from_bytes(&[1, 2, 3, 4], Endian::Little), 0x0403_0201);
        assert_eq!(i16::from_bytes(&[0xff, 0xfe], Endian::Big), -2);
        assert_eq!(f64::from_bytes(&1.5f64.to_be_bytes(), Endian::Big), 1.5);
    }
}
