//! `ferry serve --audit-log FILE` (#16): the real binary writes one JSON line per operation
//! (a failed auth with the name tried, dir, put, get, a user's auth and get, each session's
//! end), creates the file with mode 0600, opens it again on SIGHUP after a rename
//! (logrotate), and has written everything when it stops on SIGTERM.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use ferry_auth::keys::PrivateKey;
use ferry_auth::rights::Rights;
use ferry_auth::users::{Anonymous, User, UserName, UsersFile};
use ferry_test_support::RawSession;
use ferry_wire::{PutMode, Reply};
use rustix::process::{Pid, Signal, kill_process};
use serde_json::Value;

mod common;

use common::{Server, ferry_in, serve};

/// A name JSON must escape: quotes, braces, spaces, non-ASCII.
const NAME: &str = "a \"quoted\" {name} – ☕";

/// How long to wait for the server to do something before the test fails.
const WAIT: Duration = Duration::from_secs(20);

fn user(s: &str) -> UserName {
    UserName::new(s).expect("user")
}

fn ed25519_line(key: &PrivateKey, name: &str) -> Vec<u8> {
    // A plain connection (--auth-without-tls): the proof is bound to no channel.
    ferry_auth::proof::request(key, &[0; 32], &user(name)).encode()
}

fn signal(server: &Server, signal: Signal) {
    let pid = Pid::from_raw(i32::try_from(server.pid()).expect("pid")).expect("pid");
    kill_process(pid, signal).expect("signal");
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("read the audit log")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `op user name bytes result code error` of a line.
fn summary(v: &Value) -> String {
    format!(
        "{} {} {} {} {} {} {}",
        v["op"].as_str().unwrap_or("?"),
        v["user"],
        v["name"],
        v["bytes"],
        v["result"].as_str().unwrap_or("?"),
        v["code"],
        v["error"],
    )
}

#[test]
fn the_audit_log_has_every_operation_survives_a_rotation_and_is_complete_at_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (public, home) = (dir.path().join("public"), dir.path().join("alice"));
    std::fs::create_dir(&public).expect("folder");
    std::fs::create_dir(&home).expect("folder");
    std::fs::write(home.join("alice.txt"), b"alice's").expect("file");
    let alice = PrivateKey::generate("alice@test").expect("key");
    let mut file = UsersFile::default();
    let mut ua = User::new(home.clone(), Rights::READ_ONLY).expect("user");
    ua.keys.push(alice.public().clone());
    file.users.insert(user("alice"), ua);
    file.anonymous = Some(Anonymous {
        root: public.clone(),
        rights: "list,read,create".parse().expect("rights"),
        quota_bytes: None,
        quota_files: None,
    });
    let users = dir.path().join("users.toml");
    file.save(&users).expect("save");
    let log = dir.path().join("audit.log");
    let mut server = serve(&[
        "--listen",
        "127.0.0.1:0",
        "--users",
        users.to_str().expect("UTF-8"),
        "--auth-without-tls",
        "--audit-log",
        log.to_str().expect("UTF-8"),
    ]);
    let mode = std::fs::metadata(&log)
        .expect("the log exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let addr = server.addr.parse().expect("address");

    // Anonymous: a failed auth, dir, put, get, close.
    let mut s = RawSession::connect(addr);
    s.expect_greeting();
    let mallory = PrivateKey::generate("mallory@test").expect("key");
    s.send(&ed25519_line(&mallory, "mallory"));
    s.expect_err(535);
    s.send(b"dir\n");
    s.expect_line("ok dir 0");
    let reply = s.put_wait(NAME, PutMode::New, b"audit me");
    assert!(matches!(reply, Reply::PutOk { size: 8, .. }), "{reply:?}");
    assert_eq!(s.get(NAME).expect("get").0, b"audit me");
    s.send(b"close\n");
    s.expect_line("bye");
    s.expect_closed();
    drop(s);

    // logrotate: move the file away, SIGHUP; the server makes a new one.
    let rotated = dir.path().join("audit.log.1");
    std::fs::rename(&log, &rotated).expect("rename");
    signal(&server, Signal::HUP);
    let deadline = Instant::now() + WAIT;
    while !log.exists() {
        assert!(Instant::now() < deadline, "no new audit log after SIGHUP");
        std::thread::sleep(Duration::from_millis(10));
    }

    // alice, after the rotation.
    let mut s = RawSession::connect(addr);
    s.expect_greeting();
    s.send(&ed25519_line(&alice, "alice"));
    s.expect_line("ok auth alice");
    assert_eq!(s.get("alice.txt").expect("get").0, b"alice's");
    s.send(b"close\n");
    s.expect_line("bye");
    s.expect_closed();
    drop(s);

    // SIGTERM: a graceful stop writes what is queued before the exit.
    signal(&server, Signal::TERM);
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}");

    let before = read_lines(&rotated);
    let after = read_lines(&log);
    let name = serde_json::to_string(NAME).expect("JSON");
    // The first session's end may be written after the rename (it comes when the session is
    // over, after `bye`): wherever it is, it is there once.
    let all: Vec<String> = before.iter().chain(&after).map(summary).collect();
    assert_eq!(
        all.iter().filter(|l| l.starts_with("end ")).count(),
        2,
        "{all:#?}"
    );
    let operations: Vec<&String> = all.iter().filter(|l| !l.starts_with("end ")).collect();
    assert_eq!(
        operations,
        [
            "auth \"mallory\" null 0 err 535 \"auth-failed\"",
            "dir null null 0 ok null null",
            &format!("put null {name} 8 ok null null"),
            &format!("get null {name} 8 ok null null"),
            "auth \"alice\" null 0 ok null null",
            "get \"alice\" \"alice.txt\" 7 ok null null",
        ],
        "{all:#?}"
    );
    assert_eq!(before.len(), 4 + usize::from(before.len() == 5), "{all:#?}");
    assert!(
        after.iter().any(|v| v["user"] == "alice"),
        "alice's session is in the new file: {all:#?}"
    );
    let peer = before[0]["peer"].as_str().expect("peer");
    assert!(peer.starts_with("127.0.0.1:"), "{peer}");
    let time = before[0]["time"].as_str().expect("time");
    assert!(time.len() == 24 && time.ends_with('Z'), "{time}");
}

#[test]
fn an_audit_log_in_the_served_folder_or_that_cannot_be_opened_stops_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("served");
    std::fs::create_dir(&root).expect("folder");
    let root_s = root.to_str().expect("UTF-8");
    let inside = root.join("audit.log");
    let out = ferry_in(
        dir.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--root",
            root_s,
            "--audit-log",
            inside.to_str().expect("UTF-8"),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("audit log") && err.contains("inside the served folder"),
        "{err}"
    );
    assert!(!inside.exists());
    // A folder is not a file to append to.
    let out = ferry_in(
        dir.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--root",
            root_s,
            "--audit-log",
            dir.path().to_str().expect("UTF-8"),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open the audit log"), "{err}");
}
