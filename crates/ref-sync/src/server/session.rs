//! One session: the protocol state machine of `ferry_proto::server`, driven over a blocking
//! socket, with `ferry-store` for every file.
//!
//! The socket's own timeouts are set once to [`SLICE`]; every blocking read or write wakes at
//! least that often to look at the session's deadline and at the server's shutdown, so no
//! timeout needs a `setsockopt` per request and no session sleeps through a shutdown.

use std::io::{self, Read, Write};
use std::net::{Shutdown as NetShutdown, SocketAddr, TcpStream};
use std::os::unix::fs::FileExt as _;
use std::time::{Duration, Instant};

use ferry_proto::server::{Action, End, FileMeta, ServerSession};
use ferry_store::{ReadFile, StoreError, Upload};
use ferry_wire::Code;
use rustix::io::Errno;

use super::Shared;

/// The longest a blocked read or write sleeps before it looks at deadlines and the shutdown.
pub(super) const SLICE: Duration = Duration::from_millis(250);

/// Why a wait ended without progress.
enum Wake {
    /// The deadline passed.
    Deadline,
    /// The server's shutdown was triggered and the session has not been told yet.
    Shutdown,
    /// The connection failed.
    Io(io::Error),
}

/// Runs one session on an accepted connection.
pub(super) fn serve(shared: &Shared, stream: &TcpStream, peer: SocketAddr, id: u64) {
    let span = tracing::info_span!("session", id, %peer);
    let _entered = span.enter();
    if let Err(e) = stream
        .set_read_timeout(Some(SLICE))
        .and_then(|()| stream.set_write_timeout(Some(SLICE)))
    {
        tracing::warn!(error = %e, "cannot set socket timeouts");
        return;
    }
    // Replies are gathered by the session; Nagle would only delay the last one.
    let _ = stream.set_nodelay(true);
    tracing::debug!("session started");
    End::log(&drive(shared, stream));
}

/// The I/O loop: performs what the session asks until it is over. The open file of a get and
/// the upload of a put live here; dropping the upload removes its staging file.
fn drive(shared: &Shared, stream: &TcpStream) -> io::Result<End> {
    let mut session = ServerSession::new(shared.session.clone(), Instant::now());
    // Chunks of gets whose digest is known go straight from the file (sendfile).
    session.send_files(true);
    let mut file: Option<ReadFile> = None;
    let mut upload: Option<Upload> = None;
    loop {
        if let Some(hard) = shared.hard_deadline() {
            session.shutdown(hard);
        }
        match session.poll(Instant::now()) {
            Action::Send { deadline } => match write_some(shared, &session, stream, deadline) {
                Ok(n) => session.sent(n),
                Err(Wake::Deadline) => session.timed_out(Instant::now()),
                Err(Wake::Shutdown) => {}
                Err(Wake::Io(e)) => return Err(e),
            },
            Action::SendFile { at, len, deadline } => {
                let Some(f) = &file else {
                    session.file_send_failed(Code::STORAGE);
                    continue;
                };
                match send_file_some(shared, &session, stream, &f.file, at, len, deadline) {
                    Ok(0) => session.file_send_failed(Code::CHANGED),
                    Ok(n) => session.sent(n),
                    Err(FileWake::File(e)) => {
                        session.file_send_failed(StoreError::report_io(&e, "read"));
                    }
                    Err(FileWake::Net(Wake::Deadline)) => session.timed_out(Instant::now()),
                    Err(FileWake::Net(Wake::Shutdown)) => {}
                    Err(FileWake::Net(Wake::Io(e))) => return Err(e),
                }
            }
            Action::Receive { deadline } => {
                let told = session.is_shutting_down();
                match read_some(shared, told, stream, session.input_space(), deadline) {
                    Ok(0) => session.eof(),
                    Ok(n) => session.received(n),
                    Err(Wake::Deadline) => session.timed_out(Instant::now()),
                    Err(Wake::Shutdown) => {}
                    Err(Wake::Io(e)) => return Err(e),
                }
            }
            Action::List => session.listed(
                shared
                    .root
                    .list()
                    .map_err(|e| StoreError::report_io(&e, "listing")),
            ),
            Action::OpenRead { name, .. } => match shared.root.open_read(&name) {
                Ok(f) => {
                    session.opened(Ok(FileMeta {
                        size: f.size,
                        mtime: f.mtime,
                        digest: f.digest,
                    }));
                    file = Some(f);
                }
                Err(e) => session.opened(Err(e.report("opening a file for get"))),
            },
            Action::ReadFile { at, .. } => {
                let read = match &file {
                    Some(f) => f
                        .read_at(session.file_space(), at)
                        .map_err(|e| StoreError::report_io(&e, "read")),
                    None => Err(Code::STORAGE),
                };
                session.file_read(read);
            }
            Action::CheckUnchanged => {
                let unchanged = match &file {
                    Some(f) => f
                        .unchanged()
                        .map_err(|e| StoreError::report_io(&e, "fstat")),
                    None => Err(Code::STORAGE),
                };
                session.checked(unchanged);
            }
            Action::RememberDigest(digest) => {
                if let Some(f) = &file {
                    shared.root.remember_digest(f, digest);
                }
            }
            Action::CloseFile => file = None,
            Action::BeginUpload { name, size, mode } => {
                match shared.root.begin_upload(&name, size, mode) {
                    Ok(u) => {
                        upload = Some(u);
                        session.upload_begun(Ok(()));
                    }
                    Err(e) => session.upload_begun(Err(e.report("starting an upload"))),
                }
            }
            Action::WriteUpload => {
                let written = match upload.as_mut() {
                    Some(u) => u.write_all(session.upload_data()).map_err(|e| e.code()),
                    None => Err(Code::STORAGE),
                };
                session.upload_written(written);
            }
            Action::CommitUpload => {
                let committed = match upload.take() {
                    Some(u) => u.commit().map_err(|e| e.report("commit")),
                    None => Err(Code::STORAGE),
                };
                session.upload_committed(committed);
            }
            Action::DiscardUpload => upload = None,
            Action::StoreUploads => {
                let stored = shared.root.store_uploads(session.uploads());
                session.uploads_stored(&stored);
            }
            Action::Drain { until } => {
                drain(shared, stream, &mut session, until);
                session.drained();
            }
            Action::Finished(end) => return Ok(end),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Writes some of the session's output, waiting in slices until `deadline`.
fn write_some(
    shared: &Shared,
    session: &ServerSession,
    stream: &TcpStream,
    deadline: Instant,
) -> Result<usize, Wake> {
    let told = session.is_shutting_down();
    write_piece(shared, told, stream, session.output(), deadline)
}

/// Why [`send_file_some`] moved nothing.
enum FileWake {
    /// As a socket wait.
    Net(Wake),
    /// Reading the file failed.
    File(io::Error),
}

/// Writes some of `len` octets of `file` at `at` to the socket, waiting in slices until
/// `deadline`: with `sendfile(2)` (no copy through user space), or, where the file system
/// does not support it, by reading a piece and writing it. `Ok(0)`: the file ends at `at`.
fn send_file_some(
    shared: &Shared,
    session: &ServerSession,
    stream: &TcpStream,
    file: &std::fs::File,
    at: u64,
    len: usize,
    deadline: Instant,
) -> Result<usize, FileWake> {
    let told = session.is_shutting_down();
    loop {
        let mut offset = at;
        let err = match rustix::fs::sendfile(stream, file, Some(&mut offset), len) {
            Ok(n) => return Ok(n),
            Err(e) => e,
        };
        match err {
            Errno::INTR => {}
            Errno::AGAIN => {
                if !told && shared.shutdown.is_triggered() {
                    return Err(FileWake::Net(Wake::Shutdown));
                }
                if Instant::now() >= deadline {
                    return Err(FileWake::Net(Wake::Deadline));
                }
            }
            Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP => {
                // No sendfile from this file: read a piece and write it.
                let mut buf = vec![0; len.min(64 * 1024)];
                let n = file.read_at(&mut buf, at).map_err(FileWake::File)?;
                if n == 0 {
                    return Ok(0);
                }
                return write_piece(shared, told, stream, &buf[..n], deadline)
                    .map_err(FileWake::Net);
            }
            Errno::PIPE | Errno::CONNRESET | Errno::NOTCONN | Errno::TIMEDOUT => {
                return Err(FileWake::Net(Wake::Io(err.into())));
            }
            _ => return Err(FileWake::File(err.into())),
        }
    }
}

/// Writes some of `data`, waiting in slices until `deadline`.
fn write_piece(
    shared: &Shared,
    told: bool,
    stream: &TcpStream,
    data: &[u8],
    deadline: Instant,
) -> Result<usize, Wake> {
    loop {
        match (&*stream).write(data) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => {
                if !told && shared.shutdown.is_triggered() {
                    return Err(Wake::Shutdown);
                }
                if Instant::now() >= deadline {
                    return Err(Wake::Deadline);
                }
            }
            Err(e) => return Err(Wake::Io(e)),
        }
    }
}

/// Reads into `buf`, waiting in slices until `deadline`.
fn read_some(
    shared: &Shared,
    told: bool,
    stream: &TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<usize, Wake> {
    loop {
        match (&*stream).read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => {
                if !told && shared.shutdown.is_triggered() {
                    return Err(Wake::Shutdown);
                }
                if Instant::now() >= deadline {
                    return Err(Wake::Deadline);
                }
            }
            Err(e) => return Err(Wake::Io(e)),
        }
    }
}

/// CLOSE-6: shut down the sending side, then read and discard input until `until` or EOF,
/// so that unread input does not turn the close into a reset that destroys the last reply.
fn drain(shared: &Shared, stream: &TcpStream, session: &mut ServerSession, until: Instant) {
    let _ = stream.shutdown(NetShutdown::Write);
    loop {
        match read_some(shared, true, stream, session.input_space(), until) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
