//! Validated tokens other than names: `text`, `version`, `ext-name`, `param-name`,
//! `param-value`.

use std::fmt;

use crate::limits::{MAX_LINE, MAX_TEXT, MAX_VERSION};

/// Why a token is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TokenError {
    /// The token is empty where the grammar needs at least one character.
    #[error("empty")]
    Empty,
    /// The token is longer than its limit.
    #[error("longer than {0} octets")]
    TooLong(usize),
    /// The token contains a character its rule does not allow.
    #[error("contains the character {0:?}, which is not allowed here")]
    Char(char),
    /// A version number outside 1 ..= 99999.
    #[error("version must be 1 to 99999")]
    Version,
    /// A param name that ferry/1 already defines (set it through the typed field).
    #[error("param name is reserved by ferry/1")]
    Reserved,
    /// A name given twice where names must be distinct (HELLO-3, EXT-1).
    #[error("given twice")]
    Duplicate,
}

/// Human-readable text of an `err` or `abort` line (`text = 1*text-char`). Peers never
/// parse it (ERR-4). At most [`MAX_TEXT`] octets so that the line fits [`MAX_LINE`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Text(String);

impl Text {
    /// Validates `text`.
    pub fn new(text: impl Into<String>) -> Result<Self, TokenError> {
        let text = text.into();
        if text.is_empty() {
            return Err(TokenError::Empty);
        }
        if text.len() > MAX_TEXT {
            return Err(TokenError::TooLong(MAX_TEXT));
        }
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            return Err(TokenError::Char(c));
        }
        Ok(Self(text))
    }

    /// Makes any string into valid text: control characters become `?`, and the text is cut
    /// at a character boundary to fit. `None` when nothing is left.
    pub fn lossy(text: &str) -> Option<Self> {
        let mut out = String::with_capacity(text.len().min(MAX_TEXT));
        for c in text.chars().map(|c| if c.is_control() { '?' } else { c }) {
            if out.len() + c.len_utf8() > MAX_TEXT {
                break;
            }
            out.push(c);
        }
        if out.is_empty() {
            None
        } else {
            Some(Self(out))
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A protocol version number, 1 ..= 99999 (`version` rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(u32);

impl Version {
    /// ferry/1.
    pub const V1: Self = Self(1);

    /// Validates `n`.
    pub const fn new(n: u32) -> Result<Self, TokenError> {
        if n == 0 || n > MAX_VERSION {
            Err(TokenError::Version)
        } else {
            Ok(Self(n))
        }
    }

    /// The number.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

fn lc_token(s: &str) -> Result<(), TokenError> {
    let mut chars = s.chars();
    match chars.next() {
        None => return Err(TokenError::Empty),
        Some(c) if !c.is_ascii_lowercase() => return Err(TokenError::Char(c)),
        Some(_) => {}
    }
    if let Some(c) = chars.find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')) {
        return Err(TokenError::Char(c));
    }
    if s.len() > MAX_LINE / 4 {
        return Err(TokenError::TooLong(MAX_LINE / 4));
    }
    Ok(())
}

macro_rules! lc_token_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The token.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

lc_token_type!(
    /// The name of an extension listed in the greeting's `ext` param (`ext-name` rule),
    /// e.g. `starttls`.
    ExtName
);

impl ExtName {
    /// Validates `name`: a lower-case letter, then lower-case letters, digits and `-`.
    pub fn new(name: impl Into<String>) -> Result<Self, TokenError> {
        let name = name.into();
        lc_token(&name)?;
        Ok(Self(name))
    }
}

lc_token_type!(
    /// The name of a greeting param that ferry/1 does not define (`param-name` rule).
    /// Clients ignore such params (HELLO-6); they are kept so that a decoded greeting
    /// encodes back to the same octets.
    ParamName
);

/// Param names whose values the [`crate::Greeting`] holds in typed fields.
pub(crate) const KNOWN_PARAMS: [&str; 9] = [
    "max-line",
    "max-name",
    "max-size",
    "max-chunk",
    "max-eager",
    "idle",
    "stall",
    "min-rate",
    "ext",
];

impl ParamName {
    /// Validates `name`, which must not be one of the names ferry/1 defines.
    pub fn new(name: impl Into<String>) -> Result<Self, TokenError> {
        let name = name.into();
        lc_token(&name)?;
        if KNOWN_PARAMS.contains(&name.as_str()) {
            return Err(TokenError::Reserved);
        }
        Ok(Self(name))
    }
}

/// The value of an unknown greeting param (`param-value = *vchar-ascii`): printable ASCII
/// without spaces, possibly empty.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParamValue(String);

impl ParamValue {
    /// Validates `value`.
    pub fn new(value: impl Into<String>) -> Result<Self, TokenError> {
        let value = value.into();
        if let Some(c) = value.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(TokenError::Char(c));
        }
        if value.len() > MAX_LINE / 4 {
            return Err(TokenError::TooLong(MAX_LINE / 4));
        }
        Ok(Self(value))
    }

    /// The value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert!(Text::new("no such file").is_ok());
        assert_eq!(Text::new(""), Err(TokenError::Empty));
        assert_eq!(Text::new("a\nb"), Err(TokenError::Char('\n')));
        assert_eq!(
            Text::new("x".repeat(MAX_TEXT + 1)),
            Err(TokenError::TooLong(MAX_TEXT))
        );
        assert_eq!(Text::lossy("a\nb").map(|t| t.0), Some("a?b".to_owned()));
        assert_eq!(Text::lossy(""), None);
        let long = Text::lossy(&"天".repeat(MAX_TEXT)).expect("non-empty");
        assert!(long.as_str().len() <= MAX_TEXT);
    }

    #[test]
    fn token_rules() {
        assert!(ExtName::new("starttls").is_ok());
        assert_eq!(ExtName::new("StartTLS"), Err(TokenError::Char('S')));
        assert_eq!(ExtName::new("1x"), Err(TokenError::Char('1')));
        assert_eq!(ParamName::new("max-size"), Err(TokenError::Reserved));
        assert!(ParamName::new("x-vendor").is_ok());
        assert_eq!(ParamValue::new("a b"), Err(TokenError::Char(' ')));
        assert_eq!(Version::new(0), Err(TokenError::Version));
        assert_eq!(Version::new(100_000), Err(TokenError::Version));
        assert_eq!(Version::new(99_999).map(Version::get), Ok(99_999));
    }
}
