#![no_main]
//! The trust-on-first-use inputs a client reads from disk or the command line: ferry's
//! known_hosts file and key fingerprints (spec section 15.3, 15.4). Never a panic; what parses
//! is consistent: a fingerprint prints as it was written, every remembered key is found again
//! for its address, and a key the file does not hold is never a match.

use std::path::Path;

use ferry_tls::known_hosts::Known;
use ferry_tls::{Fingerprint, KnownHosts};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(fp) = text.parse::<Fingerprint>()
    {
        assert_eq!(fp.to_string(), text);
    }
    let Ok(known) = KnownHosts::parse(Path::new("known_hosts"), data) else {
        return;
    };
    let stranger = Fingerprint::of_spki(data);
    for (address, fp, line) in known.entries() {
        assert!(line >= 1);
        match known.check(address, &fp) {
            Known::Matches(n) => assert!(n <= line),
            other => panic!("{address} {fp} on line {line} not found: {other:?}"),
        }
        let lines_with_stranger = known
            .entries()
            .any(|(a, f, _)| a.eq_ignore_ascii_case(address) && f == stranger);
        if !lines_with_stranger {
            assert!(matches!(
                known.check(address, &stranger),
                Known::Differs { .. }
            ));
        }
    }
});
