//! Connection life of the threads server over loopback: the session cap (420), idle and stall
//! timeouts (421), shutdown (422), files that change while they are sent (430), and clients
//! that vanish mid-upload.

use std::fs::File;
use std::net::TcpListener;
use std::time::{Duration, Instant, SystemTime};

use ferry_test_support::{Impl, PayloadEnd, RawSession, TestServer, file_name};
use ferry_wire::{Code, Digest, PutMode, Reply, Request};

fn sessions_above_the_cap_get_420_busy(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| c.max_connections = 1);
    let mut first = server.session();
    for _ in 0..3 {
        let mut second = RawSession::connect(server.addr);
        second.expect_line("err 420 busy");
        second.expect_closed();
    }
    // The first session is unaffected.
    first.send(b"dir\n");
    first.expect_line("ok dir 0");
    first.send(b"close\n");
    first.expect_line("bye");
    first.expect_closed();
    drop(first);
    // Its slot is free again once its thread has ended (a moment after the close).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = RawSession::connect(server.addr);
        let line = s.read_line();
        if line.starts_with(b"ferry/1 ") {
            s.send(b"dir\n");
            s.expect_line("ok dir 0");
            break;
        }
        assert_eq!(line, b"err 420 busy");
        assert!(Instant::now() < deadline, "the slot was never freed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// CONN-9: one address holds at most its share of the sessions; another address is still
/// greeted and served meanwhile (#14), and a slot its holder gives back is free again.
fn one_address_cannot_take_every_slot(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| {
        c.max_connections = 8;
        c.max_per_address = 2;
    });
    let attacker: std::net::IpAddr = "127.0.0.1".parse().expect("address");
    let other: std::net::IpAddr = "127.0.0.2".parse().expect("address");
    let mut held: Vec<RawSession> = (0..2)
        .map(|_| {
            let mut s = RawSession::connect_from(server.addr, attacker);
            s.expect_greeting();
            s
        })
        .collect();
    for _ in 0..3 {
        let mut s = RawSession::connect_from(server.addr, attacker);
        s.expect_line("err 420 busy");
        s.expect_closed();
    }
    let mut served = RawSession::connect_from(server.addr, other);
    served.expect_greeting();
    served.send(b"dir\n");
    served.expect_line("ok dir 0");
    // One of the attacker's sessions ends: its address gets that slot back.
    let mut first = held.remove(0);
    first.send(b"close\n");
    first.expect_line("bye");
    first.expect_closed();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = RawSession::connect_from(server.addr, attacker);
        let line = s.read_line();
        if line.starts_with(b"ferry/1 ") {
            break;
        }
        assert_eq!(line, b"err 420 busy");
        assert!(Instant::now() < deadline, "the slot was never given back");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn idle_sessions_time_out_with_421(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| c.idle_timeout = Duration::from_secs(1));
    let mut s = server.session();
    s.send(b"dir\n");
    s.expect_line("ok dir 0");
    let t = Instant::now();
    s.expect_line("err 421 timeout");
    let waited = t.elapsed();
    s.expect_closed();
    assert!(
        waited >= Duration::from_millis(950),
        "timed out after {waited:?}, before idle=1"
    );
    assert!(
        waited < Duration::from_secs(3),
        "timed out only after {waited:?}"
    );
}

fn a_request_line_must_complete_within_stall_of_its_first_octet(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| {
        c.stall_timeout = Duration::from_secs(1);
        c.idle_timeout = Duration::from_secs(30);
    });
    // A trickle of octets (slowloris) does not extend the deadline.
    let mut s = server.session();
    let t = Instant::now();
    let mut sent = 0;
    for b in b"get 0 some-long-name.txt" {
        if s.try_send(&[*b]).is_err() {
            break;
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(100));
        if t.elapsed() > Duration::from_millis(1500) {
            break;
        }
    }
    s.expect_line("err 421 timeout");
    s.expect_closed();
    let waited = t.elapsed();
    assert!(sent < 24, "the whole line went through");
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

fn a_stalled_upload_times_out_with_421_and_leaves_nothing(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| {
        c.stall_timeout = Duration::from_secs(1);
        c.idle_timeout = Duration::from_secs(30);
    });
    let mut s = server.session();
    s.send(b"put 10 new wait notes.txt\n");
    s.expect_line("go");
    s.send(b"data 10\nnote");
    let t = Instant::now();
    s.expect_line("err 421 timeout");
    s.expect_closed();
    assert!(t.elapsed() >= Duration::from_millis(950));
    assert!(server.wait_staging_empty());
    assert!(server.visible_names().is_empty());
}

fn the_idle_timeout_does_not_apply_inside_a_transfer(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| {
        c.idle_timeout = Duration::from_secs(1);
        c.stall_timeout = Duration::from_secs(3);
    });
    let mut s = server.session();
    s.send(b"put 4 new wait slow\n");
    s.expect_line("go");
    // 2.4 s in all, longer than idle, but never 3 s without an octet.
    for piece in [&b"data 4\n"[..], b"s", b"l", b"o", b"w"] {
        std::thread::sleep(Duration::from_millis(480));
        s.send(piece);
    }
    s.send(format!("end {}\n", Digest::of(b"slow")).as_bytes());
    assert!(matches!(s.read_reply(), Reply::PutOk { size: 4, .. }));
    assert_eq!(server.read_file("slow"), Some(b"slow".to_vec()));
}

fn shutdown_sends_422_to_idle_sessions_promptly_and_stops(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let mut sessions: Vec<RawSession> = (0..5).map(|_| server.session()).collect();
    for s in &mut sessions {
        s.send(b"dir\n");
        s.expect_line("ok dir 0");
    }
    let t = Instant::now();
    server.shutdown_handle().trigger();
    for s in &mut sessions {
        s.expect_line("err 422 shutting-down");
        s.expect_closed();
    }
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
    drop(sessions);
    let addr = server.addr;
    server.stop().expect("run returns Ok");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        t.elapsed()
    );
    // No longer listening.
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

fn a_request_in_flight_finishes_before_the_422(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| c.shutdown_grace = Duration::from_secs(5));
    let mut s = server.session();
    s.send(b"put 5 new wait notes.txt\n");
    s.expect_line("go");
    server.shutdown_handle().trigger();
    std::thread::sleep(Duration::from_millis(600));
    s.send(b"data 5\nhello");
    std::thread::sleep(Duration::from_millis(300));
    // Pipelined after the put: not executed, the 422 comes instead (CLOSE-8).
    s.send(format!("end {}\ndir\n", Digest::of(b"hello")).as_bytes());
    assert!(matches!(s.read_reply(), Reply::PutOk { size: 5, .. }));
    s.expect_line("err 422 shutting-down");
    s.expect_closed();
    drop(s);
    assert_eq!(server.read_file("notes.txt"), Some(b"hello".to_vec()));
    server.stop().expect("stop");
}

fn the_shutdown_deadline_ends_a_stuck_download_and_a_stuck_upload(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| {
        c.shutdown_grace = Duration::from_secs(1);
        c.stall_timeout = Duration::from_secs(8);
    });
    // A large sparse file the client does not read: the server blocks in the payload.
    let f = File::create(server.root.join("big")).expect("create");
    f.set_len(256 << 20).expect("sparse file");
    let mut down = server.session();
    down.send(b"get 0 big\n");
    assert!(down.read_line_str().starts_with("ok get 268435456 "));
    // An upload that stops sending.
    let mut up = server.session();
    up.send(b"put 10 new wait notes.txt\n");
    up.expect_line("go");
    up.send(b"data 10\nnot");

    let t = Instant::now();
    server.shutdown_handle().trigger();
    // CLOSE-9 for the upload: staging file removed, 422, close.
    up.expect_line("err 422 shutting-down");
    up.expect_closed();
    let up_after = t.elapsed();
    assert!(up_after >= Duration::from_millis(900), "{up_after:?}");
    let stopped = {
        let started = Instant::now();
        server.stop().expect("stop");
        t.elapsed().max(started.elapsed())
    };
    // CLOSE-10: a chunk in flight at the deadline may still go out while the client takes
    // something within the patience, but never past a stall timeout after the deadline. (A
    // client that reads nothing may still "take" octets: its kernel frees receive memory now
    // and then, and a write retried at the end of a patience can succeed, restarting it, so
    // the bound to test is the stall, here shorter than the default; the patience itself is
    // tested exactly, on a virtual clock, in crates/proto/tests/server.rs.)
    assert!(ferry_store::SHUTDOWN_CHUNK_PATIENCE < Duration::from_secs(8));
    let limit = Duration::from_secs(1 + 8 + 2);
    assert!(stopped < limit, "run returned only after {stopped:?}");
    // The download ends without `end`: at most an `abort 422` if the server got one out.
    down.set_timeout(Duration::from_secs(5));
    let rest = down.read_to_end();
    assert!(rest.len() < 256 << 20);
    let tail = &rest[rest.len().saturating_sub(64)..];
    assert!(
        !String::from_utf8_lossy(tail).contains("\nend xxh3-128:"),
        "the download must not complete"
    );
}

fn client_eof_mid_upload_leaves_nothing_and_the_server_serves_the_next_client(imp: Impl) {
    let server = TestServer::start_impl(imp);
    for (i, head) in [
        &b"put 10 new now notes.txt\ndata 10\nnote"[..],
        b"put 10 new now notes.txt\ndata 4\nnote",
        b"put 10 new now notes.txt\ndata 4\nnotedata 6\nnotes",
        b"put 10 new now notes.txt\n",
        b"put 10 new now notes.txt\ndat",
    ]
    .iter()
    .enumerate()
    {
        let mut s = server.session();
        s.send(head);
        s.shutdown_write();
        s.expect_closed();
        assert!(server.wait_staging_empty(), "case {i}");
        assert!(server.visible_names().is_empty(), "case {i}");
    }
    // Also with flow wait, and by dropping the socket rather than half-closing it.
    let mut s = server.session();
    s.send(b"put 10 new wait notes.txt\n");
    s.expect_line("go");
    s.send(b"data 10\nnotes");
    drop(s);
    assert!(server.wait_staging_empty());
    assert!(server.visible_names().is_empty());

    let mut s = server.session();
    assert!(matches!(
        s.put_wait("notes.txt", PutMode::New, b"0123456789"),
        Reply::PutOk { .. }
    ));
}

/// A file that shrinks while it is sent: the server's read comes up short and it ends the
/// payload with `abort 430` at a chunk boundary (GET-6); the session goes on.
fn a_file_truncated_while_it_is_sent_gets_abort_430(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let path = server.root.join("shrinks");
    let f = File::create(&path).expect("create");
    // Far more than the socket buffers hold, so the server is blocked mid-payload when the
    // file is truncated (sparse: no disk writes).
    f.set_len(512 << 20).expect("sparse file");
    let mut s = server.session();
    s.send(b"get 0 shrinks\n");
    let Reply::GetOk { size, .. } = s.read_reply() else {
        panic!("ok get")
    };
    assert_eq!(size, 512 << 20);
    f.set_len(1000).expect("truncate");
    let mut received = 0u64;
    let end = s.read_payload_with(size, ferry_wire::Hasher::new(), |d| {
        received += d.len() as u64
    });
    assert_eq!(end, PayloadEnd::Aborted(err(Code::CHANGED)));
    assert!(received < size);
    assert_eq!(
        received % (1 << 20),
        0,
        "the abort comes at a chunk boundary"
    );
    s.send(b"dir\n");
    s.expect_line("ok dir 1");
}

/// A file modified in place (same size, new mtime) while it is sent: every octet arrives but
/// the trailer is `abort 430`, not `end` (GET-6).
fn a_file_modified_while_it_is_sent_gets_abort_430(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let path = server.root.join("changes");
    let f = File::create(&path).expect("create");
    f.set_len(16 << 20).expect("sparse file");
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .expect("mtime");
    let mut s = server.session();
    s.send(b"get 0 changes\n");
    let Reply::GetOk { size, .. } = s.read_reply() else {
        panic!("ok get")
    };
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_001))
        .expect("mtime");
    let mut received = 0u64;
    let end = s.read_payload_with(size, ferry_wire::Hasher::new(), |d| {
        received += d.len() as u64
    });
    assert_eq!(received, size);
    assert_eq!(end, PayloadEnd::Aborted(err(Code::CHANGED)));
    // Left alone, the file is sent normally again.
    s.send_request(&Request::Get {
        offset: size - 3,
        name: file_name("changes"),
    });
    let Reply::GetOk { .. } = s.read_reply() else {
        panic!("ok get")
    };
    s.expect_line("data 3");
    assert_eq!(s.read_exact(3), [0, 0, 0]);
    assert!(s.read_line_str().starts_with("end xxh3-128:"));
}

fn err(code: Code) -> ferry_wire::ErrorReply {
    ferry_wire::ErrorReply::new(code, code.name().expect("known"))
}

fn a_second_server_on_the_same_folder_refuses_to_start(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let config = ferry_sync::server::Config {
        root: server.root.clone(),
        ..Default::default()
    };
    let err = ferry_sync::server::run(listener, config, ferry_sync::server::Shutdown::new())
        .expect_err("the folder is in use");
    assert_eq!(err.kind(), std::io::ErrorKind::ResourceBusy, "{err}");
    // The first server is unaffected.
    let mut s = server.session();
    s.send(b"dir\n");
    s.expect_line("ok dir 0");
}

/// SEC-10: a read-only server serves its folder and leaves it byte for byte as it was — no
/// staging area created, locked, chmod-ed or cleaned (an operator's file in an existing one
/// stays) — after a session that lists, gets and tries puts of both flows.
#[test]
fn a_read_only_server_leaves_its_folder_unchanged() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("served");
    std::fs::create_dir(&served).expect("mkdir");
    std::fs::write(served.join("天线15.doc"), b"hello").expect("write");
    let staging = served.join(".ferry-staging");
    std::fs::create_dir(&staging).expect("mkdir");
    std::fs::write(staging.join("operator-file"), b"keep me").expect("write");
    std::fs::write(staging.join("upload-00000000deadbeef"), b"debris?").expect("write");
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // A second folder without a staging area: none may appear.
    let bare = tmp.path().join("bare");
    std::fs::create_dir(&bare).expect("mkdir");
    std::fs::write(bare.join("a.txt"), b"alpha").expect("write");
    // Timestamps of the writes above must be in the past, so that a change shows.
    std::thread::sleep(Duration::from_millis(20));

    for (folder, file, content) in [
        (&served, "天线15.doc", &b"hello"[..]),
        (&bare, "a.txt", &b"alpha"[..]),
    ] {
        let before = ferry_test_support::folder_state(folder);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = ferry_sync::server::Config {
            root: folder.clone(),
            read_only: true,
            ..Default::default()
        };
        let shutdown = ferry_sync::server::Shutdown::new();
        let server = std::thread::spawn({
            let shutdown = shutdown.clone();
            move || ferry_sync::server::run(listener, config, shutdown)
        });
        let mut s = RawSession::connect(addr);
        s.expect_greeting();
        s.send(b"dir\n");
        assert_eq!(s.read_reply(), Reply::DirOk { count: 1 });
        let entry = String::from_utf8(s.read_line()).expect("utf8");
        assert!(entry.ends_with(&format!(" {file}")), "{entry}");
        let (data, end) = s.get(file).expect("get");
        assert_eq!(data, content);
        assert_eq!(end, PayloadEnd::Complete(Digest::of(content)));
        s.send(b"put 5 new wait notes.txt\n");
        s.expect_line("err 514 read-only");
        assert!(
            matches!(s.put_now(file, PutMode::Replace, b"abc"), Reply::Err(e) if e.code == Code::READ_ONLY)
        );
        s.send(b"close\n");
        s.expect_line("bye");
        s.expect_closed();
        drop(s);
        shutdown.trigger();
        server
            .join()
            .expect("the server thread")
            .expect("the server ran");
        assert_eq!(
            ferry_test_support::folder_state(folder),
            before,
            "{}",
            folder.display()
        );
    }
    assert!(!bare.join(".ferry-staging").exists());
    assert_eq!(
        std::fs::read(staging.join("operator-file")).expect("the operator's file stays"),
        b"keep me"
    );
}

fn huge_configured_timeouts_are_capped_not_overflowed(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| {
        c.idle_timeout = Duration::MAX;
        c.stall_timeout = Duration::MAX;
        c.shutdown_grace = Duration::MAX;
    });
    let mut s = RawSession::connect(server.addr);
    s.expect_line(
        "ferry/1 max-line=4096 max-name=255 max-size=1099511627776 max-chunk=1048576 \
         max-eager=1048576 idle=31536000 stall=31536000 min-rate=1024 ext=tree",
    );
    s.send(b"put 1 new wait x\n");
    s.expect_line("go");
    s.send(b"data 1\nx");
    server.shutdown_handle().trigger();
    s.send(format!("end {}\n", Digest::of(b"x")).as_bytes());
    assert!(matches!(s.read_reply(), Reply::PutOk { .. }));
    s.expect_line("err 422 shutting-down");
    s.expect_closed();
    drop(s);
    server.stop().expect("stop");
}

ferry_test_support::every_impl!(
    sessions_above_the_cap_get_420_busy,
    one_address_cannot_take_every_slot,
    idle_sessions_time_out_with_421,
    a_request_line_must_complete_within_stall_of_its_first_octet,
    a_stalled_upload_times_out_with_421_and_leaves_nothing,
    the_idle_timeout_does_not_apply_inside_a_transfer,
    shutdown_sends_422_to_idle_sessions_promptly_and_stops,
    a_request_in_flight_finishes_before_the_422,
    the_shutdown_deadline_ends_a_stuck_download_and_a_stuck_upload,
    client_eof_mid_upload_leaves_nothing_and_the_server_serves_the_next_client,
    a_file_truncated_while_it_is_sent_gets_abort_430,
    a_file_modified_while_it_is_sent_gets_abort_430,
    a_second_server_on_the_same_folder_refuses_to_start,
    huge_configured_timeouts_are_capped_not_overflowed,
);
