//! Each server's shutdown deadline during a get payload read slowly by the client
//! (CLOSE-9, DATA-11), once per server implementation: the chunk being sent when the deadline passes
//! is completed, then `abort 422 shutting-down`, then the connection closes.

mod common;

use std::io::{self, Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Impl, pattern};
use ferry_wire::{Code, PayloadReceiver, Reply, Step, decode_hello, decode_reply};

ferry_test_support::every_impl!(shutdown_deadline_ends_a_slow_download_at_a_chunk_boundary);

/// Size of the file the client downloads slowly.
const SIZE: usize = 100 << 20;

/// How fast the client reads: a few MB/s, so that the download is far from done when the
/// shutdown deadline passes, and the server is in the middle of writing a chunk.
const RATE: f64 = 4.0e6;

/// How long the client reads before the shutdown is triggered.
const BEFORE_SHUTDOWN: Duration = Duration::from_millis(500);

/// The shutdown grace: the deadline passes this long after the trigger.
const GRACE: Duration = Duration::from_millis(300);

/// How long the client stops reading from the trigger on: past the deadline, so that the
/// server is blocked inside a chunk write when the deadline passes (on every runtime, not
/// only where a timer that has expired wins the race against a socket that becomes
/// writable), well within the stall timeout.
const PAUSE: Duration = Duration::from_millis(700);

/// Longest the whole download may take before the test gives up.
const LIMIT: Duration = Duration::from_secs(60);

/// How the connection ended.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    Eof,
    Reset,
}

/// Reads from `stream` at about [`RATE`] octets per second until EOF (or a reset); after
/// [`BEFORE_SHUTDOWN`] it calls `trigger` and pauses for [`PAUSE`], then reads slowly again.
/// Returns everything read and how the connection ended.
fn read_slowly(stream: &mut TcpStream, trigger: impl FnOnce()) -> (Vec<u8>, Ending) {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let started = Instant::now();
    let mut trigger = Some(trigger);
    // Pacing: `RATE` octets per second counted from `origin`, where `base` octets were in.
    let (mut origin, mut base) = (started, 0usize);
    let mut got = Vec::with_capacity(16 << 20);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        assert!(
            started.elapsed() < LIMIT,
            "still reading after {LIMIT:?} ({} octets)",
            got.len()
        );
        if started.elapsed() >= BEFORE_SHUTDOWN
            && let Some(trigger) = trigger.take()
        {
            trigger();
            std::thread::sleep(PAUSE);
            (origin, base) = (Instant::now(), got.len());
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => return (got, Ending::Eof),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (got, Ending::Reset),
            Err(e) => panic!("read failed after {} octets: {e}", got.len()),
        };
        got.extend_from_slice(&buf[..n]);
        let due = Duration::from_secs_f64((got.len() - base) as f64 / RATE);
        if let Some(wait) = due.checked_sub(origin.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

/// Splits the first line (with its LF) off `bytes`.
fn split_line(bytes: &[u8]) -> (&[u8], &[u8]) {
    let lf = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or_else(|| panic!("no complete line in {} octets", bytes.len()));
    bytes.split_at(lf + 1)
}

fn shutdown_deadline_ends_a_slow_download_at_a_chunk_boundary(imp: Impl) {
    let server = common::start_with(imp, |c| {
        c.shutdown_grace = GRACE;
        // Room for the chunk in progress to be completed after the deadline.
        c.stall_timeout = Duration::from_secs(20);
    });
    server.write_file("big.bin", &pattern(SIZE));
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream.write_all(b"get 0 big.bin\n").expect("send the get");
    let shutdown = server.shutdown_handle().clone();
    let (wire, ending) = read_slowly(&mut stream, || shutdown.trigger());
    assert_eq!(
        ending,
        Ending::Eof,
        "the server reset the connection instead of closing it"
    );

    let (greeting, rest) = split_line(&wire);
    decode_hello(greeting).expect("a greeting");
    let (ok_get, payload) = split_line(rest);
    let size = match decode_reply(ok_get).expect("a reply").0 {
        Reply::GetOk { size, .. } => size,
        other => panic!("expected ok get, got {other:?}"),
    };
    assert_eq!(size, SIZE as u64);

    // Every octet after `ok get` must be whole chunks, then exactly `abort 422 …`, then EOF.
    let mut rx = PayloadReceiver::new(size);
    let mut at = 0usize;
    let reason = loop {
        match rx.feed(&payload[at..]) {
            Ok((Step::Data(_), used)) => at += used,
            Ok((Step::NeedMore, used)) if used > 0 => at += used,
            Ok((Step::NeedMore, _)) if rx.chunk_left() > 0 => panic!(
                "the connection closed inside a chunk: {} octets of it missing after {} file \
                 octets",
                rx.chunk_left(),
                rx.received()
            ),
            Ok((Step::NeedMore, _)) => panic!(
                "the connection closed after {} file octets without `abort 422` (unparsed: \
                 {:?})",
                rx.received(),
                String::from_utf8_lossy(&payload[at..])
            ),
            Ok((Step::Aborted(reason), used)) => {
                at += used;
                break reason;
            }
            Ok((step, _)) => panic!(
                "the download was not ended by the shutdown: {step:?} after {} octets",
                rx.received()
            ),
            Err(e) => panic!("bad framing after {} file octets: {e}", rx.received()),
        }
    };
    assert_eq!(reason.code, Code::SHUTTING_DOWN, "abort {reason:?}");
    assert_eq!(
        &payload[at..],
        b"",
        "octets after `abort 422`: the connection must close"
    );
    assert!(
        rx.received() < size,
        "the download completed: the test did not catch the deadline"
    );
    server.stop().expect("the server stopped cleanly");
}
