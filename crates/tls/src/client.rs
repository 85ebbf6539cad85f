//! The client's side: how it verifies the server (spec section 15.3: a pinned key, a
//! certificate chain, or trust on first use) and the rustls configuration every ferry client
//! uses (TLS 1.3 only, ALPN `ferry/1`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};

use crate::known_hosts::{Known, KnownHosts};
use crate::{ALPN, Fingerprint, TlsError, provider};

/// How a client decides that it talks to the server it meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// TLS-8: only a key with this fingerprint, whatever certificate carries it.
    Fingerprint(Fingerprint),
    /// TLS-9: a chain to the certificates of this PEM file, valid for the host name.
    Ca(PathBuf),
    /// TLS-9: a chain to the system's trust roots, valid for the host name.
    System,
    /// The default: a chain to the system's roots valid for the host name is accepted;
    /// otherwise the key must be the one this known_hosts file remembers for the address, and
    /// an address it does not know has its key remembered (trust on first use, TLS-12, TLS-13).
    FirstUse(PathBuf),
    /// Any key (the handshake still proves the server holds it). For tests and debugging
    /// only: an attacker on the path is not noticed.
    Insecure,
}

/// The TLS side of a client's connection to one server address. Cheap to clone.
#[derive(Clone)]
pub struct ClientTls {
    server_name: ServerName<'static>,
    config: Arc<rustls::ClientConfig>,
    verifier: Arc<Verifier>,
}

/// Two are equal when they are clones of one.
impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config)
    }
}

impl Eq for ClientTls {}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .field("trust", &self.verifier.trust)
            .finish()
    }
}

impl ClientTls {
    /// For a connection to `host` (a name or an IP address, IPv6 without brackets) on
    /// `port`, verified as `trust` says.
    pub fn new(host: &str, port: u16, trust: Trust) -> Result<Self, TlsError> {
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|_| TlsError::Certificate(format!("{host:?} is not a host name")))?;
        let address = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{}:{port}", host.to_ascii_lowercase())
        };
        let chain = match &trust {
            Trust::Ca(path) => Some(Chain::Ready(webpki_verifier(roots_from_file(path)?)?)),
            Trust::System => Some(Chain::Ready(webpki_verifier(system_roots(true)?)?)),
            Trust::FirstUse(_) => Some(Chain::Lazy(OnceLock::new())),
            Trust::Fingerprint(_) | Trust::Insecure => None,
        };
        let verifier = Arc::new(Verifier {
            trust,
            address,
            chain,
            pending: Mutex::new(None),
            notices: Mutex::new(Vec::new()),
        });
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(TlsError::Rustls)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(&verifier) as Arc<dyn ServerCertVerifier>)
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(Self {
            server_name,
            config: Arc::new(config),
            verifier,
        })
    }

    /// The name sent in SNI and verified in the certificate.
    pub fn server_name(&self) -> ServerName<'static> {
        self.server_name.clone()
    }

    /// The rustls configuration, for a driver's connector.
    pub fn config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.config)
    }

    /// A new rustls connection for this server (for blocking drivers).
    pub fn connect(&self) -> Result<rustls::ClientConnection, TlsError> {
        rustls::ClientConnection::new(self.config(), self.server_name()).map_err(TlsError::Rustls)
    }

    /// What the user must be shown since the last call: a key remembered on first use
    /// (TLS-13), a key that could not be remembered, an insecure connection.
    pub fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.verifier.notices))
    }

    /// A connection to the same server that offers `versions` and the ALPN names `alpn`
    /// instead of ferry's, and accepts any key (the handshake's signature is still checked):
    /// for checking that a server refuses what ferry/1 over TLS does not allow (TLS 1.2, no
    /// `ferry/1`), as the conformance runner does. Not for talking to a server.
    pub fn probe(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        alpn: &[&[u8]],
    ) -> Result<rustls::ClientConnection, TlsError> {
        let verifier = Arc::new(Verifier {
            trust: Trust::Insecure,
            address: self.verifier.address.clone(),
            chain: None,
            pending: Mutex::new(None),
            notices: Mutex::new(Vec::new()),
        });
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .map_err(TlsError::Rustls)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        rustls::ClientConnection::new(Arc::new(config), self.server_name())
            .map_err(TlsError::Rustls)
    }

    /// The address as known_hosts writes it (`host:port`, IPv6 in brackets).
    pub fn address(&self) -> &str {
        &self.verifier.address
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

enum Chain {
    Ready(Arc<WebPkiServerVerifier>),
    /// Loaded at the first handshake that needs it (reading the system's roots takes a while).
    Lazy(OnceLock<Option<Arc<WebPkiServerVerifier>>>),
}

impl Chain {
    fn get(&self) -> Option<&Arc<WebPkiServerVerifier>> {
        match self {
            Self::Ready(v) => Some(v),
            Self::Lazy(cell) => cell
                .get_or_init(|| {
                    system_roots(false)
                        .ok()
                        .and_then(|r| webpki_verifier(r).ok())
                })
                .as_ref(),
        }
    }
}

struct Verifier {
    trust: Trust,
    address: String,
    chain: Option<Chain>,
    /// A first key, remembered once the server proved it holds it.
    pending: Mutex<Option<Fingerprint>>,
    notices: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("trust", &self.trust)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Why a server's key was refused; the text the user sees.
#[derive(thiserror::Error)]
pub enum Refused {
    /// TLS-8.
    #[error(
        "the server's key is {shown}, not the pinned {pinned}: this is not the server you meant \
         (or its key was replaced; ask its operator for the new fingerprint)"
    )]
    NotPinned {
        /// The key the server showed.
        shown: Fingerprint,
        /// The fingerprint the client was given.
        pinned: Fingerprint,
    },
    /// TLS-12.
    #[error(
        "THE KEY OF {address} HAS CHANGED: the server shows {shown}, but {path}:{line} \
         remembers {remembered}. Someone may be intercepting the connection. If the server's \
         key was replaced on purpose (ask its operator), delete line {line} of {path} and \
         connect again"
    )]
    KeyChanged {
        /// `host:port`.
        address: String,
        /// The key the server showed.
        shown: Fingerprint,
        /// The known_hosts file.
        path: String,
        /// The line that remembers another key.
        line: usize,
        /// The key that line remembers.
        remembered: Fingerprint,
    },
    /// The known_hosts file cannot be read.
    #[error("{0}")]
    KnownHosts(String),
}

impl std::fmt::Debug for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn refuse(r: Refused) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(r))))
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let shown = Fingerprint::of_certificate(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        match &self.trust {
            Trust::Fingerprint(pinned) if *pinned == shown => Ok(ServerCertVerified::assertion()),
            Trust::Fingerprint(pinned) => Err(refuse(Refused::NotPinned {
                shown,
                pinned: *pinned,
            })),
            Trust::Insecure => {
                lock(&self.notices).push(format!(
                    "warning: --insecure: {} was not verified (its key is {shown})",
                    self.address
                ));
                Ok(ServerCertVerified::assertion())
            }
            Trust::Ca(_) | Trust::System => match self.chain.as_ref().and_then(Chain::get) {
                Some(chain) => chain.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    now,
                ),
                None => Err(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer,
                )),
            },
            Trust::FirstUse(path) => {
                if let Some(chain) = self.chain.as_ref().and_then(Chain::get)
                    && chain
                        .verify_server_cert(
                            end_entity,
                            intermediates,
                            server_name,
                            ocsp_response,
                            now,
                        )
                        .is_ok()
                {
                    return Ok(ServerCertVerified::assertion());
                }
                let known = KnownHosts::load(path)
                    .map_err(|e| refuse(Refused::KnownHosts(e.to_string())))?;
                match known.check(&self.address, &shown) {
                    Known::Matches(_) => Ok(ServerCertVerified::assertion()),
                    Known::Differs { line, remembered } => Err(refuse(Refused::KeyChanged {
                        address: self.address.clone(),
                        shown,
                        path: path.display().to_string(),
                        line,
                        remembered,
                    })),
                    Known::Unknown => {
                        *lock(&self.pending) = Some(shown);
                        Ok(ServerCertVerified::assertion())
                    }
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let valid = rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )?;
        // The server proved it holds the key: a first key is remembered now, not before.
        if let Some(shown) = lock(&self.pending).take()
            && let Trust::FirstUse(path) = &self.trust
        {
            self.remember(path, shown);
        }
        Ok(valid)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl Verifier {
    fn remember(&self, path: &Path, shown: Fingerprint) {
        let notice = match KnownHosts::load(path).and_then(|mut k| k.remember(&self.address, shown))
        {
            Ok(line) => format!(
                "first connection to {}: its key {shown} is now remembered in {}:{line}; \
                 a different key will be refused (compare it with what the server's operator \
                 sees)",
                self.address,
                path.display()
            ),
            Err(e) => format!(
                "warning: first connection to {}: its key {shown} could not be remembered ({e}); \
                 it is trusted for this connection only",
                self.address
            ),
        };
        lock(&self.notices).push(notice);
    }
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            why: e.to_string(),
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            why: "holds no usable CERTIFICATE".into(),
        });
    }
    Ok(roots)
}

/// The system's trust roots; `required`: none found is an error.
fn system_roots(required: bool) -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if required && roots.is_empty() {
        return Err(TlsError::Certificate(
            "no system trust roots found (set SSL_CERT_FILE, or use --ca FILE)".into(),
        ));
    }
    Ok(roots)
}

fn webpki_verifier(roots: RootCertStore) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| TlsError::Certificate(e.to_string()))
}

/// A clear sentence for a TLS failure a client met, when `err` is one: the refusals above as
/// they are, rustls' other errors with what they mean for the user.
pub fn explain(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(explain_rustls(r));
        }
        if let Some(r) = e.downcast_ref::<Refused>() {
            return Some(r.to_string());
        }
        // An io::Error's source() is its payload's source, not the payload: look inside.
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| explain(inner))
        {
            return Some(inner);
        }
        cur = e.source();
    }
    None
}

fn explain_rustls(e: &rustls::Error) -> String {
    use rustls::{AlertDescription as A, Error as E};
    match e {
        E::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            explain(inner.as_ref()).unwrap_or_else(|| inner.to_string())
        }
        E::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the server's certificate is not signed by a trusted authority (pin its key with \
             --fingerprint, or give its CA with --ca)"
                .into()
        }
        E::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "the server's certificate is not valid for the host name connected to".into(),
        E::AlertReceived(A::ProtocolVersion) => {
            "the server does not speak TLS 1.3 (ferry/1 over TLS needs it)".into()
        }
        E::AlertReceived(A::NoApplicationProtocol | A::HandshakeFailure) => {
            "the server refused the TLS handshake (it may not serve ferry/1 over TLS)".into()
        }
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => {
            "the server did not answer with TLS (is it a plain ferry server? use ferry://)".into()
        }
        E::DecryptError | E::AlertReceived(A::BadRecordMac) => {
            "a TLS record failed its integrity check: the connection was tampered with".into()
        }
        other => format!("TLS: {other}"),
    }
}
