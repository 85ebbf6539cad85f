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
//! - **Local files on the blocking pool**, in pieces of up to 1 MiB, in few trips (see
//!   `drive.rs`).
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
mod drive;
mod tree;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Instant;

use ferry_client_core::local::{
    GetFail, GetJob, connect_failed, connected, log_skipped, put_report, resolve,
    unexpected_outcome, writer_report,
};
use ferry_client_core::session::{ClientSession, OpId, Outcome};
use ferry_wire::{Entry, FileName, Greeting, Hasher, Listing, TreePath};
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::io::{Empty, Sink as NullSink};

use crate::runtime::{Runtime, Timed, timeout};
use drive::{Conn, Feed, FileSource, Ops, Quiet, Report, Sink, Source, drive};

pub use ferry_client_core::{
    AuthError, AuthFailure, ClientError, ClientOptions, DEFAULT_EAGER_LIMIT, DEFAULT_MIN_RATE,
    GetOptions, GetReport, Login, PART_SUFFIX, Progress, PutOptions, PutReport, RateTooLow,
    Violation, ViolationKind, local_path, login, name_for_local, part_path, visible,
    windows_name_problem,
};

/// Operations without a writer or reader of the caller's.
type Plain<'a, P> = Ops<'a, NullSink, Empty, P>;

/// A ferry/1 session with a server. See the [module documentation](self).
pub struct Client<R: Runtime> {
    conn: Conn<R>,
    session: ClientSession,
    greeting: Greeting,
    peer: SocketAddr,
}

impl<R: Runtime> std::fmt::Debug for Client<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.peer)
            .field("greeting", &self.greeting)
            .field("ended", &self.session.ended())
            .finish_non_exhaustive()
    }
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
        let mut last = None;
        for a in resolve(addr)? {
            let attempt = match timeout(&rt, options.connect_timeout, rt.connect(a)).await {
                Timed::Done(r) => r,
                Timed::Expired => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection timed out",
                )),
            };
            match attempt {
                Ok(stream) => return Self::from_stream(rt, stream, options).await,
                Err(e) => last = Some((a, e)),
            }
        }
        Err(connect_failed(last))
    }

    /// Starts a session on a connected stream: with [`ClientOptions::tls`], makes the TLS
    /// handshake first (bounded by the shorter of the connect and read timeouts; a failure
    /// is [`ClientError::Tls`], and nothing of ferry/1 was sent); then reads the server's
    /// first line and checks it.
    /// A refusal (`err 420 busy`) is [`ClientError::Refused`]; a greeting that is malformed,
    /// breaks HELLO-4 or HELLO-8, or does not list version 1 is [`ClientError::Protocol`]. In
    /// both cases the connection is closed without the client having sent anything (HELLO-9,
    /// HELLO-10, HELLO-11).
    pub async fn from_stream(
        rt: R,
        stream: R::TcpStream,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        let peer = R::peer_addr(&stream).map_err(ClientError::Io)?;
        let stream = crate::tls::connect(&rt, stream, options).await?;
        let cb = stream.channel_binding();
        let mut conn = Conn::new(rt, stream);
        let mut session = ClientSession::new(options.clone(), Instant::now());
        if let Some(cb) = cb {
            session.set_channel_binding(cb);
        }
        let mut ops: Plain<'_, _> = Ops::new(Quiet);
        drive(&mut conn, &mut session, &mut ops, &mut Feed::Nothing).await;
        let greeting = connected(&session, ops.take(OpId(0)))?;
        Ok(Self {
            conn,
            session,
            greeting,
            peer,
        })
    }

    /// The server's greeting: versions, limits, extensions.
    pub fn greeting(&self) -> &Greeting {
        &self.greeting
    }

    /// The runtime the client runs on (for a sync caller that wraps it: `block_on` a call
    /// that [`crate::blocking::BlockingClient`] does not offer, such as
    /// [`Client::dir_listing`]).
    pub fn runtime(&self) -> &R {
        &self.conn.rt
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the session can still carry requests (no error has ended it).
    pub fn is_open(&self) -> bool {
        self.session.is_open()
    }

    /// Lists the served folder (`dir`): regular files with size and modification time, in
    /// bytewise order of their names. Entries whose names this client cannot accept are left
    /// out (NAME-14); [`Client::dir_listing`] returns them too, to show the user.
    pub async fn dir(&mut self) -> Result<Vec<Entry>, ClientError> {
        let listing = self.dir_listing().await?;
        log_skipped(&listing);
        Ok(listing.entries)
    }

    /// Lists the served folder (`dir`), with the entries skipped because their names are
    /// not valid for this client: those reach the caller only as
    /// [`ferry_wire::SkippedEntry`], raw octets to show, never as names or paths; the rest of
    /// the listing and the session go on (NAME-14). A malformed line or names out of order
    /// make the listing invalid: [`ClientError::Protocol`], and the session ends (ERR-10).
    pub async fn dir_listing(&mut self) -> Result<Listing, ClientError> {
        self.check_open()?;
        let id = self.session.dir();
        let mut ops: Plain<'_, _> = Ops::new(Quiet);
        match self.run(id, &mut ops).await? {
            Outcome::Listing(l) => Ok(l),
            other => Err(unexpected_outcome(&other)),
        }
    }

    /// Downloads `name` into `w`.
    ///
    /// **`w` receives the octets before they are verified**: only an `Ok` return means they
    /// match the server's digest. After an `Err`, whatever `w` received must be discarded
    /// (use [`Client::get_to_path`] for a file that is never left holding unverified data).
    /// If `w` fails, the rest of the payload is read and dropped so that the session goes on,
    /// and the result is [`ClientError::Local`].
    pub async fn get_to_writer<W>(
        &mut self,
        name: &FileName,
        w: &mut W,
        progress: impl FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        self.check_open()?;
        let id = self.session.get(name.clone(), 0, Hasher::new());
        let mut ops: Ops<'_, W, Empty, _> = Ops::new(progress);
        ops.names.insert(id, name.clone());
        ops.sinks.insert(id, Sink::Writer(w));
        writer_report(name, self.run(id, &mut ops).await?)
    }

    /// Downloads `name` to the file `dest`.
    ///
    /// The octets go to `<dest>.ferry-part` ([`part_path`]), which is renamed onto `dest`
    /// only after the digest has been verified: `dest` never holds unverified data, and a
    /// failed download leaves it untouched. [`GetOptions`] says whether an existing
    /// `.ferry-part` is resumed, whether a resume that fails verification is retried from 0,
    /// and whether a partial file survives a failure. The modification time announced by
    /// the server is applied when [`GetOptions::set_mtime`] is set. Files are not fsynced.
    pub async fn get_to_path(
        &mut self,
        name: &FileName,
        dest: &Path,
        opts: &GetOptions,
        progress: impl FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError> {
        let path = TreePath::from(name.clone());
        self.get_path_to_path(&path, dest, opts, progress).await
    }

    /// [`Client::get_to_path`] of a file named by its path on the server (the `tree`
    /// extension, spec section 17): a one-name path is a ferry/1 get; before the first
    /// longer one the session sends `enable tree` (TREE-1), and a server that does not offer
    /// `tree` gives [`ClientError::NotOffered`].
    pub async fn get_path_to_path(
        &mut self,
        name: &TreePath,
        dest: &Path,
        opts: &GetOptions,
        mut progress: impl FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError> {
        self.check_open()?;
        match self.get_part(name, dest, opts, &mut progress).await {
            Ok(report) => Ok(report),
            Err(GetFail {
                retry_from_zero: true,
                ..
            }) if self.is_open() => {
                let fresh = opts.from_zero();
                self.get_part(name, dest, &fresh, &mut progress)
                    .await
                    .map_err(|f| f.error)
            }
            Err(f) => Err(f.error),
        }
    }

    /// One download to a path: a resume prepares (hashes) its partial file first.
    async fn get_part(
        &mut self,
        name: &TreePath,
        dest: &Path,
        opts: &GetOptions,
        progress: &mut impl FnMut(Progress<'_>),
    ) -> Result<GetReport, GetFail> {
        let job = if opts.resume {
            let (name, dest, o) = (name.clone(), dest.to_path_buf(), *opts);
            let prepared = self
                .conn
                .rt
                .unblock(move || GetJob::prepare_path(&name, dest, &o))
                .await
                .map_err(ClientError::Io)?;
            Some(prepared?)
        } else {
            None
        };
        let mut ops: Plain<'_, _> = Ops::new(progress);
        let id = ops.start_get(&mut self.session, name, dest.to_path_buf(), opts, job);
        drive(
            &mut self.conn,
            &mut self.session,
            &mut ops,
            &mut Feed::Nothing,
        )
        .await;
        ops.take_finished(id)
    }

    /// Uploads `size` octets read from `r` as `name`.
    ///
    /// Exactly `size` octets are sent: if `r` ends early or fails, the upload is ended with
    /// `abort` (430 or 431, PUT-20), the server discards it, and the result is
    /// [`ClientError::Local`]. Files up to the eager limit (see
    /// [`ClientOptions::eager_limit`]) go with flow `now`, larger ones wait for `go`, so a
    /// refusal (512 exists, 513 too-large, 514 read-only, 432 no-space, 510 bad-name) costs
    /// no payload. Success means the server confirmed the size and digest that were sent
    /// (PUT-21).
    pub async fn put_from_reader<T>(
        &mut self,
        name: &FileName,
        size: u64,
        r: &mut T,
        opts: &PutOptions,
        progress: impl FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError>
    where
        T: AsyncRead + Unpin + ?Sized,
    {
        self.check_open()?;
        let id = self.session.put(name.clone(), size, opts, None);
        let mut ops: Ops<'_, NullSink, T, _> = Ops::new(progress);
        ops.names.insert(id, name.clone());
        ops.sources.insert(id, Source::Reader(r));
        self.run(id, &mut ops).await.and_then(put_report)
    }

    /// Uploads the local file at `path`, as `name` or, by default, under its own file name
    /// converted to NFC ([`name_for_local`], NAME-8). If the file changes size or
    /// modification time while it is sent, the upload is aborted (430).
    pub async fn put_from_path(
        &mut self,
        path: &Path,
        name: Option<&FileName>,
        opts: &PutOptions,
        progress: impl FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError> {
        self.check_open()?;
        let name = match name {
            Some(n) => n.clone(),
            None => name_for_local(path)?,
        };
        let target = TreePath::from(name);
        self.put_path_from_path(path, &target, opts, progress).await
    }

    /// Uploads the local file at `path` to `target`, a path on the server (the `tree`
    /// extension, as [`Client::get_path_to_path`] has it); the folder must exist (511).
    pub async fn put_path_from_path(
        &mut self,
        path: &Path,
        target: &TreePath,
        opts: &PutOptions,
        progress: impl FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError> {
        self.check_open()?;
        let owned = path.to_path_buf();
        let preload = self.session.eager_max(opts);
        let (src, size) = self
            .conn
            .rt
            .unblock(move || FileSource::open(&owned, preload))
            .await
            .map_err(ClientError::Io)??;
        let id = self
            .session
            .put_path(target.clone(), size, opts, Some(path.to_path_buf()));
        let mut ops: Plain<'_, _> = Ops::new(progress);
        ops.names.insert(id, target.split_last().1);
        ops.sources.insert(id, Source::File(Box::new(src)));
        self.run(id, &mut ops).await.and_then(put_report)
    }

    /// Ends the session politely: sends `close` and expects `bye` (CLOSE-1, CLOSE-3).
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.check_open()?;
        let id = self.session.close();
        let mut ops: Plain<'_, _> = Ops::new(Quiet);
        match self.run(id, &mut ops).await? {
            Outcome::Bye => {
                self.conn.shutdown().await;
                Ok(())
            }
            other => Err(unexpected_outcome(&other)),
        }
    }

    // ---------------------------------------------------------------- plumbing ---

    /// Drives the session until the operation `id` (started alone) is done.
    async fn run<W, T, P>(
        &mut self,
        id: OpId,
        ops: &mut Ops<'_, W, T, P>,
    ) -> Result<Outcome, ClientError>
    where
        W: AsyncWrite + Unpin + ?Sized,
        T: AsyncRead + Unpin + ?Sized,
        P: Report,
    {
        drive(&mut self.conn, &mut self.session, ops, &mut Feed::Nothing).await;
        ops.take(id)
    }

    fn check_open(&self) -> Result<(), ClientError> {
        match self.session.ended() {
            Some(why) => Err(ClientError::Disconnected(why.to_owned())),
            None => Ok(()),
        }
    }
}
