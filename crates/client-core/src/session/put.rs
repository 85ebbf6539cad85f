//! Uploads: the payload of a `put`, read by the driver into the chunk buffer and sent
//! chunk by chunk (DATA-12: a chunk is read whole before its head is written), ended with
//! `end` or, when the source fails or changes, `abort` (PUT-20); and the replies to a put.

use std::io;

use ferry_wire::{
    ChunkLen, Code, Digest, ErrorReply, Frame, HEAD_ROOM, Hasher, Reply, write_chunk_head,
};

use super::{
    ClientSession, DATA_AT, Flow, Kind, LEAD_ROOM, Op, OpId, Outcome, Sent, TAIL_ROOM, Up, Upload,
    unexpected, violation,
};
use crate::{ClientError, PutReport, ViolationKind};

impl ClientSession {
    /// The result of [`Action::ReadSource`](crate::session::Action::ReadSource): how many octets were read into
    /// [`ClientSession::source_space`] (fewer than asked: the source ended early), or the
    /// error.
    pub fn source_read(&mut self, read: io::Result<usize>) {
        let Some(up) = &mut self.upload else {
            return;
        };
        let Up::Reading(len) = up.state else {
            return;
        };
        match read {
            Ok(n) if n >= len => {
                up.hasher.update(&self.chunk_buf[DATA_AT..DATA_AT + len]);
                up.sent += len as u64;
                if up.sent >= up.size {
                    up.state = Up::Checking(len);
                } else {
                    up.state = Up::Next;
                    let (id, done, total) = (up.id, up.sent, up.size);
                    let end = self.queue_chunk(len, None);
                    self.put_progress = Some((end, id, done, total));
                }
            }
            Ok(n) => {
                let e = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the local file ended after {} of {} octets",
                        up.sent + n as u64,
                        up.size
                    ),
                );
                self.abort(Code::CHANGED, e);
            }
            Err(e) => self.abort(Code::STORAGE, e),
        }
    }

    /// The result of [`Action::CheckSource`](crate::session::Action::CheckSource): `Ok(false)` when the source changed.
    pub fn source_checked(&mut self, unchanged: io::Result<bool>) {
        let Some(up) = &mut self.upload else {
            return;
        };
        let Up::Checking(len) = up.state else {
            return;
        };
        match unchanged {
            Ok(true) => {
                let digest = up.hasher.digest();
                let (id, size) = (up.id, up.size);
                let end = if len > 0 {
                    self.queue_chunk(len, Some(digest))
                } else {
                    self.queue_out(|out| Frame::End(digest).encode(out))
                };
                self.put_progress = Some((end, id, size, size));
                self.payload_done(Sent::Complete(digest));
            }
            Ok(false) => self.abort(
                Code::CHANGED,
                io::Error::other("the local file changed while it was being sent"),
            ),
            Err(e) => self.abort(Code::STORAGE, e),
        }
    }

    pub(super) fn start_upload(&mut self, id: OpId, size: u64) {
        // An upload's payload begins a new run under the minimum rate.
        self.send_run = None;
        self.upload = Some(Upload {
            id,
            size,
            sent: 0,
            hasher: Hasher::new(),
            state: Up::Next,
        });
    }

    /// Puts the chunk of `len` octets read into the chunk buffer (with the `end` trailer if
    /// `trailer`) in the output, behind the request lines still unsent; returns the output
    /// position after it.
    fn queue_chunk(&mut self, len: usize, trailer: Option<Digest>) -> u64 {
        let Some(chunk_len) = ChunkLen::new(len as u64) else {
            return self.total_queued;
        };
        let buf = &mut self.chunk_buf;
        let room: &mut [u8; HEAD_ROOM] = match (&mut buf[LEAD_ROOM..DATA_AT]).try_into() {
            Ok(room) => room,
            Err(_) => return self.total_queued,
        };
        let head = LEAD_ROOM + write_chunk_head(room, chunk_len);
        let mut end = DATA_AT + len;
        if let Some(digest) = trailer {
            let mut line = Vec::with_capacity(TAIL_ROOM);
            Frame::End(digest).encode(&mut line);
            buf[end..end + line.len()].copy_from_slice(&line);
            end += line.len();
        }
        let lead = &self.out[self.out_sent..];
        let start = head - lead.len();
        buf[start..head].copy_from_slice(lead);
        self.out.clear();
        self.out_sent = 0;
        self.chunk = Some(start..end);
        self.total_queued += (end - head) as u64;
        self.total_queued
    }

    /// Ends the payload with `abort 430` (the source shrank or changed) or `abort 431` (a
    /// read error), PUT-20.
    fn abort(&mut self, code: Code, error: io::Error) {
        let text = if code == Code::CHANGED {
            "changed: local file changed or shrank".to_owned()
        } else {
            format!("storage: local read error: {error}")
        };
        // Keep the line short: an `abort` line is two octets longer than an `err` line.
        let text: String = text.chars().take(200).collect();
        self.queue_out(|out| Frame::Abort(ErrorReply::new(code, &text)).encode(out));
        self.payload_done(Sent::Aborted(error));
    }

    /// The upload's payload is all queued.
    fn payload_done(&mut self, sent: Sent) {
        let Some(up) = self.upload.take() else {
            return;
        };
        self.hold = false;
        let end = self.total_queued;
        if let Some(op) = self.ops.iter_mut().find(|o| o.id == up.id) {
            op.end = Some(end);
            if let Kind::Put { sent: s, .. } = &mut op.kind {
                *s = Some(sent);
            }
        }
    }

    /// The reply to a put: to its line (flow `wait`), or to its payload.
    pub(super) fn put_reply(&mut self, mut op: Op, reply: Reply) -> Flow {
        let Kind::Put {
            target,
            size,
            flow,
            path,
            sent,
            ..
        } = &mut op.kind
        else {
            self.finish(op, Err(unexpected(&reply, "put")));
            return Flow::Again;
        };
        let Some(sent) = sent else {
            // The reply to a put line with flow `wait`.
            self.hold = false;
            let result = match reply {
                Reply::Go => {
                    let (id, size) = (op.id, *size);
                    op.end = None;
                    self.hold = true;
                    self.ops.push_front(op);
                    self.start_upload(id, size);
                    return Flow::Again;
                }
                Reply::Err(e) => Err(ClientError::Refused(e)),
                other => Err(unexpected(&other, "put")),
            };
            self.finish(op, result);
            return Flow::Again;
        };
        let result = match (reply, sent) {
            (Reply::PutOk { size: s, digest: d }, Sent::Complete(ours)) => {
                if s == *size && d == *ours {
                    Ok(Outcome::Put(PutReport {
                        name: target.split_last().1,
                        size: *size,
                        digest: *ours,
                        flow: *flow,
                    }))
                } else {
                    Err(violation(
                        ViolationKind::Contradiction,
                        format!(
                            "the server confirmed {s} octets with {d}, but {size} octets with \
                             {ours} were sent"
                        ),
                    ))
                }
            }
            (Reply::Err(e), Sent::Aborted(source)) if e.code == Code::ABORTED => {
                Err(ClientError::Local {
                    path: path.take(),
                    source: std::mem::replace(source, io::Error::other("aborted")),
                })
            }
            (Reply::Err(e), _) => Err(ClientError::Refused(e)),
            (Reply::PutOk { .. }, Sent::Aborted(_)) => Err(violation(
                ViolationKind::Contradiction,
                "the server confirmed an upload that was aborted",
            )),
            (other, _) => Err(unexpected(&other, "put")),
        };
        self.finish(op, result);
        Flow::Again
    }
}
