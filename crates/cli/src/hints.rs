//! Error messages a user can act on: what a server code means (spec/protocol.md, section 9),
//! and what to try when the server cannot be reached or does not answer.

use std::io;
use std::time::Duration;

use ferry_bench::units::duration_text;
use ferry_sync::client::{AuthFailure, ClientError, RateTooLow};
use ferry_wire::Class;

use crate::addr::ServerAddr;

/// Where an error happened: while starting the session (connecting, waiting for the
/// greeting) or inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Connecting and reading the greeting.
    Connect,
    /// A request of an open session.
    Session,
}

/// The message for `e`: the client's own text, with the meaning of a server code, or a hint
/// when the server could not be reached or stayed silent for `timeout`.
pub(crate) fn explain(
    e: &ClientError,
    addr: &ServerAddr,
    timeout: Duration,
    stage: Stage,
) -> String {
    let within = duration_text(timeout);
    match e {
        ClientError::Connect {
            addr: Some(_),
            source,
        } => match source.kind() {
            io::ErrorKind::ConnectionRefused => format!(
                "cannot connect to {addr}: connection refused — is `ferry serve` running on {addr}?"
            ),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => format!(
                "no answer from {addr} within {within} — is `ferry serve` running there, and does \
                 no firewall drop the connection? (`--timeout` waits longer)"
            ),
            _ => format!("{e} — is `ferry serve` running on {addr}?"),
        },
        ClientError::Connect { addr: None, .. } => {
            format!("{e} — check the host name in {addr}")
        }
        ClientError::Io(source) if too_slow(source).is_some() => format!(
            "{e}; the session was ended (`--min-rate` sets the slowest transfer accepted, \
             `--min-rate 0` none)"
        ),
        ClientError::Io(source) if timed_out(source) => match stage {
            Stage::Connect if !addr.tls => format!(
                "no answer from {addr} within {within} — is `ferry serve` running there? \
                 (something accepted the connection but sent no ferry greeting; a server of \
                 ferry/1 over TLS waits for the client to speak first: then use \
                 ferrys://{addr})"
            ),
            Stage::Connect => format!(
                "no answer from {addr} within {within} — is `ferry serve` running there? \
                 (something accepted the connection but did not complete a TLS handshake)"
            ),
            Stage::Session => format!(
                "the server at {addr} sent or accepted nothing for {within}; the session was \
                 ended (`--timeout` waits longer, e.g. for a large upload to slow storage)"
            ),
        },
        ClientError::Closed { .. } if stage == Stage::Connect => {
            format!("{e} before greeting — is the server at {addr} a ferry server (`ferry serve`)?")
        }
        ClientError::Auth(a) => match &a.failure {
            AuthFailure::Refused(r) if r.code.get() == 535 => format!(
                "{e} — check the user name and the key or password (--key FILE uses another \
                 key, --password a password)"
            ),
            AuthFailure::Mechanism { .. } => {
                format!("{e} (--key FILE logs in with a key, --password with a password)")
            }
            _ => e.to_string(),
        },
        ClientError::Refused(r) => {
            let name = r
                .code
                .name()
                .or_else(|| ferry_wire::auth::code_name(r.code))
                .or_else(|| ferry_wire::tree::code_name(r.code));
            let meaning = meaning(name.unwrap_or(""));
            let retry = match r.code.class() {
                Class::Transient => "retrying later may help",
                Class::Permanent => "retrying will not help",
                Class::Unknown => "a code ferry/1 does not define",
            };
            match meaning {
                Some(m) => format!("{e} ({m}; {retry})"),
                None => format!("{e} ({retry})"),
            }
        }
        _ => e.to_string(),
    }
}

/// The transfer below `--min-rate` an I/O error reports, if it does.
fn too_slow(e: &io::Error) -> Option<&RateTooLow> {
    e.get_ref()?.downcast_ref::<RateTooLow>()
}

/// Whether an I/O error is a timeout (a socket read timeout shows as `WouldBlock` on Unix).
fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// What a server code means for the user (spec/protocol.md, the table of section 9).
pub(crate) fn meaning(name: &str) -> Option<&'static str> {
    Some(match name {
        "busy" => "the server is at its session limit",
        "timeout" => "the server ended the session after a pause",
        "shutting-down" => "the server is stopping",
        "changed" => "the file changed on the server while it was sent",
        "storage" => "an I/O error on the server's storage",
        "no-space" => {
            "the server has no room for it now (its storage is full, its folder's quota in \
             octets or in files and folders is reached, or other uploads in progress have been \
             promised the rest)"
        }
        "corrupt" => "the uploaded octets did not match their digest",
        "aborted" => "the upload was aborted",
        "syntax" | "line-too-long" | "protocol" => "the server did not understand the client",
        "unsupported" => "the server does not offer this",
        "bad-name" => "the server does not accept this file name",
        "not-found" => {
            "no file of that name on the server (for a path: it, or one of its folders, is \
             missing)"
        }
        "exists" => "a file (or folder) of that name exists on the server",
        "too-large" => "the file is larger than the server's --max-file-size",
        "read-only" => "the server accepts no uploads",
        "bad-offset" => "the partial file is longer than the file on the server",
        "auth-required" => {
            "the server serves only users who log in: give the user in the address, \
             ferrys://USER@HOST"
        }
        "not-permitted" => "the user you logged in as lacks the right to do this",
        "not-empty" => {
            "the folder is not empty (it may hold entries no listing shows: hidden names, \
             links); `ferry rm -r` removes what it lists"
        }
        "wrong-kind" => "a folder where a file was meant, or a file where a folder was meant",
        "denied" => {
            "the server's storage refuses permission for this file: a permission problem on \
             the server (its folder or the file is not readable or writable by the server), \
             for its operator to fix"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_wire::{Code, ErrorReply};

    fn addr() -> ServerAddr {
        crate::addr::parse("127.0.0.1:7450").expect("addr")
    }

    #[test]
    fn denied_is_explained_as_a_server_permission_problem() {
        let e = ClientError::Refused(ErrorReply {
            code: Code::DENIED,
            text: None,
        });
        let m = explain(&e, &addr(), Duration::from_secs(10), Stage::Session);
        assert!(m.starts_with("server error 516 denied ("), "{m}");
        assert!(m.contains("permission problem on the server"), "{m}");
        assert!(m.ends_with("retrying will not help)"), "{m}");
    }

    #[test]
    fn every_defined_code_has_a_meaning() {
        for n in 400..600 {
            if let Some(name) = Code::new(n).and_then(|c| c.name()) {
                assert!(meaning(name).is_some(), "{n} {name}");
            }
            if let Some(name) = Code::new(n).and_then(ferry_wire::tree::code_name) {
                assert!(meaning(name).is_some(), "{n} {name}");
            }
        }
    }

    #[test]
    fn silence_and_refusal_say_what_to_try() {
        let silent = ClientError::Io(io::Error::from(io::ErrorKind::WouldBlock));
        assert_eq!(
            explain(&silent, &addr(), Duration::from_secs(10), Stage::Connect),
            "no answer from 127.0.0.1:7450 within 10s — is `ferry serve` running there? \
             (something accepted the connection but sent no ferry greeting; a server of \
             ferry/1 over TLS waits for the client to speak first: then use \
             ferrys://127.0.0.1:7450)"
        );
        let tls_addr = crate::addr::parse_any("ferrys://127.0.0.1").expect("addr");
        assert_eq!(
            explain(&silent, &tls_addr, Duration::from_secs(10), Stage::Connect),
            "no answer from ferrys://127.0.0.1:7451 within 10s — is `ferry serve` running \
             there? (something accepted the connection but did not complete a TLS handshake)"
        );
        let refused = ClientError::Connect {
            addr: Some("127.0.0.1:7450".parse().expect("sa")),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        assert!(
            explain(&refused, &addr(), Duration::from_secs(10), Stage::Connect)
                .ends_with("is `ferry serve` running on 127.0.0.1:7450?")
        );
        let slow = ClientError::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            RateTooLow {
                sending: false,
                moved: 55,
                elapsed: Duration::from_millis(11_050),
                grace: Duration::from_secs(10),
                min_rate: 1024,
            },
        ));
        assert_eq!(
            explain(&slow, &addr(), Duration::from_secs(10), Stage::Session),
            "connection error: the server sent 55 octets in 11.1 s, slower than the minimum \
             rate of 1 KiB/s after 10.0 s of grace; the session was ended (`--min-rate` sets \
             the slowest transfer accepted, `--min-rate 0` none)"
        );
        // A connect that times out (a host that drops SYNs): exercised here, since a test
        // cannot count on an unroutable address.
        let dropped = ClientError::Connect {
            addr: Some("127.0.0.1:7450".parse().expect("sa")),
            source: io::Error::from(io::ErrorKind::TimedOut),
        };
        assert!(
            explain(&dropped, &addr(), Duration::from_secs(3), Stage::Connect).starts_with(
                "no answer from 127.0.0.1:7450 within 3s — is `ferry serve` running there"
            )
        );
    }
}
