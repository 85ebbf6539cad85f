//! The client's local side: sources of uploads and sinks of downloads. Local files are read
//! and written on the runtime's blocking pool in pieces of up to 1 MiB (never a blocking
//! call on an async thread, never a blocking hop per chunk head).

use std::fs::File;
use std::io::{self, Read, Write};
use std::mem;
use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::runtime::{BoxFuture, Runtime};

/// Largest piece written to a local file in one blocking call.
const WRITE_PIECE: usize = 1 << 20;

/// Where an upload's octets come from.
pub(crate) enum Source<'a, R: Runtime, T: ?Sized> {
    /// An async reader of the caller's.
    Reader(&'a mut T),
    /// A local file, read on the blocking pool; `size` and `mtime` are what it had when it
    /// was opened (checked before the trailer, PUT-20).
    File {
        rt: R,
        file: Arc<File>,
        size: u64,
        mtime: Option<SystemTime>,
    },
}

impl<R: Runtime, T: AsyncRead + Unpin + ?Sized> Source<'_, R, T> {
    /// Fills `buf[range]`; a source that ends early is an `UnexpectedEof` error.
    pub(crate) async fn read_exactly(
        &mut self,
        buf: &mut Vec<u8>,
        range: Range<usize>,
        sent: u64,
        size: u64,
    ) -> io::Result<()> {
        match self {
            Source::Reader(r) => {
                let data = &mut buf[range];
                let mut filled = 0;
                while filled < data.len() {
                    match r.read(&mut data[filled..]).await {
                        Ok(0) => return Err(short(sent + filled as u64, size)),
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            Source::File { rt, file, .. } => {
                let file = Arc::clone(file);
                let mut owned = mem::take(buf);
                let (owned, result) = rt
                    .unblock(move || {
                        let r = read_full(&file, &mut owned[range]);
                        (owned, r)
                    })
                    .await?;
                *buf = owned;
                match result? {
                    (n, true) => Ok(n),
                    (filled, false) => Err(short(sent + filled as u64, size)),
                }
                .map(drop)
            }
        }
    }

    /// Whether the source is still what was announced (a file's size and modification time).
    pub(crate) async fn unchanged(&mut self) -> io::Result<bool> {
        match self {
            Source::Reader(_) => Ok(true),
            Source::File {
                rt,
                file,
                size,
                mtime,
            } => {
                let file = Arc::clone(file);
                let (size, mtime) = (*size, *mtime);
                rt.unblock(move || {
                    let m = file.metadata()?;
                    Ok(m.len() == size && m.modified().ok() == mtime)
                })
                .await?
            }
        }
    }
}

fn short(got: u64, size: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the local file ended after {got} of {size} octets"),
    )
}

/// Reads until `buf` is full or the file ends: `(octets read, whether full)`.
fn read_full(mut file: &File, buf: &mut [u8]) -> io::Result<(usize, bool)> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => return Ok((n, false)),
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((n, true))
}

/// Where a download's octets go.
pub(crate) enum Sink<'a, R: Runtime, W: ?Sized> {
    /// An async writer of the caller's.
    Writer(&'a mut W),
    /// A local file, written on the blocking pool.
    File(FileWriter<R>),
    /// Nowhere (a payload read only to keep the session in step).
    Drop,
}

impl<R: Runtime, W: AsyncWrite + Unpin + ?Sized> Sink<'_, R, W> {
    pub(crate) async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Sink::Writer(w) => w.write_all(data).await,
            Sink::File(f) => f.write(data).await,
            Sink::Drop => Ok(()),
        }
    }
}

type Written = (File, Vec<u8>, io::Result<()>);

/// Writes a file in pieces of up to 1 MiB on the blocking pool, one piece in flight while
/// the next is collected.
pub(crate) struct FileWriter<R: Runtime> {
    rt: R,
    file: Option<File>,
    buf: Vec<u8>,
    spare: Option<Vec<u8>>,
    pending: Option<BoxFuture<io::Result<Written>>>,
    failed: bool,
}

impl<R: Runtime> FileWriter<R> {
    pub(crate) fn new(rt: R, file: File) -> Self {
        Self {
            rt,
            file: Some(file),
            buf: Vec::new(),
            spare: None,
            pending: None,
            failed: false,
        }
    }

    async fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("an earlier write failed"));
        }
        while !data.is_empty() {
            if self.buf.capacity() == 0 {
                self.buf = self
                    .spare
                    .take()
                    .unwrap_or_else(|| Vec::with_capacity(WRITE_PIECE));
            }
            let n = data.len().min(WRITE_PIECE - self.buf.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == WRITE_PIECE {
                self.submit().await?;
            }
        }
        Ok(())
    }

    async fn submit(&mut self) -> io::Result<()> {
        self.settle().await?;
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(mut file) = self.file.take() else {
            return Err(io::Error::other("the file is gone"));
        };
        let mut data = mem::take(&mut self.buf);
        let write = self.rt.unblock(move || {
            let r = file.write_all(&data);
            data.clear();
            (file, data, r)
        });
        self.pending = Some(Box::pin(write));
        Ok(())
    }

    async fn settle(&mut self) -> io::Result<()> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        let result = match pending.await {
            Ok((file, buf, r)) => {
                self.file = Some(file);
                self.spare = Some(buf);
                r
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// Writes what is left; returns the file.
    pub(crate) async fn finish(mut self) -> io::Result<File> {
        self.submit().await?;
        self.settle().await?;
        self.file
            .take()
            .ok_or_else(|| io::Error::other("the file is gone"))
    }
}
