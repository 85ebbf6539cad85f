//! Malformed raw sessions (generated): garbage lines, lines around the 4096-octet limit,
//! bad numbers and keywords, bad names (in `get`, in `wait` puts, in eager puts whose
//! payload must be discarded), SIZE over `max-size`, and put payloads that break their
//! framing (after a refusal or not), alone or inside a pipelined batch; each after a few
//! valid requests and followed by `dir` and `close`. Against the threaded server and each
//! async runtime:
//!
//! - both answer alike (after `normalize`), and as the model and the independent oracle
//!   of ERR-6 say (same code, hence the same class);
//! - ERR-5: after a closing code (501, 502) the connection ends (EOF) and the `dir` needs a
//!   new connection; after any other code the `dir` is answered on the same connection.
//!
//! Cases: `FERRY_PROPTEST_CASES` or `PROPTEST_CASES` (default 96 per pair).

use ferry_matrix_tests::diff::run_pair;
use ferry_matrix_tests::ops::{Session, malformed_session};
use ferry_matrix_tests::{Impl, cases, proptest_config};
use proptest::prelude::*;

fn run(b: Impl, s: &Session) -> Result<(), TestCaseError> {
    run_pair(s, Impl::Threads, b, true, true).map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(proptest_config(cases(96)))]

    #[test]
    fn threads_vs_async_std(s in malformed_session()) { run(Impl::AsyncStd, &s)?; }

    #[test]
    fn threads_vs_tokio(s in malformed_session()) { run(Impl::Tokio, &s)?; }

    #[test]
    fn threads_vs_smol(s in malformed_session()) { run(Impl::Smol, &s)?; }
}
