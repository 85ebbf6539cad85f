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

mod conn;
mod local;
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
use local::{FileWriter, Sink, Source};
use send::{Sent, send_payload};

use ferry_client_core::check_greeting;
pub use ferry_client_core::{
    ClientError, ClientOptions, DEFAULT_EAGER_LIMIT, GetOptions, GetReport, PART_SUFFIX, Progress,
    PutOptions, PutReport, local_path, name_for_local, part_path, visible, windows_name_problem,
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

/// What [`Replies::recv_payload`] made of a payload whose framing completed.
enum Received {
    Verified(Digest),
    /// The sink failed; the rest of the payload was read and dropped.
    SinkFailed(io::Error),
}

/// A failed get, and whether it is worth trying once more from offset 0.
struct GetFail {
    error: ClientError,
    retry_from_zero: bool,
}

impl From<ClientError> for GetFail {
    fn from(error: ClientError) -> Self {
        Self {
            error,
            retry_from_zero: false,
        }
    }
}

/// A download to a path, prepared (on the blocking pool) before its request is sent.
struct GetJob {
    name: FileName,
    dest: PathBuf,
    part: PathBuf,
    offset: u64,
    prefix: Hasher,
    /// Modification time of the partial file when it was hashed (resume only).
    part_mtime: Option<SystemTime>,
}

impl GetJob {
    /// Finds the partial file (hashing its content, for `resume`) or removes a stale one.
    /// Blocking: runs on the blocking pool, before the request goes out.
    fn prepare(name: FileName, dest: PathBuf, opts: GetOptions) -> Result<Self, ClientError> {
        let part = part_path(&dest)?;
        let mut job = Self {
            name,
            dest,
            part,
            offset: 0,
            prefix: Hasher::new(),
            part_mtime: None,
        };
        if opts.resume {
            if let Some(mut file) = open_partial(&job.part)? {
                let mut buf = vec![0; RECV_BUF];
                loop {
                    match file.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            job.prefix.update(&buf[..n]);
                            job.offset += n as u64;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(ClientError::local(&job.part, e)),
                    }
                }
                job.part_mtime = file.metadata().and_then(|m| m.modified()).ok();
            }
        } else {
            remove_if_exists(&job.part)?;
        }
        Ok(job)
    }

    fn request(&self) -> Request {
        Request::Get {
            offset: self.offset,
            name: self.name.clone(),
        }
    }

    /// The file to write the payload to: the partial file, at its end, or a new one.
    fn open_sink(part: &Path, offset: u64, part_mtime: Option<SystemTime>) -> io::Result<File> {
        if offset == 0 {
            return OpenOptions::new().write(true).create_new(true).open(part);
        }
        let mut file = open_partial(part)
            .map_err(|e| io::Error::other(e.to_string()))?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the partial file vanished"))?;
        let meta = file.metadata()?;
        if meta.len() != offset || meta.modified().ok() != part_mtime {
            return Err(io::Error::other(
                "the partial file changed during the download",
            ));
        }
        file.seek(io::SeekFrom::End(0))?;
        Ok(file)
    }

    /// After a failure: removes the partial file unless it may hold good octets to resume
    /// from.
    fn discard(part: &Path, keep: bool) {
        let empty = fs::symlink_metadata(part)
            .map(|m| m.len() == 0)
            .unwrap_or(true);
        if !keep || empty {
            let _ = fs::remove_file(part);
        }
    }
}

/// Opens an existing partial file for reading and writing, refusing anything that is not a
/// regular file (a symbolic link planted at the `.ferry-part` name is never followed).
fn open_partial(part: &Path) -> Result<Option<File>, ClientError> {
    let meta = match fs::symlink_metadata(part) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ClientError::local(part, e)),
    };
    if !meta.is_file() {
        let e = io::Error::other("exists and is not a regular file; remove it to download");
        return Err(ClientError::local(part, e));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(part)
        .map_err(|e| ClientError::local(part, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let opened = file.metadata().map_err(|e| ClientError::local(part, e))?;
        if (opened.dev(), opened.ino()) != (meta.dev(), meta.ino()) {
            let e = io::Error::other("was replaced while it was being opened");
            return Err(ClientError::local(part, e));
        }
    }
    Ok(Some(file))
}

fn remove_if_exists(path: &Path) -> Result<(), ClientError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ClientError::local(path, e)),
    }
}

/// A local file to upload: the open file, its size and modification time.
type Opened = (File, u64, Option<SystemTime>);

/// Opens a local file for an upload (blocking).
fn open_source(path: &Path) -> Result<Opened, ClientError> {
    let file = File::open(path).map_err(|e| ClientError::local(path, e))?;
    let meta = file.metadata().map_err(|e| ClientError::local(path, e))?;
    if !meta.is_file() {
        return Err(ClientError::local(
            path,
            io::Error::other("not a regular file"),
        ));
    }
    Ok((file, meta.len(), meta.modified().ok()))
}

/// Runs `reader` while also polling `writer` (in the same task), until `reader` is done; a
/// writer that has not finished by then is dropped (the session has ended, or there was
/// nothing left for it to do). This is how a batch sends while it reads (PIPE-3) without a
/// second task.
async fn alongside<T>(writer: impl Future<Output = ()>, reader: impl Future<Output = T>) -> T {
    let mut writer = pin!(writer);
    let mut reader = pin!(reader);
    let mut writer_done = false;
    poll_fn(|cx| {
        if !writer_done && writer.as_mut().poll(cx).is_ready() {
            writer_done = true;
        }
        match reader.as_mut().poll(cx) {
            Poll::Ready(v) => Poll::Ready(v),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
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
                return Err(ClientError::Protocol(format!(
                    "bad greeting \"{line}\": {error}"
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
        mut progress: impl FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let result = self.get_to_writer_inner(name, w, &mut progress).await;
        self.settle(result)
    }

    async fn get_to_writer_inner<W>(
        &mut self,
        name: &FileName,
        w: &mut W,
        progress: &mut impl FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        self.rx.check_open()?;
        self.send(
            &Request::Get {
                offset: 0,
                name: name.clone(),
            }
            .to_bytes(),
        )
        .await?;
        let (size, mtime) = self.rx.recv_get_head(0).await?;
        let mut sink = Sink::<R, W>::Writer(w);
        match self
            .rx
            .recv_payload(name, 0, size, Hasher::new(), &mut sink, progress)
            .await?
        {
            Received::Verified(digest) => Ok(GetReport {
                name: name.clone(),
                path: None,
                size,
                mtime,
                digest,
                resumed_from: 0,
            }),
            Received::SinkFailed(source) => Err(ClientError::Local { path: None, source }),
        }
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
        mut progress: impl FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError> {
        let result = self
            .get_to_path_inner(name, dest, opts, &mut progress)
            .await;
        self.settle(result)
    }

    async fn get_to_path_inner(
        &mut self,
        name: &FileName,
        dest: &Path,
        opts: &GetOptions,
        progress: &mut impl FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError> {
        self.rx.check_open()?;
        let job = self.rx.prepare(name, dest, *opts).await?;
        self.send(&job.request().to_bytes()).await?;
        match self.rx.finish_get(job, opts, progress).await {
            Ok(report) => Ok(report),
            Err(GetFail {
                retry_from_zero: true,
                ..
            }) if self.is_open() => {
                let fresh = GetOptions {
                    resume: false,
                    ..*opts
                };
                let job = self.rx.prepare(name, dest, fresh).await?;
                self.send(&job.request().to_bytes()).await?;
                self.rx
                    .finish_get(job, &fresh, progress)
                    .await
                    .map_err(|f| f.error)
            }
            Err(f) => Err(f.error),
        }
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
        mut progress: impl FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError>
    where
        T: AsyncRead + Unpin + ?Sized,
    {
        let mut src = Source::<R, T>::Reader(r);
        let result = self
            .put_source(name, size, &mut src, None, opts, &mut progress)
            .await;
        self.settle(result)
    }

    /// Uploads the local file at `path`, as `name` or, by default, under its own file name
    /// converted to NFC ([`name_for_local`], NAME-8). If the file changes size or
    /// modification time while it is sent, the upload is aborted (430).
    pub async fn put_from_path(
        &mut self,
        path: &Path,
        name: Option<&FileName>,
        opts: &PutOptions,
        mut progress: impl FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError> {
        let result = self
            .put_from_path_inner(path, name, opts, &mut progress)
            .await;
        self.settle(result)
    }

    async fn put_from_path_inner(
        &mut self,
        path: &Path,
        name: Option<&FileName>,
        opts: &PutOptions,
        progress: &mut impl FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError> {
        self.rx.check_open()?;
        let name = match name {
            Some(n) => n.clone(),
            None => name_for_local(path)?,
        };
        let (file, size, mtime) = self.rx.open_source(path).await?;
        let mut src: Source<'_, R, futures_lite::io::Empty> = Source::File {
            rt: self.rx.rt.clone(),
            file: Arc::new(file),
            size,
            mtime,
        };
        self.put_source(&name, size, &mut src, Some(path), opts, progress)
            .await
    }

    async fn put_source<T: AsyncRead + Unpin + ?Sized>(
        &mut self,
        name: &FileName,
        size: u64,
        src: &mut Source<'_, R, T>,
        path: Option<&Path>,
        opts: &PutOptions,
        progress: &mut impl FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError> {
        self.rx.check_open()?;
        let eager = self.rx.eager_max(opts).is_some_and(|max| size <= max);
        let flow = if eager { PutFlow::Now } else { PutFlow::Wait };
        let line = Request::Put {
            size,
            mode: opts.mode,
            flow,
            name: name.clone(),
        }
        .to_bytes();
        let lead: &[u8] = match flow {
            PutFlow::Wait => {
                self.send(&line).await?;
                match self.rx.read_reply().await? {
                    Reply::Go => {}
                    Reply::Err(e) => return Err(ClientError::Refused(e)),
                    other => return Err(self.rx.unexpected(&other, "put")),
                }
                &[]
            }
            PutFlow::Now => &line,
        };
        let mut on_sent = |done| {
            progress(Progress {
                name,
                done,
                total: size,
            })
        };
        let sent = send_payload(
            &mut self.tx,
            &mut self.chunk_buf,
            lead,
            size,
            src,
            &mut on_sent,
        )
        .await;
        match sent {
            Ok(sent) => self.rx.put_outcome(name, size, flow, sent, path).await,
            Err(e) => Err(self.write_failed(e).await),
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

    /// Downloads every name into `dest_dir` (each as `dest_dir/NAME`, with the guarantees of
    /// [`Client::get_to_path`]), pipelining the requests on this one connection: the request
    /// lines go out while the replies are read, in the same task.
    ///
    /// Returns one result per name, in order. Downloads that fail their check after a
    /// resume are retried from 0 (one by one) after the batch, per
    /// [`GetOptions::retry_from_zero`]. If the session ends in the middle, the remaining
    /// names fail with [`ClientError::Disconnected`].
    pub async fn get_many(
        &mut self,
        names: &[FileName],
        dest_dir: &Path,
        opts: &GetOptions,
        mut progress: impl FnMut(Progress<'_>),
    ) -> Vec<Result<GetReport, ClientError>> {
        let mut results: Vec<Option<Result<GetReport, ClientError>>> =
            names.iter().map(|_| None).collect();
        let mut jobs = Vec::new();
        let mut wire = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if let Err(e) = self.rx.check_open() {
                results[i] = Some(Err(e));
                continue;
            }
            let prepared = match local_path(dest_dir, name) {
                Ok(dest) => self.rx.prepare(name, &dest, *opts).await,
                Err(e) => Err(e),
            };
            match prepared {
                Ok(job) => {
                    job.request().encode(&mut wire);
                    jobs.push((i, job));
                }
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let mut retry = Vec::new();
        if !jobs.is_empty() {
            let Client { rx, tx, .. } = self;
            // A failed write surfaces on the reading side (EOF or a closing error).
            let writer = async {
                let _ = tx.write_all(&wire).await;
            };
            let reader = async {
                for (i, job) in jobs {
                    if let Err(e) = rx.check_open() {
                        results[i] = Some(Err(e));
                        continue;
                    }
                    results[i] = Some(match rx.finish_get(job, opts, &mut progress).await {
                        Ok(report) => Ok(report),
                        Err(GetFail {
                            error,
                            retry_from_zero,
                        }) => {
                            if retry_from_zero {
                                retry.push(i);
                            }
                            Err(error)
                        }
                    });
                }
            };
            alongside(writer, reader).await;
            self.settle(());
        }
        for i in retry {
            if !self.is_open() {
                break;
            }
            let fresh = GetOptions {
                resume: false,
                ..*opts
            };
            results[i] = Some(match local_path(dest_dir, &names[i]) {
                Ok(dest) => {
                    self.get_to_path(&names[i], &dest, &fresh, &mut progress)
                        .await
                }
                Err(e) => Err(e),
            });
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ClientError::Disconnected("not attempted".into()))))
            .collect()
    }

    /// Uploads every `(local path, name)` pair, pipelined on this one connection.
    ///
    /// Runs of consecutive files small enough for flow `now` are streamed while the replies
    /// are read, in the same task; a larger file is sent on its own with flow `wait` (nothing
    /// may follow a waiting put before its `go`, PUT-5). Returns one result per file, in
    /// order. `progress` is called as each eager file is confirmed and as each large file is
    /// sent. If the session ends in the middle, the remaining files fail with
    /// [`ClientError::Disconnected`].
    pub async fn put_many(
        &mut self,
        files: &[(PathBuf, FileName)],
        opts: &PutOptions,
        mut progress: impl FnMut(Progress<'_>),
    ) -> Vec<Result<PutReport, ClientError>> {
        let mut results: Vec<Option<Result<PutReport, ClientError>>> =
            files.iter().map(|_| None).collect();
        // Which files fit flow `now`, looked up once on the blocking pool.
        let eager: Vec<bool> = match self.rx.eager_max(opts) {
            None => vec![false; files.len()],
            Some(max) => {
                let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
                let sizes = self.rx.rt.unblock(move || {
                    paths
                        .iter()
                        .map(|p| {
                            fs::metadata(p)
                                .ok()
                                .filter(|m| m.is_file())
                                .map(|m| m.len())
                        })
                        .collect::<Vec<_>>()
                });
                match sizes.await {
                    Ok(sizes) => sizes.iter().map(|s| s.is_some_and(|s| s <= max)).collect(),
                    Err(_) => vec![false; files.len()],
                }
            }
        };
        let mut i = 0;
        while i < files.len() {
            if let Err(e) = self.rx.check_open() {
                results[i] = Some(Err(e));
                i += 1;
                continue;
            }
            if !eager[i] {
                let (path, name) = &files[i];
                results[i] = Some(
                    self.put_from_path(path, Some(name), opts, &mut progress)
                        .await,
                );
                i += 1;
                continue;
            }
            let mut end = i + 1;
            while end < files.len() && eager[end] {
                end += 1;
            }
            self.put_batch(
                &files[i..end],
                &mut results[i..end],
                opts.mode,
                &mut progress,
            )
            .await;
            self.settle(());
            i = end;
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ClientError::Disconnected("not attempted".into()))))
            .collect()
    }

    /// Streams a run of eager puts and reads their replies.
    async fn put_batch(
        &mut self,
        batch: &[(PathBuf, FileName)],
        results: &mut [Option<Result<PutReport, ClientError>>],
        mode: PutMode,
        progress: &mut impl FnMut(Progress<'_>),
    ) {
        let Some(max) = self.rx.eager_max(&PutOptions { mode, eager: true }) else {
            return;
        };
        let (posted_tx, posted_rx) = async_channel::unbounded::<Posted>();
        let Client { rx, tx, chunk_buf } = self;
        let rt = rx.rt.clone();
        let writer = async {
            for (path, name) in batch {
                let opened = {
                    let path = path.clone();
                    rt.unblock(move || open_source(&path)).await
                };
                let (file, size, mtime) = match opened {
                    Ok(Ok(src)) => src,
                    Ok(Err(e)) => {
                        let _ = posted_tx.send(Posted::Skipped(e)).await;
                        continue;
                    }
                    Err(e) => {
                        let _ = posted_tx
                            .send(Posted::Skipped(ClientError::local(path, e)))
                            .await;
                        continue;
                    }
                };
                if size > max {
                    let e =
                        io::Error::other("the file grew beyond the eager limit before it was sent");
                    let _ = posted_tx
                        .send(Posted::Skipped(ClientError::local(path, e)))
                        .await;
                    continue;
                }
                let line = Request::Put {
                    size,
                    mode,
                    flow: PutFlow::Now,
                    name: name.clone(),
                }
                .to_bytes();
                let mut src: Source<'_, R, futures_lite::io::Empty> = Source::File {
                    rt: rt.clone(),
                    file: Arc::new(file),
                    size,
                    mtime,
                };
                match send_payload(tx, chunk_buf, &line, size, &mut src, &mut |_| {}).await {
                    Ok(sent) => {
                        if posted_tx.send(Posted::Sent { size, sent }).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = posted_tx.send(Posted::WriteFailed(e)).await;
                        return;
                    }
                }
            }
        };
        let reader = async {
            for ((path, name), slot) in batch.iter().zip(results.iter_mut()) {
                if let Err(e) = rx.check_open() {
                    *slot = Some(Err(e));
                    continue;
                }
                let outcome = match posted_rx.recv().await {
                    Ok(Posted::Skipped(e)) => Err(e),
                    Ok(Posted::Sent { size, sent }) => {
                        let r = rx
                            .put_outcome(name, size, PutFlow::Now, sent, Some(path))
                            .await;
                        if r.is_ok() {
                            progress(Progress {
                                name,
                                done: size,
                                total: size,
                            });
                        }
                        r
                    }
                    Ok(Posted::WriteFailed(e)) => Err(rx.write_failed(e).await),
                    Err(_) => Err(rx.fail(ClientError::Io(io::Error::other(
                        "the sending side stopped unexpectedly",
                    )))),
                };
                *slot = Some(outcome);
            }
        };
        alongside(writer, reader).await;
    }

    // -------------------------------------------------------------- plumbing ---

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

/// What the sending side of an eager batch did with one file, in batch order.
enum Posted {
    /// The file could not be opened or no longer fits the eager limit: nothing was sent.
    Skipped(ClientError),
    /// The put line and payload (complete or aborted) went out.
    Sent { size: u64, sent: Sent },
    /// Writing to the connection failed; the sending side stopped.
    WriteFailed(io::Error),
}

impl<R: Runtime> Replies<R> {
    fn check_open(&self) -> Result<(), ClientError> {
        match &self.ended {
            Some(why) => Err(ClientError::Disconnected(why.clone())),
            None => Ok(()),
        }
    }

    /// The largest size sent with flow `now`: the smaller of the server's `max-eager` and
    /// [`ClientOptions::eager_limit`]; `None` when eager puts are off (PUT-7).
    fn eager_max(&self, opts: &PutOptions) -> Option<u64> {
        let server = self.greeting.limits().max_eager;
        if !opts.eager || server == 0 {
            return None;
        }
        Some(server.min(self.options.eager_limit))
    }

    /// Marks the session ended and stops reading (the owner drops the sending half).
    fn end(&mut self, why: String) {
        if self.ended.is_none() {
            tracing::debug!(peer = %self.peer, "session ended: {why}");
            self.ended = Some(why);
            self.inbound.close();
        }
    }

    /// Ends the session if `e` ends it; returns `e`.
    fn fail(&mut self, e: ClientError) -> ClientError {
        if e.ends_session() {
            self.end(e.to_string());
        }
        e
    }

    /// A protocol violation by the server: the connection is closed (ERR-10).
    fn violation(&mut self, what: String) -> ClientError {
        self.fail(ClientError::Protocol(what))
    }

    fn unexpected(&mut self, reply: &Reply, request: &str) -> ClientError {
        let line = snippet(&reply.to_bytes(), None);
        self.violation(format!("unexpected reply to {request}: \"{line}\""))
    }

    fn read_failed(&mut self, f: ReadFail, what: &str) -> ClientError {
        let e = match f {
            ReadFail::Eof => ClientError::Closed {
                outcome_unknown: false,
            },
            ReadFail::Io(e) => ClientError::Io(e),
            ReadFail::Invalid { error, line } => {
                ClientError::Protocol(format!("malformed {what} \"{line}\": {error}"))
            }
        };
        self.fail(e)
    }

    /// A write failed. If the server closed the connection with an error it had sent first
    /// (502, 421, 422), report that error rather than the broken pipe. Ends the session.
    async fn write_failed(&mut self, e: io::Error) -> ClientError {
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
    async fn read_reply(&mut self) -> Result<Reply, ClientError> {
        match self.inbound.next(decode_reply).await {
            Ok(Reply::Err(e)) if e.code.closes_connection() => {
                self.end(ClientError::Refused(e.clone()).to_string());
                Ok(Reply::Err(e))
            }
            Ok(r) => Ok(r),
            Err(f) => Err(self.read_failed(f, "reply")),
        }
    }

    async fn read_entries(&mut self, count: u64) -> Result<Listing, ClientError> {
        if count > self.options.max_listing {
            return Err(self.violation(format!(
                "the listing announces {count} entries, more than the {} this client accepts",
                self.options.max_listing
            )));
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
                return Err(self.violation(format!(
                    "{e}: \"{}\" after \"{}\"",
                    visible(&String::from_utf8_lossy(&e.next)),
                    visible(&String::from_utf8_lossy(&e.previous))
                )));
            }
        }
        Ok(listing)
    }

    /// Prepares a download to `dest` on the blocking pool.
    async fn prepare(
        &mut self,
        name: &FileName,
        dest: &Path,
        opts: GetOptions,
    ) -> Result<GetJob, ClientError> {
        let (name, dest) = (name.clone(), dest.to_path_buf());
        let path = dest.clone();
        match self
            .rt
            .unblock(move || GetJob::prepare(name, dest, opts))
            .await
        {
            Ok(r) => r,
            Err(e) => Err(ClientError::local(path, e)),
        }
    }

    async fn open_source(&mut self, path: &Path) -> Result<Opened, ClientError> {
        let owned = path.to_path_buf();
        match self.rt.unblock(move || open_source(&owned)).await {
            Ok(r) => r,
            Err(e) => Err(ClientError::local(path, e)),
        }
    }

    /// Reads the reply to a get whose request was sent, and its payload into the job's
    /// partial file; renames it onto the destination once verified.
    async fn finish_get(
        &mut self,
        job: GetJob,
        opts: &GetOptions,
        progress: &mut impl FnMut(Progress<'_>),
    ) -> Result<GetReport, GetFail> {
        let (size, mtime) = match self.recv_get_head(job.offset).await {
            Ok(head) => head,
            Err(ClientError::Refused(e)) if e.code == Code::BAD_OFFSET && job.offset > 0 => {
                // GET-8: the file is now shorter than the partial download.
                let part = job.part.clone();
                let _ = self.rt.unblock(move || fs::remove_file(part)).await;
                return Err(GetFail {
                    error: ClientError::Refused(e),
                    retry_from_zero: opts.retry_from_zero,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let opened = {
            let (part, offset, part_mtime) = (job.part.clone(), job.offset, job.part_mtime);
            self.rt
                .unblock(move || GetJob::open_sink(&part, offset, part_mtime))
                .await
        };
        let file = match opened.and_then(|r| r) {
            Ok(f) => f,
            Err(e) => {
                // Read and drop the payload so that the session can go on.
                let mut sink = Sink::<R, futures_lite::io::Sink>::Drop;
                let drained = self
                    .recv_payload(
                        &job.name,
                        job.offset,
                        size,
                        Hasher::new(),
                        &mut sink,
                        progress,
                    )
                    .await;
                return Err(match drained {
                    Err(session) if session.ends_session() => session.into(),
                    _ => ClientError::local(&job.part, e).into(),
                });
            }
        };
        let mut sink =
            Sink::<R, futures_lite::io::Sink>::File(FileWriter::new(self.rt.clone(), file));
        let received = self
            .recv_payload(
                &job.name,
                job.offset,
                size,
                job.prefix.clone(),
                &mut sink,
                progress,
            )
            .await;
        let flushed = match sink {
            Sink::File(w) => w.finish().await,
            _ => Err(io::Error::other("the download's file is gone")),
        };
        match (received, flushed) {
            (Ok(Received::Verified(digest)), Ok(file)) => {
                // The verified .ferry-part stays if the rename fails: a resume then costs
                // only the digest check.
                let (part, dest) = (job.part.clone(), job.dest.clone());
                let set_mtime = opts.set_mtime.then(|| mtime.to_system_time()).flatten();
                let renamed = self
                    .rt
                    .unblock(move || {
                        if let Some(t) = set_mtime {
                            // Cosmetic: a file system that cannot store it keeps the download.
                            let _ = file.set_modified(t);
                        }
                        drop(file);
                        fs::rename(&part, &dest)
                    })
                    .await
                    .and_then(|r| r);
                renamed.map_err(|e| ClientError::local(&job.dest, e))?;
                Ok(GetReport {
                    name: job.name,
                    path: Some(job.dest),
                    size,
                    mtime,
                    digest,
                    resumed_from: job.offset,
                })
            }
            (Ok(Received::SinkFailed(e)), _) | (Ok(Received::Verified(_)), Err(e)) => {
                self.discard_part(&job.part, false).await;
                Err(ClientError::local(&job.part, e).into())
            }
            (Err(error @ ClientError::Corrupt { .. }), _) => {
                self.discard_part(&job.part, false).await;
                let retry_from_zero = job.offset > 0 && opts.retry_from_zero;
                Err(GetFail {
                    error,
                    retry_from_zero,
                })
            }
            (Err(error), _) => {
                // GET-13: after `abort 430` the file changed while it was read; its octets
                // are never kept for a resume. Other failures may keep them (GET-12).
                let changed = matches!(&error, ClientError::Refused(e) if e.code == Code::CHANGED);
                self.discard_part(&job.part, opts.keep_partial && !changed)
                    .await;
                Err(error.into())
            }
        }
    }

    async fn discard_part(&mut self, part: &Path, keep: bool) {
        let part = part.to_path_buf();
        let _ = self.rt.unblock(move || GetJob::discard(&part, keep)).await;
    }

    /// Reads the reply line of a get: `ok get SIZE MTIME` (with SIZE ≥ OFFSET, GET-4) or
    /// `err`.
    async fn recv_get_head(&mut self, offset: u64) -> Result<(u64, Timestamp), ClientError> {
        match self.read_reply().await? {
            Reply::GetOk { size, mtime } if size >= offset => Ok((size, mtime)),
            Reply::GetOk { size, .. } => Err(self.violation(format!(
                "ok get {size} for offset {offset}: the server must answer 515 (GET-4)"
            ))),
            Reply::Err(e) => Err(ClientError::Refused(e)),
            other => Err(self.unexpected(&other, "get")),
        }
    }

    /// Receives the payload of a get whose reply announced `size`, from `offset`, into
    /// `sink`. `prefix` has hashed the local octets before `offset`.
    async fn recv_payload<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        name: &FileName,
        offset: u64,
        size: u64,
        prefix: Hasher,
        sink: &mut Sink<'_, R, W>,
        progress: &mut impl FnMut(Progress<'_>),
    ) -> Result<Received, ClientError> {
        let mut rx = PayloadReceiver::resuming(size - offset, prefix);
        let mut sink_error: Option<io::Error> = None;
        loop {
            let (step, used) = match rx.feed(self.inbound.data()) {
                Ok(x) => x,
                Err(e) => {
                    return Err(self.violation(format!(
                        "bad payload for \"{}\": {e}",
                        visible(name.as_str())
                    )));
                }
            };
            match step {
                Step::Data(d) => {
                    if sink_error.is_none()
                        && let Err(e) = sink.write(d).await
                    {
                        sink_error = Some(e);
                    }
                    self.inbound.consume(used);
                    progress(Progress {
                        name,
                        done: offset + rx.received(),
                        total: size,
                    });
                }
                Step::NeedMore => {
                    self.inbound.consume(used);
                    match self.inbound.fill().await {
                        Ok(0) => {
                            let e = ClientError::Truncated {
                                received: offset + rx.received(),
                                expected: size,
                            };
                            return Err(self.fail(e));
                        }
                        Ok(_) => {}
                        Err(e) => return Err(self.fail(ClientError::Io(e))),
                    }
                }
                Step::Complete(digest) => {
                    self.inbound.consume(used);
                    return Ok(match sink_error {
                        Some(e) => Received::SinkFailed(e),
                        None => Received::Verified(digest),
                    });
                }
                Step::Corrupt {
                    announced,
                    computed,
                } => {
                    self.inbound.consume(used);
                    return match sink_error {
                        Some(e) => Ok(Received::SinkFailed(e)),
                        None => Err(ClientError::Corrupt {
                            announced,
                            computed,
                        }),
                    };
                }
                Step::Aborted(e) => {
                    self.inbound.consume(used);
                    if let Some(local) = sink_error {
                        return Ok(Received::SinkFailed(local));
                    }
                    return Err(self.fail(ClientError::Refused(e)));
                }
            }
        }
    }

    /// Reads the final reply of a put whose payload was sent (or aborted).
    async fn put_outcome(
        &mut self,
        name: &FileName,
        size: u64,
        flow: PutFlow,
        sent: Sent,
        path: Option<&Path>,
    ) -> Result<PutReport, ClientError> {
        let reply = match self.read_reply().await {
            Ok(r) => r,
            Err(ClientError::Closed { .. }) if matches!(sent, Sent::Complete(_)) => {
                return Err(ClientError::Closed {
                    outcome_unknown: true,
                });
            }
            Err(e) => return Err(e),
        };
        match (reply, sent) {
            (Reply::PutOk { size: s, digest: d }, Sent::Complete(ours)) => {
                if s == size && d == ours {
                    Ok(PutReport {
                        name: name.clone(),
                        size,
                        digest: ours,
                        flow,
                    })
                } else {
                    Err(self.violation(format!(
                        "the server confirmed {s} octets with {d}, but {size} octets with {ours} \
                         were sent"
                    )))
                }
            }
            (Reply::Err(e), Sent::Aborted(source)) if e.code == Code::ABORTED => {
                Err(ClientError::Local {
                    path: path.map(Path::to_path_buf),
                    source,
                })
            }
            (Reply::Err(e), _) => Err(ClientError::Refused(e)),
            (Reply::PutOk { .. }, Sent::Aborted(_)) => {
                Err(self.violation("the server confirmed an upload that was aborted".to_owned()))
            }
            (other, _) => Err(self.unexpected(&other, "put")),
        }
    }
}
