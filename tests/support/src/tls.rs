//! TLS for tests: one self-signed server key per test process (made once: key generation
//! is the slow part of a handshake's setup) and clients that pin it.

use std::sync::OnceLock;

use ferry_tls::{ClientTls, ServerTls, Trust};

/// The test servers' TLS side: a self-signed ECDSA key made once per process. Its files
/// are removed at once (a loaded pair needs them only to reload), so nothing stays behind.
pub fn server() -> ServerTls {
    static ONE: OnceLock<ServerTls> = OnceLock::new();
    ONE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir for the TLS key");
        let (tls, _) = ServerTls::self_signed(&dir.path().join("tls")).expect("self-signed key");
        tls
    })
    .clone()
}

/// A client configuration for `server` at 127.0.0.1 that pins its key (TLS-8).
pub fn client(server: &ServerTls) -> ClientTls {
    ClientTls::new("127.0.0.1", 0, Trust::Fingerprint(server.fingerprint()))
        .expect("client TLS configuration")
}

/// A ferry/1 session over TLS spoken line by line (tests that write the protocol by hand).
#[derive(Debug)]
pub struct TlsLines {
    inner: std::io::BufReader<
        ferry_tls::rustls::StreamOwned<ferry_tls::rustls::ClientConnection, std::net::TcpStream>,
    >,
}

impl TlsLines {
    /// Connects to `addr` with `client` (reads time out after 10 s); the greeting is the first
    /// [`TlsLines::line`].
    pub fn connect(addr: impl std::net::ToSocketAddrs, client: &ClientTls) -> Self {
        let tcp = std::net::TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        let conn = client.connect().expect("a TLS client connection");
        Self {
            inner: std::io::BufReader::new(ferry_tls::rustls::StreamOwned::new(conn, tcp)),
        }
    }

    /// The connection's channel binding (TLS-15), once the handshake is done (after a read).
    pub fn channel_binding(&self) -> [u8; 32] {
        ferry_tls::channel_binding(&self.inner.get_ref().conn).expect("channel binding")
    }

    /// The next line, with its eol.
    pub fn line(&mut self) -> String {
        use std::io::BufRead as _;
        let mut l = String::new();
        self.inner.read_line(&mut l).expect("a line");
        l
    }

    /// Sends `bytes` at once.
    pub fn send(&mut self, bytes: &[u8]) {
        use std::io::Write as _;
        let s = self.inner.get_mut();
        s.write_all(bytes).expect("send");
        s.flush().expect("flush");
    }
}
