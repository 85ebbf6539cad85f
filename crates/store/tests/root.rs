//! The served folder's rules, checked on a real file system (a tempdir; ENOSPC on a small
//! tmpfs when this process may mount one).

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, SystemTime};

use ferry_store::{FOLDER_OCTETS, Root, STAGING_DIR, StoreError};
use ferry_wire::{PutMode, Timestamp, TreePath};

fn name(s: &str) -> TreePath {
    TreePath::new(s).expect("valid name")
}

fn staging_entries(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(root.join(STAGING_DIR))
        .expect("staging area exists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn visible(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(root)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != STAGING_DIR)
        .collect();
    v.sort();
    v
}

fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .expect("mkfifo");
}

#[test]
fn open_creates_the_folder_and_the_staging_area() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("a").join("served");
    let root = Root::open(&path).expect("open");
    assert!(path.join(STAGING_DIR).is_dir());
    assert_eq!(root.path(), path);
    assert!(root.list().expect("list").is_empty());
}

#[test]
fn a_second_root_on_the_same_folder_is_refused_until_the_first_is_dropped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let first = Root::open(tmp.path()).expect("open");
    let err = Root::open(tmp.path()).expect_err("second open must fail");
    assert_eq!(err.kind(), std::io::ErrorKind::ResourceBusy, "{err}");
    drop(first);
    Root::open(tmp.path()).expect("open after the first was dropped");
}

#[test]
fn listing_has_only_valid_regular_files_sorted_bytewise() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path();
    let root = Root::open(p).expect("open");
    fs::write(p.join("射频仿真.pptx"), b"pptx").expect("write");
    fs::write(p.join("天线15.doc"), b"hello").expect("write");
    fs::write(p.join("my report (final).pdf"), b"").expect("write");
    fs::write(p.join("B"), b"bb").expect("write");
    fs::write(p.join("a"), b"a").expect("write");
    fs::write(p.join(".hidden"), b"x").expect("write");
    fs::write(p.join("e\u{301}.txt"), b"not nfc").expect("write");
    fs::write(p.join(" lead"), b"x").expect("write");
    fs::write(p.join("tab\tname"), b"x").expect("write");
    fs::create_dir(p.join("folder")).expect("mkdir");
    symlink("/etc/passwd", p.join("passwd-link")).expect("symlink");
    symlink("a", p.join("link-to-a")).expect("symlink");
    symlink("/nonexistent", p.join("dangling")).expect("symlink");
    mkfifo(&p.join("fifo"));
    // An old and a future mtime are clamped and truncated, never rejected.
    let f = fs::File::options()
        .write(true)
        .open(p.join("a"))
        .expect("open");
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_999))
        .expect("set mtime");
    drop(f);

    // DIR-5: before the epoch is sent as the epoch.
    let f = fs::File::options()
        .write(true)
        .open(p.join("B"))
        .expect("open");
    f.set_modified(SystemTime::UNIX_EPOCH - Duration::from_secs(86_400 * 365))
        .expect("set mtime");
    drop(f);

    let entries = root.list().expect("list");
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "B",
            "a",
            "my report (final).pdf",
            "天线15.doc",
            "射频仿真.pptx"
        ]
    );
    let sizes: Vec<u64> = entries.iter().map(|e| e.size).collect();
    assert_eq!(sizes, [2, 1, 0, 5, 4]);
    assert_eq!(
        entries[1].mtime,
        Timestamp::from_unix(1_700_000_000).expect("in range")
    );
    assert_eq!(entries[0].mtime, Timestamp::EPOCH);
    // Bytewise order: "天" (E5 A4 A9) before "射" (E5 B0 84).
    assert!(names.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()));
}

#[test]
fn reads_refuse_links_folders_and_special_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path();
    let root = Root::open(p).expect("open");
    fs::write(p.join("real"), b"content").expect("write");
    symlink("/etc/passwd", p.join("passwd")).expect("symlink");
    symlink("real", p.join("link-to-real")).expect("symlink");
    symlink("/etc", p.join("etc")).expect("symlink");
    fs::create_dir(p.join("folder")).expect("mkdir");
    mkfifo(&p.join("fifo"));
    for n in ["passwd", "link-to-real", "etc", "folder", "fifo", "missing"] {
        match root.open_read(&name(n)) {
            Err(StoreError::NotFound) => {}
            other => panic!("{n}: expected NotFound, got {other:?}"),
        }
    }
    let mut rf = root.open_read(&name("real")).expect("open real");
    assert_eq!(rf.size, 7);
    let mut s = String::new();
    rf.file.read_to_string(&mut s).expect("read");
    assert_eq!(s, "content");
    assert!(rf.unchanged().expect("fstat"));
}

#[test]
fn unchanged_sees_size_and_mtime_changes_of_the_open_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path();
    let root = Root::open(p).expect("open");
    fs::write(p.join("f"), b"0123456789").expect("write");
    let rf = root.open_read(&name("f")).expect("open");
    assert!(rf.unchanged().expect("fstat"));

    // Same size, new content and a different mtime (sub-second differences count).
    let f = fs::File::options()
        .write(true)
        .open(p.join("f"))
        .expect("open");
    let t = SystemTime::UNIX_EPOCH + Duration::new(1_600_000_000, 123_456_789);
    f.set_modified(t).expect("mtime");
    assert!(!rf.unchanged().expect("fstat"));

    let rf = root.open_read(&name("f")).expect("reopen");
    f.set_modified(t + Duration::from_nanos(1)).expect("mtime");
    assert!(!rf.unchanged().expect("fstat"), "a 1 ns change is a change");

    let rf = root.open_read(&name("f")).expect("reopen");
    f.set_len(3).expect("truncate");
    f.set_modified(t + Duration::from_nanos(1))
        .expect("same mtime as before");
    assert!(!rf.unchanged().expect("fstat"), "a size change is a change");
}

#[test]
fn new_refuses_anything_at_the_name_replace_refuses_folders() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path();
    let root = Root::open(p).expect("open");
    fs::write(p.join("file"), b"x").expect("write");
    fs::create_dir(p.join("folder")).expect("mkdir");
    symlink("/etc/passwd", p.join("link")).expect("symlink");
    symlink("/nonexistent", p.join("dangling")).expect("symlink");
    mkfifo(&p.join("fifo"));
    for n in ["file", "folder", "link", "dangling", "fifo"] {
        match root.begin_upload(&name(n), 1, PutMode::New) {
            Err(StoreError::Exists) => {}
            other => panic!("new {n}: expected Exists, got {other:?}"),
        }
    }
    for n in ["folder", "fifo"] {
        match root.begin_upload(&name(n), 1, PutMode::Replace) {
            Err(StoreError::Exists) => {}
            other => panic!("replace {n}: expected Exists, got {other:?}"),
        }
    }
    assert!(staging_entries(p).is_empty());
}

#[test]
fn replace_of_a_symlink_replaces_the_link_never_its_target() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let target = outside.path().join("target");
    fs::write(&target, b"outside, must survive").expect("write");
    let p = tmp.path();
    let root = Root::open(p).expect("open");
    symlink(&target, p.join("link")).expect("symlink");

    let mut up = root
        .begin_upload(&name("link"), 3, PutMode::Replace)
        .expect("begin");
    up.write_all(b"new").expect("write");
    up.commit().expect("commit");

    assert_eq!(
        fs::read(&target).expect("read target"),
        b"outside, must survive"
    );
    let meta = fs::symlink_metadata(p.join("link")).expect("lstat");
    assert!(
        meta.file_type().is_file(),
        "the link itself was replaced by a regular file"
    );
    assert_eq!(fs::read(p.join("link")).expect("read"), b"new");
    assert!(staging_entries(p).is_empty());
}

#[test]
fn upload_is_invisible_until_commit_and_replace_replaces() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path();
    let root = Root::open(p).expect("open");
    fs::write(p.join("doc"), b"old").expect("write");

    let mut up = root
        .begin_upload(&name("doc"), 6, PutMode::Replace)
        .expect("begin");
    up.write_all(b"new").expect("write");
    assert_eq!(fs::read(p.join("doc")).expect("read"), b"old");
    assert_eq!(staging_entries(p).len(), 1);
    up.write_all(b"er!").expect("write");
    assert!(
        up.write_all(b"x").is_err(),
        "more than the announced size is refused"
    );
    up.commit().expect("commit");
    assert_eq!(fs::read(p.join("doc")).expect("read"), b"newer!");
    assert!(staging_entries(p).is_empty());
    assert_eq!(visible(p), ["doc"]);

    let mut up = root
        .begin_upload(&name("short"), 4, PutMode::New)
        .expect("begin");
    up.write_all(b"abc").expect("write");
    assert!(
        up.commit().is_err(),
        "fewer octets than announced cannot be committed"
    );
    assert_eq!(visible(p), ["doc"]);
    assert!(staging_entries(p).is_empty());
}

#[test]
fn new_loses_the_race_against_a_file_that_appears_before_commit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path();
    let root = Root::open(p).expect("open");

    let mut up = root
        .begin_upload(&name("race"), 4, PutMode::New)
        .expect("begin");
    up.write_all(b"mine").expect("write");
    fs::write(p.join("race"), b"theirs").expect("a concurrent writer");
    match up.commit() {
        Err(StoreError::Exists) => {}
        other => panic!("expected Exists, got {other:?}"),
    }
    assert_eq!(fs::read(p.join("race")).expect("read"), b"theirs");
    assert!(staging_entries(p).is_empty());

    // A symlink appearing is just as taken.
    let mut up = root
        .begin_upload(&name("race2"), 1, PutMode::New)
        .expect("begin");
    up.write_all(b"x").expect("write");
    symlink("/etc/passwd", p.join("race2")).expect("symlink");
    assert!(matches!(up.commit(), Err(StoreError::Exists)));
    assert!(
        fs::symlink_metadata(p.join("race2"))
            .expect("lstat")
            .file_type()
            .is_symlink()
    );

    // Two uploads of the same new name: the first commit wins.
    let mut a = root
        .begin_upload(&name("both"), 1, PutMode::New)
        .expect("begin a");
    let mut b = root
        .begin_upload(&name("both"), 1, PutMode::New)
        .expect("begin b");
    a.write_all(b"a").expect("write");
    b.write_all(b"b").expect("write");
    b.commit().expect("b commits first");
    assert!(matches!(a.commit(), Err(StoreError::Exists)));
    assert_eq!(fs::read(p.join("both")).expect("read"), b"b");

    // A folder appearing under the name of a replace is not replaceable.
    let mut up = root
        .begin_upload(&name("dir-race"), 1, PutMode::Replace)
        .expect("begin");
    up.write_all(b"x").expect("write");
    fs::create_dir(p.join("dir-race")).expect("mkdir");
    assert!(matches!(up.commit(), Err(StoreError::Exists)));
    assert!(p.join("dir-race").is_dir());
    assert!(staging_entries(p).is_empty());
}

#[test]
fn dropped_upload_leaves_no_debris_and_restart_removes_old_debris() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path();
    let root = Root::open(p).expect("open");
    let mut up = root
        .begin_upload(&name("gone"), 10, PutMode::New)
        .expect("begin");
    up.write_all(b"12345").expect("write");
    assert_eq!(staging_entries(p).len(), 1);
    drop(up);
    assert!(staging_entries(p).is_empty());
    assert!(visible(p).is_empty());

    // Crash debris: what a process that died mid-upload leaves, plus foreign junk.
    fs::write(
        p.join(STAGING_DIR).join("upload-00000000deadbeef"),
        b"12345",
    )
    .expect("write");
    fs::write(p.join(STAGING_DIR).join("junk"), b"x").expect("write");
    fs::create_dir(p.join(STAGING_DIR).join("junk-dir")).expect("mkdir");
    assert_eq!(staging_entries(p).len(), 3);
    drop(root);
    let _root = Root::open(p).expect("reopen");
    assert!(staging_entries(p).is_empty(), "{:?}", staging_entries(p));
    assert!(visible(p).is_empty());
}

#[test]
fn a_symlink_at_the_staging_name_is_not_followed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    symlink(outside.path(), tmp.path().join(STAGING_DIR)).expect("symlink");
    assert!(
        Root::open(tmp.path()).is_err(),
        "a planted staging link must not be used"
    );
}

/// Everything about a folder tree that a write could change: for the folder itself and
/// every entry below it (relative path, sorted), its type, permissions, size, modification
/// and status-change times, and a file's content or a link's target.
fn tree(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt as _;
    fn walk(root: &Path, rel: &Path, out: &mut Vec<String>) {
        let path = root.join(rel);
        let m = fs::symlink_metadata(&path).expect("metadata");
        let what = if m.is_file() {
            format!("file {:?}", fs::read(&path).expect("read"))
        } else if m.is_symlink() {
            format!("link {:?}", fs::read_link(&path).expect("readlink"))
        } else {
            "dir".to_owned()
        };
        out.push(format!(
            "{} mode={:o} size={} mtime={}.{:09} ctime={}.{:09} {what}",
            rel.display(),
            m.mode(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        ));
        if m.is_dir() {
            let mut names: Vec<_> = fs::read_dir(&path)
                .expect("read_dir")
                .map(|e| e.expect("entry").file_name())
                .collect();
            names.sort();
            for n in names {
                walk(root, &rel.join(n), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, Path::new(""), &mut out);
    out
}

/// What a read-only server does with its root: list, read every file, try an upload.
fn use_read_only(root: &Root) -> Vec<String> {
    assert!(root.is_read_only());
    let names: Vec<String> = root
        .list()
        .expect("list")
        .into_iter()
        .map(|e| e.name.as_str().to_owned())
        .collect();
    for n in &names {
        let mut f = root.open_read(&name(n)).expect("open_read");
        let mut content = Vec::new();
        f.file.read_to_end(&mut content).expect("read");
        assert_eq!(content.len() as u64, f.size);
    }
    for mode in [PutMode::New, PutMode::Replace] {
        assert!(
            matches!(
                root.begin_upload(&name("upload.txt"), 3, mode),
                Err(StoreError::ReadOnly)
            ),
            "a read-only root must refuse uploads"
        );
    }
    names
}

/// SEC-10 on a folder the server may not write (0o555): a read-only open works and serves
/// it. Where permissions are not enforced (tests running as root), the tree comparison
/// still shows that nothing was created or changed.
#[test]
fn read_only_open_serves_a_folder_it_may_not_write() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path().join("served");
    fs::create_dir(&p).expect("mkdir");
    fs::write(p.join("a.txt"), b"alpha").expect("write");
    fs::write(p.join("b.bin"), [0u8, 1, 2, 255]).expect("write");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o555)).expect("chmod");
    let before = tree(&p);

    let root = Root::open_read_only(&p).expect("a read-only open of an unwritable folder");
    assert_eq!(use_read_only(&root), ["a.txt", "b.bin"]);
    assert!(!p.join(STAGING_DIR).exists(), "no staging area is created");
    drop(root);
    assert_eq!(tree(&p), before);

    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod back");
}

/// SEC-10: a read-only open leaves an existing staging area and what an operator put there
/// in place — no clean-up (SEC-8), no chmod, no lock (SEC-9) — and changes nothing else.
#[test]
fn read_only_open_leaves_the_staging_area_and_its_files_alone() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path();
    fs::write(p.join("report.pdf"), b"%PDF").expect("write");
    let staging = p.join(STAGING_DIR);
    fs::create_dir(&staging).expect("mkdir");
    fs::write(staging.join("operator-file"), b"keep me").expect("write");
    // What a read-write open would remove as crash debris, and the permissions it would
    // restrict to 0o700.
    fs::write(staging.join("upload-00000000deadbeef"), b"12345").expect("write");
    fs::create_dir(staging.join("junk-dir")).expect("mkdir");
    fs::set_permissions(&staging, fs::Permissions::from_mode(0o755)).expect("chmod");
    // Timestamps of the writes above must be in the past, so that a change shows.
    std::thread::sleep(Duration::from_millis(20));
    let before = tree(p);

    let root = Root::open_read_only(p).expect("read-only open");
    // Not locked: a read-write server of the same folder could take the lock.
    let dir = rustix::fs::open(
        &staging,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .expect("open the staging area");
    rustix::fs::flock(&dir, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .expect("the staging area is not locked by a read-only root");
    drop(dir);
    // A second read-only root on the same folder is fine too.
    let second = Root::open_read_only(p).expect("second read-only open");
    assert_eq!(
        use_read_only(&root),
        ["report.pdf"],
        "the staging area is never listed"
    );
    assert_eq!(use_read_only(&second), ["report.pdf"]);
    drop((root, second));

    assert_eq!(tree(p), before);
    assert_eq!(
        fs::read(staging.join("operator-file")).expect("the operator's file is still there"),
        b"keep me"
    );
}

/// SEC-10: without a staging area, a read-only open creates none (and no folder either).
#[test]
fn read_only_open_creates_no_staging_area() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path().join("served");
    fs::create_dir(&p).expect("mkdir");
    fs::write(p.join("a.txt"), b"alpha").expect("write");
    std::thread::sleep(Duration::from_millis(20));
    let before = tree(&p);
    let root = Root::open_read_only(&p).expect("read-only open");
    assert!(!p.join(STAGING_DIR).exists());
    assert_eq!(use_read_only(&root), ["a.txt"]);
    assert!(!p.join(STAGING_DIR).exists());
    drop(root);
    assert_eq!(tree(&p), before);

    // A missing folder is an error, not created.
    let missing = tmp.path().join("missing");
    assert!(Root::open_read_only(&missing).is_err());
    assert!(!missing.exists());
}

/// ENOSPC on a real, tiny file system: both the free-space check of PUT-2 and a write that
/// runs out of space mid-upload. Needs permission to mount a tmpfs; skipped (with a note)
/// otherwise.
#[test]
fn no_space_on_a_small_tmpfs() {
    let Some(mnt) = TinyTmpfs::mount("2m") else {
        // CI has these capabilities (root, tmpfs, the ferry binary): never skip there.
        assert!(
            std::env::var_os("CI").is_none(),
            "skipped: cannot mount a tmpfs here"
        );
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    let served = mnt.path.join("served");
    let root = Root::open(&served).expect("open");
    match root.begin_upload(&name("big"), 3 << 20, PutMode::New) {
        Err(StoreError::NoSpace) => {}
        other => panic!("expected NoSpace, got {other:?}"),
    }
    let mut up = root
        .begin_upload(&name("fits"), 1 << 20, PutMode::New)
        .expect("begin");
    // Something else fills the file system after the check.
    fill(&mnt.path.join("filler"));
    let chunk = vec![7u8; 64 << 10];
    let mut err = None;
    for _ in 0..16 {
        if let Err(e) = up.write_all(&chunk) {
            err = Some(e);
            break;
        }
    }
    assert!(matches!(err, Some(StoreError::NoSpace)), "{err:?}");
    assert_eq!(err.map(|e| e.code().get()), Some(432));
    drop(up);
    assert!(staging_entries(&served).is_empty());
    assert!(visible(&served).is_empty());
}

/// Writes until ENOSPC.
fn fill(path: &Path) {
    use std::io::Write as _;
    let mut f = fs::File::create(path).expect("create filler");
    let block = vec![1u8; 64 << 10];
    while f.write_all(&block).is_ok() {}
}

struct TinyTmpfs {
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl TinyTmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| TinyTmpfs {
            path: dir.path().to_owned(),
            _dir: dir,
        })
    }
}

impl Drop for TinyTmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
    }
}

/// A served folder `served/` next to an `outside/` folder holding `secret`, hard-linked into
/// the served folder as `x`; `a` and `b` are two links of one file inside it, `plain` has
/// one link.
fn hard_linked_folder(p: &Path) -> std::path::PathBuf {
    let served = p.join("served");
    fs::create_dir_all(p.join("outside")).expect("mkdir");
    fs::create_dir_all(&served).expect("mkdir");
    fs::write(p.join("outside").join("secret"), b"secret").expect("write");
    fs::hard_link(p.join("outside").join("secret"), served.join("x")).expect("link");
    fs::write(served.join("a"), b"shared").expect("write");
    fs::hard_link(served.join("a"), served.join("b")).expect("link");
    fs::write(served.join("plain"), b"plain").expect("write");
    served
}

fn listed(root: &Root) -> Vec<String> {
    root.list()
        .expect("list")
        .into_iter()
        .map(|e| e.name.as_str().to_owned())
        .collect()
}

fn read_all(root: &Root, n: &str) -> Result<Vec<u8>, StoreError> {
    let mut f = root.open_read(&name(n))?;
    let mut buf = Vec::new();
    f.file.read_to_end(&mut buf).expect("read");
    assert_eq!(f.size, buf.len() as u64);
    Ok(buf)
}

/// SEC-13: a file with more than one link, wherever the other link is, is not listed and
/// not read; a root that allows hard links serves them; a file whose second link went away is
/// served again.
#[test]
fn hard_linked_files_are_neither_listed_nor_read_unless_allowed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = hard_linked_folder(tmp.path());
    let root = Root::open(&served).expect("open");
    assert!(!root.allows_hard_links());
    assert_eq!(listed(&root), ["plain"]);
    for n in ["x", "a", "b"] {
        let e = read_all(&root, n).expect_err("a multi-link file is not read");
        assert!(matches!(e, StoreError::NotFound), "{n}: {e:?}");
    }
    assert_eq!(read_all(&root, "plain").expect("read"), b"plain");

    let allowing = root.clone().with_hard_links(true);
    assert!(allowing.allows_hard_links());
    assert_eq!(listed(&allowing), ["a", "b", "plain", "x"]);
    assert_eq!(read_all(&allowing, "x").expect("read"), b"secret");
    assert_eq!(read_all(&allowing, "b").expect("read"), b"shared");
    // The clone's policy is its own.
    assert_eq!(listed(&root), ["plain"]);

    // One link left: an ordinary file again.
    fs::remove_file(tmp.path().join("outside").join("secret")).expect("unlink");
    fs::remove_file(served.join("b")).expect("unlink");
    assert_eq!(listed(&root), ["a", "plain", "x"]);
    assert_eq!(read_all(&root, "x").expect("read"), b"secret");
    assert_eq!(read_all(&root, "a").expect("read"), b"shared");
}

/// SEC-13 on a read-only root, opened through the server's configuration.
#[test]
fn the_server_configuration_sets_the_hard_link_policy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = hard_linked_folder(tmp.path());
    for read_only in [false, true] {
        let mut config = ferry_store::ServerConfig {
            root: served.clone(),
            read_only,
            ..ferry_store::ServerConfig::default()
        };
        assert!(!config.allow_hard_links, "refused by default");
        let root = config.open_root().expect("open");
        assert_eq!(root.is_read_only(), read_only);
        assert_eq!(listed(&root), ["plain"]);
        assert!(matches!(read_all(&root, "x"), Err(StoreError::NotFound)));
        drop(root);
        config.allow_hard_links = true;
        let root = config.open_root().expect("open");
        assert_eq!(listed(&root), ["a", "b", "plain", "x"]);
        assert_eq!(read_all(&root, "x").expect("read"), b"secret");
    }
}

/// A refused multi-link file still occupies its name: `new` answers exists, `replace` puts a
/// new file under the name and leaves the other link's content alone.
#[test]
fn puts_over_a_hard_linked_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = hard_linked_folder(tmp.path());
    let root = Root::open(&served).expect("open");
    let e = root
        .begin_upload(&name("x"), 3, PutMode::New)
        .expect_err("the name is taken");
    assert!(matches!(e, StoreError::Exists), "{e:?}");
    let mut up = root
        .begin_upload(&name("x"), 3, PutMode::Replace)
        .expect("replace is allowed");
    up.write_all(b"new").expect("write");
    up.commit().expect("commit");
    assert_eq!(
        fs::read(tmp.path().join("outside").join("secret")).expect("read"),
        b"secret"
    );
    // The name has a file of its own now (one link): listed and served.
    assert_eq!(listed(&root), ["plain", "x"]);
    assert_eq!(read_all(&root, "x").expect("read"), b"new");
    assert!(staging_entries(&served).is_empty());
}

/// PUT-22 on a real, tiny file system: an upload's SIZE is reserved from the free space when
/// it begins, so a second upload that would need the same octets is refused before it sends
/// any; what an upload writes leaves its reservation (the free space shows it), and a dropped
/// upload gives the rest back. Needs permission to mount a tmpfs; skipped (with a note)
/// otherwise.
#[test]
fn reservations_share_the_free_space_of_a_small_tmpfs() {
    let Some(mnt) = TinyTmpfs::mount("4m") else {
        // CI has these capabilities (root, tmpfs, the ferry binary): never skip there.
        assert!(
            std::env::var_os("CI").is_none(),
            "skipped: cannot mount a tmpfs here"
        );
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    let served = mnt.path.join("served");
    let root = Root::open(&served).expect("open");
    let mut a = root
        .begin_upload(&name("a"), 3 << 20, PutMode::New)
        .expect("3 of 4 MiB");
    // Free: ~4 MiB, of which 3 are promised to `a`.
    match root.begin_upload(&name("b"), 2 << 20, PutMode::New) {
        Err(StoreError::NoSpace) => {}
        other => panic!("expected NoSpace while `a` holds its reservation, got {other:?}"),
    }
    // `a` writes 2 MiB: 2 MiB fewer free, 1 MiB still promised; 2 MiB still do not fit.
    let chunk = vec![7u8; 1 << 20];
    a.write_all(&chunk).expect("write");
    a.write_all(&chunk).expect("write");
    assert_eq!(root.unwritten(), 1 << 20);
    assert!(matches!(
        root.begin_upload(&name("b"), 2 << 20, PutMode::New),
        Err(StoreError::NoSpace)
    ));
    drop(a);
    assert_eq!(root.unwritten(), 0);
    let b = root
        .begin_upload(&name("b"), 2 << 20, PutMode::New)
        .expect("fits once `a` is gone");
    drop(b);
    assert!(staging_entries(&served).is_empty());
}

/// The accounting of PUT-22 on any file system: the reservation is what an upload has not
/// written yet, shared by every clone of the root, and given back by a commit or a drop.
#[test]
fn an_upload_reserves_until_it_is_written_committed_or_dropped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = Root::open(tmp.path()).expect("open");
    let other = root.clone();
    let mut a = root
        .begin_upload(&name("a"), 1000, PutMode::New)
        .expect("begin");
    let b = other
        .begin_upload(&name("b"), 500, PutMode::New)
        .expect("begin");
    assert_eq!(root.unwritten(), 1500);
    a.write_all(&[1; 400]).expect("write");
    assert_eq!(other.unwritten(), 1100);
    drop(b);
    assert_eq!(root.unwritten(), 600);
    a.write_all(&[1; 600]).expect("write");
    a.commit().expect("commit");
    assert_eq!(root.unwritten(), 0);
    assert_eq!(root.usage(), None, "no quota");
}

/// PUT-23: the quota counts the regular files of the folder's whole tree at start (dotfiles
/// and subfolders too, TREE-12; not links, what a link to a folder holds, or the staging
/// area), each folder as 4096 octets, and every upload in progress; a refused upload is 432
/// before anything is staged; commits and drops keep the count.
#[test]
fn the_quota_counts_files_and_uploads_in_progress() {
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::write(tmp.path().join("a"), [0u8; 100]).expect("write");
    fs::write(tmp.path().join(".hidden"), [0u8; 25]).expect("write");
    fs::create_dir(tmp.path().join("sub")).expect("mkdir");
    fs::write(tmp.path().join("sub").join("x"), [0u8; 25]).expect("write");
    let outside = tempfile::tempdir().expect("tempdir");
    fs::write(outside.path().join("y"), [0u8; 1000]).expect("write");
    symlink(tmp.path().join("a"), tmp.path().join("link")).expect("symlink");
    symlink(outside.path(), tmp.path().join("sub").join("folder-link")).expect("symlink");
    let root = Root::open(tmp.path())
        .expect("open")
        .with_quota(Some(300 + FOLDER_OCTETS))
        .expect("scan");
    // The files' 150 octets, and `sub`'s 4096 (the staging area is not counted).
    let usage = |r: &Root| r.usage().map(|u| (u.used - FOLDER_OCTETS, u.reserved));
    assert_eq!(usage(&root), Some((150, 0)));
    match root.begin_upload(&name("big"), 151, PutMode::New) {
        Err(e @ StoreError::NoSpace) => assert_eq!(e.code().get(), 432),
        other => panic!("expected NoSpace, got {other:?}"),
    }
    assert!(staging_entries(tmp.path()).is_empty(), "nothing staged");
    let mut up = root
        .begin_upload(&name("fits"), 150, PutMode::New)
        .expect("exactly the rest");
    assert_eq!(usage(&root), Some((150, 150)));
    assert!(matches!(
        root.clone().begin_upload(&name("one"), 1, PutMode::New),
        Err(StoreError::NoSpace)
    ));
    up.write_all(&[3; 100]).expect("write");
    drop(up); // a failed upload gives its reservation back
    assert_eq!(usage(&root), Some((150, 0)));
    let mut up = root
        .begin_upload(&name("fits"), 100, PutMode::New)
        .expect("fits again");
    up.write_all(&[3; 100]).expect("write");
    up.commit().expect("commit");
    assert_eq!(usage(&root), Some((250, 0)));
    assert_eq!(
        root.usage().map(|u| u.quota.bytes),
        Some(Some(300 + FOLDER_OCTETS))
    );
}

/// PUT-23 in files and folders: the regular files and the folders of the folder's tree count
/// (dotfiles and subfolders' too, TREE-12; not links or the staging area), and the uploads in
/// progress that add one; a replace of a regular file adds none, a replace of a link adds
/// one.
#[test]
fn the_quota_in_files_counts_regular_files_and_uploads_that_add_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::write(tmp.path().join("a"), b"a").expect("write");
    fs::write(tmp.path().join(".hidden"), b"h").expect("write");
    fs::create_dir(tmp.path().join("sub")).expect("mkdir");
    fs::write(tmp.path().join("sub").join("x"), b"x").expect("write");
    symlink(tmp.path().join("a"), tmp.path().join("link")).expect("symlink");
    let quota = ferry_store::Quota {
        bytes: None,
        files: Some(5),
    };
    let root = Root::open(tmp.path())
        .expect("open")
        .with_quotas(quota)
        .expect("scan");
    assert_eq!(root.quota(), quota);
    assert_eq!(
        root.usage().map(|u| u.files),
        Some(4),
        "three files and sub"
    );
    let up = root
        .begin_upload(&name("b"), 1, PutMode::New)
        .expect("5 of 5");
    for (n, mode) in [("c", PutMode::New), ("link", PutMode::Replace)] {
        match root.begin_upload(&name(n), 1, mode) {
            Err(e @ StoreError::NoSpace) => assert_eq!(e.code().get(), 432),
            other => panic!("{n}: expected NoSpace, got {other:?}"),
        }
    }
    let mut replace = root
        .begin_upload(&name("a"), 1, PutMode::Replace)
        .expect("a replace of a file adds none");
    replace.write_all(b"A").expect("write");
    replace.commit().expect("commit");
    drop(up);
    assert_eq!(
        root.usage().map(|u| (u.files, u.reserved_files)),
        Some((4, 0))
    );
    assert!(root.begin_upload(&name("c"), 1, PutMode::New).is_ok());
}

/// PUT-23 and `replace`: the commit frees the replaced file's size, and a replace is credited
/// it at the check, so a folder at its quota can still replace a file with a smaller one.
#[test]
fn a_replace_frees_the_size_of_the_file_it_replaces() {
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::write(tmp.path().join("a"), [0u8; 200]).expect("write");
    let root = Root::open(tmp.path())
        .expect("open")
        .with_quota(Some(200))
        .expect("scan");
    assert!(matches!(
        root.begin_upload(&name("b"), 1, PutMode::New),
        Err(StoreError::NoSpace)
    ));
    let mut up = root
        .begin_upload(&name("a"), 120, PutMode::Replace)
        .expect("credited the 200 it replaces");
    up.write_all(&[5; 120]).expect("write");
    up.commit().expect("commit");
    assert_eq!(root.usage().map(|u| (u.used, u.reserved)), Some((120, 0)));
    assert_eq!(fs::metadata(tmp.path().join("a")).expect("a").len(), 120);
    let mut up = root
        .begin_upload(&name("b"), 80, PutMode::New)
        .expect("the 80 freed");
    up.write_all(&[5; 80]).expect("write");
    up.commit().expect("commit");
    assert_eq!(root.usage().map(|u| u.used), Some(200));
    // The commit frees what it really replaced: here nothing, another program having removed
    // `b` meanwhile. That removal itself is not seen until the next start (the count errs on
    // the full side): `b`'s old 80 octets still count.
    let mut up = root
        .begin_upload(&name("b"), 80, PutMode::Replace)
        .expect("credited");
    fs::remove_file(tmp.path().join("b")).expect("rm");
    up.write_all(&[6; 80]).expect("write");
    up.commit().expect("commit");
    assert_eq!(root.usage().map(|u| u.used), Some(280));
}

/// `ServerConfig::quota` and `quota_files` reach the root (`open_root`), whose scan counts
/// the files and the folders; a read-only root ignores them.
#[test]
fn the_server_configuration_sets_the_quota() {
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::write(tmp.path().join("a"), [0u8; 10]).expect("write");
    fs::create_dir(tmp.path().join("d")).expect("mkdir");
    let config = ferry_store::ServerConfig {
        root: tmp.path().to_owned(),
        quota: Some(1 << 20),
        quota_files: Some(7),
        ..ferry_store::ServerConfig::default()
    };
    let root = config.open_root().expect("open");
    assert_eq!(
        root.usage().map(|u| (u.quota, u.used, u.files)),
        Some((
            ferry_store::Quota {
                bytes: Some(1 << 20),
                files: Some(7)
            },
            10 + FOLDER_OCTETS,
            2
        ))
    );
    drop(root);
    let read_only = ferry_store::ServerConfig {
        read_only: true,
        ..config
    };
    assert_eq!(read_only.open_root().expect("open").usage(), None);
}
