//! The ferry/1 reference server over `futures-io`: one task per connection, up to a cap.
//!
//! ```no_run
//! use std::net::TcpListener;
//! use ferry_async::server::{Config, Shutdown};
//!
//! let listener = TcpListener::bind("127.0.0.1:7450")?;
//! let shutdown = Shutdown::new();
//! // Another thread (a signal handler thread, a test) calls `shutdown.trigger()`.
//! ferry_async::tokio::serve(listener, Config::default(), shutdown)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! [`run`] is the runtime-neutral entry point (an `async fn` generic over [`Runtime`]); the
//! drivers' `serve` functions build a runtime and block on it. The protocol logic of one
//! session is in `session`, its timed socket I/O (idle and stall timeouts, shutdown) in
//! `conn`, and every storage rule in `ferry-store`, whose calls run on the runtime's
//! blocking pool.

mod files;
mod session;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use event_listener::Event;
use ferry_proto::server::SessionConfig;
use ferry_store::{AddressSlots, Root};
use ferry_wire::{Code, ErrorReply, Reply};
use futures_lite::{AsyncWriteExt as _, FutureExt as _};
use futures_rustls::TlsAcceptor;
use tracing::Instrument as _;

use crate::runtime::{Runtime, Timed, deadline, timeout};
use crate::tls::MaybeTls;

/// Extra time after the latest end of a session at a shutdown ([`Shared::last_deadline`]:
/// every session ends by itself before) after which session tasks are dropped from outside
/// (which closes their sockets and removes their staging files): a safety net only.
const FORCE_MARGIN: Duration = Duration::from_secs(1);

/// How long the refusal of a connection (`err 420 busy`, `err 422`) may take.
const REFUSE_TIME: Duration = Duration::from_secs(1);

/// How long the refusal of a TLS connection may take, handshake included (and at most the
/// stall timeout): a handshake needs the client's round trips.
const TLS_REFUSE_TIME: Duration = Duration::from_secs(5);

/// Most refusals in progress at once. A refusal beyond them is not written: the connection
/// is closed at once (the client sees the connection end without a greeting). With TLS a
/// refusal costs a handshake (CPU, and a task that waits for the client for up to
/// [`TLS_REFUSE_TIME`]), so that a flood of connections at the cap cannot make tasks and
/// handshakes pile up without bound.
const MAX_REFUSALS: usize = 64;

/// Server configuration (shared with every ferry server implementation).
pub use ferry_store::ServerConfig as Config;

/// Asks a running server to stop. Cloneable; every clone triggers the same shutdown. It may
/// be triggered from any thread (a signal handler thread, a test), with or without a runtime.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<Flag>,
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
        self.inner.set();
    }

    /// Whether [`Shutdown::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        self.inner.is_set()
    }

    /// Completes once [`Shutdown::trigger`] has been called (at once if it was).
    pub async fn triggered(&self) {
        self.inner.wait().await;
    }

    fn triggered_at(&self) -> Option<Instant> {
        self.inner.set_at()
    }
}

/// A one-way flag that tasks can wait for.
#[derive(Debug, Default)]
struct Flag {
    set: AtomicBool,
    at: OnceLock<Instant>,
    event: Event,
}

impl Flag {
    fn set(&self) {
        self.at.get_or_init(Instant::now);
        self.set.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    fn set_at(&self) -> Option<Instant> {
        if self.is_set() {
            self.at.get().copied()
        } else {
            None
        }
    }

    async fn wait(&self) {
        loop {
            if self.is_set() {
                return;
            }
            let listener = self.event.listen();
            if self.is_set() {
                return;
            }
            listener.await;
        }
    }
}

/// What every session shares.
pub(crate) struct Shared<R: Runtime> {
    rt: R,
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
    /// Sessions in progress (counted against `max_connections`).
    sessions: AtomicUsize,
    /// Tasks in progress: sessions and refusals. `run` returns when it is 0.
    tasks: AtomicUsize,
    tasks_changed: Event,
    /// Set when sessions overran the shutdown deadline: their tasks drop them.
    force: Flag,
    /// Spare session buffers: an idle session holds none.
    spares: session::Spares,
    /// ferry/1 over TLS (spec section 15): every connection, refusals included, is a TLS
    /// session from its first octet; `None`: plain ferry/1.
    tls: Option<TlsAcceptor>,
    /// Refusals in progress (at most [`MAX_REFUSALS`]).
    refusals: AtomicUsize,
    /// Where each session's operations are recorded (`ServerConfig::audit`).
    audit: Option<ferry_proto::audit::AuditSink>,
}

impl<R: Runtime> Shared<R> {
    /// The folder `session` is served (AUTH-18), looked up at each storage action: `root`, or
    /// its user's; `None` for a user
    /// removed from the users file since it authenticated (its requests get 431).
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

    /// The latest a session may still be sending: a chunk of a get payload that had begun at
    /// the shutdown deadline is completed (DATA-11) before the payload ends with `abort 422`
    /// (CLOSE-9, CLOSE-10), for at most a stall timeout after the deadline.
    fn last_deadline(&self) -> Option<Instant> {
        self.hard_deadline().map(|d| d + self.session.stall)
    }

    async fn all_tasks_done(&self) {
        loop {
            if self.tasks.load(Ordering::SeqCst) == 0 {
                return;
            }
            let listener = self.tasks_changed.listen();
            if self.tasks.load(Ordering::SeqCst) == 0 {
                return;
            }
            listener.await;
        }
    }
}

/// Counts a task (and a session's slot, or a refusal) until it ends, however it ends.
struct TaskGuard<R: Runtime> {
    shared: Arc<Shared<R>>,
    session: bool,
}

impl<R: Runtime> TaskGuard<R> {
    /// `session`: a session, else a refusal.
    fn new(shared: &Arc<Shared<R>>, session: bool) -> Self {
        shared.tasks.fetch_add(1, Ordering::SeqCst);
        let count = if session {
            &shared.sessions
        } else {
            &shared.refusals
        };
        count.fetch_add(1, Ordering::SeqCst);
        Self {
            shared: Arc::clone(shared),
            session,
        }
    }
}

impl<R: Runtime> Drop for TaskGuard<R> {
    fn drop(&mut self) {
        let count = if self.session {
            &self.shared.sessions
        } else {
            &self.shared.refusals
        };
        count.fetch_sub(1, Ordering::SeqCst);
        self.shared.tasks.fetch_sub(1, Ordering::SeqCst);
        self.shared.tasks_changed.notify(usize::MAX);
    }
}

/// Serves `config.root` on `listener` until `shutdown` is triggered; then stops accepting,
/// lets requests in flight finish for up to [`Config::shutdown_grace`], sends
/// `err 422 shutting-down` to the other sessions, and returns once every session task has
/// ended. Fails only when the served folder cannot be opened (or is locked by another server)
/// or the listener is unusable.
///
/// Must be polled on `rt` (the drivers' `serve` functions do that).
pub async fn run<R: Runtime>(
    rt: R,
    listener: std::net::TcpListener,
    config: Config,
    shutdown: Shutdown,
) -> io::Result<()> {
    // With authentication every session is served a user's folder (ServerConfig::auth).
    let root = match &config.auth {
        None => {
            let config = config.clone();
            Some(rt.unblock(move || config.open_root()).await??)
        }
        Some(_) => None,
    };
    let local = listener.local_addr()?;
    let listener = rt.listener(listener)?;
    let shared = Arc::new(Shared {
        rt: rt.clone(),
        root,
        auth: config.auth.clone(),
        // Chunk data is read straight into the upload's buffer (`session`).
        session: config.session(ferry_proto::server::INPUT_SMALL),
        max_connections: config.max_connections,
        per_address: AddressSlots::new(config.max_per_address),
        grace: config.grace(),
        shutdown: shutdown.clone(),
        sessions: AtomicUsize::new(0),
        tasks: AtomicUsize::new(0),
        tasks_changed: Event::new(),
        force: Flag::default(),
        spares: session::Spares::default(),
        tls: config.tls.as_ref().map(|t| TlsAcceptor::from(t.config())),
        refusals: AtomicUsize::new(0),
        audit: config.audit.clone(),
    });
    config.log_serving(local);

    let mut next_id: u64 = 0;
    loop {
        let accepted = async { Some(rt.accept(&listener).await) }
            .or(async {
                shutdown.triggered().await;
                None
            })
            .await;
        let Some(accepted) = accepted else { break };
        if shutdown.is_triggered() {
            if let Ok((stream, _)) = accepted {
                refuse(&shared, stream, Code::SHUTTING_DOWN);
            }
            break;
        }
        match accepted {
            Ok((stream, peer)) => {
                next_id += 1;
                start_session(&shared, stream, peer, next_id);
            }
            Err(e) => {
                if let Some(pause) = Config::accept_failed(&e) {
                    rt.sleep_until(Instant::now() + pause).await;
                }
            }
        }
    }
    drop(listener);

    tracing::info!("shutting down: waiting for sessions");
    let force_at = shared.last_deadline().unwrap_or_else(Instant::now) + FORCE_MARGIN;
    if let Timed::Expired = deadline(&rt, force_at, shared.all_tasks_done()).await {
        tracing::warn!(
            sessions = shared.sessions.load(Ordering::SeqCst),
            "shutdown deadline passed: closing sessions"
        );
        shared.force.set();
        shared.all_tasks_done().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Starts a session task, or refuses the connection with 420 at the cap or at its address's
/// cap (CONN-3, CONN-6, CONN-9).
fn start_session<R: Runtime>(
    shared: &Arc<Shared<R>>,
    stream: R::TcpStream,
    peer: SocketAddr,
    id: u64,
) {
    // Only this (accept) loop adds sessions, so the check cannot race with another add.
    if shared.sessions.load(Ordering::SeqCst) >= shared.max_connections {
        tracing::info!(%peer, "refused: busy");
        refuse(shared, stream, Code::BUSY);
        return;
    }
    let Some(slot) = shared.per_address.take(peer.ip()) else {
        tracing::info!(%peer, "refused: busy (this address holds its share of sessions)");
        refuse(shared, stream, Code::BUSY);
        return;
    };
    let guard = TaskGuard::new(shared, true);
    let span = tracing::info_span!("session", id, %peer);
    let task = {
        let shared = Arc::clone(shared);
        async move {
            let _guard = guard;
            let _slot = slot;
            let session = session::serve(Arc::clone(&shared), stream, peer);
            let forced = async {
                shared.force.wait().await;
                tracing::warn!("session dropped after the shutdown deadline");
            };
            session.or(forced).await;
        }
    };
    spawn_guarded(&shared.rt, task.instrument(span), "a session task panicked");
}

/// Spawns `task`; a panic in it is logged, never propagated into the runtime.
fn spawn_guarded<R: Runtime>(
    rt: &R,
    task: impl Future<Output = ()> + Send + 'static,
    what: &'static str,
) {
    rt.spawn(async move {
        if std::panic::AssertUnwindSafe(task)
            .catch_unwind()
            .await
            .is_err()
        {
            tracing::error!("{what}");
        }
    });
}

/// Sends `err CODE NAME` as the first line, closes the sending direction and drops the
/// connection, in a task of its own so that the accept loop never waits for it.
///
/// With TLS the refusal is inside TLS like everything else (TLS-4): the task makes the
/// handshake, writes the line and sends `close_notify` before the half-close. Such a task
/// waits for the client, so it is bounded twice: in time (the whole refusal within
/// [`TLS_REFUSE_TIME`] and the stall timeout; plain: [`REFUSE_TIME`]), and in number (at most
/// [`MAX_REFUSALS`] at once; beyond them a connection is closed without a word, which a
/// client takes as a refusal too). Refusals also end at the forced end of a shutdown.
fn refuse<R: Runtime>(shared: &Arc<Shared<R>>, stream: R::TcpStream, code: Code) {
    // Only this (accept) loop adds refusals, so the check cannot race with another add.
    if shared.refusals.load(Ordering::SeqCst) >= MAX_REFUSALS {
        tracing::info!("too many refusals in progress: connection closed without a word");
        return;
    }
    let guard = TaskGuard::new(shared, false);
    let line = Reply::Err(ErrorReply::new(code, code.name().unwrap_or("error"))).to_bytes();
    let limit = match shared.tls {
        Some(_) => TLS_REFUSE_TIME.min(shared.session.stall),
        None => REFUSE_TIME,
    };
    let task = {
        let shared = Arc::clone(shared);
        async move {
            let _guard = guard;
            let refusal = async {
                let mut stream = match &shared.tls {
                    Some(acceptor) => MaybeTls::accept(acceptor, stream).await?,
                    None => MaybeTls::Plain(stream),
                };
                stream.write_all(&line).await?;
                stream.close().await
            };
            let bounded = async {
                if let Timed::Done(Err(e)) = timeout(&shared.rt, Some(limit), refusal).await {
                    tracing::debug!(error = %e, "refusal not delivered");
                }
            };
            bounded.or(shared.force.wait()).await;
        }
    };
    spawn_guarded(&shared.rt, task, "a refusal task panicked");
}
