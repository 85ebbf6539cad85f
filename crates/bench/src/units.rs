//! The one way sizes and durations are written, in every flag of `ferry` (`serve`, the client
//! commands, `bench`), in `ferry serve --config` files and in the reports.
//!
//! Sizes: a number of octets with an optional unit, IEC binary (`4KiB`, `10MiB`, `1GiB`) or SI
//! decimal (`1kB`, `10MB`, `1GB`); a bare number is octets; a space before the unit and a
//! fraction (`1.5GiB`) are fine ([`parse_size()`], the `parse-size` crate). Durations: `90s`,
//! `5m`, `1h 30m`, `250ms` (the `humantime` crate); a bare number is seconds (`60`, `0.5`), as
//! the flags took before ([`parse_duration`]). Reports print sizes and rates in binary units only
//! (KiB, MiB, GiB; MiB/s) ([`size_text`], [`MIB`]).

use std::time::Duration;

/// 2^20 octets: the unit of rates (MiB/s) and memory (MiB) in the reports.
pub const MIB: f64 = 1_048_576.0;

/// Parses a size: `10MiB`, `1GB`, `4 KiB`, `1.5GiB`, `1000` (octets).
pub fn parse_size(s: &str) -> Result<u64, String> {
    parse_size::Config::new()
        .parse_size(s.trim())
        .map_err(|e| format!("{s:?} is not a size such as 10MiB, 1GB, 4KiB or 1000 ({e})"))
}

/// Parses a duration: `90s`, `5m`, `1h 30m`, `250ms`, or a bare number of seconds (`60`, `0.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    if t.starts_with(|c: char| c.is_ascii_digit())
        && let Ok(secs) = t.parse::<f64>()
    {
        return Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("{s:?} is not a duration such as 90s, 5m, 1h 30m or 250ms ({e})"))
}

/// [`parse_duration`], refusing anything under one second.
pub fn parse_duration_at_least_1s(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) {
        return Err(format!("{s:?} is less than 1s"));
    }
    Ok(d)
}

/// [`parse_duration`], refusing zero.
pub fn parse_duration_nonzero(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("{s:?} is zero"));
    }
    Ok(d)
}

/// A duration as [`parse_duration`] reads it back: `10s`, `5m`, `1h 30m`, `250ms`.
pub fn duration_text(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A size in binary units: `1 GiB`, `4 KiB`, `1500 B`, `1.5 MiB`.
pub fn size_text(n: u64) -> String {
    for (unit, name) in [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
        if n >= unit {
            return if n.is_multiple_of(unit) {
                format!("{} {name}", n / unit)
            } else {
                format!("{:.1} {name}", n as f64 / unit as f64)
            };
        }
    }
    format!("{n} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (text, want) in [
            ("1000", 1000),
            ("10MiB", 10 << 20),
            ("10 MiB", 10 << 20),
            ("4KiB", 4096),
            ("1GiB", 1 << 30),
            ("1GB", 1_000_000_000),
            ("1kB", 1000),
            ("1.5KiB", 1536),
            ("0", 0),
        ] {
            assert_eq!(parse_size(text), Ok(want), "{text}");
        }
        for bad in ["", "lots", "3 parsecs", "-1", "99999999999GiB", "10 MiBs"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(size_text(1 << 30), "1 GiB");
        assert_eq!(size_text(4096), "4 KiB");
        assert_eq!(size_text(1500), "1.5 KiB");
        assert_eq!(size_text(1000), "1000 B");
    }

    #[test]
    fn durations() {
        for (text, want) in [
            ("90s", 90_000),
            ("5m", 300_000),
            ("1h 30m", 5_400_000),
            ("250ms", 250),
            ("60", 60_000),
            ("0.5", 500),
            ("0", 0),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(want)),
                "{text}"
            );
        }
        for bad in ["", "soon", "5 parsecs", "-1s", "-1", "NaN", "inf"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration_at_least_1s("500ms").is_err());
        assert_eq!(parse_duration_at_least_1s("1s"), Ok(Duration::from_secs(1)));
        assert!(parse_duration_nonzero("0s").is_err());
        assert_eq!(duration_text(Duration::from_secs(10)), "10s");
        assert_eq!(duration_text(Duration::from_secs(5400)), "1h 30m");
    }
}
