//! Paths of the `tree` extension resolved beneath the served folder (TREE-4): every folder of
//! a path is opened relative to the one before it, starting at the root's handle, without
//! following a symbolic link at any level. `openat2` with `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS` where the kernel has it (Linux 5.6); else one
//! `openat(O_DIRECTORY | O_NOFOLLOW)` per name, which is as safe here because a valid name is
//! never `.` or `..` (NAME-4): each step goes one level down, and a link at any level fails
//! the open instead of being followed.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_wire::{FileName, TreePath};
use rustix::fs::{Mode, OFlags, ResolveFlags, openat, openat2};
use rustix::io::Errno;

/// The folder an entry is in: the root itself, or a folder beneath it, opened.
#[derive(Debug)]
pub(crate) enum Parent<'a> {
    /// The served folder.
    Root(BorrowedFd<'a>),
    /// A folder beneath it.
    Sub(OwnedFd),
}

impl AsFd for Parent<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Parent::Root(fd) => *fd,
            Parent::Sub(fd) => fd.as_fd(),
        }
    }
}

impl Parent<'_> {
    /// An owned handle (the root's duplicated), for what outlives the borrow (an upload).
    pub(crate) fn into_owned(self) -> Option<OwnedFd> {
        match self {
            Parent::Root(_) => None,
            Parent::Sub(fd) => Some(fd),
        }
    }
}

/// The folder that holds the entry `path` names, and the entry's name: the root for a one-name
/// path (no system call), else the path's folders opened beneath `root`. A folder that is
/// missing, is not a folder or is a symbolic link is ENOENT, ENOTDIR, ELOOP or EXDEV.
pub(crate) fn parent<'a>(
    root: &'a OwnedFd,
    path: &TreePath,
) -> Result<(Parent<'a>, FileName), Errno> {
    let (folder, name) = path.split_last();
    match folder {
        None => Ok((Parent::Root(root.as_fd()), name)),
        Some(folder) => Ok((Parent::Sub(open_folder(root, &folder)?), name)),
    }
}

/// Whether the kernel lacks `openat2` (learned once, then the walk is used directly).
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens the folder `path` beneath `root` (TREE-4). ENOENT, ENOTDIR, ELOOP (a link under
/// RESOLVE_NO_SYMLINKS or O_NOFOLLOW) and EXDEV (RESOLVE_BENEATH) all mean "no folder there".
pub(crate) fn open_folder(root: &OwnedFd, path: &TreePath) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        match openat2(
            root,
            path.as_str(),
            flags,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        ) {
            // Not in this kernel, or refused by a seccomp filter that does not know it.
            Err(Errno::NOSYS | Errno::PERM) => NO_OPENAT2.store(true, Ordering::Relaxed),
            other => return other,
        }
    }
    walk(root, path, flags)
}

/// The fallback of [`open_folder`]: one `openat` per name, each relative to the folder before.
fn walk(root: &OwnedFd, path: &TreePath, flags: OFlags) -> Result<OwnedFd, Errno> {
    let mut names = path.names();
    let first = names.next().ok_or(Errno::NOENT)?;
    let mut dir = openat(root, first, flags, Mode::empty())?;
    for name in names {
        dir = openat(&dir, name, flags, Mode::empty())?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_path(s: &str) -> TreePath {
        TreePath::new(s).expect("valid path")
    }

    fn open_root(p: &std::path::Path) -> OwnedFd {
        rustix::fs::open(
            p,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .expect("open root")
    }

    /// Both ways of resolving (openat2 and the walk) find real folders and refuse a link at any
    /// level, a file where a folder is needed and a missing folder, never reaching outside.
    #[test]
    fn folders_resolve_beneath_the_root_and_links_are_never_followed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(outside.path().join("x")).expect("mkdir");
        let root_path = tmp.path().join("root");
        std::fs::create_dir_all(root_path.join("a/b")).expect("mkdir");
        std::fs::write(root_path.join("a/file"), b"x").expect("write");
        std::os::unix::fs::symlink(outside.path(), root_path.join("out")).expect("symlink");
        std::os::unix::fs::symlink(root_path.join("a"), root_path.join("a/b/up")).expect("symlink");
        let root = open_root(&root_path);
        fn walked(root: &OwnedFd, path: &TreePath) -> Result<OwnedFd, Errno> {
            walk(
                root,
                path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
            )
        }
        type Resolve = fn(&OwnedFd, &TreePath) -> Result<OwnedFd, Errno>;
        let resolvers: [Resolve; 2] = [open_folder, walked];
        for resolve in resolvers {
            assert!(resolve(&root, &tree_path("a/b")).is_ok());
            for bad in [
                "out", "out/x", "a/b/up", "a/b/up/b", "a/file", "a/file/x", "none", "a/none",
            ] {
                let e = resolve(&root, &tree_path(bad)).expect_err(bad);
                assert!(
                    matches!(e, Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::XDEV),
                    "{bad}: {e}"
                );
            }
        }
        let (folder, name) = parent(&root, &tree_path("a/b/c")).expect("parent");
        assert_eq!(name.as_str(), "c");
        assert!(matches!(folder, Parent::Sub(_)));
        let (folder, name) = parent(&root, &tree_path("top")).expect("parent");
        assert_eq!(name.as_str(), "top");
        assert!(matches!(folder, Parent::Root(_)));
    }
}
