//! The `ferry` binary end to end: `ferry serve` as a child process (killed by a guard, so no
//! process outlives a test), then `put`, `dir`, `get` against it (`shell` in shell.rs), with their output
//! and exit codes; and a few scripted fake servers for the integrity and protocol exits.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::{FERRY, ferry_in};
const TIMEOUT: Duration = Duration::from_secs(10);

/// A `ferry serve` child process on a folder of its own, killed and reaped on drop.
struct Server {
    proc: common::Server,
    addr: String,
    root: tempfile::TempDir,
}

impl Server {
    fn start(extra: &[&str]) -> Self {
        Self::start_with(extra, &[])
    }

    /// A server with `extra` arguments and `env` variables.
    fn start_with(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let root_s = root.path().to_str().expect("utf-8").to_owned();
        let mut args = vec!["--listen", "127.0.0.1:0", "--root", &root_s];
        args.extend_from_slice(extra);
        let proc = common::serve_with(&args, env);
        let addr = proc.addr.clone();
        Server { proc, addr, root }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }
}

fn ferry(args: &[&str]) -> Output {
    let cwd = std::env::temp_dir();
    ferry_in(&cwd, args, b"")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_exit(o: &Output, want: i32) {
    assert_eq!(
        code(o),
        want,
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
}

/// An address nothing listens on.
fn dead_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr").to_string();
    drop(l);
    a
}

#[test]
fn put_dir_get_round_trip() {
    let server = Server::start(&[]);
    let work = tempfile::tempdir().expect("tempdir");
    let a = work.path().join("天线15.doc");
    fs::write(&a, b"hello").expect("file");
    let b = work.path().join("my report (final).pdf");
    fs::write(&b, vec![7u8; 100_000]).expect("file");
    let a = a.to_str().expect("utf8");
    let b = b.to_str().expect("utf8");

    let o = ferry(&["put", &server.addr, a, b]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).is_empty(),
        "quiet when not a terminal: {}",
        stdout(&o)
    );
    assert_eq!(
        fs::read(server.root().join("天线15.doc")).expect("stored"),
        b"hello"
    );

    let o = ferry(&["put", &server.addr, a, "--as", "copy.doc"]);
    assert_exit(&o, 0);

    let o = ferry(&["dir", &server.addr]);
    assert_exit(&o, 0);
    let lines: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].trim_start().starts_with("     5  ") || lines[0].contains("5  "),
        "{lines:?}"
    );
    assert!(lines[0].ends_with("  copy.doc"), "{lines:?}");
    assert!(lines[1].ends_with("  my report (final).pdf") && lines[1].contains("100000  "));
    assert!(lines[2].ends_with("  天线15.doc"));

    let o = ferry(&["dir", &server.addr, "--json"]);
    assert_exit(&o, 0);
    let objs: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(objs.len(), 3);
    assert!(
        stdout(&o).starts_with("{\"name\":\"copy.doc\",\"size\":5,\"mtime\":\""),
        "{}",
        stdout(&o)
    );
    assert_eq!(objs[2]["name"], "天线15.doc");
    assert_eq!(objs[2]["size"], 5);
    let mtime = objs[2]["mtime"].as_str().expect("mtime");
    assert!(
        mtime.len() == 20 && mtime.ends_with('Z') && mtime.as_bytes()[10] == b'T',
        "{mtime}"
    );

    // One name to a file path, several names to a folder (created).
    let out = tempfile::tempdir().expect("tempdir");
    let single = out.path().join("renamed.doc");
    let o = ferry(&[
        "get",
        &server.addr,
        "天线15.doc",
        "-o",
        single.to_str().expect("utf8"),
    ]);
    assert_exit(&o, 0);
    assert_eq!(fs::read(&single).expect("got"), b"hello");
    let folder = out.path().join("many");
    let o = ferry(&[
        "get",
        &server.addr,
        "天线15.doc",
        "my report (final).pdf",
        "copy.doc",
        "-o",
        folder.to_str().expect("utf8"),
    ]);
    assert_exit(&o, 0);
    let mut got: Vec<String> = fs::read_dir(&folder)
        .expect("folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, ["copy.doc", "my report (final).pdf", "天线15.doc"]);
    assert_eq!(
        fs::read(folder.join("my report (final).pdf")).expect("got"),
        vec![7u8; 100_000]
    );

    // Into the current folder by default, and with -o naming an existing folder.
    let o = ferry_in(out.path(), &["get", &server.addr, "copy.doc"], b"");
    assert_exit(&o, 0);
    assert_eq!(
        fs::read(out.path().join("copy.doc")).expect("got"),
        b"hello"
    );
    let o = ferry(&[
        "get",
        &server.addr,
        "copy.doc",
        "-o",
        folder.to_str().expect("utf8"),
    ]);
    assert_exit(&o, 0);
}

#[test]
fn exit_codes_for_refusals_and_connection_failures() {
    let server = Server::start(&[]);
    let work = tempfile::tempdir().expect("tempdir");
    fs::write(work.path().join("a.txt"), b"a").expect("file");
    let a = work.path().join("a.txt");
    let a = a.to_str().expect("utf8");

    let o = ferry_in(work.path(), &["get", &server.addr, "nope.txt"], b"");
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("511"), "{}", stderr(&o));
    assert!(!work.path().join("nope.txt").exists());

    assert_exit(&ferry(&["put", &server.addr, a]), 0);
    let o = ferry(&["put", &server.addr, a]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("512"), "{}", stderr(&o));
    assert_exit(&ferry(&["put", &server.addr, a, "--replace"]), 0);

    // The most severe outcome wins: one success, one permanent refusal.
    let o = ferry_in(
        work.path(),
        &["get", &server.addr, "a.txt", "nope.txt"],
        b"",
    );
    assert_exit(&o, 1);
    assert!(work.path().join("a.txt").exists());

    let o = ferry(&["dir", &dead_addr()]);
    assert_exit(&o, 3);
    assert!(stderr(&o).contains("cannot"), "{}", stderr(&o));
    assert_exit(&ferry(&["get", &dead_addr(), "x"]), 3);

    // Usage errors.
    assert_exit(&ferry(&["get", &server.addr, "../etc/passwd"]), 2);
    assert_exit(&ferry(&["put", &server.addr, a, a, "--as", "x"]), 2);
    assert_exit(&ferry(&["dir"]), 2);
    let hidden = work.path().join(".hidden");
    fs::write(&hidden, b"h").expect("file");
    assert_exit(
        &ferry(&["put", &server.addr, hidden.to_str().expect("utf8")]),
        2,
    );
    // A missing local file is a local I/O error.
    let missing = work.path().join("missing");
    assert_exit(
        &ferry(&["put", &server.addr, missing.to_str().expect("utf8")]),
        6,
    );
}

#[test]
fn read_only_and_busy_servers() {
    let server = Server::start(&["--read-only", "--max-connections", "1"]);
    let work = tempfile::tempdir().expect("tempdir");
    let f = work.path().join("f");
    fs::write(&f, b"f").expect("file");
    let o = ferry(&["put", &server.addr, f.to_str().expect("utf8")]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("514"), "{}", stderr(&o));
    // SEC-10: nothing was created in the served folder, not even the staging area.
    assert_eq!(
        fs::read_dir(server.root()).expect("served folder").count(),
        0,
        "a read-only server wrote to its folder"
    );

    // Hold the only session, then try another: 420 busy is transient. The put's session may
    // still hold the slot for a moment after the client exited: wait until it is free.
    let deadline = std::time::Instant::now() + TIMEOUT;
    let held = loop {
        let mut held = TcpStream::connect(&server.addr).expect("connect");
        held.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let mut greeting = [0u8; 7];
        held.read_exact(&mut greeting).expect("greeting");
        if &greeting == b"ferry/1" {
            break held;
        }
        assert_eq!(&greeting, b"err 420", "neither greeting nor busy");
        assert!(
            std::time::Instant::now() < deadline,
            "the slot was never freed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let o = ferry(&["dir", &server.addr]);
    assert_exit(&o, 4);
    assert!(stderr(&o).contains("420"), "{}", stderr(&o));
    drop(held);
}

#[test]
fn resume_with_continue() {
    let server = Server::start(&[]);
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(server.root().join("big.bin"), &data).expect("file");
    let work = tempfile::tempdir().expect("tempdir");
    fs::write(work.path().join("big.bin.ferry-part"), &data[..1_234_567]).expect("part");
    let o = ferry_in(
        work.path(),
        &["get", &server.addr, "big.bin", "--continue"],
        b"",
    );
    assert_exit(&o, 0);
    assert!(fs::read(work.path().join("big.bin")).expect("got") == data);
    assert!(!work.path().join("big.bin.ferry-part").exists());
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read the folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn output_ending_with_a_separator_is_a_folder_created_if_missing() {
    let server = Server::start(&[]);
    let data: Vec<u8> = (0..1_500_000u32).map(|i| (i * 13 % 251) as u8).collect();
    fs::write(server.root().join("天线15.doc"), &data).expect("file");
    fs::write(server.root().join("b.txt"), b"bee").expect("file");
    for imp in ["threads", "tokio", "async-std", "smol"] {
        for extra in [&[][..], &["--continue"][..]] {
            // One name, `-o downloads/` with downloads/ missing: saved inside it.
            let work = tempfile::tempdir().expect("tempdir");
            let out = format!("{}/downloads/", work.path().to_str().expect("utf8"));
            let mut args = vec!["get", &server.addr, "天线15.doc", "-o", &out, "--impl", imp];
            args.extend_from_slice(extra);
            let o = ferry(&args);
            assert_exit(&o, 0);
            assert!(
                fs::read(work.path().join("downloads/天线15.doc")).expect("downloaded") == data,
                "{imp} {extra:?}"
            );
            assert_eq!(names_in(work.path()), ["downloads"], "{imp} {extra:?}");
            assert_eq!(
                names_in(&work.path().join("downloads")),
                ["天线15.doc"],
                "{imp} {extra:?}"
            );

            // Two names, `-o newdir/` (nested, missing): both inside it.
            let out = format!("{}/new/dir/", work.path().to_str().expect("utf8"));
            let mut args = vec!["get", &server.addr, "天线15.doc", "b.txt", "-o", &out];
            args.extend_from_slice(&["--impl", imp]);
            args.extend_from_slice(extra);
            let o = ferry(&args);
            assert_exit(&o, 0);
            let dir = work.path().join("new/dir");
            assert_eq!(names_in(&dir), ["b.txt", "天线15.doc"], "{imp} {extra:?}");
            assert!(fs::read(dir.join("天线15.doc")).expect("downloaded") == data);
            assert_eq!(fs::read(dir.join("b.txt")).expect("downloaded"), b"bee");
            assert_eq!(
                names_in(work.path()),
                ["downloads", "new"],
                "{imp} {extra:?}"
            );
            assert_eq!(
                names_in(&work.path().join("new")),
                ["dir"],
                "{imp} {extra:?}"
            );
        }
    }

    // `--continue` into a folder named with a separator resumes the partial file in it.
    let work = tempfile::tempdir().expect("tempdir");
    fs::create_dir(work.path().join("downloads")).expect("mkdir");
    fs::write(
        work.path().join("downloads/天线15.doc.ferry-part"),
        &data[..600_000],
    )
    .expect("part");
    let out = format!("{}/downloads/", work.path().to_str().expect("utf8"));
    let o = ferry(&["get", &server.addr, "天线15.doc", "-o", &out, "--continue"]);
    assert_exit(&o, 0);
    assert!(fs::read(work.path().join("downloads/天线15.doc")).expect("resumed") == data);
    assert_eq!(names_in(&work.path().join("downloads")), ["天线15.doc"]);

    // A file where the folder should be: a usage error, and the file is left alone.
    let work = tempfile::tempdir().expect("tempdir");
    fs::write(work.path().join("downloads"), b"a file").expect("file");
    let out = format!("{}/downloads/", work.path().to_str().expect("utf8"));
    let o = ferry(&["get", &server.addr, "b.txt", "-o", &out]);
    assert_exit(&o, 2);
    assert_eq!(names_in(work.path()), ["downloads"]);
    assert_eq!(
        fs::read(work.path().join("downloads")).expect("kept"),
        b"a file"
    );
}

#[test]
fn sigterm_stops_the_server_promptly_with_status_0() {
    let mut server = Server::start(&[]);
    // A session is open when the signal comes: it gets 422 and the server still exits.
    let mut s = TcpStream::connect(&server.addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut greeting = [0u8; 7];
    s.read_exact(&mut greeting).expect("greeting");
    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &server.proc.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let exit = loop {
        if let Some(status) = server.proc.child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still running after SIGTERM"
        );
        thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(exit.code(), Some(0));
    let mut rest = String::new();
    let _ = s.read_to_string(&mut rest);
    assert!(rest.contains("err 422"), "{rest:?}");
}

#[test]
fn help_documents_the_exit_codes() {
    let o = ferry(&["--help"]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    for needle in ["Exit codes", "5  integrity failure", "serve", "shell"] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
    assert_exit(&ferry(&["dir", "127.0.0.1:1", "--impl", "threads"]), 3);
    assert_exit(&ferry(&["dir", "127.0.0.1:1", "--impl", "tokio"]), 3);
    assert_exit(&ferry(&["dir", "127.0.0.1:1", "--impl", "fibers"]), 2);
}

/// Every engine serves, and every engine's client talks to every engine's server: a put by
/// one, a listing and a byte-exact get by the next.
#[test]
fn every_impl_serves_and_every_impl_is_a_client() {
    const IMPLS: [&str; 4] = ["threads", "tokio", "async-std", "smol"];
    for (i, server_impl) in IMPLS.iter().enumerate() {
        let server = Server::start(&["--impl", server_impl]);
        let work = tempfile::tempdir().expect("tempdir");
        let up = work.path().join("天线15.doc");
        let body: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        fs::write(&up, &body).expect("file");
        let putter = IMPLS[(i + 1) % IMPLS.len()];
        let getter = IMPLS[(i + 2) % IMPLS.len()];
        assert_exit(
            &ferry(&[
                "put",
                &server.addr,
                up.to_str().expect("utf8"),
                "--impl",
                putter,
            ]),
            0,
        );
        let listing = ferry(&["dir", &server.addr, "--json", "--impl", getter]);
        assert_exit(&listing, 0);
        assert!(
            String::from_utf8_lossy(&listing.stdout).contains("\"size\":70000"),
            "{server_impl}"
        );
        let down = work.path().join("down");
        assert_exit(
            &ferry(&[
                "get",
                &server.addr,
                "天线15.doc",
                "-o",
                down.to_str().expect("utf8"),
                "--impl",
                getter,
            ]),
            0,
        );
        assert_eq!(
            fs::read(&down).expect("downloaded"),
            body,
            "server {server_impl}, client {getter}"
        );
    }
}

// ------------------------------------------------------- scripted servers ---

const GREETING: &str = "ferry/1 max-line=4096 max-name=255 max-size=1099511627776 \
                        max-chunk=1048576 max-eager=1048576 idle=300 stall=60\n";

/// A one-connection fake server that answers the first request line with `reply`.
fn fake(reply: Vec<u8>) -> (String, thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let h = thread::spawn(move || {
        l.set_nonblocking(true).expect("nonblocking");
        let deadline = Instant::now() + TIMEOUT;
        let (s, _) = loop {
            match l.accept() {
                Ok(x) => break x,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("no client: {e}"),
            }
        };
        s.set_nonblocking(false).expect("blocking");
        s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let mut w = s.try_clone().expect("clone");
        w.write_all(GREETING.as_bytes()).expect("greeting");
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).expect("request");
        w.write_all(&reply).expect("reply");
        let _ = w.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = r.read_to_end(&mut sink);
    });
    (addr, h)
}

#[test]
fn integrity_and_protocol_failures_from_a_bad_server() {
    let work = tempfile::tempdir().expect("tempdir");
    // Wrong digest: exit 5, nothing written.
    let mut reply = b"ok get 5 2024-03-01T08:00:00Z\ndata 5\nhello".to_vec();
    reply.extend_from_slice(b"end xxh3-128:00000000000000000000000000000000\n");
    let (addr, h) = fake(reply);
    let o = ferry_in(work.path(), &["get", &addr, "a.txt"], b"");
    assert_exit(&o, 5);
    h.join().expect("fake server");
    // Truncated: exit 5, the destination is not created.
    let (addr, h) = fake(b"ok get 10 2024-03-01T08:00:00Z\ndata 10\nhel".to_vec());
    let o = ferry_in(work.path(), &["get", &addr, "a.txt"], b"");
    assert_exit(&o, 5);
    assert!(stderr(&o).contains("--continue"), "{}", stderr(&o));
    h.join().expect("fake server");
    assert!(!work.path().join("a.txt").exists());
    // A listing with hostile names: those entries are skipped and named on stderr (escaped),
    // the valid one is listed, exit 0 (NAME-14, NAME-15).
    let (addr, h) = fake(
        b"ok dir 3\n1 2024-03-01T08:00:00Z ../../etc/passwd\n2 2024-03-01T08:00:00Z caf\xe9.txt\n\
          5 2024-03-01T08:00:00Z good.txt\n"
            .to_vec(),
    );
    let o = ferry(&["dir", &addr]);
    assert_exit(&o, 0);
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("good.txt"), "{out}");
    assert!(!out.contains("passwd") && !out.contains("caf"), "{out}");
    let skipped: Vec<&str> = err.lines().filter(|l| l.contains("skipped")).collect();
    assert_eq!(skipped.len(), 2, "{err}");
    assert!(skipped[0].contains("../../etc/passwd"), "{err}");
    assert!(skipped[1].contains("caf\\xe9.txt"), "{err}");
    h.join().expect("fake server");
    // A listing out of order (even by a skipped name) is a protocol violation: exit 3,
    // nothing listed (DIR-10).
    let (addr, h) = fake(
        b"ok dir 2\n5 2024-03-01T08:00:00Z good.txt\n1 2024-03-01T08:00:00Z ../../etc/passwd\n"
            .to_vec(),
    );
    let o = ferry(&["dir", &addr]);
    assert_exit(&o, 3);
    assert!(stdout(&o).is_empty());
    h.join().expect("fake server");
}

// ------------------------------------------------- issue 18: a tool to enjoy ---

/// A port that accepts connections and never says anything; it stops by itself once the
/// returned sender is dropped (or after a minute).
fn silent_server() -> (String, mpsc::Sender<()>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    l.set_nonblocking(true).expect("nonblocking");
    thread::spawn(move || {
        let mut held = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok((s, _)) = l.accept() {
                held.push(s);
            }
            match stop_rx.recv_timeout(Duration::from_millis(10)) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                _ => break,
            }
        }
    });
    (addr, stop_tx)
}

#[test]
fn a_silent_server_fails_after_timeout_with_a_hint() {
    let (addr, _stop) = silent_server();
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("a.txt");
    fs::write(&file, b"a").expect("file");
    let want = format!("no answer from {addr} within 1s — is `ferry serve` running there?");
    for args in [
        vec!["dir", &addr, "--timeout", "1s"],
        vec!["dir", &addr, "--timeout", "1s", "--impl", "tokio"],
        vec!["dir", &addr, "--timeout", "1s", "--impl", "smol"],
        vec!["get", &addr, "x", "--timeout", "1s", "--impl", "async-std"],
        vec![
            "put",
            &addr,
            file.to_str().expect("utf8"),
            "--timeout",
            "1s",
        ],
    ] {
        let o = ferry_in(work.path(), &args, b"");
        assert_exit(&o, 3);
        assert!(stderr(&o).contains(&want), "{args:?}: {}", stderr(&o));
    }
    // Durations are written one way: a bad one is a usage error naming the forms.
    let o = ferry(&["dir", &addr, "--timeout", "soon"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("90s, 5m"), "{}", stderr(&o));
    assert_exit(&ferry(&["dir", &addr, "--timeout", "0s"]), 2);
}

#[test]
fn a_dripping_server_fails_at_the_minimum_rate() {
    // #14 item 5: a get of 1 MiB dripped an octet per 200 ms never lets `--timeout 1s`
    // fire; the default `--min-rate` (1 KiB/s after the timeout) ends it with exit 3, like
    // a timeout, and keeps the partial file for `--continue`.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    l.set_nonblocking(true).expect("nonblocking");
    let h = thread::spawn(move || {
        let deadline = Instant::now() + TIMEOUT;
        let (s, _) = loop {
            match l.accept() {
                Ok(x) => break x,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("no client: {e}"),
            }
        };
        s.set_nonblocking(false).expect("blocking");
        let mut w = s.try_clone().expect("clone");
        s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        w.write_all(GREETING.as_bytes()).expect("greeting");
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).expect("request");
        w.write_all(b"ok get 1048576 2024-03-01T08:00:00Z\ndata 1048576\n")
            .expect("reply");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) && w.write_all(b"x").is_ok() {
            thread::sleep(Duration::from_millis(200));
        }
    });
    let work = tempfile::tempdir().expect("tempdir");
    let o = ferry_in(
        work.path(),
        &["get", &addr, "a.txt", "--timeout", "1s"],
        b"",
    );
    assert_exit(&o, 3);
    let err = stderr(&o);
    assert!(
        err.contains("slower than the minimum rate of 1 KiB/s after 1.0 s of grace")
            && err.contains("`--min-rate 0` none")
            && err.contains("--continue"),
        "{err}"
    );
    assert!(!work.path().join("a.txt").exists());
    h.join().expect("fake server");
    let o = ferry(&["dir", "127.0.0.1:1", "--min-rate", "fast"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("10MiB, 1GB"), "{}", stderr(&o));
}

#[test]
fn connection_refused_asks_whether_the_server_runs() {
    let addr = dead_addr();
    let o = ferry(&["dir", &addr]);
    assert_exit(&o, 3);
    assert!(
        stderr(&o).contains(&format!("is `ferry serve` running on {addr}?")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn denied_is_shown_with_its_meaning() {
    let work = tempfile::tempdir().expect("tempdir");
    let (addr, h) = fake(b"err 516 denied\n".to_vec());
    let o = ferry_in(work.path(), &["get", &addr, "a.txt"], b"");
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains("get a.txt: server error 516 denied ("),
        "{err}"
    );
    assert!(err.contains("permission problem on the server"), "{err}");
    assert!(err.contains("retrying will not help"), "{err}");
    h.join().expect("fake server");
}

#[test]
fn sizes_in_serve_flags_env_and_config_file() {
    let work = tempfile::tempdir().expect("tempdir");
    let big = work.path().join("big.bin");
    fs::write(&big, vec![7u8; 2000]).expect("file");
    let small = work.path().join("small.bin");
    fs::write(&small, vec![7u8; 1000]).expect("file");
    let (big, small) = (
        big.to_str().expect("utf8").to_owned(),
        small.to_str().expect("utf8").to_owned(),
    );
    // A flag.
    let server = Server::start(&["--max-file-size", "1KiB"]);
    let o = ferry(&["put", &server.addr, &big]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("513 too-large"), "{}", stderr(&o));
    assert_exit(&ferry(&["put", &server.addr, &small]), 0);
    drop(server);
    // The environment.
    let server = Server::start_with(&[], &[("FERRY_MAX_FILE_SIZE", "1kB")]);
    assert_exit(&ferry(&["put", &server.addr, &small]), 0);
    let o = ferry(&["put", &server.addr, &big]);
    assert_exit(&o, 1);
    drop(server);
    // Accepted and refused forms.
    for ok in ["10MiB", "1GB", "4 KiB", "1000"] {
        let server = Server::start(&["--max-file-size", ok, "--max-eager", ok]);
        assert_exit(&ferry(&["dir", &server.addr]), 0);
    }
    for bad in ["10 parsecs", "MiB", "-1", "1.5.3GB"] {
        let o = ferry(&["serve", &format!("--max-file-size={bad}")]);
        assert_exit(&o, 2);
        assert!(
            stderr(&o).contains("is not a size such as 10MiB"),
            "{bad}: {}",
            stderr(&o)
        );
    }
    for bad in ["0s", "500ms", "later"] {
        assert_exit(&ferry(&["serve", "--idle-timeout", bad]), 2);
    }
}

/// `--quota SIZE` (or `FERRY_QUOTA`) bounds what the served folder holds (PUT-23): a put
/// that would exceed it gets `err 432 no-space`, shown with its meaning, exit 4 (transient);
/// what fits is stored.
#[test]
fn quota_flag_and_env() {
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("f.bin");
    fs::write(&file, vec![7u8; 1000]).expect("file");
    let file = file.to_str().expect("utf8").to_owned();
    for (flags, env) in [
        (&["--quota", "1.5kB"][..], &[][..]),
        (&[][..], &[("FERRY_QUOTA", "1500")][..]),
    ] {
        let server = Server::start_with(flags, env);
        assert_exit(&ferry(&["put", &server.addr, &file]), 0);
        let o = ferry(&["put", &server.addr, &file, "--as", "g.bin"]);
        assert_exit(&o, 4);
        let err = stderr(&o);
        assert!(err.contains("432 no-space"), "{flags:?} {env:?}: {err}");
        assert!(err.contains("quota"), "{err}");
        // A replace is credited the file it replaces.
        assert_exit(&ferry(&["put", &server.addr, &file, "--replace"]), 0);
    }
}

#[test]
fn serve_config_file_with_flags_and_env_over_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let conf = work.path().join("ferry.toml");
    fs::write(
        &conf,
        "root = \"served\"\nread-only = true\nmax-file-size = \"1KiB\"\nidle-timeout = \"5m\"\n",
    )
    .expect("config");
    fs::create_dir(work.path().join("served")).expect("folder");
    fs::write(work.path().join("served/there.txt"), b"hi").expect("file");
    let file = work.path().join("up.bin");
    fs::write(&file, vec![1u8; 100]).expect("file");
    let file = file.to_str().expect("utf8");
    // Server::start passes its own --root, which beats the file's root; a server without it
    // serves the file's root (relative to the file's folder).
    let mut child = Command::new(FERRY)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&conf)
        .env("FERRY_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("address")
        .to_owned();
    let o = ferry(&["dir", &addr]);
    let _ = child.kill();
    let _ = child.wait();
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("there.txt"), "{}", stdout(&o));

    let conf = conf.to_str().expect("utf8");
    // read-only from the file.
    let server = Server::start(&["--config", conf]);
    let o = ferry(&["put", &server.addr, file]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("514 read-only"), "{}", stderr(&o));
    drop(server);
    // A flag beats the file; the rest of the file still applies (max-file-size 1KiB).
    let server = Server::start(&["--config", conf, "--read-only=false"]);
    assert_exit(&ferry(&["put", &server.addr, file]), 0);
    let big = work.path().join("big.bin");
    fs::write(&big, vec![1u8; 2000]).expect("file");
    let o = ferry(&["put", &server.addr, big.to_str().expect("utf8")]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("513"), "{}", stderr(&o));
    drop(server);
    // So does a variable.
    let server = Server::start_with(&["--config", conf], &[("FERRY_READ_ONLY", "false")]);
    assert_exit(&ferry(&["put", &server.addr, file]), 0);
    drop(server);
    // A wrong key or value is a usage error naming it.
    let bad = work.path().join("bad.toml");
    fs::write(&bad, "max-size = 10\n").expect("config");
    let o = ferry(&["serve", "--config", bad.to_str().expect("utf8")]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("unknown field `max-size`"),
        "{}",
        stderr(&o)
    );
    fs::write(&bad, "stall-timeout = \"forever\"\n").expect("config");
    let o = ferry(&["serve", "--config", bad.to_str().expect("utf8")]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("stall-timeout: \"forever\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn root_that_is_a_file_is_not_a_folder() {
    let work = tempfile::tempdir().expect("tempdir");
    let f = work.path().join("plain");
    fs::write(&f, b"x").expect("file");
    for extra in [&[][..], &["--read-only"][..]] {
        let mut args = vec!["serve", "--root", f.to_str().expect("utf8")];
        args.extend_from_slice(extra);
        let o = ferry(&args);
        assert_exit(&o, 2);
        assert!(stderr(&o).contains("is not a folder"), "{}", stderr(&o));
    }
}

/// Runs `ferry serve ARGS` until it has announced itself, stops it with SIGTERM and
/// returns its stderr.
fn serve_log(args: &[&str], env: &[(&str, &str)]) -> String {
    let root = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(FERRY)
        .args(["serve", "--listen", "127.0.0.1:0", "--root"])
        .arg(root.path())
        .args(args)
        .env_remove("FERRY_LOG")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("line");
    assert!(line.starts_with("listening on "), "{line}");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("addr")
        .to_owned();
    assert_exit(&ferry(&["dir", &addr]), 0);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let o = child.wait_with_output().expect("output");
    assert_eq!(o.status.code(), Some(0));
    stderr(&o)
}

#[test]
fn serve_logs_each_startup_line_once_and_obeys_q_and_json() {
    let log = serve_log(&[], &[]);
    let count = |what: &str| log.lines().filter(|l| l.contains(what)).count();
    assert_eq!(count(" serving "), 1, "{log}");
    assert_eq!(count(" stopped"), 1, "{log}");
    let quiet = serve_log(&["-q"], &[]);
    assert!(!quiet.contains("INFO"), "{quiet}");
    let json = serve_log(&["--log-format", "json", "--impl", "tokio"], &[]);
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines.iter().any(|v| v["fields"]["message"] == "serving"),
        "{json}"
    );
    let via_env = serve_log(&[], &[("FERRY_LOG_FORMAT", "json")]);
    assert!(via_env.lines().all(|l| l.starts_with('{')), "{via_env}");
    let debug = serve_log(&["-vv"], &[]);
    assert!(debug.contains("DEBUG"), "{debug}");
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn get_and_put_json_and_quiet_stdout() {
    let server = Server::start(&[]);
    let work = tempfile::tempdir().expect("tempdir");
    fs::write(work.path().join("a.txt"), b"hello").expect("file");
    fs::write(work.path().join("b.txt"), b"hello, world").expect("file");
    let (a, b) = (
        work.path().join("a.txt").to_str().expect("utf8").to_owned(),
        work.path().join("b.txt").to_str().expect("utf8").to_owned(),
    );
    // Without a terminal and without --json: nothing on stdout.
    let o = ferry(&["put", &server.addr, &a]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "");
    // --json: one object per file, failures included.
    let o = ferry(&["put", &server.addr, &a, &b, "--json"]);
    assert_exit(&o, 1);
    let objs = json_lines(&o);
    assert_eq!(objs.len(), 2, "{}", stdout(&o));
    assert_eq!(objs[0]["name"], "a.txt");
    assert_eq!(objs[0]["outcome"], "failed");
    assert_eq!(objs[0]["code"], 512);
    assert!(objs[0]["error"].as_str().expect("error").contains("512"));
    assert_eq!(objs[1]["name"], "b.txt");
    assert_eq!(objs[1]["file"], b.as_str());
    assert_eq!(objs[1]["outcome"], "ok");
    assert_eq!(objs[1]["bytes"], 12);
    let digest = objs[1]["digest"].as_str().expect("digest").to_owned();
    assert!(digest.starts_with("xxh3-128:"), "{digest}");
    assert!(objs[1]["seconds"].as_f64().expect("seconds") >= 0.0);

    let down = tempfile::tempdir().expect("tempdir");
    let o = ferry_in(down.path(), &["get", &server.addr, "a.txt", "b.txt"], b"");
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "");
    let o = ferry_in(
        down.path(),
        &["get", &server.addr, "b.txt", "nope", "--json", "-o", "d/"],
        b"",
    );
    assert_exit(&o, 1);
    let objs = json_lines(&o);
    assert_eq!(objs.len(), 2, "{}", stdout(&o));
    assert_eq!(objs[0]["name"], "b.txt");
    assert_eq!(objs[0]["outcome"], "ok");
    assert_eq!(objs[0]["bytes"], 12);
    assert_eq!(objs[0]["digest"], digest.as_str());
    assert!(objs[0]["path"].as_str().expect("path").ends_with("b.txt"));
    assert_eq!(objs[1]["name"], "nope");
    assert_eq!(objs[1]["outcome"], "failed");
    assert_eq!(objs[1]["code"], 511);
    assert_eq!(objs[1]["bytes"], serde_json::Value::Null);
    assert_eq!(
        fs::read(down.path().join("d/b.txt")).expect("got"),
        b"hello, world"
    );
    // A session that cannot start: every file is reported failed.
    let o = ferry(&["get", &dead_addr(), "x", "y", "--json"]);
    assert_exit(&o, 3);
    let objs = json_lines(&o);
    assert_eq!(objs.len(), 2);
    assert!(objs.iter().all(|v| v["outcome"] == "failed"));
}

#[test]
fn impl_is_offered_only_where_it_does_something() {
    for sub in ["serve", "dir", "get", "put", "shell"] {
        let o = ferry(&[sub, "--help"]);
        assert!(stdout(&o).contains("--impl"), "{sub}");
    }
    for sub in [&["conform", "server"][..], &["bench"], &["completions"]] {
        let mut args = sub.to_vec();
        args.push("--help");
        let o = ferry(&args);
        assert_exit(&o, 0);
        assert!(!stdout(&o).contains("--impl "), "{sub:?}: {}", stdout(&o));
    }
    assert_exit(&ferry(&["--impl", "tokio", "dir", "127.0.0.1:1"]), 2);
    assert_exit(
        &ferry(&["conform", "--impl", "tokio", "server", "--list"]),
        2,
    );
    // Required arguments are marked as such (<…>, not […]) in the usage line.
    let o = ferry(&["get", "--help"]);
    assert!(
        stdout(&o).contains("Usage: ferry get [OPTIONS] <ADDR> <NAME>..."),
        "{}",
        stdout(&o)
    );
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let o = ferry(&["completions", shell]);
        assert_exit(&o, 0);
        let script = stdout(&o);
        for sub in [
            "serve",
            "dir",
            "get",
            "put",
            "shell",
            "conform",
            "bench",
            "keygen",
            "user",
            "completions",
        ] {
            assert!(script.contains(sub), "{shell}: {sub}");
        }
        assert!(script.contains("max-file-size"), "{shell}");
    }
    assert_exit(&ferry(&["completions", "tcsh"]), 2);
    let o = ferry(&["man"]);
    assert_exit(&o, 0);
    let page = stdout(&o);
    assert!(
        page.starts_with(".ie") || page.contains(".TH ferry"),
        "{page}"
    );
    for needle in ["serve", "completions", "Exit codes"] {
        assert!(page.contains(needle), "{needle}");
    }
}

#[test]
fn bench_quick_takes_no_size_flags() {
    let o = ferry(&["bench", "--quick", "--repeat", "3"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
}

#[test]
fn a_server_that_stops_answering_mid_session_is_named() {
    // Greets, reads the request, then says nothing until the client gives up and closes.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let h = thread::spawn(move || {
        let (s, _) = l.accept().expect("client");
        s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let mut w = s.try_clone().expect("clone");
        w.write_all(GREETING.as_bytes()).expect("greeting");
        let mut sink = Vec::new();
        let _ = BufReader::new(s).read_to_end(&mut sink);
    });
    let o = ferry(&["dir", &addr, "--timeout", "1s"]);
    assert_exit(&o, 3);
    let want = format!("dir: the server at {addr} sent or accepted nothing for 1s");
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    h.join().expect("fake server");
}

/// `ferry serve 2>&1 | head -1`: once stderr is closed, log lines are lost, but the server
/// still serves and still stops on SIGTERM with status 0 (it used to panic on the first
/// line it could not write, or, if that was in the signal thread, never stop).
#[test]
fn serve_survives_a_closed_stderr() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(FERRY)
        .args(["serve", "--listen", "127.0.0.1:0", "--root"])
        .arg(root.path())
        .env("FERRY_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stderr.take());
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("addr")
        .to_owned();
    assert_exit(&ferry(&["dir", &addr]), 0);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + TIMEOUT;
    let exit = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ferry serve did not stop on SIGTERM with its stderr closed");
        }
        thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(exit.code(), Some(0));
}

/// SEC-13 from the command line: a file with a second link (here outside the served folder)
/// is not listed and not served by default; `--allow-hard-links` or
/// `FERRY_ALLOW_HARD_LINKS=true` serves it, and `--allow-hard-links=false` wins over the
/// variable.
#[test]
fn hard_links_are_served_only_with_allow_hard_links() {
    let outside = tempfile::tempdir().expect("tempdir");
    let secret = outside.path().join("secret");
    fs::write(&secret, b"outside").expect("write");
    for (args, env, allowed) in [
        (&[][..], &[][..], false),
        (&["--allow-hard-links"][..], &[][..], true),
        (&[][..], &[("FERRY_ALLOW_HARD_LINKS", "true")][..], true),
        (
            &["--allow-hard-links=false"][..],
            &[("FERRY_ALLOW_HARD_LINKS", "true")][..],
            false,
        ),
    ] {
        let server = Server::start_with(args, env);
        fs::write(server.root().join("plain.txt"), b"plain").expect("write");
        fs::hard_link(&secret, server.root().join("linked.bin")).expect("hard link");
        let o = ferry(&["dir", &server.addr]);
        assert_exit(&o, 0);
        assert!(stdout(&o).contains("plain.txt"), "{}", stdout(&o));
        assert_eq!(
            stdout(&o).contains("linked.bin"),
            allowed,
            "{args:?} {env:?}: {}",
            stdout(&o)
        );
        let work = tempfile::tempdir().expect("tempdir");
        let dest = work.path().join("got");
        let o = ferry(&[
            "get",
            &server.addr,
            "linked.bin",
            "-o",
            dest.to_str().expect("utf8"),
        ]);
        if allowed {
            assert_exit(&o, 0);
            assert_eq!(fs::read(&dest).expect("downloaded"), b"outside");
        } else {
            assert_exit(&o, 1);
            assert!(stderr(&o).contains("511"), "{}", stderr(&o));
            assert!(
                !dest.exists(),
                "{args:?} {env:?}: a hard link was downloaded"
            );
        }
    }
}

/// The greeting's `ext` list of the server at `addr`.
fn greeting_extensions(addr: &str) -> Vec<String> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("greeting");
    line.split(' ')
        .filter_map(|p| p.trim_end().strip_prefix("ext="))
        .flat_map(|ext| ext.split(',').map(str::to_owned))
        .collect()
}

/// The `tree` extension (spec section 17) is offered by default; `--no-tree`,
/// `FERRY_NO_TREE=true` or `no-tree = true` stop offering it (its requests then get 503),
/// and `--no-tree=false` wins over the variable.
#[test]
fn tree_is_offered_unless_no_tree() {
    let config = tempfile::tempdir().expect("tempdir");
    let file = config.path().join("ferry.toml");
    fs::write(&file, "no-tree = true\n").expect("write");
    let file = file.to_str().expect("utf-8");
    for (args, env, offered) in [
        (&[][..], &[][..], true),
        (&["--no-tree"][..], &[][..], false),
        (&[][..], &[("FERRY_NO_TREE", "true")][..], false),
        (&["--config", file][..], &[][..], false),
        (
            &["--no-tree=false"][..],
            &[("FERRY_NO_TREE", "true")][..],
            true,
        ),
    ] {
        let server = Server::start_with(args, env);
        let ext = greeting_extensions(&server.addr);
        assert_eq!(
            ext.iter().any(|e| e == "tree"),
            offered,
            "{args:?} {env:?}: {ext:?}"
        );
        let mut s = TcpStream::connect(&server.addr).expect("connect");
        s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        s.write_all(b"mkdir d\nclose\n").expect("send");
        let mut replies = String::new();
        s.read_to_string(&mut replies).expect("replies");
        let want = if offered {
            "ok mkdir"
        } else {
            "err 503 unsupported"
        };
        assert!(replies.contains(want), "{args:?} {env:?}: {replies}");
        assert_eq!(server.root().join("d").is_dir(), offered);
    }
}
