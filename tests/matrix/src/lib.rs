//! # ferry-matrix-tests: every ferry implementation against every other
//!
//! The library holds what the test binaries in `tests/` share:
//!
//! - [`content`]: file contents as `(length, seed)`, generated on demand (cheap to shrink and
//!   to print).
//! - [`oracle`]: an independent reading of the request grammar and of ERR-5/ERR-6 (which
//!   code a request line gets, whether it closes), and of the name rules (NAME-1 … NAME-5).
//! - [`ops`]: the operations of a random session, their proptest strategies, their rendering
//!   to octets and their `Debug` as wire lines.
//! - [`exec`]: a raw-socket executor for those operations (every read under a timeout) that
//!   records what the server sent as protocol messages.
//! - [`model`]: the in-memory model of the served folder and of the session, which predicts
//!   every reply.
//! - [`normalize`](normalize::normalize): the one place that lists what two conforming
//!   servers may answer differently.
//! - [`proxy`]: a TCP proxy that cuts a download after N octets. (The clients of every
//!   implementation are `ferry-test-support`'s `TestClient`.)
//!
//! See `README.md` for what each test asserts and how to make the runs longer.

pub mod content;
pub mod diff;
pub mod exec;
pub mod model;
pub mod normalize;
pub mod ops;
pub mod oracle;
pub mod proxy;

use std::time::Duration;

pub use ferry_test_support::{Impl, STAGING, TestServer};

/// How many proptest cases a property runs: `FERRY_PROPTEST_CASES`, else `PROPTEST_CASES`,
/// else `default`.
pub fn cases(default: u32) -> u32 {
    ["FERRY_PROPTEST_CASES", "PROPTEST_CASES"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
        .unwrap_or(default)
}

/// A proptest configuration with `cases` cases, bounded shrinking, and regression files kept
/// next to the test source (proptest's default).
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        max_shrink_iters: 4096,
        max_shrink_time: 300_000,
        ..proptest::test_runner::Config::default()
    }
}

/// The modification time given to fixture files (2023-11-14T22:13:20Z).
pub const FIXTURE_MTIME: Duration = Duration::from_secs(1_700_000_000);
/// [`FIXTURE_MTIME`] as sent on the wire.
pub const FIXTURE_MTIME_TEXT: &str = "2023-11-14T22:13:20Z";

/// A server of `imp` with the session's options and fixture files (mtime
/// [`FIXTURE_MTIME`]). The model is ferry/1's: the server offers no extension (`tree`, on by
/// default, would answer its verbs where the model expects `err 500 syntax`).
pub fn server_with(imp: Impl, session: &ops::Session) -> TestServer {
    let cfg = session.config;
    let server = TestServer::with_impl_config(imp, |c| {
        c.tree = false;
        c.read_only = cfg.read_only;
        c.max_size = cfg.max_size;
        c.max_eager = cfg.max_eager;
    });
    let fixtures = &session.fixtures;
    let when = std::time::SystemTime::UNIX_EPOCH + FIXTURE_MTIME;
    for (name, c) in fixtures {
        let name = std::str::from_utf8(name).expect("fixture names are valid names");
        server.write_file_with_mtime(name, &c.bytes(), when);
    }
    server
}
