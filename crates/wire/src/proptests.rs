//! Property tests: round trips, prefixes and arbitrary input for every decoder.
//! `PROPTEST_CASES` raises the case count for long runs (default 256 per property).

use proptest::prelude::*;

use crate::decode::{
    DecodeError, decode_entry, decode_frame, decode_hello, decode_reply, decode_request,
};
use crate::strategy;
use crate::tree::{
    ListEntry, ListLine, TreeReply, TreeRequest, decode_list_entry, decode_list_line,
    decode_tree_reply, decode_tree_request,
};
use crate::{FileName, TreePath};

/// The `tree` extension's messages spell their octets `encode`; the macros say `to_bytes`.
trait ToBytes {
    fn to_bytes(&self) -> Vec<u8>;
}

impl ToBytes for TreeRequest {
    fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }
}

impl ToBytes for TreeReply {
    fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }
}

impl ToBytes for ListEntry {
    fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }
}

/// `bytes` with `list recursive,digests ` spelled canonically (`digests,recursive`, same
/// length): TREE-6 lets a client name the options in either order, the encoder writes one.
fn canonical_list_opts(bytes: &[u8]) -> Vec<u8> {
    const SWAPPED: &[u8] = b"list recursive,digests ";
    const CANONICAL: &[u8] = b"list digests,recursive ";
    let mut out = bytes.to_vec();
    if out.starts_with(SWAPPED) {
        out[..CANONICAL.len()].copy_from_slice(CANONICAL);
    }
    out
}

/// [`decode_list_line`] on arbitrary octets: a valid entry is canonical as with
/// [`decode_list_entry`]; a skipped one took the whole line, its path field is the rest of the
/// line after valid fields, and that path is indeed invalid (TREE-3).
fn check_list_line(bytes: &[u8]) -> Result<(), TestCaseError> {
    match decode_list_line(bytes) {
        Ok((ListLine::Entry(e), used)) => {
            prop_assert_eq!(decode_list_entry(bytes), Ok((e, used)));
        }
        Ok((ListLine::Skipped(s), used)) => {
            prop_assert!(TreePath::from_bytes(&s.path).is_err());
            let probe = ListEntry {
                kind: s.kind,
                mtime: s.mtime,
                path: TreePath::from(FileName::new("x").expect("a name")),
            }
            .encode();
            let mut line = probe[..probe.len() - 2].to_vec();
            line.extend_from_slice(&s.path);
            line.push(b'\n');
            let got = &bytes[..used];
            let got = match got.strip_suffix(b"\r\n") {
                Some(body) => [body, b"\n"].concat(),
                None => got.to_vec(),
            };
            prop_assert_eq!(line, got);
            prop_assert!(decode_list_entry(bytes).is_err());
        }
        Err(e) => prop_assert_eq!(decode_list_entry(bytes).err(), Some(e)),
    }
    Ok(())
}

/// Checks the three codec properties for one encoded message:
/// decode gives back the value and consumes every octet; every strict prefix is Incomplete;
/// and trailing octets are left for the next message.
macro_rules! round_trip {
    ($value:expr, $decode:path) => {{
        let value = $value;
        let bytes = value.to_bytes();
        prop_assert_eq!($decode(&bytes), Ok((value.clone(), bytes.len())));
        for cut in 0..bytes.len() {
            prop_assert_eq!(
                $decode(&bytes[..cut]),
                Err(DecodeError::Incomplete),
                "prefix {}",
                cut
            );
        }
        let mut more = bytes.clone();
        more.extend_from_slice(b"dir\n");
        prop_assert_eq!($decode(&more), Ok((value, bytes.len())));
    }};
}

/// Decoding arbitrary octets never panics, and whatever decodes re-encodes to the canonical
/// form of the consumed octets (the same octets, with a CR before the LF dropped).
macro_rules! canonical {
    ($bytes:expr, $decode:path) => {{
        let bytes: &[u8] = $bytes;
        if let Ok((msg, used)) = $decode(bytes) {
            let line = &bytes[..used];
            let canonical: Vec<u8> = match line.strip_suffix(b"\r\n") {
                Some(body) => [body, b"\n"].concat(),
                None => line.to_vec(),
            };
            prop_assert_eq!(msg.to_bytes(), canonical);
        }
    }};
}

proptest! {
    #[test]
    fn requests_round_trip(r in strategy::request()) { round_trip!(r, decode_request); }

    #[test]
    fn replies_round_trip(r in strategy::reply()) { round_trip!(r, decode_reply); }

    #[test]
    fn entries_round_trip(e in strategy::entry()) { round_trip!(e, decode_entry); }

    #[test]
    fn frames_round_trip(f in strategy::frame()) { round_trip!(f, decode_frame); }

    #[test]
    fn hellos_round_trip(h in strategy::hello()) { round_trip!(h, decode_hello); }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        canonical!(&bytes, decode_request);
        canonical!(&bytes, decode_reply);
        canonical!(&bytes, decode_entry);
        canonical!(&bytes, decode_frame);
        canonical!(&bytes, decode_hello);
    }

    /// Mutations of valid lines: one octet changed, inserted or removed. Exercises the
    /// decoders near the grammar's edges far better than uniform random octets.
    #[test]
    fn mutated_lines_decode_canonically_or_not_at_all(
        r in strategy::request(),
        rep in strategy::reply(),
        pos in any::<prop::sample::Index>(),
        octet in any::<u8>(),
        op in 0..3u8,
    ) {
        for mut bytes in [r.to_bytes(), rep.to_bytes()] {
            let i = pos.index(bytes.len());
            match op {
                0 => bytes[i] = octet,
                1 => bytes.insert(i, octet),
                _ => { bytes.remove(i); }
            }
            canonical!(&bytes, decode_request);
            canonical!(&bytes, decode_reply);
            canonical!(&bytes, decode_entry);
            canonical!(&bytes, decode_frame);
        }
    }

    #[test]
    fn tree_requests_round_trip(r in strategy::tree_request()) {
        round_trip!(r, decode_tree_request);
    }

    #[test]
    fn tree_replies_round_trip(r in strategy::tree_reply()) {
        round_trip!(r, decode_tree_reply);
    }

    #[test]
    fn list_entries_round_trip(e in strategy::list_entry()) {
        round_trip!(e.clone(), decode_list_entry);
        let bytes = e.encode();
        prop_assert_eq!(decode_list_line(&bytes), Ok((ListLine::Entry(e), bytes.len())));
    }

    /// `list-opts` in either order means the same (TREE-6); the encoder's order is
    /// `digests,recursive`.
    #[test]
    fn list_options_in_either_order(folder in strategy::tree_path()) {
        let swapped = format!("list recursive,digests {folder}\n");
        let canonical = format!("list digests,recursive {folder}\n");
        prop_assert_eq!(
            decode_tree_request(swapped.as_bytes()),
            decode_tree_request(canonical.as_bytes())
        );
        canonical!(&canonical_list_opts(swapped.as_bytes()), decode_tree_request);
    }

    /// A path is its names joined by `/`, and a one-name path is a ferry/1 name (TREE-3).
    #[test]
    fn paths_are_their_names(p in strategy::tree_path()) {
        let names: Vec<FileName> = p
            .names()
            .map(|n| FileName::new(n).expect("every name of a path is valid"))
            .collect();
        prop_assert_eq!(TreePath::from_names(&names), Ok(p.clone()));
        prop_assert_eq!(p.depth(), names.len());
        prop_assert_eq!(p.as_file_name().is_some(), names.len() == 1);
        prop_assert_eq!(TreePath::from_bytes(p.as_bytes()), Ok(p));
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_tree_decoders(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        prop_assert_eq!(
            decode_tree_request(&bytes),
            decode_tree_request(&canonical_list_opts(&bytes))
        );
        canonical!(&canonical_list_opts(&bytes), decode_tree_request);
        canonical!(&bytes, decode_tree_reply);
        canonical!(&bytes, decode_list_entry);
        check_list_line(&bytes)?;
    }

    /// Mutations of valid lines of the extension, as for ferry/1's above.
    #[test]
    fn mutated_tree_lines_decode_canonically_or_not_at_all(
        r in strategy::tree_request(),
        rep in strategy::tree_reply(),
        e in strategy::list_entry(),
        pos in any::<prop::sample::Index>(),
        octet in any::<u8>(),
        op in 0..3u8,
    ) {
        for mut bytes in [r.encode(), rep.encode(), e.encode()] {
            let i = pos.index(bytes.len());
            match op {
                0 => bytes[i] = octet,
                1 => bytes.insert(i, octet),
                _ => { bytes.remove(i); }
            }
            prop_assert_eq!(
                decode_tree_request(&bytes),
                decode_tree_request(&canonical_list_opts(&bytes))
            );
            canonical!(&canonical_list_opts(&bytes), decode_tree_request);
            canonical!(&bytes, decode_tree_reply);
            canonical!(&bytes, decode_list_entry);
            check_list_line(&bytes)?;
        }
    }

    /// CR LF is accepted and means the same as LF (FRAME-3).
    #[test]
    fn crlf_is_accepted(r in strategy::request()) {
        let mut bytes = r.to_bytes();
        bytes.insert(bytes.len() - 1, b'\r');
        prop_assert_eq!(decode_request(&bytes), Ok((r, bytes.len())));
    }
}
