//! Differential runs: the same random raw session (request lines and payloads as octets,
//! pipelined batches included; `wait` puts send their payload after `go`) against the
//! threaded server and each async runtime, on fresh identical served folders. After every
//! op the replies must be equal modulo `ferry_matrix_tests::normalize::normalize` (the one
//! list of allowed differences), and at the end the two folders must hold the same files.
//!
//! Cases: `FERRY_PROPTEST_CASES` or `PROPTEST_CASES` (default 48 per pair).

use ferry_matrix_tests::diff::run_pair;
use ferry_matrix_tests::ops::{Session, session};
use ferry_matrix_tests::{Impl, cases, proptest_config};
use proptest::prelude::*;

fn run(b: Impl, s: &Session) -> Result<(), TestCaseError> {
    run_pair(s, Impl::Threads, b, false, false).map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(proptest_config(cases(48)))]

    #[test]
    fn threads_vs_async_std(s in session(20, 2)) { run(Impl::AsyncStd, &s)?; }

    #[test]
    fn threads_vs_tokio(s in session(20, 2)) { run(Impl::Tokio, &s)?; }

    #[test]
    fn threads_vs_smol(s in session(20, 2)) { run(Impl::Smol, &s)?; }
}
