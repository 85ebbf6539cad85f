//! Shared harness of ferry-async's tests: [`Driver`], which the `per_runtime!` macro uses to
//! instantiate every test once per runtime, and the servers of `ferry-test-support` (the
//! workspace's one `TestServer` and implementation list) started on that runtime.

#![allow(dead_code)]

use std::io;
use std::net::TcpListener;
use std::time::Duration;

use ferry_async::BlockOn;
pub(crate) use ferry_async::server::{Config, Shutdown};
#[allow(unused_imports)] // not every test binary that includes this module uses each
pub(crate) use ferry_test_support::{RawSession, STAGING, file_name, init_logging};

/// Longest a server may take to stop once its shutdown was triggered (grace + drain + margin).
pub(crate) const STOP_LIMIT: Duration = Duration::from_secs(15);

/// A runtime under test.
pub(crate) trait Driver {
    /// Its name, for messages.
    const NAME: &'static str;
    /// The same runtime in `ferry-test-support`'s implementation list.
    const IMPL: ferry_test_support::Impl;
    /// Its runtime value, for clients.
    type Rt: BlockOn;
    /// Serves until the shutdown (the driver's blocking `serve`).
    fn serve(listener: TcpListener, config: Config, shutdown: Shutdown) -> io::Result<()>;
    /// A runtime for a client.
    fn runtime() -> Self::Rt;
}

/// tokio.
#[cfg(feature = "tokio")]
pub(crate) struct TokioDriver;

#[cfg(feature = "tokio")]
impl Driver for TokioDriver {
    const NAME: &'static str = "tokio";
    const IMPL: ferry_test_support::Impl = ferry_test_support::Impl::Tokio;
    type Rt = ferry_async::tokio::Tokio;
    fn serve(listener: TcpListener, config: Config, shutdown: Shutdown) -> io::Result<()> {
        ferry_async::tokio::serve(listener, config, shutdown)
    }
    fn runtime() -> Self::Rt {
        ferry_async::tokio::Tokio::new_current_thread().expect("a tokio runtime")
    }
}

/// async-std.
#[cfg(feature = "async-std")]
pub(crate) struct AsyncStdDriver;

#[cfg(feature = "async-std")]
impl Driver for AsyncStdDriver {
    const NAME: &'static str = "async-std";
    const IMPL: ferry_test_support::Impl = ferry_test_support::Impl::AsyncStd;
    type Rt = ferry_async::async_std::AsyncStd;
    fn serve(listener: TcpListener, config: Config, shutdown: Shutdown) -> io::Result<()> {
        ferry_async::async_std::serve(listener, config, shutdown)
    }
    fn runtime() -> Self::Rt {
        ferry_async::async_std::AsyncStd
    }
}

/// smol.
#[cfg(feature = "smol")]
pub(crate) struct SmolDriver;

#[cfg(feature = "smol")]
impl Driver for SmolDriver {
    const NAME: &'static str = "smol";
    const IMPL: ferry_test_support::Impl = ferry_test_support::Impl::Smol;
    type Rt = ferry_async::smol::Smol;
    fn serve(listener: TcpListener, config: Config, shutdown: Shutdown) -> io::Result<()> {
        ferry_async::smol::serve(listener, config, shutdown)
    }
    fn runtime() -> Self::Rt {
        ferry_async::smol::Smol::new()
    }
}

/// Instantiates each listed generic test `fn name<D: Driver>()` once per runtime, in the
/// modules `tokio`, `async_std` and `smol`.
#[macro_export]
macro_rules! per_runtime {
    ($($test:ident),* $(,)?) => {
        #[cfg(feature = "tokio")]
        mod tokio {
            $( #[test] fn $test() { super::$test::<super::common::TokioDriver>() } )*
        }
        #[cfg(feature = "async-std")]
        mod async_std {
            $( #[test] fn $test() { super::$test::<super::common::AsyncStdDriver>() } )*
        }
        #[cfg(feature = "smol")]
        mod smol {
            $( #[test] fn $test() { super::$test::<super::common::SmolDriver>() } )*
        }
    };
}

/// The workspace's one test server (`ferry-test-support`), here always an async one: an
/// async server on 127.0.0.1:0 serving a temporary folder, stopped and joined on drop.
pub(crate) use ferry_test_support::TestServer as Server;

/// A server of runtime `D` with the default configuration (but a 2 s shutdown grace).
pub(crate) fn start<D: Driver>() -> Server {
    Server::start_impl(D::IMPL)
}

/// A server of runtime `D` whose configuration `f` adjusts; `config.root` starts as a
/// temporary folder.
pub(crate) fn start_with<D: Driver>(f: impl FnOnce(&mut ferry_sync::server::Config)) -> Server {
    Server::with_impl_config(D::IMPL, f)
}

#[allow(unused_imports)] // not every test binary that includes this module uses each
pub(crate) use ferry_test_support::{NAMES, every_byte, pattern};
