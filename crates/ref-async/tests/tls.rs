//! ferry/1 over TLS (spec section 15) through the one futures-io TLS layer, once per runtime:
//! the async client against the async server over TLS (dir, get, put of 0 octets, a few KiB
//! and more than 1 MiB, pipelined batches, resume), the refusals and the shutdown inside TLS,
//! `close_notify` at every end of a session (checked with rustls' blocking client, whose read
//! tells `close_notify` from a bare TCP end), cuts without `close_notify`, and the failures
//! that must be clear and bounded: plaintext on a TLS port, a wrong pinned key, TLS against a
//! plain server and plain against a TLS server.

// Without any driver feature there is nothing to instantiate the tests with.
#![cfg_attr(
    not(any(feature = "tokio", feature = "async-std", feature = "smol")),
    allow(dead_code, unused_imports)
)]

mod common;

use std::fs;
use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Shutdown as NetShutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{Driver, Server, file_name, pattern};
use ferry_async::BlockOn;
use ferry_async::client::{
    Client, ClientError, ClientOptions, GetOptions, PART_SUFFIX, PutOptions,
};
use ferry_tls::rustls;
use ferry_tls::{ClientTls, Fingerprint, ServerTls, Trust};
use ferry_wire::{Code, Digest, PutFlow, PutMode, Request};

per_runtime!(
    round_trips_over_tls,
    pipelined_batches_and_resume_over_tls,
    close_notify_ends_every_session,
    plaintext_on_the_tls_port_gets_no_greeting,
    a_wrong_pinned_key_is_refused_before_anything_is_sent,
    tls_client_against_a_plain_server_fails_clearly,
    plain_client_against_a_tls_server_fails_boundedly,
    busy_refusal_is_inside_tls,
    a_cut_without_close_notify_truncates_a_download,
    a_cut_without_close_notify_discards_an_upload,
    shutdown_ends_tls_sessions_with_422_and_close_notify,
);

/// Every read and write of the tests' own peers.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A self-signed certificate (its folder kept while it is used).
struct Cert {
    tls: ServerTls,
    _dir: tempfile::TempDir,
}

impl Cert {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tls, made) = ServerTls::self_signed(dir.path()).expect("a self-signed pair");
        assert!(made);
        Self { tls, _dir: dir }
    }

    fn fingerprint(&self) -> Fingerprint {
        self.tls.fingerprint()
    }
}

/// A TLS server of runtime `D` (its certificate, and the server), configured by `f`.
fn tls_server<D: Driver>(f: impl FnOnce(&mut common::Config)) -> (Cert, Server) {
    let cert = Cert::new();
    let tls = cert.tls.clone();
    let server = common::start_with::<D>(move |c| {
        c.tls = Some(tls);
        f(c);
    });
    (cert, server)
}

fn plain_options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Some(TIMEOUT),
        read_timeout: Some(TIMEOUT),
        write_timeout: Some(TIMEOUT),
        ..ClientOptions::default()
    }
}

/// Options for ferry/1 over TLS to `addr`, pinned to `key`.
fn tls_options(addr: SocketAddr, key: Fingerprint) -> ClientOptions {
    let tls = ClientTls::new(&addr.ip().to_string(), addr.port(), Trust::Fingerprint(key))
        .expect("client TLS");
    ClientOptions {
        tls: Some(tls),
        ..plain_options()
    }
}

async fn connect<R: ferry_async::Runtime>(
    rt: &R,
    addr: SocketAddr,
    options: &ClientOptions,
) -> Client<R> {
    Client::connect_with(rt.clone(), addr, options)
        .await
        .expect("TLS session")
}

fn no_progress(_: ferry_async::client::Progress<'_>) {}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn part_of(dest: &Path) -> std::path::PathBuf {
    let mut p = dest.as_os_str().to_owned();
    p.push(PART_SUFFIX);
    p.into()
}

// ------------------------------------------------ rustls' blocking peers ---

/// How a TLS peer's input ended.
#[derive(Debug, PartialEq, Eq)]
enum TlsEnd {
    /// With `close_notify`, after these octets.
    CloseNotify(Vec<u8>),
    /// The TCP connection ended without `close_notify`.
    Cut,
}

/// A blocking ferry/1-over-TLS client made of rustls' own stream: it sees exactly what the
/// server sends, `close_notify` included.
struct RawTls {
    r: BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
}

impl RawTls {
    fn connect(addr: SocketAddr, key: Fingerprint) -> Self {
        let sock = TcpStream::connect(addr).expect("connect");
        sock.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        sock.set_write_timeout(Some(TIMEOUT)).expect("timeout");
        let tls = ClientTls::new("127.0.0.1", addr.port(), Trust::Fingerprint(key))
            .expect("client TLS")
            .connect()
            .expect("a rustls connection");
        Self {
            r: BufReader::new(rustls::StreamOwned::new(tls, sock)),
        }
    }

    /// Connects and reads the greeting.
    fn session(addr: SocketAddr, key: Fingerprint) -> Self {
        let mut s = Self::connect(addr, key);
        let greeting = s.line();
        assert!(greeting.starts_with("ferry/1 "), "{greeting:?}");
        s
    }

    fn send(&mut self, bytes: &[u8]) {
        let tls = self.r.get_mut();
        tls.write_all(bytes).expect("TLS write");
        tls.flush().expect("TLS flush");
    }

    fn line(&mut self) -> String {
        let mut buf = Vec::new();
        self.r.read_until(b'\n', &mut buf).expect("TLS read");
        assert_eq!(
            buf.pop(),
            Some(b'\n'),
            "{:?}",
            String::from_utf8_lossy(&buf)
        );
        String::from_utf8(buf).expect("UTF-8")
    }

    /// Reads to the end of the server's input.
    fn end(&mut self) -> TlsEnd {
        let mut rest = Vec::new();
        match self.r.read_to_end(&mut rest) {
            Ok(_) => TlsEnd::CloseNotify(rest),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => TlsEnd::Cut,
            Err(e) => panic!("reading to the end: {e}"),
        }
    }

    /// Ends the TCP connection's sending side without `close_notify`.
    fn cut(&mut self) {
        let tls = self.r.get_mut();
        tls.flush().expect("TLS flush");
        tls.sock.shutdown(NetShutdown::Write).expect("shutdown");
    }

    /// Sends `close_notify` and ends the sending side.
    fn close_notify(&mut self) {
        let tls = self.r.get_mut();
        tls.conn.send_close_notify();
        tls.flush().expect("TLS flush");
        tls.sock.shutdown(NetShutdown::Write).expect("shutdown");
    }
}

/// A scripted TLS server for one connection (rustls' blocking stream over the server
/// configuration ferry-tls makes), to cut a session where a test wants.
fn scripted_server(
    cert: &Cert,
    script: impl FnOnce(&mut BufReader<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>)
    + Send
    + 'static,
) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = cert.tls.config();
    let handle = thread::spawn(move || {
        let (sock, _) = listener.accept().expect("accept");
        sock.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        sock.set_write_timeout(Some(TIMEOUT)).expect("timeout");
        let conn = rustls::ServerConnection::new(Arc::clone(&config)).expect("server TLS");
        let mut s = BufReader::new(rustls::StreamOwned::new(conn, sock));
        script(&mut s);
    });
    (addr, handle)
}

fn script_line(s: &mut BufReader<impl io::Read>) -> String {
    let mut buf = Vec::new();
    s.read_until(b'\n', &mut buf).expect("script read");
    assert_eq!(buf.pop(), Some(b'\n'));
    String::from_utf8(buf).expect("UTF-8")
}

// ------------------------------------------------------------------ tests ---

fn round_trips_over_tls<D: Driver>() {
    let (cert, server) = tls_server::<D>(|_| {});
    let big = pattern((3 << 19) + 7); // 1.5 MiB and 7 octets: two chunks and some
    server.write_file("big.bin", &big);
    server.write_file("small.txt", &pattern(3000));
    server.write_file("empty", b"");
    let local = tempfile::tempdir().expect("tempdir");
    let options = tls_options(server.addr, cert.fingerprint());
    let rt = D::runtime();
    rt.block_on(async {
        let mut c = connect(&rt, server.addr, &options).await;
        let names: Vec<String> = c
            .dir()
            .await
            .expect("dir")
            .into_iter()
            .map(|e| e.name.as_str().to_owned())
            .collect();
        assert_eq!(names, ["big.bin", "empty", "small.txt"]);
        for name in ["big.bin", "small.txt", "empty"] {
            let dest = local.path().join(name);
            let report = c
                .get_to_path(&file_name(name), &dest, &GetOptions::default(), no_progress)
                .await
                .expect("get");
            let want = server.read_file(name).expect("served file");
            assert_eq!(report.size, want.len() as u64);
            assert_eq!(fs::read(&dest).expect("downloaded"), want, "{name}");
        }
        // Uploads: eager (0 octets, a few KiB) and with `go` (more than 1 MiB).
        let mut writer = Vec::new();
        c.get_to_writer(&file_name("small.txt"), &mut writer, no_progress)
            .await
            .expect("get to a writer");
        assert_eq!(writer, pattern(3000));
        for (name, data) in [
            ("up-empty", Vec::new()),
            ("up-small", pattern(4321)),
            ("up-big", pattern((5 << 18) + 3)),
        ] {
            let path = local.path().join(name);
            fs::write(&path, &data).expect("local file");
            let report = c
                .put_from_path(&path, None, &PutOptions::default(), no_progress)
                .await
                .expect("put");
            assert_eq!(report.digest, Digest::of(&data));
            assert_eq!(server.read_file(name).expect("stored"), data, "{name}");
        }
        c.close().await.expect("close");
    });
    assert!(server.staging_is_empty());
    server.stop().expect("server stops");
}

fn pipelined_batches_and_resume_over_tls<D: Driver>() {
    let (cert, server) = tls_server::<D>(|_| {});
    let up = tempfile::tempdir().expect("tempdir");
    let down = tempfile::tempdir().expect("tempdir");
    let files: Vec<(std::path::PathBuf, ferry_wire::FileName, Vec<u8>)> = (0..20)
        .map(|i| {
            let name = format!("f{i:02}");
            let data = pattern(i * 997);
            let path = up.path().join(&name);
            fs::write(&path, &data).expect("local file");
            (path, file_name(&name), data)
        })
        .collect();
    let big = pattern((1 << 20) + 12345);
    server.write_file("resume.bin", &big);
    let options = tls_options(server.addr, cert.fingerprint());
    let rt = D::runtime();
    rt.block_on(async {
        let mut c = connect(&rt, server.addr, &options).await;
        let pairs: Vec<_> = files
            .iter()
            .map(|(p, n, _)| (p.clone(), n.clone()))
            .collect();
        let puts = c
            .put_many(&pairs, &PutOptions::default(), no_progress)
            .await;
        assert!(puts.iter().all(Result::is_ok), "{puts:?}");
        let names: Vec<_> = files.iter().map(|(_, n, _)| n.clone()).collect();
        let gets = c
            .get_many(&names, down.path(), &GetOptions::default(), no_progress)
            .await;
        assert!(gets.iter().all(Result::is_ok), "{gets:?}");
        for (_, name, data) in &files {
            assert_eq!(&server.read_file(name.as_str()).expect("stored"), data);
            assert_eq!(
                &fs::read(down.path().join(name.as_str())).expect("got"),
                data
            );
        }
        // Resume: the first 700,000 octets are already here.
        let dest = down.path().join("resume.bin");
        fs::write(part_of(&dest), &big[..700_000]).expect("partial file");
        let resume = GetOptions {
            resume: true,
            ..GetOptions::default()
        };
        let report = c
            .get_to_path(&file_name("resume.bin"), &dest, &resume, no_progress)
            .await
            .expect("resumed get");
        assert_eq!(report.resumed_from, 700_000);
        assert_eq!(fs::read(&dest).expect("resumed file"), big);
        c.close().await.expect("close");
    });
    server.stop().expect("server stops");
}

/// TLS-6: `close_notify` after `bye`, after a closing error (its drain), and after the
/// client's own end, with or without its `close_notify`.
fn close_notify_ends_every_session<D: Driver>() {
    let (cert, server) = tls_server::<D>(|_| {});
    let key = cert.fingerprint();

    let mut s = RawTls::session(server.addr, key);
    s.send(&Request::Close.to_bytes());
    assert_eq!(s.line(), "bye");
    assert_eq!(s.end(), TlsEnd::CloseNotify(Vec::new()), "after bye");

    let mut s = RawTls::session(server.addr, key);
    s.send(&[b'x'; 5000]);
    s.send(b"\n");
    let line = s.line();
    assert!(line.starts_with("err 501"), "{line:?}");
    assert_eq!(
        s.end(),
        TlsEnd::CloseNotify(Vec::new()),
        "after a closing error"
    );

    let mut s = RawTls::session(server.addr, key);
    s.close_notify();
    assert_eq!(
        s.end(),
        TlsEnd::CloseNotify(Vec::new()),
        "after the client's end"
    );

    let mut s = RawTls::session(server.addr, key);
    s.cut();
    assert_eq!(
        s.end(),
        TlsEnd::CloseNotify(Vec::new()),
        "after the client's end without close_notify"
    );
    server.stop().expect("server stops");
}

/// TLS-5: a connection that does not begin with a ClientHello is closed without a greeting;
/// what comes back, if anything, is a TLS alert record.
fn plaintext_on_the_tls_port_gets_no_greeting<D: Driver>() {
    let (_cert, server) = tls_server::<D>(|_| {});
    let mut sock = TcpStream::connect(server.addr).expect("connect");
    sock.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    sock.write_all(&Request::Dir.to_bytes()).expect("write");
    let mut got = Vec::new();
    match sock.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server did not close the connection: {e}"),
    }
    assert!(
        got.is_empty() || got[0] == 0x15,
        "not a TLS alert: {:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(!String::from_utf8_lossy(&got).contains("ferry/1"));
    server.stop().expect("server stops");
}

/// TLS-8: a key other than the pinned one ends the handshake: ClientError::Tls naming both
/// keys, the server never sees a request, nothing is stored.
fn a_wrong_pinned_key_is_refused_before_anything_is_sent<D: Driver>() {
    let (_cert, server) = tls_server::<D>(|_| {});
    let other = Cert::new();
    let options = tls_options(server.addr, other.fingerprint());
    let rt = D::runtime();
    let err = rt
        .block_on(Client::connect_with(rt.clone(), server.addr, &options))
        .expect_err("a key other than the pinned one");
    match &err {
        ClientError::Tls { message, .. } => {
            assert!(message.contains("not the pinned"), "{message}");
            assert!(
                message.contains(&other.fingerprint().to_string()),
                "{message}"
            );
        }
        other => panic!("not a TLS error: {other:?}"),
    }
    assert!(!err.is_transient() && err.ends_session());
    assert!(server.visible_names().is_empty());
    assert!(server.staging_is_empty());
    server.stop().expect("server stops");
}

/// TLS-14: a TLS client meets a plain server's greeting: a clear TLS error, no fallback.
fn tls_client_against_a_plain_server_fails_clearly<D: Driver>() {
    let server = common::start::<D>();
    let options = tls_options(server.addr, Cert::new().fingerprint());
    let rt = D::runtime();
    let err = rt
        .block_on(Client::connect_with(rt.clone(), server.addr, &options))
        .expect_err("a plain server");
    match &err {
        ClientError::Tls { message, .. } => {
            assert!(message.contains("did not answer with TLS"), "{message}")
        }
        other => panic!("not a TLS error: {other:?}"),
    }
    server.stop().expect("server stops");
}

/// A plain client waits for a greeting that never comes; the server gives up the handshake
/// after its stall timeout and closes: the client's connect fails, without hanging.
fn plain_client_against_a_tls_server_fails_boundedly<D: Driver>() {
    let (_cert, server) = tls_server::<D>(|c| c.stall_timeout = Duration::from_secs(1));
    let rt = D::runtime();
    let options = ClientOptions {
        read_timeout: Some(Duration::from_secs(60)),
        ..plain_options()
    };
    let err = rt
        .block_on(Client::connect_with(rt.clone(), server.addr, &options))
        .expect_err("no greeting from a TLS server");
    assert!(
        matches!(err, ClientError::Closed { .. } | ClientError::Io(_)),
        "{err:?}"
    );
    if let ClientError::Io(e) = &err {
        assert_ne!(
            e.kind(),
            io::ErrorKind::TimedOut,
            "the server did not close: {e}"
        );
    }
    server.stop().expect("server stops");
}

/// TLS-4: `err 420 busy` is sent inside TLS, and followed by `close_notify`.
fn busy_refusal_is_inside_tls<D: Driver>() {
    let (cert, server) = tls_server::<D>(|c| c.max_connections = 1);
    let key = cert.fingerprint();
    let options = tls_options(server.addr, key);
    let rt = D::runtime();
    rt.block_on(async {
        let mut first = connect(&rt, server.addr, &options).await;
        let refused = Client::connect_with(rt.clone(), server.addr, &options)
            .await
            .expect_err("busy");
        assert_eq!(refused.code(), Some(Code::BUSY), "{refused:?}");
        let mut raw = RawTls::connect(server.addr, key);
        assert_eq!(raw.line(), "err 420 busy");
        assert_eq!(raw.end(), TlsEnd::CloseNotify(Vec::new()));
        first.dir().await.expect("the first session goes on");
        first.close().await.expect("close");
    });
    server.stop().expect("server stops");
}

/// TLS-7: a download whose connection ends without `close_notify` before its payload is
/// complete is truncated; the destination is not created.
fn a_cut_without_close_notify_truncates_a_download<D: Driver>() {
    let cert = Cert::new();
    let (addr, script) = scripted_server(&cert, |s| {
        s.get_mut()
            .write_all(
                b"ferry/1 max-line=4096 max-name=255 max-size=1099511627776 \
                  max-chunk=1048576 max-eager=1048576 idle=300 stall=60\n",
            )
            .expect("greeting");
        assert_eq!(script_line(s), "get 0 a.bin");
        let tls = s.get_mut();
        tls.write_all(b"ok get 10 2024-03-01T08:00:00Z\ndata 10\nhello")
            .expect("reply");
        tls.flush().expect("flush");
        // The TCP connection ends, without close_notify (drained, so no reset).
        tls.sock.shutdown(NetShutdown::Write).expect("shutdown");
        let mut rest = Vec::new();
        let _ = tls.sock.read_to_end(&mut rest);
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("a.bin");
    let options = tls_options(addr, cert.fingerprint());
    let rt = D::runtime();
    rt.block_on(async {
        let mut c = connect(&rt, addr, &options).await;
        let opts = GetOptions {
            keep_partial: false,
            ..GetOptions::default()
        };
        let err = c
            .get_to_path(&file_name("a.bin"), &dest, &opts, no_progress)
            .await
            .expect_err("cut");
        assert!(
            matches!(
                err,
                ClientError::Truncated {
                    received: 5,
                    expected: 10
                }
            ),
            "{err:?}"
        );
        assert!(!c.is_open());
    });
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
    script.join().expect("server script");
}

/// TLS-7 on the server: an upload whose connection ends without `close_notify` is
/// discarded, however much of it arrived.
fn a_cut_without_close_notify_discards_an_upload<D: Driver>() {
    let (cert, server) = tls_server::<D>(|_| {});
    let mut s = RawTls::session(server.addr, cert.fingerprint());
    let data = pattern(100_000);
    let request = Request::Put {
        size: data.len() as u64,
        mode: PutMode::New,
        flow: PutFlow::Wait,
        name: file_name("cut.bin"),
    };
    s.send(&request.to_bytes());
    assert_eq!(s.line(), "go");
    let mut payload = Vec::new();
    ferry_wire::encode_payload(&data, Digest::of(&data), &mut payload);
    // Everything but the trailer's last octets.
    s.send(&payload[..payload.len() - 5]);
    s.cut();
    assert_eq!(s.end(), TlsEnd::CloseNotify(Vec::new()));
    assert!(server.wait_staging_empty());
    assert!(server.visible_names().is_empty());
    server.stop().expect("server stops");
}

/// CLOSE-8 inside TLS: at a shutdown, an idle TLS session gets `err 422 shutting-down`
/// and `close_notify`, the async client's next request meets the end of its session; the
/// server then stops by itself.
fn shutdown_ends_tls_sessions_with_422_and_close_notify<D: Driver>() {
    let (cert, server) = tls_server::<D>(|_| {});
    let key = cert.fingerprint();
    let mut idle = RawTls::session(server.addr, key);
    let options = tls_options(server.addr, key);
    let rt = D::runtime();
    rt.block_on(async {
        let mut c = connect(&rt, server.addr, &options).await;
        server.shutdown_handle().trigger();
        let line = idle.line();
        assert_eq!(line, "err 422 shutting-down");
        assert_eq!(idle.end(), TlsEnd::CloseNotify(Vec::new()));
        let err = c.dir().await.expect_err("shutting down");
        assert_eq!(err.code(), Some(Code::SHUTTING_DOWN), "{err:?}");
    });
    server.stop().expect("server stops");
}
