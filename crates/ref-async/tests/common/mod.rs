//! Shared harness of ferry-async's tests: an async server on 127.0.0.1:0 in a thread of its
//! own (through a driver's blocking `serve`), stopped and joined on drop with a time limit,
//! and [`Driver`], which the `per_runtime!` macro uses to instantiate every test once per
//! runtime.

#![allow(dead_code)]

use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use ferry_async::BlockOn;
pub(crate) use ferry_async::server::{Config, Shutdown};
pub(crate) use ferry_test_support::{RawSession, STAGING, file_name, init_logging};

/// Longest a server may take to stop once its shutdown was triggered (grace + drain + margin).
pub(crate) const STOP_LIMIT: Duration = Duration::from_secs(15);

/// A runtime under test.
pub(crate) trait Driver {
    /// Its name, for messages.
    const NAME: &'static str;
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

/// An async server on 127.0.0.1:0 serving a temporary folder, stopped and joined on drop.
pub(crate) struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The served folder.
    pub root: PathBuf,
    shutdown: Shutdown,
    thread: Option<JoinHandle<io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// A server with the default configuration (but a 2 s shutdown grace).
    pub(crate) fn start<D: Driver>() -> Self {
        Self::with_config::<D>(|_| {})
    }

    /// A server whose configuration `f` adjusts; `config.root` starts as a temporary folder.
    pub(crate) fn with_config<D: Driver>(f: impl FnOnce(&mut Config)) -> Self {
        init_logging();
        let dir = tempfile::tempdir().expect("create a temporary folder");
        let mut config = Config {
            root: dir.path().to_owned(),
            shutdown_grace: Duration::from_secs(2),
            ..Config::default()
        };
        f(&mut config);
        let root = config.root.clone();
        let read_only = config.read_only;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let shutdown = Shutdown::new();
        let thread = std::thread::Builder::new()
            .name(format!("ferry-{}-server", D::NAME))
            .spawn({
                let shutdown = shutdown.clone();
                move || D::serve(listener, config, shutdown)
            })
            .expect("spawn the server thread");
        let server = Self {
            addr,
            root,
            shutdown,
            thread: Some(thread),
            _dir: dir,
        };
        // Ready once the served folder is open (its staging area exists). A read-only server
        // creates nothing in its folder (SEC-10) and cleans nothing that could race the
        // test: connections wait in the listener's backlog until it accepts them.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !read_only && !server.root.join(STAGING).is_dir() {
            assert!(
                Instant::now() < deadline,
                "the server did not open its folder"
            );
            assert!(!server.is_finished(), "the server stopped at once");
            std::thread::sleep(Duration::from_millis(5));
        }
        server
    }

    /// The shutdown handle.
    pub(crate) fn shutdown_handle(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Whether `run` has returned.
    pub(crate) fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Triggers the shutdown and waits (at most [`STOP_LIMIT`]) for `run` to return.
    pub(crate) fn stop(mut self) -> io::Result<()> {
        self.shutdown.trigger();
        self.join()
    }

    /// Waits for `run` to return: its result, or an error if it took over [`STOP_LIMIT`] (the
    /// thread is then left behind, and the test fails rather than hangs).
    fn join(&mut self) -> io::Result<()> {
        let Some(t) = self.thread.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + STOP_LIMIT;
        while !t.is_finished() {
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "the server did not stop within {STOP_LIMIT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        t.join()
            .unwrap_or_else(|_| Err(io::Error::other("the server thread panicked")))
    }

    /// Writes a file into the served folder directly.
    pub(crate) fn write_file(&self, name: &str, data: &[u8]) {
        fs::write(self.root.join(name), data).expect("write a file into the served folder");
    }

    /// Writes a file with a given modification time.
    pub(crate) fn write_file_with_mtime(&self, name: &str, data: &[u8], mtime: SystemTime) {
        self.write_file(name, data);
        let f = fs::File::options()
            .write(true)
            .open(self.root.join(name))
            .expect("open");
        f.set_modified(mtime).expect("set the modification time");
    }

    /// The content of a file of the served folder, if it is there.
    pub(crate) fn read_file(&self, name: &str) -> Option<Vec<u8>> {
        fs::read(self.root.join(name)).ok()
    }

    /// The names in the served folder, sorted, without the staging area.
    pub(crate) fn visible_names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.root)
            .expect("read the served folder")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n != STAGING)
            .collect();
        names.sort();
        names
    }

    /// Whether the staging area holds nothing.
    pub(crate) fn staging_is_empty(&self) -> bool {
        match fs::read_dir(self.root.join(STAGING)) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        }
    }

    /// Waits (up to 5 s) until the staging area is empty.
    pub(crate) fn wait_staging_empty(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.staging_is_empty() {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Connects and reads the greeting.
    pub(crate) fn session(&self) -> RawSession {
        let mut s = RawSession::connect(self.addr);
        s.expect_greeting();
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.trigger();
        let result = self.join();
        if !std::thread::panicking() {
            result.expect("the server failed");
        }
    }
}

/// `n` octets of a pattern that is not periodic in small powers of two.
pub(crate) fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 9)) as u8)
        .collect()
}

/// Every octet value, in order.
pub(crate) fn every_byte() -> Vec<u8> {
    (0..=255u8).collect()
}

/// The names the brief asks for, plus the empty file's.
pub(crate) const NAMES: [&str; 3] = ["射频仿真.pptx", "天线15.doc", "my report (final).pdf"];
