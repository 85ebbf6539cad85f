//! The I/O loop: performs what the client session (`ferry_client_core::session`) asks, on a
//! non-blocking socket with `poll(2)` for the waits, so that a pipelined batch sends and
//! receives on one thread without either side blocking the other (PIPE-3).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::time::Instant;

use ferry_client_core::session::{Action, ClientSession, OpId, Outcome};
use ferry_wire::FileName;
use rustix::event::{PollFd, PollFlags, Timespec, poll};

use super::transport::{TlsStream, Transport};
use super::{ClientError, GetOptions, GetReport, Progress};
use ferry_client_core::local::{GetFail, GetJob, PartState, finish_get, read_full};

/// Where a get's octets go.
pub(super) enum Sink<'a> {
    /// The caller's writer (octets before verification).
    Writer(&'a mut dyn Write),
    /// A partial file, opened when the reply comes.
    Part {
        job: GetJob,
        state: PartState,
        opts: GetOptions,
    },
}

/// What a put reads.
pub(super) struct Source<'a> {
    pub(super) reader: Box<dyn Read + 'a>,
    pub(super) unchanged: Box<dyn FnMut() -> io::Result<bool> + 'a>,
}

impl Source<'_> {
    /// The check before the trailer is the last use of a source: its file (and the handle the
    /// check uses) are closed then, not when the reply comes. Pipelined uploads wait for
    /// many replies at once; they must not hold a file open each (10,000 files would exhaust
    /// a usual limit of 1,024 descriptors).
    fn close(&mut self) {
        self.reader = Box::new(io::empty());
        self.unchanged = Box::new(|| Err(io::Error::other("the upload's file is closed")));
    }
}

/// The local side of the operations in flight: their sinks, sources, names (for progress)
/// and, once done, their results.
pub(super) struct Ops<'a, 'p> {
    pub(super) names: HashMap<OpId, FileName>,
    pub(super) sinks: HashMap<OpId, Sink<'a>>,
    pub(super) sources: HashMap<OpId, Source<'a>>,
    pub(super) results: HashMap<OpId, Result<Outcome, ClientError>>,
    /// Downloads to paths, finished: their reports.
    pub(super) finished: HashMap<OpId, Result<GetReport, GetFail>>,
    /// Puts whose progress is reported on confirmation, not per chunk (eager batches).
    pub(super) confirm_only: bool,
    progress: &'p mut dyn FnMut(Progress<'_>),
}

impl<'a, 'p> Ops<'a, 'p> {
    pub(super) fn new(progress: &'p mut dyn FnMut(Progress<'_>)) -> Self {
        Self {
            names: HashMap::new(),
            sinks: HashMap::new(),
            sources: HashMap::new(),
            results: HashMap::new(),
            finished: HashMap::new(),
            confirm_only: false,
            progress,
        }
    }

    /// The report of the download to a path `id`.
    pub(super) fn take_finished(&mut self, id: OpId) -> Result<GetReport, GetFail> {
        if let Some(report) = self.finished.remove(&id) {
            return report;
        }
        // Never done (the session ended first): its partial file is settled now.
        let result = self.take(id);
        match self.sinks.remove(&id) {
            Some(Sink::Part { job, state, opts }) => finish_get(job, state, result, &opts),
            _ => Err(ClientError::Disconnected("the download was lost".into()).into()),
        }
    }

    /// The result of `id` (an operation never driven to its end is reported as such).
    pub(super) fn take(&mut self, id: OpId) -> Result<Outcome, ClientError> {
        self.results.remove(&id).unwrap_or_else(|| {
            Err(ClientError::Disconnected(
                "the operation did not finish".into(),
            ))
        })
    }

    fn progress(&mut self, id: OpId, done: u64, total: u64) {
        if let Some(name) = self.names.get(&id) {
            (self.progress)(Progress { name, done, total });
        }
    }

    fn open_sink(&mut self, id: OpId, size: u64) -> io::Result<()> {
        match self.sinks.get_mut(&id) {
            Some(Sink::Writer(_)) => Ok(()),
            Some(Sink::Part { job, state, .. }) => match job.open_sink(size) {
                Ok(file) => {
                    // Pieces of at least FILE_WRITE_BUF octets (what a socket read usually
                    // brings during a large download) go straight to the file; smaller ones
                    // are gathered first.
                    *state =
                        PartState::Open(io::BufWriter::with_capacity(super::FILE_WRITE_BUF, file));
                    Ok(())
                }
                Err(e) => {
                    *state = PartState::OpenFailed;
                    Err(e)
                }
            },
            None => Err(io::Error::other("no sink for this download")),
        }
    }

    fn write_sink(&mut self, id: OpId, data: &[u8]) -> io::Result<()> {
        match self.sinks.get_mut(&id) {
            Some(Sink::Writer(w)) => w.write_all(data),
            Some(Sink::Part {
                state: PartState::Open(w),
                ..
            }) => w.write_all(data),
            _ => Err(io::Error::other("no sink for this download")),
        }
    }
}

/// What can start the next operation of a batch when the session is ready for it.
pub(super) trait Feed<'a> {
    /// Starts the next operation, if any; returns whether it did.
    fn feed(&mut self, session: &mut ClientSession, ops: &mut Ops<'a, '_>) -> bool;
}

/// No further operations.
pub(super) struct NoFeed;

impl<'a> Feed<'a> for NoFeed {
    fn feed(&mut self, _: &mut ClientSession, _: &mut Ops<'a, '_>) -> bool {
        false
    }
}

/// Drives `session` until every operation started (and fed) is done.
pub(super) fn drive<'a>(
    transport: &mut Transport,
    session: &mut ClientSession,
    ops: &mut Ops<'a, '_>,
    feed: &mut dyn Feed<'a>,
) {
    // Right after a send, the answer is rarely there yet: wait for it before reading.
    let mut wait_first = false;
    loop {
        if session.ready_to_queue() {
            feed.feed(session, ops);
        }
        match session.poll(Instant::now()) {
            Action::Io {
                send,
                receive,
                deadline,
            } => match transport {
                Transport::Plain(stream) => {
                    io(stream, session, send, receive, deadline, &mut wait_first);
                }
                Transport::Tls(tls) => {
                    io_tls(tls, session, send, receive, deadline, &mut wait_first);
                }
            },
            Action::OpenSink { id, size, .. } => {
                let opened = ops.open_sink(id, size);
                session.sink_opened(opened);
            }
            Action::WriteSink { id } => {
                let written = ops.write_sink(id, session.sink_data());
                session.sink_written(written);
            }
            Action::ReadSource { id, .. } => {
                let read = match ops.sources.get_mut(&id) {
                    Some(src) => read_full(&mut src.reader, session.source_space()),
                    None => Err(io::Error::other("no source for this upload")),
                };
                session.source_read(read);
            }
            Action::CheckSource { id } => {
                let unchanged = match ops.sources.get_mut(&id) {
                    Some(src) => {
                        let unchanged = (src.unchanged)();
                        src.close();
                        unchanged
                    }
                    None => Err(io::Error::other("no source for this upload")),
                };
                session.source_checked(unchanged);
            }
            Action::Progress { id, done, total } => {
                let is_put = ops.sources.contains_key(&id);
                if !(is_put && ops.confirm_only) {
                    ops.progress(id, done, total);
                }
            }
            Action::Done { id, result } => {
                // A source is closed as soon as its upload is done.
                ops.sources.remove(&id);
                if ops.confirm_only
                    && let Ok(Outcome::Put(report)) = &result
                {
                    ops.progress(id, report.size, report.size);
                }
                match ops.sinks.remove(&id) {
                    Some(Sink::Part { job, state, opts }) => {
                        let report = finish_get(job, state, result, &opts);
                        ops.finished.insert(id, report);
                    }
                    Some(sink) => {
                        ops.sinks.insert(id, sink);
                        ops.results.insert(id, result);
                    }
                    None => {
                        ops.results.insert(id, result);
                    }
                }
            }
            Action::Disconnect => transport.disconnect(),
            Action::Idle => {
                if !(session.ready_to_queue() && feed.feed(session, ops)) {
                    return;
                }
            }
        }
    }
}

/// Moves octets in whichever direction the session wants and the socket allows; when neither
/// can move, waits for the socket until the session's deadline. `wait_first`: skip the read
/// attempt that would find nothing (set after a send that did not overlap receiving,
/// cleared by the wait).
fn io(
    stream: &std::net::TcpStream,
    session: &mut ClientSession,
    send: bool,
    receive: bool,
    deadline: Option<Instant>,
    wait_first: &mut bool,
) {
    if send {
        match (&*stream).write(session.output()) {
            Ok(n) => {
                // A request just left: its answer cannot be there yet. (In a batch the
                // replies to earlier requests may be: keep reading them.)
                *wait_first = !receive;
                return session.sent(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Err(e) => return session.send_failed(e),
        }
    }
    if receive && !*wait_first {
        let space = session.input_space();
        if space.is_empty() {
            return session.recv_failed(io::Error::other("receive buffer full"));
        }
        match (&*stream).read(space) {
            Ok(0) => return session.eof(),
            Ok(n) => return session.received(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Err(e) => return session.recv_failed(e),
        }
    }
    let mut flags = PollFlags::empty();
    if send {
        flags |= PollFlags::OUT;
    }
    if receive {
        flags |= PollFlags::IN;
    }
    wait(stream, flags, session, deadline, wait_first);
}

/// [`io`] under TLS: the records rustls holds leave first, then the session's octets are
/// handed to rustls; plaintext rustls already holds is read before the socket is.
fn io_tls(
    tls: &mut TlsStream,
    session: &mut ClientSession,
    send: bool,
    receive: bool,
    deadline: Option<Instant>,
    wait_first: &mut bool,
) {
    let mut flags = PollFlags::empty();
    if tls.conn.wants_write() {
        // Records leaving are no progress the session sees (it counted the octets when
        // rustls took them): never return on them alone, or a peer that takes records but
        // never answers would hold this loop past every deadline. What is left waits for
        // POLLOUT below, within the deadline.
        match tls.flush_some() {
            Ok(_) if !tls.conn.wants_write() => {}
            Ok(_) => flags |= PollFlags::OUT,
            Err(e) if send => return session.send_failed(e),
            // The session already counted these octets as sent and now waits for the
            // answer: the broken connection is the end of that wait. (A send failure would
            // be ignored by a session that is not sending, and this loop would spin.)
            Err(e) => return session.recv_failed(e),
        }
    }
    if send && !tls.conn.wants_write() {
        match tls.write(session.output()) {
            Ok(n) => {
                *wait_first = !receive;
                return session.sent(n);
            }
            Err(e) => return session.send_failed(e),
        }
    }
    if receive {
        let space = session.input_space();
        if space.is_empty() {
            return session.recv_failed(io::Error::other("receive buffer full"));
        }
        match tls.read(space, !*wait_first) {
            Ok(Some(0)) => return session.eof(),
            Ok(Some(n)) => return session.received(n),
            Ok(None) => {}
            Err(e) => return session.recv_failed(e),
        }
        flags |= PollFlags::IN;
    }
    wait(&tls.stream, flags, session, deadline, wait_first);
}

/// Neither direction could move: waits for the socket until the session's deadline.
fn wait(
    stream: &std::net::TcpStream,
    flags: PollFlags,
    session: &mut ClientSession,
    deadline: Option<Instant>,
    wait_first: &mut bool,
) {
    let now = Instant::now();
    let timeout = match deadline {
        Some(d) if d <= now => {
            if std::mem::take(wait_first) {
                // Look at the socket once more before giving up.
                return;
            }
            return session.timed_out(now);
        }
        Some(d) => Timespec::try_from(d - now).ok(),
        None => None,
    };
    let mut fds = [PollFd::new(stream, flags)];
    // An interrupted or failed wait is followed by another attempt to move octets, which
    // reports what is wrong with the connection.
    let _ = poll(&mut fds, timeout.as_ref());
    *wait_first = false;
}
