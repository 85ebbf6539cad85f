//! The client against the real `ferry_sync::server` (through `ferry_test_support::TestServer`):
//! round trips of the teaching program's files, pipelined batches, create vs replace,
//! resumed downloads, refusals and shutdown.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_sync::client::{
    Client, ClientError, ClientOptions, GetOptions, PART_SUFFIX, PutOptions, part_path,
};
use ferry_test_support::TestServer;
use ferry_wire::{Code, Digest, FileName, PutFlow, PutMode};

fn options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Some(Duration::from_secs(5)),
        read_timeout: Some(Duration::from_secs(10)),
        write_timeout: Some(Duration::from_secs(10)),
        ..ClientOptions::default()
    }
}

fn connect(server: &TestServer) -> Client {
    Client::connect_with(server.addr, &options()).expect("connect")
}

fn name(s: &str) -> FileName {
    FileName::new(s).expect("valid name")
}

/// Deterministic content that is not periodic at chunk boundaries.
fn content(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn write(dir: &Path, file: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(file);
    fs::write(&p, data).expect("write a local file");
    p
}

fn quiet() -> impl FnMut(ferry_sync::client::Progress<'_>) {
    |_| {}
}

#[test]
fn teaching_files_round_trip() {
    let server = TestServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    let every_byte: Vec<u8> = (0..=255u8).cycle().take(256 * 41).collect();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("射频仿真.pptx", content(3 * 1024 * 1024 + 17, 1)),
        ("天线15.doc", b"hello".to_vec()),
        ("my report (final).pdf", content(70_000, 2)),
        ("empty", Vec::new()),
        ("every byte.bin", every_byte),
    ];
    let mut c = connect(&server);
    for (n, data) in &files {
        let path = write(local.path(), n, data);
        let mut last = None;
        let report = c
            .put_from_path(&path, None, &PutOptions::default(), &mut |p| {
                last = Some((p.done, p.total))
            })
            .expect("put");
        assert_eq!(report.name.as_str(), *n);
        assert_eq!(report.size, data.len() as u64);
        assert_eq!(report.digest, Digest::of(data));
        let eager = data.len() as u64 <= c.greeting().limits().max_eager;
        assert_eq!(
            report.flow,
            if eager { PutFlow::Now } else { PutFlow::Wait },
            "{n}"
        );
        assert_eq!(
            last,
            Some((data.len() as u64, data.len() as u64)),
            "{n}: progress"
        );
        assert_eq!(
            server.read_file(n).as_deref(),
            Some(&data[..]),
            "{n} stored"
        );
    }

    let listing = c.dir().expect("dir");
    let mut want: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    want.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let got: Vec<&str> = listing.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(got, want);

    let down = tempfile::tempdir().expect("tempdir");
    for entry in &listing {
        let data = &files
            .iter()
            .find(|(n, _)| *n == entry.name.as_str())
            .expect("listed")
            .1;
        assert_eq!(entry.size, data.len() as u64);
        let dest = down.path().join(entry.name.as_str());
        let report = c
            .get_to_path(&entry.name, &dest, &GetOptions::default(), &mut quiet())
            .expect("get");
        assert_eq!(report.size, entry.size);
        assert_eq!(report.mtime, entry.mtime);
        assert_eq!(report.digest, Digest::of(data));
        assert!(
            fs::read(&dest).expect("downloaded") == *data,
            "{}",
            entry.name
        );
        let mtime = fs::metadata(&dest)
            .expect("meta")
            .modified()
            .expect("mtime");
        assert_eq!(
            mtime,
            entry.mtime.to_system_time().expect("representable"),
            "mtime applied"
        );
        assert!(!part_path(&dest).expect("part").exists());
    }

    let mut sink = Vec::new();
    let report = c
        .get_to_writer(&name("天线15.doc"), &mut sink, &mut quiet())
        .expect("to writer");
    assert_eq!((sink.as_slice(), report.size), (&b"hello"[..], 5));
    c.close().expect("close");
    assert!(server.wait_staging_empty());
}

#[test]
fn two_hundred_small_files_pipelined_both_ways() {
    let server = TestServer::start();
    let up = tempfile::tempdir().expect("tempdir");
    let files: Vec<(PathBuf, FileName)> = (0..200)
        .map(|i| {
            let n = format!("file {i:03}.txt");
            let data = content(i * 37 % 3000, i as u32);
            (write(up.path(), &n, &data), name(&n))
        })
        .collect();
    let mut c = connect(&server);
    let mut confirmed = 0;
    let results = c.put_many(&files, &PutOptions::default(), &mut |_| confirmed += 1);
    for (r, (p, _)) in results.iter().zip(&files) {
        let report = r
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(report.flow, PutFlow::Now);
    }
    assert_eq!(confirmed, 200);
    assert_eq!(server.visible_names().len(), 200);

    let names: Vec<FileName> = files.iter().map(|(_, n)| n.clone()).collect();
    let down = tempfile::tempdir().expect("tempdir");
    let results = c.get_many(&names, down.path(), &GetOptions::default(), &mut quiet());
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    for (path, n) in &files {
        let got = fs::read(down.path().join(n.as_str())).expect("downloaded");
        assert!(got == fs::read(path).expect("local"), "{n}");
    }
    assert_eq!(
        fs::read_dir(down.path()).expect("dir").count(),
        200,
        "no leftovers"
    );
    // Uploading the same names again with `new`: every one is refused, the session stays.
    let results = c.put_many(&files[..10], &PutOptions::default(), &mut quiet());
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().err().and_then(ClientError::code) == Some(Code::EXISTS))
    );
    c.close().expect("close");
}

#[test]
fn put_many_mixes_eager_and_waiting_puts_in_order() {
    let server = TestServer::start();
    let up = tempfile::tempdir().expect("tempdir");
    let sizes = [10usize, 1 << 20, (1 << 20) + 1, 5, 2_500_000, 0, 7];
    let files: Vec<(PathBuf, FileName)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let n = format!("mixed-{i}");
            (write(up.path(), &n, &content(len, i as u32 + 50)), name(&n))
        })
        .collect();
    let mut c = connect(&server);
    let results = c.put_many(&files, &PutOptions::default(), &mut quiet());
    let flows: Vec<PutFlow> = results
        .iter()
        .map(|r| r.as_ref().expect("stored").flow)
        .collect();
    use PutFlow::{Now, Wait};
    assert_eq!(flows, [Now, Now, Wait, Now, Wait, Now, Now]);
    for (path, n) in &files {
        assert!(
            server.read_file(n.as_str()) == Some(fs::read(path).expect("local")),
            "{n}"
        );
    }
    c.close().expect("close");
}

#[test]
fn new_refuses_an_existing_name_and_replace_replaces_it() {
    let server = TestServer::start();
    let mut c = connect(&server);
    let a = name("a.txt");
    let put = |c: &mut Client, data: &[u8], mode: PutMode, eager: bool| {
        let opts = PutOptions { mode, eager };
        c.put_from_reader(&a, data.len() as u64, &mut &data[..], &opts, &mut quiet())
    };
    put(&mut c, b"first", PutMode::New, true).expect("create");
    for eager in [true, false] {
        let err = put(&mut c, b"second", PutMode::New, eager).expect_err("exists");
        assert_eq!(err.code(), Some(Code::EXISTS), "eager {eager}");
        assert!(c.is_open());
    }
    assert_eq!(server.read_file("a.txt").as_deref(), Some(&b"first"[..]));
    put(&mut c, b"third!", PutMode::Replace, false).expect("replace (wait)");
    assert_eq!(server.read_file("a.txt").as_deref(), Some(&b"third!"[..]));
    put(&mut c, b"fourth", PutMode::Replace, true).expect("replace (now)");
    let mut got = Vec::new();
    c.get_to_writer(&a, &mut got, &mut quiet()).expect("get");
    assert_eq!(got, b"fourth");
    put(&mut c, b"", PutMode::Replace, true).expect("replace with empty");
    assert_eq!(server.read_file("a.txt").as_deref(), Some(&b""[..]));
    c.close().expect("close");
    assert!(server.wait_staging_empty());
}

#[test]
fn resume_from_a_good_prefix_and_restart_after_a_stale_one() {
    let server = TestServer::start();
    let data = content(2_500_000, 9);
    server.write_file("big.bin", &data);
    let down = tempfile::tempdir().expect("tempdir");
    let dest = down.path().join("big.bin");
    let part = part_path(&dest).expect("part");
    let opts = GetOptions {
        resume: true,
        ..GetOptions::default()
    };
    let mut c = connect(&server);

    fs::write(&part, &data[..1_000_000]).expect("good prefix");
    let report = c
        .get_to_path(&name("big.bin"), &dest, &opts, &mut quiet())
        .expect("resumed");
    assert_eq!(report.resumed_from, 1_000_000);
    assert!(fs::read(&dest).expect("dest") == data);
    assert!(!part.exists());

    let mut stale = data[..1_000_000].to_vec();
    stale[500] ^= 1;
    fs::write(&part, &stale).expect("stale prefix");
    let report = c
        .get_to_path(&name("big.bin"), &dest, &opts, &mut quiet())
        .expect("restarted");
    assert_eq!(report.resumed_from, 0, "the stale prefix was discarded");
    assert!(fs::read(&dest).expect("dest") == data);

    fs::write(&part, content(3_000_000, 1)).expect("longer than the file");
    let report = c
        .get_to_path(&name("big.bin"), &dest, &opts, &mut quiet())
        .expect("after 515");
    assert_eq!(report.resumed_from, 0);
    assert!(fs::read(&dest).expect("dest") == data);

    fs::write(&part, &data).expect("complete part");
    let report = c
        .get_to_path(&name("big.bin"), &dest, &opts, &mut quiet())
        .expect("verify only");
    assert_eq!(report.resumed_from, data.len() as u64);
    assert_eq!(
        fs::read_dir(down.path()).expect("dir").count(),
        1,
        "only big.bin"
    );
    c.close().expect("close");
}

#[test]
fn refusals_keep_the_session_and_leave_nothing_behind() {
    let server = TestServer::with_config(|c| c.max_size = 1000);
    let local = tempfile::tempdir().expect("tempdir");
    let mut c = connect(&server);
    let dest = local.path().join("missing");
    let err = c
        .get_to_path(
            &name("missing"),
            &dest,
            &GetOptions::default(),
            &mut quiet(),
        )
        .expect_err("511");
    assert_eq!(err.code(), Some(Code::NOT_FOUND));
    let big = write(local.path(), "big", &content(1001, 3));
    let err = c
        .put_from_path(&big, None, &PutOptions::default(), &mut quiet())
        .expect_err("513");
    assert_eq!(err.code(), Some(Code::TOO_LARGE));
    // A download whose local file cannot be created: the payload is drained, the session
    // goes on.
    server.write_file("here", b"data");
    let nowhere = local.path().join("no such folder").join("here");
    let err = c
        .get_to_path(
            &name("here"),
            &nowhere,
            &GetOptions::default(),
            &mut quiet(),
        )
        .expect_err("local");
    assert!(matches!(err, ClientError::Local { .. }), "{err:?}");
    assert!(c.is_open());
    assert_eq!(c.dir().expect("dir").len(), 1);
    c.close().expect("close");
    assert_eq!(
        fs::read_dir(local.path()).expect("dir").count(),
        1,
        "only the local 'big'"
    );
    assert!(!local.path().join(format!("missing{PART_SUFFIX}")).exists());
    assert!(server.wait_staging_empty());
}

#[test]
fn read_only_server_refuses_both_flows() {
    let server = TestServer::with_config(|c| c.read_only = true);
    let mut c = connect(&server);
    for eager in [true, false] {
        let opts = PutOptions {
            eager,
            ..PutOptions::default()
        };
        let err = c
            .put_from_reader(&name("x"), 3, &mut &b"abc"[..], &opts, &mut quiet())
            .expect_err("read-only");
        assert_eq!(err.code(), Some(Code::READ_ONLY), "eager {eager}");
    }
    c.close().expect("close");
    assert!(server.visible_names().is_empty());
}

#[test]
fn busy_server_refuses_the_session() {
    let server = TestServer::with_config(|c| c.max_connections = 1);
    let first = connect(&server);
    let err = Client::connect_with(server.addr, &options()).expect_err("busy");
    assert_eq!(err.code(), Some(Code::BUSY));
    assert!(err.is_transient());
    first.close().expect("close");
}

#[test]
fn shutdown_ends_the_session_with_422() {
    let server = TestServer::start();
    let mut c = connect(&server);
    c.dir().expect("dir");
    server.shutdown_handle().trigger();
    // Give the idle session time to notice (the server announces 422 on idle sessions).
    std::thread::sleep(Duration::from_millis(500));
    let err = c.dir().expect_err("shutting down");
    assert!(
        err.code() == Some(Code::SHUTTING_DOWN) || matches!(err, ClientError::Closed { .. }),
        "{err:?}"
    );
    assert!(err.ends_session() && !c.is_open());
    server.stop().expect("server stops");
}

/// Partial files in `dir` this process holds open (Linux: /proc/self/fd). Only those in
/// `dir`: the other tests of this binary run at the same time and hold their own.
fn open_part_files(dir: &Path) -> usize {
    // The links name canonical paths.
    let dir = fs::canonicalize(dir).expect("canonical path");
    fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| fs::read_link(e.path()).ok())
                .filter(|t| t.starts_with(&dir) && t.to_string_lossy().ends_with(".ferry-part"))
                .count()
        })
        .unwrap_or(0)
}

/// A batch finishes each download as it completes: it never holds more than one partial file
/// open (a batch of thousands of files must not run into the open-files limit), and every
/// file is in place, none left partial.
#[test]
fn a_batch_of_gets_holds_one_partial_file_open_at_a_time() {
    let server = TestServer::start();
    let names: Vec<FileName> = (0..200).map(|i| name(&format!("f{i:03}"))).collect();
    for (i, n) in names.iter().enumerate() {
        server.write_file(n.as_str(), format!("file {i}").as_bytes());
    }
    let down = tempfile::tempdir().expect("tempdir");
    let mut c = connect(&server);
    let mut most = 0;
    let results = c.get_many(&names, down.path(), &GetOptions::default(), &mut |_| {
        most = most.max(open_part_files(down.path()));
    });
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(most <= 1, "{most} partial files open at once");
    for (i, n) in names.iter().enumerate() {
        let got = fs::read(down.path().join(n.as_str())).expect("downloaded");
        assert_eq!(got, format!("file {i}").as_bytes());
    }
    let leftovers = fs::read_dir(down.path())
        .expect("read_dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".ferry-part"))
        })
        .count();
    assert_eq!(leftovers, 0);
}
