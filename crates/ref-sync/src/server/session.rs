//! One session: the state machine of spec/protocol.md section 3, driven over `conn`'s
//! timed I/O, with `ferry-wire` for every octet on the wire and `ferry-store` for every file.
//!
//! Requests are executed one after another in the order received (PIPE-1). Replies go into
//! a `BufWriter` that is flushed before every read that could block, so the replies to a
//! batch of pipelined requests leave together, and a reply is never held back while the
//! session waits for input.

use std::io::{self, BufWriter, Read, Write};
use std::net::{Shutdown as NetShutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ferry_store::{ReadFile, StoreError, Upload};
use ferry_wire::limits::MAX_CHUNK;
use ferry_wire::{
    Code, DecodeError, ErrorReply, FileName, Frame, Hasher, Invalid, InvalidKind, PayloadReceiver,
    PutFlow, PutMode, Reply, Request, Step, Version, chunk_lengths, decode_request,
};

use super::Shared;
use super::conn::{Input, Output, SLICE, Stop, Wait, write_stop};

/// Room in front of a chunk's data in the file buffer for its `data LEN` line, so that head
/// and data leave in one write.
const HEAD_ROOM: usize = 32;

/// Capacity of the reply buffer.
const OUTPUT_CAPACITY: usize = 64 * 1024;

/// How long a closing server keeps reading (and discarding) after its last reply (CLOSE-6).
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// Runs one session on an accepted connection.
pub(super) fn serve(shared: &Shared, stream: &TcpStream, peer: SocketAddr, id: u64) {
    let span = tracing::info_span!("session", id, %peer);
    let _entered = span.enter();
    if let Err(e) = stream
        .set_read_timeout(Some(SLICE))
        .and_then(|()| stream.set_write_timeout(Some(SLICE)))
    {
        tracing::warn!(error = %e, "cannot set socket timeouts");
        return;
    }
    // Replies are batched by the BufWriter; Nagle would only delay the last one.
    let _ = stream.set_nodelay(true);
    tracing::debug!("session started");
    let mut session = Session {
        shared,
        stream,
        input: Input::new(stream, shared),
        out: BufWriter::with_capacity(OUTPUT_CAPACITY, Output::new(stream, shared)),
        first: true,
        file_buf: Vec::new(),
        line: Vec::with_capacity(256),
    };
    match session.run() {
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

/// The largest file buffer a session keeps between gets: a session that once sent a 1 MiB
/// chunk does not hold 1 MiB while it waits for its next request.
const KEEP_FILE_BUF: usize = 64 * 1024;

struct Session<'a> {
    shared: &'a Shared,
    stream: &'a TcpStream,
    input: Input<'a>,
    out: BufWriter<Output<'a>>,
    /// No request line has been read yet (`version` is allowed, VER-2).
    first: bool,
    /// File data of gets, with [`HEAD_ROOM`] in front; grown on demand, and given back after
    /// a get that needed more than [`KEEP_FILE_BUF`].
    file_buf: Vec<u8>,
    /// Scratch for encoding lines.
    line: Vec<u8>,
}

fn err_reply(code: Code) -> ErrorReply {
    ErrorReply::new(code, code.name().unwrap_or("error"))
}

/// Reads until `buf` is full or the file ends; returns how much it read.
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

impl Session<'_> {
    fn run(&mut self) -> End {
        let shared = self.shared;
        if let Err(e) = self.out.write_all(&shared.greeting) {
            return self.write_failed(e);
        }
        loop {
            // CLOSE-8: at a request boundary a shutdown ends the session, even with
            // pipelined requests waiting.
            if self.shared.shutdown.is_triggered() {
                return self.close_with(Code::SHUTTING_DOWN);
            }
            if let Err(end) = self.one_request() {
                return end;
            }
        }
    }

    /// Reads and executes one request.
    fn one_request(&mut self) -> Flow<()> {
        if self.input.is_empty() {
            self.flush()?;
            if let Err(stop) = self.input.fill(Wait::Idle) {
                return Err(self.stopped(stop));
            }
        }
        // TIME-2: the whole line within the stall timeout of its first octet, or of the end
        // of the previous reply when that was still being sent (a pipelined line).
        let mut line_deadline = Instant::now() + self.shared.stall;
        let decoded = loop {
            match decode_request(self.input.data()) {
                Ok(x) => break Ok(x),
                Err(DecodeError::Invalid(inv)) => break Err(inv),
                Err(DecodeError::Incomplete) => {
                    if !self.out.buffer().is_empty() {
                        self.flush()?;
                        line_deadline = line_deadline.max(Instant::now() + self.shared.stall);
                    }
                    if let Err(stop) = self.input.fill(Wait::Until(line_deadline)) {
                        return Err(self.stopped(stop));
                    }
                }
            }
        };
        let started = Instant::now();
        let first = std::mem::replace(&mut self.first, false);
        match decoded {
            Ok((request, used)) => {
                self.input.consume(used);
                self.execute(request, first, started)
            }
            Err(invalid) => self.invalid(invalid, started),
        }
    }

    fn execute(&mut self, request: Request, first: bool, started: Instant) -> Flow<()> {
        match request {
            Request::Dir => {
                let outcome = self.dir()?;
                log("dir", None, &outcome, started);
            }
            Request::Get { offset, name } => {
                let outcome = self.get(offset, &name)?;
                log("get", Some(&name), &outcome, started);
            }
            Request::Put {
                size,
                mode,
                flow,
                name,
            } => {
                let outcome = self.put(size, mode, flow, &name)?;
                log("put", Some(&name), &outcome, started);
            }
            Request::Version(v) => {
                let outcome = if !first {
                    // VER-6: only as the first request.
                    self.reply_err(Code::SYNTAX)?
                } else if v == Version::V1 {
                    self.reply(&Reply::VersionOk(v))?;
                    Outcome::ok(0)
                } else {
                    self.reply_err(Code::UNSUPPORTED)?
                };
                log("version", None, &outcome, started);
            }
            Request::Close => {
                self.reply(&Reply::Bye)?;
                log("close", None, &Outcome::ok(0), started);
                self.close();
                return Err(End::Bye);
            }
        }
        Ok(())
    }

    /// A request line that does not match `request` (ERR-7).
    fn invalid(&mut self, invalid: Invalid, started: Instant) -> Flow<()> {
        tracing::info!(error = %invalid, "invalid request");
        let Some(line_len) = invalid.line_len else {
            // Only a line without LF within 4096 octets has no length (FRAME-2).
            return Err(self.close_with(Code::LINE_TOO_LONG));
        };
        // ERR-6: the codec sorts invalid lines by what the server must answer.
        let outcome = match invalid.kind {
            InvalidKind::LineTooLong => return Err(self.close_with(Code::LINE_TOO_LONG)),
            InvalidKind::MalformedPut => return Err(self.close_with(Code::PROTOCOL)),
            InvalidKind::BadName {
                put: Some(head), ..
            } => {
                self.input.consume(line_len);
                if head.flow == PutFlow::Now {
                    if !self.eager_allowed(head.size) {
                        return Err(self.close_with(Code::PROTOCOL));
                    }
                    // PUT-9: the payload follows anyway; read past it, then answer.
                    self.receive(None, head.size, Some(Code::BAD_NAME))?
                } else {
                    self.reply_err(Code::BAD_NAME)?
                }
            }
            InvalidKind::BadName { put: None, .. } => {
                self.input.consume(line_len);
                self.reply_err(Code::BAD_NAME)?
            }
            InvalidKind::Syntax => {
                self.input.consume(line_len);
                self.reply_err(Code::SYNTAX)?
            }
        };
        log("invalid", None, &outcome, started);
        Ok(())
    }

    fn eager_allowed(&self, size: u64) -> bool {
        self.shared.max_eager > 0 && size <= self.shared.max_eager
    }

    // ------------------------------------------------------------------ dir ---

    fn dir(&mut self) -> Flow {
        let entries = match self.shared.root.list() {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(error = %e, "listing failed");
                return self.reply_err(Code::STORAGE);
            }
        };
        self.line.clear();
        Reply::DirOk {
            count: entries.len() as u64,
        }
        .encode(&mut self.line);
        for entry in &entries {
            entry.encode(&mut self.line);
        }
        let result = self.out.write_all(&self.line);
        result.map_err(|e| self.write_failed(e))?;
        Ok(Outcome::ok(entries.len() as u64))
    }

    // ------------------------------------------------------------------ get ---

    fn get(&mut self, offset: u64, name: &FileName) -> Flow {
        let file = match self.shared.root.open_read(name) {
            Ok(f) => f,
            Err(e) => {
                if let StoreError::Io(e) = &e {
                    tracing::warn!(%name, error = %e, "cannot open for get");
                }
                return self.reply_err(e.code());
            }
        };
        if offset > file.size {
            return self.reply_err(Code::BAD_OFFSET);
        }
        self.reply(&Reply::GetOk {
            size: file.size,
            mtime: file.mtime,
        })?;
        let sent = self.send_payload(&file, offset);
        if self.file_buf.len() > KEEP_FILE_BUF {
            self.file_buf = Vec::new();
        }
        sent
    }

    /// Sends octets `offset..size` of `file` as chunks, then `end` with the digest of the whole
    /// file, whose octets before `offset` are read and hashed first (SUM-2); or an `abort` at a
    /// chunk boundary (GET-9, GET-10, CLOSE-9). Every chunk is read before its head is sent
    /// (DATA-12).
    fn send_payload(&mut self, file: &ReadFile, offset: u64) -> Flow {
        self.out.get_mut().set_in_payload(true);
        let mut result = self.send_chunks(file, offset);
        if result.is_ok() && self.shared.shutdown.is_triggered() {
            // Chunk data still queued must leave whole while the deadline may pass.
            if let Err(end) = self.flush() {
                result = Err(end);
            }
        }
        self.out.get_mut().set_in_payload(false);
        result
    }

    fn send_chunks(&mut self, file: &ReadFile, offset: u64) -> Flow {
        let total = file.size;
        let block = total.clamp(1, u64::from(MAX_CHUNK)) as usize;
        if self.file_buf.len() < HEAD_ROOM + block {
            self.file_buf.resize(HEAD_ROOM + block, 0);
        }
        let mut hasher = Hasher::new();
        let mut pos = 0u64;
        while pos < offset {
            if self.shared.past_hard_deadline() {
                return Err(self.abort_and_close());
            }
            let want = (offset - pos).min(block as u64) as usize;
            let data = &mut self.file_buf[HEAD_ROOM..HEAD_ROOM + want];
            match read_full(&file.file, data) {
                Ok(n) if n == want => hasher.update(data),
                Ok(_) => return self.abort(Code::CHANGED, pos),
                Err(e) => {
                    tracing::warn!(error = %e, "read failed");
                    return self.abort(Code::STORAGE, pos);
                }
            }
            pos += want as u64;
        }
        let mut sent = 0u64;
        for len in chunk_lengths(total - offset) {
            if self.shared.past_hard_deadline() {
                return Err(self.abort_and_close());
            }
            let len = len.as_usize();
            let data = &mut self.file_buf[HEAD_ROOM..HEAD_ROOM + len];
            match read_full(&file.file, data) {
                Ok(n) if n == len => hasher.update(data),
                Ok(_) => return self.abort(Code::CHANGED, sent),
                Err(e) => {
                    tracing::warn!(error = %e, "read failed");
                    return self.abort(Code::STORAGE, sent);
                }
            }
            let mut head = [0u8; HEAD_ROOM];
            let head_len = {
                let mut w = &mut head[..];
                let _ = writeln!(w, "data {len}");
                HEAD_ROOM - w.len()
            };
            let start = HEAD_ROOM - head_len;
            self.file_buf[start..HEAD_ROOM].copy_from_slice(&head[..head_len]);
            let result = self.out.write_all(&self.file_buf[start..HEAD_ROOM + len]);
            result.map_err(|e| self.write_failed(e))?;
            sent += len as u64;
        }
        match file.unchanged() {
            Ok(true) => {
                self.frame(&Frame::End(hasher.digest()))?;
                Ok(Outcome::ok(sent))
            }
            Ok(false) => self.abort(Code::CHANGED, sent),
            Err(e) => {
                tracing::warn!(error = %e, "fstat failed");
                self.abort(Code::STORAGE, sent)
            }
        }
    }

    fn abort(&mut self, code: Code, sent: u64) -> Flow {
        self.frame(&Frame::Abort(err_reply(code)))?;
        Ok(Outcome {
            code: Some(code),
            bytes: sent,
        })
    }

    /// CLOSE-9: the shutdown deadline passed during a get payload.
    fn abort_and_close(&mut self) -> End {
        // Chunk data still queued leaves whole first (DATA-11).
        if let Err(end) = self.flush() {
            return end;
        }
        self.out.get_mut().set_patience(Some(SLICE));
        if self
            .frame(&Frame::Abort(err_reply(Code::SHUTTING_DOWN)))
            .is_ok()
        {
            self.close();
        }
        End::Closed(Code::SHUTTING_DOWN)
    }

    // ------------------------------------------------------------------ put ---

    fn put(&mut self, size: u64, mode: PutMode, flow: PutFlow, name: &FileName) -> Flow {
        // PUT-8: before any other check, and without reading the payload.
        if flow == PutFlow::Now && !self.eager_allowed(size) {
            return Err(self.close_with(Code::PROTOCOL));
        }
        // PUT-2, in order (the name was checked by the decoder).
        let checked = if self.shared.read_only {
            Err(Code::READ_ONLY)
        } else if size > self.shared.max_size {
            Err(Code::TOO_LARGE)
        } else {
            self.shared
                .root
                .begin_upload(name, size, mode)
                .map_err(|e| {
                    if let StoreError::Io(e) = &e {
                        tracing::warn!(%name, error = %e, "cannot start upload");
                    }
                    e.code()
                })
        };
        match (flow, checked) {
            (PutFlow::Wait, Err(code)) => self.reply_err(code),
            (PutFlow::Wait, Ok(upload)) => {
                self.reply(&Reply::Go)?;
                self.receive(Some(upload), size, None)
            }
            (PutFlow::Now, Err(code)) => self.receive(None, size, Some(code)),
            (PutFlow::Now, Ok(upload)) => self.receive(Some(upload), size, None),
        }
    }

    /// Receives a put's payload of `size` octets into `upload`, or discards it when the put
    /// was refused (`refusal`) or storage fails midway, and answers once the trailer is in.
    fn receive(&mut self, upload: Option<Upload>, size: u64, refusal: Option<Code>) -> Flow {
        let mut upload = upload;
        let mut pending = refusal;
        let mut rx = PayloadReceiver::new(size);
        loop {
            if self.shared.past_hard_deadline() {
                // CLOSE-9: remove the staging file, say why, close.
                drop(upload);
                return Err(self.close_with(Code::SHUTTING_DOWN));
            }
            if self.input.is_empty() {
                self.fill_payload(&mut upload)?;
            }
            let (step, used) = match rx.feed(self.input.data()) {
                Ok(x) => x,
                Err(e) => {
                    tracing::info!(error = %e, "framing violation in upload");
                    drop(upload);
                    return Err(self.close_with(Code::PROTOCOL));
                }
            };
            match step {
                Step::NeedMore => {
                    self.input.consume(used);
                    if used == 0 {
                        // An incomplete frame line: more octets must be appended.
                        self.fill_payload(&mut upload)?;
                    }
                }
                Step::Data(data) => {
                    if let Some(up) = upload.as_mut() {
                        if let Err(e) = up.write_all(data) {
                            // PUT-17: drop the staging file, discard the rest, then answer.
                            tracing::warn!(error = %e, "write to staging file failed");
                            pending = Some(e.code());
                            upload = None;
                        }
                    }
                    self.input.consume(used);
                }
                Step::Complete(digest) => {
                    self.input.consume(used);
                    let code = match (pending, upload) {
                        (Some(code), _) => code,
                        (None, Some(up)) => match up.commit() {
                            Ok(()) => {
                                self.reply(&Reply::PutOk { size, digest })?;
                                return Ok(Outcome::ok(size));
                            }
                            Err(e) => {
                                if let StoreError::Io(e) = &e {
                                    tracing::warn!(error = %e, "commit failed");
                                }
                                e.code()
                            }
                        },
                        (None, None) => Code::STORAGE,
                    };
                    return self.reply_err(code);
                }
                Step::Corrupt {
                    announced,
                    computed,
                } => {
                    self.input.consume(used);
                    drop(upload);
                    if pending.is_none() {
                        tracing::info!(%announced, %computed, "digest mismatch");
                    }
                    return self.reply_err(pending.unwrap_or(Code::CORRUPT));
                }
                Step::Aborted(reason) => {
                    self.input.consume(used);
                    drop(upload);
                    tracing::debug!(code = %reason.code, "client aborted the upload");
                    return self.reply_err(pending.unwrap_or(Code::ABORTED));
                }
            }
        }
    }

    /// Waits for more payload octets. When the upload cannot go on (EOF, stall timeout,
    /// shutdown deadline, a broken connection), its staging file is removed first, before the
    /// session says why and closes (PUT-16, TIME-4).
    fn fill_payload(&mut self, upload: &mut Option<Upload>) -> Flow<()> {
        if let Err(end) = self.flush() {
            *upload = None;
            return Err(end);
        }
        match self.input.fill(Wait::Progress) {
            Ok(_) => Ok(()),
            Err(stop) => {
                *upload = None;
                Err(self.stopped(stop))
            }
        }
    }

    // ------------------------------------------------------------ replies ---

    fn reply(&mut self, reply: &Reply) -> Flow<()> {
        self.line.clear();
        reply.encode(&mut self.line);
        let result = self.out.write_all(&self.line);
        result.map_err(|e| self.write_failed(e))
    }

    fn reply_err(&mut self, code: Code) -> Flow {
        self.reply(&Reply::Err(err_reply(code)))?;
        Ok(Outcome::err(code))
    }

    fn frame(&mut self, frame: &Frame) -> Flow<()> {
        self.line.clear();
        frame.encode(&mut self.line);
        let result = self.out.write_all(&self.line);
        result.map_err(|e| self.write_failed(e))
    }

    fn flush(&mut self) -> Flow<()> {
        let result = self.out.flush();
        result.map_err(|e| self.write_failed(e))
    }

    fn write_failed(&mut self, e: io::Error) -> End {
        match write_stop(e) {
            Stop::Timeout => End::Dropped("peer accepts no output"),
            Stop::Shutdown => End::Dropped("shutdown deadline passed"),
            Stop::Eof => End::Eof,
            Stop::Io(e) => End::Io(e),
        }
    }

    /// A read did not complete: EOF ends the session silently (CLOSE-4), a timeout gets 421
    /// (TIME-5) and a shutdown 422 (CLOSE-8) before the close.
    fn stopped(&mut self, stop: Stop) -> End {
        match stop {
            Stop::Eof => {
                // CLOSE-5: the replies to what was received completely still go out.
                let _ = self.out.flush();
                End::Eof
            }
            Stop::Timeout => self.close_with(Code::TIMEOUT),
            Stop::Shutdown => self.close_with(Code::SHUTTING_DOWN),
            Stop::Io(e) => End::Io(e),
        }
    }

    /// Sends a closing error (420, 421, 422, 501, 502) and closes (ERR-6, CLOSE-6).
    fn close_with(&mut self, code: Code) -> End {
        tracing::info!(code = %code, "closing");
        // Without waiting long: the peer may be the reason the session ends (TIME-5).
        self.out.get_mut().set_patience(Some(SLICE));
        if self.reply(&Reply::Err(err_reply(code))).is_ok() {
            self.close();
        }
        End::Closed(code)
    }

    /// CLOSE-6: flush, shut down the sending side, then read and discard input for a short
    /// time (or until EOF) so that unread input does not turn the close into a reset that
    /// destroys the last reply.
    fn close(&mut self) {
        if self.out.flush().is_err() {
            return;
        }
        let _ = self.stream.shutdown(NetShutdown::Write);
        let deadline = Instant::now() + DRAIN_TIME;
        let deadline = match self.shared.hard_deadline() {
            Some(hard) => deadline.min(hard.max(Instant::now())),
            None => deadline,
        };
        loop {
            self.input.clear();
            if self.input.fill(Wait::Until(deadline)).is_err() {
                break;
            }
        }
    }
}

/// One info event per request: command, name, octets moved (entries for `dir`), the error
/// code if any, and how long it took.
fn log(command: &'static str, name: Option<&FileName>, outcome: &Outcome, started: Instant) {
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let code = outcome.code.map(|c| c.get());
    match (command, name) {
        ("dir", _) => tracing::info!(command, entries = outcome.bytes, code, micros, "request"),
        (_, Some(name)) => {
            tracing::info!(command, %name, bytes = outcome.bytes, code, micros, "request");
        }
        (_, None) => tracing::info!(command, code, micros, "request"),
    }
}
