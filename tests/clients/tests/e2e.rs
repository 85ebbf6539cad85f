//! Every client against the real server of its own implementation (through
//! `ferry_test_support::TestServer` and `TestClient`, once per implementation by
//! `every_impl!`): round trips of the teaching program's files, pipelined batches, create vs
//! replace, resumed downloads, 16 MiB through local files, refusals, the idle timeout and
//! shutdown.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_sync::client::{
    ClientError, ClientOptions, GetOptions, PART_SUFFIX, PutOptions, part_path,
};
use ferry_test_support::{Impl, NAMES, TestClient, TestServer, every_impl};
use ferry_wire::{Code, Digest, FileName, PutFlow, PutMode};

every_impl!(
    teaching_files_round_trip,
    two_hundred_small_files_pipelined_both_ways,
    put_many_mixes_eager_and_waiting_puts_in_order,
    new_refuses_an_existing_name_and_replace_replaces_it,
    resume_from_a_good_prefix_and_restart_after_a_stale_one,
    refusals_keep_the_session_and_leave_nothing_behind,
    read_only_server_refuses_both_flows,
    busy_server_refuses_the_session,
    shutdown_ends_the_session_with_422,
    a_batch_of_gets_holds_one_partial_file_open_at_a_time,
    a_batch_of_puts_does_not_hold_a_file_open_per_reply_awaited,
    a_batch_with_a_large_file_and_a_missing_one,
    sixteen_mib_through_files,
    the_idle_timeout_ends_the_session,
);

fn options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Some(Duration::from_secs(5)),
        read_timeout: Some(Duration::from_secs(10)),
        write_timeout: Some(Duration::from_secs(10)),
        ..ClientOptions::default()
    }
}

/// A client of the server's own implementation (as users run it; the other pairs are in
/// tests/matrix).
fn connect(server: &TestServer) -> TestClient {
    TestClient::connect_with(server.imp, server.addr, &options()).expect("connect")
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

fn teaching_files_round_trip(imp: Impl) {
    let server = TestServer::start_impl(imp);
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

fn two_hundred_small_files_pipelined_both_ways(imp: Impl) {
    let server = TestServer::start_impl(imp);
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

fn put_many_mixes_eager_and_waiting_puts_in_order(imp: Impl) {
    let server = TestServer::start_impl(imp);
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

fn new_refuses_an_existing_name_and_replace_replaces_it(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let mut c = connect(&server);
    let a = name("a.txt");
    let put = |c: &mut TestClient, data: &[u8], mode: PutMode, eager: bool| {
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

fn resume_from_a_good_prefix_and_restart_after_a_stale_one(imp: Impl) {
    let server = TestServer::start_impl(imp);
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

    // Without the retry from 0: Corrupt, the destination untouched, the part removed.
    fs::write(&dest, b"old").expect("an older destination");
    fs::write(&part, &stale).expect("stale prefix");
    let once = GetOptions {
        retry_from_zero: false,
        ..opts
    };
    let err = c
        .get_to_path(&name("big.bin"), &dest, &once, &mut quiet())
        .expect_err("corrupt");
    assert!(matches!(err, ClientError::Corrupt { .. }), "{err:?}");
    assert!(c.is_open(), "the framing was intact: the session goes on");
    assert_eq!(fs::read(&dest).expect("dest"), b"old");
    assert!(!part.exists());

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

fn refusals_keep_the_session_and_leave_nothing_behind(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| c.max_size = 1000);
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

fn read_only_server_refuses_both_flows(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| c.read_only = true);
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

fn busy_server_refuses_the_session(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| c.max_connections = 1);
    let first = connect(&server);
    let err = TestClient::connect_with(imp, server.addr, &options()).expect_err("busy");
    assert_eq!(err.code(), Some(Code::BUSY));
    assert!(err.is_transient());
    first.close().expect("close");
}

fn shutdown_ends_the_session_with_422(imp: Impl) {
    let server = TestServer::start_impl(imp);
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

/// A batch of 41 uploads — mostly eager, one of 2 MiB that waits for `go` in the middle,
/// then a local file that is missing — and the same names downloaded in one batch.
fn a_batch_with_a_large_file_and_a_missing_one(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let up = tempfile::tempdir().expect("tempdir");
    let mut files: Vec<(PathBuf, FileName)> = Vec::new();
    let mut contents = Vec::new();
    for i in 0..40 {
        let data = if i == 20 {
            content(2 << 20, 20)
        } else {
            content(i * 100, i as u32)
        };
        let n = NAMES
            .get(i)
            .map_or_else(|| format!("f{i:02}"), |n| (*n).to_owned());
        files.push((write(up.path(), &n, &data), name(&n)));
        contents.push(data);
    }
    files.push((up.path().join("missing"), name("missing")));
    let mut c = connect(&server);
    let mut confirmed = 0;
    let results = c.put_many(&files, &PutOptions::default(), &mut |p| {
        if p.done == p.total {
            confirmed += 1;
        }
    });
    assert_eq!(results.len(), files.len());
    for (r, data) in results.iter().zip(&contents) {
        assert_eq!(r.as_ref().expect("put").digest, Digest::of(data));
    }
    assert!(
        matches!(results[40], Err(ClientError::Local { .. })),
        "{:?}",
        results[40]
    );
    assert!(confirmed >= 40, "{confirmed} confirmed");
    let names: Vec<FileName> = files.iter().map(|(_, n)| n.clone()).collect();
    let down = tempfile::tempdir().expect("tempdir");
    let results = c.get_many(&names, down.path(), &GetOptions::default(), &mut quiet());
    for (r, data) in results.iter().zip(&contents) {
        let r = r.as_ref().expect("get");
        assert!(fs::read(r.path.as_ref().expect("path")).expect("read") == *data);
    }
    assert!(
        matches!(&results[40], Err(e) if e.code() == Some(Code::NOT_FOUND)),
        "{:?}",
        results[40]
    );
    assert!(c.is_open());
    c.close().expect("close");
}

/// 16 MiB up from a file (flow `wait`, progress to the last octet) and down to a file.
fn sixteen_mib_through_files(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let data = content(16 << 20, 16);
    let dir = tempfile::tempdir().expect("tempdir");
    let src = write(dir.path(), "big.bin", &data);
    let mut c = connect(&server);
    let mut seen = 0u64;
    let report = c
        .put_from_path(
            &src,
            Some(&name("big.bin")),
            &PutOptions::default(),
            &mut |p| seen = p.done,
        )
        .expect("put");
    assert_eq!((report.flow, seen), (PutFlow::Wait, data.len() as u64));
    let dest = dir.path().join("copy.bin");
    let report = c
        .get_to_path(
            &name("big.bin"),
            &dest,
            &GetOptions::default(),
            &mut quiet(),
        )
        .expect("get");
    assert_eq!(report.digest, Digest::of(&data));
    assert!(fs::read(&dest).expect("read") == data);
    c.close().expect("close");
}

/// The idle timeout ends the session: the next request gets `421` (or finds the connection
/// closed), and every later one `Disconnected`.
fn the_idle_timeout_ends_the_session(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| c.idle_timeout = Duration::from_secs(1));
    let mut c = connect(&server);
    c.dir().expect("dir");
    std::thread::sleep(Duration::from_millis(1500));
    let err = c.dir().expect_err("timed out");
    assert!(
        err.code() == Some(Code::TIMEOUT) || matches!(err, ClientError::Closed { .. }),
        "{err:?}"
    );
    assert!(err.ends_session() && !c.is_open(), "{err:?}");
    assert!(
        matches!(c.dir(), Err(ClientError::Disconnected(_))),
        "after the end"
    );
}

/// Partial files in `dir` this process holds open (Linux: /proc/self/fd). Only those in
/// `dir`: the other tests of this binary run at the same time and hold their own.
fn open_part_files(dir: &Path) -> usize {
    open_files_in(dir, ".ferry-part")
}

/// Descriptors this process holds open on files in `dir` whose names end with `suffix`.
fn open_files_in(dir: &Path, suffix: &str) -> usize {
    // The links name canonical paths.
    let dir = fs::canonicalize(dir).expect("canonical path");
    fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| fs::read_link(e.path()).ok())
                .filter(|t| t.starts_with(&dir) && t.to_string_lossy().ends_with(suffix))
                .count()
        })
        .unwrap_or(0)
}

/// How many local files a batch of uploads may hold open at once, whatever its length: the
/// async client opens the files of an eager batch in groups of 64 on its blocking pool (one
/// group sent while the next opens), each with a descriptor or two.
const MOST_OPEN_SOURCES: usize = 4 * 64;

/// A batch of uploads closes each local file once its last octet and the check before its
/// trailer are done, not when the server's reply comes: pipelined uploads wait for many
/// replies at once, and holding a file open for each ran a `put -r` of 10,000 files into the
/// usual limit of 1,024 descriptors (EMFILE). The count stays bounded however long the batch.
fn a_batch_of_puts_does_not_hold_a_file_open_per_reply_awaited(imp: Impl) {
    let server = TestServer::start_impl(imp);
    let up = tempfile::tempdir().expect("tempdir");
    let files: Vec<(PathBuf, FileName)> = (0..800)
        .map(|i| {
            let n = format!("f{i:03}.src");
            (
                write(up.path(), &n, format!("file {i}").as_bytes()),
                name(&n),
            )
        })
        .collect();
    let mut c = connect(&server);
    let mut most = 0;
    let results = c.put_many(&files, &PutOptions::default(), &mut |_| {
        most = most.max(open_files_in(up.path(), ".src"));
    });
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    assert!(
        most <= MOST_OPEN_SOURCES,
        "{most} local files open at once while uploading {}",
        files.len()
    );
    assert_eq!(server.visible_names().len(), files.len());
    assert_eq!(
        open_files_in(up.path(), ".src"),
        0,
        "every local file closed at the end"
    );
    c.close().expect("close");
}

/// A batch finishes each download as it completes: it never holds more than one partial file
/// open (a batch of thousands of files must not run into the open-files limit), and every
/// file is in place, none left partial.
fn a_batch_of_gets_holds_one_partial_file_open_at_a_time(imp: Impl) {
    let server = TestServer::start_impl(imp);
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
