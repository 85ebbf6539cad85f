//! The server's side: its certificate and key (PEM files, or a self-signed pair made once),
//! picked up again when the files change on disk, and the rustls configuration every ferry
//! server uses (TLS 1.3 only, ALPN `ferry/1` required).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::{ALPN, Fingerprint, TlsError, provider};

/// How often, at most, a handshake looks whether the certificate files changed.
const RECHECK: Duration = Duration::from_secs(1);

/// The names of the self-signed pair in its folder.
const SELF_CERT: &str = "cert.pem";
const SELF_KEY: &str = "key.pem";

/// The TLS side of a ferry server: cheap to clone, shared by every session.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
    resolver: Arc<Reloading>,
}

/// Two are equal when they are clones of one (the same configuration and files).
impl PartialEq for ServerTls {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config)
    }
}

impl Eq for ServerTls {}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert", &self.resolver.cert_path)
            .field("key", &self.resolver.key_path)
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl ServerTls {
    /// A certificate chain (PEM, leaf first) and its private key (PEM: PKCS#8, SEC1 or
    /// PKCS#1). When either file is replaced later, new handshakes use the new pair (looked
    /// at once a second at most); a pair that fails to load keeps the old one, with a warning.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let loaded = load_pair(cert, key)?;
        let resolver = Arc::new(Reloading {
            cert_path: cert.to_owned(),
            key_path: key.to_owned(),
            state: Mutex::new(State {
                stamp: stamp(cert, key),
                checked: Instant::now(),
                key: Arc::new(loaded),
            }),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(TlsError::Rustls)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&resolver) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![ALPN.to_vec()];
        // ferry clients make one connection per command; tickets would only cost a write.
        config.send_tls13_tickets = 0;
        Ok(Self {
            config: Arc::new(config),
            resolver,
        })
    }

    /// The self-signed pair in `dir` (`cert.pem`, `key.pem`), made on first use: an ECDSA
    /// P-256 key and a certificate for `localhost`, 127.0.0.1 and ::1 (clients pin its key or
    /// trust it on first use, so its names and dates do not matter). `dir` is created readable
    /// by the user only; the key file too. Returns whether the pair was made now.
    pub fn self_signed(dir: &Path) -> Result<(Self, bool), TlsError> {
        let cert = dir.join(SELF_CERT);
        let key = dir.join(SELF_KEY);
        let made = match (cert.exists(), key.exists()) {
            (true, true) => false,
            (false, false) => {
                generate(dir, &cert, &key)?;
                true
            }
            _ => {
                return Err(TlsError::Pem {
                    path: dir.to_owned(),
                    why: format!(
                        "holds one of {SELF_CERT} and {SELF_KEY} but not the other; \
                         remove it to make a new pair"
                    ),
                });
            }
        };
        Ok((Self::from_pem_files(&cert, &key)?, made))
    }

    /// Where `ferry serve --tls-self-signed` keeps its pair: `$XDG_STATE_HOME/ferry/tls`, else
    /// `$HOME/.local/state/ferry/tls`.
    pub fn default_dir() -> Option<PathBuf> {
        let absolute = |v: std::ffi::OsString| {
            let p = PathBuf::from(v);
            p.is_absolute().then_some(p)
        };
        std::env::var_os("XDG_STATE_HOME")
            .and_then(absolute)
            .or_else(|| {
                std::env::var_os("HOME")
                    .and_then(absolute)
                    .map(|h| h.join(".local").join("state"))
            })
            .map(|d| d.join("ferry").join("tls"))
    }

    /// The rustls configuration (TLS 1.3 only, ALPN `ferry/1`), for a driver's acceptor.
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.config)
    }

    /// The fingerprint of the key handshakes use now (TLS-10, TLS-11).
    pub fn fingerprint(&self) -> Fingerprint {
        let key = self.resolver.current();
        key.end_entity_cert()
            .ok()
            .and_then(|c| Fingerprint::of_certificate(c).ok())
            .unwrap_or_else(|| Fingerprint::of_spki(&[]))
    }

    /// The certificate and key files.
    pub fn files(&self) -> (&Path, &Path) {
        (&self.resolver.cert_path, &self.resolver.key_path)
    }

    /// Loads the files again now (SIGHUP); on failure the old pair stays in use.
    pub fn reload(&self) -> Result<Fingerprint, TlsError> {
        self.resolver.reload()?;
        Ok(self.fingerprint())
    }
}

/// A loaded pair with the files' identity, so a replaced file is noticed.
struct State {
    stamp: Option<Stamp>,
    checked: Instant,
    key: Arc<CertifiedKey>,
}

/// Size, modification time and inode of both files.
type Stamp = [(u64, SystemTime, u64); 2];

fn stamp(cert: &Path, key: &Path) -> Option<Stamp> {
    let one = |p: &Path| {
        let m = fs::metadata(p).ok()?;
        Some((m.len(), m.modified().ok()?, m.ino()))
    };
    Some([one(cert)?, one(key)?])
}

struct Reloading {
    cert_path: PathBuf,
    key_path: PathBuf,
    state: Mutex<State>,
}

impl std::fmt::Debug for Reloading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("cert", &self.cert_path)
            .finish_non_exhaustive()
    }
}

impl Reloading {
    fn current(&self) -> Arc<CertifiedKey> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.checked.elapsed() >= RECHECK {
            state.checked = Instant::now();
            let now = stamp(&self.cert_path, &self.key_path);
            if now.is_some() && now != state.stamp {
                match load_pair(&self.cert_path, &self.key_path) {
                    Ok(key) => {
                        state.key = Arc::new(key);
                        state.stamp = now;
                        tracing::info!(
                            fingerprint = %fingerprint_of(&state.key),
                            cert = %self.cert_path.display(),
                            "TLS certificate reloaded"
                        );
                    }
                    Err(e) => {
                        // Half-written files are common while a tool replaces them: keep the
                        // old pair, try again once they change again.
                        state.stamp = now;
                        tracing::warn!(error = %e, "TLS certificate not reloaded; the old one stays in use");
                    }
                }
            }
        }
        Arc::clone(&state.key)
    }

    fn reload(&self) -> Result<(), TlsError> {
        let key = load_pair(&self.cert_path, &self.key_path)?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.key = Arc::new(key);
        state.stamp = stamp(&self.cert_path, &self.key_path);
        state.checked = Instant::now();
        Ok(())
    }
}

fn fingerprint_of(key: &CertifiedKey) -> String {
    key.end_entity_cert()
        .ok()
        .and_then(|c| Fingerprint::of_certificate(c).ok())
        .map_or_else(|| "?".to_owned(), |f| f.to_string())
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // TLS-3: a client that did not offer `ferry/1` is not served. (One that offered only
        // other names already got `no_application_protocol` from rustls.)
        let offered = hello
            .alpn()
            .is_some_and(|mut names| names.any(|n| n == ALPN));
        if !offered {
            tracing::debug!("TLS client did not offer ALPN ferry/1");
            return None;
        }
        Some(self.current())
    }
}

fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let pem = |path: &Path, why: String| TlsError::Pem {
        path: path.to_owned(),
        why,
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem(cert, "holds no CERTIFICATE".into()));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| pem(key, e.to_string()))?;
    let signing = provider()
        .key_provider
        .load_private_key(private)
        .map_err(|e| pem(key, e.to_string()))?;
    let pair = CertifiedKey::new(certs, signing);
    pair.keys_match().map_err(|e| {
        pem(
            key,
            format!(
                "is not the key of the certificate in {}: {e}",
                cert.display()
            ),
        )
    })?;
    Ok(pair)
}

fn generate(dir: &Path, cert: &Path, key: &Path) -> Result<(), TlsError> {
    let io = |p: &Path| {
        let p = p.to_owned();
        move |e| TlsError::io(&p, e)
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let mut params =
        rcgen::CertificateParams::new(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ferry server (self-signed)");
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let certificate = params
        .self_signed(&pair)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    // The key first, so a pair is never a certificate without its key; each file whole or
    // absent (written aside, then renamed).
    write_new(key, pair.serialize_pem().as_bytes(), 0o600).map_err(io(key))?;
    write_new(cert, certificate.pem().as_bytes(), 0o644).map_err(io(cert))?;
    Ok(())
}

fn write_new(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let aside = path.with_extension("pem.new");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&aside)?;
    f.write_all(data)?;
    f.sync_all()?;
    fs::rename(&aside, path)
}
