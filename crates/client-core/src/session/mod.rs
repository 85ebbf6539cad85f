//! The client side of one ferry/1 session as a state machine that does no I/O and reads no
//! clock: the counterpart of `ferry_proto::server::ServerSession`.
//!
//! A driver owns the socket, the local files and a clock. It starts operations ([`ClientSession::dir`],
//! [`ClientSession::get`], [`ClientSession::put`], [`ClientSession::close`]; several may be
//! queued, which pipelines them), asks the session what to do next with
//! [`ClientSession::poll`], performs that [`Action`], reports the result with the matching
//! method, and polls again:
//!
//! | action | the driver … | then calls |
//! |---|---|---|
//! | [`Action::Io`] | writes [`ClientSession::output`] if `send` (some of it is enough) and/or reads into [`ClientSession::input_space`] if `receive`, whichever can go on first, waiting until `deadline` at most | [`ClientSession::sent`] or [`ClientSession::send_failed`]; [`ClientSession::received`], [`ClientSession::eof`] or [`ClientSession::recv_failed`]; at the deadline, [`ClientSession::timed_out`] |
//! | [`Action::OpenSink`] | opens where a get's octets go (the `.ferry-part` file, a writer) | [`ClientSession::sink_opened`] |
//! | [`Action::WriteSink`] | writes [`ClientSession::sink_data`] (a slice of the input buffer) to the get's sink | [`ClientSession::sink_written`] |
//! | [`Action::ReadSource`] | reads exactly `len` octets of the put's source into [`ClientSession::source_space`] (fewer only where the source ends) | [`ClientSession::source_read`] |
//! | [`Action::CheckSource`] | checks that the put's source still has the size and modification time it had when opened (PUT-20) | [`ClientSession::source_checked`] |
//! | [`Action::Progress`] | reports progress to its caller | — |
//! | [`Action::Done`] | takes the result of an operation | — |
//! | [`Action::Disconnect`] | closes the connection: the session has ended | — |
//! | [`Action::Idle`] | starts the next operation, or stops polling | — |
//!
//! Operations complete in the order they were started. The session sends requests in that
//! order, and a `put` with flow `wait` holds back everything queued after it until its `go`
//! (PUT-5). It reads a reply only once the request it answers has been sent completely, so a
//! driver that can both send and receive (`Action::Io` with both set) pipelines a batch
//! without either side blocking the other on full socket buffers (PIPE-3).
//!
//! Timeouts are those of [`ClientOptions`]: a wait for octets from the server ends after
//! `read_timeout` without any, a wait for the server to accept octets after `write_timeout`
//! without progress; both restart with every octet moved. Over them lies the minimum rate
//! ([`ClientOptions::min_rate`], the model of Apache's mod_reqtimeout): the answer to a
//! request (from when the session begins to wait for it as the head operation, until it is
//! complete) and a run of sending (from when there is output, until there is none; an
//! upload's payload begins a new run) must move `min_rate × (t − grace)` octets by `t`
//! seconds after they began, the grace being the read or write timeout. The session computes
//! both deadlines from the `now` the driver passes in and gives the earlier one in
//! [`Action::Io`]; at it, [`ClientSession::timed_out`] fails the wait with
//! [`crate::RateTooLow`] or the plain timeout, whichever passed first.
//!
//! Buffers, so that file data is never copied by the session: downloaded octets are handed
//! out as a slice of the input buffer ([`ClientSession::sink_data`]; 64 KiB, 1 MiB once a
//! download begins); an upload's octets are read by the driver straight into the session's
//! chunk buffer ([`ClientSession::source_space`]), which keeps room in front for the chunk's
//! `data LEN` line (`ferry_wire::write_chunk_head`) and the request line, and room behind
//! for the `end` trailer, so that an eager put of a small file leaves in one write.
//!
//! What the session does not do: anything with local files. Where a download is written
//! (`.ferry-part`, renames, resume prefixes), which files a batch sends and how their errors
//! are reported are the driver's policy, with the helpers of this crate.
//!
//! The code is split by job: this file holds the queue of operations, the output and input
//! buffers and `poll`; `reply.rs` the greeting, reply lines and listings; `get.rs` download
//! payloads; `put.rs` upload payloads and the replies to puts.

use std::collections::VecDeque;
use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferry_wire::limits::{MAX_CHUNK, MAX_LINE};
use ferry_wire::tree::{TreeListing, TreeRequest};
use ferry_wire::{
    DecodeError, Digest, ErrorReply, FileName, Greeting, HEAD_ROOM, Hasher, Invalid, Listing,
    PayloadReceiver, PutFlow, PutMode, Reply, Request, Timestamp, TreePath,
};

mod get;
pub use get::DRAIN_LIMIT;
mod login;
mod put;
mod reply;
mod tree;
pub use tree::TreeOp;

use crate::{
    ClientError, ClientOptions, PutOptions, PutReport, RateTooLow, Violation, ViolationKind,
};

/// Size of the input buffer during a download: a full chunk fits, so a download is handed
/// out in large pieces.
pub const RECV_BUF: usize = 1 << 20;

/// Size of the input buffer until the first download: replies, listings and a run of
/// pipelined replies.
const INPUT_SMALL: usize = 64 * 1024;

/// Room in front of an upload chunk's head for request lines still unsent (the put line of
/// an eager put, the trailer of the put before it).
const LEAD_ROOM: usize = MAX_LINE + 256;

/// Room after an upload chunk's data for the `end` trailer.
const TAIL_ROOM: usize = 128;

/// Where chunk data starts in the chunk buffer.
const DATA_AT: usize = LEAD_ROOM + HEAD_ROOM;

/// Identifies an operation of a session, in the order they were started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u64);

/// What the driver does next. See the module documentation.
#[derive(Debug)]
pub enum Action {
    /// Send [`ClientSession::output`] (if `send`) and/or receive into
    /// [`ClientSession::input_space`] (if `receive`), whichever the connection allows first.
    Io {
        /// There are octets to send.
        send: bool,
        /// The session waits for octets from the server.
        receive: bool,
        /// When to call [`ClientSession::timed_out`] if nothing moved (`None`: never).
        deadline: Option<Instant>,
    },
    /// A get's reply came: open its sink and say so with [`ClientSession::sink_opened`].
    OpenSink {
        /// The get.
        id: OpId,
        /// The file's size.
        size: u64,
        /// Its modification time.
        mtime: Timestamp,
    },
    /// Write [`ClientSession::sink_data`] to the get's sink: [`ClientSession::sink_written`].
    WriteSink {
        /// The get.
        id: OpId,
    },
    /// Read the next `len` octets of the put's source into [`ClientSession::source_space`]:
    /// [`ClientSession::source_read`].
    ReadSource {
        /// The put.
        id: OpId,
        /// How many octets.
        len: usize,
    },
    /// Check that the put's source is unchanged since it was opened:
    /// [`ClientSession::source_checked`].
    CheckSource {
        /// The put.
        id: OpId,
    },
    /// Octets of a file moved: for a get, received (the local prefix of a resume included);
    /// for a put, a chunk sent.
    Progress {
        /// The operation.
        id: OpId,
        /// Octets done.
        done: u64,
        /// The file's size.
        total: u64,
    },
    /// An operation is over.
    Done {
        /// The operation.
        id: OpId,
        /// How it went.
        result: Result<Outcome, ClientError>,
    },
    /// The session has ended (an error that ends it, ERR-9, ERR-10): close the connection.
    Disconnect,
    /// Nothing to do until an operation is started.
    Idle,
}

/// What a successful operation produced.
#[derive(Debug)]
pub enum Outcome {
    /// The greeting was read and accepted ([`ClientSession::greeting`]).
    Connected,
    /// A `dir` listing.
    Listing(Listing),
    /// A verified download.
    Got {
        /// The file's size.
        size: u64,
        /// Its modification time on the server.
        mtime: Timestamp,
        /// Its verified digest.
        digest: Digest,
    },
    /// The download's sink failed (to open, or to write): the rest of the payload was read
    /// and dropped so that the session goes on. The octets written are not verified.
    Discarded(io::Error),
    /// A confirmed upload.
    Put(PutReport),
    /// `bye`: the server closes the connection; so should the driver.
    Bye,
    /// A `list` listing (the `tree` extension, TREE-6).
    TreeListing(TreeListing),
    /// `ok mkdir`, `ok rmdir`, `ok delete` or `ok rename` (the `tree` extension).
    TreeDone,
    /// `ok enable tree` (TREE-1); the session sends `enable` itself and reports only a
    /// refusal, through the gets and puts by path that follow it.
    Enabled,
}

#[derive(Debug)]
struct Op {
    id: OpId,
    kind: Kind,
    /// Position in the output stream just after the operation's last octet, once known.
    end: Option<u64>,
}

#[derive(Debug)]
enum Kind {
    Greeting,
    /// The greeting was accepted; the login runs ([`crate::ClientOptions::login`]).
    Login(Box<login::LoginState>),
    Dir,
    /// `enable tree`, queued by the session before the first get or put by a path of more
    /// than one name; its result is not reported (TREE-1).
    Enable,
    Tree(TreeOp),
    Get {
        path: TreePath,
        offset: u64,
        prefix: Option<Hasher>,
    },
    Put {
        target: TreePath,
        size: u64,
        mode: PutMode,
        flow: PutFlow,
        path: Option<PathBuf>,
        /// How the payload ended, once it did.
        sent: Option<Sent>,
    },
    Close,
}

/// How a put's payload ended, as far as the local side is concerned.
#[derive(Debug)]
enum Sent {
    Complete(Digest),
    /// The source failed or changed: the payload ended with `abort` (PUT-20).
    Aborted(io::Error),
}

/// What the head operation is receiving.
#[derive(Debug)]
enum Rx {
    Reply,
    Entries {
        left: u64,
        listing: Listing,
    },
    TreeEntries {
        left: u64,
        listing: Box<TreeListing>,
        recursive: bool,
    },
    Payload(Box<Payload>),
}

#[derive(Debug)]
struct Payload {
    rx: PayloadReceiver,
    size: u64,
    mtime: Timestamp,
    offset: u64,
    sink: Sink,
    /// Data of the input buffer handed out for writing, and the input octets to consume once
    /// it is written.
    writing: Option<(Range<usize>, usize)>,
}

#[derive(Debug)]
enum Sink {
    Opening,
    Open,
    OpenFailed(io::Error),
    WriteFailed(io::Error),
}

/// An upload whose payload is being sent.
#[derive(Debug)]
struct Upload {
    id: OpId,
    size: u64,
    sent: u64,
    hasher: Hasher,
    state: Up,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Up {
    /// The next chunk is to be read (once the previous one left).
    Next,
    /// A `ReadSource` of this many octets is outstanding.
    Reading(usize),
    /// The last chunk (this many octets, 0 for an empty file) was read; a `CheckSource` is
    /// outstanding.
    Checking(usize),
}

/// A run of transfer in one direction, under the minimum rate.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// For an answer: the operation it answers.
    op: Option<OpId>,
    /// When it began.
    start: Instant,
    /// Octets moved in that direction before it began.
    base: u64,
}

/// The deadlines of one direction's wait: without progress (the timeout) and under the
/// minimum rate.
#[derive(Debug, Clone, Copy, Default)]
struct Deadlines {
    idle: Option<Instant>,
    rate: Option<Instant>,
}

impl Deadlines {
    fn earliest(self) -> Option<Instant> {
        earliest(self.idle, self.rate)
    }

    /// Which deadline passed at `now`, the earlier first: `Some(true)` for the rate.
    fn passed(self, now: Instant) -> Option<bool> {
        let idle = self.idle.filter(|d| *d <= now);
        let rate = self.rate.filter(|d| *d <= now);
        match (idle, rate) {
            (Some(i), Some(r)) => Some(r < i),
            (Some(_), None) => Some(false),
            (None, Some(_)) => Some(true),
            (None, None) => None,
        }
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One of ferry-wire's line decoders.
type Decoder<T> = fn(&[u8]) -> Result<(T, usize), DecodeError>;

/// Why no line could be read.
enum ReadFail {
    Eof,
    Io(io::Error),
    Invalid { error: Invalid, line: String },
}

/// A request line: ferry/1's, or the `tree` extension's.
enum Line {
    Ferry(Request),
    Tree(TreeRequest),
}

enum Flow {
    Act(Action),
    Again,
    NeedInput,
    Nothing,
}

/// One client session. See the module documentation for the driving loop.
#[derive(Debug)]
pub struct ClientSession {
    options: ClientOptions,
    greeting: Option<Greeting>,
    /// The connection's channel binding under TLS (TLS-15), for the login.
    cb: Option<[u8; 32]>,
    now: Instant,
    next_id: u64,
    /// Operations not yet done, in order; the first `queued` have had their request queued.
    ops: VecDeque<Op>,
    queued: usize,
    /// What the head operation is receiving.
    rx: Rx,
    /// A put with flow `wait` waits for `go`: nothing else is queued (PUT-5).
    hold: bool,
    upload: Option<Upload>,
    input: Vec<u8>,
    in_start: usize,
    in_end: usize,
    eof: bool,
    recv_error: Option<io::Error>,
    out: Vec<u8>,
    out_sent: usize,
    /// The chunk buffer of uploads: `[LEAD_ROOM | HEAD_ROOM | data | TAIL_ROOM]`.
    chunk_buf: Vec<u8>,
    /// Octets of the chunk buffer to send, after `out` (which is then empty).
    chunk: Option<Range<usize>>,
    /// Octets queued and sent since the session began.
    total_queued: u64,
    total_sent: u64,
    send_error: Option<io::Error>,
    send_since: Option<Instant>,
    recv_since: Option<Instant>,
    send_deadline: Deadlines,
    recv_deadline: Deadlines,
    /// Octets received since the session began.
    total_received: u64,
    send_run: Option<Run>,
    recv_run: Option<Run>,
    done: VecDeque<(OpId, Result<Outcome, ClientError>)>,
    get_progress: Option<(OpId, u64, u64)>,
    /// Progress to report once the output reaches the position.
    put_progress: Option<(u64, OpId, u64, u64)>,
    ended: Option<String>,
    disconnect: bool,
    /// `enable tree` was queued (TREE-1: once per session).
    enable_sent: bool,
    /// The server refused `enable tree`.
    enable_refused: Option<ErrorReply>,
}

impl ClientSession {
    /// A session on a connection made at `now`: its first operation ([`OpId`] 0) reads and
    /// checks the greeting, and completes with [`Outcome::Connected`].
    pub fn new(options: ClientOptions, now: Instant) -> Self {
        // With a login, nothing is sent before it succeeded (AUTH-5).
        let hold = options.login.is_some();
        Self {
            options,
            greeting: None,
            cb: None,
            now,
            next_id: 1,
            ops: VecDeque::from([Op {
                id: OpId(0),
                kind: Kind::Greeting,
                end: Some(0),
            }]),
            queued: 1,
            rx: Rx::Reply,
            hold,
            upload: None,
            input: vec![0; INPUT_SMALL],
            in_start: 0,
            in_end: 0,
            eof: false,
            recv_error: None,
            out: Vec::with_capacity(1024),
            out_sent: 0,
            chunk_buf: Vec::new(),
            chunk: None,
            total_queued: 0,
            total_sent: 0,
            send_error: None,
            send_since: None,
            recv_since: None,
            send_deadline: Deadlines::default(),
            recv_deadline: Deadlines::default(),
            total_received: 0,
            send_run: None,
            recv_run: None,
            done: VecDeque::new(),
            get_progress: None,
            put_progress: None,
            ended: None,
            disconnect: false,
            enable_sent: false,
            enable_refused: None,
        }
    }

    /// Under TLS: the connection's channel-binding value (TLS-15), which a login's proof is
    /// bound to (AUTH-9, AUTH-11). Call it before the first [`ClientSession::poll`].
    pub fn set_channel_binding(&mut self, cb: [u8; 32]) {
        self.cb = Some(cb);
    }

    // -------------------------------------------------------------- getters ---

    /// The server's greeting, once it was read and accepted.
    pub fn greeting(&self) -> Option<&Greeting> {
        self.greeting.as_ref()
    }

    /// The options the session applies.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Why the session ended, once it has; later operations fail at once with
    /// [`ClientError::Disconnected`].
    pub fn ended(&self) -> Option<&str> {
        self.ended.as_deref()
    }

    /// Whether the session can still carry requests.
    pub fn is_open(&self) -> bool {
        self.ended.is_none()
    }

    /// Whether no operation is in progress.
    pub fn is_idle(&self) -> bool {
        self.ops.is_empty() && self.done.is_empty()
    }

    /// Whether a put queued now would start sending at once: no payload is being sent and
    /// every operation started has been queued. A batch driver opens its next source only
    /// then, so that it holds one file open at a time.
    pub fn ready_to_queue(&self) -> bool {
        self.upload.is_none() && self.chunk.is_none() && !self.hold && self.queued == self.ops.len()
    }

    /// The largest size sent with flow `now`: the smaller of the server's `max-eager` and
    /// [`ClientOptions::eager_limit`]; `None` when eager puts are off (PUT-7).
    pub fn eager_max(&self, opts: &PutOptions) -> Option<u64> {
        let server = self.greeting.as_ref()?.limits().max_eager;
        if !opts.eager || server == 0 {
            return None;
        }
        Some(server.min(self.options.eager_limit))
    }

    /// The octets to send now (for [`Action::Io`] with `send`).
    pub fn output(&self) -> &[u8] {
        if self.out_sent < self.out.len() {
            &self.out[self.out_sent..]
        } else if let Some(r) = &self.chunk {
            &self.chunk_buf[r.clone()]
        } else {
            &[]
        }
    }

    /// The free space of the input buffer, to read into (for [`Action::Io`] with `receive`).
    pub fn input_space(&mut self) -> &mut [u8] {
        if matches!(self.rx, Rx::Payload(_)) && self.input.len() < RECV_BUF {
            // A download reads in large pieces; the buffer stays large for the session.
            self.input.resize(RECV_BUF, 0);
        }
        let writing = matches!(&self.rx, Rx::Payload(p) if p.writing.is_some());
        if !writing && self.in_start > 0 && self.input.len() - self.in_end < MAX_LINE {
            self.input.copy_within(self.in_start..self.in_end, 0);
            self.in_end -= self.in_start;
            self.in_start = 0;
        }
        &mut self.input[self.in_end..]
    }

    /// The downloaded octets to write (for [`Action::WriteSink`]).
    pub fn sink_data(&self) -> &[u8] {
        match &self.rx {
            Rx::Payload(p) => match &p.writing {
                Some((r, _)) => &self.input[r.clone()],
                None => &[],
            },
            _ => &[],
        }
    }

    /// Where to read the source's next octets (for [`Action::ReadSource`]): exactly `len`
    /// octets.
    pub fn source_space(&mut self) -> &mut [u8] {
        let len = match &self.upload {
            Some(Upload {
                state: Up::Reading(len),
                ..
            }) => *len,
            _ => 0,
        };
        &mut self.chunk_buf[DATA_AT..DATA_AT + len]
    }

    // ----------------------------------------------------------- operations ---

    fn start(&mut self, kind: Kind) -> OpId {
        let id = OpId(self.next_id);
        self.next_id += 1;
        match &self.ended {
            Some(why) => {
                let why = why.clone();
                self.done
                    .push_back((id, Err(ClientError::Disconnected(why))));
            }
            None => self.ops.push_back(Op {
                id,
                kind,
                end: None,
            }),
        }
        id
    }

    /// Starts a `dir`; it completes with [`Outcome::Listing`].
    pub fn dir(&mut self) -> OpId {
        self.start(Kind::Dir)
    }

    /// Starts a `get` of `name` from `offset`; `prefix` has hashed the local octets before
    /// `offset` (a resume, GET-7), so that the digest check covers the whole file. It
    /// completes with [`Outcome::Got`] or [`Outcome::Discarded`].
    pub fn get(&mut self, name: FileName, offset: u64, prefix: Hasher) -> OpId {
        self.get_path(TreePath::from(name), offset, prefix)
    }

    /// [`ClientSession::get`] of a file by its path (the `tree` extension, TREE-5). A
    /// one-name path is a ferry/1 `get` of that name; for a longer one the session queues
    /// `enable tree` first, once per session (TREE-1), and a server that does not offer
    /// `tree` fails it at once with [`ClientError::NotOffered`].
    pub fn get_path(&mut self, path: TreePath, offset: u64, prefix: Hasher) -> OpId {
        if let Err(e) = self.prepare_path(&path) {
            return self.start_failed(e);
        }
        self.start(Kind::Get {
            path,
            offset,
            prefix: Some(prefix),
        })
    }

    /// Starts one operation of the `tree` extension: [`TreeOp::List`] completes with
    /// [`Outcome::TreeListing`], the others with [`Outcome::TreeDone`]. A server that does
    /// not offer `tree` fails it at once with [`ClientError::NotOffered`] (nothing is sent).
    pub fn tree(&mut self, op: TreeOp) -> OpId {
        if !self.tree_offered() {
            return self.start_failed(tree::not_offered());
        }
        self.start(Kind::Tree(op))
    }

    /// Whether the server's greeting lists `tree` (unknown before the greeting: yes).
    pub fn tree_offered(&self) -> bool {
        self.greeting.as_ref().is_none_or(ferry_wire::tree::offered)
    }

    /// Before a get or put by `path`: nothing for a one-name path; else the server must
    /// offer `tree`, and `enable tree` is queued once (TREE-1).
    fn prepare_path(&mut self, path: &TreePath) -> Result<(), ClientError> {
        if path.depth() <= 1 {
            return Ok(());
        }
        if !self.tree_offered() {
            return Err(tree::not_offered());
        }
        if !self.enable_sent && self.ended.is_none() {
            self.enable_sent = true;
            self.start(Kind::Enable);
        }
        Ok(())
    }

    /// An operation that fails before anything is sent.
    fn start_failed(&mut self, e: ClientError) -> OpId {
        let id = OpId(self.next_id);
        self.next_id += 1;
        self.done.push_back((id, Err(e)));
        id
    }

    /// Starts a `put` of `size` octets as `name`, with flow `now` when `size` is within
    /// [`ClientSession::eager_max`] for `opts`, else `wait`. `path` names the local file in
    /// errors. It completes with [`Outcome::Put`]; a payload the session had to abort because
    /// the source failed or changed (PUT-20) ends with [`ClientError::Local`].
    pub fn put(
        &mut self,
        name: FileName,
        size: u64,
        opts: &PutOptions,
        path: Option<PathBuf>,
    ) -> OpId {
        self.put_path(TreePath::from(name), size, opts, path)
    }

    /// [`ClientSession::put`] to a path (the `tree` extension, TREE-5): as
    /// [`ClientSession::get_path`] has it, a one-name path is a ferry/1 `put`, a longer one
    /// is preceded by `enable tree` once per session. The file's folder must exist (511).
    pub fn put_path(
        &mut self,
        target: TreePath,
        size: u64,
        opts: &PutOptions,
        path: Option<PathBuf>,
    ) -> OpId {
        if let Err(e) = self.prepare_path(&target) {
            return self.start_failed(e);
        }
        let eager = self.eager_max(opts).is_some_and(|max| size <= max);
        let flow = if eager { PutFlow::Now } else { PutFlow::Wait };
        self.start(Kind::Put {
            target,
            size,
            mode: opts.mode,
            flow,
            path,
            sent: None,
        })
    }

    /// Starts a `close`: it completes with [`Outcome::Bye`], and the session has ended.
    pub fn close(&mut self) -> OpId {
        self.start(Kind::Close)
    }

    // --------------------------------------------------------------- inputs ---

    /// `n` octets of [`ClientSession::output`] were sent.
    pub fn sent(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.send_since = None;
        if self.out_sent < self.out.len() {
            let n = n.min(self.out.len() - self.out_sent);
            self.out_sent += n;
            self.total_sent += n as u64;
            if self.out_sent == self.out.len() {
                self.out.clear();
                self.out_sent = 0;
            }
        } else if let Some(r) = &mut self.chunk {
            let n = n.min(r.len());
            r.start += n;
            self.total_sent += n as u64;
            if r.start >= r.end {
                self.chunk = None;
            }
        }
    }

    /// Sending failed: the connection cannot carry the rest of the output.
    pub fn send_failed(&mut self, e: io::Error) {
        if self.send_error.is_none() {
            self.send_error = Some(e);
        }
        self.out.clear();
        self.out_sent = 0;
        self.chunk = None;
        self.upload = None;
        self.put_progress = None;
    }

    /// `n` octets were read into [`ClientSession::input_space`].
    pub fn received(&mut self, n: usize) {
        if n > 0 {
            self.recv_since = None;
            self.in_end = (self.in_end + n).min(self.input.len());
            self.total_received += n as u64;
        }
    }

    /// The server closed its side of the connection.
    pub fn eof(&mut self) {
        self.eof = true;
    }

    /// Receiving failed (reset, …).
    pub fn recv_failed(&mut self, e: io::Error) {
        if self.recv_error.is_none() {
            self.recv_error = Some(e);
        }
    }

    /// The deadline of the [`Action::Io`] just returned passed: without progress, or below
    /// the minimum rate.
    pub fn timed_out(&mut self, now: Instant) {
        self.now = now;
        match self.send_deadline.passed(now) {
            Some(true) => {
                let e = self.too_slow(true, now);
                self.send_failed(e);
            }
            Some(false) => self.send_failed(io::Error::new(
                io::ErrorKind::TimedOut,
                "the server accepted nothing within the write timeout",
            )),
            None => {}
        }
        match self.recv_deadline.passed(now) {
            Some(true) => {
                let e = self.too_slow(false, now);
                self.recv_failed(e);
            }
            Some(false) => self.recv_failed(io::Error::new(
                io::ErrorKind::TimedOut,
                "the server sent nothing within the read timeout",
            )),
            None => {}
        }
    }

    /// The error of a run in one direction that fell below the minimum rate.
    fn too_slow(&self, sending: bool, now: Instant) -> io::Error {
        let (run, total, grace) = if sending {
            (self.send_run, self.total_sent, self.options.write_timeout)
        } else {
            (
                self.recv_run,
                self.total_received,
                self.options.read_timeout,
            )
        };
        let (moved, elapsed) = run.map_or((0, Duration::ZERO), |r| {
            (total - r.base, now.saturating_duration_since(r.start))
        });
        io::Error::new(
            io::ErrorKind::TimedOut,
            RateTooLow {
                sending,
                moved,
                elapsed,
                grace: grace.unwrap_or_default(),
                min_rate: self.options.min_rate,
            },
        )
    }

    /// The deadline of `run` under the minimum rate, with `grace`, `total` octets moved.
    fn rate_deadline(&self, run: Run, total: u64, grace: Option<Duration>) -> Option<Instant> {
        let rate = self.options.min_rate;
        if rate == 0 {
            return None;
        }
        let bought = ferry_wire::limits::rate_time(total - run.base, rate);
        run.start.checked_add(grace?)?.checked_add(bought)
    }

    // ----------------------------------------------------------------- poll ---

    /// What to do next, at `now`.
    pub fn poll(&mut self, now: Instant) -> Action {
        self.now = now;
        // A timeout applies to the wait that was asked for last, not to an earlier one.
        self.send_deadline = Deadlines::default();
        self.recv_deadline = Deadlines::default();
        loop {
            if let Rx::Payload(p) = &self.rx
                && p.writing.is_some()
                && let Some(op) = self.ops.front()
            {
                return Action::WriteSink { id: op.id };
            }
            if let Some((id, result)) = self.done.pop_front() {
                return Action::Done { id, result };
            }
            if self.disconnect {
                self.disconnect = false;
                return Action::Disconnect;
            }
            if let Some((id, done, total)) = self.get_progress.take() {
                return Action::Progress { id, done, total };
            }
            if let Some((at, id, done, total)) = self.put_progress
                && self.total_sent >= at
            {
                self.put_progress = None;
                return Action::Progress { id, done, total };
            }
            if self.ended.is_some() {
                return Action::Idle;
            }
            let receive = match self.receive_step() {
                Flow::Act(a) => return a,
                Flow::Again => continue,
                Flow::NeedInput => true,
                Flow::Nothing => false,
            };
            match self.send_step() {
                Flow::Act(a) => return a,
                Flow::Again => continue,
                Flow::NeedInput | Flow::Nothing => {}
            }
            let send = !self.output().is_empty();
            if !send {
                self.send_since = None;
                self.send_run = None;
            }
            if !receive {
                self.recv_since = None;
                self.recv_run = None;
            }
            if !send && !receive {
                return Action::Idle;
            }
            if send {
                let since = *self.send_since.get_or_insert(now);
                let base = self.total_sent;
                let run = *self.send_run.get_or_insert(Run {
                    op: None,
                    start: now,
                    base,
                });
                let timeout = self.options.write_timeout;
                self.send_deadline = Deadlines {
                    idle: timeout.map(|t| since + t),
                    rate: self.rate_deadline(run, self.total_sent, timeout),
                };
            }
            if receive {
                let since = *self.recv_since.get_or_insert(now);
                // The answer to the head operation: a new run when the head changed.
                let head = self.ops.front().map(|o| o.id);
                let run = match self.recv_run {
                    Some(r) if r.op == head => r,
                    _ => Run {
                        op: head,
                        start: now,
                        base: self.total_received,
                    },
                };
                self.recv_run = Some(run);
                let timeout = self.options.read_timeout;
                self.recv_deadline = Deadlines {
                    idle: timeout.map(|t| since + t),
                    rate: self.rate_deadline(run, self.total_received, timeout),
                };
            }
            let deadline = earliest(self.send_deadline.earliest(), self.recv_deadline.earliest());
            return Action::Io {
                send,
                receive,
                deadline,
            };
        }
    }

    // ---------------------------------------------------------------- send ---

    fn send_step(&mut self) -> Flow {
        if self.send_error.is_some() || self.chunk.is_some() {
            return Flow::Nothing;
        }
        if let Some(up) = &mut self.upload {
            return match up.state {
                Up::Reading(len) => Flow::Act(Action::ReadSource { id: up.id, len }),
                Up::Checking(_) => Flow::Act(Action::CheckSource { id: up.id }),
                Up::Next => {
                    if self.out.len() - self.out_sent > LEAD_ROOM {
                        // The request lines in front leave first.
                        return Flow::Nothing;
                    }
                    let id = up.id;
                    if up.sent < up.size {
                        let len = (up.size - up.sent).min(u64::from(MAX_CHUNK)) as usize;
                        up.state = Up::Reading(len);
                        if self.chunk_buf.is_empty() {
                            self.chunk_buf = vec![0; DATA_AT + MAX_CHUNK as usize + TAIL_ROOM];
                        }
                        Flow::Act(Action::ReadSource { id, len })
                    } else {
                        up.state = Up::Checking(0);
                        Flow::Act(Action::CheckSource { id })
                    }
                }
            };
        }
        if self.hold || self.queued >= self.ops.len() {
            return Flow::Nothing;
        }
        let op = &mut self.ops[self.queued];
        self.queued += 1;
        // A one-name path is a ferry/1 name; a longer one is the extension's (TREE-5).
        let line = match &op.kind {
            Kind::Greeting | Kind::Login(_) => return Flow::Again,
            Kind::Dir => Line::Ferry(Request::Dir),
            Kind::Enable => match tree::tree_name() {
                Some(ext) => Line::Tree(TreeRequest::Enable(ext)),
                None => return Flow::Again,
            },
            Kind::Tree(t) => Line::Tree(t.request()),
            Kind::Get { path, offset, .. } => match path.as_file_name() {
                Some(name) => Line::Ferry(Request::Get {
                    offset: *offset,
                    name,
                }),
                None => Line::Tree(TreeRequest::Get {
                    offset: *offset,
                    path: path.clone(),
                }),
            },
            Kind::Put {
                target,
                size,
                mode,
                flow,
                ..
            } => match target.as_file_name() {
                Some(name) => Line::Ferry(Request::Put {
                    size: *size,
                    mode: *mode,
                    flow: *flow,
                    name,
                }),
                None => Line::Tree(TreeRequest::Put {
                    size: *size,
                    mode: *mode,
                    flow: *flow,
                    path: target.clone(),
                }),
            },
            Kind::Close => Line::Ferry(Request::Close),
        };
        let put = match &op.kind {
            Kind::Put { flow, size, .. } => Some((*flow, *size)),
            _ => None,
        };
        let id = op.id;
        let end = self.queue_out(|out| match &line {
            Line::Ferry(r) => r.encode(out),
            Line::Tree(r) => r.encode_into(out),
        });
        match put {
            Some((PutFlow::Now, size)) => self.start_upload(id, size),
            Some((PutFlow::Wait, _)) => {
                self.hold = true;
                self.ops[self.queued - 1].end = Some(end);
            }
            None => self.ops[self.queued - 1].end = Some(end),
        }
        Flow::Again
    }

    /// Appends octets to the output with `encode`; returns the output position after them.
    fn queue_out(&mut self, encode: impl FnOnce(&mut Vec<u8>)) -> u64 {
        let before = self.out.len();
        encode(&mut self.out);
        self.total_queued += (self.out.len() - before) as u64;
        self.total_queued
    }

    // ------------------------------------------------------------- receive ---

    fn receive_step(&mut self) -> Flow {
        let Some(op) = self.ops.front() else {
            return Flow::Nothing;
        };
        let request_sent = op.end.is_some_and(|end| self.total_sent >= end);
        if !request_sent {
            return match self.send_error.take() {
                Some(e) => self.last_words(e),
                other => {
                    self.send_error = other;
                    Flow::Nothing
                }
            };
        }
        match std::mem::replace(&mut self.rx, Rx::Reply) {
            Rx::Reply => self.reply_step(),
            Rx::Entries { left, listing } => self.entries_step(left, listing),
            Rx::TreeEntries {
                left,
                listing,
                recursive,
            } => self.tree_entries_step(left, listing, recursive),
            Rx::Payload(p) => self.payload_step(p),
        }
    }

    /// Decodes the next line with `decode`: `Ok(None)` when more input is needed.
    fn next_line<T>(&mut self, decode: Decoder<T>) -> Result<Option<T>, ReadFail> {
        let data = &self.input[self.in_start..self.in_end];
        match decode(data) {
            Ok((msg, n)) => {
                self.consume(n);
                Ok(Some(msg))
            }
            Err(DecodeError::Incomplete) => {
                if let Some(e) = self.recv_error.take() {
                    Err(ReadFail::Io(e))
                } else if self.eof {
                    Err(ReadFail::Eof)
                } else if self.in_start == 0 && self.in_end == self.input.len() {
                    Err(ReadFail::Io(io::Error::other("receive buffer full")))
                } else {
                    Ok(None)
                }
            }
            Err(DecodeError::Invalid(error)) => {
                let line = snippet(data, error.line_len);
                Err(ReadFail::Invalid { error, line })
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.in_start = (self.in_start + n).min(self.in_end);
        if self.in_start == self.in_end {
            self.in_start = 0;
            self.in_end = 0;
        }
    }

    // ------------------------------------------------------------- results ---

    /// The head operation is done.
    fn complete(&mut self, result: Result<Outcome, ClientError>) {
        if let Some(op) = self.ops.pop_front() {
            self.finish(op, result);
        }
    }

    /// `op`, taken from the head of the queue, is done; an error that ends the session ends
    /// it (ERR-9, ERR-10).
    fn finish(&mut self, op: Op, mut result: Result<Outcome, ClientError>) {
        self.explain_path_error(&op, &mut result);
        let why = match &result {
            Err(e) if e.ends_session() => Some(e.to_string()),
            _ => None,
        };
        self.rx = Rx::Reply;
        self.queued = self.queued.saturating_sub(1);
        // `enable tree` is the session's own: its refusal explains later failures.
        if !matches!(op.kind, Kind::Enable) {
            self.done.push_back((op.id, result));
        }
        if let Some(why) = why {
            self.end(why);
        }
    }

    /// Ends the session: the driver closes the connection; every operation not done fails.
    fn end(&mut self, why: String) {
        if self.ended.is_some() {
            return;
        }
        self.ended = Some(why);
        self.disconnect = true;
        self.fail_rest();
    }

    fn fail_rest(&mut self) {
        let why = self.ended.clone().unwrap_or_default();
        for op in self.ops.drain(..) {
            if !matches!(op.kind, Kind::Enable) {
                self.done
                    .push_back((op.id, Err(ClientError::Disconnected(why.clone()))));
            }
        }
        self.queued = 0;
        self.hold = false;
        self.upload = None;
        self.out.clear();
        self.out_sent = 0;
        self.chunk = None;
        self.put_progress = None;
        self.rx = Rx::Reply;
    }
}

fn violation(kind: ViolationKind, what: impl Into<String>) -> ClientError {
    ClientError::Protocol(Violation::new(kind, what))
}

fn unexpected(reply: &Reply, request: &str) -> ClientError {
    let line = snippet(&reply.to_bytes(), None);
    violation(
        ViolationKind::Unexpected,
        format!("unexpected reply to {request}: \"{line}\""),
    )
}

fn read_failed(f: ReadFail, what: &str, outcome_unknown: bool) -> ClientError {
    match f {
        ReadFail::Eof => ClientError::Closed { outcome_unknown },
        ReadFail::Io(e) => ClientError::Io(e),
        ReadFail::Invalid { error, line } => violation(
            ViolationKind::Malformed,
            format!("malformed {what} \"{line}\": {error}"),
        ),
    }
}

/// The start of an offending line, escaped for an error message.
pub fn snippet(data: &[u8], line_len: Option<usize>) -> String {
    const SHOW: usize = 80;
    let len = line_len.unwrap_or(data.len()).min(data.len());
    let line = &data[..len];
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let shown = &line[..line.len().min(SHOW)];
    let mut s: String = String::from_utf8_lossy(shown).escape_debug().collect();
    if line.len() > SHOW {
        s.push('…');
    }
    s
}
