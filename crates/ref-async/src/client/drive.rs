//! The I/O loop of the async client: performs what the client session
//! (`ferry_client_core::session`) asks, over the two halves of a `futures-io` stream, with
//! local files on the runtime's blocking pool.
//!
//! When the session both sends and receives (a pipelined batch), the write of its output
//! races a read into a small buffer of the driver's, so neither side blocks the other
//! (PIPE-3); a read alone goes straight into the session's input buffer.
//!
//! Local files cost few trips to the blocking pool: a download to a path is kept in memory
//! up to [`PIECE`] and written — partial file created, data written, renamed once verified —
//! in one trip when it is done, and the downloads of a batch that finish together share that
//! trip; an upload from a path is opened, read (up to [`PIECE`]) and re-checked in one trip,
//! and the small files of an eager batch share theirs.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use ferry_client_core::local::{GetFail, GetJob, PartState, finish_get, open_source, read_full};
use ferry_client_core::session::{Action, ClientSession, OpId, Outcome};
use ferry_client_core::{ClientError, GetOptions, GetReport, Progress, PutOptions};
use ferry_wire::{FileName, TreePath};
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::io::{ReadHalf, WriteHalf};
use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _, FutureExt as _};

use crate::runtime::{BoxFuture, Runtime};
use crate::tls::MaybeTls;

/// The largest piece of a local file read or written in one trip to the blocking pool (and
/// the most a download to a path keeps in memory before it writes).
pub(super) const PIECE: usize = 1 << 20;

/// The read that races a write when the session does both (replies, mostly).
const SCRATCH: usize = 64 * 1024;

/// Finished downloads whose files are written together, at most this many …
const FINISH_BATCH: usize = 64;

/// … or this many octets.
const FINISH_BYTES: usize = PIECE;

/// The connection: the two halves of the stream, plain or TLS (`crate::tls`).
pub(super) struct Conn<R: Runtime> {
    pub(super) rt: R,
    reader: ReadHalf<MaybeTls<R::TcpStream>>,
    writer: WriteHalf<MaybeTls<R::TcpStream>>,
    scratch: Vec<u8>,
}

impl<R: Runtime> Conn<R> {
    pub(super) fn new(rt: R, stream: MaybeTls<R::TcpStream>) -> Self {
        let (reader, writer) = futures_lite::io::split(stream);
        Self {
            rt,
            reader,
            writer,
            scratch: Vec::new(),
        }
    }

    /// Shuts down the sending direction (with TLS, after `close_notify`, TLS-6), waiting at
    /// most a second.
    pub(super) async fn shutdown(&mut self) {
        let close = self.writer.close();
        let _ =
            crate::runtime::timeout(&self.rt, Some(std::time::Duration::from_secs(1)), close).await;
    }

    /// [`Action::Io`]: moves octets in whichever direction the session wants and the
    /// connection allows first, or reports the deadline.
    async fn io(
        &mut self,
        session: &mut ClientSession,
        send: bool,
        receive: bool,
        deadline: Option<Instant>,
    ) {
        enum Moved {
            Wrote(io::Result<usize>),
            Read(io::Result<usize>),
            Deadline,
        }
        let rt = self.rt.clone();
        let timer = async move {
            match deadline {
                Some(d) => rt.sleep_until(d).await,
                None => std::future::pending().await,
            }
            Moved::Deadline
        };
        let moved = if send && receive {
            let cap = session.input_space().len().min(SCRATCH);
            if cap == 0 {
                // (A read into no space would look like EOF.)
                return session.recv_failed(io::Error::other("receive buffer full"));
            }
            if self.scratch.len() < cap {
                self.scratch.resize(cap, 0);
            }
            let Self {
                reader,
                writer,
                scratch,
                ..
            } = self;
            let write = async { Moved::Wrote(writer.write(session.output()).await) };
            let read = async { Moved::Read(reader.read(&mut scratch[..cap]).await) };
            let moved = before_deadline(write.or(read), timer).await;
            if let Moved::Read(Ok(n)) = &moved {
                session.input_space()[..*n].copy_from_slice(&self.scratch[..*n]);
            }
            moved
        } else if send {
            let write = async { Moved::Wrote(self.writer.write(session.output()).await) };
            before_deadline(write, timer).await
        } else if receive {
            let space = session.input_space();
            if space.is_empty() {
                return session.recv_failed(io::Error::other("receive buffer full"));
            }
            let read = async { Moved::Read(self.reader.read(space).await) };
            before_deadline(read, timer).await
        } else {
            timer.await
        };
        match moved {
            Moved::Wrote(Ok(0)) => session.send_failed(io::ErrorKind::WriteZero.into()),
            Moved::Wrote(Ok(n)) => session.sent(n),
            Moved::Wrote(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Moved::Wrote(Err(e)) => session.send_failed(e),
            Moved::Read(Ok(0)) => session.eof(),
            Moved::Read(Ok(n)) => session.received(n),
            Moved::Read(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Moved::Read(Err(e)) => session.recv_failed(e),
            Moved::Deadline => session.timed_out(Instant::now()),
        }
    }
}

/// Runs `op` unless `timer` is ready first. `op` is polled once first, so an operation that
/// can complete at once needs no timer; after that the deadline wins when both are ready, so
/// that an operation that becomes possible only at the deadline does not restart the clock
/// (smol's and async-std's sockets retry the system call when polled, #14).
async fn before_deadline<T>(op: impl Future<Output = T>, timer: impl Future<Output = T>) -> T {
    let mut op = std::pin::pin!(op);
    if let Some(done) = futures_lite::future::poll_once(op.as_mut()).await {
        return done;
    }
    timer.or(op).await
}

// ------------------------------------------------------------------ sinks ---

/// The disk side of a download to a path: everything a blocking call needs, moved into
/// it and back.
struct Disk {
    path: TreePath,
    dest: PathBuf,
    opts: GetOptions,
    /// Prepared before the request (a resume hashes its partial file first), or at the
    /// first write.
    job: Option<GetJob>,
    state: PartState,
    /// The file's size, as `ok get` announced it (the partial file is created only if the
    /// rest fits, GET-14).
    size: u64,
}

impl Disk {
    /// Prepares the job if needed, creates (or opens) the partial file if needed, writes
    /// `data`: a blocking call.
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.job.is_none() {
            let job = GetJob::prepare_path(&self.path, self.dest.clone(), &self.opts)
                .map_err(|e| io::Error::other(e.to_string()))?;
            self.job = Some(job);
        }
        if matches!(self.state, PartState::Unopened) {
            let Some(job) = &self.job else {
                return Err(io::Error::other("no download job"));
            };
            match job.open_sink(self.size) {
                Ok(file) => self.state = PartState::Open(BufWriter::with_capacity(0, file)),
                Err(e) => {
                    self.state = PartState::OpenFailed;
                    return Err(e);
                }
            }
        }
        match &mut self.state {
            PartState::Open(w) => w.write_all(data),
            _ => Err(io::Error::other("the partial file is not open")),
        }
    }
}

/// What a background write hands back.
type Written = (Box<Disk>, Vec<u8>, io::Result<()>);

/// A download to a path: octets collect in memory; a full piece ([`PIECE`]) is written on
/// the blocking pool while the next one is received, and the rest with the finish (so a
/// small file is written, created and renamed in one trip).
pub(super) struct Part {
    /// `None` while a write is in flight.
    disk: Option<Box<Disk>>,
    /// `ok get` came: the partial file is due, even for an empty file.
    opened: bool,
    buf: Vec<u8>,
    spare: Vec<u8>,
    pending: Option<BoxFuture<io::Result<Written>>>,
    /// A write behind failed: nothing more is written, and the download cannot succeed.
    failed: Option<io::Error>,
}

impl Part {
    /// A download of `name` to `dest`; `job` when it was prepared already (a resume).
    pub(super) fn new(
        path: TreePath,
        dest: PathBuf,
        opts: GetOptions,
        job: Option<GetJob>,
    ) -> Self {
        Self {
            disk: Some(Box::new(Disk {
                path,
                dest,
                opts,
                job,
                state: PartState::Unopened,
                size: 0,
            })),
            opened: false,
            buf: Vec::new(),
            spare: Vec::new(),
            pending: None,
            failed: None,
        }
    }

    /// Waits for the write in flight, if any.
    async fn settle(&mut self) -> io::Result<()> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        let (disk, spare, written) = pending.await?;
        self.disk = Some(disk);
        self.spare = spare;
        if let Err(e) = &written {
            self.failed = Some(io::Error::new(e.kind(), e.to_string()));
        }
        written
    }

    /// Takes octets of the payload; writes a full piece behind.
    async fn write<R: Runtime>(&mut self, rt: &R, data: &[u8]) -> io::Result<()> {
        self.opened = true;
        if let Some(e) = &self.failed {
            return Err(io::Error::new(e.kind(), e.to_string()));
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() < PIECE {
            return Ok(());
        }
        self.settle().await?;
        let Some(mut disk) = self.disk.take() else {
            return Err(io::Error::other("no partial file"));
        };
        let next = std::mem::take(&mut self.spare);
        let mut data = std::mem::replace(&mut self.buf, next);
        let write = rt.unblock(move || {
            let written = disk.write(&data);
            data.clear();
            (disk, data, written)
        });
        self.pending = Some(Box::pin(write));
        Ok(())
    }

    /// Applies the outcome to the partial file (blocking): writes what is left (creating the
    /// file if due), then [`finish_get`]. A partial file that could not be created or
    /// written makes a verified download a local error.
    fn finish(self, result: Result<Outcome, ClientError>) -> Result<GetReport, GetFail> {
        let Some(mut disk) = self.disk else {
            return Err(ClientError::Io(io::Error::other("the download's write was lost")).into());
        };
        let written = match self.failed {
            Some(e) => Err(e),
            None if self.opened => disk.write(&self.buf),
            None => Ok(()),
        };
        let result = match (written, result) {
            (Err(e), Ok(Outcome::Got { .. })) => Ok(Outcome::Discarded(e)),
            (_, r) => r,
        };
        let job = match disk.job.take() {
            Some(job) => job,
            None => GetJob::prepare_path(&disk.path, disk.dest.clone(), &disk.opts)?,
        };
        finish_get(job, disk.state, result, &disk.opts)
    }
}

/// Where a get's octets go.
pub(super) enum Sink<'a, W: ?Sized> {
    /// The caller's writer (octets before verification).
    Writer(&'a mut W),
    /// A file.
    Part(Box<Part>),
}

// ---------------------------------------------------------------- sources ---

/// The file side of an upload: moved into a blocking call and back.
struct Reading {
    file: File,
    size: u64,
    read: u64,
    unchanged: Box<dyn FnMut() -> io::Result<bool> + Send>,
    /// The re-check done right after the last octet was read, in the same call.
    checked: Option<io::Result<bool>>,
}

impl Reading {
    /// Reads up to `len` more octets into `buf` (replacing its content): a blocking call.
    /// At the end of the file (as announced, or earlier), re-checks it.
    fn fill(&mut self, buf: &mut Vec<u8>, len: usize) -> io::Result<()> {
        let want = (self.size - self.read).min(len as u64) as usize;
        buf.resize(want, 0);
        let got = read_full(&mut self.file, buf)?;
        buf.truncate(got);
        self.read += got as u64;
        if got < want || self.read == self.size {
            self.checked = Some((self.unchanged)());
        }
        Ok(())
    }

    fn more(&self) -> bool {
        self.read < self.size && self.checked.is_none()
    }
}

/// What a background read hands back.
type ReadBack = (Box<Reading>, Vec<u8>, io::Result<()>);

/// A local file to upload: read on the blocking pool one piece ([`PIECE`]) ahead of the
/// session.
pub(super) struct FileSource {
    /// `None` while a read is in flight.
    reading: Option<Box<Reading>>,
    buf: Vec<u8>,
    at: usize,
    spare: Vec<u8>,
    pending: Option<BoxFuture<io::Result<ReadBack>>>,
}

impl FileSource {
    /// Opens `path` (a blocking call) and returns the source and the size. A file of at most
    /// `preload` octets (an eager put, sent at once) is read and re-checked in the same call;
    /// a larger one is read as the session asks, after its `go` (a file that changes before
    /// then is caught, PUT-20).
    pub(super) fn open(path: &Path, preload: Option<u64>) -> Result<(Self, u64), ClientError> {
        let (file, size, unchanged) = open_source(path)?;
        let mut reading = Box::new(Reading {
            file,
            size,
            read: 0,
            unchanged,
            checked: None,
        });
        let mut buf = Vec::new();
        if preload.is_some_and(|max| size <= max) {
            reading
                .fill(&mut buf, PIECE)
                .map_err(|e| ClientError::local(path, e))?;
        }
        let src = Self {
            reading: Some(reading),
            buf,
            at: 0,
            spare: Vec::new(),
            pending: None,
        };
        Ok((src, size))
    }

    /// Starts reading the next piece, if there is one and no read is in flight.
    fn read_ahead<R: Runtime>(&mut self, rt: &R) {
        if self.pending.is_some() || !self.reading.as_ref().is_some_and(|r| r.more()) {
            return;
        }
        let Some(mut reading) = self.reading.take() else {
            return;
        };
        let mut buf = std::mem::take(&mut self.spare);
        let read = rt.unblock(move || {
            let filled = reading.fill(&mut buf, PIECE);
            (reading, buf, filled)
        });
        self.pending = Some(Box::pin(read));
    }

    /// Fills `space` as far as the file goes.
    async fn read<R: Runtime>(&mut self, rt: &R, space: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < space.len() {
            if self.at < self.buf.len() {
                let k = (space.len() - n).min(self.buf.len() - self.at);
                space[n..n + k].copy_from_slice(&self.buf[self.at..self.at + k]);
                n += k;
                self.at += k;
                continue;
            }
            self.read_ahead(rt);
            let Some(pending) = self.pending.take() else {
                break;
            };
            let (reading, buf, filled) = pending.await?;
            self.reading = Some(reading);
            self.spare = std::mem::replace(&mut self.buf, buf);
            self.at = 0;
            filled?;
            if self.buf.is_empty() {
                break;
            }
        }
        self.read_ahead(rt);
        Ok(n)
    }

    /// Whether the file is unchanged: the re-check done with the last read, or one now.
    async fn check<R: Runtime>(&mut self, rt: &R) -> io::Result<bool> {
        if let Some(pending) = self.pending.take() {
            let (reading, buf, _) = pending.await?;
            self.reading = Some(reading);
            self.spare = buf;
        }
        let Some(mut reading) = self.reading.take() else {
            return Ok(true);
        };
        if let Some(checked) = reading.checked.take() {
            self.reading = Some(reading);
            return checked;
        }
        let (reading, checked) = rt
            .unblock(move || {
                let checked = (reading.unchanged)();
                (reading, checked)
            })
            .await?;
        self.reading = Some(reading);
        checked
    }
}

/// What a put reads.
pub(super) enum Source<'a, T: ?Sized> {
    /// The caller's reader (no unchanged check).
    Reader(&'a mut T),
    /// A local file.
    File(Box<FileSource>),
    /// A local file after its last use (the check before the trailer), closed.
    Closed,
}

// -------------------------------------------------------------------- ops ---

/// Where progress goes: the caller's callback. (A trait of its own rather than a
/// `FnMut(Progress<'_>)` bound on the driver: a higher-ranked bound there keeps the
/// compiler from seeing that the client's futures are `Send`.)
pub(super) trait Report {
    /// Octets of `name` moved.
    fn report(&mut self, name: &FileName, done: u64, total: u64);
}

impl<F: FnMut(Progress<'_>)> Report for F {
    fn report(&mut self, name: &FileName, done: u64, total: u64) {
        self(Progress { name, done, total });
    }
}

/// No progress to report.
pub(super) struct Quiet;

impl Report for Quiet {
    fn report(&mut self, _: &FileName, _: u64, _: u64) {}
}

/// The local side of the operations in flight: their sinks, sources, names (for progress)
/// and, once done, their results.
pub(super) struct Ops<'a, W: ?Sized, T: ?Sized, P> {
    pub(super) names: HashMap<OpId, FileName>,
    pub(super) sinks: HashMap<OpId, Sink<'a, W>>,
    pub(super) sources: HashMap<OpId, Source<'a, T>>,
    pub(super) results: HashMap<OpId, Result<Outcome, ClientError>>,
    /// Downloads to paths whose finish is done: their reports.
    pub(super) finished: HashMap<OpId, Result<GetReport, GetFail>>,
    /// Downloads to paths that are done, waiting to be written together.
    finishing: Vec<(OpId, Box<Part>, Result<Outcome, ClientError>)>,
    finishing_bytes: usize,
    /// Puts whose progress is reported on confirmation, not per chunk (eager batches).
    pub(super) confirm_only: bool,
    progress: P,
}

impl<'a, W, T, P> Ops<'a, W, T, P>
where
    W: AsyncWrite + Unpin + ?Sized,
    T: AsyncRead + Unpin + ?Sized,
    P: Report,
{
    pub(super) fn new(progress: P) -> Self {
        Self {
            names: HashMap::new(),
            sinks: HashMap::new(),
            sources: HashMap::new(),
            results: HashMap::new(),
            finished: HashMap::new(),
            finishing: Vec::new(),
            finishing_bytes: 0,
            confirm_only: false,
            progress,
        }
    }

    /// Starts a download of `name` to `dest` (`job`: prepared already, for a resume).
    pub(super) fn start_get(
        &mut self,
        session: &mut ClientSession,
        path: &TreePath,
        dest: PathBuf,
        opts: &GetOptions,
        job: Option<GetJob>,
    ) -> OpId {
        let (offset, prefix) = job.as_ref().map_or((0, ferry_wire::Hasher::new()), |j| {
            (j.offset, j.prefix.clone())
        });
        let id = session.get_path(path.clone(), offset, prefix);
        self.names.insert(id, path.split_last().1);
        let part = Part::new(path.clone(), dest, *opts, job);
        self.sinks.insert(id, Sink::Part(Box::new(part)));
        id
    }

    /// The result of `id` (an operation never driven to its end is reported as such).
    pub(super) fn take(&mut self, id: OpId) -> Result<Outcome, ClientError> {
        self.results.remove(&id).unwrap_or_else(|| {
            Err(ClientError::Disconnected(
                "the operation did not finish".into(),
            ))
        })
    }

    /// The report of the download to a path `id`.
    pub(super) fn take_finished(&mut self, id: OpId) -> Result<GetReport, GetFail> {
        self.finished.remove(&id).unwrap_or_else(|| {
            Err(ClientError::Disconnected("the download did not finish".into()).into())
        })
    }

    fn progress(&mut self, id: OpId, done: u64, total: u64) {
        if let Some(name) = self.names.get(&id) {
            self.progress.report(name, done, total);
        }
    }

    fn is_put(&self, id: OpId) -> bool {
        self.sources.contains_key(&id)
    }

    async fn write_sink<R: Runtime>(&mut self, rt: &R, id: OpId, data: &[u8]) -> io::Result<()> {
        match self.sinks.get_mut(&id) {
            Some(Sink::Writer(w)) => w.write_all(data).await,
            Some(Sink::Part(part)) => part.write(rt, data).await,
            None => Err(io::Error::other("no sink for this download")),
        }
    }

    async fn read_source<R: Runtime>(
        &mut self,
        rt: &R,
        id: OpId,
        space: &mut [u8],
    ) -> io::Result<usize> {
        match self.sources.get_mut(&id) {
            Some(Source::Reader(r)) => {
                let mut n = 0;
                while n < space.len() {
                    match r.read(&mut space[n..]).await {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(n)
            }
            Some(Source::File(src)) => src.read(rt, space).await,
            Some(Source::Closed) => Err(io::Error::other("the upload's file is closed")),
            None => Err(io::Error::other("no source for this upload")),
        }
    }

    async fn check_source<R: Runtime>(&mut self, rt: &R, id: OpId) -> io::Result<bool> {
        let Some(source) = self.sources.get_mut(&id) else {
            return Err(io::Error::other("no source for this upload"));
        };
        match source {
            Source::Reader(_) => Ok(true),
            Source::File(src) => {
                let unchanged = src.check(rt).await;
                // The check before the trailer is the last use of a file: it is closed now,
                // not when the reply comes, so that pipelined uploads waiting for many
                // replies do not hold a file open each (10,000 files would exhaust a usual
                // limit of 1,024 descriptors).
                *source = Source::Closed;
                unchanged
            }
            Source::Closed => Err(io::Error::other("the upload's file is closed")),
        }
    }

    /// An operation is done: a download to a path joins the finishes written together.
    async fn done<R: Runtime>(&mut self, rt: &R, id: OpId, result: Result<Outcome, ClientError>) {
        // A source is closed as soon as its upload is done.
        self.sources.remove(&id);
        if self.confirm_only
            && let Ok(Outcome::Put(report)) = &result
        {
            self.progress(id, report.size, report.size);
        }
        match self.sinks.remove(&id) {
            Some(Sink::Part(mut part)) => {
                // Its last piece written behind comes back first.
                let _ = part.settle().await;
                self.finishing_bytes += part.buf.len();
                self.finishing.push((id, part, result));
                if self.finishing.len() >= FINISH_BATCH || self.finishing_bytes >= FINISH_BYTES {
                    self.flush_finishes(rt).await;
                }
            }
            Some(sink) => {
                self.sinks.insert(id, sink);
                self.results.insert(id, result);
            }
            None => {
                self.results.insert(id, result);
            }
        }
    }

    /// Writes the finished downloads' files, in one trip.
    pub(super) async fn flush_finishes<R: Runtime>(&mut self, rt: &R) {
        if self.finishing.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.finishing);
        self.finishing_bytes = 0;
        let ids: Vec<OpId> = batch.iter().map(|(id, ..)| *id).collect();
        let trip = rt.unblock(move || {
            batch
                .into_iter()
                .map(|(id, part, result)| (id, part.finish(result)))
                .collect::<Vec<_>>()
        });
        match trip.await {
            Ok(done) => self.finished.extend(done),
            Err(e) => {
                for id in ids {
                    let error = ClientError::Io(io::Error::new(e.kind(), e.to_string()));
                    self.finished.insert(id, Err(error.into()));
                }
            }
        }
    }
}

// ------------------------------------------------------------------- feed ---

/// Starts the next operations of a batch when the session is ready for them.
pub(super) enum Feed<'f> {
    /// No further operations.
    Nothing,
    /// The files of an eager batch, opened (and read) in groups on the blocking pool and
    /// queued one at a time as the session is ready for the next.
    Eager(Box<EagerFeed<'f>>),
}

/// A file of an eager batch, opened and read (with its size), or why not.
type Opened = Result<(FileSource, u64), ClientError>;

/// A group of files being opened on the blocking pool: their batch indices, and the trip.
type Opening = (Vec<usize>, BoxFuture<io::Result<Vec<(usize, Opened)>>>);

/// See [`Feed::Eager`].
pub(super) struct EagerFeed<'f> {
    /// The batch.
    all: &'f [(PathBuf, TreePath)],
    /// Indices of the files not yet opened.
    next: VecDeque<usize>,
    /// Their sizes when the batch was formed (to group the files read in one trip).
    sizes: Vec<u64>,
    opts: PutOptions,
    max: u64,
    /// Opened files, in order: their batch index and the source (or why it failed).
    opened: VecDeque<(usize, Opened)>,
    /// The next group, opened while the files of the previous one are sent.
    opening: Option<Opening>,
    /// The files started, and the operation of each.
    pub(super) started: Vec<(usize, OpId)>,
    /// The files not started, and why.
    pub(super) skipped: Vec<(usize, ClientError)>,
}

impl<'f> EagerFeed<'f> {
    /// Eager puts of `all` (whose sizes were `sizes` when the batch was formed), with
    /// `opts`, each at most `max` octets.
    pub(super) fn new(
        all: &'f [(PathBuf, TreePath)],
        sizes: Vec<u64>,
        opts: PutOptions,
        max: u64,
    ) -> Self {
        Self {
            all,
            next: (0..all.len()).collect(),
            sizes,
            opts,
            max,
            opened: VecDeque::new(),
            opening: None,
            started: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// Starts opening (and reading) the next group of files in one trip, unless a group is
    /// being opened already or none is left.
    fn open_next<R: Runtime>(&mut self, rt: &R) {
        if self.opening.is_some() || self.next.is_empty() {
            return;
        }
        let mut group = Vec::new();
        let mut bytes = 0u64;
        while let Some(&k) = self.next.front() {
            if !group.is_empty() && (bytes >= PIECE as u64 || group.len() >= FINISH_BATCH) {
                break;
            }
            self.next.pop_front();
            group.push(k);
            bytes += self.sizes.get(k).copied().unwrap_or(self.max);
        }
        let paths: Vec<_> = group.iter().map(|&k| (k, self.all[k].0.clone())).collect();
        let max = self.max;
        let trip = rt.unblock(move || {
            paths
                .into_iter()
                .map(|(k, path)| (k, FileSource::open(&path, Some(max))))
                .collect::<Vec<_>>()
        });
        self.opening = Some((group, Box::pin(trip)));
    }

    /// Waits for the group being opened, if any, and starts opening the one after it.
    async fn take_group<R: Runtime>(&mut self, rt: &R) -> bool {
        self.open_next(rt);
        let Some((group, trip)) = self.opening.take() else {
            return false;
        };
        match trip.await {
            Ok(opened) => self.opened.extend(opened),
            Err(e) => {
                // The trip failed as a whole (a panic): nothing of the group opened, and
                // nothing more is.
                let why = e.to_string();
                let rest = std::mem::take(&mut self.next);
                for k in group.into_iter().chain(rest) {
                    self.skipped
                        .push((k, ClientError::Io(io::Error::other(why.clone()))));
                }
                return false;
            }
        }
        self.open_next(rt);
        true
    }
}

impl Feed<'_> {
    /// Starts the next operation, if any; returns whether it did.
    async fn feed<R, W, T, P>(
        &mut self,
        rt: &R,
        session: &mut ClientSession,
        ops: &mut Ops<'_, W, T, P>,
    ) -> bool
    where
        R: Runtime,
        W: AsyncWrite + Unpin + ?Sized,
        T: AsyncRead + Unpin + ?Sized,
        P: Report,
    {
        let Feed::Eager(f) = self else {
            return false;
        };
        loop {
            if f.opened.is_empty() && !f.take_group(rt).await {
                return false;
            }
            let Some((k, opened)) = f.opened.pop_front() else {
                continue;
            };
            if let Some(why) = session.ended() {
                f.skipped
                    .push((k, ClientError::Disconnected(why.to_owned())));
                continue;
            }
            let (path, name) = (&f.all[k].0, &f.all[k].1);
            let (src, size) = match opened {
                Ok(src) => src,
                Err(e) => {
                    f.skipped.push((k, e));
                    continue;
                }
            };
            if size > f.max {
                let e = io::Error::other("the file grew beyond the eager limit before it was sent");
                f.skipped.push((k, ClientError::local(path, e)));
                continue;
            }
            let id = session.put_path(name.clone(), size, &f.opts, Some(path.clone()));
            ops.names.insert(id, name.split_last().1);
            ops.sources.insert(id, Source::File(Box::new(src)));
            f.started.push((k, id));
            return true;
        }
    }
}

/// Drives `session` until every operation started (and fed) is done.
pub(super) async fn drive<R, W, T, P>(
    conn: &mut Conn<R>,
    session: &mut ClientSession,
    ops: &mut Ops<'_, W, T, P>,
    feed: &mut Feed<'_>,
) where
    R: Runtime,
    W: AsyncWrite + Unpin + ?Sized,
    T: AsyncRead + Unpin + ?Sized,
    P: Report,
{
    let rt = conn.rt.clone();
    loop {
        if session.ready_to_queue() {
            feed.feed(&rt, session, ops).await;
        }
        match session.poll(Instant::now()) {
            Action::Io {
                send,
                receive,
                deadline,
            } => conn.io(session, send, receive, deadline).await,
            Action::OpenSink { id, size, .. } => {
                // A file is created when its first octets are written (Part::write_out).
                let opened = match ops.sinks.get_mut(&id) {
                    Some(Sink::Part(part)) => {
                        part.opened = true;
                        if let Some(disk) = part.disk.as_mut() {
                            disk.size = size;
                        }
                        Ok(())
                    }
                    Some(Sink::Writer(_)) => Ok(()),
                    None => Err(io::Error::other("no sink for this download")),
                };
                session.sink_opened(opened);
            }
            Action::WriteSink { id } => {
                let written = ops.write_sink(&rt, id, session.sink_data()).await;
                session.sink_written(written);
            }
            Action::ReadSource { id, .. } => {
                let read = ops.read_source(&rt, id, session.source_space()).await;
                session.source_read(read);
            }
            Action::CheckSource { id } => {
                let unchanged = ops.check_source(&rt, id).await;
                session.source_checked(unchanged);
            }
            Action::Progress { id, done, total } => {
                if !(ops.is_put(id) && ops.confirm_only) {
                    ops.progress(id, done, total);
                }
            }
            Action::Done { id, result } => ops.done(&rt, id, result).await,
            Action::Disconnect => conn.shutdown().await,
            Action::Idle => {
                if !(session.ready_to_queue() && feed.feed(&rt, session, ops).await) {
                    ops.flush_finishes(&rt).await;
                    return;
                }
            }
        }
    }
}
