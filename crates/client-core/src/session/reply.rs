//! Replies: the greeting, the reply line of each request in order, and a `dir` listing's
//! entries; which of them end the session (ERR-9, ERR-10).

use std::io;

use ferry_wire::{
    Hasher, Hello, Listing, PayloadReceiver, Reply, decode_hello, decode_listed, decode_reply,
};

use super::{
    Action, ClientSession, Flow, Kind, Outcome, Payload, ReadFail, Rx, Sent, Sink, read_failed,
    unexpected, violation,
};
use crate::{ClientError, ViolationKind, check_greeting, visible};

impl ClientSession {
    /// The head operation's request could not be sent. If the server closed the connection
    /// with an error it had sent first (502, 421, 422), that error is the result rather than
    /// the broken pipe.
    pub(super) fn last_words(&mut self, e: io::Error) -> Flow {
        use io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
        if matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted) {
            match self.next_line(decode_reply) {
                Ok(None) => {
                    self.send_error = Some(e);
                    return Flow::NeedInput;
                }
                Ok(Some(Reply::Err(r))) if r.code.closes_connection() => {
                    self.complete(Err(ClientError::Refused(r)));
                    return Flow::Again;
                }
                _ => {}
            }
        }
        let e = ClientError::Io(e);
        let why = e.to_string();
        self.complete(Err(e));
        self.end(why);
        Flow::Again
    }

    pub(super) fn reply_step(&mut self) -> Flow {
        let Some(head) = self.ops.front() else {
            return Flow::Nothing;
        };
        match head.kind {
            Kind::Greeting => return self.greeting_step(),
            Kind::Login(_) => return self.login_step(),
            Kind::Enable | Kind::Tree(_) => return self.tree_reply_step(),
            _ => {}
        }
        let unknown = matches!(
            head.kind,
            Kind::Put {
                sent: Some(Sent::Complete(_)),
                ..
            }
        );
        let reply = match self.next_line(decode_reply) {
            Ok(Some(r)) => r,
            Ok(None) => return Flow::NeedInput,
            Err(f) => {
                self.complete(Err(read_failed(f, "reply", unknown)));
                return Flow::Again;
            }
        };
        let Some(mut op) = self.ops.pop_front() else {
            return Flow::Nothing;
        };
        let result = match (&mut op.kind, reply) {
            (Kind::Put { .. }, reply) => return self.put_reply(op, reply),
            (_, Reply::Err(e)) => Err(ClientError::Refused(e)),
            (Kind::Dir, Reply::DirOk { count }) => {
                if count > self.options.max_listing {
                    Err(violation(
                        ViolationKind::Listing,
                        format!(
                            "the listing announces {count} entries, more than the {} this \
                             client accepts",
                            self.options.max_listing
                        ),
                    ))
                } else {
                    // DIR-8: COUNT is the server's claim, not an allocation size.
                    let mut listing = Listing::new();
                    listing.entries.reserve(count.min(1024) as usize);
                    self.ops.push_front(op);
                    self.rx = Rx::Entries {
                        left: count,
                        listing,
                    };
                    return Flow::Again;
                }
            }
            (Kind::Dir, other) => Err(unexpected(&other, "dir")),
            (Kind::Get { offset, prefix, .. }, Reply::GetOk { size, mtime }) if size >= *offset => {
                let offset = *offset;
                let prefix = prefix.take().unwrap_or_else(Hasher::new);
                let id = op.id;
                self.ops.push_front(op);
                self.rx = Rx::Payload(Box::new(Payload {
                    rx: PayloadReceiver::resuming(size - offset, prefix),
                    size,
                    mtime,
                    offset,
                    sink: Sink::Opening,
                    writing: None,
                }));
                return Flow::Act(Action::OpenSink { id, size, mtime });
            }
            (Kind::Get { offset, .. }, Reply::GetOk { size, .. }) => Err(violation(
                ViolationKind::Contradiction,
                format!("ok get {size} for offset {offset}: the server must answer 515 (GET-4)"),
            )),
            (Kind::Get { .. }, other) => Err(unexpected(&other, "get")),
            (Kind::Close, Reply::Bye) => {
                self.finish(op, Ok(Outcome::Bye));
                self.ended = Some("the session was closed".to_owned());
                self.fail_rest();
                return Flow::Again;
            }
            (Kind::Close, other) => Err(unexpected(&other, "close")),
            (Kind::Greeting | Kind::Login(_), _) => Ok(Outcome::Connected),
            (Kind::Enable | Kind::Tree(_), other) => Err(unexpected(&other, "a tree request")),
        };
        self.finish(op, result);
        Flow::Again
    }

    pub(super) fn greeting_step(&mut self) -> Flow {
        let hello = match self.next_line(decode_hello) {
            Ok(Some(h)) => h,
            Ok(None) => return Flow::NeedInput,
            Err(ReadFail::Eof) => {
                self.complete(Err(ClientError::Closed {
                    outcome_unknown: false,
                }));
                return Flow::Again;
            }
            Err(ReadFail::Io(e)) => {
                self.complete(Err(ClientError::Io(e)));
                return Flow::Again;
            }
            Err(ReadFail::Invalid { error, line }) => {
                let what = format!("bad greeting \"{line}\": {error}");
                self.complete(Err(violation(ViolationKind::Greeting, what)));
                return Flow::Again;
            }
        };
        let greeting = match hello {
            Hello::Greeting(g) => g,
            Hello::Refused(e) => {
                let e = ClientError::Refused(e);
                let why = e.to_string();
                self.complete(Err(e));
                self.end(why);
                return Flow::Again;
            }
        };
        match check_greeting(&greeting) {
            Ok(()) => {
                self.greeting = Some(greeting);
                match self.options.login.clone() {
                    Some(login) => return self.begin_login(login),
                    None => self.complete(Ok(Outcome::Connected)),
                }
            }
            Err(e) => self.complete(Err(e)),
        }
        Flow::Again
    }

    pub(super) fn entries_step(&mut self, mut left: u64, mut listing: Listing) -> Flow {
        while left > 0 {
            // NAME-14: a line whose only fault is its name is skipped, not fatal.
            let line = match self.next_line(decode_listed) {
                Ok(Some(l)) => l,
                Ok(None) => {
                    self.rx = Rx::Entries { left, listing };
                    return Flow::NeedInput;
                }
                Err(f) => {
                    self.complete(Err(read_failed(f, "listing entry", false)));
                    return Flow::Again;
                }
            };
            if let Err(e) = listing.push(line) {
                // DIR-10.
                let what = format!(
                    "{e}: \"{}\" after \"{}\"",
                    visible(&String::from_utf8_lossy(&e.next)),
                    visible(&String::from_utf8_lossy(&e.previous))
                );
                self.complete(Err(violation(ViolationKind::Listing, what)));
                return Flow::Again;
            }
            left -= 1;
        }
        self.complete(Ok(Outcome::Listing(listing)));
        Flow::Again
    }
}
