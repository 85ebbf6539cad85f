//! The folder commands of the `tree` extension (spec section 17, #17) as a user runs them:
//! against a scripted hostile server (what a listing can make `get -r` write), and against
//! a server without the extension.

mod common;

use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::thread;

use common::{ferry_home, ferry_home_in};
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

// ------------------------------------------------------------ against `ferry serve` ---

/// `ferry serve` on a fresh folder, and a client's home and working folder.
struct Served {
    server: common::Server,
    root: tempfile::TempDir,
    home: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Served {
    fn start() -> Self {
        Self::start_with(&[], &[])
    }

    /// `ferry serve` with `extra` arguments and `env` variables.
    fn start_with(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let root = tempfile::tempdir().expect("root");
        let root_s = root.path().to_str().expect("utf-8").to_owned();
        let mut args = vec!["--listen", "127.0.0.1:0", "--root", &root_s];
        args.extend_from_slice(extra);
        let server = common::serve_with(&args, env);
        Served {
            server,
            root,
            home: tempfile::tempdir().expect("home"),
            work: tempfile::tempdir().expect("work"),
        }
    }

    /// `ferry VERB ADDR ARGS…` in the working folder.
    fn run(&self, verb: &[&str], args: &[&str]) -> std::process::Output {
        let mut all: Vec<&str> = verb.to_vec();
        all.push(&self.server.addr);
        all.extend_from_slice(args);
        ferry_home(self.work.path(), self.home.path(), &all)
    }

    /// Runs and requires exit 0; returns stdout.
    fn ok(&self, verb: &[&str], args: &[&str]) -> String {
        let out = self.run(verb, args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{verb:?} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn work(&self) -> &Path {
        self.work.path()
    }
}

use std::path::Path;

/// A local tree with spaces and non-ASCII names (one of them NFD, sent as NFC).
fn make_tree(at: &Path) {
    fs::create_dir_all(at.join("sub dir/deep")).expect("mkdir");
    fs::create_dir_all(at.join("天线")).expect("mkdir");
    fs::write(at.join("a.txt"), b"one\n").expect("write");
    fs::write(at.join("sub dir/b c.txt"), b"two\n").expect("write");
    fs::write(at.join("sub dir/deep/x"), vec![7u8; 300_000]).expect("write");
    fs::write(at.join("天线/射频仿真.pptx"), b"three\n").expect("write");
    fs::write(at.join("天线/Cafe\u{301}.txt"), b"nfd\n").expect("write");
}

/// Every file beneath `at`, relative, with its content.
fn files(at: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![at.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(at).expect("beneath");
                out.push((
                    rel.to_string_lossy().into_owned(),
                    fs::read(&p).expect("read"),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn put_r_then_get_r_round_trips_a_tree() {
    let s = Served::start();
    make_tree(&s.work().join("photos"));
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc/passwd", s.work().join("photos/link")).expect("symlink");
    let out = s.run(&["put", "-r"], &["photos"]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    #[cfg(unix)]
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert!(
        !s.root.path().join("photos/link").exists(),
        "links are not sent"
    );
    // Stored in NFC.
    assert!(s.root.path().join("photos/天线/Caf\u{e9}.txt").is_file());
    let listing = s.ok(&["ls"], &["photos", "-r", "--digests"]);
    assert!(listing.contains("sub dir/deep/x"), "{listing}");
    assert!(listing.contains("xxh3-128:"), "{listing}");
    assert!(listing.contains("  sub dir/\n"), "{listing}");
    s.ok(&["get", "-r"], &["photos", "-o", "copy"]);
    #[cfg(unix)]
    fs::remove_file(s.work().join("photos/link")).expect("rm link");
    let mut want = files(&s.work().join("photos"));
    for (name, _) in &mut want {
        *name = name.replace("Cafe\u{301}", "Caf\u{e9}");
    }
    want.sort();
    assert_eq!(files(&s.work().join("copy/photos")), want);
}

/// `--quota-files N` (or `FERRY_QUOTA_FILES`) bounds the files and folders of the served
/// folder (PUT-23): a folder counts one, so a `mkdir` beyond it is `err 432 no-space`, shown
/// with its meaning, exit 4 (transient), and nothing is made; a folder that exists is fine
/// for `mkdir -p` whatever the quota; an `rmdir` makes room again; `put -r` reports the
/// refused folder.
#[test]
fn quota_files_bounds_folders_too() {
    for (flags, env) in [
        (&["--quota-files", "2"][..], &[][..]),
        (&[][..], &[("FERRY_QUOTA_FILES", "2")][..]),
    ] {
        let s = Served::start_with(flags, env);
        s.ok(&["mkdir"], &["a", "b"]);
        let out = s.run(&["mkdir"], &["c"]);
        assert_eq!(out.status.code(), Some(4), "{flags:?} {env:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("mkdir c"), "{err}");
        assert!(err.contains("432 no-space"), "{err}");
        assert!(err.contains("quota"), "{err}");
        assert!(!s.root.path().join("c").exists(), "nothing made");
        s.ok(&["mkdir", "-p"], &["a"]);
        // put -r: its folder `up` is refused, and so are the files beneath it (511).
        fs::create_dir_all(s.work().join("up")).expect("mkdir");
        fs::write(s.work().join("up/f.txt"), b"f").expect("write");
        let out = s.run(&["put", "-r"], &["up"]);
        assert_ne!(out.status.code(), Some(0));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("mkdir up") && err.contains("432 no-space"),
            "{err}"
        );
        s.ok(&["rmdir"], &["b"]);
        s.ok(&["mkdir"], &["c"]);
        assert!(s.root.path().join("c").is_dir());
    }
}

#[test]
fn ls_rm_mv_mkdir_rmdir_do_what_they_say() {
    let s = Served::start();
    s.ok(&["mkdir", "-p"], &["docs/2024/q1", "docs/2025"]);
    assert!(s.root.path().join("docs/2024/q1").is_dir());
    // Without -p, a missing parent and an existing folder are errors (511, 512): exit 1.
    assert_eq!(s.run(&["mkdir"], &["x/y"]).status.code(), Some(1));
    assert_eq!(s.run(&["mkdir"], &["docs"]).status.code(), Some(1));
    fs::write(s.root.path().join("docs/2024/q1/n.txt"), b"n").expect("write");
    let ls = s.ok(&["ls"], &["docs", "-r"]);
    assert_eq!(
        ls.lines()
            .map(|l| l.rsplit("  ").next().unwrap_or(""))
            .collect::<Vec<_>>(),
        ["2024/", "2024/q1/", "2024/q1/n.txt", "2025/"]
    );
    // rmdir of a folder with a file: 517, exit 1; rm of a folder: 518 with a hint.
    let out = s.run(&["rmdir"], &["docs/2024/q1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("517"));
    let out = s.run(&["rm"], &["docs/2024"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rm -r"));
    s.ok(&["mv"], &["docs/2024/q1/n.txt", "docs/2025/m n.txt"]);
    assert!(s.root.path().join("docs/2025/m n.txt").is_file());
    // mv never replaces.
    fs::write(s.root.path().join("other"), b"o").expect("write");
    let out = s.run(&["mv"], &["other", "docs/2025/m n.txt"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        fs::read(s.root.path().join("docs/2025/m n.txt")).expect("r"),
        b"n"
    );
    s.ok(&["rm"], &["other"]);
    s.ok(&["rmdir"], &["docs/2024/q1"]);
    s.ok(&["rm", "-r"], &["docs"]);
    assert!(!s.root.path().join("docs").exists());
    assert_eq!(s.ok(&["ls"], &[]), "");
}

#[test]
fn mirror_sends_only_what_changed_and_deletes_only_when_asked() {
    let s = Served::start();
    let local = s.work().join("site");
    make_tree(&local);
    let first = s.ok(&["mirror", "push"], &["site"]);
    assert!(first.starts_with("sent 5 files"), "{first}");
    let again = s.ok(&["mirror", "push"], &["site"]);
    assert!(again.starts_with("sent 0 files"), "{again}");
    // Same size, other content: the digest tells.
    fs::write(local.join("a.txt"), b"ONE\n").expect("write");
    let one = s.ok(&["mirror", "push"], &["site"]);
    assert!(
        one.starts_with("sent 1 file (4 octets), 4 unchanged"),
        "{one}"
    );
    assert_eq!(
        fs::read(s.root.path().join("site/a.txt")).expect("r"),
        b"ONE\n"
    );
    // What the source lacks stays without --delete; --dry-run changes nothing.
    fs::remove_dir_all(local.join("sub dir")).expect("rm");
    s.ok(&["mirror", "push"], &["site"]);
    assert!(s.root.path().join("site/sub dir/deep/x").is_file());
    let plan = s.ok(&["mirror", "push"], &["site", "--delete", "--dry-run"]);
    assert!(plan.contains("delete sub dir/deep/x\n"), "{plan}");
    assert!(
        plan.contains("rmdir sub dir/deep\nrmdir sub dir\n"),
        "{plan}"
    );
    assert!(s.root.path().join("site/sub dir/deep/x").is_file());
    let deleted = s.ok(&["mirror", "push"], &["site", "--delete"]);
    assert!(deleted.contains("4 deleted"), "{deleted}");
    assert!(!s.root.path().join("site/sub dir").exists());
    // A local entry the walk skips (a symbolic link) is not missing: --delete leaves the
    // server's file of that path alone, and says so.
    fs::write(s.root.path().join("site/linked.txt"), b"kept\n").expect("write");
    std::os::unix::fs::symlink("a.txt", local.join("linked.txt")).expect("symlink");
    let out = s.run(&["mirror", "push"], &["site", "--delete"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("linked.txt is not deleted"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read(s.root.path().join("site/linked.txt")).expect("kept"),
        b"kept\n"
    );
    fs::remove_file(local.join("linked.txt")).expect("rm");
    fs::remove_file(s.root.path().join("site/linked.txt")).expect("rm");
    // And back: a pull into an empty folder, then a rerun that moves nothing.
    let pulled = s.ok(&["mirror", "pull"], &["back", "site"]);
    assert!(pulled.starts_with("received 3 files"), "{pulled}");
    assert_eq!(
        files(&s.work().join("back")),
        files(&s.root.path().join("site"))
    );
    let rerun = s.ok(&["mirror", "pull"], &["back", "site"]);
    assert!(rerun.starts_with("received 0 files"), "{rerun}");
    // A pull from a folder the server lacks is an error, and deletes nothing.
    let out = s.run(&["mirror", "pull"], &["back", "nope", "--delete"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(files(&s.work().join("back")).len(), 3);
}

#[test]
fn every_engine_runs_the_folder_commands() {
    let s = Served::start();
    make_tree(&s.work().join("d"));
    for engine in ["threads", "tokio", "smol", "async-std"] {
        let remote = format!("up {engine}");
        let copy = format!("copy-{engine}");
        s.ok(&["put", "-r", "--impl", engine], &["d", &remote]);
        let ls = s.ok(&["ls", "--impl", engine], &[&remote, "-r"]);
        assert_eq!(ls.lines().count(), 8, "{engine}: {ls}");
        s.ok(&["get", "-r", "--impl", engine], &[&remote, "-o", &copy]);
        assert_eq!(
            files(&s.work().join(&copy).join(&remote)).len(),
            5,
            "{engine}"
        );
        let same = s.ok(&["mirror", "push", "--impl", engine], &["d", &remote]);
        assert!(same.starts_with("sent 0 files"), "{engine}: {same}");
        s.ok(&["rm", "-r", "--impl", engine], &[&remote]);
        assert!(!s.root.path().join(&remote).exists(), "{engine}");
    }
}

#[test]
fn get_and_put_take_paths() {
    let s = Served::start();
    s.ok(&["mkdir", "-p"], &["docs/2024"]);
    fs::write(s.work().join("local.txt"), b"by path\n").expect("write");
    s.ok(&["put"], &["local.txt", "--as", "docs/2024/天线 15.doc"]);
    assert_eq!(
        fs::read(s.root.path().join("docs/2024/天线 15.doc")).expect("stored"),
        b"by path\n"
    );
    // Its folder must exist: 511, exit 1.
    let out = s.run(&["put"], &["local.txt", "--as", "nope/x"]);
    assert_eq!(out.status.code(), Some(1));
    s.ok(&["get"], &["docs/2024/天线 15.doc"]);
    assert_eq!(
        fs::read(s.work().join("天线 15.doc")).expect("got"),
        b"by path\n"
    );
    s.ok(&["get"], &["docs/2024/天线 15.doc", "-o", "renamed.txt"]);
    assert_eq!(
        fs::read(s.work().join("renamed.txt")).expect("got"),
        b"by path\n"
    );
    // `..` is never a path: a usage error, nothing asked.
    assert_eq!(s.run(&["get"], &["docs/../x"]).status.code(), Some(2));
}

/// `ferry shell`'s `mirror`: the same code as `ferry mirror`, on the shell's session.
#[test]
fn the_shell_mirrors_a_folder() {
    let s = Served::start();
    let local = s.work().join("site");
    make_tree(&local);
    let script = b"mirror push site\nmirror push site --dry-run\nmirror pull back site\nclose\n";
    let out = ferry_home_in(s.work(), s.home.path(), &["shell", &s.server.addr], script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("sent 5 files"), "{stdout}");
    assert!(
        stdout.contains("dry run: 0 to copy, 5 unchanged, 0 to delete"),
        "{stdout}"
    );
    // The server's copy has the local files (NFD names as NFC), and the pull brought it back.
    let served = files(&s.root.path().join("site"));
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(served.len(), 5, "{:?}", names(&served));
    assert!(
        files(&s.work().join("back")) == served,
        "{:?}",
        names(&files(&s.work().join("back")))
    );
}
