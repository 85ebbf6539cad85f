//! Priority 3: floods (bounded, loopback only): connection limit, connect/close bursts, huge
//! declared sizes, over-long lines; and the RSS of a `ferry serve` child under the floods.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ferry_fault_tests::{
    ChildServer, Impl, RawSession, TestServer, eventually, ferry_bin_or_skip, first_line,
};

const CAP: usize = 8;

/// 3 × cap connections held open: exactly `cap` greetings, the rest `err 420 busy` and a
/// close (CONN-3), never a hang; afterwards a new connection is served.
fn busy_flood(addr: SocketAddr, imp: Impl) {
    let t0 = Instant::now();
    // Sessions of an earlier step may take a moment to end on the server: retry a few
    // times until all `CAP` slots are free, then require the exact split.
    let mut last = (0, 0);
    for _ in 0..10 {
        last = flood_once(addr, imp);
        if last.0 == CAP {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (greeted, busy) = last;
    assert_eq!((greeted, busy), (CAP, 2 * CAP), "{imp}: greetings vs busy");
    assert!(
        eventually(Duration::from_secs(5), || first_line(
            addr,
            Duration::from_secs(2)
        )
        .is_some_and(|(_, l)| l.starts_with("ferry/1"))),
        "{imp}: no service after the flood"
    );
    println!(
        "FLOOD|{imp}|busy|{greeted} greeted, {busy} busy in {:?}",
        t0.elapsed()
    );
}

/// One flood of 3 × `CAP` held connections: (greetings, busy replies); every connection
/// gets its first line within 5 s, and every busy one is closed by the server.
fn flood_once(addr: SocketAddr, imp: Impl) -> (usize, usize) {
    let mut held = Vec::new();
    let (mut greeted, mut busy) = (0, 0);
    for i in 0..3 * CAP {
        let (s, line) = first_line(addr, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{imp}: connection {i} got no first line within 5 s"));
        if line.starts_with("ferry/1") {
            greeted += 1;
            held.push(s);
        } else {
            assert!(
                line.starts_with("err 420"),
                "{imp}: connection {i}: {line:?}"
            );
            busy += 1;
            // The server closes after 420 without reading.
            expect_eof(&s, imp);
        }
    }
    (greeted, busy)
}

/// The peer closes `s` within 5 s (EOF or reset, after any octets).
fn expect_eof(s: &TcpStream, imp: Impl) {
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    loop {
        match (&*s).read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("{imp}: the connection was not closed after 420: {e}"),
        }
    }
}

/// 200 connections closed at once (some before the greeting, some with RST).
fn bursts(addr: SocketAddr, imp: Impl) {
    let t0 = Instant::now();
    for i in 0..200 {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        match i % 3 {
            0 => drop(s),
            1 => {
                let _ = rustix::net::sockopt::set_socket_linger(&s, Some(Duration::ZERO));
                drop(s);
            }
            _ => {
                let _ = (&s).write_all(b"dir\n");
                drop(s);
            }
        }
    }
    assert!(
        eventually(Duration::from_secs(5), || first_line(
            addr,
            Duration::from_secs(2)
        )
        .is_some_and(|(_, l)| l.starts_with("ferry/1"))),
        "{imp}: no service after 200 bursts"
    );
    println!("FLOOD|{imp}|bursts|200 in {:?}", t0.elapsed());
}

/// Huge declared sizes: `wait` → 513 and the session goes on; `now` → 502 and a close.
fn huge_sizes(addr: SocketAddr, imp: Impl) {
    let mut s = RawSession::connect(addr);
    s.expect_greeting();
    s.send(b"put 18446744073709551615 new wait x\n");
    s.expect_err(513);
    s.send(b"dir\n");
    let l = s.read_line_str();
    assert!(l.starts_with("ok dir"), "{imp}: after 513: {l:?}");
    let mut s = RawSession::connect(addr);
    s.expect_greeting();
    s.send(b"put 18446744073709551615 new now x\n");
    s.expect_err(502);
    s.read_to_end();
}

/// A line of 4096 octets (LF included) is not too long (500 for garbage); 4096 octets
/// without LF → 501 and a close; so is a 64 KiB line.
fn long_lines(addr: SocketAddr, imp: Impl) {
    let mut s = RawSession::connect(addr);
    s.expect_greeting();
    let mut line = vec![b'a'; 4095];
    line.push(b'\n');
    s.send(&line);
    s.expect_err(500);
    s.send(&[b'a'; 4096]);
    s.expect_err(501);
    s.read_to_end();
    let mut s = RawSession::connect(addr);
    s.expect_greeting();
    let _ = s.try_send(&vec![b'b'; 64 * 1024]);
    s.expect_err(501);
    s.read_to_end();
    println!("FLOOD|{imp}|long-lines|500 at 4096 with LF, 501 without");
}

fn floods(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| c.max_connections = CAP);
    busy_flood(server.addr, imp);
    bursts(server.addr, imp);
    huge_sizes(server.addr, imp);
    long_lines(server.addr, imp);
}

#[test]
fn floods_threads() {
    floods(Impl::Threads);
}
#[test]
fn floods_async_std() {
    floods(Impl::AsyncStd);
}
#[test]
fn floods_tokio() {
    floods(Impl::Tokio);
}
#[test]
fn floods_smol() {
    floods(Impl::Smol);
}

/// The same floods against `ferry serve` children; VmRSS must stay bounded (< 64 MiB growth).
#[test]
fn flood_memory_child() {
    let Some(bin) = ferry_bin_or_skip() else {
        return;
    };
    for imp in Impl::ALL {
        let root = tempfile::tempdir().expect("tempdir");
        let child = ChildServer::start(&bin, imp, root.path(), &["--max-connections", "8"]);
        let before = child.rss_kib().expect("VmRSS");
        for _ in 0..3 {
            busy_flood(child.addr, imp);
            bursts(child.addr, imp);
            huge_sizes(child.addr, imp);
            long_lines(child.addr, imp);
        }
        let after = child.rss_kib().expect("VmRSS");
        println!("RSS|{imp}|before {before} KiB|after {after} KiB");
        assert!(
            after < before + 64 * 1024,
            "{imp}: RSS grew from {before} KiB to {after} KiB"
        );
    }
}
