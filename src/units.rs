//! Durations and sizes as users type them, parsed in one place for every flag, overflow-checked:
//! a value too large to represent is refused, never wrapped or turned into a panic later
//! (`Instant + timeout`).

use std::fmt;
use std::time::Duration;

/// The longest duration any flag accepts: a year. Anything longer is a typo, and keeping
/// durations far below `u64` seconds means `Instant::now() + d` (and small multiples) cannot
/// overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// A value that is not a duration or a size, with the text and what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError(pub String);

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UnitError {}

/// Whether a zero duration makes sense for the flag (`--tag-ttl 0`: always revalidate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    Allowed,
    Refused,
}

/// `30`, `30s`, `1500ms`, `5m`, `1h`, `2d` → a duration (a bare number is seconds).
pub fn parse_duration(s: &str, zero: Zero) -> Result<Duration, UnitError> {
    let t = s.trim();
    let bad = || {
        UnitError(format!(
            "`{s}` is not a duration; use seconds such as `30`, or `30s`, `1500ms`, `5m`, `1h`, `2d`"
        ))
    };
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| too_long(s))?;
    let millis_per: u64 = match unit {
        "" | "s" => 1000,
        "ms" => 1,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    let ms = n.checked_mul(millis_per).ok_or_else(|| too_long(s))?;
    let d = Duration::from_millis(ms);
    if d > MAX_DURATION {
        return Err(too_long(s));
    }
    if d.is_zero() && zero == Zero::Refused {
        return Err(UnitError(format!(
            "`{s}` is zero; give a positive duration such as `30s`"
        )));
    }
    Ok(d)
}

fn too_long(s: &str) -> UnitError {
    UnitError(format!(
        "`{s}` is longer than the longest accepted duration ({} days)",
        MAX_DURATION.as_secs() / 86_400
    ))
}

/// clap value parser: a positive duration.
pub fn positive_duration(s: &str) -> Result<Duration, UnitError> {
    parse_duration(s, Zero::Refused)
}

/// clap value parser: a duration, zero allowed.
pub fn any_duration(s: &str) -> Result<Duration, UnitError> {
    parse_duration(s, Zero::Allowed)
}

/// `10G`, `512M`, `1.5GiB`, `1000000` → bytes (K, M, G, T are powers of 1024; `B` / `iB`
/// optional). At most 3 decimal places; a result that does not fit 64 bits is refused.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let t = s.trim();
    let bad = || {
        UnitError(format!(
            "size `{s}` must look like `10G`, `512M`, `1.5GiB` or a number of bytes"
        ))
    };
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit
        .trim()
        .to_ascii_lowercase()
        .trim_end_matches("ib")
        .trim_end_matches('b')
    {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => {
            return Err(UnitError(format!(
                "size `{s}` has an unknown unit (use K, M, G or T)"
            )))
        }
    };
    let (whole, frac) = match num.split_once('.') {
        Some((w, f)) => (w, f),
        None => (num, ""),
    };
    if (whole.is_empty() && frac.is_empty()) || frac.contains('.') || frac.len() > 3 {
        return Err(bad());
    }
    let too_big = || UnitError(format!("size `{s}` is too large"));
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_big())?
    };
    // The fraction in thousandths: `1.5` → 500.
    let frac_milli: u64 = if frac.is_empty() {
        0
    } else {
        let padded = format!("{frac:0<3}");
        padded.parse().map_err(|_| bad())?
    };
    let bytes = whole
        .checked_mul(mult)
        .and_then(|b| b.checked_add(frac_milli.checked_mul(mult)? / 1000))
        .ok_or_else(too_big)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |s| parse_duration(s, Zero::Allowed);
        assert_eq!(d("30").unwrap(), Duration::from_secs(30));
        assert_eq!(d(" 30s ").unwrap(), Duration::from_secs(30));
        assert_eq!(d("1500ms").unwrap(), Duration::from_millis(1500));
        assert_eq!(d("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(d("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(d("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(d("0").unwrap(), Duration::ZERO);
        assert_eq!(d("366d").unwrap(), MAX_DURATION);
        for bad in ["", "s", "5 minutes", "-1", "1.5s", "1w", "m5"] {
            assert!(d(bad).is_err(), "{bad}");
        }
        // Huge values are refused, never wrapped (n * 60 overflowing u64 used to wrap).
        for huge in [
            "18446744073709551615",
            "18446744073709551615m",
            "367d",
            "307445734561825861m",
        ] {
            let e = d(huge).unwrap_err();
            assert!(e.0.contains("longest accepted"), "{huge}: {e}");
        }
        assert!(parse_duration("0s", Zero::Refused).is_err());
        assert!(positive_duration("1ms").is_ok());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10G").unwrap(), 10 << 30);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("42").unwrap(), 42);
        assert_eq!(parse_size("42b").unwrap(), 42);
        assert_eq!(parse_size(".5K").unwrap(), 512);
        assert_eq!(parse_size("16777215T").unwrap(), 16_777_215 << 40);
        for bad in ["10X", "", ".", "1.2.3", "1.2345G", "G", "-1"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        for huge in ["16777216T", "99999999999999999999", "18446744073709551615K"] {
            assert!(
                parse_size(huge).unwrap_err().0.contains("too large"),
                "{huge}"
            );
        }
    }
}
