//! `ferry shell` as a batch (piped stdin, `-b FILE`, `-b -`) against an in-process server on
//! 127.0.0.1:0: echo, stop at the first failure with its exit code, `-` lines that may fail,
//! `mget`/`mput` globs, the local commands.

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use ferry_test_support::TestServer;

mod common;

use common::ferry_in;

/// `ferry shell ADDR` with `script` on stdin (not a terminal: a batch).
fn shell(server: &TestServer, cwd: &Path, script: &str) -> Output {
    let addr = server.addr.to_string();
    ferry_in(cwd, &["shell", &addr], script.as_bytes())
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_exit(o: &Output, want: i32) {
    assert_eq!(
        o.status.code(),
        Some(want),
        "stdout: {}\nstderr: {}",
        out(o),
        err(o)
    );
}

/// The names in a folder, sorted, without the server's staging folder.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

#[test]
fn the_seed_session_through_a_pipe() {
    let server = TestServer::start();
    server.write_file("b.txt", b"from the server");
    let work = tempfile::tempdir().expect("tempdir");
    fs::write(work.path().join("a.txt"), b"from the client").expect("file");
    fs::write(work.path().join("my report (final).pdf"), b"pdf").expect("file");
    let o = shell(
        &server,
        work.path(),
        "dir\nput a.txt\nget b.txt\nput my report (final).pdf\nhelp\ndir\nclose\ndir\n",
    );
    assert_exit(&o, 0);
    let stdout = out(&o);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "ferry> dir", "each command is echoed: {stdout}");
    assert!(
        lines[1].ends_with("  b.txt") && lines[1].starts_with("15  "),
        "{stdout}"
    );
    assert_eq!(lines[2..4], ["ferry> put a.txt", "sent a.txt (15 bytes)"]);
    assert_eq!(
        lines[4..6],
        ["ferry> get b.txt", "received b.txt (15 bytes)"]
    );
    assert_eq!(lines[7], "sent my report (final).pdf (3 bytes)");
    assert!(stdout.contains("mget PATTERN..."), "help text: {stdout}");
    let tail: Vec<&str> = lines.iter().rev().take(6).rev().copied().collect();
    assert_eq!(tail[0], "ferry> dir");
    assert!(tail[1].ends_with("  a.txt") && tail[2].ends_with("  b.txt"));
    assert!(tail[3].ends_with("  my report (final).pdf"), "{stdout}");
    assert_eq!(
        tail[4..],
        ["ferry> close", "bye"],
        "nothing runs after close"
    );
    assert_eq!(
        fs::read(work.path().join("b.txt")).expect("got"),
        b"from the server"
    );
    assert_eq!(
        server.read_file("a.txt").expect("stored"),
        b"from the client"
    );

    // End of input closes the session too.
    let o = shell(&server, work.path(), "dir\n");
    assert_exit(&o, 0);
    assert!(out(&o).ends_with("bye\n"), "{}", out(&o));
}

#[test]
fn a_batch_stops_at_the_first_failing_command_with_its_exit_code() {
    let server = TestServer::start();
    server.write_file("b.txt", b"b");
    let work = tempfile::tempdir().expect("tempdir");
    fs::write(work.path().join("a.txt"), b"a").expect("file");

    // 511 not-found: exit 1; the line after it does not run.
    let o = shell(&server, work.path(), "put a.txt\nget missing\nget b.txt\n");
    assert_exit(&o, 1);
    assert!(
        out(&o).ends_with("ferry> get missing\n"),
        "stops there: {}",
        out(&o)
    );
    assert!(err(&o).contains("error: get missing: server error 511 not-found"));
    assert!(err(&o).contains("stopped at line 2"), "{}", err(&o));
    assert!(!work.path().join("b.txt").exists());

    // 512 exists is permanent too.
    let o = shell(&server, work.path(), "put a.txt\ndir\n");
    assert_exit(&o, 1);
    assert!(err(&o).contains("512"), "{}", err(&o));
    assert!(!out(&o).contains("ferry> dir"));

    // An unknown command or a missing argument is a usage error: 2.
    let o = shell(&server, work.path(), "frobnicate\ndir\n");
    assert_exit(&o, 2);
    assert!(err(&o).contains("unknown command \"frobnicate\""));
    let o = shell(&server, work.path(), "get\n");
    assert_exit(&o, 2);
    assert!(err(&o).contains("usage: get NAME"), "{}", err(&o));

    // A local failure: 6.
    let o = shell(&server, work.path(), "lcd no-such-folder\ndir\n");
    assert_exit(&o, 6);
    // A local command that fails: 1.
    let o = shell(&server, work.path(), "!exit 3\ndir\n");
    assert_exit(&o, 1);
    assert!(!out(&o).contains("ferry> dir"));
}

#[test]
fn a_dash_line_may_fail_and_the_batch_goes_on() {
    let server = TestServer::start();
    server.write_file("b.txt", b"b");
    let work = tempfile::tempdir().expect("tempdir");
    let script = work.path().join("script.ferry");
    fs::write(
        &script,
        "# a comment\n-get missing\n-frobnicate\n\n-get b.txt\nbye\n",
    )
    .expect("script");
    let addr = server.addr.to_string();
    let path = script.to_str().expect("utf-8 path");
    let o = ferry_in(work.path(), &["shell", "-b", path, &addr], b"");
    assert_exit(&o, 0);
    assert_eq!(
        out(&o),
        "ferry> -get missing\nferry> -frobnicate\nferry> -get b.txt\nreceived b.txt (1 bytes)\n\
         ferry> bye\nbye\n"
    );
    assert!(err(&o).contains("511"), "{}", err(&o));

    // `-b -` reads stdin.
    let o = ferry_in(
        work.path(),
        &["shell", &addr, "-b", "-"],
        b"-get missing\nlpwd\n",
    );
    assert_exit(&o, 0);
    assert!(out(&o).contains("ferry> lpwd\n"), "{}", out(&o));

    // A batch file that cannot be read: 6, before connecting.
    let o = ferry_in(work.path(), &["shell", "-b", "no-such-file", &addr], b"");
    assert_exit(&o, 6);
    assert!(err(&o).contains("no-such-file"), "{}", err(&o));
}

#[test]
fn mget_and_mput_move_exactly_the_matching_files() {
    let server = TestServer::start();
    for name in ["a.txt", "b.txt", "my notes.txt", "c.log", "[x].txt"] {
        server.write_file(name, name.as_bytes());
    }
    let work = tempfile::tempdir().expect("tempdir");
    let o = shell(&server, work.path(), "mget *.txt c.lo?\n");
    assert_exit(&o, 0);
    assert_eq!(
        names(work.path()),
        ["[x].txt", "a.txt", "b.txt", "c.log", "my notes.txt"]
    );
    for n in names(work.path()) {
        assert_eq!(fs::read(work.path().join(&n)).expect("read"), n.as_bytes());
    }

    let work = tempfile::tempdir().expect("tempdir");
    // Quoted words; a name with glob characters escaped; a pattern matched twice counts once.
    let o = shell(
        &server,
        work.path(),
        "mget 'my *' [[]x[]].txt [ab].txt a.*\n",
    );
    assert_exit(&o, 0);
    assert_eq!(
        names(work.path()),
        ["[x].txt", "a.txt", "b.txt", "my notes.txt"]
    );
    assert_eq!(out(&o).matches("received a.txt").count(), 1);

    // A pattern that matches nothing fails (1), after the others were fetched.
    let work = tempfile::tempdir().expect("tempdir");
    let o = shell(&server, work.path(), "mget *.pdf b.txt\n");
    assert_exit(&o, 1);
    assert!(err(&o).contains("no file on the server matches *.pdf"));
    assert_eq!(names(work.path()), ["b.txt"]);

    // mput: local globs, files only.
    let server = TestServer::start();
    let work = tempfile::tempdir().expect("tempdir");
    for name in ["x1.dat", "x2.dat", "y.dat", "x3.txt"] {
        fs::write(work.path().join(name), name).expect("file");
    }
    fs::create_dir(work.path().join("x9.dat")).expect("folder");
    fs::create_dir(work.path().join("sub")).expect("folder");
    fs::write(work.path().join("sub/z.dat"), "z").expect("file");
    let o = shell(&server, work.path(), "mput x*.dat sub/*.dat\n");
    assert_exit(&o, 0);
    assert_eq!(server.visible_names(), ["x1.dat", "x2.dat", "z.dat"]);
    assert_eq!(server.read_file("z.dat").expect("stored"), b"z");

    // Existing names fail with mput (1) and are replaced with mreplace.
    fs::write(work.path().join("x1.dat"), "new").expect("file");
    let o = shell(&server, work.path(), "mput x1.dat\n");
    assert_exit(&o, 1);
    assert!(err(&o).contains("512"), "{}", err(&o));
    let o = shell(&server, work.path(), "mreplace x1.*\n");
    assert_exit(&o, 0);
    assert_eq!(server.read_file("x1.dat").expect("stored"), b"new");
    let o = shell(&server, work.path(), "mput *.none\n");
    assert_exit(&o, 6);
    assert!(err(&o).contains("no local file matches *.none"));
}

#[test]
fn local_commands_lcd_lls_lpwd_and_bang() {
    let server = TestServer::start();
    server.write_file("b.txt", b"server");
    let work = tempfile::tempdir().expect("tempdir");
    fs::create_dir(work.path().join("in here")).expect("folder");
    fs::write(work.path().join("in here/local.txt"), b"12345").expect("file");
    let o = shell(
        &server,
        work.path(),
        "lcd in here\nlpwd\nlls\nget b.txt\n!ls\nlcd ..\nlls in here\n",
    );
    assert_exit(&o, 0);
    let stdout = out(&o);
    let sub = work.path().join("in here").canonicalize().expect("path");
    assert!(
        stdout.contains(&format!("ferry> lpwd\n{}\n", sub.display())),
        "{stdout}"
    );
    let lls: Vec<&str> = stdout
        .split("ferry> lls\n")
        .nth(1)
        .expect("lls output")
        .lines()
        .take_while(|l| !l.starts_with("ferry> "))
        .collect();
    assert_eq!(lls.len(), 1, "{stdout}");
    assert!(
        lls[0].starts_with("5  ") && lls[0].ends_with("  local.txt"),
        "{stdout}"
    );
    // The download went to the folder lcd chose; `!ls` ran there.
    assert_eq!(fs::read(sub.join("b.txt")).expect("got"), b"server");
    assert!(
        stdout.contains("ferry> !ls\nb.txt\nlocal.txt\n"),
        "{stdout}"
    );
    let last = stdout
        .split("ferry> lls in here\n")
        .nth(1)
        .expect("lls DIR");
    assert!(
        last.contains("  b.txt\n") && last.contains("  local.txt\n"),
        "{stdout}"
    );
}

#[test]
fn a_session_idle_past_the_servers_limit_is_opened_again() {
    let server = TestServer::with_config(|c| c.idle_timeout = Duration::from_secs(2));
    server.write_file("a.txt", b"a");
    let work = tempfile::tempdir().expect("tempdir");
    // The session is idle for 3 s, past the server's limit of 2 s (its greeting says so).
    let o = shell(&server, work.path(), "dir\n!sleep 3\nget a.txt\n");
    assert_exit(&o, 0);
    assert!(out(&o).contains("received a.txt (1 bytes)"), "{}", out(&o));
    assert!(
        err(&o).contains("ferry: reconnected to ")
            && err(&o).contains("the server ends sessions idle"),
        "{}",
        err(&o)
    );
}
