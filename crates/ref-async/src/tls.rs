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
//! - **Large reads.** futures-rustls reads the socket 4 KiB at a time (rustls' `read_tls`)
//!   and hands out one record's plaintext (at most 16 KiB) per read. Under TLS the socket is
//!   wrapped in [`Ahead`], which reads it in pieces of up to 256 KiB into a [`ReadAhead`]
//!   (there only while octets flow: an idle session holds no buffer); after the handshake,
//!   reads of plaintext bypass futures-rustls and take from rustls what every octet read so
//!   far decrypts to ([`ReadAhead::read_plaintext`], as on threads). futures-rustls keeps
//!   the handshake, the writes and the close.
//!
//! The plain variant forwards every call to the TCP stream as it is.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::io::{IoSlice, Read as _};

use ferry_client_core::{ClientError, ClientOptions};
use ferry_tls::ReadAhead;
use ferry_tls::rustls::ConnectionCommon;
use ferry_tls::rustls::client::ClientConnectionData;
use ferry_tls::rustls::server::ServerConnectionData;
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
    Server(Box<server::TlsStream<Ahead<S>>>),
    /// A client's TLS session, handshake done.
    Client(Box<client::TlsStream<Ahead<S>>>),
}

/// The socket under a TLS session: reads go through a [`ReadAhead`], writes straight to the
/// socket.
pub(crate) struct Ahead<S> {
    io: S,
    ahead: ReadAhead,
}

impl<S> Ahead<S> {
    pub(crate) fn new(io: S) -> Self {
        Self {
            io,
            ahead: ReadAhead::default(),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Ahead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.ahead.is_empty() {
            match fill(&mut this.io, &mut this.ahead, cx) {
                Poll::Ready(Ok(_)) => {}
                other => return other,
            }
        }
        Poll::Ready(this.ahead.read(out))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Ahead<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_close(cx)
    }
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

    /// The session's channel-binding value (TLS-15), for the `auth` extension; `None` for
    /// plain ferry/1.
    pub(crate) fn channel_binding(&self) -> Option<[u8; 32]> {
        match self {
            Self::Plain(_) => None,
            Self::Server(s) => ferry_tls::channel_binding(s.get_ref().1).ok(),
            Self::Client(s) => ferry_tls::channel_binding(s.get_ref().1).ok(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> MaybeTls<S> {
    /// The server's side of the handshake on an accepted connection (TLS-2, TLS-3: the
    /// acceptor's configuration is `ferry_tls::ServerTls::config`). Unbounded: the caller
    /// races it against its deadline. A client that does not speak TLS gets an alert, never a
    /// greeting (TLS-5).
    pub(crate) async fn accept(acceptor: &TlsAcceptor, stream: S) -> io::Result<Self> {
        let tls = acceptor.accept(Ahead::new(stream)).await?;
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
    match timeout(
        rt,
        limit,
        connector.connect(tls.server_name(), Ahead::new(stream)),
    )
    .await
    {
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
            Self::Server(s) => poll_tls(&mut **s, server_parts, cx, buf),
            Self::Client(s) => poll_tls(&mut **s, client_parts, cx, buf),
        }
    }
}

fn server_parts<S>(
    s: &mut server::TlsStream<Ahead<S>>,
) -> (&mut Ahead<S>, &mut ConnectionCommon<ServerConnectionData>) {
    let (io, conn) = s.get_mut();
    (io, conn)
}

fn client_parts<S>(
    s: &mut client::TlsStream<Ahead<S>>,
) -> (&mut Ahead<S>, &mut ConnectionCommon<ClientConnectionData>) {
    let (io, conn) = s.get_mut();
    (io, conn)
}

/// A read from a TLS session: records rustls still holds for sending are flushed first (see
/// the module documentation), then [`tls_read`]; after a TLS failure, the alert rustls
/// queued leaves if the socket takes it at once.
fn poll_tls<T: AsyncWrite + Unpin, S: AsyncRead + Unpin, D>(
    tls: &mut T,
    parts: fn(&mut T) -> (&mut Ahead<S>, &mut ConnectionCommon<D>),
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    if parts(tls).1.wants_write()
        && let Poll::Ready(Err(e)) = Pin::new(&mut *tls).poll_flush(cx)
    {
        return Poll::Ready(Err(e));
    }
    let (io, conn) = parts(tls);
    let read = tls_read(io, conn, cx, buf);
    if let Poll::Ready(Err(_)) = read {
        let _ = Pin::new(tls).poll_flush(cx);
    }
    read
}

/// One read of the socket into `ahead` ([`ReadAhead::fill_with`]: a session waiting for
/// input holds no buffer).
fn fill<S: AsyncRead + Unpin>(
    io: &mut S,
    ahead: &mut ReadAhead,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    let read = ahead.fill_with(|b| match Pin::new(io).poll_read(cx, b) {
        Poll::Ready(Ok(n)) => Ok(n),
        Poll::Ready(Err(e)) => Err(Some(e)),
        Poll::Pending => Err(None),
    });
    match read {
        Ok(n) => Poll::Ready(Ok(n)),
        Err(Some(e)) => Poll::Ready(Err(e)),
        Err(None) => Poll::Pending,
    }
}

/// A read of plaintext from a TLS session: what rustls holds and the octets read ahead
/// decrypt to, else a read of the socket; an end without `close_notify` is an EOF.
fn tls_read<S: AsyncRead + Unpin, D>(
    io: &mut Ahead<S>,
    conn: &mut ConnectionCommon<D>,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    if buf.is_empty() {
        return Poll::Ready(Ok(0));
    }
    loop {
        match io.ahead.read_plaintext(conn, buf) {
            Ok(Some(n)) => return Poll::Ready(Ok(n)),
            Ok(None) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                tracing::debug!(
                    "the peer ended the connection without TLS close_notify: taken as the end \
                     of its input (TLS-7)"
                );
                return Poll::Ready(Ok(0));
            }
            Err(e) => return Poll::Ready(Err(e)),
        }
        match fill(&mut io.io, &mut io.ahead, cx) {
            Poll::Ready(Ok(_)) => {}
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex, PoisonError};

    use ferry_tls::{ClientTls, ServerTls, Trust};
    use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _, future};

    use super::*;

    /// What one direction of the in-memory connection holds at most.
    const CAP: usize = 4096;

    type Pipe = Arc<Mutex<VecDeque<u8>>>;

    /// One end of an in-memory connection whose directions hold [`CAP`] octets each. Its
    /// `Pending` registers no waker: [`both`] polls the two peers in turn, so none is needed,
    /// and peers that wait for each other show as rounds without an end.
    struct End {
        rx: Pipe,
        tx: Pipe,
    }

    fn pair() -> (End, End) {
        let (a, b) = (Pipe::default(), Pipe::default());
        (
            End {
                rx: Arc::clone(&a),
                tx: Arc::clone(&b),
            },
            End { rx: b, tx: a },
        )
    }

    impl AsyncRead for End {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let mut rx = self.rx.lock().unwrap_or_else(PoisonError::into_inner);
            if rx.is_empty() {
                return Poll::Pending;
            }
            let n = buf.len().min(rx.len());
            for (d, s) in buf.iter_mut().zip(rx.drain(..n)) {
                *d = s;
            }
            Poll::Ready(Ok(n))
        }
    }

    impl AsyncWrite for End {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let mut tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
            let n = buf.len().min(CAP - tx.len());
            if n == 0 {
                return Poll::Pending;
            }
            tx.extend(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Polls `a` and `b` in turn until both are done; panics when they stop making progress.
    fn both<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
        future::block_on(async {
            let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
            let (mut ra, mut rb) = (None, None);
            for _ in 0..100_000 {
                if ra.is_none() {
                    ra = future::poll_once(a.as_mut()).await;
                }
                if rb.is_none() {
                    rb = future::poll_once(b.as_mut()).await;
                }
                if let (Some(_), Some(_)) = (&ra, &rb) {
                    return (ra.expect("done"), rb.expect("done"));
                }
            }
            panic!("the peers wait for each other: records were left unsent");
        })
    }

    /// A reply that rustls takes whole but the connection cannot: after `write_all` returns,
    /// most of it is still in rustls' buffer, and only the server's next read (waiting for
    /// the client, who waits for the rest of the reply) can send it.
    #[test]
    fn a_read_sends_the_records_a_write_left_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (server_tls, _) = ServerTls::self_signed(dir.path()).expect("certificate");
        let key = Trust::Fingerprint(server_tls.fingerprint());
        let client_tls = ClientTls::new("127.0.0.1", 7451, key).expect("client TLS");
        let (a, b) = pair();
        let acceptor = TlsAcceptor::from(server_tls.config());
        let connector = TlsConnector::from(client_tls.config());
        let reply = vec![7u8; 60_000];
        let server = async {
            let mut s = MaybeTls::accept(&acceptor, a).await?;
            s.write_all(&reply).await?;
            let mut next = [0u8; 1];
            s.read_exact(&mut next).await?;
            s.close().await?;
            io::Result::Ok(next[0])
        };
        let client = async {
            let tls = connector
                .connect(client_tls.server_name(), Ahead::new(b))
                .await?;
            let mut c = MaybeTls::Client(Box::new(tls));
            let mut got = vec![0u8; reply.len()];
            c.read_exact(&mut got).await?;
            c.write_all(b"!").await?;
            c.flush().await?;
            let mut rest = Vec::new();
            c.read_to_end(&mut rest).await?;
            io::Result::Ok((got, rest))
        };
        let (s, c) = both(server, client);
        assert_eq!(s.expect("server"), b'!');
        let (got, rest) = c.expect("client");
        assert_eq!(got, reply);
        assert!(rest.is_empty(), "close_notify ends the input");
    }
}
