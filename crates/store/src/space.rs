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
//!   (`reserved`) plus the new SIZE must stay within the quota; a `replace` is credited the
//!   size of the file it replaces, which its commit frees. `used` is the sum of the sizes of
//!   the regular files directly inside the folder when it was opened ([`scan`]), kept up to
//!   date by the commits; changes made by other programs are seen at the next start.
//!
//! A reservation is given back when the upload is committed ([`Reservation::commit`]) or
//! dropped (a failed, aborted or abandoned upload), so no path keeps it.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rustix::fs::{AtFlags, Dir, FileType, statat};
use rustix::io::Errno;

use crate::StoreError;

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
    /// The quota, when the folder has one.
    quota: Option<Quota>,
}

/// A quota and what the folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// The most octets the folder's files may hold.
    pub limit: u64,
    /// What the folder's regular files hold (the sum of their sizes).
    pub used: u64,
    /// What the uploads in progress were promised (the sum of their SIZEs).
    pub reserved: u64,
}

#[derive(Debug, Clone, Copy)]
struct Quota {
    limit: u64,
    used: u64,
}

impl Space {
    fn lock(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the quota (`None`: no quota) and what the folder holds now.
    pub(crate) fn set_quota(&self, quota: Option<u64>, used: u64) {
        self.lock().quota = quota.map(|limit| Quota { limit, used });
    }

    /// The quota and the usage, when the folder has a quota.
    pub(crate) fn usage(&self) -> Option<Usage> {
        let ledger = self.lock();
        ledger.quota.map(|q| Usage {
            limit: q.limit,
            used: q.used,
            reserved: ledger.reserved,
        })
    }

    /// Octets promised to the uploads in progress and not written yet.
    pub(crate) fn unwritten(&self) -> u64 {
        self.unwritten.load(Ordering::SeqCst)
    }

    /// Reserves `size` octets for an upload, or [`StoreError::NoSpace`] when they do not fit:
    /// `available()` (the file system's free space, asked with the ledger locked, so that two
    /// uploads never both take the same octets) minus what other uploads have not written yet
    /// must be at least `size`, and with a quota, the folder's files plus every reservation
    /// plus `size`, less `credit` (the size of the file a `replace` will free), must be
    /// within it.
    pub(crate) fn reserve(
        self: &Arc<Self>,
        size: u64,
        credit: u64,
        available: impl FnOnce() -> Result<u64, StoreError>,
    ) -> Result<Reservation, StoreError> {
        let mut ledger = self.lock();
        let free = available()?.saturating_sub(self.unwritten());
        if size > free {
            return Err(StoreError::NoSpace);
        }
        if let Some(q) = ledger.quota {
            let after = u128::from(q.used) + u128::from(ledger.reserved) + u128::from(size);
            if after > u128::from(q.limit) + u128::from(credit) {
                return Err(StoreError::NoSpace);
            }
        }
        ledger.reserved = ledger.reserved.saturating_add(size);
        self.unwritten.fetch_add(size, Ordering::SeqCst);
        Ok(Reservation {
            space: Arc::clone(self),
            size,
            written: 0,
            released: false,
        })
    }
}

/// The space promised to one upload, given back when it is committed or dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    space: Arc<Space>,
    size: u64,
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

    /// Runs `rename` (which makes the upload visible and returns the size of the file it
    /// replaced, 0 for none) with the ledger locked, and on success moves the upload's SIZE
    /// from the reservations to the folder's files, less what it replaced. Locked, so that
    /// two commits of one name see each other's result, and a check never sees the upload
    /// in neither place. On failure the reservation is given back when dropped.
    pub(crate) fn commit<E>(&mut self, rename: impl FnOnce() -> Result<u64, E>) -> Result<(), E> {
        let space = Arc::clone(&self.space);
        let mut ledger = space.lock();
        let freed = rename()?;
        if let Some(q) = &mut ledger.quota {
            q.used = q.used.saturating_add(self.size).saturating_sub(freed);
        }
        self.release(&mut ledger);
        Ok(())
    }

    fn release(&mut self, ledger: &mut Ledger) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        ledger.reserved = ledger.reserved.saturating_sub(self.size);
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

/// What the folder holds for the quota: the sizes (`st_size`) of the regular files directly
/// inside it, each name counted (a file with several hard links in the folder counts once per
/// name), whatever the name (dotfiles and names no request can reach count too). Not counted:
/// folders and what is in them (the staging area among them: uploads in progress count by
/// their reservations), symbolic links and special files. A file that disappears during the
/// scan is left out.
pub(crate) fn scan(dir: &OwnedFd) -> io::Result<u64> {
    let mut used = 0u64;
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        if !matches!(entry.file_type(), FileType::RegularFile | FileType::Unknown) {
            continue;
        }
        match statat(dir, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
                used = used.saturating_add(crate::stat_size(&st));
            }
            Ok(_) | Err(Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(quota: Option<u64>, used: u64) -> Arc<Space> {
        let s = Arc::new(Space::default());
        s.set_quota(quota, used);
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
        let mut a = s.reserve(60, 0, free(100)).expect("fits");
        assert_eq!(s.unwritten(), 60);
        assert!(matches!(
            s.reserve(41, 0, free(100)),
            Err(StoreError::NoSpace)
        ));
        let b = s.reserve(40, 0, free(100)).expect("fits exactly");
        drop(b);
        // `a` writes 50: the file system has 50 octets less, `a` is owed 10 more.
        a.wrote(50);
        assert_eq!(s.unwritten(), 10);
        assert!(s.reserve(40, 0, free(50)).is_ok());
        assert!(matches!(
            s.reserve(41, 0, free(50)),
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
        let mut a = s.reserve(80, 0, free(1000)).expect("fits the quota");
        a.wrote(30);
        assert!(matches!(
            s.reserve(11, 0, free(1000)),
            Err(StoreError::NoSpace)
        ));
        drop(a);
        assert_eq!((s.unwritten(), reserved(&s)), (0, 0));
        assert_eq!(s.usage().map(|u| u.used), Some(10), "nothing was committed");
        assert!(s.reserve(90, 0, free(1000)).is_ok());
    }

    /// The quota counts the folder's files and every upload in progress; a commit moves the
    /// upload's SIZE to the files, less what it replaced; a replace is credited the size of
    /// the file it replaces.
    #[test]
    fn quota_counts_files_and_reservations_and_commits_move_them() {
        let s = space(Some(100), 40);
        let mut a = s.reserve(30, 0, free(u64::MAX)).expect("40 + 30 fits");
        assert!(matches!(
            s.reserve(31, 0, free(u64::MAX)),
            Err(StoreError::NoSpace)
        ));
        a.wrote(30);
        a.commit(|| Ok::<_, ()>(0)).expect("commit");
        assert_eq!(
            s.usage(),
            Some(Usage {
                limit: 100,
                used: 70,
                reserved: 0
            })
        );
        drop(a); // a committed reservation is not given back twice
        assert_eq!((s.unwritten(), reserved(&s)), (0, 0));
        // A replace of a 25-octet file by 50 octets: 70 + 50 − 25 = 95 fits.
        assert!(matches!(
            s.reserve(50, 0, free(u64::MAX)),
            Err(StoreError::NoSpace)
        ));
        let mut r = s.reserve(50, 25, free(u64::MAX)).expect("credited");
        // Meanwhile a second replace of the same file is refused: 70 + 50 + 50 − 25 > 100.
        assert!(matches!(
            s.reserve(50, 25, free(u64::MAX)),
            Err(StoreError::NoSpace)
        ));
        r.wrote(50);
        r.commit(|| Ok::<_, ()>(25)).expect("commit");
        assert_eq!(s.usage().map(|u| u.used), Some(95));
    }

    /// A failed rename gives the reservation back and leaves the usage as it was.
    #[test]
    fn a_failed_commit_changes_no_usage() {
        let s = space(Some(100), 0);
        let mut a = s.reserve(60, 0, free(u64::MAX)).expect("fits");
        a.wrote(60);
        assert_eq!(a.commit(|| Err::<u64, _>("exists")), Err("exists"));
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
                .map(|_| scope.spawn(|| s.reserve(100, 0, free(u64::MAX)).ok()))
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
}
