#![no_main]
//! Arbitrary client octets, written in arbitrary pieces, against a real threaded server
//! session over loopback with a temporary root. Asserts: no panic anywhere (a panic in a
//! server thread aborts the process); the session ends within its limits; nothing appears
//! outside the root; no file is visible unless the server confirmed it with `ok put`, and no
//! folder unless it confirmed one with `ok mkdir` (the `tree` extension); no staging debris
//! once the session is over.

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
        Env {
            addr,
            parent,
            root,
            _dir: dir,
        }
    })
}

/// Every file and folder under the root but the staging folder, as (path, is_folder, content).
fn visible(root: &Path) -> Vec<(PathBuf, bool, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).expect("folder").flatten() {
            let path = e.path();
            if path == root.join(".ferry-staging") {
                continue;
            }
            let kind = e.file_type().expect("file type");
            assert!(
                !kind.is_symlink(),
                "{path:?}: the server made a symbolic link"
            );
            if kind.is_dir() {
                todo.push(path.clone());
                out.push((path, true, Vec::new()));
            } else {
                let content = std::fs::read(&path).unwrap_or_default();
                out.push((path, false, content));
            }
        }
    }
    out
}

/// Digests the server confirmed with `ok put SIZE DIGEST` lines.
fn confirmed(replies: &[u8]) -> Vec<String> {
    replies
        .split(|&b| b == b'\n')
        .filter_map(|l| l.strip_prefix(b"ok put "))
        .filter_map(|l| {
            std::str::from_utf8(l)
                .ok()?
                .split(' ')
                .nth(1)
                .map(str::to_owned)
        })
        .collect()
}

/// How many folders the server confirmed creating (`ok mkdir`); a rename moves a folder but
/// never makes one, so no session can leave more folders than this.
fn folders_made(replies: &[u8]) -> usize {
    replies
        .split(|&b| b == b'\n')
        .filter(|l| *l == b"ok mkdir")
        .count()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let env = env();
    let mut stream = TcpStream::connect(env.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
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
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "session outlived its limits"
    );

    // Nothing escapes the root.
    let outside: Vec<_> = std::fs::read_dir(&env.parent)
        .expect("parent")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(outside, ["root"], "something was created outside the root");
    // Staging debris goes away when the session ends.
    let staging = env.root.join(".ferry-staging");
    let deadline = Instant::now() + Duration::from_secs(3);
    while std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0) > 0 {
        assert!(
            Instant::now() < deadline,
            "staging debris after the session"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // Every visible file is a confirmed upload, every folder a confirmed `mkdir`; then clean
    // up for the next run.
    let ok = confirmed(&replies);
    let entries = visible(&env.root);
    let folders = entries.iter().filter(|(_, dir, _)| *dir).count();
    assert!(
        folders <= folders_made(&replies),
        "{folders} folders but fewer confirmed mkdirs"
    );
    for (path, dir, content) in &entries {
        if !dir {
            let digest = Digest::of(content).to_string();
            assert!(
                ok.contains(&digest),
                "{path:?} is visible but was never confirmed"
            );
        }
    }
    for e in std::fs::read_dir(&env.root).expect("root").flatten() {
        if e.file_name() != ".ferry-staging" {
            let _ = match e.file_type().map(|t| t.is_dir()) {
                Ok(true) => std::fs::remove_dir_all(e.path()),
                _ => std::fs::remove_file(e.path()),
            };
        }
    }
});
