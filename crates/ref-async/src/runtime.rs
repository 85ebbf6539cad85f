//! The runtime seam: everything the server and client need from an async runtime, as one
//! small trait, so that the session and client logic are written once over `futures-io`.
//!
//! A driver (`crate::tokio::Tokio`, `crate::async_std::AsyncStd`, `crate::smol::Smol`) is a
//! cheap, cloneable value that implements [`Runtime`]. Nothing else in the crate names a
//! runtime.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_io::{AsyncRead, AsyncWrite};

/// A boxed, sendable future (for futures that are stored, such as a read-ahead).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What ferry needs from an async runtime: tasks, timers, a blocking pool and TCP.
///
/// Contract for implementors:
///
/// - [`Runtime::TcpStream`]'s `poll_close` **shuts down the sending direction** (a TCP
///   half-close, `shutdown(SHUT_WR)`) and leaves the receiving direction open: the server's
///   close sequence (CLOSE-6) and the client's half-close after `bye` rely on it. (async-io's
///   `Async<TcpStream>`, and with it async-std's stream, only flushes on close; the drivers
///   wrap them.)
/// - Streams returned by [`Runtime::accept`] and [`Runtime::connect`] have `TCP_NODELAY` set:
///   ferry batches its own writes.
/// - [`Runtime::unblock`] runs the closure on a thread where blocking is allowed and never
///   unwinds into the caller: a panic becomes an `io::Error`.
/// - Futures returned by the trait may be polled from any task of the runtime.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// A connected TCP stream.
    type TcpStream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// A listening TCP socket.
    type TcpListener: Send + Sync + 'static;

    /// Runs `future` as a detached task.
    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static;

    /// Completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static;

    /// Runs blocking work (file system calls) off the async threads and returns its result;
    /// a panic in `f` is returned as an error.
    fn unblock<T, F>(&self, f: F) -> impl Future<Output = io::Result<T>> + Send + 'static
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static;

    /// Registers a bound std listener with the runtime.
    fn listener(&self, listener: std::net::TcpListener) -> io::Result<Self::TcpListener>;

    /// Accepts the next connection.
    fn accept<'a>(
        &self,
        listener: &'a Self::TcpListener,
    ) -> impl Future<Output = io::Result<(Self::TcpStream, SocketAddr)>> + Send + 'a;

    /// Opens a TCP connection to `addr`.
    fn connect(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::TcpStream>> + Send + 'static;

    /// Adopts a TCP connection the caller opened itself with std (for example to keep a
    /// clone of the socket that another thread can shut down to stop a call at once); makes
    /// it non-blocking and sets `TCP_NODELAY`, as [`Runtime::connect`] does.
    fn adopt(&self, stream: std::net::TcpStream) -> io::Result<Self::TcpStream>;

    /// The remote address of a connected stream.
    fn peer_addr(stream: &Self::TcpStream) -> io::Result<SocketAddr>;
}

/// A runtime that can also run a future to completion on the calling thread: what the
/// blocking entry points (`serve`, [`crate::blocking::BlockingClient`]) use.
pub trait BlockOn: Runtime {
    /// Runs `future` to completion on this thread, driving the runtime as needed. Must not be
    /// called from inside an async task.
    fn block_on<F: Future>(&self, future: F) -> F::Output;
}

/// Runs `f`, turning a panic into an error (for drivers' [`Runtime::unblock`]).
pub fn catch<T>(f: impl FnOnce() -> T) -> io::Result<T> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| io::Error::other("a blocking task panicked"))
}

/// Why a timed operation did not complete.
#[derive(Debug)]
pub(crate) enum Timed<T> {
    /// It completed.
    Done(T),
    /// The deadline passed first.
    Expired,
}

/// Runs `future` until `deadline`. The future is polled once before a timer is made, so an
/// operation that can complete at once (data already buffered by the kernel) costs no timer.
pub(crate) async fn deadline<R: Runtime, T>(
    rt: &R,
    deadline: Instant,
    future: impl Future<Output = T>,
) -> Timed<T> {
    let mut future = std::pin::pin!(future);
    if let Some(v) = futures_lite::future::poll_once(future.as_mut()).await {
        return Timed::Done(v);
    }
    futures_lite::future::or(async { Timed::Done(future.await) }, async {
        rt.sleep_until(deadline).await;
        Timed::Expired
    })
    .await
}

/// Runs `future` for at most `limit` (`None`: without limit).
pub(crate) async fn timeout<R: Runtime, T>(
    rt: &R,
    limit: Option<Duration>,
    future: impl Future<Output = T>,
) -> Timed<T> {
    match limit.and_then(|l| Instant::now().checked_add(l)) {
        Some(at) => deadline(rt, at, future).await,
        None => Timed::Done(future.await),
    }
}
