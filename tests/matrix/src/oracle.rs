//! An independent reading of the spec's request grammar and error rules, written from
//! `spec/protocol.md` and `spec/grammar.abnf` without `ferry-wire`'s parser: which reply a
//! request line gets (ERR-6), which codes close the connection (ERR-5), and which names are
//! valid (NAME-1 … NAME-5). The model and the malformed-input tests take their expectations
//! from here, so a bug shared by the servers through the common codec is still caught.

use unicode_normalization::is_nfc;

/// Longest line, eol included (FRAME-2).
pub const MAX_LINE: usize = 4096;
/// Longest name in octets (NAME-2).
pub const MAX_NAME: usize = 255;

/// Whether `name` is a valid name: NAME-1 (UTF-8), NAME-2 (1 to 255 octets), NAME-3 (no
/// control character U+0000–U+001F, U+007F–U+009F, no `/` or `\`), NAME-4 (no leading `.`,
/// no leading or trailing SP), NAME-5 (NFC), NAME-13 (every code point assigned: its
/// General_Category is not Cn, as the Unicode data of `unicode-properties` says).
pub fn name_is_valid(name: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(name) else {
        return false;
    };
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !s.chars().any(|c| c.is_control() || c == '/' || c == '\\')
        && !s.starts_with('.')
        && !s.starts_with(' ')
        && !s.ends_with(' ')
        && is_nfc(s)
        && s.chars().all(|c| {
            use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
            c.general_category() != GeneralCategory::Unassigned
        })
}

/// A `u64` field (FRAME-5): decimal digits, no sign, no leading zero, at most 2^64 − 1.
pub fn parse_u64(field: &[u8]) -> Option<u64> {
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if field.len() > 1 && field[0] == b'0' {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// A `version` field: 1 to 99999, no leading zero.
pub fn parse_version(field: &[u8]) -> Option<u32> {
    if field.is_empty() || field.len() > 5 || field[0] == b'0' {
        return None;
    }
    if !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// What a server must make of one request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// `dir`.
    Dir,
    /// `close`.
    Close,
    /// `version N`.
    Version(u32),
    /// `get OFFSET NAME` with a valid name.
    Get(u64, Vec<u8>),
    /// `put SIZE MODE FLOW NAME` parsed up to its name; `name_ok` says whether the name is
    /// valid (if not: 510, and for flow `now` the payload is discarded first, PUT-9).
    Put {
        /// SIZE.
        size: u64,
        /// `replace` (else `new`).
        replace: bool,
        /// `now` (else `wait`).
        now: bool,
        /// The name field.
        name: Vec<u8>,
        /// Whether it is a valid name.
        name_ok: bool,
    },
    /// An error reply with no payload involved: 500, 501, 502 or 510 (a `get` with a bad
    /// name).
    Err(u16),
}

/// Whether an error code closes the connection (ERR-5: 420, 421, 422, 501, 502).
pub fn closes(code: u16) -> bool {
    matches!(code, 420 | 421 | 422 | 501 | 502)
}

/// Classifies the request line at the start of `octets` (which may hold more after its LF):
/// returns the class and the length of the line, eol included (`None` for 501: no LF within
/// 4096 octets, the rest is never read as a request).
pub fn classify(octets: &[u8]) -> (Class, Option<usize>) {
    let lf = octets.iter().position(|&b| b == b'\n');
    let Some(lf) = lf.filter(|&p| p < MAX_LINE) else {
        return (Class::Err(501), None);
    };
    let mut line = &octets[..lf];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    (classify_line(line), Some(lf + 1))
}

/// Classifies a request line without its eol (ERR-6).
pub fn classify_line(line: &[u8]) -> Class {
    match line {
        b"dir" => return Class::Dir,
        b"close" => return Class::Close,
        _ => {}
    }
    if let Some(v) = line.strip_prefix(b"version ") {
        return parse_version(v).map_or(Class::Err(500), Class::Version);
    }
    if let Some(rest) = line.strip_prefix(b"get ") {
        let Some(sp) = rest.iter().position(|&b| b == b' ') else {
            return Class::Err(500);
        };
        let Some(offset) = parse_u64(&rest[..sp]) else {
            return Class::Err(500);
        };
        let name = &rest[sp + 1..];
        return if name_is_valid(name) {
            Class::Get(offset, name.to_vec())
        } else {
            Class::Err(510)
        };
    }
    if line == b"put" || line.starts_with(b"put ") {
        return classify_put(&line[3..]).unwrap_or(Class::Err(502));
    }
    Class::Err(500)
}

fn classify_put(rest: &[u8]) -> Option<Class> {
    let mut fields = rest.strip_prefix(b" ")?.splitn(4, |&b| b == b' ');
    let size = parse_u64(fields.next()?)?;
    let replace = match fields.next()? {
        b"new" => false,
        b"replace" => true,
        _ => return None,
    };
    let now = match fields.next()? {
        b"wait" => false,
        b"now" => true,
        _ => return None,
    };
    let name = fields.next()?.to_vec();
    Some(Class::Put {
        size,
        replace,
        now,
        name_ok: name_is_valid(&name),
        name,
    })
}

/// Octets as text in the escapes of the transcript format (section 14): printable ASCII and
/// non-ASCII letters as they are, `\\`, `\n`, `\r`, `\t`, and `\xHH` for other control
/// octets, invalid UTF-8, combining marks (so that a non-NFC name shows), invisible or
/// direction-changing characters, and a trailing SP.
pub fn escape(octets: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = octets;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (v, b) = rest.split_at(e.valid_up_to());
                let bad_len = e.error_len().unwrap_or(b.len());
                (std::str::from_utf8(v).unwrap_or_default(), &b[..bad_len])
            }
        };
        for c in valid.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control()
                    || unicode_normalization::char::is_combining_mark(c)
                    || ('\u{200b}'..='\u{200f}').contains(&c)
                    || ('\u{202a}'..='\u{202e}').contains(&c)
                    || c == '\u{a0}' =>
                {
                    let mut b = [0u8; 4];
                    for o in c.encode_utf8(&mut b).bytes() {
                        out.push_str(&format!("\\x{o:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for o in bad {
            out.push_str(&format!("\\x{o:02x}"));
        }
        rest = &rest[valid.len() + bad.len()..];
    }
    if out.ends_with(' ') {
        out.pop();
        out.push_str("\\x20");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "射频仿真.pptx",
            "天线15.doc",
            "my report (final).pdf",
            "a.b.c",
            "x.",
            "~",
            "é",
        ] {
            assert!(name_is_valid(ok.as_bytes()), "{ok}");
        }
        for bad in [
            ".profile", "..", "a/b", "a\\b", " lead", "trail ", "e\u{301}", "", "a\u{85}",
        ] {
            assert!(!name_is_valid(bad.as_bytes()), "{bad}");
        }
        assert!(name_is_valid(&[b'n'; 255]));
        assert!(!name_is_valid(&[b'n'; 256]));
        assert!(!name_is_valid(b"\xff"));
    }

    #[test]
    fn lines() {
        assert_eq!(classify(b"dir\n"), (Class::Dir, Some(4)));
        assert_eq!(classify(b"dir\r\n"), (Class::Dir, Some(5)));
        assert_eq!(classify(b"dir\r\r\n").0, Class::Err(500));
        assert_eq!(classify(b"DIR\n").0, Class::Err(500));
        assert_eq!(classify(b"get 0 \n").0, Class::Err(510));
        assert_eq!(classify(b"get 00 x\n").0, Class::Err(500));
        assert_eq!(classify(b"get 0  x\n").0, Class::Err(510));
        assert_eq!(classify(b"put\n").0, Class::Err(502));
        assert_eq!(classify(b"putx\n").0, Class::Err(500));
        assert_eq!(classify(b"put 1 NEW wait x\n").0, Class::Err(502));
        assert_eq!(classify(b"version 1\n").0, Class::Version(1));
        assert_eq!(classify(b"version 100000\n").0, Class::Err(500));
        let mut long = vec![b'x'; 4095];
        long.push(b'\n');
        assert_eq!(classify(&long).0, Class::Err(500));
        long.insert(0, b'x');
        assert_eq!(classify(&long), (Class::Err(501), None));
        assert!(matches!(
            classify(b"put 3 new now  x\n").0,
            Class::Put {
                name_ok: false,
                now: true,
                size: 3,
                ..
            }
        ));
    }

    #[test]
    fn escapes() {
        assert_eq!(escape("e\u{301}".as_bytes()), "e\\xcc\\x81");
        assert_eq!(escape(b"trail "), "trail\\x20");
        assert_eq!(escape("天线 a\\b\x7f".as_bytes()), "天线 a\\\\b\\x7f");
        assert_eq!(escape(b"a\xffb"), "a\\xffb");
    }
}
