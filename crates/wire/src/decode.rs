//! Streaming decode: octets in, one message and the number of octets it used out.
//!
//! Every decoder takes the caller's buffer and returns `Ok((message, consumed))`,
//! `Err(DecodeError::Incomplete)` when the buffer holds only a prefix of a message (a normal
//! outcome: read more and call again), or `Err(DecodeError::Invalid(_))` when the octets can
//! never become a valid message. Memory use is bounded: a decoder never looks past
//! [`MAX_LINE`] octets, and reports [`InvalidKind::LineTooLong`] instead of waiting longer.

use crate::code::Code;
use crate::message::{Entry, Frame, Hello, Listed, Reply, Request, SkippedEntry};
use crate::name::{FileName, NameError};
use crate::parse::{self, PErr, PResult, PutHead};

use crate::limits::MAX_LINE;

/// Why decoding did not produce a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The buffer holds a strict prefix of a message: read more octets and decode again.
    #[error("incomplete message: more octets needed")]
    Incomplete,
    /// The octets are not a valid message.
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

/// An invalid message: what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at octet {offset} of the line (rule `{rule}`)")]
pub struct Invalid {
    /// What was wrong.
    pub kind: InvalidKind,
    /// Length of the offending line, eol included, when the line is complete: skipping that
    /// many octets resynchronises on the next line. `None` for [`InvalidKind::LineTooLong`].
    pub line_len: Option<usize>,
    /// Offset within the line of the first octet that does not fit.
    pub offset: usize,
    /// The ABNF rule (of spec/grammar.abnf) that did not match.
    pub rule: &'static str,
}

/// The kinds of invalid input, split by what the receiver must do about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKind {
    /// No LF within [`MAX_LINE`] octets (FRAME-2): the framing is lost.
    #[error("line longer than 4096 octets")]
    LineTooLong,
    /// The line does not match the grammar; the next line can still be read.
    #[error("malformed line")]
    Syntax,
    /// A `put` line that does not parse up to its name: where its payload ends is unknown,
    /// so the connection cannot go on (ERR-6).
    #[error("malformed put line")]
    MalformedPut,
    /// The line parses but its name breaks a NAME rule. For a put, `put` holds the fields
    /// before the name, which say whether a payload follows and how long it is.
    #[error("bad name: {error}")]
    BadName {
        /// The rule the name breaks.
        error: NameError,
        /// For a put line, its size, mode and flow.
        put: Option<PutHead>,
    },
}

impl Invalid {
    /// The code a server answers an invalid *request* with (ERR-1, ERR-6): 501 for an
    /// over-long line, 502 for a malformed put, 510 for a bad name, else 500. A put with
    /// flow `now` above the server's `max-eager` (or any when it is 0) gets 502 whatever its
    /// name (PUT-8): the caller checks that first, since this value does not know the limit.
    pub fn reply_code(&self) -> Code {
        match self.kind {
            InvalidKind::LineTooLong => Code::LINE_TOO_LONG,
            InvalidKind::Syntax => Code::SYNTAX,
            InvalidKind::MalformedPut => Code::PROTOCOL,
            InvalidKind::BadName { .. } => Code::BAD_NAME,
        }
    }
}

/// Finds the next line: `Ok((content_without_eol, len_with_eol))`.
pub(crate) fn split_line(buf: &[u8]) -> Result<(&[u8], usize), DecodeError> {
    let window = &buf[..buf.len().min(MAX_LINE)];
    match window.iter().position(|&b| b == b'\n') {
        Some(lf) => {
            let content = &buf[..lf];
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            Ok((content, lf + 1))
        }
        None if buf.len() >= MAX_LINE => Err(DecodeError::Invalid(Invalid {
            kind: InvalidKind::LineTooLong,
            line_len: None,
            offset: MAX_LINE,
            rule: "eol",
        })),
        None => Err(DecodeError::Incomplete),
    }
}

pub(crate) fn run<'a, T>(
    buf: &'a [u8],
    parser: impl FnOnce(&'a [u8]) -> PResult<'a, T>,
    classify: impl FnOnce(&'a [u8], &PErr<'a>) -> InvalidKind,
) -> Result<(T, usize), DecodeError> {
    let (line, len) = split_line(buf)?;
    match parser(line) {
        Ok((_, msg)) => Ok((msg, len)),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
            let kind = classify(line, &e);
            Err(DecodeError::Invalid(Invalid {
                kind,
                line_len: Some(len),
                offset: line.len() - e.input.len(),
                rule: e.rule.unwrap_or("line"),
            }))
        }
        // Complete parsers on a complete line never ask for more input.
        Err(nom::Err::Incomplete(_)) => Err(DecodeError::Invalid(Invalid {
            kind: InvalidKind::Syntax,
            line_len: Some(len),
            offset: line.len(),
            rule: "line",
        })),
    }
}

fn name_or_syntax(e: &PErr<'_>) -> InvalidKind {
    match e.name {
        Some(error) => InvalidKind::BadName { error, put: None },
        None => InvalidKind::Syntax,
    }
}

/// What ERR-6 makes of a request line that does not decode: a `put` line not parsable up to
/// its name (or path) closes (502); one whose name field is bad is 510 with its framing; any
/// other line with a bad name field is 510, the rest 500. Shared by ferry/1's requests and
/// the `tree` extension's (whose `get`/`put` carry paths), so that both answer alike.
pub(crate) fn request_kind(line: &[u8], e: &PErr<'_>) -> InvalidKind {
    if line.starts_with(b"put ") || line == b"put" {
        match (e.name, parse::put_head(line)) {
            (Some(error), Ok((_, head))) => InvalidKind::BadName {
                error,
                put: Some(head),
            },
            _ => InvalidKind::MalformedPut,
        }
    } else {
        name_or_syntax(e)
    }
}

/// Decodes one client request line (`request` rule).
pub fn decode_request(buf: &[u8]) -> Result<(Request, usize), DecodeError> {
    run(buf, parse::request, request_kind)
}

/// Decodes the server's first line: a greeting or a refusal (`server-hello` rule).
pub fn decode_hello(buf: &[u8]) -> Result<(Hello, usize), DecodeError> {
    run(buf, parse::server_hello, |_, e| name_or_syntax(e))
}

/// Decodes one reply line (`reply` rule). The entries after `ok dir` and the payload after
/// `ok get` are decoded with [`decode_entry`] and [`decode_frame`].
pub fn decode_reply(buf: &[u8]) -> Result<(Reply, usize), DecodeError> {
    run(buf, parse::reply, |_, e| name_or_syntax(e))
}

/// Decodes one listing line (`entry` rule). A hostile or broken server's name is reported as
/// [`InvalidKind::BadName`] with the line's length, so a client can skip that line.
pub fn decode_entry(buf: &[u8]) -> Result<(Entry, usize), DecodeError> {
    run(buf, parse::entry, |_, e| name_or_syntax(e))
}

/// Decodes one listing line as a client reads it (NAME-14): like [`decode_entry`], except
/// that a line that begins with a valid `size` SP `mtime` SP and whose name field (the rest
/// of the line) is not a valid name is [`Listed::Skipped`], with the name's raw octets, rather
/// than invalid: the entry is one line, so the rest of the listing can still be read. Any
/// other line that does not match `entry` (an invalid SIZE or MTIME, a missing field) is
/// [`DecodeError::Invalid`] (ERR-10, DIR-9).
pub fn decode_listed(buf: &[u8]) -> Result<(Listed, usize), DecodeError> {
    match decode_entry(buf) {
        Ok((e, used)) => Ok((Listed::Entry(e), used)),
        Err(DecodeError::Invalid(inv)) => {
            let Some(len) = inv.line_len else {
                return Err(DecodeError::Invalid(inv));
            };
            let (line, _) = split_line(buf)?;
            match parse::entry_head(line) {
                Ok((name, (size, mtime))) => match FileName::from_bytes(name) {
                    Err(error) => Ok((
                        Listed::Skipped(SkippedEntry {
                            size,
                            mtime,
                            name: name.to_vec(),
                            error,
                        }),
                        len,
                    )),
                    // A valid name would have made the line a valid entry.
                    Ok(_) => Err(DecodeError::Invalid(inv)),
                },
                Err(_) => Err(DecodeError::Invalid(inv)),
            }
        }
        Err(e) => Err(e),
    }
}

/// Decodes one payload line: `data LEN`, `end DIGEST` or `abort CODE [TEXT]`. After
/// `data LEN` the next `LEN` octets are raw file data, not a line.
pub fn decode_frame(buf: &[u8]) -> Result<(Frame, usize), DecodeError> {
    run(buf, parse::frame, |_, e| name_or_syntax(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Listing;

    fn line(name: &[u8]) -> Vec<u8> {
        let mut l = b"5 2024-03-01T08:00:00Z ".to_vec();
        l.extend_from_slice(name);
        l.push(b'\n');
        l
    }

    #[test]
    fn listing_lines_with_unacceptable_names_are_skipped_not_invalid() {
        let ok = line("天线15.doc".as_bytes());
        assert!(matches!(decode_listed(&ok), Ok((Listed::Entry(_), n)) if n == ok.len()));
        for (name, error) in [
            ("k\u{16d67}\u{16d67}".as_bytes(), NameError::NotNfc),
            ("a\u{378}".as_bytes(), NameError::Unassigned('\u{378}')),
            (b"../x".as_slice(), NameError::ForbiddenChar('/')),
            (b".hidden".as_slice(), NameError::LeadingDot),
            (b"a/b".as_slice(), NameError::ForbiddenChar('/')),
            (b"caf\xe9".as_slice(), NameError::NotUtf8),
            (b"".as_slice(), NameError::Empty),
        ] {
            let l = line(name);
            match decode_listed(&l) {
                Ok((Listed::Skipped(s), n)) => {
                    assert_eq!(n, l.len());
                    assert_eq!(s.name, name);
                    assert_eq!(s.error, error);
                    assert_eq!(s.size, 5);
                }
                other => panic!("{name:?}: {other:?}"),
            }
            assert!(matches!(decode_entry(&l), Err(DecodeError::Invalid(_))));
        }
        // Lines whose other fields are wrong stay invalid (ERR-10, DIR-9).
        for bad in [
            &b"5 2023-02-30T00:00:00Z a\n"[..],
            b"5 2024-03-01T08:00:60Z a\n",
            b"05 2024-03-01T08:00:00Z a\n",
            b"5 2024-03-01T08:00:00Z\n",
            b"5  2024-03-01T08:00:00Z a\n",
            b"garbage\n",
        ] {
            assert!(
                matches!(decode_listed(bad), Err(DecodeError::Invalid(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            decode_listed(b"5 2024-03-01T08:00:00Z a"),
            Err(DecodeError::Incomplete)
        );
    }

    #[test]
    fn listing_order_covers_skipped_names() {
        let next = |l: &mut Listing, name: &[u8]| {
            let (x, _) = decode_listed(&line(name)).expect("a listing line");
            l.push(x)
        };
        let mut l = Listing::new();
        next(&mut l, b"a").expect("first");
        next(&mut l, "k\u{16d67}\u{16d67}".as_bytes()).expect("skipped, in order");
        next(&mut l, b"z").expect("after the skipped one");
        assert_eq!(l.entries.len(), 2);
        assert_eq!(l.skipped.len(), 1);
        assert!(next(&mut l, b"z").is_err(), "a name twice");
        assert!(next(&mut l, b"b").is_err(), "out of order");
        let mut l = Listing::new();
        next(&mut l, "k\u{16d67}\u{16d67}".as_bytes()).expect("first");
        assert!(
            next(&mut l, "k\u{16d67}\u{16d67}".as_bytes()).is_err(),
            "a skipped name twice"
        );
    }
}
