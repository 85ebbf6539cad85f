//! ferry's `known_hosts` file for trust on first use (spec section 15.4): one server per line,
//! `HOST:PORT SP FINGERPRINT`, IPv6 hosts in brackets, blank lines and `#` comments ignored.
//!
//! A server may have more than one line (an operator rolling its key over adds the new one
//! before the server switches); a key is known when any line for its address has it.

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use crate::{Fingerprint, TlsError};

/// The known_hosts file of the user: `$XDG_CONFIG_HOME/ferry/known_hosts`, else
/// `$HOME/.config/ferry/known_hosts`; `None` when neither variable is set (or is relative).
pub fn default_path() -> Option<PathBuf> {
    config_dir().map(|dir| dir.join("known_hosts"))
}

/// ferry's folder of the user's settings: `$XDG_CONFIG_HOME/ferry`, else
/// `$HOME/.config/ferry` (known_hosts, the client's own key); `None` as for
/// [`default_path`].
pub fn config_dir() -> Option<PathBuf> {
    config_home().map(|dir| dir.join("ferry"))
}

fn config_home() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| {
        let p = PathBuf::from(v);
        p.is_absolute().then_some(p)
    };
    std::env::var_os("XDG_CONFIG_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".config"))
        })
}

/// One remembered key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    /// `host:port` as written (hosts compared without regard to ASCII case).
    address: String,
    fingerprint: Fingerprint,
    /// 1-based line number in the file.
    number: usize,
}

/// What the file says about a server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// No line for this address.
    Unknown,
    /// A line for this address has this key (its line number).
    Matches(usize),
    /// Lines for this address exist and none has this key: the first one's number and key.
    Differs {
        /// The first line for the address.
        line: usize,
        /// The key that line remembers.
        remembered: Fingerprint,
    },
}

/// The remembered keys of one file.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    path: PathBuf,
    lines: Vec<Line>,
}

impl KnownHosts {
    /// Reads `path`; a file that does not exist is an empty list (it is created when the first
    /// key is remembered).
    pub fn load(path: &Path) -> Result<Self, TlsError> {
        let text = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(TlsError::io(path, e)),
        };
        Self::parse(path, &text)
    }

    /// Parses the contents of a known_hosts file (`path` only names it in errors). A line that
    /// is not `HOST:PORT FINGERPRINT` is an error naming it: a damaged file is not read as one
    /// that forgot a key.
    pub fn parse(path: &Path, text: &[u8]) -> Result<Self, TlsError> {
        let bad = |number: usize, why: &str| TlsError::KnownHosts {
            path: path.to_owned(),
            line: number,
            why: why.to_owned(),
        };
        let text = std::str::from_utf8(text).map_err(|e| {
            let number = text[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            bad(number, "not UTF-8")
        })?;
        let mut lines = Vec::new();
        for (i, raw) in text.split('\n').enumerate() {
            let number = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(address), Some(fingerprint), None) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(bad(number, "expected `HOST:PORT SHA256:…`"));
            };
            if !valid_address(address) {
                return Err(bad(number, "the address is not HOST:PORT or [IPv6]:PORT"));
            }
            let fingerprint = fingerprint
                .parse::<Fingerprint>()
                .map_err(|e| bad(number, &e.to_string()))?;
            lines.push(Line {
                address: address.to_owned(),
                fingerprint,
                number,
            });
        }
        Ok(Self {
            path: path.to_owned(),
            lines,
        })
    }

    /// The file this list was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every remembered key: address, fingerprint and line number, in file order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, Fingerprint, usize)> {
        self.lines
            .iter()
            .map(|l| (l.address.as_str(), l.fingerprint, l.number))
    }

    /// Whether `fingerprint` is a known key of `address` (`host:port`, IPv6 in brackets).
    pub fn check(&self, address: &str, fingerprint: &Fingerprint) -> Known {
        let mut first = None;
        for line in self
            .lines
            .iter()
            .filter(|l| same_address(&l.address, address))
        {
            if line.fingerprint == *fingerprint {
                return Known::Matches(line.number);
            }
            first.get_or_insert((line.number, line.fingerprint));
        }
        match first {
            None => Known::Unknown,
            Some((line, remembered)) => Known::Differs { line, remembered },
        }
    }

    /// Appends `address fingerprint` to the file (creating it, and its folder, readable by
    /// the user only) and returns its line number.
    pub fn remember(&mut self, address: &str, fingerprint: Fingerprint) -> Result<usize, TlsError> {
        if !valid_address(address) {
            return Err(TlsError::KnownHosts {
                path: self.path.clone(),
                line: 0,
                why: format!("{address:?} is not HOST:PORT"),
            });
        }
        let io = |e| TlsError::io(&self.path, e);
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io)?;
        }
        let mut file = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .read(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(io)?;
        // Number the new line after what the file holds now (another client may have added
        // lines since it was read).
        let current = fs::read(&self.path).map_err(io)?;
        let mut entry = String::new();
        let mut number = current.iter().filter(|&&b| b == b'\n').count() + 1;
        if !current.is_empty() && !current.ends_with(b"\n") {
            entry.push('\n');
            number += 1;
        }
        entry.push_str(&format!("{address} {fingerprint}\n"));
        // One write with O_APPEND: concurrent clients never interleave within a line.
        file.write_all(entry.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        self.lines.push(Line {
            address: address.to_owned(),
            fingerprint,
            number,
        });
        Ok(number)
    }
}

/// `HOST:PORT` with a non-empty host without whitespace, or `[IPv6]:PORT`.
fn valid_address(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let port_ok =
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok();
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|v6| v6.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty() && !host.contains([':', '[', ']']) && !host.contains(char::is_whitespace)
    };
    port_ok && host_ok
}

fn same_address(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u8) -> Fingerprint {
        Fingerprint::of_spki(&[n])
    }

    #[test]
    fn parse_check_and_remember() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("known_hosts");
        let mut kh = KnownHosts::load(&path).expect("missing file is empty");
        assert_eq!(kh.check("localhost:7451", &fp(1)), Known::Unknown);
        assert_eq!(kh.remember("localhost:7451", fp(1)).expect("remember"), 1);
        assert_eq!(kh.remember("[::1]:7451", fp(2)).expect("remember"), 2);
        let kh = KnownHosts::load(&path).expect("reload");
        assert_eq!(kh.check("LOCALHOST:7451", &fp(1)), Known::Matches(1));
        assert_eq!(
            kh.check("localhost:7451", &fp(3)),
            Known::Differs {
                line: 1,
                remembered: fp(1)
            }
        );
        assert_eq!(kh.check("localhost:7452", &fp(1)), Known::Unknown);
        assert_eq!(kh.check("[::1]:7451", &fp(2)), Known::Matches(2));
        let mode = fs::metadata(&path).expect("meta");
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
    }

    #[test]
    fn comments_blank_lines_and_a_missing_final_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("known_hosts");
        let text = format!("# ferry\n\n  host:1 {}\r\nother:2 {}", fp(1), fp(2));
        fs::write(&path, &text).expect("write");
        let mut kh = KnownHosts::load(&path).expect("parse");
        assert_eq!(kh.check("host:1", &fp(1)), Known::Matches(3));
        assert_eq!(kh.check("other:2", &fp(2)), Known::Matches(4));
        assert_eq!(kh.remember("third:3", fp(3)).expect("remember"), 5);
        let kh = KnownHosts::load(&path).expect("reparse");
        assert_eq!(kh.check("third:3", &fp(3)), Known::Matches(5));
    }

    #[test]
    fn a_second_line_rolls_a_key_over() {
        let text = format!("h:1 {}\nh:1 {}\n", fp(1), fp(2));
        let kh = KnownHosts::parse(Path::new("kh"), text.as_bytes()).expect("parse");
        assert_eq!(kh.check("h:1", &fp(2)), Known::Matches(2));
    }

    #[test]
    fn damaged_lines_are_errors_naming_the_line() {
        for (text, line) in [
            (format!("h:1 {}\nh:1\n", fp(1)), 2),
            (format!("h {}\n", fp(1)), 1),
            (format!("h:99999 {}\n", fp(1)), 1),
            (format!("[zz]:1 {}\n", fp(1)), 1),
            ("\n\nh:1 SHA256:nope\n".to_owned(), 3),
            (format!("h:1 {} extra\n", fp(1)), 1),
        ] {
            let err =
                KnownHosts::parse(Path::new("/x/known_hosts"), text.as_bytes()).expect_err(&text);
            assert!(
                matches!(&err, TlsError::KnownHosts { line: l, .. } if *l == line),
                "{text:?}: {err}"
            );
            assert!(
                err.to_string().contains(&format!("/x/known_hosts:{line}")),
                "{err}"
            );
        }
        let err = KnownHosts::parse(Path::new("kh"), b"a:1 x\n\xff").expect_err("utf-8");
        assert!(matches!(err, TlsError::KnownHosts { line: 2, .. }), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = KnownHosts::parse(Path::new("kh"), &text);
        }
    }
}
