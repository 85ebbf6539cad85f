//! The client's proofs: ferry-client-core's [`Prover`] for an OpenSSH Ed25519 key
//! ([`KeyProver`], `auth ed25519`) and for a password ([`PasswordProver`], SCRAM-SHA-256-PLUS
//! over TLS, SCRAM-SHA-256 on a plain connection its user allowed).

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ferry_client_core::login::{AuthRequest, Begun, Mechanism, Prover, ScramClient, UserName};
use ring::rand::SystemRandom;
use zeroize::Zeroizing;

use crate::keys::{KeyError, Passphrase, PrivateKey};
use crate::proof;
use crate::scram::ClientExchange;

/// Logs in with an Ed25519 key (`auth ed25519`, AUTH-9).
pub struct KeyProver {
    key: PrivateKey,
    path: Option<PathBuf>,
}

impl KeyProver {
    /// The key in `path` (an OpenSSH Ed25519 private key, as `ferry keygen` or `ssh-keygen
    /// -t ed25519` writes it); an encrypted one is decrypted with what `passphrase` gives.
    pub fn read_file(path: &Path, passphrase: Passphrase<'_>) -> Result<Self, KeyError> {
        Ok(Self {
            key: PrivateKey::read_file_with(path, passphrase)?,
            path: Some(path.to_owned()),
        })
    }

    /// `key`, held in memory.
    pub fn new(key: PrivateKey) -> Self {
        Self { key, path: None }
    }
}

impl fmt::Debug for KeyProver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Prover for KeyProver {
    fn describe(&self) -> String {
        let fingerprint = self.key.public().fingerprint();
        match &self.path {
            Some(p) => format!("the key {} ({fingerprint})", p.display()),
            None => format!("the key {fingerprint}"),
        }
    }

    fn mechanism(&self, _tls: bool) -> Mechanism {
        Mechanism::Ed25519
    }

    fn begin(&self, user: &UserName, cb: Option<&[u8; 32]>) -> Result<Begun, String> {
        // AUTH-9: on a plain connection, CB is 32 zero octets.
        Ok(Begun {
            request: proof::request(&self.key, cb.unwrap_or(&[0; 32]), user),
            exchange: None,
        })
    }
}

/// Logs in with a password (SCRAM, AUTH-11): the password never crosses the connection.
pub struct PasswordProver {
    password: Zeroizing<String>,
}

impl PasswordProver {
    /// `password` (normalised with SASLprep when the exchange begins).
    pub fn new(password: Zeroizing<String>) -> Self {
        Self { password }
    }
}

impl fmt::Debug for PasswordProver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordProver")
    }
}

impl Prover for PasswordProver {
    fn describe(&self) -> String {
        "a password".to_owned()
    }

    fn mechanism(&self, tls: bool) -> Mechanism {
        if tls {
            Mechanism::ScramSha256Plus
        } else {
            Mechanism::ScramSha256
        }
    }

    fn begin(&self, user: &UserName, cb: Option<&[u8; 32]>) -> Result<Begun, String> {
        let (exchange, client_first) = ClientExchange::start(
            user.as_str(),
            &self.password,
            cb.copied(),
            &SystemRandom::new(),
        )
        .map_err(|e| e.to_string())?;
        let client_first = B64
            .decode(client_first)
            .map_err(|e| format!("client-first: {e}"))?;
        Ok(Begun {
            request: AuthRequest::Scram {
                plus: cb.is_some(),
                client_first,
            },
            exchange: Some(Box::new(Scram(exchange))),
        })
    }
}

/// [`ClientExchange`] as a [`ScramClient`]: the codec decodes the base64 tokens that
/// [`crate::scram`] speaks.
#[derive(Debug)]
struct Scram(ClientExchange);

impl ScramClient for Scram {
    fn step(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let token = self
            .0
            .step(&B64.encode(server_first))
            .map_err(|e| e.to_string())?;
        B64.decode(token).map_err(|e| format!("client-final: {e}"))
    }

    fn finish(self: Box<Self>, server_final: &[u8]) -> Result<(), String> {
        self.0
            .finish(&B64.encode(server_final))
            .map_err(|e| e.to_string())
    }
}
