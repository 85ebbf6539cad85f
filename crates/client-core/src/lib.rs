//! # ferry-client-core: what the reference clients share
//!
//! - [`session`]: the client side of the protocol as a sans-IO state machine,
//!   [`ClientSession`]: octets, time and the results of local-file operations in; octets to
//!   send, local-file operations and deadlines out. No socket, no file, no clock.
//! - The API the clients present: the same options, reports, progress type and error type,
//!   and the same local-file policy (where a download's partial file lives, how a server's
//!   name becomes a local path, which names a platform cannot store). Keeping these here
//!   means a `.ferry-part` left by one client is resumed by the other, and a caller such as
//!   the `ferry` command handles every implementation's errors the same way.
//!
//! Nothing here does network I/O.

use std::path::PathBuf;
use std::time::Duration;

use ferry_wire::{Digest, FileName, Greeting, PutFlow, PutMode, Timestamp, Version};

mod error;
pub mod local;
pub mod login;
pub mod names;
pub mod session;
pub mod tree;

pub use error::{ClientError, RateTooLow, Violation, ViolationKind};
pub use login::{AuthError, AuthFailure, Login};
pub use names::{
    PART_SUFFIX, local_path, name_for_local, part_path, visible, windows_name_problem,
};
pub use session::{Action, ClientSession, OpId, Outcome};

/// The largest upload the client sends eagerly (flow `now`) by default: 1 MiB, ferry's
/// default `max-eager`. The server's `max-eager` applies too, whichever is smaller.
pub const DEFAULT_EAGER_LIMIT: u64 = 1 << 20;

/// Connection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Limit for establishing the TCP connection (default 10 s; `None`: the system's).
    pub connect_timeout: Option<Duration>,
    /// Longest wait for any octet from the server (default 120 s; `None`: forever). It must
    /// leave the server time to fsync and rename a large upload between `end` and `ok put`
    /// (TIME-8).
    pub read_timeout: Option<Duration>,
    /// Longest wait for the server to accept octets (default 120 s; `None`: forever).
    pub write_timeout: Option<Duration>,
    /// Uploads up to this size (and up to the server's `max-eager`) are sent eagerly, with
    /// flow `now`; larger ones wait for `go`. Default [`DEFAULT_EAGER_LIMIT`].
    pub eager_limit: u64,
    /// Most entries accepted in one `dir` or `list` listing (default 1,000,000): a server that sends
    /// more is treated as hostile, so that it cannot make the client's memory grow without
    /// bound (DIR-8).
    pub max_listing: u64,
    /// Largest file accepted in a get (default 1 TiB, ferry's default `max-size`): a server
    /// that announces more is refused before anything is written, and the session closed
    /// rather than the payload read (GET-15).
    pub max_get_size: u64,
    /// The slowest transfer accepted, in octets per second (default [`DEFAULT_MIN_RATE`];
    /// 0 turns the rule off). The server's answer to each request (its reply line, a
    /// listing, a download's payload; the greeting) gets `read_timeout` of grace from when the
    /// session begins to wait for it; a run of sending (while there is output to send; each
    /// upload's payload begins a new one) gets `write_timeout`. After that the deadline moves
    /// one second later for every `min_rate` octets moved: `t` seconds after it began, at
    /// least `min_rate × (t − grace)` octets must have come (or been taken), else the session
    /// ends with a
    /// [`ClientError::Io`] of kind `TimedOut` holding a [`RateTooLow`]. A transfer that has
    /// averaged `min_rate` so far may pause as long as the timeouts allow; a server that
    /// drips an octet per timeout no longer holds the client for ever. Without a timeout in
    /// a direction (`None`), that direction has no rate rule either.
    pub min_rate: u64,
    /// Speak ferry/1 over TLS (spec section 15) to the server this configuration names and
    /// verifies; `None`: plain ferry/1. Never a fallback from one to the other (TLS-14).
    pub tls: Option<ferry_tls::ClientTls>,
    /// Log in right after the greeting (the `auth` extension, spec section 16): the session
    /// is connected only once the server has accepted the user ([`ClientError::Auth`]
    /// otherwise). `None`: no login (the server's anonymous access, if any).
    pub login: Option<Login>,
}

/// The default [`ClientOptions::min_rate`]: 1 KiB/s (8 kbit/s). Slower than any link a file
/// transfer runs over today (a GSM data call gives 9.6 kbit/s), and it applies only after the
/// timeout's grace and to the average since the answer began, so bursts and pauses on a slow
/// link do not trip it. A server that sends at a fraction `f` of the rate holds the client
/// for the grace divided by `1 − f`: about the timeout for one that drips. The same floor
/// servers announce by default (`min-rate`, TIME-9).
pub const DEFAULT_MIN_RATE: u64 = ferry_wire::limits::DEFAULT_MIN_RATE;

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(120)),
            write_timeout: Some(Duration::from_secs(120)),
            eager_limit: DEFAULT_EAGER_LIMIT,
            max_listing: 1_000_000,
            max_get_size: ferry_wire::limits::DEFAULT_MAX_SIZE,
            min_rate: DEFAULT_MIN_RATE,
            tls: None,
            login: None,
        }
    }
}

/// How a download to a path behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetOptions {
    /// Continue from an existing `<dest>.ferry-part`: ask for the octets after its length and
    /// verify the whole file, local prefix included (GET-6, GET-7). Without `resume`, an
    /// existing `.ferry-part` is discarded first. Default `false`.
    pub resume: bool,
    /// When a resumed download fails its digest check (the file changed on the server,
    /// SUM-5) or the server says the partial file is longer than the file (515, GET-8),
    /// discard the `.ferry-part` and download once more from offset 0. Default `true`.
    pub retry_from_zero: bool,
    /// After a failure that may have left good octets (connection lost, truncated, timed out,
    /// `abort 422` or `abort 431` from the server, GET-12), keep a non-empty `.ferry-part` for
    /// a later `resume`. A `.ferry-part` whose content is known bad (digest mismatch) or that
    /// failed to be written locally is always removed; so is an empty one, and so is one left
    /// by `abort 430` (the file changed on the server while it was sent: its octets are never
    /// kept, whatever this option says, GET-13). Default `true`.
    pub keep_partial: bool,
    /// Give the downloaded file the modification time the server announced. Default `true`.
    pub set_mtime: bool,
}

impl GetOptions {
    /// The same options without resume: for the retry from offset 0 of a download whose
    /// check failed after a resume ([`GetOptions::retry_from_zero`]).
    pub fn from_zero(&self) -> Self {
        Self {
            resume: false,
            ..*self
        }
    }
}

impl Default for GetOptions {
    fn default() -> Self {
        Self {
            resume: false,
            retry_from_zero: true,
            keep_partial: true,
            set_mtime: true,
        }
    }
}

/// How an upload behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutOptions {
    /// `new` (default): fail with `512 exists` if the name exists; `replace`: atomically
    /// replace it.
    pub mode: PutMode,
    /// Allow flow `now` for small files (default `true`); `false` always waits for `go`.
    pub eager: bool,
}

impl Default for PutOptions {
    fn default() -> Self {
        Self {
            mode: PutMode::New,
            eager: true,
        }
    }
}

/// Progress of one transfer, reported as octets move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress<'a> {
    /// The file.
    pub name: &'a FileName,
    /// Octets of the file done so far (for a resumed get, the local prefix included).
    pub done: u64,
    /// The file's size.
    pub total: u64,
}

/// A completed, verified download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetReport {
    /// The file's name on the server.
    pub name: FileName,
    /// Where it was stored (the clients' `get_to_path` and `get_many`).
    pub path: Option<PathBuf>,
    /// The file's size.
    pub size: u64,
    /// Its modification time on the server.
    pub mtime: Timestamp,
    /// Its verified digest.
    pub digest: Digest,
    /// Octets that were already held locally (a resumed download), 0 otherwise.
    pub resumed_from: u64,
}

/// A completed upload: the server confirmed it verified, durable and visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutReport {
    /// The name it was stored under.
    pub name: FileName,
    /// Its size.
    pub size: u64,
    /// Its digest, as sent and confirmed.
    pub digest: Digest,
    /// Whether it was sent eagerly (`now`) or after `go` (`wait`).
    pub flow: PutFlow,
}

/// What a client checks in the server's greeting before it sends anything (HELLO-9,
/// HELLO-10): version 1 is listed, and the rules the grammar cannot check hold
/// ([`Greeting::check`]: the fixed values of HELLO-5, `idle` and `stall` of at least 1
/// (HELLO-7), no version listed twice (HELLO-4)). Duplicate param and extension names are
/// already refused by the decoder (HELLO-3, EXT-1).
pub fn check_greeting(g: &Greeting) -> Result<(), ClientError> {
    if !g.supports(Version::V1) {
        let offered: Vec<String> = g.versions().iter().map(ToString::to_string).collect();
        return Err(ClientError::Protocol(Violation::new(
            ViolationKind::Greeting,
            format!(
                "the server does not speak ferry/1 (it offers version {})",
                offered.join(",")
            ),
        )));
    }
    g.check().map_err(|e| {
        ClientError::Protocol(Violation::new(
            ViolationKind::Greeting,
            format!("invalid greeting: {e}"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_wire::Limits;

    #[test]
    fn greetings_a_client_must_refuse() {
        assert!(check_greeting(&Greeting::new(Limits::default())).is_ok());
        for limits in [
            Limits {
                idle: 0,
                ..Limits::default()
            },
            Limits {
                stall: 0,
                ..Limits::default()
            },
            Limits {
                max_line: 8192,
                ..Limits::default()
            },
            Limits {
                max_chunk: 1,
                ..Limits::default()
            },
        ] {
            assert!(
                check_greeting(&Greeting::new(limits)).is_err(),
                "{limits:?}"
            );
        }
        let v2 = Version::new(2).expect("valid");
        assert!(check_greeting(&Greeting::new(Limits::default()).with_versions(v2, &[])).is_err());
        let twice = Greeting::new(Limits::default()).with_versions(Version::V1, &[Version::V1]);
        assert!(check_greeting(&twice).is_err());
    }
}
