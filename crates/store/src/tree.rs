//! The storage operations of the `tree` extension (spec section 17): `list` with recursion
//! and digests, `mkdir`, `rmdir`, `delete` and `rename`, all beneath the served folder's
//! handle without following a symbolic link at any level (TREE-4, [`crate::resolve`]).
//!
//! - Every changing operation is one system call that happens or not (`mkdirat`, `unlinkat`,
//!   `renameat2(RENAME_NOREPLACE)`), and the folder(s) it changed are fsynced before it
//!   returns (TREE-12). A read-only root refuses them all before touching anything.
//! - What an operation acts on is looked at first (`statat` without following a link): a
//!   symbolic link or a special file is "not found", as a get finds it (SEC-3, SEC-4).
//!   Between that look and the call something else may take the name; the calls themselves
//!   never follow a link (`unlinkat` and `renameat2` act on the name's own entry), so such a
//!   race can only act on an entry inside the folder, never reach outside it.
//! - A listing opens each subfolder relative to its parent (`O_DIRECTORY | O_NOFOLLOW`), keeps
//!   at most one handle per level open, and stops at the path limits (TREE-6) and at its
//!   memory budget (DIR-11, [`StoreError::ListingTooLarge`]).

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::time::SystemTime;

use ferry_proto::tree::{TreeDone, TreeOp, entry_cost};
use ferry_wire::limits::{MAX_DEPTH, MAX_PATH};
use ferry_wire::tree::{EntryKind, Folder, ListEntry, ListOptions};
use ferry_wire::{Digest, FileName, Hasher, TreePath};
use rustix::fs::{
    AtFlags, Dir, FileType, Mode, OFlags, RenameFlags, Stat, fstat, fsync, linkat, mkdirat, openat,
    renameat_with, statat, unlinkat,
};
use rustix::io::Errno;

use crate::digests::Identity;
use crate::{
    FOLDER_OCTETS, Root, Snapshot, StoreError, not_found_or, resolve, stat_mtime, stat_size,
};

/// How much of a file a listing with digests reads at a time.
const PIECE: usize = 1 << 20;

/// The mode of a new folder (TREE-8), less the process's umask.
const FOLDER_MODE: u32 = 0o755;

impl Root {
    /// Performs one storage operation of the `tree` extension (section 17):
    ///
    /// - [`TreeOp::List`] (TREE-6, TREE-7): the regular files with valid names (SEC-13's
    ///   hard-link rule applies, [`Root::with_hard_links`]) and the folders with valid names
    ///   in the folder, and with `recursive` in its subfolders at every depth whose full path
    ///   from the served folder stays within [`MAX_PATH`] octets and [`MAX_DEPTH`] names
    ///   (deeper entries are left out); never links, special files, invalid names or the
    ///   staging area. Paths are relative to the listed folder, sorted by their octets, each
    ///   once. With `digests`, each file is opened without following a link and its digest
    ///   taken from the folder's digest cache or computed (xxh3-128 over the whole file), and
    ///   given only if the file's size and modification time after hashing are those of the
    ///   `fstat` after the open (GET-9's check; `None` otherwise, TREE-7); SIZE and MTIME are
    ///   from that `fstat`, and the digest is remembered under the rules of a get
    ///   ([`Root::remember_digest`]). A file or folder that disappears meanwhile is left out.
    ///   The listed folder missing (or a link): [`StoreError::NotFound`]; a regular file:
    ///   [`StoreError::WrongKind`]; entries costing more than `budget` ([`entry_cost`]):
    ///   [`StoreError::ListingTooLarge`] (431). A subfolder the server may not read fails the
    ///   listing ([`StoreError::Denied`]) rather than show it empty.
    /// - [`TreeOp::Mkdir`] (TREE-8): one folder, mode 0755 less the umask; anything at the
    ///   path (a dangling link too) is [`StoreError::Exists`]. With a quota (PUT-23), the
    ///   folder counts one entry and [`FOLDER_OCTETS`], reserved with the uploads' lock
    ///   before it is made: over the quota, [`StoreError::NoSpace`] and nothing is made.
    /// - [`TreeOp::Rmdir`] (TREE-9): an empty folder; any entry at all in it (hidden, invalid
    ///   names, links) is [`StoreError::NotEmpty`]; a regular file is
    ///   [`StoreError::WrongKind`]; a link or special file is [`StoreError::NotFound`]. With
    ///   a quota, what the folder counted leaves the count.
    /// - [`TreeOp::Delete`] (TREE-10): a regular file's name (its other hard links keep the
    ///   file, like a `replace`); a folder is [`StoreError::WrongKind`]; a link or special
    ///   file is [`StoreError::NotFound`]. With a quota, the file's size and one file leave
    ///   the folder's count.
    /// - [`TreeOp::Rename`] (TREE-11): a regular file or a folder (a link or special file:
    ///   [`StoreError::NotFound`]) to its new path, with `renameat2(RENAME_NOREPLACE)`: never
    ///   replacing ([`StoreError::Exists`]). Where the file system lacks `RENAME_NOREPLACE`,
    ///   a file is moved with `link` + `unlink` (never replacing either; for a moment it has
    ///   two names), a folder is [`StoreError::Denied`], as is a move across file systems
    ///   (EXDEV: a mount inside the folder). The quota's counts change by nothing.
    ///
    /// For every operation, a path whose folders are missing, or where a segment is a link, a
    /// special file or a regular file, is [`StoreError::NotFound`]; and a read-only root
    /// ([`Root::open_read_only`]) answers [`StoreError::ReadOnly`] to every changing
    /// operation before it looks at anything. Whether `to` lies inside `from` is the core's
    /// check (510), made before this.
    pub fn tree(&self, op: &TreeOp) -> Result<TreeDone, StoreError> {
        if !matches!(op, TreeOp::List { .. }) && self.is_read_only() {
            return Err(StoreError::ReadOnly);
        }
        match op {
            TreeOp::List {
                folder,
                options,
                budget,
            } => self
                .list_tree(folder, *options, *budget)
                .map(TreeDone::Listing),
            TreeOp::Mkdir(path) => self.mkdir(path).map(|()| TreeDone::Done),
            TreeOp::Rmdir(path) => self.rmdir(path).map(|()| TreeDone::Done),
            TreeOp::Delete(path) => self.delete(path).map(|()| TreeDone::Done),
            TreeOp::Rename { from, to } => self.rename(from, to).map(|()| TreeDone::Done),
        }
    }

    fn mkdir(&self, path: &TreePath) -> Result<(), StoreError> {
        let (dir, name) = resolve::parent(&self.inner.dir, path).map_err(not_found_or)?;
        // A name that is taken is 512 whatever the quota (as a `new` put's, PUT-2), so that
        // `mkdir -p` and `put -r` over existing folders go on when the quota is reached.
        match statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => return Err(StoreError::Exists),
            Err(Errno::NOENT) => {}
            Err(e) => return Err(StoreError::from_errno(e)),
        }
        // What the folder counts in the quota (PUT-23) is reserved then, with the uploads'
        // lock, and counted when the folder is made (the `mkdirat` runs with the ledger
        // locked); a refused or failed `mkdirat` gives it back.
        let mut reservation = self.inner.space.reserve_folder()?;
        reservation.commit(|| {
            match mkdirat(&dir, name.as_str(), Mode::from_raw_mode(FOLDER_MODE)) {
                Ok(()) => Ok(None),
                Err(Errno::EXIST) => Err(StoreError::Exists),
                // The parent was removed after it was opened.
                Err(Errno::NOENT) => Err(StoreError::NotFound),
                Err(e) => Err(StoreError::from_errno(e)),
            }
        })?;
        sync_folder(&dir, path);
        Ok(())
    }

    fn rmdir(&self, path: &TreePath) -> Result<(), StoreError> {
        let (dir, name) = resolve::parent(&self.inner.dir, path).map_err(not_found_or)?;
        // The look and the removal with the quota's lock held, so that what the folder
        // counted is given back exactly when it is gone, in order with the `mkdir`s.
        self.inner.space.remove(|| {
            match kind_at(&dir, &name)? {
                FileType::Directory => {}
                FileType::RegularFile => return Err(StoreError::WrongKind),
                _ => return Err(StoreError::NotFound),
            }
            match unlinkat(&dir, name.as_str(), AtFlags::REMOVEDIR) {
                Ok(()) => Ok(FOLDER_OCTETS),
                Err(Errno::NOTEMPTY | Errno::EXIST) => Err(StoreError::NotEmpty),
                // Replaced by something that is not a folder since the look, or gone.
                Err(Errno::NOTDIR | Errno::NOENT) => Err(StoreError::NotFound),
                // A mount point.
                Err(Errno::BUSY) => Err(StoreError::Denied),
                Err(e) => Err(StoreError::from_errno(e)),
            }
        })?;
        sync_folder(&dir, path);
        Ok(())
    }

    fn delete(&self, path: &TreePath) -> Result<(), StoreError> {
        let (dir, name) = resolve::parent(&self.inner.dir, path).map_err(not_found_or)?;
        // The look and the unlink under the quota's lock, so that the size taken off is that
        // of the file removed, counted in order with the commits of the same name.
        self.inner.space.remove(|| {
            let st = match statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(e) => return Err(not_found_or(e)),
            };
            match FileType::from_raw_mode(st.st_mode) {
                FileType::RegularFile => {}
                FileType::Directory => return Err(StoreError::WrongKind),
                _ => return Err(StoreError::NotFound),
            }
            match unlinkat(&dir, name.as_str(), AtFlags::empty()) {
                Ok(()) => Ok(stat_size(&st)),
                Err(Errno::ISDIR) => Err(StoreError::WrongKind),
                Err(e) => Err(not_found_or(e)),
            }
        })?;
        sync_folder(&dir, path);
        Ok(())
    }

    fn rename(&self, from: &TreePath, to: &TreePath) -> Result<(), StoreError> {
        let (from_dir, from_name) = resolve::parent(&self.inner.dir, from).map_err(not_found_or)?;
        let (to_dir, to_name) = resolve::parent(&self.inner.dir, to).map_err(not_found_or)?;
        let folder = match kind_at(&from_dir, &from_name)? {
            FileType::Directory => true,
            FileType::RegularFile => false,
            _ => return Err(StoreError::NotFound),
        };
        let (old, new) = (from_name.as_str(), to_name.as_str());
        match renameat_with(&from_dir, old, &to_dir, new, RenameFlags::NOREPLACE) {
            Ok(()) => {}
            // No RENAME_NOREPLACE in this file system: a file can move by link + unlink,
            // which never replaces either; a folder cannot (no hard links to folders).
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) if !folder => {
                move_by_link(&from_dir, old, &to_dir, new).map_err(rename_error)?;
            }
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                return Err(StoreError::Denied);
            }
            Err(e) => return Err(rename_error(e)),
        }
        sync_folder(&to_dir, to);
        if from.split_last().0 != to.split_last().0 {
            sync_folder(&from_dir, from);
        }
        Ok(())
    }

    fn list_tree(
        &self,
        folder: &Folder,
        options: ListOptions,
        budget: usize,
    ) -> Result<Vec<ListEntry>, StoreError> {
        let (dir, base) = match folder {
            Folder::Root => (None, None),
            Folder::Path(path) => (Some(self.open_listed(path)?), Some(path)),
        };
        let dir = dir.as_ref().unwrap_or(&self.inner.dir);
        let mut listing = Listing {
            root: self,
            options,
            budget,
            cost: 0,
            // Octets and names the listed folder's path takes from the limits, with the `/`
            // that joins it to an entry's path.
            base_len: base.map_or(0, |p| p.as_bytes().len() + 1),
            base_depth: base.map_or(0, TreePath::depth),
            buf: Vec::new(),
            entries: Vec::new(),
        };
        listing.folder(dir, None)?;
        let mut entries = listing.entries;
        entries.sort_unstable_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        Ok(entries)
    }

    /// The folder a `list` names, opened beneath the root: a regular file there is
    /// [`StoreError::WrongKind`], anything else that is not a folder [`StoreError::NotFound`].
    fn open_listed(&self, path: &TreePath) -> Result<OwnedFd, StoreError> {
        match resolve::open_folder(&self.inner.dir, path) {
            Ok(fd) => Ok(fd),
            Err(Errno::NOTDIR | Errno::LOOP) => {
                // The last name may be a regular file (518), or any name a link, a special
                // file or a file where a folder is needed (511).
                let (dir, name) = resolve::parent(&self.inner.dir, path).map_err(not_found_or)?;
                match statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st)
                        if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
                            && !self.refuses_links(&st) =>
                    {
                        Err(StoreError::WrongKind)
                    }
                    Ok(_) => Err(StoreError::NotFound),
                    Err(e) => Err(not_found_or(e)),
                }
            }
            Err(e) => Err(not_found_or(e)),
        }
    }
}

/// What is at `name` in `dir`, without following a link; missing is [`StoreError::NotFound`].
fn kind_at(dir: &impl AsFd, name: &FileName) -> Result<FileType, StoreError> {
    statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
        .map(|st| FileType::from_raw_mode(st.st_mode))
        .map_err(not_found_or)
}

/// A rename's error: EEXIST (and ENOTEMPTY, EISDIR, which some file systems give for a
/// folder in the way) is [`StoreError::Exists`]; a move across file systems (a mount inside
/// the folder) or of a mount point is [`StoreError::Denied`]; ENOENT and ENOTDIR (something
/// changed since the look) are [`StoreError::NotFound`].
fn rename_error(e: Errno) -> StoreError {
    match e {
        Errno::EXIST | Errno::NOTEMPTY | Errno::ISDIR => StoreError::Exists,
        Errno::XDEV | Errno::BUSY => StoreError::Denied,
        e => not_found_or(e),
    }
}

/// Moves a file where `RENAME_NOREPLACE` is missing (PUT-13's fallback): `link` never
/// replaces; then the old name goes. Should that fail, the file keeps both names (and is
/// not served while it has two, SEC-13, unless hard links are allowed); the warning says so.
fn move_by_link(
    old_dir: &impl AsFd,
    old: &str,
    new_dir: &impl AsFd,
    new: &str,
) -> Result<(), Errno> {
    linkat(old_dir, old, new_dir, new, AtFlags::empty())?;
    if let Err(e) = unlinkat(old_dir, old, AtFlags::empty()) {
        tracing::warn!(from = old, to = new, error = %e, "rename by link: cannot remove the old name (the file has both)");
    }
    Ok(())
}

/// Fsyncs a folder an operation changed (TREE-12). The change is made; a failed fsync cannot
/// undo it, only be reported.
fn sync_folder(dir: &impl AsFd, path: &TreePath) {
    if let Err(e) = fsync(dir) {
        tracing::warn!(path = %path, error = %e, "fsync of a changed folder failed");
    }
}

/// A listing being collected.
struct Listing<'a> {
    root: &'a Root,
    options: ListOptions,
    budget: usize,
    /// What the entries cost so far ([`entry_cost`]).
    cost: usize,
    base_len: usize,
    base_depth: usize,
    /// The read buffer of the digests, allocated at the first file hashed.
    buf: Vec<u8>,
    entries: Vec<ListEntry>,
}

impl Listing<'_> {
    /// Lists the folder `dir`, whose path relative to the listed folder is `at` (`None`: the
    /// listed folder), then, with `recursive`, its subfolders, each opened relative to `dir`.
    fn folder(&mut self, dir: &OwnedFd, at: Option<&TreePath>) -> Result<(), StoreError> {
        let mut folders = Vec::new();
        let entries = Dir::read_from(dir).map_err(StoreError::from_errno)?;
        for entry in entries {
            let entry = entry.map_err(StoreError::from_errno)?;
            if !matches!(
                entry.file_type(),
                FileType::RegularFile | FileType::Directory | FileType::Unknown
            ) {
                continue;
            }
            // Never `.`, `..`, `.ferry-staging` or any hidden or invalid name (NAME-1..5).
            let Ok(name) = FileName::from_bytes(entry.file_name().to_bytes()) else {
                continue;
            };
            let Some(path) = self.path(at, &name) else {
                continue;
            };
            let st = match statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(StoreError::from_errno(e)),
            };
            let entry = match FileType::from_raw_mode(st.st_mode) {
                FileType::RegularFile if self.root.refuses_links(&st) => continue,
                FileType::RegularFile if self.options.digests => {
                    match self.hashed(dir, &name, path)? {
                        Some(entry) => entry,
                        None => continue,
                    }
                }
                FileType::RegularFile => ListEntry {
                    kind: EntryKind::File {
                        size: stat_size(&st),
                        digest: None,
                    },
                    mtime: stat_mtime(&st),
                    path,
                },
                FileType::Directory => {
                    if self.options.recursive && self.depth(&path) < MAX_DEPTH {
                        folders.push((name, path.clone()));
                    }
                    ListEntry {
                        kind: EntryKind::Folder,
                        mtime: stat_mtime(&st),
                        path,
                    }
                }
                _ => continue,
            };
            self.push(entry)?;
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        for (name, path) in folders {
            match openat(dir, name.as_str(), flags, Mode::empty()) {
                Ok(sub) => self.folder(&sub, Some(&path))?,
                // Gone, or replaced by a link or a file since it was seen: its entries are
                // left out as a file that vanished is.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => {}
                Err(e) => return Err(StoreError::from_errno(e)),
            }
        }
        Ok(())
    }

    /// The path of `name` in the folder at `at`, if the full path from the served folder is
    /// within the path limits (TREE-6).
    fn path(&self, at: Option<&TreePath>, name: &FileName) -> Option<TreePath> {
        let path = match at {
            None => TreePath::from(name.clone()),
            Some(at) => at.join(name).ok()?,
        };
        let fits =
            self.base_len + path.as_bytes().len() <= MAX_PATH && self.depth(&path) <= MAX_DEPTH;
        fits.then_some(path)
    }

    /// How many names `path` has from the served folder.
    fn depth(&self, path: &TreePath) -> usize {
        self.base_depth + path.depth()
    }

    fn push(&mut self, entry: ListEntry) -> Result<(), StoreError> {
        self.cost = self.cost.saturating_add(entry_cost(&entry));
        if self.cost > self.budget {
            return Err(StoreError::ListingTooLarge);
        }
        self.entries.push(entry);
        Ok(())
    }

    /// The entry of a regular file with its digest (TREE-7): opened without following a
    /// link, SIZE and MTIME from its `fstat`, the digest from the cache or hashed and checked.
    /// `None`: it is no longer a regular file the listing shows.
    fn hashed(
        &mut self,
        dir: &OwnedFd,
        name: &FileName,
        path: TreePath,
    ) -> Result<Option<ListEntry>, StoreError> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match openat(dir, name.as_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::LOOP | Errno::NXIO | Errno::NODEV | Errno::ISDIR) => {
                return Ok(None);
            }
            // A file the server may not read: listed, its digest unknown (a get answers 516).
            Err(Errno::ACCESS | Errno::PERM) => return self.unreadable(dir, name, path),
            Err(e) => return Err(StoreError::from_errno(e)),
        };
        let opened = SystemTime::now();
        let file = File::from(fd);
        let st = fstat(&file).map_err(StoreError::from_errno)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
            || self.root.refuses_links(&st)
        {
            return Ok(None);
        }
        let identity = Identity::of(&st);
        let cache = &self.root.inner.digests;
        let digest = match cache.get(&identity) {
            Some(d) => Some(d),
            None => {
                if self.buf.is_empty() {
                    self.buf = vec![0; PIECE];
                }
                let checked = hash_checked(&file, &st, &mut self.buf, || {})?;
                if let Some((digest, true)) = checked
                    && identity.settled(opened)
                {
                    cache.insert(identity, digest);
                }
                checked.map(|(d, _)| d)
            }
        };
        Ok(Some(ListEntry {
            kind: EntryKind::File {
                size: stat_size(&st),
                digest,
            },
            mtime: stat_mtime(&st),
            path,
        }))
    }

    /// A regular file that cannot be opened: its entry from a `statat`, without a digest.
    fn unreadable(
        &self,
        dir: &OwnedFd,
        name: &FileName,
        path: TreePath,
    ) -> Result<Option<ListEntry>, StoreError> {
        match statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st)
                if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
                    && !self.root.refuses_links(&st) =>
            {
                Ok(Some(ListEntry {
                    kind: EntryKind::File {
                        size: stat_size(&st),
                        digest: None,
                    },
                    mtime: stat_mtime(&st),
                    path,
                }))
            }
            Ok(_) | Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(StoreError::from_errno(e)),
        }
    }
}

/// The digest of the whole of `file`, read from its start in pieces of `buf`'s length, and
/// GET-9's check after the last octet: `None` when the file read did not have the size, or
/// has no longer the size and modification time, that `st` (its `fstat` at the open) gave;
/// else the digest and whether the whole identity (inode, ctime too) is unchanged, which
/// remembering it requires. `after` runs between the reading and the check (a test's seam).
fn hash_checked(
    file: &File,
    st: &Stat,
    buf: &mut [u8],
    after: impl FnOnce(),
) -> Result<Option<(Digest, bool)>, StoreError> {
    use std::os::unix::fs::FileExt as _;
    let mut hasher = Hasher::new();
    let mut at = 0u64;
    loop {
        match file.read_at(buf, at) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                at += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StoreError::from_io(e)),
        }
    }
    after();
    let now = fstat(file).map_err(StoreError::from_errno)?;
    if at != stat_size(st) || Snapshot::of(&now) != Snapshot::of(st) {
        return Ok(None);
    }
    Ok(Some((
        hasher.digest(),
        Identity::of(&now) == Identity::of(st),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// TREE-7: a file that changes between the hashing and the check gets no digest; one that
    /// does not gets the digest of what was read.
    #[test]
    fn a_file_changed_while_hashed_gets_no_digest() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("f");
        std::fs::write(&path, b"hello").expect("write");
        let file = File::open(&path).expect("open");
        let st = fstat(&file).expect("fstat");
        let mut buf = vec![0; 2];
        let same = hash_checked(&file, &st, &mut buf, || {}).expect("hash");
        assert_eq!(same, Some((Digest::of(b"hello"), true)));
        let grown = hash_checked(&file, &st, &mut buf, || {
            let mut w = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .expect("open for append");
            w.write_all(b"!").expect("append");
        })
        .expect("hash");
        assert_eq!(grown, None);
    }

    /// A listing with digests takes a digest the folder's cache knows for the file's
    /// identity instead of hashing (as a get does); another identity hashes.
    #[test]
    fn a_listing_uses_the_digest_cache() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = Root::open(tmp.path()).expect("open");
        std::fs::create_dir(tmp.path().join("a")).expect("mkdir");
        let path = tmp.path().join("a").join("f");
        std::fs::write(&path, b"content").expect("write");
        let st = rustix::fs::stat(&path).expect("stat");
        let known = Digest::from_bytes([7; 16]);
        root.inner.digests.insert(Identity::of(&st), known);
        let op = TreeOp::List {
            folder: Folder::Root,
            options: ListOptions {
                digests: true,
                recursive: true,
            },
            budget: usize::MAX,
        };
        let digest_of_f = |done: TreeDone| match done {
            TreeDone::Listing(entries) => entries
                .into_iter()
                .find(|e| e.path.as_str() == "a/f")
                .map(|e| e.kind),
            TreeDone::Done => None,
        };
        let kind = digest_of_f(root.tree(&op).expect("list"));
        assert_eq!(
            kind,
            Some(EntryKind::File {
                size: 7,
                digest: Some(known)
            })
        );
        // Another size: another identity, whatever the clock's granularity.
        std::fs::write(&path, b"changed!").expect("rewrite");
        let kind = digest_of_f(root.tree(&op).expect("list"));
        assert_eq!(
            kind,
            Some(EntryKind::File {
                size: 8,
                digest: Some(Digest::of(b"changed!"))
            })
        );
    }
}
