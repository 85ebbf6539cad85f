//! Timed socket I/O of one session.
//!
//! The socket's own timeouts are set once to [`SLICE`]; every blocking read or write wakes at
//! least that often to look at the session's deadline (idle or stall) and at the server's
//! shutdown, so no timeout needs a `setsockopt` per request and no session can sleep through a
//! shutdown. Reads go into [`Input`], a buffer that keeps what it has not handed out yet and
//! appends to it (a request line or frame head may arrive in pieces); writes go through
//! [`Output`], which a session wraps in a `BufWriter` so that the replies to pipelined
//! requests leave in one write.

use std::io::{self, Read as _, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ferry_store::SHUTDOWN_CHUNK_PATIENCE;

use super::Shared;

/// The longest a blocked read or write sleeps before it looks at deadlines and the shutdown.
pub(super) const SLICE: Duration = Duration::from_millis(250);

/// Capacity of a session's input buffer: large reads during uploads, while memory the
/// kernel never fills is never touched.
const INPUT_CAPACITY: usize = 1 << 20;

/// When less than this is free at the end of the input buffer, the unread rest moves to the
/// front before the next read.
const COMPACT_BELOW: usize = 64 * 1024;

/// Why a read or write did not complete.
#[derive(Debug)]
pub(super) enum Stop {
    /// The peer closed its sending side.
    Eof,
    /// The idle or stall timeout expired.
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

/// The marker inside the `io::Error` an [`Output`] returns when the shutdown deadline passed.
#[derive(Debug)]
struct ShuttingDown;

impl std::fmt::Display for ShuttingDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("server shutting down")
    }
}

impl std::error::Error for ShuttingDown {}

/// Maps an error of an [`Output`] write to why the session stops.
pub(super) fn write_stop(e: io::Error) -> Stop {
    if e.get_ref().is_some_and(|inner| inner.is::<ShuttingDown>()) {
        Stop::Shutdown
    } else if e.kind() == io::ErrorKind::TimedOut {
        Stop::Timeout
    } else {
        Stop::Io(e)
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The session's input: a buffer over the socket.
pub(super) struct Input<'a> {
    stream: &'a TcpStream,
    shared: &'a Shared,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<'a> Input<'a> {
    pub(super) fn new(stream: &'a TcpStream, shared: &'a Shared) -> Self {
        Self {
            stream,
            shared,
            buf: vec![0; INPUT_CAPACITY],
            start: 0,
            end: 0,
        }
    }

    /// The octets received and not yet consumed.
    pub(super) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops the first `n` octets of [`Input::data`].
    pub(super) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Drops everything received so far.
    pub(super) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Reads more octets, appending them to [`Input::data`]; waits as `wait` allows.
    pub(super) fn fill(&mut self, wait: Wait) -> Result<usize, Stop> {
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
        let now = Instant::now();
        let deadline = match wait {
            Wait::Idle => now + self.shared.idle,
            Wait::Until(d) => d,
            Wait::Progress => now + self.shared.stall,
        };
        loop {
            match (&*self.stream).read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(Stop::Eof),
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    if matches!(wait, Wait::Idle) && self.shared.shutdown.is_triggered() {
                        return Err(Stop::Shutdown);
                    }
                    if self.shared.past_hard_deadline() {
                        return Err(Stop::Shutdown);
                    }
                    if Instant::now() >= deadline {
                        return Err(Stop::Timeout);
                    }
                }
                Err(e) => return Err(Stop::Io(e)),
            }
        }
    }
}

/// The session's output: writes that give up after the stall timeout without progress, or
/// when the shutdown deadline has passed.
pub(super) struct Output<'a> {
    stream: &'a TcpStream,
    shared: &'a Shared,
    /// How long a write may wait without progress; `None`: the stall timeout.
    patience: Option<Duration>,
    /// A get payload is being sent: its chunks are written whole (DATA-11) even past the
    /// shutdown deadline, so that the payload ends at a chunk boundary with `abort 422`
    /// (CLOSE-9). Past the deadline such a write gives up when the client accepts nothing for
    /// [`SHUTDOWN_CHUNK_PATIENCE`], and at the latest a stall timeout after the deadline.
    in_payload: bool,
}

impl<'a> Output<'a> {
    pub(super) fn new(stream: &'a TcpStream, shared: &'a Shared) -> Self {
        Self {
            stream,
            shared,
            patience: None,
            in_payload: false,
        }
    }

    /// Marks the start or the end of a get payload (see `in_payload`).
    pub(super) fn set_in_payload(&mut self, in_payload: bool) {
        self.in_payload = in_payload;
    }

    /// Makes writes give up after `patience` without progress (for best-effort last words).
    pub(super) fn set_patience(&mut self, patience: Option<Duration>) {
        self.patience = patience;
    }
}

impl Output<'_> {
    /// Past the shutdown deadline, whether a write that began at `called` may still go on:
    /// inside a get payload, while the client accepted something within
    /// [`SHUTDOWN_CHUNK_PATIENCE`], up to a stall timeout after the deadline.
    fn may_finish_chunk(&self, called: Instant) -> bool {
        let Some(hard) = self.shared.hard_deadline() else {
            return false;
        };
        let now = Instant::now();
        self.in_payload
            && now < called.max(hard) + SHUTDOWN_CHUNK_PATIENCE
            && now < hard + self.shared.stall
    }
}

impl Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let called = Instant::now();
        let deadline = called + self.patience.unwrap_or(self.shared.stall);
        loop {
            match (&*self.stream).write(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    if self.shared.past_hard_deadline() && !self.may_finish_chunk(called) {
                        return Err(io::Error::other(ShuttingDown));
                    }
                    if Instant::now() >= deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "peer accepts no output",
                        ));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
