//! TLS records read from the socket in large pieces and handed to rustls from memory.
//!
//! rustls' `read_tls` reads at most 4 KiB from its reader per call, so reading the socket
//! through it costs one system call (and one wake-up) per 4 KiB: a 1 GiB upload over TLS made
//! 262,144 `read`s. The drivers read up to [`SIZE`] octets from the socket into this buffer
//! instead and let rustls take them from memory, 4 KiB per call, without system calls.

use std::io;

/// Most octets read from the socket at once (during a bulk transfer).
pub(crate) const SIZE: usize = 64 * 1024;

/// The buffer's size at its first read: a session that moves small messages never needs more.
const FIRST: usize = 16 * 1024;

/// A read shorter than this that has been given to rustls frees the buffer: an idle session
/// (or one moving small messages) holds no buffer between reads.
const SMALL: usize = 4 * 1024;

/// Socket octets not yet given to rustls. The buffer is allocated at a read, grows to [`SIZE`]
/// while reads fill it, and is freed after a small read, so an idle connection costs nothing.
#[derive(Debug, Default)]
pub(crate) struct ReadAhead {
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl ReadAhead {
    /// Whether every octet read was given to rustls (the socket must be read next).
    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.len
    }

    /// Room to read the socket into; call [`ReadAhead::filled`] after.
    pub(crate) fn space(&mut self) -> &mut [u8] {
        if self.buf.is_empty() {
            self.buf = vec![0; FIRST];
        } else if self.len == self.buf.len() && self.buf.len() < SIZE {
            // The last read filled it: a bulk transfer.
            self.buf.resize(SIZE, 0);
        }
        &mut self.buf
    }

    /// `n` octets were read into [`ReadAhead::space`].
    pub(crate) fn filled(&mut self, n: usize) {
        self.pos = 0;
        self.len = n;
    }

    /// Gives rustls some of the octets held (at most what its buffer takes); returns how
    /// many. `at_end`: the socket's end was read (nothing held): rustls is told.
    pub(crate) fn feed<D>(
        &mut self,
        conn: &mut ferry_tls::rustls::ConnectionCommon<D>,
        at_end: bool,
    ) -> io::Result<usize> {
        if at_end {
            self.buf = Vec::new();
            return conn.read_tls(&mut io::empty());
        }
        let mut held = &self.buf[self.pos..self.len];
        let n = conn.read_tls(&mut held)?;
        self.pos += n;
        self.release_if_small();
        Ok(n)
    }

    /// Frees the buffer once a small read has been given to rustls.
    fn release_if_small(&mut self) {
        if self.is_empty() && self.len < SMALL {
            self.buf = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_grows_for_bulk_reads_and_goes_after_small_ones() {
        let mut r = ReadAhead::default();
        assert!(r.is_empty());
        assert_eq!(r.buf.capacity(), 0, "nothing before a read");
        assert_eq!(r.space().len(), FIRST);
        r.filled(FIRST);
        r.pos = FIRST;
        assert_eq!(r.space().len(), SIZE, "a full read grows it");
        r.filled(100);
        assert!(!r.is_empty());
        r.release_if_small();
        assert_eq!(r.buf.len(), SIZE, "kept while octets are held");
        r.pos = 100;
        r.release_if_small();
        assert_eq!(r.buf.capacity(), 0, "freed after a small read");
        assert_eq!(r.space().len(), FIRST, "a new buffer after one was freed");
        r.filled(FIRST);
        r.pos = FIRST;
        r.release_if_small();
        assert_eq!(r.buf.len(), FIRST, "kept after a bulk read");
    }
}
