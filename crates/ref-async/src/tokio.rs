//! The tokio driver: [`Tokio`], plus blocking entry points for sync callers.
//!
//! Sockets are tokio's, seen through `tokio_util::compat` as `futures-io` streams (whose
//! `close` is tokio's `shutdown`, a half-close). Blocking work goes to
//! [`tokio::runtime::Handle::spawn_blocking`].
//!
//! ```no_run
//! use std::net::TcpListener;
//! use ferry_async::server::{Config, Shutdown};
//!
//! let listener = TcpListener::bind("127.0.0.1:7450")?;
//! // Builds a multi-thread tokio runtime, serves until `shutdown.trigger()`, then returns.
//! ferry_async::tokio::serve(listener, Config::default(), Shutdown::new())?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt as _};

use crate::runtime::{BlockOn, Runtime, catch};
use crate::server::{Config, Shutdown};

/// How long [`serve`] lets blocking tasks (an fsync of a large upload) finish after the
/// server stopped, before it drops the runtime.
const BLOCKING_GRACE: Duration = Duration::from_secs(10);

/// The tokio runtime as a [`Runtime`]: a handle to a tokio runtime (and, when made with
/// [`Tokio::new_runtime`], ownership of it).
#[derive(Clone)]
pub struct Tokio {
    handle: Handle,
    owned: Option<Arc<tokio::runtime::Runtime>>,
}

impl std::fmt::Debug for Tokio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokio")
            .field("owned", &self.owned.is_some())
            .finish_non_exhaustive()
    }
}

impl Tokio {
    /// The runtime of the calling task. Panics outside a tokio runtime.
    pub fn current() -> Self {
        Self::from_handle(Handle::current())
    }

    /// The runtime of the calling task, if there is one.
    pub fn try_current() -> Option<Self> {
        Handle::try_current().ok().map(Self::from_handle)
    }

    /// A driver for the runtime behind `handle`.
    pub fn from_handle(handle: Handle) -> Self {
        Self {
            handle,
            owned: None,
        }
    }

    /// Builds a multi-thread runtime (one worker per core, I/O and timers enabled) owned by
    /// the returned value and its clones.
    pub fn new_runtime() -> io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("ferry-tokio")
            .build()?;
        Ok(Self {
            handle: rt.handle().clone(),
            owned: Some(Arc::new(rt)),
        })
    }

    /// Builds a current-thread runtime (I/O and timers enabled) owned by the returned value:
    /// enough for a [`BlockingClient`], which drives it in its calls.
    pub fn new_current_thread() -> io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Self {
            handle: rt.handle().clone(),
            owned: Some(Arc::new(rt)),
        })
    }

    /// The tokio handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// A tokio TCP stream as a `futures-io` stream.
pub type TcpStream = Compat<tokio::net::TcpStream>;

impl Runtime for Tokio {
    type TcpStream = TcpStream;
    type TcpListener = tokio::net::TcpListener;

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(self.handle.spawn(future));
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
        // The timer binds to the runtime it is made in, whoever polls it later.
        let _entered = self.handle.enter();
        tokio::time::sleep_until(deadline.into())
    }

    fn unblock<T, F>(&self, f: F) -> impl Future<Output = io::Result<T>> + Send + 'static
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let task = self.handle.spawn_blocking(move || catch(f));
        async move { task.await.map_err(io::Error::other)? }
    }

    fn listener(&self, listener: std::net::TcpListener) -> io::Result<Self::TcpListener> {
        let _entered = self.handle.enter();
        listener.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(listener)
    }

    // An `async fn` would borrow `self`; the trait promises a future that does not.
    #[allow(clippy::manual_async_fn)]
    fn accept<'a>(
        &self,
        listener: &'a Self::TcpListener,
    ) -> impl Future<Output = io::Result<(Self::TcpStream, SocketAddr)>> + Send + 'a {
        async move {
            let (stream, peer) = listener.accept().await?;
            stream.set_nodelay(true)?;
            Ok((stream.compat(), peer))
        }
    }

    fn connect(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::TcpStream>> + Send + 'static {
        // Spawned, so that the socket registers with this runtime whoever polls the future.
        let task = self.handle.spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok::<_, io::Error>(stream.compat())
        });
        async move { task.await.map_err(io::Error::other)? }
    }

    fn adopt(&self, stream: std::net::TcpStream) -> io::Result<Self::TcpStream> {
        // The socket registers with this runtime's reactor.
        let _entered = self.handle.enter();
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        Ok(tokio::net::TcpStream::from_std(stream)?.compat())
    }

    fn peer_addr(stream: &Self::TcpStream) -> io::Result<SocketAddr> {
        stream.get_ref().peer_addr()
    }
}

impl BlockOn for Tokio {
    /// With a runtime from [`Tokio::new_runtime`], [`tokio::runtime::Runtime::block_on`];
    /// otherwise [`Handle::block_on`], which needs a multi-thread runtime to drive I/O.
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        match &self.owned {
            Some(rt) => rt.block_on(future),
            None => self.handle.block_on(future),
        }
    }
}

/// Serves like [`crate::server::run`] on a new multi-thread tokio runtime, blocking the
/// calling thread until the server has stopped and its runtime is shut down.
pub fn serve(
    listener: std::net::TcpListener,
    config: Config,
    shutdown: Shutdown,
) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ferry-tokio")
        .build()?;
    let driver = Tokio::from_handle(rt.handle().clone());
    let result = rt.block_on(crate::server::run(driver, listener, config, shutdown));
    rt.shutdown_timeout(BLOCKING_GRACE);
    result
}

/// The async client on tokio.
pub type Client = crate::client::Client<Tokio>;

/// The blocking client on a tokio runtime of its own.
pub type BlockingClient = crate::blocking::BlockingClient<Tokio>;

/// Connects a [`BlockingClient`] on a new current-thread tokio runtime.
pub fn connect_blocking(
    addr: impl std::net::ToSocketAddrs,
    options: &crate::client::ClientOptions,
) -> Result<BlockingClient, crate::client::ClientError> {
    let rt = Tokio::new_current_thread().map_err(crate::client::ClientError::Io)?;
    BlockingClient::connect_with(rt, addr, options)
}
