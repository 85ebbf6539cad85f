//! # The blocking ferry/1 client
//!
//! [`Client`] speaks ferry/1 over one [`TcpStream`]: [`Client::dir`], downloads
//! ([`Client::get_to_path`], [`Client::get_to_writer`]), uploads ([`Client::put_from_path`],
//! [`Client::put_from_reader`]), pipelined batches of both ([`Client::get_many`],
//! [`Client::put_many`]) and [`Client::close`]. Its calls block; underneath, it drives the
//! sans-IO session of [`ferry_client_core::session`] on a non-blocking socket (`drive.rs`),
//! and keeps the local-file policy of downloads and uploads (`local.rs`).
//!
//! ```no_run
//! use std::path::Path;
//! use ferry_sync::client::{Client, GetOptions, PutOptions};
//! use ferry_wire::FileName;
//!
//! # fn main() -> Result<(), ferry_sync::client::ClientError> {
//! let mut client = Client::connect("127.0.0.1:7450")?;
//! for entry in client.dir()? {
//!     println!("{} {} {}", entry.size, entry.mtime, entry.name);
//! }
//! let name = FileName::new("天线15.doc").expect("a valid name");
//! client.get_to_path(&name, Path::new("天线15.doc"), &GetOptions::default(), &mut |_| {})?;
//! client.put_from_path(Path::new("射频仿真.pptx"), None, &PutOptions::default(), &mut |_| {})?;
//! client.close()
//! # }
//! ```
//!
//! ## Guarantees
//!
//! - **Nothing unverified at the destination.** [`Client::get_to_path`] writes into
//!   `<dest>.ferry-part` ([`PART_SUFFIX`]) and renames it onto `dest` only after the whole-file
//!   digest matched (DATA-10); a failed download leaves `dest` untouched.
//! - **Only where asked.** Names received from a server are [`FileName`]s: validated, without
//!   separators, never `.`/`..` or hidden. [`Client::get_many`] joins them onto the folder the
//!   caller chose and nothing else (NAME-9, NAME-10); renaming onto the destination replaces a
//!   symbolic link there rather than writing through it. A listing entry whose name is not
//!   valid is skipped, never turned into a path ([`Client::dir_listing`] reports it, NAME-14).
//! - **No panic on any server bytes**, and memory bounded by what the client decides: a
//!   receive buffer of at most 1 MiB, no allocation sized from announced counts (DIR-8).
//! - **Errors keep their meaning**: [`ClientError`] separates server refusals (with code
//!   and text), connection failures, integrity failures and local failures.
//!
//! ## Sessions
//!
//! A [`Client`] is one session. Errors that end it (connection failures, protocol
//! violations, closing codes 420, 421, 422, 501 and 502, see [`ClientError::ends_session`])
//! make every later call fail fast with [`ClientError::Disconnected`]; other errors (a
//! `511 not-found`, a corrupt download, a local write error) leave it usable. Dropping a
//! client without [`Client::close`] simply closes the connection.

mod batch;
mod drive;
mod transport;
mod tree;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Instant;

use ferry_client_core::session::{ClientSession, OpId, Outcome};
use ferry_wire::{Entry, FileName, Greeting, Hasher, Listing, TreePath};

use drive::{NoFeed, Ops, Sink, Source, drive};
use ferry_client_core::local::{
    GetFail, GetJob, PartState, connect_failed, connected, log_skipped, open_source, put_report,
    resolve, unexpected_outcome, writer_report,
};
use transport::{TlsStream, Transport};

/// The buffer in front of a download's file ([`Client::get_to_path`]).
const FILE_WRITE_BUF: usize = 64 * 1024;

pub use ferry_client_core::{
    AuthError, AuthFailure, ClientError, ClientOptions, DEFAULT_EAGER_LIMIT, DEFAULT_MIN_RATE,
    GetOptions, GetReport, Login, PART_SUFFIX, Progress, PutOptions, PutReport, RateTooLow,
    Violation, ViolationKind, local_path, login, name_for_local, part_path, visible,
    windows_name_problem,
};

/// A ferry/1 session with a server. See the [module documentation](self).
pub struct Client {
    /// The socket, or TLS over it ([`ClientOptions::tls`]).
    transport: Transport,
    /// How long `close` waits for its `close_notify` to leave.
    write_timeout: Option<std::time::Duration>,
    /// Boxed: a `Client` stays small to move around (the session holds its buffers'
    /// bookkeeping, over 900 octets).
    session: Box<ClientSession>,
    greeting: Greeting,
    peer: SocketAddr,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.peer)
            .field("greeting", &self.greeting)
            .field("ended", &self.session.ended())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to a ferry server with [`ClientOptions::default`] and reads its greeting.
    pub fn connect(addr: impl ToSocketAddrs) -> Result<Self, ClientError> {
        Self::connect_with(addr, &ClientOptions::default())
    }

    /// Connects to a ferry server, trying each address `addr` resolves to in turn, and
    /// reads its greeting ([`Client::from_stream`]).
    pub fn connect_with(
        addr: impl ToSocketAddrs,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        let mut last = None;
        for a in resolve(addr)? {
            let attempt = match options.connect_timeout {
                Some(t) => TcpStream::connect_timeout(&a, t),
                None => TcpStream::connect(a),
            };
            match attempt {
                Ok(stream) => return Self::from_stream(stream, options),
                Err(e) => last = Some((a, e)),
            }
        }
        Err(connect_failed(last))
    }

    /// Starts a session on a connected stream: reads the server's first line and checks it.
    /// A refusal (`err 420 busy`) is [`ClientError::Refused`]; a greeting that is malformed,
    /// breaks HELLO-4 or HELLO-8, or does not list version 1 is [`ClientError::Protocol`]. In
    /// both cases the connection is closed without the client having sent anything
    /// (HELLO-9, HELLO-10, HELLO-11). The stream is switched to non-blocking mode: the
    /// session applies the timeouts of `options` itself.
    ///
    /// With [`ClientOptions::tls`], the TLS handshake comes first, bounded by the read
    /// timeout: a server whose identity is refused, or that does not speak ferry/1 over TLS,
    /// is [`ClientError::Tls`] (never a fallback to plain, TLS-14). What the user must be
    /// shown about the server's key (a key remembered on first use) is left in the
    /// [`ferry_tls::ClientTls`] for the caller (`take_notices`).
    pub fn from_stream(stream: TcpStream, options: &ClientOptions) -> Result<Self, ClientError> {
        stream.set_nonblocking(true).map_err(ClientError::Io)?;
        // Every message is written with one call; don't let Nagle hold back request lines.
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().map_err(ClientError::Io)?;
        let mut transport = match &options.tls {
            None => Transport::Plain(stream),
            Some(tls) => Transport::Tls(Box::new(TlsStream::handshake(stream, tls, options)?)),
        };
        let mut session = Box::new(ClientSession::new(options.clone(), Instant::now()));
        if let Transport::Tls(tls) = &transport
            && let Ok(cb) = ferry_tls::channel_binding(&tls.conn)
        {
            session.set_channel_binding(cb);
        }
        let mut quiet = |_: Progress<'_>| {};
        let mut ops = Ops::new(&mut quiet);
        drive(&mut transport, &mut session, &mut ops, &mut NoFeed);
        let greeting = connected(&session, ops.take(OpId(0)))?;
        Ok(Self {
            transport,
            write_timeout: options.write_timeout,
            session,
            greeting,
            peer,
        })
    }

    /// The server's greeting: versions, limits, extensions.
    pub fn greeting(&self) -> &Greeting {
        &self.greeting
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
    pub fn dir(&mut self) -> Result<Vec<Entry>, ClientError> {
        let listing = self.dir_listing()?;
        log_skipped(&listing);
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
    pub fn dir_listing(&mut self) -> Result<Listing, ClientError> {
        self.check_open()?;
        let id = self.session.dir();
        match self.run_one(id, Ops::new(&mut |_| {}))? {
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
    pub fn get_to_writer(
        &mut self,
        name: &FileName,
        w: &mut dyn Write,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError> {
        self.check_open()?;
        let id = self.session.get(name.clone(), 0, Hasher::new());
        let mut ops = Ops::new(progress);
        ops.names.insert(id, name.clone());
        ops.sinks.insert(id, Sink::Writer(w));
        writer_report(name, self.run_one(id, ops)?)
    }

    /// Downloads `name` to the file `dest`.
    ///
    /// The octets go to `<dest>.ferry-part` ([`part_path`]), which is renamed onto `dest`
    /// only after the digest has been verified: `dest` never holds unverified data, and a
    /// failed download leaves it untouched. [`GetOptions`] says whether an existing
    /// `.ferry-part` is resumed, whether a resume that fails verification is retried from 0,
    /// and whether a partial file survives a failure. The modification time announced by
    /// the server is applied when [`GetOptions::set_mtime`] is set. Files are not fsynced.
    pub fn get_to_path(
        &mut self,
        name: &FileName,
        dest: &Path,
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError> {
        self.get_path_to_path(&TreePath::from(name.clone()), dest, opts, progress)
    }

    /// [`Client::get_to_path`] of a file named by its path on the server (the `tree`
    /// extension, spec section 17): a one-name path is a ferry/1 get; before the first
    /// longer one the session sends `enable tree` (TREE-1), and a server that does not offer
    /// `tree` gives [`ClientError::NotOffered`].
    pub fn get_path_to_path(
        &mut self,
        path: &TreePath,
        dest: &Path,
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError> {
        self.check_open()?;
        let job = GetJob::prepare_path(path, dest.to_path_buf(), opts)?;
        match self.get_job(job, opts, progress) {
            Ok(report) => Ok(report),
            Err(GetFail {
                retry_from_zero: true,
                ..
            }) if self.is_open() => {
                let fresh = opts.from_zero();
                let job = GetJob::prepare_path(path, dest.to_path_buf(), &fresh)?;
                self.get_job(job, &fresh, progress).map_err(|f| f.error)
            }
            Err(f) => Err(f.error),
        }
    }

    /// Runs one prepared download to a path.
    fn get_job(
        &mut self,
        job: GetJob,
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<GetReport, GetFail> {
        let id = self
            .session
            .get_path(job.path.clone(), job.offset, job.prefix.clone());
        let mut ops = Ops::new(progress);
        ops.names.insert(id, job.name.clone());
        ops.sinks.insert(
            id,
            Sink::Part {
                job,
                state: PartState::Unopened,
                opts: *opts,
            },
        );
        drive(
            &mut self.transport,
            &mut self.session,
            &mut ops,
            &mut NoFeed,
        );
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
    pub fn put_from_reader(
        &mut self,
        name: &FileName,
        size: u64,
        r: &mut dyn Read,
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError> {
        let source = Source {
            reader: Box::new(r),
            unchanged: Box::new(|| Ok(true)),
        };
        self.put_source(
            &TreePath::from(name.clone()),
            size,
            source,
            None,
            opts,
            progress,
        )
    }

    /// Uploads the local file at `path`, as `name` or, by default, under its own file name
    /// converted to NFC ([`name_for_local`], NAME-8). If the file changes size or
    /// modification time while it is sent, the upload is aborted (430).
    pub fn put_from_path(
        &mut self,
        path: &Path,
        name: Option<&FileName>,
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError> {
        self.check_open()?;
        let name = match name {
            Some(n) => n.clone(),
            None => name_for_local(path)?,
        };
        let (file, size, unchanged) = open_source(path)?;
        let source = Source {
            reader: Box::new(file),
            unchanged,
        };
        self.put_source(
            &TreePath::from(name),
            size,
            source,
            Some(path),
            opts,
            progress,
        )
    }

    /// Uploads the local file at `path` to `target`, a path on the server (the `tree`
    /// extension, as [`Client::get_path_to_path`] has it); the folder must exist (511).
    pub fn put_path_from_path(
        &mut self,
        path: &Path,
        target: &TreePath,
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError> {
        self.check_open()?;
        let (file, size, unchanged) = open_source(path)?;
        let source = Source {
            reader: Box::new(file),
            unchanged,
        };
        self.put_source(target, size, source, Some(path), opts, progress)
    }

    fn put_source(
        &mut self,
        name: &TreePath,
        size: u64,
        source: Source<'_>,
        path: Option<&Path>,
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError> {
        self.check_open()?;
        let id = self
            .session
            .put_path(name.clone(), size, opts, path.map(Path::to_path_buf));
        let mut ops = Ops::new(progress);
        ops.names.insert(id, name.split_last().1);
        ops.sources.insert(id, source);
        self.run_one(id, ops).and_then(put_report)
    }

    /// Ends the session politely: sends `close` and expects `bye` (CLOSE-1, CLOSE-3); under
    /// TLS then `close_notify` (TLS-6).
    pub fn close(mut self) -> Result<(), ClientError> {
        self.check_open()?;
        let id = self.session.close();
        match self.run_one(id, Ops::new(&mut |_| {}))? {
            Outcome::Bye => {
                // Under TLS, close_notify first (TLS-6).
                self.transport.close(self.write_timeout);
                Ok(())
            }
            other => Err(unexpected_outcome(&other)),
        }
    }

    // ---------------------------------------------------------------- plumbing ---

    /// Drives the session until the operation `id` (started alone) is done.
    fn run_one(&mut self, id: OpId, mut ops: Ops<'_, '_>) -> Result<Outcome, ClientError> {
        drive(
            &mut self.transport,
            &mut self.session,
            &mut ops,
            &mut NoFeed,
        );
        ops.take(id)
    }

    fn check_open(&self) -> Result<(), ClientError> {
        match self.session.ended() {
            Some(why) => Err(ClientError::Disconnected(why.to_owned())),
            None => Ok(()),
        }
    }
}
