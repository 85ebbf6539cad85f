//! The `tree` extension under crashes (#17): a `ferry serve` child SIGKILLed in the middle of
//! a pipelined run of renames leaves every file under its old name or its new one, whole,
//! never both or neither (TREE-12), every rename it acknowledged done, and a rerun of the
//! renames not yet done finishes the job.

use std::time::Duration;

use ferry_fault_tests::{ChildServer, Impl, RawSession, ferry_bin, names_in};

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
    let Some(bin) = ferry_bin() else {
        // CI has the ferry binary: never skip there.
        assert!(
            std::env::var_os("CI").is_none(),
            "SKIPPED: no ferry binary (run `cargo build -p ferry` or set FERRY_BIN)"
        );
        eprintln!("SKIPPED: no ferry binary (run `cargo build -p ferry` or set FERRY_BIN)");
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
