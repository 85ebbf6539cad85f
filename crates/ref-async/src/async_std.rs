//! The async-std driver: [`AsyncStd`], plus blocking entry points for sync callers.
//!
//! async-std is discontinued upstream (RUSTSEC-2025-0052, "use smol instead"); this driver
//! exists because the project names async-std as a requirement, and costs little because the
//! session and client logic are runtime-neutral. Tasks go to async-std's global executor,
//! blocking work to [`async_std::task::spawn_blocking`]. The global executor's threads and
//! async-io's reactor thread live for the rest of the process (async-std has no way to stop
//! them); every task ferry starts has ended when [`serve`] returns.

use std::future::Future;
use std::io;
use std::net::{Shutdown as NetShutdown, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

use crate::runtime::{BlockOn, Runtime, catch};
use crate::server::{Config, Shutdown};

/// async-std as a [`Runtime`] (its global executor).
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStd;

/// An async-std TCP stream whose `close` is a half-close (async-std's own `close` only
/// flushes).
#[derive(Debug)]
pub struct TcpStream(async_std::net::TcpStream);

impl TcpStream {
    /// The async-std stream.
    pub fn get_ref(&self) -> &async_std::net::TcpStream {
        &self.0
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.0.shutdown(NetShutdown::Write))
    }
}

impl Runtime for AsyncStd {
    type TcpStream = TcpStream;
    type TcpListener = async_std::net::TcpListener;

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // Dropping the handle detaches the task.
        drop(async_std::task::spawn(future));
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
        async_std::task::sleep(deadline.saturating_duration_since(Instant::now()))
    }

    fn unblock<T, F>(&self, f: F) -> impl Future<Output = io::Result<T>> + Send + 'static
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        async_std::task::spawn_blocking(move || catch(f))
    }

    fn listener(&self, listener: std::net::TcpListener) -> io::Result<Self::TcpListener> {
        listener.set_nonblocking(true)?;
        // async-std's conversion panics if the reactor refuses the socket.
        catch(move || async_std::net::TcpListener::from(listener))
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
            Ok((TcpStream(stream), peer))
        }
    }

    // An `async fn` would borrow `self`; the trait promises a future that does not.
    #[allow(clippy::manual_async_fn)]
    fn connect(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::TcpStream>> + Send + 'static {
        async move {
            let stream = async_std::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(TcpStream(stream))
        }
    }

    fn adopt(&self, stream: std::net::TcpStream) -> io::Result<Self::TcpStream> {
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        // async-std's conversion panics if the reactor refuses the socket.
        catch(move || TcpStream(async_std::net::TcpStream::from(stream)))
    }

    fn peer_addr(stream: &Self::TcpStream) -> io::Result<SocketAddr> {
        stream.0.peer_addr()
    }
}

impl BlockOn for AsyncStd {
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        async_std::task::block_on(future)
    }
}

/// Serves like [`crate::server::run`] on async-std, blocking the calling thread until the
/// server has stopped.
pub fn serve(
    listener: std::net::TcpListener,
    config: Config,
    shutdown: Shutdown,
) -> io::Result<()> {
    async_std::task::block_on(crate::server::run(AsyncStd, listener, config, shutdown))
}

/// The async client on async-std.
pub type Client = crate::client::Client<AsyncStd>;

/// The blocking client on async-std.
pub type BlockingClient = crate::blocking::BlockingClient<AsyncStd>;

/// Connects a [`BlockingClient`] on async-std.
pub fn connect_blocking(
    addr: impl std::net::ToSocketAddrs,
    options: &crate::client::ClientOptions,
) -> Result<BlockingClient, crate::client::ClientError> {
    BlockingClient::connect_with(AsyncStd, addr, options)
}
