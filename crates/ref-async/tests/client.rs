//! The async client (and its blocking wrapper) against the async server, once per runtime
//! driver. The scripted hostile-server tests run against every client implementation in
//! `tests/clients` (package `ferry-client-tests`).

// Without any driver feature there is nothing to instantiate the tests with.
#![cfg_attr(
    not(any(feature = "tokio", feature = "async-std", feature = "smol")),
    allow(dead_code, unused_imports)
)]

mod common;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Driver, NAMES, every_byte, file_name, pattern};
use ferry_async::BlockOn;
use ferry_async::client::{
    Client, ClientError, ClientOptions, GetOptions, PART_SUFFIX, PutOptions,
};
use ferry_wire::{Code, Digest, FileName, PutFlow, PutMode};

per_runtime!(
    round_trips_with_every_call,
    resume_and_stale_partials,
    pipelined_batches,
    refusals_and_ended_sessions,
    sixteen_mib_through_files,
    blocking_client_mirrors_the_threaded_api,
    a_batch_holds_one_partial_file_open_at_a_time,
);

/// Partial files in `dir` this process holds open (Linux: /proc/self/fd). Only those in
/// `dir`: the other tests of this binary (this one on the other runtimes too) run at the
/// same time and hold their own.
fn open_part_files(dir: &Path) -> usize {
    // The links name canonical paths.
    let dir = fs::canonicalize(dir).expect("canonical path");
    fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| fs::read_link(e.path()).ok())
                .filter(|t| t.starts_with(&dir) && t.to_string_lossy().ends_with(PART_SUFFIX))
                .count()
        })
        .unwrap_or(0)
}

/// A batch of gets writes each file when it is done (in trips shared by the files done
/// together): it never holds more than one partial file open, and leaves none behind.
fn a_batch_holds_one_partial_file_open_at_a_time<D: Driver>() {
    let server = common::start::<D>();
    let names: Vec<FileName> = (0..200).map(|i| file_name(&format!("f{i:03}"))).collect();
    for (i, n) in names.iter().enumerate() {
        server.write_file(n.as_str(), format!("file {i}").as_bytes());
    }
    let down = tempfile::tempdir().expect("tempdir");
    let rt = D::runtime();
    let most = rt.block_on(async {
        let mut c = connect(&rt, server.addr).await;
        let mut most = 0;
        let results = c
            .get_many(&names, down.path(), &GetOptions::default(), |_| {
                most = most.max(open_part_files(down.path()));
            })
            .await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        most
    });
    assert!(most <= 1, "{most} partial files open at once");
    for (i, n) in names.iter().enumerate() {
        let got = fs::read(down.path().join(n.as_str())).expect("downloaded");
        assert_eq!(got, format!("file {i}").as_bytes());
    }
    assert!(
        listing(down.path())
            .iter()
            .all(|n| !n.ends_with(PART_SUFFIX)),
        "a partial file was left behind"
    );
}

fn options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Some(Duration::from_secs(5)),
        read_timeout: Some(Duration::from_secs(10)),
        write_timeout: Some(Duration::from_secs(10)),
        ..ClientOptions::default()
    }
}

async fn connect<R: ferry_async::Runtime>(rt: &R, addr: SocketAddr) -> Client<R> {
    Client::connect_with(rt.clone(), addr, &options())
        .await
        .expect("handshake")
}

fn no_progress(_: ferry_async::client::Progress<'_>) {}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn round_trips_with_every_call<D: Driver>() {
    let server = common::start::<D>();
    let mut files: Vec<(String, Vec<u8>)> = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), pattern(5000 + i)))
        .collect();
    files.push(("empty".into(), Vec::new()));
    files.push(("bytes.bin".into(), every_byte()));
    for (name, data) in &files {
        server.write_file(name, data);
    }
    let local = tempfile::tempdir().expect("tempdir");
    let up = tempfile::tempdir().expect("tempdir");
    let rt = D::runtime();
    rt.block_on(async {
        let mut c = connect(&rt, server.addr).await;
        assert_eq!(c.greeting().limits().max_eager, 1 << 20);
        let entries = c.dir().await.expect("dir");
        let mut want: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        want.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let got: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(got, want);
        for (name, data) in &files {
            let dest = local.path().join(name);
            let report = c
                .get_to_path(&file_name(name), &dest, &GetOptions::default(), no_progress)
                .await
                .expect("get_to_path");
            assert_eq!(
                (report.size, report.digest),
                (data.len() as u64, Digest::of(data))
            );
            assert_eq!(fs::read(&dest).expect("read"), *data, "{name}");
            let mut sink: Vec<u8> = Vec::new();
            let report = c
                .get_to_writer(&file_name(name), &mut sink, no_progress)
                .await
                .expect("get");
            assert_eq!(sink, *data);
            assert_eq!(report.path, None);
        }
        assert!(
            listing(local.path())
                .iter()
                .all(|n| !n.ends_with(PART_SUFFIX))
        );
        // Uploads under other names: from a path (named after the file) and from a reader.
        for (i, (name, data)) in files.iter().enumerate() {
            let path = up.path().join(format!("up-{name}"));
            fs::write(&path, data).expect("write");
            let report = c
                .put_from_path(&path, None, &PutOptions::default(), no_progress)
                .await
                .expect("put");
            assert_eq!(report.name.as_str(), format!("up-{name}"));
            assert_eq!(report.digest, Digest::of(data));
            let eager = data.len() as u64 <= 1 << 20;
            assert_eq!(
                report.flow,
                if eager { PutFlow::Now } else { PutFlow::Wait }
            );
            let wait = PutOptions {
                eager: i % 2 == 0,
                ..PutOptions::default()
            };
            let mut reader: &[u8] = data;
            let report = c
                .put_from_reader(
                    &file_name(&format!("r-{name}")),
                    data.len() as u64,
                    &mut reader,
                    &wait,
                    no_progress,
                )
                .await
                .expect("put_from_reader");
            assert_eq!(report.size, data.len() as u64);
            assert_eq!(
                server.read_file(&format!("r-{name}")).as_deref(),
                Some(&data[..])
            );
            assert_eq!(
                server.read_file(&format!("up-{name}")).as_deref(),
                Some(&data[..])
            );
        }
        // A short reader aborts the upload (PUT-20): nothing stored, the session goes on.
        let mut short: &[u8] = b"abc";
        let e = c
            .put_from_reader(
                &file_name("short"),
                10,
                &mut short,
                &PutOptions::default(),
                no_progress,
            )
            .await
            .expect_err("short reader");
        assert!(matches!(e, ClientError::Local { .. }), "{e}");
        assert!(server.read_file("short").is_none());
        c.close().await.expect("close");
    });
    assert!(server.staging_is_empty());
}

fn resume_and_stale_partials<D: Driver>() {
    let server = common::start::<D>();
    let data = pattern(3 << 20);
    server.write_file("r.bin", &data);
    let local = tempfile::tempdir().expect("tempdir");
    let dest = local.path().join("r.bin");
    let part = local.path().join(format!("r.bin{PART_SUFFIX}"));
    let resume = GetOptions {
        resume: true,
        ..GetOptions::default()
    };
    let rt = D::runtime();
    rt.block_on(async {
        let mut c = connect(&rt, server.addr).await;
        let name = file_name("r.bin");
        // A good partial file: only the rest is fetched, and the whole file verified.
        fs::write(&part, &data[..(1 << 20) + 5]).expect("write part");
        let report = c
            .get_to_path(&name, &dest, &resume, no_progress)
            .await
            .expect("resume");
        assert_eq!(report.resumed_from, (1 << 20) + 5);
        assert!(fs::read(&dest).expect("read") == data);
        assert!(!part.exists());
        // A stale one: the digest fails, the part goes, the file comes again from 0 (SUM-5).
        fs::remove_file(&dest).expect("rm");
        let mut stale = data[..1000].to_vec();
        stale[10] ^= 1;
        fs::write(&part, &stale).expect("write part");
        let report = c
            .get_to_path(&name, &dest, &resume, no_progress)
            .await
            .expect("retry");
        assert_eq!(report.resumed_from, 0);
        assert!(fs::read(&dest).expect("read") == data);
        // Without retry: Corrupt, destination untouched, part removed.
        fs::write(&dest, b"old").expect("write");
        fs::write(&part, &stale).expect("write part");
        let once = GetOptions {
            retry_from_zero: false,
            ..resume
        };
        let e = c
            .get_to_path(&name, &dest, &once, no_progress)
            .await
            .expect_err("corrupt");
        assert!(matches!(e, ClientError::Corrupt { .. }), "{e}");
        assert_eq!(fs::read(&dest).expect("read"), b"old");
        assert!(!part.exists());
        // Longer than the file: 515, then from 0 (GET-8).
        let mut long = data.clone();
        long.extend_from_slice(b"more");
        fs::write(&part, &long).expect("write part");
        let report = c
            .get_to_path(&name, &dest, &resume, no_progress)
            .await
            .expect("515 retry");
        assert_eq!(report.resumed_from, 0);
        assert!(fs::read(&dest).expect("read") == data);
        assert!(c.is_open());
    });
}

fn pipelined_batches<D: Driver>() {
    let server = common::start::<D>();
    let up = tempfile::tempdir().expect("tempdir");
    let mut files: Vec<(PathBuf, FileName)> = Vec::new();
    let mut contents = Vec::new();
    for i in 0..40 {
        // Mostly small (eager), one large (waits for go), and the brief's names.
        let data = if i == 20 {
            pattern(2 << 20)
        } else {
            pattern(i * 100)
        };
        let name = NAMES
            .get(i)
            .map_or_else(|| format!("f{i:02}"), |n| (*n).to_owned());
        let path = up.path().join(&name);
        fs::write(&path, &data).expect("write");
        files.push((path, file_name(&name)));
        contents.push(data);
    }
    files.push((up.path().join("missing"), file_name("missing")));
    let down = tempfile::tempdir().expect("tempdir");
    let rt = D::runtime();
    rt.block_on(async {
        let mut c = connect(&rt, server.addr).await;
        let mut confirmed = 0;
        let results = c
            .put_many(&files, &PutOptions::default(), |p| {
                if p.done == p.total {
                    confirmed += 1;
                }
            })
            .await;
        assert_eq!(results.len(), files.len());
        for (r, data) in results.iter().zip(&contents) {
            let r = r.as_ref().expect("put");
            assert_eq!(r.digest, Digest::of(data));
        }
        assert!(matches!(results[40], Err(ClientError::Local { .. })));
        assert!(confirmed >= 40);
        let names: Vec<FileName> = files.iter().map(|(_, n)| n.clone()).collect();
        let results = c
            .get_many(&names, down.path(), &GetOptions::default(), no_progress)
            .await;
        for (i, r) in results.iter().enumerate().take(40) {
            let r = r.as_ref().expect("get");
            assert_eq!(
                fs::read(r.path.as_ref().expect("path")).expect("read"),
                contents[i]
            );
        }
        assert!(matches!(&results[40], Err(e) if e.code() == Some(Code::NOT_FOUND)));
        assert!(c.is_open());
        c.close().await.expect("close");
    });
}

fn refusals_and_ended_sessions<D: Driver>() {
    let server = common::start_with::<D>(|c| c.idle_timeout = Duration::from_secs(1));
    server.write_file("taken", b"x");
    let local = tempfile::tempdir().expect("tempdir");
    let rt = D::runtime();
    rt.block_on(async {
        let mut c = connect(&rt, server.addr).await;
        let e = c
            .get_to_path(
                &file_name("nope"),
                &local.path().join("nope"),
                &GetOptions::default(),
                no_progress,
            )
            .await
            .expect_err("511");
        assert_eq!(e.code(), Some(Code::NOT_FOUND));
        assert!(!e.ends_session() && c.is_open());
        assert!(listing(local.path()).is_empty(), "nothing left behind");
        for eager in [true, false] {
            let mut r: &[u8] = b"y";
            let opts = PutOptions {
                eager,
                mode: PutMode::New,
            };
            let e = c
                .put_from_reader(&file_name("taken"), 1, &mut r, &opts, no_progress)
                .await;
            assert_eq!(e.expect_err("512").code(), Some(Code::EXISTS));
        }
        // The idle timeout ends the session: 421 (or the close), then Disconnected.
        rt_sleep(Duration::from_millis(1500)).await;
        let e = c.dir().await.expect_err("timed out");
        assert!(e.ends_session(), "{e}");
        assert!(!c.is_open());
        assert!(matches!(c.dir().await, Err(ClientError::Disconnected(_))));
    });
    let ro = common::start_with::<D>(|c| c.read_only = true);
    rt.block_on(async {
        let mut c = connect(&rt, ro.addr).await;
        let mut r: &[u8] = b"abc";
        let e = c
            .put_from_reader(
                &file_name("a"),
                3,
                &mut r,
                &PutOptions::default(),
                no_progress,
            )
            .await;
        assert_eq!(e.expect_err("514").code(), Some(Code::READ_ONLY));
    });
    // 420 at the connection cap.
    let busy = common::start_with::<D>(|c| c.max_connections = 1);
    rt.block_on(async {
        let _first = connect(&rt, busy.addr).await;
        let e = Client::connect_with(rt.clone(), busy.addr, &options())
            .await
            .expect_err("busy");
        assert_eq!(e.code(), Some(Code::BUSY));
    });
}

/// A runtime-neutral sleep for the client's side of a test (blocking a thread of the test's
/// own runtime is fine here: the server runs elsewhere).
async fn rt_sleep(d: Duration) {
    std::thread::sleep(d);
}

fn sixteen_mib_through_files<D: Driver>() {
    let server = common::start::<D>();
    let data = pattern(16 << 20);
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("big.bin");
    fs::write(&src, &data).expect("write");
    let rt = D::runtime();
    rt.block_on(async {
        let mut c = connect(&rt, server.addr).await;
        let mut seen = 0u64;
        let report = c
            .put_from_path(
                &src,
                Some(&file_name("big.bin")),
                &PutOptions::default(),
                |p| seen = p.done,
            )
            .await
            .expect("put");
        assert_eq!((report.flow, seen), (PutFlow::Wait, data.len() as u64));
        let dest = dir.path().join("copy.bin");
        let report = c
            .get_to_path(
                &file_name("big.bin"),
                &dest,
                &GetOptions::default(),
                no_progress,
            )
            .await
            .expect("get");
        assert_eq!(report.digest, Digest::of(&data));
        assert!(fs::read(&dest).expect("read") == data);
    });
}

fn blocking_client_mirrors_the_threaded_api<D: Driver>() {
    let server = common::start::<D>();
    server.write_file(NAMES[0], b"hello");
    let mut c =
        ferry_async::blocking::BlockingClient::connect_with(D::runtime(), server.addr, &options())
            .expect("connect");
    assert_eq!(c.dir().expect("dir").len(), 1);
    let mut out = Vec::new();
    c.get_to_writer(&file_name(NAMES[0]), &mut out, &mut |_| {})
        .expect("get");
    assert_eq!(out, b"hello");
    let mut src: &[u8] = b"world";
    c.put_from_reader(
        &file_name(NAMES[1]),
        5,
        &mut src,
        &PutOptions::default(),
        &mut |_| {},
    )
    .expect("put");
    let dir = tempfile::tempdir().expect("tempdir");
    let names = [file_name(NAMES[0]), file_name(NAMES[1])];
    let results = c.get_many(&names, dir.path(), &GetOptions::default(), &mut |_| {});
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(fs::read(dir.path().join(NAMES[1])).expect("read"), b"world");
    c.close().expect("close");
}

/// The client's futures can be spawned on a multi-thread runtime (they are `Send`).
#[cfg(feature = "tokio")]
#[test]
fn client_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let rt = ferry_async::tokio::Tokio::new_runtime().expect("runtime");
    let server = common::start::<common::TokioDriver>();
    server.write_file("a", b"abc");
    let addr = server.addr;
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("a");
    let driver = rt.clone();
    let task = async move {
        let mut c = Client::connect(driver, addr).await?;
        c.get_to_path(&file_name("a"), &dest, &GetOptions::default(), |_| {})
            .await?;
        c.put_many(&[], &PutOptions::default(), |_| {}).await;
        c.close().await
    };
    assert_send(&task);
    let handle = rt.handle().spawn(task);
    rt.block_on(handle).expect("join").expect("session");
    assert_eq!(fs::read(dir.path().join("a")).expect("read"), b"abc");
}
