//! Property tests: round trips, prefixes and arbitrary input for every decoder.
//! `PROPTEST_CASES` raises the case count for long runs (default 256 per property).

use proptest::prelude::*;

use crate::decode::{
    DecodeError, decode_entry, decode_frame, decode_hello, decode_reply, decode_request,
};
use crate::strategy;

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

    /// CR LF is accepted and means the same as LF (FRAME-3).
    #[test]
    fn crlf_is_accepted(r in strategy::request()) {
        let mut bytes = r.to_bytes();
        bytes.insert(bytes.len() - 1, b'\r');
        prop_assert_eq!(decode_request(&bytes), Ok((r, bytes.len())));
    }
}
