//! The server side of one ferry/1 session (spec/protocol.md sections 3 to 9) as a state
//! machine that does no I/O and reads no clock.
//!
//! A driver owns the socket, the served folder (`ferry-store`) and a clock. It asks the
//! session what to do next with [`ServerSession::poll`], performs that [`Action`], and reports
//! the result with the matching method; then it polls again:
//!
//! | action | the driver … | then calls |
//! |---|---|---|
//! | [`Action::Send`] | writes [`ServerSession::output`] (some of it is enough), waiting until `deadline` at most | [`ServerSession::sent`], or [`ServerSession::timed_out`] |
//! | [`Action::SendFile`] | (only after [`ServerSession::send_files`]) writes `len` octets of the open file at `at` (some of them is enough; `sendfile`), waiting until `deadline` at most | [`ServerSession::sent`], [`ServerSession::file_send_failed`] or [`ServerSession::timed_out`] |
//! | [`Action::Receive`] | reads into [`ServerSession::input_space`], waiting until `deadline` at most | [`ServerSession::received`], [`ServerSession::eof`] or [`ServerSession::timed_out`] |
//! | [`Action::List`] | lists the folder | [`ServerSession::listed`] |
//! | [`Action::OpenRead`] | opens the file for a get (and looks its digest up, if it keeps a digest cache) | [`ServerSession::opened`] |
//! | [`Action::ReadFile`] | reads `len` octets of the open file at `at` into [`ServerSession::file_space`] | [`ServerSession::file_read`] |
//! | [`Action::CheckUnchanged`] | compares the open file's size and mtime with those of the open (GET-9) | [`ServerSession::checked`] |
//! | [`Action::RememberDigest`] | may remember the digest of the whole open file, found unchanged, in its digest cache | — |
//! | [`Action::CloseFile`] | closes the open file | — |
//! | [`Action::BeginUpload`] | starts an upload (staging file) | [`ServerSession::upload_begun`] |
//! | [`Action::WriteUpload`] | writes [`ServerSession::upload_data`] to the staging file | [`ServerSession::upload_written`] |
//! | [`Action::CommitUpload`] | fsyncs and renames the staging file into place | [`ServerSession::upload_committed`] |
//! | [`Action::DiscardUpload`] | drops the upload (removes the staging file) | — |
//! | [`Action::StoreUploads`] | stores eager puts received whole, in order ([`ServerSession::uploads`]): begins each, then writes and commits it or drops it | [`ServerSession::uploads_stored`] |
//! | [`Action::Tree`] | performs a storage operation of the `tree` extension ([`crate::tree::TreeOp`]: list, mkdir, rmdir, delete, rename) | [`ServerSession::tree_done`] |
//! | [`Action::Drain`] | shuts down its sending side and reads and discards input until `until` or EOF | [`ServerSession::drained`] |
//! | [`Action::Finished`] | closes the connection; the session is over | — |
//!
//! A shutdown of the server is an input too: [`ServerSession::shutdown`] with the instant at
//! which requests in flight must stop (CLOSE-8, CLOSE-9). A driver that waits (for input, for
//! its peer to accept output) must wake when the shutdown is triggered and report it.
//!
//! Authentication (the `auth` extension, spec section 16): with [`SessionConfig::auth`] set,
//! the session reads `auth` and `auth-final` requests, asks the [`Authenticator`] to check the
//! proofs, answers `err 530` before authentication and `err 550` for a request the user has
//! no right for, before any storage action. A driver over TLS gives the session the
//! connection's channel binding ([`ServerSession::set_channel_binding`]) before its first
//! poll. Which folder a session is served is the driver's: [`ServerSession::grant`] says who
//! the session serves (`ferry_store::ServerConfig::auth` maps users to folders).
//!
//! Folders (the `tree` extension, spec section 17): with [`SessionConfig::tree`] set (and
//! `tree` listed in the greeting), the session reads `enable`, `list`, `mkdir`, `rmdir`,
//! `delete` and `rename` (`ferry_wire::tree`), and after `ok enable tree` paths in `get` and
//! `put` (TREE-1, TREE-5); without it, those requests get `err 503 unsupported` (EXT-4). The
//! checks that need no storage are the session's (rights, a rename into itself, read-only);
//! the rest is one [`Action::Tree`].
//!
//! Audit: a driver that gives the session a sink ([`ServerSession::set_audit`]) gets one
//! [`crate::audit::Record`] for every `auth` attempt, `dir`, `get` and `put` and for the
//! session's end, none left out (the session's `tracing` events are rate limited; these are
//! not).
//!
//! Known digests: a driver that keeps the digests of files it has served (keyed to the file's
//! identity, as `ferry-store` does) hands a known one to [`ServerSession::opened`]
//! ([`FileMeta::digest`]); the get then hashes nothing and reads only from its offset (a
//! resumed get of a large file no longer reads and hashes its prefix). A get that hashed
//! the whole file and found it unchanged asks for [`Action::RememberDigest`].
//!
//! Buffers: the session owns its input buffer (64 KiB; [`SessionConfig::upload_input`] while
//! it receives an upload), its reply buffer and the file buffer of gets, which keeps room in
//! front of each chunk for the chunk's `data LEN` line, so that head and data leave in one
//! write without a copy.
//!
//! Optional paths for drivers that overlap storage with the network (the async server); the
//! blocking driver uses none of them:
//!
//! - **Idle sessions lend their buffers**: [`ServerSession::take_buffers`] while
//!   [`ServerSession::is_idle`], [`ServerSession::give_buffers`] before the next read.
//! - **Uploads read straight into the driver's buffer**: while
//!   [`ServerSession::upload_direct`] is non-zero, the driver may read that much chunk data
//!   into its own buffer, store it itself and report it with
//!   [`ServerSession::received_upload`]; a failure to store (also of a write it answered at
//!   once and performs behind) with [`ServerSession::upload_failed`].
//! - **Payload straight from the file**: after [`ServerSession::send_files`], a get whose
//!   digest is known sends each chunk's data with [`Action::SendFile`] (after its `data LEN`
//!   line in [`ServerSession::output`]) instead of reading it into the session's buffer: the
//!   driver may use `sendfile(2)`, with no copy through user space. A file that ends early or
//!   fails to read once a chunk has begun ([`ServerSession::file_send_failed`]): the chunk is
//!   completed with zero octets (DATA-11) and the payload ends with `abort 430` (GET-9) or
//!   `abort 431` (GET-10); the digest check (GET-7) rejects those octets either way.
//! - **Reads ahead**: for [`Action::ReadFile`], a driver that has already read the piece into
//!   a buffer of its own swaps it in ([`ServerSession::swap_file_buffer`]) instead of reading
//!   into [`ServerSession::file_space`]; it gets the previous buffer back for the next piece.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_wire::auth::{self as auth_wire, AuthLine, AuthRequest};
use ferry_wire::limits::MAX_CHUNK;

use crate::auth::{self, Authenticator, Mechanism, Right, ScramServer};
use crate::tree::TreeOp;

mod audit;
mod tree;
use ferry_wire::tree::{self as tree_wire, ListEntry, TreeRequest};
use ferry_wire::{
    ChunkLen, Code, DecodeError, Digest, Entry, ErrorReply, Frame, HEAD_ROOM, Hasher, Invalid,
    InvalidKind, PayloadReceiver, PutFlow, PutMode, Reply, Request, Step, Timestamp, TreePath,
    Version, decode_request, write_chunk_head,
};

/// The largest input buffer between uploads: request lines (at most 4096 octets) and a run
/// of pipelined ones. It starts at [`INPUT_MIN`] and doubles while reads fill it.
pub const INPUT_SMALL: usize = 64 * 1024;

/// The input buffer a session starts with (and takes again after lending its buffers):
/// room for a whole request line and the start of the next.
pub const INPUT_MIN: usize = 8 * 1024;

/// A good [`SessionConfig::upload_input`] for a driver that reads uploads into the input
/// buffer: large reads of payload data.
pub const UPLOAD_INPUT: usize = 1 << 20;

/// The most eager puts stored in one step ([`Action::StoreUploads`]) …
const STORE_BATCH: usize = 64;

/// … and the most payload octets they hold together (one put alone may hold up to
/// `max-eager`).
const STORE_BATCH_BYTES: u64 = 1 << 20;

/// When less than this is free at the end of the input buffer, the unread rest moves to the
/// front before the next read.
const COMPACT_BELOW: usize = 64 * 1024;

/// Replies are gathered up to this many octets before they are sent (pipelined replies
/// leave together); a chunk larger than what is left is sent on its own, without a copy.
const OUTPUT_CAPACITY: usize = 64 * 1024;

/// The largest reply buffer a session keeps once it has sent it all.
const KEEP_OUTPUT: usize = 2 * OUTPUT_CAPACITY;

/// The largest file buffer a session keeps between gets: a session that once sent a 1 MiB
/// chunk does not hold 1 MiB while it waits for its next request.
const KEEP_FILE_BUF: usize = 64 * 1024;

/// How long a closing server keeps reading (and discarding) after its last reply (CLOSE-6).
pub const DRAIN_TIME: Duration = Duration::from_secs(1);

/// How long the last words of a closing session (a closing error, `bye` after a timeout) may
/// wait for the peer to accept them: the peer may be the reason the session ends (TIME-5).
pub const LAST_WORDS_PATIENCE: Duration = Duration::from_millis(250);

/// The limits and timeouts of one session, as the greeting announces them.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The greeting line, sent first.
    pub greeting: Vec<u8>,
    /// Refuse every put with `514 read-only`.
    pub read_only: bool,
    /// `max-size`.
    pub max_size: u64,
    /// `max-eager` (0: no eager puts).
    pub max_eager: u64,
    /// Idle timeout between requests (TIME-1), as applied.
    pub idle: Duration,
    /// Stall timeout inside a request, payload or reply (TIME-2), as applied.
    pub stall: Duration,
    /// `min-rate` (TIME-9): the least average rate of a payload in octets per second, beyond
    /// a grace of `stall`, counting only the time spent waiting for the peer; 0: none.
    pub min_rate: u64,
    /// Past the shutdown deadline, how long a get's chunk that has begun may wait for the
    /// client to take the rest of it, so that the payload still ends at a chunk boundary
    /// (CLOSE-10).
    pub chunk_patience: Duration,
    /// Capacity of the input buffer while an upload is received. A driver that reads the
    /// payload into [`ServerSession::input_space`] wants large reads ([`UPLOAD_INPUT`]); one
    /// that reads chunk data straight into its own buffers ([`ServerSession::upload_direct`])
    /// needs no more than requests do ([`INPUT_SMALL`]).
    pub upload_input: usize,
    /// The memory every session of the server shares for its large buffers (see
    /// [`MemoryBudget`]); a clone of this config shares the same budget.
    pub memory: Arc<MemoryBudget>,
    /// The memory every session of the server shares for the listings it holds while they
    /// are sent: a `dir` whose listing does not fit is answered `err 431 storage` (DIR-11).
    pub listing_memory: Arc<MemoryBudget>,
    /// The server's users, when it offers the `auth` extension (section 16; the greeting
    /// then lists it, AUTH-1); `None`: no authentication, every session may do everything
    /// the server allows.
    pub auth: Option<Arc<dyn Authenticator>>,
    /// The session offers the `tree` extension (section 17): it reads the extension's
    /// requests, and `get`/`put` with paths after `ok enable tree`. The greeting must list
    /// `tree` then (`ferry_wire::tree::offer`); off: those requests get `err 503
    /// unsupported` (EXT-4).
    pub tree: bool,
}

/// The memory the sessions of one server share for their large buffers: an eager put's
/// payload held until it has arrived, a get's file buffer beyond 64 KiB (twice,
/// for a driver that reads the next piece while one is sent), an upload's input buffer
/// beyond [`INPUT_SMALL`]. A session that finds the budget spent does without: it streams the
/// eager put to its staging file as it arrives, sends 64 KiB chunks, reads 64 KiB at a time.
/// So 256 hostile sessions cost at most this much in large buffers, whatever they do, and
/// the common case (a few sessions moving large files) keeps its large buffers.
#[derive(Debug)]
pub struct MemoryBudget {
    left: AtomicUsize,
    /// For the listing budget: what the last listing took, taken before the next one is
    /// collected (DIR-11).
    hint: AtomicUsize,
}

/// The default [`MemoryBudget`]: 256 MiB, a mebibyte for each of 256 sessions.
pub const DEFAULT_MEMORY_BUDGET: usize = 256 << 20;

/// The default listing budget ([`SessionConfig::listing_memory`]): 128 MiB, about two
/// million entries with names of 40 octets, held at once by all sessions.
pub const DEFAULT_LISTING_BUDGET: usize = 128 << 20;

impl MemoryBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            left: AtomicUsize::new(bytes),
            hint: AtomicUsize::new(0),
        })
    }

    /// What is not taken.
    pub fn available(&self) -> usize {
        self.left.load(Ordering::Relaxed)
    }

    /// For the listing budget: what the last listing took, taken before the next one is
    /// collected (DIR-11); `None` when that much is not left.
    fn take_hint(self: &Arc<Self>) -> Option<Grant> {
        self.take(self.hint.load(Ordering::Relaxed))
    }

    /// A grant of nothing, to add to.
    fn nothing(self: &Arc<Self>) -> Grant {
        Grant {
            budget: Arc::clone(self),
            n: 0,
        }
    }

    /// Takes `n` octets of the budget until the grant is dropped, if that many are left.
    fn take(self: &Arc<Self>, n: usize) -> Option<Grant> {
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(n)
            })
            .ok()
            .map(|_| Grant {
                budget: Arc::clone(self),
                n,
            })
    }
}

/// A part of the [`MemoryBudget`], given back when dropped.
#[derive(Debug)]
struct Grant {
    budget: Arc<MemoryBudget>,
    n: usize,
}

impl Grant {
    /// Adds `other` to this grant.
    fn absorb(&mut self, mut other: Grant) {
        self.n += std::mem::take(&mut other.n);
    }

    /// Gives `n` octets of this grant back now.
    fn give_back(&mut self, n: usize) {
        let n = n.min(self.n);
        self.n -= n;
        self.budget.left.fetch_add(n, Ordering::AcqRel);
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        self.budget.left.fetch_add(self.n, Ordering::AcqRel);
    }
}

/// The buffers of an idle session, lent to the driver ([`ServerSession::take_buffers`]) so
/// that a server with many idle sessions can share a few among them.
#[derive(Debug, Default)]
pub struct Buffers {
    input: Vec<u8>,
    output: Vec<u8>,
    file: Vec<u8>,
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write [`ServerSession::output`]; report with [`ServerSession::sent`]. Give up at
    /// `deadline` if the peer accepted nothing by then ([`ServerSession::timed_out`]).
    Send {
        /// When to report a timeout if nothing could be written.
        deadline: Instant,
    },
    /// Write `len` octets of the open file, starting at `at`, to the peer (with `sendfile`,
    /// or by reading and writing them); some of them is enough. Report with
    /// [`ServerSession::sent`]; a file that ends before or fails to read with
    /// [`ServerSession::file_send_failed`]; give up at `deadline` if the peer accepted nothing
    /// by then ([`ServerSession::timed_out`]). Only after [`ServerSession::send_files`].
    SendFile {
        /// Where in the file.
        at: u64,
        /// How many octets are left of the chunk.
        len: usize,
        /// When to report a timeout if nothing could be written.
        deadline: Instant,
    },
    /// Read into [`ServerSession::input_space`]; report with [`ServerSession::received`] or
    /// [`ServerSession::eof`]; at `deadline` without input, [`ServerSession::timed_out`].
    Receive {
        /// When to report a timeout.
        deadline: Instant,
    },
    /// List the served folder: [`ServerSession::listed`].
    List,
    /// Open a file for reading: [`ServerSession::opened`].
    OpenRead {
        /// The file.
        name: TreePath,
        /// The get's offset (where its first chunk starts; a driver that reads ahead may
        /// start there when it knows the file's digest, else at 0).
        offset: u64,
    },
    /// Read `len` octets of the open file at `at` into [`ServerSession::file_space`]:
    /// [`ServerSession::file_read`].
    ReadFile {
        /// Where in the file (the reads of one get follow each other: each starts where the
        /// previous one ended; the first at 0, or at the get's offset when the digest is
        /// known).
        at: u64,
        /// How many octets.
        len: usize,
    },
    /// Check whether the open file is unchanged since it was opened:
    /// [`ServerSession::checked`].
    CheckUnchanged,
    /// The get hashed the whole open file, which the check found unchanged: its digest. A
    /// driver that keeps a digest cache may remember it for the open file's identity (as it
    /// was at the open, if still the same); others ignore this. The file is still open.
    RememberDigest(Digest),
    /// Close the open file.
    CloseFile,
    /// Start an upload: [`ServerSession::upload_begun`].
    BeginUpload {
        /// The name to store.
        name: TreePath,
        /// Its announced size.
        size: u64,
        /// `new` or `replace`.
        mode: PutMode,
    },
    /// Write [`ServerSession::upload_data`] to the upload: [`ServerSession::upload_written`].
    WriteUpload,
    /// Commit the upload: [`ServerSession::upload_committed`].
    CommitUpload,
    /// Drop the upload (its staging file is removed).
    DiscardUpload,
    /// Store the eager puts (flow `now`) of [`ServerSession::uploads`] (or
    /// [`ServerSession::take_uploads`]), whose payloads have arrived and were held by the
    /// session, one after the other in their order; report each one's result with
    /// [`ServerSession::uploads_stored`]. See [`EagerUpload`].
    ///
    /// One storage step for a run of small puts: the checks wait for the payload, which
    /// changes no reply (PUT-9 answers a refused eager put after its payload anyway); the
    /// puts of one step are those already in the input, so no reply waits for the network.
    StoreUploads,
    /// Perform a storage operation of the `tree` extension: [`ServerSession::tree_done`].
    /// For [`TreeOp::List`], its `budget` is what the listing may hold (DIR-11).
    Tree(TreeOp),
    /// Shut down the sending direction, read and discard input until `until` or EOF:
    /// [`ServerSession::drained`] (CLOSE-6).
    Drain {
        /// When to stop reading.
        until: Instant,
    },
    /// The session is over: close the connection.
    Finished(End),
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The client closed its side (no `bye`, CLOSE-4).
    Eof,
    /// The session answered `close` with `bye` and closed.
    Bye,
    /// The session sent a closing error and closed.
    Closed(Code),
    /// A write made no progress for the stall timeout, or the shutdown deadline passed while
    /// the session could not send anything: closed without a last word.
    Dropped(&'static str),
}

impl End {
    /// Logs how a session ended (or that its connection failed): at debug level when the
    /// session ended as the protocol foresees, at info level when it was dropped.
    pub fn log(result: &std::io::Result<End>) {
        match result {
            Ok(End::Eof) => tracing::debug!("session ended by the client"),
            Ok(End::Bye) => tracing::debug!("session closed"),
            Ok(End::Closed(code)) => tracing::debug!(code = %code, "session closed with an error"),
            Ok(End::Dropped(why)) => tracing::info!(why, "session dropped"),
            Err(e) => tracing::info!(error = %e, "connection failed"),
        }
    }
}

/// A file opened for a get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    /// Its size.
    pub size: u64,
    /// Its modification time.
    pub mtime: Timestamp,
    /// Its digest, when the driver knows it for exactly this file (same identity: device,
    /// inode, size, modification and status-change times): the get then hashes nothing and
    /// reads only from its offset. `None`: the get hashes the whole file.
    pub digest: Option<Digest>,
}

/// An eager put whose payload has arrived, to store ([`Action::StoreUploads`]): begin it as
/// [`Action::BeginUpload`] does (PUT-2's checks of the storage, the staging file); when that
/// succeeds and `commit` is set, write `data` and commit as [`Action::CommitUpload`] does;
/// when `commit` is not set, drop the upload. Its result is the first failure, or success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EagerUpload {
    /// The name to store.
    pub name: TreePath,
    /// Its size.
    pub size: u64,
    /// `new` or `replace`.
    pub mode: PutMode,
    /// The payload is complete and verified: write and commit it. Otherwise (corrupt or
    /// aborted) only begin the upload and drop it: its reply needs the checks first.
    pub commit: bool,
    /// The payload (empty when not `commit`).
    pub data: Vec<u8>,
}

#[derive(Debug)]
enum State {
    /// Between requests (`line_deadline` unset), or inside a request line.
    Request {
        line_deadline: Option<Instant>,
        /// Output was flushed mid-line: the line's clock restarts from the flush (TIME-2).
        extend: bool,
    },
    /// `dir`: waiting for the listing, with the listing budget it was granted beforehand.
    Listing(Option<Grant>),
    /// `dir` or `list`: sending the listing's entries, a part at a time as the output
    /// drains, so that the reply buffer stays small whatever the folder holds.
    SendingListing {
        entries: Listing,
        /// The listing budget the entries hold until they are sent (DIR-11).
        _held: Grant,
    },
    /// A request of the `tree` extension waiting for its [`Action::Tree`].
    Tree(Box<tree::Waiting>),
    /// `get`: waiting for the file to open.
    Opening { offset: u64, name: TreePath },
    /// `get`: reading the file (hashing the prefix before `offset`, then sending chunks).
    Reading(Box<Get>),
    /// `get`: waiting for the unchanged check after the last chunk.
    Checking(Box<Get>),
    /// `put` with flow `wait`: waiting for the upload to begin (eager puts are held
    /// instead, then stored whole: [`State::Storing`]).
    Beginning {
        size: u64,
        mode: PutMode,
        name: TreePath,
        /// `now`: an eager put the memory budget could not hold, streamed to its staging file
        /// as it arrives (no `go`; a refusal comes after the payload, PUT-9).
        flow: PutFlow,
    },
    /// `put`: receiving the payload.
    Receiving(Box<Put>),
    /// `put`: waiting for the commit.
    Committing {
        size: u64,
        digest: Digest,
        name: TreePath,
    },
    /// Eager puts received whole, waiting for [`Action::StoreUploads`].
    Storing(Box<Batch>),
    /// The last words are queued; once they are sent, drain.
    Closing(End),
    /// Waiting for the drain to finish.
    Draining { end: End, until: Instant },
    /// Sending what was answered before the client's EOF (CLOSE-5), then finished.
    Flushing(End),
    /// Over.
    Finished(End),
}

/// The entries of a listing still to send.
#[derive(Debug)]
enum Listing {
    /// A `dir`'s.
    Dir(std::vec::IntoIter<Entry>),
    /// A `list`'s.
    Tree(std::vec::IntoIter<ListEntry>),
}

impl Listing {
    /// Encodes the next entry into `out`; `false` when none is left.
    fn encode_next(&mut self, out: &mut Vec<u8>) -> bool {
        match self {
            Listing::Dir(entries) => entries.next().map(|e| e.encode(out)).is_some(),
            Listing::Tree(entries) => entries.next().map(|e| e.encode_into(out)).is_some(),
        }
    }

    /// How many entries are left.
    fn len(&self) -> usize {
        match self {
            Listing::Dir(entries) => entries.len(),
            Listing::Tree(entries) => entries.len(),
        }
    }
}

#[derive(Debug)]
struct Get {
    name: TreePath,
    total: u64,
    offset: u64,
    /// Where the next read starts (prefix and chunks; from the offset when `known`).
    pos: u64,
    hasher: Hasher,
    /// The digest was known at the open: nothing is hashed, the prefix is not read.
    known: Option<Digest>,
    block: usize,
    /// A `ReadFile` is outstanding for this many octets.
    reading: Option<usize>,
}

#[derive(Debug)]
struct Put {
    name: Option<TreePath>,
    rx: PayloadReceiver,
    size: u64,
    /// The upload is open (false once refused, or after a storage error).
    uploading: bool,
    /// The error to answer once the payload has been read past (a refused eager put, PUT-9,
    /// or a storage failure midway, PUT-17).
    pending: Option<Code>,
    /// Data of the input buffer handed to the driver for writing, and the input octets to
    /// consume once it is written.
    writing: Option<(Range<usize>, usize)>,
    /// An eager put held until its payload has arrived (nothing begun: `uploading` is false):
    /// its mode and the payload so far.
    held: Option<(PutMode, Vec<u8>, Grant)>,
}

/// Where a put's payload goes.
enum Into {
    /// To the upload begun (written as it arrives).
    Upload,
    /// Held by the session until it has arrived (an eager put: [`Action::StoreUploads`]),
    /// in memory granted by the budget.
    Hold(PutMode, Grant),
    /// Nowhere: read past, then the put is refused with this code (PUT-9).
    Refuse(Code),
}

/// Eager puts received whole ([`State::Storing`]), and what to answer for each once it was
/// begun: `Ok` with the digest of a verified payload, or 433/434.
#[derive(Debug)]
struct Batch {
    uploads: Vec<EagerUpload>,
    answers: Vec<(TreePath, u64, Result<Digest, Code>)>,
    /// The memory budget the payloads hold until they are stored.
    grants: Vec<Grant>,
}

impl Batch {
    fn add(
        &mut self,
        name: TreePath,
        size: u64,
        mode: PutMode,
        data: Vec<u8>,
        trailer: Result<Digest, Code>,
    ) {
        let commit = trailer.is_ok();
        self.uploads.push(EagerUpload {
            name: name.clone(),
            size,
            mode,
            commit,
            data: if commit { data } else { Vec::new() },
        });
        self.answers.push((name, size, trailer));
    }
}

/// The payload of `size` octets at the start of `input`, when all of it and its trailer are
/// there and its framing is sound: its data, `Ok(digest)` or 433/434 as its trailer says, and
/// the octets it took.
fn whole_payload(size: u64, input: &[u8]) -> Option<(Vec<u8>, Result<Digest, Code>, usize)> {
    let mut rx = PayloadReceiver::new(size);
    let mut data = Vec::with_capacity(size as usize);
    let mut pos = 0;
    loop {
        let (step, used) = rx.feed(&input[pos..]).ok()?;
        let rest = input.len() - pos;
        pos += used;
        let trailer = match step {
            Step::NeedMore if used == 0 || used == rest => return None,
            Step::NeedMore => continue,
            Step::Data(d) => {
                data.extend_from_slice(d);
                continue;
            }
            Step::Complete(digest) => Ok(digest),
            Step::Corrupt { .. } => Err(Code::CORRUPT),
            Step::Aborted(_) => Err(Code::ABORTED),
        };
        return Some((data, trailer, pos));
    }
}

/// One server session. See the module documentation for the driving loop.
#[derive(Debug)]
pub struct ServerSession {
    cfg: SessionConfig,
    state: State,
    now: Instant,
    input: Vec<u8>,
    in_start: usize,
    in_end: usize,
    /// The last read filled the input buffer: it doubles (up to [`INPUT_SMALL`]).
    input_full: bool,
    out: Vec<u8>,
    out_sent: usize,
    /// The file buffer of gets, [`HEAD_ROOM`] in front of the data.
    file_buf: Vec<u8>,
    /// A chunk waiting to be sent straight from `file_buf`, after `out`.
    chunk: Option<Range<usize>>,
    /// The driver sends chunk data straight from the file when the digest is known
    /// ([`ServerSession::send_files`]).
    send_files: bool,
    /// Chunk data waiting to be sent straight from the file, after `out`: where, how many.
    file_out: Option<(u64, u64)>,
    /// No request line has been read yet (`version` is allowed, VER-2).
    first: bool,
    /// The shutdown deadline for requests in flight, once a shutdown was triggered.
    hard: Option<Instant>,
    /// Get payload octets are in the output: they leave whole even past the shutdown
    /// deadline, within [`SessionConfig::chunk_patience`] (CLOSE-9, CLOSE-10).
    in_payload: bool,
    /// Last words: writes wait at most [`LAST_WORDS_PATIENCE`].
    last_words: bool,
    /// When the current wait to send began (progress restarts it).
    send_since: Option<Instant>,
    /// When the current wait for input began (input restarts it).
    recv_since: Option<Instant>,
    /// The driver must drop the upload before anything else.
    discard: bool,
    /// The driver may remember this digest of the open file before it closes it.
    remember: Option<Digest>,
    /// The driver must close the open file before anything else.
    close_file: bool,
    /// When the current request began, for the log.
    started: Instant,
    /// The last wait the session asked for (send, receive, drain), for [`ServerSession::timed_out`].
    waiting: Option<Action>,
    /// How many more request events the session may log now.
    log_budget: LogBudget,
    /// The pace of the payload in flight (TIME-9), while there is one and `min-rate` is set.
    pace: Option<Pace>,
    /// The memory budget a get's large file buffer holds.
    file_grant: Option<Grant>,
    /// The memory budget an upload's large input buffer holds.
    input_grant: Option<Grant>,
    /// The `auth` extension: who the session serves, and an exchange in progress.
    auth: AuthState,
    /// The audit of the session's operations ([`ServerSession::set_audit`]).
    audit: audit::Trail,
    /// `ok enable tree` was sent: `get` and `put` take paths (TREE-1, TREE-5).
    tree_enabled: bool,
    /// Where the `rename` being answered moves its path, for its log event.
    log_to: Option<TreePath>,
}

/// A session's side of the `auth` extension (section 16).
#[derive(Debug, Default)]
struct AuthState {
    /// The TLS channel-binding value (TLS-15), once the driver gave it.
    cb: Option<[u8; 32]>,
    /// The client's address, once the driver gave it (throttling of failures, the audit
    /// log).
    peer: Option<std::net::SocketAddr>,
    /// Who the session serves after a successful `auth`.
    grant: Option<auth::Grant>,
    /// Its place among its user's sessions (AUTH-21), given back when the session is dropped.
    slot: Option<auth::SessionSlot>,
    /// A SCRAM exchange waiting for `auth-final` (after `more`).
    scram: Option<Box<dyn ScramServer>>,
    /// A failed authentication's `err 535`, held back until then (AUTH-20).
    held: Option<Instant>,
}

/// How much input a session keeps unread while it holds back a failed authentication's
/// reply (AUTH-20): a client may send nothing then (AUTH-5), so beyond two request lines
/// the session stops waiting and refuses with `err 425 auth-throttled`, which closes it.
pub const HELD_INPUT: usize = 2 * ferry_wire::limits::MAX_LINE;

/// How fast the payload in flight moves (TIME-9): the octets that moved and the time spent
/// waiting for the peer since it began. The time the driver spends on the session's own work
/// (reading or storing the file) does not count: only the intervals from a [`Action::Send`],
/// [`Action::SendFile`] or [`Action::Receive`] to the next call of [`ServerSession::poll`] or
/// [`ServerSession::timed_out`].
#[derive(Debug)]
struct Pace {
    moved: u64,
    waited: Duration,
    /// A wait for the peer began at this instant and has not been accounted yet.
    wait_from: Option<Instant>,
}

impl Pace {
    /// How much longer the session may wait for the peer: `stall` of grace, plus one second
    /// for every `rate` octets moved, minus what it has waited.
    fn allowance(&self, stall: Duration, rate: u64) -> Duration {
        let earned = ferry_wire::limits::rate_time(self.moved, rate);
        (stall + earned.min(PACE_MAX_EARNED)).saturating_sub(self.waited)
    }

    /// Accounts the wait that began at `wait_from`, up to `now`.
    fn stop_waiting(&mut self, now: Instant) {
        if let Some(from) = self.wait_from.take() {
            self.waited += now.saturating_duration_since(from);
        }
    }
}

/// The most time a payload earns by moving octets (TIME-9): keeps deadline arithmetic far from
/// overflow whatever was moved.
const PACE_MAX_EARNED: Duration = Duration::from_secs(365 * 24 * 3600);

/// A session's request events beyond a burst of [`LOG_BURST`] are logged at
/// [`LOG_PER_SECOND`] at most: a client that pipelines requests as fast as it can (gets of
/// missing names make ~90 MB/s of log otherwise) cannot fill the operator's disk or drown the
/// other sessions' events. The events left out are counted; their number is logged with the
/// next event logged, or when the session ends.
#[derive(Debug)]
struct LogBudget {
    tokens: u32,
    refilled: Instant,
    left_out: u64,
}

/// How many request events a session logs at once before its log is rate limited (a client
/// that pipelines requests cannot fill the operator's disk with log).
pub const LOG_BURST: u32 = 1000;

/// How many request events a second a session logs once its [`LOG_BURST`] is spent; those
/// left out are counted, and their number logged.
pub const LOG_PER_SECOND: u32 = 100;

impl LogBudget {
    /// A full budget at `now`.
    fn new(now: Instant) -> Self {
        Self {
            tokens: LOG_BURST,
            refilled: now,
            left_out: 0,
        }
    }

    /// Whether an event may be logged at `now` (and counts it); when it may, first logs how
    /// many were left out before it.
    fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled);
        let earned = elapsed.as_micros() * u128::from(LOG_PER_SECOND) / 1_000_000;
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            self.tokens = self.tokens.saturating_add(earned).min(LOG_BURST);
            self.refilled = if self.tokens == LOG_BURST {
                now
            } else {
                // Keep the fraction of a token earned beyond `earned`.
                self.refilled
                    + Duration::from_micros(
                        u64::from(earned) * 1_000_000 / u64::from(LOG_PER_SECOND),
                    )
            };
        }
        if self.tokens == 0 {
            self.left_out += 1;
            return false;
        }
        self.tokens -= 1;
        self.flush();
        true
    }

    /// Logs how many events were left out, if any.
    fn flush(&mut self) {
        if self.left_out > 0 {
            tracing::info!(
                left_out = self.left_out,
                "request events not logged (too many)"
            );
            self.left_out = 0;
        }
    }
}

fn err_reply(code: Code) -> ErrorReply {
    let name = code
        .name()
        .or_else(|| auth_wire::code_name(code))
        .or_else(|| tree_wire::code_name(code));
    ErrorReply::new(code, name.unwrap_or("error"))
}

/// A request line of ferry/1, or of the `auth` or `tree` extension.
enum Line {
    Request(Request),
    Auth(AuthLine),
    Tree(TreeRequest),
    /// A request of the `tree` extension in a session that did not offer it (EXT-4).
    NotOffered,
}

/// Whether a request line (perhaps incomplete) is the `auth` extension's.
fn is_auth_line(input: &[u8]) -> bool {
    input.starts_with(b"auth ") || input.starts_with(b"auth-final ")
}

impl ServerSession {
    /// A session on a connection accepted at `now`; its first action sends the greeting.
    pub fn new(cfg: SessionConfig, now: Instant) -> Self {
        let mut out = Vec::with_capacity(4096);
        out.extend_from_slice(&cfg.greeting);
        Self {
            cfg,
            state: State::Request {
                line_deadline: None,
                extend: false,
            },
            now,
            // Allocated at the first read: an idle session may never need it.
            input: Vec::new(),
            input_full: false,
            in_start: 0,
            in_end: 0,
            out,
            out_sent: 0,
            file_buf: Vec::new(),
            chunk: None,
            send_files: false,
            file_out: None,
            first: true,
            hard: None,
            in_payload: false,
            last_words: false,
            send_since: None,
            recv_since: None,
            discard: false,
            remember: None,
            close_file: false,
            started: now,
            waiting: None,
            log_budget: LogBudget::new(now),
            pace: None,
            file_grant: None,
            input_grant: None,
            auth: AuthState::default(),
            audit: audit::Trail::new(now),
            tree_enabled: false,
            log_to: None,
        }
    }

    /// Under TLS: the connection's channel-binding value (TLS-15), which the `auth`
    /// extension's proofs are bound to (AUTH-9, AUTH-11). Call it before the first
    /// [`ServerSession::poll`]; a session without it is a plain one.
    pub fn set_channel_binding(&mut self, cb: [u8; 32]) {
        self.auth.cb = Some(cb);
    }

    /// The client's address, for what the server keeps per address (the throttling of
    /// failed authentications, AUTH-20) and its records. Call it before the first
    /// [`ServerSession::poll`].
    pub fn set_peer(&mut self, peer: std::net::SocketAddr) {
        self.auth.peer = Some(peer);
    }

    /// The client's address, when the driver gave it ([`ServerSession::set_peer`]).
    pub fn peer(&self) -> Option<std::net::SocketAddr> {
        self.auth.peer
    }

    /// Who the session serves, once it authenticated (section 16).
    pub fn grant(&self) -> Option<&auth::Grant> {
        self.auth.grant.as_ref()
    }

    // -------------------------------------------------------------- getters ---

    /// The octets to send now (for [`Action::Send`]).
    pub fn output(&self) -> &[u8] {
        if self.out_sent < self.out.len() {
            &self.out[self.out_sent..]
        } else if let Some(r) = &self.chunk {
            &self.file_buf[r.clone()]
        } else {
            &[]
        }
    }

    /// The upload data to write (for [`Action::WriteUpload`]).
    pub fn upload_data(&self) -> &[u8] {
        match &self.state {
            State::Receiving(put) => match &put.writing {
                Some((r, _)) => &self.input[r.clone()],
                None => &[],
            },
            _ => &[],
        }
    }

    /// The eager puts to store (for [`Action::StoreUploads`]).
    pub fn uploads(&self) -> &[EagerUpload] {
        match &self.state {
            State::Storing(batch) => &batch.uploads,
            _ => &[],
        }
    }

    /// For [`Action::StoreUploads`], instead of [`ServerSession::uploads`]: takes them, for a
    /// driver that stores them elsewhere (on another thread) without a copy.
    pub fn take_uploads(&mut self) -> Vec<EagerUpload> {
        match &mut self.state {
            State::Storing(batch) => std::mem::take(&mut batch.uploads),
            _ => Vec::new(),
        }
    }

    /// Where to read the file's next octets (for [`Action::ReadFile`]): exactly `len` octets.
    pub fn file_space(&mut self) -> &mut [u8] {
        let len = match &self.state {
            State::Reading(get) => get.reading.unwrap_or(0),
            _ => 0,
        };
        if self.file_buf.len() < HEAD_ROOM + len {
            self.file_buf.resize(HEAD_ROOM + len, 0);
        }
        &mut self.file_buf[HEAD_ROOM..HEAD_ROOM + len]
    }

    /// Lets the session ask for [`Action::SendFile`]: a get whose digest is known (so that
    /// nothing needs hashing) then has its chunk data sent straight from the file by the
    /// driver (`sendfile`), not read into [`ServerSession::file_space`]. Off by default.
    pub fn send_files(&mut self, on: bool) {
        self.send_files = on;
    }

    /// The free space at the end of the input buffer, to read into (for
    /// [`Action::Receive`] and [`Action::Drain`]).
    pub fn input_space(&mut self) -> &mut [u8] {
        if matches!(self.state, State::Draining { .. }) {
            self.in_start = 0;
            self.in_end = 0;
        }
        if self.input.len() < INPUT_MIN {
            // The first read, or the buffer was lent out while idle and not given back.
            self.input.resize(INPUT_MIN, 0);
        }
        if self.input.len() < self.cfg.upload_input
            && matches!(&self.state, State::Receiving(p) if p.uploading && p.size > INPUT_SMALL as u64)
            && self.input_grant.is_none()
        {
            // An upload reads in large pieces (up to its size), out of the memory budget; the
            // buffer shrinks back before the next request.
            let size = match &self.state {
                State::Receiving(p) => p.size,
                _ => 0,
            };
            let len = (size.saturating_add(4096).next_power_of_two())
                .min(self.cfg.upload_input as u64) as usize;
            if len > self.input.len() {
                self.input_grant = self.cfg.memory.take(len);
                if self.input_grant.is_some() {
                    self.input.resize(len, 0);
                }
            }
        } else if self.in_start > 0
            && self.input.len() - self.in_end < COMPACT_BELOW.min(self.input.len() / 2)
        {
            self.input.copy_within(self.in_start..self.in_end, 0);
            self.in_end -= self.in_start;
            self.in_start = 0;
        }
        if (std::mem::take(&mut self.input_full) && self.input.len() < INPUT_SMALL)
            || self.in_end == self.input.len()
        {
            // Reads fill the buffer (a run of pipelined requests): larger reads. (It is never
            // full of unread input otherwise — a line is at most 4096 octets — but an empty
            // space would read as EOF, so it grows then too.)
            let len = (self.input.len() * 2).min(INPUT_SMALL.max(self.input.len() + INPUT_MIN));
            self.input.resize(len, 0);
        }
        &mut self.input[self.in_end..]
    }

    /// Whether [`ServerSession::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.hard.is_some()
    }

    /// Whether the session is over.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished(_))
    }

    /// Whether the session waits for a request with nothing received and nothing to send:
    /// the moment a driver may lend its buffers to other sessions
    /// ([`ServerSession::take_buffers`]).
    pub fn is_idle(&self) -> bool {
        self.between_requests()
            && self.in_start == self.in_end
            && !self.has_output()
            && !self.discard
            && !self.close_file
            && self.remember.is_none()
    }

    /// Takes the session's buffers while it is idle ([`ServerSession::is_idle`]; otherwise
    /// nothing). The session allocates what it needs again unless the driver gives buffers
    /// back first ([`ServerSession::give_buffers`]): an idle driver reads the first octets of
    /// the next request into a small buffer of its own, gives buffers back, then copies them
    /// into [`ServerSession::input_space`].
    pub fn take_buffers(&mut self) -> Buffers {
        if !self.is_idle() {
            return Buffers::default();
        }
        self.in_start = 0;
        self.in_end = 0;
        self.out.clear();
        Buffers {
            input: std::mem::take(&mut self.input),
            output: std::mem::take(&mut self.out),
            file: std::mem::take(&mut self.file_buf),
        }
    }

    /// Gives the session buffers (from [`ServerSession::take_buffers`], of this session or
    /// another) where it holds none.
    pub fn give_buffers(&mut self, buffers: Buffers) {
        if self.input.is_empty() && buffers.input.len() >= INPUT_MIN {
            self.input = buffers.input;
        }
        if self.out.capacity() == 0 {
            self.out = buffers.output;
            self.out.clear();
        }
        if self.file_buf.is_empty() {
            self.file_buf = buffers.file;
        }
    }

    /// While an upload is stored and nothing is buffered: how many octets of chunk data
    /// come next. A driver may read up to that many straight into its own buffer, store
    /// them itself and report them with [`ServerSession::received_upload`] instead of
    /// reading into [`ServerSession::input_space`] (which then only ever holds frame heads).
    /// 0 when this is not possible now.
    pub fn upload_direct(&self) -> usize {
        match &self.state {
            State::Receiving(put)
                if put.uploading
                    && put.writing.is_none()
                    && self.in_start == self.in_end
                    && !self.past_hard() =>
            {
                put.rx.chunk_left() as usize
            }
            _ => 0,
        }
    }

    // --------------------------------------------------------------- inputs ---

    /// The server is shutting down: requests in flight must stop at `hard_deadline`.
    /// Idempotent; the first deadline counts.
    pub fn shutdown(&mut self, hard_deadline: Instant) {
        if self.hard.is_none() {
            self.hard = Some(hard_deadline);
        }
    }

    /// `n` octets were read into [`ServerSession::input_space`].
    pub fn received(&mut self, n: usize) {
        if matches!(self.state, State::Draining { .. }) {
            return;
        }
        if n > 0 {
            self.recv_since = None;
            self.moved(n);
        }
        self.in_end = (self.in_end + n).min(self.input.len());
        self.input_full = n > 0 && self.in_end == self.input.len();
    }

    /// `data`, read straight from the peer into the driver's own buffer while
    /// [`ServerSession::upload_direct`] allowed it, is upload data the driver stores itself
    /// (at most that many octets count; the driver reports a failure to store them with
    /// [`ServerSession::upload_failed`]).
    pub fn received_upload(&mut self, data: &[u8]) {
        let direct = self.upload_direct();
        let State::Receiving(put) = &mut self.state else {
            return;
        };
        if direct == 0 || data.is_empty() {
            return;
        }
        let n = data.len().min(direct);
        put.rx.data(&data[..n]);
        self.recv_since = None;
        self.moved(n);
    }

    /// Storing the upload failed, at any time while its payload is received (a driver that
    /// writes behind, or stores [`ServerSession::received_upload`] data): the upload is
    /// dropped, the rest of the payload read past, then the error answered (PUT-17).
    pub fn upload_failed(&mut self, code: Code) {
        if let State::Receiving(put) = &mut self.state
            && put.uploading
        {
            tracing::warn!(code = %code, "storing the upload failed");
            put.pending = Some(code);
            put.uploading = false;
            self.discard = true;
        }
    }

    /// For [`Action::ReadFile`], instead of reading into [`ServerSession::file_space`]: hands
    /// the session a buffer that holds the octets read at `HEAD_ROOM..` (room for the chunk's
    /// head in front, as [`ferry_wire::HEAD_ROOM`]), and returns the session's previous file
    /// buffer, free for the driver's next read. Report the count with
    /// [`ServerSession::file_read`] as usual. Lets a driver read the next piece of a file
    /// while the current one is sent, without a copy. Without a read outstanding, `buf` comes
    /// back unused.
    pub fn swap_file_buffer(&mut self, mut buf: Vec<u8>) -> Vec<u8> {
        let State::Reading(get) = &self.state else {
            return buf;
        };
        let Some(len) = get.reading else {
            return buf;
        };
        if buf.len() < HEAD_ROOM + len {
            buf.resize(HEAD_ROOM + len, 0);
        }
        std::mem::replace(&mut self.file_buf, buf)
    }

    /// `n` octets of [`ServerSession::output`] were written.
    pub fn sent(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.send_since = None;
        self.moved(n);
        if self.out_sent < self.out.len() {
            self.out_sent = (self.out_sent + n).min(self.out.len());
            if self.out_sent == self.out.len() {
                self.out.clear();
                self.out_sent = 0;
                if self.out.capacity() > KEEP_OUTPUT {
                    // A long run of replies is over: do not hold its buffer while idle.
                    self.out = Vec::with_capacity(OUTPUT_CAPACITY);
                }
            }
        } else if let Some(r) = &mut self.chunk {
            r.start = (r.start + n).min(r.end);
            if r.start == r.end {
                self.chunk = None;
            }
        } else if let Some((at, left)) = &mut self.file_out {
            let n = (n as u64).min(*left);
            *at += n;
            *left -= n;
            if *left == 0 {
                self.file_out = None;
            }
        }
    }

    /// For [`Action::SendFile`]: the open file ended before the octets asked for
    /// ([`Code::CHANGED`], GET-9) or could not be read ([`Code::STORAGE`], GET-10). The
    /// chunk that has begun is completed with zero octets (DATA-11), then the payload ends
    /// with `abort CODE`.
    pub fn file_send_failed(&mut self, code: Code) {
        let Some((_, left)) = self.file_out.take() else {
            return;
        };
        let State::Reading(get) = &self.state else {
            return;
        };
        let sent = get.pos.saturating_sub(get.offset).saturating_sub(left);
        self.out.resize(self.out.len() + left as usize, 0);
        self.abort(code, sent);
    }

    /// The peer closed its sending side.
    pub fn eof(&mut self) {
        // A failed authentication's reply still held back is not owed to a peer that left
        // (AUTH-20: otherwise a half-close would skip the delay).
        self.auth.held = None;
        let state = std::mem::replace(&mut self.state, State::Finished(End::Eof));
        self.state = match state {
            State::Draining { end, .. } => State::Finished(end),
            State::Receiving(put) => {
                // CLOSE-4, PUT-16: the upload in progress leaves nothing visible.
                self.discard = put.uploading;
                State::Flushing(End::Eof)
            }
            // CLOSE-5: the replies to what was received completely still go out.
            _ => State::Flushing(End::Eof),
        };
    }

    /// The deadline of the last [`Action::Send`], [`Action::Receive`] or [`Action::Drain`]
    /// passed (at `now`) without progress. A call before the deadline is ignored.
    pub fn timed_out(&mut self, now: Instant) {
        self.now = now;
        let Some(action) = self.waiting.take() else {
            return;
        };
        let mut slow = false;
        if let Some(pace) = &mut self.pace {
            pace.stop_waiting(now);
            if pace.allowance(self.cfg.stall, self.cfg.min_rate).is_zero() {
                slow = true;
                tracing::info!(
                    moved = pace.moved,
                    waited_ms = pace.waited.as_millis() as u64,
                    min_rate = self.cfg.min_rate,
                    "payload slower than min-rate"
                );
            }
        }
        match action {
            Action::Send { deadline } | Action::SendFile { deadline, .. } if now >= deadline => {
                let end = match &self.state {
                    State::Closing(end) | State::Flushing(end) => end.clone(),
                    _ if self.past_hard() => End::Dropped("shutdown deadline passed"),
                    _ if slow => End::Dropped("peer takes the payload slower than min-rate"),
                    _ => End::Dropped("peer accepts no output"),
                };
                if matches!(&self.state, State::Receiving(p) if p.uploading) {
                    tracing::debug!("upload dropped: the peer accepts no output");
                }
                self.state = State::Finished(end);
            }
            Action::Receive { deadline } if now >= deadline => {
                if self.auth.held.is_some_and(|until| now >= until) {
                    // The wait was a held reply's (AUTH-20): it leaves at the next poll.
                    return;
                }
                // TIME-5 (421) or CLOSE-8 (422); an upload's staging file goes first (TIME-4).
                if let State::Receiving(put) = &self.state {
                    self.discard = put.uploading;
                }
                let code = if self.hard.is_some_and(|h| now >= h)
                    || (self.hard.is_some() && self.between_requests())
                {
                    Code::SHUTTING_DOWN
                } else {
                    Code::TIMEOUT
                };
                self.close_with(code);
            }
            Action::Drain { until } if now >= until => {
                if let State::Draining { end, .. } = &self.state {
                    self.state = State::Finished(end.clone());
                }
            }
            _ => {}
        }
    }

    /// The result of [`Action::List`].
    pub fn listed(&mut self, result: Result<Vec<Entry>, Code>) {
        let State::Listing(grant) = std::mem::replace(&mut self.state, Self::between()) else {
            return;
        };
        match result {
            Ok(entries) => {
                // DIR-11: the whole listing within the listing budget, or 431.
                let bytes = entries
                    .iter()
                    .map(|e| std::mem::size_of::<Entry>() + e.name.as_str().len())
                    .sum::<usize>();
                let Some(grant) = self.hold_listing(grant, bytes) else {
                    tracing::info!(entries = entries.len(), "listing budget spent: dir refused");
                    return self.reply_err("dir", None, Code::STORAGE);
                };
                Reply::DirOk {
                    count: entries.len() as u64,
                }
                .encode(&mut self.out);
                self.log("dir", None, None, entries.len() as u64);
                self.state = State::SendingListing {
                    entries: Listing::Dir(entries.into_iter()),
                    _held: grant,
                };
            }
            Err(code) => self.reply_err("dir", None, code),
        }
    }

    /// A listing of `bytes` is held: `grant` (taken before it was collected) made exactly that
    /// large, out of the listing budget (DIR-11); `None` when the budget cannot hold it.
    fn hold_listing(&self, grant: Option<Grant>, bytes: usize) -> Option<Grant> {
        let budget = &self.cfg.listing_memory;
        budget.hint.store(bytes, Ordering::Relaxed);
        let mut grant = grant.unwrap_or_else(|| budget.nothing());
        match bytes.checked_sub(grant.n) {
            Some(more) => grant.absorb(budget.take(more)?),
            None => grant.give_back(grant.n - bytes),
        }
        Some(grant)
    }

    /// The result of [`Action::OpenRead`]. On success the driver holds the open file until
    /// [`Action::CloseFile`].
    pub fn opened(&mut self, result: Result<FileMeta, Code>) {
        let State::Opening { offset, name } = std::mem::replace(&mut self.state, Self::between())
        else {
            return;
        };
        let meta = match result {
            Ok(m) => m,
            Err(code) => return self.reply_err("get", Some(&name), code),
        };
        if offset > meta.size {
            self.close_file = true;
            return self.reply_err("get", Some(&name), Code::BAD_OFFSET);
        }
        self.reply(&Reply::GetOk {
            size: meta.size,
            mtime: meta.mtime,
        });
        // The file buffer is sized by the reads (`file_space`, `swap_file_buffer`): beyond
        // KEEP_FILE_BUF, twice (a driver may read the next piece while one is sent) out of
        // the memory budget, else pieces and chunks of KEEP_FILE_BUF.
        let mut block = meta.size.clamp(1, u64::from(MAX_CHUNK)) as usize;
        // (A get sent straight from the file, Action::SendFile, reads nothing into it.)
        let from_file = self.send_files && meta.digest.is_some();
        if block > KEEP_FILE_BUF && self.file_grant.is_none() && !from_file {
            self.file_grant = self.cfg.memory.take(2 * (HEAD_ROOM + MAX_CHUNK as usize));
            if self.file_grant.is_none() {
                tracing::debug!("memory budget spent: a get is sent in small chunks");
                block = KEEP_FILE_BUF;
            }
        }
        self.in_payload = true;
        self.state = State::Reading(Box::new(Get {
            name,
            total: meta.size,
            offset,
            // A known digest: the prefix is neither read nor hashed.
            pos: if meta.digest.is_some() { offset } else { 0 },
            hasher: Hasher::new(),
            known: meta.digest,
            block,
            reading: None,
        }));
    }

    /// The result of [`Action::ReadFile`]: how many octets were read into
    /// [`ServerSession::file_space`] (fewer than asked: the file ended early).
    pub fn file_read(&mut self, result: Result<usize, Code>) {
        let State::Reading(get) = &mut self.state else {
            return;
        };
        let Some(len) = get.reading.take() else {
            return;
        };
        let sent = get.pos.saturating_sub(get.offset);
        match result {
            Ok(n) if n == len => {}
            Ok(_) => return self.abort(Code::CHANGED, sent),
            Err(code) => return self.abort(code, sent),
        }
        if self.file_buf.len() < HEAD_ROOM + len {
            // The driver read into neither file_space nor a swapped-in buffer.
            return self.abort(Code::STORAGE, sent);
        }
        if get.known.is_none() {
            get.hasher
                .update(&self.file_buf[HEAD_ROOM..HEAD_ROOM + len]);
        }
        let chunk = get.pos >= get.offset;
        get.pos += len as u64;
        if !chunk {
            return;
        }
        let Some(chunk_len) = ChunkLen::new(len as u64) else {
            return;
        };
        let mut room = [0u8; HEAD_ROOM];
        room.copy_from_slice(&self.file_buf[..HEAD_ROOM]);
        let start = write_chunk_head(&mut room, chunk_len);
        self.file_buf[start..HEAD_ROOM].copy_from_slice(&room[start..]);
        let whole = start..HEAD_ROOM + len;
        if self.out.len() + whole.len() <= OUTPUT_CAPACITY {
            // Small chunks are gathered with the replies around them.
            self.out.extend_from_slice(&self.file_buf[whole]);
        } else {
            self.chunk = Some(whole);
        }
    }

    /// The result of [`Action::CheckUnchanged`].
    pub fn checked(&mut self, result: Result<bool, Code>) {
        let State::Checking(get) = std::mem::replace(&mut self.state, Self::between()) else {
            return;
        };
        let sent = get.total - get.offset;
        match result {
            Ok(true) => {
                let digest = match get.known {
                    Some(known) => known,
                    None => {
                        let digest = get.hasher.digest();
                        self.remember = Some(digest);
                        digest
                    }
                };
                self.frame(&Frame::End(digest));
                self.close_file = true;
                self.end_payload();
                self.log("get", Some(&get.name), None, sent);
            }
            Ok(false) => {
                self.state = State::Reading(get);
                self.abort(Code::CHANGED, sent);
            }
            Err(code) => {
                self.state = State::Reading(get);
                self.abort(code, sent);
            }
        }
    }

    /// The result of [`Action::BeginUpload`]. On success the driver holds the upload until
    /// [`Action::CommitUpload`] or [`Action::DiscardUpload`].
    pub fn upload_begun(&mut self, result: Result<(), Code>) {
        let State::Beginning {
            size, name, flow, ..
        } = std::mem::replace(&mut self.state, Self::between())
        else {
            return;
        };
        match result {
            Ok(()) => {
                if flow == PutFlow::Wait {
                    self.reply(&Reply::Go);
                }
                self.receive(Some(name), size, Into::Upload);
            }
            Err(code) => self.refuse_put(size, flow, name, code),
        }
    }

    /// The result of [`Action::WriteUpload`].
    pub fn upload_written(&mut self, result: Result<(), Code>) {
        let State::Receiving(put) = &mut self.state else {
            return;
        };
        let Some((_, used)) = put.writing.take() else {
            return;
        };
        if let Err(code) = result {
            // PUT-17: drop the staging file, read past the rest, then answer.
            tracing::warn!(code = %code, "write to staging file failed");
            put.pending = Some(code);
            put.uploading = false;
            self.discard = true;
        }
        self.consume(used);
    }

    /// The result of [`Action::CommitUpload`].
    pub fn upload_committed(&mut self, result: Result<(), Code>) {
        let State::Committing { size, digest, name } =
            std::mem::replace(&mut self.state, Self::between())
        else {
            return;
        };
        match result {
            Ok(()) => {
                self.reply(&Reply::PutOk { size, digest });
                self.log("put", Some(&name), None, size);
            }
            Err(code) => self.reply_err("put", Some(&name), code),
        }
    }

    /// The results of [`Action::StoreUploads`], one per upload in their order (a missing
    /// one counts as a storage failure).
    pub fn uploads_stored(&mut self, results: &[Result<(), Code>]) {
        let State::Storing(batch) = std::mem::replace(&mut self.state, Self::between()) else {
            return;
        };
        for (i, (name, size, answer)) in batch.answers.into_iter().enumerate() {
            let stored = results.get(i).copied().unwrap_or(Err(Code::STORAGE));
            match (stored, answer) {
                (Err(code), _) | (Ok(()), Err(code)) => self.reply_err("put", Some(&name), code),
                (Ok(()), Ok(digest)) => {
                    self.reply(&Reply::PutOk { size, digest });
                    self.log("put", Some(&name), None, size);
                }
            }
        }
    }

    /// The result of [`Action::Drain`]: the peer closed, or the drain ended.
    pub fn drained(&mut self) {
        if let State::Draining { end, .. } = &self.state {
            self.state = State::Finished(end.clone());
        }
    }

    // ---------------------------------------------------------------- poll ---

    /// What to do next, at `now`.
    pub fn poll(&mut self, now: Instant) -> Action {
        self.now = now;
        if let Some(pace) = &mut self.pace {
            pace.stop_waiting(now);
        }
        loop {
            if let Some(mut action) = self.peek() {
                self.pace_action(&mut action);
                self.waiting = match &action {
                    Action::Send { .. }
                    | Action::SendFile { .. }
                    | Action::Receive { .. }
                    | Action::Drain { .. } => Some(action.clone()),
                    _ => None,
                };
                return action;
            }
        }
    }

    /// TIME-9: while a payload is in flight, a wait for the peer ends no later than the
    /// payload's pace allows, and its time is accounted.
    fn pace_action(&mut self, action: &mut Action) {
        let in_flight = matches!(
            self.state,
            State::SendingListing { .. }
                | State::Reading(_)
                | State::Checking(_)
                | State::Receiving(_)
        );
        if !in_flight || self.cfg.min_rate == 0 {
            self.pace = None;
            return;
        }
        let (Action::Send { deadline }
        | Action::SendFile { deadline, .. }
        | Action::Receive { deadline }) = action
        else {
            return;
        };
        if self.last_words {
            return;
        }
        let now = self.now;
        let pace = self.pace.get_or_insert(Pace {
            moved: 0,
            waited: Duration::ZERO,
            wait_from: None,
        });
        pace.wait_from = Some(now);
        let allowed = now + pace.allowance(self.cfg.stall, self.cfg.min_rate);
        *deadline = (*deadline).min(allowed);
    }

    /// `n` octets of a payload in flight moved (TIME-9).
    fn moved(&mut self, n: usize) {
        self.audit.moved(n);
        if let Some(pace) = &mut self.pace {
            pace.moved = pace.moved.saturating_add(n as u64);
        }
    }

    /// One step: the next action, or `None` after a state change that needs another look.
    fn peek(&mut self) -> Option<Action> {
        if self.discard {
            self.discard = false;
            return Some(Action::DiscardUpload);
        }
        if let Some(digest) = self.remember.take() {
            return Some(Action::RememberDigest(digest));
        }
        if self.close_file {
            self.close_file = false;
            return Some(Action::CloseFile);
        }
        let now = self.now;
        let pending_output = self.has_output();
        match &mut self.state {
            State::Finished(end) => {
                let end = end.clone();
                self.log_budget.flush();
                Some(Action::Finished(end))
            }
            State::Flushing(end) => {
                if pending_output {
                    Some(self.send())
                } else {
                    self.state = State::Finished(end.clone());
                    None
                }
            }
            State::Closing(end) => {
                if pending_output {
                    return Some(self.send());
                }
                let end = end.clone();
                let mut until = now + DRAIN_TIME;
                if let Some(hard) = self.hard {
                    until = until.min(hard.max(now));
                }
                self.state = State::Draining { end, until };
                None
            }
            State::Draining { until, .. } => Some(Action::Drain { until: *until }),
            State::Listing(grant) => {
                if grant.is_none() {
                    // DIR-11: the listing is held out of the listing budget; what the last
                    // one took is taken before this one is collected.
                    match self.cfg.listing_memory.take_hint() {
                        Some(g) => *grant = Some(g),
                        None => {
                            self.state = Self::between();
                            tracing::info!("listing budget spent: dir refused");
                            self.reply_err("dir", None, Code::STORAGE);
                            return None;
                        }
                    }
                }
                Some(Action::List)
            }
            State::SendingListing { entries, .. } => {
                // Refill the output up to its capacity (dropping what was sent already, so
                // that the buffer does not grow); the entries leave as it drains.
                if self.out_sent > 0 {
                    self.out.drain(..self.out_sent);
                    self.out_sent = 0;
                }
                while self.out.len() < OUTPUT_CAPACITY && entries.encode_next(&mut self.out) {}
                if entries.len() == 0 {
                    self.state = Self::between();
                    return None;
                }
                Some(self.send())
            }
            State::Opening { name, offset } => Some(Action::OpenRead {
                name: name.clone(),
                offset: *offset,
            }),
            State::Beginning {
                name, size, mode, ..
            } => Some(Action::BeginUpload {
                name: name.clone(),
                size: *size,
                mode: *mode,
            }),
            State::Committing { .. } => Some(Action::CommitUpload),
            State::Storing(_) => Some(Action::StoreUploads),
            State::Tree(_) => self.peek_tree(),
            State::Checking(_) => Some(Action::CheckUnchanged),
            State::Request { .. } => self.peek_request(),
            State::Reading(_) => self.peek_get(),
            State::Receiving(_) => self.peek_put(),
        }
    }

    /// Between requests, or inside a request line.
    fn peek_request(&mut self) -> Option<Action> {
        let now = self.now;
        if self.input_grant.is_some() && self.in_end - self.in_start <= INPUT_SMALL {
            // An upload's large input buffer goes back to the budget.
            self.input.copy_within(self.in_start..self.in_end, 0);
            self.in_end -= self.in_start;
            self.in_start = 0;
            self.input.truncate(INPUT_SMALL);
            self.input.shrink_to_fit();
            self.input_grant = None;
        }
        let pending_output = self.has_output();
        if self.out.len() - self.out_sent >= OUTPUT_CAPACITY
            || self.chunk.is_some()
            || self.file_out.is_some()
        {
            // Replies to a long run of pipelined requests leave before more are read.
            return Some(self.send());
        }
        if let Some(action) = self.hold() {
            return action;
        }
        let State::Request {
            line_deadline,
            extend,
        } = &mut self.state
        else {
            return None;
        };
        let deadline = match *line_deadline {
            Some(d) => d,
            None => {
                // CLOSE-8: at a request boundary a shutdown ends the session, even with
                // pipelined requests waiting.
                if self.hard.is_some() {
                    if pending_output && self.in_payload {
                        // The end of the last get payload leaves whole first.
                        return Some(self.send());
                    }
                    self.close_with(Code::SHUTTING_DOWN);
                    return None;
                }
                if self.in_start == self.in_end {
                    if pending_output {
                        return Some(self.send());
                    }
                    let since = *self.recv_since.get_or_insert(now);
                    return Some(Action::Receive {
                        deadline: since + self.cfg.idle,
                    });
                }
                // TIME-2: the whole line within the stall timeout of its first octet.
                let d = now + self.cfg.stall;
                *line_deadline = Some(d);
                d
            }
        };
        if *extend && !pending_output {
            // ... or of the end of the previous reply, when that was still being sent.
            *extend = false;
            *line_deadline = Some(deadline.max(now + self.cfg.stall));
            return None;
        }
        let input = &self.input[self.in_start..self.in_end];
        let decoded = if is_auth_line(input) {
            auth_wire::decode_auth_request(input).map(|(l, used)| (Line::Auth(l), used))
        } else if tree_wire::is_tree_verb(input) && !self.cfg.tree {
            // EXT-4: the extension's request, not offered: 503 (a line that does not end
            // within 4096 octets is still 501).
            match decode_request(input) {
                Err(DecodeError::Invalid(Invalid {
                    line_len: Some(used),
                    kind,
                    ..
                })) if kind != InvalidKind::LineTooLong => Ok((Line::NotOffered, used)),
                Ok((_, used)) => Ok((Line::NotOffered, used)),
                Err(e) => Err(e),
            }
        } else if tree::is_tree_line(self.cfg.tree, self.tree_enabled, input) {
            tree_wire::decode_tree_request(input).map(|(r, used)| (Line::Tree(r), used))
        } else {
            decode_request(input).map(|(r, used)| (Line::Request(r), used))
        };
        match decoded {
            Ok((line, used)) => {
                self.consume(used);
                self.started = now;
                let first = std::mem::replace(&mut self.first, false);
                self.state = Self::between();
                self.end_unanswered_scram(&line);
                match line {
                    Line::Request(request) => self.execute(request, first),
                    Line::Auth(line) => self.execute_auth(line),
                    Line::Tree(request) => self.execute_tree(request),
                    Line::NotOffered => {
                        tracing::info!("request of the tree extension, not offered");
                        self.reply_err("tree", None, Code::UNSUPPORTED);
                    }
                }
            }
            Err(DecodeError::Invalid(invalid)) => {
                self.started = now;
                self.first = false;
                self.state = Self::between();
                if self.auth.scram.take().is_some() {
                    // AUTH-6: only auth-final may follow `more`.
                    self.reply_err("auth", None, auth_wire::AUTH_FAILED);
                }
                self.invalid(invalid);
            }
            Err(DecodeError::Incomplete) => {
                if pending_output {
                    *extend = true;
                    return Some(self.send());
                }
                let deadline = match self.hard {
                    Some(h) => deadline.min(h),
                    None => deadline,
                };
                return Some(Action::Receive { deadline });
            }
        }
        None
    }

    fn execute(&mut self, request: Request, first: bool) {
        self.audit_begin(&request);
        match request {
            Request::Dir => match self.allowed(Right::List) {
                Ok(()) => self.state = State::Listing(None),
                Err(code) => self.reply_err("dir", None, code),
            },
            Request::Get { offset, name } => self.get(offset, TreePath::from(name)),
            Request::Put {
                size,
                mode,
                flow,
                name,
            } => self.put(size, mode, flow, TreePath::from(name)),
            Request::Version(v) => {
                if !first {
                    // VER-6: only as the first request.
                    self.reply_err("version", None, Code::SYNTAX);
                } else if v == Version::V1 {
                    self.reply(&Reply::VersionOk(v));
                    self.log("version", None, None, 0);
                } else {
                    self.reply_err("version", None, Code::UNSUPPORTED);
                }
            }
            Request::Close => {
                self.reply(&Reply::Bye);
                self.log("close", None, None, 0);
                self.state = State::Closing(End::Bye);
            }
        }
    }

    /// A `get` (ferry/1's, or with a path after `ok enable tree`).
    fn get(&mut self, offset: u64, name: TreePath) {
        match self.allowed(Right::Read) {
            Ok(()) => self.state = State::Opening { offset, name },
            Err(code) => self.reply_err("get", Some(&name), code),
        }
    }

    /// A `put` (ferry/1's, or with a path after `ok enable tree`).
    fn put(&mut self, size: u64, mode: PutMode, flow: PutFlow, name: TreePath) {
        // PUT-8: before any other check, and without reading the payload.
        if flow == PutFlow::Now && !self.eager_allowed(size) {
            return self.close_with(Code::PROTOCOL);
        }
        // AUTH-17, AUTH-19: who may put, before the checks of PUT-2.
        if let Err(code) = self.allowed(Right::Create) {
            return self.refuse_put(size, flow, name, code);
        }
        let mode = self.put_mode(mode);
        // PUT-2, in order (the name was checked by the decoder).
        let refused = if self.cfg.read_only {
            Some(Code::READ_ONLY)
        } else if size > self.cfg.max_size {
            Some(Code::TOO_LARGE)
        } else {
            None
        };
        match (refused, flow) {
            (Some(code), _) => self.refuse_put(size, flow, name, code),
            // An eager put is begun once its payload has arrived (Action::StoreUploads).
            // ... when the memory budget can hold it; else it is begun first and
            // streamed, as a put with flow `wait` is.
            (None, PutFlow::Now) => match self.cfg.memory.take(size as usize) {
                Some(grant) => self.receive(Some(name), size, Into::Hold(mode, grant)),
                None => {
                    tracing::debug!("memory budget spent: an eager put is streamed");
                    self.state = State::Beginning {
                        size,
                        mode,
                        name,
                        flow,
                    };
                }
            },
            (None, PutFlow::Wait) => {
                self.state = State::Beginning {
                    size,
                    mode,
                    name,
                    flow,
                };
            }
        }
    }

    /// A request line that does not match `request` (ERR-6).
    fn invalid(&mut self, invalid: Invalid) {
        tracing::info!(error = %invalid, "invalid request");
        let Some(line_len) = invalid.line_len else {
            // Only a line without LF within 4096 octets has no length (FRAME-2).
            return self.close_with(Code::LINE_TOO_LONG);
        };
        // ERR-6: the codec sorts invalid lines by what the server must answer.
        match invalid.kind {
            InvalidKind::LineTooLong => self.close_with(Code::LINE_TOO_LONG),
            InvalidKind::MalformedPut => self.close_with(Code::PROTOCOL),
            InvalidKind::BadName {
                put: Some(head), ..
            } => {
                self.consume(line_len);
                if head.flow == PutFlow::Now {
                    if !self.eager_allowed(head.size) {
                        return self.close_with(Code::PROTOCOL);
                    }
                    // PUT-9: the payload follows anyway; read past it, then answer.
                    self.receive(None, head.size, Into::Refuse(Code::BAD_NAME));
                } else {
                    self.reply_err("invalid", None, Code::BAD_NAME);
                }
            }
            InvalidKind::BadName { put: None, .. } => {
                self.consume(line_len);
                self.reply_err("invalid", None, Code::BAD_NAME);
            }
            InvalidKind::Syntax => {
                self.consume(line_len);
                self.reply_err("invalid", None, Code::SYNTAX);
            }
        }
    }

    fn eager_allowed(&self, size: u64) -> bool {
        self.cfg.max_eager > 0 && size <= self.cfg.max_eager
    }

    // ----------------------------------------------------------------- get ---

    fn peek_get(&mut self) -> Option<Action> {
        // Chunk data leaves before the file buffer is read into again.
        if self.chunk.is_some()
            || self.file_out.is_some()
            || self.out.len() - self.out_sent >= OUTPUT_CAPACITY
        {
            return Some(self.send());
        }
        let past_hard = self.past_hard();
        let pending_output = self.has_output();
        let State::Reading(get) = &mut self.state else {
            return None;
        };
        if let Some(len) = get.reading {
            return Some(Action::ReadFile { at: get.pos, len });
        }
        if past_hard {
            // CLOSE-9: the shutdown deadline passed during a get payload. Chunk data still
            // queued leaves whole first (DATA-11), then `abort 422`, and the session closes.
            if pending_output {
                return Some(self.send());
            }
            self.in_payload = false;
            self.close_file = true;
            let name = get.name.clone();
            let sent = get.pos.saturating_sub(get.offset);
            self.log("get", Some(&name), Some(Code::SHUTTING_DOWN), sent);
            self.frame(&Frame::Abort(err_reply(Code::SHUTTING_DOWN)));
            self.last_words = true;
            self.state = State::Closing(End::Closed(Code::SHUTTING_DOWN));
            return None;
        }
        if self.send_files && get.known.is_some() && get.pos >= get.offset && get.pos < get.total {
            // The digest is known: the chunk's data goes straight from the file
            // (Action::SendFile), after its head.
            let len = (get.total - get.pos).min(u64::from(MAX_CHUNK));
            if let Some(chunk_len) = ChunkLen::new(len) {
                let mut head = [0u8; HEAD_ROOM];
                let start = write_chunk_head(&mut head, chunk_len);
                self.out.extend_from_slice(&head[start..]);
                self.file_out = Some((get.pos, len));
                get.pos += len;
                return None;
            }
        }
        let len = if get.pos < get.offset {
            (get.offset - get.pos).min(get.block as u64)
        } else if get.pos < get.total {
            (get.total - get.pos).min(get.block as u64)
        } else {
            let State::Reading(get) = std::mem::replace(&mut self.state, Self::between()) else {
                return None;
            };
            self.state = State::Checking(get);
            return Some(Action::CheckUnchanged);
        };
        let len = len as usize;
        get.reading = Some(len);
        Some(Action::ReadFile { at: get.pos, len })
    }

    /// Ends a get payload with `abort CODE` at a chunk boundary (GET-9, GET-10).
    fn abort(&mut self, code: Code, sent: u64) {
        let name = match std::mem::replace(&mut self.state, Self::between()) {
            State::Reading(get) | State::Checking(get) => get.name,
            other => {
                self.state = other;
                return;
            }
        };
        self.frame(&Frame::Abort(err_reply(code)));
        self.close_file = true;
        self.end_payload();
        self.log("get", Some(&name), Some(code), sent);
    }

    /// The payload's last octets are queued.
    fn end_payload(&mut self) {
        // During a shutdown they must still leave whole (peek_request sends them first).
        if self.hard.is_none() {
            self.in_payload = false;
        }
        if self.file_buf.len() > KEEP_FILE_BUF + HEAD_ROOM {
            self.file_buf = Vec::new();
        }
        self.file_grant = None;
    }

    // ----------------------------------------------------------------- put ---

    /// A put refused by a check of PUT-2: at once with flow `wait`, after its payload with
    /// flow `now` (PUT-9).
    fn refuse_put(&mut self, size: u64, flow: PutFlow, name: TreePath, code: Code) {
        match flow {
            PutFlow::Wait => self.reply_err("put", Some(&name), code),
            PutFlow::Now => self.receive(Some(name), size, Into::Refuse(code)),
        }
    }

    fn receive(&mut self, name: Option<TreePath>, size: u64, into: Into) {
        let (uploading, pending, held) = match into {
            Into::Upload => (true, None, None),
            // At most `max-eager` octets (PUT-8 refused larger eager puts).
            Into::Hold(mode, grant) => (
                false,
                None,
                Some((mode, Vec::with_capacity(size as usize), grant)),
            ),
            Into::Refuse(code) => (false, Some(code), None),
        };
        // TIME-9: the payload begins here; what the input already holds of it has moved.
        self.pace = (self.cfg.min_rate > 0).then(|| Pace {
            moved: (self.in_end - self.in_start) as u64,
            waited: Duration::ZERO,
            wait_from: None,
        });
        self.state = State::Receiving(Box::new(Put {
            name,
            rx: PayloadReceiver::new(size),
            size,
            uploading,
            pending,
            writing: None,
            held,
        }));
    }

    fn peek_put(&mut self) -> Option<Action> {
        let now = self.now;
        let past_hard = self.past_hard();
        let pending_output = self.has_output();
        let State::Receiving(put) = &mut self.state else {
            return None;
        };
        if put.writing.is_some() {
            return Some(Action::WriteUpload);
        }
        if past_hard {
            // CLOSE-9: remove the staging file, say why, close.
            self.discard = put.uploading;
            self.close_with(Code::SHUTTING_DOWN);
            return None;
        }
        let data = &self.input[self.in_start..self.in_end];
        let fed = put.rx.feed(data);
        let (step, used) = match fed {
            Ok(x) => x,
            Err(e) => {
                tracing::info!(error = %e, "framing violation in upload");
                self.discard = put.uploading;
                self.close_with(Code::PROTOCOL);
                return None;
            }
        };
        let need_input = |used: usize, left: usize| used == 0 || left == used;
        match step {
            Step::NeedMore => {
                let left = data.len();
                self.consume(used);
                if need_input(used, left) {
                    if pending_output {
                        return Some(self.send());
                    }
                    let since = *self.recv_since.get_or_insert(now);
                    let mut deadline = since + self.cfg.stall;
                    if let Some(h) = self.hard {
                        deadline = deadline.min(h.max(now));
                    }
                    return Some(Action::Receive { deadline });
                }
                None
            }
            Step::Data(d) => {
                if put.uploading {
                    let start = self.in_start + (d.as_ptr() as usize - data.as_ptr() as usize);
                    put.writing = Some((start..start + d.len(), used));
                    Some(Action::WriteUpload)
                } else {
                    if let Some((_, held, _)) = &mut put.held {
                        held.extend_from_slice(d);
                    }
                    self.consume(used);
                    None
                }
            }
            Step::Complete(digest) => {
                self.consume(used);
                let State::Receiving(put) = std::mem::replace(&mut self.state, Self::between())
                else {
                    return None;
                };
                self.end_put(*put, Ok(digest));
                None
            }
            Step::Corrupt {
                announced,
                computed,
            } => {
                self.consume(used);
                let State::Receiving(put) = std::mem::replace(&mut self.state, Self::between())
                else {
                    return None;
                };
                if put.pending.is_none() {
                    tracing::info!(%announced, %computed, "digest mismatch");
                }
                self.end_put(*put, Err(Code::CORRUPT));
                None
            }
            Step::Aborted(reason) => {
                self.consume(used);
                let State::Receiving(put) = std::mem::replace(&mut self.state, Self::between())
                else {
                    return None;
                };
                tracing::debug!(code = %reason.code, "client aborted the upload");
                self.end_put(*put, Err(Code::ABORTED));
                None
            }
        }
    }

    /// A put's payload has been read to its trailer: `Ok` with a verified digest, or
    /// 433/434. A refusal decided before (PUT-9) or a storage failure midway (PUT-17) is
    /// answered whatever the trailer; a held eager put goes to storage whatever it is, since
    /// the checks of PUT-2 come first.
    fn end_put(&mut self, put: Put, trailer: Result<Digest, Code>) {
        match (put.pending, put.held, put.name) {
            (Some(code), _, name) => {
                self.discard = put.uploading;
                self.reply_err("put", name.as_ref(), code);
            }
            (None, Some((mode, data, grant)), Some(name)) => {
                let mut batch = Batch {
                    uploads: Vec::new(),
                    answers: Vec::new(),
                    grants: vec![grant],
                };
                batch.add(name, put.size, mode, data, trailer);
                self.gather(&mut batch);
                self.state = State::Storing(Box::new(batch));
            }
            (None, _, Some(name)) if put.uploading => match trailer {
                Ok(digest) => {
                    self.state = State::Committing {
                        size: put.size,
                        digest,
                        name,
                    };
                }
                Err(code) => {
                    self.discard = true;
                    self.reply_err("put", Some(&name), code);
                }
            },
            (None, _, name) => self.reply_err("put", name.as_ref(), Code::STORAGE),
        }
    }

    /// Adds to `batch` the eager puts that follow it whole in the input buffer (request
    /// line, payload and trailer), as long as each would be held (not refused before the
    /// storage, PUT-8 and the checks of `execute`) and the batch stays within
    /// [`STORE_BATCH`] puts and [`STORE_BATCH_BYTES`]. Stops at anything else, which is then
    /// read as usual once the batch is answered, and at a shutdown (CLOSE-8).
    fn gather(&mut self, batch: &mut Batch) {
        let mut bytes: u64 = batch.uploads.iter().map(|u| u.size).sum();
        while batch.uploads.len() < STORE_BATCH && self.hard.is_none() {
            let input = &self.input[self.in_start..self.in_end];
            let Some((size, mode, name, line)) = self.eager_put_line(input) else {
                return;
            };
            if !self.eager_allowed(size)
                || self.cfg.read_only
                || size > self.cfg.max_size
                || bytes + size > STORE_BATCH_BYTES
                || self.allowed(Right::Create).is_err()
            {
                return;
            }
            let mode = self.put_mode(mode);
            let Some((data, trailer, used)) = whole_payload(size, &input[line..]) else {
                return;
            };
            let Some(grant) = self.cfg.memory.take(size as usize) else {
                return;
            };
            self.consume(line + used);
            bytes += size;
            batch.grants.push(grant);
            batch.add(name, size, mode, data, trailer);
        }
    }

    /// The eager put whose line begins `input`, if it is one (with a path after `ok enable
    /// tree`): size, mode, name and the line's length.
    fn eager_put_line(&self, input: &[u8]) -> Option<(u64, PutMode, TreePath, usize)> {
        if tree::is_tree_line(self.cfg.tree, self.tree_enabled, input) {
            match tree_wire::decode_tree_request(input).ok()? {
                (
                    TreeRequest::Put {
                        size,
                        mode,
                        flow: PutFlow::Now,
                        path,
                    },
                    line,
                ) => Some((size, mode, path, line)),
                _ => None,
            }
        } else {
            match decode_request(input).ok()? {
                (
                    Request::Put {
                        size,
                        mode,
                        flow: PutFlow::Now,
                        name,
                    },
                    line,
                ) => Some((size, mode, name.into(), line)),
                _ => None,
            }
        }
    }

    // ---------------------------------------------------------------- auth ---

    /// Whether the session may do what needs `right` (AUTH-17, AUTH-19): always without the
    /// `auth` extension; else by the grant of its user, or of anonymous access.
    fn allowed(&self, right: Right) -> Result<(), Code> {
        let Some(authenticator) = &self.cfg.auth else {
            return Ok(());
        };
        let rights = match &self.auth.grant {
            Some(grant) => grant.rights,
            None => match authenticator.anonymous() {
                Some(rights) => rights,
                None => return Err(auth_wire::AUTH_REQUIRED),
            },
        };
        if rights.contains(right) {
            Ok(())
        } else {
            Err(auth_wire::NOT_PERMITTED)
        }
    }

    /// The mode a put is stored with: a user without `replace` cannot replace a file, so its
    /// `replace` puts are stored as `new` ones, `err 512` for a name that exists (AUTH-19).
    fn put_mode(&self, mode: PutMode) -> PutMode {
        if mode == PutMode::Replace && self.allowed(Right::Replace).is_err() {
            PutMode::New
        } else {
            mode
        }
    }

    /// A line other than `auth-final` after `more` ends that exchange with `err 535` (its
    /// final reply) before the line is answered (AUTH-5, AUTH-6).
    fn end_unanswered_scram(&mut self, line: &Line) {
        let answers = matches!(
            line,
            Line::Auth(AuthLine::Request(AuthRequest::Final { .. }))
        );
        if !answers && self.auth.scram.take().is_some() {
            self.reply_err("auth", None, auth_wire::AUTH_FAILED);
        }
    }

    /// A request of the `auth` extension (section 16).
    fn execute_auth(&mut self, line: AuthLine) {
        let Some(authenticator) = self.cfg.auth.clone() else {
            // EXT-4: an extension this server knows but did not offer.
            return self.reply_err("auth", None, Code::UNSUPPORTED);
        };
        let request = match line {
            AuthLine::Request(r) => r,
            AuthLine::UnknownMechanism => {
                return self.reply_err("auth", None, Code::UNSUPPORTED);
            }
        };
        self.audit_auth(&request);
        let offered = authenticator.mechanisms();
        let mechanism = match &request {
            AuthRequest::Ed25519 { .. } => Some(Mechanism::Ed25519),
            AuthRequest::Scram { plus: true, .. } => Some(Mechanism::ScramSha256Plus),
            AuthRequest::Scram { plus: false, .. } => Some(Mechanism::ScramSha256),
            AuthRequest::Final { .. } => None,
        };
        if let Some(m) = mechanism {
            if !offered.contains(&m) {
                // AUTH-6.
                return self.reply_err("auth", None, Code::UNSUPPORTED);
            }
            if self.auth.grant.is_some() {
                // AUTH-7: once per session (not a guess: not counted against the address).
                tracing::info!(peer = ?self.auth.peer, "authentication failed: a second auth");
                return self.reply_err("auth", None, auth_wire::AUTH_FAILED);
            }
        }
        let answers_more =
            matches!(request, AuthRequest::Final { .. }) && self.auth.scram.is_some();
        if (mechanism.is_some() || answers_more) && self.throttled(authenticator.as_ref()) {
            return;
        }
        match request {
            AuthRequest::Ed25519 {
                user,
                public_key,
                signature,
            } => {
                let cb = self.auth.cb.unwrap_or([0; 32]);
                match authenticator.ed25519(&user, &public_key, &signature, &cb) {
                    Some(grant) if grant.user == user => self.authenticated(grant, None),
                    _ => self.auth_failed("ed25519"),
                }
            }
            AuthRequest::Scram { client_first, .. } => {
                match authenticator.scram_start(&client_first, self.auth.cb.as_ref()) {
                    Some((exchange, server_first)) => {
                        self.auth.scram = Some(exchange);
                        auth_wire::AuthReply::More { server_first }.encode_into(&mut self.out);
                    }
                    None => self.auth_failed("scram first message"),
                }
            }
            AuthRequest::Final { client_final } => match self.auth.scram.take() {
                Some(exchange) => match exchange.finish(&client_final) {
                    Some((grant, server_final)) => self.authenticated(grant, Some(server_final)),
                    None => self.auth_failed("scram final message"),
                },
                // AUTH-6: no `more` to answer.
                None => self.reply_err("auth", None, Code::SYNTAX),
            },
        }
    }

    fn authenticated(&mut self, grant: auth::Grant, server_final: Option<Vec<u8>>) {
        let Some(authenticator) = self.cfg.auth.clone() else {
            return;
        };
        if let (Some(throttle), Some(peer)) = (authenticator.throttle(), self.auth.peer) {
            throttle.succeeded(peer.ip(), self.now);
        }
        let Some(slot) = authenticator.begin_session(&grant.user) else {
            // AUTH-21: the proof was good, but the user has its maximum of sessions.
            tracing::info!(user = %grant.user, peer = ?self.auth.peer, "auth refused: the user has its maximum of sessions");
            return self.reply_err("auth", None, auth_wire::USER_BUSY);
        };
        self.auth.slot = Some(slot);
        tracing::info!(user = %grant.user, rights = %grant.rights, peer = ?self.auth.peer, "authenticated");
        auth_wire::AuthReply::Ok {
            user: grant.user.clone(),
            server_final,
        }
        .encode_into(&mut self.out);
        self.log("auth", None, None, 0);
        self.auth.grant = Some(grant);
    }

    /// AUTH-8: one reply for every failure; the reason is for the log only. The failure
    /// counts against the client's address (AUTH-20, AUTH-22): the reply may be held back.
    fn auth_failed(&mut self, what: &'static str) {
        let throttle = self.cfg.auth.as_deref().and_then(|a| a.throttle());
        let (Some(throttle), Some(peer)) = (throttle, self.auth.peer) else {
            tracing::info!(what, peer = ?self.auth.peer, "authentication failed");
            return self.reply_err("auth", None, auth_wire::AUTH_FAILED);
        };
        let penalty = throttle.failed(peer.ip(), self.now);
        tracing::info!(
            what,
            %peer,
            failures = penalty.failures,
            delay_ms = penalty.delay.as_millis() as u64,
            "authentication failed"
        );
        if let Some(until) = penalty.refused_until {
            let secs = until.saturating_duration_since(self.now).as_secs();
            tracing::warn!(%peer, failures = penalty.failures, secs, "address refused: too many failed authentications");
        }
        if penalty.delay.is_zero() {
            self.reply_err("auth", None, auth_wire::AUTH_FAILED);
        } else {
            self.auth.held = Some(self.now + penalty.delay);
        }
    }

    /// AUTH-22: an `auth` request (or `auth-final`) from an address the throttle refuses is
    /// answered `err 425 auth-throttled`, which closes the session, before any proof is
    /// looked at; `true` then.
    fn throttled(&mut self, authenticator: &dyn Authenticator) -> bool {
        let (Some(throttle), Some(peer)) = (authenticator.throttle(), self.auth.peer) else {
            return false;
        };
        if throttle.refused(peer.ip(), self.now).is_none() {
            return false;
        }
        tracing::info!(%peer, "auth refused: the address failed too often recently");
        self.auth.scram = None;
        self.log("auth", None, Some(auth_wire::AUTH_THROTTLED), 0);
        self.close_with(auth_wire::AUTH_THROTTLED);
        true
    }

    /// While a failed authentication's reply is held back (AUTH-20): the action to wait with,
    /// or `Some(None)` after the reply was released (or dropped) and the session goes on;
    /// `None` when nothing is held.
    fn hold(&mut self) -> Option<Option<Action>> {
        let until = self.auth.held?;
        if self.hard.is_some() {
            // CLOSE-8: the shutdown's `err 422` is the final reply.
            self.auth.held = None;
            return None;
        }
        if self.now >= until {
            self.auth.held = None;
            self.reply_err("auth", None, auth_wire::AUTH_FAILED);
            return Some(None);
        }
        if self.has_output() {
            return Some(Some(self.send()));
        }
        if self.in_end - self.in_start > HELD_INPUT {
            // AUTH-5: nothing may follow `auth` before its reply; a client that keeps sending
            // is not held on to.
            tracing::info!(peer = ?self.auth.peer, "input while a failed auth was held: refused");
            self.auth.held = None;
            self.log("auth", None, Some(auth_wire::AUTH_THROTTLED), 0);
            self.close_with(auth_wire::AUTH_THROTTLED);
            return Some(None);
        }
        Some(Some(Action::Receive { deadline: until }))
    }

    // ------------------------------------------------------------- helpers ---

    fn between() -> State {
        State::Request {
            line_deadline: None,
            extend: false,
        }
    }

    fn between_requests(&self) -> bool {
        matches!(
            self.state,
            State::Request {
                line_deadline: None,
                ..
            }
        )
    }

    fn past_hard(&self) -> bool {
        self.hard.is_some_and(|h| self.now >= h)
    }

    fn has_output(&self) -> bool {
        self.out_sent < self.out.len() || self.chunk.is_some() || self.file_out.is_some()
    }

    fn consume(&mut self, n: usize) {
        self.in_start = (self.in_start + n).min(self.in_end);
        if self.in_start == self.in_end {
            self.in_start = 0;
            self.in_end = 0;
        }
    }

    /// [`Action::Send`] with the deadline the current wait allows.
    fn send(&mut self) -> Action {
        let now = self.now;
        let since = *self.send_since.get_or_insert(now);
        let patience = if self.last_words {
            LAST_WORDS_PATIENCE
        } else {
            self.cfg.stall
        };
        let mut deadline = since + patience;
        let file_out = match self.file_out {
            Some(f) if self.out_sent == self.out.len() && self.chunk.is_none() => Some(f),
            _ => None,
        };
        if let Some(hard) = self.hard {
            deadline = if self.in_payload {
                // CLOSE-10: a chunk that has begun may still go out while the client takes
                // something within the patience, up to a stall timeout after the deadline.
                deadline
                    .min(since.max(hard) + self.cfg.chunk_patience)
                    .min(hard + self.cfg.stall)
            } else {
                deadline.min(hard.max(since))
            };
        }
        match file_out {
            Some((at, left)) => Action::SendFile {
                at,
                len: left as usize,
                deadline,
            },
            None => Action::Send { deadline },
        }
    }

    fn reply(&mut self, reply: &Reply) {
        reply.encode(&mut self.out);
    }

    fn frame(&mut self, frame: &Frame) {
        frame.encode(&mut self.out);
    }

    fn reply_err(&mut self, command: &'static str, name: Option<&TreePath>, code: Code) {
        self.reply(&Reply::Err(err_reply(code)));
        self.log(command, name, Some(code), 0);
    }

    /// Sends a closing error (420, 421, 422, 501, 502) and closes (ERR-5, CLOSE-6).
    fn close_with(&mut self, code: Code) {
        tracing::info!(code = %code, "closing");
        // Without waiting long: the peer may be the reason the session ends (TIME-5).
        self.last_words = true;
        self.send_since = None;
        self.reply(&Reply::Err(err_reply(code)));
        self.state = State::Closing(End::Closed(code));
    }

    /// One info event per request: command, name (quoted, with every invisible or
    /// line-breaking character escaped, so that a name cannot forge fields or lines), octets
    /// moved (entries for `dir`), the error code if any, and how long it took; within the
    /// session's [`LogBudget`]. The audit records every one, before that limit.
    fn log(&mut self, command: &'static str, name: Option<&TreePath>, code: Option<Code>, n: u64) {
        self.audit_answer(command, name, code, n);
        let to = self.log_to.take();
        if !self.log_budget.allow(self.now) {
            return;
        }
        let micros = u64::try_from(self.now.saturating_duration_since(self.started).as_micros())
            .unwrap_or(u64::MAX);
        let code = code.map(Code::get);
        match (command, name) {
            ("dir", _) => tracing::info!(command, entries = n, code, micros, "request"),
            ("list", name) => {
                let folder = name.map_or(".", TreePath::as_str);
                tracing::info!(command, folder = ?folder, entries = n, code, micros, "request");
            }
            (_, Some(name)) => {
                let name = name.as_str();
                match to {
                    Some(to) => {
                        let to = to.as_str();
                        tracing::info!(command, name = ?name, to = ?to, code, micros, "request");
                    }
                    None => {
                        tracing::info!(command, name = ?name, bytes = n, code, micros, "request")
                    }
                }
            }
            (_, None) => tracing::info!(command, code, micros, "request"),
        }
    }
}
