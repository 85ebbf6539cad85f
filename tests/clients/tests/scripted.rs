//! Every client against scripted fake servers: each test starts a one-connection server on
//! 127.0.0.1:0 that sends canned octets and checks what the client sends, and runs once per
//! client implementation (`every_impl!`: the threaded client, and the async client on
//! async-std, tokio and smol, each as a `TestClient`). Broken and hostile servers must never
//! make a client write outside its destination, leave unverified data at a destination,
//! hang, or panic. Every socket has a timeout; every file lives in a temporary folder.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ferry_sync::client::{
    ClientError, ClientOptions, GetOptions, PART_SUFFIX, PutOptions, RateTooLow, ViolationKind,
};
use ferry_test_support::{Impl, TestClient, every_impl};
use ferry_wire::{Code, Digest, FileName, NameError, PutFlow, PutMode, encode_payload};

every_impl!(
    wrong_digest_is_corrupt_and_leaves_nothing,
    a_size_beyond_the_limit_is_refused_and_the_session_closed,
    a_large_payload_that_cannot_be_stored_closes_the_session,
    get_to_writer_reports_corrupt_data_as_unverified,
    a_failing_writer_drains_the_payload_and_the_session_goes_on,
    truncated_payload_then_eof_is_truncated_and_dest_untouched,
    truncated_without_keep_partial_removes_the_part,
    abort_mid_transfer_is_a_server_error_and_the_session_goes_on,
    abort_422_then_close_keeps_the_partial_download,
    chunk_overrun_is_a_protocol_violation,
    get_ok_shorter_than_the_offset_is_a_protocol_violation,
    resume_hashes_the_prefix_and_asks_for_the_rest,
    resume_mismatch_discards_the_part_and_starts_over,
    resume_mismatch_without_retry_is_corrupt_and_removes_the_part,
    resume_past_the_end_gets_515_and_starts_over,
    a_symlink_at_the_part_name_is_never_followed,
    hostile_listing_names_are_skipped,
    a_skipped_name_out_of_order_makes_the_listing_invalid,
    unsorted_or_repeated_listing_is_refused,
    listing_with_hostile_names_writes_nothing_in_a_batch,
    over_long_line_is_refused,
    over_long_greeting_is_refused,
    garbage_and_unexpected_replies_are_protocol_violations,
    binary_garbage_in_a_payload_never_panics,
    early_close_is_reported,
    busy_refusal,
    greeting_without_version_1_is_refused_silently,
    greeting_with_wrong_fixed_limits_is_refused,
    closing_error_ends_the_session,
    a_silent_server_times_out,
    a_payload_that_stalls_times_out,
    a_server_that_stops_reading_times_the_upload_out,
    a_dripping_download_ends_at_the_minimum_rate,
    a_slow_download_above_the_minimum_rate_completes,
    an_upload_taken_below_the_minimum_rate_ends,
    eager_put_sends_the_payload_at_once,
    waiting_put_sends_nothing_before_go,
    waiting_put_refused_early_sends_no_payload,
    zero_byte_put_with_eager_off_waits,
    short_reader_aborts_the_upload,
    a_read_error_aborts_the_upload_with_431,
    a_local_file_that_changes_before_go_aborts_the_upload_with_430,
    a_confirmation_with_another_digest_is_a_protocol_violation,
    connection_lost_after_the_trailer_leaves_the_outcome_unknown,
    put_from_path_refuses_names_that_are_not_ferry_names,
    get_many_pipelines_its_requests,
    get_many_stops_cleanly_when_the_server_closes,
    put_many_streams_eager_puts_before_reading_replies,
    put_many_skips_missing_files_without_sending_them,
    an_endless_listing_is_cut_off,
    extreme_mtimes_do_not_panic,
);

const GREETING: &str = "ferry/1 max-line=4096 max-name=255 max-size=1099511627776 \
                        max-chunk=1048576 max-eager=1048576 idle=300 stall=60\n";
const NO_EAGER: &str = "ferry/1 max-line=4096 max-name=255 max-size=1099511627776 \
                        max-chunk=1048576 max-eager=0 idle=300 stall=60\n";
const MTIME: &str = "2024-03-01T08:00:00Z";
const TIMEOUT: Duration = Duration::from_secs(5);

/// The server side of one scripted connection.
struct Peer {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Peer {
    fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.w.write_all(bytes.as_ref()).expect("fake server write");
    }

    /// Reads one line, without its LF; panics on EOF.
    fn line(&mut self) -> String {
        let mut buf = Vec::new();
        self.r
            .read_until(b'\n', &mut buf)
            .expect("fake server read");
        assert_eq!(
            buf.last(),
            Some(&b'\n'),
            "EOF in a line: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.pop();
        String::from_utf8(buf).expect("client sends UTF-8 lines")
    }

    fn expect(&mut self, want: &str) {
        assert_eq!(self.line(), want);
    }

    /// Reads a payload: chunk data and the trailer line.
    fn payload(&mut self) -> (Vec<u8>, String) {
        let mut data = Vec::new();
        loop {
            let line = self.line();
            match line.strip_prefix("data ") {
                Some(n) => {
                    let n: usize = n.parse().expect("chunk length");
                    let start = data.len();
                    data.resize(start + n, 0);
                    self.r.read_exact(&mut data[start..]).expect("chunk data");
                }
                None => return (data, line),
            }
        }
    }

    /// Whether the client closes its side (EOF) without sending anything more.
    fn eof(&mut self) -> bool {
        let mut rest = Vec::new();
        self.r.read_to_end(&mut rest).is_ok() && rest.is_empty()
    }
}

/// Starts a fake server that runs `script` on the first connection. Join the handle to
/// surface the script's assertion failures.
fn serve(script: impl FnOnce(&mut Peer) + Send + 'static) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    let handle = thread::spawn(move || {
        let deadline = Instant::now() + TIMEOUT;
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("no client connected: {e}"),
            }
        };
        stream.set_nonblocking(false).expect("blocking");
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        stream.set_write_timeout(Some(TIMEOUT)).expect("timeout");
        let w = stream.try_clone().expect("clone");
        let mut peer = Peer {
            r: BufReader::new(stream),
            w,
        };
        script(&mut peer);
        // Close as a real server does (CLOSE-6): stop sending, then drain briefly, so that
        // unread client octets do not turn the close into a reset that destroys replies.
        let _ = peer.w.shutdown(std::net::Shutdown::Write);
        let _ = peer.w.set_read_timeout(Some(Duration::from_millis(300)));
        let mut sink = [0u8; 4096];
        while matches!(peer.r.read(&mut sink), Ok(n) if n > 0) {}
    });
    (addr, handle)
}

fn options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Some(TIMEOUT),
        read_timeout: Some(TIMEOUT),
        write_timeout: Some(TIMEOUT),
        ..ClientOptions::default()
    }
}

fn connect(imp: Impl, addr: SocketAddr) -> TestClient {
    TestClient::connect_with(imp, addr, &options()).expect("handshake")
}

fn name(s: &str) -> FileName {
    FileName::new(s).expect("valid name")
}

fn payload(data: &[u8], digest: Digest) -> Vec<u8> {
    let mut out = Vec::new();
    encode_payload(data, digest, &mut out);
    out
}

fn get_ok(size: usize) -> String {
    format!("ok get {size} {MTIME}\n")
}

fn part_of(dest: &Path) -> std::path::PathBuf {
    let mut p = dest.as_os_str().to_owned();
    p.push(PART_SUFFIX);
    p.into()
}

/// Every entry of a folder, for "nothing was written" checks.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn no_progress() -> impl FnMut(ferry_sync::client::Progress<'_>) {
    |_| {}
}

// ------------------------------------------------------------------ downloads ---

fn wrong_digest_is_corrupt_and_leaves_nothing(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("get 0 a.txt");
        p.send(get_ok(5));
        p.send(payload(b"hello", Digest::of(b"hellO")));
        // The framing was intact: the session goes on.
        p.expect("dir");
        p.send("ok dir 0\n");
        p.expect("close");
        p.send("bye\n");
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("a.txt");
    let mut c = connect(imp, addr);
    let err = c
        .get_to_path(
            &name("a.txt"),
            &dest,
            &GetOptions::default(),
            &mut no_progress(),
        )
        .expect_err("corrupt");
    assert!(
        matches!(err, ClientError::Corrupt { announced, computed }
            if announced == Digest::of(b"hellO") && computed == Digest::of(b"hello")),
        "{err:?}"
    );
    assert!(!err.ends_session() && c.is_open());
    assert!(listing(dir.path()).is_empty(), "no file, no .ferry-part");
    assert_eq!(c.dir().expect("dir after corrupt"), vec![]);
    c.close().expect("close");
    server.join().expect("server script");
}

fn get_to_writer_reports_corrupt_data_as_unverified(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("get 0 a.txt");
        p.send(get_ok(5));
        p.send(payload(b"hello", Digest::of(b"other")));
    });
    let mut c = connect(imp, addr);
    let mut sink = Vec::new();
    let err = c
        .get_to_writer(&name("a.txt"), &mut sink, &mut no_progress())
        .expect_err("bad");
    assert!(matches!(err, ClientError::Corrupt { .. }), "{err:?}");
    assert_eq!(
        sink, b"hello",
        "the writer saw the data before verification"
    );
    server.join().expect("server script");
}

/// A writer that fails at once.
struct FailingWriter;

impl Write for FailingWriter {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("the sink is broken"))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn a_failing_writer_drains_the_payload_and_the_session_goes_on(imp: Impl) {
    // GET-15: a client that cannot store the payload reads and discards the rest of it (the
    // session goes on) or closes the connection; these clients drain it.
    let data = vec![b'x'; 300_000];
    let (addr, server) = serve(move |p| {
        p.send(GREETING);
        p.expect("get 0 a.txt");
        p.send(get_ok(data.len()));
        p.send(payload(&data, Digest::of(&data)));
        p.expect("dir");
        p.send("ok dir 0\n");
        p.expect("close");
        p.send("bye\n");
    });
    let mut c = connect(imp, addr);
    let err = c
        .get_to_writer(&name("a.txt"), &mut FailingWriter, &mut no_progress())
        .expect_err("the writer fails");
    assert!(matches!(err, ClientError::Local { .. }), "{err:?}");
    assert!(!err.ends_session() && c.is_open(), "{err:?}");
    assert_eq!(c.dir().expect("the session goes on"), vec![]);
    c.close().expect("close");
    server.join().expect("server script");
}

/// Sends `data LEN` chunks of zeros until the client stops taking them (a write blocked
/// for half a second counts as stopped); returns how many octets went out (at most `limit`).
fn send_until_refused(p: &mut Peer, limit: usize) -> usize {
    p.w.set_write_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let chunk = vec![0u8; 1 << 20];
    let mut sent = 0;
    while sent < limit {
        let head = format!("data {}\n", chunk.len());
        if p.w.write_all(head.as_bytes()).is_err() || p.w.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    sent
}

/// #14: a hostile server announcing 2^64 − 1 octets and sending chunks forever. The client
/// refuses the size before writing anything (`max_get_size`, GET-14) and closes the session
/// rather than read what it cannot store (GET-15).
fn a_size_beyond_the_limit_is_refused_and_the_session_closed(imp: Impl) {
    let limit = 64 << 20;
    let (addr, server) = serve(move |p| {
        p.send(GREETING);
        p.expect("get 0 huge");
        p.send("ok get 18446744073709551615 2024-03-01T08:00:00Z\n");
        let sent = send_until_refused(p, limit);
        assert!(sent < limit, "the client kept reading: {sent} octets taken");
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("huge");
    let mut c = connect(imp, addr);
    let err = c
        .get_to_path(
            &name("huge"),
            &dest,
            &GetOptions::default(),
            &mut no_progress(),
        )
        .expect_err("refused");
    assert!(err.to_string().contains("18446744073709551615"), "{err}");
    assert!(!c.is_open(), "the session is closed, not drained");
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
    server.join().expect("server script");
}

/// GET-15: a sink that fails while more than `DRAIN_LIMIT` octets are still to come ends the
/// session instead of reading them all (a small one is drained: the test above).
fn a_large_payload_that_cannot_be_stored_closes_the_session(imp: Impl) {
    let size = 64 << 20;
    let (addr, server) = serve(move |p| {
        p.send(GREETING);
        p.expect("get 0 big");
        p.send(get_ok(size));
        let sent = send_until_refused(p, size);
        assert!(
            sent < size,
            "the client read the whole payload it could not store"
        );
    });
    let mut c = connect(imp, addr);
    let err = c
        .get_to_writer(&name("big"), &mut FailingWriter, &mut no_progress())
        .expect_err("the writer fails");
    assert!(matches!(err, ClientError::Local { .. }), "{err:?}");
    assert!(!c.is_open(), "the session is closed, not drained");
    server.join().expect("server script");
}

fn truncated_payload_then_eof_is_truncated_and_dest_untouched(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("get 0 a.txt");
        p.send(get_ok(10));
        p.send("data 10\nhello");
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("a.txt");
    fs::write(&dest, b"previous").expect("seed dest");
    let mut c = connect(imp, addr);
    let err = c
        .get_to_path(
            &name("a.txt"),
            &dest,
            &GetOptions::default(),
            &mut no_progress(),
        )
        .expect_err("truncated");
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
    assert!(err.ends_session() && !c.is_open());
    assert_eq!(
        fs::read(&dest).expect("dest"),
        b"previous",
        "destination untouched"
    );
    // Kept for a later resume: the octets received so far.
    assert_eq!(fs::read(part_of(&dest)).expect("part kept"), b"hello");
    let again = c.dir().expect_err("session over");
    assert!(matches!(again, ClientError::Disconnected(_)), "{again:?}");
    server.join().expect("server script");
}

fn truncated_without_keep_partial_removes_the_part(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("get 0 a.txt");
        p.send(get_ok(10));
        p.send("data 10\nhel");
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("a.txt");
    let mut c = connect(imp, addr);
    let opts = GetOptions {
        keep_partial: false,
        ..GetOptions::default()
    };
    let err = c
        .get_to_path(&name("a.txt"), &dest, &opts, &mut no_progress())
        .expect_err("eof");
    assert!(
        matches!(
            err,
            ClientError::Truncated {
                received: 3,
                expected: 10
            }
        ),
        "{err:?}"
    );
    assert!(listing(dir.path()).is_empty());
    server.join().expect("server script");
}

fn abort_mid_transfer_is_a_server_error_and_the_session_goes_on(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("get 0 a.txt");
        p.send(get_ok(10));
        p.send("data 5\nhelloabort 430 changed\n");
        p.expect("get 0 b.txt");
        p.send(get_ok(10));
        p.send("data 5\nworldabort 431 storage\n");
        p.expect("get 0 c.txt");
        p.send("err 511 not-found\n");
        p.expect("close");
        p.send("bye\n");
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = connect(imp, addr);
    // GetOptions::default() keeps partial downloads (keep_partial: true)...
    assert!(GetOptions::default().keep_partial);
    let err = c
        .get_to_path(
            &name("a.txt"),
            &dir.path().join("a.txt"),
            &GetOptions::default(),
            &mut no_progress(),
        )
        .expect_err("aborted");
    assert_eq!(err.code(), Some(Code::CHANGED));
    assert!(err.is_transient() && !err.ends_session(), "{err:?}");
    assert!(!dir.path().join("a.txt").exists());
    // ...but never after `abort 430`: the file changed while it was read (GET-13).
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
    let err = c
        .get_to_path(
            &name("b.txt"),
            &dir.path().join("b.txt"),
            &GetOptions::default(),
            &mut no_progress(),
        )
        .expect_err("aborted");
    assert_eq!(err.code(), Some(Code::STORAGE));
    assert!(err.is_transient() && !err.ends_session(), "{err:?}");
    assert!(!dir.path().join("b.txt").exists());
    let err = c
        .get_to_path(
            &name("c.txt"),
            &dir.path().join("c.txt"),
            &GetOptions::default(),
            &mut no_progress(),
        )
        .expect_err("not found");
    assert_eq!(err.code(), Some(Code::NOT_FOUND));
    assert!(!err.is_transient());
    c.close().expect("close");
    // After `abort 431` the good prefix is kept for a resume (GET-12); nothing is left of
    // the download aborted with 430, and nothing else exists.
    assert_eq!(listing(dir.path()), vec![format!("b.txt{PART_SUFFIX}")]);
    assert_eq!(
        fs::read(part_of(&dir.path().join("b.txt"))).expect("part kept"),
        b"world"
    );
    server.join().expect("server script");
}

fn abort_422_then_close_keeps_the_partial_download(imp: Impl) {
    // GET-12: after `abort 422` (the server shuts down) the octets received may be kept for a
    // resume, and GetOptions::default() keeps them.
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("get 0 a.txt");
        p.send(get_ok(10));
        p.send("data 5\nhelloabort 422 shutting-down\n");
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("a.txt");
    let mut c = connect(imp, addr);
    let err = c
        .get_to_path(
            &name("a.txt"),
            &dest,
            &GetOptions::default(),
            &mut no_progress(),
        )
        .expect_err("aborted");
    assert_eq!(err.code(), Some(Code::SHUTTING_DOWN), "{err:?}");
    assert!(err.is_transient(), "{err:?}");
    assert!(!dest.exists());
    assert_eq!(listing(dir.path()), vec![format!("a.txt{PART_SUFFIX}")]);
    assert_eq!(fs::read(part_of(&dest)).expect("part kept"), b"hello");
    drop(c);
    server.join().expect("server script");
}

fn chunk_overrun_is_a_protocol_violation(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("get 0 a.txt");
        p.send(get_ok(3));
        p.send("data 5\nhello");
        assert!(p.eof(), "the client closes the connection (DATA-7)");
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = connect(imp, addr);
    let err = c
        .get_to_path(
            &name("a.txt"),
            &dir.path().join("a.txt"),
            &GetOptions::default(),
            &mut no_progress(),
        )
        .expect_err("overrun");
    assert!(
        matches!(err, ClientError::Protocol(ref m) if m.kind == ViolationKind::Payload && m.detail.contains("overruns")),
        "{err:?}"
    );
    assert!(listing(dir.path()).is_empty());
    server.join().expect("server script");
}

fn get_ok_shorter_than_the_offset_is_a_protocol_violation(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("get 3 a.txt");
        p.send(get_ok(2));
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("a.txt");
    fs::write(part_of(&dest), b"abc").expect("part");
    let mut c = connect(imp, addr);
    let opts = GetOptions {
        resume: true,
        ..GetOptions::default()
    };
    let err = c
        .get_to_path(&name("a.txt"), &dest, &opts, &mut no_progress())
        .expect_err("bad");
    assert!(
        matches!(err, ClientError::Protocol(ref m) if m.kind == ViolationKind::Contradiction && m.detail.contains("GET-4")),
        "{err:?}"
    );
    assert!(!dest.exists());
    server.join().expect("server script");
}

// ------------------------------------------------------------------- resume ---

fn resume_hashes_the_prefix_and_asks_for_the_rest(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("get 3 a.txt");
        p.send(get_ok(5));
        p.send(payload(b"lo", Digest::of(b"hello")));
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("a.txt");
    fs::write(part_of(&dest), b"hel").expect("part");
    let mut c = connect(imp, addr);
    let opts = GetOptions {
        resume: true,
        ..GetOptions::default()
    };
    let mut seen = Vec::new();
    let report = c
        .get_to_path(&name("a.txt"), &dest, &opts, &mut |p| {
            seen.push((p.done, p.total))
        })
        .expect("resumed");
    assert_eq!(report.resumed_from, 3);
    assert_eq!(report.size, 5);
    assert_eq!(report.digest, Digest::of(b"hello"));
    assert_eq!(report.mtime.to_string(), MTIME);
    assert_eq!(seen.last(), Some(&(5, 5)));
    assert_eq!(fs::read(&dest).expect("dest"), b"hello");
    assert_eq!(listing(dir.path()), vec!["a.txt"], "the part was renamed");
    let mtime = fs::metadata(&dest)
        .expect("meta")
        .modified()
        .expect("mtime");
    assert_eq!(mtime, report.mtime.to_system_time().expect("representable"));
    server.join().expect("server script");
}

fn resume_mismatch_discards_the_part_and_starts_over(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        // The local prefix "HEL" is stale: the digest of the whole file will not match.
        p.expect("get 3 a.txt");
        p.send(get_ok(5));
        p.send(payload(b"lo", Digest::of(b"hello")));
        p.expect("get 0 a.txt");
        p.send(get_ok(5));
        p.send(payload(b"hello", Digest::of(b"hello")));
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("a.txt");
    fs::write(part_of(&dest), b"HEL").expect("part");
    let mut c = connect(imp, addr);
    let opts = GetOptions {
        resume: true,
        ..GetOptions::default()
    };
    let report = c
        .get_to_path(&name("a.txt"), &dest, &opts, &mut no_progress())
        .expect("retried");
    assert_eq!(report.resumed_from, 0);
    assert_eq!(fs::read(&dest).expect("dest"), b"hello");
    assert_eq!(listing(dir.path()), vec!["a.txt"]);
    server.join().expect("server script");
}

fn resume_mismatch_without_retry_is_corrupt_and_removes_the_part(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("get 3 a.txt");
        p.send(get_ok(5));
        p.send(payload(b"lo", Digest::of(b"hello")));
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("a.txt");
    fs::write(part_of(&dest), b"HEL").expect("part");
    let mut c = connect(imp, addr);
    let opts = GetOptions {
        resume: true,
        retry_from_zero: false,
        ..GetOptions::default()
    };
    let err = c
        .get_to_path(&name("a.txt"), &dest, &opts, &mut no_progress())
        .expect_err("bad");
    assert!(matches!(err, ClientError::Corrupt { .. }), "{err:?}");
    assert!(
        listing(dir.path()).is_empty(),
        "stale part removed, no dest"
    );
    server.join().expect("server script");
}

fn resume_past_the_end_gets_515_and_starts_over(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("get 7 a.txt");
        p.send("err 515 bad-offset\n");
        p.expect("get 0 a.txt");
        p.send(get_ok(5));
        p.send(payload(b"hello", Digest::of(b"hello")));
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("a.txt");
    fs::write(part_of(&dest), b"longer!").expect("part");
    let mut c = connect(imp, addr);
    let opts = GetOptions {
        resume: true,
        ..GetOptions::default()
    };
    c.get_to_path(&name("a.txt"), &dest, &opts, &mut no_progress())
        .expect("retried");
    assert_eq!(fs::read(&dest).expect("dest"), b"hello");
    assert_eq!(listing(dir.path()), vec!["a.txt"]);
    server.join().expect("server script");
}

fn a_symlink_at_the_part_name_is_never_followed(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("get 0 a.txt");
        p.send(get_ok(5));
        p.send(payload(b"hello", Digest::of(b"hello")));
    });
    let outside = tempfile::tempdir().expect("tempdir");
    let target = outside.path().join("victim");
    fs::write(&target, b"precious").expect("victim");
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("a.txt");
    std::os::unix::fs::symlink(&target, part_of(&dest)).expect("plant link");
    let mut c = connect(imp, addr);
    c.get_to_path(
        &name("a.txt"),
        &dest,
        &GetOptions::default(),
        &mut no_progress(),
    )
    .expect("get");
    assert_eq!(
        fs::read(&target).expect("victim"),
        b"precious",
        "not written through the link"
    );
    assert_eq!(fs::read(&dest).expect("dest"), b"hello");
    server.join().expect("server script");
}

// ------------------------------------------------------------ hostile lines ---

fn hostile_listing_names_are_skipped(imp: Impl) {
    // NAME-14: an entry whose only fault is its name is skipped; the valid entries are
    // returned and the listing and the session stay valid. Every bad name sorts before
    // `good.txt`, so the listing is in order (DIR-10).
    for (bad, error) in [
        (&b"../x"[..], NameError::ForbiddenChar('/')),
        (b"/etc/passwd", NameError::ForbiddenChar('/')),
        (b"a/b", NameError::ForbiddenChar('/')),
        (b".hidden", NameError::LeadingDot),
        (b"..", NameError::LeadingDot),
        (b"a\\b", NameError::ForbiddenChar('\\')),
        ("e\u{301}".as_bytes(), NameError::NotNfc),
        ("a\u{378}".as_bytes(), NameError::Unassigned('\u{378}')),
        (b"caf\xe9", NameError::NotUtf8),
    ] {
        let mut listing_lines = format!("ok dir 2\n7 {MTIME} ").into_bytes();
        listing_lines.extend_from_slice(bad);
        listing_lines.extend_from_slice(format!("\n5 {MTIME} good.txt\n").as_bytes());
        let (addr, server) = serve(move |p| {
            p.send(GREETING);
            p.expect("dir");
            p.send(&listing_lines);
            // The session goes on: the same listing once more, through dir().
            p.expect("dir");
            p.send(&listing_lines);
            p.expect("close");
            p.send("bye\n");
        });
        let shown = String::from_utf8_lossy(bad).into_owned();
        let mut c = connect(imp, addr);
        let got = c
            .dir_listing()
            .expect("a listing with a skipped entry is valid");
        let names: Vec<&str> = got.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["good.txt"], "{shown}");
        assert_eq!(got.skipped.len(), 1, "{shown}");
        let skipped = &got.skipped[0];
        assert_eq!(skipped.name, bad, "{shown}: the octets as received");
        assert_eq!((skipped.size, skipped.error), (7, error), "{shown}");
        assert!(c.is_open(), "{shown}");
        let entries = c.dir().expect("dir");
        assert_eq!(
            entries, got.entries,
            "{shown}: dir() leaves the skipped entry out"
        );
        c.close().expect("close");
        server.join().expect("server script");
    }
}

fn a_skipped_name_out_of_order_makes_the_listing_invalid(imp: Impl) {
    // DIR-10: the order is checked over every name, skipped ones included.
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("dir");
        p.send(format!("ok dir 2\n5 {MTIME} good.txt\n5 {MTIME} ../x\n"));
        assert!(p.eof(), "the client closes the connection (ERR-10)");
    });
    let mut c = connect(imp, addr);
    let err = c.dir_listing().expect_err("out of order");
    assert!(
        matches!(err, ClientError::Protocol(ref m) if m.kind == ViolationKind::Listing && m.detail.contains("order")),
        "{err:?}"
    );
    assert!(!c.is_open());
    drop(c);
    server.join().expect("server script");
}

fn unsorted_or_repeated_listing_is_refused(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("dir");
        p.send(format!("ok dir 2\n5 {MTIME} a\n5 {MTIME} a\n"));
    });
    let mut c = connect(imp, addr);
    let err = c.dir().expect_err("repeated");
    assert!(
        matches!(err, ClientError::Protocol(ref m) if m.kind == ViolationKind::Listing && m.detail.contains("order")),
        "{err:?}"
    );
    server.join().expect("server script");
}

fn listing_with_hostile_names_writes_nothing_in_a_batch(imp: Impl) {
    // A server that lists `../escape` and `.hidden`: those entries are skipped and never
    // reach get_many; the valid one is fetched into the destination folder and nothing is
    // written anywhere else.
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("dir");
        p.send(format!(
            "ok dir 3\n1 {MTIME} ../escape\n1 {MTIME} .hidden\n1 {MTIME} x\n"
        ));
        p.expect("get 0 x");
        p.send(get_ok(1));
        p.send(payload(b"X", Digest::of(b"X")));
        p.expect("close");
        p.send("bye\n");
    });
    let parent = tempfile::tempdir().expect("tempdir");
    let dest = parent.path().join("dest");
    fs::create_dir(&dest).expect("dest");
    let mut c = connect(imp, addr);
    let got = c.dir_listing().expect("the listing stays valid (NAME-14)");
    // The skipped entries reach the caller only as octets, never as names (NAME-9, NAME-10).
    let skipped: Vec<&[u8]> = got.skipped.iter().map(|s| s.name.as_slice()).collect();
    assert_eq!(skipped, [&b"../escape"[..], b".hidden"]);
    let names: Vec<FileName> = got.entries.into_iter().map(|e| e.name).collect();
    assert_eq!(names, [name("x")]);
    assert!(c.is_open());
    let results = c.get_many(&names, &dest, &GetOptions::default(), &mut no_progress());
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    c.close().expect("close");
    assert_eq!(listing(parent.path()), vec!["dest"]);
    assert_eq!(listing(&dest), vec!["x"]);
    assert_eq!(fs::read(dest.join("x")).expect("x"), b"X");
    server.join().expect("server script");
}

fn over_long_line_is_refused(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("dir");
        p.send("x".repeat(5000));
        assert!(p.eof());
    });
    let mut c = connect(imp, addr);
    let err = c.dir().expect_err("too long");
    assert!(
        matches!(err, ClientError::Protocol(ref m) if m.kind == ViolationKind::Malformed && m.detail.contains("4096")),
        "{err:?}"
    );
    server.join().expect("server script");
}

fn over_long_greeting_is_refused(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(format!("ferry/1 x-pad={}\n", "y".repeat(5000)));
        assert!(p.eof(), "nothing sent");
    });
    let err = TestClient::connect_with(imp, addr, &options()).expect_err("too long");
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
    server.join().expect("server script");
}

fn garbage_and_unexpected_replies_are_protocol_violations(imp: Impl) {
    for reply in [
        "hello there\n",
        "OK DIR 0\n",
        "ok dir 01\n",
        "go\n",
        "\u{0}\u{ff}\n",
    ] {
        let (addr, server) = serve(move |p| {
            p.send(GREETING);
            p.expect("dir");
            p.send(reply);
            assert!(p.eof());
        });
        let mut c = connect(imp, addr);
        let err = c.dir().expect_err("garbage");
        assert!(
            matches!(err, ClientError::Protocol(_)),
            "{reply:?}: {err:?}"
        );
        assert!(!c.is_open());
        drop(c);
        server.join().expect("server script");
    }
}

fn binary_garbage_in_a_payload_never_panics(imp: Impl) {
    // Every prefix of a valid payload followed by EOF, and every single-octet corruption
    // of it: the client must answer with an error or success, never a panic or a hang.
    let mut good = get_ok(20).into_bytes();
    good.extend(payload(
        b"0123456789abcdefghij",
        Digest::of(b"0123456789abcdefghij"),
    ));
    let cases: Vec<Vec<u8>> = (0..good.len())
        .step_by(3)
        .map(|n| good[..n].to_vec())
        .chain((0..good.len()).step_by(5).map(|i| {
            let mut v = good.clone();
            v[i] ^= 0x5a;
            v
        }))
        .collect();
    for case in cases {
        let (addr, server) = serve(move |p| {
            p.send(GREETING);
            p.expect("get 0 a");
            p.send(&case);
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("a");
        let mut c = connect(imp, addr);
        let r = c.get_to_path(
            &name("a"),
            &dest,
            &GetOptions::default(),
            &mut no_progress(),
        );
        if r.is_err() {
            assert!(!dest.exists());
        }
        drop(c);
        server.join().expect("server script");
    }
}

fn early_close_is_reported(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("dir");
    });
    let mut c = connect(imp, addr);
    let err = c.dir().expect_err("closed");
    assert!(
        matches!(
            err,
            ClientError::Closed {
                outcome_unknown: false
            }
        ),
        "{err:?}"
    );
    server.join().expect("server script");

    let (addr, server) = serve(|_| {});
    let err = TestClient::connect_with(imp, addr, &options()).expect_err("no greeting");
    assert!(matches!(err, ClientError::Closed { .. }), "{err:?}");
    server.join().expect("server script");
}

fn busy_refusal(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send("err 420 busy\n");
        assert!(p.eof(), "the client sends nothing (HELLO-11)");
    });
    let err = TestClient::connect_with(imp, addr, &options()).expect_err("busy");
    assert_eq!(err.code(), Some(Code::BUSY));
    assert!(err.is_transient());
    server.join().expect("server script");
}

fn greeting_without_version_1_is_refused_silently(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING.replace("ferry/1 ", "ferry/2,3 "));
        assert!(p.eof(), "the client sends nothing (HELLO-10)");
    });
    let err = TestClient::connect_with(imp, addr, &options()).expect_err("no v1");
    assert!(
        matches!(err, ClientError::Protocol(ref m) if m.kind == ViolationKind::Greeting && m.detail.contains("ferry/1")),
        "{err:?}"
    );
    server.join().expect("server script");
}

fn greeting_with_wrong_fixed_limits_is_refused(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING.replace("max-chunk=1048576", "max-chunk=99999999"));
        assert!(p.eof());
    });
    let err = TestClient::connect_with(imp, addr, &options()).expect_err("bad limits");
    assert!(
        matches!(err, ClientError::Protocol(ref m) if m.kind == ViolationKind::Greeting && m.detail.contains("max-chunk")),
        "{err:?}"
    );
    server.join().expect("server script");
}

fn closing_error_ends_the_session(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("dir");
        p.send("err 421 timeout\n");
        assert!(p.eof());
    });
    let mut c = connect(imp, addr);
    let err = c.dir().expect_err("timeout");
    assert_eq!(err.code(), Some(Code::TIMEOUT));
    assert!(err.ends_session() && !c.is_open());
    assert!(matches!(c.dir(), Err(ClientError::Disconnected(_))));
    server.join().expect("server script");
}

fn a_silent_server_times_out(imp: Impl) {
    // The server answers nothing and waits for the client to close (up to its own 5 s): only
    // the client's 200 ms read timeout can end the wait with an `Io` error (had it none, the
    // server's close would end it, as `Closed`).
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("dir");
        assert!(p.eof(), "the client closes after its timeout");
    });
    let opts = ClientOptions {
        read_timeout: Some(Duration::from_millis(200)),
        ..options()
    };
    let mut c = TestClient::connect_with(imp, addr, &opts).expect("connect");
    let err = c.dir().expect_err("timeout");
    assert!(
        matches!(err, ClientError::Io(ref e) if e.kind() == std::io::ErrorKind::TimedOut),
        "{err:?}"
    );
    assert!(err.ends_session() && !c.is_open(), "{err:?}");
    drop(c);
    server.join().expect("server script");
}

fn a_payload_that_stalls_times_out(imp: Impl) {
    // The server stops in the middle of a payload: the read timeout ends the session, the
    // destination is untouched, and the octets received are kept for a resume (GET-12).
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("get 0 a.txt");
        p.send(get_ok(10));
        p.send("data 10\nhel");
        // No more: wait for the client to close (up to 5 s).
        assert!(p.eof(), "the client closes after its timeout");
    });
    let opts = ClientOptions {
        read_timeout: Some(Duration::from_millis(200)),
        ..options()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("a.txt");
    fs::write(&dest, b"previous").expect("seed dest");
    let mut c = TestClient::connect_with(imp, addr, &opts).expect("connect");
    let err = c
        .get_to_path(
            &name("a.txt"),
            &dest,
            &GetOptions::default(),
            &mut no_progress(),
        )
        .expect_err("stalled");
    assert!(
        matches!(err, ClientError::Io(ref e) if e.kind() == std::io::ErrorKind::TimedOut),
        "{err:?}"
    );
    assert!(err.ends_session() && !c.is_open(), "{err:?}");
    assert_eq!(
        fs::read(&dest).expect("dest"),
        b"previous",
        "destination untouched"
    );
    assert_eq!(fs::read(part_of(&dest)).expect("part kept"), b"hel");
    drop(c);
    server.join().expect("server script");
}

fn a_server_that_stops_reading_times_the_upload_out(imp: Impl) {
    // The server sends `go` and reads nothing more until the client has given up: once the
    // socket buffers are full, only the client's 200 ms write timeout ends the upload.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (addr, server) = serve(move |p| {
        p.send(NO_EAGER);
        p.expect("put 67108864 new wait big");
        p.send("go\n");
        done_rx.recv_timeout(TIMEOUT).expect("the client gave up");
    });
    let opts = ClientOptions {
        write_timeout: Some(Duration::from_millis(200)),
        ..options()
    };
    let mut c = TestClient::connect_with(imp, addr, &opts).expect("connect");
    let mut source = std::io::repeat(b'z').take(64 << 20);
    let err = c
        .put_from_reader(
            &name("big"),
            64 << 20,
            &mut source,
            &PutOptions::default(),
            &mut no_progress(),
        )
        .expect_err("stalled");
    assert!(
        matches!(err, ClientError::Io(ref e) if e.kind() == std::io::ErrorKind::TimedOut),
        "{err:?}"
    );
    assert!(err.ends_session() && !c.is_open(), "{err:?}");
    done_tx.send(()).expect("the server waits");
    drop(c);
    server.join().expect("server script");
}

/// The [`RateTooLow`] that ended an operation, if that is why it failed.
fn rate_error(e: &ClientError) -> Option<RateTooLow> {
    match e {
        ClientError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            e.get_ref()?.downcast_ref::<RateTooLow>().copied()
        }
        _ => None,
    }
}

fn a_dripping_download_ends_at_the_minimum_rate(imp: Impl) {
    // #14 item 5: a server that announces 1 MiB and drips an octet every 200 ms never lets
    // the 1 s read timeout fire. The minimum rate (1 KiB/s after 1 s of grace) ends the get
    // after about a second; without it, the client would take the drip until the server
    // stops, after 15 s.
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("get 0 a.txt");
        p.send(get_ok(1 << 20));
        p.send(format!("data {}\n", 1 << 20));
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if p.w.write_all(b"x").is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(200));
        }
    });
    let opts = ClientOptions {
        read_timeout: Some(Duration::from_secs(1)),
        min_rate: 1024,
        ..options()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("a.txt");
    let mut c = TestClient::connect_with(imp, addr, &opts).expect("connect");
    let start = Instant::now();
    let err = c
        .get_to_path(
            &name("a.txt"),
            &dest,
            &GetOptions::default(),
            &mut no_progress(),
        )
        .expect_err("too slow");
    let took = start.elapsed();
    let rate = rate_error(&err).unwrap_or_else(|| panic!("not the minimum rate: {err:?}"));
    assert!(!rate.sending && rate.min_rate == 1024, "{rate:?}");
    assert!(
        took < Duration::from_secs(10),
        "gave up after {took:?}, not within seconds"
    );
    assert!(err.ends_session() && !c.is_open(), "{err:?}");
    assert!(!dest.exists(), "nothing at the destination");
    // What came is kept for a resume, as after any timeout (GET-12): a few octets.
    let part = fs::read(part_of(&dest)).expect("part kept");
    assert!(
        part.len() < 1024 && part.iter().all(|&b| b == b'x'),
        "{} octets kept",
        part.len()
    );
    drop(c);
    server.join().expect("server script");
}

fn a_slow_download_above_the_minimum_rate_completes(imp: Impl) {
    // 2.5 KiB/s, in pieces 200 ms apart and with a pause of 600 ms, for about 3 s: more than
    // the 1 s grace, slower than anything on loopback, and above 1 KiB/s: it completes.
    let data: Vec<u8> = (0..6144u32).map(|i| (i % 251) as u8).collect();
    let wire = {
        let mut w = get_ok(data.len()).into_bytes();
        w.extend_from_slice(&payload(&data, Digest::of(&data)));
        w
    };
    let (addr, server) = serve(move |p| {
        p.send(GREETING);
        p.expect("get 0 a.txt");
        for (i, piece) in wire.chunks(512).enumerate() {
            p.send(piece);
            let pause = if i == 6 { 600 } else { 200 };
            thread::sleep(Duration::from_millis(pause));
        }
        p.expect("close");
        p.send("bye\n");
    });
    let opts = ClientOptions {
        read_timeout: Some(Duration::from_secs(1)),
        min_rate: 1024,
        ..options()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("a.txt");
    let mut c = TestClient::connect_with(imp, addr, &opts).expect("connect");
    let report = c
        .get_to_path(
            &name("a.txt"),
            &dest,
            &GetOptions::default(),
            &mut no_progress(),
        )
        .expect("slow but above the rate");
    assert_eq!(report.size, 6144);
    assert_eq!(fs::read(&dest).expect("dest"), data);
    c.close().expect("close");
    server.join().expect("server script");
}

fn an_upload_taken_below_the_minimum_rate_ends(imp: Impl) {
    // The write timeout has the same hole: a server that takes an upload slowly but steadily
    // (1 MiB every 100 ms) never lets the 3 s write timeout fire. With a minimum rate of
    // 64 MiB/s the upload ends within seconds; without it, the 256 MiB would take 25 s.
    let (addr, server) = serve(|p| {
        p.send(NO_EAGER);
        p.expect("put 268435456 new wait big");
        p.send("go\n");
        let mut buf = vec![0u8; 1 << 20];
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            match p.r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => thread::sleep(Duration::from_millis(100)),
            }
        }
    });
    let opts = ClientOptions {
        write_timeout: Some(Duration::from_secs(3)),
        min_rate: 64 << 20,
        ..options()
    };
    let mut c = TestClient::connect_with(imp, addr, &opts).expect("connect");
    let mut source = std::io::repeat(b'z').take(256 << 20);
    let start = Instant::now();
    let err = c
        .put_from_reader(
            &name("big"),
            256 << 20,
            &mut source,
            &PutOptions::default(),
            &mut no_progress(),
        )
        .expect_err("too slow");
    let took = start.elapsed();
    let rate = rate_error(&err).unwrap_or_else(|| panic!("not the minimum rate: {err:?}"));
    assert!(rate.sending && rate.moved < 256 << 20, "{rate:?}");
    assert!(
        took < Duration::from_secs(15),
        "gave up after {took:?}, not within seconds"
    );
    assert!(err.ends_session() && !c.is_open(), "{err:?}");
    drop(c);
    server.join().expect("server script");
}

// -------------------------------------------------------------------- uploads ---

fn eager_put_sends_the_payload_at_once(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("put 5 new now 天线15.doc");
        let (data, trailer) = p.payload();
        assert_eq!(data, b"hello");
        assert_eq!(trailer, format!("end {}", Digest::of(b"hello")));
        p.send(format!("ok put 5 {}\n", Digest::of(b"hello")));
    });
    let mut c = connect(imp, addr);
    let report = c
        .put_from_reader(
            &name("天线15.doc"),
            5,
            &mut &b"hello"[..],
            &PutOptions::default(),
            &mut no_progress(),
        )
        .expect("put");
    assert_eq!(report.flow, PutFlow::Now);
    assert_eq!(report.digest, Digest::of(b"hello"));
    server.join().expect("server script");
}

fn waiting_put_sends_nothing_before_go(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(NO_EAGER);
        p.expect("put 5 replace wait a.txt");
        // Nothing may follow until go: the next octets must be the payload sent after it.
        p.w.set_nonblocking(true).expect("nonblocking");
        thread::sleep(Duration::from_millis(100));
        let mut probe = [0u8; 1];
        assert!(p.r.buffer().is_empty(), "nothing before go");
        assert!(p.r.get_mut().peek(&mut probe).is_err(), "nothing before go");
        p.w.set_nonblocking(false).expect("blocking");
        p.send("go\n");
        let (data, trailer) = p.payload();
        assert_eq!(data, b"hello");
        assert!(trailer.starts_with("end "));
        p.send(format!("ok put 5 {}\n", Digest::of(b"hello")));
    });
    let mut c = connect(imp, addr);
    let opts = PutOptions {
        mode: PutMode::Replace,
        ..PutOptions::default()
    };
    let report = c
        .put_from_reader(
            &name("a.txt"),
            5,
            &mut &b"hello"[..],
            &opts,
            &mut no_progress(),
        )
        .expect("put");
    assert_eq!(report.flow, PutFlow::Wait);
    server.join().expect("server script");
}

fn waiting_put_refused_early_sends_no_payload(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(NO_EAGER);
        p.expect("put 5 new wait a.txt");
        p.send("err 512 exists\n");
        p.expect("dir");
        p.send("ok dir 0\n");
    });
    let mut c = connect(imp, addr);
    let err = c
        .put_from_reader(
            &name("a.txt"),
            5,
            &mut &b"hello"[..],
            &PutOptions::default(),
            &mut no_progress(),
        )
        .expect_err("exists");
    assert_eq!(err.code(), Some(Code::EXISTS));
    assert!(c.is_open());
    c.dir().expect("the session goes on");
    server.join().expect("server script");
}

fn zero_byte_put_with_eager_off_waits(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("put 0 new wait empty");
        p.send("go\n");
        let (data, trailer) = p.payload();
        assert!(data.is_empty());
        assert_eq!(trailer, format!("end {}", Digest::of(b"")));
        p.send(format!("ok put 0 {}\n", Digest::of(b"")));
    });
    let mut c = connect(imp, addr);
    let opts = PutOptions {
        eager: false,
        ..PutOptions::default()
    };
    c.put_from_reader(&name("empty"), 0, &mut &b""[..], &opts, &mut no_progress())
        .expect("put");
    server.join().expect("server script");
}

fn short_reader_aborts_the_upload(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("put 10 new now a.txt");
        let (data, trailer) = p.payload();
        assert!(
            data.is_empty(),
            "never fewer octets than declared, then end"
        );
        assert!(trailer.starts_with("abort 430 "), "{trailer}");
        p.send("err 434 aborted\n");
    });
    let mut c = connect(imp, addr);
    let err = c
        .put_from_reader(
            &name("a.txt"),
            10,
            &mut &b"short"[..],
            &PutOptions::default(),
            &mut no_progress(),
        )
        .expect_err("short");
    assert!(matches!(err, ClientError::Local { .. }), "{err:?}");
    assert!(c.is_open());
    server.join().expect("server script");
}

/// A reader that gives `first` and then fails.
struct FailingReader(&'static [u8]);

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() {
            return Err(std::io::Error::other("the source is broken"));
        }
        let n = self.0.len().min(buf.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn a_read_error_aborts_the_upload_with_431(imp: Impl) {
    // PUT-20: a client that cannot supply SIZE octets ends the payload with `abort`, code 431
    // for a read error; never fewer octets than declared and then `end`.
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("put 10 new now a.txt");
        let (data, trailer) = p.payload();
        assert!(b"he".starts_with(&data), "{data:?}");
        assert!(trailer.starts_with("abort 431 "), "{trailer}");
        p.send("err 434 aborted\n");
        p.expect("dir");
        p.send("ok dir 0\n");
    });
    let mut c = connect(imp, addr);
    let err = c
        .put_from_reader(
            &name("a.txt"),
            10,
            &mut FailingReader(b"he"),
            &PutOptions::default(),
            &mut no_progress(),
        )
        .expect_err("the reader fails");
    assert!(matches!(err, ClientError::Local { .. }), "{err:?}");
    assert!(c.is_open());
    assert_eq!(c.dir().expect("the session goes on"), vec![]);
    server.join().expect("server script");
}

fn a_local_file_that_changes_before_go_aborts_the_upload_with_430(imp: Impl) {
    // PUT-20: the local file grows, or shrinks, between the request and `go`: the client
    // never sends other octets than the file's SIZE ones and then `end`; it aborts with 430.
    for change in [&b"hello, world"[..], b"he"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.txt");
        fs::write(&path, b"hello").expect("file");
        let (addr, server) = serve({
            let path = path.clone();
            move |p| {
                p.send(NO_EAGER);
                p.expect("put 5 new wait f.txt");
                fs::write(&path, change).expect("change the file");
                p.send("go\n");
                let (data, trailer) = p.payload();
                assert!(data.len() <= 5 && change.starts_with(&data), "{data:?}");
                assert!(trailer.starts_with("abort 430 "), "{trailer}");
                p.send("err 434 aborted\n");
                p.expect("dir");
                p.send("ok dir 0\n");
            }
        });
        let mut c = connect(imp, addr);
        let err = c
            .put_from_path(&path, None, &PutOptions::default(), &mut no_progress())
            .expect_err("changed");
        assert!(matches!(err, ClientError::Local { .. }), "{err:?}");
        assert!(c.is_open());
        assert_eq!(c.dir().expect("the session goes on"), vec![]);
        server.join().expect("server script");
    }
}

fn a_confirmation_with_another_digest_is_a_protocol_violation(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("put 5 new now a.txt");
        let _ = p.payload();
        p.send(format!("ok put 5 {}\n", Digest::of(b"other")));
    });
    let mut c = connect(imp, addr);
    let err = c
        .put_from_reader(
            &name("a.txt"),
            5,
            &mut &b"hello"[..],
            &PutOptions::default(),
            &mut no_progress(),
        )
        .expect_err("wrong confirmation");
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
    server.join().expect("server script");
}

fn connection_lost_after_the_trailer_leaves_the_outcome_unknown(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("put 5 new now a.txt");
        let _ = p.payload();
    });
    let mut c = connect(imp, addr);
    let err = c
        .put_from_reader(
            &name("a.txt"),
            5,
            &mut &b"hello"[..],
            &PutOptions::default(),
            &mut no_progress(),
        )
        .expect_err("lost");
    assert!(
        matches!(
            err,
            ClientError::Closed {
                outcome_unknown: true
            }
        ),
        "{err:?}"
    );
    server.join().expect("server script");
}

fn put_from_path_refuses_names_that_are_not_ferry_names(imp: Impl) {
    let dir = tempfile::tempdir().expect("tempdir");
    let hidden = dir.path().join(".hidden");
    fs::write(&hidden, b"x").expect("file");
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("close");
        p.send("bye\n");
    });
    let mut c = connect(imp, addr);
    let err = c
        .put_from_path(&hidden, None, &PutOptions::default(), &mut no_progress())
        .expect_err("hidden");
    assert!(matches!(err, ClientError::LocalName { .. }), "{err:?}");
    c.close().expect("nothing was sent before close");
    server.join().expect("server script");
}

// ---------------------------------------------------------------- pipelining ---

fn get_many_pipelines_its_requests(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        // All three requests arrive before any reply is sent.
        p.expect("get 0 a");
        p.expect("get 0 b");
        p.expect("get 0 c");
        p.send(get_ok(1));
        p.send(payload(b"A", Digest::of(b"A")));
        p.send("err 511 not-found\n");
        p.send(get_ok(1));
        p.send(payload(b"C", Digest::of(b"C")));
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = connect(imp, addr);
    let names = [name("a"), name("b"), name("c")];
    let results = c.get_many(
        &names,
        dir.path(),
        &GetOptions::default(),
        &mut no_progress(),
    );
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert_eq!(
        results[1].as_ref().expect_err("missing").code(),
        Some(Code::NOT_FOUND)
    );
    assert_eq!(listing(dir.path()), vec!["a", "c"]);
    assert_eq!(fs::read(dir.path().join("c")).expect("c"), b"C");
    server.join().expect("server script");
}

fn get_many_stops_cleanly_when_the_server_closes(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("get 0 a");
        p.send(get_ok(1));
        p.send(payload(b"A", Digest::of(b"A")));
        p.send("err 422 shutting-down\n");
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = connect(imp, addr);
    let names = [name("a"), name("b"), name("c")];
    let results = c.get_many(
        &names,
        dir.path(),
        &GetOptions::default(),
        &mut no_progress(),
    );
    assert!(results[0].is_ok());
    assert_eq!(
        results[1].as_ref().expect_err("422").code(),
        Some(Code::SHUTTING_DOWN)
    );
    assert!(
        matches!(results[2], Err(ClientError::Disconnected(_))),
        "{:?}",
        results[2]
    );
    assert_eq!(listing(dir.path()), vec!["a"]);
    server.join().expect("server script");
}

fn put_many_streams_eager_puts_before_reading_replies(imp: Impl) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    for (n, content) in [("one", &b"1"[..]), ("two", b"22"), ("three", b"333")] {
        let path = dir.path().join(n);
        fs::write(&path, content).expect("file");
        files.push((path, name(n)));
    }
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        // All three uploads arrive before any reply.
        let mut got = Vec::new();
        for _ in 0..3 {
            let line = p.line();
            let (data, trailer) = p.payload();
            assert_eq!(trailer, format!("end {}", Digest::of(&data)));
            got.push((line, data));
        }
        assert_eq!(got[0].0, "put 1 new now one");
        assert_eq!(got[1].0, "put 2 new now two");
        assert_eq!(got[2].0, "put 3 new now three");
        p.send(format!("ok put 1 {}\n", Digest::of(b"1")));
        p.send("err 512 exists\n");
        p.send(format!("ok put 3 {}\n", Digest::of(b"333")));
    });
    let mut c = connect(imp, addr);
    let mut confirmed = Vec::new();
    let results = c.put_many(&files, &PutOptions::default(), &mut |p| {
        confirmed.push(p.name.to_string());
    });
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert_eq!(
        results[1].as_ref().expect_err("exists").code(),
        Some(Code::EXISTS)
    );
    assert_eq!(confirmed, ["one", "three"]);
    server.join().expect("server script");
}

fn put_many_skips_missing_files_without_sending_them(imp: Impl) {
    let dir = tempfile::tempdir().expect("tempdir");
    let present = dir.path().join("present");
    fs::write(&present, b"p").expect("file");
    let files = vec![
        (dir.path().join("missing"), name("missing")),
        (present, name("present")),
    ];
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("put 1 new now present");
        let _ = p.payload();
        p.send(format!("ok put 1 {}\n", Digest::of(b"p")));
    });
    let mut c = connect(imp, addr);
    let results = c.put_many(&files, &PutOptions::default(), &mut no_progress());
    assert!(
        matches!(results[0], Err(ClientError::Local { .. })),
        "{:?}",
        results[0]
    );
    assert!(results[1].is_ok(), "{:?}", results[1]);
    server.join().expect("server script");
}

fn an_endless_listing_is_cut_off(imp: Impl) {
    let (addr, server) = serve(|p| {
        p.send(GREETING);
        p.expect("dir");
        p.send("ok dir 18446744073709551615\n");
    });
    let opts = ClientOptions {
        max_listing: 1000,
        ..options()
    };
    let mut c = TestClient::connect_with(imp, addr, &opts).expect("connect");
    let err = c.dir().expect_err("too many");
    assert!(
        matches!(err, ClientError::Protocol(ref m) if m.kind == ViolationKind::Listing && m.detail.contains("18446744073709551615")),
        "{err:?}"
    );
    server.join().expect("server script");
}

fn extreme_mtimes_do_not_panic(imp: Impl) {
    for mtime in ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z"] {
        let (addr, server) = serve(move |p| {
            p.send(GREETING);
            p.expect("get 0 a");
            p.send(format!("ok get 1 {mtime}\n"));
            p.send(payload(b"x", Digest::of(b"x")));
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = connect(imp, addr);
        let report = c
            .get_to_path(
                &name("a"),
                &dir.path().join("a"),
                &GetOptions::default(),
                &mut no_progress(),
            )
            .expect("get");
        assert_eq!(report.mtime.to_string(), mtime);
        assert_eq!(fs::read(dir.path().join("a")).expect("a"), b"x");
        drop(c);
        server.join().expect("server script");
    }
}
