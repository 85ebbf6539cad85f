//! One session: the protocol state machine of `ferry_proto::server`, driven over a
//! `futures-io` stream, with `ferry-store` on the runtime's blocking pool ([`super::files`]).
//!
//! Every wait races the socket against the deadline the session gives and, until the session
//! has been told, against the server's shutdown; an operation that can complete at once costs
//! no timer. Three of the core's optional paths keep the async server's costs down:
//!
//! - an idle session whose next request is not there yet lends its buffers to the server's
//!   spares and waits with a small read of its own, so memory grows with busy sessions, not
//!   open ones;
//! - upload chunk data is read straight into the upload's write buffer (frame heads with
//!   small reads), and written one piece behind;
//! - a get's file is read one piece ahead and swapped into the session.

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use ferry_proto::server::{Action, Buffers, End, ServerSession};
use ferry_store::StoreError;
use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _, FutureExt as _};

use futures_rustls::TlsAcceptor;

use super::Shared;
use super::files::{Reader, Writer};
use crate::runtime::Runtime;
use crate::tls::MaybeTls;

/// The read an idle session waits with: the first octets of its next request.
const IDLE_READ: usize = 512;

/// The read for a frame head inside an upload: longer than `data LEN` and `end DIGEST` lines,
/// short enough that the chunk data after it is read straight into the upload.
const HEAD_READ: usize = 64;

/// Most spare buffers kept for sessions that become busy.
const SPARE_BUFFERS: usize = 64;

/// The server's spare session buffers, shared by its sessions.
#[derive(Debug, Default)]
pub(super) struct Spares(Mutex<Vec<Buffers>>);

impl Spares {
    fn lock(&self) -> MutexGuard<'_, Vec<Buffers>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self) -> Buffers {
        self.lock().pop().unwrap_or_default()
    }

    fn give(&self, buffers: Buffers) {
        let mut spares = self.lock();
        if spares.len() < SPARE_BUFFERS {
            spares.push(buffers);
        }
    }
}

/// Why a wait ended without the operation.
enum Wake {
    /// The deadline passed.
    Deadline,
    /// The server's shutdown was triggered and the session has not been told yet.
    Shutdown,
    /// The connection failed.
    Io(io::Error),
}

/// Runs one session on an accepted connection (inside the session's tracing span): with
/// TLS, the handshake first.
pub(super) async fn serve<R: Runtime>(
    shared: Arc<Shared<R>>,
    stream: R::TcpStream,
    peer: std::net::SocketAddr,
) {
    let stream = match &shared.tls {
        None => MaybeTls::Plain(stream),
        Some(acceptor) => match handshake(&shared, acceptor, stream).await {
            Some(stream) => stream,
            None => return,
        },
    };
    tracing::debug!("session started");
    let now = Instant::now();
    let mut session = ServerSession::new(shared.session.clone(), now);
    session.set_peer(peer);
    if let Some(audit) = &shared.audit {
        session.set_audit(Arc::clone(&audit.0));
    }
    if let Some(cb) = stream.channel_binding() {
        session.set_channel_binding(cb);
    }
    let mut driver = Driver {
        session,
        shared,
        stream,
        reader: None,
        writer: None,
    };
    let end = driver.run().await;
    End::log(&end);
    if driver.stream.is_tls() && matches!(end, Ok(End::Eof | End::Bye)) {
        driver.close_notify().await;
    }
}

/// The TLS handshake of a session (TLS-2, TLS-3), bounded by the stall timeout — a peer that
/// connects and never completes it holds its slot no longer than a stalled peer would — and,
/// after a shutdown, by the shutdown's deadline too: a handshake that completes by then is
/// followed by the session's `err 422`, inside TLS (as ferry-sync does). A connection that
/// does not begin with a TLS ClientHello gets an alert at most, never a greeting (TLS-5).
async fn handshake<R: Runtime>(
    shared: &Shared<R>,
    acceptor: &TlsAcceptor,
    stream: R::TcpStream,
) -> Option<MaybeTls<R::TcpStream>> {
    let mut deadline = Instant::now() + shared.session.stall;
    let mut accept = std::pin::pin!(MaybeTls::accept(acceptor, stream));
    let mut told = false;
    let done = loop {
        match wait(shared, told, deadline, accept.as_mut()).await {
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
        Ok(stream) => Some(stream),
        Err(Wake::Io(e)) => {
            tracing::info!(error = %e, "TLS handshake failed");
            None
        }
        Err(Wake::Deadline | Wake::Shutdown) => {
            tracing::info!(
                "TLS handshake not completed within the stall timeout or by the shutdown"
            );
            None
        }
    }
}

struct Driver<R: Runtime> {
    shared: Arc<Shared<R>>,
    /// The connection; TLS or not, the same calls (`crate::tls`).
    stream: MaybeTls<R::TcpStream>,
    session: ServerSession,
    /// The open file of a get.
    reader: Option<Reader<R>>,
    /// The upload of a put.
    writer: Option<Writer<R>>,
}

impl<R: Runtime> Driver<R> {
    /// The I/O loop: performs what the session asks until it is over.
    async fn run(&mut self) -> io::Result<End> {
        let rt = self.shared.rt.clone();
        loop {
            if let Some(hard) = self.shared.hard_deadline() {
                self.session.shutdown(hard);
            }
            match self.session.poll(Instant::now()) {
                Action::Send { deadline } => {
                    let told = self.session.is_shutting_down();
                    let write = self.stream.write(self.session.output());
                    match wait(&self.shared, told, deadline, write).await {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => self.session.sent(n),
                        Err(Wake::Deadline) => self.session.timed_out(Instant::now()),
                        Err(Wake::Shutdown) => {}
                        Err(Wake::Io(e)) => return Err(e),
                    }
                }
                // Never asked: this driver does not turn on `send_files` (its reads ahead
                // already overlap the file with the network).
                Action::SendFile { .. } => {
                    self.session.file_send_failed(ferry_wire::Code::STORAGE);
                }
                Action::Receive { deadline } => self.receive(deadline).await?,
                Action::List => {
                    let Some(root) = self.shared.root_for(&self.session) else {
                        self.session.listed(Err(ferry_wire::Code::STORAGE));
                        continue;
                    };
                    let listed = match rt.unblock(move || root.list()).await {
                        Ok(Ok(entries)) => Ok(entries),
                        Ok(Err(e)) | Err(e) => Err(StoreError::report_io(&e, "listing")),
                    };
                    self.session.listed(listed);
                }
                Action::OpenRead { name, offset } => {
                    let Some(root) = self.shared.root_for(&self.session) else {
                        self.session.opened(Err(ferry_wire::Code::STORAGE));
                        continue;
                    };
                    match Reader::open(&rt, &root, name, offset).await {
                        Ok((reader, meta)) => {
                            self.reader = Some(reader);
                            self.session.opened(Ok(meta));
                        }
                        Err(code) => self.session.opened(Err(code)),
                    }
                }
                Action::ReadFile { at, len } => match self.reader.as_mut() {
                    Some(reader) => reader.read(&mut self.session, at, len).await,
                    None => self.session.file_read(Err(ferry_wire::Code::STORAGE)),
                },
                Action::CheckUnchanged => {
                    let checked = match self.reader.as_mut() {
                        Some(reader) => reader.check().await,
                        None => Err(ferry_wire::Code::STORAGE),
                    };
                    self.session.checked(checked);
                }
                Action::RememberDigest(digest) => {
                    if let (Some(reader), Some(root)) =
                        (&self.reader, self.shared.root_for(&self.session))
                    {
                        reader.remember(&root, digest);
                    }
                }
                Action::CloseFile => self.reader = None,
                Action::BeginUpload { name, size, mode } => {
                    let Some(root) = self.shared.root_for(&self.session) else {
                        self.session.upload_begun(Err(ferry_wire::Code::STORAGE));
                        continue;
                    };
                    match Writer::begin(&rt, &root, name, size, mode).await {
                        Ok(writer) => {
                            self.writer = Some(writer);
                            self.session.upload_begun(Ok(()));
                        }
                        Err(code) => self.session.upload_begun(Err(code)),
                    }
                }
                Action::WriteUpload => {
                    // Written behind: a failure is reported by a later call.
                    let written = match self.writer.as_mut() {
                        Some(w) => w.push(self.session.upload_data()).await,
                        None => Err(ferry_wire::Code::STORAGE),
                    };
                    self.session.upload_written(written);
                }
                Action::CommitUpload => {
                    let committed = match self.writer.take() {
                        Some(w) => w.commit().await,
                        None => Err(ferry_wire::Code::STORAGE),
                    };
                    self.session.upload_committed(committed);
                }
                Action::DiscardUpload => {
                    if let Some(w) = self.writer.take() {
                        w.discard().await;
                    }
                }
                Action::StoreUploads => {
                    // One trip for the run of eager puts the session holds.
                    let uploads = self.session.take_uploads();
                    let stored = match self.shared.root_for(&self.session) {
                        Some(root) => {
                            match rt.unblock(move || root.store_uploads(&uploads)).await {
                                Ok(stored) => stored,
                                Err(e) => vec![Err(StoreError::report_io(&e, "storing uploads"))],
                            }
                        }
                        None => vec![Err(ferry_wire::Code::STORAGE); uploads.len()],
                    };
                    self.session.uploads_stored(&stored);
                }
                Action::Tree(op) => {
                    // On the blocking pool, as every storage operation.
                    let Some(root) = self.shared.root_for(&self.session) else {
                        self.session.tree_done(Err(ferry_wire::Code::STORAGE));
                        continue;
                    };
                    let what = "a tree operation";
                    let done = match rt.unblock(move || root.tree(&op)).await {
                        Ok(done) => done.map_err(|e| e.report(what)),
                        Err(e) => Err(StoreError::report_io(&e, what)),
                    };
                    self.session.tree_done(done);
                }
                Action::Drain { until } => {
                    self.drain(until).await;
                    self.session.drained();
                }
                Action::Finished(end) => return Ok(end),
            }
        }
    }

    /// [`Action::Receive`]: a small read of its own while idle (the buffers go back to the
    /// spares meanwhile), chunk data straight into the upload, anything else into the
    /// session's input buffer.
    async fn receive(&mut self, deadline: Instant) -> io::Result<()> {
        let told = self.session.is_shutting_down();
        let idle = self.session.is_idle();
        // A busy client's next request is usually there already: read it into the session's
        // own buffer, lending nothing (one read that cannot block).
        let ready = if idle {
            let read = self.stream.read(self.session.input_space());
            futures_lite::future::poll_once(read).await
        } else {
            None
        };
        let result = if let Some(read) = ready {
            read.map_err(Wake::Io)
        } else if idle {
            self.shared.spares.give(self.session.take_buffers());
            let mut first = [0u8; IDLE_READ];
            let read = self.stream.read(&mut first);
            let result = wait(&self.shared, told, deadline, read).await;
            self.session.give_buffers(self.shared.spares.take());
            if let Ok(n) = result {
                self.session.input_space()[..n].copy_from_slice(&first[..n]);
            }
            result
        } else if let (direct @ 1.., Some(writer)) =
            (self.session.upload_direct(), self.writer.as_mut())
        {
            let space = writer.space(direct);
            let read = self.stream.read(&mut *space);
            let result = wait(&self.shared, told, deadline, read).await;
            if let Ok(n @ 1..) = result {
                self.session.received_upload(&space[..n]);
                if let Err(code) = writer.advance(n).await {
                    self.session.upload_failed(code);
                }
                return Ok(());
            }
            result
        } else {
            let space = self.session.input_space();
            let max = if self.writer.is_some() {
                HEAD_READ.min(space.len())
            } else {
                space.len()
            };
            let read = self.stream.read(&mut space[..max]);
            wait(&self.shared, told, deadline, read).await
        };
        match result {
            Ok(0) => self.session.eof(),
            Ok(n) => self.session.received(n),
            Err(Wake::Deadline) => self.session.timed_out(Instant::now()),
            Err(Wake::Shutdown) => {}
            Err(Wake::Io(e)) => return Err(e),
        }
        Ok(())
    }

    /// TLS-6 at the end of a session that ended without a closing error (after `bye`, or at
    /// the client's EOF; a closing error's drain has sent it): `close_notify`, the records
    /// still unsent, and the half-close, within a stall timeout.
    async fn close_notify(&mut self) {
        let until = Instant::now() + self.shared.session.stall;
        let close = self.stream.close();
        if let Err(Wake::Io(e)) = wait(&self.shared, true, until, close).await {
            tracing::debug!(error = %e, "close_notify not delivered");
        }
    }

    /// CLOSE-6 (and TLS-6: with TLS, the close sends `close_notify`): shut down the sending
    /// side, then read and discard input until `until` or EOF,
    /// with a small buffer of its own.
    async fn drain(&mut self, until: Instant) {
        self.shared.spares.give(self.session.take_buffers());
        let close = self.stream.close();
        if wait(&self.shared, true, until, close).await.is_err() {
            return;
        }
        let mut sink = [0u8; IDLE_READ];
        loop {
            let read = self.stream.read(&mut sink);
            match wait(&self.shared, true, until, read).await {
                Ok(1..) => {}
                _ => return,
            }
        }
    }
}

/// Runs one socket operation until it completes, `deadline` passes, or — unless the session
/// was already `told` — the server's shutdown is triggered. The operation is polled once
/// first: when it can complete at once, no timer or listener is made. Once the deadline has
/// passed it wins: the operation is not tried again then (smol's and async-std's sockets
/// retry the system call when polled, and a write that found a little room the kernel had
/// freed meanwhile restarted the stall clock, so a stuck reader was dropped only after twice
/// the stall timeout, #14).
async fn wait<R: Runtime, T>(
    shared: &Shared<R>,
    told: bool,
    deadline: Instant,
    op: impl Future<Output = io::Result<T>>,
) -> Result<T, Wake> {
    let mut op = std::pin::pin!(op);
    if let Some(r) = futures_lite::future::poll_once(op.as_mut()).await {
        return r.map_err(Wake::Io);
    }
    let io = async { op.await.map_err(Wake::Io) };
    let shutdown = async {
        if told {
            std::future::pending::<()>().await;
        }
        shared.shutdown.triggered().await;
        Err(Wake::Shutdown)
    };
    let timer = async {
        shared.rt.sleep_until(deadline).await;
        Err(Wake::Deadline)
    };
    timer.or(shutdown).or(io).await
}
