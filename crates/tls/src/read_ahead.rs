//! TLS records read from the socket in large pieces and handed to rustls from memory.
//!
//! rustls' `read_tls` reads at most 4 KiB from its reader per call, so reading the socket
//! through it costs one system call (and one wake-up) per 4 KiB: a 1 GiB upload over TLS made
//! 262,144 `read`s. The drivers read up to [`ReadAhead::SIZE`] octets from the socket into
//! this buffer instead and let rustls take them from memory (its [`io::Read`]), 4 KiB per
//! call, without system calls. The buffer exists only while octets flow: an idle session
//! holds none (#7's memory per session).
//!
//! rustls also hands out plaintext one record (at most 16 KiB) at a time;
//! [`ReadAhead::read_plaintext`] fills a caller's buffer from every octet already read, so
//! that a session gets large pieces for its file writes.

use std::io::{self, Read};

use rustls::ConnectionCommon;

/// The buffer's size at its first read: a session that moves small messages never needs more.
const FIRST: usize = 16 * 1024;

/// A read shorter than this that has been given to rustls frees the buffer: an idle session
/// (or one moving small messages) holds no buffer between reads.
const SMALL: usize = 4 * 1024;

/// Socket octets not yet given to rustls. The buffer is allocated at a read, grows to
/// [`ReadAhead::SIZE`] while reads fill it, and is freed after a small read, so an idle
/// connection costs nothing.
#[derive(Debug, Default)]
pub struct ReadAhead {
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// The socket's end was read: rustls is told once nothing is held.
    at_end: bool,
    /// A TLS error met while plaintext before it was still to be delivered.
    failed: Option<rustls::Error>,
}

impl ReadAhead {
    /// Most octets read from the socket at once (during a bulk transfer).
    pub const SIZE: usize = 256 * 1024;

    /// Whether every octet read was given to rustls (the socket must be read next).
    pub fn is_empty(&self) -> bool {
        self.pos == self.len
    }

    /// Room to read the socket into; call [`ReadAhead::filled`] after. Only when
    /// [`ReadAhead::is_empty`].
    pub fn space(&mut self) -> &mut [u8] {
        if self.buf.is_empty() {
            self.buf = vec![0; FIRST];
        } else if self.len == self.buf.len() && self.buf.len() < Self::SIZE {
            // The last read filled it: a bulk transfer.
            self.buf.resize(Self::SIZE, 0);
        }
        &mut self.buf
    }

    /// `n` octets were read into [`ReadAhead::space`] (0: the socket's end, and the buffer
    /// goes).
    pub fn filled(&mut self, n: usize) {
        self.pos = 0;
        self.len = n;
        if n == 0 {
            self.buf = Vec::new();
            self.at_end = true;
        }
    }

    /// Gives rustls some of the octets held (at most what its buffer takes); returns how
    /// many. `at_end`: the socket's end was read (nothing held): rustls is told.
    pub fn feed<D>(&mut self, conn: &mut ConnectionCommon<D>, at_end: bool) -> io::Result<usize> {
        if at_end {
            return conn.read_tls(&mut io::empty());
        }
        conn.read_tls(self)
    }

    /// Plaintext into `buf` (not empty), as far as it goes, from what rustls holds and the
    /// octets read ahead, without a system call:
    /// - `Ok(Some(n))`, `n > 0`: plaintext;
    /// - `Ok(Some(0))`: the peer's end, with `close_notify`;
    /// - `Ok(None)`: nothing yet: read the socket into [`ReadAhead::space`], then call again;
    /// - `Err` of kind `UnexpectedEof`: the connection ended without `close_notify` (TLS-7);
    /// - `Err` of kind `InvalidData`: TLS went wrong (a damaged record, an alert), reported
    ///   only once the plaintext before it was delivered.
    pub fn read_plaintext<D>(
        &mut self,
        conn: &mut ConnectionCommon<D>,
        buf: &mut [u8],
    ) -> io::Result<Option<usize>> {
        debug_assert!(!buf.is_empty(), "no room to read into");
        let mut n = 0;
        loop {
            match conn.reader().read(&mut buf[n..]) {
                Ok(0) => return Ok(Some(n)),
                Ok(more) => {
                    n += more;
                    if n == buf.len() {
                        return Ok(Some(n));
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The end without close_notify: reported again at the next call.
                Err(_) if n > 0 => return Ok(Some(n)),
                Err(e) => return Err(e),
            }
            // rustls holds no plaintext now.
            if let Some(e) = self.failed.take() {
                if n > 0 {
                    self.failed = Some(e);
                    return Ok(Some(n));
                }
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            let at_end = self.is_empty() && self.at_end;
            if self.is_empty() && !at_end {
                return Ok((n > 0).then_some(n));
            }
            self.feed(conn, at_end)?;
            if let Err(e) = conn.process_new_packets() {
                self.failed = Some(e);
            }
        }
    }
}

impl Read for ReadAhead {
    /// The octets held, as far as `out` goes; frees the buffer once a small read has been
    /// given out. `Ok(0)` when nothing is held.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let held = &self.buf[self.pos..self.len];
        let n = held.len().min(out.len());
        out[..n].copy_from_slice(&held[..n]);
        self.pos += n;
        if self.is_empty() && self.len < SMALL {
            self.buf = Vec::new();
            (self.pos, self.len) = (0, 0);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_grows_for_bulk_reads_and_goes_after_small_ones() {
        let mut r = ReadAhead::default();
        let mut out = vec![0u8; ReadAhead::SIZE];
        assert!(r.is_empty());
        assert_eq!(r.buf.capacity(), 0, "nothing before a read");
        assert_eq!(r.space().len(), FIRST);
        r.filled(FIRST);
        assert_eq!(r.read(&mut out).expect("read"), FIRST);
        assert_eq!(r.space().len(), ReadAhead::SIZE, "a full read grows it");
        r.filled(100);
        assert!(!r.is_empty());
        assert_eq!(r.read(&mut out[..60]).expect("read"), 60);
        assert_eq!(r.buf.len(), ReadAhead::SIZE, "kept while octets are held");
        assert_eq!(r.read(&mut out).expect("read"), 40);
        assert_eq!(r.buf.capacity(), 0, "freed after a small read");
        assert_eq!(r.read(&mut out).expect("read"), 0, "nothing held");
        assert_eq!(r.space().len(), FIRST, "a new buffer after one was freed");
        r.filled(FIRST);
        assert_eq!(r.read(&mut out).expect("read"), FIRST);
        assert_eq!(r.buf.len(), FIRST, "kept after a bulk read");
        r.filled(0);
        assert_eq!(r.buf.capacity(), 0, "the end frees it");
    }

    #[test]
    fn octets_come_out_in_order() {
        let mut r = ReadAhead::default();
        let space = r.space();
        for (i, b) in space.iter_mut().enumerate() {
            *b = i as u8;
        }
        r.filled(1000);
        let mut got = Vec::new();
        let mut piece = [0u8; 7];
        loop {
            let n = r.read(&mut piece).expect("read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&piece[..n]);
        }
        let want: Vec<u8> = (0..1000).map(|i| i as u8).collect();
        assert_eq!(got, want);
    }
}
