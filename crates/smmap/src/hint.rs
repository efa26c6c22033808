//! [`AccessHint`]: how a caller will read, passed to the kernel.

/// How the mapped bytes will be read, passed to the kernel with `madvise` for
/// each region a cursor or buffer uses. On a cold file a sequential hint alone
/// can double the speed of a scan (more read-ahead); a random hint stops
/// read-ahead that would be wasted. Windows takes no such hint for a mapped
/// view: there, hints are accepted and change nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessHint {
    /// Front to back: read ahead aggressively, drop pages behind.
    Sequential,
    /// Scattered: no read-ahead.
    Random,
    /// Soon: start reading the pages in now.
    WillNeed,
}

impl std::str::FromStr for AccessHint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sequential" => Ok(AccessHint::Sequential),
            "random" => Ok(AccessHint::Random),
            "willneed" | "will-need" => Ok(AccessHint::WillNeed),
            _ => Err(format!(
                "unknown access hint {s:?}: expected sequential, random or willneed"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!("random".parse(), Ok(AccessHint::Random));
        assert_eq!("will-need".parse(), Ok(AccessHint::WillNeed));
        assert_eq!("sequential".parse(), Ok(AccessHint::Sequential));
        assert!("Sequential".parse::<AccessHint>().is_err());
    }
}
