//! `FileName`: a validated ferry file name (NAME-1 .. NAME-5, NAME-13).
//!
//! ferry/1 pins the Unicode version that decides NFC (NAME-5) and which code points are
//! assigned (NAME-13): [`UNICODE_VERSION`], 18.0.0, the version of the data of
//! `unicode-normalization` and `unicode-properties` that this crate uses. A test checks that
//! both crates report exactly that version, so a dependency bump cannot change which names
//! are valid without a change to the specification.

use std::fmt;

use unicode_normalization::{IsNormalized, is_nfc_quick};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::limits::MAX_NAME;

/// The Unicode version ferry/1 pins for its name rules (NAME-5, NAME-13): 18.0.0.
pub const UNICODE_VERSION: (u8, u8, u8) = (18, 0, 0);

/// Whether `c` is assigned (General_Category other than Cn) in [`UNICODE_VERSION`]
/// (NAME-13).
pub fn is_assigned(c: char) -> bool {
    c.general_category() != GeneralCategory::Unassigned
}

/// Why a string is not a valid ferry file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum NameError {
    /// The name has no octets (NAME-2).
    #[error("name is empty")]
    Empty,
    /// The name is longer than [`MAX_NAME`] octets (NAME-2).
    #[error("name is {0} octets long; the limit is 255")]
    TooLong(usize),
    /// The octets are not well-formed UTF-8 (NAME-1).
    #[error("name is not valid UTF-8")]
    NotUtf8,
    /// The name contains a control character, `/` or `\` (NAME-3).
    #[error("name contains the forbidden character {0:?}")]
    ForbiddenChar(char),
    /// The name begins with `.` (NAME-4): `.`, `..` and hidden names are never valid.
    #[error("name begins with '.'")]
    LeadingDot,
    /// The name begins or ends with a space (NAME-4).
    #[error("name begins or ends with a space")]
    EdgeSpace,
    /// The name is not in Unicode Normalization Form C (NAME-5).
    #[error("name is not in Unicode Normalization Form C")]
    NotNfc,
    /// The name contains a code point that Unicode 18.0.0 does not assign (NAME-13).
    #[error("name contains U+{:04X}, which Unicode 18.0.0 does not assign", *.0 as u32)]
    Unassigned(char),
    /// A path of the `tree` extension (section 17) longer than [`crate::limits::MAX_PATH`]
    /// octets (TREE-3). Never a fault of a [`FileName`]: only a request or listing line's
    /// path field reports it, so that a bad path is the same `bad-name` as a bad name.
    #[error("path is {0} octets long; the limit is 1024")]
    PathTooLong(usize),
    /// A path of the `tree` extension with more than [`crate::limits::MAX_DEPTH`] names
    /// (TREE-3); like [`NameError::PathTooLong`], never a fault of a [`FileName`].
    #[error("path has {0} names; the limit is 64")]
    PathTooDeep(usize),
}

/// A file name that satisfies every rule of the `name` ABNF rule and its prose
/// (1 to 255 octets of NFC UTF-8, every code point assigned in Unicode 18.0.0, no controls,
/// `/` or `\`, no leading `.`, no leading or trailing space). Because the only way to build one is through
/// validation, the encoder cannot emit a name the decoder rejects.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileName(String);

impl FileName {
    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        validate(&name)?;
        Ok(Self(name))
    }

    /// A name already validated as part of something that only holds valid names (a
    /// [`crate::TreePath`]'s names): no second check, no panic.
    pub(crate) fn from_validated(name: String) -> Self {
        debug_assert!(validate(&name).is_ok(), "{name:?} was validated");
        Self(name)
    }

    /// Validates raw octets as received from a peer.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, NameError> {
        if bytes.is_empty() {
            return Err(NameError::Empty);
        }
        if bytes.len() > MAX_NAME {
            return Err(NameError::TooLong(bytes.len()));
        }
        let s = std::str::from_utf8(bytes).map_err(|_| NameError::NotUtf8)?;
        Self::new(s)
    }

    /// Converts `name` to NFC first, then validates it: what a client does with a local file
    /// name before `put` (NAME-5), so that a macOS NFD name is sent in its NFC form.
    pub fn from_local(name: &str) -> Result<Self, NameError> {
        use unicode_normalization::UnicodeNormalization;
        Self::new(name.nfc().collect::<String>())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name's octets.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The name as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Checks every rule of NAME-1 .. NAME-5 and NAME-13.
pub fn validate(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME {
        return Err(NameError::TooLong(name.len()));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(NameError::ForbiddenChar(c));
    }
    if name.starts_with('.') {
        return Err(NameError::LeadingDot);
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Err(NameError::EdgeSpace);
    }
    // NAME-13 before NAME-5: NFC is only decided for assigned code points.
    if let Some(c) = name.chars().find(|&c| !is_assigned(c)) {
        return Err(NameError::Unassigned(c));
    }
    let nfc = match is_nfc_quick(name.chars()) {
        IsNormalized::Yes => true,
        IsNormalized::No => false,
        IsNormalized::Maybe => unicode_normalization::is_nfc(name),
    };
    if !nfc {
        return Err(NameError::NotNfc);
    }
    Ok(())
}

impl fmt::Debug for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for FileName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for FileName {
    type Error = NameError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl TryFrom<String> for FileName {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl std::str::FromStr for FileName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_names_of_the_teaching_program() {
        for ok in [
            "射频仿真.pptx",
            "天线15.doc",
            "my report (final).pdf",
            "a",
            "x.y.z",
            "a b",
        ] {
            assert_eq!(
                FileName::new(ok).map(|n| n.into_string()),
                Ok(ok.to_owned())
            );
        }
        assert!(FileName::new("é".repeat(127)).is_ok(), "254 octets");
        assert!(FileName::new("a".repeat(255)).is_ok());
    }

    #[test]
    fn each_rule_has_its_error() {
        let cases: &[(&str, NameError)] = &[
            ("", NameError::Empty),
            (&"a".repeat(256), NameError::TooLong(256)),
            ("a/b", NameError::ForbiddenChar('/')),
            ("a\\b", NameError::ForbiddenChar('\\')),
            ("a\0b", NameError::ForbiddenChar('\0')),
            ("a\nb", NameError::ForbiddenChar('\n')),
            ("a\tb", NameError::ForbiddenChar('\t')),
            ("a\u{7f}", NameError::ForbiddenChar('\u{7f}')),
            ("a\u{85}", NameError::ForbiddenChar('\u{85}')),
            (".", NameError::LeadingDot),
            ("..", NameError::LeadingDot),
            (".bashrc", NameError::LeadingDot),
            (" a", NameError::EdgeSpace),
            ("a ", NameError::EdgeSpace),
            ("e\u{301}", NameError::NotNfc),
        ];
        for (name, want) in cases {
            assert_eq!(FileName::new(*name), Err(*want), "{name:?}");
        }
        assert_eq!(FileName::from_bytes(b"\xff"), Err(NameError::NotUtf8));
    }

    #[test]
    fn the_unicode_version_is_pinned() {
        // NAME-5 and NAME-13 are decided with Unicode 18.0.0 data: a dependency bump that
        // brings other data must fail here, not change the rule silently.
        let norm = unicode_normalization::UNICODE_VERSION;
        let props = unicode_properties::UNICODE_VERSION;
        let ours = UNICODE_VERSION;
        assert_eq!(norm, ours, "unicode-normalization's data");
        assert_eq!(
            props,
            (u64::from(ours.0), u64::from(ours.1), u64::from(ours.2)),
            "unicode-properties' data"
        );
    }

    #[test]
    fn names_follow_unicode_18() {
        // U+16D67 U+16D67 composes to U+16D68 (Kirat Rai, Unicode 16.0): not NFC, although
        // data older than 16.0 sees two unassigned code points and calls it NFC (NAME-5).
        assert_eq!(FileName::new("k\u{16d67}\u{16d67}"), Err(NameError::NotNfc));
        assert!(FileName::new("k\u{16d68}").is_ok());
        // U+0378 is unassigned (NAME-13), as is a noncharacter.
        assert_eq!(
            FileName::new("a\u{378}b"),
            Err(NameError::Unassigned('\u{378}'))
        );
        assert_eq!(
            FileName::new("x\u{ffff}"),
            Err(NameError::Unassigned('\u{ffff}'))
        );
        assert_eq!(
            FileName::from_bytes("\u{378}".as_bytes()),
            Err(NameError::Unassigned('\u{378}'))
        );
        // U+10940 SIDETIC LETTER N01 (Unicode 17.0: unassigned in 16.0): a starter without a
        // decomposition, so a valid name on its own and after a Latin letter.
        assert!(is_assigned('\u{10940}'));
        assert!(FileName::new("\u{10940}").is_ok());
        assert!(FileName::new("a\u{10940}.txt").is_ok());
        // Private use code points are assigned (General_Category Co).
        assert!(FileName::new("\u{e000}").is_ok());
    }

    #[test]
    fn local_names_are_normalised_to_nfc() {
        let n = FileName::from_local("e\u{301}.txt").expect("valid after NFC");
        assert_eq!(n.as_str(), "\u{e9}.txt");
    }
}
