//! A client connection to the server under test, every read bounded by the case's deadline,
//! with readers that check what the server sends (grammar, LF-only line ends, known codes)
//! and turn every surprise into a [`Stop`] that names the requirement concerned. Over TLS
//! (spec section 15) the same connection carries the session inside rustls' blocking
//! [`StreamOwned`], the handshake done before anything else and bounded by the deadline.

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use ferry_tls::ClientTls;
use ferry_tls::rustls::{ClientConnection, StreamOwned};

use ferry_wire::limits::MAX_LINE;
use ferry_wire::{
    Digest, Entry, ErrorReply, Frame, Greeting, Hello, PutFlow, PutMode, Reply, decode_entry,
    decode_frame, decode_hello, decode_reply, encode_payload,
};

use crate::case::{Res, Stop, ensure, violation};

/// Octets shown as text: `{}` prints them escaped, `{:?}` escaped and in quotes (without
/// escaping the escapes again).
#[derive(Clone, PartialEq, Eq)]
pub struct Shown(String);

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

impl From<Shown> for String {
    fn from(s: Shown) -> String {
        s.0
    }
}

impl std::borrow::Borrow<str> for Shown {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Shown {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Octets as text for messages: invalid UTF-8 and control characters escaped, long runs cut.
pub(crate) fn show(bytes: &[u8]) -> Shown {
    Shown(show_string(bytes))
}

fn show_string(bytes: &[u8]) -> String {
    const MAX: usize = 160;
    let mut out = String::new();
    let cut = bytes.len() > MAX;
    let bytes = &bytes[..bytes.len().min(MAX)];
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if cut {
        out.push('…');
    }
    out
}

/// A reply as it was on the wire (without its LF).
pub(crate) fn show_reply(r: &Reply) -> String {
    show(r.to_bytes().strip_suffix(b"\n").unwrap_or(&[])).into()
}

/// The end of a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Trailer {
    /// `end DIGEST`.
    End(Digest),
    /// `abort CODE [TEXT]`.
    Abort(ErrorReply),
}

impl Trailer {
    /// As on the wire.
    pub(crate) fn show(&self) -> String {
        match self {
            Trailer::End(d) => format!("end {d}"),
            Trailer::Abort(e) => show(
                Frame::Abort(e.clone())
                    .to_bytes()
                    .strip_suffix(b"\n")
                    .unwrap_or(&[]),
            )
            .into(),
        }
    }
}

/// A payload as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Payload {
    /// The file octets.
    pub data: Vec<u8>,
    /// The chunk lengths, in order.
    pub chunks: Vec<u32>,
    /// How it ended.
    pub trailer: Trailer,
}

/// The answer to a get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GetReply {
    /// `ok get SIZE MTIME` and its payload.
    Ok {
        /// SIZE.
        size: u64,
        /// MTIME.
        mtime: ferry_wire::Timestamp,
        /// The payload.
        payload: Payload,
    },
    /// `err CODE`.
    Err(ErrorReply),
}

impl GetReply {
    /// A short description.
    pub(crate) fn show(&self) -> String {
        match self {
            GetReply::Ok { size, payload, .. } => format!(
                "ok get {size} ..., {} octets {:?}, {}",
                payload.data.len(),
                show(&payload.data[..payload.data.len().min(24)]),
                payload.trailer.show()
            ),
            GetReply::Err(e) => show_reply(&Reply::Err(e.clone())),
        }
    }
}

/// What a read found.
enum Fill {
    Data,
    Eof,
    Timeout,
}

/// A line, or why there is none.
pub(crate) enum LineRead {
    /// A complete line, eol included.
    Line(Vec<u8>),
    /// The connection ended; the octets of an incomplete line, if any.
    Eof(Vec<u8>),
    /// Nothing complete before the deadline.
    Timeout,
    /// 4096 octets without LF.
    TooLong,
}

/// Where a server listens, and whether it speaks ferry/1 over TLS there.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The TCP address.
    pub addr: SocketAddr,
    /// The client's TLS side for it (None: plain ferry/1).
    pub tls: Option<ClientTls>,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.tls.is_some() {
            write!(f, "ferrys://{}", self.addr)
        } else {
            write!(f, "{}", self.addr)
        }
    }
}

/// How a session's octets travel: plain TCP, or TLS over it.
pub(crate) enum Transport {
    /// ferry/1 on TCP.
    Plain(TcpStream),
    /// ferry/1 over TLS (the handshake is complete).
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Plain(s) => f.debug_tuple("Plain").field(s).finish(),
            Transport::Tls(s) => f.debug_tuple("Tls").field(&s.sock).finish(),
        }
    }
}

impl Transport {
    /// Connects to `to` (and completes the TLS handshake when it is a TLS endpoint) before
    /// `deadline`. A refused TCP connection violates CONN-7, a failed handshake TLS-2 (or
    /// TLS-3 when the server did not select ALPN `ferry/1`).
    pub(crate) fn connect(to: &Endpoint, deadline: Instant) -> Res<Transport> {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        let stream = TcpStream::connect_timeout(&to.addr, left).map_err(|e| {
            violation(
                "CONN-7",
                format!("the server accepts a connection on {to}"),
                format!("connect failed: {e}"),
            )
        })?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
        match &to.tls {
            None => Ok(Transport::Plain(stream)),
            Some(tls) => {
                let conn = tls.connect().map_err(local)?;
                Ok(Transport::Tls(Box::new(handshake(conn, stream, deadline)?)))
            }
        }
    }

    /// The TCP connection underneath.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(s) => &s.sock,
        }
    }

    /// Bounds the next reads.
    pub(crate) fn set_read_timeout(&self, d: Option<Duration>) {
        let _ = self.tcp().set_read_timeout(d);
    }

    /// Sends all of `bytes` (over TLS: as records, flushed to the socket).
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.write_all(bytes),
            Transport::Tls(s) => {
                s.write_all(bytes)?;
                s.flush()
            }
        }
    }

    /// Reads what arrived. Over TLS: `Ok(0)` only after the server's `close_notify`; a TCP
    /// end without it is an `UnexpectedEof` error.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(s) => s.read(buf),
        }
    }

    /// Ends the sending direction: over TLS a `close_notify` first (TLS-6), then the TCP
    /// half-close.
    pub(crate) fn shutdown_write(&mut self) {
        if let Transport::Tls(s) = self {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        let _ = self.tcp().shutdown(Shutdown::Write);
    }
}

/// Completes a TLS handshake on `stream` before `deadline`, and checks that the server
/// selected ALPN `ferry/1` (TLS-3).
pub(crate) fn handshake(
    mut conn: ClientConnection,
    mut stream: TcpStream,
    deadline: Instant,
) -> Res<StreamOwned<ClientConnection, TcpStream>> {
    let expected = "a TLS 1.3 handshake that selects ALPN ferry/1";
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(violation(
                "TLS-2",
                expected,
                "the handshake did not finish before the case's deadline".to_owned(),
            ));
        }
        let _ = stream.set_read_timeout(Some(left));
        match conn.complete_io(&mut stream) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                let why = explain(&e);
                return Err(violation(
                    "TLS-2",
                    expected,
                    format!("the handshake failed: {why}"),
                ));
            }
        }
    }
    ensure(
        conn.alpn_protocol() == Some(ferry_tls::ALPN),
        "TLS-3",
        "the server selects ALPN ferry/1",
        || match conn.alpn_protocol() {
            None => "no ALPN protocol selected".to_owned(),
            Some(p) => format!("ALPN {:?} selected", show(p)),
        },
    )?;
    Ok(StreamOwned::new(conn, stream))
}

/// A TLS failure as a sentence ([`ferry_tls::explain`] of the rustls error an I/O error
/// carries: `io::Error::source` skips it).
pub(crate) fn explain(e: &io::Error) -> String {
    ferry_tls::explain(e).unwrap_or_else(|| e.to_string())
}

/// How a TLS connection ended (for TLS-6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TlsEnd {
    /// The server sent `close_notify` before closing.
    CloseNotify,
    /// The connection ended without it: why.
    Cut(String),
}

/// One connection to a server.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: Transport,
    buf: Vec<u8>,
    eof: bool,
    deadline: Instant,
    /// Over TLS, once the connection ended: how.
    tls_end: Option<TlsEnd>,
    /// The greeting offered the `auth` extension: its codes (section 16) are known codes of
    /// this session (EXT-3).
    auth_offered: bool,
    /// The greeting offered the `tree` extension: its codes (517, 518, section 17) are known
    /// codes of this session.
    tree_offered: bool,
}

/// Resolves `addr` (`host:port`).
pub(crate) fn resolve(addr: &str) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the address resolves to nothing"))
}

impl Conn {
    /// Connects (over TLS: and completes the handshake), without reading anything. A server
    /// that does not accept connections violates CONN-7 (it must keep listening).
    pub(crate) fn connect(to: &Endpoint, deadline: Instant) -> Res<Conn> {
        Ok(Conn::over(Transport::connect(to, deadline)?, deadline))
    }

    /// A connection over `stream`, already connected.
    pub(crate) fn over(stream: Transport, deadline: Instant) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
            eof: false,
            deadline,
            tls_end: None,
            auth_offered: false,
            tree_offered: false,
        }
    }

    /// Connects and reads and checks the greeting (HELLO-1 .. HELLO-7, CONN-4).
    pub(crate) fn open(to: &Endpoint, deadline: Instant) -> Res<(Conn, Greeting)> {
        let mut c = Conn::connect(to, deadline)?;
        let g = c.greeting()?;
        Ok((c, g))
    }

    /// Over TLS, once the connection ended: whether the server sent `close_notify` first.
    pub(crate) fn tls_end(&self) -> Option<&TlsEnd> {
        self.tls_end.as_ref()
    }

    /// Over TLS, once the handshake is complete: the connection's channel-binding value
    /// (TLS-15); `None` on plain ferry/1.
    pub(crate) fn channel_binding(&self) -> Option<[u8; 32]> {
        match &self.stream {
            Transport::Plain(_) => None,
            Transport::Tls(s) => ferry_tls::channel_binding(&s.conn).ok(),
        }
    }

    /// Moves the deadline.
    pub(crate) fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// Octets received and not consumed yet.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Sends octets. A failure (the server closed or reset the connection) is reported as a
    /// violation of `req`.
    pub(crate) fn send(&mut self, req: &str, bytes: &[u8]) -> Res<()> {
        self.stream.write_all(bytes).map_err(|e| {
            violation(
                req,
                "the server keeps the connection open and reads the request",
                format!("sending failed: {e}"),
            )
        })
    }

    /// Sends octets, ignoring failures (the server may legitimately have closed).
    pub(crate) fn send_lenient(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// Sends octets `per_write` at a time, pausing `pause` between writes.
    pub(crate) fn send_drip(
        &mut self,
        req: &str,
        bytes: &[u8],
        per_write: usize,
        pause: Duration,
    ) -> Res<()> {
        for piece in bytes.chunks(per_write.max(1)) {
            self.send(req, piece)?;
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
        Ok(())
    }

    /// Closes the sending direction (the server reads EOF; over TLS after `close_notify`).
    pub(crate) fn shutdown_write(&mut self) {
        self.stream.shutdown_write();
    }

    fn fill(&mut self) -> Fill {
        if self.eof {
            return Fill::Eof;
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Fill::Timeout;
        }
        self.stream.set_read_timeout(Some(left));
        let mut chunk = vec![0u8; 256 * 1024];
        let tls = matches!(self.stream, Transport::Tls(_));
        match self.stream.read(&mut chunk) {
            Ok(0) => {
                self.eof = true;
                if tls {
                    self.tls_end = Some(TlsEnd::CloseNotify);
                }
                Fill::Eof
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Fill::Data
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Fill::Timeout
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Fill::Data,
            Err(e) => {
                // Reset or broken (over TLS also: ended without close_notify, or a TLS
                // alert): the connection is over.
                self.eof = true;
                if tls {
                    self.tls_end = Some(TlsEnd::Cut(if e.kind() == io::ErrorKind::UnexpectedEof {
                        "the TCP connection ended without close_notify".to_owned()
                    } else {
                        explain(&e)
                    }));
                }
                Fill::Eof
            }
        }
    }

    /// Reads more octets into the buffer: `Some(true)` data, `Some(false)` EOF (or reset),
    /// `None` deadline reached.
    pub(crate) fn read_more(&mut self) -> Option<bool> {
        match self.fill() {
            Fill::Data => Some(true),
            Fill::Eof => Some(false),
            Fill::Timeout => None,
        }
    }

    /// Reads one line (eol included), at most 4096 octets.
    pub(crate) fn line(&mut self) -> LineRead {
        loop {
            let window = &self.buf[..self.buf.len().min(MAX_LINE)];
            if let Some(lf) = window.iter().position(|&b| b == b'\n') {
                return LineRead::Line(self.buf.drain(..=lf).collect());
            }
            if self.buf.len() >= MAX_LINE {
                return LineRead::TooLong;
            }
            match self.fill() {
                Fill::Data => {}
                Fill::Eof => return LineRead::Eof(std::mem::take(&mut self.buf)),
                Fill::Timeout => return LineRead::Timeout,
            }
        }
    }

    /// Reads exactly `n` octets; `None` at EOF or timeout.
    fn exact(&mut self, n: usize) -> Result<Vec<u8>, String> {
        while self.buf.len() < n {
            match self.fill() {
                Fill::Data => {}
                Fill::Eof => {
                    return Err(format!(
                        "the connection ended after {} of {n} chunk octets",
                        self.buf.len()
                    ));
                }
                Fill::Timeout => {
                    return Err(format!(
                        "only {} of {n} chunk octets arrived before the deadline",
                        self.buf.len()
                    ));
                }
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// ERR-1: only the codes of the table, and in a session that offered `auth` or `tree`
    /// also that extension's codes (sections 16 and 17).
    pub(crate) fn check_code(&self, e: &ErrorReply) -> Res<()> {
        if self.auth_offered && ferry_wire::auth::code_name(e.code).is_some() {
            return Ok(());
        }
        if self.tree_offered && ferry_wire::tree::code_name(e.code).is_some() {
            return Ok(());
        }
        check_code(e)
    }

    /// Reads a complete line sent by the server, checks it ends with LF alone (FRAME-3), or
    /// reports its absence as a violation of `req` ("expected `expected`").
    pub(crate) fn server_line(&mut self, req: &str, expected: &str) -> Res<Vec<u8>> {
        match self.line() {
            LineRead::Line(l) => {
                ensure(
                    !l.ends_with(b"\r\n"),
                    "FRAME-3",
                    "server lines end with LF alone",
                    || format!("{:?} ends with CR LF", show(&l)),
                )?;
                Ok(l)
            }
            LineRead::Eof(partial) if partial.is_empty() => Err(violation(
                req,
                expected,
                "the server closed the connection".to_owned(),
            )),
            LineRead::Eof(partial) => Err(violation(
                req,
                expected,
                format!(
                    "the server closed the connection after an incomplete line {:?}",
                    show(&partial)
                ),
            )),
            LineRead::Timeout => Err(violation(
                req,
                expected,
                format!(
                    "nothing complete arrived in time (received {:?})",
                    show(&self.buf)
                ),
            )),
            LineRead::TooLong => Err(violation(
                "FRAME-2",
                "server lines of at most 4096 octets",
                format!("4096 octets without LF: {:?}", show(&self.buf)),
            )),
        }
    }

    /// Reads and checks the greeting: grammar and HELLO-2/3 (decoder), version 1 listed once
    /// (HELLO-4), fixed values (HELLO-5), `idle` and `stall` at least 1 (HELLO-7).
    pub(crate) fn greeting(&mut self) -> Res<Greeting> {
        let line = self.server_line("CONN-4", "the greeting as the server's first line")?;
        let g = match decode_hello(&line) {
            Ok((Hello::Greeting(g), _)) => g,
            Ok((Hello::Refused(e), _)) => {
                return Err(violation(
                    "CONN-4",
                    "a greeting (the server is not expected to be at its session limit)",
                    show_reply(&Reply::Err(e)),
                ));
            }
            Err(e) => {
                return Err(violation(
                    "HELLO-1",
                    "a greeting that matches `greeting` (HELLO-1, HELLO-2, HELLO-3, EXT-1)",
                    format!("{:?}: {e}", show(&line)),
                ));
            }
        };
        check_greeting(&g, &line)?;
        self.auth_offered = g
            .extensions()
            .iter()
            .any(|e| e.as_str() == ferry_wire::auth::EXTENSION);
        self.tree_offered = ferry_wire::tree::offered(&g);
        Ok(g)
    }

    /// Reads one reply. `expected` describes what the case waits for; a missing reply is a
    /// violation of `req`. Replies with codes outside the table violate ERR-1.
    pub(crate) fn reply(&mut self, req: &str, expected: &str) -> Res<Reply> {
        let line = self.server_line(req, expected)?;
        match decode_reply(&line) {
            Ok((r, _)) => {
                if let Reply::Err(e) = &r {
                    self.check_code(e)?;
                }
                Ok(r)
            }
            Err(e) => Err(violation(
                "FRAME-6",
                format!("a reply line that matches `reply` (waiting for {expected})"),
                format!("{:?}: {e}", show(&line)),
            )),
        }
    }

    /// Reads a reply and checks that it is `err CODE`.
    pub(crate) fn expect_err(&mut self, req: &str, code: u16) -> Res<ErrorReply> {
        let expected = format!("err {code}");
        match self.reply(req, &expected)? {
            Reply::Err(e) if e.code.get() == code => Ok(e),
            other => Err(violation(req, expected, show_reply(&other))),
        }
    }

    /// Reads a reply and checks that it is exactly `want`.
    pub(crate) fn expect_reply(&mut self, req: &str, want: &Reply) -> Res<()> {
        let expected = show_reply(want);
        let got = self.reply(req, &expected)?;
        ensure(&got == want, req, expected, || show_reply(&got))
    }

    /// Reads `count` entry lines.
    pub(crate) fn entries(&mut self, count: u64) -> Res<Vec<Entry>> {
        let mut out = Vec::new();
        for i in 0..count {
            let line = self.server_line("DIR-3", &format!("entry line {} of {count}", i + 1))?;
            match decode_entry(&line) {
                Ok((e, _)) => out.push(e),
                Err(e) => {
                    return Err(violation(
                        "DIR-2",
                        "entry lines `SIZE MTIME NAME` with valid names",
                        format!("{:?}: {e}", show(&line)),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Reads a payload: chunks then a trailer. `expected_len`, when known, is the announced
    /// count (DATA-4).
    pub(crate) fn payload(&mut self, expected_len: Option<u64>) -> Res<Payload> {
        let mut data = Vec::new();
        let mut chunks = Vec::new();
        loop {
            let line = self.server_line("DATA-1", "a chunk head or a trailer")?;
            let frame = match decode_frame(&line) {
                Ok((f, _)) => f,
                Err(e) => {
                    return Err(violation(
                        "DATA-1",
                        "`data LEN`, `end DIGEST` or `abort CODE [TEXT]` (DATA-2: 1 <= LEN <= 1048576)",
                        format!("{:?}: {e}", show(&line)),
                    ));
                }
            };
            match frame {
                Frame::Data(len) => {
                    if let Some(want) = expected_len {
                        let total = data.len() as u64 + u64::from(len.get());
                        ensure(
                            total <= want,
                            "DATA-4",
                            format!("chunks that add up to exactly {want} octets"),
                            || format!("a chunk of {} brings the sum to {total}", len.get()),
                        )?;
                    }
                    let octets = self.exact(len.as_usize()).map_err(|e| {
                        violation("DATA-3", format!("{} octets of chunk data", len.get()), e)
                    })?;
                    chunks.push(len.get());
                    data.extend_from_slice(&octets);
                }
                Frame::End(d) => {
                    if let Some(want) = expected_len {
                        ensure(
                            data.len() as u64 == want,
                            "DATA-4",
                            format!("`end` only after {want} octets"),
                            || format!("`end` after {} octets", data.len()),
                        )?;
                    }
                    return Ok(Payload {
                        data,
                        chunks,
                        trailer: Trailer::End(d),
                    });
                }
                Frame::Abort(e) => {
                    self.check_code(&e)?;
                    return Ok(Payload {
                        data,
                        chunks,
                        trailer: Trailer::Abort(e),
                    });
                }
            }
        }
    }

    /// Checks that the server closes the connection and sends nothing more. `after` says
    /// after what (for messages).
    pub(crate) fn expect_closed(&mut self, req: &str, after: &str) -> Res<()> {
        loop {
            if !self.buf.is_empty() {
                return Err(violation(
                    req,
                    format!("the connection closed after {after}, with nothing more sent"),
                    format!("received {:?}", show(&self.buf)),
                ));
            }
            match self.fill() {
                Fill::Data => {}
                Fill::Eof => return Ok(()),
                Fill::Timeout => {
                    return Err(violation(
                        req,
                        format!("the connection closed after {after}"),
                        "the connection is still open at the case's deadline".to_owned(),
                    ));
                }
            }
        }
    }

    /// Checks that nothing arrives for `quiet` (and the connection stays open).
    pub(crate) fn expect_silence(&mut self, req: &str, quiet: Duration, why: &str) -> Res<()> {
        let saved = self.deadline;
        self.deadline = Instant::now() + quiet;
        let result = loop {
            if !self.buf.is_empty() {
                break Err(violation(
                    req,
                    format!("nothing sent by the server ({why})"),
                    format!("received {:?}", show(&self.buf)),
                ));
            }
            match self.fill() {
                Fill::Data => {}
                Fill::Eof => {
                    break Err(violation(
                        req,
                        format!("the connection stays open ({why})"),
                        "the server closed the connection".to_owned(),
                    ));
                }
                Fill::Timeout => break Ok(()),
            }
        };
        self.deadline = saved;
        result
    }

    /// Waits until the connection ends; returns what arrived before (for timeout checks).
    pub(crate) fn wait_closed(&mut self) -> Result<Vec<u8>, Vec<u8>> {
        loop {
            match self.fill() {
                Fill::Data => {}
                Fill::Eof => return Ok(std::mem::take(&mut self.buf)),
                Fill::Timeout => return Err(std::mem::take(&mut self.buf)),
            }
        }
    }

    // ----------------------------------------------------------------- requests ---

    /// `dir` and its listing.
    pub(crate) fn dir(&mut self, req: &str) -> Res<Vec<Entry>> {
        self.send(req, b"dir\n")?;
        self.read_dir(req)
    }

    /// The reply to a `dir` already sent.
    pub(crate) fn read_dir(&mut self, req: &str) -> Res<Vec<Entry>> {
        match self.reply(req, "ok dir COUNT")? {
            Reply::DirOk { count } => {
                let entries = self.entries(count)?;
                check_listing(&entries)?;
                Ok(entries)
            }
            other => Err(violation(req, "ok dir COUNT", show_reply(&other))),
        }
    }

    /// `get OFFSET NAME` (name as raw octets) and its reply.
    pub(crate) fn get(&mut self, req: &str, offset: u64, name: &[u8]) -> Res<GetReply> {
        let mut line = format!("get {offset} ").into_bytes();
        line.extend_from_slice(name);
        line.push(b'\n');
        self.send(req, &line)?;
        self.read_get(req, offset)
    }

    /// The reply to a get already sent.
    pub(crate) fn read_get(&mut self, req: &str, offset: u64) -> Res<GetReply> {
        match self.reply(req, "ok get SIZE MTIME, or err")? {
            Reply::GetOk { size, mtime } => {
                ensure(
                    offset <= size,
                    "GET-4",
                    format!("err 515 for OFFSET {offset}"),
                    || format!("ok get {size}"),
                )?;
                let payload = self.payload(Some(size - offset))?;
                Ok(GetReply::Ok {
                    size,
                    mtime,
                    payload,
                })
            }
            Reply::Err(e) => Ok(GetReply::Err(e)),
            other => Err(violation(
                req,
                "ok get SIZE MTIME, or err",
                show_reply(&other),
            )),
        }
    }

    /// Gets a whole file that must exist and arrive complete and verified.
    pub(crate) fn get_ok(&mut self, req: &str, name: &[u8]) -> Res<Vec<u8>> {
        match self.get(req, 0, name)? {
            GetReply::Ok { payload, .. } => {
                let Trailer::End(d) = payload.trailer else {
                    return Err(violation(
                        req,
                        format!("the complete content of {}", show(name)),
                        payload.trailer.show(),
                    ));
                };
                ensure(
                    d == Digest::of(&payload.data),
                    "SUM-1",
                    "the digest of the octets sent",
                    || format!("{d} for octets that hash to {}", Digest::of(&payload.data)),
                )?;
                Ok(payload.data)
            }
            GetReply::Err(e) => Err(violation(
                req,
                format!("ok get for {}", show(name)),
                show_reply(&Reply::Err(e)),
            )),
        }
    }

    /// Sends a put (wait: waits for `go` first) and returns the final reply.
    pub(crate) fn put(
        &mut self,
        req: &str,
        name: &[u8],
        mode: PutMode,
        flow: PutFlow,
        data: &[u8],
    ) -> Res<Reply> {
        let head = put_line(data.len() as u64, mode, flow, name);
        match flow {
            PutFlow::Wait => {
                self.send(req, &head)?;
                match self.reply(req, "go, or err")? {
                    Reply::Go => {}
                    other => return Ok(other),
                }
                let mut payload = Vec::new();
                encode_payload(data, Digest::of(data), &mut payload);
                self.send(req, &payload)?;
                self.reply(req, "ok put SIZE DIGEST, or err")
            }
            PutFlow::Now => {
                let mut bytes = head;
                encode_payload(data, Digest::of(data), &mut bytes);
                self.send(req, &bytes)?;
                self.reply(req, "ok put SIZE DIGEST, or err")
            }
        }
    }

    /// A put that must succeed with `ok put SIZE DIGEST`.
    pub(crate) fn put_ok(
        &mut self,
        req: &str,
        name: &[u8],
        mode: PutMode,
        flow: PutFlow,
        data: &[u8],
    ) -> Res<()> {
        let want = Reply::PutOk {
            size: data.len() as u64,
            digest: Digest::of(data),
        };
        let got = self.put(req, name, mode, flow, data)?;
        ensure(got == want, req, show_reply(&want), || show_reply(&got))
    }

    /// `close`, `bye`, then the close of the connection (CLOSE-1).
    pub(crate) fn close(mut self) -> Res<()> {
        self.send("CLOSE-1", b"close\n")?;
        self.expect_reply("CLOSE-1", &Reply::Bye)?;
        self.expect_closed("CLOSE-1", "bye")
    }
}

/// `put SIZE MODE FLOW NAME` with the name as raw octets.
pub(crate) fn put_line(size: u64, mode: PutMode, flow: PutFlow, name: &[u8]) -> Vec<u8> {
    let (mode, flow) = (mode.as_str(), flow.as_str());
    let mut line = format!("put {size} {mode} {flow} ").into_bytes();
    line.extend_from_slice(name);
    line.push(b'\n');
    line
}

/// The payload octets of `data` with its correct digest.
pub(crate) fn payload_of(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_payload(data, Digest::of(data), &mut out);
    out
}

/// ERR-1: only the codes of the table.
pub(crate) fn check_code(e: &ErrorReply) -> Res<()> {
    ensure(
        e.code.is_known(),
        "ERR-1",
        "only the codes of the table of section 9",
        || format!("code {}", e.code),
    )
}

/// DIR-4: bytewise order, each name once.
pub(crate) fn check_listing(entries: &[Entry]) -> Res<()> {
    for w in entries.windows(2) {
        ensure(
            w[0].name.as_bytes() < w[1].name.as_bytes(),
            "DIR-4",
            "entries in ascending bytewise order of their names, each name once",
            || {
                format!(
                    "{:?} listed before {:?}",
                    w[0].name.as_str(),
                    w[1].name.as_str()
                )
            },
        )?;
    }
    Ok(())
}

/// The checks of a decoded greeting the decoder does not make.
pub(crate) fn check_greeting(g: &Greeting, line: &[u8]) -> Res<()> {
    let versions = g.versions();
    ensure(
        versions.iter().any(|v| v.get() == 1),
        "HELLO-4",
        "version 1 in the version list",
        || show(line),
    )?;
    for (i, v) in versions.iter().enumerate() {
        ensure(
            !versions[..i].contains(v),
            "HELLO-4",
            "no version listed twice",
            || show(line),
        )?;
    }
    let l = g.limits();
    ensure(
        l.max_line == 4096 && l.max_name == 255 && l.max_chunk == 1_048_576,
        "HELLO-5",
        "max-line=4096 max-name=255 max-chunk=1048576",
        || show(line),
    )?;
    ensure(
        l.idle >= 1 && l.stall >= 1,
        "HELLO-7",
        "idle and stall of at least 1",
        || show(line),
    )?;
    Ok(())
}

/// A deadline `d` from now.
pub(crate) fn after(d: Duration) -> Instant {
    Instant::now() + d
}

/// Stop helper: the case cannot go on for a reason outside the protocol (local failure).
pub(crate) fn local(e: impl std::fmt::Display) -> Stop {
    Stop::Unimplemented(format!("runner-side failure: {e}"))
}
