//! The audit of a server's sessions (#16): one [`Record`] for every operation of every
//! session, handed to an [`Audit`] sink the driver gives the session
//! ([`crate::server::ServerSession::set_audit`]).
//!
//! Unlike the session's log (`tracing`, rate limited per session), the audit is neither
//! limited nor sampled: every `auth` attempt (failures included, with the user name tried),
//! every `dir`, `get` and `put` and every request of the `tree` extension (`list`, `mkdir`,
//! `rmdir`, `delete`, `rename`; spec section 17), answered or cut short by the session's end,
//! and the end of the session itself. The session reads no clock, so a record carries the operation's
//! duration from the instants its driver passed in; the sink stamps the wall-clock time (and
//! must not block: it is called inside the session's driver, perhaps on an async runtime).
//! Without a sink nothing is recorded and nothing is allocated.
//!
//! What is not a session's operation is not recorded here: connections refused before a
//! session (`err 420 busy`, a failed TLS handshake) and `version`, `close` and invalid
//! request lines, which the server's log reports.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferry_wire::Code;

/// What a [`Record`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// An authentication attempt (`auth`, and `auth-final` for SCRAM: one record for the
    /// exchange).
    Auth,
    /// `dir`.
    Dir,
    /// `get`.
    Get,
    /// `put`.
    Put,
    /// `list` (the `tree` extension, TREE-6).
    List,
    /// `mkdir` (TREE-8).
    Mkdir,
    /// `rmdir` (TREE-9).
    Rmdir,
    /// `delete` (TREE-10).
    Delete,
    /// `rename` (TREE-11): [`Record::name`] is what moved, [`Record::to`] where to.
    Rename,
    /// The session's end: its whole duration and the octets it moved.
    End,
}

impl Operation {
    /// The name in the audit log: `auth`, `dir`, `get`, `put`, `list`, `mkdir`, `rmdir`,
    /// `delete`, `rename`, `end`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Auth => "auth",
            Operation::Dir => "dir",
            Operation::Get => "get",
            Operation::Put => "put",
            Operation::List => "list",
            Operation::Mkdir => "mkdir",
            Operation::Rmdir => "rmdir",
            Operation::Delete => "delete",
            Operation::Rename => "rename",
            Operation::End => "end",
        }
    }
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded (for [`Operation::End`]: the session ended as the protocol foresees, by
    /// `close` or by the client closing the connection between requests).
    Ok,
    /// It was answered with this error: `err CODE`, `abort CODE` of a get payload, or the
    /// closing error that ended the session (a timeout, a shutdown, a protocol violation).
    Err(Code),
    /// The session ended before the operation was answered, for this reason (the client
    /// closed the connection, the connection failed, the peer stopped taking output).
    Cut(&'static str),
}

impl Outcome {
    /// The code's name (`exists`, `auth-failed`, …) for [`Outcome::Err`].
    pub fn code_name(&self) -> Option<&'static str> {
        match self {
            Outcome::Err(code) => Some(code_name(*code)),
            _ => None,
        }
    }
}

/// A code's name as the server sends it (`err 512 exists`), `error` for a code without one.
pub fn code_name(code: Code) -> &'static str {
    code.name()
        .or_else(|| ferry_wire::auth::code_name(code))
        .or_else(|| ferry_wire::tree::code_name(code))
        .unwrap_or("error")
}

/// One audited operation of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What.
    pub operation: Operation,
    /// Who: the user the session authenticated as, `None` for a session that has not
    /// (anonymous access, or a server without users). For [`Operation::Auth`]: the user name
    /// the client tried, whether or not it succeeded (`None` when it gave none the server
    /// could read).
    pub user: Option<String>,
    /// The client's address, when the driver gave it.
    pub peer: Option<SocketAddr>,
    /// The file name (or path, `tree` extension) of a get or put (any valid UTF-8: quotes,
    /// backslashes, spaces); the path of a `mkdir`, `rmdir`, `delete`, what a `rename` moves,
    /// the folder a `list` lists (`.` for the served folder); `None` for the other operations
    /// and for an eager put refused for its name (`err 510 bad-name`, answered after its
    /// payload; a request with an invalid name or path is an invalid request line, not
    /// recorded).
    pub name: Option<String>,
    /// Where a `rename` moves [`Record::name`] to; `None` for the other operations.
    pub to: Option<String>,
    /// Payload octets moved: of the file for a get (from its offset) or a put; for an
    /// operation cut short, the octets that moved on the connection since its request,
    /// framing included; for [`Operation::End`], every octet the session moved both ways. 0
    /// for `dir`, `auth`, `list`, `mkdir`, `rmdir`, `delete` and `rename`.
    pub bytes: u64,
    /// For `dir` and `list`: the number of entries listed.
    pub entries: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
    /// From its request line to its answer (for a get, to the end of its payload; for a SCRAM
    /// exchange, from `auth` to the answer of `auth-final`; for [`Operation::End`], the whole
    /// session), by the session's clock.
    pub duration: Duration,
}

/// Where a server's sessions send their [`Record`]s. Called inside the session's driver, once
/// per operation: it must return quickly, never block on I/O, and never lose a record without
/// saying so in the server's log.
pub trait Audit: Send + Sync + fmt::Debug {
    /// Records `record`.
    fn record(&self, record: Record);
}

/// An [`Audit`] sink that several configurations can hold and compare (by identity, as
/// `ferry_store::ServerAuth` compares its authenticator).
#[derive(Debug, Clone)]
pub struct AuditSink(pub Arc<dyn Audit>);

impl PartialEq for AuditSink {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for AuditSink {}

/// An [`Audit`] sink that keeps the records in memory (tests).
#[derive(Debug, Default)]
pub struct Memory {
    records: std::sync::Mutex<Vec<Record>>,
}

impl Memory {
    /// An empty sink.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Takes the records so far.
    pub fn take(&self) -> Vec<Record> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Audit for Memory {
    fn record(&self, record: Record) {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }
}

/// The user name of a SCRAM client-first-message (RFC 5802: `n=` after the GS2 header,
/// `=2C` and `=3D` unescaped), for the audit of a failed attempt; `None` when it has none
/// in UTF-8.
pub(crate) fn scram_user(client_first: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(client_first).ok()?;
    let mut parts = text.splitn(3, ',');
    parts.next()?;
    parts.next()?;
    let bare = parts.next()?;
    let name = bare
        .split(',')
        .find_map(|attribute| attribute.strip_prefix("n="))?;
    Some(name.replace("=2C", ",").replace("=3D", "="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scram_user_is_read_after_the_gs2_header_and_unescaped() {
        assert_eq!(
            scram_user(b"p=ferry-exporter,,n=alice,r=abc").as_deref(),
            Some("alice")
        );
        assert_eq!(
            scram_user(b"n,a=x,n=b=2Cc=3Dd,r=abc").as_deref(),
            Some("b,c=d")
        );
        assert_eq!(scram_user(b"n,,m=ext,n=bob,r=1").as_deref(), Some("bob"));
        assert_eq!(scram_user(b"n,,r=abc"), None);
        assert_eq!(scram_user(b"garbage"), None);
        assert_eq!(scram_user(b"n,,n=\xff,r=1"), None);
    }

    #[test]
    fn codes_have_their_wire_names() {
        assert_eq!(code_name(Code::EXISTS), "exists");
        assert_eq!(code_name(ferry_wire::auth::AUTH_FAILED), "auth-failed");
        assert_eq!(Outcome::Err(Code::CORRUPT).code_name(), Some("corrupt"));
        assert_eq!(Outcome::Ok.code_name(), None);
    }
}
