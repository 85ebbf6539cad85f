//! ferry/1 over TLS (spec section 15), once for every runtime: the server and the client
//! wrap the runtime's TCP stream in [`MaybeTls`] (futures-rustls over `futures-io`), so that
//! the session drivers, the drivers' sockets and the runtime files know nothing of TLS.
//!
//! What futures-rustls leaves to its caller, and this layer does:
//!
//! - **Unsent records are pushed out by reads.** futures-rustls' `poll_write` hands the
//!   plaintext to rustls and returns once rustls took it, with records possibly still in
//!   rustls' send buffer (at most its 64 KiB limit); they leave only at the next write, flush
//!   or close. ferry's drivers write a reply and then read the next request, so
//!   [`MaybeTls::poll_read`] first flushes what is left (registering for write readiness when
//!   the socket is full): a rustls buffer then behaves like the kernel's, which also drains
//!   on its own while the session waits for input.
//! - **An end without `close_notify` is an EOF.** rustls reports a TCP end without
//!   `close_notify` as `UnexpectedEof`; the sessions get it as an EOF (TLS-7: the core
//!   decides that a payload not finished then is truncated; nothing in ferry/1 is delimited by
//!   EOF), and it is logged at debug level.
//! - **`poll_close` sends `close_notify`**, then half-closes TCP (futures-rustls), so every
//!   driver's existing close (CLOSE-6's drain, the client's close after `bye`) is TLS-6's.
//!
//! The plain variant forwards every call to the TCP stream as it is.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use ferry_client_core::{ClientError, ClientOptions};
use futures_io::{AsyncRead, AsyncWrite};
use futures_rustls::{TlsAcceptor, TlsConnector, client, server};

use crate::runtime::{Runtime, Timed, timeout};

/// A connection: plain TCP, or a TLS session over it (the server's or the client's side).
/// The TLS states are boxed: a rustls connection is large, and a plain one pays nothing
/// for it.
pub(crate) enum MaybeTls<S> {
    /// Plain ferry/1.
    Plain(S),
    /// A server's TLS session, handshake done.
    Server(Box<server::TlsStream<S>>),
    /// A client's TLS session, handshake done.
    Client(Box<client::TlsStream<S>>),
}

impl<S> std::fmt::Debug for MaybeTls<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain(_) => "MaybeTls::Plain",
            Self::Server(_) => "MaybeTls::Server",
            Self::Client(_) => "MaybeTls::Client",
        })
    }
}

impl<S> MaybeTls<S> {
    /// Whether this is a TLS session (which must end with `close_notify`, TLS-6).
    pub(crate) fn is_tls(&self) -> bool {
        !matches!(self, Self::Plain(_))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> MaybeTls<S> {
    /// The server's side of the handshake on an accepted connection (TLS-2, TLS-3: the
    /// acceptor's configuration is `ferry_tls::ServerTls::config`). Unbounded: the caller
    /// races it against its deadline. A client that does not speak TLS gets an alert, never a
    /// greeting (TLS-5).
    pub(crate) async fn accept(acceptor: &TlsAcceptor, stream: S) -> io::Result<Self> {
        let tls = acceptor.accept(stream).await?;
        Ok(Self::Server(Box::new(tls)))
    }
}

/// The client's side: plain, or connected to `options.tls`'s server with the handshake done
/// (nothing of ferry/1 is sent or read before it). The handshake is bounded by the shorter of
/// the connect and read timeouts; one that fails is [`ClientError::tls`] (a refused server
/// identity, a server that does not speak ferry/1 over TLS 1.3), one that times out is
/// [`ClientError::Io`] (`TimedOut`). Never a fallback to plain (TLS-14).
pub(crate) async fn connect<R: Runtime>(
    rt: &R,
    stream: R::TcpStream,
    options: &ClientOptions,
) -> Result<MaybeTls<R::TcpStream>, ClientError> {
    let Some(tls) = &options.tls else {
        return Ok(MaybeTls::Plain(stream));
    };
    let connector = TlsConnector::from(tls.config());
    let limit = [options.connect_timeout, options.read_timeout]
        .into_iter()
        .flatten()
        .min();
    match timeout(rt, limit, connector.connect(tls.server_name(), stream)).await {
        Timed::Done(Ok(tls)) => Ok(MaybeTls::Client(Box::new(tls))),
        Timed::Done(Err(e)) => Err(ClientError::tls(e)),
        Timed::Expired => Err(ClientError::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            "the TLS handshake timed out",
        ))),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Server(s) => {
                let unsent = s.get_ref().1.wants_write();
                tls_read(Pin::new(&mut **s), unsent, cx, buf)
            }
            Self::Client(s) => {
                let unsent = s.get_ref().1.wants_write();
                tls_read(Pin::new(&mut **s), unsent, cx, buf)
            }
        }
    }
}

/// A read from a TLS session: records rustls still holds for sending are flushed first (see
/// the module documentation); an end without `close_notify` is an EOF.
fn tls_read<T: AsyncRead + AsyncWrite>(
    mut tls: Pin<&mut T>,
    unsent: bool,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    if unsent && let Poll::Ready(Err(e)) = tls.as_mut().poll_flush(cx) {
        return Poll::Ready(Err(e));
    }
    match tls.poll_read(cx, buf) {
        Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            tracing::debug!(
                "the peer ended the connection without TLS close_notify: taken as the end of \
                 its input (TLS-7)"
            );
            Poll::Ready(Ok(0))
        }
        other => other,
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Server(s) => Pin::new(&mut **s).poll_write(cx, buf),
            Self::Client(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Server(s) => Pin::new(&mut **s).poll_flush(cx),
            Self::Client(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    /// Plain: the TCP half-close. TLS: `close_notify` (once), the records still unsent, then
    /// the TCP half-close (TLS-6).
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_close(cx),
            Self::Server(s) => Pin::new(&mut **s).poll_close(cx),
            Self::Client(s) => Pin::new(&mut **s).poll_close(cx),
        }
    }
}
