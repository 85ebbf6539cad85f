//! Shared helpers for ferry's tests.
//!
//! - [`TestServer`]: a ferry server on 127.0.0.1:0 serving a temporary folder, in a thread;
//!   dropping it triggers the shutdown and joins the thread, so no test leaves a thread, a
//!   socket or a folder behind. By default the threaded server (`ferry_sync::server`); with
//!   the `async` feature, [`TestServer::start_impl`] also starts `ferry-async` on tokio,
//!   async-std or smol ([`Impl`]).
//! - [`RawSession`]: a client socket for byte-level scripts, every read under a timeout (a
//!   broken server makes the test fail, never hang), with helpers that decode replies and
//!   payloads with `ferry-wire`.
//! - [`replay()`]: plays a `spec/examples` transcript against a [`TestServer`];
//!   [`replay_on`] against any [`Impl`], [`replay_at`] against any server address.
//!
//! - [`TestClient`]: a client of any [`Impl`] (the threaded client, or the async one on a
//!   runtime) behind the threaded client's signatures, for client tests written once and run
//!   against every client implementation by [`every_impl!`].
//!
//! - [`relay::Relay`]: a TCP relay whose first connection stalls one way (a transfer that
//!   hangs until the client cancels it).
//!
//! Set `FERRY_TEST_LOG` (an `EnvFilter` directive such as `debug`) to see the server's logs.

mod client;
pub mod relay;
mod replay;
pub mod tls;
pub mod users;

use std::fmt;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown as NetShutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

pub use ferry_client_core::ClientOptions;
pub use ferry_sync::server::{Config, Shutdown};
use ferry_wire::{
    Digest, ErrorReply, FileName, Greeting, Hasher, Hello, PayloadReceiver, PutFlow, PutMode,
    Reply, Request, Step, decode_hello, decode_reply, encode_payload,
};

pub use client::TestClient;
pub use ferry_transcript::Transcript;
pub use replay::{ReplayError, replay, replay_at, replay_examples, replay_examples_on, replay_on};

/// Name of the staging area inside a served folder.
pub const STAGING: &str = ".ferry-staging";

/// How long a [`RawSession`] waits for the server by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Installs a log subscriber for the test process when `FERRY_TEST_LOG` is set.
pub fn init_logging() {
    if let Ok(filter) = std::env::var("FERRY_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// Longest a [`TestServer`] may take to stop once its shutdown was triggered (its 2 s grace,
/// the 1 s forced end and a margin); a server that takes longer fails the test instead of
/// hanging it (its thread is then left behind).
pub const STOP_LIMIT: Duration = Duration::from_secs(20);

/// An implementation: the threaded one (`ferry-sync`) or `ferry-async` on one of its
/// runtimes — its server ([`TestServer::start_impl`]) or its client
/// ([`TestClient::connect`]). The async ones need this crate's `async` feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Impl {
    /// `ferry_sync::server::run` (a thread per connection); `ferry_sync::client::Client`.
    Threads,
    /// `ferry_async::async_std::serve`; `ferry_async::async_std::BlockingClient`.
    AsyncStd,
    /// `ferry_async::tokio::serve` (multi-thread runtime); `ferry_async::tokio::BlockingClient`
    /// (a current-thread runtime).
    Tokio,
    /// `ferry_async::smol::serve`; `ferry_async::smol::BlockingClient`.
    Smol,
}

impl Impl {
    /// Every implementation, the threaded one first.
    pub const ALL: [Impl; 4] = [Impl::Threads, Impl::AsyncStd, Impl::Tokio, Impl::Smol];
    /// The `ferry-async` runtimes.
    pub const ASYNC: [Impl; 3] = [Impl::AsyncStd, Impl::Tokio, Impl::Smol];

    /// A short name: `threads`, `async-std`, `tokio`, `smol`.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Threads => "threads",
            Impl::AsyncStd => "async-std",
            Impl::Tokio => "tokio",
            Impl::Smol => "smol",
        }
    }

    /// Whether this build can start it (the async ones need the `async` feature).
    pub fn is_available(self) -> bool {
        self == Impl::Threads || cfg!(feature = "async")
    }
}

/// The names the brief asks for (the teaching program's files), plus one with spaces.
pub const NAMES: [&str; 3] = ["射频仿真.pptx", "天线15.doc", "my report (final).pdf"];

/// `n` octets of a pattern that is not periodic in any small power of two (so a misplaced
/// chunk shows).
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 9)) as u8)
        .collect()
}

/// Every octet value, in order.
pub fn every_byte() -> Vec<u8> {
    (0..=255u8).collect()
}

/// Instantiates each listed test `fn name(imp: Impl)` once per implementation, in the
/// modules `threads`, `async_std`, `tokio` and `smol`: the one implementation list every
/// server test ([`TestServer::start_impl`]) and every client test ([`TestClient::connect`])
/// runs against (`cargo test -p ferry-server-tests tokio::` runs one of them).
#[macro_export]
macro_rules! every_impl {
    ($($test:ident),* $(,)?) => {
        mod threads {
            $( #[test] fn $test() { super::$test($crate::Impl::Threads) } )*
        }
        mod async_std {
            $( #[test] fn $test() { super::$test($crate::Impl::AsyncStd) } )*
        }
        mod tokio {
            $( #[test] fn $test() { super::$test($crate::Impl::Tokio) } )*
        }
        mod smol {
            $( #[test] fn $test() { super::$test($crate::Impl::Smol) } )*
        }
    };
}

impl fmt::Display for Impl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Starts the server of `imp` in a thread of its own. The returned thread ends when `run`
/// (or `serve`) returns; for the async servers a second thread passes the trigger of
/// `shutdown` on to the async server's own shutdown handle, and ends with it.
fn spawn_server(
    imp: Impl,
    listener: TcpListener,
    config: Config,
    shutdown: &Shutdown,
) -> (JoinHandle<io::Result<()>>, Option<JoinHandle<()>>) {
    let builder = std::thread::Builder::new().name(format!("ferry-test-{imp}"));
    match imp {
        Impl::Threads => {
            let shutdown = shutdown.clone();
            let t = builder
                .spawn(move || ferry_sync::server::run(listener, config, shutdown))
                .expect("spawn the server thread");
            (t, None)
        }
        #[cfg(feature = "async")]
        Impl::AsyncStd | Impl::Tokio | Impl::Smol => {
            // ferry-async's Config is ferry-sync's: both are ferry_store::ServerConfig.
            use ferry_async::server::Shutdown as AsyncShutdown;
            let inner = AsyncShutdown::new();
            let t = builder
                .spawn({
                    let inner = inner.clone();
                    move || match imp {
                        Impl::AsyncStd => ferry_async::async_std::serve(listener, config, inner),
                        Impl::Tokio => ferry_async::tokio::serve(listener, config, inner),
                        _ => ferry_async::smol::serve(listener, config, inner),
                    }
                })
                .expect("spawn the server thread");
            // `ferry_sync`'s Shutdown offers no blocking wait: look at it every 5 ms.
            let outer = shutdown.clone();
            let bridge = std::thread::Builder::new()
                .name("ferry-test-shutdown".into())
                .spawn(move || {
                    while !outer.is_triggered() {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    inner.trigger();
                })
                .expect("spawn the shutdown bridge");
            (t, Some(bridge))
        }
        #[cfg(not(feature = "async"))]
        _ => panic!("{imp}: enable ferry-test-support's `async` feature to start async servers"),
    }
}

/// Waits (at most [`STOP_LIMIT`]) for a server thread to end; its result, or an error if it
/// took too long (the thread is left behind, and the test fails rather than hangs).
fn join_within(t: JoinHandle<io::Result<()>>) -> io::Result<()> {
    let deadline = Instant::now() + STOP_LIMIT;
    while !t.is_finished() {
        if Instant::now() >= deadline {
            return Err(io::Error::other(format!(
                "the server did not stop within {STOP_LIMIT:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    t.join()
        .unwrap_or_else(|_| Err(io::Error::other("the server thread panicked")))
}

/// A ferry server on 127.0.0.1:0 serving a temporary folder, stopped and joined on drop.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The served folder (a fresh temporary folder unless the config named another).
    pub root: PathBuf,
    /// Which implementation runs.
    pub imp: Impl,
    /// Its TLS side when it serves ferry/1 over TLS ([`TestServer::start_tls`]).
    pub tls: Option<ferry_tls::ServerTls>,
    shutdown: Shutdown,
    thread: Option<JoinHandle<io::Result<()>>>,
    bridge: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A threaded server with the default configuration (but a 2 s shutdown grace).
    pub fn start() -> Self {
        Self::with_config(|_| {})
    }

    /// A threaded server whose configuration `f` adjusts; `config.root` starts as a temporary
    /// folder.
    pub fn with_config(f: impl FnOnce(&mut Config)) -> Self {
        Self::with_impl_config(Impl::Threads, f)
    }

    /// A server of implementation `imp` with the default configuration (but a 2 s shutdown
    /// grace).
    pub fn start_impl(imp: Impl) -> Self {
        Self::with_impl_config(imp, |_| {})
    }

    /// A server of implementation `imp` whose configuration `f` adjusts (`ferry_sync`'s
    /// [`Config`]; `ferry-async`'s has the same fields and gets the same values);
    /// `config.root` starts as a temporary folder.
    pub fn with_impl_config(imp: Impl, f: impl FnOnce(&mut Config)) -> Self {
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
        let tls = config.tls.clone();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let shutdown = Shutdown::new();
        let (thread, bridge) = spawn_server(imp, listener, config, &shutdown);
        let server = Self {
            addr,
            root,
            imp,
            tls,
            shutdown,
            thread: Some(thread),
            bridge,
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
            assert!(
                !server.thread.as_ref().is_some_and(JoinHandle::is_finished),
                "the server stopped at once"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        server
    }

    /// A server of implementation `imp` speaking ferry/1 over TLS with a self-signed key
    /// ([`tls::server`]), whose configuration `f` adjusts further.
    pub fn start_tls(imp: Impl, f: impl FnOnce(&mut Config)) -> Self {
        Self::with_impl_config(imp, |c| {
            c.tls = Some(tls::server());
            f(c);
        })
    }

    /// Client options that reach this server: with its TLS key pinned when it serves TLS.
    pub fn client_options(&self, base: ClientOptions) -> ClientOptions {
        ClientOptions {
            tls: self.tls.as_ref().map(tls::client),
            ..base
        }
    }

    /// The shutdown handle (trigger it to test shutdown behaviour). For an async server,
    /// the trigger reaches it within a few milliseconds.
    pub fn shutdown_handle(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Triggers the shutdown and waits (at most [`STOP_LIMIT`]) for the server to stop;
    /// returns its result.
    pub fn stop(mut self) -> io::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> io::Result<()> {
        self.shutdown.trigger();
        let result = match self.thread.take() {
            Some(t) => join_within(t),
            None => Ok(()),
        };
        if let Some(b) = self.bridge.take() {
            let _ = b.join();
        }
        result
    }

    /// Whether `run` has returned.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }
    /// Writes a file into the served folder directly.
    pub fn write_file(&self, name: &str, data: &[u8]) {
        fs::write(self.root.join(name), data).expect("write a file into the served folder");
    }

    /// Writes a file with a given modification time.
    pub fn write_file_with_mtime(&self, name: &str, data: &[u8], mtime: SystemTime) {
        self.write_file(name, data);
        let f = fs::File::options()
            .write(true)
            .open(self.root.join(name))
            .expect("open");
        f.set_modified(mtime).expect("set the modification time");
    }

    /// The content of a file of the served folder, if it is there.
    pub fn read_file(&self, name: &str) -> Option<Vec<u8>> {
        fs::read(self.root.join(name)).ok()
    }

    /// The names in the served folder, sorted, without the staging area.
    pub fn visible_names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.root)
            .expect("read the served folder")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n != STAGING)
            .collect();
        names.sort();
        names
    }

    /// Whether the staging area holds nothing (no upload in progress, no debris).
    pub fn staging_is_empty(&self) -> bool {
        match fs::read_dir(self.root.join(STAGING)) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        }
    }

    /// Waits (up to 5 s) until the staging area is empty: a session removes its staging file
    /// when it notices the end of its connection, which can be a moment after the client
    /// closed it.
    pub fn wait_staging_empty(&self) -> bool {
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
    pub fn session(&self) -> RawSession {
        let mut s = RawSession::connect(self.addr);
        s.expect_greeting();
        s
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let result = self.stop_and_join();
        if let Err(e) = result
            && !std::thread::panicking()
        {
            panic!("the {} server failed: {e}", self.imp);
        }
    }
}

/// How a payload ended, as [`RawSession::read_payload`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadEnd {
    /// `end DIGEST` after all octets, and the digest matches the octets received.
    Complete(Digest),
    /// `end DIGEST` whose digest does not match.
    Corrupt {
        /// What the sender announced.
        announced: Digest,
        /// What the octets hash to.
        computed: Digest,
    },
    /// `abort CODE [TEXT]`.
    Aborted(ErrorReply),
}

/// A client socket for scripted byte-level tests. Every read has a timeout
/// ([`DEFAULT_TIMEOUT`] unless changed) and panics when it expires.
#[derive(Debug)]
pub struct RawSession {
    stream: TcpStream,
    buf: Vec<u8>,
    timeout: Duration,
}

impl RawSession {
    /// Connects (nothing is read yet).
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&addr, DEFAULT_TIMEOUT).expect("connect");
        Self::on(stream)
    }

    /// Connects to `addr` from the local address `source` (another 127.x address, to act
    /// as a second client machine on loopback).
    pub fn connect_from(addr: SocketAddr, source: std::net::IpAddr) -> Self {
        let domain = socket2::Domain::for_address(addr);
        let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None).expect("socket");
        socket
            .bind(&SocketAddr::new(source, 0).into())
            .unwrap_or_else(|e| panic!("bind {source}: {e}"));
        socket
            .connect_timeout(&addr.into(), DEFAULT_TIMEOUT)
            .expect("connect");
        Self::on(socket.into())
    }

    fn on(stream: TcpStream) -> Self {
        stream
            .set_read_timeout(Some(DEFAULT_TIMEOUT))
            .expect("set read timeout");
        stream
            .set_write_timeout(Some(Duration::from_secs(30)))
            .expect("set write timeout");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            buf: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The socket.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Changes how long reads wait.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("set read timeout");
    }

    /// Sends octets as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends octets; `Err` when the server has closed the connection.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends a request.
    pub fn send_request(&mut self, request: &Request) {
        self.send(&request.to_bytes());
    }

    /// Closes the sending side (the server reads EOF).
    pub fn shutdown_write(&mut self) {
        self.stream
            .shutdown(NetShutdown::Write)
            .expect("shutdown write");
    }

    /// Reads more octets into the buffer; `Ok(0)` at EOF.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = vec![0u8; 256 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn fill_or_panic(&mut self, what: &str) {
        match self.fill() {
            Ok(0) => panic!(
                "EOF while waiting for {what}; buffered: {:?}",
                lossy(&self.buf)
            ),
            Ok(_) => {}
            Err(e) => panic!(
                "no {what} within {:?}: {e}; buffered: {:?}",
                self.timeout,
                lossy(&self.buf)
            ),
        }
    }

    /// Reads one line and returns it without its LF; `None` at EOF before any octet of it.
    pub fn try_read_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(lf) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=lf).collect();
                line.pop();
                return Ok(Some(line));
            }
            if self.fill()? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "EOF inside a line",
                ));
            }
        }
    }

    /// Reads one line, without its LF. Panics on EOF or timeout.
    pub fn read_line(&mut self) -> Vec<u8> {
        loop {
            if let Some(lf) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=lf).collect();
                line.pop();
                return line;
            }
            self.fill_or_panic("a line");
        }
    }

    /// Reads one line as text.
    pub fn read_line_str(&mut self) -> String {
        String::from_utf8(self.read_line()).expect("a UTF-8 line")
    }

    /// Reads exactly `n` octets.
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            self.fill_or_panic("octets");
        }
        self.buf.drain(..n).collect()
    }

    /// Reads a line and checks it is `expected` (given without LF).
    #[track_caller]
    pub fn expect_line(&mut self, expected: &str) {
        let line = self.read_line();
        assert_eq!(lossy(&line), expected, "unexpected line from the server");
    }

    /// Reads and checks the greeting; returns it.
    #[track_caller]
    pub fn expect_greeting(&mut self) -> Greeting {
        let mut line = self.read_line();
        line.push(b'\n');
        match decode_hello(&line) {
            Ok((Hello::Greeting(g), _)) => {
                if let Err(e) = g.check() {
                    panic!("greeting breaks section 4: {e}: {:?}", lossy(&line));
                }
                g
            }
            other => panic!("not a greeting: {:?} ({other:?})", lossy(&line)),
        }
    }

    /// Reads one reply line and decodes it.
    #[track_caller]
    pub fn read_reply(&mut self) -> Reply {
        let mut line = self.read_line();
        line.push(b'\n');
        match decode_reply(&line) {
            Ok((reply, _)) => reply,
            Err(e) => panic!("not a reply: {:?} ({e})", lossy(&line)),
        }
    }

    /// Reads a reply and checks it is `err CODE`.
    #[track_caller]
    pub fn expect_err(&mut self, code: u16) {
        match self.read_reply() {
            Reply::Err(e) if e.code.get() == code => {}
            other => panic!("expected err {code}, got {other:?}"),
        }
    }

    /// Reads everything until the server closes the connection (or resets it).
    pub fn read_to_end(&mut self) -> Vec<u8> {
        loop {
            match self.fill() {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!(
                    "the connection did not close within {:?}: {e}",
                    self.timeout
                ),
            }
        }
        std::mem::take(&mut self.buf)
    }

    /// Checks that the server closed the connection without sending anything more.
    #[track_caller]
    pub fn expect_closed(&mut self) {
        let deadline = Instant::now() + self.timeout;
        loop {
            if !self.buf.is_empty() {
                panic!(
                    "expected the connection to close, got {:?}",
                    lossy(&self.buf)
                );
            }
            match self.fill() {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return,
                Err(e) => panic!("the connection did not close: {e}"),
            }
            assert!(Instant::now() < deadline, "the connection did not close");
        }
    }

    /// Reads a payload of `expected` octets (the octets after `ok get`), handing the file
    /// octets to `sink` as they arrive; `prefix` hashes what the client already holds (resume).
    pub fn read_payload_with(
        &mut self,
        expected: u64,
        prefix: Hasher,
        mut sink: impl FnMut(&[u8]),
    ) -> PayloadEnd {
        let mut rx = PayloadReceiver::resuming(expected, prefix);
        loop {
            let (step, used) = match rx.feed(&self.buf) {
                Ok(x) => x,
                Err(e) => panic!("framing violation in the server's payload: {e}"),
            };
            let needs_more = matches!(step, Step::NeedMore) && used == 0;
            let end = match step {
                Step::NeedMore => None,
                Step::Data(d) => {
                    sink(d);
                    None
                }
                Step::Complete(d) => Some(PayloadEnd::Complete(d)),
                Step::Corrupt {
                    announced,
                    computed,
                } => Some(PayloadEnd::Corrupt {
                    announced,
                    computed,
                }),
                Step::Aborted(e) => Some(PayloadEnd::Aborted(e)),
            };
            self.buf.drain(..used);
            if let Some(end) = end {
                return end;
            }
            if needs_more || self.buf.is_empty() {
                self.fill_or_panic("payload octets");
            }
        }
    }

    /// Reads a payload without hashing it (for very large transfers in debug builds, where
    /// the caller checks the octets itself): hands chunk data to `sink`, checks the framing
    /// and returns the trailer line (`end …` or `abort …`, without LF).
    pub fn read_payload_unhashed(&mut self, expected: u64, mut sink: impl FnMut(&[u8])) -> String {
        let mut received = 0u64;
        loop {
            let line = self.read_line_str();
            let Some(len) = line.strip_prefix("data ") else {
                assert!(
                    line.starts_with("end ") || line.starts_with("abort "),
                    "not a frame line: {line:?}"
                );
                if line.starts_with("end ") {
                    assert_eq!(received, expected, "end before all octets");
                }
                return line;
            };
            let len: usize = len.parse().expect("chunk length");
            assert!((1..=1 << 20).contains(&len), "chunk length {len}");
            received += len as u64;
            assert!(received <= expected, "chunks overrun the payload");
            let mut left = len;
            while left > 0 {
                if self.buf.is_empty() {
                    self.fill_or_panic("chunk data");
                }
                let n = left.min(self.buf.len());
                sink(&self.buf[..n]);
                self.buf.drain(..n);
                left -= n;
            }
        }
    }

    /// Reads a whole payload of `expected` octets into memory.
    pub fn read_payload(&mut self, expected: u64) -> (Vec<u8>, PayloadEnd) {
        let mut data = Vec::new();
        let end = self.read_payload_with(expected, Hasher::new(), |d| data.extend_from_slice(d));
        (data, end)
    }

    /// `get 0 NAME` and its whole reply: `Ok((data, end))` or the `err` reply.
    pub fn get(&mut self, name: &str) -> Result<(Vec<u8>, PayloadEnd), ErrorReply> {
        self.send_request(&Request::Get {
            offset: 0,
            name: file_name(name),
        });
        match self.read_reply() {
            Reply::GetOk { size, .. } => Ok(self.read_payload(size)),
            Reply::Err(e) => Err(e),
            other => panic!("unexpected reply to get: {other:?}"),
        }
    }

    /// Uploads `data` with flow `wait` (waiting for `go`); returns the final reply.
    pub fn put_wait(&mut self, name: &str, mode: PutMode, data: &[u8]) -> Reply {
        let size = data.len() as u64;
        self.send_request(&Request::Put {
            size,
            mode,
            flow: PutFlow::Wait,
            name: file_name(name),
        });
        match self.read_reply() {
            Reply::Go => {}
            other => return other,
        }
        let mut payload = Vec::new();
        encode_payload(data, Digest::of(data), &mut payload);
        self.send(&payload);
        self.read_reply()
    }

    /// Uploads `data` with flow `now`; returns the final reply.
    pub fn put_now(&mut self, name: &str, mode: PutMode, data: &[u8]) -> Reply {
        self.send(&put_now_bytes(name, mode, data));
        self.read_reply()
    }
}

/// The octets of an eager put of `data`: request line, chunks, `end`.
pub fn put_now_bytes(name: &str, mode: PutMode, data: &[u8]) -> Vec<u8> {
    let mut out = Request::Put {
        size: data.len() as u64,
        mode,
        flow: PutFlow::Now,
        name: file_name(name),
    }
    .to_bytes();
    encode_payload(data, Digest::of(data), &mut out);
    out
}

/// A [`FileName`], panicking on invalid names.
pub fn file_name(name: &str) -> FileName {
    FileName::new(name).unwrap_or_else(|e| panic!("{name:?} is not a valid name: {e}"))
}

/// Octets as text for messages (invalid UTF-8 replaced).
pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A small tmpfs mounted on a temporary folder, for ENOSPC tests; unmounted on drop. Needs
/// permission to mount ([`TinyTmpfs::mount`] returns `None` without it: skip the test, do not
/// fake it).
#[derive(Debug)]
pub struct TinyTmpfs {
    /// The mount point.
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TinyTmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it, e.g. `"2m"`).
    pub fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| TinyTmpfs {
            path: dir.path().to_owned(),
            _dir: dir,
        })
    }

    /// Fills the file system with a file at `name` until it is full.
    pub fn fill(&self, name: &str) {
        let mut f = fs::File::create(self.path.join(name)).expect("create the filler");
        let block = vec![0x55u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
    }
}

impl Drop for TinyTmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The path of the repository's `spec/examples` folder.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/examples")
}

/// Everything about a folder tree that a write could change: for the folder and every entry
/// below it (relative path, sorted), its type, permissions, size, modification and
/// status-change times, and a file's content. Two calls that return equal vectors saw a
/// folder nothing wrote to in between (what a read-only server must leave it, SEC-10).
pub fn folder_state(root: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt as _;
    fn walk(root: &std::path::Path, rel: &std::path::Path, out: &mut Vec<String>) {
        let path = root.join(rel);
        let m = std::fs::symlink_metadata(&path).expect("metadata");
        let content = if m.is_file() {
            format!("{:?}", std::fs::read(&path).expect("read"))
        } else {
            String::new()
        };
        out.push(format!(
            "{} type={:?} mode={:o} size={} mtime={}.{:09} ctime={}.{:09} {content}",
            rel.display(),
            m.file_type(),
            m.mode(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        ));
        if m.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(&path)
                .expect("read_dir")
                .map(|e| e.expect("entry").file_name())
                .collect();
            names.sort();
            for n in names {
                walk(root, &rel.join(n), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, std::path::Path::new(""), &mut out);
    out
}
