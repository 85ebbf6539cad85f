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
