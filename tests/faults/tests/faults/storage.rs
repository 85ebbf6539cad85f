//! Priority 5: storage faults. A file truncated on the server while it is downloaded, a
//! folder remounted read-only, and hard links to a file outside the served folder (SEC-13).

use std::time::Duration;

use ferry_fault_tests::{Impl, TestServer, client_options, random_bytes};
use ferry_sync::client::{Client, ClientError, GetOptions, PutOptions};
use ferry_test_support::file_name;
use ferry_wire::PutMode;

/// The served file shrinks to 1000 octets when the client sees its first progress: the
/// server ends the payload with `abort 430` (GET-9), the client reports `Refused(430)`,
/// writes no destination, and the session goes on.
fn truncated_during_download(imp: Impl) {
    let server = TestServer::with_impl_config(imp, |c| c.stall_timeout = Duration::from_secs(2));
    let data = random_bytes(9, 24 << 20);
    server.write_file("shrinks.bin", &data);
    let local = tempfile::tempdir().expect("tempdir");
    let mut c = Client::connect_with(server.addr, &client_options()).expect("connect");
    get_of_a_shrinking_file(imp, &server, &mut c, local.path());
    println!("STORAGE|{imp}|truncated-during-get|Refused(430), session kept");
}

/// Gets `shrinks.bin` of `server` into `dest_dir` with `c`, truncating the served file to
/// 1000 octets at the client's first progress: the payload must end with `abort 430`
/// (GET-9), the client report `Refused(430)` and write no destination, and the session go on.
pub(crate) fn get_of_a_shrinking_file(
    imp: Impl,
    server: &TestServer,
    c: &mut Client,
    dest_dir: &std::path::Path,
) {
    let path = server.root.join("shrinks.bin");
    let dest = dest_dir.join("shrinks.bin");
    let mut done = false;
    let r = c.get_to_path(
        &file_name("shrinks.bin"),
        &dest,
        &GetOptions::default(),
        &mut |_| {
            if !done {
                done = true;
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .expect("open");
                f.set_len(1000).expect("truncate");
            }
        },
    );
    match &r {
        Err(ClientError::Refused(e)) if e.code.get() == 430 => {}
        other => panic!("{imp}: expected abort 430, got {other:?}"),
    }
    assert!(
        !dest.exists(),
        "{imp}: destination written from a shrinking file"
    );
    c.dir()
        .unwrap_or_else(|e| panic!("{imp}: session unusable after abort 430: {e}"));
}

#[test]
fn truncated_threads() {
    truncated_during_download(Impl::Threads);
}
#[test]
fn truncated_async_std() {
    truncated_during_download(Impl::AsyncStd);
}
#[test]
fn truncated_tokio() {
    truncated_during_download(Impl::Tokio);
}
#[test]
fn truncated_smol() {
    truncated_during_download(Impl::Smol);
}

/// The served folder's file system is remounted read-only under a running server: every put
/// (flow `wait` and `now`) gets `err 431` or `err 514`, the session goes on, gets still
/// work, and the folder is unchanged. Needs permission to mount a tmpfs (skipped without).
fn read_only_root(imp: Impl) {
    let Some(fs) = ferry_test_support::TinyTmpfs::mount("8m") else {
        // CI has these capabilities (root, tmpfs, the ferry binary): never skip there.
        assert!(
            std::env::var_os("CI").is_none(),
            "SKIPPED: cannot mount a tmpfs"
        );
        eprintln!("SKIPPED: cannot mount a tmpfs");
        return;
    };
    let root = fs.path.join("served");
    let server = TestServer::with_impl_config(imp, |c| c.root = root.clone());
    server.write_file("keep.txt", b"keep");
    let remount = |opt: &str| {
        std::process::Command::new("mount")
            .args(["-o", &format!("remount,{opt}")])
            .arg(&fs.path)
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(remount("ro"), "remount read-only");
    let before = ferry_fault_tests::names_in(&root);
    let mut s = server.session();
    let mut codes = Vec::new();
    for (i, flow) in ["wait", "now"].into_iter().enumerate() {
        let name = format!("new-{i}.bin");
        let data = random_bytes(i as u64 + 1, 4000);
        let reply = match flow {
            "wait" => s.put_wait(&name, ferry_wire::PutMode::New, &data),
            _ => s.put_now(&name, ferry_wire::PutMode::New, &data),
        };
        match reply {
            ferry_wire::Reply::Err(e) if matches!(e.code.get(), 431 | 514) => {
                codes.push(e.code.get())
            }
            other => {
                remount("rw");
                panic!("{imp}: put {flow} on a read-only root: {other:?}")
            }
        }
    }
    let (got, _) = s.get("keep.txt").expect("get still works");
    assert_eq!(got, b"keep");
    let after = ferry_fault_tests::names_in(&root);
    assert!(remount("rw"), "remount read-write");
    assert_eq!(before, after, "{imp}: the read-only folder changed");
    assert!(server.staging_is_empty(), "{imp}: staging debris");
    drop(s);
    drop(server);
    println!(
        "STORAGE|{imp}|read-only-root|put wait/now → {codes:?}, session kept, folder unchanged"
    );
}

#[test]
fn read_only_root_threads() {
    read_only_root(Impl::Threads);
}
#[test]
fn read_only_root_async_std() {
    read_only_root(Impl::AsyncStd);
}
#[test]
fn read_only_root_tokio() {
    read_only_root(Impl::Tokio);
}
#[test]
fn read_only_root_smol() {
    read_only_root(Impl::Smol);
}

/// `secret`, outside the served folder, is hard-linked into it as `x` (the `ln /etc/shadow
/// served/x` of an operator or a local attacker). By default (SEC-13) `dir` does not list it,
/// `get x` is `err 511` as for a name with no file, `put new x` is `err 512` and `put
/// replace x` puts a new file under the name without touching `secret`. With
/// `allow_hard_links` (`ferry serve --allow-hard-links`) it is listed and served, as every
/// server did before SEC-13.
fn hard_link_to_outside(imp: Impl) {
    let outside = tempfile::tempdir().expect("tempdir");
    let secret = outside.path().join("secret");
    std::fs::write(&secret, b"root:x:0:0").expect("write");
    let mut outcome = Vec::new();
    for allow in [false, true] {
        let server = TestServer::with_impl_config(imp, |c| c.allow_hard_links = allow);
        server.write_file("plain.txt", b"plain");
        std::fs::hard_link(&secret, server.root.join("x")).expect("hard link");
        let mut c = Client::connect_with(server.addr, &client_options()).expect("connect");
        let listed: Vec<String> = c
            .dir()
            .expect("dir")
            .into_iter()
            .map(|e| e.name.as_str().to_owned())
            .collect();
        let mut got = Vec::new();
        let r = c.get_to_writer(&file_name("x"), &mut got, &mut |_| {});
        if allow {
            assert_eq!(listed, ["plain.txt", "x"], "{imp}");
            r.unwrap_or_else(|e| panic!("{imp}: allowed hard link not served: {e}"));
            assert_eq!(got, b"root:x:0:0", "{imp}");
            outcome.push(format!("allowed: dir lists {listed:?}, get x → ok"));
        } else {
            assert_eq!(listed, ["plain.txt"], "{imp}: a hard link is listed");
            match &r {
                Err(ClientError::Refused(e)) if e.code.get() == 511 => {}
                other => panic!("{imp}: get of a hard link: expected 511, got {other:?}"),
            }
            assert!(got.is_empty(), "{imp}: octets of a hard link were sent");
            let put = |c: &mut Client, mode| {
                let opts = PutOptions {
                    mode,
                    ..PutOptions::default()
                };
                c.put_from_reader(&file_name("x"), 3, &mut &b"new"[..], &opts, &mut |_| {})
            };
            match put(&mut c, PutMode::New) {
                Err(ClientError::Refused(e)) if e.code.get() == 512 => {}
                other => panic!("{imp}: put new over a hard link: expected 512, got {other:?}"),
            }
            put(&mut c, PutMode::Replace)
                .unwrap_or_else(|e| panic!("{imp}: put replace over a hard link: {e}"));
            assert_eq!(
                std::fs::read(&secret).expect("read"),
                b"root:x:0:0",
                "{imp}: a replace changed the file outside the folder"
            );
            // The name now holds a file of its own (one link): served.
            let mut got = Vec::new();
            c.get_to_writer(&file_name("x"), &mut got, &mut |_| {})
                .unwrap_or_else(|e| panic!("{imp}: get after replace: {e}"));
            assert_eq!(got, b"new", "{imp}");
            assert!(server.staging_is_empty(), "{imp}: staging debris");
            outcome.push(format!(
                "default: dir lists {listed:?}, get x → 511, put new → 512, put replace → ok \
                 (outside file unchanged)"
            ));
        }
        c.close().expect("close");
    }
    println!("STORAGE|{imp}|hard-link|{}", outcome.join("; "));
}

#[test]
fn hard_link_threads() {
    hard_link_to_outside(Impl::Threads);
}
#[test]
fn hard_link_async_std() {
    hard_link_to_outside(Impl::AsyncStd);
}
#[test]
fn hard_link_tokio() {
    hard_link_to_outside(Impl::Tokio);
}
#[test]
fn hard_link_smol() {
    hard_link_to_outside(Impl::Smol);
}
