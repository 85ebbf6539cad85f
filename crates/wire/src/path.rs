//! `TreePath`: a `/`-separated path of valid names beneath the served folder (TREE-3), the
//! address of a file or folder in the `tree` extension (spec section 17).

use std::fmt;

use crate::limits::{MAX_DEPTH, MAX_PATH};
use crate::name::{FileName, NameError, validate};

/// Why a string is not a valid path (TREE-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PathError {
    /// The path has no octets.
    #[error("path is empty")]
    Empty,
    /// Longer than [`MAX_PATH`] octets.
    #[error("path is {0} octets long; the limit is 1024")]
    TooLong(usize),
    /// More than [`MAX_DEPTH`] names.
    #[error("path has {0} names; the limit is 64")]
    TooDeep(usize),
    /// A name of the path (counted from 1) is not a valid name: an empty one (a leading,
    /// trailing or doubled `/`), `.`, `..`, or any other fault of section 5.
    #[error("name {index} of the path: {error}")]
    Name {
        /// Which name, from 1.
        index: usize,
        /// What is wrong with it.
        error: NameError,
    },
}

impl PathError {
    /// The [`NameError`] a decoder reports for this path in [`crate::InvalidKind::BadName`]
    /// (answered `err 510 bad-name` like a bad ferry/1 name): the fault of the offending
    /// name, [`NameError::Empty`] for an empty path, and [`NameError::PathTooLong`] /
    /// [`NameError::PathTooDeep`] for the path's own limits.
    pub fn as_name_error(&self) -> NameError {
        match *self {
            PathError::Empty => NameError::Empty,
            PathError::TooLong(n) => NameError::PathTooLong(n),
            PathError::TooDeep(n) => NameError::PathTooDeep(n),
            PathError::Name { error, .. } => error,
        }
    }
}

/// A path (`path` rule): one or more valid names (section 5) joined by `/`, at most
/// [`MAX_PATH`] octets and [`MAX_DEPTH`] names (TREE-3). A one-name path is exactly a ferry/1
/// [`FileName`]. Built only through validation, so it never names `.`, `..`, a hidden entry
/// or anything outside the folder it is resolved in.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TreePath(String);

impl TreePath {
    /// Validates `path`.
    pub fn new(path: impl Into<String>) -> Result<Self, PathError> {
        let path = path.into();
        validate_path(&path)?;
        Ok(Self(path))
    }

    /// Validates raw octets as received from a peer.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PathError> {
        if bytes.len() > MAX_PATH {
            return Err(PathError::TooLong(bytes.len()));
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => Self::new(s),
            Err(e) => {
                // Names before the one that is not UTF-8 may break other rules: report the
                // first fault in order, as for a path that is UTF-8.
                let before = &bytes[..e.valid_up_to()];
                let index = before.iter().filter(|&&b| b == b'/').count() + 1;
                let valid = before
                    .iter()
                    .rposition(|&b| b == b'/')
                    .map_or(&before[..0], |slash| &before[..slash]);
                if !valid.is_empty() {
                    let valid = std::str::from_utf8(valid).unwrap_or_default();
                    validate_path(valid)?;
                }
                Err(PathError::Name {
                    index,
                    error: NameError::NotUtf8,
                })
            }
        }
    }

    /// The path of `names`, in order (at least one).
    pub fn from_names<'a>(
        names: impl IntoIterator<Item = &'a FileName>,
    ) -> Result<Self, PathError> {
        let joined = names
            .into_iter()
            .map(FileName::as_str)
            .collect::<Vec<_>>()
            .join("/");
        Self::new(joined)
    }

    /// `self/name`.
    pub fn join(&self, name: &FileName) -> Result<Self, PathError> {
        Self::new(format!("{}/{}", self.0, name.as_str()))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's octets.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The names of the path, in order (each a valid name).
    pub fn names(&self) -> impl DoubleEndedIterator<Item = &str> + '_ {
        self.0.split('/')
    }

    /// How many names the path has.
    pub fn depth(&self) -> usize {
        self.0.bytes().filter(|&b| b == b'/').count() + 1
    }

    /// The folder the entry is in (`None`: the served folder itself) and the entry's name.
    pub fn split_last(&self) -> (Option<TreePath>, FileName) {
        match self.0.rsplit_once('/') {
            Some((parent, last)) => (
                Some(Self(parent.to_owned())),
                FileName::from_validated(last.to_owned()),
            ),
            None => (None, FileName::from_validated(self.0.clone())),
        }
    }

    /// The path as a ferry/1 name, when it has one name only.
    pub fn as_file_name(&self) -> Option<FileName> {
        if self.0.contains('/') {
            None
        } else {
            Some(FileName::from_validated(self.0.clone()))
        }
    }

    /// Whether `self` is `other` or lies inside it (`other/…`).
    pub fn is_within(&self, other: &TreePath) -> bool {
        self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.starts_with(other.as_str())
                && self.0.as_bytes()[other.0.len()] == b'/')
    }

    /// The path as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<FileName> for TreePath {
    fn from(name: FileName) -> Self {
        Self(name.into_string())
    }
}

impl fmt::Debug for TreePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TreePath({:?})", self.0)
    }
}

impl fmt::Display for TreePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for TreePath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, PathError> {
        Self::new(s)
    }
}

/// Checks TREE-3: length, depth, and every name against section 5.
pub fn validate_path(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.len() > MAX_PATH {
        return Err(PathError::TooLong(path.len()));
    }
    let mut depth = 0;
    for (i, name) in path.split('/').enumerate() {
        depth = i + 1;
        if depth > MAX_DEPTH {
            return Err(PathError::TooDeep(path.split('/').count()));
        }
        validate(name).map_err(|error| PathError::Name {
            index: i + 1,
            error,
        })?;
    }
    debug_assert!(depth >= 1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_paths() {
        for p in [
            "a",
            "a/b",
            "射频/天线15.doc",
            "my docs/report (final).pdf",
            "x./~",
        ] {
            let path = TreePath::new(p).expect("test value");
            assert_eq!(path.as_str(), p);
            assert_eq!(path.depth(), p.split('/').count());
        }
        let deep = vec!["d"; MAX_DEPTH].join("/");
        assert_eq!(TreePath::new(deep).expect("test value").depth(), MAX_DEPTH);
    }

    #[test]
    fn invalid_paths_say_why() {
        assert_eq!(TreePath::new(""), Err(PathError::Empty));
        for (p, index, error) in [
            ("/a", 1, NameError::Empty),
            ("a/", 2, NameError::Empty),
            ("a//b", 2, NameError::Empty),
            ("a/../b", 2, NameError::LeadingDot),
            ("./a", 1, NameError::LeadingDot),
            ("a/.hidden", 2, NameError::LeadingDot),
            ("a/b\\c", 2, NameError::ForbiddenChar('\\')),
            ("a/ b", 2, NameError::EdgeSpace),
            ("a/e\u{301}", 2, NameError::NotNfc),
        ] {
            assert_eq!(
                TreePath::new(p),
                Err(PathError::Name { index, error }),
                "{p:?}"
            );
        }
        let too_deep = vec!["d"; MAX_DEPTH + 1].join("/");
        assert_eq!(
            TreePath::new(too_deep),
            Err(PathError::TooDeep(MAX_DEPTH + 1))
        );
        let too_long = vec!["a".repeat(200); 6].join("/");
        assert_eq!(
            TreePath::new(too_long.clone()),
            Err(PathError::TooLong(too_long.len()))
        );
        assert_eq!(
            TreePath::from_bytes(b"a/b/c\xff/d"),
            Err(PathError::Name {
                index: 3,
                error: NameError::NotUtf8
            })
        );
        assert_eq!(
            TreePath::from_bytes(b"\xff/a"),
            Err(PathError::Name {
                index: 1,
                error: NameError::NotUtf8
            })
        );
        assert_eq!(
            TreePath::from_bytes(b"a/.b/\xff"),
            Err(PathError::Name {
                index: 2,
                error: NameError::LeadingDot
            }),
            "the first fault in order"
        );
    }

    #[test]
    fn split_join_and_within() {
        let p = TreePath::new("a/b c/d").expect("test value");
        let (parent, name) = p.split_last();
        assert_eq!(parent.expect("test value").as_str(), "a/b c");
        assert_eq!(name.as_str(), "d");
        let (none, only) = TreePath::new("x").expect("test value").split_last();
        assert!(none.is_none());
        assert_eq!(only.as_str(), "x");
        assert_eq!(
            TreePath::new("x")
                .expect("test value")
                .as_file_name()
                .expect("test value")
                .as_str(),
            "x"
        );
        assert!(p.as_file_name().is_none());
        let a = TreePath::new("a").expect("test value");
        assert!(p.is_within(&a));
        assert!(a.is_within(&a));
        assert!(!TreePath::new("ab/c").expect("test value").is_within(&a));
        assert!(!a.is_within(&p));
        assert_eq!(
            a.join(&FileName::new("z").expect("test value"))
                .expect("test value")
                .as_str(),
            "a/z"
        );
    }
}
