//! Model-based property tests: random sessions (dir, get, put new/replace × wait/now,
//! corrupt, aborted and disconnected uploads, framing violations, refused requests, garbage
//! and over-long lines, version, close and reconnect, pipelined batches) against each
//! server, every reply checked against the in-memory model of the served folder, and the
//! folder itself checked after every step.
//!
//! Cases: `FERRY_PROPTEST_CASES` or `PROPTEST_CASES` (default 64 per server).

use ferry_matrix_tests::model::run_checked;
use ferry_matrix_tests::ops::{Session, session};
use ferry_matrix_tests::{Impl, cases, proptest_config, server_with};
use proptest::prelude::*;

fn run(imp: Impl, s: &Session) -> Result<(), TestCaseError> {
    let server = server_with(imp, s);
    let result = run_checked(s, server.addr, &server.root);
    let staging = server.wait_staging_empty();
    server
        .stop()
        .map_err(|e| TestCaseError::fail(format!("{imp} server: {e}")))?;
    result.map_err(|e| TestCaseError::fail(format!("{imp} server: {e}")))?;
    prop_assert!(staging, "{imp}: the staging area was not emptied");
    Ok(())
}

proptest! {
    #![proptest_config(proptest_config(cases(64)))]

    #[test]
    fn model_threads(s in session(16, 1)) { run(Impl::Threads, &s)?; }

    #[test]
    fn model_async_std(s in session(16, 1)) { run(Impl::AsyncStd, &s)?; }

    #[test]
    fn model_tokio(s in session(16, 1)) { run(Impl::Tokio, &s)?; }

    #[test]
    fn model_smol(s in session(16, 1)) { run(Impl::Smol, &s)?; }
}
