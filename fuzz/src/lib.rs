//! Shared checks for ferry's fuzz targets (each target is a line or two calling these).

use ferry_wire::{DecodeError, Entry, Frame, Hello, Reply, Request};

/// A message the codec can encode.
pub trait Wire: Clone + PartialEq + std::fmt::Debug {
    /// Canonical octets.
    fn bytes(&self) -> Vec<u8>;
}

macro_rules! wire {
    ($($t:ty),*) => { $(impl Wire for $t { fn bytes(&self) -> Vec<u8> { self.to_bytes() } })* };
}
wire!(Request, Reply, Entry, Frame, Hello);

impl Wire for ferry_wire::auth::AuthRequest {
    fn bytes(&self) -> Vec<u8> {
        self.encode()
    }
}

impl Wire for ferry_wire::auth::AuthReply {
    fn bytes(&self) -> Vec<u8> {
        self.encode()
    }
}

macro_rules! wire_encode {
    ($($t:ty),*) => { $(impl Wire for $t { fn bytes(&self) -> Vec<u8> { self.encode() } })* };
}
wire_encode!(
    ferry_wire::tree::TreeRequest,
    ferry_wire::tree::TreeReply,
    ferry_wire::tree::ListEntry
);

/// [`ferry_wire::tree::decode_tree_request`] on arbitrary octets, as [`check_decode`] checks
/// every decoder. `list-opts` may name its two options in either order (TREE-6) while the
/// encoder writes `digests,recursive`: a line with `recursive,digests` must decode exactly
/// as the same line with the canonical order (same length), which is then checked.
pub fn check_tree_request(data: &[u8]) {
    use ferry_wire::tree::decode_tree_request;
    const SWAPPED: &[u8] = b"list recursive,digests ";
    const CANONICAL: &[u8] = b"list digests,recursive ";
    if data.starts_with(SWAPPED) {
        let mut canonical = data.to_vec();
        canonical[..CANONICAL.len()].copy_from_slice(CANONICAL);
        assert_eq!(decode_tree_request(data), decode_tree_request(&canonical));
        check_decode(&canonical, decode_tree_request);
    } else {
        check_decode(data, decode_tree_request);
    }
}

/// [`ferry_wire::tree::decode_list_line`] on arbitrary octets: what it reads as an entry is
/// what [`ferry_wire::tree::decode_list_entry`] reads; what it skips took the whole line, its
/// path field is the line's rest after valid fields (the same fields spelled canonically) and
/// that path is indeed invalid; what it refuses, the strict decoder refuses alike.
pub fn check_list_line(data: &[u8]) {
    use ferry_wire::tree::{ListEntry, ListLine, decode_list_entry, decode_list_line};
    match decode_list_line(data) {
        Ok((ListLine::Entry(e), used)) => assert_eq!(decode_list_entry(data), Ok((e, used))),
        Ok((ListLine::Skipped(s), used)) => {
            assert!(ferry_wire::TreePath::from_bytes(&s.path).is_err());
            let probe = ListEntry {
                kind: s.kind,
                mtime: s.mtime,
                path: ferry_wire::TreePath::new("x").expect("a path"),
            }
            .encode();
            let mut line = probe[..probe.len() - 2].to_vec();
            line.extend_from_slice(&s.path);
            line.push(b'\n');
            let got = &data[..used];
            let got = match got.strip_suffix(b"\r\n") {
                Some(body) => [body, b"\n"].concat(),
                None => got.to_vec(),
            };
            assert_eq!(line, got);
            assert!(decode_list_entry(data).is_err());
        }
        Err(e) => assert_eq!(decode_list_entry(data).err(), Some(e)),
    }
}

/// [`ferry_wire::auth::decode_auth_request`] as a [`Decoder`]: an `auth` line with an unknown
/// mechanism (which has no canonical form to re-encode) must start with `auth ` and counts
/// as invalid here.
pub fn decode_auth_request(
    buf: &[u8],
) -> Result<(ferry_wire::auth::AuthRequest, usize), DecodeError> {
    use ferry_wire::auth::AuthLine;
    match ferry_wire::auth::decode_auth_request(buf)? {
        (AuthLine::Request(r), n) => Ok((r, n)),
        (AuthLine::UnknownMechanism, n) => {
            assert!(
                buf.starts_with(b"auth "),
                "an unknown mechanism outside `auth`"
            );
            Err(DecodeError::Invalid(ferry_wire::Invalid {
                kind: ferry_wire::InvalidKind::Syntax,
                line_len: Some(n),
                offset: 0,
                rule: "auth-req",
            }))
        }
    }
}

/// A decoder of one message kind.
pub type Decoder<T> = fn(&[u8]) -> Result<(T, usize), DecodeError>;

/// Arbitrary octets: decoding never panics and looks at no more than one line; what decodes
/// re-encodes to the canonical form of the octets it consumed and decodes back to itself.
pub fn check_decode<T: Wire>(data: &[u8], decode: Decoder<T>) {
    match decode(data) {
        Ok((msg, used)) => {
            assert!(used <= data.len() && used <= ferry_wire::limits::MAX_LINE);
            let line = &data[..used];
            let canonical = match line.strip_suffix(b"\r\n") {
                Some(body) => [body, b"\n"].concat(),
                None => line.to_vec(),
            };
            let bytes = msg.bytes();
            assert_eq!(bytes, canonical);
            assert_eq!(decode(&bytes), Ok((msg, bytes.len())));
        }
        Err(DecodeError::Incomplete) => {
            assert!(data.len() < ferry_wire::limits::MAX_LINE);
            assert!(!data.contains(&b'\n'));
        }
        Err(DecodeError::Invalid(e)) => {
            if let Some(len) = e.line_len {
                assert!(len <= data.len() && e.offset < len);
            }
        }
    }
}

/// An arbitrary valid message encodes to octets that decode to the same message, consuming
/// all of them, and every strict prefix is Incomplete.
pub fn check_roundtrip<T: Wire>(msg: &T, decode: Decoder<T>) {
    let bytes = msg.bytes();
    assert_eq!(decode(&bytes), Ok((msg.clone(), bytes.len())));
    for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
        if cut < bytes.len() {
            assert_eq!(decode(&bytes[..cut]), Err(DecodeError::Incomplete));
        }
    }
}

/// Decodes a stream of messages from a buffer that grows in the given pieces, the way a
/// receiver reads from a socket. Returns the messages and how the stream ended.
pub fn decode_stream<T: Wire>(
    data: &[u8],
    cuts: &[usize],
    decode: Decoder<T>,
) -> (Vec<T>, Option<String>) {
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut cuts = cuts.iter().copied().chain(std::iter::repeat(usize::MAX));
    loop {
        match decode(&buf) {
            Ok((msg, used)) => {
                out.push(msg);
                buf.drain(..used);
            }
            Err(DecodeError::Invalid(e)) => return (out, Some(format!("{:?}", e.kind))),
            Err(DecodeError::Incomplete) => {
                if fed == data.len() {
                    return (out, None);
                }
                let n = cuts.next().unwrap_or(usize::MAX).clamp(1, data.len() - fed);
                buf.extend_from_slice(&data[fed..fed + n]);
                fed += n;
            }
        }
    }
}
