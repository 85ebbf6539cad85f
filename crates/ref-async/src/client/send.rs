//! Sending a put payload: chunks read fully before their head is written (DATA-12), each
//! head and its data (and, for the last chunk, the `end` trailer) written with one call.

use std::io;

use ferry_wire::limits::{MAX_CHUNK, MAX_LINE};
use ferry_wire::{Code, ErrorReply, Frame, Hasher, chunk_lengths};
use futures_io::AsyncRead;

use super::conn::Outbound;
use super::local::Source;
use crate::runtime::Runtime;

/// Room before the chunk data for the request line (eager puts) and the chunk head.
const HEAD_ROOM: usize = MAX_LINE + 32;
/// Room after the chunk data for the `end` trailer.
const TAIL_ROOM: usize = 64;

/// How the payload ended, as far as the local side is concerned.
#[derive(Debug)]
pub(crate) enum Sent {
    /// Every octet and the `end` trailer went out, with this digest.
    Complete(ferry_wire::Digest),
    /// The local source failed or changed; the payload was ended with `abort` (PUT-20) and
    /// the server will answer `err 434`.
    Aborted(io::Error),
}

/// A reusable send buffer: `[lead | head | chunk data | trailer]`.
pub(crate) fn new_buf() -> Vec<u8> {
    vec![0; HEAD_ROOM + MAX_CHUNK as usize + TAIL_ROOM]
}

/// Sends `lead` (the put line of an eager put, or nothing) followed by a payload of exactly
/// `size` octets read from `src`. `Err` is a failure to write to the connection: the framing
/// may be broken and the session must end.
pub(crate) async fn send_payload<R: Runtime, T: AsyncRead + Unpin + ?Sized>(
    out: &mut Outbound<R>,
    buf: &mut Vec<u8>,
    lead: &[u8],
    size: u64,
    src: &mut Source<'_, R, T>,
    progress: &mut impl FnMut(u64),
) -> io::Result<Sent> {
    debug_assert!(lead.len() <= HEAD_ROOM - 16);
    if buf.len() < HEAD_ROOM + MAX_CHUNK as usize + TAIL_ROOM {
        *buf = new_buf();
    }
    let mut hasher = Hasher::new();
    let mut sent: u64 = 0;
    let mut lead = lead;
    let mut line = Vec::with_capacity(64);
    for len in chunk_lengths(size) {
        let n = len.as_usize();
        if let Err(e) = src
            .read_exactly(buf, HEAD_ROOM..HEAD_ROOM + n, sent, size)
            .await
        {
            let code = if e.kind() == io::ErrorKind::UnexpectedEof {
                Code::CHANGED
            } else {
                Code::STORAGE
            };
            return abort(out, lead, code, e).await;
        }
        hasher.update(&buf[HEAD_ROOM..HEAD_ROOM + n]);
        let last = sent + n as u64 == size;
        let mut tail_len = 0;
        if last {
            match src.unchanged().await {
                Ok(true) => {}
                Ok(false) => return abort(out, lead, Code::CHANGED, changed()).await,
                Err(e) => return abort(out, lead, Code::STORAGE, e).await,
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
        out.write_all(&buf[start..HEAD_ROOM + n + tail_len]).await?;
        lead = &[];
        sent += n as u64;
        progress(sent);
    }
    if size == 0 {
        match src.unchanged().await {
            Ok(true) => {}
            Ok(false) => return abort(out, lead, Code::CHANGED, changed()).await,
            Err(e) => return abort(out, lead, Code::STORAGE, e).await,
        }
        let mut msg = lead.to_vec();
        Frame::End(hasher.digest()).encode(&mut msg);
        out.write_all(&msg).await?;
        progress(0);
    }
    Ok(Sent::Complete(hasher.digest()))
}

fn changed() -> io::Error {
    io::Error::other("the local file changed while it was being sent")
}

/// Ends the payload at a chunk boundary with `abort 430` (the file shrank or changed) or
/// `abort 431` (a read error), PUT-20.
async fn abort<R: Runtime>(
    out: &mut Outbound<R>,
    lead: &[u8],
    code: Code,
    error: io::Error,
) -> io::Result<Sent> {
    let text = if code == Code::CHANGED {
        "changed: local file changed or shrank".to_owned()
    } else {
        format!("storage: local read error: {error}")
    };
    // Keep the line short: an `abort` line is two octets longer than an `err` line.
    let text: String = text.chars().take(200).collect();
    let mut msg = lead.to_vec();
    Frame::Abort(ErrorReply::new(code, &text)).encode(&mut msg);
    out.write_all(&msg).await?;
    Ok(Sent::Aborted(error))
}
