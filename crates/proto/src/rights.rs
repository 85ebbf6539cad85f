//! What a user may do: the rights of spec section 16 (`list`, `read`, `create`, `replace`,
//! `delete`, `rename`) and a set of them, written `list,read` on the command line and
//! `["list", "read"]` in the users file.

use std::fmt;
use std::str::FromStr;

#[cfg(feature = "serde")]
use serde::de::{self, Deserializer, SeqAccess, Visitor};
#[cfg(feature = "serde")]
use serde::ser::{SerializeSeq, Serializer};
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// One right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Right {
    /// `dir`: list the user's folder.
    List,
    /// `get`: download a file.
    Read,
    /// `put` of a new name (or `replace` mode on a name that does not exist).
    Create,
    /// `put` replacing an existing file.
    Replace,
    /// Delete a file (reserved for the file-management issue: parsed and stored now).
    Delete,
    /// Rename a file (reserved for the file-management issue: parsed and stored now).
    Rename,
}

impl Right {
    /// Every right, in the canonical order (the order [`Rights`] displays them in).
    pub const ALL: [Right; 6] = [
        Right::List,
        Right::Read,
        Right::Create,
        Right::Replace,
        Right::Delete,
        Right::Rename,
    ];

    /// The right's name as written in the users file and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Right::List => "list",
            Right::Read => "read",
            Right::Create => "create",
            Right::Replace => "replace",
            Right::Delete => "delete",
            Right::Rename => "rename",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A word that is not a right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown right {0:?}: the rights are list, read, create, replace, delete, rename (or all)")]
pub struct UnknownRight(pub String);

impl FromStr for Right {
    type Err = UnknownRight;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Right::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| UnknownRight(s.to_owned()))
    }
}

/// A set of rights.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rights(u8);

impl Rights {
    /// No right at all.
    pub const NONE: Rights = Rights(0);

    /// Every right.
    pub const ALL: Rights = Rights(0b11_1111);

    /// `list` and `read`: the default of anonymous access (read-only).
    pub const READ_ONLY: Rights = Rights(1 << Right::List as u8 | 1 << Right::Read as u8);

    /// Whether the set holds `right`.
    pub fn contains(self, right: Right) -> bool {
        self.0 & right.bit() != 0
    }

    /// Adds `right`.
    pub fn insert(&mut self, right: Right) {
        self.0 |= right.bit();
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The rights in the set, in canonical order.
    pub fn iter(self) -> impl Iterator<Item = Right> {
        Right::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

impl FromIterator<Right> for Rights {
    fn from_iter<I: IntoIterator<Item = Right>>(iter: I) -> Self {
        let mut set = Rights::NONE;
        for r in iter {
            set.insert(r);
        }
        set
    }
}

impl fmt::Debug for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// `list,read,create` (canonical order; nothing for the empty set).
impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(r.name())?;
        }
        Ok(())
    }
}

/// The command line's form: names separated by commas (`list,read`; spaces around a name
/// are ignored; a name given twice counts once), or `all` alone for every right. An empty
/// word (`list,,read`, or an empty string) is an error: a set with no right is written only
/// in the users file (`[]`).
impl FromStr for Rights {
    type Err = UnknownRight;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "all" {
            return Ok(Rights::ALL);
        }
        s.split(',').map(|w| w.trim().parse::<Right>()).collect()
    }
}

/// An array of names, in canonical order.
#[cfg(feature = "serde")]
impl Serialize for Rights {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.iter().count()))?;
        for r in self.iter() {
            seq.serialize_element(r.name())?;
        }
        seq.end()
    }
}

/// An array of names; an unknown name is an error naming it.
#[cfg(feature = "serde")]
impl<'de> Deserialize<'de> for Rights {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Rights;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of rights, e.g. [\"list\", \"read\"]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Rights, A::Error> {
                let mut set = Rights::NONE;
                while let Some(word) = seq.next_element::<String>()? {
                    set.insert(word.parse().map_err(de::Error::custom)?);
                }
                Ok(set)
            }
        }
        deserializer.deserialize_seq(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_form_round_trips_in_canonical_order() {
        let r: Rights = "replace, read,list,read".parse().expect("rights");
        assert_eq!(r.to_string(), "list,read,replace");
        assert!(r.contains(Right::List) && r.contains(Right::Replace));
        assert!(!r.contains(Right::Create) && !r.contains(Right::Delete));
        let all: Rights = "list,read,create,replace,delete,rename"
            .parse()
            .expect("all");
        assert_eq!(all.iter().collect::<Vec<_>>(), Right::ALL);
        assert_eq!(all.to_string().parse::<Rights>(), Ok(all));
        assert_eq!(Rights::READ_ONLY.to_string(), "list,read");
        assert_eq!("all".parse::<Rights>(), Ok(Rights::ALL));
        assert!("all,list".parse::<Rights>().is_err(), "all stands alone");
    }

    #[test]
    fn unknown_or_empty_rights_are_named() {
        let e = "list,write".parse::<Rights>().expect_err("write");
        assert_eq!(e, UnknownRight("write".into()));
        assert!(e.to_string().contains("\"write\""), "{e}");
        assert!(e.to_string().contains("list, read, create"), "{e}");
        assert!("list,,read".parse::<Rights>().is_err());
        assert!("".parse::<Rights>().is_err());
        assert!(
            "List".parse::<Rights>().is_err(),
            "names are case-sensitive"
        );
    }
}
