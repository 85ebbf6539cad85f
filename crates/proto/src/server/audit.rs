//! The session's side of the audit ([`crate::audit`]): what it remembers to make one record
//! per operation, and where the records are made. Kept apart from the protocol code, which
//! calls in at four places: a request begins ([`ServerSession::audit_begin`],
//! [`ServerSession::audit_begin_tree`]), an `auth`
//! request is read ([`ServerSession::audit_auth`]), a request is answered (from
//! `ServerSession::log`, before its rate limit), octets move; and the session's drop records
//! what was left unanswered and the session's end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_wire::auth::AuthRequest;
use ferry_wire::tree::TreeRequest;
use ferry_wire::{Code, Request, TreePath};

use super::{End, ServerSession, State};
use crate::audit::{self, Audit, Operation, Outcome, Record};

/// What a session remembers for its audit records.
#[derive(Debug)]
pub(super) struct Trail {
    /// Where records go; `None`: no audit (nothing else here is used).
    sink: Option<Arc<dyn Audit>>,
    /// When the session began.
    began: Instant,
    /// Octets the session moved, both ways.
    moved: u64,
    /// The `dir`, `get`, `put` or request of the `tree` extension in progress, until it is
    /// answered.
    open: Option<Open>,
    /// The `auth` attempt in progress (a SCRAM exchange spans two requests): the user name
    /// tried and when it began.
    tried: Option<(Option<String>, Instant)>,
}

/// An operation in progress.
#[derive(Debug)]
struct Open {
    operation: Operation,
    name: Option<TreePath>,
    /// Where a `rename` moves `name`.
    to: Option<TreePath>,
    began: Instant,
    /// [`Trail::moved`] when it began.
    moved: u64,
}

impl Trail {
    /// A session's trail, without a sink.
    pub(super) fn new(now: Instant) -> Self {
        Self {
            sink: None,
            began: now,
            moved: 0,
            open: None,
            tried: None,
        }
    }

    /// `n` more octets moved.
    pub(super) fn moved(&mut self, n: usize) {
        self.moved = self.moved.saturating_add(n as u64);
    }
}

fn elapsed(from: Instant, to: Instant) -> Duration {
    to.saturating_duration_since(from)
}

/// A record's name: the path, or `.` for a `list` of the served folder.
fn record_name(operation: Operation, name: Option<&TreePath>) -> Option<String> {
    match (operation, name) {
        (_, Some(name)) => Some(name.as_str().to_owned()),
        (Operation::List, None) => Some(".".to_owned()),
        (_, None) => None,
    }
}

impl ServerSession {
    /// Sends a [`Record`] of every operation of this session to `audit` (see
    /// [`crate::audit`]): each `auth` attempt, `dir`, `get` and `put`, and the session's end
    /// (recorded when the session is dropped). Call it before the first
    /// [`ServerSession::poll`]; without it, nothing is recorded.
    pub fn set_audit(&mut self, audit: Arc<dyn Audit>) {
        self.audit.sink = Some(audit);
    }

    /// The session's user, for records.
    fn audit_user(&self) -> Option<String> {
        self.auth.grant.as_ref().map(|g| g.user.to_string())
    }

    fn audit_send(&self, record: Record) {
        if let Some(sink) = &self.audit.sink {
            sink.record(record);
        }
    }

    /// A request of ferry/1 begins: a `dir`, `get` or `put` is open until answered.
    pub(super) fn audit_begin(&mut self, request: &Request) {
        if self.audit.sink.is_none() {
            return;
        }
        let (operation, name) = match request {
            Request::Dir => (Operation::Dir, None),
            Request::Get { name, .. } => (Operation::Get, Some(TreePath::from(name.clone()))),
            Request::Put { name, .. } => (Operation::Put, Some(TreePath::from(name.clone()))),
            Request::Version(_) | Request::Close => return,
        };
        self.audit_open(operation, name, None);
    }

    /// A request of the `tree` extension begins (all but `enable` are operations).
    pub(super) fn audit_begin_tree(&mut self, request: &TreeRequest) {
        if self.audit.sink.is_none() {
            return;
        }
        let (operation, name, to) = match request {
            TreeRequest::Enable(_) => return,
            TreeRequest::Get { path, .. } => (Operation::Get, Some(path), None),
            TreeRequest::Put { path, .. } => (Operation::Put, Some(path), None),
            TreeRequest::List { folder, .. } => (Operation::List, folder.path(), None),
            TreeRequest::Mkdir(p) => (Operation::Mkdir, Some(p), None),
            TreeRequest::Rmdir(p) => (Operation::Rmdir, Some(p), None),
            TreeRequest::Delete(p) => (Operation::Delete, Some(p), None),
            TreeRequest::Rename { from, to } => (Operation::Rename, Some(from), Some(to)),
        };
        self.audit_open(operation, name.cloned(), to.cloned());
    }

    fn audit_open(&mut self, operation: Operation, name: Option<TreePath>, to: Option<TreePath>) {
        self.audit.open = Some(Open {
            operation,
            name,
            to,
            began: self.now,
            moved: self.audit.moved,
        });
    }

    /// An `auth` request was read: the user name it tries (the `auth-final` of a SCRAM
    /// exchange continues the attempt its `auth` began).
    pub(super) fn audit_auth(&mut self, request: &AuthRequest) {
        if self.audit.sink.is_none() {
            return;
        }
        let user = match request {
            AuthRequest::Ed25519 { user, .. } => Some(user.to_string()),
            AuthRequest::Scram { client_first, .. } => audit::scram_user(client_first),
            AuthRequest::Final { .. } => return,
        };
        self.audit.tried = Some((user, self.now));
    }

    /// A request was answered (`ServerSession::log`'s arguments: the command, the name, the
    /// error if any, the octets moved or, for `dir`, the entries).
    pub(super) fn audit_answer(
        &mut self,
        command: &'static str,
        name: Option<&TreePath>,
        code: Option<Code>,
        n: u64,
    ) {
        if self.audit.sink.is_none() {
            return;
        }
        let outcome = code.map_or(Outcome::Ok, Outcome::Err);
        let (operation, user, began) = match command {
            "auth" => {
                let (user, began) = self.audit.tried.take().unwrap_or((None, self.started));
                (Operation::Auth, user, began)
            }
            "dir" => (Operation::Dir, self.audit_user(), self.started),
            "get" => (Operation::Get, self.audit_user(), self.started),
            "put" => (Operation::Put, self.audit_user(), self.started),
            "list" => (Operation::List, self.audit_user(), self.started),
            "mkdir" => (Operation::Mkdir, self.audit_user(), self.started),
            "rmdir" => (Operation::Rmdir, self.audit_user(), self.started),
            "delete" => (Operation::Delete, self.audit_user(), self.started),
            "rename" => (Operation::Rename, self.audit_user(), self.started),
            // version, close, enable, invalid lines: not operations of the audit.
            _ => return,
        };
        let mut to = None;
        if operation != Operation::Auth
            && let Some(open) = self.audit.open.take()
        {
            to = open.to.map(TreePath::into_string);
        }
        let listing = matches!(operation, Operation::Dir | Operation::List);
        let moves = matches!(operation, Operation::Get | Operation::Put);
        self.audit_send(Record {
            operation,
            user,
            peer: self.auth.peer,
            name: record_name(operation, name),
            to,
            bytes: if moves { n } else { 0 },
            entries: listing.then_some(n),
            outcome,
            duration: elapsed(began, self.now),
        });
    }

    /// The session is dropped: records the operation (or `auth` exchange) it left
    /// unanswered, then its end.
    pub(super) fn audit_end(&mut self) {
        if self.audit.sink.is_none() {
            return;
        }
        // How it ended, or was ending (its last words sent, or being sent) when dropped.
        let end = match &self.state {
            State::Finished(end)
            | State::Closing(end)
            | State::Flushing(end)
            | State::Draining { end, .. } => Some(end.clone()),
            _ => None,
        };
        let (cut, session) = match &end {
            Some(End::Bye) => (Outcome::Cut("the session closed"), Outcome::Ok),
            Some(End::Eof) => (
                Outcome::Cut("the client closed the connection"),
                Outcome::Ok,
            ),
            Some(End::Closed(code)) => (Outcome::Err(*code), Outcome::Err(*code)),
            Some(End::Dropped(why)) => (Outcome::Cut(why), Outcome::Cut(why)),
            None => (
                Outcome::Cut("the connection ended"),
                Outcome::Cut("the connection ended"),
            ),
        };
        let now = self.now;
        if let Some((user, began)) = self.audit.tried.take() {
            // A SCRAM exchange waiting for `auth-final` is cut; otherwise the attempt failed
            // and its `err 535` was still held back (AUTH-20) when the session ended: a failure
            // all the same (a guesser who hangs up does not hide its guesses).
            let outcome = if self.auth.scram.is_some() {
                cut
            } else {
                Outcome::Err(ferry_wire::auth::AUTH_FAILED)
            };
            self.audit_send(Record {
                operation: Operation::Auth,
                user,
                peer: self.auth.peer,
                name: None,
                to: None,
                bytes: 0,
                entries: None,
                outcome,
                duration: elapsed(began, now),
            });
        }
        if let State::Storing(batch) = &self.state {
            // Eager puts received whole, not answered: the first is `open`, the others were
            // gathered after it without a request of their own.
            self.audit.open = None;
            for (name, size, _) in &batch.answers {
                self.audit_send(Record {
                    operation: Operation::Put,
                    user: self.audit_user(),
                    peer: self.auth.peer,
                    name: Some(name.as_str().to_owned()),
                    to: None,
                    bytes: *size,
                    entries: None,
                    outcome: cut,
                    duration: elapsed(self.started, now),
                });
            }
        }
        if let Some(open) = self.audit.open.take() {
            self.audit_send(Record {
                operation: open.operation,
                user: self.audit_user(),
                peer: self.auth.peer,
                name: record_name(open.operation, open.name.as_ref()),
                to: open.to.map(TreePath::into_string),
                bytes: self.audit.moved.saturating_sub(open.moved),
                entries: None,
                outcome: cut,
                duration: elapsed(open.began, now),
            });
        }
        self.audit_send(Record {
            operation: Operation::End,
            user: self.audit_user(),
            peer: self.auth.peer,
            name: None,
            to: None,
            bytes: self.audit.moved,
            entries: None,
            outcome: session,
            duration: elapsed(self.audit.began, now),
        });
        self.audit.sink = None;
    }
}

impl Drop for ServerSession {
    fn drop(&mut self) {
        self.audit_end();
    }
}
