//! TLS records read from the socket in large pieces and handed to rustls from memory.
//!
//! rustls' `read_tls` reads at most 4 KiB from its reader per call, so reading the socket
//! through it costs one system call (and one wake-up) per 4 KiB: a 1 GiB upload over TLS made
//! 262,144 `read`s. The drivers read up to [`SIZE`] octets from the socket into this buffer
//! instead and let rustls take them from memory, 4 KiB per call, without system calls.

use std::io;

/// Octets read from the socket at once.
pub(crate) const SIZE: usize = 64 * 1024;

/// Socket octets not yet given to rustls. The buffer is allocated at the first read, so an
/// idle connection costs nothing.
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

    /// Room to read the socket into ([`SIZE`] octets); call [`ReadAhead::filled`] after.
    pub(crate) fn space(&mut self) -> &mut [u8] {
        if self.buf.is_empty() {
            self.buf = vec![0; SIZE];
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
            return conn.read_tls(&mut io::empty());
        }
        let mut held = &self.buf[self.pos..self.len];
        let n = conn.read_tls(&mut held)?;
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_allocated_only_when_read_into() {
        let mut r = ReadAhead::default();
        assert!(r.is_empty());
        assert_eq!(r.buf.capacity(), 0);
        assert_eq!(r.space().len(), SIZE);
        r.filled(10);
        assert!(!r.is_empty());
    }
}
