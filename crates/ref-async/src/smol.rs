//! The smol driver: [`Smol`], built from smol's parts — an [`async_executor::Executor`] of
//! ferry's own (not smol's global one, so nothing outlives [`serve`]), async-io's reactor and
//! timers, async-net's sockets and the `blocking` thread pool.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use async_executor::Executor;

use crate::runtime::{BlockOn, Runtime, catch};
use crate::server::{Config, Shutdown};

/// smol as a [`Runtime`]: an executor that [`Smol::block_on`] (and [`serve`]'s threads) run.
///
/// Tasks spawned on it make progress only while some thread runs the executor: inside
/// [`BlockOn::block_on`] or [`serve`].
#[derive(Clone, Default)]
pub struct Smol {
    executor: Arc<Executor<'static>>,
}

impl std::fmt::Debug for Smol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smol").finish_non_exhaustive()
    }
}

impl Smol {
    /// A driver with a new executor.
    pub fn new() -> Self {
        Self::default()
    }

    /// A driver that spawns onto `executor`.
    pub fn with_executor(executor: Arc<Executor<'static>>) -> Self {
        Self { executor }
    }

    /// The executor.
    pub fn executor(&self) -> &Arc<Executor<'static>> {
        &self.executor
    }
}

/// An async-net TCP stream (its `close` is a half-close).
pub type TcpStream = async_net::TcpStream;

impl Runtime for Smol {
    type TcpStream = TcpStream;
    type TcpListener = async_net::TcpListener;

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.executor.spawn(future).detach();
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
        let timer = async_io::Timer::at(deadline);
        async move {
            timer.await;
        }
    }

    fn unblock<T, F>(&self, f: F) -> impl Future<Output = io::Result<T>> + Send + 'static
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        blocking::unblock(move || catch(f))
    }

    fn listener(&self, listener: std::net::TcpListener) -> io::Result<Self::TcpListener> {
        async_net::TcpListener::try_from(listener)
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
            Ok((stream, peer))
        }
    }

    // An `async fn` would borrow `self`; the trait promises a future that does not.
    #[allow(clippy::manual_async_fn)]
    fn connect(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::TcpStream>> + Send + 'static {
        async move {
            let stream = async_net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(stream)
        }
    }

    fn adopt(&self, stream: std::net::TcpStream) -> io::Result<Self::TcpStream> {
        stream.set_nodelay(true)?;
        // Makes it non-blocking and registers it with the reactor.
        async_net::TcpStream::try_from(stream)
    }

    fn peer_addr(stream: &Self::TcpStream) -> io::Result<SocketAddr> {
        stream.peer_addr()
    }
}

impl BlockOn for Smol {
    /// Runs the executor on this thread (async-io drives the reactor) until `future` is done.
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        async_io::block_on(self.executor.run(future))
    }
}

/// Serves like [`crate::server::run`] on a new smol executor run by one thread per core (the
/// calling thread and scoped helpers), blocking until the server has stopped; no thread of
/// ferry's is left running afterwards (async-io's reactor thread and idle `blocking` pool
/// threads are process-wide and exit on their own or stay parked).
pub fn serve(
    listener: std::net::TcpListener,
    config: Config,
    shutdown: Shutdown,
) -> io::Result<()> {
    let smol = Smol::new();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
    std::thread::scope(|scope| {
        for i in 1..threads {
            let executor = Arc::clone(&smol.executor);
            let stop = stop_rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("ferry-smol-{i}"))
                .spawn_scoped(scope, move || {
                    async_io::block_on(executor.run(async move {
                        let _ = stop.recv().await;
                    }));
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start an executor thread");
            }
        }
        let result = smol.block_on(crate::server::run(smol.clone(), listener, config, shutdown));
        // Closing the channel ends the helpers' `run`.
        drop(stop_tx);
        result
    })
}

/// The async client on smol.
pub type Client = crate::client::Client<Smol>;

/// The blocking client on smol.
pub type BlockingClient = crate::blocking::BlockingClient<Smol>;

/// Connects a [`BlockingClient`] on a new smol executor.
pub fn connect_blocking(
    addr: impl std::net::ToSocketAddrs,
    options: &crate::client::ClientOptions,
) -> Result<BlockingClient, crate::client::ClientError> {
    BlockingClient::connect_with(Smol::new(), addr, options)
}
