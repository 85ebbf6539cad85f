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

/// The buffer's size after a first read that filled the stack buffer ([`SMALL`]): a session
/// that moves small messages never needs more.
const FIRST: usize = 16 * 1024;

/// A read shorter than this that has been given to rustls frees the buffer: an idle session
/// (or one moving small messages) holds no buffer between reads. Also the size of the first
/// read after one (on the stack).
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

    /// Reads the socket once through `read`, when nothing is held: into the buffer during a
    /// bulk transfer; else into a buffer on the stack first, so that a session waiting for
    /// input (`read` blocks, or returns "not yet" as its error) holds no buffer while it
    /// waits. `Ok(0)`: the socket's end (rustls is told at the next
    /// [`ReadAhead::read_plaintext`]).
    pub fn fill_with<E>(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        debug_assert!(self.is_empty(), "octets held are read first");
        if self.buf.is_empty() {
            // Small: on threads the stack pages a waiting session touched stay resident.
            let mut first = [0u8; SMALL];
            let n = read(&mut first)?;
            if n < SMALL {
                self.buf = first[..n].to_vec();
            } else {
                // Perhaps the start of a bulk transfer: room to tell (a full read grows it).
                self.buf = vec![0; FIRST];
                self.buf[..n].copy_from_slice(&first[..n]);
            }
            self.filled(n);
            return Ok(n);
        }
        if self.len == self.buf.len() && self.buf.len() < Self::SIZE {
            // The last read filled it: a bulk transfer.
            self.buf.resize(Self::SIZE, 0);
        }
        let n = read(&mut self.buf)?;
        self.filled(n);
        Ok(n)
    }

    /// `n` octets were read into the buffer (0: the socket's end, and the buffer goes).
    fn filled(&mut self, n: usize) {
        self.pos = 0;
        self.len = n;
        if n == 0 {
            self.buf = Vec::new();
            self.at_end = true;
        }
    }

    /// Gives rustls some of the octets held (at most what its buffer takes); returns how
    /// many. After the socket's end was read ([`ReadAhead::fill_with`] gave 0) and nothing is
    /// held, tells rustls of the end.
    pub fn feed<D>(&mut self, conn: &mut ConnectionCommon<D>) -> io::Result<usize> {
        if self.is_empty() && self.at_end {
            return conn.read_tls(&mut io::empty());
        }
        conn.read_tls(self)
    }

    /// Plaintext into `buf` (not empty), as far as it goes, from what rustls holds and the
    /// octets read ahead, without a system call:
    /// - `Ok(Some(n))`, `n > 0`: plaintext;
    /// - `Ok(Some(0))`: the peer's end, with `close_notify`;
    /// - `Ok(None)`: nothing yet: read the socket ([`ReadAhead::fill_with`]), then call again;
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
            if self.is_empty() && !self.at_end {
                return Ok((n > 0).then_some(n));
            }
            self.feed(conn)?;
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

    /// A read of `n` octets of `fill`, as a socket would give them.
    fn give(r: &mut ReadAhead, n: usize, fill: u8) -> usize {
        r.fill_with(|b: &mut [u8]| {
            let n = n.min(b.len());
            b[..n].fill(fill);
            Ok::<_, ()>(n)
        })
        .expect("read")
    }

    #[test]
    fn the_buffer_grows_for_bulk_reads_and_goes_after_small_ones() {
        let mut r = ReadAhead::default();
        let mut out = vec![0u8; ReadAhead::SIZE];
        assert!(r.is_empty());
        assert_eq!(r.buf.capacity(), 0, "nothing before a read");
        // Waiting for input holds no buffer.
        assert_eq!(r.fill_with(|b: &mut [u8]| Err(b.len())), Err(SMALL));
        assert_eq!(r.buf.capacity(), 0, "no buffer while waiting");
        assert_eq!(
            give(&mut r, usize::MAX, 1),
            SMALL,
            "the first read is small"
        );
        assert_eq!(r.read(&mut out).expect("read"), SMALL);
        assert_eq!(r.buf.len(), FIRST, "a full first read: room to tell");
        assert_eq!(give(&mut r, usize::MAX, 1), FIRST);
        assert_eq!(r.read(&mut out).expect("read"), FIRST);
        let n = give(&mut r, usize::MAX, 2);
        assert_eq!(n, ReadAhead::SIZE, "a full read grows it");
        assert_eq!(r.read(&mut out).expect("read"), ReadAhead::SIZE);
        assert!(out.iter().all(|&b| b == 2));
        assert_eq!(give(&mut r, 100, 3), 100);
        assert_eq!(r.read(&mut out[..60]).expect("read"), 60);
        assert_eq!(r.buf.len(), ReadAhead::SIZE, "kept while octets are held");
        assert_eq!(r.read(&mut out).expect("read"), 40);
        assert_eq!(r.buf.capacity(), 0, "freed after a small read");
        assert_eq!(r.read(&mut out).expect("read"), 0, "nothing held");
        assert_eq!(give(&mut r, 5000, 4), SMALL);
        assert_eq!(r.read(&mut out).expect("read"), SMALL);
        assert_eq!(give(&mut r, 6000, 5), 6000, "a read that did not fill it");
        assert_eq!(r.buf.len(), FIRST, "does not grow it");
        assert_eq!(r.read(&mut out).expect("read"), 6000);
        assert_eq!(give(&mut r, 0, 0), 0);
        assert_eq!(r.buf.capacity(), 0, "the end frees it");
        assert!(r.at_end);
    }

    #[test]
    fn octets_come_out_in_order() {
        let mut r = ReadAhead::default();
        r.fill_with(|b: &mut [u8]| {
            for (i, x) in b[..1000].iter_mut().enumerate() {
                *x = i as u8;
            }
            Ok::<_, ()>(1000)
        })
        .expect("read");
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
