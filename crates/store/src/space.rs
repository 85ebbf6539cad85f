//! The space of one served folder (PUT-2, PUT-22, PUT-23): what the uploads in progress have
//! been promised, and the folder's optional quota.
//!
//! Every session of a server shares one [`Space`] (it lives in the [`crate::Root`]'s shared
//! part). An upload that passes PUT-2 takes a [`Reservation`] of its announced SIZE:
//!
//! - **Free space.** The file system's free space (`f_bavail`) already lacks what the staging
//!   files hold, so what the other uploads take from it is what they were promised but have
//!   not written yet: [`Space`] counts that (`unwritten`), and a new upload fits when its SIZE
//!   is at most the free space minus it. Each write counts down its octets *after* they were
//!   written, so a check in between sees them twice (it refuses sooner), never not at all.
//! - **Quota.** The folder's files (`used`) plus the whole SIZE of every upload in progress
//!   (`reserved`) plus the new SIZE must stay within the quota in octets; a `replace` is
//!   credited the size of the file it replaces, which its commit frees. `used` is the sum of
//!   the sizes of the regular files in the folder's whole tree when it was opened ([`scan`]),
//!   plus [`FOLDER_OCTETS`] for each folder in it (what a folder takes on common file
//!   systems: a fixed figure, so that the bound does not depend on the file system), kept up
//!   to date by the commits, `mkdir`s, `rmdir`s and deletes (a rename changes nothing);
//!   changes made by other programs are seen at the next start. The quota in files and
//!   folders counts the same way: the regular files and folders (`files`) plus the uploads
//!   in progress that will add one (a `new` put, or a `replace` of a name that holds no
//!   regular file) plus this one must stay within it.
//! - **Folders.** A `mkdir` reserves [`FOLDER_OCTETS`] and one entry ([`Space::reserve_folder`]),
//!   under the same lock and against the same counts as an upload, so that concurrent
//!   `mkdir`s and puts are never promised the same room; its commit creates the folder with
//!   the ledger locked. A folder takes nothing from the free space an upload checks: the
//!   file system itself refuses a folder it has no room for (ENOSPC). An `rmdir` gives back
//!   what the folder counted ([`Space::remove`]).
//!
//! A reservation is given back when the upload (or `mkdir`) is committed
//! ([`Reservation::commit`]) or dropped (a failed, aborted or abandoned upload), so no path
//! keeps it.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ferry_wire::limits::MAX_DEPTH;
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, openat, statat};
use rustix::io::Errno;

use crate::{STAGING_DIR, StoreError};

/// What one folder counts in a quota in octets (PUT-23): 4096, the size of an empty folder on
/// common file systems (ext4, XFS, and a block of most others).
pub const FOLDER_OCTETS: u64 = 4096;

/// The space ledger of one served folder.
#[derive(Debug, Default)]
pub(crate) struct Space {
    /// Octets announced by the uploads in progress and not written yet.
    unwritten: AtomicU64,
    /// The quota's part; its lock also orders the checks and the commits.
    ledger: Mutex<Ledger>,
}

#[derive(Debug, Default)]
struct Ledger {
    /// The whole SIZE of every upload in progress.
    reserved: u64,
    /// The uploads (and `mkdir`s) in progress that will add a file or folder when committed.
    reserved_files: u64,
    /// The quota, when the folder has one.
    quota: Option<Counted>,
}

/// The quotas of a folder (PUT-23): in octets, in files and folders, or both; `None`: no
/// limit. The default is no quota.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Quota {
    /// The most octets the folder's regular files may hold, each folder in it counting
    /// [`FOLDER_OCTETS`].
    pub bytes: Option<u64>,
    /// The most regular files and folders the folder may hold (the served folder itself not
    /// counted).
    pub files: Option<u64>,
}

impl Quota {
    /// Whether it limits anything.
    pub fn is_some(&self) -> bool {
        self.bytes.is_some() || self.files.is_some()
    }
}

/// A quota and what the folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// The quota.
    pub quota: Quota,
    /// What the folder's regular files hold (the sum of their sizes), plus
    /// [`FOLDER_OCTETS`] for each of its folders.
    pub used: u64,
    /// What the uploads in progress were promised (the sum of their SIZEs).
    pub reserved: u64,
    /// How many regular files and folders the folder holds.
    pub files: u64,
    /// How many uploads (and `mkdir`s) in progress will add a file or folder.
    pub reserved_files: u64,
}

#[derive(Debug, Clone, Copy)]
struct Counted {
    quota: Quota,
    used: u64,
    files: u64,
}

/// What a folder holds, for its quota ([`scan`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Held {
    /// The sum of the regular files' sizes, plus [`FOLDER_OCTETS`] per folder.
    pub(crate) bytes: u64,
    /// How many regular files and folders.
    pub(crate) files: u64,
}

impl Space {
    fn lock(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the quota (none when it limits nothing) and what the folder holds now.
    pub(crate) fn set_quota(&self, quota: Quota, held: Held) {
        self.lock().quota = quota.is_some().then_some(Counted {
            quota,
            used: held.bytes,
            files: held.files,
        });
    }

    /// The quota in force (the default when none).
    pub(crate) fn quota(&self) -> Quota {
        self.lock().quota.map(|q| q.quota).unwrap_or_default()
    }

    /// The quota and the usage, when the folder has a quota.
    pub(crate) fn usage(&self) -> Option<Usage> {
        let ledger = self.lock();
        ledger.quota.map(|q| Usage {
            quota: q.quota,
            used: q.used,
            reserved: ledger.reserved,
            files: q.files,
            reserved_files: ledger.reserved_files,
        })
    }

    /// Octets promised to the uploads in progress and not written yet.
    pub(crate) fn unwritten(&self) -> u64 {
        self.unwritten.load(Ordering::SeqCst)
    }

    /// Reserves `size` octets for an upload, or [`StoreError::NoSpace`] when they do not fit:
    /// `available()` (the file system's free space, asked with the ledger locked, so that two
    /// uploads never both take the same octets) minus what other uploads have not written yet
    /// must be at least `size`, and with a quota in octets, the folder's files plus every
    /// reservation plus `size`, less `credit` (the size of the file a `replace` will free),
    /// must be within it; with a quota in files and folders, an upload that `adds_file` (the
    /// name holds no regular file now) must find the folder's files and folders plus the
    /// uploads and `mkdir`s in progress that add one below it.
    pub(crate) fn reserve(
        self: &Arc<Self>,
        size: u64,
        credit: u64,
        adds_file: bool,
        available: impl FnOnce() -> Result<u64, StoreError>,
    ) -> Result<Reservation, StoreError> {
        let mut ledger = self.lock();
        let free = available()?.saturating_sub(self.unwritten());
        if size > free {
            return Err(StoreError::NoSpace);
        }
        ledger.check_quota(size, credit, adds_file)?;
        ledger.reserved = ledger.reserved.saturating_add(size);
        ledger.reserved_files += u64::from(adds_file);
        self.unwritten.fetch_add(size, Ordering::SeqCst);
        Ok(Reservation {
            space: Arc::clone(self),
            size,
            adds_file,
            written: 0,
            released: false,
        })
    }

    /// Reserves what a new folder counts (`mkdir`, TREE-8): [`FOLDER_OCTETS`] and one entry,
    /// or [`StoreError::NoSpace`] when the quota (counting every reservation, uploads' and
    /// folders', with the same lock as [`Space::reserve`]) has no room for them. Its commit
    /// ([`Reservation::commit`], whose closure creates the folder and returns `Ok(None)`)
    /// counts the folder; a failed or dropped one gives the reservation back. Nothing is
    /// taken from the free space uploads check (`unwritten`).
    pub(crate) fn reserve_folder(self: &Arc<Self>) -> Result<Reservation, StoreError> {
        let mut ledger = self.lock();
        ledger.check_quota(FOLDER_OCTETS, 0, true)?;
        ledger.reserved = ledger.reserved.saturating_add(FOLDER_OCTETS);
        ledger.reserved_files += 1;
        Ok(Reservation {
            space: Arc::clone(self),
            size: FOLDER_OCTETS,
            adds_file: true,
            // Nothing owed to the free space: release takes nothing off `unwritten`.
            written: FOLDER_OCTETS,
            released: false,
        })
    }
}

impl Ledger {
    /// Whether `size` more octets (less `credit`) and, if `adds_file`, one more file or
    /// folder fit the quota with every reservation counted; else [`StoreError::NoSpace`].
    fn check_quota(&self, size: u64, credit: u64, adds_file: bool) -> Result<(), StoreError> {
        let Some(q) = self.quota else {
            return Ok(());
        };
        let after = u128::from(q.used) + u128::from(self.reserved) + u128::from(size);
        if q.quota
            .bytes
            .is_some_and(|limit| after > u128::from(limit) + u128::from(credit))
        {
            return Err(StoreError::NoSpace);
        }
        let files = q.files.saturating_add(self.reserved_files);
        if adds_file && q.quota.files.is_some_and(|limit| files >= limit) {
            return Err(StoreError::NoSpace);
        }
        Ok(())
    }
}

impl Space {
    /// Runs `unlink` (which removes a regular file's name and returns the file's size, or
    /// removes a folder and returns [`FOLDER_OCTETS`]) with the ledger locked, and on success
    /// takes the octets and one file or folder off what the folder holds (`delete`, `rmdir`,
    /// TREE-12). Locked, like [`Reservation::commit`], so that a commit and a removal of one
    /// name count in the order they happened.
    pub(crate) fn remove<E>(&self, unlink: impl FnOnce() -> Result<u64, E>) -> Result<(), E> {
        let mut ledger = self.lock();
        let size = unlink()?;
        if let Some(q) = &mut ledger.quota {
            q.used = q.used.saturating_sub(size);
            q.files = q.files.saturating_sub(1);
        }
        Ok(())
    }
}

/// The space promised to one upload, given back when it is committed or dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    space: Arc<Space>,
    size: u64,
    /// It was counted as an upload that adds a file.
    adds_file: bool,
    written: u64,
    released: bool,
}

impl Reservation {
    /// `n` more octets are in the staging file (call after they were written).
    pub(crate) fn wrote(&mut self, n: u64) {
        let n = n.min(self.size - self.written);
        self.written += n;
        self.space.unwritten.fetch_sub(n, Ordering::SeqCst);
    }

    /// Runs `rename` (which makes the upload visible and returns the size of the regular
    /// file it replaced, `None` for none; for a `mkdir`, creates the folder) with the ledger
    /// locked, and on success moves the upload's SIZE from the reservations to the folder's
    /// files, less what it replaced, and counts one more file unless it replaced one.
    /// Locked, so that two commits of one name see each other's result, and a check never
    /// sees the upload in neither place. On failure the reservation is given back when
    /// dropped.
    pub(crate) fn commit<E>(
        &mut self,
        rename: impl FnOnce() -> Result<Option<u64>, E>,
    ) -> Result<(), E> {
        let space = Arc::clone(&self.space);
        let mut ledger = space.lock();
        let replaced = rename()?;
        if let Some(q) = &mut ledger.quota {
            q.used = q
                .used
                .saturating_add(self.size)
                .saturating_sub(replaced.unwrap_or(0));
            if replaced.is_none() {
                q.files = q.files.saturating_add(1);
            }
        }
        self.release(&mut ledger);
        Ok(())
    }

    fn release(&mut self, ledger: &mut Ledger) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        ledger.reserved = ledger.reserved.saturating_sub(self.size);
        ledger.reserved_files = ledger
            .reserved_files
            .saturating_sub(u64::from(self.adds_file));
        self.space
            .unwritten
            .fetch_sub(self.size - self.written, Ordering::SeqCst);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.released {
            let space = Arc::clone(&self.space);
            self.release(&mut space.lock());
        }
    }
}

/// What the folder holds for the quota: the number and sizes (`st_size`) of the regular files
/// in the whole tree beneath it (the `tree` extension, TREE-12: subfolders at every depth a
/// path can reach, [`MAX_DEPTH`] names), and its folders, each one entry and
/// [`FOLDER_OCTETS`] (whatever `st_size` says), each name counted (a file with several hard
/// links in the tree counts once per name), whatever the name (dotfiles, hidden folders and
/// names no request can reach count too). Not counted: the served folder itself, the staging
/// area (uploads in progress count by their reservations), symbolic links (never followed:
/// each subfolder is opened with `O_NOFOLLOW | O_DIRECTORY` relative to its parent), special
/// files, and what lies deeper than a path can name (a folder at the deepest level counts,
/// what it holds does not). A file or folder that disappears during the scan is left out; a
/// subfolder the server may not read (EACCES, EPERM: `lost+found` at the root of a mount)
/// counts as a folder, and what it holds is left out with a warning, as the server can reach
/// nothing in it either.
pub(crate) fn scan(dir: &OwnedFd) -> io::Result<Held> {
    let mut held = Held::default();
    scan_folder(dir, 1, &mut held)?;
    Ok(held)
}

/// [`scan`] of one folder whose entries have `depth` names, then of its subfolders.
fn scan_folder(dir: &OwnedFd, depth: usize, held: &mut Held) -> io::Result<()> {
    let mut folders = Vec::new();
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let kind = entry.file_type();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        if depth == 1 && name.to_bytes() == STAGING_DIR.as_bytes() {
            continue;
        }
        if !matches!(
            kind,
            FileType::RegularFile | FileType::Directory | FileType::Unknown
        ) {
            continue;
        }
        match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::RegularFile => {
                    held.bytes = held.bytes.saturating_add(crate::stat_size(&st));
                    held.files += 1;
                }
                FileType::Directory => {
                    held.bytes = held.bytes.saturating_add(FOLDER_OCTETS);
                    held.files += 1;
                    if depth < MAX_DEPTH {
                        folders.push(name.to_owned());
                    }
                }
                _ => {}
            },
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for name in folders {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match openat(dir, name.as_c_str(), flags, Mode::empty()) {
            Ok(sub) => scan_folder(&sub, depth + 1, held)?,
            // Gone, or replaced by a link or a file since it was seen.
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => {}
            Err(e @ (Errno::ACCESS | Errno::PERM)) => {
                tracing::warn!(folder = ?name, error = %e, "quota scan: cannot read a folder; what it holds is not counted");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(quota: Option<u64>, used: u64) -> Arc<Space> {
        let s = Arc::new(Space::default());
        let quota = Quota {
            bytes: quota,
            files: None,
        };
        s.set_quota(
            quota,
            Held {
                bytes: used,
                files: 0,
            },
        );
        s
    }

    fn free(n: u64) -> impl FnOnce() -> Result<u64, StoreError> {
        move || Ok(n)
    }

    fn reserved(s: &Space) -> u64 {
        s.lock().reserved
    }

    /// Free space: an upload is promised its SIZE; what it writes leaves the promise (the
    /// file system's free space shows it), so it is never counted twice.
    #[test]
    fn free_space_counts_what_is_not_written_yet() {
        let s = space(None, 0);
        let mut a = s.reserve(60, 0, true, free(100)).expect("fits");
        assert_eq!(s.unwritten(), 60);
        assert!(matches!(
            s.reserve(41, 0, true, free(100)),
            Err(StoreError::NoSpace)
        ));
        let b = s.reserve(40, 0, true, free(100)).expect("fits exactly");
        drop(b);
        // `a` writes 50: the file system has 50 octets less, `a` is owed 10 more.
        a.wrote(50);
        assert_eq!(s.unwritten(), 10);
        assert!(s.reserve(40, 0, true, free(50)).is_ok());
        assert!(matches!(
            s.reserve(41, 0, true, free(50)),
            Err(StoreError::NoSpace)
        ));
        // Writing more than announced is counted up to SIZE only.
        a.wrote(1000);
        assert_eq!(s.unwritten(), 0);
        drop(a);
        assert_eq!((s.unwritten(), reserved(&s)), (0, 0));
    }

    /// A reservation dropped after part of it was written gives back exactly the rest.
    #[test]
    fn a_dropped_upload_gives_its_reservation_back() {
        let s = space(Some(100), 10);
        let mut a = s.reserve(80, 0, true, free(1000)).expect("fits the quota");
        a.wrote(30);
        assert!(matches!(
            s.reserve(11, 0, true, free(1000)),
            Err(StoreError::NoSpace)
        ));
        drop(a);
        assert_eq!((s.unwritten(), reserved(&s)), (0, 0));
        assert_eq!(s.usage().map(|u| u.used), Some(10), "nothing was committed");
        assert!(s.reserve(90, 0, true, free(1000)).is_ok());
    }

    /// The quota counts the folder's files and every upload in progress; a commit moves the
    /// upload's SIZE to the files, less what it replaced; a replace is credited the size of
    /// the file it replaces.
    #[test]
    fn quota_counts_files_and_reservations_and_commits_move_them() {
        let s = space(Some(100), 40);
        let mut a = s
            .reserve(30, 0, true, free(u64::MAX))
            .expect("40 + 30 fits");
        assert!(matches!(
            s.reserve(31, 0, true, free(u64::MAX)),
            Err(StoreError::NoSpace)
        ));
        a.wrote(30);
        a.commit(|| Ok::<_, ()>(None)).expect("commit");
        assert_eq!(
            s.usage(),
            Some(Usage {
                quota: Quota {
                    bytes: Some(100),
                    files: None
                },
                used: 70,
                reserved: 0,
                files: 1,
                reserved_files: 0,
            })
        );
        drop(a); // a committed reservation is not given back twice
        assert_eq!((s.unwritten(), reserved(&s)), (0, 0));
        // A replace of a 25-octet file by 50 octets: 70 + 50 − 25 = 95 fits.
        assert!(matches!(
            s.reserve(50, 0, true, free(u64::MAX)),
            Err(StoreError::NoSpace)
        ));
        let mut r = s.reserve(50, 25, false, free(u64::MAX)).expect("credited");
        // Meanwhile a second replace of the same file is refused: 70 + 50 + 50 − 25 > 100.
        assert!(matches!(
            s.reserve(50, 25, false, free(u64::MAX)),
            Err(StoreError::NoSpace)
        ));
        r.wrote(50);
        r.commit(|| Ok::<_, ()>(Some(25))).expect("commit");
        assert_eq!(s.usage().map(|u| u.used), Some(95));
    }

    /// A failed rename gives the reservation back and leaves the usage as it was.
    #[test]
    fn a_failed_commit_changes_no_usage() {
        let s = space(Some(100), 0);
        let mut a = s.reserve(60, 0, true, free(u64::MAX)).expect("fits");
        a.wrote(60);
        assert_eq!(a.commit(|| Err::<Option<u64>, _>("exists")), Err("exists"));
        drop(a);
        assert_eq!(s.usage().map(|u| (u.used, u.reserved)), Some((0, 0)));
        assert_eq!(s.unwritten(), 0);
    }

    /// Reservations from many threads at once never promise more than there is.
    #[test]
    fn concurrent_reservations_never_overbook() {
        let s = space(Some(1000), 0);
        let granted = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..16)
                .map(|_| scope.spawn(|| s.reserve(100, 0, true, free(u64::MAX)).ok()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect::<Vec<_>>()
        });
        assert_eq!(granted.iter().flatten().count(), 10);
        assert_eq!(reserved(&s), 1000);
        drop(granted);
        assert_eq!((s.unwritten(), reserved(&s)), (0, 0));
    }

    /// The quota in files: the folder's regular files plus the uploads in progress that add
    /// one; a replace of a regular file adds none; a commit that replaced none counts one.
    #[test]
    fn quota_in_files_counts_files_and_the_uploads_that_add_one() {
        let s = Arc::new(Space::default());
        let quota = Quota {
            bytes: None,
            files: Some(3),
        };
        s.set_quota(quota, Held { bytes: 0, files: 1 });
        let files = |s: &Space| s.usage().map(|u| (u.files, u.reserved_files));
        let mut a = s.reserve(1, 0, true, free(u64::MAX)).expect("2 of 3");
        let b = s.reserve(1, 0, true, free(u64::MAX)).expect("3 of 3");
        assert!(matches!(
            s.reserve(1, 0, true, free(u64::MAX)),
            Err(StoreError::NoSpace)
        ));
        let mut r = s
            .reserve(1, 0, false, free(u64::MAX))
            .expect("a replace of a file adds none");
        assert_eq!(files(&s), Some((1, 2)));
        drop(b);
        a.wrote(1);
        a.commit(|| Ok::<_, ()>(None)).expect("commit");
        assert_eq!(files(&s), Some((2, 0)));
        r.wrote(1);
        r.commit(|| Ok::<_, ()>(Some(1))).expect("commit");
        assert_eq!(files(&s), Some((2, 0)), "replaced one");
        let mut c = s.reserve(5, 0, true, free(u64::MAX)).expect("3 of 3");
        c.wrote(5);
        c.commit(|| Ok::<_, ()>(None)).expect("commit");
        assert_eq!(files(&s), Some((3, 0)));
        assert!(matches!(
            s.reserve(1, 0, true, free(u64::MAX)),
            Err(StoreError::NoSpace)
        ));
        assert!(
            s.reserve(1, 0, false, free(u64::MAX)).is_ok(),
            "full: replaces still fit"
        );
        assert_eq!(
            s.usage().map(|u| u.used),
            Some(6),
            "octets counted without a limit"
        );
    }

    /// A folder reserves one entry and [`FOLDER_OCTETS`] against the quotas, with the
    /// uploads' counts, and nothing of the free space; its commit counts it, a failed or
    /// dropped one gives it back, its removal frees it.
    #[test]
    fn a_folder_counts_one_entry_and_its_octets() {
        let s = Arc::new(Space::default());
        s.set_quota(
            Quota {
                bytes: Some(10 + 2 * FOLDER_OCTETS),
                files: Some(3),
            },
            Held {
                bytes: 10,
                files: 1,
            },
        );
        let counts = |s: &Space| {
            s.usage()
                .map(|u| (u.used, u.files, u.reserved, u.reserved_files))
        };
        let mut a = s.reserve_folder().expect("fits");
        assert_eq!(s.unwritten(), 0, "a folder takes nothing of the free space");
        assert_eq!(counts(&s), Some((10, 1, FOLDER_OCTETS, 1)));
        // A failed mkdir gives the reservation back.
        let mut failed = s.reserve_folder().expect("fits beside a");
        assert_eq!(
            failed.commit(|| Err::<Option<u64>, _>("exists")),
            Err("exists")
        );
        drop(failed);
        assert_eq!(counts(&s), Some((10, 1, FOLDER_OCTETS, 1)));
        a.commit(|| Ok::<_, ()>(None)).expect("made");
        drop(a);
        assert_eq!(counts(&s), Some((10 + FOLDER_OCTETS, 2, 0, 0)));
        // An upload of one octet holds the rest of the octets: no folder fits beside it.
        let up = s
            .reserve(FOLDER_OCTETS, 0, true, free(u64::MAX))
            .expect("fits");
        assert!(matches!(s.reserve_folder(), Err(StoreError::NoSpace)));
        drop(up);
        let b = s.reserve_folder().expect("3 of 3 entries, octets exactly");
        assert!(matches!(
            s.reserve(0, 0, true, free(u64::MAX)),
            Err(StoreError::NoSpace)
        ));
        drop(b);
        assert_eq!(s.unwritten(), 0);
        // An rmdir frees what the folder counted.
        s.remove(|| Ok::<_, ()>(FOLDER_OCTETS)).expect("removed");
        assert_eq!(counts(&s), Some((10, 1, 0, 0)));
    }
}
