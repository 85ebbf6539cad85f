//! # ferry-tls: ferry/1 over TLS (spec section 15)
//!
//! What every ferry implementation shares for TLS, so that no driver decides a TLS rule on
//! its own; the drivers wrap their sockets with the configurations made here (rustls'
//! connections on threads, futures-rustls on the async runtimes).
//!
//! - [`ServerTls`]: a server's certificate and key (PEM files, or a self-signed pair made
//!   once, [`ServerTls::self_signed`]), reloaded when the files change, and its rustls
//!   configuration: TLS 1.3 only (TLS-2), ALPN `ferry/1` required (TLS-3).
//! - [`ClientTls`]: a client's configuration for one server address, verifying the server by
//!   a pinned key, a certificate chain, or trust on first use ([`Trust`], section 15.3–15.4),
//!   with [`KnownHosts`] for the remembered keys.
//! - [`Fingerprint`]: `SHA256:` + unpadded base64 of the SHA-256 of a key's SubjectPublicKeyInfo
//!   (TLS-10).
//! - [`channel_binding`]: the exporter value of TLS-15.
//! - [`ReadAhead`]: socket octets read in large pieces for rustls, and plaintext handed out
//!   in large pieces, for every driver.
//!
//! rustls runs with the `ring` provider (no C toolchain beyond a compiler, no cmake).

mod client;
mod fingerprint;
pub mod known_hosts;
mod read_ahead;
mod server;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use client::{ClientTls, Refused, Trust, explain};
pub use fingerprint::{BadFingerprint, Fingerprint};
pub use known_hosts::KnownHosts;
pub use read_ahead::ReadAhead;
pub use rustls;
pub use server::ServerTls;

/// The ALPN protocol name of ferry/1 (TLS-3).
pub const ALPN: &[u8] = b"ferry/1";

/// The default port of ferry/1 over TLS (TLS-1); plain ferry/1 keeps 7450.
pub const DEFAULT_TLS_PORT: u16 = 7451;

/// The exporter label of the channel-binding value (TLS-15).
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-ferry-channel-binding";

/// The crypto provider of every ferry TLS configuration: ring's, with AES-128-GCM preferred
/// (a peer picks its first choice the other supports): as strong as needed for a session key
/// and cheaper per octet than AES-256-GCM, which every file's octets pay.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    Arc::new(provider)
}

/// The channel-binding value of a session (TLS-15): 32 octets of the TLS exporter with the
/// label [`EXPORTER_LABEL`] and an empty context. Fails before the handshake is complete.
pub fn channel_binding<D>(conn: &rustls::ConnectionCommon<D>) -> Result<[u8; 32], TlsError> {
    conn.export_keying_material([0u8; 32], EXPORTER_LABEL, Some(&[]))
        .map_err(TlsError::Rustls)
}

/// Why a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A certificate or key file is not what it must be.
    #[error("{}: {why}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A line of a known_hosts file is damaged.
    #[error("{}:{line}: {why}", path.display())]
    KnownHosts {
        /// The file.
        path: PathBuf,
        /// The 1-based line number (0: not about a line).
        line: usize,
        /// What is wrong with it.
        why: String,
    },
    /// A certificate cannot be used.
    #[error("certificate: {0}")]
    Certificate(String),
    /// Making a self-signed certificate failed.
    #[error("making a self-signed certificate: {0}")]
    Generate(String),
    /// rustls refused the configuration.
    #[error("TLS: {0}")]
    Rustls(rustls::Error),
}

impl TlsError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}
