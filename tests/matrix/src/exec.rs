//! Runs ops over raw sockets and records what the server sent, as protocol messages: lines,
//! and for `ok get` the payload's octets and trailer (chunk boundaries dropped). Every read
//! and write has a timeout, so a broken server fails a test instead of hanging it.

use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use crate::ops::{MAX_CHUNK, Op};
use crate::oracle::{MAX_LINE, closes, escape};

/// How long a read waits for the server.
pub const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// One message from the server, as received.
#[derive(Clone, PartialEq, Eq)]
pub enum Msg {
    /// The first line of a connection.
    Greeting(Vec<u8>),
    /// A line, without its LF (a reply, `go`, or a `dir` entry).
    Line(Vec<u8>),
    /// The payload after `ok get`: its octets and its trailer line (without LF).
    Payload {
        /// The chunk data, concatenated.
        data: Vec<u8>,
        /// `end …` or `abort …`.
        trailer: Vec<u8>,
    },
    /// The server closed the connection (EOF or reset).
    Eof,
    /// Nothing arrived within [`READ_TIMEOUT`]; the client dropped the connection.
    Timeout,
    /// The server sent something that is not a valid message here.
    Bad(String),
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Msg::Greeting(l) => write!(f, "S: {}", escape(l)),
            Msg::Line(l) => write!(f, "S: {}", escape(l)),
            Msg::Payload { data, trailer } => write!(
                f,
                "S: ⟪payload {} octets {}{}⟫ {}",
                data.len(),
                escape(&data[..data.len().min(24)]),
                if data.len() > 24 { "…" } else { "" },
                escape(trailer)
            ),
            Msg::Eof => f.write_str("S. ⟪server closed the connection⟫"),
            Msg::Timeout => write!(f, "⟪no reply within {READ_TIMEOUT:?}⟫"),
            Msg::Bad(why) => write!(f, "⟪bad server output: {why}⟫"),
        }
    }
}

/// What the executor does for one op (see [`Op::plan`]).
#[derive(Debug)]
pub enum Step {
    /// Send the octets (from a helper thread, so that neither side blocks on a full socket
    /// buffer, PIPE-3) while reading replies until `finals` final replies, the end of the
    /// connection, or a timeout.
    Exchange {
        /// Request lines and payloads.
        send: Vec<u8>,
        /// How many final replies to read.
        finals: usize,
        /// Close the sending side after the octets (EOF to the server), then read until the
        /// server closes.
        half_close: bool,
    },
    /// Send a `wait` put's line, read until `go` or the final reply; after `go`, run `then`.
    PutWait {
        /// The request line.
        line: Vec<u8>,
        /// What follows a `go`.
        then: Vec<Step>,
    },
    /// Send octets without reading anything.
    Send(Vec<u8>),
    /// Run an op on a second connection of its own (opened and closed by EOF within the
    /// step), while this one stays as it is.
    Side(Box<Op>),
    /// Send the octets, then close the connection without reading anything.
    SendAndDrop(Vec<u8>),
    /// Close the connection (if there is one) without `close`.
    Drop,
}

/// A connection to a server: the stream and what has been read but not used.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Send the first octets of every write in small pieces ([`write_trickled`]).
    trickle: bool,
}

/// How many octets at the start of a write `write_trickled` sends in small pieces.
pub const TRICKLE_PREFIX: usize = 160;

/// Writes `octets`; with `trickle`, the first [`TRICKLE_PREFIX`] octets go in pieces of 1,
/// 2, 3, 5 and 7 octets with a millisecond between them (so that the server reads request
/// lines, chunk heads and chunk data in fragments, FRAME-1), the rest at once.
fn write_trickled(stream: &mut TcpStream, octets: &[u8], trickle: bool) -> io::Result<()> {
    if !trickle {
        return stream.write_all(octets);
    }
    let head = octets.len().min(TRICKLE_PREFIX);
    let mut at = 0;
    for size in [1usize, 2, 3, 5, 7].into_iter().cycle() {
        if at >= head {
            break;
        }
        let end = (at + size).min(head);
        stream.write_all(&octets[at..end])?;
        at = end;
        std::thread::sleep(Duration::from_millis(1));
    }
    stream.write_all(&octets[head..])
}

enum LineRead {
    Line(Vec<u8>),
    Eof,
    Fail(Msg),
}

impl Conn {
    /// Connects and reads the first line.
    pub fn connect(addr: SocketAddr) -> Result<(Self, Msg), String> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(READ_TIMEOUT)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(|e| e.to_string())?;
        let mut conn = Self {
            stream,
            buf: Vec::new(),
            trickle: false,
        };
        let first = match conn.read_line() {
            LineRead::Line(l) => Msg::Greeting(l),
            LineRead::Eof => Msg::Eof,
            LineRead::Fail(m) => m,
        };
        Ok((conn, first))
    }

    /// Reads more octets; `Ok(false)` at EOF (or reset).
    fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn fill_or_fail(&mut self) -> Result<bool, Msg> {
        match self.fill() {
            Ok(more) => Ok(more),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(Msg::Timeout)
            }
            Err(e) => Err(Msg::Bad(format!("read: {e}"))),
        }
    }

    fn read_line(&mut self) -> LineRead {
        loop {
            if let Some(lf) = self.buf.iter().position(|&b| b == b'\n') {
                if lf >= MAX_LINE {
                    return LineRead::Fail(Msg::Bad("a line over 4096 octets".into()));
                }
                let mut line: Vec<u8> = self.buf.drain(..=lf).collect();
                line.pop();
                return LineRead::Line(line);
            }
            if self.buf.len() >= MAX_LINE {
                return LineRead::Fail(Msg::Bad("a line over 4096 octets".into()));
            }
            match self.fill_or_fail() {
                Ok(true) => {}
                Ok(false) if self.buf.is_empty() => return LineRead::Eof,
                Ok(false) => {
                    return LineRead::Fail(Msg::Bad(format!(
                        "EOF inside a line: {}",
                        escape(&self.buf)
                    )));
                }
                Err(m) => return LineRead::Fail(m),
            }
        }
    }

    /// Reads a payload (chunks and trailer) whatever its announced count, checking the
    /// chunk framing (DATA-2, DATA-3).
    fn read_payload(&mut self) -> Result<Msg, Msg> {
        let mut data = Vec::new();
        loop {
            let line = match self.read_line() {
                LineRead::Line(l) => l,
                LineRead::Eof => return Err(Msg::Bad("EOF inside a payload".into())),
                LineRead::Fail(m) => return Err(m),
            };
            if let Some(len) = line.strip_prefix(b"data ") {
                let len = crate::oracle::parse_u64(len)
                    .filter(|&n| (1..=MAX_CHUNK as u64).contains(&n))
                    .ok_or_else(|| Msg::Bad(format!("bad chunk head {}", escape(&line))))?
                    as usize;
                while self.buf.len() < len {
                    match self.fill_or_fail() {
                        Ok(true) => {}
                        Ok(false) => return Err(Msg::Bad("EOF inside chunk data".into())),
                        Err(m) => return Err(m),
                    }
                }
                data.extend(self.buf.drain(..len));
            } else if line.starts_with(b"end ") || line.starts_with(b"abort ") {
                return Ok(Msg::Payload {
                    data,
                    trailer: line,
                });
            } else {
                return Err(Msg::Bad(format!("not a frame: {}", escape(&line))));
            }
        }
    }

    /// Reads until EOF after a closing reply; records anything else the server sends.
    fn read_eof(&mut self, out: &mut Vec<Msg>) {
        loop {
            match self.read_line() {
                LineRead::Line(l) => out.push(Msg::Line(l)),
                LineRead::Eof => return out.push(Msg::Eof),
                LineRead::Fail(m) => return out.push(m),
            }
        }
    }

    /// Reads messages until `finals` final replies (or, with `until_go`, a `go`). Returns
    /// whether the connection has ended (EOF, timeout, bad output).
    fn read_replies(&mut self, finals: usize, until_go: bool, out: &mut Vec<Msg>) -> bool {
        let mut seen = 0;
        while seen < finals {
            let line = match self.read_line() {
                LineRead::Line(l) => l,
                LineRead::Eof => {
                    out.push(Msg::Eof);
                    return true;
                }
                LineRead::Fail(m) => {
                    out.push(m);
                    return true;
                }
            };
            if line == b"go" {
                out.push(Msg::Line(line));
                if until_go {
                    return false;
                }
                continue;
            }
            seen += 1;
            if let Some(count) = line.strip_prefix(b"ok dir ") {
                let Some(count) = crate::oracle::parse_u64(count).filter(|&c| c < 1_000_000) else {
                    out.push(Msg::Bad(format!("bad dir count: {}", escape(&line))));
                    return true;
                };
                out.push(Msg::Line(line));
                for _ in 0..count {
                    match self.read_line() {
                        LineRead::Line(l) => out.push(Msg::Line(l)),
                        LineRead::Eof => {
                            out.push(Msg::Eof);
                            return true;
                        }
                        LineRead::Fail(m) => {
                            out.push(m);
                            return true;
                        }
                    }
                }
            } else if line.starts_with(b"ok get ") {
                out.push(Msg::Line(line));
                match self.read_payload() {
                    Ok(p) => {
                        let aborted_422 = matches!(&p, Msg::Payload { trailer, .. }
                            if trailer.starts_with(b"abort 422"));
                        out.push(p);
                        if aborted_422 {
                            self.read_eof(out);
                            return true;
                        }
                    }
                    Err(m) => {
                        out.push(m);
                        return true;
                    }
                }
            } else {
                let closing = line == b"bye" || err_code(&line).is_some_and(closes);
                out.push(Msg::Line(line));
                if closing {
                    self.read_eof(out);
                    return true;
                }
            }
        }
        false
    }

    fn send_all(&mut self, octets: &[u8]) {
        // The server may have closed (a closing error): what it sent is read all the same.
        let _ = write_trickled(&mut self.stream, octets, self.trickle);
    }

    /// Sends `octets` from a helper thread while reading replies on this one; with
    /// `half_close`, closes the sending side after them and reads until the server closes.
    fn exchange(
        &mut self,
        octets: &[u8],
        finals: usize,
        half_close: bool,
        out: &mut Vec<Msg>,
    ) -> bool {
        let trickle = self.trickle;
        let ended = if octets.len() <= 4096 && finals <= 1 && !half_close {
            self.send_all(octets);
            self.read_replies(finals, false, out)
        } else {
            let Ok(mut writer) = self.stream.try_clone() else {
                out.push(Msg::Bad("cannot clone the socket".into()));
                return true;
            };
            std::thread::scope(|s| {
                s.spawn(move || {
                    let _ = write_trickled(&mut writer, octets, trickle);
                    if half_close {
                        let _ = writer.shutdown(Shutdown::Write);
                    }
                });
                self.read_replies(finals, false, out)
            })
        };
        if half_close && !ended {
            self.read_eof(out);
            return true;
        }
        ended
    }
}

/// The code of an `err CODE [TEXT]` line.
pub fn err_code(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"err ")?;
    let code = rest.get(..3)?;
    if rest.len() > 3 && rest[3] != b' ' {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// Runs ops against one server, connecting when an op needs a connection and there is none.
#[derive(Debug)]
pub struct Executor {
    addr: SocketAddr,
    conn: Option<Conn>,
    trickle: bool,
}

impl Executor {
    /// An executor for the server at `addr` (nothing connected yet).
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            conn: None,
            trickle: false,
        }
    }

    /// Whether a connection is open.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Runs one op; returns what the server sent (a [`Msg::Greeting`] first when the op
    /// opened a connection).
    pub fn run(&mut self, op: &Op) -> Result<Vec<Msg>, String> {
        let mut out = Vec::new();
        let trickle = matches!(op, Op::Trickle(_));
        self.trickle = trickle;
        let result = op
            .plan()
            .into_iter()
            .try_for_each(|step| self.step(step, &mut out));
        self.trickle = false;
        result.map(|()| out)
    }

    fn conn(&mut self, out: &mut Vec<Msg>) -> Result<&mut Conn, String> {
        if self.conn.is_none() {
            let (conn, first) = Conn::connect(self.addr)?;
            let ok = matches!(first, Msg::Greeting(_));
            out.push(first);
            if !ok {
                return Err(format!("no greeting: {out:?}"));
            }
            self.conn = Some(conn);
        }
        let trickle = self.trickle;
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| "no connection".to_owned())?;
        conn.trickle = trickle;
        Ok(conn)
    }

    fn step(&mut self, step: Step, out: &mut Vec<Msg>) -> Result<(), String> {
        let ended = match step {
            Step::Drop => {
                if let Some(c) = self.conn.take() {
                    let _ = c.stream.shutdown(Shutdown::Both);
                }
                return Ok(());
            }
            Step::SendAndDrop(octets) => {
                let conn = self.conn(out)?;
                conn.send_all(&octets);
                true
            }
            Step::Exchange {
                send,
                finals,
                half_close,
            } => self.conn(out)?.exchange(&send, finals, half_close, out),
            Step::Send(octets) => {
                self.conn(out)?.send_all(&octets);
                false
            }
            Step::Side(op) => {
                let mut side = Executor::new(self.addr);
                out.extend(side.run(&op)?);
                return Ok(());
            }
            Step::PutWait { line, then } => {
                let conn = self.conn(out)?;
                conn.send_all(&line);
                let ended = conn.read_replies(1, true, out);
                if !ended && out.last() == Some(&Msg::Line(b"go".to_vec())) {
                    for step in then {
                        self.step(step, out)?;
                    }
                    return Ok(());
                }
                ended
            }
        };
        if ended && let Some(c) = self.conn.take() {
            let _ = c.stream.shutdown(Shutdown::Both);
        }
        Ok(())
    }
}
