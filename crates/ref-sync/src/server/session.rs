//! One session: the protocol state machine of `ferry_proto::server`, driven over a blocking
//! socket, with `ferry-store` for every file.
//!
//! The socket's own timeouts are set once to [`SLICE`]; every blocking read or write wakes at
//! least that often to look at the session's deadline and at the server's shutdown, so no
//! timeout needs a `setsockopt` per request and no session sleeps through a shutdown.

use std::io;
use std::net::{Shutdown as NetShutdown, SocketAddr, TcpStream};
use std::os::unix::fs::FileExt as _;
use std::sync::Arc;
use std::time::Instant;

use ferry_proto::server::{Action, End, FileMeta, ServerSession};
use ferry_store::{ReadFile, StoreError, Upload};
use ferry_wire::Code;
use rustix::io::Errno;

use super::Shared;
use super::conn::{Conn, SLICE, Tls, Wake, read_plain};

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
    let mut conn = match &shared.tls {
        None => Conn::Plain(stream),
        Some(config) => match handshake(shared, stream, config) {
            Some(tls) => Conn::Tls(Box::new(tls)),
            None => return,
        },
    };
    End::log(&drive(shared, &mut conn, peer));
}

/// The TLS handshake of a session, bounded by the stall timeout: a peer that opens and never
/// handshakes holds its slot no longer than a stalled one; after a shutdown, by its deadline
/// too (a handshake that completes by then is followed by `err 422`, inside TLS). `None`: it
/// failed (logged; the alert rustls had for it was sent).
fn handshake<'s>(
    shared: &Shared,
    stream: &'s TcpStream,
    config: &ferry_tls::ServerTls,
) -> Option<Tls<'s>> {
    let mut tls = match Tls::new(stream, config.config()) {
        Ok(tls) => tls,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start TLS");
            return None;
        }
    };
    let mut deadline = Instant::now() + shared.session.stall;
    let mut told = false;
    let done = loop {
        match tls.handshake(shared, told, deadline) {
            Err(Wake::Shutdown) => {
                told = true;
                if let Some(hard) = shared.hard_deadline() {
                    deadline = deadline.min(hard);
                }
            }
            other => break other,
        }
    };
    match done {
        Ok(()) => Some(tls),
        Err(Wake::Io(e)) => {
            tracing::info!(error = %e, "TLS handshake failed");
            None
        }
        Err(Wake::Deadline | Wake::Shutdown) => {
            tracing::info!("TLS handshake timed out");
            None
        }
    }
}

/// The I/O loop: performs what the session asks until it is over. The open file of a get and
/// the upload of a put live here; dropping the upload removes its staging file.
fn drive(shared: &Shared, conn: &mut Conn<'_>, peer: SocketAddr) -> io::Result<End> {
    let mut session = ServerSession::new(shared.session.clone(), Instant::now());
    session.set_peer(peer);
    if let Some(audit) = &shared.audit {
        session.set_audit(Arc::clone(&audit.0));
    }
    if let Some(cb) = conn.channel_binding() {
        session.set_channel_binding(cb);
    }
    // Chunks of gets whose digest is known go straight from the file (sendfile); never
    // under TLS, whose records are made in user space.
    session.send_files(matches!(conn, Conn::Plain(_)));
    let mut file: Option<ReadFile> = None;
    let mut upload: Option<Upload> = None;
    loop {
        if let Some(hard) = shared.hard_deadline() {
            session.shutdown(hard);
        }
        match session.poll(Instant::now()) {
            Action::Send { deadline } => match write_some(shared, &session, conn, deadline) {
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
                match send_file_some(shared, &session, conn, &f.file, at, len, deadline) {
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
                match conn.read(shared, told, session.input_space(), deadline) {
                    Ok(0) => session.eof(),
                    Ok(n) => session.received(n),
                    Err(Wake::Deadline) => session.timed_out(Instant::now()),
                    Err(Wake::Shutdown) => {}
                    Err(Wake::Io(e)) => return Err(e),
                }
            }
            Action::List => session.listed(
                shared
                    .root_for(&session)
                    .ok_or_else(no_folder)
                    .and_then(|root| root.list())
                    .map_err(|e| StoreError::report_io(&e, "listing")),
            ),
            Action::OpenRead { name, .. } => match open_read(shared, &session, &name) {
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
                if let (Some(f), Some(root)) = (&file, shared.root_for(&session)) {
                    root.remember_digest(f, digest);
                }
            }
            Action::CloseFile => file = None,
            Action::BeginUpload { name, size, mode } => {
                match begin_upload(shared, &session, &name, size, mode) {
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
                let stored = match shared.root_for(&session) {
                    Some(root) => root.store_uploads(session.uploads()),
                    None => vec![Err(Code::STORAGE); session.uploads().len()],
                };
                session.uploads_stored(&stored);
            }
            Action::Tree(op) => session.tree_done(match shared.root_for(&session) {
                Some(root) => root.tree(&op).map_err(|e| e.report("a tree operation")),
                None => Err(StoreError::report_io(&no_folder(), "a tree operation")),
            }),
            Action::Drain { until } => {
                drain(shared, conn, &mut session, until);
                session.drained();
            }
            Action::Finished(end) => {
                // TLS-6, at every end (the drain has sent it already after a closing reply).
                conn.close_notify(shared, Instant::now() + SLICE);
                return Ok(end);
            }
        }
    }
}

/// A session whose user no longer has a folder (removed from the users file since it
/// authenticated): every storage request fails, `err 431 storage`.
fn no_folder() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "the user has no folder any more")
}

fn open_read(
    shared: &Shared,
    session: &ServerSession,
    name: &ferry_wire::TreePath,
) -> Result<ReadFile, StoreError> {
    match shared.root_for(session) {
        Some(root) => root.open_read(name),
        None => Err(StoreError::Io(no_folder())),
    }
}

fn begin_upload(
    shared: &Shared,
    session: &ServerSession,
    name: &ferry_wire::TreePath,
    size: u64,
    mode: ferry_wire::PutMode,
) -> Result<Upload, StoreError> {
    match shared.root_for(session) {
        Some(root) => root.begin_upload(name, size, mode),
        None => Err(StoreError::Io(no_folder())),
    }
}

/// Writes some of the session's output, waiting in slices until `deadline`.
fn write_some(
    shared: &Shared,
    session: &ServerSession,
    conn: &mut Conn<'_>,
    deadline: Instant,
) -> Result<usize, Wake> {
    let told = session.is_shutting_down();
    conn.write(shared, told, session.output(), deadline)
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
    conn: &mut Conn<'_>,
    file: &std::fs::File,
    at: u64,
    len: usize,
    deadline: Instant,
) -> Result<usize, FileWake> {
    let told = session.is_shutting_down();
    let Conn::Plain(stream) = conn else {
        // Not asked for under TLS (`send_files(false)`); read and write if it ever is.
        return send_file_copy(shared, told, conn, file, at, len, deadline);
    };
    let stream = *stream;
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
                let mut plain = Conn::Plain(stream);
                return send_file_copy(shared, told, &mut plain, file, at, len, deadline);
            }
            Errno::PIPE | Errno::CONNRESET | Errno::NOTCONN | Errno::TIMEDOUT => {
                return Err(FileWake::Net(Wake::Io(err.into())));
            }
            _ => return Err(FileWake::File(err.into())),
        }
    }
}

/// [`send_file_some`] without `sendfile`: reads a piece of the file and writes it.
fn send_file_copy(
    shared: &Shared,
    told: bool,
    conn: &mut Conn<'_>,
    file: &std::fs::File,
    at: u64,
    len: usize,
    deadline: Instant,
) -> Result<usize, FileWake> {
    let mut buf = vec![0; len.min(64 * 1024)];
    let n = file.read_at(&mut buf, at).map_err(FileWake::File)?;
    if n == 0 {
        return Ok(0);
    }
    conn.write(shared, told, &buf[..n], deadline)
        .map_err(FileWake::Net)
}

/// CLOSE-6: shut down the sending side (under TLS after `close_notify`, TLS-6), then read
/// and discard input until `until` or EOF, so that unread input does not turn the close into
/// a reset that destroys the last reply.
fn drain(shared: &Shared, conn: &mut Conn<'_>, session: &mut ServerSession, until: Instant) {
    conn.close_notify(shared, until);
    let stream = conn.stream();
    let _ = stream.shutdown(NetShutdown::Write);
    // Under TLS too the octets are only discarded: no need to decrypt them.
    loop {
        match read_plain(shared, true, stream, session.input_space(), until) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
