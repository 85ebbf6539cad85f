#![no_main]
//! Arbitrary client octets, written in arbitrary pieces, against a real threaded server
//! session over loopback with a temporary root. Asserts: no panic anywhere (a panic in a
//! server thread aborts the process); the session ends within its limits; nothing appears
//! outside the root; no file is visible unless the server confirmed it with `ok put`; no
//! staging debris once the session is over.

use std::io::{Read, Write};
use std::net::{Shutdown as NetShutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ferry_sync::server::{Config, Shutdown, run};
use ferry_wire::Digest;

struct Env {
    addr: SocketAddr,
    parent: PathBuf,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        std::panic::set_hook(Box::new(|info| {
            eprintln!("{info}");
            std::process::abort();
        }));
        let dir = tempfile::tempdir().expect("tempdir");
        let parent = dir.path().to_path_buf();
        let root = parent.join("root");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = Config {
            root: root.clone(),
            max_eager: 4096,
            max_size: 1 << 20,
            idle_timeout: Duration::from_secs(2),
            stall_timeout: Duration::from_secs(1),
            ..Config::default()
        };
        std::thread::spawn(move || run(listener, config, Shutdown::new()));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !root.join(".ferry-staging").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        Env { addr, parent, root, _dir: dir }
    })
}

fn visible_files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root).expect("root").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name != ".ferry-staging" {
            out.push((name, std::fs::read(e.path()).unwrap_or_default()));
        }
    }
    out
}

/// Digests the server confirmed with `ok put SIZE DIGEST` lines.
fn confirmed(replies: &[u8]) -> Vec<String> {
    replies
        .split(|&b| b == b'\n')
        .filter_map(|l| l.strip_prefix(b"ok put "))
        .filter_map(|l| std::str::from_utf8(l).ok()?.split(' ').nth(1).map(str::to_owned))
        .collect()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let env = env();
    let mut stream = TcpStream::connect(env.addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut reader = stream.try_clone().expect("clone");
    let started = Instant::now();
    let replies = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = reader.read_to_end(&mut out);
        out
    });
    // Pieces of 1 to 64 octets, chosen from the data itself, so the same input always splits
    // the same way and tiny writes are exercised.
    let mut rest = data;
    let mut k = data.len();
    while !rest.is_empty() {
        k = k.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = (k >> 16) % 64 + 1;
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        if stream.write_all(piece).is_err() {
            break;
        }
        rest = tail;
    }
    let _ = stream.shutdown(NetShutdown::Write);
    let replies = replies.join().expect("reader");
    assert!(started.elapsed() < Duration::from_secs(8), "session outlived its limits");

    // Nothing escapes the root.
    let outside: Vec<_> = std::fs::read_dir(&env.parent).expect("parent").flatten().map(|e| e.file_name()).collect();
    assert_eq!(outside, ["root"], "something was created outside the root");
    // Staging debris goes away when the session ends.
    let staging = env.root.join(".ferry-staging");
    let deadline = Instant::now() + Duration::from_secs(3);
    while std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0) > 0 {
        assert!(Instant::now() < deadline, "staging debris after the session");
        std::thread::sleep(Duration::from_millis(2));
    }
    // Every visible file is a confirmed upload; then clean up for the next run.
    let ok = confirmed(&replies);
    for (name, content) in visible_files(&env.root) {
        let digest = Digest::of(&content).to_string();
        assert!(ok.contains(&digest), "{name:?} is visible but was never confirmed");
        let _ = std::fs::remove_file(env.root.join(&name));
    }
});
