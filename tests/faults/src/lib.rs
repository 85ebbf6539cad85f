//! Fault injection for ferry servers: a faulty TCP proxy ([`Proxy`]), a case runner that
//! pushes one get or put through it with either client ([`run_case`]) and checks the
//! spec's promise (a correct file or a clear error, never a wrong visible file), a
//! `ferry serve` child process that is killed on drop ([`ChildServer`]), and small helpers.
//!
//! Everything here stops by itself: proxy threads look at a stop flag every 50 ms and are
//! joined on drop; child processes are SIGKILLed and reaped on drop.

use std::fmt;
use std::io::{self, BufRead as _, Read as _, Write as _};
use std::net::{Shutdown as NetShutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferry_sync::client::{Client, ClientError, ClientOptions, GetOptions, PutOptions};
pub use ferry_test_support::{Impl, RawSession, STAGING, TestClient, TestServer, file_name};
use ferry_wire::PutMode;

/// Which way octets flow through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

impl Dir {
    fn index(self) -> usize {
        match self {
            Dir::Up => 0,
            Dir::Down => 1,
        }
    }
}

impl fmt::Display for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Dir::Up => "c→s",
            Dir::Down => "s→c",
        })
    }
}

/// What the proxy does to the octets of the faulty direction, from octet `at` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward everything unchanged.
    Pass,
    /// Wait this long before forwarding each read.
    Delay(Duration),
    /// Forward `len` octets from `at` on one at a time, `every` apart.
    Drip {
        /// How many octets drip.
        len: u64,
        /// Pause between two of them.
        every: Duration,
    },
    /// Forward up to `at`, then stop reading and forwarding (back-pressure builds up).
    Stall,
    /// Forward up to `at`, then shut both connections down (FIN both ways).
    Cut,
    /// Forward up to `at`, then close both connections with SO_LINGER 0 (RST both ways).
    Reset,
    /// Flip the lowest bit of octet `at`.
    Corrupt,
}

impl Mode {
    /// Every faulty mode with the parameters the suite uses.
    pub const ALL: [Mode; 6] = [
        Mode::Delay(Duration::from_millis(15)),
        Mode::Drip {
            len: 150,
            every: Duration::from_millis(2),
        },
        Mode::Stall,
        Mode::Cut,
        Mode::Reset,
        Mode::Corrupt,
    ];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Pass => "pass",
            Mode::Delay(_) => "delay",
            Mode::Drip { .. } => "drip",
            Mode::Stall => "stall",
            Mode::Cut => "cut",
            Mode::Reset => "reset",
            Mode::Corrupt => "corrupt",
        }
    }
}

/// One fault: a mode applied to one direction from octet `at` (counted from the first octet
/// of that direction on the connection, greeting included for [`Dir::Down`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// What happens.
    pub mode: Mode,
    /// To which direction.
    pub dir: Dir,
    /// From which octet on.
    pub at: u64,
}

/// Per-connection state shared by its two pumps.
#[derive(Debug, Default)]
struct ConnState {
    /// Set on cut or reset: both pumps end at once.
    closed: AtomicBool,
    /// Set when a pump has ended (index: 0 up, 1 down).
    done: [AtomicBool; 2],
}

/// A fault-injecting TCP proxy on 127.0.0.1:0 in front of `upstream`. Every connection
/// accepted gets the same [`Fault`]. Dropping it stops and joins all its threads.
#[derive(Debug)]
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Octets forwarded up (0) and down (1).
    forwarded: Arc<[AtomicU64; 2]>,
    injected: Arc<AtomicU64>,
    accept: Option<JoinHandle<()>>,
    pumps: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// How often blocked proxy threads look at their stop flags.
const TICK: Duration = Duration::from_millis(50);

impl Proxy {
    /// Starts a proxy to `upstream` applying `fault`.
    pub fn start(upstream: SocketAddr, fault: Fault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let forwarded = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let injected = Arc::new(AtomicU64::new(0));
        let pumps = Arc::new(Mutex::new(Vec::new()));
        let accept = std::thread::Builder::new()
            .name("fault-proxy-accept".into())
            .spawn({
                let (stop, forwarded, injected, pumps) = (
                    stop.clone(),
                    forwarded.clone(),
                    injected.clone(),
                    pumps.clone(),
                );
                move || {
                    while !stop.load(Ordering::SeqCst) {
                        match listener.accept() {
                            Ok((client, _)) => {
                                let Ok(server) = TcpStream::connect_timeout(&upstream, TICK * 40)
                                else {
                                    continue;
                                };
                                let state = Arc::new(ConnState::default());
                                for dir in [Dir::Up, Dir::Down] {
                                    let (from, to) = match dir {
                                        Dir::Up => (&client, &server),
                                        Dir::Down => (&server, &client),
                                    };
                                    let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone())
                                    else {
                                        continue;
                                    };
                                    let p = Pump {
                                        from,
                                        to,
                                        dir,
                                        fault: (fault.dir == dir).then_some(fault),
                                        state: state.clone(),
                                        stop: stop.clone(),
                                        forwarded: forwarded.clone(),
                                        injected: injected.clone(),
                                    };
                                    let t = std::thread::Builder::new()
                                        .name(format!("fault-proxy-{dir:?}"))
                                        .spawn(move || p.run())
                                        .expect("spawn a pump");
                                    pumps.lock().expect("pumps").push(t);
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                std::thread::sleep(Duration::from_millis(5));
                            }
                            Err(_) => std::thread::sleep(Duration::from_millis(5)),
                        }
                    }
                }
            })
            .expect("spawn the proxy");
        Self {
            addr,
            stop,
            forwarded,
            injected,
            accept: Some(accept),
            pumps,
        }
    }

    /// Octets forwarded so far, both directions.
    pub fn forwarded(&self) -> u64 {
        self.forwarded_in(Dir::Up) + self.forwarded_in(Dir::Down)
    }

    /// Octets forwarded so far in one direction.
    pub fn forwarded_in(&self, dir: Dir) -> u64 {
        self.forwarded[dir.index()].load(Ordering::SeqCst)
    }

    /// How many times the fault fired (0 when the connection never reached octet `at`).
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let pumps = std::mem::take(&mut *self.pumps.lock().unwrap_or_else(|e| e.into_inner()));
        for t in pumps {
            let _ = t.join();
        }
    }
}

/// One direction of one proxied connection.
struct Pump {
    from: TcpStream,
    to: TcpStream,
    dir: Dir,
    fault: Option<Fault>,
    state: Arc<ConnState>,
    stop: Arc<AtomicBool>,
    forwarded: Arc<[AtomicU64; 2]>,
    injected: Arc<AtomicU64>,
}

impl Pump {
    fn ends(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.state.closed.load(Ordering::SeqCst)
    }

    fn other_done(&self) -> bool {
        let other = match self.dir {
            Dir::Up => 1,
            Dir::Down => 0,
        };
        self.state.done[other].load(Ordering::SeqCst)
    }

    fn send(&self, data: &[u8]) -> bool {
        if (&self.to).write_all(data).is_err() {
            return false;
        }
        self.forwarded[self.dir.index()].fetch_add(data.len() as u64, Ordering::SeqCst);
        true
    }

    fn run(self) {
        let me = match self.dir {
            Dir::Up => 0,
            Dir::Down => 1,
        };
        self.pump();
        self.state.done[me].store(true, Ordering::SeqCst);
    }

    fn pump(&self) {
        let _ = self.from.set_read_timeout(Some(TICK));
        let _ = self.to.set_write_timeout(Some(Duration::from_secs(10)));
        let _ = self.to.set_nodelay(true);
        let mut pos = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if self.ends() {
                return;
            }
            let n = match (&self.from).read(&mut buf) {
                Ok(0) => {
                    // Pass the half-close on; the other direction goes on by itself.
                    let _ = self.to.shutdown(NetShutdown::Write);
                    return;
                }
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(_) => {
                    let _ = self.to.shutdown(NetShutdown::Write);
                    return;
                }
            };
            let data = &mut buf[..n];
            let start = pos;
            pos += n as u64;
            let Some(fault) = self.fault else {
                if !self.send(data) {
                    return;
                }
                continue;
            };
            // Octets before `at` in this read, and whether `at` falls in it.
            let hit = fault.at >= start && fault.at < pos;
            let before = (fault.at.saturating_sub(start) as usize).min(n);
            match fault.mode {
                Mode::Pass => {
                    if !self.send(data) {
                        return;
                    }
                }
                Mode::Delay(d) => {
                    if hit {
                        self.injected.fetch_add(1, Ordering::SeqCst);
                    }
                    if fault.at < pos {
                        std::thread::sleep(d);
                    }
                    if !self.send(data) {
                        return;
                    }
                }
                Mode::Drip { len, every } => {
                    if hit {
                        self.injected.fetch_add(1, Ordering::SeqCst);
                    }
                    let (lo, hi) = (fault.at, fault.at + len);
                    // Clamp the drip window to this read, in buffer indices.
                    let d0 = (lo.clamp(start, pos) - start) as usize;
                    let d1 = (hi.clamp(start, pos) - start) as usize;
                    if !self.send(&data[..d0]) {
                        return;
                    }
                    for b in &data[d0..d1] {
                        if !self.send(std::slice::from_ref(b)) {
                            return;
                        }
                        std::thread::sleep(every);
                    }
                    if !self.send(&data[d1..]) {
                        return;
                    }
                }
                Mode::Corrupt => {
                    if hit {
                        data[before] ^= 0x01;
                        self.injected.fetch_add(1, Ordering::SeqCst);
                    }
                    if !self.send(data) {
                        return;
                    }
                }
                Mode::Stall | Mode::Cut | Mode::Reset => {
                    if !hit {
                        if !self.send(data) {
                            return;
                        }
                        continue;
                    }
                    if !self.send(&data[..before]) {
                        return;
                    }
                    self.injected.fetch_add(1, Ordering::SeqCst);
                    match fault.mode {
                        Mode::Stall => {
                            // Stop reading: the sender's buffers fill up. Wait for the end.
                            while !self.ends() && !self.other_done() {
                                std::thread::sleep(TICK / 5);
                            }
                        }
                        Mode::Cut => {
                            let _ = self.from.shutdown(NetShutdown::Both);
                            let _ = self.to.shutdown(NetShutdown::Both);
                            self.state.closed.store(true, Ordering::SeqCst);
                        }
                        _ => {
                            // SO_LINGER 0: the last close of each socket sends RST.
                            let zero = Some(Duration::ZERO);
                            let _ = rustix::net::sockopt::set_socket_linger(&self.from, zero);
                            let _ = rustix::net::sockopt::set_socket_linger(&self.to, zero);
                            self.state.closed.store(true, Ordering::SeqCst);
                        }
                    }
                    return;
                }
            }
        }
    }
}

/// `len` pseudo-random octets from `seed` (xorshift64*), fast even in debug builds.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A small seeded generator for the soak loop.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    /// The next value below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// Which client library drives a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// `ferry_sync::client::Client`.
    Sync,
    /// The async client on smol (`ferry_async::smol::BlockingClient`).
    AsyncSmol,
}

impl ClientKind {
    /// Both clients.
    pub const ALL: [ClientKind; 2] = [ClientKind::Sync, ClientKind::AsyncSmol];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            ClientKind::Sync => "sync",
            ClientKind::AsyncSmol => "async(smol)",
        }
    }

    /// The client implementation it is.
    pub fn imp(self) -> Impl {
        match self {
            ClientKind::Sync => Impl::Threads,
            ClientKind::AsyncSmol => Impl::Smol,
        }
    }
}

/// Get or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Download a file from the server.
    Get,
    /// Upload a file to the server.
    Put,
}

/// Client timeouts in the suite: short, so a stalled proxy fails a case in seconds.
pub fn client_options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Some(Duration::from_secs(3)),
        read_timeout: Some(Duration::from_secs(2)),
        write_timeout: Some(Duration::from_secs(2)),
        ..ClientOptions::default()
    }
}

/// Either client, with the two operations the suite needs: a `ferry-test-support`
/// [`TestClient`] of the implementation [`ClientKind::imp`] names.
#[derive(Debug)]
pub struct AnyClient(TestClient);

impl AnyClient {
    /// Connects with [`client_options`].
    pub fn connect(kind: ClientKind, addr: SocketAddr) -> Result<Self, ClientError> {
        Self::connect_with(kind, addr, &client_options())
    }

    /// Connects with `options` (those of a TLS server: [`TestServer::client_options`]).
    pub fn connect_with(
        kind: ClientKind,
        addr: SocketAddr,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        TestClient::connect_with(kind.imp(), addr, options).map(AnyClient)
    }

    /// `get_to_path`; returns the octets the file was resumed from.
    pub fn get(&mut self, name: &str, dest: &Path, opts: &GetOptions) -> Result<u64, ClientError> {
        self.0
            .get_to_path(&file_name(name), dest, opts, &mut |_| {})
            .map(|rep| rep.resumed_from)
    }

    /// `put_from_reader` with flow `wait` (large files) and mode `new`.
    pub fn put(&mut self, name: &str, data: &[u8]) -> Result<(), ClientError> {
        let opts = PutOptions {
            mode: PutMode::New,
            ..PutOptions::default()
        };
        let size = data.len() as u64;
        self.0
            .put_from_reader(&file_name(name), size, &mut &data[..], &opts, &mut |_| {})
            .map(|_| ())
    }
}

/// The name of a `ClientError` variant (for the outcome table).
pub fn error_kind(e: &ClientError) -> String {
    match e {
        ClientError::Connect { .. } => "Connect".into(),
        ClientError::Io(_) => "Io".into(),
        ClientError::Closed { .. } => "Closed".into(),
        ClientError::Disconnected(_) => "Disconnected".into(),
        ClientError::Refused(r) => format!("Refused({})", r.code.get()),
        ClientError::Corrupt { .. } => "Corrupt".into(),
        ClientError::Truncated { .. } => "Truncated".into(),
        ClientError::Protocol(_) => "Protocol".into(),
        ClientError::Tls { .. } => "Tls".into(),
        ClientError::LocalName { .. } => "LocalName".into(),
        ClientError::Local { .. } => "Local".into(),
        _ => "Other".into(),
    }
}

/// Whether `e` is one of the clear errors a network fault may produce.
pub fn is_clear_network_error(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Io(_)
            | ClientError::Closed { .. }
            | ClientError::Disconnected(_)
            | ClientError::Refused(_)
            | ClientError::Corrupt { .. }
            | ClientError::Truncated { .. }
            | ClientError::Protocol(_)
            | ClientError::Tls { .. }
    )
}

/// What happened in one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseOutcome {
    /// `ok` or the error kind.
    pub result: String,
    /// Whether the fault fired.
    pub injected: bool,
    /// Octets the proxy forwarded.
    pub forwarded: u64,
}

/// One proxy case: `op` of `data` under file name `name`, through a proxy applying `mode` to
/// `dir` in front of `server`, with client `kind`; `local` is a private folder for
/// downloads. Checks every promise and panics with a precise message when one breaks:
///
/// - the client either succeeds or fails with a clear network error;
/// - a get leaves the destination either absent or equal to the source, and never any
///   file but the destination and its `.ferry-part` in `local`;
/// - a put leaves the server's name either absent or equal to the source;
/// - a fault in the payload direction that flips a data octet is detected (get: `Corrupt`,
///   put: `Refused(433)`; over TLS the record's authentication fails first: the client's own
///   TLS layer reports it on a get, and a put fails), and delay and drip always succeed.
///
/// A server that serves TLS ([`TestServer::tls`]) is reached over TLS with its key pinned;
/// the octets counted are then those of the TLS stream.
///
/// The server must already hold `name` for a get; a put uses `name` fresh.
#[allow(clippy::too_many_arguments)] // one flat call per case reads best in the matrix
pub fn run_case(
    server: &TestServer,
    mode: Mode,
    dir: Dir,
    op: Op,
    kind: ClientKind,
    name: &str,
    data: &[u8],
    local: &Path,
    greeting_len: u64,
) -> CaseOutcome {
    let payload_dir = match op {
        Op::Get => Dir::Down,
        Op::Put => Dir::Up,
    };
    let at = if dir == payload_dir {
        // In the middle of the payload: after the first chunk head and some data.
        (data.len() / 3) as u64 + greeting_len
    } else if dir == Dir::Down {
        // The first octet after the greeting (`ok get` never goes this way here: `go`).
        greeting_len
    } else {
        // The third octet of the request line.
        2
    };
    let tls = server.tls.is_some();
    let proxy = Proxy::start(server.addr, Fault { mode, dir, at });
    let what = format!(
        "{}{} {} {:?} {} {:?}",
        server.imp,
        if tls { " (TLS)" } else { "" },
        mode.name(),
        op,
        dir,
        kind
    );
    let dest = local.join(name);
    let result =
        match AnyClient::connect_with(kind, proxy.addr, &server.client_options(client_options())) {
            Err(e) => Err(e),
            Ok(mut c) => match op {
                Op::Get => c.get(name, &dest, &GetOptions::default()).map(|_| ()),
                Op::Put => c.put(name, data),
            },
        };
    let injected = proxy.injected() > 0;
    let forwarded = proxy.forwarded();
    drop(proxy);
    if let Err(e) = &result {
        assert!(is_clear_network_error(e), "{what}: unclear error {e:?}");
    }
    match op {
        Op::Get => {
            if let Ok(got) = std::fs::read(&dest) {
                assert!(got == data, "{what}: destination holds wrong content");
                assert!(
                    result.is_ok(),
                    "{what}: destination written after a failure"
                );
            } else {
                assert!(
                    result.is_err(),
                    "{what}: success without a destination file"
                );
            }
            for e in std::fs::read_dir(local).expect("local folder") {
                let n = e.expect("entry").file_name().to_string_lossy().into_owned();
                assert!(
                    n == name || n == format!("{name}.ferry-part") || !n.starts_with(name),
                    "{what}: unexpected local file {n}"
                );
            }
        }
        Op::Put => {
            // A visible file must equal the source (it may exist after an Io error: the
            // server committed before the reply was lost, PIPE-6).
            if let Some(got) = server.read_file(name) {
                assert!(
                    got == data,
                    "{what}: the server shows a wrong uploaded file"
                );
            } else {
                assert!(result.is_err(), "{what}: ok put but no file on the server");
            }
        }
    }
    if mode == Mode::Corrupt && dir == payload_dir && injected && tls {
        // The flipped octet is in a TLS record: its authentication fails before any octet of
        // it reaches the protocol, so no data check sees it — the TLS layer does.
        match (&result, op) {
            (Err(e), Op::Get) => assert!(
                ferry_tls::explain(e).is_some(),
                "{what}: not reported as a TLS failure: {e:?}"
            ),
            (Err(_), Op::Put) => {}
            (Ok(()), _) => panic!("{what}: a flipped octet in a TLS record went unnoticed"),
        }
    } else if mode == Mode::Corrupt && dir == payload_dir && injected {
        match (&result, op) {
            (Err(ClientError::Corrupt { .. }), Op::Get) => {}
            (Err(ClientError::Refused(r)), Op::Put) if r.code.get() == 433 => {}
            other => panic!("{what}: a flipped payload octet was not detected: {other:?}"),
        }
    }
    if matches!(mode, Mode::Delay(_) | Mode::Drip { .. } | Mode::Pass) {
        assert!(result.is_ok(), "{what}: a slow path failed: {result:?}");
    }
    CaseOutcome {
        result: match &result {
            Ok(()) => "ok".into(),
            Err(e) => error_kind(e),
        },
        injected,
        forwarded,
    }
}

/// A direct client gets normal service: `dir`, a get of `probe` (which must equal
/// `probe_data`) and a small put of `fresh`.
pub fn assert_service(server: &TestServer, probe: &str, probe_data: &[u8], fresh: &str) {
    let what = format!("{}: service after a fault", server.imp);
    let mut c = Client::connect_with(server.addr, &server.client_options(client_options()))
        .unwrap_or_else(|e| panic!("{what}: connect: {e}"));
    c.dir().unwrap_or_else(|e| panic!("{what}: dir: {e}"));
    let mut got = Vec::new();
    c.get_to_writer(&file_name(probe), &mut got, &mut |_| {})
        .unwrap_or_else(|e| panic!("{what}: get: {e}"));
    assert!(got == probe_data, "{what}: get returned wrong octets");
    let small = b"still serving";
    let mut r = &small[..];
    c.put_from_reader(
        &file_name(fresh),
        small.len() as u64,
        &mut r,
        &PutOptions::default(),
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{what}: put: {e}"));
    assert_eq!(server.read_file(fresh).as_deref(), Some(&small[..]));
    let _ = c.close();
}

/// The length of the server's greeting line, LF included.
pub fn greeting_len(addr: SocketAddr) -> u64 {
    let mut s = RawSession::connect(addr);
    s.read_line().len() as u64 + 1
}

/// Polls `f` every 20 ms until it holds or `limit` passes; whether it held.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads the first line a fresh connection gets, within `limit` (`None` on timeout/EOF).
pub fn first_line(addr: SocketAddr, limit: Duration) -> Option<(TcpStream, String)> {
    let s = TcpStream::connect_timeout(&addr, limit).ok()?;
    s.set_read_timeout(Some(limit)).ok()?;
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match (&s).read(&mut b) {
            Ok(1) if b[0] == b'\n' => break,
            Ok(1) => line.push(b[0]),
            _ => return None,
        }
    }
    Some((s, String::from_utf8_lossy(&line).into_owned()))
}

/// The `ferry` binary: `$FERRY_BIN`, or `target/<profile>/ferry` next to this test's
/// executable (built by `cargo build -p ferry` or any workspace build).
pub fn ferry_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FERRY_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let bin = profile_dir.join("ferry");
    bin.is_file().then_some(bin)
}

/// [`ferry_bin`] for a test that needs the binary: without one it says `SKIPPED` and the
/// test returns, except under CI, which has the binary and never skips (a missing one fails).
pub fn ferry_bin_or_skip() -> Option<PathBuf> {
    let bin = ferry_bin();
    if bin.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "SKIPPED: no ferry binary (run `cargo build -p ferry` or set FERRY_BIN)"
        );
        eprintln!("SKIPPED: no ferry binary (run `cargo build -p ferry` or set FERRY_BIN)");
    }
    bin
}

/// A `ferry serve` child process on 127.0.0.1:0; SIGKILLed and reaped on drop.
#[derive(Debug)]
pub struct ChildServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its process id.
    pub pid: u32,
    child: Child,
}

impl ChildServer {
    /// Starts `ferry serve --impl IMP --root ROOT` with `extra` arguments; waits (10 s at
    /// most) for its `listening on ADDR` line.
    pub fn start(bin: &Path, imp: Impl, root: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(bin)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--impl", imp.name()])
            .arg("--root")
            .arg(root)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ferry serve");
        let pid = child.id();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Ends when the child's stdout closes (the child ends or is killed).
        std::thread::spawn(move || {
            let mut r = io::BufReader::new(stdout);
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                if let Some(a) = line.trim().strip_prefix("listening on ") {
                    let _ = tx.send(a.to_owned());
                }
                line.clear();
            }
        });
        let mut this = Self {
            addr: "127.0.0.1:1".parse().expect("addr"),
            pid,
            child,
        };
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("ferry serve printed no `listening on` line within 10 s");
        this.addr = addr.parse().expect("a socket address");
        this
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// VmRSS of the process in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The names in `dir`, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
