//! Interoperability with the threaded implementation (ferry-sync), once per runtime driver:
//! the async client against the threaded server, the threaded client against the async
//! server, and differential sessions — the same raw octets sent to both servers must get the
//! same octets back.

// Without any driver feature there is nothing to instantiate the tests with.
#![cfg_attr(
    not(any(feature = "tokio", feature = "async-std", feature = "smol")),
    allow(dead_code, unused_imports)
)]

mod common;

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use common::{Driver, NAMES, every_byte, file_name, pattern};
use ferry_async::BlockOn;
use ferry_test_support::{TestServer, put_now_bytes};
use ferry_wire::{Digest, FileName, PutMode, encode_payload};

per_runtime!(
    async_client_against_threaded_server,
    threaded_client_against_async_server,
    same_octets_from_both_servers,
);

/// The files both sides start with: the brief's names, an empty file, every octet value.
fn contents() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), pattern(3000 + 11 * i)))
        .collect();
    files.push(("empty".into(), Vec::new()));
    files.push(("bytes.bin".into(), every_byte()));
    files.push(("two-chunks.bin".into(), pattern((1 << 20) + 17)));
    files
}

fn sorted_names(files: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    names
}

/// Local copies of `files` in `dir` under `up-NAME`, with the name to upload them as.
fn local_copies(dir: &Path, files: &[(String, Vec<u8>)]) -> Vec<(PathBuf, FileName)> {
    files
        .iter()
        .map(|(name, data)| {
            let path = dir.join(name);
            fs::write(&path, data).expect("write");
            (path, file_name(&format!("up-{name}")))
        })
        .collect()
}

fn async_client_against_threaded_server<D: Driver>() {
    use ferry_async::client::{Client, GetOptions, PutOptions};
    let server = TestServer::start();
    let files = contents();
    for (name, data) in &files {
        server.write_file(name, data);
    }
    let local = tempfile::tempdir().expect("tempdir");
    let down = tempfile::tempdir().expect("tempdir");
    let uploads = local_copies(local.path(), &files);
    let rt = D::runtime();
    rt.block_on(async {
        let mut c = Client::connect(rt.clone(), server.addr)
            .await
            .expect("connect");
        let entries = c.dir().await.expect("dir");
        let names: Vec<String> = entries.iter().map(|e| e.name.to_string()).collect();
        assert_eq!(names, sorted_names(&files));
        for (name, data) in &files {
            let dest = down.path().join(name);
            c.get_to_path(&file_name(name), &dest, &GetOptions::default(), |_| {})
                .await
                .expect("get");
            assert!(fs::read(&dest).expect("read") == *data, "{name}");
        }
        for (path, name) in &uploads[..2] {
            c.put_from_path(path, Some(name), &PutOptions::default(), |_| {})
                .await
                .expect("put");
        }
        let results = c
            .put_many(&uploads[2..], &PutOptions::default(), |_| {})
            .await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let names: Vec<FileName> = files.iter().map(|(n, _)| file_name(n)).collect();
        let again = tempfile::tempdir().expect("tempdir");
        let results = c
            .get_many(&names, again.path(), &GetOptions::default(), |_| {})
            .await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        c.close().await.expect("close");
    });
    for (name, data) in &files {
        assert_eq!(
            server.read_file(&format!("up-{name}")).as_deref(),
            Some(&data[..]),
            "{name}"
        );
    }
}

fn threaded_client_against_async_server<D: Driver>() {
    use ferry_sync::client::{Client, GetOptions, PutOptions};
    let server = common::start::<D>();
    let files = contents();
    for (name, data) in &files {
        server.write_file(name, data);
    }
    let local = tempfile::tempdir().expect("tempdir");
    let down = tempfile::tempdir().expect("tempdir");
    let uploads = local_copies(local.path(), &files);
    let mut c = Client::connect(server.addr).expect("connect");
    let names: Vec<String> = c
        .dir()
        .expect("dir")
        .iter()
        .map(|e| e.name.to_string())
        .collect();
    assert_eq!(names, sorted_names(&files));
    for (name, data) in &files {
        let dest = down.path().join(name);
        c.get_to_path(&file_name(name), &dest, &GetOptions::default(), &mut |_| {})
            .expect("get");
        assert!(fs::read(&dest).expect("read") == *data, "{name}");
    }
    for (path, name) in &uploads[..2] {
        c.put_from_path(path, Some(name), &PutOptions::default(), &mut |_| {})
            .expect("put");
    }
    let results = c.put_many(&uploads[2..], &PutOptions::default(), &mut |_| {});
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let names: Vec<FileName> = files.iter().map(|(n, _)| file_name(n)).collect();
    let again = tempfile::tempdir().expect("tempdir");
    let results = c.get_many(&names, again.path(), &GetOptions::default(), &mut |_| {});
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    c.close().expect("close");
    for (name, data) in &files {
        assert_eq!(
            server.read_file(&format!("up-{name}")).as_deref(),
            Some(&data[..]),
            "{name}"
        );
    }
}

/// Sends `script` at once, half-closes, and returns everything the server sent until it
/// closed the connection.
fn play(addr: SocketAddr, script: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reader = stream.try_clone().expect("clone");
    std::thread::scope(|s| {
        let rx = s.spawn(move || {
            let mut out = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut buf = vec![0u8; 1 << 16];
            while Instant::now() < deadline {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                    Err(e) => panic!("reading: {e}"),
                }
            }
            out
        });
        // The server may close before it has read everything (a closing error).
        let _ = stream.write_all(script);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        rx.join().expect("reader")
    })
}

/// The modification time of the seeded files, as sent.
const SEEDED: &[u8] = b"2023-11-14T22:13:20Z";

/// Replaces the MTIME of `ok get` lines other than the seeded files' (files uploaded during
/// the script: the time of their commit differs between the servers) with `MTIME`.
fn normalize(octets: &[u8], seeded: &[u8]) -> Vec<u8> {
    const HEAD: &[u8] = b"\nok get ";
    let mut out = Vec::with_capacity(octets.len());
    let mut rest = octets;
    while let Some(at) = rest.windows(HEAD.len()).position(|w| w == HEAD) {
        let line_end = rest[at + 1..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|e| at + 1 + e);
        let Some(line_end) = line_end else { break };
        let line = &rest[at + 1..line_end];
        out.extend_from_slice(&rest[..at + 1]);
        match line.iter().rposition(|&b| b == b' ') {
            Some(sp) if &line[sp + 1..] != seeded => {
                out.extend_from_slice(&line[..sp + 1]);
                out.extend_from_slice(b"MTIME");
            }
            _ => out.extend_from_slice(line),
        }
        rest = &rest[line_end..];
    }
    out.extend_from_slice(rest);
    out
}

fn same_octets_from_both_servers<D: Driver>() {
    let threaded = TestServer::start();
    let ours = common::start::<D>();
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for (name, data) in contents() {
        threaded.write_file_with_mtime(&name, &data, when);
        ours.write_file_with_mtime(&name, &data, when);
    }
    let mut corrupt = b"put 5 new wait c\n".to_vec();
    encode_payload(b"hello", Digest::of(b"hellO"), &mut corrupt);
    let big = pattern(3 << 20);
    let scripts: Vec<Vec<u8>> = vec![
        // Every command and the non-closing errors, pipelined, ending with close.
        [
            &b"version 2\nversion 1\ndir\nget 0 bytes.bin\nget 100 two-chunks.bin\n"[..],
            "get 0 射频仿真.pptx\nget 0 my report (final).pdf\nget 9 empty\nget 0 empty\n"
                .as_bytes(),
            b"get 0 missing\nget 0 ../x\nget 0 .hidden\nDIR\nput 3 new wait \n",
            &put_now_bytes("n1", PutMode::New, &every_byte()),
            &put_now_bytes("empty", PutMode::New, b"abc"),
            b"put 3 new now .bad\ndata 3\nabcend xxh3-128:00000000000000000000000000000000\n",
            &put_now_bytes("empty", PutMode::Replace, b""),
            b"put 5 new now a\ndata 2\nheabort 430 changed\n",
            b"put 1099511627777 new wait huge\nput 3 new wait empty\n",
            b"get 0 n1\nclose\ndir\n",
        ]
        .concat(),
        // A waiting put whose `go` the script does not wait for: the server reads the
        // payload after `go` all the same; then 433.
        corrupt,
        // A large upload and its download, then EOF without close (CLOSE-5).
        {
            let mut s = b"put 3145728 new wait big\n".to_vec();
            encode_payload(&big, Digest::of(&big), &mut s);
            s.extend_from_slice(b"get 1048576 big\n");
            s
        },
        // Closing errors.
        b"version 1\nput\ndir\n".to_vec(),
        b"put 5 new later x\ndir\n".to_vec(),
        [vec![b'a'; 5000], b"\ndir\n".to_vec()].concat(),
        b"put 3 new now o\ndata 5\nhello".to_vec(),
        b"put 3 new now o\ndata 3\nabcend xxh3-128:XX\n".to_vec(),
        b"put 2000000 new now big2\n".to_vec(),
        // Noise.
        b"\x00\x01\x02\n\xff\n\r\n \n".to_vec(),
    ];
    for (i, script) in scripts.iter().enumerate() {
        let want = normalize(&play(threaded.addr, script), SEEDED);
        let got = normalize(&play(ours.addr, script), SEEDED);
        assert!(
            want.starts_with(b"ferry/1 ") && want.len() > 120,
            "script {i}: {want:?}"
        );
        if want != got {
            let at = want.iter().zip(&got).take_while(|(a, b)| a == b).count();
            let from = at.saturating_sub(200);
            panic!(
                "script {i}: the servers differ from octet {at}\nthreaded: {:?}\n{}: {:?}",
                String::from_utf8_lossy(&want[from..want.len().min(at + 200)]),
                D::NAME,
                String::from_utf8_lossy(&got[from..got.len().min(at + 200)]),
            );
        }
    }
    assert_eq!(threaded.visible_names(), ours.visible_names());
    for name in ours.visible_names() {
        assert!(threaded.read_file(&name) == ours.read_file(&name), "{name}");
    }
}
