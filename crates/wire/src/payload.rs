//! A sans-IO payload receiver: feed it the octets that follow `ok get` (client) or a put
//! line (server), and it hands back file data, checks the framing (DATA-2 .. DATA-5) and
//! verifies the digest (SUM-2). It does no I/O and keeps no copy of the data.

use crate::decode::{DecodeError, Invalid, decode_frame};
use crate::digest::{Digest, Hasher};
use crate::message::{ErrorReply, Frame};

/// What the receiver made of the octets it was given.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// Nothing to deliver yet: read more octets (the `consumed` count may still be > 0, for a
    /// chunk header).
    NeedMore,
    /// File octets, in order. Write them, then go on.
    Data(&'a [u8]),
    /// The `end` trailer came after exactly the announced octets and its digest matches the
    /// receiver's own: the transfer is complete and verified.
    Complete(Digest),
    /// The `end` trailer's digest differs from the digest of the octets received: discard
    /// the data. The framing is intact, so the connection can go on.
    Corrupt {
        /// The digest the sender announced.
        announced: Digest,
        /// The digest of what was received.
        computed: Digest,
    },
    /// The sender aborted the transfer: discard the data. The connection can go on.
    Aborted(ErrorReply),
}

/// A framing violation: the receiver cannot tell where the payload ends, or the sender broke
/// the rules. The connection cannot go on (a server answers `502 protocol` and closes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// A frame line does not match the grammar.
    #[error("bad payload line: {0}")]
    Invalid(#[from] Invalid),
    /// The chunks announce more octets than the transfer carries (DATA-4).
    #[error("chunk of {chunk} octets overruns the payload: {received} of {expected} received")]
    Overrun {
        /// Octets the payload must carry.
        expected: u64,
        /// Octets received before the chunk.
        received: u64,
        /// Length of the offending chunk.
        chunk: u32,
    },
    /// `end` came before all announced octets (DATA-4).
    #[error("end after {received} of {expected} octets")]
    EarlyEnd {
        /// Octets the payload must carry.
        expected: u64,
        /// Octets received.
        received: u64,
    },
    /// The receiver was fed again after the trailer (a caller's mistake).
    #[error("payload already finished")]
    Finished,
}

/// Receives one payload of a known length.
#[derive(Debug)]
pub struct PayloadReceiver {
    expected: u64,
    received: u64,
    chunk_left: u32,
    hasher: Hasher,
    finished: bool,
}

impl PayloadReceiver {
    /// A receiver for a payload of `expected` octets of a file that starts empty.
    pub fn new(expected: u64) -> Self {
        Self::resuming(expected, Hasher::new())
    }

    /// A receiver for the tail of a file: `prefix` has already hashed the octets the
    /// receiver holds (a resumed get, GET-7), so the final check covers the whole file.
    pub fn resuming(expected: u64, prefix: Hasher) -> Self {
        Self {
            expected,
            received: 0,
            chunk_left: 0,
            hasher: prefix,
            finished: false,
        }
    }

    /// Octets of file data delivered so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Octets the payload carries in all.
    pub fn expected(&self) -> u64 {
        self.expected
    }

    /// Whether the trailer has been seen.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Octets of raw chunk data still expected before the next frame line. A driver may read
    /// this many octets straight into its destination and pass them to
    /// [`PayloadReceiver::data`] instead of [`PayloadReceiver::feed`].
    pub fn chunk_left(&self) -> u32 {
        self.chunk_left
    }

    /// Accounts for `data`, octets of the current chunk that the driver read itself
    /// (at most [`PayloadReceiver::chunk_left`]); returns how many it took.
    pub fn data(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.chunk_left as usize);
        self.hasher.update(&data[..n]);
        self.chunk_left -= n as u32;
        self.received += n as u64;
        n
    }

    /// Decodes what `buf` starts with. Returns the step and how many octets of `buf` it used;
    /// drop those from the buffer before the next call.
    pub fn feed<'a>(&mut self, buf: &'a [u8]) -> Result<(Step<'a>, usize), PayloadError> {
        if self.finished {
            return Err(PayloadError::Finished);
        }
        if self.chunk_left > 0 {
            if buf.is_empty() {
                return Ok((Step::NeedMore, 0));
            }
            let n = self.data(buf);
            return Ok((Step::Data(&buf[..n]), n));
        }
        let (frame, used) = match decode_frame(buf) {
            Ok(x) => x,
            Err(DecodeError::Incomplete) => return Ok((Step::NeedMore, 0)),
            Err(DecodeError::Invalid(e)) => return Err(e.into()),
        };
        match frame {
            Frame::Data(len) => {
                if self.received + u64::from(len.get()) > self.expected {
                    return Err(PayloadError::Overrun {
                        expected: self.expected,
                        received: self.received,
                        chunk: len.get(),
                    });
                }
                self.chunk_left = len.get();
                let rest = &buf[used..];
                if rest.is_empty() {
                    return Ok((Step::NeedMore, used));
                }
                let n = self.data(rest);
                Ok((Step::Data(&rest[..n]), used + n))
            }
            Frame::End(announced) => {
                if self.received != self.expected {
                    return Err(PayloadError::EarlyEnd {
                        expected: self.expected,
                        received: self.received,
                    });
                }
                self.finished = true;
                let computed = self.hasher.digest();
                if computed == announced {
                    Ok((Step::Complete(computed), used))
                } else {
                    Ok((
                        Step::Corrupt {
                            announced,
                            computed,
                        },
                        used,
                    ))
                }
            }
            Frame::Abort(e) => {
                self.finished = true;
                Ok((Step::Aborted(e), used))
            }
        }
    }
}

/// Room a sender keeps in front of a chunk's data for its `data LEN` line (at most 13
/// octets: `data 1048576` and LF), so that head and data leave in one write without a copy.
pub const HEAD_ROOM: usize = 32;

/// Writes the `data LEN` line of a chunk of `len` octets at the end of `room` (the
/// [`HEAD_ROOM`] octets in front of the chunk's data) and returns where it starts: the chunk
/// on the wire is `room[start..]` followed by the data. The sending side of the framing that
/// [`PayloadReceiver`] checks.
pub fn write_chunk_head(room: &mut [u8; HEAD_ROOM], len: crate::message::ChunkLen) -> usize {
    use std::io::Write as _;
    let mut head = [0u8; HEAD_ROOM];
    let n = {
        let mut w = &mut head[..];
        // `data ` + at most 7 digits + LF: always fits.
        let _ = writeln!(w, "data {}", len.get());
        HEAD_ROOM - w.len()
    };
    let start = HEAD_ROOM - n;
    room[start..].copy_from_slice(&head[..n]);
    start
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::Code;
    use crate::message::encode_payload;

    fn drive(r: &mut PayloadReceiver, mut buf: &[u8], step: usize) -> (Vec<u8>, String) {
        let mut out = Vec::new();
        let mut window = step.min(buf.len());
        loop {
            match r.feed(&buf[..window]) {
                Ok((Step::Data(d), n)) => {
                    out.extend_from_slice(d);
                    buf = &buf[n..];
                    window = window.saturating_sub(n).max(step.min(buf.len()));
                }
                Ok((Step::NeedMore, n)) => {
                    buf = &buf[n..];
                    if window - n >= buf.len() {
                        return (out, "eof".into());
                    }
                    window = (window - n + step).min(buf.len());
                }
                Ok((s, _)) => return (out, format!("{s:?}")),
                Err(e) => return (out, format!("error: {e}")),
            }
        }
    }

    #[test]
    fn delivers_every_octet_whatever_the_read_sizes() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 256) as u8).collect();
        let mut wire = Vec::new();
        encode_payload(&data, Digest::of(&data), &mut wire);
        for step in [1, 7, 4096, 1 << 20, wire.len()] {
            let mut r = PayloadReceiver::new(data.len() as u64);
            let (out, end) = drive(&mut r, &wire, step);
            assert_eq!(
                end,
                format!("Complete({:?})", Digest::of(&data)),
                "step {step}"
            );
            assert!(out == data, "step {step}");
        }
    }

    #[test]
    fn detects_corruption_overrun_early_end_and_abort() {
        let mut wire = Vec::new();
        encode_payload(b"hello", Digest::of(b"hellO"), &mut wire);
        let (_, end) = drive(&mut PayloadReceiver::new(5), &wire, 64);
        assert!(end.starts_with("Corrupt"), "{end}");

        let (_, end) = drive(&mut PayloadReceiver::new(4), b"data 5\nhello", 64);
        assert!(end.contains("overruns"), "{end}");

        let wire = format!("data 2\nhe end {}\n", Digest::of(b"he"));
        let (_, end) = drive(&mut PayloadReceiver::new(5), wire.as_bytes(), 64);
        assert!(end.contains("bad payload line"), "chunk data is raw: {end}");

        let wire = format!("data 2\nheend {}\n", Digest::of(b"he"));
        let (_, end) = drive(&mut PayloadReceiver::new(5), wire.as_bytes(), 64);
        assert_eq!(end, "error: end after 2 of 5 octets");

        let (out, end) = drive(
            &mut PayloadReceiver::new(5),
            b"data 2\nheabort 430 changed\n",
            64,
        );
        assert_eq!(out, b"he");
        assert_eq!(
            end,
            format!("Aborted({:?})", ErrorReply::new(Code::CHANGED, "changed"))
        );
    }

    #[test]
    fn resume_checks_the_whole_file() {
        let mut prefix = Hasher::new();
        prefix.update(b"hel");
        let mut wire = Vec::new();
        encode_payload(b"lo", Digest::of(b"hello"), &mut wire);
        let (out, end) = drive(&mut PayloadReceiver::resuming(2, prefix), &wire, 3);
        assert_eq!(out, b"lo");
        assert!(end.starts_with("Complete"), "{end}");
    }

    #[test]
    fn feeding_after_the_trailer_is_an_error_not_a_panic() {
        let mut r = PayloadReceiver::new(0);
        let wire = format!("end {}\n", Digest::of(b""));
        assert!(matches!(
            r.feed(wire.as_bytes()),
            Ok((Step::Complete(_), _))
        ));
        assert_eq!(r.feed(b"x"), Err(PayloadError::Finished));
    }

    #[test]
    fn chunk_heads_fit_their_room_and_decode_back() {
        for n in [1u64, 9, 10, 99_999, u64::from(crate::limits::MAX_CHUNK)] {
            let len = crate::message::ChunkLen::new(n).expect("a chunk length");
            let mut room = [b'#'; HEAD_ROOM];
            let start = write_chunk_head(&mut room, len);
            assert!(room[..start].iter().all(|&b| b == b'#'));
            let (frame, used) = decode_frame(&room[start..]).expect("a frame");
            assert_eq!((frame, used), (Frame::Data(len), HEAD_ROOM - start));
        }
    }
}
