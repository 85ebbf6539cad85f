//! Every error reply a request can get from the threads server, over loopback: the code, whether
//! the session goes on or closes, and that a failed upload leaves nothing behind.

use std::time::Duration;

use ferry_test_support::{
    Impl, PayloadEnd, RawSession, TestServer, TinyTmpfs, file_name, put_now_bytes,
};
use ferry_wire::{Digest, PutFlow, PutMode, Reply, Request, encode_payload};

/// Sends `line` on a fresh session and expects `err CODE TEXT` and the close.
#[track_caller]
fn expect_closing(server: &TestServer, bytes: &[u8], reply: &str) {
    let mut s = server.session();
    s.send(bytes);
    s.expect_line(reply);
    s.expect_closed();
}

/// The session still answers.
#[track_caller]
fn still_usable(s: &mut RawSession) {
    s.send(b"dir\n");
    let Reply::DirOk { count } = s.read_reply() else {
        panic!("expected ok dir")
    };
    for _ in 0..count {
        s.read_line();
    }
}

fn malformed_lines_get_500_and_the_session_goes_on(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let lines: &[&[u8]] = &[
        b"DIR\n",
        b"dir now\n",
        b" dir\n",
        b"dir \n",
        b"\n",
        b"\r\n",
        b"get 01 a\n",
        b"get -1 a\n",
        b"get +1 a\n",
        b"get 18446744073709551616 a\n",
        b"get 0\n",
        b"get  0 a\n",
        b"get\t0 a\n",
        b"GET 0 a\n",
        b"fetch a\n",
        b"version 01\n",
        b"version 0\n",
        b"version 100000\n",
        b"version\n",
        b"close now\n",
        b"ok dir 0\n",
        b"data 5\n",
        b"end xxh3-128:99aa06d3014798d86001c324468d497f\n",
        b"putt 5 new wait a\n",
        b"\x00\x01\x02\n",
        b"\xff\xfe\xfd\n",
        b"dir\x00\n",
        b"\xc3\x28\n",
        b"dir\r\r\n",
    ];
    let mut s = server.session();
    for line in lines {
        s.send(line);
        let reply = s.read_line();
        assert_eq!(
            reply,
            b"err 500 syntax",
            "for {:?}",
            String::from_utf8_lossy(line)
        );
    }
    still_usable(&mut s);
    // The same lines pipelined in one write give the same replies, in order.
    s.send(&lines.concat());
    for line in lines {
        assert_eq!(
            s.read_line(),
            b"err 500 syntax",
            "for {:?}",
            String::from_utf8_lossy(line)
        );
    }
    still_usable(&mut s);
}

fn random_garbage_never_panics_or_hangs_the_server(imp: Impl) {
    let server = TestServer::start_impl(imp);
    // A deterministic xorshift stream of arbitrary octets with a LF now and then.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..20 {
        let mut garbage = Vec::new();
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = (x >> 24) as u8;
            garbage.push(if b.is_multiple_of(17) { b'\n' } else { b });
        }
        let mut s = server.session();
        let _ = s.try_send(&garbage);
        let _ = s.try_send(b"\nclose\n");
        // Whatever the replies, the session ends (bye or a closing error) without a hang.
        s.set_timeout(Duration::from_secs(5));
        let mut lines = 0;
        while let Ok(Some(line)) = s.try_read_line() {
            lines += 1;
            assert!(
                line.starts_with(b"err ") || line == b"bye" || line.starts_with(b"ok "),
                "round {round}: {:?}",
                String::from_utf8_lossy(&line)
            );
        }
        assert!(lines > 0, "round {round}: no reply at all");
    }
    let mut s = server.session();
    still_usable(&mut s);
    assert!(server.wait_staging_empty());
}

fn over_long_lines_get_501_and_the_close(imp: Impl) {
    let server = TestServer::start_impl(imp);
    // 4096 octets without LF.
    expect_closing(&server, &[b'a'; 4096], "err 501 line-too-long");
    // A complete line of 4096 octets (LF included) is merely malformed...
    let mut s = server.session();
    let mut line = vec![b'a'; 4095];
    line.push(b'\n');
    s.send(&line);
    s.expect_line("err 500 syntax");
    // ...one of 4097 is too long, even when it would otherwise be a get.
    let mut long_get = b"get 0 ".to_vec();
    long_get.extend(std::iter::repeat_n(b'n', 4090));
    long_get.push(b'\n');
    expect_closing(&server, &long_get, "err 501 line-too-long");
    // The server goes on serving.
    still_usable(&mut server.session());
}

fn put_lines_that_do_not_parse_up_to_the_name_get_502_and_the_close(imp: Impl) {
    let server = TestServer::start_impl(imp);
    for line in [
        &b"put 5 new later notes.txt\n"[..],
        b"put x new wait a\n",
        b"put 05 new wait a\n",
        b"put 5 old wait a\n",
        b"put 5  new wait a\n",
        b"put 18446744073709551616 new wait a\n",
        b"put 5 new wait\n",
        b"put \n",
        b"put\n",
        b"put\r\n",
    ] {
        expect_closing(&server, line, "err 502 protocol");
    }
    still_usable(&mut server.session());
}

/// ERR-6: a put line that parses up to its name but whose name is empty is a bad name (510),
/// not a framing problem: the head says where an eager payload ends.
fn put_lines_with_an_empty_name_get_510_and_the_session_goes_on(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let mut s = server.session();
    s.send(b"put 5 new wait \n");
    assert_eq!(s.read_line(), b"err 510 bad-name");
    let end = format!("end {}\n", Digest::of(b"hello"));
    s.send(&[&b"put 5 new now \r\ndata 5\nhello"[..], end.as_bytes()].concat());
    assert_eq!(s.read_line(), b"err 510 bad-name");
    still_usable(&mut s);
    assert!(server.visible_names().is_empty());
}

fn eager_puts_above_max_eager_get_502_without_the_payload_being_read(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| c.max_eager = 4);
    expect_closing(
        &server,
        &put_now_bytes("notes.txt", PutMode::New, b"hello"),
        "err 502 protocol",
    );
    // Also with a bad name: the size alone decides (PUT-8).
    expect_closing(
        &server,
        b"put 5 new now .hidden\ndata 5\nhello",
        "err 502 protocol",
    );
    let mut s = server.session();
    assert!(matches!(
        s.put_now("four", PutMode::New, b"four"),
        Reply::PutOk { .. }
    ));
    drop(server);

    let server = TestServer::with_impl_config(imp, |c| c.max_eager = 0);
    expect_closing(
        &server,
        &put_now_bytes("empty", PutMode::New, b""),
        "err 502 protocol",
    );
    assert!(server.visible_names().is_empty());
}

fn framing_violations_in_uploads_get_502_and_leave_nothing(imp: Impl) {
    let server = TestServer::start_impl(imp);
    server.write_file("keep", b"old content");
    let hello = Digest::of(b"hello");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("zero-length chunk", b"data 0\n".to_vec()),
        ("chunk above max-chunk", b"data 1048577\n".to_vec()),
        ("leading zero", b"data 05\nhello".to_vec()),
        ("overrun: more octets than SIZE", b"data 6\nhello!".to_vec()),
        (
            "early end: fewer octets than SIZE",
            format!("data 2\nheend {hello}\n").into_bytes(),
        ),
        ("end right away", format!("end {hello}\n").into_bytes()),
        ("a request instead of a frame", b"dir\n".to_vec()),
        ("garbage frame line", b"hello\n".to_vec()),
        (
            "upper-case digest",
            b"data 5\nhelloend xxh3-128:B5E9C1AD071B3E7FC779CFAA5E523818\n".to_vec(),
        ),
        ("over-long frame line", vec![b'd'; 5000]),
    ];
    for (what, payload) in &cases {
        for (flow, mode, name) in [
            (PutFlow::Wait, PutMode::New, "new-file"),
            (PutFlow::Now, PutMode::Replace, "keep"),
        ] {
            let mut s = server.session();
            s.send_request(&Request::Put {
                size: 5,
                mode,
                flow,
                name: file_name(name),
            });
            if flow == PutFlow::Wait {
                s.expect_line("go");
            }
            s.send(payload);
            let reply = s.read_line();
            assert_eq!(reply, b"err 502 protocol", "{what} ({flow:?})");
            s.expect_closed();
            assert!(server.wait_staging_empty(), "{what}: staging debris");
            assert_eq!(server.visible_names(), ["keep"], "{what}");
            assert_eq!(
                server.read_file("keep").as_deref(),
                Some(&b"old content"[..]),
                "{what}"
            );
        }
    }
}

fn bad_names_get_510_before_storage_is_touched(imp: Impl) {
    let server = TestServer::start_impl(imp);
    server.write_file("天线15.doc", b"hello");
    let bad: Vec<Vec<u8>> = vec![
        b".ferry-staging".to_vec(),
        b".hidden".to_vec(),
        b".".to_vec(),
        b"..".to_vec(),
        b"../etc/passwd".to_vec(),
        b"/etc/passwd".to_vec(),
        b"a/b".to_vec(),
        b"a\\b".to_vec(),
        b"tab\there".to_vec(),
        b"trail ".to_vec(),
        b" lead".to_vec(),
        b"cafe\xcc\x81.txt".to_vec(),
        b"\xff\xfe.txt".to_vec(),
        b"nul\x00byte".to_vec(),
        b"del\x7f".to_vec(),
        "c1\u{85}".as_bytes().to_vec(),
        vec![b'n'; 256],
        b"".to_vec(),
    ];
    let mut s = server.session();
    for name in &bad {
        let mut line = b"get 0 ".to_vec();
        line.extend_from_slice(name);
        line.push(b'\n');
        s.send(&line);
        assert_eq!(
            s.read_line(),
            b"err 510 bad-name",
            "get {:?}",
            String::from_utf8_lossy(name)
        );
        if name.is_empty() {
            continue; // `put … ` without a name is a 502 (ERR-7), tested elsewhere
        }
        let mut line = b"put 5 new wait ".to_vec();
        line.extend_from_slice(name);
        line.push(b'\n');
        s.send(&line);
        assert_eq!(
            s.read_line(),
            b"err 510 bad-name",
            "put {:?}",
            String::from_utf8_lossy(name)
        );
        // With flow now the payload follows and is discarded (PUT-9).
        let mut line = b"put 5 replace now ".to_vec();
        line.extend_from_slice(name);
        line.push(b'\n');
        encode_payload(b"hello", Digest::of(b"hello"), &mut line);
        s.send(&line);
        assert_eq!(
            s.read_line(),
            b"err 510 bad-name",
            "put now {:?}",
            String::from_utf8_lossy(name)
        );
    }
    // A valid name of 255 octets is fine (and simply not there).
    s.send(format!("get 0 {}\n", "n".repeat(255)).as_bytes());
    s.expect_line("err 511 not-found");
    still_usable(&mut s);
    assert_eq!(server.visible_names(), ["天线15.doc"]);
    assert!(server.staging_is_empty());
}

fn traversal_attempts_and_symlinks_are_refused(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("secret"), b"outside").expect("write");
    let passwd_before = std::fs::read("/etc/passwd").ok();
    std::os::unix::fs::symlink("/etc", server.root.join("etc")).expect("symlink");
    std::os::unix::fs::symlink("/etc/passwd", server.root.join("passwd")).expect("symlink");
    std::os::unix::fs::symlink(outside.path(), server.root.join("outdir")).expect("symlink");
    std::os::unix::fs::symlink(outside.path().join("secret"), server.root.join("secret"))
        .expect("symlink");

    let mut s = server.session();
    for (line, reply) in [
        ("get 0 ..", "err 510 bad-name"),
        ("get 0 ../../etc/passwd", "err 510 bad-name"),
        ("get 0 /etc/passwd", "err 510 bad-name"),
        ("get 0 etc/passwd", "err 510 bad-name"),
        ("get 0 a/b", "err 510 bad-name"),
        ("get 0 etc", "err 511 not-found"),
        ("get 0 passwd", "err 511 not-found"),
        ("get 0 secret", "err 511 not-found"),
        ("get 0 outdir", "err 511 not-found"),
        ("put 1 new wait passwd", "err 512 exists"),
        ("put 1 new wait etc", "err 512 exists"),
        ("put 1 replace wait ../x", "err 510 bad-name"),
        ("put 1 replace wait outdir/x", "err 510 bad-name"),
    ] {
        s.send(format!("{line}\n").as_bytes());
        s.expect_line(reply);
    }
    // The listing shows none of the links.
    s.send(b"dir\n");
    s.expect_line("ok dir 0");

    // replace of a link replaces the link itself, never its target (SEC-3).
    assert!(matches!(
        s.put_wait("secret", PutMode::Replace, b"new"),
        Reply::PutOk { .. }
    ));
    assert!(matches!(
        s.put_now("outdir", PutMode::Replace, b"file"),
        Reply::PutOk { .. }
    ));
    assert_eq!(
        std::fs::read(outside.path().join("secret")).expect("read"),
        b"outside"
    );
    assert!(outside.path().is_dir());
    assert_eq!(
        std::fs::read_dir(outside.path()).expect("read_dir").count(),
        1
    );
    let meta = std::fs::symlink_metadata(server.root.join("secret")).expect("lstat");
    assert!(meta.file_type().is_file());
    assert_eq!(server.read_file("secret"), Some(b"new".to_vec()));
    assert_eq!(std::fs::read("/etc/passwd").ok(), passwd_before);
    let (data, end) = s.get("secret").expect("the new regular file");
    assert_eq!(
        (data.as_slice(), end),
        (&b"new"[..], PayloadEnd::Complete(Digest::of(b"new")))
    );
}

fn not_found_for_missing_names_folders_links_and_special_files(imp: Impl) {
    let server = TestServer::start_impl(imp);
    server.write_file("天线15.doc", b"hello");
    std::fs::create_dir(server.root.join("folder")).expect("mkdir");
    std::os::unix::fs::symlink("天线15.doc", server.root.join("link")).expect("symlink");
    let status = std::process::Command::new("mkfifo")
        .arg(server.root.join("fifo"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let mut s = server.session();
    for name in ["missing.txt", "天线15.DOC", "folder", "link", "fifo"] {
        s.send(format!("get 0 {name}\n").as_bytes());
        s.expect_line("err 511 not-found");
    }
    // Neither a folder nor a FIFO is replaceable (PUT-2).
    for name in ["folder", "fifo"] {
        s.send(format!("put 1 replace wait {name}\n").as_bytes());
        s.expect_line("err 512 exists");
    }
}

fn refused_eager_put_is_discarded_and_the_session_stays_in_sync(imp: Impl) {
    let server = TestServer::start_impl(imp);
    server.write_file("天线15.doc", b"hello");
    let mut s = server.session();
    s.send("put 3 new wait 天线15.doc\n".as_bytes());
    s.expect_line("err 512 exists");
    // The refused eager payload holds octets that look like requests: none may run.
    let evil = b"close\nput 1 new now x\ndata 1\nx".to_vec();
    let mut batch = put_now_bytes("天线15.doc", PutMode::New, &evil);
    batch.extend_from_slice(b"dir\n");
    batch.extend_from_slice(&put_now_bytes("other", PutMode::New, b"abc"));
    s.send(&batch);
    s.expect_line("err 512 exists");
    s.expect_line("ok dir 1");
    s.read_line();
    s.expect_line("ok put 3 xxh3-128:06b05ab6733a618578af5f94892f3950");
    assert_eq!(server.read_file("天线15.doc"), Some(b"hello".to_vec()));
    assert_eq!(server.visible_names(), ["other", "天线15.doc"]);
    // A refused eager put whose trailer is an abort or a wrong digest still gets the refusal.
    let mut line = Request::Put {
        size: 5,
        mode: PutMode::New,
        flow: PutFlow::Now,
        name: file_name("天线15.doc"),
    }
    .to_bytes();
    line.extend_from_slice(b"data 2\nheabort 430 changed\n");
    s.send(&line);
    s.expect_line("err 512 exists");
    assert!(server.staging_is_empty());
}

fn too_large_puts_get_513(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| c.max_size = 10);
    let mut s = server.session();
    s.send(b"put 11 new wait big.bin\n");
    s.expect_line("err 513 too-large");
    s.send(b"put 18446744073709551615 new wait big.bin\n");
    s.expect_line("err 513 too-large");
    assert!(matches!(
        s.put_wait("ten.bin", PutMode::New, b"0123456789"),
        Reply::PutOk { .. }
    ));
    assert_eq!(
        s.put_now("big.bin", PutMode::New, b"0123456789a"),
        Reply::Err(err(513))
    );
    still_usable(&mut s);
    assert_eq!(server.visible_names(), ["ten.bin"]);
}

fn err(code: u16) -> ferry_wire::ErrorReply {
    let code = ferry_wire::Code::new(code).expect("code");
    ferry_wire::ErrorReply::new(code, code.name().expect("known code"))
}

fn read_only_server_refuses_every_put_with_514(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| c.read_only = true);
    server.write_file("天线15.doc", b"hello");
    let mut s = server.session();
    s.send(b"put 5 new wait notes.txt\n");
    s.expect_line("err 514 read-only");
    assert_eq!(
        s.put_now("天线15.doc", PutMode::Replace, b"abc"),
        Reply::Err(err(514))
    );
    // The name check comes first (PUT-2).
    s.send(b"put 5 new wait .x\n");
    s.expect_line("err 510 bad-name");
    let (data, _) = s.get("天线15.doc").expect("gets still work");
    assert_eq!(data, b"hello");
    assert_eq!(server.visible_names(), ["天线15.doc"]);
    assert!(server.staging_is_empty());
}

fn corrupt_and_aborted_uploads_get_433_and_434_and_leave_nothing(imp: Impl) {
    let server = TestServer::start_impl(imp);
    server.write_file("keep", b"old");
    let mut s = server.session();
    for (mode, name) in [(PutMode::New, "notes.txt"), (PutMode::Replace, "keep")] {
        for flow in [PutFlow::Wait, PutFlow::Now] {
            // Corrupt: the octets are "hellO", the digest that of "hello".
            s.send_request(&Request::Put {
                size: 5,
                mode,
                flow,
                name: file_name(name),
            });
            if flow == PutFlow::Wait {
                s.expect_line("go");
            }
            s.send(b"data 5\nhellOend xxh3-128:b5e9c1ad071b3e7fc779cfaa5e523818\n");
            s.expect_line("err 433 corrupt");

            // Aborted, after some octets, whatever the code.
            s.send_request(&Request::Put {
                size: 10,
                mode,
                flow,
                name: file_name(name),
            });
            if flow == PutFlow::Wait {
                s.expect_line("go");
            }
            s.send(b"data 4\nhellabort 431 storage local read error\n");
            s.expect_line("err 434 aborted");

            // Aborted before any octet.
            s.send_request(&Request::Put {
                size: 10,
                mode,
                flow,
                name: file_name(name),
            });
            if flow == PutFlow::Wait {
                s.expect_line("go");
            }
            s.send(b"abort 999\n");
            s.expect_line("err 434 aborted");
            assert!(server.staging_is_empty());
            assert_eq!(server.visible_names(), ["keep"]);
            assert_eq!(server.read_file("keep"), Some(b"old".to_vec()));
        }
    }
    still_usable(&mut s);
}

/// 432 both ways a server can run out of space: the free-space check before `go` (and before
/// an eager payload is accepted), and a write that fails midway (the rest of the payload is
/// discarded, then 432). Needs permission to mount a tmpfs; skipped (with a note) otherwise.
fn no_space_gets_432(imp: Impl) {
    let Some(fs) = TinyTmpfs::mount("4m") else {
        // CI has these capabilities (root, tmpfs, the ferry binary): never skip there.
        assert!(
            std::env::var_os("CI").is_none(),
            "skipped: cannot mount a tmpfs here"
        );
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    let served = fs.path.join("served");
    let server = TestServer::with_impl_config(imp, |c| {
        c.root = served.clone();
        c.max_eager = 8 << 20;
    });
    let mut s = server.session();
    s.send(b"put 5000000 new wait big\n");
    s.expect_line("err 432 no-space");
    let big = vec![1u8; 5_000_000];
    assert_eq!(s.put_now("big", PutMode::New, &big), Reply::Err(err(432)));

    // Midway: the check passes, then something else fills the file system.
    let data = vec![2u8; 3 << 20];
    s.send(b"put 3145728 new wait midway\n");
    s.expect_line("go");
    fs.fill("filler");
    let mut payload = Vec::new();
    encode_payload(&data, Digest::of(&data), &mut payload);
    s.send(&payload);
    s.expect_line("err 432 no-space");
    assert!(server.staging_is_empty());
    assert!(server.visible_names().is_empty());

    std::fs::remove_file(fs.path.join("filler")).expect("remove filler");
    assert!(matches!(
        s.put_wait("midway", PutMode::New, &data),
        Reply::PutOk { .. }
    ));
    drop(s);
    drop(server);
}

/// A mount made for one test, undone on drop.
struct Mounted(std::path::PathBuf);

impl Mounted {
    fn run(args: &[&str], target: &std::path::Path) -> Option<Self> {
        let ok = std::process::Command::new("mount")
            .args(args)
            .arg(target)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mounted(target.to_owned()))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A read that fails after `ok get`: the payload ends with `abort 431` and the session goes
/// on (GET-7). The failing file is a sysfs attribute bind-mounted into the served folder: it
/// stats as a regular file of 4096 octets, and reading it fails with EINVAL. Needs permission
/// to mount; skipped (with a note) otherwise.
fn a_read_error_after_ok_get_gets_abort_431(imp: Impl) {
    const SOURCE: &str = "/sys/class/net/lo/speed";
    if std::fs::read(SOURCE).is_ok() {
        // CI has these capabilities (root, tmpfs, the ferry binary): never skip there.
        assert!(
            std::env::var_os("CI").is_none(),
            "skipped: {SOURCE} is readable here"
        );
        eprintln!("skipped: {SOURCE} is readable here");
        return;
    }
    let server = TestServer::start_impl(imp);
    let target = server.root.join("broken");
    server.write_file("broken", b"");
    let Some(_mount) = Mounted::run(&["--bind", SOURCE], &target) else {
        // CI has these capabilities (root, tmpfs, the ferry binary): never skip there.
        assert!(
            std::env::var_os("CI").is_none(),
            "skipped: cannot bind-mount here"
        );
        eprintln!("skipped: cannot bind-mount here");
        return;
    };
    let mut s = server.session();
    s.send(b"get 0 broken\n");
    let Reply::GetOk { size, .. } = s.read_reply() else {
        panic!("ok get")
    };
    assert_eq!(size, 4096);
    let (data, end) = s.read_payload(size);
    assert!(
        data.is_empty(),
        "no chunk is sent before its data was read (DATA-12)"
    );
    assert_eq!(end, PayloadEnd::Aborted(err(431)));
    still_usable(&mut s);
    drop(s);
    drop(server);
}

/// A file system that turns read-only under the server: the upload cannot be staged, 514.
/// Needs permission to mount; skipped (with a note) otherwise.
fn a_read_only_file_system_gets_514(imp: Impl) {
    let Some(fs) = TinyTmpfs::mount("1m") else {
        // CI has these capabilities (root, tmpfs, the ferry binary): never skip there.
        assert!(
            std::env::var_os("CI").is_none(),
            "skipped: cannot mount a tmpfs here"
        );
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    let served = fs.path.join("served");
    let server = TestServer::with_impl_config(imp, |c| c.root = served.clone());
    server.write_file("kept", b"kept");
    let Some(_remount) = Mounted::run(&["-o", "remount,ro"], &fs.path) else {
        // CI has these capabilities (root, tmpfs, the ferry binary): never skip there.
        assert!(
            std::env::var_os("CI").is_none(),
            "skipped: cannot remount read-only"
        );
        eprintln!("skipped: cannot remount read-only");
        return;
    };
    let mut s = server.session();
    s.send(b"put 4 new wait new-file\n");
    s.expect_line("err 514 read-only");
    assert_eq!(
        s.put_now("kept", PutMode::Replace, b"gone"),
        Reply::Err(err(514))
    );
    let (data, _) = s.get("kept").expect("reads still work");
    assert_eq!(data, b"kept");
    drop(s);
    drop(server);
    // Dropping `_remount` unmounts the tmpfs; `fs` then finds it gone, which is fine.
}

ferry_test_support::every_impl!(
    malformed_lines_get_500_and_the_session_goes_on,
    random_garbage_never_panics_or_hangs_the_server,
    over_long_lines_get_501_and_the_close,
    put_lines_that_do_not_parse_up_to_the_name_get_502_and_the_close,
    put_lines_with_an_empty_name_get_510_and_the_session_goes_on,
    eager_puts_above_max_eager_get_502_without_the_payload_being_read,
    framing_violations_in_uploads_get_502_and_leave_nothing,
    bad_names_get_510_before_storage_is_touched,
    traversal_attempts_and_symlinks_are_refused,
    not_found_for_missing_names_folders_links_and_special_files,
    refused_eager_put_is_discarded_and_the_session_stays_in_sync,
    too_large_puts_get_513,
    read_only_server_refuses_every_put_with_514,
    corrupt_and_aborted_uploads_get_433_and_434_and_leave_nothing,
    no_space_gets_432,
    a_read_error_after_ok_get_gets_abort_431,
    a_read_only_file_system_gets_514,
);
