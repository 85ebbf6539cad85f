//! The `tree` extension's storage operations (spec section 17, TREE-4..TREE-12) on a real
//! file system: each operation's success and errors, path-escape attempts through links and
//! special files at every level, listings (order, recursion, path limits, digests, budget),
//! and the quota's bookkeeping.

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _, symlink};
use std::path::{Path, PathBuf};

use ferry_proto::tree::{TreeDone, TreeOp, entry_cost};
use ferry_store::{FOLDER_OCTETS, Quota, Root, STAGING_DIR, StoreError};
use ferry_wire::limits::{MAX_DEPTH, MAX_PATH};
use ferry_wire::tree::{EntryKind, Folder, ListEntry, ListOptions};
use ferry_wire::{Digest, PutMode, TreePath};

fn p(s: &str) -> TreePath {
    TreePath::new(s).expect("valid path")
}

fn mkdir(root: &Root, s: &str) -> Result<TreeDone, StoreError> {
    root.tree(&TreeOp::Mkdir(p(s)))
}

fn rmdir(root: &Root, s: &str) -> Result<TreeDone, StoreError> {
    root.tree(&TreeOp::Rmdir(p(s)))
}

fn delete(root: &Root, s: &str) -> Result<TreeDone, StoreError> {
    root.tree(&TreeOp::Delete(p(s)))
}

fn rename(root: &Root, from: &str, to: &str) -> Result<TreeDone, StoreError> {
    root.tree(&TreeOp::Rename {
        from: p(from),
        to: p(to),
    })
}

fn folder(s: &str) -> Folder {
    if s == "." {
        Folder::Root
    } else {
        Folder::Path(p(s))
    }
}

fn list_with(
    root: &Root,
    at: &str,
    digests: bool,
    recursive: bool,
    budget: usize,
) -> Result<Vec<ListEntry>, StoreError> {
    let op = TreeOp::List {
        folder: folder(at),
        options: ListOptions { digests, recursive },
        budget,
    };
    match root.tree(&op)? {
        TreeDone::Listing(entries) => Ok(entries),
        TreeDone::Done => panic!("a list gives a listing"),
    }
}

fn list(root: &Root, at: &str, recursive: bool) -> Result<Vec<ListEntry>, StoreError> {
    list_with(root, at, false, recursive, usize::MAX)
}

/// The listing as `f path` / `d path` lines.
fn paths(entries: &[ListEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| match e.kind {
            EntryKind::File { .. } => format!("f {}", e.path),
            EntryKind::Folder => format!("d {}", e.path),
        })
        .collect()
}

fn listed(root: &Root, at: &str, recursive: bool) -> Vec<String> {
    paths(&list(root, at, recursive).expect("list"))
}

/// The error an operation gave, with its code checked against the variant.
fn err(r: Result<TreeDone, StoreError>) -> StoreError {
    let e = r.expect_err("the operation must fail");
    let code = match e {
        StoreError::NotFound => 511,
        StoreError::Exists => 512,
        StoreError::ReadOnly => 514,
        StoreError::Denied => 516,
        StoreError::NotEmpty => 517,
        StoreError::WrongKind => 518,
        StoreError::ListingTooLarge | StoreError::Io(_) => 431,
        StoreError::NoSpace => 432,
    };
    assert_eq!(e.code().get(), code, "{e:?}");
    e
}

fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .expect("mkfifo");
}

/// Everything under `dir`, links not followed: `path kind content-or-target`, sorted.
fn snapshot(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let rel = path
                .strip_prefix(base)
                .expect("beneath")
                .display()
                .to_string();
            let meta = fs::symlink_metadata(&path).expect("lstat");
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).expect("readlink");
                out.push(format!("{rel} link {}", target.display()));
            } else if meta.is_dir() {
                out.push(format!("{rel} dir {:o}", meta.mode()));
                walk(base, &path, out);
            } else if meta.is_file() {
                let content = fs::read(&path).expect("read");
                out.push(format!("{rel} file {content:?} {}", meta.mtime()));
            } else {
                out.push(format!("{rel} special"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A served folder next to an outside one that nothing may reach.
struct Fixture {
    _tmp: tempfile::TempDir,
    served: PathBuf,
    outside: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let served = tmp.path().join("served");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&served).expect("mkdir");
        fs::create_dir_all(outside.join("dir")).expect("mkdir");
        fs::write(outside.join("secret"), b"secret").expect("write");
        fs::write(outside.join("dir").join("inner"), b"inner").expect("write");
        Fixture {
            _tmp: tmp,
            served,
            outside,
        }
    }

    fn root(&self) -> Root {
        Root::open(&self.served).expect("open")
    }

    fn at(&self, rel: &str) -> PathBuf {
        self.served.join(rel)
    }
}

/// TREE-8: one folder, mode 0755 at most (less the umask); its parent must exist, anything
/// at the path is 512, a file where a folder is needed is 511.
#[test]
fn mkdir_creates_one_folder_and_refuses_what_exists() {
    let f = Fixture::new();
    let root = f.root();
    assert_eq!(mkdir(&root, "a").expect("mkdir"), TreeDone::Done);
    let meta = fs::symlink_metadata(f.at("a")).expect("made");
    assert!(meta.is_dir());
    assert_eq!(
        meta.permissions().mode() & 0o7777 & !0o755,
        0,
        "at most 0755"
    );
    mkdir(&root, "a/b").expect("mkdir in a folder");
    assert!(f.at("a/b").is_dir());
    fs::write(f.at("file"), b"x").expect("write");
    symlink("nowhere", f.at("dangling")).expect("symlink");
    for taken in ["a", "a/b", "file", "dangling"] {
        assert!(
            matches!(err(mkdir(&root, taken)), StoreError::Exists),
            "{taken}"
        );
    }
    for missing in ["none/x", "a/none/x", "file/x", "a/b/c/d"] {
        assert!(
            matches!(err(mkdir(&root, missing)), StoreError::NotFound),
            "{missing}"
        );
    }
    assert_eq!(fs::read(f.at("file")).expect("read"), b"x");
    assert_eq!(
        fs::read_link(f.at("dangling")).expect("link"),
        Path::new("nowhere")
    );
}

/// TREE-9: an empty folder goes; one with any entry at all (a hidden file, an invalid name,
/// a link) is 517 and stays whole; a file is 518; missing, a link or a FIFO is 511.
#[test]
fn rmdir_removes_only_empty_folders() {
    let f = Fixture::new();
    let root = f.root();
    fs::create_dir_all(f.at("a/empty")).expect("mkdir");
    assert_eq!(rmdir(&root, "a/empty").expect("rmdir"), TreeDone::Done);
    assert!(!f.at("a/empty").exists());
    rmdir(&root, "a").expect("now empty too");
    assert!(!f.at("a").exists());

    fs::create_dir(f.at("hidden")).expect("mkdir");
    fs::write(f.at("hidden/.dotfile"), b"h").expect("write");
    fs::create_dir(f.at("invalid")).expect("mkdir");
    fs::write(f.at("invalid/tab\tname"), b"i").expect("write");
    fs::create_dir(f.at("linked")).expect("mkdir");
    symlink(&f.outside, f.at("linked/out")).expect("symlink");
    fs::create_dir_all(f.at("nested/sub")).expect("mkdir");
    for full in ["hidden", "invalid", "linked", "nested"] {
        assert!(
            matches!(err(rmdir(&root, full)), StoreError::NotEmpty),
            "{full}"
        );
        assert!(f.at(full).is_dir());
    }
    assert_eq!(fs::read(f.at("hidden/.dotfile")).expect("kept"), b"h");

    fs::write(f.at("file"), b"x").expect("write");
    assert!(matches!(err(rmdir(&root, "file")), StoreError::WrongKind));
    assert!(f.at("file").is_file());
    mkfifo(&f.at("fifo"));
    for missing in ["none", "fifo", "file/x", "none/x", "linked/out"] {
        assert!(
            matches!(err(rmdir(&root, missing)), StoreError::NotFound),
            "{missing}"
        );
    }
}

/// TREE-10: a regular file's name goes (another hard link keeps the file); a folder is 518;
/// missing, a link or a FIFO is 511 and stays.
#[test]
fn delete_removes_a_file_name_only() {
    let f = Fixture::new();
    let root = f.root();
    fs::create_dir(f.at("a")).expect("mkdir");
    fs::write(f.at("a/file"), b"x").expect("write");
    assert_eq!(delete(&root, "a/file").expect("delete"), TreeDone::Done);
    assert!(!f.at("a/file").exists());
    assert!(matches!(err(delete(&root, "a")), StoreError::WrongKind));
    assert!(f.at("a").is_dir());

    fs::write(f.at("a/shared"), b"shared").expect("write");
    fs::hard_link(f.at("a/shared"), f.at("other-name")).expect("link");
    delete(&root, "a/shared").expect("a name of a hard-linked file");
    assert_eq!(fs::read(f.at("other-name")).expect("kept"), b"shared");

    fs::write(f.at("target"), b"t").expect("write");
    symlink(f.at("target"), f.at("link")).expect("symlink");
    mkfifo(&f.at("fifo"));
    for missing in ["none", "a/none", "none/x", "link", "fifo", "target/x"] {
        assert!(
            matches!(err(delete(&root, missing)), StoreError::NotFound),
            "{missing}"
        );
    }
    assert!(fs::symlink_metadata(f.at("link")).is_ok(), "the link stays");
    assert!(fs::symlink_metadata(f.at("fifo")).is_ok(), "the FIFO stays");
    assert_eq!(fs::read(f.at("target")).expect("kept"), b"t");
}

/// TREE-11: files and folders move, with their content, between folders; a missing source,
/// a missing destination folder, a link or a FIFO is 511.
#[test]
fn rename_moves_files_and_folders() {
    let f = Fixture::new();
    let root = f.root();
    fs::create_dir_all(f.at("a/b")).expect("mkdir");
    fs::create_dir(f.at("c")).expect("mkdir");
    fs::write(f.at("a/b/file"), b"content").expect("write");
    assert_eq!(
        rename(&root, "a/b/file", "c/moved").expect("rename"),
        TreeDone::Done
    );
    assert_eq!(fs::read(f.at("c/moved")).expect("moved"), b"content");
    assert!(!f.at("a/b/file").exists());
    rename(&root, "c/moved", "top").expect("rename to the root");
    assert_eq!(fs::read(f.at("top")).expect("moved"), b"content");
    rename(&root, "a", "c/a").expect("rename a folder");
    assert!(f.at("c/a/b").is_dir());
    assert!(!f.at("a").exists());

    symlink(f.at("top"), f.at("link")).expect("symlink");
    mkfifo(&f.at("fifo"));
    for (from, to) in [
        ("none", "x"),
        ("c/none", "x"),
        ("link", "x"),
        ("fifo", "x"),
        ("top/x", "x"),
        ("top", "none/x"),
        ("top", "link/x"),
        ("top", "fifo/x"),
    ] {
        assert!(
            matches!(err(rename(&root, from, to)), StoreError::NotFound),
            "{from} -> {to}"
        );
    }
    assert_eq!(fs::read(f.at("top")).expect("kept"), b"content");
    assert!(fs::symlink_metadata(f.at("link")).is_ok());
    assert!(fs::symlink_metadata(f.at("fifo")).is_ok());
    assert!(!f.at("x").exists());
}

/// TREE-11: nothing already at TO is ever replaced: a file, a folder (even empty), a link
/// (even dangling), a FIFO — all 512, both sides unchanged.
#[test]
fn rename_never_replaces() {
    let f = Fixture::new();
    let root = f.root();
    fs::write(f.at("file"), b"file").expect("write");
    fs::write(f.at("other"), b"other").expect("write");
    fs::create_dir(f.at("empty")).expect("mkdir");
    fs::create_dir(f.at("folder")).expect("mkdir");
    fs::write(f.at("folder/x"), b"x").expect("write");
    symlink("nowhere", f.at("dangling")).expect("symlink");
    mkfifo(&f.at("fifo"));
    let before = snapshot(&f.served);
    for (from, to) in [
        ("file", "other"),
        ("file", "empty"),
        ("file", "dangling"),
        ("file", "fifo"),
        ("empty", "folder"),
        ("empty", "file"),
        ("folder", "empty"),
        ("folder", "dangling"),
        ("file", "file"),
    ] {
        assert!(
            matches!(err(rename(&root, from, to)), StoreError::Exists),
            "{from} -> {to}"
        );
    }
    assert_eq!(snapshot(&f.served), before);
}

/// SEC-10 for the extension: a read-only root answers 514 to every changing operation,
/// before looking at anything (a missing path too), and still lists.
#[test]
fn a_read_only_root_changes_nothing() {
    let f = Fixture::new();
    fs::create_dir(f.at("empty")).expect("mkdir");
    fs::write(f.at("file"), b"x").expect("write");
    let root = Root::open_read_only(&f.served).expect("open");
    let before = snapshot(&f.served);
    let attempts = [
        mkdir(&root, "new"),
        mkdir(&root, "none/new"),
        rmdir(&root, "empty"),
        rmdir(&root, "none"),
        delete(&root, "file"),
        delete(&root, "none"),
        rename(&root, "file", "moved"),
        rename(&root, "none", "moved"),
    ];
    for r in attempts {
        assert!(matches!(err(r), StoreError::ReadOnly));
    }
    assert_eq!(snapshot(&f.served), before);
    assert_eq!(listed(&root, ".", false), ["d empty", "f file"]);
}

/// TREE-4: a link at the first, a middle or the last level of a path, to a folder outside
/// or inside, or a FIFO anywhere, is never followed or acted on by any operation: each is
/// 511 (512 for mkdir of the link's own name), and nothing outside is read, created, renamed
/// or deleted.
#[test]
fn no_operation_escapes_through_links_or_special_files() {
    let f = Fixture::new();
    let root = f.root();
    fs::create_dir_all(f.at("a/b")).expect("mkdir");
    fs::write(f.at("a/file"), b"inside").expect("write");
    symlink(&f.outside, f.at("out")).expect("symlink"); // first level
    symlink(&f.outside, f.at("a/out")).expect("symlink"); // middle
    symlink(&f.outside, f.at("a/b/out")).expect("symlink"); // deeper
    symlink(f.outside.join("secret"), f.at("a/b/secret-link")).expect("symlink"); // last
    symlink(f.at("a"), f.at("in")).expect("symlink"); // a folder inside
    symlink("a", f.at("in-relative")).expect("symlink");
    mkfifo(&f.at("fifo"));
    mkfifo(&f.at("a/b/fifo"));
    let outside_before = snapshot(&f.outside);
    let served_before = snapshot(&f.served);

    let through = [
        "out",
        "a/out",
        "a/b/out",
        "in",
        "in-relative",
        "fifo",
        "a/b/fifo",
    ];
    for link in through {
        for rest in ["secret", "dir", "dir/inner", "file", "b", "new"] {
            let path = format!("{link}/{rest}");
            let not_found = |r: Result<TreeDone, StoreError>, what: &str| {
                assert!(matches!(err(r), StoreError::NotFound), "{what} {path}");
            };
            not_found(mkdir(&root, &path), "mkdir");
            not_found(rmdir(&root, &path), "rmdir");
            not_found(delete(&root, &path), "delete");
            not_found(rename(&root, &path, "stolen"), "rename from");
            not_found(rename(&root, "a/file", &path), "rename to");
            let listing = list(&root, &path, true).expect_err(&path);
            assert!(
                matches!(listing, StoreError::NotFound),
                "list {path}: {listing:?}"
            );
        }
    }
    // The links and the FIFOs themselves, as the last name.
    for last in [
        "out",
        "a/out",
        "a/b/out",
        "a/b/secret-link",
        "in",
        "in-relative",
        "fifo",
        "a/b/fifo",
    ] {
        assert!(
            matches!(err(mkdir(&root, last)), StoreError::Exists),
            "{last}"
        );
        assert!(
            matches!(err(rmdir(&root, last)), StoreError::NotFound),
            "{last}"
        );
        assert!(
            matches!(err(delete(&root, last)), StoreError::NotFound),
            "{last}"
        );
        assert!(
            matches!(err(rename(&root, last, "moved")), StoreError::NotFound),
            "{last}"
        );
        assert!(
            matches!(list(&root, last, false), Err(StoreError::NotFound)),
            "{last}"
        );
    }
    // No listing shows a link or a FIFO, or what is behind a link.
    assert_eq!(
        listed(&root, ".", true),
        ["d a", "d a/b", "f a/file"],
        "only what is really inside"
    );
    // `..` and hidden names (the staging area) cannot even be written as a path.
    for bad in [
        "..",
        "a/..",
        "../outside",
        "a/../../outside",
        ".",
        STAGING_DIR,
        "a/.x",
        "/a",
        "a/",
    ] {
        assert!(TreePath::new(bad).is_err(), "{bad}");
    }
    assert_eq!(
        snapshot(&f.outside),
        outside_before,
        "nothing outside changed"
    );
    assert_eq!(snapshot(&f.served), served_before, "nothing inside changed");
}

/// TREE-6: a listing has the regular files and folders with valid names, never links,
/// special files, invalid or hidden names or the staging area, sorted by the paths' octets
/// (so `a` < `a-b` < `a.c` < `a/b`, and `B` < `Z/y` < `a` < `z` < `é`), each once; paths
/// relative to the listed folder; a file is 518, a missing folder 511.
#[test]
fn listings_are_sorted_by_path_octets_and_show_only_valid_files_and_folders() {
    let f = Fixture::new();
    let root = f.root();
    for dir in ["a", "a/sub", "é", "Z"] {
        fs::create_dir_all(f.at(dir)).expect("mkdir");
    }
    for file in ["a-b", "a.c", "a/b", "a/sub/deep", "B", "é/x", "z", "Z/y"] {
        fs::write(f.at(file), file.as_bytes()).expect("write");
    }
    fs::write(f.at(".hidden"), b"h").expect("write");
    fs::write(f.at("a/.hidden"), b"h").expect("write");
    fs::write(f.at("a/e\u{301}"), b"not NFC").expect("write");
    fs::create_dir(f.at("a/.hidden-folder")).expect("mkdir");
    fs::write(f.at("a/.hidden-folder/x"), b"h").expect("write");
    fs::create_dir(f.at("tab\tfolder")).expect("mkdir");
    fs::write(f.at("tab\tfolder/x"), b"h").expect("write");
    symlink(f.at("a"), f.at("a/sub/loop")).expect("symlink");
    mkfifo(&f.at("a/fifo"));

    let all = listed(&root, ".", true);
    assert_eq!(
        all,
        [
            "f B",
            "d Z",
            "f Z/y",
            "d a",
            "f a-b",
            "f a.c",
            "f a/b",
            "d a/sub",
            "f a/sub/deep",
            "f z",
            "d é",
            "f é/x",
        ]
    );
    let entries = list(&root, ".", true).expect("list");
    let mut sorted: Vec<&[u8]> = entries.iter().map(|e| e.path.as_bytes()).collect();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), entries.len(), "each once");
    assert!(entries.iter().map(|e| e.path.as_bytes()).eq(sorted));
    let b = entries
        .iter()
        .find(|e| e.path.as_str() == "a/b")
        .expect("a/b");
    assert!(matches!(
        b.kind,
        EntryKind::File {
            size: 3,
            digest: None
        }
    ));

    assert_eq!(
        listed(&root, ".", false),
        ["f B", "d Z", "d a", "f a-b", "f a.c", "f z", "d é"]
    );
    assert_eq!(listed(&root, "a", true), ["f b", "d sub", "f sub/deep"]);
    assert_eq!(listed(&root, "a/sub", false), ["f deep"]);
    assert!(matches!(
        list(&root, "a/b", false),
        Err(StoreError::WrongKind)
    ));
    assert_eq!(StoreError::WrongKind.code().get(), 518);
    assert!(matches!(
        list(&root, "none", false),
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        list(&root, "a/b/c", false),
        Err(StoreError::NotFound)
    ));
}

/// SEC-13 in listings: a file with more than one link is left out at every depth unless
/// the root allows hard links; listing it as a folder is 511, not 518.
#[test]
fn hard_linked_files_are_left_out_of_listings() {
    let f = Fixture::new();
    fs::create_dir(f.at("a")).expect("mkdir");
    fs::hard_link(f.outside.join("secret"), f.at("a/x")).expect("link");
    fs::write(f.at("a/plain"), b"p").expect("write");
    let root = f.root();
    assert_eq!(listed(&root, ".", true), ["d a", "f a/plain"]);
    assert!(matches!(
        list(&root, "a/x", false),
        Err(StoreError::NotFound)
    ));
    let entries = list_with(&root, ".", true, true, usize::MAX).expect("list");
    assert_eq!(paths(&entries), ["d a", "f a/plain"]);
    let allowing = root.with_hard_links(true);
    assert_eq!(listed(&allowing, ".", true), ["d a", "f a/plain", "f a/x"]);
}

/// TREE-6: with `recursive`, entries whose full path from the served folder would exceed 64
/// names or 1024 octets are left out — when the served folder is listed and when a subfolder
/// is (the limit is on the full path, not the listed part).
#[test]
fn recursive_listings_stop_at_the_path_limits() {
    let f = Fixture::new();
    let root = f.root();
    // 65 nested folders `d`, each with a file `f`.
    let mut dir = f.served.clone();
    for _ in 0..=MAX_DEPTH {
        dir.push("d");
        fs::create_dir(&dir).expect("mkdir");
        fs::write(dir.join("f"), b"f").expect("write");
    }
    let entries = list(&root, ".", true).expect("list");
    let deepest = entries.iter().map(|e| e.path.depth()).max();
    assert_eq!(deepest, Some(MAX_DEPTH));
    // Folders d .. d/…/d (64 names), files d/f .. (63 folders + f).
    assert_eq!(entries.len(), MAX_DEPTH + (MAX_DEPTH - 1));
    let from_d = list(&root, "d/d", true).expect("list");
    assert_eq!(from_d.len(), entries.len() - 3, "all but d, d/f and d/d");
    assert!(from_d.iter().all(|e| e.path.depth() + 2 <= MAX_DEPTH));
    // The quota's scan counts what a path can name, as the listing shows it: 64 folders
    // (the 65th is too deep) and 63 files.
    let counted = root
        .clone()
        .with_quotas(Quota {
            bytes: None,
            files: Some(1000),
        })
        .expect("scan");
    assert_eq!(
        counted.usage().map(|u| u.files),
        Some(entries.len() as u64),
        "files and folders"
    );
    assert_eq!(
        counted.usage().map(|u| u.used),
        Some(MAX_DEPTH as u64 - 1 + MAX_DEPTH as u64 * FOLDER_OCTETS)
    );

    // Octets: five 200-octet folders (1004 octets), then names of 19 and 20 octets.
    let long = "x".repeat(200);
    let mut chain = f.served.join("long");
    fs::create_dir(&chain).expect("mkdir");
    for _ in 0..4 {
        chain.push(&long);
        fs::create_dir(&chain).expect("mkdir");
    }
    // served/long + 4 × 200: "long/xxx…/xxx…/xxx…/xxx…" is 4 + 4 × 201 = 808 octets.
    let base = 4 + 4 * 201;
    let fits = "f".repeat(MAX_PATH - base - 1);
    let too_long = "f".repeat(MAX_PATH - base);
    fs::write(chain.join(&fits), b"1").expect("write");
    fs::write(chain.join(&too_long), b"2").expect("write");
    let entries = list(&root, "long", true).expect("list");
    let files: Vec<_> = entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::File { .. }))
        .map(|e| e.path.as_str().len() + "long/".len())
        .collect();
    assert_eq!(
        files,
        [MAX_PATH],
        "the 1024-octet path is in, the 1025-octet one out"
    );
    let from_root = list(&root, ".", true).expect("list");
    assert!(
        from_root
            .iter()
            .any(|e| e.path.as_bytes().len() == MAX_PATH)
    );
    assert!(
        from_root
            .iter()
            .all(|e| e.path.as_bytes().len() <= MAX_PATH)
    );
}

/// TREE-6, TREE-7: with `digests`, each file's digest is the one a get of the whole file
/// ends with (here, over several 1 MiB pieces and for an empty file); folders have none;
/// SIZE and MTIME are those of the file.
#[test]
fn listed_digests_are_those_a_get_ends_with() {
    let f = Fixture::new();
    let root = f.root();
    fs::create_dir(f.at("a")).expect("mkdir");
    let big: Vec<u8> = (0..(5u32 << 19)).map(|i| (i % 251) as u8).collect();
    fs::write(f.at("a/big"), &big).expect("write");
    fs::write(f.at("empty"), b"").expect("write");
    fs::write(f.at("small"), b"hello").expect("write");
    let entries = list_with(&root, ".", true, true, usize::MAX).expect("list");
    assert_eq!(paths(&entries), ["d a", "f a/big", "f empty", "f small"]);
    for e in &entries {
        match e.kind {
            EntryKind::Folder => {}
            EntryKind::File { size, digest } => {
                let mut file = root.open_read(&e.path).expect("get");
                let mut content = Vec::new();
                file.file.read_to_end(&mut content).expect("read");
                assert_eq!(size, file.size);
                assert_eq!(e.mtime, file.mtime);
                assert_eq!(digest, Some(Digest::of(&content)), "{}", e.path);
            }
        }
    }
    // Without `digests`, none.
    let plain = list(&root, ".", true).expect("list");
    assert!(plain.iter().all(|e| !matches!(
        e.kind,
        EntryKind::File {
            digest: Some(_),
            ..
        }
    )));
}

/// DIR-11: the listing's entries count against its budget ([`entry_cost`]); one octet less
/// than they take is 431.
#[test]
fn a_listing_beyond_its_budget_is_431() {
    let f = Fixture::new();
    let root = f.root();
    fs::create_dir(f.at("a")).expect("mkdir");
    for n in ["x", "y", "a/z"] {
        fs::write(f.at(n), b"1").expect("write");
    }
    let entries = list(&root, ".", true).expect("list");
    let cost: usize = entries.iter().map(entry_cost).sum();
    assert_eq!(
        list_with(&root, ".", false, true, cost).expect("fits"),
        entries
    );
    let e = list_with(&root, ".", false, true, cost - 1).expect_err("too large");
    assert!(matches!(e, StoreError::ListingTooLarge), "{e:?}");
    assert_eq!(e.code().get(), 431);
    assert!(matches!(
        list_with(&root, ".", true, false, 0),
        Err(StoreError::ListingTooLarge)
    ));
}

/// TREE-12 and PUT-23: the start-up scan counts the regular files and the folders of the
/// whole tree (not links, not what a link leads to; a folder as one entry and 4096 octets);
/// a delete frees the file's octets and one file; a mkdir adds a folder, an rmdir frees it;
/// a rename changes nothing.
#[test]
fn the_quota_follows_the_tree() {
    let f = Fixture::new();
    fs::create_dir_all(f.at("a/b/c")).expect("mkdir");
    fs::write(f.at("top"), [0u8; 10]).expect("write");
    fs::write(f.at("a/one"), [0u8; 20]).expect("write");
    fs::write(f.at("a/b/c/deep"), [0u8; 40]).expect("write");
    fs::write(f.at("a/b/.hidden"), [0u8; 5]).expect("write");
    symlink(&f.outside, f.at("a/out")).expect("symlink");
    symlink(f.at("top"), f.at("a/b/top-link")).expect("symlink");
    let quota = Quota {
        bytes: Some(1 << 20),
        files: Some(100),
    };
    let root = f.root().with_quotas(quota).expect("scan");
    let usage = |r: &Root| r.usage().map(|u| (u.used, u.files));
    // Four files (75 octets) and three folders (a, a/b, a/b/c).
    let dirs = |n: u64| n * FOLDER_OCTETS;
    assert_eq!(usage(&root), Some((75 + dirs(3), 7)));
    rename(&root, "a/b/c/deep", "moved").expect("rename");
    rename(&root, "a/b", "b").expect("rename a folder");
    assert_eq!(
        usage(&root),
        Some((75 + dirs(3), 7)),
        "a rename changes nothing"
    );
    mkdir(&root, "new").expect("mkdir");
    assert_eq!(usage(&root), Some((75 + dirs(4), 8)), "a folder more");
    assert!(matches!(err(mkdir(&root, "new")), StoreError::Exists));
    assert!(matches!(err(rmdir(&root, "b")), StoreError::NotEmpty));
    assert_eq!(
        usage(&root),
        Some((75 + dirs(4), 8)),
        "a refused mkdir or rmdir changes nothing"
    );
    rmdir(&root, "new").expect("rmdir");
    assert_eq!(usage(&root), Some((75 + dirs(3), 7)), "a folder less");
    delete(&root, "moved").expect("delete");
    assert_eq!(usage(&root), Some((35 + dirs(3), 6)));
    delete(&root, "a/one").expect("delete");
    assert_eq!(usage(&root), Some((15 + dirs(3), 5)));
    assert!(matches!(err(delete(&root, "a/out")), StoreError::NotFound));
    assert_eq!(
        usage(&root),
        Some((15 + dirs(3), 5)),
        "a refused delete frees nothing"
    );
    drop(root);
    let again = f.root().with_quotas(quota).expect("scan");
    assert_eq!(
        usage(&again),
        Some((15 + dirs(3), 5)),
        "the ledger matched the tree"
    );
}

/// PUT-23, TREE-8: a folder counts one entry in the quota in files and folders; a `mkdir`
/// over it is `NoSpace` (432) and makes nothing; a taken name is still 512; an `rmdir`
/// gives the entry back, and a `mkdir` then fits.
#[test]
fn mkdir_over_the_quota_in_files_is_refused() {
    let f = Fixture::new();
    fs::write(f.at("file"), b"x").expect("write");
    fs::create_dir(f.at("old")).expect("mkdir");
    let root = f
        .root()
        .with_quotas(Quota {
            bytes: None,
            files: Some(3),
        })
        .expect("scan");
    mkdir(&root, "a").expect("3 of 3");
    let before = snapshot(&f.served);
    for path in ["b", "a/b", "old/b"] {
        assert!(
            matches!(err(mkdir(&root, path)), StoreError::NoSpace),
            "{path}"
        );
    }
    assert_eq!(snapshot(&f.served), before, "nothing made");
    assert!(
        matches!(err(mkdir(&root, "old")), StoreError::Exists),
        "an existing name is 512 whatever the quota"
    );
    assert!(
        matches!(err(mkdir(&root, "none/b")), StoreError::NotFound),
        "a missing parent is 511 whatever the quota"
    );
    assert_eq!(
        root.usage().map(|u| (u.files, u.reserved_files)),
        Some((3, 0)),
        "a refused mkdir keeps no reservation"
    );
    // A put that adds a file is refused the same way.
    assert!(matches!(
        root.begin_upload(&p("new"), 1, PutMode::New),
        Err(StoreError::NoSpace)
    ));
    rmdir(&root, "old").expect("rmdir");
    mkdir(&root, "b").expect("an rmdir made room");
    assert!(f.at("b").is_dir());
}

/// PUT-23, TREE-8: a folder counts 4096 octets in the quota in octets, whatever the file
/// system says of it; a `mkdir` that would go over is `NoSpace` and makes nothing.
#[test]
fn mkdir_over_the_quota_in_octets_is_refused() {
    let f = Fixture::new();
    fs::write(f.at("file"), [0u8; 100]).expect("write");
    let root = f
        .root()
        .with_quotas(Quota {
            bytes: Some(100 + 2 * FOLDER_OCTETS),
            files: None,
        })
        .expect("scan");
    mkdir(&root, "a").expect("fits");
    mkdir(&root, "a/b").expect("fits exactly");
    assert!(matches!(err(mkdir(&root, "c")), StoreError::NoSpace));
    assert!(!f.at("c").exists(), "nothing made");
    assert_eq!(
        root.usage().map(|u| (u.used, u.reserved)),
        Some((100 + 2 * FOLDER_OCTETS, 0))
    );
    // An upload in progress holds its SIZE: a folder does not fit beside it either.
    rmdir(&root, "a/b").expect("rmdir");
    let upload = root
        .begin_upload(&p("big"), FOLDER_OCTETS - 1, PutMode::New)
        .expect("fits");
    assert!(matches!(err(mkdir(&root, "c")), StoreError::NoSpace));
    drop(upload);
    mkdir(&root, "c").expect("the upload gave its room back");
}

/// PUT-23: `mkdir`s and puts racing for the last entries of a quota in files and folders
/// share one count: whatever the order, exactly as many get through as the quota has room
/// for, and the counts match what was made.
#[test]
fn concurrent_mkdirs_and_puts_never_overshoot_the_quota() {
    const ROOM: usize = 10;
    let f = Fixture::new();
    let root = f
        .root()
        .with_quotas(Quota {
            bytes: None,
            files: Some(ROOM as u64),
        })
        .expect("scan");
    let (folders, uploads) = std::thread::scope(|scope| {
        let folders: Vec<_> = (0..ROOM)
            .map(|i| {
                let root = &root;
                scope.spawn(move || mkdir(root, &format!("d{i}")).ok())
            })
            .collect();
        let uploads: Vec<_> = (0..ROOM)
            .map(|i| {
                let root = &root;
                scope.spawn(move || {
                    root.begin_upload(&p(&format!("f{i}")), 1, PutMode::New)
                        .ok()
                })
            })
            .collect();
        let folders = folders
            .into_iter()
            .filter_map(|h| h.join().expect("thread"))
            .count();
        let uploads: Vec<_> = uploads
            .into_iter()
            .filter_map(|h| h.join().expect("thread"))
            .collect();
        (folders, uploads)
    });
    assert_eq!(folders + uploads.len(), ROOM, "exactly the room there was");
    assert_eq!(
        root.usage().map(|u| (u.files, u.reserved_files)),
        Some((folders as u64, uploads.len() as u64))
    );
    let made = fs::read_dir(&f.served)
        .expect("read_dir")
        .filter(|e| e.as_ref().expect("entry").path().is_dir())
        .count();
    // The staging area is a folder too, not counted.
    assert_eq!(made, folders + 1);
    drop(uploads);
    assert_eq!(
        root.usage().map(|u| (u.files, u.reserved_files)),
        Some((folders as u64, 0))
    );
}

/// A tmpfs mounted at a folder inside the served one, unmounted on drop.
struct Mounted(PathBuf);

impl Mounted {
    fn at(path: &Path) -> Option<Self> {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Mounted(path.to_owned()))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// TREE-11, TREE-9: a rename into or out of a file system mounted inside the folder cannot
/// be one atomic step (EXDEV): 516, nothing moved; the mount point itself cannot be removed
/// or moved (EBUSY): 516. Needs permission to mount a tmpfs; skipped (with a note) otherwise.
#[test]
fn a_mount_inside_the_folder_is_not_crossed() {
    let f = Fixture::new();
    fs::create_dir(f.at("mnt")).expect("mkdir");
    let Some(_mnt) = Mounted::at(&f.at("mnt")) else {
        // CI has these capabilities (root, tmpfs): never skip there.
        assert!(
            std::env::var_os("CI").is_none(),
            "skipped: cannot mount a tmpfs here"
        );
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    let root = f.root();
    fs::write(f.at("file"), b"x").expect("write");
    fs::write(f.at("mnt/inner"), b"i").expect("write");
    fs::create_dir(f.at("empty")).expect("mkdir");
    let before = snapshot(&f.served);
    for (from, to) in [
        ("file", "mnt/file"),
        ("mnt/inner", "inner"),
        ("empty", "mnt/empty"),
    ] {
        assert!(
            matches!(err(rename(&root, from, to)), StoreError::Denied),
            "{from} -> {to}"
        );
    }
    assert_eq!(snapshot(&f.served), before);
    delete(&root, "mnt/inner").expect("delete inside the mount");
    assert!(matches!(err(rmdir(&root, "mnt")), StoreError::Denied));
    assert!(matches!(
        err(rename(&root, "mnt", "moved")),
        StoreError::Denied
    ));
    assert!(f.at("mnt").is_dir());
    assert_eq!(listed(&root, ".", true), ["d empty", "f file", "d mnt"]);
}
