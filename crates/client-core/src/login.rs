//! The client's side of the `auth` extension (spec section 16): who a session logs in as and
//! what proves it, as [`ClientOptions::login`](crate::ClientOptions::login).
//!
//! The session ([`crate::ClientSession`]) runs the exchange right after the greeting, before
//! it sends any other request (AUTH-5), and completes its first operation
//! ([`crate::Outcome::Connected`]) only once the server has accepted the user: a driver
//! needs no step of its own beyond giving the session the connection's channel binding
//! ([`crate::ClientSession::set_channel_binding`]). Making a proof is a [`Prover`]'s:
//! keys and passwords live behind it (`ferry-auth` implements it for OpenSSH Ed25519 keys and
//! for SCRAM passwords), so that this crate holds no key format and no password.

use std::fmt;
use std::sync::Arc;

use ferry_wire::ErrorReply;
pub use ferry_wire::auth::{AuthRequest, Mechanism, UserName};

/// What proves a user: a key or a password.
pub trait Prover: Send + Sync + fmt::Debug {
    /// What it is, for messages: `the key ~/.ssh/id_ed25519 (SHA256:…)`, `a password`.
    fn describe(&self) -> String;

    /// The mechanism it uses: over TLS (`tls`), or on a plain connection (AUTH-11).
    fn mechanism(&self, tls: bool) -> Mechanism;

    /// The `auth` request for `user` on a connection whose channel binding is `cb` (`None`
    /// on a plain connection, AUTH-9), and for SCRAM the exchange that continues it. An
    /// error is a local failure (a password SASLprep refuses, no randomness), for the user.
    fn begin(&self, user: &UserName, cb: Option<&[u8; 32]>) -> Result<Begun, String>;
}

/// The start of an authentication ([`Prover::begin`]).
#[derive(Debug)]
pub struct Begun {
    /// The `auth` request to send.
    pub request: AuthRequest,
    /// For SCRAM: the exchange that reads `more` and `ok auth`.
    pub exchange: Option<Box<dyn ScramClient>>,
}

/// A SCRAM exchange after the client-first-message.
pub trait ScramClient: Send + Sync + fmt::Debug {
    /// The server-first-message of `more`: the client-final-message of `auth-final`. An
    /// error is a server-first the client must refuse (AUTH-16: a nonce not its own, too few
    /// iterations, a malformed message), for the user.
    fn step(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String>;

    /// The server-final-message of `ok auth`: `Ok` when its signature proves the server
    /// knows the password's verifier (AUTH-15).
    fn finish(self: Box<Self>, server_final: &[u8]) -> Result<(), String>;
}

/// Who a session logs in as, and with what ([`crate::ClientOptions::login`]).
#[derive(Clone)]
pub struct Login {
    user: UserName,
    prover: Arc<dyn Prover>,
    plain: bool,
}

impl Login {
    /// `user`, proven by `prover`; only over TLS (AUTH-3).
    pub fn new(user: UserName, prover: Arc<dyn Prover>) -> Self {
        Self {
            user,
            prover,
            plain: false,
        }
    }

    /// Allows the login on a plain connection, which a client must not do unless its user
    /// explicitly says so (AUTH-3; for tests on loopback): anyone on the path sees the
    /// exchange, and a key's proof could be replayed.
    pub fn allow_plain(mut self, allow: bool) -> Self {
        self.plain = allow;
        self
    }

    /// The user.
    pub fn user(&self) -> &UserName {
        &self.user
    }

    /// What proves the user.
    pub fn prover(&self) -> &dyn Prover {
        &*self.prover
    }

    /// Whether a plain connection may carry the login ([`Login::allow_plain`]).
    pub fn plain_allowed(&self) -> bool {
        self.plain
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user.as_str())
            .field("with", &self.prover.describe())
            .field("plain", &self.plain)
            .finish()
    }
}

/// Two logins are the same when they name the same user with the same prover.
impl PartialEq for Login {
    fn eq(&self, other: &Self) -> bool {
        self.user == other.user
            && Arc::ptr_eq(&self.prover, &other.prover)
            && self.plain == other.plain
    }
}

impl Eq for Login {}

/// A login that did not succeed ([`crate::ClientError::Auth`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    /// The user.
    pub user: String,
    /// What was to prove it ([`Prover::describe`]).
    pub with: String,
    /// What went wrong.
    pub failure: AuthFailure,
}

/// Why a login did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The connection is plain and the login was not allowed on it (AUTH-3).
    PlainConnection,
    /// The server does not offer the `auth` extension.
    NotOffered,
    /// The server offers `auth`, but not the mechanism of this prover.
    Mechanism {
        /// The mechanism of the prover.
        wanted: Mechanism,
        /// What the server offers.
        offered: Vec<Mechanism>,
    },
    /// The server refused: `err 535 auth-failed` (whatever failed, AUTH-8), `426 user-busy`,
    /// `425 auth-throttled`, or another code.
    Refused(ErrorReply),
    /// The server did not prove itself (a wrong SCRAM server signature, AUTH-15; a
    /// server-first the client refuses, AUTH-16) or broke the exchange: the client closed
    /// the connection without sending anything more.
    Server(String),
    /// The proof could not be made here.
    Local(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = &self.user;
        match &self.failure {
            AuthFailure::PlainConnection => write!(
                f,
                "not logging in as {user} on a plain connection, where the exchange can be \
                 seen and a proof replayed (AUTH-3): use ferrys://"
            ),
            AuthFailure::NotOffered => write!(
                f,
                "cannot log in as {user}: the server does not offer authentication (no `auth` \
                 in its greeting)"
            ),
            AuthFailure::Mechanism { wanted, offered } => {
                let offered: Vec<&str> = offered.iter().map(|m| m.as_str()).collect();
                write!(
                    f,
                    "cannot log in as {user} with {}: the server does not accept {} (it \
                     offers {})",
                    self.with,
                    wanted.as_str(),
                    offered.join(", ")
                )
            }
            AuthFailure::Refused(r) => match r.code.get() {
                535 => write!(
                    f,
                    "authentication as {user} with {} failed (535 auth-failed): the server \
                     does not know this user with it",
                    self.with
                ),
                426 => write!(
                    f,
                    "{user} already has as many sessions as the server allows (426 user-busy)"
                ),
                425 => write!(
                    f,
                    "the server refuses logins from this address for a while after too many \
                     failures (425 auth-throttled)"
                ),
                _ => write!(
                    f,
                    "the server refused the login as {user}: {}",
                    crate::error::ErrorDisplay(r)
                ),
            },
            AuthFailure::Server(why) => write!(
                f,
                "the server did not prove itself in the login as {user} ({why}): it may not \
                 be the server you meant; nothing more was sent to it"
            ),
            AuthFailure::Local(why) => write!(f, "cannot log in as {user}: {why}"),
        }
    }
}

impl std::error::Error for AuthError {}
