//! Helpers of the server tests that came from ferry-async's suite: servers of any
//! implementation from `ferry-test-support`, and test data.

#![allow(dead_code)]

#[allow(unused_imports)] // not every test binary that includes this module uses each
pub(crate) use ferry_test_support::{
    Impl, RawSession, STAGING, TestServer as Server, file_name, init_logging,
};

/// A server of implementation `imp` with the default configuration (but a 2 s shutdown
/// grace).
pub(crate) fn start(imp: Impl) -> Server {
    Server::start_impl(imp)
}

/// A server of implementation `imp` whose configuration `f` adjusts; `config.root` starts as
/// a temporary folder.
pub(crate) fn start_with(imp: Impl, f: impl FnOnce(&mut ferry_test_support::Config)) -> Server {
    Server::with_impl_config(imp, f)
}

#[allow(unused_imports)] // not every test binary that includes this module uses each
pub(crate) use ferry_test_support::{NAMES, every_byte, pattern};
