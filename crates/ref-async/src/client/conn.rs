//! The two directions of a client connection: [`Inbound`], one large buffer that lines are
//! decoded from in place and payload octets are handed out of, and the sending half, each
//! operation under the client's timeouts.

use std::io;
use std::time::Duration;

use ferry_wire::limits::MAX_LINE;
use ferry_wire::{DecodeError, Invalid};
use futures_lite::io::{ReadHalf, WriteHalf};
use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::runtime::{Runtime, Timed, timeout};

/// Size of the receive buffer (1 MiB, the size of a full chunk).
pub(crate) const RECV_BUF: usize = 1 << 20;

/// One of ferry-wire's line decoders.
pub(crate) type Decoder<T> = fn(&[u8]) -> Result<(T, usize), DecodeError>;

/// Why no message could be read.
#[derive(Debug)]
pub(crate) enum ReadFail {
    /// The server closed the connection (possibly in the middle of a message).
    Eof,
    /// The socket failed (reset, timeout).
    Io(io::Error),
    /// The octets are not the message expected; `line` shows the start of the line.
    Invalid { error: Invalid, line: String },
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("the server {what}"))
}

/// The receiving half of a connection and its buffer.
pub(crate) struct Inbound<R: Runtime> {
    rt: R,
    half: Option<ReadHalf<R::TcpStream>>,
    timeout: Option<Duration>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<R: Runtime> Inbound<R> {
    pub(crate) fn new(rt: R, half: ReadHalf<R::TcpStream>, timeout: Option<Duration>) -> Self {
        Self {
            rt,
            half: Some(half),
            timeout,
            buf: vec![0; RECV_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Drops the socket's receiving half (the connection closes once the sending half is
    /// dropped too).
    pub(crate) fn close(&mut self) {
        self.half = None;
    }

    /// The octets received and not yet consumed.
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Drops the first `n` octets of [`Inbound::data`].
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads more octets from the socket into the buffer; `Ok(0)` means EOF. Only called
    /// when the buffered octets are an incomplete line (under [`MAX_LINE`] octets) or empty.
    pub(crate) async fn fill(&mut self) -> io::Result<usize> {
        if self.buf.len() - self.end < MAX_LINE && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Err(io::Error::other("receive buffer full"));
        }
        let Some(half) = self.half.as_mut() else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection is closed",
            ));
        };
        let read = half.read(&mut self.buf[self.end..]);
        match timeout(&self.rt, self.timeout, read).await {
            Timed::Done(Ok(n)) => {
                self.end += n;
                Ok(n)
            }
            Timed::Done(Err(e)) => Err(e),
            Timed::Expired => Err(timed_out("sent nothing within the read timeout")),
        }
    }

    /// Decodes the next line-message with `decode`, reading as needed.
    pub(crate) async fn next<T>(&mut self, decode: Decoder<T>) -> Result<T, ReadFail> {
        loop {
            match decode(self.data()) {
                Ok((msg, n)) => {
                    self.consume(n);
                    return Ok(msg);
                }
                Err(DecodeError::Incomplete) => match self.fill().await {
                    Ok(0) => return Err(ReadFail::Eof),
                    Ok(_) => {}
                    Err(e) => return Err(ReadFail::Io(e)),
                },
                Err(DecodeError::Invalid(error)) => {
                    let line = snippet(self.data(), error.line_len);
                    return Err(ReadFail::Invalid { error, line });
                }
            }
        }
    }
}

/// The sending half of a connection.
pub(crate) struct Outbound<R: Runtime> {
    rt: R,
    half: Option<WriteHalf<R::TcpStream>>,
    timeout: Option<Duration>,
}

impl<R: Runtime> Outbound<R> {
    pub(crate) fn new(rt: R, half: WriteHalf<R::TcpStream>, timeout: Option<Duration>) -> Self {
        Self {
            rt,
            half: Some(half),
            timeout,
        }
    }

    /// Drops the socket's sending half.
    pub(crate) fn close(&mut self) {
        self.half = None;
    }

    /// Writes all of `data`; each write must make progress within the write timeout.
    pub(crate) async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let Some(half) = self.half.as_mut() else {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the connection is closed",
                ));
            };
            match timeout(&self.rt, self.timeout, half.write(data)).await {
                Timed::Done(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Timed::Done(Ok(n)) => data = &data[n..],
                Timed::Done(Err(e)) => return Err(e),
                Timed::Expired => {
                    return Err(timed_out("accepted nothing within the write timeout"));
                }
            }
        }
        Ok(())
    }

    /// Shuts down the sending direction (the server reads EOF).
    pub(crate) async fn shutdown(&mut self) -> io::Result<()> {
        let Some(half) = self.half.as_mut() else {
            return Ok(());
        };
        match timeout(&self.rt, self.timeout, half.close()).await {
            Timed::Done(r) => r,
            Timed::Expired => Err(timed_out("accepted nothing within the write timeout")),
        }
    }
}

/// The start of an offending line, escaped for an error message.
pub(crate) fn snippet(data: &[u8], line_len: Option<usize>) -> String {
    const SHOW: usize = 80;
    let len = line_len.unwrap_or(data.len()).min(data.len());
    let line = &data[..len];
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let shown = &line[..line.len().min(SHOW)];
    let mut s: String = String::from_utf8_lossy(shown).escape_debug().collect();
    if line.len() > SHOW {
        s.push('…');
    }
    s
}
