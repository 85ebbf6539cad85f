//! Each server's behaviour over raw sockets (ferry-wire and the test-support
//! `RawSession`, not ferry-async's own client), once per server implementation: every command,
//! every server-side error code that can be triggered deterministically, the names of the
//! brief, empty files, every octet value, a 64 MiB file, resume, pipelining, timeouts,
//! shutdown, and uploads that fail or break off leaving nothing behind.

mod common;

use std::io::Write as _;
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime};

use common::{Impl, NAMES, RawSession, Server, every_byte, pattern};
use ferry_test_support::{PayloadEnd, put_now_bytes};
use ferry_wire::{
    Digest, Greeting, Hasher, Limits, PutMode, Reply, Request, decode_entry, encode_payload,
};

ferry_test_support::every_impl!(
    greeting_and_dir,
    get_files_offsets_and_515,
    put_wait_now_and_refusals_512_513_514,
    malformed_lines_500_501_502_503_510_511,
    eager_put_refused_keeps_the_session_in_sync,
    corrupt_433_abort_434_and_overrun_502_leave_nothing,
    busy_420,
    timeouts_421,
    shutdown_422_lets_requests_in_flight_finish,
    shutdown_deadline_ends_a_stalled_upload,
    pipelined_requests_answered_in_order,
    large_file_and_resume,
    disconnect_mid_upload_leaves_nothing,
    hostile_input_never_kills_the_server,
    read_only_server_leaves_its_folder_unchanged,
);

const MTIME: &str = "2024-03-01T08:00:00Z";

fn mtime() -> SystemTime {
    let line = format!("0 {MTIME} x\n");
    let entry = decode_entry(line.as_bytes()).expect("an entry").0;
    entry.mtime.to_system_time().expect("a representable time")
}

/// Writes the brief's files: its three names, an empty file and every octet value.
fn seed(server: &Server) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), pattern(1000 + i * 777)))
        .collect();
    files.push(("empty".into(), Vec::new()));
    files.push(("bytes.bin".into(), every_byte()));
    for (name, data) in &files {
        server.write_file_with_mtime(name, data, mtime());
    }
    files
}

fn expect_ok_put(reply: Reply, data: &[u8]) {
    assert_eq!(
        reply,
        Reply::PutOk {
            size: data.len() as u64,
            digest: Digest::of(data)
        },
        "expected ok put"
    );
}

fn greeting_and_dir(imp: Impl) {
    let server = common::start(imp);
    let mut files = seed(&server);
    // Not listed: a dotfile, a folder, a symbolic link (DIR-2).
    server.write_file(".hidden", b"x");
    std::fs::create_dir(server.root.join("folder")).expect("mkdir");
    std::os::unix::fs::symlink("bytes.bin", server.root.join("link")).expect("symlink");

    let mut s = RawSession::connect(server.addr);
    let line = s.read_line_str();
    assert_eq!(
        format!("{line}\n").into_bytes(),
        ferry_wire::tree::offer(
            Greeting::new(Limits::default())
                .with_min_rate(Some(ferry_wire::limits::DEFAULT_MIN_RATE))
        )
        .expect("offered once")
        .to_bytes()
    );

    s.send_request(&Request::Dir);
    assert_eq!(
        s.read_reply(),
        Reply::DirOk {
            count: files.len() as u64
        }
    );
    files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (name, data) in &files {
        assert_eq!(s.read_line_str(), format!("{} {MTIME} {name}", data.len()));
    }
    s.send_request(&Request::Close);
    assert_eq!(s.read_reply(), Reply::Bye);
    s.expect_closed();
}

fn get_files_offsets_and_515(imp: Impl) {
    let server = common::start(imp);
    let files = seed(&server);
    std::os::unix::fs::symlink("bytes.bin", server.root.join("link")).expect("symlink");
    let mut s = server.session();
    for (name, data) in &files {
        let (got, end) = s.get(name).unwrap_or_else(|e| panic!("get {name}: {e:?}"));
        assert!(got == *data, "content of {name}");
        assert_eq!(end, PayloadEnd::Complete(Digest::of(data)), "{name}");
    }
    // From an offset: the digest still covers the whole file (GET-5, SUM-3).
    let bytes = every_byte();
    for offset in [3usize, 255, 256] {
        s.send(format!("get {offset} bytes.bin\n").as_bytes());
        assert!(matches!(s.read_reply(), Reply::GetOk { size: 256, .. }));
        let mut prefix = Hasher::new();
        prefix.update(&bytes[..offset]);
        let mut tail = Vec::new();
        let end = s.read_payload_with((256 - offset) as u64, prefix, |d| tail.extend_from_slice(d));
        assert_eq!(end, PayloadEnd::Complete(Digest::of(&bytes)));
        assert_eq!(tail, &bytes[offset..]);
    }
    s.send(b"get 257 bytes.bin\n");
    s.expect_err(515);
    s.send("get 0 天线15.docx\n".as_bytes());
    s.expect_err(511);
    s.send(b"get 0 link\n");
    s.expect_err(511);
    s.send(b"get 0 .ferry-staging\n");
    s.expect_err(510);
    // The session goes on.
    let (got, _) = s.get("empty").expect("get empty");
    assert!(got.is_empty());
}

fn put_wait_now_and_refusals_512_513_514(imp: Impl) {
    let server = common::start(imp);
    let mut s = server.session();
    let contents: Vec<Vec<u8>> = vec![pattern(70_000), every_byte(), Vec::new()];
    expect_ok_put(
        s.put_wait(NAMES[0], PutMode::New, &contents[0]),
        &contents[0],
    );
    expect_ok_put(
        s.put_now(NAMES[1], PutMode::New, &contents[1]),
        &contents[1],
    );
    expect_ok_put(
        s.put_now(NAMES[2], PutMode::New, &contents[2]),
        &contents[2],
    );
    for (name, data) in NAMES.iter().zip(&contents) {
        assert_eq!(server.read_file(name).as_deref(), Some(&data[..]), "{name}");
    }
    // 512: `new` over an existing name, with either flow; the eager payload is discarded.
    s.send_request(&Request::Put {
        size: 3,
        mode: PutMode::New,
        flow: ferry_wire::PutFlow::Wait,
        name: common::file_name(NAMES[0]),
    });
    s.expect_err(512);
    assert!(
        matches!(s.put_now(NAMES[1], PutMode::New, b"abc"), Reply::Err(e) if e.code.get() == 512)
    );
    // Replace works with both flows.
    expect_ok_put(
        s.put_wait(NAMES[0], PutMode::Replace, b"new content"),
        b"new content",
    );
    expect_ok_put(s.put_now(NAMES[1], PutMode::Replace, b"x"), b"x");
    assert_eq!(
        server.read_file(NAMES[0]).as_deref(),
        Some(&b"new content"[..])
    );
    assert_eq!(server.read_file(NAMES[1]).as_deref(), Some(&b"x"[..]));
    assert!(server.staging_is_empty());
    drop(s);

    // 513 above max-size, not at it (HELLO-7).
    let small = common::start_with(imp, |c| c.max_size = 10);
    let mut s = small.session();
    assert!(
        matches!(s.put_wait("big", PutMode::New, &[0; 11]), Reply::Err(e) if e.code.get() == 513)
    );
    assert!(
        matches!(s.put_now("big", PutMode::New, &[0; 11]), Reply::Err(e) if e.code.get() == 513)
    );
    expect_ok_put(s.put_wait("fits", PutMode::New, &[7; 10]), &[7; 10]);
    assert_eq!(small.visible_names(), ["fits"]);
    drop(s);

    // 514 on a read-only server, after the name check (PUT-2's order) and for both flows.
    // A read-only server never creates a staging area (SEC-10), but the harness waits for one
    // before it hands out the server: this folder has one already, which it leaves alone.
    let ro = common::start_with(imp, |c| {
        c.read_only = true;
        std::fs::create_dir(c.root.join(common::STAGING)).expect("mkdir");
    });
    let mut s = ro.session();
    assert!(matches!(s.put_wait("a", PutMode::New, b"abc"), Reply::Err(e) if e.code.get() == 514));
    assert!(
        matches!(s.put_now("a", PutMode::Replace, b"abc"), Reply::Err(e) if e.code.get() == 514)
    );
    s.send(b"put 3 new wait .a\n");
    s.expect_err(510);
    assert!(ro.visible_names().is_empty());
}

fn malformed_lines_500_501_502_503_510_511(imp: Impl) {
    let server = common::start(imp);
    server.write_file("a.txt", b"abc");
    let mut s = server.session();
    for (line, code) in [
        (&b"version 2\n"[..], 503), // first request, version not offered (VER-5)
        (b"version 1\n", 500),      // no longer the first request (VER-6)
        (b"DIR\n", 500),
        (b"dir now\n", 500),
        (b"get 01 a.txt\n", 500),
        (b"get 18446744073709551616 a.txt\n", 500),
        (b"get\t0 a.txt\n", 500),
        (b"fetch a.txt\n", 500),
        (b"\n", 500),
        (b"\x00\xff\n", 500),
        (b"get 0 ../etc/passwd\n", 510),
        (b"get 0 cafe\xcc\x81.txt\n", 510), // not NFC
        (b"get 0 \xff\xfe\n", 510),
        (b"get 0 \n", 510),
        (b"put 3 new wait \n", 510), // the empty name of a parsable put line (ERR-6)
        (b"get 0 b.txt\n", 511),
    ] {
        s.send(line);
        s.expect_err(code);
    }
    s.send(b"dir\r\n");
    assert_eq!(s.read_reply(), Reply::DirOk { count: 1 });
    s.read_line();
    drop(s);

    let mut s = server.session();
    s.send(b"version 1\n");
    assert_eq!(s.read_line_str(), "ok version 1");

    // Closing codes: 501 for 4096 octets without LF, 502 for put lines whose framing is
    // unknown (ERR-6), and nothing is read after them (ERR-8).
    let mut long = vec![b'x'; 4096];
    long.extend_from_slice(b"\ndir\n");
    let mut put_len = b"put 5 new later notes.txt\n".to_vec();
    put_len.extend_from_slice(b"dir\n");
    for (bytes, code) in [(long, 501), (put_len, 502), (b"put\ndir\n".to_vec(), 502)] {
        let mut s = server.session();
        s.send(&bytes);
        s.expect_err(code);
        s.expect_closed();
    }
}

fn eager_put_refused_keeps_the_session_in_sync(imp: Impl) {
    let server = common::start(imp);
    server.write_file("taken", b"original");
    let mut s = server.session();
    // A refused eager payload that looks like requests is read as data, never executed.
    let sneaky = b"dir\nclose\nget 0 taken\n";
    let mut bytes = put_now_bytes("taken", PutMode::New, sneaky);
    bytes.extend_from_slice(b"get 0 taken\n");
    s.send(&bytes);
    s.expect_err(512);
    assert!(matches!(s.read_reply(), Reply::GetOk { size: 8, .. }));
    let (data, end) = s.read_payload(8);
    assert_eq!(
        (data.as_slice(), end),
        (
            &b"original"[..],
            PayloadEnd::Complete(Digest::of(b"original"))
        )
    );
    // A bad name on an eager put: the payload is discarded first, then 510 (PUT-9).
    let mut bytes = b"put 5 new now .hidden\n".to_vec();
    encode_payload(b"hello", Digest::of(b"hello"), &mut bytes);
    bytes.extend_from_slice(b"dir\n");
    s.send(&bytes);
    s.expect_err(510);
    assert_eq!(s.read_reply(), Reply::DirOk { count: 1 });
    s.read_line();
    drop(s);
    assert_eq!(server.visible_names(), ["taken"]);

    // PUT-8: over max-eager, or any eager put when max-eager is 0: 502 and close, payload unread.
    for (max_eager, size) in [(4u64, 5usize), (0, 0)] {
        let server = common::start_with(imp, |c| c.max_eager = max_eager);
        let mut s = server.session();
        let data = vec![b'z'; size];
        s.send(&put_now_bytes("eager", PutMode::New, &data));
        s.expect_err(502);
        s.expect_closed();
        assert!(server.visible_names().is_empty());
        assert!(server.staging_is_empty());
    }
}

fn corrupt_433_abort_434_and_overrun_502_leave_nothing(imp: Impl) {
    let server = common::start(imp);
    let mut s = server.session();
    // 433: the digest does not match (PUT-11).
    s.send(b"put 5 new wait c.txt\n");
    assert_eq!(s.read_reply(), Reply::Go);
    let mut payload = Vec::new();
    encode_payload(b"hello", Digest::of(b"hellO"), &mut payload);
    s.send(&payload);
    s.expect_err(433);
    // 434: aborted mid-way, eager, and before the first chunk (PUT-15).
    s.send(b"put 5 new now a.txt\ndata 2\nheabort 430 changed\n");
    s.expect_err(434);
    s.send(b"put 5 new wait b.txt\n");
    assert_eq!(s.read_reply(), Reply::Go);
    s.send(b"abort 431\n");
    s.expect_err(434);
    assert!(server.visible_names().is_empty());
    assert!(server.staging_is_empty());
    // The session goes on.
    s.send(b"dir\n");
    assert_eq!(s.read_reply(), Reply::DirOk { count: 0 });
    // 502: a chunk that overruns the announced size, an early end, a bad frame (DATA-6).
    for bytes in [
        &b"put 3 new now o.txt\ndata 5\nhello"[..],
        b"put 3 new now o.txt\ndata 2\nhiend xxh3-128:99aa06d3014798d86001c324468d497f\n",
        b"put 3 new now o.txt\nDATA 3\nabc",
        b"put 3 new now o.txt\ndata 0\n",
    ] {
        let mut s = server.session();
        s.send(bytes);
        s.expect_err(502);
        s.expect_closed();
    }
    assert!(server.visible_names().is_empty());
    assert!(server.wait_staging_empty());
}

fn busy_420(imp: Impl) {
    let server = common::start_with(imp, |c| c.max_connections = 1);
    let mut first = server.session();
    let mut second = RawSession::connect(server.addr);
    assert_eq!(second.read_line_str(), "err 420 busy");
    second.expect_closed();
    first.send_request(&Request::Close);
    assert_eq!(first.read_reply(), Reply::Bye);
    first.expect_closed();
    drop(first);
    // The slot is free again once the first session has ended.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = RawSession::connect(server.addr);
        let line = s.read_line_str();
        if line.starts_with("ferry/1 ") {
            break;
        }
        assert_eq!(line, "err 420 busy");
        assert!(Instant::now() < deadline, "the slot was never freed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn timeouts_421(imp: Impl) {
    let server = common::start_with(imp, |c| {
        c.idle_timeout = Duration::from_secs(1);
        c.stall_timeout = Duration::from_secs(1);
    });
    let started = Instant::now();
    let mut idle = server.session();
    let mut line = server.session();
    line.send(b"di");
    let mut payload = server.session();
    payload.send(b"put 10 new wait x.bin\n");
    assert_eq!(payload.read_reply(), Reply::Go);
    payload.send(b"data 10\nhel");
    let mut answered = server.session();
    answered.send(b"dir\n");
    assert_eq!(answered.read_reply(), Reply::DirOk { count: 0 });
    for s in [&mut idle, &mut line, &mut payload, &mut answered] {
        s.expect_err(421);
        s.expect_closed();
    }
    // HELLO-7: never sooner than announced.
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(server.visible_names().is_empty());
    assert!(server.wait_staging_empty());
}

fn shutdown_422_lets_requests_in_flight_finish(imp: Impl) {
    let server = common::start_with(imp, |c| c.shutdown_grace = Duration::from_secs(5));
    let big = pattern(8 << 20);
    server.write_file("big.bin", &big);
    let mut idle = server.session();
    let mut upload = server.session();
    upload.send(b"put 10 new wait up.bin\n");
    assert_eq!(upload.read_reply(), Reply::Go);
    upload.send(b"data 5\nhello");
    let mut download = server.session();
    download.send(b"get 0 big.bin\n");
    assert!(matches!(download.read_reply(), Reply::GetOk { .. }));

    server.shutdown_handle().trigger();
    idle.expect_err(422);
    idle.expect_closed();
    // The requests in flight finish (CLOSE-8), then 422.
    let (data, end) = download.read_payload(big.len() as u64);
    assert!(data == big);
    assert_eq!(end, PayloadEnd::Complete(Digest::of(&big)));
    download.expect_err(422);
    download.expect_closed();
    // The second chunk, and `end` with the digest of the whole file.
    let rest = {
        let mut r = b"data 5\nworld".to_vec();
        r.extend_from_slice(format!("end {}\n", Digest::of(b"helloworld")).as_bytes());
        r
    };
    upload.send(&rest);
    expect_ok_put(upload.read_reply(), b"helloworld");
    upload.expect_err(422);
    upload.expect_closed();
    assert_eq!(
        server.read_file("up.bin").as_deref(),
        Some(&b"helloworld"[..])
    );
    let addr = server.addr;
    server.stop().expect("the server stopped cleanly");
    // No longer accepting: the connection is refused, or closed without a greeting.
    if let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut buf = [0u8; 64];
        let n = std::io::Read::read(&mut stream, &mut buf).unwrap_or(0);
        let got = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || got.starts_with("err 422"), "{got:?}");
    }
}

fn shutdown_deadline_ends_a_stalled_upload(imp: Impl) {
    let server = common::start_with(imp, |c| c.shutdown_grace = Duration::from_millis(500));
    let mut upload = server.session();
    upload.send(b"put 10 new wait up.bin\n");
    assert_eq!(upload.read_reply(), Reply::Go);
    upload.send(b"data 5\nhello");
    let started = Instant::now();
    server.shutdown_handle().trigger();
    // CLOSE-9: the staging file goes, 422, close — at the deadline, not before.
    upload.expect_err(422);
    upload.expect_closed();
    assert!(started.elapsed() >= Duration::from_millis(450));
    assert!(server.visible_names().is_empty());
    assert!(server.staging_is_empty());
    server.stop().expect("the server stopped cleanly");
}

fn pipelined_requests_answered_in_order(imp: Impl) {
    let server = common::start(imp);
    server.write_file("a.txt", b"aaa");
    server.write_file("b.txt", b"bb");
    let mut s = server.session();
    let mut batch = b"dir\nget 0 a.txt\nget 0 missing\n".to_vec();
    batch.extend_from_slice(&put_now_bytes("new.txt", PutMode::New, b"xyz"));
    batch.extend_from_slice(b"get 0 new.txt\nversion 1\nDIR\nget 1 b.txt\nclose\ndir\n");
    s.send(&batch);
    assert_eq!(s.read_reply(), Reply::DirOk { count: 2 });
    s.read_line();
    s.read_line();
    assert!(matches!(s.read_reply(), Reply::GetOk { size: 3, .. }));
    assert_eq!(s.read_payload(3).0, b"aaa");
    s.expect_err(511);
    expect_ok_put(s.read_reply(), b"xyz");
    assert!(matches!(s.read_reply(), Reply::GetOk { size: 3, .. }));
    assert_eq!(s.read_payload(3).0, b"xyz");
    s.expect_err(500);
    s.expect_err(500);
    assert!(matches!(s.read_reply(), Reply::GetOk { size: 2, .. }));
    let mut prefix = Hasher::new();
    prefix.update(b"b");
    let end = s.read_payload_with(1, prefix, |d| assert_eq!(d, b"b"));
    assert_eq!(end, PayloadEnd::Complete(Digest::of(b"bb")));
    // Nothing after `close` is executed (CLOSE-1).
    assert_eq!(s.read_reply(), Reply::Bye);
    s.expect_closed();

    // CLOSE-5: requests received before EOF are still answered, without `bye`.
    let mut s = server.session();
    s.send(b"get 0 a.txt\n");
    s.shutdown_write();
    assert!(matches!(s.read_reply(), Reply::GetOk { size: 3, .. }));
    assert_eq!(s.read_payload(3).0, b"aaa");
    s.expect_closed();
}

fn large_file_and_resume(imp: Impl) {
    let server = common::start(imp);
    let data = pattern(64 << 20);
    let digest = Digest::of(&data);
    let mut s = server.session();
    s.send(b"put 67108864 new wait big.bin\n");
    assert_eq!(s.read_reply(), Reply::Go);
    let mut wire = Vec::with_capacity(data.len() + 4096);
    encode_payload(&data, digest, &mut wire);
    s.send(&wire);
    drop(wire);
    assert_eq!(
        s.read_reply(),
        Reply::PutOk {
            size: data.len() as u64,
            digest
        }
    );
    assert!(server.read_file("big.bin").is_some_and(|f| f == data));

    let (got, end) = s.get("big.bin").expect("get");
    assert!(got == data);
    assert_eq!(end, PayloadEnd::Complete(digest));
    // Resume from 40 MiB: the tail, and the digest of the whole file.
    let offset = 40 << 20;
    s.send(format!("get {offset} big.bin\n").as_bytes());
    assert!(matches!(s.read_reply(), Reply::GetOk { size, .. } if size == data.len() as u64));
    let mut prefix = Hasher::new();
    prefix.update(&data[..offset]);
    let mut tail = Vec::new();
    let end = s.read_payload_with((data.len() - offset) as u64, prefix, |d| {
        tail.extend_from_slice(d)
    });
    assert_eq!(end, PayloadEnd::Complete(digest));
    assert!(tail == data[offset..]);
}

fn disconnect_mid_upload_leaves_nothing(imp: Impl) {
    let server = common::start(imp);
    let data = pattern(3 << 20);
    let mut wire = Vec::new();
    encode_payload(&data, Digest::of(&data), &mut wire);
    // After `go`, halfway through the second chunk.
    let mut s = server.session();
    s.send(b"put 3145728 new wait gone.bin\n");
    assert_eq!(s.read_reply(), Reply::Go);
    s.send(&wire[..(3 << 19)]);
    drop(s);
    // Eager, in the middle of a chunk head.
    let mut s = server.session();
    s.send(b"put 1000 replace now gone2.bin\ndata 500\n");
    s.send(&data[..500]);
    s.send(b"da");
    drop(s);
    assert!(server.wait_staging_empty(), "staging debris left");
    assert!(server.visible_names().is_empty());
    // The server goes on.
    let mut s = server.session();
    s.send(b"dir\n");
    assert_eq!(s.read_reply(), Reply::DirOk { count: 0 });
}

fn hostile_input_never_kills_the_server(imp: Impl) {
    let server = common::start(imp);
    let mut noise = Vec::with_capacity(64 * 1024);
    let mut x: u32 = 0x1234_5678;
    for _ in 0..64 * 1024 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.push((x >> 24) as u8);
    }
    let inputs: Vec<Vec<u8>> = vec![
        noise,
        b"put 18446744073709551615 new wait x\n".to_vec(),
        b"put 18446744073709551616 new wait x\n".to_vec(),
        b"put 5 new now x\ndata 5\n\x00\x01\x02\x03\x04end xxh3-128:00\n".to_vec(),
        b"get 0 x\r\r\n".to_vec(),
        [b"dir\n".repeat(2000), b"\xff".repeat(5000)].concat(),
        b"version 99999\nversion 100000\n".to_vec(),
    ];
    for input in inputs {
        let mut s = server.session();
        // The server may close before reading all of it.
        let _ = s.stream().write_all(&input);
        let _ = s.stream().shutdown(std::net::Shutdown::Write);
        // It answers something and then closes; it never hangs.
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(Some(_)) = s.try_read_line() {
            assert!(Instant::now() < deadline, "the server keeps talking");
        }
    }
    let mut s = server.session();
    s.send(b"dir\n");
    assert_eq!(s.read_reply(), Reply::DirOk { count: 0 });
    assert!(server.wait_staging_empty());
}

/// SEC-10: a read-only server serves its folder and leaves it byte for byte as it was — no
/// staging area created, locked, chmod-ed or cleaned (an operator's file in an existing one
/// stays) — after a session that lists, gets and tries puts of both flows.
fn read_only_server_leaves_its_folder_unchanged(imp: Impl) {
    use std::os::unix::fs::PermissionsExt as _;
    common::init_logging();
    let tmp = tempfile::tempdir().expect("tempdir");
    let with_staging = tmp.path().join("served");
    std::fs::create_dir(&with_staging).expect("mkdir");
    std::fs::write(with_staging.join("a.txt"), b"alpha").expect("write");
    let staging = with_staging.join(common::STAGING);
    std::fs::create_dir(&staging).expect("mkdir");
    std::fs::write(staging.join("operator-file"), b"keep me").expect("write");
    std::fs::write(staging.join("upload-00000000deadbeef"), b"debris?").expect("write");
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let bare = tmp.path().join("bare");
    std::fs::create_dir(&bare).expect("mkdir");
    std::fs::write(bare.join("a.txt"), b"alpha").expect("write");
    // Timestamps of the writes above must be in the past, so that a change shows.
    std::thread::sleep(Duration::from_millis(20));

    for folder in [&with_staging, &bare] {
        let before = ferry_test_support::folder_state(folder);
        let server = common::start_with(imp, |c| {
            c.root = folder.clone();
            c.read_only = true;
        });
        let addr = server.addr;
        let mut s = RawSession::connect(addr);
        s.expect_greeting();
        s.send_request(&Request::Dir);
        assert_eq!(s.read_reply(), Reply::DirOk { count: 1 });
        let entry = s.read_line_str();
        assert!(
            entry.starts_with("5 ") && entry.ends_with(" a.txt"),
            "{entry}"
        );
        let (data, end) = s.get("a.txt").expect("get");
        assert_eq!(
            (data.as_slice(), end),
            (&b"alpha"[..], PayloadEnd::Complete(Digest::of(b"alpha")))
        );
        s.send(b"put 5 new wait notes.txt\n");
        s.expect_err(514);
        assert!(
            matches!(s.put_now("a.txt", PutMode::Replace, b"abc"), Reply::Err(e) if e.code.get() == 514)
        );
        s.send_request(&Request::Close);
        assert_eq!(s.read_reply(), Reply::Bye);
        s.expect_closed();
        drop(s);
        server.stop().expect("the server ran and stopped");
        assert_eq!(
            ferry_test_support::folder_state(folder),
            before,
            "{} on {}",
            folder.display(),
            imp
        );
    }
    assert!(!bare.join(common::STAGING).exists());
    assert_eq!(
        std::fs::read(staging.join("operator-file")).expect("the operator's file stays"),
        b"keep me"
    );
}
