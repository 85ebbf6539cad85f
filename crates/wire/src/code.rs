//! Reply and abort codes (ERR-1): three digits, the first giving the class.

use std::fmt;

/// Whether retrying can help, read from a code's first digit (ERR-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// `4xx`: the same request may succeed later.
    Transient,
    /// `5xx`: retrying the same request unchanged will fail again.
    Permanent,
    /// Any other first digit: not defined by ferry/1. Clients treat it as permanent.
    Unknown,
}

/// A three-digit reply code. Any value 0 ..= 999 decodes (a client treats an unknown code by
/// its class, ERR-3); the named constants are the closed set ferry/1 defines.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Code(u16);

macro_rules! codes {
    ($($(#[$doc:meta])* $konst:ident = $n:literal, $name:literal, $closes:literal;)*) => {
        impl Code {
            $($(#[$doc])* pub const $konst: Code = Code($n);)*

            /// Every code ferry/1 defines, in ascending order.
            pub const ALL: &'static [Code] = &[$(Code::$konst),*];

            /// The code's short name as written in spec/protocol.md, e.g. `not-found`.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($n => Some($name),)*
                    _ => None,
                }
            }

            /// Whether the server closes the connection after sending this code (ERR-5).
            pub fn closes_connection(self) -> bool {
                match self.0 {
                    $($n => $closes,)*
                    _ => false,
                }
            }
        }
    };
}

codes! {
    /// The server is at its connection cap; sent instead of the greeting.
    BUSY = 420, "busy", true;
    /// Idle or stall timeout.
    TIMEOUT = 421, "timeout", true;
    /// The server is shutting down.
    SHUTTING_DOWN = 422, "shutting-down", true;
    /// The file changed or shrank while it was being sent.
    CHANGED = 430, "changed", false;
    /// An I/O error of the server's (or, in an abort, the sender's) storage.
    STORAGE = 431, "storage", false;
    /// Not enough storage for the upload.
    NO_SPACE = 432, "no-space", false;
    /// The uploaded octets did not match their digest.
    CORRUPT = 433, "corrupt", false;
    /// The sender aborted the upload.
    ABORTED = 434, "aborted", false;
    /// A malformed or unknown request line.
    SYNTAX = 500, "syntax", false;
    /// No LF within MAX_LINE octets.
    LINE_TOO_LONG = 501, "line-too-long", true;
    /// A framing violation: the payload's extent is unknown or wrong.
    PROTOCOL = 502, "protocol", true;
    /// A version or extension the server does not offer.
    UNSUPPORTED = 503, "unsupported", false;
    /// The name breaks a NAME rule.
    BAD_NAME = 510, "bad-name", false;
    /// No file of that name.
    NOT_FOUND = 511, "not-found", false;
    /// `put … new` and the name exists.
    EXISTS = 512, "exists", false;
    /// The declared size exceeds `max-size`.
    TOO_LARGE = 513, "too-large", false;
    /// The server refuses uploads.
    READ_ONLY = 514, "read-only", false;
    /// The get offset exceeds the file size.
    BAD_OFFSET = 515, "bad-offset", false;
    /// The server's storage refuses access (permission denied) to the file of a get or to
    /// the staging file or the name of a put.
    DENIED = 516, "denied", false;
}

impl Code {
    /// Any three-digit value; `None` above 999.
    pub const fn new(n: u16) -> Option<Self> {
        if n > 999 { None } else { Some(Self(n)) }
    }

    /// The numeric value.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The class of the code (its first digit).
    pub const fn class(self) -> Class {
        match self.0 / 100 {
            4 => Class::Transient,
            5 => Class::Permanent,
            _ => Class::Unknown,
        }
    }

    /// Whether ferry/1 defines this code.
    pub fn is_known(self) -> bool {
        self.name().is_some()
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03}", self.0)
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{:03}({name})", self.0),
            None => write!(f, "{:03}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_closing_codes() {
        assert_eq!(Code::NOT_FOUND.class(), Class::Permanent);
        assert_eq!(Code::NO_SPACE.class(), Class::Transient);
        assert_eq!(Code::new(250).map(Code::class), Some(Class::Unknown));
        let closing: Vec<u16> = Code::ALL
            .iter()
            .filter(|c| c.closes_connection())
            .map(|c| c.get())
            .collect();
        assert_eq!(closing, [420, 421, 422, 501, 502]);
        assert_eq!(Code::ALL.len(), 19);
        assert_eq!(Code::DENIED.class(), Class::Permanent);
        assert_eq!(Code::DENIED.name(), Some("denied"));
        assert!(Code::ALL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(Code::new(7).map(|c| c.to_string()), Some("007".to_owned()));
        assert_eq!(Code::new(1000), None);
    }
}
