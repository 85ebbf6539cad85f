//! The server side of the `auth` extension (spec section 16): what a session asks of the
//! server's users when a client authenticates, and what a user may do.
//!
//! The session ([`crate::server::ServerSession`]) reads the extension's requests, enforces
//! the order of the exchange (AUTH-5, AUTH-6, AUTH-7), the same `err 535` for every failure
//! (AUTH-8), `err 530` before authentication (AUTH-17) and the rights of each request
//! (AUTH-19). Checking a proof is the [`Authenticator`]'s: the server's users and keys live
//! behind it (`ferry-auth` implements it over the users file), so that this crate stays
//! free of I/O and of key formats. Its calls are computations on data it holds (a signature
//! check, SCRAM's HMACs), quick enough to run inside the session.

use std::fmt;

pub use ferry_wire::auth::{Mechanism, UserName};

pub use crate::rights::{Right, Rights, UnknownRight};
pub use crate::throttle::{Throttle, ThrottleLimits};

/// Who a session serves once it authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The user.
    pub user: UserName,
    /// What the user may do.
    pub rights: Rights,
}

/// The server's users, as a session asks them (see the module documentation).
pub trait Authenticator: Send + Sync + fmt::Debug {
    /// The mechanisms offered (the greeting's `auth=`, AUTH-1); at least one.
    fn mechanisms(&self) -> Vec<Mechanism>;

    /// The rights of a session that does not authenticate (anonymous access, 16.4), or `None`
    /// when every session must authenticate first (AUTH-17).
    fn anonymous(&self) -> Option<Rights>;

    /// `auth ed25519`: the grant when `signature` is `public_key`'s signature of the proof
    /// message for `user` and `cb` and the key is one of `user`'s (AUTH-10); `None` for any
    /// failure.
    fn ed25519(
        &self,
        user: &UserName,
        public_key: &[u8; 32],
        signature: &[u8; 64],
        cb: &[u8; 32],
    ) -> Option<Grant>;

    /// `auth scram-sha-256-plus`: the exchange and the server-first-message for a
    /// client-first-message (AUTH-11 to AUTH-14), with the session's channel binding (`None`
    /// on a plain connection); `None` when the message is refused at once.
    fn scram_start(
        &self,
        client_first: &[u8],
        cb: Option<&[u8; 32]>,
    ) -> Option<(Box<dyn ScramServer>, Vec<u8>)>;

    /// The throttle of failed authentications (AUTH-20, AUTH-22) every session of the server
    /// shares: a session whose driver gave it the client's address
    /// ([`crate::server::ServerSession::set_peer`]) holds the reply to a failure back as it
    /// says, and answers the `auth` requests of a refused address with
    /// `err 425 auth-throttled`. `None` (the default): no throttling.
    fn throttle(&self) -> Option<&Throttle> {
        None
    }
}

/// A SCRAM exchange after the server-first-message.
pub trait ScramServer: Send + fmt::Debug {
    /// The client-final-message: the grant and the server-final-message, or `None`.
    fn finish(self: Box<Self>, client_final: &[u8]) -> Option<(Grant, Vec<u8>)>;
}
