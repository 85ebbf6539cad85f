//! The client's transport: the non-blocking socket itself, or ferry/1 over TLS (spec section
//! 15) with a rustls client connection over it. `drive.rs` moves octets through it.

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use ferry_client_core::ClientOptions;
use ferry_tls::ClientTls;
use ferry_tls::rustls::ClientConnection;
use rustix::event::{PollFd, PollFlags, Timespec, poll};

use super::ClientError;
use ferry_tls::ReadAhead;

/// A session's transport.
pub(super) enum Transport {
    /// Plain ferry/1.
    Plain(TcpStream),
    /// ferry/1 over TLS.
    Tls(Box<TlsStream>),
}

/// A rustls client connection over a non-blocking socket.
pub(super) struct TlsStream {
    pub(super) stream: TcpStream,
    pub(super) conn: ClientConnection,
    /// Whether `close_notify` was queued.
    notified: bool,
    /// Socket octets read in large pieces, given to rustls from memory.
    ahead: ReadAhead,
}

impl Transport {
    /// The socket under the transport.
    pub(super) fn stream(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => &t.stream,
        }
    }

    /// The session has ended: under TLS `close_notify` first (TLS-6, as far as the socket
    /// takes it at once), then the socket is shut down both ways.
    pub(super) fn disconnect(&mut self) {
        if let Transport::Tls(t) = self {
            t.notify();
            let _ = t.conn.write_tls(&mut t.stream);
        }
        let _ = self.stream().shutdown(Shutdown::Both);
    }

    /// After `bye`: under TLS `close_notify` (TLS-6), waiting up to `timeout` for it to
    /// leave; then the sending side is shut down.
    pub(super) fn close(&mut self, timeout: Option<Duration>) {
        if let Transport::Tls(t) = self {
            t.notify();
            let deadline = timeout.map(|d| Instant::now() + d);
            while t.conn.wants_write() {
                match t.conn.write_tls(&mut t.stream) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if !wait(&t.stream, PollFlags::OUT, deadline) {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        let _ = self.stream().shutdown(Shutdown::Write);
    }
}

impl TlsStream {
    /// Gives rustls TLS octets: those read ahead, else a large read of the (non-blocking)
    /// socket. `Ok(0)`: the socket's end; `WouldBlock`: nothing there yet.
    fn read_tls(&mut self) -> io::Result<usize> {
        if self.ahead.is_empty() {
            let stream = &self.stream;
            self.ahead.fill_with(|b| (&*stream).read(b))?;
        }
        self.ahead.feed(&mut self.conn)
    }

    /// Queues `close_notify` once.
    fn notify(&mut self) {
        if !self.notified {
            self.notified = true;
            self.conn.send_close_notify();
        }
    }

    /// Connects TLS over `stream` (non-blocking) for `tls`, bounded by the read timeout of
    /// `options` (else the connect timeout). A refused identity or a server that does not
    /// speak ferry/1 over TLS is [`ClientError::Tls`], with the sentence
    /// `ferry_tls::explain` gives; nothing of the session was sent (TLS-9, TLS-12).
    pub(super) fn handshake(
        stream: TcpStream,
        tls: &ClientTls,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        let conn = tls
            .connect()
            .map_err(|e| ClientError::tls(io::Error::other(e)))?;
        let deadline = options
            .read_timeout
            .or(options.connect_timeout)
            .map(|t| Instant::now() + t);
        let mut t = Self {
            stream,
            conn,
            notified: false,
            ahead: ReadAhead::default(),
        };
        loop {
            let mut flags = PollFlags::IN;
            if t.conn.wants_write() {
                match t.conn.write_tls(&mut t.stream) {
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => flags |= PollFlags::OUT,
                    Err(e) => return Err(ClientError::Io(e)),
                }
            } else if !t.conn.is_handshaking() {
                return Ok(t);
            }
            match t.read_tls() {
                Ok(0) => {
                    return Err(ClientError::tls(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection during the TLS handshake",
                    )));
                }
                Ok(_) => {
                    if let Err(e) = t.conn.process_new_packets() {
                        // The alert rustls queued, if the socket takes it at once.
                        let _ = t.conn.write_tls(&mut t.stream);
                        return Err(ClientError::tls(io::Error::new(
                            io::ErrorKind::InvalidData,
                            e,
                        )));
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(ClientError::Io(e)),
            }
            if !wait(&t.stream, flags, deadline) {
                return Err(ClientError::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the server did not complete the TLS handshake in time",
                )));
            }
        }
    }

    /// Octets rustls took that have not left yet: written now, as far as the socket takes
    /// them. `Ok(false)`: the socket is full.
    pub(super) fn flush_some(&mut self) -> io::Result<bool> {
        match self.conn.write_tls(&mut self.stream) {
            Ok(n) => Ok(n > 0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Takes some of `data` for sending (encrypted at once; [`TlsStream::flush_some`] writes
    /// the records).
    pub(super) fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.conn.writer().write(data)?;
        // Out now if the socket takes it: the answer is waited for next.
        let _ = self.flush_some();
        Ok(n)
    }

    /// Reads plaintext into `buf`: `Ok(Some(0))` at the end (with or without `close_notify`:
    /// the session decides what was cut, TLS-7), `Ok(None)` when nothing is there yet.
    /// `from_socket`: also read what the socket has.
    pub(super) fn read(&mut self, buf: &mut [u8], from_socket: bool) -> io::Result<Option<usize>> {
        loop {
            match self.ahead.read_plaintext(&mut self.conn, buf) {
                Ok(Some(n)) => return Ok(Some(n)),
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    tracing::debug!("the server's end came without close_notify");
                    return Ok(Some(0));
                }
                Err(e) => {
                    // The alert rustls queued, if the socket takes it at once.
                    let _ = self.conn.write_tls(&mut self.stream);
                    return Err(e);
                }
            }
            if !from_socket {
                return Ok(None);
            }
            let stream = &self.stream;
            match self.ahead.fill_with(|b| (&*stream).read(b)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for TlsStream {
    /// A client dropped without `close` still ends TLS properly, as far as the socket takes
    /// it at once (TLS-6).
    fn drop(&mut self) {
        self.notify();
        let _ = self.conn.write_tls(&mut self.stream);
    }
}

/// Waits for `flags` on `stream` until `deadline`; false when the deadline has passed.
fn wait(stream: &TcpStream, flags: PollFlags, deadline: Option<Instant>) -> bool {
    let timeout = match deadline {
        Some(d) => {
            let now = Instant::now();
            if d <= now {
                return false;
            }
            Timespec::try_from(d - now).ok()
        }
        None => None,
    };
    let mut fds = [PollFd::new(stream, flags)];
    let _ = poll(&mut fds, timeout.as_ref());
    true
}
