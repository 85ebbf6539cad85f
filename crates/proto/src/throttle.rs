//! Throttling of failed authentications per client address (spec AUTH-20, AUTH-22), after
//! OpenSSH's `PerSourcePenalties` and fail2ban, inside the server: a [`Throttle`] shared by
//! every session of a server remembers, per address, the failures of its `auth` requests.
//!
//! - **Delay** (AUTH-20): the failures of an address in a row (since its last success) beyond
//!   [`ThrottleLimits::free`] have their `err 535` held back, [`ThrottleLimits::first_delay`]
//!   for the first and twice as long for each further one, up to
//!   [`ThrottleLimits::max_delay`]. A success starts the row over.
//! - **Refusal** (AUTH-22): every failure fills a bucket that leaks one failure every
//!   `window / max_failures`; an address whose bucket holds [`ThrottleLimits::max_failures`]
//!   is refused for [`ThrottleLimits::refusal`]: its `auth` requests get
//!   `err 425 auth-throttled`, which closes the session, without any proof being checked.
//!   A success does not empty the bucket (an account of one's own must not buy guesses at
//!   another's), and an address forgets everything once its bucket is empty.
//! - **Addresses**: an IPv4 address is one source, an IPv6 address counts with its /64
//!   network (one subscriber's prefix; the 2^64 addresses in it would otherwise be as many
//!   fresh starts), an IPv4-mapped IPv6 address as the IPv4 address.
//! - **Memory**: at most [`ThrottleLimits::max_sources`] sources are remembered (about 80
//!   octets each). When a new one fails and the table is full, forgotten entries are dropped
//!   first, then the entry whose last failure is the oldest, those not refused before those
//!   refused. A peer with more addresses than that can make the table forget its own older
//!   ones: the bound protects the server's memory, not against such a peer (a firewall's
//!   rate limit does that).
//!
//! No clock: every method takes `now` from its caller (the session has it from its driver),
//! so the throttle is tested on a virtual clock, and a delay is a deadline the session holds
//! its reply until, never a sleep.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The settings of a [`Throttle`]; [`ThrottleLimits::default`] is ferry's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleLimits {
    /// Failures in a row answered without delay ([`DEFAULT_FREE`]).
    pub free: u32,
    /// The delay of the first failure beyond `free` ([`DEFAULT_FIRST_DELAY`]); it doubles
    /// with each further failure in the row …
    pub first_delay: Duration,
    /// … up to this ([`DEFAULT_MAX_DELAY`]).
    pub max_delay: Duration,
    /// The failures that refuse an address when they come within `window`
    /// ([`DEFAULT_MAX_FAILURES`]); 0: addresses are never refused.
    pub max_failures: u32,
    /// The time over which `max_failures` failures leak away, one every
    /// `window / max_failures` ([`DEFAULT_WINDOW`]).
    pub window: Duration,
    /// How long an address is refused ([`DEFAULT_REFUSAL`]).
    pub refusal: Duration,
    /// The most sources remembered at once ([`DEFAULT_MAX_SOURCES`]); 0: none (no
    /// throttling).
    pub max_sources: usize,
}

/// Failures in a row without delay: a user who mistypes a password twice is not slowed.
pub const DEFAULT_FREE: u32 = 3;
/// The first delay (the 4th failure in a row): 1 s, then 2 s, then 4 s.
pub const DEFAULT_FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest delay: 4 s (a guesser on one connection then makes 15 guesses a minute, before
/// the refusal stops it).
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(4);
/// 10 failures within [`DEFAULT_WINDOW`] refuse an address.
pub const DEFAULT_MAX_FAILURES: u32 = 10;
/// 10 minutes: one failure is forgiven every minute.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(600);
/// An address is refused for 10 minutes: at most about 10 guesses every 20 minutes.
pub const DEFAULT_REFUSAL: Duration = Duration::from_secs(600);
/// 4096 sources (at most about 0.5 MiB).
pub const DEFAULT_MAX_SOURCES: usize = 4096;

impl Default for ThrottleLimits {
    fn default() -> Self {
        ThrottleLimits {
            free: DEFAULT_FREE,
            first_delay: DEFAULT_FIRST_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
            max_failures: DEFAULT_MAX_FAILURES,
            window: DEFAULT_WINDOW,
            refusal: DEFAULT_REFUSAL,
            max_sources: DEFAULT_MAX_SOURCES,
        }
    }
}

/// What a failure brings ([`Throttle::failed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Penalty {
    /// How long the failure's reply waits (AUTH-20).
    pub delay: Duration,
    /// The failures the address's bucket holds now.
    pub failures: u32,
    /// The address is refused from now until then (AUTH-22): this failure filled its bucket.
    pub refused_until: Option<Instant>,
}

/// Failed authentications per source, shared by the sessions of a server (see the module
/// documentation).
#[derive(Debug)]
pub struct Throttle {
    limits: ThrottleLimits,
    table: Mutex<HashMap<Source, Entry>>,
}

/// An IPv4 address, or an IPv6 /64 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    V4(u32),
    V6(u64),
}

impl Source {
    fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(a) => Source::V4(u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(a) => Source::V4(u32::from(a)),
                None => Source::V6((u128::from(a) >> 64) as u64),
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Failures since the last success: the delay.
    row: u32,
    /// Failures in the bucket: the refusal.
    level: u32,
    /// The bucket has leaked up to this instant.
    leaked_at: Instant,
    /// The last failure (the oldest goes first when the table is full).
    last: Instant,
    /// Refused until then.
    refused_until: Option<Instant>,
}

impl Entry {
    /// Brings the entry to `now`; `false` when it holds nothing any more (forgotten).
    fn update(&mut self, limits: &ThrottleLimits, now: Instant) -> bool {
        if self.refused_until.is_some_and(|t| now >= t) {
            // A refusal served: a fresh start.
            self.refused_until = None;
            self.level = 0;
        }
        let per = limits.window / limits.max_failures.max(1);
        let elapsed = now.saturating_duration_since(self.leaked_at);
        let leaked = elapsed
            .as_nanos()
            .checked_div(per.as_nanos())
            .unwrap_or(u128::MAX);
        let leaked = u32::try_from(leaked).unwrap_or(u32::MAX);
        if leaked > 0 {
            self.level = self.level.saturating_sub(leaked);
            // Keep the fraction of a leak not yet earned.
            self.leaked_at = match per.checked_mul(leaked) {
                Some(d) if self.level > 0 => self.leaked_at + d,
                _ => now,
            };
        }
        self.level > 0 || self.refused_until.is_some()
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new(ThrottleLimits::default())
    }
}

impl Throttle {
    /// A throttle with `limits` that remembers no failure yet.
    pub fn new(limits: ThrottleLimits) -> Throttle {
        Throttle {
            limits,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Its settings.
    pub fn limits(&self) -> &ThrottleLimits {
        &self.limits
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Source, Entry>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Until when `ip` is refused at `now` (AUTH-22), if it is.
    pub fn refused(&self, ip: IpAddr, now: Instant) -> Option<Instant> {
        let mut table = self.lock();
        let source = Source::of(ip);
        let entry = table.get_mut(&source)?;
        if !entry.update(&self.limits, now) {
            table.remove(&source);
            return None;
        }
        entry.refused_until
    }

    /// An authentication from `ip` failed at `now`: what it brings (AUTH-20, AUTH-22).
    pub fn failed(&self, ip: IpAddr, now: Instant) -> Penalty {
        let limits = &self.limits;
        if limits.max_sources == 0 {
            // Nothing may be remembered: no throttling.
            return Penalty {
                delay: Duration::ZERO,
                failures: 1,
                refused_until: None,
            };
        }
        let mut table = self.lock();
        let source = Source::of(ip);
        if !table.contains_key(&source) && table.len() >= limits.max_sources {
            evict(&mut table, limits, now);
        }
        let fresh = Entry {
            row: 0,
            level: 0,
            leaked_at: now,
            last: now,
            refused_until: None,
        };
        let entry = table.entry(source).or_insert(fresh);
        if !entry.update(limits, now) {
            *entry = fresh;
        }
        entry.row = entry.row.saturating_add(1);
        entry.level = entry.level.saturating_add(1);
        entry.last = now;
        let beyond = entry.row.saturating_sub(limits.free);
        let delay = match beyond {
            0 => Duration::ZERO,
            n => {
                let factor = 1u32.checked_shl(n - 1).unwrap_or(u32::MAX);
                limits
                    .first_delay
                    .checked_mul(factor)
                    .unwrap_or(limits.max_delay)
                    .min(limits.max_delay)
            }
        };
        let mut refused_until = None;
        if limits.max_failures > 0
            && entry.level >= limits.max_failures
            && entry.refused_until.is_none()
        {
            refused_until = now.checked_add(limits.refusal);
            entry.refused_until = refused_until;
        }
        Penalty {
            delay,
            failures: entry.level,
            refused_until,
        }
    }

    /// An authentication from `ip` succeeded at `now`: its failures in a row start over (the
    /// delay), not its bucket (the refusal).
    pub fn succeeded(&self, ip: IpAddr, now: Instant) {
        let mut table = self.lock();
        let source = Source::of(ip);
        if let Some(entry) = table.get_mut(&source) {
            entry.row = 0;
            if !entry.update(&self.limits, now) {
                table.remove(&source);
            }
        }
    }

    /// How many sources it remembers now (at most [`ThrottleLimits::max_sources`]).
    pub fn sources(&self) -> usize {
        self.lock().len()
    }
}

/// Makes room for one more source: drops the forgotten entries, else the one whose last
/// failure is the oldest, those not refused first.
fn evict(table: &mut HashMap<Source, Entry>, limits: &ThrottleLimits, now: Instant) {
    table.retain(|_, e| e.update(limits, now));
    if table.len() < limits.max_sources {
        return;
    }
    let oldest = table
        .iter()
        .min_by_key(|(_, e)| (e.refused_until.is_some(), e.last))
        .map(|(s, _)| *s);
    if let Some(s) = oldest {
        table.remove(&s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            Source::of(ip("2001:db8:1:2:aaaa::1")),
            Source::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            Source::of(ip("2001:db8:1:2::1")),
            Source::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            Source::of(ip("::ffff:192.0.2.7")),
            Source::of(ip("192.0.2.7"))
        );
        assert_ne!(Source::of(ip("192.0.2.7")), Source::of(ip("192.0.2.8")));
    }

    #[test]
    fn delays_grow_from_the_fourth_failure_and_stop_at_the_most() {
        let t = Throttle::default();
        let now = Instant::now();
        let delays: Vec<u64> = (0..8)
            .map(|_| t.failed(ip("192.0.2.1"), now).delay.as_secs())
            .collect();
        assert_eq!(delays, [0, 0, 0, 1, 2, 4, 4, 4]);
    }

    #[test]
    fn the_bucket_leaks_one_failure_a_minute_and_an_empty_one_is_forgotten() {
        let t = Throttle::default();
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        for _ in 0..5 {
            t.failed(a, t0);
        }
        let minute = Duration::from_secs(60);
        // 2 minutes and a bit later: 3 left, plus this one.
        let p = t.failed(a, t0 + 2 * minute + Duration::from_secs(1));
        assert_eq!(p.failures, 4);
        assert_eq!(t.sources(), 1);
        // 4 minutes later everything leaked away: the address is forgotten.
        assert_eq!(t.refused(a, t0 + 7 * minute), None);
        assert_eq!(t.sources(), 0);
    }
}
