//! A session's transport: the accepted socket itself, or ferry/1 over TLS (spec section 15)
//! with a rustls server connection over it.
//!
//! Both are blocking with the socket's timeouts set to [`SLICE`]: every wait wakes at least
//! that often to look at the caller's deadline and at the server's shutdown. The plain
//! variant is the socket's own `read` and `write`, nothing more.
//!
//! Under TLS, [`Conn::write`] hands the session's octets to rustls, which encrypts them at
//! once, then writes the records; octets rustls took count as sent even when their records
//! could not all leave before a wake (the next call writes them first and reports the wake
//! then), so a session never sends an octet twice. [`Conn::read`] writes what is pending
//! first, then reads records until plaintext comes. The end of the TCP connection without a
//! `close_notify` reads as an end (TLS-7: the session decides what was cut), logged at debug.

use std::io::{self, Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_tls::rustls::{self, ServerConnection};

use ferry_tls::ReadAhead;

use super::Shared;

/// The longest a blocked read or write sleeps before it looks at deadlines and the shutdown.
pub(super) const SLICE: Duration = Duration::from_millis(250);

/// Why a wait ended without progress.
pub(super) enum Wake {
    /// The deadline passed.
    Deadline,
    /// The server's shutdown was triggered and the session has not been told yet.
    Shutdown,
    /// The connection failed.
    Io(io::Error),
}

/// A session's transport.
pub(super) enum Conn<'s> {
    /// Plain ferry/1: the socket.
    Plain(&'s TcpStream),
    /// ferry/1 over TLS.
    Tls(Box<Tls<'s>>),
}

/// ferry/1 over TLS on a socket.
pub(super) struct Tls<'s> {
    stream: &'s TcpStream,
    conn: ServerConnection,
    /// Whether `close_notify` was queued.
    notified: bool,
    /// Socket octets read in large pieces, given to rustls from memory.
    ahead: ReadAhead,
}

pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// After a wait of one slice: whether to give up.
fn check(shared: &Shared, told: bool, deadline: Instant) -> Result<(), Wake> {
    if !told && shared.shutdown.is_triggered() {
        return Err(Wake::Shutdown);
    }
    if Instant::now() >= deadline {
        return Err(Wake::Deadline);
    }
    Ok(())
}

impl<'s> Conn<'s> {
    /// The socket under the transport.
    pub(super) fn stream(&self) -> &'s TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(t) => t.stream,
        }
    }

    /// Writes some of `data`, waiting in slices until `deadline`.
    pub(super) fn write(
        &mut self,
        shared: &Shared,
        told: bool,
        data: &[u8],
        deadline: Instant,
    ) -> Result<usize, Wake> {
        match self {
            Conn::Plain(stream) => write_plain(shared, told, stream, data, deadline),
            Conn::Tls(tls) => tls.write(shared, told, data, deadline),
        }
    }

    /// Reads into `buf`, waiting in slices until `deadline`. `Ok(0)`: the peer closed.
    pub(super) fn read(
        &mut self,
        shared: &Shared,
        told: bool,
        buf: &mut [u8],
        deadline: Instant,
    ) -> Result<usize, Wake> {
        match self {
            Conn::Plain(stream) => read_plain(shared, told, stream, buf, deadline),
            Conn::Tls(tls) => tls.read(shared, told, buf, deadline),
        }
    }

    /// Under TLS, the connection's channel-binding value (TLS-15) for the `auth` extension;
    /// `None` for plain ferry/1.
    pub(super) fn channel_binding(&self) -> Option<[u8; 32]> {
        match self {
            Conn::Plain(_) => None,
            Conn::Tls(tls) => ferry_tls::channel_binding(&tls.conn).ok(),
        }
    }

    /// Under TLS, sends `close_notify` (TLS-6), waiting until `deadline` at most for it to
    /// leave; nothing for plain ferry/1.
    pub(super) fn close_notify(&mut self, shared: &Shared, deadline: Instant) {
        if let Conn::Tls(tls) = self {
            tls.close_notify(shared, deadline);
        }
    }
}

/// Writes some of `data` to the socket, waiting in slices until `deadline`.
pub(super) fn write_plain(
    shared: &Shared,
    told: bool,
    mut stream: &TcpStream,
    data: &[u8],
    deadline: Instant,
) -> Result<usize, Wake> {
    loop {
        match stream.write(data) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => check(shared, told, deadline)?,
            Err(e) => return Err(Wake::Io(e)),
        }
    }
}

/// Reads from the socket into `buf`, waiting in slices until `deadline`.
pub(super) fn read_plain(
    shared: &Shared,
    told: bool,
    mut stream: &TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<usize, Wake> {
    loop {
        match stream.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => check(shared, told, deadline)?,
            Err(e) => return Err(Wake::Io(e)),
        }
    }
}

impl<'s> Tls<'s> {
    /// A TLS server connection on `stream` (whose timeouts are [`SLICE`]), not yet handshaken.
    pub(super) fn new(
        stream: &'s TcpStream,
        config: Arc<rustls::ServerConfig>,
    ) -> io::Result<Self> {
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(Self {
            stream,
            conn,
            notified: false,
            ahead: ReadAhead::default(),
        })
    }

    /// Completes the handshake by `deadline`, waking for the shutdown unless `told` (the
    /// caller may then go on with another deadline: the handshake resumes where it was).
    pub(super) fn handshake(
        &mut self,
        shared: &Shared,
        told: bool,
        deadline: Instant,
    ) -> Result<(), Wake> {
        while self.conn.is_handshaking() {
            self.flush(shared, told, deadline)?;
            if !self.conn.is_handshaking() {
                break;
            }
            if self.receive(shared, told, deadline)? == 0 {
                return Err(Wake::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the client closed during the TLS handshake",
                )));
            }
        }
        self.flush(shared, told, deadline)
    }

    /// Writes the pending TLS records, waiting in slices until `deadline`.
    fn flush(&mut self, shared: &Shared, told: bool, deadline: Instant) -> Result<(), Wake> {
        let mut stream = self.stream;
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => check(shared, told, deadline)?,
                Err(e) => return Err(Wake::Io(e)),
            }
        }
        Ok(())
    }

    fn write(
        &mut self,
        shared: &Shared,
        told: bool,
        data: &[u8],
        deadline: Instant,
    ) -> Result<usize, Wake> {
        self.flush(shared, told, deadline)?;
        let n = self.conn.writer().write(data).map_err(Wake::Io)?;
        // The `n` octets are rustls' now: a wait that ends early is reported by the next
        // call, which writes what is left first.
        match self.flush(shared, told, deadline) {
            Ok(()) | Err(Wake::Deadline | Wake::Shutdown) => Ok(n),
            Err(Wake::Io(e)) => Err(Wake::Io(e)),
        }
    }

    fn read(
        &mut self,
        shared: &Shared,
        told: bool,
        buf: &mut [u8],
        deadline: Instant,
    ) -> Result<usize, Wake> {
        loop {
            self.flush(shared, told, deadline)?;
            match self.ahead.read_plaintext(&mut self.conn, buf) {
                Ok(Some(n)) => return Ok(n),
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    // TLS-7: the session treats it as the end it is; whatever was not
                    // complete is cut.
                    tracing::debug!("the client's end came without close_notify");
                    return Ok(0);
                }
                Err(e) => return Err(self.fail(shared, e)),
            }
            let stream = self.stream;
            self.ahead
                .fill_with(|b| read_plain(shared, told, stream, b, deadline))?;
        }
    }

    /// During the handshake: reads TLS records once (waiting in slices until `deadline`) and
    /// processes them; returns the octets read (0: the end of the TCP connection).
    fn receive(&mut self, shared: &Shared, told: bool, deadline: Instant) -> Result<usize, Wake> {
        if self.ahead.is_empty() {
            let stream = self.stream;
            self.ahead
                .fill_with(|b| read_plain(shared, told, stream, b, deadline))?;
        }
        let n = self.ahead.feed(&mut self.conn).map_err(Wake::Io)?;
        if let Err(e) = self.conn.process_new_packets() {
            return Err(self.fail(shared, io::Error::new(io::ErrorKind::InvalidData, e)));
        }
        self.flush(shared, told, deadline)?;
        Ok(n)
    }

    /// Not TLS, or TLS gone wrong (TLS-5): the alert rustls queued is all the peer gets,
    /// briefly.
    fn fail(&mut self, shared: &Shared, e: io::Error) -> Wake {
        let _ = self.flush(shared, true, Instant::now() + SLICE);
        Wake::Io(e)
    }

    /// Sends `close_notify` once and what is pending before it, until `deadline` at most.
    pub(super) fn close_notify(&mut self, shared: &Shared, deadline: Instant) {
        if !self.notified {
            self.notified = true;
            self.conn.send_close_notify();
        }
        let _ = self.flush(shared, true, deadline);
    }

    /// Writes all of `data` by `deadline` (a refusal's line).
    pub(super) fn write_all(
        &mut self,
        shared: &Shared,
        mut data: &[u8],
        deadline: Instant,
    ) -> Result<(), Wake> {
        while !data.is_empty() {
            let n = self.write(shared, true, data, deadline)?;
            data = &data[n..];
            check(shared, true, deadline)?;
        }
        Ok(())
    }
}
