//! The `tree` extension under crashes (#17): a `ferry serve` child SIGKILLed in the middle of
//! a pipelined run of renames leaves every file under its old name or its new one, whole,
//! never both or neither (TREE-12), every rename it acknowledged done, and a rerun of the
//! renames not yet done finishes the job.

use std::time::Duration;

use ferry_fault_tests::{ChildServer, Impl, RawSession, ferry_bin_or_skip, names_in};

const FILES: usize = 600;

fn content(i: usize) -> Vec<u8> {
    format!("file {i} of the rename run\n").into_bytes()
}

fn rename_line(i: usize) -> String {
    let from = format!("from/f{i:04}");
    format!("rename {} {from} to/f{i:04}\n", from.len())
}

/// Every file once, under `from/` or `to/`, with its content; returns how many are in `to/`.
fn check_whole(imp: Impl, root: &std::path::Path, acknowledged: usize) -> usize {
    let (from, to) = (root.join("from"), root.join("to"));
    let mut moved = 0;
    for i in 0..FILES {
        let name = format!("f{i:04}");
        let (a, b) = (from.join(&name), to.join(&name));
        match (a.exists(), b.exists()) {
            (true, false) => {
                assert!(
                    i >= acknowledged,
                    "{imp}: rename {i} was acknowledged but not done"
                );
                assert_eq!(
                    std::fs::read(&a).expect("read"),
                    content(i),
                    "{imp}: {name}"
                );
            }
            (false, true) => {
                moved += 1;
                assert_eq!(
                    std::fs::read(&b).expect("read"),
                    content(i),
                    "{imp}: {name}"
                );
            }
            (x, y) => panic!("{imp}: {name}: under from/ {x}, under to/ {y}"),
        }
    }
    let extra: Vec<_> = names_in(&to)
        .into_iter()
        .chain(names_in(&from))
        .filter(|n| !(n.starts_with('f') && n.len() == 5))
        .collect();
    assert!(extra.is_empty(), "{imp}: unexpected names {extra:?}");
    moved
}

#[test]
fn kill_server_mid_renames_then_rerun() {
    let Some(bin) = ferry_bin_or_skip() else {
        return;
    };
    for imp in Impl::ALL {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("from")).expect("mkdir");
        std::fs::create_dir_all(root.path().join("to")).expect("mkdir");
        for i in 0..FILES {
            std::fs::write(root.path().join(format!("from/f{i:04}")), content(i)).expect("write");
        }
        let mut child = ChildServer::start(&bin, imp, root.path(), &[]);
        let mut s = RawSession::connect(child.addr);
        s.set_timeout(Duration::from_secs(20));
        s.expect_greeting();
        // All of them pipelined in one go; the kill comes after a sixth was acknowledged.
        let batch: String = (0..FILES).map(rename_line).collect();
        s.send(batch.as_bytes());
        let mut acknowledged = 0;
        while acknowledged < FILES / 6 {
            assert_eq!(s.read_line(), b"ok rename", "{imp}: reply {acknowledged}");
            acknowledged += 1;
        }
        child.kill();
        drop(s);
        let moved = check_whole(imp, root.path(), acknowledged);
        assert!(
            moved >= acknowledged,
            "{imp}: {moved} moved, {acknowledged} acknowledged"
        );

        // The rerun: the renames whose file is still under from/ (a rename of one already
        // moved would be 511, which is what a rerun that does not know may also send).
        let child = ChildServer::start(&bin, imp, root.path(), &[]);
        let mut s = RawSession::connect(child.addr);
        s.set_timeout(Duration::from_secs(20));
        s.expect_greeting();
        let left: Vec<usize> = (0..FILES)
            .filter(|i| root.path().join(format!("from/f{i:04}")).exists())
            .collect();
        let batch: String = left.iter().map(|&i| rename_line(i)).collect();
        s.send(batch.as_bytes());
        for i in &left {
            assert_eq!(s.read_line(), b"ok rename", "{imp}: rerun of rename {i}");
        }
        assert_eq!(check_whole(imp, root.path(), FILES), FILES, "{imp}");
        println!(
            "CRASH|{imp}|sigkill-mid-renames|{acknowledged} acknowledged, {moved} done at the kill, none half; the rerun moved the other {}",
            left.len()
        );
    }
}

/// Every file under `dir` (recursively, the staging area left out), by path relative to it.
fn tree_files(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(
        base: &std::path::Path,
        dir: &std::path::Path,
        out: &mut std::collections::BTreeMap<String, Vec<u8>>,
    ) {
        for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            let rel = p
                .strip_prefix(base)
                .expect("beneath")
                .to_string_lossy()
                .into_owned();
            if rel == ferry_fault_tests::STAGING {
                continue;
            }
            if e.file_type().expect("type").is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// `ferry mirror push` SIGKILLed after a few of its files reached the server: every file the
/// server shows is the old version or the new one, whole (an upload is atomic, PUT-12); the
/// staging area empties; a rerun makes the server's tree equal to the local one and sends
/// only what the first run had not.
#[test]
fn kill_client_mid_mirror_then_rerun() {
    let Some(bin) = ferry_bin_or_skip() else {
        return;
    };
    for imp in [Impl::Threads, Impl::Tokio] {
        let home = tempfile::tempdir().expect("tempdir");
        let local = tempfile::tempdir().expect("tempdir");
        let root = tempfile::tempdir().expect("tempdir");
        const N: usize = 24;
        let mut old = std::collections::BTreeMap::new();
        for i in 0..N {
            let rel = format!("part {}/file {i:02}.bin", i % 3);
            let path = local.path().join(&rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, ferry_fault_tests::random_bytes(i as u64, 2 << 20))
                .expect("write");
            // A third of the files are on the server already, in an older version.
            if i % 3 == 0 {
                let there = root.path().join(&rel);
                std::fs::create_dir_all(there.parent().expect("parent")).expect("mkdir");
                let data = ferry_fault_tests::random_bytes(1000 + i as u64, 2 << 20);
                std::fs::write(&there, &data).expect("write");
                old.insert(rel, data);
            }
        }
        let new = tree_files(local.path());
        let server = ChildServer::start(&bin, imp, root.path(), &[]);
        let mirror = |wait: bool| {
            let mut cmd = std::process::Command::new(&bin);
            cmd.args(["mirror", "push", &format!("ferry://{}", server.addr)])
                .arg(local.path())
                .args([".", "--impl", imp.name()])
                .env("HOME", home.path())
                .env("XDG_CONFIG_HOME", home.path().join(".config"))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            if wait {
                let out = cmd.output().expect("run ferry mirror");
                assert!(
                    out.status.success(),
                    "{imp}: rerun: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                return None;
            }
            Some(cmd.spawn().expect("start ferry mirror"))
        };
        let mut child = mirror(false).expect("child");
        let arrived = |root: &std::path::Path| {
            tree_files(root)
                .iter()
                .filter(|(rel, data)| new.get(*rel) == Some(*data))
                .count()
        };
        let started = std::time::Instant::now();
        while arrived(root.path()) < 3 && started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "{imp}: the mirror finished before it could be killed (make the files larger)"
        );
        child.kill().expect("kill");
        let _ = child.wait();
        let at_kill = tree_files(root.path());
        for (rel, data) in &at_kill {
            assert!(
                new.get(rel) == Some(data) || old.get(rel) == Some(data),
                "{imp}: {rel} is neither the old nor the new version after the kill"
            );
        }
        let sent = at_kill
            .iter()
            .filter(|(r, d)| new.get(*r) == Some(*d))
            .count();
        assert!(
            ferry_fault_tests::eventually(Duration::from_secs(10), || names_in(
                &root.path().join(ferry_fault_tests::STAGING)
            )
            .is_empty()),
            "{imp}: staging files left after the client was killed"
        );
        mirror(true);
        assert!(
            tree_files(root.path()) == new,
            "{imp}: the rerun did not finish the mirror"
        );
        println!(
            "CRASH|{imp}|sigkill-mid-mirror|{sent} of {N} files sent at the kill, every file old or new and whole; the rerun finished"
        );
    }
}
