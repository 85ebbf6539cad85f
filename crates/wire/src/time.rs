//! `Timestamp`: the `mtime` rule, RFC 3339 UTC with whole seconds (DIR-5).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from 1970-01-01T00:00:00Z to 0000-01-01T00:00:00Z (negative).
const MIN_SECS: i64 = -62_167_219_200;
/// Seconds from the epoch to 9999-12-31T23:59:59Z.
const MAX_SECS: i64 = 253_402_300_799;

/// A UTC instant with whole-second precision, within the years 0000 to 9999 that the
/// `mtime` rule can write.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The earliest representable instant, 0000-01-01T00:00:00Z.
    pub const MIN: Self = Self(MIN_SECS);
    /// The latest representable instant, 9999-12-31T23:59:59Z.
    pub const MAX: Self = Self(MAX_SECS);
    /// 1970-01-01T00:00:00Z.
    pub const EPOCH: Self = Self(0);

    /// The instant `secs` seconds after the Unix epoch, if it is representable.
    pub const fn from_unix(secs: i64) -> Option<Self> {
        if secs < MIN_SECS || secs > MAX_SECS {
            None
        } else {
            Some(Self(secs))
        }
    }

    /// Like [`Timestamp::from_unix`], clamping to [`Timestamp::MIN`] ..= [`Timestamp::MAX`].
    pub const fn from_unix_clamped(secs: i64) -> Self {
        if secs < MIN_SECS {
            Self::MIN
        } else if secs > MAX_SECS {
            Self::MAX
        } else {
            Self(secs)
        }
    }

    /// A file's modification time as a server lists it (DIR-5): truncated to whole seconds,
    /// a time before the epoch sent as [`Timestamp::EPOCH`], one after 9999 as
    /// [`Timestamp::MAX`].
    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Self::from_unix_clamped(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            Err(_) => Self::EPOCH,
        }
    }

    /// Seconds since the Unix epoch.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// As a `SystemTime` (for setting a downloaded file's modification time); `None` where
    /// the platform's `SystemTime` cannot hold it (Windows stops at 1601).
    pub fn to_system_time(self) -> Option<SystemTime> {
        let d = Duration::from_secs(self.0.unsigned_abs());
        if self.0 >= 0 {
            UNIX_EPOCH.checked_add(d)
        } else {
            UNIX_EPOCH.checked_sub(d)
        }
    }

    /// Builds from calendar fields, checking that they name a real date and time
    /// (seconds 00 to 59: ferry has no leap seconds).
    pub fn from_fields(year: u32, month: u32, day: u32, h: u32, m: u32, s: u32) -> Option<Self> {
        if year > 9999 || !(1..=12).contains(&month) || h > 23 || m > 59 || s > 59 {
            return None;
        }
        if day == 0 || day > days_in_month(year, month) {
            return None;
        }
        let days = days_from_civil(i64::from(year), month, day);
        Some(Self(days * 86_400 + i64::from(h * 3600 + m * 60 + s)))
    }

    /// Calendar fields (year, month, day, hour, minute, second).
    pub fn to_fields(self) -> (u32, u32, u32, u32, u32, u32) {
        let days = self.0.div_euclid(86_400);
        let rem = self.0.rem_euclid(86_400) as u32;
        let (y, mo, d) = civil_from_days(days);
        (y as u32, mo, d, rem / 3600, rem / 60 % 60, rem % 60)
    }
}

fn is_leap(y: u32) -> bool {
    y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400))
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Wire form: `YYYY-MM-DDTHH:MM:SSZ`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s) = self.to_fields();
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(Timestamp::EPOCH.to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp::MIN.to_string(), "0000-01-01T00:00:00Z");
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59Z");
        let t = Timestamp::from_unix(1_795_548_128).expect("in range");
        assert_eq!(t.to_string(), "2026-11-24T19:22:08Z");
        assert_eq!(Timestamp::from_fields(2026, 11, 24, 19, 22, 8), Some(t));
    }

    #[test]
    fn fields_round_trip_every_day_boundary_sample() {
        for secs in (MIN_SECS..=MAX_SECS).step_by(86_400 * 37 + 3_601) {
            let t = Timestamp(secs);
            let (y, mo, d, h, mi, s) = t.to_fields();
            assert_eq!(
                Timestamp::from_fields(y, mo, d, h, mi, s),
                Some(t),
                "{secs}"
            );
        }
    }

    #[test]
    fn invalid_dates_are_refused() {
        assert_eq!(Timestamp::from_fields(2023, 2, 29, 0, 0, 0), None);
        assert!(Timestamp::from_fields(2024, 2, 29, 0, 0, 0).is_some());
        assert_eq!(Timestamp::from_fields(1900, 2, 29, 0, 0, 0), None);
        assert!(Timestamp::from_fields(2000, 2, 29, 0, 0, 0).is_some());
        assert_eq!(Timestamp::from_fields(2024, 4, 31, 0, 0, 0), None);
        assert_eq!(Timestamp::from_fields(2024, 13, 1, 0, 0, 0), None);
        assert_eq!(Timestamp::from_fields(2024, 1, 1, 24, 0, 0), None);
        assert_eq!(Timestamp::from_fields(2024, 1, 1, 0, 0, 60), None);
    }

    #[test]
    fn conversion_to_system_time_never_panics() {
        for t in [Timestamp::MIN, Timestamp::EPOCH, Timestamp::MAX] {
            if let Some(st) = t.to_system_time() {
                assert_eq!(Timestamp::from_system_time(st), t.max(Timestamp::EPOCH));
            }
        }
    }

    #[test]
    fn system_time_truncates_and_clamps() {
        let t = UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(Timestamp::from_system_time(t).unix(), 1);
        let before = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(
            Timestamp::from_system_time(before),
            Timestamp::EPOCH,
            "DIR-5"
        );
        assert_eq!(Timestamp::from_unix_clamped(i64::MAX), Timestamp::MAX);
        assert_eq!(Timestamp::from_unix_clamped(i64::MIN), Timestamp::MIN);
    }
}
