//! The server's users as its sessions ask them: ferry-proto's [`Authenticator`] over a users
//! file ([`UsersFile`]), swapped whole when the file changes ([`Directory::update`]) while
//! sessions go on: a session keeps the rights it authenticated with; a SCRAM exchange in
//! progress finishes against the file it started with.
//!
//! Offered mechanisms (AUTH-1, AUTH-11): `ed25519` and, over TLS, `scram-sha-256-plus`; on a
//! plain connection (only when the operator allows authentication there, AUTH-2)
//! `scram-sha-256`.
//!
//! Failed authentications are throttled per client address (AUTH-20, AUTH-22) by one
//! [`Throttle`] for the server's lifetime, kept across reloads: ferry-proto's defaults
//! ([`ThrottleLimits::default`], `crates/auth/README.md`) unless [`Directory::with_throttle`]
//! says otherwise. The sessions of each user are counted the same way ([`Sessions`]): a
//! user's `max-sessions` (AUTH-21) applies to the sessions in progress whatever file they
//! authenticated with, and a session's place is given back when it ends.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ferry_proto::auth::{
    Authenticator, Grant, Mechanism, Rights, ScramServer, SessionSlot, Sessions, Throttle,
    ThrottleLimits, UserName,
};
use ring::rand::{SecureRandom as _, SystemRandom};
use zeroize::Zeroizing;

use crate::proof;
use crate::scram::ServerExchange;
use crate::users::UsersFile;

/// The users of a server, for its sessions.
#[derive(Debug)]
pub struct Directory {
    file: RwLock<Arc<UsersFile>>,
    /// Whether the server speaks TLS (which SCRAM variant it offers).
    tls: bool,
    /// The secret an unknown user's made-up SCRAM salt derives from (AUTH-14).
    secret: Zeroizing<[u8; 32]>,
    rng: SystemRandom,
    /// Failed authentications per address, across reloads.
    throttle: Throttle,
    /// The sessions in progress of each user, across reloads.
    sessions: Arc<Sessions>,
}

/// One user's folder, as the users file gives it: for the server's storage
/// (`ferry_store::homes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeSpec {
    /// Whose (`None`: the anonymous access).
    pub user: Option<UserName>,
    /// The folder.
    pub root: PathBuf,
    /// Its quota in octets.
    pub quota: Option<u64>,
    /// Its quota in files and folders.
    pub quota_files: Option<u64>,
}

impl Directory {
    /// The users of `file`, for a server that speaks TLS (`tls`) or not. The secret of
    /// AUTH-14 is drawn now: an unknown user's made-up salt is the same at every attempt for
    /// the server's lifetime, not across restarts unless [`Directory::with_secret`] gives a
    /// kept one ([`crate::secret`]).
    pub fn new(file: UsersFile, tls: bool) -> Result<Directory, ring::error::Unspecified> {
        let rng = SystemRandom::new();
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill(secret.as_mut())?;
        Ok(Directory {
            file: RwLock::new(Arc::new(file)),
            tls,
            secret,
            rng,
            throttle: Throttle::default(),
            sessions: Sessions::new(),
        })
    }

    /// The same users with `secret` as the secret of AUTH-14 (one kept across restarts,
    /// [`crate::secret::load_or_create`]).
    pub fn with_secret(mut self, secret: Zeroizing<[u8; 32]>) -> Directory {
        self.secret = secret;
        self
    }

    /// The same users with failed authentications throttled by `limits` instead of the
    /// defaults.
    pub fn with_throttle(mut self, limits: ThrottleLimits) -> Directory {
        self.throttle = Throttle::new(limits);
        self
    }

    /// Takes a new users file (it changed on disk): new sessions and authentications use it.
    pub fn update(&self, file: UsersFile) {
        *self.file.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(file);
    }

    /// The sessions in progress of each user (AUTH-21).
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The users file in use.
    pub fn file(&self) -> Arc<UsersFile> {
        Arc::clone(&self.file.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Every folder of the users file, the anonymous access's included.
    pub fn homes(&self) -> Vec<HomeSpec> {
        let file = self.file();
        let users = file.users.iter().map(|(name, u)| HomeSpec {
            user: Some(name.clone()),
            root: u.root.clone(),
            quota: u.quota_bytes,
            quota_files: u.quota_files,
        });
        let anonymous = file.anonymous.iter().map(|a| HomeSpec {
            user: None,
            root: a.root.clone(),
            quota: a.quota_bytes,
            quota_files: a.quota_files,
        });
        users.chain(anonymous).collect()
    }
}

impl Authenticator for Directory {
    fn mechanisms(&self) -> Vec<Mechanism> {
        let scram = if self.tls {
            Mechanism::ScramSha256Plus
        } else {
            Mechanism::ScramSha256
        };
        vec![Mechanism::Ed25519, scram]
    }

    fn throttle(&self) -> Option<&Throttle> {
        Some(&self.throttle)
    }

    fn begin_session(&self, user: &UserName) -> Option<SessionSlot> {
        let max = self.file().users.get(user).and_then(|u| u.max_sessions);
        self.sessions.begin(user, max)
    }

    fn anonymous(&self) -> Option<Rights> {
        self.file().anonymous.as_ref().map(|a| a.rights)
    }

    fn ed25519(
        &self,
        user: &UserName,
        public_key: &[u8; 32],
        signature: &[u8; 64],
        cb: &[u8; 32],
    ) -> Option<Grant> {
        let file = self.file();
        let account = file.users.get(user)?;
        account.key(public_key)?;
        proof::verify(public_key, signature, cb, user).then(|| Grant {
            user: user.clone(),
            rights: account.rights,
        })
    }

    fn scram_start(
        &self,
        client_first: &[u8],
        cb: Option<&[u8; 32]>,
    ) -> Option<(Box<dyn ScramServer>, Vec<u8>)> {
        let file = self.file();
        let lookup = |name: &str| {
            let account = file.users.get(name)?;
            account.password.clone()
        };
        let started = ServerExchange::start(
            &B64.encode(client_first),
            cb.copied(),
            lookup,
            self.secret.as_ref(),
            &self.rng,
        );
        match started {
            Ok((exchange, server_first)) => {
                let server_first = B64.decode(server_first).ok()?;
                Some((Box::new(Pending { exchange, file }), server_first))
            }
            Err(refusal) => {
                tracing::info!(reason = ?refusal.reason(), "scram refused");
                None
            }
        }
    }
}

/// A SCRAM exchange between `more` and `auth-final`.
#[derive(Debug)]
struct Pending {
    exchange: ServerExchange,
    /// The users file the exchange started with (the user's rights come from it).
    file: Arc<UsersFile>,
}

impl ScramServer for Pending {
    fn finish(self: Box<Self>, client_final: &[u8]) -> Option<(Grant, Vec<u8>)> {
        let (user, server_final) = match self.exchange.finish(&B64.encode(client_final)) {
            Ok(done) => done,
            Err(refusal) => {
                tracing::info!(reason = ?refusal.reason(), "scram refused");
                return None;
            }
        };
        let user = UserName::new(&user).ok()?;
        let rights = self.file.users.get(&user)?.rights;
        let server_final = B64.decode(server_final).ok()?;
        Some((Grant { user, rights }, server_final))
    }
}
