//! [`ClientError`]: everything that can go wrong in a client operation, sorted by who is at
//! fault (the server's answer, the connection, the data's integrity, the local side).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ferry_wire::{Class, Code, Digest, ErrorReply};

use crate::login::{AuthError, AuthFailure};

/// Why a client operation failed.
///
/// The variants fall into the groups the `ferry` command turns into exit codes:
/// the server refused ([`ClientError::Refused`], by class of its code), the connection failed
/// or the server broke the protocol ([`ClientError::Connect`], [`ClientError::Io`],
/// [`ClientError::Closed`], [`ClientError::Disconnected`], [`ClientError::Protocol`]), the data
/// failed its integrity check ([`ClientError::Corrupt`], [`ClientError::Truncated`]), or
/// something failed on the local side ([`ClientError::Local`], [`ClientError::LocalName`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No TCP connection could be made (address resolution or connect failed).
    #[error("{}", connect_message(.addr, .source))]
    Connect {
        /// The address that was tried last, if the name resolved at all.
        addr: Option<SocketAddr>,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// The TLS handshake failed (spec section 15): the server's identity was refused (a key
    /// other than the pinned one, a changed key — the message names the known_hosts line —,
    /// a certificate not valid for the host), or the server does not speak ferry/1 over TLS
    /// 1.3. Nothing was sent to the server. Not transient: connecting again meets the same.
    #[error("TLS: {message}")]
    Tls {
        /// What went wrong, for the user ([`ferry_tls::explain`]).
        message: String,
        /// The error the TLS layer gave.
        #[source]
        source: io::Error,
    },
    /// The login of [`crate::ClientOptions::login`] did not succeed (spec section 16): the
    /// server refused it, does not offer it, or did not prove itself. The session has ended.
    #[error("{0}")]
    Auth(crate::login::AuthError),
    /// Reading from or writing to the connection failed (reset, timeout, …). The session
    /// has ended.
    #[error("connection error: {0}")]
    Io(#[source] io::Error),
    /// The server closed the connection where a reply was due. The session has ended.
    ///
    /// `outcome_unknown` is set for a put whose payload was completely sent: the server may
    /// have committed it just before the connection ended (PIPE-6); a `dir` tells.
    #[error("{}", if *.outcome_unknown {
        "the server closed the connection before confirming the upload; it may or may not have been stored"
    } else {
        "the server closed the connection"
    })]
    Closed {
        /// Whether the server may have performed the request.
        outcome_unknown: bool,
    },
    /// The session had already ended before this operation (after an earlier connection
    /// error, protocol violation, closing error code or `close`): connect again.
    #[error("the session has already ended: {0}")]
    Disconnected(String),
    /// The server answered with `err CODE [TEXT]` or ended a download with
    /// `abort CODE [TEXT]`. [`ClientError::code`] and [`ClientError::is_transient`] classify
    /// it; codes 420, 421, 422, 501 and 502 also end the session.
    #[error("server error {}", ErrorDisplay(.0))]
    Refused(ErrorReply),
    /// A download's octets do not match the digest the server announced (SUM-3). Nothing
    /// was presented as complete; the connection is still usable.
    #[error(
        "integrity failure: the server announced {announced} but the data received hashes to {computed}"
    )]
    Corrupt {
        /// The digest in the server's `end` trailer.
        announced: Digest,
        /// The digest of what was received (for a resumed get, with the local prefix).
        computed: Digest,
    },
    /// The connection ended in the middle of a download's payload, before its trailer. The
    /// session has ended.
    #[error("transfer truncated: the connection ended after {received} of {expected} octets")]
    Truncated {
        /// Octets of the file the client held when the connection ended (local prefix
        /// included).
        received: u64,
        /// The file's size.
        expected: u64,
    },
    /// The server sent something the protocol does not allow at that point: a malformed or
    /// over-long line, an unexpected reply, a framing violation, a broken listing or greeting
    /// (a broken or hostile server). The client closed the connection (ERR-10).
    /// [`Violation::kind`] says which.
    #[error("protocol violation by the server: {0}")]
    Protocol(Violation),
    /// A local name cannot be used as a ferry file name (NAME-1 … NAME-5), or a server's name
    /// cannot be stored faithfully on this platform (NAME-11).
    #[error("cannot use {name:?} as a file name: {reason}")]
    LocalName {
        /// The name, lossily converted to text.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// The server does not offer an extension the operation needs (it is not in the
    /// greeting's `ext`, EXT-1): nothing was sent, the session goes on. For the `tree`
    /// extension (spec section 17): folders, paths, `list`, `mkdir`, `rmdir`, `delete`,
    /// `rename`.
    #[error("this server does not offer {what} (no `{extension}` extension)")]
    NotOffered {
        /// The extension's name (`tree`).
        extension: &'static str,
        /// What it would have made possible, for people.
        what: &'static str,
    },
    /// Reading or writing a local file failed. For a put the upload was aborted (PUT-20);
    /// for a get the destination was left untouched.
    #[error("{}", local_message(.path, .source))]
    Local {
        /// The local file, if the operation had one.
        path: Option<PathBuf>,
        /// What the system said.
        #[source]
        source: io::Error,
    },
}

/// A transfer slower than [`crate::ClientOptions::min_rate`]: the source of the
/// [`ClientError::Io`] (of kind `TimedOut`) that ended the session. Reach it with
/// `io::Error::get_ref` and `downcast_ref`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", rate_message(self))]
pub struct RateTooLow {
    /// Whether the client was sending (an upload's payload) rather than waiting for the
    /// server's answer.
    pub sending: bool,
    /// Octets moved since the transfer began.
    pub moved: u64,
    /// Time since it began.
    pub elapsed: Duration,
    /// The grace it had: the read or write timeout.
    pub grace: Duration,
    /// The minimum rate, in octets per second.
    pub min_rate: u64,
}

fn rate_message(r: &RateTooLow) -> String {
    let what = if r.sending {
        "the server took"
    } else {
        "the server sent"
    };
    format!(
        "{what} {} octets in {:.1} s, slower than the minimum rate of {} after {:.1} s of grace",
        r.moved,
        r.elapsed.as_secs_f64(),
        rate_text(r.min_rate),
        r.grace.as_secs_f64()
    )
}

/// A rate in octets per second: `1 KiB/s`, `2 MiB/s`, `1500 octets/s`.
pub(crate) fn rate_text(rate: u64) -> String {
    for (unit, name) in [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
        if rate >= unit && rate.is_multiple_of(unit) {
            return format!("{} {name}/s", rate / unit);
        }
    }
    if rate == 1 {
        return "1 octet/s".to_owned();
    }
    format!("{rate} octets/s")
}

/// What a server did that the protocol does not allow ([`ClientError::Protocol`]): a kind to
/// match on, and a description for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Violation {
    /// Which rule the server broke.
    pub kind: ViolationKind,
    /// What it sent, and why that is wrong.
    pub detail: String,
}

impl Violation {
    /// A violation of `kind`.
    pub fn new(kind: ViolationKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

/// The kinds of [`Violation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ViolationKind {
    /// The greeting is unusable: malformed, without version 1, or breaking its rules
    /// (HELLO-9, HELLO-10).
    Greeting,
    /// A line that is not a valid message, or longer than allowed (FRAME-2, ERR-10).
    Malformed,
    /// A valid message that is not an answer to the request (ERR-10).
    Unexpected,
    /// A reply that contradicts the request it answers: `ok get` with SIZE below OFFSET
    /// (GET-4), `ok put` with another SIZE or DIGEST, a confirmed upload the client aborted.
    Contradiction,
    /// A payload whose framing is broken (DATA-*).
    Payload,
    /// A listing out of order, with duplicates, or longer than the client accepts (DIR-*).
    Listing,
}

fn connect_message(addr: &Option<SocketAddr>, source: &io::Error) -> String {
    match addr {
        Some(a) => format!("cannot connect to {a}: {source}"),
        None => format!("cannot resolve the server address: {source}"),
    }
}

fn local_message(path: &Option<PathBuf>, source: &io::Error) -> String {
    match path {
        Some(p) => format!("{}: {source}", p.display()),
        None => format!("local I/O error: {source}"),
    }
}

/// Displays an [`ErrorReply`] as `511 not-found` or `511 (no text)`.
pub(crate) struct ErrorDisplay<'a>(pub &'a ErrorReply);

impl fmt::Display for ErrorDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.code)?;
        let name = (self.0.code.name())
            .or_else(|| ferry_wire::auth::code_name(self.0.code))
            .or_else(|| ferry_wire::tree::code_name(self.0.code));
        match (&self.0.text, name) {
            (Some(t), _) => write!(f, " {}", crate::names::visible(t.as_str())),
            (None, Some(n)) => write!(f, " {n}"),
            (None, None) => Ok(()),
        }
    }
}

impl ClientError {
    /// A failed TLS handshake as the user should read it: the refusal's own sentence when
    /// the server's identity was refused, else what rustls' error means.
    pub fn tls(source: io::Error) -> Self {
        // ferry_tls::explain also looks inside the `io::Error` TLS streams wrap rustls'
        // error in (whose `source()` skips it).
        let message = ferry_tls::explain(&source).unwrap_or_else(|| source.to_string());
        ClientError::Tls { message, source }
    }

    /// The server's code, for [`ClientError::Refused`] and a login the server refused.
    pub fn code(&self) -> Option<Code> {
        match self {
            ClientError::Refused(e) => Some(e.code),
            ClientError::Auth(AuthError {
                failure: AuthFailure::Refused(e),
                ..
            }) => Some(e.code),
            _ => None,
        }
    }

    /// Whether trying the same operation again later, on a new connection if this one ended,
    /// may succeed: a `4xx` code, a connection failure, a corrupt or truncated transfer.
    /// `5xx` codes (and unknown classes, ERR-3), protocol violations and local problems are
    /// not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Refused(e) => e.code.class() == Class::Transient,
            ClientError::Auth(a) => {
                matches!(&a.failure, AuthFailure::Refused(e) if e.code.class() == Class::Transient)
            }
            ClientError::Connect { .. }
            | ClientError::Io(_)
            | ClientError::Closed { .. }
            | ClientError::Disconnected(_)
            | ClientError::Corrupt { .. }
            | ClientError::Truncated { .. } => true,
            ClientError::Protocol(_)
            | ClientError::Tls { .. }
            | ClientError::NotOffered { .. }
            | ClientError::LocalName { .. }
            | ClientError::Local { .. } => false,
        }
    }

    /// Whether the error ended the session: the client cannot send further requests on
    /// this connection.
    pub fn ends_session(&self) -> bool {
        match self {
            ClientError::Refused(e) => e.code.closes_connection(),
            ClientError::Connect { .. }
            | ClientError::Tls { .. }
            | ClientError::Auth(_)
            | ClientError::Io(_)
            | ClientError::Closed { .. }
            | ClientError::Disconnected(_)
            | ClientError::Truncated { .. }
            | ClientError::Protocol(_) => true,
            ClientError::Corrupt { .. }
            | ClientError::NotOffered { .. }
            | ClientError::LocalName { .. }
            | ClientError::Local { .. } => false,
        }
    }

    /// A failed read or write of the local file at `path`.
    pub fn local(path: impl Into<PathBuf>, source: io::Error) -> Self {
        ClientError::Local {
            path: Some(path.into()),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_shown_in_binary_units_when_they_are_whole() {
        assert_eq!(rate_text(1024), "1 KiB/s");
        assert_eq!(rate_text(64 << 20), "64 MiB/s");
        assert_eq!(rate_text(1 << 30), "1 GiB/s");
        assert_eq!(rate_text(1536), "1536 octets/s");
        assert_eq!(rate_text(1), "1 octet/s");
    }

    #[test]
    fn a_tls_error_wrapped_in_an_io_error_is_explained() {
        // What a TLS stream returns when a plain server answers the ClientHello.
        let rustls_error = ferry_tls::rustls::Error::InvalidMessage(
            ferry_tls::rustls::InvalidMessage::InvalidContentType,
        );
        let err = ClientError::tls(io::Error::new(io::ErrorKind::InvalidData, rustls_error));
        let ClientError::Tls { message, .. } = &err else {
            panic!("not a TLS error: {err:?}");
        };
        assert!(message.contains("did not answer with TLS"), "{message}");
        assert!(!err.is_transient() && err.ends_session());
    }
}
