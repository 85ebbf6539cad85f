//! The local side of a client: where a download is written (`.ferry-part`, resumed or
//! not, renamed onto its destination once verified), what an upload reads, and what a
//! failure leaves behind. The protocol is [`crate::session`]; this is policy, shared by the
//! blocking client (ferry-sync) and the async one (ferry-async, which calls these blocking
//! functions on its runtime's blocking pool), so that either resumes the other's partial
//! downloads and both leave the same files behind.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::session::Outcome;
use ferry_wire::tree::TreeListing;
use ferry_wire::{Code, FileName, Hasher, Timestamp, TreePath};

use crate::{ClientError, GetOptions, GetReport, part_path};

/// Pieces in which a partial file is hashed before a resume.
const HASH_BUF: usize = 1 << 20;

/// A failed get, and whether it is worth trying once more from offset 0.
#[derive(Debug)]
pub struct GetFail {
    /// What went wrong.
    pub error: ClientError,
    /// A fresh download (offset 0) may succeed: the resumed one failed its check, or the
    /// file is now shorter than the partial download (GET-8).
    pub retry_from_zero: bool,
}

impl GetFail {
    /// The error; batch entry `i` joins `retry` when a fresh download may succeed.
    pub fn note_retry(self, i: usize, retry: &mut Vec<usize>) -> ClientError {
        if self.retry_from_zero {
            retry.push(i);
        }
        self.error
    }
}

/// The downloads of a batch to retry from offset 0 (noted by [`GetFail::note_retry`]), each
/// with its destination in `dest_dir` and its options (no resume); a retry that cannot have
/// one gets its error in `results` instead.
pub fn retry_targets(
    retry: Vec<usize>,
    dest_dir: &Path,
    names: &[FileName],
    opts: &GetOptions,
    results: &mut [Option<Result<GetReport, ClientError>>],
) -> Vec<(usize, PathBuf, GetOptions)> {
    let fresh = opts.from_zero();
    let mut targets = Vec::new();
    for i in retry {
        match crate::local_path(dest_dir, &names[i]) {
            Ok(dest) => targets.push((i, dest, fresh)),
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    targets
}

/// The listing of a `list` (the `tree` extension), from its outcome.
pub fn tree_listing(result: Result<Outcome, ClientError>) -> Result<TreeListing, ClientError> {
    match result? {
        Outcome::TreeListing(l) => Ok(l),
        other => Err(unexpected_outcome(&other)),
    }
}

/// The result of a `mkdir`, `rmdir`, `delete` or `rename` (the `tree` extension), from its
/// outcome.
pub fn tree_done(result: Result<Outcome, ClientError>) -> Result<(), ClientError> {
    match result? {
        Outcome::TreeDone => Ok(()),
        other => Err(unexpected_outcome(&other)),
    }
}

/// The results of a batch, in order: an item never attempted (the session ended first) is
/// [`ClientError::Disconnected`].
pub fn batch_results<T>(
    results: Vec<Option<Result<T, ClientError>>>,
) -> Vec<Result<T, ClientError>> {
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(ClientError::Disconnected("not attempted".into()))))
        .collect()
}

/// Whether the file system of `path` (its folder) has room for `needed` more octets, as far
/// as an unprivileged process may use (`statvfs`'s `f_bavail`). Where it cannot be known
/// (no such call on the platform), there is room.
fn check_room(path: &Path, needed: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let vfs = rustix::fs::statvfs(dir).map_err(io::Error::from)?;
        let free = vfs.f_bavail.saturating_mul(vfs.f_frsize);
        if needed > free {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "no room: the download needs {needed} octets, {} has {free} free",
                    dir.display()
                ),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, needed);
    Ok(())
}

/// The addresses `addr` resolves to, to try in turn; a failure to resolve is a
/// [`ClientError::Connect`] without an address.
pub fn resolve(addr: impl ToSocketAddrs) -> Result<Vec<SocketAddr>, ClientError> {
    addr.to_socket_addrs()
        .map(Iterator::collect)
        .map_err(|source| ClientError::Connect { addr: None, source })
}

/// Why connecting to every address of [`resolve`] failed: the last attempt's error, or that
/// the name resolved to no address.
pub fn connect_failed(last: Option<(SocketAddr, io::Error)>) -> ClientError {
    match last {
        Some((addr, source)) => ClientError::Connect {
            addr: Some(addr),
            source,
        },
        None => ClientError::Connect {
            addr: None,
            source: io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address"),
        },
    }
}

/// The greeting a new session accepted, from the result of its first operation
/// ([`crate::session::OpId`] 0).
pub fn connected(
    session: &crate::session::ClientSession,
    result: Result<Outcome, ClientError>,
) -> Result<ferry_wire::Greeting, ClientError> {
    match result {
        Ok(Outcome::Connected) => {}
        Ok(other) => return Err(unexpected_outcome(&other)),
        Err(e) => return Err(e),
    }
    session.greeting().cloned().ok_or(ClientError::Closed {
        outcome_unknown: false,
    })
}

/// Logs the entries of a listing that were skipped because their names are not valid for
/// this client (NAME-14), as a client's `dir` does before it returns the rest.
pub fn log_skipped(listing: &ferry_wire::Listing) {
    for s in &listing.skipped {
        tracing::warn!(
            name = %crate::visible(&String::from_utf8_lossy(&s.name)),
            error = %s.error,
            "listing entry skipped"
        );
    }
}

impl From<ClientError> for GetFail {
    fn from(error: ClientError) -> Self {
        Self {
            error,
            retry_from_zero: false,
        }
    }
}

/// A download to a path, prepared before its request is sent.
#[derive(Debug)]
pub struct GetJob {
    /// The file's name on the server (the last name of its path).
    pub name: FileName,
    /// Its path on the server (the `tree` extension; a one-name path is a ferry/1 name).
    pub path: TreePath,
    /// Where the verified file goes.
    pub dest: PathBuf,
    /// The partial file (`dest` + [`crate::PART_SUFFIX`]).
    pub part: PathBuf,
    /// Where the download starts: the length of a partial file it resumes, or 0.
    pub offset: u64,
    /// The digest state of the octets before `offset`.
    pub prefix: Hasher,
    /// Modification time of the partial file when it was hashed (resume only).
    part_mtime: Option<SystemTime>,
}

impl GetJob {
    /// Finds the partial file (hashing its content, for `resume`) or removes a stale one.
    /// Hashing happens before the request goes out, so the server never waits for it.
    pub fn prepare(name: &FileName, dest: PathBuf, opts: &GetOptions) -> Result<Self, ClientError> {
        Self::prepare_path(&TreePath::from(name.clone()), dest, opts)
    }

    /// [`GetJob::prepare`] for a file named by its path on the server (the `tree` extension).
    pub fn prepare_path(
        path: &TreePath,
        dest: PathBuf,
        opts: &GetOptions,
    ) -> Result<Self, ClientError> {
        let part = part_path(&dest)?;
        let mut job = Self {
            name: path.split_last().1,
            path: path.clone(),
            dest,
            part,
            offset: 0,
            prefix: Hasher::new(),
            part_mtime: None,
        };
        if opts.resume {
            if let Some(mut file) = open_partial(&job.part)? {
                let mut buf = vec![0; HASH_BUF];
                loop {
                    match file.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            job.prefix.update(&buf[..n]);
                            job.offset += n as u64;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(ClientError::local(&job.part, e)),
                    }
                }
                job.part_mtime = file.metadata().and_then(|m| m.modified()).ok();
            }
        } else {
            remove_if_exists(&job.part)?;
        }
        Ok(job)
    }

    /// The file to write the payload to: the partial file, at its end, or a new one — if
    /// the destination's file system has room for the `size − offset` octets still to come
    /// (GET-14; refused with [`io::ErrorKind::StorageFull`] otherwise, before anything is
    /// written).
    pub fn open_sink(&self, size: u64) -> io::Result<File> {
        check_room(&self.part, size.saturating_sub(self.offset))?;
        if self.offset == 0 {
            return OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&self.part);
        }
        let mut file = open_partial(&self.part)
            .map_err(|e| io::Error::other(e.to_string()))?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the partial file vanished"))?;
        let meta = file.metadata()?;
        if meta.len() != self.offset || meta.modified().ok() != self.part_mtime {
            return Err(io::Error::other(
                "the partial file changed during the download",
            ));
        }
        file.seek(io::SeekFrom::End(0))?;
        Ok(file)
    }

    /// After a failure: removes the partial file unless it may hold good octets to resume
    /// from.
    pub fn discard(&self, keep: bool) {
        let empty = fs::symlink_metadata(&self.part)
            .map(|m| m.len() == 0)
            .unwrap_or(true);
        if !keep || empty {
            let _ = fs::remove_file(&self.part);
        }
    }
}

/// Opens an existing partial file for reading and writing, refusing anything that is not a
/// regular file (a symbolic link planted at the `.ferry-part` name is never followed).
fn open_partial(part: &Path) -> Result<Option<File>, ClientError> {
    let meta = match fs::symlink_metadata(part) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ClientError::local(part, e)),
    };
    if !meta.is_file() {
        let e = io::Error::other("exists and is not a regular file; remove it to download");
        return Err(ClientError::local(part, e));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(part)
        .map_err(|e| ClientError::local(part, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let opened = file.metadata().map_err(|e| ClientError::local(part, e))?;
        if (opened.dev(), opened.ino()) != (meta.dev(), meta.ino()) {
            let e = io::Error::other("was replaced while it was being opened");
            return Err(ClientError::local(part, e));
        }
    }
    Ok(Some(file))
}

fn remove_if_exists(path: &Path) -> Result<(), ClientError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ClientError::local(path, e)),
    }
}

/// A local file to upload, its size, and a check that it still has that size and
/// modification time (run before the `end` trailer, PUT-20).
pub type Source = (File, u64, Box<dyn FnMut() -> io::Result<bool> + Send>);

/// Opens a local file to upload: refuses what is not a regular file; returns the file, its
/// size and its unchanged check ([`Source`]).
pub fn open_source(path: &Path) -> Result<Source, ClientError> {
    let file = File::open(path).map_err(|e| ClientError::local(path, e))?;
    let meta = file.metadata().map_err(|e| ClientError::local(path, e))?;
    if !meta.is_file() {
        return Err(ClientError::local(
            path,
            io::Error::other("not a regular file"),
        ));
    }
    let size = meta.len();
    let mtime = meta.modified().ok();
    let probe = file.try_clone().map_err(|e| ClientError::local(path, e))?;
    let unchanged = move || -> io::Result<bool> {
        let m = probe.metadata()?;
        Ok(m.len() == size && m.modified().ok() == mtime)
    };
    Ok((file, size, Box::new(unchanged)))
}

/// `t` as a [`SystemTime`], if the platform can represent it (years 0000 to 9999 do not all
/// fit everywhere; `Timestamp::to_system_time` would panic on those that do not).
fn system_time(t: Timestamp) -> Option<SystemTime> {
    let secs = Duration::from_secs(t.unix().unsigned_abs());
    if t.unix() >= 0 {
        std::time::UNIX_EPOCH.checked_add(secs)
    } else {
        std::time::UNIX_EPOCH.checked_sub(secs)
    }
}

/// Where a download to a path stands when its operation is done.
#[derive(Debug)]
pub enum PartState {
    /// No `ok get` came: the reply was an error (or the session ended before it).
    Unopened,
    /// The partial file could not be opened: the payload was read and dropped.
    OpenFailed,
    /// The payload went to the partial file.
    Open(BufWriter<File>),
}

/// Applies the outcome of a get to its partial file: renames it onto the destination once
/// verified, or keeps or removes it after a failure (GET-12, GET-13).
pub fn finish_get(
    job: GetJob,
    part: PartState,
    result: Result<Outcome, ClientError>,
    opts: &GetOptions,
) -> Result<GetReport, GetFail> {
    let w = match part {
        PartState::Unopened => {
            return match result {
                Err(ClientError::Refused(e)) if e.code == Code::BAD_OFFSET && job.offset > 0 => {
                    // GET-8: the file is now shorter than the partial download.
                    let _ = fs::remove_file(&job.part);
                    Err(GetFail {
                        error: ClientError::Refused(e),
                        retry_from_zero: opts.retry_from_zero,
                    })
                }
                Err(e) => Err(e.into()),
                Ok(other) => Err(unexpected_outcome(&other).into()),
            };
        }
        PartState::OpenFailed => {
            return match result {
                Ok(Outcome::Discarded(e)) => Err(ClientError::local(&job.part, e).into()),
                Err(e) => Err(e.into()),
                Ok(other) => Err(unexpected_outcome(&other).into()),
            };
        }
        PartState::Open(w) => w,
    };
    let flushed = w.into_inner().map_err(io::IntoInnerError::into_error);
    match (result, flushed) {
        (
            Ok(Outcome::Got {
                size,
                mtime,
                digest,
            }),
            Ok(file),
        ) => {
            if opts.set_mtime {
                // Cosmetic: a time the platform or file system cannot store is skipped.
                if let Some(t) = system_time(mtime) {
                    let _ = file.set_modified(t);
                }
            }
            drop(file);
            // The verified .ferry-part stays if the rename fails: a resume then costs
            // only the digest check.
            fs::rename(&job.part, &job.dest).map_err(|e| ClientError::local(&job.dest, e))?;
            Ok(GetReport {
                name: job.name,
                path: Some(job.dest),
                size,
                mtime,
                digest,
                resumed_from: job.offset,
            })
        }
        (Ok(Outcome::Discarded(e)), _) | (Ok(Outcome::Got { .. }), Err(e)) => {
            job.discard(false);
            Err(ClientError::local(&job.part, e).into())
        }
        (Ok(other), _) => {
            job.discard(false);
            Err(unexpected_outcome(&other).into())
        }
        (Err(error @ ClientError::Corrupt { .. }), _) => {
            job.discard(false);
            let retry_from_zero = job.offset > 0 && opts.retry_from_zero;
            Err(GetFail {
                error,
                retry_from_zero,
            })
        }
        (Err(error), _) => {
            // GET-13: after `abort 430` the file changed while it was read; its octets
            // are never kept for a resume. Other failures may keep them (GET-12).
            let changed = matches!(&error, ClientError::Refused(e) if e.code == Code::CHANGED);
            job.discard(opts.keep_partial && !changed);
            Err(error.into())
        }
    }
}

/// The report of a download into a caller's writer, from its outcome: verified, or the
/// writer failed (the payload was read and dropped, the session goes on).
pub fn writer_report(name: &FileName, outcome: Outcome) -> Result<GetReport, ClientError> {
    match outcome {
        Outcome::Got {
            size,
            mtime,
            digest,
        } => Ok(GetReport {
            name: name.clone(),
            path: None,
            size,
            mtime,
            digest,
            resumed_from: 0,
        }),
        Outcome::Discarded(source) => Err(ClientError::Local { path: None, source }),
        other => Err(unexpected_outcome(&other)),
    }
}

/// The report of a put from its operation's outcome (any other outcome is a bug).
pub fn put_report(o: Outcome) -> Result<crate::PutReport, ClientError> {
    match o {
        Outcome::Put(report) => Ok(report),
        other => Err(unexpected_outcome(&other)),
    }
}

/// An outcome that does not belong to the operation (a bug, not the server's fault).
pub fn unexpected_outcome(o: &Outcome) -> ClientError {
    ClientError::Io(io::Error::other(format!(
        "internal error: unexpected outcome {o:?}"
    )))
}

/// Fills `buf` from `src` until it is full or `src` ends; returns how much it read.
pub fn read_full(src: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GET-14: a download larger than the destination's free space is refused, with the
    /// kind a caller can match on; one that fits is not.
    #[cfg(unix)]
    #[test]
    fn room_is_checked_against_the_destination_folder() {
        let dir = std::env::temp_dir();
        let part = dir.join("room-check.ferry-part");
        assert!(check_room(&part, 0).is_ok());
        assert!(check_room(&part, 1).is_ok());
        let e = check_room(&part, u64::MAX).expect_err("no file system has that much room");
        assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
        assert!(e.to_string().contains(&dir.display().to_string()), "{e}");
    }
}
