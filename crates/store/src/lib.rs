//! # ferry-store: the served folder of a ferry server
//!
//! Everything a ferry/1 server does to its storage goes through [`Root`], so the safety rules
//! of spec/protocol.md section 11 live in one place, shared by the thread-per-connection
//! server (`ferry-sync`) and the async one (which calls it from a blocking pool):
//!
//! - The served folder is opened **once** (`O_DIRECTORY`) and every name is resolved relative
//!   to that handle with the `*at` system calls (SEC-1, SEC-5). A [`FileName`] never contains a
//!   separator and never starts with `.`, so no request can name `..`, a path, or the staging
//!   area.
//! - Symbolic links inside the folder are **never followed** (SEC-3, SEC-4): they are not
//!   listed, reading one is [`StoreError::NotFound`] (`O_NOFOLLOW`, then `fstat` of what was
//!   opened), `new` refuses a name a link occupies, and `replace` replaces the link itself.
//! - A regular file with more than one hard link is **not served** unless the operator allows
//!   it (SEC-13, [`Root::with_hard_links`]): it is not listed, and reading it is
//!   [`StoreError::NotFound`] (checked on the `fstat` of what was opened). Its other link may
//!   be outside the folder (`ln /etc/shadow served/x`): the folder's boundary is one of inodes,
//!   not of names. `new` refuses its name (taken), `replace` replaces the name only.
//! - Uploads are written to an exclusively created staging file in `.ferry-staging/` on the same
//!   file system (SEC-6, SEC-7), fsynced, then renamed into place; `new` renames with
//!   `RENAME_NOREPLACE` (or `link` + `unlink`) so a file that appeared meanwhile is never
//!   replaced (PUT-12, PUT-13), and the folder is fsynced afterwards (PUT-14). An [`Upload`]
//!   that is dropped without [`Upload::commit`] removes its staging file (PUT-16).
//! - Space (PUT-2, PUT-22, PUT-23): an upload that passes the checks reserves its announced
//!   size, shared by every session of the server, until it is committed or dropped; a new
//!   upload fits when the free space minus what the others have not written yet is at least
//!   its size, and, with a quota ([`Root::with_quotas`]: octets, files and folders), when
//!   the folder's files and folders plus every reservation stay within it. Else
//!   [`StoreError::NoSpace`] (`err 432`), before any data. A `mkdir` reserves what a folder
//!   counts ([`FOLDER_OCTETS`] and one entry) the same way ([`Root::tree`]).
//! - [`Root::open`] takes an exclusive `flock` on the staging area (SEC-9) and removes leftover
//!   staging files of an earlier run (SEC-8).
//! - [`Root::open_read_only`], for a read-only server, only opens the folder: it creates,
//!   locks, changes and removes nothing in it (SEC-10), so it serves a read-only mount or a
//!   folder the server may not write; such a root refuses every upload.
//!
//! - [`Root::open_read`] looks the opened file's digest up in the folder's digest cache
//!   ([`digests`]: in memory, keyed to the file's identity), and [`Root::remember_digest`]
//!   fills it after a get hashed the whole file, so a resumed get does not hash it again.
//!
//! - [`Root::tree`] performs the `tree` extension's operations (spec section 17): `list`
//!   (recursive, with digests), `mkdir`, `rmdir`, `delete`, `rename`, every path resolved
//!   beneath the root without following a link at any level (TREE-4), each change one system
//!   call, never replacing, and fsynced (TREE-12).
//!
//! - [`audit`]: the audit log file of `ferry serve --audit-log` (#16), one JSON line per
//!   operation of every session, written by one thread so that no session waits for it.
//!
//! The crate is Linux-first (it uses `renameat2`), with a `link`/`unlink` fallback where the
//! file system does not support `RENAME_NOREPLACE`.

pub mod audit;
mod config;
pub mod digests;
pub mod homes;
mod resolve;
mod slots;
mod space;
mod tree;
pub use config::{
    ACCEPT_PAUSE, DEFAULT_MAX_PER_ADDRESS, MAX_TIMEOUT, SHUTDOWN_CHUNK_PATIENCE, ServerAuth,
    ServerConfig,
};
pub use slots::{AddressSlot, AddressSlots};
pub use space::{FOLDER_OCTETS, Quota, Usage};

use std::fs::File;
use std::hash::{BuildHasher, Hasher as _, RandomState};
use std::io::{self, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use digests::{DigestCache, Identity};

use ferry_proto::server::EagerUpload;
use ferry_wire::{Code, Digest, Entry, FileName, PutMode, Timestamp, TreePath};
use rustix::fs::{
    AtFlags, Dir, FileType, FlockOperation, Mode, OFlags, RenameFlags, Stat, fchmod, flock, fstat,
    fstatvfs, fsync, linkat, mkdirat, openat, renameat, renameat_with, statat, unlinkat,
};
use rustix::io::Errno;

/// Name of the staging area inside the served folder. NAME-4 (no leading `.`) makes it
/// unnameable by any request (SEC-6).
pub const STAGING_DIR: &str = ".ferry-staging";

/// Prefix of every staging file name.
const STAGING_PREFIX: &str = "upload-";

/// Why a storage operation failed, as the protocol sees it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No regular file of that name (also: a symbolic link, a folder, a special file).
    #[error("no regular file of that name")]
    NotFound,
    /// The name is taken (`new`), or is not a replaceable file (`replace` of a folder).
    #[error("the name exists")]
    Exists,
    /// Not enough free space for the upload (or a quota is exhausted).
    #[error("not enough free space")]
    NoSpace,
    /// The file system is mounted read-only (EROFS).
    #[error("the file system is read-only")]
    ReadOnly,
    /// The server may not access the file or the staging area (EACCES, EPERM): permanent,
    /// `err 516 denied`, not 431, which tells a client that retrying may help.
    #[error("permission denied")]
    Denied,
    /// `rmdir` of a folder that has entries, whatever they are (TREE-9): `err 517`.
    #[error("the folder is not empty")]
    NotEmpty,
    /// A folder where a file is meant, or a file where a folder is meant (`delete` of a
    /// folder, `rmdir` or `list` of a file; TREE-6, TREE-9, TREE-10): `err 518`.
    #[error("a folder where a file is meant, or a file where a folder is meant")]
    WrongKind,
    /// A listing's entries exceed the memory it was granted (`TreeOp::List`'s budget,
    /// DIR-11): `err 431 storage`, like [`StoreError::Io`], but expected, so not logged as a
    /// fault.
    #[error("the listing exceeds the memory granted to it")]
    ListingTooLarge,
    /// Any other I/O error.
    #[error("storage error: {0}")]
    Io(io::Error),
}

impl StoreError {
    /// The code that reports this error: ferry/1's 511, 512, 432, 514, 516 or 431, or the
    /// `tree` extension's 517 and 518 (section 17).
    pub fn code(&self) -> Code {
        match self {
            StoreError::NotEmpty => ferry_wire::tree::NOT_EMPTY,
            StoreError::WrongKind => ferry_wire::tree::WRONG_KIND,
            StoreError::ListingTooLarge => Code::STORAGE,
            StoreError::NotFound => Code::NOT_FOUND,
            StoreError::Exists => Code::EXISTS,
            StoreError::NoSpace => Code::NO_SPACE,
            StoreError::ReadOnly => Code::READ_ONLY,
            StoreError::Denied => Code::DENIED,
            StoreError::Io(_) => Code::STORAGE,
        }
    }

    /// [`StoreError::code`], logging the unexpected kind ([`StoreError::Io`]) as a warning
    /// about `what` failed: what a server answers and logs for a failed storage operation.
    pub fn report(&self, what: &'static str) -> Code {
        match self {
            StoreError::Io(e) => tracing::warn!(error = %e, "{what} failed"),
            StoreError::ListingTooLarge => {
                tracing::info!("{what}: the listing exceeds the memory granted to it");
            }
            _ => {}
        }
        self.code()
    }

    /// An [`io::Error`] of a storage operation as [`Code::STORAGE`] (431), logged as a
    /// warning about `what` failed.
    pub fn report_io(e: &io::Error, what: &'static str) -> Code {
        tracing::warn!(error = %e, "{what} failed");
        Code::STORAGE
    }

    /// Classifies an I/O error: ENOSPC and EDQUOT are [`StoreError::NoSpace`], EROFS is
    /// [`StoreError::ReadOnly`], everything else [`StoreError::Io`].
    pub fn from_io(e: io::Error) -> Self {
        match e.raw_os_error().map(Errno::from_raw_os_error) {
            Some(Errno::NOSPC | Errno::DQUOT) => StoreError::NoSpace,
            Some(Errno::ROFS) => StoreError::ReadOnly,
            Some(Errno::ACCESS | Errno::PERM) => StoreError::Denied,
            _ => StoreError::Io(e),
        }
    }

    fn from_errno(e: Errno) -> Self {
        Self::from_io(e.into())
    }
}

/// The served folder: a directory handle, the staging area's handle (locked; none for a
/// read-only root) and the folder's path (for messages only: no operation uses it after
/// [`Root::open`]).
///
/// Cloning is cheap (the handles are shared), so a server can hand a `Root` to every session
/// or blocking task; an [`Upload`] keeps its own clone.
#[derive(Debug, Clone)]
pub struct Root {
    inner: Arc<Inner>,
    /// Whether files with more than one hard link are served (SEC-13); off unless the
    /// operator allows it ([`Root::with_hard_links`]).
    hard_links: bool,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    dir: OwnedFd,
    /// The staging area, locked; `None`: a read-only root ([`Root::open_read_only`]).
    staging: Option<OwnedFd>,
    random: RandomState,
    counter: AtomicU64,
    /// What the uploads in progress were promised, and the quota (PUT-22, PUT-23).
    space: Arc<space::Space>,
    /// Digests of files hashed whole, for all sessions of this folder (#14 item 3).
    digests: DigestCache,
}

impl Root {
    /// Opens the served folder at `path`, creating it (and its parents) when missing, creates
    /// and locks the staging area `.ferry-staging/` inside it, and removes leftover staging
    /// files of an earlier run (crash debris).
    ///
    /// Fails with [`io::ErrorKind::ResourceBusy`] when another `Root` (in this or another
    /// process) holds the folder: two servers on one folder would delete each other's staging
    /// files (SEC-9).
    ///
    /// A read-only server uses [`Root::open_read_only`] instead.
    pub fn open(path: &Path) -> io::Result<Root> {
        std::fs::create_dir_all(path)?;
        let dir = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| with_context(e.into(), "cannot open the served folder", path))?;
        match mkdirat(&dir, STAGING_DIR, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => {
                return Err(with_context(
                    e.into(),
                    "cannot create the staging area",
                    path,
                ));
            }
        }
        // NOFOLLOW: a symlink planted at `.ferry-staging` must not redirect uploads.
        let staging = openat(
            &dir,
            STAGING_DIR,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| with_context(e.into(), "cannot open the staging area", path))?;
        lock(&staging, path)?;
        // Staging files must be reachable by nobody else (SEC-7); the files themselves are
        // created with the umask's permissions so that committed files get them too.
        if let Err(e) = fchmod(&staging, Mode::from_raw_mode(0o700)) {
            tracing::warn!(error = %e, "cannot restrict the permissions of the staging area");
        }
        let removed = remove_debris(&staging)?;
        if removed > 0 {
            tracing::info!(removed, folder = %path.display(), "removed leftover staging files");
        }
        Ok(Root::new(path, dir, Some(staging)))
    }

    /// Opens the served folder at `path` for a read-only server (SEC-10): the folder must
    /// exist, and nothing in it is created, locked, changed or removed — no staging area is
    /// made, an existing one and whatever is in it is left alone (it is never listed: no
    /// valid name starts with `.`). So it can serve a read-only mount or a folder the server
    /// may not write, and any number of read-only roots (and one read-write root) may serve
    /// one folder. Listing and reading work as with [`Root::open`];
    /// [`Root::begin_upload`] fails with [`StoreError::ReadOnly`].
    pub fn open_read_only(path: &Path) -> io::Result<Root> {
        let dir = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| with_context(e.into(), "cannot open the served folder", path))?;
        Ok(Root::new(path, dir, None))
    }

    fn new(path: &Path, dir: OwnedFd, staging: Option<OwnedFd>) -> Root {
        Root {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                dir,
                staging,
                random: RandomState::new(),
                counter: AtomicU64::new(0),
                space: Arc::default(),
                digests: DigestCache::default(),
            }),
            hard_links: false,
        }
    }

    /// This root with the hard-link policy of SEC-13 set: `allow = false` (what
    /// [`Root::open`] and [`Root::open_read_only`] give) leaves a regular file whose link
    /// count is greater than 1 out of [`Root::list`] and makes [`Root::open_read`] answer
    /// [`StoreError::NotFound`] for it; `allow = true` serves such files like any other.
    ///
    /// Why refuse: another link of the same file may be outside the served folder (an
    /// operator's or a local user's `ln /etc/shadow served/x`, or one planted by a local
    /// attacker), and what a get reads is the inode, whatever name led to it. A server cannot
    /// tell where the other links are, so it refuses them all, those inside the folder too.
    /// Operators who fill the folder with hard links on purpose (to share one copy between
    /// folders) allow them (`ferry serve --allow-hard-links`).
    ///
    /// The policy belongs to this handle and its clones (the folder's handles are shared).
    pub fn with_hard_links(mut self, allow: bool) -> Root {
        self.hard_links = allow;
        self
    }

    /// Whether this root serves files with more than one hard link ([`Root::with_hard_links`]).
    pub fn allows_hard_links(&self) -> bool {
        self.hard_links
    }

    /// This root with a quota of `quota` octets for the folder (PUT-23; `None`: no quota):
    /// an upload is refused with [`StoreError::NoSpace`] when the folder's files plus the
    /// SIZE of every upload in progress plus its own SIZE would exceed it (a `replace` is
    /// credited the size of the file it replaces).
    ///
    /// What the folder's files hold is taken now, by a scan of the folder's whole tree (the
    /// `tree` extension, TREE-12): the sizes of the regular files in it and in its subfolders
    /// at every depth a path can name, one count per name (a file with several hard links
    /// in the tree counts for each; dotfiles, hidden folders and other names no request can
    /// reach count too), and [`FOLDER_OCTETS`] for each folder beneath it; not symbolic
    /// links (never followed) or special files. Staging files count by their uploads'
    /// reservations (leftovers were removed by [`Root::open`]). Commits, deletes, `mkdir`s
    /// and `rmdir`s ([`Root::tree`]) keep the figure up to date; changes other
    /// programs make to the folder are seen at the next start. A scan per upload would make each request line cost a
    /// `stat` of every file in the folder.
    ///
    /// The quota belongs to the folder's shared state: every clone of this root sees it.
    /// A read-only root takes no uploads, so it ignores the quota (and scans nothing).
    /// No quota in files and folders ([`Root::with_quotas`] sets both).
    pub fn with_quota(self, quota: Option<u64>) -> io::Result<Root> {
        self.with_quotas(Quota {
            bytes: quota,
            files: None,
        })
    }

    /// This root with quotas in octets and in files and folders (PUT-23), replacing any it
    /// had: as [`Root::with_quota`] for the octets; with a quota in files and folders, an
    /// upload that would add a regular file (a `new` put, a `replace` of a name that holds
    /// none) or a `mkdir` is refused with [`StoreError::NoSpace`] when the folder's regular
    /// files and folders (counted as the octets are, one per name) plus the uploads and
    /// `mkdir`s in progress that add one reach it. A `replace` of a file always fits the
    /// quota in files and folders.
    pub fn with_quotas(self, quota: Quota) -> io::Result<Root> {
        let quota = if self.is_read_only() {
            Quota::default()
        } else {
            quota
        };
        let held = if quota.is_some() {
            space::scan(&self.inner.dir)?
        } else {
            space::Held::default()
        };
        self.inner.space.set_quota(quota, held);
        Ok(self)
    }

    /// The quotas in force ([`Root::with_quotas`]; none by default).
    pub fn quota(&self) -> Quota {
        self.inner.space.quota()
    }

    /// The folder's quota, what its files hold and what the uploads in progress were
    /// promised ([`Root::with_quota`]); `None` without a quota.
    pub fn usage(&self) -> Option<Usage> {
        self.inner.space.usage()
    }

    /// Octets the uploads in progress were promised and have not written yet: what PUT-2's
    /// free-space check takes off the file system's free space.
    pub fn unwritten(&self) -> u64 {
        self.inner.space.unwritten()
    }

    /// SEC-13: whether a regular file with this status is kept from clients. A link count of
    /// 0 (a file removed after it was opened) is not a second link: what was opened was in
    /// the folder.
    fn refuses_links(&self, st: &Stat) -> bool {
        !self.hard_links && st.st_nlink > 1
    }

    /// The path the folder was opened at (for messages).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether this root was opened with [`Root::open_read_only`] (it accepts no upload).
    pub fn is_read_only(&self) -> bool {
        self.inner.staging.is_none()
    }

    /// The listing of DIR-2 .. DIR-6: the regular files directly inside the folder whose names
    /// are valid ferry names (so never the staging area, dotfiles or non-NFC names), sorted
    /// bytewise by name. Symbolic links, folders and special files are left out, and so are
    /// regular files with more than one hard link unless this root allows them (SEC-13,
    /// [`Root::with_hard_links`]; the link count is that of the listing's own `statat`). A
    /// file that disappears while the listing is taken is left out; any other error fails the
    /// whole listing (DIR-7).
    pub fn list(&self) -> io::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for entry in Dir::read_from(&self.inner.dir)? {
            let entry = entry?;
            let Ok(name) = FileName::from_bytes(entry.file_name().to_bytes()) else {
                continue;
            };
            if !matches!(entry.file_type(), FileType::RegularFile | FileType::Unknown) {
                continue;
            }
            let st = match statat(&self.inner.dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
                || self.refuses_links(&st)
            {
                continue;
            }
            entries.push(Entry {
                size: stat_size(&st),
                mtime: stat_mtime(&st),
                name,
            });
        }
        entries.sort_unstable_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Ok(entries)
    }

    /// Opens a regular file for a get (SEC-4): `openat(root, name, O_RDONLY | O_NOFOLLOW |
    /// O_NONBLOCK | O_CLOEXEC)`, then `fstat` of the opened file. A symbolic link (ELOOP), a
    /// folder, a FIFO, a socket or a device is [`StoreError::NotFound`], and so is a regular
    /// file with more than one hard link unless this root allows them (SEC-13): the link
    /// count is that of the `fstat` of the opened file, so a link made between the look and
    /// the open cannot slip through. SIZE and MTIME are taken from the opened file (GET-2).
    ///
    /// A path of the `tree` extension (TREE-5) is opened in its folder, itself opened beneath
    /// the root without following a link at any level (TREE-4); a missing folder is
    /// [`StoreError::NotFound`].
    pub fn open_read(&self, path: &TreePath) -> Result<ReadFile, StoreError> {
        let (dir, name) = resolve::parent(&self.inner.dir, path).map_err(not_found_or)?;
        // A cheap look first, so that special files (FIFOs, devices) are not even opened; the
        // fstat after the open is what makes the check race-free.
        match statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st)
                if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
                    && !self.refuses_links(&st) => {}
            Ok(_) => return Err(StoreError::NotFound),
            Err(e) => return Err(not_found_or(e)),
        }
        let fd = openat(
            &dir,
            name.as_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(not_found_or)?;
        let st = fstat(&fd).map_err(StoreError::from_errno)?;
        // A get that races the `link` + `unlink` fallback of a `new` commit
        // ([`link_noreplace`]) sees the new file with 2 links and answers 511: the name had no
        // file a moment earlier (`new` never replaces), so that is the answer of a get sent
        // just before the commit, and the next get finds the file with 1 link.
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile || self.refuses_links(&st) {
            return Err(StoreError::NotFound);
        }
        let identity = Identity::of(&st);
        Ok(ReadFile {
            file: File::from(fd),
            size: stat_size(&st),
            mtime: stat_mtime(&st),
            digest: self.inner.digests.get(&identity),
            snapshot: Snapshot::of(&st),
            identity,
            opened: SystemTime::now(),
            same: AtomicBool::new(false),
        })
    }

    /// Remembers `digest`, computed by a get over the whole of `file`, in the folder's digest
    /// cache ([`digests`]), when the last [`ReadFile::unchanged`] found the file's identity
    /// (device, inode, size, mtime, ctime) as it was at the open and its last change was
    /// long enough before the open ([`digests::Identity::settled`]). No system call.
    pub fn remember_digest(&self, file: &ReadFile, digest: Digest) {
        if file.same.load(Ordering::Relaxed) && file.identity.settled(file.opened) {
            self.inner.digests.insert(file.identity, digest);
        }
    }

    /// Starts an upload after the storage checks of PUT-2, in order:
    ///
    /// - `new`: anything at the name (file, folder, symbolic link — dangling or not, special
    ///   file) is [`StoreError::Exists`];
    /// - `replace`: the name must be unused, a regular file or a symbolic link (the link itself
    ///   is replaced); a folder or special file is [`StoreError::Exists`]. A regular file with
    ///   more than one hard link, which this root may refuse to list and serve (SEC-13), is
    ///   replaceable all the same: `new` finds its name taken, and `replace` renames the
    ///   upload over the name, so the name gets the new file while the other links keep the
    ///   old inode and its content untouched — nothing outside the folder is read or written;
    /// - the free space available (`fstatvfs`, `f_bavail`), less what the other uploads in
    ///   progress were promised and have not written yet, must be at least `size`; and with a
    ///   quota ([`Root::with_quota`]) the folder's files plus every upload in progress plus
    ///   `size` must stay within it (a `replace` is credited the size of the regular file it
    ///   replaces). Else [`StoreError::NoSpace`].
    ///
    /// The upload then holds a reservation of `size` (PUT-22), shared by every clone of this
    /// root, until it is committed or dropped; its writes count down what it is still owed
    /// (the file system's free space shows what it wrote). Then a staging file is created
    /// exclusively under a unique, unpredictable name. Nothing is visible under `name` until
    /// [`Upload::commit`].
    ///
    /// The reservation is a count, not an allocation (`fallocate`): nothing is written in
    /// advance. A client that announces a large SIZE and sends nothing holds its reservation
    /// for as long as the server's timeouts let it keep the upload.
    ///
    /// A read-only root ([`Root::open_read_only`]) refuses every upload with
    /// [`StoreError::ReadOnly`] before any check, touching nothing.
    ///
    /// A path of the `tree` extension (TREE-5) is stored in its folder, opened beneath the root
    /// without following a link at any level (TREE-4) and kept open until the commit; a
    /// missing folder is [`StoreError::NotFound`]. The staging file is in the root's staging
    /// area all the same (SEC-6), on the same file system, so the commit's rename is atomic.
    pub fn begin_upload(
        &self,
        path: &TreePath,
        size: u64,
        mode: PutMode,
    ) -> Result<Upload, StoreError> {
        let staging = self.inner.staging.as_ref().ok_or(StoreError::ReadOnly)?;
        let (dir, name) = resolve::parent(&self.inner.dir, path).map_err(not_found_or)?;
        // The size of the file a `replace` frees when it commits (credited by the quota), and
        // whether the upload adds a file (the quota in files and folders).
        let (credit, adds_file) = match statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let kind = FileType::from_raw_mode(st.st_mode);
                let replaceable = matches!(kind, FileType::RegularFile | FileType::Symlink);
                if mode == PutMode::New || !replaceable {
                    return Err(StoreError::Exists);
                }
                (regular_size(&st), kind != FileType::RegularFile)
            }
            Err(Errno::NOENT) => (0, true),
            Err(e) => return Err(StoreError::from_errno(e)),
        };
        let space = self.inner.space.reserve(size, credit, adds_file, || {
            let vfs = fstatvfs(staging).map_err(StoreError::from_errno)?;
            Ok(vfs.f_bavail.saturating_mul(vfs.f_frsize))
        })?;
        let (staging_name, fd) = self.create_staging_file(staging)?;
        Ok(Upload {
            root: self.clone(),
            file: File::from(fd),
            staging_name,
            folder: dir.into_owned(),
            path: path.clone(),
            name,
            mode,
            size,
            written: 0,
            committed: false,
            space,
        })
    }

    /// Stores eager puts whose payloads have arrived whole (ferry-proto's
    /// `Action::StoreUploads`), one after the other in their order: each is begun
    /// ([`Root::begin_upload`]), then written and committed ([`Upload::commit`]) when its
    /// `commit` is set, or else dropped (a corrupt or aborted payload, whose reply needs the
    /// checks of the begin first). Returns each one's first failure as the code to answer,
    /// logged as [`StoreError::report`] does.
    pub fn store_uploads(&self, uploads: &[EagerUpload]) -> Vec<Result<(), Code>> {
        uploads.iter().map(|u| self.store_upload(u)).collect()
    }

    fn store_upload(&self, u: &EagerUpload) -> Result<(), Code> {
        let mut upload = self
            .begin_upload(&u.name, u.size, u.mode)
            .map_err(|e| e.report("starting an upload"))?;
        if !u.commit {
            return Ok(());
        }
        upload
            .write_all(&u.data)
            .map_err(|e| e.report("write to a staging file"))?;
        upload.commit().map_err(|e| e.report("commit"))
    }

    fn create_staging_file(&self, staging: &OwnedFd) -> Result<(String, OwnedFd), StoreError> {
        let mut last = Errno::EXIST;
        for _ in 0..16 {
            let mut h = self.inner.random.build_hasher();
            h.write_u64(self.inner.counter.fetch_add(1, Ordering::Relaxed));
            h.write_u32(std::process::id());
            if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
                h.write_u128(t.as_nanos());
            }
            let name = format!("{STAGING_PREFIX}{:016x}", h.finish());
            match openat(
                staging,
                name.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                // No execute permission (SEC-12); the umask applies, and the staging area
                // itself is 0700, so nobody else can reach the file before the commit.
                Mode::from_raw_mode(0o666),
            ) {
                Ok(fd) => return Ok((name, fd)),
                Err(Errno::EXIST) => last = Errno::EXIST,
                Err(e) => return Err(StoreError::from_errno(e)),
            }
        }
        Err(StoreError::from_errno(last))
    }
}

/// Removes every entry of the staging area (SEC-8). Returns how many it removed.
fn remove_debris(staging: &OwnedFd) -> io::Result<usize> {
    let mut removed = 0;
    for entry in Dir::read_from(staging)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let flags = if entry.file_type() == FileType::Directory {
            AtFlags::REMOVEDIR
        } else {
            AtFlags::empty()
        };
        match unlinkat(staging, name, flags) {
            Ok(()) => removed += 1,
            Err(Errno::NOENT) => {}
            Err(e) => {
                tracing::warn!(name = ?name, error = %e, "cannot remove a leftover staging entry");
            }
        }
    }
    Ok(removed)
}

/// Takes the exclusive lock of SEC-9. A lock held only for a moment (a child process that
/// inherited the descriptor between `fork` and `exec`) is waited for, up to half a second.
fn lock(staging: &OwnedFd, path: &Path) -> io::Result<()> {
    for attempt in 0.. {
        match flock(staging, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(()),
            Err(Errno::WOULDBLOCK) if attempt < 10 => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(Errno::WOULDBLOCK) => break,
            Err(e) => return Err(with_context(e.into(), "cannot lock the staging area", path)),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::ResourceBusy,
        format!(
            "{}: another ferry server is serving this folder",
            path.display()
        ),
    ))
}

fn with_context(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {what}: {e}", path.display()))
}

/// ENOENT, ELOOP (a symbolic link under O_NOFOLLOW or RESOLVE_NO_SYMLINKS), ENXIO (a
/// socket), ENODEV, ENOTDIR, EISDIR and EXDEV (RESOLVE_BENEATH) mean "no regular file (or
/// folder) of that name"; anything else is a storage error.
fn not_found_or(e: Errno) -> StoreError {
    match e {
        Errno::NOENT
        | Errno::LOOP
        | Errno::NXIO
        | Errno::NODEV
        | Errno::NOTDIR
        | Errno::ISDIR
        | Errno::XDEV => StoreError::NotFound,
        e => StoreError::from_errno(e),
    }
}

fn stat_size(st: &Stat) -> u64 {
    u64::try_from(st.st_size).unwrap_or(0)
}

/// The size of a regular file, 0 for anything else (what the quota counts, [`Root::with_quota`]).
fn regular_size(st: &Stat) -> u64 {
    if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile {
        stat_size(st)
    } else {
        0
    }
}

/// MTIME as DIR-5 wants it: whole seconds (st_mtime is already the floor, st_mtime_nsec being
/// non-negative), a time before the epoch sent as the epoch, one after 9999 as 9999-12-31.
fn stat_mtime(st: &Stat) -> Timestamp {
    #[allow(clippy::useless_conversion)] // c_long is i32 on some targets
    let secs = i64::from(st.st_mtime);
    Timestamp::from_unix_clamped(secs.max(0))
}

/// What [`ReadFile::unchanged`] compares: size and modification time at full precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    size: u64,
    mtime_sec: i64,
    mtime_nsec: u64,
}

impl Snapshot {
    #[allow(clippy::useless_conversion)] // field types differ between targets
    fn of(st: &Stat) -> Self {
        Self {
            size: stat_size(st),
            mtime_sec: i64::from(st.st_mtime),
            mtime_nsec: u64::from(st.st_mtime_nsec),
        }
    }
}

/// A regular file opened for a get, with the SIZE and MTIME of `ok get` taken from the opened
/// file (GET-2).
#[derive(Debug)]
pub struct ReadFile {
    /// The open file (read it sequentially from its start).
    pub file: File,
    /// Its length when it was opened.
    pub size: u64,
    /// Its modification time when it was opened, whole seconds (DIR-5).
    pub mtime: Timestamp,
    /// Its digest, when the folder's digest cache knew it for the identity the opened file
    /// has (a get may then skip hashing, and a resumed one read only from its offset).
    pub digest: Option<Digest>,
    snapshot: Snapshot,
    identity: Identity,
    /// When it was opened (a digest is remembered only for a file changed well before).
    opened: SystemTime,
    /// The last [`ReadFile::unchanged`] found the whole identity as at the open.
    same: AtomicBool,
}

impl ReadFile {
    /// Reads at `at` until `buf` is full or the file ends; returns how much it read (fewer
    /// than `buf.len()` only where the file ends).
    pub fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<usize> {
        use std::os::unix::fs::FileExt as _;
        let mut n = 0;
        while n < buf.len() {
            match self.file.read_at(&mut buf[n..], at + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Whether the file still has the size and modification time (at the storage's full
    /// precision) it had when it was opened: the check of GET-9 after the last octet was read.
    ///
    /// It also notes whether the whole identity (inode, ctime too) is unchanged, which
    /// [`Root::remember_digest`] requires.
    pub fn unchanged(&self) -> io::Result<bool> {
        let st = fstat(&self.file)?;
        self.same
            .store(Identity::of(&st) == self.identity, Ordering::Relaxed);
        Ok(Snapshot::of(&st) == self.snapshot)
    }
}

/// An upload in progress: a staging file in `.ferry-staging/`. Write the payload's octets with
/// [`Upload::write_all`], then [`Upload::commit`] after the digest was verified. Dropping an
/// upload that was not committed removes its staging file. Its space reservation (PUT-22) is
/// given back either way.
#[derive(Debug)]
pub struct Upload {
    root: Root,
    file: File,
    staging_name: String,
    /// The folder the file goes into; `None`: the root.
    folder: Option<OwnedFd>,
    /// Where the file goes.
    path: TreePath,
    /// Its name in `folder`.
    name: FileName,
    mode: PutMode,
    size: u64,
    written: u64,
    committed: bool,
    /// The space promised to this upload, given back on commit or drop.
    space: space::Reservation,
}

impl Upload {
    /// The path the file will have.
    pub fn path(&self) -> &TreePath {
        &self.path
    }

    /// The announced size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Octets written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends the next octets of the file. Writing more than the announced size is refused
    /// (a caller's bug, reported as [`StoreError::Io`]).
    pub fn write_all(&mut self, data: &[u8]) -> Result<(), StoreError> {
        let len = data.len() as u64;
        if self.written.saturating_add(len) > self.size {
            return Err(StoreError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "more octets than the announced size",
            )));
        }
        self.file.write_all(data).map_err(StoreError::from_io)?;
        self.written += len;
        self.space.wrote(len);
        Ok(())
    }

    /// Makes the upload visible under its name (PUT-12 .. PUT-14): fsyncs the staging file,
    /// renames it into place — for `new` with `RENAME_NOREPLACE` (falling back to `link` +
    /// `unlink` where the file system lacks it), so that anything that appeared under the name
    /// since [`Root::begin_upload`] is never replaced ([`StoreError::Exists`]); for `replace`
    /// with a plain rename, which replaces a symbolic link itself, never its target — and
    /// then fsyncs the folder. On any error the staging file is removed and nothing changed.
    /// The upload's space reservation becomes part of the folder's usage, less the size of
    /// the regular file a `replace` replaced (the rename and this count happen together, so
    /// two commits of one name count right).
    pub fn commit(mut self) -> Result<(), StoreError> {
        if self.written != self.size {
            return Err(StoreError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} of {} octets written", self.written, self.size),
            )));
        }
        self.file.sync_all().map_err(StoreError::from_io)?;
        let inner = &self.root.inner;
        // An upload exists only on a root with a staging area (`begin_upload`).
        let staging = inner.staging.as_ref().ok_or(StoreError::ReadOnly)?;
        let (staging_name, name) = (self.staging_name.as_str(), self.name.as_str());
        let dir = self.folder.as_ref().unwrap_or(&inner.dir);
        let renamed = self.space.commit(|| match self.mode {
            PutMode::New => rename_noreplace(staging, staging_name, dir, name).map(|()| None),
            PutMode::Replace => {
                // The regular file the rename replaces, if any: its size is freed, and the
                // folder holds no more files than before.
                let replaced = statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                    .ok()
                    .filter(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
                    .map(|st| stat_size(&st));
                renameat(staging, staging_name, dir, name).map(|()| replaced)
            }
        });
        match renamed {
            Ok(()) => self.committed = true,
            // EEXIST: `new` lost a race. EISDIR/ENOTEMPTY: a folder appeared under the name of
            // a `replace`; it is not a replaceable file (PUT-2).
            Err(Errno::EXIST | Errno::ISDIR | Errno::NOTEMPTY) => return Err(StoreError::Exists),
            // The upload's folder was removed since the begin (TREE-5).
            Err(Errno::NOENT) if self.folder.is_some() => return Err(StoreError::NotFound),
            Err(e) => return Err(StoreError::from_errno(e)),
        }
        // The file is visible now; a failed folder fsync cannot be undone, only reported.
        if let Err(e) = fsync(dir) {
            let name = self.path.as_str();
            tracing::warn!(name = ?name, error = %e, "fsync of the served folder failed");
        }
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        let Some(staging) = self.root.inner.staging.as_ref() else {
            return;
        };
        if self.committed {
            return;
        }
        match unlinkat(staging, self.staging_name.as_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => {
                tracing::warn!(staging = %self.staging_name, error = %e, "cannot remove a staging file");
            }
        }
    }
}

/// Renames `old` to `new` unless `new` exists: `renameat2(RENAME_NOREPLACE)`, or `linkat` +
/// `unlinkat` on file systems without it (both refuse with EEXIST).
fn rename_noreplace(
    old_dir: impl AsFd,
    old: &str,
    new_dir: impl AsFd,
    new: &str,
) -> Result<(), Errno> {
    match renameat_with(&old_dir, old, &new_dir, new, RenameFlags::NOREPLACE) {
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            link_noreplace(old_dir, old, new_dir, new)
        }
        other => other,
    }
}

/// The fallback of [`rename_noreplace`]: `link` never replaces, then the staging name goes.
///
/// Between the two calls the new file has 2 links, so a root that refuses hard links (SEC-13)
/// does not list or serve it for that moment: it looks as it did before the commit (no file
/// of that name), never as something else. Should the `unlink` fail, the file keeps its
/// staging name, and so stays unserved, until the next start removes the staging files
/// (SEC-8); the warning says so.
fn link_noreplace(
    old_dir: impl AsFd,
    old: &str,
    new_dir: impl AsFd,
    new: &str,
) -> Result<(), Errno> {
    linkat(&old_dir, old, &new_dir, new, AtFlags::empty())?;
    if let Err(e) = unlinkat(&old_dir, old, AtFlags::empty()) {
        tracing::warn!(
            staging = old,
            error = %e,
            "cannot remove the staging name after link (the file has 2 links, so it is not \
             served unless hard links are allowed, until the next start removes the staging name)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> TreePath {
        TreePath::new(s).expect("valid name")
    }

    /// The digest cache end to end: filled only after a check found the opened file's
    /// identity unchanged, found again by the next open of the same file, lost when the
    /// file is rewritten in place or replaced under its name.
    #[test]
    fn a_remembered_digest_is_found_until_the_file_changes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = Root::open(tmp.path()).expect("open");
        let path = tmp.path().join("big");
        let size = digests::MIN_SIZE as usize;
        std::fs::write(&path, vec![1u8; size]).expect("write");
        let d = Digest::of(&vec![1u8; size]);
        // As if opened MIN_AGE after the file was written (no sleep in a unit test).
        let later = |mut f: ReadFile| {
            f.opened += digests::MIN_AGE;
            f
        };
        let f = later(root.open_read(&name("big")).expect("open"));
        assert_eq!(f.digest, None);
        root.remember_digest(&f, d);
        assert_eq!(root.inner.digests.len(), 0, "no check yet: not remembered");
        assert!(f.unchanged().expect("fstat"));
        root.remember_digest(&f, d);
        assert_eq!(root.open_read(&name("big")).expect("open").digest, Some(d));

        // A file changed since it was opened is not remembered.
        let fresh = root.open_read(&name("big")).expect("open");
        assert!(fresh.unchanged().expect("fstat"));
        root.remember_digest(&fresh, d);
        assert_eq!(root.inner.digests.len(), 1);

        // Rewritten in place, same size: another ctime (and mtime).
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, vec![2u8; size]).expect("rewrite");
        assert_eq!(root.open_read(&name("big")).expect("open").digest, None);

        // Remembered again, then replaced under its name by a rename.
        let f = later(root.open_read(&name("big")).expect("open"));
        assert!(f.unchanged().expect("fstat"));
        root.remember_digest(&f, Digest::of(&vec![2u8; size]));
        assert!(root.open_read(&name("big")).expect("open").digest.is_some());
        std::fs::write(tmp.path().join("other"), vec![3u8; size]).expect("write");
        std::fs::rename(tmp.path().join("other"), &path).expect("rename");
        assert_eq!(root.open_read(&name("big")).expect("open").digest, None);
    }

    #[test]
    fn codes() {
        assert_eq!(StoreError::NotFound.code(), Code::NOT_FOUND);
        assert_eq!(StoreError::Exists.code(), Code::EXISTS);
        assert_eq!(StoreError::NoSpace.code(), Code::NO_SPACE);
        assert_eq!(StoreError::ReadOnly.code(), Code::READ_ONLY);
        assert_eq!(StoreError::Io(io::Error::other("x")).code(), Code::STORAGE);
        assert_eq!(StoreError::NotEmpty.code().get(), 517);
        assert_eq!(StoreError::WrongKind.code().get(), 518);
        assert_eq!(StoreError::ListingTooLarge.code(), Code::STORAGE);
        let enospc = io::Error::from_raw_os_error(Errno::NOSPC.raw_os_error());
        assert!(matches!(StoreError::from_io(enospc), StoreError::NoSpace));
        let erofs = io::Error::from_raw_os_error(Errno::ROFS.raw_os_error());
        assert!(matches!(StoreError::from_io(erofs), StoreError::ReadOnly));
        for errno in [Errno::ACCESS, Errno::PERM] {
            let e = io::Error::from_raw_os_error(errno.raw_os_error());
            let e = StoreError::from_io(e);
            assert!(matches!(e, StoreError::Denied), "{e:?}");
            assert_eq!(e.code(), Code::DENIED);
        }
    }

    /// The fallback used where `RENAME_NOREPLACE` is unsupported refuses an existing target
    /// too, and leaves no staging name behind when it succeeds.
    #[test]
    fn link_fallback_never_replaces() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = Root::open(tmp.path()).expect("open");
        let inner = &root.inner;
        let staging = inner.staging.as_ref().expect("a read-write root");
        std::fs::write(tmp.path().join("taken"), b"old").expect("write");
        let mut up = root
            .begin_upload(&name("free"), 3, PutMode::New)
            .expect("begin");
        up.write_all(b"new").expect("write");
        up.file.sync_all().expect("sync");
        let r = link_noreplace(staging, &up.staging_name, &inner.dir, "taken");
        assert_eq!(r, Err(Errno::EXIST));
        assert_eq!(
            std::fs::read(tmp.path().join("taken")).expect("read"),
            b"old"
        );
        link_noreplace(staging, &up.staging_name, &inner.dir, "free").expect("link");
        up.committed = true;
        drop(up);
        assert_eq!(root.open_read(&name("free")).expect("served").size, 3);
        assert_eq!(
            std::fs::read(tmp.path().join("free")).expect("read"),
            b"new"
        );
        let staging: Vec<_> = std::fs::read_dir(tmp.path().join(STAGING_DIR))
            .expect("read_dir")
            .collect();
        assert!(staging.is_empty());
    }

    /// The moment between the `link` and the `unlink` of the fallback (SEC-13): the new file
    /// has 2 links, so a root that refuses hard links answers as before the commit (no such
    /// file), and serves it once the staging name is gone.
    #[test]
    fn link_fallback_midway_looks_like_before_the_commit() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = Root::open(tmp.path()).expect("open");
        let inner = &root.inner;
        let staging = inner.staging.as_ref().expect("a read-write root");
        let mut up = root
            .begin_upload(&name("fresh"), 3, PutMode::New)
            .expect("begin");
        up.write_all(b"new").expect("write");
        up.file.sync_all().expect("sync");
        linkat(
            staging,
            up.staging_name.as_str(),
            &inner.dir,
            "fresh",
            AtFlags::empty(),
        )
        .expect("link");
        assert!(matches!(
            root.open_read(&name("fresh")),
            Err(StoreError::NotFound)
        ));
        assert!(root.list().expect("list").is_empty());
        let allowing = root.clone().with_hard_links(true);
        assert_eq!(allowing.list().expect("list").len(), 1);
        drop(up); // not committed: removes the staging name, as the fallback's `unlink` does
        assert_eq!(root.open_read(&name("fresh")).expect("served").size, 3);
        assert_eq!(root.list().expect("list").len(), 1);
    }
}
