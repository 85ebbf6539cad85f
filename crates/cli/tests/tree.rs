//! The folder commands of the `tree` extension (spec section 17, #17) as a user runs them:
//! against a scripted hostile server (what a listing can make `get -r` write), and against
//! a server without the extension.

mod common;

use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::thread;

use common::ferry_home;
use ferry_wire::{Digest, Greeting, Limits};

const MTIME: &str = "2024-03-01T08:00:00Z";

/// A server that offers `tree`, takes one connection, answers `list` with `listing`
/// (verbatim: it may be hostile), `get 0 PATH` with `content(PATH)`, `enable` and `close`,
/// and stops. Returns its address and what it was asked.
fn scripted(listing: String) -> (String, thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let handle = thread::spawn(move || {
        let mut asked = Vec::new();
        let Ok((stream, _)) = listener.accept() else {
            return asked;
        };
        let mut out = stream.try_clone().expect("clone");
        let greeting = ferry_wire::tree::offer(Greeting::new(Limits::default()))
            .expect("offer tree")
            .to_bytes();
        let _ = out.write_all(&greeting);
        let mut lines = BufReader::new(stream);
        loop {
            let mut line = String::new();
            match lines.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = line.trim_end().to_owned();
            asked.push(line.clone());
            let reply = if line.starts_with("list ") {
                listing.clone().into_bytes()
            } else if line == "enable tree" {
                b"ok enable tree\n".to_vec()
            } else if let Some(path) = line.strip_prefix("get 0 ") {
                let data = content(path);
                let mut r = format!("ok get {} {MTIME}\n", data.len()).into_bytes();
                ferry_wire::encode_payload(&data, Digest::of(&data), &mut r);
                r
            } else if line == "close" {
                let _ = out.write_all(b"bye\n");
                break;
            } else {
                b"err 500 syntax\n".to_vec()
            };
            if out.write_all(&reply).is_err() {
                break;
            }
        }
        asked
    });
    (addr, handle)
}

fn content(path: &str) -> Vec<u8> {
    format!("the file {path}\n").into_bytes()
}

fn file_line(path: &str) -> String {
    format!("f {} {MTIME} - {path}\n", content(path).len())
}

#[cfg(unix)]
#[test]
fn a_hostile_listing_cannot_make_get_r_write_outside_the_folder() {
    use std::os::unix::fs::symlink;
    let home = tempfile::tempdir().expect("home");
    let dest = tempfile::tempdir().expect("dest");
    let outside = tempfile::tempdir().expect("outside");
    // Links planted in the destination: a folder link, and a file link whose target must
    // stay untouched.
    symlink(outside.path(), dest.path().join("evil")).expect("symlink");
    fs::write(outside.path().join("target"), b"keep me").expect("write");
    symlink(outside.path().join("target"), dest.path().join("link.txt")).expect("symlink");
    let entries = [
        file_line("../escape.txt"),
        format!("d - {MTIME} - evil\n"),
        file_line("evil/pwned.txt"),
        file_line("good.txt"),
        file_line("link.txt"),
        file_line("sub/.hidden"),
        format!("d - {MTIME} - sub\n"),
    ];
    // Sorted by octets as TREE-6 wants ("sub" < "sub/.hidden" is the server's order).
    let mut sorted = entries.to_vec();
    sorted.sort_by(|a, b| {
        let key = |l: &String| l.rsplit(' ').next().map(str::to_owned);
        key(a).cmp(&key(b))
    });
    let listing = format!("ok list {}\n{}", sorted.len(), sorted.concat());
    let (addr, server) = scripted(listing);
    let out = ferry_home(
        dest.path(),
        home.path(),
        &["get", "-r", &addr, ".", "-o", "."],
    );
    let asked = server.join().expect("server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Nothing outside: the planted links were never followed.
    let names: Vec<_> = fs::read_dir(outside.path())
        .expect("read")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["target"], "{stderr}");
    assert_eq!(
        fs::read(outside.path().join("target")).expect("read"),
        b"keep me"
    );
    assert!(
        !dest
            .path()
            .parent()
            .expect("parent")
            .join("escape.txt")
            .exists()
    );
    // The good files are there; the link at a file's name was replaced, not written through.
    assert_eq!(
        fs::read(dest.path().join("good.txt")).expect("good"),
        content("good.txt")
    );
    let link = fs::symlink_metadata(dest.path().join("link.txt")).expect("link.txt");
    assert!(link.is_file(), "a regular file replaced the link");
    assert!(dest.path().join("sub").is_dir());
    // Invalid paths skipped with a warning, the folder link refused: a local error (6).
    assert!(
        stderr.contains("skipped a listed entry whose path is not valid"),
        "{stderr}"
    );
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    // Nothing was asked for through the link.
    assert!(
        !asked
            .iter()
            .any(|l| l.contains("pwned") || l.contains("escape")),
        "{asked:?}"
    );
}

#[test]
fn a_server_without_tree_gets_one_clear_message_and_exit_1() {
    let home = tempfile::tempdir().expect("home");
    let root = tempfile::tempdir().expect("root");
    // Scripted: the greeting has no `tree`; the command must send nothing but `close`.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let server = thread::spawn(move || {
        let mut asked = Vec::new();
        for _ in 0..5 {
            let Ok((stream, _)) = listener.accept() else {
                break;
            };
            let mut out = stream.try_clone().expect("clone");
            let _ = out.write_all(&Greeting::new(Limits::default()).to_bytes());
            let mut line = String::new();
            let _ = BufReader::new(stream).read_line(&mut line);
            let _ = out.write_all(b"bye\n");
            asked.push(line);
        }
        asked
    });
    let commands: [&[&str]; 5] = [
        &["ls", &addr],
        &["mkdir", "-p", &addr, "a/b"],
        &["rm", "-r", &addr, "a"],
        &["get", "-r", &addr, "a", "-o", "out"],
        &["mirror", "push", &addr, "."],
    ];
    for args in commands {
        let out = ferry_home(root.path(), home.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.trim_end(),
            "ferry: this server does not offer folders, delete or rename (no `tree` extension)",
            "{args:?}"
        );
        assert_eq!(out.status.code(), Some(1), "{args:?}");
    }
    let asked = server.join().expect("server");
    assert!(asked.iter().all(|l| l == "close\n"), "{asked:?}");
    assert!(!root.path().join("out").exists());
}
