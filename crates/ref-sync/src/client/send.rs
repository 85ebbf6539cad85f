//! Sending a put payload: chunks read fully before their head is written (DATA-12), each
//! head and its data (and, for the last chunk, the `end` trailer) written with one call.

use std::io::{self, Read, Write};

use ferry_wire::limits::{MAX_CHUNK, MAX_LINE};
use ferry_wire::{Code, ErrorReply, Frame, Hasher, chunk_lengths};

/// Room before the chunk data for the request line (eager puts) and the chunk head.
const HEAD_ROOM: usize = MAX_LINE + 32;
/// Room after the chunk data for the `end` trailer.
const TAIL_ROOM: usize = 64;

/// A reusable send buffer: `[lead | head | chunk data | trailer]`.
#[derive(Debug, Default)]
pub(crate) struct ChunkBuf(Vec<u8>);

impl ChunkBuf {
    fn get(&mut self) -> &mut [u8] {
        if self.0.is_empty() {
            self.0 = vec![0; HEAD_ROOM + MAX_CHUNK as usize + TAIL_ROOM];
        }
        &mut self.0
    }
}

/// How the payload ended, as far as the local side is concerned.
#[derive(Debug)]
pub(crate) enum Sent {
    /// Every octet and the `end` trailer went out, with this digest.
    Complete(ferry_wire::Digest),
    /// The local source failed or changed; the payload was ended with `abort` (PUT-20) and
    /// the server will answer `err 434`.
    Aborted(io::Error),
}

/// Where a source is checked for changes before the trailer: returns `Ok(false)` when the
/// file is no longer what was announced (size or modification time changed).
pub(crate) type Unchanged<'a> = &'a mut dyn FnMut() -> io::Result<bool>;

/// Sends `lead` (the put line of an eager put, or nothing) followed by a payload of exactly
/// `size` octets read from `src`. `Err` is a failure to write to the connection: the framing
/// may be broken and the session must end.
pub(crate) fn send_payload(
    out: &mut dyn Write,
    buf: &mut ChunkBuf,
    lead: &[u8],
    size: u64,
    src: &mut dyn Read,
    unchanged: Unchanged<'_>,
    progress: &mut dyn FnMut(u64),
) -> io::Result<Sent> {
    debug_assert!(lead.len() <= HEAD_ROOM - 16);
    let buf = buf.get();
    let mut hasher = Hasher::new();
    let mut sent: u64 = 0;
    let mut lead = lead;
    let mut line = Vec::with_capacity(64);
    for len in chunk_lengths(size) {
        let n = len.as_usize();
        let data = &mut buf[HEAD_ROOM..HEAD_ROOM + n];
        if let Err(e) = read_exactly(src, data, sent, size) {
            let code = if e.kind() == io::ErrorKind::UnexpectedEof {
                Code::CHANGED
            } else {
                Code::STORAGE
            };
            return abort(out, lead, code, e);
        }
        hasher.update(data);
        let last = sent + n as u64 == size;
        let mut tail_len = 0;
        if last {
            match unchanged() {
                Ok(true) => {}
                Ok(false) => return abort(out, lead, Code::CHANGED, changed()),
                Err(e) => return abort(out, lead, Code::STORAGE, e),
            }
            line.clear();
            Frame::End(hasher.digest()).encode(&mut line);
            buf[HEAD_ROOM + n..HEAD_ROOM + n + line.len()].copy_from_slice(&line);
            tail_len = line.len();
        }
        line.clear();
        Frame::Data(len).encode(&mut line);
        let head_start = HEAD_ROOM - line.len();
        buf[head_start..HEAD_ROOM].copy_from_slice(&line);
        let start = head_start - lead.len();
        buf[start..head_start].copy_from_slice(lead);
        out.write_all(&buf[start..HEAD_ROOM + n + tail_len])?;
        lead = &[];
        sent += n as u64;
        progress(sent);
    }
    if size == 0 {
        match unchanged() {
            Ok(true) => {}
            Ok(false) => return abort(out, lead, Code::CHANGED, changed()),
            Err(e) => return abort(out, lead, Code::STORAGE, e),
        }
        let mut msg = lead.to_vec();
        Frame::End(hasher.digest()).encode(&mut msg);
        out.write_all(&msg)?;
        progress(0);
    }
    out.flush()?;
    Ok(Sent::Complete(hasher.digest()))
}

fn changed() -> io::Error {
    io::Error::other("the local file changed while it was being sent")
}

/// Ends the payload at a chunk boundary with `abort 430` (the file shrank or changed) or
/// `abort 431` (a read error), PUT-20.
fn abort(out: &mut dyn Write, lead: &[u8], code: Code, error: io::Error) -> io::Result<Sent> {
    let text = if code == Code::CHANGED {
        "changed: local file changed or shrank".to_owned()
    } else {
        format!("storage: local read error: {error}")
    };
    // Keep the line short: `ErrorReply::new` only bounds the text to what fits an `err`
    // line, and an `abort` line is two octets longer.
    let text: String = text.chars().take(200).collect();
    let mut msg = lead.to_vec();
    Frame::Abort(ErrorReply::new(code, &text)).encode(&mut msg);
    out.write_all(&msg)?;
    out.flush()?;
    Ok(Sent::Aborted(error))
}

/// Fills `data` from `src`; a source that ends early is an `UnexpectedEof` error.
fn read_exactly(src: &mut dyn Read, data: &mut [u8], sent: u64, size: u64) -> io::Result<()> {
    let mut filled = 0;
    while filled < data.len() {
        match src.read(&mut data[filled..]) {
            Ok(0) => {
                let got = sent + filled as u64;
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the local file ended after {got} of {size} octets"),
                ));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_wire::{Digest, PayloadReceiver, Step};

    fn receive(wire: &[u8], size: u64) -> (Vec<u8>, String) {
        let mut r = PayloadReceiver::new(size);
        let mut buf = wire;
        let mut out = Vec::new();
        loop {
            match r.feed(buf) {
                Ok((Step::Data(d), n)) => {
                    out.extend_from_slice(d);
                    buf = &buf[n..];
                }
                Ok((Step::NeedMore, _)) => return (out, "eof".into()),
                Ok((s, n)) => {
                    assert_eq!(n, buf.len(), "nothing after the trailer");
                    return (out, format!("{s:?}"));
                }
                Err(e) => return (out, format!("{e}")),
            }
        }
    }

    #[test]
    fn payloads_of_every_shape_decode() {
        for size in [
            0usize,
            1,
            5,
            MAX_CHUNK as usize,
            MAX_CHUNK as usize + 1,
            2_500_000,
        ] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let mut wire = Vec::new();
            let mut calls = 0;
            let sent = send_payload(
                &mut wire,
                &mut ChunkBuf::default(),
                b"put x\n",
                size as u64,
                &mut &data[..],
                &mut || Ok(true),
                &mut |_| calls += 1,
            )
            .expect("vec never fails");
            assert!(matches!(sent, Sent::Complete(d) if d == Digest::of(&data)));
            assert!(wire.starts_with(b"put x\n"));
            let (out, end) = receive(&wire[6..], size as u64);
            assert!(out == data, "size {size}");
            assert_eq!(end, format!("Complete({:?})", Digest::of(&data)));
            assert_eq!(calls, size.div_ceil(MAX_CHUNK as usize).max(1));
        }
    }

    #[test]
    fn short_source_and_change_abort_at_a_chunk_boundary() {
        let data = vec![7u8; MAX_CHUNK as usize + 10];
        let mut wire = Vec::new();
        let sent = send_payload(
            &mut wire,
            &mut ChunkBuf::default(),
            b"",
            MAX_CHUNK as u64 * 2,
            &mut &data[..],
            &mut || Ok(true),
            &mut |_| {},
        )
        .expect("vec");
        assert!(matches!(sent, Sent::Aborted(ref e) if e.kind() == io::ErrorKind::UnexpectedEof));
        let (out, end) = receive(&wire, MAX_CHUNK as u64 * 2);
        assert_eq!(out.len(), MAX_CHUNK as usize);
        assert!(end.starts_with("Aborted(ErrorReply { code: 430"), "{end}");

        let mut wire = Vec::new();
        let sent = send_payload(
            &mut wire,
            &mut ChunkBuf::default(),
            b"put y\n",
            3,
            &mut &b"abc"[..],
            &mut || Ok(false),
            &mut |_| {},
        )
        .expect("vec");
        assert!(matches!(sent, Sent::Aborted(_)));
        assert!(
            wire.starts_with(b"put y\nabort 430 "),
            "{:?}",
            String::from_utf8_lossy(&wire)
        );
    }

    #[test]
    fn read_errors_abort_with_431() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::PermissionDenied, "nope"))
            }
        }
        let mut wire = Vec::new();
        let sent = send_payload(
            &mut wire,
            &mut ChunkBuf::default(),
            b"",
            3,
            &mut Failing,
            &mut || Ok(true),
            &mut |_| {},
        )
        .expect("vec");
        assert!(matches!(sent, Sent::Aborted(_)));
        assert!(wire.starts_with(b"abort 431 storage: local read error: nope\n"));
    }
}
