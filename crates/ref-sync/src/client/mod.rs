//! # The blocking ferry/1 client
//!
//! [`Client`] speaks ferry/1 over one [`TcpStream`]: [`Client::dir`], downloads
//! ([`Client::get_to_path`], [`Client::get_to_writer`]), uploads ([`Client::put_from_path`],
//! [`Client::put_from_reader`]), pipelined batches of both ([`Client::get_many`],
//! [`Client::put_many`]) and [`Client::close`].
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
//!   1 MiB receive buffer, no allocation sized from announced counts (DIR-8).
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
mod conn;
mod send;

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ferry_wire::{
    Code, Digest, Entry, FileName, Greeting, Hasher, Hello, Listing, PayloadReceiver, PutFlow,
    Reply, Request, Step, Timestamp, decode_hello, decode_listed, decode_reply,
};

use conn::{Inbound, RECV_BUF, ReadFail, snippet};

/// The buffer in front of a download's file ([`Client::get_to_path`]).
const FILE_WRITE_BUF: usize = 64 * 1024;
use send::{ChunkBuf, Sent, send_payload};

use ferry_client_core::check_greeting;
pub use ferry_client_core::{
    ClientError, ClientOptions, DEFAULT_EAGER_LIMIT, GetOptions, GetReport, PART_SUFFIX, Progress,
    PutOptions, PutReport, Violation, ViolationKind, local_path, name_for_local, part_path,
    visible, windows_name_problem,
};

/// A ferry/1 session with a server. See the [module documentation](self).
pub struct Client {
    stream: TcpStream,
    inbound: Inbound,
    greeting: Greeting,
    peer: SocketAddr,
    options: ClientOptions,
    /// Why the session ended, once it has.
    ended: Option<String>,
    chunk_buf: ChunkBuf,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.peer)
            .field("greeting", &self.greeting)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// What [`Client::recv_payload`] made of a payload whose framing completed.
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

/// A download to a path, prepared before its request is sent.
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
    /// Hashing happens before the request goes out, so the server never waits for it.
    fn prepare(name: &FileName, dest: PathBuf, opts: &GetOptions) -> Result<Self, ClientError> {
        let part = part_path(&dest)?;
        let mut job = Self {
            name: name.clone(),
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
    fn open_sink(&self) -> io::Result<File> {
        if self.offset == 0 {
            return OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&self.part);
        }
        let mut file = open_partial(&self.part)
            .map_err(|e| io::Error::other(e.to_string()))?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the partial file vanished"))?;
        let meta = file.metadata()?;
        if meta.len() != self.offset || meta.modified().ok() != self.part_mtime {
            return Err(io::Error::other(
                "the partial file changed during the download",
            ));
        }
        file.seek(io::SeekFrom::End(0))?;
        Ok(file)
    }

    /// After a failure: removes the partial file unless it may hold good octets to resume
    /// from.
    fn discard(&self, keep: bool) {
        let empty = fs::symlink_metadata(&self.part)
            .map(|m| m.len() == 0)
            .unwrap_or(true);
        if !keep || empty {
            let _ = fs::remove_file(&self.part);
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

/// A local file to upload, its size, and a check that it still has that size and
/// modification time (run before the `end` trailer, PUT-20).
type Source = (File, u64, Box<dyn FnMut() -> io::Result<bool> + Send>);

fn open_source(path: &Path) -> Result<Source, ClientError> {
    let file = File::open(path).map_err(|e| ClientError::local(path, e))?;
    let meta = file.metadata().map_err(|e| ClientError::local(path, e))?;
    if !meta.is_file() {
        return Err(ClientError::local(
            path,
            io::Error::other("not a regular file"),
        ));
    }
    let size = meta.len();
    let mtime = meta.modified().ok();
    let probe = file.try_clone().map_err(|e| ClientError::local(path, e))?;
    let unchanged = move || -> io::Result<bool> {
        let m = probe.metadata()?;
        Ok(m.len() == size && m.modified().ok() == mtime)
    };
    Ok((file, size, Box::new(unchanged)))
}

/// `t` as a [`SystemTime`], if the platform can represent it (years 0000 to 9999 do not all
/// fit everywhere; `Timestamp::to_system_time` would panic on those that do not).
fn system_time(t: Timestamp) -> Option<SystemTime> {
    let secs = Duration::from_secs(t.unix().unsigned_abs());
    if t.unix() >= 0 {
        std::time::UNIX_EPOCH.checked_add(secs)
    } else {
        std::time::UNIX_EPOCH.checked_sub(secs)
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
        let addrs = addr
            .to_socket_addrs()
            .map_err(|source| ClientError::Connect { addr: None, source })?;
        let mut last = None;
        for a in addrs {
            let attempt = match options.connect_timeout {
                Some(t) => TcpStream::connect_timeout(&a, t),
                None => TcpStream::connect(a),
            };
            match attempt {
                Ok(stream) => return Self::from_stream(stream, options),
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

    /// Starts a session on a connected stream: applies the timeouts, reads the server's
    /// first line and checks it. A refusal (`err 420 busy`) is [`ClientError::Refused`]; a
    /// greeting that is malformed, breaks HELLO-4 or HELLO-8, or does not list version 1 is
    /// [`ClientError::Protocol`]. In both cases the connection is closed without the client
    /// having sent anything (HELLO-9, HELLO-10, HELLO-11).
    pub fn from_stream(stream: TcpStream, options: &ClientOptions) -> Result<Self, ClientError> {
        stream
            .set_read_timeout(options.read_timeout)
            .map_err(ClientError::Io)?;
        stream
            .set_write_timeout(options.write_timeout)
            .map_err(ClientError::Io)?;
        // Every message is written with one call; don't let Nagle hold back request lines.
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().map_err(ClientError::Io)?;
        let mut inbound = Inbound::new(stream.try_clone().map_err(ClientError::Io)?);
        let hello = match inbound.next(decode_hello) {
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
        Ok(Self {
            stream,
            inbound,
            greeting,
            peer,
            options: options.clone(),
            ended: None,
            chunk_buf: ChunkBuf::default(),
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
        self.ended.is_none()
    }

    /// Lists the served folder (`dir`): regular files with size and modification time, in
    /// bytewise order of their names. Entries whose names this client cannot accept are left
    /// out (NAME-14); [`Client::dir_listing`] returns them too, to show the user.
    pub fn dir(&mut self) -> Result<Vec<Entry>, ClientError> {
        let listing = self.dir_listing()?;
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
    pub fn dir_listing(&mut self) -> Result<Listing, ClientError> {
        self.check_open()?;
        self.send(&Request::Dir.to_bytes())?;
        match self.read_reply()? {
            Reply::DirOk { count } => self.read_entries(count),
            Reply::Err(e) => Err(ClientError::Refused(e)),
            other => Err(self.unexpected(&other, "dir")),
        }
    }

    fn read_entries(&mut self, count: u64) -> Result<Listing, ClientError> {
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
            let line = match self.inbound.next(decode_listed) {
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
        self.send(
            &Request::Get {
                offset: 0,
                name: name.clone(),
            }
            .to_bytes(),
        )?;
        let (size, mtime) = self.recv_get_head(0)?;
        match self.recv_payload(name, 0, size, Hasher::new(), w, progress)? {
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
    pub fn get_to_path(
        &mut self,
        name: &FileName,
        dest: &Path,
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError> {
        self.check_open()?;
        let job = GetJob::prepare(name, dest.to_path_buf(), opts)?;
        self.send(&job.request().to_bytes())?;
        match self.finish_get(job, opts, progress) {
            Ok(report) => Ok(report),
            Err(GetFail {
                retry_from_zero: true,
                ..
            }) if self.is_open() => {
                let fresh = GetOptions {
                    resume: false,
                    ..*opts
                };
                let job = GetJob::prepare(name, dest.to_path_buf(), &fresh)?;
                self.send(&job.request().to_bytes())?;
                self.finish_get(job, &fresh, progress).map_err(|f| f.error)
            }
            Err(f) => Err(f.error),
        }
    }

    /// Reads the reply to a get whose request was sent, and its payload into the job's
    /// partial file; renames it onto the destination once verified.
    fn finish_get(
        &mut self,
        job: GetJob,
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<GetReport, GetFail> {
        let (size, mtime) = match self.recv_get_head(job.offset) {
            Ok(head) => head,
            Err(ClientError::Refused(e)) if e.code == Code::BAD_OFFSET && job.offset > 0 => {
                // GET-8: the file is now shorter than the partial download.
                let _ = fs::remove_file(&job.part);
                return Err(GetFail {
                    error: ClientError::Refused(e),
                    retry_from_zero: opts.retry_from_zero,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let file = match job.open_sink() {
            Ok(f) => f,
            Err(e) => {
                // Read and drop the payload so that the session can go on.
                let drained = self.recv_payload(
                    &job.name,
                    job.offset,
                    size,
                    Hasher::new(),
                    &mut io::sink(),
                    progress,
                );
                return Err(match drained {
                    Err(session) if session.ends_session() => session.into(),
                    _ => ClientError::local(&job.part, e).into(),
                });
            }
        };
        // Pieces of at least FILE_WRITE_BUF octets (what a socket read usually brings during
        // a large download) go straight to the file; smaller ones are gathered first. A
        // buffer as large as the receive buffer would copy every octet once more.
        let mut w = BufWriter::with_capacity(FILE_WRITE_BUF, file);
        let received = self.recv_payload(
            &job.name,
            job.offset,
            size,
            job.prefix.clone(),
            &mut w,
            progress,
        );
        let flushed = w.into_inner().map_err(io::IntoInnerError::into_error);
        match (received, flushed) {
            (Ok(Received::Verified(digest)), Ok(file)) => {
                if opts.set_mtime {
                    // Cosmetic: a time the platform or file system cannot store is skipped.
                    if let Some(t) = system_time(mtime) {
                        let _ = file.set_modified(t);
                    }
                }
                drop(file);
                // The verified .ferry-part stays if the rename fails: a resume then costs
                // only the digest check.
                fs::rename(&job.part, &job.dest).map_err(|e| ClientError::local(&job.dest, e))?;
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
                job.discard(false);
                Err(ClientError::local(&job.part, e).into())
            }
            (Err(error @ ClientError::Corrupt { .. }), _) => {
                job.discard(false);
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
                job.discard(opts.keep_partial && !changed);
                Err(error.into())
            }
        }
    }

    /// Reads the reply line of a get: `ok get SIZE MTIME` (with SIZE ≥ OFFSET, GET-4) or
    /// `err`.
    fn recv_get_head(&mut self, offset: u64) -> Result<(u64, Timestamp), ClientError> {
        match self.read_reply()? {
            Reply::GetOk { size, mtime } if size >= offset => Ok((size, mtime)),
            Reply::GetOk { size, .. } => Err(self.violation(
                ViolationKind::Contradiction,
                format!("ok get {size} for offset {offset}: the server must answer 515 (GET-4)"),
            )),
            Reply::Err(e) => Err(ClientError::Refused(e)),
            other => Err(self.unexpected(&other, "get")),
        }
    }

    /// Receives the payload of a get whose reply announced `size`, from `offset`, into
    /// `sink`. `prefix` has hashed the local octets before `offset`.
    fn recv_payload(
        &mut self,
        name: &FileName,
        offset: u64,
        size: u64,
        prefix: Hasher,
        sink: &mut dyn Write,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Received, ClientError> {
        let mut rx = PayloadReceiver::resuming(size - offset, prefix);
        let mut sink_error: Option<io::Error> = None;
        loop {
            let (step, used) = match rx.feed(self.inbound.data()) {
                Ok(x) => x,
                Err(e) => {
                    return Err(self.violation(
                        ViolationKind::Payload,
                        format!("bad payload for \"{}\": {e}", visible(name.as_str())),
                    ));
                }
            };
            match step {
                Step::Data(d) => {
                    if sink_error.is_none()
                        && let Err(e) = sink.write_all(d)
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
                    match self.inbound.fill() {
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
        self.put_source(name, size, r, None, &mut || Ok(true), opts, progress)
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
        let (mut file, size, mut unchanged) = open_source(path)?;
        self.put_source(
            &name,
            size,
            &mut file,
            Some(path),
            &mut unchanged,
            opts,
            progress,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn put_source(
        &mut self,
        name: &FileName,
        size: u64,
        src: &mut dyn Read,
        path: Option<&Path>,
        unchanged: &mut dyn FnMut() -> io::Result<bool>,
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError> {
        self.check_open()?;
        let eager = self.eager_max(opts).is_some_and(|max| size <= max);
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
                self.send(&line)?;
                match self.read_reply()? {
                    Reply::Go => {}
                    Reply::Err(e) => return Err(ClientError::Refused(e)),
                    other => return Err(self.unexpected(&other, "put")),
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
        let stream = &self.stream;
        let sent = send_payload(
            &mut &*stream,
            &mut self.chunk_buf,
            lead,
            size,
            src,
            unchanged,
            &mut on_sent,
        );
        match sent {
            Ok(sent) => self.put_outcome(name, size, flow, sent, path),
            Err(e) => Err(self.write_failed(e)),
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

    /// Reads the final reply of a put whose payload was sent (or aborted).
    fn put_outcome(
        &mut self,
        name: &FileName,
        size: u64,
        flow: PutFlow,
        sent: Sent,
        path: Option<&Path>,
    ) -> Result<PutReport, ClientError> {
        let reply = match self.read_reply() {
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
                    Err(self.violation(ViolationKind::Contradiction, format!(
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
            (Reply::PutOk { .. }, Sent::Aborted(_)) => Err(self.violation(
                ViolationKind::Contradiction,
                "the server confirmed an upload that was aborted".to_owned(),
            )),
            (other, _) => Err(self.unexpected(&other, "put")),
        }
    }

    /// Ends the session politely: sends `close` and expects `bye` (CLOSE-1, CLOSE-3).
    pub fn close(mut self) -> Result<(), ClientError> {
        self.check_open()?;
        self.send(&Request::Close.to_bytes())?;
        match self.read_reply()? {
            Reply::Bye => {
                let _ = self.stream.shutdown(Shutdown::Write);
                Ok(())
            }
            Reply::Err(e) => Err(ClientError::Refused(e)),
            other => Err(self.unexpected(&other, "close")),
        }
    }

    // ---------------------------------------------------------------- plumbing ---

    fn check_open(&self) -> Result<(), ClientError> {
        match &self.ended {
            Some(why) => Err(ClientError::Disconnected(why.clone())),
            None => Ok(()),
        }
    }

    /// Marks the session ended and closes the connection.
    fn end(&mut self, why: String) {
        if self.ended.is_none() {
            tracing::debug!(peer = %self.peer, "session ended: {why}");
            self.ended = Some(why);
            let _ = self.stream.shutdown(Shutdown::Both);
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
    fn violation(&mut self, kind: ViolationKind, what: String) -> ClientError {
        self.fail(ClientError::Protocol(Violation::new(kind, what)))
    }

    fn unexpected(&mut self, reply: &Reply, request: &str) -> ClientError {
        let line = snippet(&reply.to_bytes(), None);
        self.violation(
            ViolationKind::Unexpected,
            format!("unexpected reply to {request}: \"{line}\""),
        )
    }

    fn read_failed(&mut self, f: ReadFail, what: &str) -> ClientError {
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

    /// Reads one reply line. An `err` with a closing code (420, 421, 422, 501, 502) ends the
    /// session (ERR-9).
    fn read_reply(&mut self) -> Result<Reply, ClientError> {
        match self.inbound.next(decode_reply) {
            Ok(Reply::Err(e)) if e.code.closes_connection() => {
                self.end(ClientError::Refused(e.clone()).to_string());
                Ok(Reply::Err(e))
            }
            Ok(r) => Ok(r),
            Err(f) => Err(self.read_failed(f, "reply")),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let mut stream = &self.stream;
        match stream.write_all(bytes).and_then(|()| stream.flush()) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.write_failed(e)),
        }
    }

    /// A write failed. If the server closed the connection with an error it had sent first
    /// (502, 421, 422), report that error rather than the broken pipe.
    fn write_failed(&mut self, e: io::Error) -> ClientError {
        use io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
        let mut err = ClientError::Io(e);
        if let ClientError::Io(e) = &err
            && matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted)
            && self.ended.is_none()
            && let Ok(Reply::Err(r)) = self.inbound.next(decode_reply)
            && r.code.closes_connection()
        {
            err = ClientError::Refused(r);
        }
        self.end(err.to_string());
        err
    }
}
