//! The `tree` extension (spec section 17) on every server implementation, in raw sessions:
//! the offer, `enable tree` and paths in get/put (TREE-1, TREE-5), each request and its
//! errors (517, 518, 512, 511), a listing's digests equal to the put's (TREE-7), symbolic
//! links refused at every level of every request (TREE-4), and a server without the
//! extension answering 503 (EXT-4).

mod common;

use std::fs;
use std::os::unix::fs::symlink;

use common::{Impl, RawSession, Server, start, start_with};
use ferry_wire::tree::{EntryKind, ListEntry, decode_list_entry};
use ferry_wire::{Digest, Reply, encode_payload};

/// The octets of an eager put of `data` to `path` (a path once `enable tree` was answered).
fn put_bytes(path: &str, data: &[u8]) -> Vec<u8> {
    let mut out = format!("put {} new now {path}\n", data.len()).into_bytes();
    encode_payload(data, Digest::of(data), &mut out);
    out
}

/// A session on `server` whose greeting lists `tree`, after `ok enable tree`.
fn enabled(server: &Server) -> RawSession {
    let mut s = RawSession::connect(server.addr);
    let greeting = s.expect_greeting();
    assert!(ferry_wire::tree::offered(&greeting), "{greeting:?}");
    s.send(b"enable tree\n");
    s.expect_line("ok enable tree");
    s
}

/// Sends `request` and reads `ok list COUNT` and its entries.
fn list(s: &mut RawSession, request: &str) -> Vec<ListEntry> {
    s.send(request.as_bytes());
    let head = s.read_line_str();
    let count: usize = head
        .strip_prefix("ok list ")
        .unwrap_or_else(|| panic!("{request:?}: {head}"))
        .parse()
        .expect("count");
    (0..count)
        .map(|_| {
            let mut line = s.read_line();
            line.push(b'\n');
            decode_list_entry(&line).expect("a list entry").0
        })
        .collect()
}

/// The paths of `entries`, folders marked with a trailing `/`.
fn paths(entries: &[ListEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| match e.kind {
            EntryKind::Folder => format!("{}/", e.path),
            EntryKind::File { .. } => e.path.to_string(),
        })
        .collect()
}

/// `get 0 PATH`: the file's octets, checked against its digest.
fn get(s: &mut RawSession, path: &str) -> Vec<u8> {
    s.send(format!("get 0 {path}\n").as_bytes());
    let Reply::GetOk { size, .. } = s.read_reply() else {
        panic!("get {path}: no ok get")
    };
    let (data, end) = s.read_payload(size);
    assert!(
        matches!(end, ferry_test_support::PayloadEnd::Complete(d) if d == Digest::of(&data)),
        "{end:?}"
    );
    data
}

fn requests_folders_and_paths_end_to_end(imp: Impl) {
    let server = start(imp);
    let mut s = enabled(&server);
    s.send(b"mkdir a\nmkdir a/sub\n");
    s.expect_line("ok mkdir");
    s.expect_line("ok mkdir");
    let data = b"hello, tree";
    let digest = Digest::of(data);
    s.send(&put_bytes("a/b", data));
    s.expect_line(&format!("ok put {} {digest}", data.len()));
    assert_eq!(fs::read(server.root.join("a/b")).expect("stored"), data);
    assert_eq!(get(&mut s, "a/b"), data);

    // TREE-6, TREE-7: recursive, with the digest the put ended with.
    let entries = list(&mut s, "list digests,recursive .\n");
    assert_eq!(paths(&entries), ["a/", "a/b", "a/sub/"]);
    assert_eq!(
        entries[1].kind,
        EntryKind::File {
            size: data.len() as u64,
            digest: Some(digest)
        }
    );
    assert_eq!(paths(&list(&mut s, "list - a\n")), ["b", "sub/"]);

    // 512 exists, 518 wrong kind, 517 not empty, 511 not found.
    s.send(b"mkdir a\nmkdir a/b\nrename 3 a/b a/sub\n");
    for _ in 0..3 {
        s.expect_line("err 512 exists");
    }
    s.send(b"delete a\nrmdir a/b\nlist - a/b\n");
    for _ in 0..3 {
        s.expect_line("err 518 wrong-kind");
    }
    s.send(b"rmdir a\n");
    s.expect_line("err 517 not-empty");
    s.send(b"mkdir x/y\ndelete a/nope\nrmdir nope\nlist - nope\nrename 1 z y\nget 0 x/b\n");
    for _ in 0..6 {
        s.expect_line("err 511 not-found");
    }
    s.send(b"put 1 new wait x/b\n");
    s.expect_line("err 511 not-found");

    // rename a file, then its folder; into itself is 510.
    s.send(b"rename 3 a/b a/sub/c\nrename 1 a e\nrename 1 e e/f\n");
    s.expect_line("ok rename");
    s.expect_line("ok rename");
    s.expect_line("err 510 bad-name");
    assert_eq!(get(&mut s, "e/sub/c"), data);
    assert_eq!(
        paths(&list(&mut s, "list recursive e\n")),
        ["sub/", "sub/c"]
    );

    // delete, rmdir: everything goes, pipelined, in order.
    s.send(b"delete e/sub/c\ndelete e/sub/c\nrmdir e/sub\nrmdir e\nlist - .\n");
    s.expect_line("ok delete");
    s.expect_line("err 511 not-found");
    s.expect_line("ok rmdir");
    s.expect_line("ok rmdir");
    s.expect_line("ok list 0");
    assert!(!server.root.join("e").exists());
    s.send(b"close\n");
    s.expect_line("bye");
}

fn paths_need_enable_tree_and_the_other_requests_do_not(imp: Impl) {
    let server = start(imp);
    fs::create_dir(server.root.join("d")).expect("mkdir");
    fs::write(server.root.join("d/f"), b"x").expect("write");
    let mut s = server.session();
    // TREE-2: before `ok enable tree`, a `/` is 510 (an eager put's payload read past).
    s.send(b"get 0 d/f\n");
    s.expect_line("err 510 bad-name");
    s.send(&put_bytes("d/g", b"y"));
    s.expect_line("err 510 bad-name");
    assert_eq!(paths(&list(&mut s, "list - d\n")), ["f"]);
    s.send(b"enable tree\nenable auth\n");
    s.expect_line("ok enable tree");
    s.expect_line("err 503 unsupported");
    assert_eq!(get(&mut s, "d/f"), b"x");
}

fn without_the_extension_its_requests_are_503(imp: Impl) {
    let server = start_with(imp, |c| c.tree = false);
    fs::create_dir(server.root.join("d")).expect("mkdir");
    let mut s = RawSession::connect(server.addr);
    let greeting = s.expect_greeting();
    assert!(!ferry_wire::tree::offered(&greeting), "{greeting:?}");
    s.send(b"enable tree\nlist - .\nmkdir e\nrmdir d\ndelete d\nrename 1 d e\nget 0 d/f\n");
    for _ in 0..6 {
        s.expect_line("err 503 unsupported");
    }
    s.expect_line("err 510 bad-name");
    assert!(server.root.join("d").is_dir() && !server.root.join("e").exists());
}

fn a_read_only_server_refuses_changes_with_514(imp: Impl) {
    let server = start_with(imp, |c| c.read_only = true);
    fs::create_dir(server.root.join("d")).expect("mkdir");
    fs::write(server.root.join("f"), b"x").expect("write");
    let mut s = enabled(&server);
    s.send(b"mkdir n\nrmdir d\ndelete f\nrename 1 f g\nrename 1 d d/e\n");
    for _ in 0..4 {
        s.expect_line("err 514 read-only");
    }
    s.expect_line("err 510 bad-name");
    assert_eq!(paths(&list(&mut s, "list recursive .\n")), ["d/", "f"]);
    assert!(server.root.join("f").is_file() && server.root.join("d").is_dir());
}

/// TREE-4: a link at any level of any request's path is not followed, whether it points
/// outside the folder or inside it; nothing outside is read, listed, made, moved or removed.
fn symbolic_links_are_never_followed(imp: Impl) {
    let server = start(imp);
    let outside = tempfile::tempdir().expect("tempdir");
    fs::write(outside.path().join("secret"), b"secret").expect("write");
    fs::create_dir(outside.path().join("sub")).expect("mkdir");
    fs::create_dir(server.root.join("in")).expect("mkdir");
    fs::write(server.root.join("in/f"), b"inside").expect("write");
    symlink(outside.path(), server.root.join("out")).expect("symlink");
    symlink(outside.path().join("secret"), server.root.join("in/secret")).expect("symlink");
    symlink(server.root.join("in"), server.root.join("alias")).expect("symlink");
    let mut s = enabled(&server);
    let refused: &[&[u8]] = &[
        b"get 0 out/secret\n",
        b"get 0 in/secret\n",
        b"get 0 alias/f\n",
        b"put 1 new wait out/new\n",
        b"put 1 new wait alias/new\n",
        b"list - out\n",
        b"list recursive alias\n",
        b"mkdir out/new\n",
        b"mkdir alias/new\n",
        b"rmdir out/sub\n",
        b"rmdir out\n",
        b"rmdir alias\n",
        b"delete out/secret\n",
        b"delete in/secret\n",
        b"delete alias/f\n",
        b"rename 10 out/secret stolen\n",
        b"rename 3 out stolen\n",
        b"rename 4 in/f out/f\n",
        b"rename 4 in/f alias/g\n",
    ];
    for request in refused {
        s.send(request);
        assert_eq!(
            s.read_line_str(),
            "err 511 not-found",
            "{}",
            String::from_utf8_lossy(request)
        );
    }
    s.send(&put_bytes("out/new", b"z"));
    s.expect_line("err 511 not-found");
    // A link's name is taken: nothing is made or moved over it.
    s.send(b"mkdir out\nrename 4 in/f in/secret\n");
    s.expect_line("err 512 exists");
    s.expect_line("err 512 exists");
    // Listings leave links out at every depth.
    assert_eq!(
        paths(&list(&mut s, "list digests,recursive .\n")),
        ["in/", "in/f"]
    );
    let mut outside_now: Vec<_> = fs::read_dir(outside.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    outside_now.sort();
    assert_eq!(outside_now, ["secret", "sub"]);
    assert_eq!(
        fs::read(outside.path().join("secret")).expect("read"),
        b"secret"
    );
    assert_eq!(fs::read(server.root.join("in/f")).expect("read"), b"inside");
    assert!(server.root.join("out").is_symlink() && server.root.join("alias").is_symlink());
}

/// PUT-23, TREE-8: a folder counts one entry and 4096 octets in the served folder's quotas
/// (here 3 files and folders, 2 × 4096 + 10 octets): a `mkdir` over either is `err 432
/// no-space` and makes nothing; a taken name is still 512; an `rmdir` frees what the folder
/// counted.
fn mkdir_over_a_quota_is_432(imp: Impl) {
    let server = start_with(imp, |c| {
        c.quota = Some(2 * ferry_store::FOLDER_OCTETS + 10);
        c.quota_files = Some(3);
    });
    let mut s = enabled(&server);
    // Octets: a third folder would take 3 × 4096.
    s.send(
        b"mkdir a
mkdir b
mkdir c
",
    );
    s.expect_line("ok mkdir");
    s.expect_line("ok mkdir");
    s.expect_line("err 432 no-space");
    // Files and folders: a file makes three, then no folder fits however small.
    let data = b"12345";
    s.send(&put_bytes("a/x", data));
    s.expect_line(&format!("ok put {} {}", data.len(), Digest::of(data)));
    s.send(
        b"mkdir a/c
mkdir a
rmdir b
mkdir c
mkdir d
",
    );
    s.expect_line("err 432 no-space");
    s.expect_line("err 512 exists");
    s.expect_line("ok rmdir");
    s.expect_line("ok mkdir");
    s.expect_line("err 432 no-space");
    assert_eq!(
        paths(&list(&mut s, "list recursive .\n")),
        ["a/", "a/x", "c/"]
    );
}

ferry_test_support::every_impl!(
    mkdir_over_a_quota_is_432,
    requests_folders_and_paths_end_to_end,
    paths_need_enable_tree_and_the_other_requests_do_not,
    without_the_extension_its_requests_are_503,
    a_read_only_server_refuses_changes_with_514,
    symbolic_links_are_never_followed,
);
