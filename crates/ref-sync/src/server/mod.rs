//! The ferry/1 reference server on std threads: one thread per connection, up to a cap.
//!
//! ```no_run
//! use std::net::TcpListener;
//! use ferry_sync::server::{run, Config, Shutdown};
//!
//! let listener = TcpListener::bind("127.0.0.1:7450")?;
//! let shutdown = Shutdown::new();
//! // Another thread (a signal handler thread, a test) calls `shutdown.trigger()`.
//! run(listener, Config::default(), shutdown)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The protocol logic of a session is `ferry_proto::server`'s state machine, which every
//! ferry server shares; `session` drives it over a blocking socket (timeouts and shutdown
//! checks in short slices), and every storage rule is in `ferry-store`.

mod conn;
mod session;

use std::collections::HashMap;
use std::io::{self, Write as _};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown as NetShutdown, SocketAddr, TcpListener, TcpStream,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ferry_proto::server::SessionConfig;
use ferry_store::{AddressSlot, AddressSlots, Root};
use ferry_wire::{Code, ErrorReply, Reply};

/// Stack size of a session thread. A session keeps its buffers on the heap; its deepest stack
/// is the request decoder plus a `tracing` event, far below this.
const SESSION_STACK: usize = 256 * 1024;

/// Most refusals under TLS in progress at once (each on a thread of its own); beyond them a
/// connection that must be refused is closed without a word. See [`refuse`].
const MAX_TLS_REFUSALS: usize = 8;

/// How long a refusal under TLS may take, handshake included (the stall timeout if shorter).
const TLS_REFUSAL_LIMIT: Duration = Duration::from_secs(2);

/// Extra time after the shutdown deadline for sessions to notice it themselves (they look in
/// slices of [`conn::SLICE`]) before their sockets are shut down from outside.
const FORCE_MARGIN: Duration = Duration::from_secs(1);

/// Server configuration (shared with every ferry server implementation).
pub use ferry_store::ServerConfig as Config;

/// Asks a running server to stop. Cloneable; every clone triggers the same shutdown.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<ShutdownInner>,
}

#[derive(Debug, Default)]
struct ShutdownInner {
    flag: AtomicBool,
    at: OnceLock<Instant>,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Shutdown {
    /// A shutdown that has not been triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the shutdown: the server stops accepting connections, idle sessions get
    /// `err 422 shutting-down`, requests in flight get [`Config::shutdown_grace`] to finish.
    /// Idempotent; the first call's time counts.
    pub fn trigger(&self) {
        self.inner.at.get_or_init(Instant::now);
        self.inner.flag.store(true, Ordering::SeqCst);
        let _guard = lock(&self.inner.lock);
        self.inner.cv.notify_all();
    }

    /// Whether [`Shutdown::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    fn triggered_at(&self) -> Option<Instant> {
        if self.is_triggered() {
            self.inner.at.get().copied()
        } else {
            None
        }
    }

    /// Blocks until the shutdown is triggered (true) or `stop` is set and
    /// [`Shutdown::wake`] called (false).
    fn wait(&self, stop: &AtomicBool) -> bool {
        let mut guard = lock(&self.inner.lock);
        loop {
            if self.is_triggered() {
                return true;
            }
            if stop.load(Ordering::SeqCst) {
                return false;
            }
            guard = self
                .inner
                .cv
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Blocks until `stop` is set and [`Shutdown::wake`] called, or `timeout` passed.
    fn sleep_unless(&self, stop: &AtomicBool, timeout: Duration) {
        let guard = lock(&self.inner.lock);
        let _unused = self
            .inner
            .cv
            .wait_timeout_while(guard, timeout, |_| !stop.load(Ordering::SeqCst))
            .unwrap_or_else(PoisonError::into_inner);
    }

    fn wake(&self) {
        let _guard = lock(&self.inner.lock);
        self.inner.cv.notify_all();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What every session shares.
struct Shared {
    /// The served folder; `None` with authentication, where each user has its own.
    root: Option<Root>,
    /// The users and their folders (spec section 16); `None`: everyone is served `root`.
    auth: Option<ferry_store::ServerAuth>,
    /// The limits, timeouts and greeting of each session.
    session: SessionConfig,
    max_connections: usize,
    /// The sessions of each source address (CONN-9).
    per_address: Arc<AddressSlots>,
    grace: Duration,
    shutdown: Shutdown,
    sessions: Mutex<Sessions>,
    sessions_cv: Condvar,
    /// ferry/1 over TLS (spec section 15); `None`: plain.
    tls: Option<ferry_tls::ServerTls>,
    /// Refusals under TLS in progress ([`MAX_TLS_REFUSALS`]).
    refusing: AtomicUsize,
    /// Where each session's operations are recorded (`ServerConfig::audit`).
    audit: Option<ferry_proto::audit::AuditSink>,
}

#[derive(Default)]
struct Sessions {
    active: usize,
    streams: HashMap<u64, Arc<TcpStream>>,
}

impl Shared {
    /// The folder `session` is served (AUTH-18): `root`, or its user's.
    fn root_for(&self, session: &ferry_proto::server::ServerSession) -> Option<Root> {
        match &self.auth {
            None => self.root.clone(),
            Some(auth) => auth.root(session.grant()),
        }
    }

    /// When requests in flight must stop (CLOSE-9), once a shutdown was triggered.
    fn hard_deadline(&self) -> Option<Instant> {
        self.shutdown.triggered_at().map(|t| t + self.grace)
    }
}

/// Serves `config.root` on `listener` until `shutdown` is triggered; then stops accepting,
/// lets requests in flight finish for up to [`Config::shutdown_grace`], sends
/// `err 422 shutting-down` to the other sessions, and returns once every session thread has
/// ended. Fails only when the served folder cannot be opened (or is locked by another server)
/// or the listener is unusable.
pub fn run(listener: TcpListener, config: Config, shutdown: Shutdown) -> io::Result<()> {
    // With authentication every session is served a user's folder (ServerConfig::auth).
    let root = match &config.auth {
        None => Some(config.open_root()?),
        Some(_) => None,
    };
    listener.set_nonblocking(false)?;
    let local = listener.local_addr()?;
    let shared = Arc::new(Shared {
        root,
        auth: config.auth.clone(),
        // Uploads are read into the session's input buffer and written from there.
        session: config.session(ferry_proto::server::UPLOAD_INPUT),
        max_connections: config.max_connections,
        per_address: AddressSlots::new(config.max_per_address),
        grace: config.grace(),
        shutdown: shutdown.clone(),
        sessions: Mutex::new(Sessions::default()),
        sessions_cv: Condvar::new(),
        tls: config.tls.clone(),
        refusing: AtomicUsize::new(0),
        audit: config.audit.clone(),
    });
    config.log_serving(local);

    // The accept below blocks; on shutdown this thread wakes it with a connection of its own.
    let stop_waker = Arc::new(AtomicBool::new(false));
    let waker = {
        let shutdown = shutdown.clone();
        let stop = Arc::clone(&stop_waker);
        thread::Builder::new()
            .name("ferry-accept-waker".into())
            .stack_size(SESSION_STACK)
            .spawn(move || wake_accept(&shutdown, &stop, wake_addr(local)))?
    };

    let mut handles: Vec<JoinHandle<()>> = Vec::new();
    let mut next_id: u64 = 0;
    loop {
        let accepted = listener.accept();
        if shutdown.is_triggered() {
            if let Ok((stream, peer)) = accepted
                && let Some(h) = refuse(&shared, Arc::new(stream), peer, Code::SHUTTING_DOWN)
            {
                handles.push(h);
            }
            break;
        }
        match accepted {
            Ok((stream, peer)) => {
                next_id += 1;
                if let Some(h) = start_session(&shared, stream, peer, next_id) {
                    handles.push(h);
                }
            }
            Err(e) => {
                if let Some(pause) = Config::accept_failed(&e) {
                    thread::sleep(pause);
                }
            }
        }
        reap(&mut handles);
    }
    drop(listener);
    stop_waker.store(true, Ordering::SeqCst);
    shutdown.wake();
    if waker.join().is_err() {
        tracing::error!("the accept waker panicked");
    }

    tracing::info!("shutting down: waiting for sessions");
    // A session writing a chunk at the deadline may finish it while its client reads, up to
    // a stall timeout (CLOSE-9, DATA-11); the others notice the deadline within a slice.
    let force_at =
        shared.hard_deadline().unwrap_or_else(Instant::now) + shared.session.stall + FORCE_MARGIN;
    let mut sessions = lock(&shared.sessions);
    while sessions.active > 0 {
        let now = Instant::now();
        if now >= force_at {
            tracing::warn!(
                sessions = sessions.active,
                "shutdown deadline passed: closing sessions"
            );
            for stream in sessions.streams.values() {
                let _ = stream.shutdown(NetShutdown::Both);
            }
            break;
        }
        sessions = shared
            .sessions_cv
            .wait_timeout(sessions, force_at - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    drop(sessions);
    for h in handles {
        if h.join().is_err() {
            tracing::error!("a session thread panicked");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Starts a session thread, or refuses the connection with 420 at the cap or at its
/// address's cap (CONN-3, CONN-6, CONN-9). The handle is the session's thread or, under TLS,
/// the refusal's.
fn start_session(
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
) -> Option<JoinHandle<()>> {
    let stream = Arc::new(stream);
    let slot = {
        let mut sessions = lock(&shared.sessions);
        if sessions.active >= shared.max_connections {
            drop(sessions);
            tracing::info!(%peer, "refused: busy");
            return refuse(shared, stream, peer, Code::BUSY);
        }
        let Some(slot) = shared.per_address.take(peer.ip()) else {
            drop(sessions);
            tracing::info!(%peer, "refused: busy (this address holds its share of sessions)");
            return refuse(shared, stream, peer, Code::BUSY);
        };
        sessions.active += 1;
        sessions.streams.insert(id, Arc::clone(&stream));
        slot
    };
    let guard = SessionGuard {
        shared: Arc::clone(shared),
        id,
        _slot: slot,
    };
    let spawned = thread::Builder::new()
        .name(format!("ferry-session-{id}"))
        .stack_size(SESSION_STACK)
        .spawn({
            let stream = Arc::clone(&stream);
            move || {
                let guard = guard;
                session::serve(&guard.shared, &stream, peer, id);
            }
        });
    match spawned {
        Ok(h) => Some(h),
        Err(e) => {
            // The closure (and with it the guard) was dropped: the slot is free again.
            tracing::warn!(%peer, error = %e, "cannot start a session thread");
            refuse(shared, stream, peer, Code::BUSY)
        }
    }
}

/// Frees a session's slots when its thread ends, however it ends.
struct SessionGuard {
    shared: Arc<Shared>,
    id: u64,
    _slot: AddressSlot,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let mut sessions = lock(&self.shared.sessions);
        sessions.active = sessions.active.saturating_sub(1);
        sessions.streams.remove(&self.id);
        drop(sessions);
        self.shared.sessions_cv.notify_all();
    }
}

/// Sends `err CODE NAME` as the first line without blocking the accept loop, then closes.
///
/// Plain ferry/1: one non-blocking write (the line fits any fresh socket buffer) and a
/// shutdown, on the accept loop's thread.
///
/// Under TLS the line must go inside TLS (TLS-4), after a handshake that takes round trips
/// and a signature, which the accept loop must not wait for. A refusal then runs on a thread
/// of its own, at most [`MAX_TLS_REFUSALS`] at once, each bounded by [`TLS_REFUSAL_LIMIT`]
/// (the stall timeout if shorter) from handshake to close, so refusals cost a few threads
/// and a few seconds at most however many connections come. When that many are already in
/// progress (a flood, a server far over its cap), the connection is closed without a word:
/// a client sees the connection end during the handshake, as it would at a server that
/// cannot take it, and the accept loop and the memory stay free. Returns the refusal's
/// thread, for the caller to join.
fn refuse(
    shared: &Arc<Shared>,
    stream: Arc<TcpStream>,
    peer: SocketAddr,
    code: Code,
) -> Option<JoinHandle<()>> {
    let line = Reply::Err(ErrorReply::new(code, code.name().unwrap_or("error"))).to_bytes();
    let Some(tls) = &shared.tls else {
        let _ = stream.set_nonblocking(true);
        let _ = (&*stream).write(&line);
        let _ = stream.shutdown(NetShutdown::Write);
        return None;
    };
    if shared.refusing.fetch_add(1, Ordering::SeqCst) >= MAX_TLS_REFUSALS {
        shared.refusing.fetch_sub(1, Ordering::SeqCst);
        tracing::info!(%peer, "closed: too many refusals under TLS in progress");
        let _ = stream.shutdown(NetShutdown::Both);
        return None;
    }
    let config = tls.config();
    let spawned = thread::Builder::new()
        .name("ferry-refuse".into())
        .stack_size(SESSION_STACK)
        .spawn({
            let guard = RefusalGuard(Arc::clone(shared));
            move || {
                let guard = guard;
                let limit = TLS_REFUSAL_LIMIT.min(guard.0.session.stall);
                refuse_tls(&guard.0, &stream, config, &line, Instant::now() + limit);
            }
        });
    match spawned {
        Ok(h) => Some(h),
        Err(e) => {
            // The closure was dropped (the guard and the stream with it): the slot is free
            // again and the connection closed.
            tracing::warn!(%peer, error = %e, "cannot start a refusal thread");
            None
        }
    }
}

/// Frees a refusal's place among the [`MAX_TLS_REFUSALS`] when it ends, however it ends.
struct RefusalGuard(Arc<Shared>);

impl Drop for RefusalGuard {
    fn drop(&mut self) {
        self.0.refusing.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A refusal inside TLS: handshake, the line, `close_notify`, then what the client still
/// sends is read and dropped until it closes, all by `deadline`.
fn refuse_tls(
    shared: &Shared,
    stream: &TcpStream,
    config: Arc<ferry_tls::rustls::ServerConfig>,
    line: &[u8],
    deadline: Instant,
) {
    if stream
        .set_read_timeout(Some(conn::SLICE))
        .and_then(|()| stream.set_write_timeout(Some(conn::SLICE)))
        .is_err()
    {
        return;
    }
    let Ok(mut tls) = conn::Tls::new(stream, config) else {
        return;
    };
    if tls.handshake(shared, true, deadline).is_err()
        || tls.write_all(shared, line, deadline).is_err()
    {
        tracing::debug!("a refusal under TLS did not reach the client");
        return;
    }
    tls.close_notify(shared, deadline);
    let _ = stream.shutdown(NetShutdown::Write);
    let mut sink = [0; 4096];
    while let Ok(n) = conn::read_plain(shared, true, stream, &mut sink, deadline) {
        if n == 0 {
            break;
        }
    }
}

/// Joins the session threads that have ended.
fn reap(handles: &mut Vec<JoinHandle<()>>) {
    let mut i = 0;
    while i < handles.len() {
        if handles[i].is_finished() {
            if handles.swap_remove(i).join().is_err() {
                tracing::error!("a session thread panicked");
            }
        } else {
            i += 1;
        }
    }
}

/// Where to connect to wake a blocked `accept` on `local`.
fn wake_addr(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

fn wake_accept(shutdown: &Shutdown, stop: &AtomicBool, addr: SocketAddr) {
    if !shutdown.wait(stop) {
        return;
    }
    // Retry until the accept loop has noticed (it may be busy starting a session).
    while !stop.load(Ordering::SeqCst) {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot wake the accept loop"),
        }
        shutdown.sleep_unless(stop, Duration::from_millis(250));
    }
}
