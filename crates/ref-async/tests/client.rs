//! What only the async client's own API has: every call with async writers, readers and
//! progress closures, against the async server, once per runtime driver; its futures are
//! `Send`. The client tests every implementation shares — against scripted hostile servers
//! and against the real servers, the async client through its blocking wrapper — are in
//! `tests/clients` (package `ferry-client-tests`).

// Without any driver feature there is nothing to instantiate the tests with.
#![cfg_attr(
    not(any(feature = "tokio", feature = "async-std", feature = "smol")),
    allow(dead_code, unused_imports)
)]

mod common;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::{Driver, NAMES, every_byte, file_name, pattern};
use ferry_async::BlockOn;
use ferry_async::client::{
    Client, ClientError, ClientOptions, GetOptions, PART_SUFFIX, PutOptions,
};
use ferry_wire::{Digest, PutFlow};

per_runtime!(round_trips_with_every_call);

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
