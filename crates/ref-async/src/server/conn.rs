//! Timed socket I/O of one session.
//!
//! Every read and write races the socket against the deadline that applies (idle, request
//! line, stall) and against the server's shutdown, so no session can sleep through either.
//! An operation that can complete at once costs no timer (see [`crate::runtime::deadline`]).
//! Reads go into a 1 MiB buffer that keeps what it has not handed out yet and appends to it
//! (a request line or frame head may arrive in pieces), or straight into an upload's write
//! buffer; writes go through a reply buffer that is flushed before every read that could
//! block, so that the replies to pipelined requests leave together.
//!
//! A chunk of a get payload, once its first octet is written, is written whole (DATA-11) even
//! when the shutdown deadline passes meanwhile (CLOSE-9: the payload ends at a chunk boundary,
//! with `abort 422`): its writes give up only after the stall timeout without progress, or a
//! stall timeout after the shutdown deadline.
//!
//! An idle session holds neither buffer: when the wait for its next request would block, it
//! gives both back to the server's spares ([`Buffers`]) and waits with a small read of its
//! own, then takes a buffer again. Memory then grows with the sessions that are busy, not
//! with the sessions that are open (10,000 mostly idle sessions: see docs/PERFORMANCE.md).

use std::future::Future;
use std::io;
use std::mem;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _, FutureExt as _};

use super::Shared;
use crate::runtime::Runtime;

/// Capacity of a session's input buffer: large reads during uploads, while memory the kernel
/// never fills is never touched.
const INPUT_CAPACITY: usize = 1 << 20;

/// When less than this is free at the end of the input buffer, the unread rest moves to the
/// front before the next read.
const COMPACT_BELOW: usize = 64 * 1024;

/// Capacity of the reply buffer: smaller writes collect in it, larger ones go out directly.
const OUTPUT_CAPACITY: usize = 64 * 1024;

/// The read an idle session waits with: the first octets of its next request.
const IDLE_READ: usize = 512;

/// Most spare buffers of each kind kept for sessions that become busy.
const SPARE_BUFFERS: usize = 64;

/// The server's spare session buffers, shared by its sessions.
#[derive(Debug, Default)]
pub(super) struct Buffers {
    input: std::sync::Mutex<Vec<Vec<u8>>>,
    output: std::sync::Mutex<Vec<Vec<u8>>>,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Buffers {
    fn take_input(&self) -> Vec<u8> {
        lock(&self.input)
            .pop()
            .unwrap_or_else(|| vec![0; INPUT_CAPACITY])
    }

    fn take_output(&self) -> Vec<u8> {
        lock(&self.output)
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(OUTPUT_CAPACITY))
    }

    fn give(&self, input: Vec<u8>, mut output: Vec<u8>) {
        if input.len() == INPUT_CAPACITY {
            let mut spares = lock(&self.input);
            if spares.len() < SPARE_BUFFERS {
                spares.push(input);
            }
        }
        if output.capacity() >= OUTPUT_CAPACITY {
            output.clear();
            let mut spares = lock(&self.output);
            if spares.len() < SPARE_BUFFERS {
                spares.push(output);
            }
        }
    }
}

/// Why a read or write did not complete.
#[derive(Debug)]
pub(super) enum Stop {
    /// The peer closed its sending side.
    Eof,
    /// The idle or stall timeout expired (for a write: the peer accepted nothing).
    Timeout,
    /// The server is shutting down: at a request boundary (idle), or its deadline for requests
    /// in flight passed.
    Shutdown,
    /// The connection failed.
    Io(io::Error),
}

/// How long a read may wait.
#[derive(Debug, Clone, Copy)]
pub(super) enum Wait {
    /// For the first octet of a request: the idle timeout, and a shutdown ends the wait.
    Idle,
    /// Until a fixed instant (a request line's deadline, the drain while closing).
    Until(Instant),
    /// For the next octet of a payload: the stall timeout, counted from now.
    Progress,
}

/// One session's connection: the stream, the unread input and the unsent replies.
pub(super) struct Conn<R: Runtime> {
    shared: Arc<Shared<R>>,
    stream: R::TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    /// `out` holds chunk data (or all of a chunk): its flush is a chunk write.
    chunk_queued: bool,
    /// Set while chunk data is being written: the server's forced end of sessions at the
    /// shutdown deadline waits for it (see `start_session`).
    sending_chunk: Arc<AtomicBool>,
    /// How long a write may wait without progress; `None`: the stall timeout.
    patience: Option<Duration>,
}

impl<R: Runtime> Conn<R> {
    pub(super) fn new(
        shared: Arc<Shared<R>>,
        stream: R::TcpStream,
        sending_chunk: Arc<AtomicBool>,
    ) -> Self {
        Self {
            shared,
            stream,
            buf: Vec::new(),
            start: 0,
            end: 0,
            out: Vec::new(),
            chunk_queued: false,
            sending_chunk,
            patience: None,
        }
    }

    /// The octets received and not yet consumed.
    pub(super) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Whether replies are queued and not yet sent.
    pub(super) fn has_pending_output(&self) -> bool {
        !self.out.is_empty()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops the first `n` octets of [`Conn::data`].
    pub(super) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Makes writes give up after `patience` without progress (for best-effort last words).
    pub(super) fn set_patience(&mut self, patience: Option<Duration>) {
        self.patience = patience;
    }

    /// Reads more octets, appending them to [`Conn::data`]; waits as `wait` allows.
    pub(super) async fn fill(&mut self, wait: Wait) -> Result<usize, Stop> {
        if matches!(wait, Wait::Idle) && self.is_empty() && self.out.is_empty() {
            return self.fill_idle().await;
        }
        self.fill_at_most(wait, usize::MAX).await
    }

    /// [`Conn::fill`], reading at most `max` octets: for a frame head inside an upload, so
    /// that the chunk data after it is read straight into the upload's buffer
    /// ([`Conn::read_into`]) instead of being copied out of this one.
    pub(super) async fn fill_at_most(&mut self, wait: Wait, max: usize) -> Result<usize, Stop> {
        if self.buf.len() < INPUT_CAPACITY {
            // More than the idle read brought is needed: take a full buffer.
            let mut full = self.shared.buffers.take_input();
            let pending = self.end - self.start;
            full[..pending].copy_from_slice(&self.buf[self.start..self.end]);
            self.buf = full;
            self.start = 0;
            self.end = pending;
        }
        if self.buf.len() - self.end < COMPACT_BELOW && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // Cannot happen: lines are at most 4096 octets and chunk data is consumed as it
            // arrives. Refuse rather than grow.
            return Err(Stop::Io(io::Error::other("input buffer full")));
        }
        let Self {
            shared,
            stream,
            buf,
            end,
            ..
        } = self;
        let stop = end.saturating_add(max).min(buf.len());
        let n = read_timed(shared, stream, &mut buf[*end..stop], wait).await?;
        *end += n;
        Ok(n)
    }

    /// [`Conn::fill`] between requests: when the next request is not there yet, the buffers
    /// go back to the spares while the session waits.
    async fn fill_idle(&mut self) -> Result<usize, Stop> {
        if self.buf.len() == INPUT_CAPACITY {
            // A busy client's next request is usually there already: keep the buffers.
            let ready = {
                let read = self.stream.read(&mut self.buf[..]);
                futures_lite::future::poll_once(read).await
            };
            match ready {
                Some(Ok(0)) => return Err(Stop::Eof),
                Some(Ok(n)) => {
                    self.start = 0;
                    self.end = n;
                    return Ok(n);
                }
                Some(Err(e)) => return Err(Stop::Io(e)),
                None => {}
            }
        }
        self.give_back();
        let mut first = [0u8; IDLE_READ];
        let n = read_timed(&self.shared, &mut self.stream, &mut first, Wait::Idle).await?;
        // A lone request (the usual case) is handled from these octets: a full buffer is
        // taken only when more must be read (`fill`).
        self.buf = first[..n].to_vec();
        self.start = 0;
        self.end = n;
        Ok(n)
    }

    /// Reads and discards input until EOF, an error or `deadline` (the end of a close), with
    /// a small buffer of its own: a closing session holds no full buffer.
    pub(super) async fn drain(&mut self, deadline: Instant) {
        self.give_back();
        let mut sink = [0u8; IDLE_READ];
        while read_timed(
            &self.shared,
            &mut self.stream,
            &mut sink,
            Wait::Until(deadline),
        )
        .await
        .is_ok()
        {}
    }

    /// Returns the buffers to the server's spares.
    fn give_back(&mut self) {
        let (input, output) = (mem::take(&mut self.buf), mem::take(&mut self.out));
        self.start = 0;
        self.end = 0;
        self.shared.buffers.give(input, output);
    }

    /// Reads straight into `dst` (chunk data of an upload, when nothing is buffered).
    pub(super) async fn read_into(&mut self, dst: &mut [u8], wait: Wait) -> Result<usize, Stop> {
        debug_assert!(self.is_empty());
        read_timed(&self.shared, &mut self.stream, dst, wait).await
    }

    /// Queues `data` for sending; sends at once what no longer fits the reply buffer.
    pub(super) async fn write(&mut self, data: &[u8]) -> Result<(), Stop> {
        self.write_as(data, false).await
    }

    /// [`Conn::write`] for a whole chunk of a get payload, head and data: once any of it is
    /// written, all of it is (DATA-11), even past the shutdown deadline (CLOSE-9); it gives
    /// up (and the session must close without another word) only when the peer accepts
    /// nothing for the stall timeout, or a stall timeout after the shutdown deadline.
    pub(super) async fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), Stop> {
        self.write_as(chunk, true).await
    }

    async fn write_as(&mut self, data: &[u8], chunk: bool) -> Result<(), Stop> {
        if self.out.capacity() == 0 {
            self.out = self.shared.buffers.take_output();
        }
        if self.out.len() + data.len() > OUTPUT_CAPACITY {
            self.flush().await?;
        }
        if data.len() >= OUTPUT_CAPACITY {
            let mode = if chunk { Mode::Chunk } else { self.mode() };
            self.write_now(data, mode).await
        } else {
            self.out.extend_from_slice(data);
            self.chunk_queued |= chunk;
            Ok(())
        }
    }

    /// Sends the queued replies.
    pub(super) async fn flush(&mut self) -> Result<(), Stop> {
        if self.out.is_empty() {
            return Ok(());
        }
        let mode = if self.chunk_queued {
            Mode::Chunk
        } else {
            self.mode()
        };
        let out = mem::take(&mut self.out);
        let result = self.write_now(&out, mode).await;
        self.out = out;
        self.out.clear();
        self.chunk_queued = false;
        result
    }

    /// How a write that carries no chunk data may wait.
    fn mode(&self) -> Mode {
        match self.patience {
            Some(patience) => Mode::LastWord(patience),
            None => Mode::Reply,
        }
    }

    /// Writes `data` to the socket at once (nothing is queued in front of it).
    async fn write_now(&mut self, data: &[u8], mode: Mode) -> Result<(), Stop> {
        let chunk = matches!(mode, Mode::Chunk);
        if chunk {
            self.sending_chunk.store(true, Ordering::SeqCst);
        }
        let result = write_timed(&self.shared, &mut self.stream, data, mode).await;
        if chunk {
            self.sending_chunk.store(false, Ordering::SeqCst);
        }
        result
    }

    /// Shuts down the sending direction (the peer reads EOF after the last reply).
    pub(super) async fn shutdown_write(&mut self) {
        let patience = self.patience;
        let close = async { self.stream.close().await.map(|()| 0) };
        let deadline = deadline_in(&self.shared, patience);
        let _ = guarded(&self.shared, Guard::Never, deadline, close).await;
    }
}

impl<R: Runtime> Drop for Conn<R> {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// How a write may wait.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Replies: the stall timeout without progress, and the shutdown deadline.
    Reply,
    /// A best-effort last word (a closing error, an abort): its own short patience without
    /// progress, even after the shutdown deadline.
    LastWord(Duration),
    /// Chunk data of a get payload: the stall timeout without progress, and a stall timeout
    /// after the shutdown deadline (DATA-11, CLOSE-9).
    Chunk,
}

/// What ends a wait besides its own deadline.
#[derive(Debug, Clone, Copy)]
enum Guard {
    /// The shutdown being triggered (a session waiting for its next request).
    Trigger,
    /// The shutdown deadline for requests in flight.
    Hard,
    /// A stall timeout after the shutdown deadline: the latest a chunk in progress may end.
    ChunkEnd,
    /// Nothing: a best-effort last word, bounded by its own short patience.
    Never,
}

fn deadline_in<R: Runtime>(shared: &Shared<R>, patience: Option<Duration>) -> Instant {
    Instant::now() + patience.unwrap_or(shared.stall)
}

async fn read_timed<R: Runtime>(
    shared: &Shared<R>,
    stream: &mut R::TcpStream,
    dst: &mut [u8],
    wait: Wait,
) -> Result<usize, Stop> {
    let now = Instant::now();
    let (guard, deadline) = match wait {
        Wait::Idle => (Guard::Trigger, now + shared.idle),
        Wait::Until(d) => (Guard::Hard, d),
        Wait::Progress => (Guard::Hard, now + shared.stall),
    };
    match guarded(shared, guard, deadline, stream.read(dst)).await? {
        0 => Err(Stop::Eof),
        n => Ok(n),
    }
}

async fn write_timed<R: Runtime>(
    shared: &Shared<R>,
    stream: &mut R::TcpStream,
    mut data: &[u8],
    mode: Mode,
) -> Result<(), Stop> {
    // Last words (a closing error, an abort) have a short patience of their own and go out
    // even after the shutdown deadline; so does a chunk, for a stall timeout more.
    let (guard, patience) = match mode {
        Mode::Reply => (Guard::Hard, None),
        Mode::LastWord(patience) => (Guard::Never, Some(patience)),
        Mode::Chunk => (Guard::ChunkEnd, None),
    };
    while !data.is_empty() {
        let deadline = deadline_in(shared, patience);
        match guarded(shared, guard, deadline, stream.write(data)).await? {
            0 => return Err(Stop::Io(io::ErrorKind::WriteZero.into())),
            n => data = &data[n..],
        }
    }
    Ok(())
}

/// Runs one socket operation until it completes, `deadline` passes (`Stop::Timeout`), or the
/// shutdown ends it (`Stop::Shutdown`). The operation is polled once first: when it can
/// complete at once, no timer or listener is made.
async fn guarded<R: Runtime>(
    shared: &Shared<R>,
    guard: Guard,
    deadline: Instant,
    op: impl Future<Output = io::Result<usize>>,
) -> Result<usize, Stop> {
    let mut op = std::pin::pin!(op);
    if let Some(r) = futures_lite::future::poll_once(op.as_mut()).await {
        return r.map_err(Stop::Io);
    }
    let io = async { op.await.map_err(Stop::Io) };
    let stop = async {
        match guard {
            Guard::Trigger => shared.shutdown.triggered().await,
            Guard::Hard => shared.hard_deadline_passed().await,
            // Past the deadline a chunk goes on while the client accepts something within
            // SHUTDOWN_CHUNK_PATIENCE, up to a stall timeout after the deadline (CLOSE-9).
            Guard::ChunkEnd => {
                let patience = async {
                    shared.hard_deadline_passed().await;
                    let at = Instant::now() + ferry_store::SHUTDOWN_CHUNK_PATIENCE;
                    shared.rt.sleep_until(at).await;
                };
                patience.or(shared.chunk_deadline_passed()).await;
            }
            Guard::Never => std::future::pending().await,
        }
        Err(Stop::Shutdown)
    };
    let timer = async {
        shared.rt.sleep_until(deadline).await;
        Err(Stop::Timeout)
    };
    io.or(stop).or(timer).await
}
