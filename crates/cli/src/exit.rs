//! Exit codes of the `ferry` command, and how several outcomes combine.

use ferry_sync::client::{AuthFailure, ClientError};
use ferry_wire::Class;

/// Success.
pub(crate) const OK: u8 = 0;
/// Some operation failed with a permanent server error (5xx).
pub(crate) const PERMANENT: u8 = 1;
/// Usage error: bad arguments (clap), or a local file name that is not a valid ferry name.
pub(crate) const USAGE: u8 = 2;
/// Could not connect, connection lost, or the server violated the protocol.
pub(crate) const CONNECTION: u8 = 3;
/// Transient server error (4xx): retrying may help.
pub(crate) const TRANSIENT: u8 = 4;
/// Integrity failure: digest mismatch or truncated transfer.
pub(crate) const INTEGRITY: u8 = 5;
/// Local I/O error.
pub(crate) const LOCAL_IO: u8 = 6;

/// The text of `ferry --help` about exit codes (also in crates/cli/README.md).
pub(crate) const HELP: &str = "\
Exit codes:
  0  success
  1  some operation failed with a permanent server error (5xx, e.g. 511 not-found, 512 exists),
     or the server lacks the extension the command needs (folders: `tree`)
  2  usage error (bad arguments, or a local file name that is not a valid ferry name)
  3  could not connect, connection lost, or the server violated the protocol
  4  transient server error (4xx, e.g. 420 busy, 432 no-space): retrying may help
  5  integrity failure: digest mismatch or truncated transfer
  6  local I/O error
With several operations the most severe applies, in this order: 5, 6, 3, 1, 2, 4.

Logging (on stderr): -v/-q on serve and the client commands, else FERRY_LOG (or RUST_LOG),
e.g. FERRY_LOG=debug.";

/// The exit code for one failed operation.
pub(crate) fn for_error(e: &ClientError) -> u8 {
    match e {
        ClientError::Refused(r) => match r.code.class() {
            Class::Transient => TRANSIENT,
            Class::Permanent | Class::Unknown => PERMANENT,
        },
        ClientError::Auth(a) => match &a.failure {
            AuthFailure::Refused(r) => match r.code.class() {
                Class::Transient => TRANSIENT,
                Class::Permanent | Class::Unknown => PERMANENT,
            },
            AuthFailure::NotOffered | AuthFailure::Mechanism { .. } => PERMANENT,
            AuthFailure::PlainConnection | AuthFailure::Local(_) => USAGE,
            _ => CONNECTION,
        },
        ClientError::Corrupt { .. } | ClientError::Truncated { .. } => INTEGRITY,
        ClientError::Local { .. } => LOCAL_IO,
        ClientError::LocalName { .. } => USAGE,
        // Like `err 503 unsupported`: this server will not do it.
        ClientError::NotOffered { .. } => PERMANENT,
        _ => CONNECTION,
    }
}

fn severity(code: u8) -> u8 {
    match code {
        OK => 0,
        TRANSIENT => 1,
        USAGE => 2,
        PERMANENT => 3,
        CONNECTION => 4,
        LOCAL_IO => 5,
        INTEGRITY => 6,
        _ => 7,
    }
}

/// The most severe of the outcomes so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Worst(u8);

impl Worst {
    /// Takes `code` into account.
    pub(crate) fn add(&mut self, code: u8) {
        if severity(code) > severity(self.0) {
            self.0 = code;
        }
    }

    /// The exit code.
    pub(crate) fn code(self) -> u8 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_severe_wins() {
        let mut w = Worst::default();
        assert_eq!(w.code(), OK);
        for (add, want) in [
            (TRANSIENT, 4),
            (PERMANENT, 1),
            (TRANSIENT, 1),
            (CONNECTION, 3),
            (INTEGRITY, 5),
            (LOCAL_IO, 5),
        ] {
            w.add(add);
            assert_eq!(w.code(), want);
        }
    }
}
