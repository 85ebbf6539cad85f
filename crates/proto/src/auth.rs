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

/// One right of a user (16.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Right {
    /// `dir`.
    List,
    /// `get`.
    Read,
    /// `put` of a name that does not exist.
    Create,
    /// `put` that replaces an existing file (with `create`: a put needs `create` first).
    Replace,
    /// Removing files (the file-management extension, reserved).
    Delete,
    /// Renaming files (the file-management extension, reserved).
    Rename,
}

impl Right {
    /// Every right, in the order section 16 lists them.
    pub const ALL: [Right; 6] = [
        Right::List,
        Right::Read,
        Right::Create,
        Right::Replace,
        Right::Delete,
        Right::Rename,
    ];

    /// Its name (in the users file and on the command line).
    pub fn as_str(self) -> &'static str {
        match self {
            Right::List => "list",
            Right::Read => "read",
            Right::Create => "create",
            Right::Replace => "replace",
            Right::Delete => "delete",
            Right::Rename => "rename",
        }
    }

    /// The right of a name.
    pub fn from_name(name: &str) -> Option<Right> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of [`Right`]s.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rights(u8);

impl Rights {
    /// No right at all.
    pub const NONE: Rights = Rights(0);

    /// Every right.
    pub fn all() -> Rights {
        Right::ALL.into_iter().collect()
    }

    /// Read-only: `list` and `read` (the anonymous access's default, 16.4).
    pub fn read_only() -> Rights {
        [Right::List, Right::Read].into_iter().collect()
    }

    /// This set and `right`.
    #[must_use]
    pub fn with(self, right: Right) -> Rights {
        Rights(self.0 | right.bit())
    }

    /// Whether the set holds `right`.
    pub fn has(self, right: Right) -> bool {
        self.0 & right.bit() != 0
    }

    /// The rights held, in [`Right::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = Right> {
        Right::ALL.into_iter().filter(move |r| self.has(*r))
    }

    /// Parses a comma-separated list (`list,read,create`); an unknown name is the error.
    pub fn parse(list: &str) -> Result<Rights, String> {
        let mut rights = Rights::NONE;
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match Right::from_name(name) {
                Some(r) => rights = rights.with(r),
                None => return Err(name.to_owned()),
            }
        }
        Ok(rights)
    }
}

impl FromIterator<Right> for Rights {
    fn from_iter<I: IntoIterator<Item = Right>>(iter: I) -> Self {
        iter.into_iter().fold(Rights::NONE, Rights::with)
    }
}

impl fmt::Display for Rights {
    /// The comma-separated list [`Rights::parse`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Right::as_str).collect();
        f.write_str(&names.join(","))
    }
}

impl fmt::Debug for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rights({self})")
    }
}

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
}

/// A SCRAM exchange after the server-first-message.
pub trait ScramServer: Send + fmt::Debug {
    /// The client-final-message: the grant and the server-final-message, or `None`.
    fn finish(self: Box<Self>, client_final: &[u8]) -> Option<(Grant, Vec<u8>)>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_parse_print_and_test() {
        let r = Rights::parse("read, list,create").expect("rights");
        assert!(r.has(Right::List) && r.has(Right::Read) && r.has(Right::Create));
        assert!(!r.has(Right::Replace));
        assert_eq!(r.to_string(), "list,read,create");
        assert_eq!(Rights::parse(&r.to_string()), Ok(r));
        assert_eq!(Rights::parse("list,write"), Err("write".to_owned()));
        assert_eq!(Rights::parse(""), Ok(Rights::NONE));
        assert_eq!(Rights::all().iter().count(), 6);
        assert_eq!(Rights::read_only().to_string(), "list,read");
    }
}
