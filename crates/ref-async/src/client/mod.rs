//! # The async ferry/1 client
//!
//! [`Client`] speaks ferry/1 over one TCP connection of a [`Runtime`]: [`Client::dir`],
//! downloads ([`Client::get_to_path`], [`Client::get_to_writer`]), uploads
//! ([`Client::put_from_path`], [`Client::put_from_reader`]), pipelined batches of both
//! ([`Client::get_many`], [`Client::put_many`]) and [`Client::close`]. The method names,
//! options, reports and errors are those of `ferry_sync::client::Client`, with `async`
//! methods and `futures-io` readers and writers; [`crate::blocking::BlockingClient`] wraps it
//! for sync callers with the very signatures of the threaded client.
//!
//! ```no_run
//! use std::path::Path;
//! use ferry_async::client::{Client, GetOptions};
//! use ferry_async::tokio::Tokio;
//! use ferry_async::BlockOn as _;
//! use ferry_wire::FileName;
//!
//! let rt = Tokio::new_current_thread().map_err(ferry_async::client::ClientError::Io)?;
//! rt.block_on(async {
//!     let mut client = Client::connect(rt.clone(), "127.0.0.1:7450").await?;
//!     for entry in client.dir().await? {
//!         println!("{} {} {}", entry.size, entry.mtime, entry.name);
//!     }
//!     let name = FileName::new("天线15.doc").expect("a valid name");
//!     client.get_to_path(&name, Path::new("天线15.doc"), &GetOptions::default(), |_| {}).await?;
//!     client.close().await
//! })?;
//! # Ok::<(), ferry_async::client::ClientError>(())
//! ```
//!
//! ## Guarantees
//!
//! The same as the threaded client's:
//!
//! - **Nothing unverified at the destination.** [`Client::get_to_path`] writes into
//!   `<dest>.ferry-part` ([`PART_SUFFIX`], named exactly as the threaded client names it, so
//!   either client resumes the other's partial file) and renames it onto `dest` only after the
//!   whole-file digest matched (DATA-10); a failed download leaves `dest` untouched.
//! - **Only where asked.** Names received from a server are [`FileName`]s: validated, without
//!   separators, never `.`/`..` or hidden. [`Client::get_many`] joins them onto the folder
//!   the caller chose and nothing else (NAME-9, NAME-10); renaming onto the destination
//!   replaces a symbolic link there rather than writing through it. A listing entry whose
//!   name is not valid is skipped, never turned into a path ([`Client::dir_listing`] reports
//!   it, NAME-14).
//! - **No panic on any server bytes**, and memory bounded by what the client decides: a
//!   1 MiB receive buffer, no allocation sized from announced counts (DIR-8).
//! - **Never success for a wrong digest or size**: a get succeeds only after `end` with the
//!   digest the client computed itself; a put only after `ok put` repeating the size and
//!   digest it sent (PUT-21).
//! - **Local files on the blocking pool**, in pieces of up to 1 MiB.
//!
//! ## Sessions
//!
//! A [`Client`] is one session. Errors that end it (connection failures, protocol
//! violations, closing codes 420, 421, 422, 501 and 502, see [`ClientError::ends_session`])
//! close the connection and make every later call fail fast with
//! [`ClientError::Disconnected`]; other errors leave it usable. Dropping a client without
//! [`Client::close`] simply closes the connection. Each read and write is bounded by
//! [`ClientOptions`]' timeouts, with the runtime's timers.

mod batch;
mod conn;
mod get;
mod local;
mod put;
mod send;

use std::fs::{self, File, OpenOptions};
use std::future::{Future, poll_fn};
use std::io::{self, Read, Seek};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::SystemTime;

use ferry_wire::{
    Code, Digest, Entry, FileName, Greeting, Hasher, Hello, Listing, PayloadReceiver, PutFlow,
    PutMode, Reply, Request, Step, Timestamp, decode_hello, decode_listed, decode_reply,
};
use futures_io::{AsyncRead, AsyncWrite};

use crate::runtime::{Runtime, Timed, timeout};
use conn::{Inbound, Outbound, RECV_BUF, ReadFail, snippet};
use get::GetFail;
use local::{FileWriter, Sink, Source};
use send::{Sent, send_payload};

use ferry_client_core::check_greeting;
pub use ferry_client_core::{
    ClientError, ClientOptions, DEFAULT_EAGER_LIMIT, GetOptions, GetReport, PART_SUFFIX, Progress,
    PutOptions, PutReport, Violation, ViolationKind, local_path, name_for_local, part_path,
    visible, windows_name_problem,
};

/// A ferry/1 session with a server. See the [module documentation](self).
pub struct Client<R: Runtime> {
    rx: Replies<R>,
    tx: Outbound<R>,
    chunk_buf: Vec<u8>,
}

impl<R: Runtime> std::fmt::Debug for Client<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.rx.peer)
            .field("greeting", &self.rx.greeting)
            .field("ended", &self.rx.ended)
            .finish_non_exhaustive()
    }
}

/// The receiving side of a session and its state: everything a pipelined batch reads with
/// while the sending side writes.
struct Replies<R: Runtime> {
    rt: R,
    inbound: Inbound<R>,
    greeting: Greeting,
    peer: SocketAddr,
    options: ClientOptions,
    /// Why the session ended, once it has.
    ended: Option<String>,
}

impl<R: Runtime> Client<R> {
    /// Connects to a ferry server with [`ClientOptions::default`] and reads its greeting.
    ///
    /// `addr` is resolved with the system resolver on the calling thread: pass a
    /// [`SocketAddr`] (or an `ip:port` text) where resolving could block.
    pub async fn connect(rt: R, addr: impl ToSocketAddrs) -> Result<Self, ClientError> {
        Self::connect_with(rt, addr, &ClientOptions::default()).await
    }

    /// Connects to a ferry server, trying each address `addr` resolves to in turn, and
    /// reads its greeting ([`Client::from_stream`]).
    pub async fn connect_with(
        rt: R,
        addr: impl ToSocketAddrs,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|source| ClientError::Connect { addr: None, source })?
            .collect();
        let mut last = None;
        for a in addrs {
            let attempt = match timeout(&rt, options.connect_timeout, rt.connect(a)).await {
                Timed::Done(r) => r,
                Timed::Expired => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection timed out",
                )),
            };
            match attempt {
                Ok(stream) => return Self::from_stream(rt, stream, options).await,
                Err(source) => {
                    last = Some(ClientError::Connect {
                        addr: Some(a),
                        source,
                    })
                }
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Connect {
            addr: None,
            source: io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address"),
        }))
    }

    /// Starts a session on a connected stream: reads the server's first line and checks it.
    /// A refusal (`err 420 busy`) is [`ClientError::Refused`]; a greeting that is malformed,
    /// breaks HELLO-4 or HELLO-5, or does not list version 1 is [`ClientError::Protocol`]. In
    /// both cases the connection is closed without the client having sent anything (HELLO-9,
    /// HELLO-10, HELLO-11).
    pub async fn from_stream(
        rt: R,
        stream: R::TcpStream,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        let peer = R::peer_addr(&stream).map_err(ClientError::Io)?;
        let (read, write) = futures_lite::io::split(stream);
        let mut inbound = Inbound::new(rt.clone(), read, options.read_timeout);
        let hello = match inbound.next(decode_hello).await {
            Ok(h) => h,
            Err(ReadFail::Eof) => {
                return Err(ClientError::Closed {
                    outcome_unknown: false,
                });
            }
            Err(ReadFail::Io(e)) => return Err(ClientError::Io(e)),
            Err(ReadFail::Invalid { error, line }) => {
                return Err(ClientError::Protocol(Violation::new(
                    ViolationKind::Greeting,
                    format!("bad greeting \"{line}\": {error}"),
                )));
            }
        };
        let greeting = match hello {
            Hello::Greeting(g) => g,
            Hello::Refused(e) => return Err(ClientError::Refused(e)),
        };
        check_greeting(&greeting)?;
        let tx = Outbound::new(rt.clone(), write, options.write_timeout);
        Ok(Self {
            rx: Replies {
                rt,
                inbound,
                greeting,
                peer,
                options: options.clone(),
                ended: None,
            },
            tx,
            chunk_buf: Vec::new(),
        })
    }

    /// The server's greeting: versions, limits, extensions.
    pub fn greeting(&self) -> &Greeting {
        &self.rx.greeting
    }

    /// The runtime the client runs on (for a sync caller that wraps it: `block_on` a call
    /// that [`crate::blocking::BlockingClient`] does not offer, such as
    /// [`Client::dir_listing`]).
    pub fn runtime(&self) -> &R {
        &self.rx.rt
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.rx.peer
    }

    /// Whether the session can still carry requests (no error has ended it).
    pub fn is_open(&self) -> bool {
        self.rx.ended.is_none()
    }

    /// Closes the sending half too once the receiving side has ended the session.
    fn settle<T>(&mut self, result: T) -> T {
        if self.rx.ended.is_some() {
            self.tx.close();
        }
        result
    }

    /// Lists the served folder (`dir`): regular files with size and modification time, in
    /// bytewise order of their names. Entries whose names this client cannot accept are left
    /// out (NAME-14); [`Client::dir_listing`] returns them too, to show the user.
    pub async fn dir(&mut self) -> Result<Vec<Entry>, ClientError> {
        let listing = self.dir_listing().await?;
        for s in &listing.skipped {
            tracing::warn!(
                name = %visible(&String::from_utf8_lossy(&s.name)),
                error = %s.error,
                "listing entry skipped"
            );
        }
        Ok(listing.entries)
    }

    /// Lists the served folder (`dir`), with the entries skipped because their names are
    /// not valid for this client (`../x`, `a/b`, `.hidden`, a name that is not NFC or holds a
    /// code point Unicode 18.0.0 does not assign, …): those reach the caller only as
    /// [`ferry_wire::SkippedEntry`], raw octets to show, never as names or paths; the rest
    /// of the listing and the session go on (NAME-14).
    ///
    /// A malformed line (an invalid SIZE or MTIME included, DIR-9) or names out of order or
    /// repeated (DIR-4, DIR-10, skipped names included) make the listing invalid: the result
    /// is [`ClientError::Protocol`] and the session ends (ERR-10).
    pub async fn dir_listing(&mut self) -> Result<Listing, ClientError> {
        let result = self.dir_inner().await;
        self.settle(result)
    }

    async fn dir_inner(&mut self) -> Result<Listing, ClientError> {
        self.rx.check_open()?;
        self.send(&Request::Dir.to_bytes()).await?;
        match self.rx.read_reply().await? {
            Reply::DirOk { count } => self.rx.read_entries(count).await,
            Reply::Err(e) => Err(ClientError::Refused(e)),
            other => Err(self.rx.unexpected(&other, "dir")),
        }
    }

    /// Ends the session politely: sends `close` and expects `bye` (CLOSE-1, CLOSE-3).
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.rx.check_open()?;
        self.send(&Request::Close.to_bytes()).await?;
        match self.rx.read_reply().await? {
            Reply::Bye => {
                let _ = self.tx.shutdown().await;
                Ok(())
            }
            Reply::Err(e) => Err(ClientError::Refused(e)),
            other => Err(self.rx.unexpected(&other, "close")),
        }
    }

    // --------------------------------------------------------------- batches ---

    async fn send(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        match self.tx.write_all(bytes).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.write_failed(e).await),
        }
    }

    async fn write_failed(&mut self, e: io::Error) -> ClientError {
        let err = self.rx.write_failed(e).await;
        self.tx.close();
        err
    }
}

impl<R: Runtime> Replies<R> {
    pub(super) fn check_open(&self) -> Result<(), ClientError> {
        match &self.ended {
            Some(why) => Err(ClientError::Disconnected(why.clone())),
            None => Ok(()),
        }
    }

    /// The largest size sent with flow `now`: the smaller of the server's `max-eager` and
    /// [`ClientOptions::eager_limit`]; `None` when eager puts are off (PUT-7).
    pub(super) fn eager_max(&self, opts: &PutOptions) -> Option<u64> {
        let server = self.greeting.limits().max_eager;
        if !opts.eager || server == 0 {
            return None;
        }
        Some(server.min(self.options.eager_limit))
    }

    /// Marks the session ended and stops reading (the owner drops the sending half).
    pub(super) fn end(&mut self, why: String) {
        if self.ended.is_none() {
            tracing::debug!(peer = %self.peer, "session ended: {why}");
            self.ended = Some(why);
            self.inbound.close();
        }
    }

    /// Ends the session if `e` ends it; returns `e`.
    pub(super) fn fail(&mut self, e: ClientError) -> ClientError {
        if e.ends_session() {
            self.end(e.to_string());
        }
        e
    }

    /// A protocol violation by the server: the connection is closed (ERR-10).
    pub(super) fn violation(&mut self, kind: ViolationKind, what: String) -> ClientError {
        self.fail(ClientError::Protocol(Violation::new(kind, what)))
    }

    pub(super) fn unexpected(&mut self, reply: &Reply, request: &str) -> ClientError {
        let line = snippet(&reply.to_bytes(), None);
        self.violation(
            ViolationKind::Unexpected,
            format!("unexpected reply to {request}: \"{line}\""),
        )
    }

    pub(super) fn read_failed(&mut self, f: ReadFail, what: &str) -> ClientError {
        let e = match f {
            ReadFail::Eof => ClientError::Closed {
                outcome_unknown: false,
            },
            ReadFail::Io(e) => ClientError::Io(e),
            ReadFail::Invalid { error, line } => ClientError::Protocol(Violation::new(
                ViolationKind::Malformed,
                format!("malformed {what} \"{line}\": {error}"),
            )),
        };
        self.fail(e)
    }

    /// A write failed. If the server closed the connection with an error it had sent first
    /// (502, 421, 422), report that error rather than the broken pipe. Ends the session.
    pub(super) async fn write_failed(&mut self, e: io::Error) -> ClientError {
        use io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
        let mut err = ClientError::Io(e);
        if let ClientError::Io(e) = &err
            && matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted)
            && self.ended.is_none()
            && let Ok(Reply::Err(r)) = self.inbound.next(decode_reply).await
            && r.code.closes_connection()
        {
            err = ClientError::Refused(r);
        }
        self.end(err.to_string());
        err
    }

    /// Reads one reply line. An `err` with a closing code (420, 421, 422, 501, 502) ends the
    /// session (ERR-9).
    pub(super) async fn read_reply(&mut self) -> Result<Reply, ClientError> {
        match self.inbound.next(decode_reply).await {
            Ok(Reply::Err(e)) if e.code.closes_connection() => {
                self.end(ClientError::Refused(e.clone()).to_string());
                Ok(Reply::Err(e))
            }
            Ok(r) => Ok(r),
            Err(f) => Err(self.read_failed(f, "reply")),
        }
    }

    pub(super) async fn read_entries(&mut self, count: u64) -> Result<Listing, ClientError> {
        if count > self.options.max_listing {
            return Err(self.violation(
                ViolationKind::Listing,
                format!(
                    "the listing announces {count} entries, more than the {} this client accepts",
                    self.options.max_listing
                ),
            ));
        }
        // DIR-8: COUNT is the server's claim, not an allocation size.
        let mut listing = Listing::new();
        listing.entries.reserve(count.min(1024) as usize);
        for _ in 0..count {
            // NAME-14: a line whose only fault is its name is skipped, not fatal.
            let line = match self.inbound.next(decode_listed).await {
                Ok(l) => l,
                Err(f) => return Err(self.read_failed(f, "listing entry")),
            };
            if let Err(e) = listing.push(line) {
                // DIR-10.
                return Err(self.violation(
                    ViolationKind::Listing,
                    format!(
                        "{e}: \"{}\" after \"{}\"",
                        visible(&String::from_utf8_lossy(&e.next)),
                        visible(&String::from_utf8_lossy(&e.previous))
                    ),
                ));
            }
        }
        Ok(listing)
    }
}
