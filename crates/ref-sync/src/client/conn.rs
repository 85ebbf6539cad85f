//! The receiving half of a connection: one large buffer that lines are decoded from in
//! place and payload octets are handed out of, so that a download costs one copy from the
//! kernel and no allocation per message.

use std::io::{self, Read};
use std::net::TcpStream;

use ferry_wire::limits::MAX_LINE;
use ferry_wire::{DecodeError, Invalid};

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

#[derive(Debug)]
pub(crate) struct Inbound {
    stream: TcpStream,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Inbound {
    pub(crate) fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: vec![0; RECV_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
        }
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
    pub(crate) fn fill(&mut self) -> io::Result<usize> {
        if self.buf.len() - self.end < MAX_LINE && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Err(io::Error::other("receive buffer full"));
        }
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Decodes the next line-message with `decode`, reading as needed.
    pub(crate) fn next<T>(&mut self, decode: Decoder<T>) -> Result<T, ReadFail> {
        loop {
            match decode(self.data()) {
                Ok((msg, n)) => {
                    self.consume(n);
                    return Ok(msg);
                }
                Err(DecodeError::Incomplete) => match self.fill() {
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
