//! The local side of the `tree` extension (spec section 17): folders a recursive download
//! creates beneath the folder its user chose without following a symbolic link at any level
//! (TREE-14, NAME-10 for paths), the walk of a local folder for a recursive upload (names in
//! NFC, NAME-8; symbolic links and special files left out), and the plan of a mirror.
//!
//! Blocking functions, shared by every client. They guard against what a server can send:
//! a listing's paths are [`TreePath`]s (valid names only, never `..`, never hidden), and each
//! local folder is checked with `symlink_metadata` before anything is created in it. They do
//! not guard against another local process that swaps a checked folder for a symbolic link
//! between the check and the download's open (the user's own files are the user's).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use ferry_wire::tree::{EntryKind, ListEntry};
use ferry_wire::{Digest, FileName, Hasher, TreePath};

use crate::{ClientError, PART_SUFFIX, local_path};

/// Creates the folder `rel` beneath `root`, one level per name, each level either an
/// existing folder (not a symbolic link) or created now; `root` itself is created if
/// missing. Returns the local path of the folder. Anything else at a level — a file, a
/// symbolic link (even to a folder), a special file — is an error, and nothing is created
/// beneath it (TREE-14).
pub fn make_local_folder(root: &Path, rel: Option<&TreePath>) -> Result<PathBuf, ClientError> {
    match fs::symlink_metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            // The folder the user named: a link to a folder is the user's choice.
            if !root.is_dir() {
                let e = io::Error::other("exists and is not a folder");
                return Err(ClientError::local(root, e));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(root).map_err(|e| ClientError::local(root, e))?;
        }
        Err(e) => return Err(ClientError::local(root, e)),
    }
    let mut here = root.to_path_buf();
    for name in rel.into_iter().flat_map(TreePath::names) {
        let name = FileName::new(name).map_err(|e| ClientError::LocalName {
            name: name.to_owned(),
            reason: e.to_string(),
        })?;
        here = local_path(&here, &name)?;
        ensure_folder(&here)?;
    }
    Ok(here)
}

/// `path` is a folder that is not a symbolic link, created if missing.
fn ensure_folder(path: &Path) -> Result<(), ClientError> {
    for _ in 0..2 {
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(m) => {
                let what = if m.file_type().is_symlink() {
                    "is a symbolic link, which is never followed"
                } else {
                    "exists and is not a folder"
                };
                return Err(ClientError::local(path, io::Error::other(what)));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(path) {
                Ok(()) => return Ok(()),
                // Made meanwhile: look again.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(ClientError::local(path, e)),
            },
            Err(e) => return Err(ClientError::local(path, e)),
        }
    }
    Err(ClientError::local(
        path,
        io::Error::other("changed while it was being created"),
    ))
}

/// The local file for the server's file `rel` beneath `root`: its folders are made with
/// [`make_local_folder`]; the file itself is then written as every download is (a
/// `.ferry-part`, renamed onto it once verified: a symbolic link at its name is replaced,
/// never written through).
pub fn local_file(root: &Path, rel: &TreePath) -> Result<PathBuf, ClientError> {
    let (parent, name) = rel.split_last();
    let folder = make_local_folder(root, parent.as_ref())?;
    local_path(&folder, &name)
}

/// What a local walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalKind {
    /// A regular file of this size.
    File(u64),
    /// A folder.
    Folder,
}

/// An entry of a local folder's tree, by its path on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEntry {
    /// Its path relative to the walked folder, in NFC (NAME-8).
    pub path: TreePath,
    /// Where it is.
    pub local: PathBuf,
    /// File or folder.
    pub kind: LocalKind,
}

/// A local walk: the entries in ascending order of their paths' octets (as a `list`
/// sorts, TREE-6), and what was left out, for warnings.
#[derive(Debug, Default)]
pub struct LocalTree {
    /// Files and folders.
    pub entries: Vec<LocalEntry>,
    /// Left out: symbolic links, special files, names that are not valid ferry names (or
    /// paths past TREE-3's limits), partial downloads (`.ferry-part`), names whose NFC form
    /// repeats another's; each with why.
    pub skipped: Vec<(PathBuf, String)>,
    /// The paths of the skipped entries that have valid names (symbolic links, special files,
    /// partial downloads): they exist here although they are not sent, so a mirror that
    /// deletes what its source lacks leaves the other side's entry of that path alone.
    pub kept: Vec<TreePath>,
}

/// Walks the folder `root` (not following symbolic links anywhere: a link is skipped), for
/// an upload beneath `base` on the server (`None`: the served folder). An error reading a
/// folder is an error of the walk.
pub fn walk_local(root: &Path, base: Option<&TreePath>) -> Result<LocalTree, ClientError> {
    let mut tree = LocalTree::default();
    let mut seen = BTreeSet::new();
    walk(root, None, base, &mut tree, &mut seen)?;
    tree.entries
        .sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(tree)
}

fn walk(
    dir: &Path,
    rel: Option<&TreePath>,
    base: Option<&TreePath>,
    tree: &mut LocalTree,
    seen: &mut BTreeSet<TreePath>,
) -> Result<(), ClientError> {
    let read = fs::read_dir(dir).map_err(|e| ClientError::local(dir, e))?;
    let mut children: Vec<_> = read
        .collect::<Result<_, _>>()
        .map_err(|e| ClientError::local(dir, e))?;
    children.sort_by_key(fs::DirEntry::file_name);
    for child in children {
        let local = child.path();
        let meta = fs::symlink_metadata(&local).map_err(|e| ClientError::local(&local, e))?;
        let os_name = child.file_name();
        // The path a skipped entry would have (when its name is valid): kept, see LocalTree.
        let keep = |tree: &mut LocalTree| {
            let name = os_name.to_str().and_then(|t| FileName::from_local(t).ok());
            let path = name.and_then(|n| match rel {
                Some(r) => r.join(&n).ok(),
                None => Some(TreePath::from(n)),
            });
            tree.kept.extend(path);
        };
        let kind = if meta.file_type().is_symlink() {
            keep(tree);
            tree.skipped
                .push((local, "a symbolic link (never followed)".into()));
            continue;
        } else if meta.is_dir() {
            LocalKind::Folder
        } else if meta.is_file() {
            LocalKind::File(meta.len())
        } else {
            keep(tree);
            tree.skipped
                .push((local, "not a regular file or folder".into()));
            continue;
        };
        let Some(text) = os_name.to_str() else {
            tree.skipped.push((local, "the name is not UTF-8".into()));
            continue;
        };
        if matches!(kind, LocalKind::File(_)) && text.ends_with(PART_SUFFIX) {
            keep(tree);
            tree.skipped
                .push((local, "a partial download (.ferry-part)".into()));
            continue;
        }
        let name = match FileName::from_local(text) {
            Ok(n) => n,
            Err(e) => {
                tree.skipped.push((local, e.to_string()));
                continue;
            }
        };
        let path = match rel {
            Some(r) => r.join(&name),
            None => Ok(TreePath::from(name)),
        };
        // The whole path on the server stays within TREE-3's limits.
        let full = path.and_then(|p| match base {
            Some(b) => TreePath::new(format!("{b}/{p}")).map(|_| p),
            None => Ok(p),
        });
        let path = match full {
            Ok(p) => p,
            Err(e) => {
                tree.skipped.push((local, e.to_string()));
                continue;
            }
        };
        if !seen.insert(path.clone()) {
            tree.skipped.push((
                local,
                "its name in NFC is that of another entry of the folder".into(),
            ));
            continue;
        }
        let folder = kind == LocalKind::Folder;
        tree.entries.push(LocalEntry {
            path: path.clone(),
            local: local.clone(),
            kind,
        });
        if folder {
            walk(&local, Some(&path), base, tree, seen)?;
        }
    }
    Ok(())
}

/// The size and digest (SUM-1, xxh3-128) of a local file, read whole. Opened without
/// following a symbolic link (the walk skipped links; one made since is refused, not read).
/// The read buffer is the file's size up to 1 MiB, so hashing many small files allocates
/// small buffers, not a zeroed megabyte each.
pub fn hash_file(path: &Path) -> Result<(u64, Digest), ClientError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_nofollow())
        .open(path)
        .map_err(|e| ClientError::local(path, e))?;
    let len = file
        .metadata()
        .map_err(|e| ClientError::local(path, e))?
        .len();
    let mut hasher = Hasher::new();
    // One octet more than the size, so that a file read whole ends in the same read.
    let mut buf = vec![0; usize::try_from(len).unwrap_or(usize::MAX).clamp(1, 1 << 20) + 1];
    let mut size = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                size += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ClientError::local(path, e)),
        }
    }
    Ok((size, hasher.digest()))
}

/// `O_NOFOLLOW`, as `OpenOptionsExt::custom_flags` takes it.
fn libc_nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// Which way a mirror copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Local to server.
    Push,
    /// Server to local.
    Pull,
}

/// A file as a mirror compares it: its size and, if known, its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A file.
    File {
        /// Octets.
        size: u64,
        /// Its digest; `None`: unknown (TREE-7), so it differs.
        digest: Option<Digest>,
    },
    /// A folder.
    Folder,
}

/// What a mirror does, in order: folders to make (parents first), files to copy, then with
/// `--delete` files to remove and folders to remove (deepest first).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MirrorPlan {
    /// Folders missing at the destination, parents first.
    pub make: Vec<TreePath>,
    /// Files to copy: missing at the destination, or differing in size or digest.
    pub copy: Vec<TreePath>,
    /// Files present at the destination and the same: left alone.
    pub same: Vec<TreePath>,
    /// Entries at the destination that the source lacks, to delete (files).
    pub delete_files: Vec<TreePath>,
    /// Folders at the destination that the source lacks, deepest first.
    pub delete_folders: Vec<TreePath>,
    /// Entries whose kind differs on both sides (a file here, a folder there): left alone,
    /// reported (removing one to make room for the other is for the user to decide).
    pub conflicts: Vec<TreePath>,
}

/// A server listing's entries (with digests) as a mirror compares them.
pub fn remote_sides(entries: &[ListEntry]) -> BTreeMap<TreePath, Side> {
    entries
        .iter()
        .map(|e| {
            let side = match e.kind {
                EntryKind::File { size, digest } => Side::File { size, digest },
                EntryKind::Folder => Side::Folder,
            };
            (e.path.clone(), side)
        })
        .collect()
}

/// The plan that makes `dest` hold what `source` holds (paths relative to the mirrored
/// folders). A file is copied when the destination lacks it or when sizes or digests
/// differ, an unknown digest on either side counting as different; with `delete`, what
/// `dest` has and `source` lacks is removed. Running the plan twice changes nothing the
/// second time (a rerun after an interruption finishes the first).
pub fn mirror_plan(
    source: &BTreeMap<TreePath, Side>,
    dest: &BTreeMap<TreePath, Side>,
    delete: bool,
) -> MirrorPlan {
    let mut plan = MirrorPlan::default();
    for (path, side) in source {
        match (side, dest.get(path)) {
            (Side::Folder, None) => plan.make.push(path.clone()),
            (Side::Folder, Some(Side::Folder)) => {}
            (Side::File { .. }, None) => plan.copy.push(path.clone()),
            (
                Side::File { size, digest },
                Some(Side::File {
                    size: s2,
                    digest: d2,
                }),
            ) => {
                let same = size == s2 && digest.is_some() && digest == d2;
                if same {
                    plan.same.push(path.clone());
                } else {
                    plan.copy.push(path.clone());
                }
            }
            _ => plan.conflicts.push(path.clone()),
        }
    }
    if delete {
        for (path, side) in dest {
            if source.contains_key(path) {
                continue;
            }
            // Beneath a conflict nothing is touched.
            if plan.conflicts.iter().any(|c| path.is_within(c)) {
                continue;
            }
            match side {
                Side::Folder => plan.delete_folders.push(path.clone()),
                Side::File { .. } => plan.delete_files.push(path.clone()),
            }
        }
        plan.delete_folders
            .sort_by_key(|p| std::cmp::Reverse(p.depth()));
    }
    // Parents before children: the map is sorted by octets, in which a parent comes first.
    plan.make.sort_by_key(TreePath::depth);
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> TreePath {
        TreePath::new(s).expect("path")
    }

    fn file(size: u64, d: &[u8]) -> Side {
        Side::File {
            size,
            digest: Some(Digest::of(d)),
        }
    }

    #[test]
    fn the_plan_copies_only_what_differs_and_deletes_deepest_first() {
        let source = BTreeMap::from([
            (p("a"), Side::Folder),
            (p("a/same"), file(1, b"x")),
            (p("a/changed"), file(1, b"y")),
            (p("new"), file(2, b"zz")),
            (
                p("unknown"),
                Side::File {
                    size: 1,
                    digest: None,
                },
            ),
        ]);
        let dest = BTreeMap::from([
            (p("a"), Side::Folder),
            (p("a/same"), file(1, b"x")),
            (p("a/changed"), file(1, b"z")),
            (
                p("unknown"),
                Side::File {
                    size: 1,
                    digest: None,
                },
            ),
            (p("old"), Side::Folder),
            (p("old/deeper"), Side::Folder),
            (p("old/deeper/f"), file(1, b"f")),
        ]);
        let plan = mirror_plan(&source, &dest, true);
        assert_eq!(plan.copy, vec![p("a/changed"), p("new"), p("unknown")]);
        assert_eq!(plan.same, vec![p("a/same")]);
        assert_eq!(plan.delete_files, vec![p("old/deeper/f")]);
        assert_eq!(plan.delete_folders, vec![p("old/deeper"), p("old")]);
        let keep = mirror_plan(&source, &dest, false);
        assert!(keep.delete_files.is_empty() && keep.delete_folders.is_empty());
    }

    #[test]
    fn a_rerun_plan_after_the_copy_is_empty() {
        let source = BTreeMap::from([(p("d"), Side::Folder), (p("d/f"), file(3, b"abc"))]);
        let plan = mirror_plan(&source, &BTreeMap::new(), true);
        assert_eq!(plan.make, vec![p("d")]);
        assert_eq!(plan.copy, vec![p("d/f")]);
        let again = mirror_plan(&source, &source, true);
        assert_eq!(
            again.copy.len() + again.make.len() + again.delete_files.len(),
            0
        );
    }

    #[cfg(unix)]
    #[test]
    fn folders_are_never_made_through_a_symbolic_link() {
        let root = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).expect("symlink");
        let err = local_file(root.path(), &p("link/x/file")).expect_err("through a link");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(fs::read_dir(outside.path()).expect("read").count(), 0);
        let made = local_file(root.path(), &p("a/b/file")).expect("made");
        assert_eq!(made, root.path().join("a/b/file"));
        assert!(root.path().join("a/b").is_dir());
    }

    #[cfg(unix)]
    #[test]
    fn the_walk_skips_links_and_partial_files_and_sorts_by_octets() {
        let root = tempfile::tempdir().expect("tempdir");
        fs::create_dir(root.path().join("sub")).expect("mkdir");
        fs::write(root.path().join("sub/a b.txt"), b"1").expect("write");
        fs::write(root.path().join("x.ferry-part"), b"1").expect("write");
        fs::write(root.path().join("Z"), b"12").expect("write");
        std::os::unix::fs::symlink("/etc", root.path().join("etc")).expect("symlink");
        let tree = walk_local(root.path(), None).expect("walk");
        let paths: Vec<&str> = tree.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["Z", "sub", "sub/a b.txt"]);
        assert_eq!(tree.skipped.len(), 2);
    }
}
