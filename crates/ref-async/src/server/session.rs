//! One session: the state machine of spec/protocol.md section 3, driven over [`conn`]'s
//! timed I/O, with `ferry-wire` for every octet on the wire and `ferry-store` (on the
//! runtime's blocking pool) for every file.
//!
//! Written independently of `ferry-sync`'s session on purpose (see the crate README): the
//! differential tests that play one raw session against both servers only mean something if
//! the two state machines were not derived from each other.
//!
//! Requests are executed one after another in the order received (PIPE-1). Replies are
//! queued and flushed before every read that could block, so the replies to a batch of
//! pipelined requests leave together, and a reply is never held back while the session waits
//! for input. Storage work moves in pieces of up to 1 MiB: a get reads (and hashes) the next
//! piece on the blocking pool while the current one is sent; a put writes one piece while the
//! next is received.

use std::future::Future;
use std::io::{self, Read};
use std::mem;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use ferry_store::{ReadFile, StoreError, Upload};
use ferry_wire::limits::MAX_CHUNK;
use ferry_wire::{
    Code, DecodeError, Digest, ErrorReply, FileName, Frame, Hasher, Invalid, InvalidKind,
    PayloadReceiver, PutFlow, PutMode, Reply, Request, Step, Timestamp, Version, decode_request,
};

use super::Shared;
use super::conn::{Conn, Stop, Wait};
use crate::runtime::{BoxFuture, Runtime};

/// Room in front of a chunk's data for its `data LEN` line, so that head and data leave in
/// one write.
const HEAD_ROOM: usize = 32;

/// The read for a frame head inside an upload: longer than `data LEN` and `end DIGEST` lines
/// (an `abort` with a long TEXT takes several reads).
const HEAD_READ: usize = 64;

/// Largest piece written to a staging file in one blocking call.
const WRITE_PIECE: usize = 1 << 20;

/// How long a closing server keeps reading (and discarding) after its last reply (CLOSE-6).
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// How long a last word (a closing error, `abort 422`) may wait for the peer.
const LAST_WORD: Duration = Duration::from_millis(250);

/// Runs one session on an accepted connection (inside the session's tracing span);
/// `sending_chunk` is set while it writes a chunk of a get payload.
pub(super) async fn serve<R: Runtime>(
    shared: Arc<Shared<R>>,
    stream: R::TcpStream,
    sending_chunk: Arc<AtomicBool>,
) {
    tracing::debug!("session started");
    let mut session = Session {
        shared: Arc::clone(&shared),
        conn: Conn::new(shared, stream, sending_chunk),
        first: true,
        line: Vec::with_capacity(256),
    };
    match session.run().await {
        End::Eof => tracing::debug!("session ended by the client"),
        End::Bye => tracing::debug!("session closed"),
        End::Closed(code) => tracing::debug!(code = %code, "session closed with an error"),
        End::Dropped(why) => tracing::info!(why, "session dropped"),
        End::Io(e) => tracing::info!(error = %e, "connection failed"),
    }
}

/// How a session ended.
#[derive(Debug)]
enum End {
    /// The client closed its side (no `bye`, CLOSE-4).
    Eof,
    /// The session answered `close` with `bye` and closed.
    Bye,
    /// The session sent a closing error and closed.
    Closed(Code),
    /// A write made no progress for the stall timeout, or the shutdown deadline passed while
    /// the session could not send anything: closed without a last word.
    Dropped(&'static str),
    /// The connection failed.
    Io(io::Error),
}

/// The outcome of one request, for the log.
struct Outcome {
    code: Option<Code>,
    bytes: u64,
}

impl Outcome {
    fn ok(bytes: u64) -> Self {
        Self { code: None, bytes }
    }
    fn err(code: Code) -> Self {
        Self {
            code: Some(code),
            bytes: 0,
        }
    }
}

type Flow<T = Outcome> = Result<T, End>;

struct Session<R: Runtime> {
    shared: Arc<Shared<R>>,
    conn: Conn<R>,
    /// No request line has been read yet (`version` is allowed, VER-2).
    first: bool,
    /// Scratch for encoding lines.
    line: Vec<u8>,
}

fn err_reply(code: Code) -> ErrorReply {
    ErrorReply::new(code, code.name().unwrap_or("error"))
}

/// A failed write: the session ends without a last word.
fn write_failed(stop: Stop) -> End {
    match stop {
        Stop::Timeout => End::Dropped("peer accepts no output"),
        Stop::Shutdown => End::Dropped("shutdown deadline passed"),
        Stop::Eof => End::Eof,
        Stop::Io(e) => End::Io(e),
    }
}

impl<R: Runtime> Session<R> {
    async fn run(&mut self) -> End {
        let greeting = self.shared.greeting.clone();
        if let Err(stop) = self.conn.write(&greeting).await {
            return write_failed(stop);
        }
        loop {
            // CLOSE-8: at a request boundary a shutdown ends the session, even with
            // pipelined requests waiting.
            if self.shared.shutdown.is_triggered() {
                return self.close_with(Code::SHUTTING_DOWN).await;
            }
            if let Err(end) = self.one_request().await {
                return end;
            }
        }
    }

    /// Reads and executes one request.
    async fn one_request(&mut self) -> Flow<()> {
        if self.conn.is_empty() {
            self.flush().await?;
            if let Err(stop) = self.conn.fill(Wait::Idle).await {
                return Err(self.stopped(stop).await);
            }
        }
        // TIME-2: the whole line within the stall timeout of its first octet, or of the end
        // of the previous reply when that was still being sent (a pipelined line).
        let mut line_deadline = Instant::now() + self.shared.stall;
        let decoded = loop {
            match decode_request(self.conn.data()) {
                Ok(x) => break Ok(x),
                Err(DecodeError::Invalid(invalid)) => break Err(invalid),
                Err(DecodeError::Incomplete) => {
                    if self.conn.has_pending_output() {
                        self.flush().await?;
                        line_deadline = line_deadline.max(Instant::now() + self.shared.stall);
                    }
                    if let Err(stop) = self.conn.fill(Wait::Until(line_deadline)).await {
                        return Err(self.stopped(stop).await);
                    }
                }
            }
        };
        let started = Instant::now();
        let first = mem::replace(&mut self.first, false);
        match decoded {
            Ok((request, used)) => {
                self.conn.consume(used);
                self.execute(request, first, started).await
            }
            Err(invalid) => self.invalid(invalid, started).await,
        }
    }

    async fn execute(&mut self, request: Request, first: bool, started: Instant) -> Flow<()> {
        match request {
            Request::Dir => {
                let outcome = self.dir().await?;
                log("dir", None, &outcome, started);
            }
            Request::Get { offset, name } => {
                let outcome = self.get(offset, &name).await?;
                log("get", Some(&name), &outcome, started);
            }
            Request::Put {
                size,
                mode,
                flow,
                name,
            } => {
                let outcome = self.put(size, mode, flow, &name).await?;
                log("put", Some(&name), &outcome, started);
            }
            Request::Version(v) => {
                let outcome = if !first {
                    // VER-6: only as the first request.
                    self.reply_err(Code::SYNTAX).await?
                } else if v == Version::V1 {
                    self.reply(&Reply::VersionOk(v)).await?;
                    Outcome::ok(0)
                } else {
                    // VER-5: this server lists only version 1.
                    self.reply_err(Code::UNSUPPORTED).await?
                };
                log("version", None, &outcome, started);
            }
            Request::Close => {
                // CLOSE-1: nothing after `close` is read or executed.
                self.reply(&Reply::Bye).await?;
                log("close", None, &Outcome::ok(0), started);
                self.close().await;
                return Err(End::Bye);
            }
        }
        Ok(())
    }

    /// A request line that does not match `request` (ERR-6, FRAME-2, PUT-8, PUT-9).
    async fn invalid(&mut self, invalid: Invalid, started: Instant) -> Flow<()> {
        tracing::info!(error = %invalid, "invalid request");
        let Some(line_len) = invalid.line_len else {
            // Only a line without LF within 4096 octets has no length (FRAME-2).
            return Err(self.close_with(Code::LINE_TOO_LONG).await);
        };
        let outcome = match invalid.kind {
            InvalidKind::LineTooLong => return Err(self.close_with(Code::LINE_TOO_LONG).await),
            // ERR-6: `put`, or `put` SP and no SIZE SP MODE SP FLOW SP: the framing is unknown.
            InvalidKind::MalformedPut => return Err(self.close_with(Code::PROTOCOL).await),
            // ERR-6: the fields before the name parse (the name may even be empty), so the
            // framing is known: 510, after the payload of an eager put (PUT-9) — unless the
            // eager put is over max-eager, which PUT-8 answers first.
            InvalidKind::BadName {
                put: Some(head), ..
            } => {
                self.conn.consume(line_len);
                if head.flow == PutFlow::Now {
                    if !self.eager_allowed(head.size) {
                        return Err(self.close_with(Code::PROTOCOL).await);
                    }
                    self.receive(None, head.size, Some(Code::BAD_NAME)).await?
                } else {
                    self.reply_err(Code::BAD_NAME).await?
                }
            }
            InvalidKind::BadName { put: None, .. } => {
                self.conn.consume(line_len);
                self.reply_err(Code::BAD_NAME).await?
            }
            InvalidKind::Syntax => {
                self.conn.consume(line_len);
                self.reply_err(Code::SYNTAX).await?
            }
        };
        log("invalid", None, &outcome, started);
        Ok(())
    }

    fn eager_allowed(&self, size: u64) -> bool {
        self.shared.max_eager > 0 && size <= self.shared.max_eager
    }

    /// Runs a storage call on the blocking pool.
    fn storage<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = io::Result<T>> + Send + 'static {
        self.shared.rt.unblock(f)
    }

    // ------------------------------------------------------------------ dir ---

    async fn dir(&mut self) -> Flow {
        let root = self.shared.root.clone();
        let listed = self.storage(move || root.list()).await.and_then(|r| r);
        let entries = match listed {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(error = %e, "listing failed");
                return self.reply_err(Code::STORAGE).await;
            }
        };
        // DIR-7: the whole listing was collected before `ok dir` goes out.
        self.line.clear();
        Reply::DirOk {
            count: entries.len() as u64,
        }
        .encode(&mut self.line);
        for entry in &entries {
            entry.encode(&mut self.line);
        }
        self.conn.write(&self.line).await.map_err(write_failed)?;
        Ok(Outcome::ok(entries.len() as u64))
    }

    // ------------------------------------------------------------------ get ---

    async fn get(&mut self, offset: u64, name: &FileName) -> Flow {
        let root = self.shared.root.clone();
        let target = name.clone();
        // One trip to the blocking pool opens the file and, when the whole of it is one chunk
        // sent from offset 0, also reads it, hashes it and checks it is unchanged (GET-9):
        // each trip is a thread wake-up and a task wake-up, most of a small get's cost.
        let opened = self.storage(move || {
            let file = root.open_read(&target)?;
            Ok::<_, StoreError>(if offset == 0 && file.size <= u64::from(MAX_CHUNK) {
                Opened::Whole(read_whole(file))
            } else {
                Opened::Pieces(file)
            })
        });
        let file = match opened.await {
            Ok(Ok(Opened::Whole(whole))) => return self.send_whole(whole).await,
            Ok(Ok(Opened::Pieces(file))) => file,
            Ok(Err(e)) => {
                if let StoreError::Io(e) = &e {
                    tracing::warn!(%name, error = %e, "cannot open for get");
                }
                return self.reply_err(e.code()).await;
            }
            Err(e) => {
                tracing::warn!(%name, error = %e, "cannot open for get");
                return self.reply_err(Code::STORAGE).await;
            }
        };
        if offset > file.size {
            return self.reply_err(Code::BAD_OFFSET).await;
        }
        self.reply(&Reply::GetOk {
            size: file.size,
            mtime: file.mtime,
        })
        .await?;
        self.send_payload(Arc::new(file), offset).await
    }

    /// `ok get`, the file's one chunk and `end` (or `abort` when reading it failed or it
    /// changed, GET-9, GET-10) for a file read whole by [`read_whole`].
    async fn send_whole(&mut self, whole: Whole) -> Flow {
        let len = whole.buf.len() - HEAD_ROOM;
        self.reply(&Reply::GetOk {
            size: len as u64,
            mtime: whole.mtime,
        })
        .await?;
        if self.shared.past_hard_deadline() {
            return Err(self.abort_and_close().await);
        }
        let digest = match whole.outcome {
            Ok(digest) => digest,
            Err(code) => return self.abort(code, 0).await,
        };
        let mut buf = whole.buf;
        if len > 0 {
            let start = put_chunk_head(&mut buf, len);
            self.conn
                .write_chunk(&buf[start..])
                .await
                .map_err(write_failed)?;
        }
        self.frame(&Frame::End(digest)).await?;
        Ok(Outcome::ok(len as u64))
    }

    /// Sends octets `offset..size` of `file` as chunks, then `end` with the digest of the whole
    /// file, whose octets before `offset` are read and hashed first (SUM-3); or an `abort` at a
    /// chunk boundary (GET-9, GET-10, CLOSE-9). Every chunk is read before its head is sent
    /// (DATA-12). A chunk whose head was sent is completed even when the shutdown deadline
    /// passes meanwhile (DATA-11, see [`Conn::write_chunk`]); no chunk starts after it.
    async fn send_payload(&mut self, file: Arc<ReadFile>, offset: u64) -> Flow {
        // The file buffers live as long as this get: a session keeps no memory for the
        // files it served (an idle session that once sent a 1 MiB file holds nothing).
        let mut reader = ReadAhead::new(self.shared.rt.clone(), Arc::clone(&file), offset);
        let mut sent = 0u64;
        let failed = loop {
            if self.shared.past_hard_deadline() {
                return Err(self.abort_and_close().await);
            }
            let block = match reader.next().await {
                None => break None,
                Some(Err(code)) => break Some(code),
                Some(Ok(block)) => block,
            };
            if block.prefix {
                reader.recycle(block.buf);
                continue;
            }
            // The deadline may have passed while the block was read.
            if self.shared.past_hard_deadline() {
                return Err(self.abort_and_close().await);
            }
            let mut buf = block.buf;
            let len = block.len;
            let start = put_chunk_head(&mut buf, len);
            let written = self.conn.write_chunk(&buf[start..HEAD_ROOM + len]).await;
            reader.recycle(buf);
            written.map_err(write_failed)?;
            sent += len as u64;
        };
        let digest = reader.digest();
        drop(reader);
        if let Some(code) = failed {
            return self.abort(code, sent).await;
        }
        // GET-9: the file must still be what `ok get` described.
        match self.storage(move || file.unchanged()).await {
            Ok(Ok(true)) => {
                self.frame(&Frame::End(digest)).await?;
                Ok(Outcome::ok(sent))
            }
            Ok(Ok(false)) => self.abort(Code::CHANGED, sent).await,
            Ok(Err(e)) | Err(e) => {
                tracing::warn!(error = %e, "fstat failed");
                self.abort(Code::STORAGE, sent).await
            }
        }
    }

    async fn abort(&mut self, code: Code, sent: u64) -> Flow {
        self.frame(&Frame::Abort(err_reply(code))).await?;
        Ok(Outcome {
            code: Some(code),
            bytes: sent,
        })
    }

    /// CLOSE-9: the shutdown deadline passed during a get payload (at a chunk boundary).
    async fn abort_and_close(&mut self) -> End {
        self.conn.set_patience(Some(LAST_WORD));
        if self
            .frame(&Frame::Abort(err_reply(Code::SHUTTING_DOWN)))
            .await
            .is_ok()
        {
            self.close().await;
        }
        End::Closed(Code::SHUTTING_DOWN)
    }

    // ------------------------------------------------------------------ put ---

    async fn put(&mut self, size: u64, mode: PutMode, flow: PutFlow, name: &FileName) -> Flow {
        // PUT-8: before any other check, and without reading the payload.
        if flow == PutFlow::Now && !self.eager_allowed(size) {
            return Err(self.close_with(Code::PROTOCOL).await);
        }
        // PUT-2, in order (the name was checked by the decoder).
        let checked = if self.shared.read_only {
            Err(Code::READ_ONLY)
        } else if size > self.shared.max_size {
            Err(Code::TOO_LARGE)
        } else {
            let root = self.shared.root.clone();
            let target = name.clone();
            match self
                .storage(move || root.begin_upload(&target, size, mode))
                .await
            {
                Ok(Ok(upload)) => Ok(upload),
                Ok(Err(e)) => {
                    if let StoreError::Io(e) = &e {
                        tracing::warn!(%name, error = %e, "cannot start upload");
                    }
                    Err(e.code())
                }
                Err(e) => {
                    tracing::warn!(%name, error = %e, "cannot start upload");
                    Err(Code::STORAGE)
                }
            }
        };
        match (flow, checked) {
            (PutFlow::Wait, Err(code)) => self.reply_err(code).await,
            (PutFlow::Wait, Ok(upload)) => match self.reply(&Reply::Go).await {
                Ok(()) => self.receive(Some(upload), size, None).await,
                Err(end) => {
                    self.discard(upload).await;
                    Err(end)
                }
            },
            (PutFlow::Now, Err(code)) => self.receive(None, size, Some(code)).await,
            (PutFlow::Now, Ok(upload)) => self.receive(Some(upload), size, None).await,
        }
    }

    /// Removes an upload's staging file (on the blocking pool).
    async fn discard(&mut self, upload: Upload) {
        let _ = self.storage(move || drop(upload)).await;
    }

    /// Receives a put's payload of `size` octets into `upload`, or discards it when the put
    /// was refused (`refusal`) or storage fails midway, and answers once the trailer is in
    /// (PUT-9 .. PUT-17). Every way out removes the staging file unless the upload committed.
    async fn receive(&mut self, upload: Option<Upload>, size: u64, refusal: Option<Code>) -> Flow {
        let mut sink = Sink::new(self.shared.rt.clone(), upload, size);
        let mut rx = PayloadReceiver::new(size);
        loop {
            if self.shared.past_hard_deadline() {
                // CLOSE-9: remove the staging file, say why, close.
                sink.discard().await;
                return Err(self.close_with(Code::SHUTTING_DOWN).await);
            }
            // Chunk data with nothing buffered goes straight into the staging buffer.
            if self.conn.is_empty() && rx.chunk_left() > 0 && sink.is_active() {
                if let Err(stop) = self.conn.flush().await {
                    sink.discard().await;
                    return Err(write_failed(stop));
                }
                let space = sink.space(rx.chunk_left() as usize);
                match self.conn.read_into(space, Wait::Progress).await {
                    Ok(n) => {
                        rx.data(&space[..n]);
                        sink.advance(n).await;
                    }
                    Err(stop) => {
                        sink.discard().await;
                        return Err(self.stopped(stop).await);
                    }
                }
                continue;
            }
            if self.conn.is_empty() {
                // A frame head comes next (chunk data would have been read above): read
                // little, so that the chunk after it goes straight into the staging buffer.
                let max = if sink.is_active() {
                    HEAD_READ
                } else {
                    usize::MAX
                };
                if let Err(end) = self.fill_payload_at_most(max).await {
                    sink.discard().await;
                    return Err(end.finish(self).await);
                }
            }
            let (step, used) = match rx.feed(self.conn.data()) {
                Ok(x) => x,
                Err(e) => {
                    tracing::info!(error = %e, "framing violation in upload");
                    sink.discard().await;
                    return Err(self.close_with(Code::PROTOCOL).await);
                }
            };
            match step {
                Step::NeedMore => {
                    self.conn.consume(used);
                    if used == 0 {
                        // An incomplete frame line: more octets must be appended.
                        let max = if sink.is_active() {
                            HEAD_READ
                        } else {
                            usize::MAX
                        };
                        if let Err(end) = self.fill_payload_at_most(max).await {
                            sink.discard().await;
                            return Err(end.finish(self).await);
                        }
                    }
                }
                Step::Data(data) => {
                    sink.push(data).await;
                    self.conn.consume(used);
                }
                Step::Complete(digest) => {
                    self.conn.consume(used);
                    let code = if let Some(code) = refusal {
                        sink.discard().await;
                        code
                    } else {
                        match sink.finish().await {
                            Ok(upload) => match self.commit(upload).await {
                                Ok(()) => {
                                    self.reply(&Reply::PutOk { size, digest }).await?;
                                    return Ok(Outcome::ok(size));
                                }
                                Err(code) => code,
                            },
                            Err(code) => code,
                        }
                    };
                    return self.reply_err(code).await;
                }
                Step::Corrupt {
                    announced,
                    computed,
                } => {
                    self.conn.consume(used);
                    sink.discard().await;
                    let code = refusal.or(sink.failed);
                    if code.is_none() {
                        tracing::info!(%announced, %computed, "digest mismatch");
                    }
                    return self.reply_err(code.unwrap_or(Code::CORRUPT)).await;
                }
                Step::Aborted(reason) => {
                    self.conn.consume(used);
                    sink.discard().await;
                    tracing::debug!(code = %reason.code, "client aborted the upload");
                    let code = refusal.or(sink.failed).unwrap_or(Code::ABORTED);
                    return self.reply_err(code).await;
                }
            }
        }
    }

    /// PUT-12 .. PUT-14 on the blocking pool.
    async fn commit(&mut self, upload: Upload) -> Result<(), Code> {
        match self.storage(move || upload.commit()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                if let StoreError::Io(e) = &e {
                    tracing::warn!(error = %e, "commit failed");
                }
                Err(e.code())
            }
            Err(e) => {
                tracing::warn!(error = %e, "commit failed");
                Err(Code::STORAGE)
            }
        }
    }

    /// Waits for more payload octets (stall timeout, shutdown deadline, EOF). The caller
    /// removes the staging file before it finishes the [`Pending`] end.
    async fn fill_payload_at_most(&mut self, max: usize) -> Result<(), Pending> {
        self.conn.flush().await.map_err(Pending::Write)?;
        self.conn
            .fill_at_most(Wait::Progress, max)
            .await
            .map(drop)
            .map_err(Pending::Read)
    }

    // ------------------------------------------------------------ replies ---

    async fn reply(&mut self, reply: &Reply) -> Flow<()> {
        self.line.clear();
        reply.encode(&mut self.line);
        self.conn.write(&self.line).await.map_err(write_failed)
    }

    async fn reply_err(&mut self, code: Code) -> Flow {
        self.reply(&Reply::Err(err_reply(code))).await?;
        Ok(Outcome::err(code))
    }

    async fn frame(&mut self, frame: &Frame) -> Flow<()> {
        self.line.clear();
        frame.encode(&mut self.line);
        self.conn.write(&self.line).await.map_err(write_failed)
    }

    async fn flush(&mut self) -> Flow<()> {
        self.conn.flush().await.map_err(write_failed)
    }

    /// A read did not complete: EOF ends the session silently (CLOSE-4), a timeout gets 421
    /// (TIME-5) and a shutdown 422 (CLOSE-8) before the close.
    async fn stopped(&mut self, stop: Stop) -> End {
        match stop {
            Stop::Eof => {
                // CLOSE-5: the replies to what was received completely still go out.
                let _ = self.conn.flush().await;
                End::Eof
            }
            Stop::Timeout => self.close_with(Code::TIMEOUT).await,
            Stop::Shutdown => self.close_with(Code::SHUTTING_DOWN).await,
            Stop::Io(e) => End::Io(e),
        }
    }

    /// Sends a closing error (420, 421, 422, 501, 502) and closes (ERR-5, CLOSE-6).
    async fn close_with(&mut self, code: Code) -> End {
        tracing::info!(code = %code, "closing");
        // Without waiting long: the peer may be the reason the session ends (TIME-5).
        self.conn.set_patience(Some(LAST_WORD));
        if self.reply(&Reply::Err(err_reply(code))).await.is_ok() {
            self.close().await;
        }
        End::Closed(code)
    }

    /// CLOSE-6: flush, shut down the sending side, then read and discard input for a short
    /// time (or until EOF) so that unread input does not turn the close into a reset that
    /// destroys the last reply.
    async fn close(&mut self) {
        if self.conn.flush().await.is_err() {
            return;
        }
        self.conn.shutdown_write().await;
        let deadline = Instant::now() + DRAIN_TIME;
        let deadline = match self.shared.hard_deadline() {
            Some(hard) => deadline.min(hard.max(Instant::now())),
            None => deadline,
        };
        self.conn.drain(deadline).await;
    }
}

/// A wait for payload octets that did not complete.
enum Pending {
    /// Sending queued replies failed.
    Write(Stop),
    /// The read failed.
    Read(Stop),
}

impl Pending {
    async fn finish<R: Runtime>(self, session: &mut Session<R>) -> End {
        match self {
            Pending::Write(stop) => write_failed(stop),
            Pending::Read(stop) => session.stopped(stop).await,
        }
    }
}

fn log(command: &'static str, name: Option<&FileName>, outcome: &Outcome, started: Instant) {
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let code = outcome.code.map(|c| c.get());
    match name {
        Some(name) => {
            tracing::info!(command, %name, bytes = outcome.bytes, code, micros, "request")
        }
        None => tracing::info!(command, bytes = outcome.bytes, code, micros, "request"),
    }
}

/// Reads until `buf` is full or the file ends; returns how much it read.
/// Writes `data LEN\n` into the [`HEAD_ROOM`] in front of a chunk's `len` octets; returns
/// where the head starts.
fn put_chunk_head(buf: &mut [u8], len: usize) -> usize {
    let mut head = [0u8; HEAD_ROOM];
    let head_len = {
        let mut w = &mut head[..];
        let _ = io::Write::write_fmt(&mut w, format_args!("data {len}\n"));
        HEAD_ROOM - w.len()
    };
    let start = HEAD_ROOM - head_len;
    buf[start..HEAD_ROOM].copy_from_slice(&head[..head_len]);
    start
}

/// What a get's trip to the blocking pool found.
enum Opened {
    /// A file of at most one chunk, read whole.
    Whole(Whole),
    /// A larger file (or a get from an offset): read in pieces by [`ReadAhead`].
    Pieces(ReadFile),
}

/// A file read whole on the blocking pool, with the outcome of reading it.
struct Whole {
    mtime: Timestamp,
    /// [`HEAD_ROOM`] octets, then the file (its size when it was opened).
    buf: Vec<u8>,
    /// The digest, or why the payload must be aborted (430 changed, 431 storage).
    outcome: Result<Digest, Code>,
}

/// Reads all of `file` (at most one chunk), hashes it and checks it is unchanged afterwards
/// (GET-9): a blocking call.
fn read_whole(file: ReadFile) -> Whole {
    let len = usize::try_from(file.size).unwrap_or(usize::MAX);
    let mut buf = vec![0u8; HEAD_ROOM.saturating_add(len)];
    let outcome = match read_full(&file.file, &mut buf[HEAD_ROOM..]) {
        Ok(n) if n == len => match file.unchanged() {
            Ok(true) => {
                let mut hasher = Hasher::new();
                hasher.update(&buf[HEAD_ROOM..]);
                Ok(hasher.digest())
            }
            Ok(false) => Err(Code::CHANGED),
            Err(e) => {
                tracing::warn!(error = %e, "fstat failed");
                Err(Code::STORAGE)
            }
        },
        Ok(_) => Err(Code::CHANGED),
        Err(e) => {
            tracing::warn!(error = %e, "read failed");
            Err(Code::STORAGE)
        }
    };
    Whole {
        mtime: file.mtime,
        buf,
        outcome,
    }
}

fn read_full(mut file: &std::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

// ------------------------------------------------------------- read-ahead ---

/// One piece of a file read for a get.
struct Block {
    /// `[HEAD_ROOM | data | …]`.
    buf: Vec<u8>,
    len: usize,
    /// Octets before the get's offset: hashed, not sent.
    prefix: bool,
}

/// What a blocking read hands back.
struct Readout {
    buf: Vec<u8>,
    hasher: Hasher,
    read: io::Result<usize>,
}

/// Reads a file for a get in pieces of up to 1 MiB on the blocking pool, hashing each piece
/// there, one piece ahead of the sender: the prefix before the offset (hashed only), then the
/// chunks to send.
struct ReadAhead<R: Runtime> {
    rt: R,
    file: Arc<ReadFile>,
    offset: u64,
    block: usize,
    /// Start of the next piece to read.
    pos: u64,
    hasher: Option<Hasher>,
    buffers: Vec<Vec<u8>>,
    pending: Option<(u64, usize, BoxFuture<io::Result<Readout>>)>,
}

impl<R: Runtime> ReadAhead<R> {
    fn new(rt: R, file: Arc<ReadFile>, offset: u64) -> Self {
        let block = file.size.clamp(1, u64::from(MAX_CHUNK)) as usize;
        let mut this = Self {
            rt,
            file,
            offset,
            block,
            pos: 0,
            hasher: Some(Hasher::new()),
            buffers: Vec::new(),
            pending: None,
        };
        this.start();
        this
    }

    /// Starts reading the next piece, if any.
    fn start(&mut self) {
        let size = self.file.size;
        if self.pos >= size {
            return;
        }
        let end = if self.pos < self.offset {
            self.offset
        } else {
            size
        };
        let len = (end - self.pos).min(self.block as u64) as usize;
        let mut buf = self.buffers.pop().unwrap_or_default();
        if buf.len() < HEAD_ROOM + self.block {
            buf.resize(HEAD_ROOM + self.block, 0);
        }
        let mut hasher = self.hasher.take().unwrap_or_default();
        let file = Arc::clone(&self.file);
        let read = self.rt.unblock(move || {
            let data = &mut buf[HEAD_ROOM..HEAD_ROOM + len];
            let read = read_full(&file.file, data);
            if matches!(read, Ok(n) if n == len) {
                hasher.update(data);
            }
            Readout { buf, hasher, read }
        });
        self.pending = Some((self.pos, len, Box::pin(read)));
        self.pos += len as u64;
    }

    /// The next piece; `None` after the last one; `Some(Err(code))` when the file ended early
    /// (430, GET-9) or a read failed (431, GET-10).
    async fn next(&mut self) -> Option<Result<Block, Code>> {
        let (at, len, read) = self.pending.take()?;
        let out = match read.await {
            Ok(out) => out,
            Err(e) => {
                tracing::warn!(error = %e, "read failed");
                return Some(Err(Code::STORAGE));
            }
        };
        self.hasher = Some(out.hasher);
        match out.read {
            Ok(n) if n == len => {
                self.start();
                Some(Ok(Block {
                    buf: out.buf,
                    len,
                    prefix: at < self.offset,
                }))
            }
            Ok(_) => Some(Err(Code::CHANGED)),
            Err(e) => {
                tracing::warn!(error = %e, "read failed");
                Some(Err(Code::STORAGE))
            }
        }
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        self.buffers.push(buf);
    }

    /// The digest of everything read so far.
    fn digest(&self) -> Digest {
        self.hasher
            .as_ref()
            .map_or_else(|| Hasher::new().digest(), Hasher::digest)
    }
}

// ------------------------------------------------------------------- sink ---

/// What a blocking write hands back.
type Written = (Upload, Vec<u8>, Result<(), StoreError>);

/// The receiving end of a put: collects payload octets into pieces of up to 1 MiB and writes
/// each to the staging file on the blocking pool while the next one is received. Inactive
/// when the put was refused or storage failed (PUT-17): octets are then dropped.
struct Sink<R: Runtime> {
    rt: R,
    active: bool,
    /// The upload, when no write is in flight.
    upload: Option<Upload>,
    /// The storage failure that made the sink inactive.
    failed: Option<Code>,
    buf: Vec<u8>,
    filled: usize,
    spare: Option<Vec<u8>>,
    pending: Option<BoxFuture<io::Result<Written>>>,
}

impl<R: Runtime> Sink<R> {
    fn new(rt: R, upload: Option<Upload>, size: u64) -> Self {
        let piece = size.clamp(1, WRITE_PIECE as u64) as usize;
        let active = upload.is_some();
        Self {
            rt,
            active,
            upload,
            failed: None,
            buf: if active { vec![0; piece] } else { Vec::new() },
            filled: 0,
            spare: None,
            pending: None,
        }
    }

    fn is_active(&self) -> bool {
        self.active
    }

    /// Free room in the current piece, at most `max` octets (never empty while active: a full
    /// piece is written at once).
    fn space(&mut self, max: usize) -> &mut [u8] {
        let end = self.buf.len().min(self.filled + max);
        &mut self.buf[self.filled..end]
    }

    /// Counts `n` octets written into [`Sink::space`].
    async fn advance(&mut self, n: usize) {
        self.filled += n;
        if self.filled == self.buf.len() {
            self.submit().await;
        }
    }

    /// Copies payload octets into the current piece.
    async fn push(&mut self, mut data: &[u8]) {
        while self.active && !data.is_empty() {
            let space = self.space(data.len());
            let n = space.len();
            space.copy_from_slice(&data[..n]);
            data = &data[n..];
            self.advance(n).await;
        }
    }

    /// Starts writing the current piece (after the previous write has finished).
    async fn submit(&mut self) {
        self.settle().await;
        let n = mem::take(&mut self.filled);
        if !self.active || n == 0 {
            return;
        }
        let Some(mut upload) = self.upload.take() else {
            return;
        };
        let next = self.spare.take().unwrap_or_else(|| vec![0; self.buf.len()]);
        let data = mem::replace(&mut self.buf, next);
        let write = self.rt.unblock(move || {
            let result = upload.write_all(&data[..n]);
            (upload, data, result)
        });
        self.pending = Some(Box::pin(write));
    }

    /// Waits for the write in flight, if any.
    async fn settle(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        match pending.await {
            Ok((upload, buf, Ok(()))) => {
                self.upload = Some(upload);
                self.spare = Some(buf);
            }
            Ok((upload, _, Err(e))) => {
                // PUT-17: drop the staging file, discard the rest, answer after the trailer.
                tracing::warn!(error = %e, "write to staging file failed");
                self.fail(e.code());
                let _ = self.rt.unblock(move || drop(upload)).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "write to staging file failed");
                self.fail(Code::STORAGE);
            }
        }
    }

    fn fail(&mut self, code: Code) {
        self.active = false;
        self.failed = Some(code);
        self.buf = Vec::new();
        self.filled = 0;
    }

    /// Writes what is left and hands the upload over for its commit.
    async fn finish(&mut self) -> Result<Upload, Code> {
        self.submit().await;
        self.settle().await;
        if let Some(code) = self.failed {
            return Err(code);
        }
        self.active = false;
        self.upload.take().ok_or(Code::STORAGE)
    }

    /// Removes the staging file (after the write in flight, if any).
    async fn discard(&mut self) {
        self.settle().await;
        self.active = false;
        if let Some(upload) = self.upload.take() {
            let _ = self.rt.unblock(move || drop(upload)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened(dir: &std::path::Path, content: &[u8]) -> ReadFile {
        std::fs::write(dir.join("f"), content).expect("write");
        let root = ferry_store::Root::open(dir).expect("open the root");
        root.open_read(&FileName::new("f").expect("name"))
            .expect("open f")
    }

    #[test]
    fn a_whole_read_file_carries_its_digest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let whole = read_whole(opened(dir.path(), b"hello ferry"));
        assert_eq!(&whole.buf[HEAD_ROOM..], b"hello ferry");
        let mut h = Hasher::new();
        h.update(b"hello ferry");
        assert_eq!(whole.outcome, Ok(h.digest()));
        let empty = read_whole(opened(dir.path(), b""));
        assert_eq!(empty.buf.len(), HEAD_ROOM);
        assert_eq!(empty.outcome, Ok(Hasher::new().digest()));
    }

    #[test]
    fn a_file_that_changes_after_it_was_opened_is_aborted_with_430() {
        // GET-9: shorter than announced, or longer (size and mtime no longer match).
        let dir = tempfile::tempdir().expect("tempdir");
        let file = opened(dir.path(), b"0123456789");
        std::fs::write(dir.path().join("f"), b"0123").expect("truncate");
        assert_eq!(read_whole(file).outcome, Err(Code::CHANGED));

        let file = opened(dir.path(), b"0123456789");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("f"))
            .expect("open for append");
        io::Write::write_all(&mut f, b"more").expect("append");
        assert_eq!(read_whole(file).outcome, Err(Code::CHANGED));
    }

    #[test]
    fn chunk_heads_fill_the_room_in_front_of_the_data() {
        let mut buf = vec![0u8; HEAD_ROOM + 3];
        buf[HEAD_ROOM..].copy_from_slice(b"abc");
        let start = put_chunk_head(&mut buf, 3);
        assert_eq!(&buf[start..], b"data 3\nabc");
    }
}
