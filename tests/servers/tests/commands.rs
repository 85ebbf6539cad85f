//! Every command of ferry/1 against every server implementation over loopback, byte-exact, with the
//! names of the teaching program, an empty file and binary data.

use std::time::{Duration, SystemTime};

use ferry_test_support::{
    Impl, NAMES, PayloadEnd, RawSession, TestServer, file_name, put_now_bytes,
};
use ferry_wire::{
    Digest, FileName, Hasher, PutFlow, PutMode, Reply, Request, Timestamp, Version, decode_entry,
    encode_payload,
};

fn mtime(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn all_octets() -> Vec<u8> {
    (0..=255u8).cycle().take(256 * 7 + 13).collect()
}

fn read_dir(s: &mut RawSession) -> Vec<(u64, Timestamp, String)> {
    s.send_request(&Request::Dir);
    let Reply::DirOk { count } = s.read_reply() else {
        panic!("expected ok dir")
    };
    (0..count)
        .map(|_| {
            let mut line = s.read_line();
            line.push(b'\n');
            let (e, _) = decode_entry(&line).expect("a valid entry line");
            (e.size, e.mtime, e.name.into_string())
        })
        .collect()
}

fn greeting_announces_the_configured_limits(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let mut s = RawSession::connect(server.addr);
    s.expect_line(
        "ferry/1 max-line=4096 max-name=255 max-size=1099511627776 max-chunk=1048576 \
         max-eager=1048576 idle=300 stall=60 min-rate=1024 ext=tree",
    );
    drop(s);
    drop(server);

    let server = TestServer::with_impl_config(imp, |c| {
        c.max_size = 1000;
        c.max_eager = 0;
        c.idle_timeout = Duration::from_millis(2500);
        c.stall_timeout = Duration::from_millis(100); // raised to the minimum of 1 s
        c.min_rate = 0; // not announced
        c.tree = false; // not offered
    });
    let mut s = RawSession::connect(server.addr);
    s.expect_line(
        "ferry/1 max-line=4096 max-name=255 max-size=1000 max-chunk=1048576 max-eager=0 \
         idle=2 stall=1",
    );
}

fn dir_lists_regular_files_sorted_bytewise_with_size_and_mtime(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let mut s = server.session();
    assert!(
        read_dir(&mut s).is_empty(),
        "an empty folder gives ok dir 0"
    );

    server.write_file_with_mtime(NAMES[0], b"pptx!", mtime(1_709_280_000));
    server.write_file_with_mtime(NAMES[1], b"hello", mtime(1_700_060_405));
    server.write_file_with_mtime(NAMES[2], b"", mtime(1_716_249_599));
    server.write_file(".hidden", b"x");
    std::fs::create_dir(server.root.join("folder")).expect("mkdir");
    std::os::unix::fs::symlink("/etc/passwd", server.root.join("passwd")).expect("symlink");
    server.write_file("e\u{301}.txt", b"not NFC");

    let listing = read_dir(&mut s);
    let expected = vec![
        (
            0,
            Timestamp::from_unix(1_716_249_599).expect("ts"),
            NAMES[2].to_owned(),
        ),
        (
            5,
            Timestamp::from_unix(1_700_060_405).expect("ts"),
            NAMES[1].to_owned(),
        ),
        (
            5,
            Timestamp::from_unix(1_709_280_000).expect("ts"),
            NAMES[0].to_owned(),
        ),
    ];
    assert_eq!(listing, expected);
    s.send_request(&Request::Close);
    s.expect_line("bye");
    s.expect_closed();
}

fn get_sends_names_empty_and_binary_files_byte_exact(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let binary = all_octets();
    server.write_file_with_mtime(NAMES[0], &binary, mtime(1_709_280_000));
    server.write_file(NAMES[1], b"hello");
    server.write_file(NAMES[2], b"%PDF-1.4\n");
    server.write_file("empty", b"");
    let mut s = server.session();

    s.send_request(&Request::Get {
        offset: 0,
        name: file_name(NAMES[0]),
    });
    assert_eq!(
        s.read_reply(),
        Reply::GetOk {
            size: binary.len() as u64,
            mtime: Timestamp::from_unix(1_709_280_000).expect("ts")
        }
    );
    let (data, end) = s.read_payload(binary.len() as u64);
    assert!(data == binary);
    assert_eq!(end, PayloadEnd::Complete(Digest::of(&binary)));

    // The exact octets of the spec's example: one chunk, the test vector digest.
    s.send_request(&Request::Get {
        offset: 0,
        name: file_name(NAMES[1]),
    });
    assert!(s.read_line_str().starts_with("ok get 5 "));
    s.expect_line("data 5");
    assert_eq!(s.read_exact(5), b"hello");
    s.expect_line("end xxh3-128:b5e9c1ad071b3e7fc779cfaa5e523818");

    let (data, end) = s.get(NAMES[2]).expect("get");
    assert_eq!(data, b"%PDF-1.4\n");
    assert_eq!(end, PayloadEnd::Complete(Digest::of(b"%PDF-1.4\n")));

    // An empty file: no chunk, only the trailer.
    s.send_request(&Request::Get {
        offset: 0,
        name: file_name("empty"),
    });
    assert!(s.read_line_str().starts_with("ok get 0 "));
    s.expect_line("end xxh3-128:99aa06d3014798d86001c324468d497f");
}

fn get_with_offset_resumes_and_the_digest_covers_the_whole_file(imp: Impl) {
    let server = TestServer::start_impl(imp);
    // Three chunks' worth, so that offsets land inside, at and beyond chunk boundaries.
    let content: Vec<u8> = (0..(2 << 20) + 777).map(|i: u32| (i % 251) as u8).collect();
    server.write_file("big.bin", &content);
    let mut s = server.session();
    let size = content.len() as u64;
    for offset in [0u64, 1, 4096, 1 << 20, (1 << 20) + 1, size - 1, size] {
        s.send_request(&Request::Get {
            offset,
            name: file_name("big.bin"),
        });
        let Reply::GetOk { size: got, .. } = s.read_reply() else {
            panic!("ok get")
        };
        assert_eq!(got, size);
        let mut prefix = Hasher::new();
        prefix.update(&content[..offset as usize]);
        let mut tail = Vec::new();
        let end = s.read_payload_with(size - offset, prefix, |d| tail.extend_from_slice(d));
        assert_eq!(
            end,
            PayloadEnd::Complete(Digest::of(&content)),
            "offset {offset}"
        );
        assert!(tail == content[offset as usize..], "offset {offset}");
    }
    // A resume against a changed prefix is caught by the client's digest.
    let mut wrong = Hasher::new();
    wrong.update(b"x");
    s.send_request(&Request::Get {
        offset: 1,
        name: file_name("big.bin"),
    });
    let Reply::GetOk { .. } = s.read_reply() else {
        panic!("ok get")
    };
    let end = s.read_payload_with(size - 1, wrong, |_| {});
    assert!(matches!(end, PayloadEnd::Corrupt { .. }), "{end:?}");

    s.send_request(&Request::Get {
        offset: size + 1,
        name: file_name("big.bin"),
    });
    s.expect_line("err 515 bad-offset");
    s.send_request(&Request::Get {
        offset: u64::MAX,
        name: file_name("big.bin"),
    });
    s.expect_line("err 515 bad-offset");
}

fn put_wait_and_now_create_and_replace_byte_exact(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let mut s = server.session();
    let binary = all_octets();

    for (i, name) in NAMES.iter().enumerate() {
        let data = format!("content of file {i}: {name}").into_bytes();
        let reply = s.put_wait(name, PutMode::New, &data);
        assert_eq!(
            reply,
            Reply::PutOk {
                size: data.len() as u64,
                digest: Digest::of(&data)
            }
        );
        assert_eq!(server.read_file(name).as_deref(), Some(&data[..]));
    }
    assert_eq!(
        s.put_now("binary.bin", PutMode::New, &binary),
        Reply::PutOk {
            size: binary.len() as u64,
            digest: Digest::of(&binary)
        }
    );
    assert_eq!(server.read_file("binary.bin"), Some(binary.clone()));

    // Empty files, both flows.
    assert_eq!(
        s.put_now("empty-now", PutMode::New, b""),
        Reply::PutOk {
            size: 0,
            digest: Digest::of(b"")
        }
    );
    assert_eq!(
        s.put_wait("empty-wait", PutMode::New, b""),
        Reply::PutOk {
            size: 0,
            digest: Digest::of(b"")
        }
    );
    assert_eq!(server.read_file("empty-now"), Some(Vec::new()));
    assert_eq!(server.read_file("empty-wait"), Some(Vec::new()));

    // new refuses, replace replaces; the exact octets of the wait exchange.
    s.send(b"put 3 new wait binary.bin\n");
    s.expect_line("err 512 exists");
    s.send(b"put 3 replace wait binary.bin\n");
    s.expect_line("go");
    s.send(b"data 3\nabcend xxh3-128:06b05ab6733a618578af5f94892f3950\n");
    s.expect_line("ok put 3 xxh3-128:06b05ab6733a618578af5f94892f3950");
    assert_eq!(server.read_file("binary.bin"), Some(b"abc".to_vec()));

    // Replace of a name that does not exist creates it.
    assert!(matches!(
        s.put_now("fresh", PutMode::Replace, b"f"),
        Reply::PutOk { .. }
    ));

    // A multi-chunk upload with small, odd chunks (chunk sizes are the sender's choice).
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 256) as u8).collect();
    s.send(
        &Request::Put {
            size: 100_000,
            mode: PutMode::New,
            flow: PutFlow::Wait,
            name: file_name("odd"),
        }
        .to_bytes(),
    );
    s.expect_line("go");
    let mut wire = Vec::new();
    for piece in data.chunks(777) {
        wire.extend_from_slice(format!("data {}\n", piece.len()).as_bytes());
        wire.extend_from_slice(piece);
    }
    wire.extend_from_slice(format!("end {}\n", Digest::of(&data)).as_bytes());
    // Sent in awkward pieces: boundaries carry no meaning (FRAME-1).
    for piece in wire.chunks(1000) {
        s.send(piece);
    }
    assert_eq!(
        s.read_reply(),
        Reply::PutOk {
            size: 100_000,
            digest: Digest::of(&data)
        }
    );
    assert_eq!(server.read_file("odd"), Some(data));

    // Uploaded files are listed and can be fetched back.
    let (back, end) = s.get(NAMES[1]).expect("get");
    assert_eq!(end, PayloadEnd::Complete(Digest::of(&back)));
    assert_eq!(
        back,
        format!("content of file 1: {}", NAMES[1]).into_bytes()
    );
    assert!(server.staging_is_empty());
}

fn version_only_as_first_request(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let mut s = server.session();
    s.send(b"version 1\n");
    s.expect_line("ok version 1");
    s.send(b"version 1\n");
    s.expect_line("err 500 syntax");

    let mut s = server.session();
    s.send(b"version 2\n");
    s.expect_line("err 503 unsupported");
    s.send(b"version 1\n");
    s.expect_line("err 500 syntax");
    s.send(b"dir\n");
    s.expect_line("ok dir 0");

    // Any request line, even a malformed one, ends the "first" state.
    let mut s = server.session();
    s.send(b"nonsense\nversion 1\n");
    s.expect_line("err 500 syntax");
    s.expect_line("err 500 syntax");

    let mut s = server.session();
    s.send_request(&Request::Version(Version::new(99_999).expect("version")));
    s.expect_line("err 503 unsupported");
}

fn close_answers_bye_and_ignores_what_follows(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let mut s = server.session();
    s.send(b"close\ndir\nput 1 new now x\ndata 1\nx");
    s.expect_line("bye");
    s.expect_closed();
    assert!(server.visible_names().is_empty());
    // The server keeps listening (CONN-7).
    let mut s = server.session();
    s.send(b"dir\n");
    s.expect_line("ok dir 0");
}

fn crlf_and_split_writes_are_accepted(imp: Impl) {
    let server = TestServer::start_impl(imp);
    server.write_file("a", b"A");
    let mut s = server.session();
    s.send(b"dir\r\n");
    s.expect_line("ok dir 1");
    s.read_line();
    for piece in [&b"ge"[..], b"t 0", b" a\r", b"\n"] {
        s.send(piece);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(s.read_line_str().starts_with("ok get 1 "));
    s.expect_line("data 1");
    assert_eq!(s.read_exact(1), b"A");
    s.expect_line(&format!("end {}", Digest::of(b"A")));
}

fn pipelined_requests_in_one_write_get_replies_in_order(imp: Impl) {
    let server = TestServer::start_impl(imp);
    server.write_file_with_mtime(NAMES[1], b"hello", mtime(1_700_060_405));
    let mut batch = Vec::new();
    batch.extend_from_slice(b"dir\n");
    batch.extend_from_slice(
        &Request::Get {
            offset: 0,
            name: file_name(NAMES[1]),
        }
        .to_bytes(),
    );
    batch.extend_from_slice(&put_now_bytes(
        "notes.txt",
        PutMode::New,
        b"notes\nline 2\n",
    ));
    batch.extend_from_slice(b"get 0 missing.txt\n");
    batch.extend_from_slice(&put_now_bytes(NAMES[1], PutMode::New, b"refused"));
    batch.extend_from_slice(b"bogus\n");
    batch.extend_from_slice(
        &Request::Get {
            offset: 0,
            name: file_name("notes.txt"),
        }
        .to_bytes(),
    );
    for i in 0..50 {
        batch.extend_from_slice(&put_now_bytes(
            &format!("small-{i:02}"),
            PutMode::New,
            &[i; 10],
        ));
    }
    batch.extend_from_slice(b"dir\nclose\n");
    let mut s = server.session();
    s.send(&batch);

    s.expect_line("ok dir 1");
    s.expect_line(&format!("5 2023-11-15T15:00:05Z {}", NAMES[1]));
    s.expect_line("ok get 5 2023-11-15T15:00:05Z");
    s.expect_line("data 5");
    assert_eq!(s.read_exact(5), b"hello");
    s.expect_line("end xxh3-128:b5e9c1ad071b3e7fc779cfaa5e523818");
    s.expect_line("ok put 13 xxh3-128:bef8605a8dab657e157a0f3d510de94d");
    s.expect_line("err 511 not-found");
    s.expect_line("err 512 exists");
    s.expect_line("err 500 syntax");
    // The put before is complete when the get after it runs (PIPE-1).
    let Reply::GetOk { size: 13, .. } = s.read_reply() else {
        panic!("ok get 13")
    };
    let (data, _) = s.read_payload(13);
    assert_eq!(data, b"notes\nline 2\n");
    for i in 0..50u8 {
        assert_eq!(
            s.read_reply(),
            Reply::PutOk {
                size: 10,
                digest: Digest::of(&[i; 10])
            }
        );
    }
    s.expect_line("ok dir 52");
    for _ in 0..52 {
        s.read_line();
    }
    s.expect_line("bye");
    s.expect_closed();
    assert_eq!(server.read_file(NAMES[1]).as_deref(), Some(&b"hello"[..]));
    assert_eq!(server.visible_names().len(), 52);
}

fn requests_sent_before_a_half_close_are_still_answered(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let mut s = server.session();
    s.send(&put_now_bytes("late", PutMode::New, b"data"));
    s.send(b"dir\n");
    s.shutdown_write();
    assert!(matches!(s.read_reply(), Reply::PutOk { size: 4, .. }));
    s.expect_line("ok dir 1");
    s.read_line();
    s.expect_closed();
    assert_eq!(server.read_file("late"), Some(b"data".to_vec()));
}

fn payload_octets_that_look_like_requests_stay_data(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let mut s = server.session();
    let tricky = b"dir\nclose\nput 1 new now x\ndata 1\nx\nend xxh3-128:00\n\r\n".to_vec();
    let mut wire = Request::Put {
        size: tricky.len() as u64,
        mode: PutMode::New,
        flow: PutFlow::Now,
        name: FileName::new("tricky").expect("name"),
    }
    .to_bytes();
    encode_payload(&tricky, Digest::of(&tricky), &mut wire);
    wire.extend_from_slice(b"dir\n");
    s.send(&wire);
    assert!(matches!(s.read_reply(), Reply::PutOk { .. }));
    s.expect_line("ok dir 1");
    assert_eq!(server.read_file("tricky"), Some(tricky));
}

ferry_test_support::every_impl!(
    greeting_announces_the_configured_limits,
    dir_lists_regular_files_sorted_bytewise_with_size_and_mtime,
    get_sends_names_empty_and_binary_files_byte_exact,
    get_with_offset_resumes_and_the_digest_covers_the_whole_file,
    put_wait_and_now_create_and_replace_byte_exact,
    version_only_as_first_request,
    close_answers_bye_and_ignores_what_follows,
    crlf_and_split_writes_are_accepted,
    pipelined_requests_in_one_write_get_replies_in_order,
    requests_sent_before_a_half_close_are_still_answered,
    payload_octets_that_look_like_requests_stay_data,
);
