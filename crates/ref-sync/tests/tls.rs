//! ferry/1 over TLS (spec section 15) between the threaded client and the threaded server,
//! and against raw peers: what goes inside TLS, what a wrong peer gets, how a session ends.

use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ferry_sync::client::{Client, ClientError, ClientOptions, GetOptions, PutOptions};
use ferry_sync::server::{self, Config, Shutdown};
use ferry_tls::rustls::{ClientConnection, ServerConnection, StreamOwned};
use ferry_tls::{ClientTls, Fingerprint, ServerTls, Trust};
use ferry_wire::FileName;

/// A server on 127.0.0.1:0 in a thread, stopped (and joined) when dropped.
struct Server {
    addr: SocketAddr,
    shutdown: Shutdown,
    handle: Option<JoinHandle<io::Result<()>>>,
    root: PathBuf,
    tls: Option<ServerTls>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(tls: bool, tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("served");
        let tls = tls.then(|| {
            ServerTls::self_signed(&dir.path().join("tls"))
                .expect("self-signed pair")
                .0
        });
        let mut config = Config {
            root: root.clone(),
            tls: tls.clone(),
            shutdown_grace: Duration::from_secs(2),
            ..Config::default()
        };
        tweak(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let shutdown = Shutdown::new();
        let handle = thread::spawn({
            let shutdown = shutdown.clone();
            move || server::run(listener, config, shutdown)
        });
        Self {
            addr,
            shutdown,
            handle: Some(handle),
            root,
            tls,
            _dir: dir,
        }
    }

    fn tls() -> Self {
        Self::start(true, |_| {})
    }

    /// Client options pinned to this server's key.
    fn options(&self) -> ClientOptions {
        let fp = self.tls.as_ref().expect("a TLS server").fingerprint();
        options_for(self.addr, Trust::Fingerprint(fp))
    }

    fn client(&self) -> Client {
        Client::connect_with(self.addr, &self.options()).expect("TLS client connects")
    }

    /// Stops the server and waits for it to return.
    fn stop(&mut self) -> io::Result<()> {
        self.shutdown.trigger();
        match self.handle.take() {
            Some(h) => h.join().expect("the server thread"),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn options_for(addr: SocketAddr, trust: Trust) -> ClientOptions {
    let tls = ClientTls::new(&addr.ip().to_string(), addr.port(), trust).expect("client TLS");
    ClientOptions {
        tls: Some(tls),
        read_timeout: Some(Duration::from_secs(30)),
        write_timeout: Some(Duration::from_secs(30)),
        ..ClientOptions::default()
    }
}

fn name(s: &str) -> FileName {
    FileName::new(s).expect("a valid name")
}

/// Octets that are not all alike, so that a misplaced piece shows.
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64 * 31 + u64::from(seed)).to_le_bytes()[0] ^ (i >> 12) as u8)
        .collect()
}

fn write_file(dir: &Path, file: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(file);
    std::fs::write(&p, data).expect("write a local file");
    p
}

#[test]
fn dir_get_and_put_of_several_sizes_over_tls() {
    let server = Server::tls();
    let local = tempfile::tempdir().expect("tempdir");
    let mut client = server.client();
    assert!(client.dir().expect("dir").is_empty());
    let sizes = [0usize, 1, 100_000, (1 << 20) + 12_345, 3 << 20];
    for (i, &size) in sizes.iter().enumerate() {
        let data = content(size, i as u8);
        let file = format!("f{i}.bin");
        let path = write_file(local.path(), &file, &data);
        let report = client
            .put_from_path(&path, None, &PutOptions::default(), &mut |_| {})
            .expect("put");
        assert_eq!(report.size, size as u64);
        assert_eq!(
            std::fs::read(server.root.join(&file)).expect("stored"),
            data
        );
        let dest = local.path().join(format!("back{i}.bin"));
        let got = client
            .get_to_path(&name(&file), &dest, &GetOptions::default(), &mut |_| {})
            .expect("get");
        assert_eq!(got.size, size as u64);
        assert_eq!(std::fs::read(&dest).expect("downloaded"), data);
    }
    let listed: Vec<String> = client
        .dir()
        .expect("dir")
        .into_iter()
        .map(|e| e.name.to_string())
        .collect();
    assert_eq!(listed, ["f0.bin", "f1.bin", "f2.bin", "f3.bin", "f4.bin"]);
    client.close().expect("close");
}

#[test]
fn pipelined_batches_and_a_resume_over_tls() {
    let server = Server::tls();
    let local = tempfile::tempdir().expect("tempdir");
    let up = local.path().join("up");
    std::fs::create_dir(&up).expect("mkdir");
    let files: Vec<(PathBuf, FileName)> = (0..12)
        .map(|i| {
            let data = content(i * 7_000, i as u8);
            (
                write_file(&up, &format!("b{i:02}"), &data),
                name(&format!("b{i:02}")),
            )
        })
        .collect();
    let mut client = server.client();
    for r in client.put_many(&files, &PutOptions::default(), &mut |_| {}) {
        r.expect("batch put");
    }
    let down = local.path().join("down");
    std::fs::create_dir(&down).expect("mkdir");
    let names: Vec<FileName> = files.iter().map(|(_, n)| n.clone()).collect();
    for r in client.get_many(&names, &down, &GetOptions::default(), &mut |_| {}) {
        r.expect("batch get");
    }
    for (path, n) in &files {
        assert_eq!(
            std::fs::read(down.join(n.as_str())).expect("downloaded"),
            std::fs::read(path).expect("source")
        );
    }

    // A resume: half of a 2 MiB file is already here.
    let data = content(2 << 20, 9);
    std::fs::write(server.root.join("big"), &data).expect("served file");
    let dest = local.path().join("big");
    std::fs::write(
        ferry_sync::client::part_path(&dest).expect("part path"),
        &data[..1 << 20],
    )
    .expect("part");
    let opts = GetOptions {
        resume: true,
        ..GetOptions::default()
    };
    let report = client
        .get_to_path(&name("big"), &dest, &opts, &mut |_| {})
        .expect("resumed get");
    assert_eq!(report.resumed_from, 1 << 20);
    assert_eq!(std::fs::read(&dest).expect("downloaded"), data);
    client.close().expect("close");
}

#[test]
fn the_greeting_is_inside_tls() {
    let server = Server::tls();
    let mut stream = raw_session(&server);
    let mut raw = stream.get_ref().sock.try_clone().expect("clone");
    let mut line = String::new();
    assert_eq!(stream.get_ref().conn.alpn_protocol(), Some(&b"ferry/1"[..]));
    stream.get_mut().write_all(b"close\n").expect("close");
    stream.get_mut().flush().expect("flush");
    line.clear();
    stream.read_line(&mut line).expect("bye");
    assert_eq!(line, "bye\n");
    // The server ends with close_notify (TLS-6): a clean end of the plaintext.
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("a clean end");
    assert!(rest.is_empty());
    // Nothing more on the socket itself.
    let mut after = [0u8; 1];
    assert!(matches!(raw.read(&mut after), Ok(0) | Err(_)));
}

#[test]
fn plaintext_to_a_tls_server_gets_no_greeting_and_a_close() {
    let server = Server::tls();
    let mut sock = TcpStream::connect(server.addr).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    sock.write_all(b"dir\nget 0 x\nclose\n").expect("write");
    let mut got = Vec::new();
    let end = sock.read_to_end(&mut got);
    // Closed (cleanly or by a reset), not left waiting.
    if let Err(e) = &end {
        assert!(
            !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{e}"
        );
    }
    // At most a TLS alert record (content type 21), never a greeting.
    assert!(!got.windows(5).any(|w| w == b"ferry"), "{got:?}");
    assert!(got.is_empty() || got[0] == 21, "{got:?}");
}

#[test]
fn a_client_pinned_to_another_key_is_refused_and_nothing_is_stored() {
    let server = Server::tls();
    let options = options_for(
        server.addr,
        Trust::Fingerprint(Fingerprint::of_spki(b"another key")),
    );
    let err = Client::connect_with(server.addr, &options).expect_err("refused");
    let ClientError::Tls { message, .. } = &err else {
        panic!("not a TLS error: {err:?}");
    };
    assert!(
        message.contains(&Fingerprint::of_spki(b"another key").to_string()),
        "{message}"
    );
    assert!(message.contains("not the pinned"), "{message}");
    let mut client = server.client();
    assert!(client.dir().expect("dir").is_empty());
    client.close().expect("close");
}

#[test]
fn a_plain_client_of_a_tls_server_fails() {
    let server = Server::start(true, |c| c.stall_timeout = Duration::from_secs(1));
    let options = ClientOptions {
        read_timeout: Some(Duration::from_secs(30)),
        ..ClientOptions::default()
    };
    // The server waits for a ClientHello no longer than its stall timeout, then closes.
    let err = Client::connect_with(server.addr, &options).expect_err("no plain session");
    assert!(
        matches!(err, ClientError::Closed { .. } | ClientError::Io(_)),
        "{err:?}"
    );
}

#[test]
fn a_tls_client_of_a_plain_server_fails_clearly() {
    let server = Server::start(false, |_| {});
    let options = options_for(server.addr, Trust::Insecure);
    let err = Client::connect_with(server.addr, &options).expect_err("no TLS session");
    let ClientError::Tls { message, .. } = &err else {
        panic!("not a TLS error: {err:?}");
    };
    assert!(message.contains("did not answer with TLS"), "{message}");
}

#[test]
fn busy_is_refused_inside_tls() {
    let server = Server::start(true, |c| c.max_connections = 1);
    let first = server.client();
    let err = Client::connect_with(server.addr, &server.options()).expect_err("busy");
    assert_eq!(
        err.code(),
        Some(ferry_wire::Code::BUSY),
        "not a busy refusal: {err:?}"
    );
    // As a raw TLS peer sees it: the line inside TLS, then close_notify (TLS-4, TLS-6).
    let options = server.options();
    let sock = TcpStream::connect(server.addr).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let conn = options
        .tls
        .as_ref()
        .expect("tls")
        .connect()
        .expect("rustls");
    let mut raw = BufReader::new(StreamOwned::new(conn, sock));
    let mut line = String::new();
    raw.read_line(&mut line).expect("the refusal");
    assert_eq!(line, "err 420 busy\n");
    let mut rest = Vec::new();
    raw.read_to_end(&mut rest).expect("close_notify");
    assert!(rest.is_empty());
    first.close().expect("close");
}

/// A raw TLS session (rustls over a blocking socket) that has read the greeting.
fn raw_session(server: &Server) -> BufReader<StreamOwned<ClientConnection, TcpStream>> {
    let options = server.options();
    let tls = options.tls.as_ref().expect("tls");
    let sock = TcpStream::connect(server.addr).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let conn = tls.connect().expect("rustls client");
    let mut stream = BufReader::new(StreamOwned::new(conn, sock));
    let mut line = String::new();
    stream.read_line(&mut line).expect("greeting");
    assert!(line.starts_with("ferry/1 "), "{line:?}");
    stream
}

#[test]
fn graceful_shutdown_with_tls_sessions() {
    let mut server = Server::tls();
    let mut idle = raw_session(&server);
    let mut client = server.client();
    assert!(client.dir().expect("dir").is_empty());
    server.shutdown.trigger();
    // The idle session is told inside TLS (CLOSE-8, TLS-4), then TLS ends cleanly (TLS-6).
    let mut line = String::new();
    idle.read_line(&mut line).expect("the shutdown's reply");
    assert_eq!(line, "err 422 shutting-down\n");
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).expect("close_notify");
    assert!(rest.is_empty());
    server.stop().expect("the server stops");
    assert!(client.dir().is_err());
}

/// A TLS server of its own that answers a get with part of the payload, then cuts the TCP
/// connection without close_notify.
fn cutting_server(listener: TcpListener, tls: ServerTls) -> JoinHandle<()> {
    thread::spawn(move || {
        let (sock, _) = listener.accept().expect("accept");
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let conn = ServerConnection::new(tls.config()).expect("rustls server");
        let mut stream = StreamOwned::new(conn, sock);
        let greeting = Config::default().greeting().to_bytes();
        stream.write_all(&greeting).expect("greeting");
        stream.flush().expect("flush");
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).expect("request");
        assert!(line.starts_with("get "), "{line:?}");
        let stream = reader.get_mut();
        let size = 200_000;
        write!(stream, "ok get {size} 2026-01-01T00:00:00Z\ndata {size}\n").expect("reply");
        stream.write_all(&content(size / 2, 3)).expect("half");
        stream.flush().expect("flush");
        // Cut: the socket closes without close_notify.
        let sock = &reader.get_ref().sock;
        let _ = sock.shutdown(std::net::Shutdown::Both);
    })
}

#[test]
fn a_download_cut_without_close_notify_is_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tls, _) = ServerTls::self_signed(&dir.path().join("tls")).expect("pair");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let fake = cutting_server(listener, tls.clone());
    let options = options_for(addr, Trust::Fingerprint(tls.fingerprint()));
    let mut client = Client::connect_with(addr, &options).expect("connect");
    let dest = dir.path().join("cut.bin");
    let opts = GetOptions {
        keep_partial: false,
        ..GetOptions::default()
    };
    let err = client
        .get_to_path(&name("cut.bin"), &dest, &opts, &mut |_| {})
        .expect_err("cut");
    assert!(
        matches!(
            err,
            ClientError::Truncated {
                expected: 200_000,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!dest.exists());
    assert!(
        !ferry_sync::client::part_path(&dest)
            .expect("part path")
            .exists()
    );
    fake.join().expect("the fake server");
}

#[test]
fn a_tls_refusal_over_the_cap_never_blocks_the_accept_loop() {
    // Clients that open and never handshake, more than the refusal threads: the server still
    // serves its one session and refuses the next client inside TLS or by closing.
    let server = Server::start(true, |c| c.max_connections = 1);
    let mut held = server.client();
    let silent: Vec<TcpStream> = (0..12)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect();
    assert!(held.dir().expect("dir").is_empty());
    let err = Client::connect_with(server.addr, &server.options()).expect_err("refused");
    assert!(
        matches!(
            &err,
            ClientError::Refused(_) | ClientError::Tls { .. } | ClientError::Io(_)
        ),
        "{err:?}"
    );
    drop(silent);
    held.close().expect("close");
}

#[test]
fn a_peer_that_never_handshakes_holds_its_slot_no_longer_than_the_stall_timeout() {
    let server = Server::start(true, |c| {
        c.max_connections = 1;
        c.stall_timeout = Duration::from_secs(1);
    });
    let mut silent = TcpStream::connect(server.addr).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    // The server gives up on the handshake after its stall timeout and closes, without a word.
    let mut got = Vec::new();
    silent.read_to_end(&mut got).expect("closed by the server");
    assert!(got.is_empty(), "{got:?}");
    // Its slot is free again.
    let mut client = server.client();
    assert!(client.dir().expect("dir").is_empty());
    client.close().expect("close");
}

#[test]
fn an_upload_cut_without_close_notify_is_not_stored() {
    let server = Server::tls();
    let options = server.options();
    let sock = TcpStream::connect(server.addr).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let conn = options
        .tls
        .as_ref()
        .expect("tls")
        .connect()
        .expect("rustls");
    let mut raw = BufReader::new(StreamOwned::new(conn, sock));
    let mut line = String::new();
    raw.read_line(&mut line).expect("greeting");
    // An eager put whose payload ends early, then the TCP connection ends without
    // close_notify (TLS-7): nothing is stored.
    let stream = raw.get_mut();
    stream
        .write_all(b"put 1000 new now cut.bin\ndata 1000\n")
        .expect("put");
    stream.write_all(&[7u8; 400]).expect("part of the payload");
    stream.flush().expect("flush");
    stream.sock.shutdown(std::net::Shutdown::Both).expect("cut");
    drop(raw);
    let mut client = server.client();
    assert!(client.dir().expect("dir").is_empty());
    assert!(!server.root.join("cut.bin").exists());
    client.close().expect("close");
}
