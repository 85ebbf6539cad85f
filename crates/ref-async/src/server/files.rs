//! The files of one session on the runtime's blocking pool, overlapped with the network:
//! a get's file read one piece ahead of the sender ([`Reader`]), a put's payload written one
//! piece behind the receiver ([`Writer`]). Each piece is one trip to the blocking pool; a
//! small file costs one trip for its get (open, read, re-check) and two for its put (begin;
//! write, fsync and rename).

use std::io;
use std::mem;
use std::sync::Arc;

use ferry_proto::server::{FileMeta, ServerSession};
use ferry_store::{ReadFile, Root, StoreError, Upload};
use ferry_wire::limits::MAX_CHUNK;
use ferry_wire::{Code, Digest, HEAD_ROOM, PutMode, TreePath};

use crate::runtime::{BoxFuture, Runtime};

/// Largest piece written to a staging file in one trip.
const WRITE_PIECE: usize = 1 << 20;

// ------------------------------------------------------------------ gets ---

/// One piece of a file, read on the blocking pool.
struct Piece {
    /// Where it starts in the file.
    at: u64,
    /// How many octets were asked for.
    asked: usize,
    /// `[HEAD_ROOM | data …]`.
    buf: Vec<u8>,
    read: io::Result<usize>,
    /// When the piece reached the file's announced end: whether the file is unchanged since
    /// it was opened (GET-9), checked right after the read in the same trip.
    unchanged: Option<io::Result<bool>>,
}

/// Reads `asked` octets at `at` into a buffer after [`HEAD_ROOM`]: a blocking call.
fn read_piece(file: &ReadFile, at: u64, asked: usize, mut buf: Vec<u8>) -> Piece {
    if buf.len() < HEAD_ROOM + asked {
        buf.resize(HEAD_ROOM + asked, 0);
    }
    let read = file.read_at(&mut buf[HEAD_ROOM..HEAD_ROOM + asked], at);
    let unchanged = match &read {
        Ok(n) if at + *n as u64 == file.size => Some(file.unchanged()),
        _ => None,
    };
    Piece {
        at,
        asked,
        buf,
        read,
        unchanged,
    }
}

/// The length of the piece to read ahead at `pos`: what the session asks for once it sends
/// chunks (the reads of a resumed get's prefix may ask less; the rest is read again).
fn guess(size: u64, pos: u64) -> usize {
    (size - pos).min(u64::from(MAX_CHUNK)) as usize
}

/// The open file of a get, read one piece ahead of what the session has asked for.
pub(super) struct Reader<R: Runtime> {
    rt: R,
    file: Arc<ReadFile>,
    /// Where the session's next read starts.
    pos: u64,
    /// The piece being read ahead, or read at the open.
    ahead: Option<BoxFuture<io::Result<Piece>>>,
    ready: Option<Piece>,
    /// A buffer the session gave back, for the next piece.
    spare: Option<Vec<u8>>,
    /// The re-check done with the last piece.
    unchanged: Option<io::Result<bool>>,
}

impl<R: Runtime> Reader<R> {
    /// Opens `name` and reads its first piece, in one trip: the file, its size, mtime and
    /// digest if the folder's digest cache knows it. The first piece starts at 0, or at the
    /// get's `offset` when the digest is known (the session then reads from there).
    pub(super) async fn open(
        rt: &R,
        root: &Root,
        name: TreePath,
        offset: u64,
    ) -> Result<(Self, FileMeta), Code> {
        let root = root.clone();
        let trip = rt.unblock(move || {
            let file = root.open_read(&name)?;
            let at = match file.digest {
                Some(_) => offset.min(file.size),
                None => 0,
            };
            let piece = read_piece(&file, at, guess(file.size, at), Vec::new());
            Ok::<_, StoreError>((file, piece))
        });
        let (file, piece) = match trip.await {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => return Err(e.report("opening a file for get")),
            Err(e) => return Err(StoreError::report_io(&e, "opening a file for get")),
        };
        let meta = FileMeta {
            size: file.size,
            mtime: file.mtime,
            digest: file.digest,
        };
        let reader = Self {
            rt: rt.clone(),
            pos: piece.at,
            file: Arc::new(file),
            ahead: None,
            ready: Some(piece),
            spare: None,
            unchanged: None,
        };
        Ok((reader, meta))
    }

    /// [`ferry_proto::server::Action::ReadFile`]: hands the session `len` octets at `at`
    /// (swapping the piece's buffer in) and starts reading the piece after them.
    pub(super) async fn read(&mut self, session: &mut ServerSession, at: u64, len: usize) {
        self.pos = at;
        let mut piece = match self.ready.take() {
            Some(p) => Ok(p),
            None => match self.ahead.take() {
                Some(ahead) => ahead.await,
                None => Err(io::Error::other("nothing read ahead")),
            },
        };
        let usable = matches!(&piece, Ok(p) if p.at == self.pos && (p.asked >= len));
        if !usable {
            // A guess that does not fit this read (a resumed get's prefix): read it now.
            let file = Arc::clone(&self.file);
            let (at, buf) = (self.pos, self.spare.take().unwrap_or_default());
            piece = self
                .rt
                .unblock(move || read_piece(&file, at, len, buf))
                .await;
        }
        let mut piece = match piece {
            Ok(p) => p,
            Err(e) => return session.file_read(Err(StoreError::report_io(&e, "read"))),
        };
        if piece.buf.len() > 2 * (HEAD_ROOM + len) {
            // The session sends smaller chunks than the first piece guessed (its memory
            // budget is spent): the buffer it keeps is no larger than they are.
            piece.buf.truncate(HEAD_ROOM + len);
            piece.buf.shrink_to_fit();
        }
        let n = match piece.read {
            Ok(n) => n,
            Err(e) => return session.file_read(Err(StoreError::report_io(&e, "read"))),
        };
        let got = n.min(len);
        self.pos += got as u64;
        self.unchanged = if got == n { piece.unchanged } else { None };
        let back = session.swap_file_buffer(piece.buf);
        session.file_read(Ok(got));
        self.spare = Some(back);
        if got == len && self.pos < self.file.size {
            let file = Arc::clone(&self.file);
            // The next piece as long as this one (the session's chunks), at most the rest.
            let (at, asked) = (self.pos, guess(self.file.size, self.pos).min(len));
            let buf = self.spare.take().unwrap_or_default();
            let trip = self.rt.unblock(move || read_piece(&file, at, asked, buf));
            self.ahead = Some(Box::pin(trip));
        }
    }

    /// [`ferry_proto::server::Action::CheckUnchanged`]: the re-check done with the last
    /// piece, or one trip now.
    pub(super) async fn check(&mut self) -> Result<bool, Code> {
        let unchanged = match self.unchanged.take() {
            Some(u) => u,
            None => {
                let file = Arc::clone(&self.file);
                self.rt
                    .unblock(move || file.unchanged())
                    .await
                    .and_then(|u| u)
            }
        };
        unchanged.map_err(|e| StoreError::report_io(&e, "fstat"))
    }

    /// [`ferry_proto::server::Action::RememberDigest`]: into the folder's digest cache, if
    /// the check found the file's identity unchanged (no system call: done in place).
    pub(super) fn remember(&self, root: &Root, digest: Digest) {
        root.remember_digest(&self.file, digest);
    }
}

// ------------------------------------------------------------------ puts ---

/// What a blocking write hands back.
type Written = (Upload, Vec<u8>, Result<(), StoreError>);

/// An upload in progress: payload octets collect in a piece of up to 1 MiB, which is written
/// to the staging file on the blocking pool while the next one is received. A failed write is
/// reported by the next call that can report it; the upload is gone then.
pub(super) struct Writer<R: Runtime> {
    rt: R,
    /// The upload, when no write is in flight.
    upload: Option<Upload>,
    buf: Vec<u8>,
    filled: usize,
    /// Octets of the payload not yet taken (a piece that holds the last of them waits for
    /// the commit, which writes it in its own trip).
    left: u64,
    spare: Option<Vec<u8>>,
    pending: Option<BoxFuture<io::Result<Written>>>,
}

impl<R: Runtime> Writer<R> {
    /// Starts an upload: one trip.
    pub(super) async fn begin(
        rt: &R,
        root: &Root,
        name: TreePath,
        size: u64,
        mode: PutMode,
    ) -> Result<Self, Code> {
        let root = root.clone();
        let upload = match rt
            .unblock(move || root.begin_upload(&name, size, mode))
            .await
        {
            Ok(Ok(upload)) => upload,
            Ok(Err(e)) => return Err(e.report("starting an upload")),
            Err(e) => return Err(StoreError::report_io(&e, "starting an upload")),
        };
        let piece = size.clamp(1, WRITE_PIECE as u64) as usize;
        Ok(Self {
            rt: rt.clone(),
            upload: Some(upload),
            buf: vec![0; piece],
            filled: 0,
            left: size,
            spare: None,
            pending: None,
        })
    }

    /// Free room in the current piece, at most `max` octets (never empty: a full piece is
    /// written at once).
    pub(super) fn space(&mut self, max: usize) -> &mut [u8] {
        let end = self.buf.len().min(self.filled + max);
        &mut self.buf[self.filled..end]
    }

    /// Counts `n` octets written into [`Writer::space`]; a full piece starts its write.
    pub(super) async fn advance(&mut self, n: usize) -> Result<(), Code> {
        self.filled += n;
        self.left = self.left.saturating_sub(n as u64);
        if self.filled == self.buf.len() && self.left > 0 {
            self.submit().await?;
        }
        Ok(())
    }

    /// Copies payload octets into the current piece.
    pub(super) async fn push(&mut self, mut data: &[u8]) -> Result<(), Code> {
        while !data.is_empty() {
            let space = self.space(data.len());
            let n = space.len();
            if n == 0 {
                // More octets than the put announced: the receiver never hands those out.
                return Err(Code::STORAGE);
            }
            space.copy_from_slice(&data[..n]);
            data = &data[n..];
            self.advance(n).await?;
        }
        Ok(())
    }

    /// Starts writing the current piece (after the previous write has finished).
    async fn submit(&mut self) -> Result<(), Code> {
        self.settle().await?;
        let n = mem::take(&mut self.filled);
        let mut upload = self.upload.take().ok_or(Code::STORAGE)?;
        let next = self.spare.take().unwrap_or_else(|| vec![0; self.buf.len()]);
        let data = mem::replace(&mut self.buf, next);
        let write = self.rt.unblock(move || {
            let result = upload.write_all(&data[..n]);
            (upload, data, result)
        });
        self.pending = Some(Box::pin(write));
        Ok(())
    }

    /// Waits for the write in flight, if any.
    async fn settle(&mut self) -> Result<(), Code> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        match pending.await {
            Ok((upload, buf, Ok(()))) => {
                self.upload = Some(upload);
                self.spare = Some(buf);
                Ok(())
            }
            Ok((upload, _, Err(e))) => {
                let code = e.report("write to a staging file");
                // The staging file goes at once (PUT-17).
                let _ = self.rt.unblock(move || drop(upload)).await;
                Err(code)
            }
            Err(e) => Err(StoreError::report_io(&e, "write to a staging file")),
        }
    }

    /// Writes what is left, fsyncs and renames the file into place (PUT-12 .. PUT-14): the
    /// last write and the commit in one trip.
    pub(super) async fn commit(mut self) -> Result<(), Code> {
        self.settle().await?;
        let mut upload = self.upload.take().ok_or(Code::STORAGE)?;
        let (data, n) = (mem::take(&mut self.buf), self.filled);
        let trip = self.rt.unblock(move || {
            upload.write_all(&data[..n])?;
            upload.commit()
        });
        match trip.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.report("commit")),
            Err(e) => Err(StoreError::report_io(&e, "commit")),
        }
    }

    /// Removes the staging file (after the write in flight, if any).
    pub(super) async fn discard(mut self) {
        let _ = self.settle().await;
        if let Some(upload) = self.upload.take() {
            let _ = self.rt.unblock(move || drop(upload)).await;
        }
    }
}
