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
//!
//! What the sessions of a server share lives behind the authenticator too, so that it
//! outlives a reload of the users: the [`Throttle`] of failed authentications per address
//! (AUTH-20, AUTH-22) and the [`Sessions`] of each user (AUTH-21: a session holds a
//! [`SessionSlot`] from its successful `auth` until it is dropped).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

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

    /// AUTH-21: `user` has just proved who it is; the place its session holds among the
    /// user's sessions while it lasts (given back when the session is dropped, however it
    /// ends), or `None` when the user has its maximum of concurrent sessions: the session is
    /// then answered `err 426 user-busy` and stays unauthenticated. The default: no limit.
    fn begin_session(&self, user: &UserName) -> Option<SessionSlot> {
        let _ = user;
        Some(SessionSlot::unlimited())
    }
}

/// The sessions in progress of each user (AUTH-21), shared by the sessions of a server: a
/// count per user name, for the users with a session only (so its size is bounded by the
/// sessions in progress). Kept by the authenticator across reloads of its users, so that a
/// new limit applies to the sessions already counted and no count is lost.
#[derive(Debug, Default)]
pub struct Sessions {
    counts: Mutex<HashMap<UserName, u32>>,
}

impl Sessions {
    /// No session yet.
    pub fn new() -> Arc<Sessions> {
        Arc::default()
    }

    /// A place for one more session of `user` when fewer than `max` are in progress (`None`:
    /// no limit; counted all the same, so that a limit set later counts them).
    pub fn begin(self: &Arc<Self>, user: &UserName, max: Option<u32>) -> Option<SessionSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(user.clone()).or_insert(0);
        if max.is_some_and(|max| *count >= max) {
            if *count == 0 {
                counts.remove(user);
            }
            return None;
        }
        *count += 1;
        Some(SessionSlot {
            held: Some((Arc::clone(self), user.clone())),
        })
    }

    /// How many sessions of `user` are in progress.
    pub fn count(&self, user: &UserName) -> u32 {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(user).copied().unwrap_or(0)
    }

    /// How many users have a session in progress.
    pub fn users(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn end(&self, user: &UserName) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(user);
            }
        }
    }
}

/// One session's place among its user's sessions ([`Sessions::begin`]), given back when
/// dropped.
#[derive(Debug)]
pub struct SessionSlot {
    held: Option<(Arc<Sessions>, UserName)>,
}

impl SessionSlot {
    /// A place that counts nothing (an authenticator without limits).
    pub fn unlimited() -> SessionSlot {
        SessionSlot { held: None }
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        if let Some((sessions, user)) = self.held.take() {
            sessions.end(&user);
        }
    }
}

/// A SCRAM exchange after the server-first-message.
pub trait ScramServer: Send + fmt::Debug {
    /// The client-final-message: the grant and the server-final-message, or `None`.
    fn finish(self: Box<Self>, client_final: &[u8]) -> Option<(Grant, Vec<u8>)>;
}
