//! Limits of ferry/1, as named constants. Each cites the requirement that fixes it.

/// Longest line, end-of-line octets included (FRAME-2). A receiver that has seen this many
/// octets without an LF stops reading and answers `501 line-too-long`.
pub const MAX_LINE: usize = 4096;

/// Longest file name in octets of UTF-8 (NAME-2). Common file systems store 255 octets.
pub const MAX_NAME: usize = 255;

/// Longest path of the `tree` extension in octets (TREE-3): room for two in a `rename` line.
pub const MAX_PATH: usize = 1024;

/// Most names in a path of the `tree` extension (TREE-3), which bounds how deep a server
/// descends for a recursive listing.
pub const MAX_DEPTH: usize = 64;

/// Largest payload chunk in octets (DATA-2). Bounds how long an `abort` can be delayed
/// behind chunk data, while keeping the per-chunk header overhead under 0.001 %.
pub const MAX_CHUNK: u32 = 1 << 20;

/// Default TCP port of a ferry server (CONN-1).
pub const DEFAULT_PORT: u16 = 7450;

/// Default largest file a server accepts with `put` (1 TiB). Servers announce their own
/// value as `max-size` in the greeting.
pub const DEFAULT_MAX_SIZE: u64 = 1 << 40;

/// Default largest size of an eager (`now`) put. Announced as `max-eager`.
pub const DEFAULT_MAX_EAGER: u64 = 1 << 20;

/// Default idle timeout in seconds: waiting for the next request (TIME-1).
pub const DEFAULT_IDLE_SECS: u64 = 300;

/// Default stall timeout in seconds: no progress inside a request or transfer (TIME-2).
pub const DEFAULT_STALL_SECS: u64 = 60;

/// Default least average rate of a payload in octets per second (TIME-9), announced as
/// `min-rate`: beyond a grace of the stall timeout, a payload must move at least this fast on
/// average, so that a peer dripping an octet per stall timeout cannot hold a session forever.
/// Low enough never to cut a real link (a 1 GiB file may take twelve days).
pub const DEFAULT_MIN_RATE: u64 = 1024;

/// The time `moved` octets buy at `rate` (> 0) octets per second: the grace a payload earns
/// under a minimum rate (TIME-9, and ferry's client's own minimum rate). Exact to the
/// nanosecond, without overflow for any `moved` and `rate`.
pub fn rate_time(moved: u64, rate: u64) -> std::time::Duration {
    let rate = rate.max(1);
    // (moved % rate) / rate < 1 s: always fewer than 10^9 nanoseconds.
    let nanos = u128::from(moved % rate) * 1_000_000_000 / u128::from(rate);
    std::time::Duration::new(moved / rate, u32::try_from(nanos).unwrap_or(999_999_999))
}

/// Highest protocol version number the grammar admits (`version = %x31-39 *4DIGIT`).
pub const MAX_VERSION: u32 = 99_999;

/// Longest error text: the longest line that carries one (`abort 000 ` + text + LF, two
/// octets longer than `err 000 `) still fits MAX_LINE.
pub const MAX_TEXT: usize = MAX_LINE - "abort 000 ".len() - 1;

#[cfg(test)]
mod tests {
    use super::rate_time;
    use std::time::Duration;

    #[test]
    fn rate_time_is_exact_and_never_overflows() {
        assert_eq!(rate_time(1536, 1024), Duration::from_millis(1500));
        assert_eq!(rate_time(0, 1024), Duration::ZERO);
        assert_eq!(rate_time(u64::MAX, 1), Duration::from_secs(u64::MAX));
        assert_eq!(
            rate_time(u64::MAX - 1, u64::MAX),
            Duration::new(0, 999_999_999)
        );
    }
}
