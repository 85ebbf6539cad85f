//! Timeouts on every server (configured `idle=1`, `stall=2`), with raw sockets: when the
//! server times a session out (`err 421` then close, TIME-4, TIME-5) — never sooner than the
//! announced values allow (HELLO-7) — and when it must not (a slow but progressing upload,
//! requests spaced by less than `idle`, TIME-1 … TIME-3). The scenarios of one server run in
//! parallel, each on its own connection.

use std::time::{Duration, Instant};

use ferry_matrix_tests::{Impl, TestServer};
use ferry_test_support::RawSession;
use ferry_wire::{Digest, Reply};

const IDLE: Duration = Duration::from_secs(1);
const STALL: Duration = Duration::from_secs(2);
/// How late a timeout may come (a loaded machine; the servers check in slices).
const LATE: Duration = Duration::from_secs(4);

fn timed_out(s: &mut RawSession, since: Instant, limit: Duration, what: &str) {
    match s.read_reply() {
        Reply::Err(e) if e.code.get() == 421 => {}
        other => panic!("{what}: expected err 421, got {other:?}"),
    }
    let t = since.elapsed();
    assert!(
        t >= limit,
        "{what}: timed out after {t:?}, sooner than {limit:?}"
    );
    assert!(t <= limit + LATE, "{what}: timed out only after {t:?}");
    s.expect_closed();
}

// Each measurement starts before the client's last action, so that it cannot start after
// the server's own clock did: a lower bound that holds however the octets are delayed.

fn idle(server: &TestServer) {
    let start = Instant::now();
    let mut s = server.session();
    timed_out(&mut s, start, IDLE, "idle");
}

fn idle_restarts_after_each_request(server: &TestServer) {
    let mut s = server.session();
    let mut start = Instant::now();
    for _ in 0..4 {
        std::thread::sleep(IDLE / 2);
        start = Instant::now();
        s.send(b"dir\n");
        assert!(matches!(s.read_reply(), Reply::DirOk { .. }));
    }
    timed_out(&mut s, start, IDLE, "idle after requests");
}

fn request_line_stall(server: &TestServer) {
    let mut s = server.session();
    let first = Instant::now();
    for piece in [&b"d"[..], b"i", b"r"] {
        s.send(piece);
        std::thread::sleep(Duration::from_millis(900));
    }
    // The line would be complete now (2.7 s after its first octet): too late.
    let _ = s.try_send(b"\n");
    timed_out(&mut s, first, STALL, "request line");
}

fn upload_stall(server: &TestServer) {
    let mut s = server.session();
    s.send(b"put 10 new wait stalled\n");
    assert_eq!(s.read_reply(), Reply::Go);
    let start = Instant::now();
    s.send(b"data 10\nhello");
    timed_out(&mut s, start, STALL, "upload");
    assert!(
        server.read_file("stalled").is_none(),
        "a stalled upload is visible"
    );
}

fn slow_upload_completes(server: &TestServer) {
    let mut s = server.session();
    let data = b"abcd";
    s.send(b"put 4 new wait slow\n");
    assert_eq!(s.read_reply(), Reply::Go);
    for b in data {
        // Longer than idle, shorter than stall: idle must not apply inside a transfer.
        std::thread::sleep(Duration::from_millis(1300));
        s.send(&[b"data 1\n".as_slice(), &[*b]].concat());
    }
    s.send(format!("end {}\n", Digest::of(data)).as_bytes());
    match s.read_reply() {
        Reply::PutOk { size: 4, .. } => {}
        other => panic!("slow upload: {other:?}"),
    }
    assert_eq!(server.read_file("slow").as_deref(), Some(&data[..]));
}

/// One scenario, on its own connection.
type Scenario = fn(&TestServer);

fn timeouts(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| {
        c.idle_timeout = IDLE;
        c.stall_timeout = STALL;
        // TIME-1 … TIME-3 alone: the slow upload here moves 4 octets in 5 s, which the
        // minimum rate (TIME-9, tested in tests/faults and by the conformance runner) cuts.
        c.min_rate = 0;
    });
    let greeting = RawSession::connect(server.addr).expect_greeting();
    assert_eq!(
        (greeting.limits().idle, greeting.limits().stall),
        (1, 2),
        "{imp}: announced timeouts"
    );
    let scenarios: [(&str, Scenario); 5] = [
        ("idle", idle),
        ("idle restarts", idle_restarts_after_each_request),
        ("request line stall", request_line_stall),
        ("upload stall", upload_stall),
        ("slow upload", slow_upload_completes),
    ];
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = scenarios
            .iter()
            .map(|(name, f)| (name, s.spawn(|| f(&server))))
            .collect();
        handles
            .into_iter()
            .filter_map(|(name, h)| {
                h.join().err().map(|e| {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    format!("{name}: {msg}")
                })
            })
            .collect()
    });
    assert!(failures.is_empty(), "{imp}: {}", failures.join("\n"));
    assert!(
        server.wait_staging_empty(),
        "{imp}: staging area not emptied"
    );
}

#[test]
fn timeouts_threads() {
    timeouts(Impl::Threads);
}

#[test]
fn timeouts_async_std() {
    timeouts(Impl::AsyncStd);
}

#[test]
fn timeouts_tokio() {
    timeouts(Impl::Tokio);
}

#[test]
fn timeouts_smol() {
    timeouts(Impl::Smol);
}
