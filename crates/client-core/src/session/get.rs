//! Downloads: the payload of a `get`, checked by `ferry_wire::PayloadReceiver` and handed
//! to the driver as slices of the input buffer; what a failing sink turns the result into.

use std::io;

use ferry_wire::Step;

use super::{Action, ClientSession, Flow, Kind, Outcome, Payload, Rx, Sink, violation};
use crate::{ClientError, ViolationKind, visible};

/// The most octets of a download that cannot be stored (its sink failed) that the session
/// reads and drops to keep the connection; beyond it, it closes the connection (GET-15).
pub const DRAIN_LIMIT: u64 = 1 << 20;

impl ClientSession {
    /// The result of [`Action::OpenSink`].
    pub fn sink_opened(&mut self, opened: io::Result<()>) {
        if let Rx::Payload(p) = &mut self.rx
            && matches!(p.sink, Sink::Opening)
        {
            p.sink = match opened {
                Ok(()) => Sink::Open,
                Err(e) => Sink::OpenFailed(e),
            };
        }
    }

    /// The result of [`Action::WriteSink`]. After a failure the rest of the payload is read
    /// and dropped.
    pub fn sink_written(&mut self, written: io::Result<()>) {
        let Rx::Payload(p) = &mut self.rx else {
            return;
        };
        let Some((_, used)) = p.writing.take() else {
            return;
        };
        if let Err(e) = written {
            p.sink = Sink::WriteFailed(e);
        }
        let (id, done, total) = (self.ops.front().map(|o| o.id), p.rx.received(), p.size);
        let offset = p.offset;
        self.consume(used);
        if let Some(id) = id {
            self.get_progress = Some((id, offset + done, total));
        }
    }

    pub(super) fn payload_step(&mut self, mut p: Box<Payload>) -> Flow {
        let Some(op) = self.ops.front() else {
            return Flow::Nothing;
        };
        let id = op.id;
        if matches!(p.sink, Sink::Opening) {
            let (size, mtime) = (p.size, p.mtime);
            if size > self.options.max_get_size {
                // Refused before anything is written (GET-14).
                p.sink = Sink::OpenFailed(io::Error::other(format!(
                    "the server announces {size} octets, more than the {} this client accepts",
                    self.options.max_get_size
                )));
            } else {
                self.rx = Rx::Payload(p);
                return Flow::Act(Action::OpenSink { id, size, mtime });
            }
        }
        let left = p.size.saturating_sub(p.offset + p.rx.received());
        if left > DRAIN_LIMIT
            && let Sink::OpenFailed(local) | Sink::WriteFailed(local) = p.sink
        {
            // GET-15: closing the session costs less than reading what cannot be stored.
            self.complete(Ok(Outcome::Discarded(local)));
            self.end(format!(
                "closed rather than read {left} octets of a download that cannot be stored \
                 (GET-15)"
            ));
            return Flow::Again;
        }
        let data = &self.input[self.in_start..self.in_end];
        let (step, used) = match p.rx.feed(data) {
            Ok(x) => x,
            Err(e) => {
                let name = match &op.kind {
                    Kind::Get { path, .. } => visible(path.as_str()),
                    _ => String::new(),
                };
                let what = format!("bad payload for \"{name}\": {e}");
                self.payload_end(p.sink, Err(violation(ViolationKind::Payload, what)));
                return Flow::Again;
            }
        };
        match step {
            Step::Data(d) => {
                if matches!(p.sink, Sink::Open) {
                    let start = self.in_start + (d.as_ptr() as usize - data.as_ptr() as usize);
                    p.writing = Some((start..start + d.len(), used));
                    self.rx = Rx::Payload(p);
                    return Flow::Act(Action::WriteSink { id });
                }
                self.get_progress = Some((id, p.offset + p.rx.received(), p.size));
                self.consume(used);
                self.rx = Rx::Payload(p);
                Flow::Again
            }
            Step::NeedMore => {
                let left = data.len();
                self.consume(used);
                if used > 0 && used < left {
                    self.rx = Rx::Payload(p);
                    return Flow::Again;
                }
                if let Some(e) = self.recv_error.take() {
                    self.payload_end(p.sink, Err(ClientError::Io(e)));
                    return Flow::Again;
                }
                if self.eof {
                    let e = ClientError::Truncated {
                        received: p.offset + p.rx.received(),
                        expected: p.size,
                    };
                    self.payload_end(p.sink, Err(e));
                    return Flow::Again;
                }
                self.rx = Rx::Payload(p);
                Flow::NeedInput
            }
            Step::Complete(digest) => {
                self.consume(used);
                let (size, mtime) = (p.size, p.mtime);
                self.payload_end(
                    p.sink,
                    Ok(Outcome::Got {
                        size,
                        mtime,
                        digest,
                    }),
                );
                Flow::Again
            }
            Step::Corrupt {
                announced,
                computed,
            } => {
                self.consume(used);
                self.payload_end(
                    p.sink,
                    Err(ClientError::Corrupt {
                        announced,
                        computed,
                    }),
                );
                Flow::Again
            }
            Step::Aborted(e) => {
                self.consume(used);
                self.payload_end(p.sink, Err(ClientError::Refused(e)));
                Flow::Again
            }
        }
    }

    /// The result of a get whose payload ended (or broke), given what happened to its sink.
    fn payload_end(&mut self, sink: Sink, result: Result<Outcome, ClientError>) {
        let result = match (sink, result) {
            // A sink that failed to write: whatever the trailer said, the octets are gone.
            (
                Sink::WriteFailed(local),
                Ok(_) | Err(ClientError::Corrupt { .. } | ClientError::Refused(_)),
            ) => Ok(Outcome::Discarded(local)),
            // A sink that never opened: the payload was read past; only an error that ends
            // the session says more than the local failure.
            (Sink::OpenFailed(local), result) => match result {
                Err(e) if e.ends_session() => Err(e),
                _ => Ok(Outcome::Discarded(local)),
            },
            (_, result) => result,
        };
        match result {
            Ok(o) => self.complete(Ok(o)),
            Err(e) => self.complete(Err(e)),
        }
    }
}
