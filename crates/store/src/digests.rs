//! Digests of files the server has hashed whole, kept in memory and keyed to the file's
//! identity, so that a resumed or repeated get does not hash the file again (#14 item 3: a
//! `get SIZE-1 NAME` otherwise makes the server read and hash the whole file to send one
//! octet).
//!
//! **Identity.** Device, inode, size, modification time and status-change time with
//! nanoseconds, from `fstat` of the *opened* file (so the digest belongs to what was opened,
//! not to whatever the name points at). Any write, truncation, `utimensat`, rename over the
//! name or new file under it changes at least one of them: the status-change time (ctime)
//! is set by the kernel to the current time on every change of content or metadata, and no
//! user can set it.
//!
//! **Racy timestamps.** Timestamps come from a coarse clock (a kernel tick; whole seconds on
//! some file systems), so a write in the same tick as the previous change leaves the
//! identity as it was. A digest is therefore remembered only for a file whose ctime is at
//! least [`MIN_AGE`] older than the moment it was opened (the same rule as git's "racily
//! clean" entries): every read of the hash came after the tick of the last change, and any
//! later change sets a later ctime.
//!
//! **What it cannot see** (like git, rsync or make, which trust the same timestamps): writes
//! through a shared memory mapping to a page already dirty change the content without
//! touching the timestamps until the page is written back. A digest remembered in between is
//! stale for that file; a client then fails the digest check (GET-7) and starts over, or, if
//! the changed part lies within its prefix, keeps the version it had. GET-9 has the same
//! blind spot without the cache.
//!
//! **Where.** In the server's memory, one cache per served folder ([`crate::Root`]) shared by
//! all its sessions: nothing on disk that a client could name or reach, or that an operator
//! must clean; it is lost at a restart, which costs one hashing per file.
//!
//! **Bound.** At most [`CAPACITY`] entries of ~80 octets; the least recently used goes first.
//! Files smaller than [`MIN_SIZE`] are not remembered: hashing them costs no more than
//! sending them, and they must not push out the digests of large files.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_wire::Digest;
use rustix::fs::Stat;

/// How many digests a served folder remembers.
pub const CAPACITY: usize = 4096;

/// The smallest file whose digest is remembered: one chunk (`MAX_CHUNK`), the most a get of
/// a smaller file reads beyond what it sends.
pub const MIN_SIZE: u64 = 1 << 20;

/// How much older than the open a file's last change (ctime) must be for its digest to be
/// remembered: more than a coarse timestamp tick, and than the 2 s granularity of the
/// coarsest file systems.
pub const MIN_AGE: Duration = Duration::from_secs(2);

/// What identifies a file's content: device, inode, size, mtime and ctime with nanoseconds
/// (from `fstat` of the opened file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Identity {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size in octets.
    pub size: u64,
    /// Modification time: seconds, nanoseconds.
    pub mtime: (i64, u32),
    /// Status-change time: seconds, nanoseconds.
    pub ctime: (i64, u32),
}

impl Identity {
    /// The identity in a `stat` result.
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)] // field types differ between targets
    pub fn of(st: &Stat) -> Self {
        Self {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime: (i64::from(st.st_mtime), st.st_mtime_nsec as u32),
            ctime: (i64::from(st.st_ctime), st.st_ctime_nsec as u32),
        }
    }

    /// Whether a digest of the file hashed after `opened` may be remembered: large enough,
    /// and its last change at least [`MIN_AGE`] before `opened` (see the module
    /// documentation).
    pub fn settled(&self, opened: SystemTime) -> bool {
        if self.size < MIN_SIZE {
            return false;
        }
        let Ok(opened) = opened.duration_since(UNIX_EPOCH) else {
            return false;
        };
        let Ok(secs) = u64::try_from(self.ctime.0) else {
            // A change before 1970: only a clock set far back does that; do not trust it.
            return false;
        };
        let changed = Duration::new(secs, self.ctime.1.min(999_999_999));
        changed + MIN_AGE <= opened
    }
}

/// The digests of one served folder, keyed to file identities; see the module documentation.
#[derive(Debug, Default)]
pub struct DigestCache {
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    /// By (device, inode): the full identity, the digest, the last use.
    map: HashMap<(u64, u64), (Identity, Digest, u64)>,
    /// A counter of uses (for least recently used).
    tick: u64,
}

impl DigestCache {
    /// The digest remembered for exactly this identity. An entry for the same inode with
    /// another identity (the file changed) is dropped.
    pub fn get(&self, id: &Identity) -> Option<Digest> {
        let mut e = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        e.tick += 1;
        let tick = e.tick;
        let key = (id.dev, id.ino);
        match e.map.get_mut(&key) {
            Some((known, digest, used)) if known == id => {
                *used = tick;
                Some(*digest)
            }
            Some(_) => {
                e.map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remembers `digest` for `id`, replacing what the inode had; when full, the least
    /// recently used entry goes.
    pub fn insert(&self, id: Identity, digest: Digest) {
        let mut e = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        e.tick += 1;
        let tick = e.tick;
        let key = (id.dev, id.ino);
        if !e.map.contains_key(&key) && e.map.len() >= CAPACITY {
            let oldest = e.map.iter().min_by_key(|(_, v)| v.2).map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                e.map.remove(&oldest);
            }
        }
        e.map.insert(key, (id, digest, tick));
    }

    /// How many digests are remembered.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ino: u64) -> Identity {
        Identity {
            dev: 7,
            ino,
            size: 5 << 20,
            mtime: (1_700_000_000, 5),
            ctime: (1_700_000_000, 6),
        }
    }

    fn digest(n: u8) -> Digest {
        Digest::from_bytes([n; 16])
    }

    #[test]
    fn a_digest_is_found_for_exactly_its_identity() {
        let cache = DigestCache::default();
        cache.insert(id(1), digest(1));
        assert_eq!(cache.get(&id(1)), Some(digest(1)));
        assert_eq!(cache.get(&id(2)), None);
        assert_eq!(cache.get(&Identity { dev: 8, ..id(1) }), None);
    }

    #[test]
    fn any_change_of_size_mtime_or_ctime_invalidates_the_entry() {
        let changes = [
            Identity {
                size: id(1).size + 1,
                ..id(1)
            },
            Identity {
                mtime: (1_700_000_000, 4),
                ..id(1)
            },
            Identity {
                mtime: (1_700_000_001, 5),
                ..id(1)
            },
            Identity {
                ctime: (1_700_000_000, 7),
                ..id(1)
            },
            Identity {
                ctime: (1_700_000_001, 6),
                ..id(1)
            },
        ];
        for changed in changes {
            let cache = DigestCache::default();
            cache.insert(id(1), digest(1));
            assert_eq!(cache.get(&changed), None, "{changed:?}");
            // The stale entry is gone: not even the old identity finds it again.
            assert!(cache.is_empty());
            assert_eq!(cache.get(&id(1)), None);
        }
    }

    #[test]
    fn a_new_digest_for_the_inode_replaces_the_old_one() {
        let cache = DigestCache::default();
        cache.insert(id(1), digest(1));
        let changed = Identity {
            ctime: (1_700_000_009, 0),
            ..id(1)
        };
        cache.insert(changed, digest(2));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(&changed), Some(digest(2)));
        assert_eq!(cache.get(&id(1)), None);
    }

    #[test]
    fn the_cache_is_bounded_and_drops_the_least_recently_used() {
        let cache = DigestCache::default();
        for ino in 0..CAPACITY as u64 {
            cache.insert(id(ino), digest(1));
        }
        // Inode 0 is used again: inode 1 is now the least recently used.
        assert_eq!(cache.get(&id(0)), Some(digest(1)));
        cache.insert(id(1_000_000), digest(2));
        assert_eq!(cache.len(), CAPACITY);
        assert_eq!(cache.get(&id(1)), None);
        assert_eq!(cache.get(&id(0)), Some(digest(1)));
        assert_eq!(cache.get(&id(1_000_000)), Some(digest(2)));
        for ino in 0..100 {
            cache.insert(id(10_000_000 + ino), digest(3));
        }
        assert_eq!(cache.len(), CAPACITY);
    }

    #[test]
    fn only_large_files_changed_long_enough_before_the_open_are_remembered() {
        let changed = UNIX_EPOCH + Duration::new(1_700_000_000, 6);
        let file = id(1);
        assert!(file.settled(changed + MIN_AGE));
        assert!(file.settled(changed + MIN_AGE + Duration::from_secs(100)));
        // Changed within MIN_AGE of the open: a write in the same tick could follow unseen.
        assert!(!file.settled(changed + MIN_AGE - Duration::from_nanos(1)));
        assert!(!file.settled(changed));
        // A clock set back: the change is "in the future".
        assert!(!file.settled(changed - Duration::from_secs(10)));
        let small = Identity {
            size: MIN_SIZE - 1,
            ..file
        };
        assert!(!small.settled(changed + Duration::from_secs(100)));
        let before_1970 = Identity {
            ctime: (-5, 0),
            ..file
        };
        assert!(!before_1970.settled(changed));
    }
}
