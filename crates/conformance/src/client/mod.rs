//! Client cases: the runner plays a scripted server on 127.0.0.1:0 (correct or hostile) and
//! launches the client command under test once per case.
//!
//! The command's argv may contain placeholders, replaced in every argument:
//!
//! | placeholder | env var | value |
//! |---|---|---|
//! | `{addr}` | `FERRY_ADDR` | the scripted server, `127.0.0.1:PORT` |
//! | `{op}` | `FERRY_OP` | `get`, `put`, `dir`, `resume`, `mget`, `mput` or `rget` |
//! | `{name}` | `FERRY_NAME` | the remote file (get, put, resume, mget, mput) or folder (rget) |
//! | `{name2}` | `FERRY_NAME2` | the second file name (mget, mput) |
//! | `{dir}` | `FERRY_DIR` | a fresh local folder: get writes `{dir}/{name}`, put reads it |
//!
//! The operations, each on one connection:
//!
//! - `get`: download `{name}` to `{dir}/{name}`; `put`: upload `{dir}/{name}` as `{name}`;
//!   `dir`: list the files on stdout, one per line.
//! - `resume`: like `get`, resuming from what an earlier interrupted `get` of `{name}` into the
//!   same `{dir}` kept, if it kept anything (GET-6). The cases that use it run the client
//!   twice in one `{dir}`: `get` against a server that cuts the download, then `resume`.
//! - `mget`: download `{name}` and `{name2}` into `{dir}`; `mput`: upload `{dir}/{name}` and
//!   `{dir}/{name2}`. Both in one session, in that order, pipelined or not (PIPE-2); exit 0
//!   only if both succeeded.
//! - `rget`: download the server's folder `{name}` with everything beneath it into
//!   `{dir}/{name}` (the `tree` extension, section 17): the destination the user chose is
//!   `{dir}`, and `{dir}/{name}` is the first level the client creates beneath it (TREE-14).
//!
//! The command runs in `{dir}`. Exit status 0 means the operation succeeded, any other
//! status that it failed, and 127 that the client does not support the operation
//! (verdict `unimplemented`). The runner judges the exit status, what the client sent, and
//! what it left on disk: `{dir}` and the folder around it.

mod cases;
mod clarified;
mod folders;
mod multi;

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ferry_wire::limits::MAX_LINE;
use ferry_wire::tree::{TreeRequest, decode_tree_request, is_tree_verb};
use ferry_wire::{
    DecodeError, Digest, FileName, Frame, Hasher, PutFlow, Request, decode_frame, decode_request,
};

use crate::case::{CaseInfo, Done, Kind, Res, Violation, strongest, unimplemented, violation};
use crate::net::{Trailer, show};

/// Every client case: the targeted ones, then those of the clarified rules.
pub(crate) fn all() -> Vec<ClientCase> {
    cases::all()
        .into_iter()
        .chain(clarified::all())
        .chain(multi::all())
        .chain(folders::all())
        .collect()
}

/// The client command to test: program and arguments, with placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTarget {
    /// argv; `argv[0]` is the program.
    pub argv: Vec<String>,
}

/// The operation a case asks the client to perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Get,
    Put,
    Dir,
    /// A get that resumes from what an earlier interrupted get kept (GET-6).
    Resume,
    /// Two gets in one session.
    MGet,
    /// Two puts in one session.
    MPut,
    /// A folder and everything beneath it (the `tree` extension).
    RGet,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Put => "put",
            Op::Dir => "dir",
            Op::Resume => "resume",
            Op::MGet => "mget",
            Op::MPut => "mput",
            Op::RGet => "rget",
        }
    }
}

/// What the scripted server does after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum After {
    /// Reads the next request.
    #[default]
    Continue,
    /// Closes the connection.
    Close,
    /// Keeps the connection open and reads (and ignores) everything until the client closes.
    Hold,
}

/// A canned answer: octets, then what to do.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub bytes: Vec<u8>,
    pub then: After,
}

/// How the scripted server answers a put.
#[derive(Debug, Clone)]
pub(crate) enum PutAnswer {
    /// Like a correct server: `go` for wait (after `go_delay`, checking the client sends
    /// nothing meanwhile), reads and verifies the payload, `ok put SIZE DIGEST`.
    Accept { go_delay: Duration },
    /// `go` for wait, reads the payload, then sends these octets instead of the right reply.
    ReplyWith(Vec<u8>, After),
    /// Refuses with this `err` line: at once for wait (checking no payload follows), after
    /// reading the payload for now.
    Refuse(Vec<u8>),
    /// Changes the client's local file (`{dir}/{name}`, [`Mock::local_file`]) with this
    /// function once the put line has arrived (for wait: before `go`), then answers like
    /// [`PutAnswer::Accept`]: the client must notice what it can no longer send (PUT-20).
    ChangeLocal(fn(&Path) -> io::Result<()>),
    /// Ends the session with this `err 42x` line (instead of `go` for wait, after the payload
    /// for now). For wait, it then watches for 500 ms: the client must send nothing more
    /// (ERR-9); after an eager put it just closes (what the client pipelined meanwhile cannot
    /// be told apart from what it sent after the err).
    EndSession(Vec<u8>),
}

/// A scripted server.
#[derive(Debug, Clone)]
pub(crate) struct Mock {
    /// The first line (greeting or refusal).
    pub greeting: Vec<u8>,
    /// Wait this long before the greeting, checking the client sends nothing (CONN-5).
    pub greeting_delay: Duration,
    /// After the first line.
    pub after_greeting: After,
    /// The answer to `dir`.
    pub dir: Answer,
    /// The answer to `get` (whatever its name and offset).
    pub get: Answer,
    /// The answer to `put`.
    pub put: PutAnswer,
    /// Send answers this many octets per write, pausing between writes.
    pub drip: Option<(usize, Duration)>,
    /// After `bye`, require the client to close within 2 s (CLOSE-3).
    pub check_close_after_bye: bool,
    /// The greeting's `max-eager` (for PUT-7 checks).
    pub max_eager: u64,
    /// When set, the answer to `get OFFSET NAME` for each NAME and OFFSET (instead of
    /// [`Mock::get`]), so that a client that resumes gets the right tail.
    pub get_at: Option<fn(&str, u64) -> Answer>,
    /// When set, how to answer a put of each NAME (instead of [`Mock::put`]).
    pub put_for: Option<fn(&str) -> PutAnswer>,
    /// `{dir}/{name}`, filled in by the runner (for [`PutAnswer::ChangeLocal`]).
    pub local_file: PathBuf,
    /// The served tree of a greeting that offers `tree`: the folder `{name}` and what
    /// `list` shows beneath it (see [`TreeScript`]).
    pub tree: Option<TreeScript>,
    /// `{name}`, filled in by the runner (the folder of [`Mock::tree`]).
    pub name: String,
}

/// The folder `{name}` a scripted server with the `tree` extension serves: its entries as
/// its listing shows them (correct or hostile), and its files' contents. The server answers
/// `enable tree` with `ok enable tree`, `list OPTS FOLDER` for `.`, `{name}` or a folder
/// beneath it with the entries beneath FOLDER (all of them, or those directly inside it
/// without `recursive`), in the script's order, and `get OFFSET PATH` of a file with its
/// content from OFFSET; everything else that changes the tree gets `err 514 read-only`.
#[derive(Debug, Clone, Default)]
pub(crate) struct TreeScript {
    /// The entries beneath `{name}`, in the order listed: the line's fields before PATH
    /// (`f SIZE MTIME - ` or `d - MTIME - `) and PATH's octets, relative to `{name}`.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// The files' contents, by PATH relative to `{name}`.
    pub files: Vec<(Vec<u8>, Vec<u8>)>,
}

impl TreeScript {
    /// Adds the file `path` with `data`.
    pub(crate) fn file(mut self, path: &[u8], data: &[u8]) -> Self {
        let head = format!("f {} {} - ", data.len(), cases::MTIME).into_bytes();
        self.entries.push((head, path.to_vec()));
        self.files.push((path.to_vec(), data.to_vec()));
        self
    }

    /// Adds the folder `path`.
    pub(crate) fn folder(mut self, path: &[u8]) -> Self {
        let head = format!("d - {} - ", cases::MTIME).into_bytes();
        self.entries.push((head, path.to_vec()));
        self
    }

    /// Adds an entry line as is: `head` (the fields before PATH) and PATH.
    pub(crate) fn line(mut self, head: &str, path: &[u8]) -> Self {
        self.entries.push((head.as_bytes().to_vec(), path.to_vec()));
        self
    }

    /// The entries in ascending order of their paths' octets (TREE-6).
    pub(crate) fn sorted(mut self) -> Self {
        self.entries.sort_by(|a, b| a.1.cmp(&b.1));
        self
    }

    /// Every entry with its path from the served folder: `{name}` itself, then the script's.
    fn full(&self, name: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        let top = (
            format!("d - {} - ", cases::MTIME).into_bytes(),
            name.as_bytes().to_vec(),
        );
        std::iter::once(top)
            .chain(self.entries.iter().map(|(head, path)| {
                let mut full = format!("{name}/").into_bytes();
                full.extend_from_slice(path);
                (head.clone(), full)
            }))
            .collect()
    }

    /// The answer to `list OPTS FOLDER` (`None`: the served folder).
    fn list(&self, name: &str, folder: Option<&[u8]>, recursive: bool) -> Answer {
        let full = self.full(name);
        let prefix = match folder {
            None => Vec::new(),
            Some(f) => {
                let is_folder = full
                    .iter()
                    .any(|(head, path)| head.starts_with(b"d ") && path == f);
                if !is_folder {
                    let file = full.iter().any(|(_, path)| path == f);
                    return Answer {
                        bytes: if file {
                            b"err 518 wrong-kind\n".to_vec()
                        } else {
                            b"err 511 not-found\n".to_vec()
                        },
                        then: After::Continue,
                    };
                }
                [f, b"/"].concat()
            }
        };
        let lines: Vec<Vec<u8>> = full
            .iter()
            .filter_map(|(head, path)| {
                let rel = path.strip_prefix(prefix.as_slice())?;
                (!rel.is_empty() && (recursive || !rel.contains(&b'/')))
                    .then(|| [head.as_slice(), rel, b"\n"].concat())
            })
            .collect();
        // After a listing that is not valid the server holds the connection: the client
        // must close it (ERR-10).
        let then = if listing_valid(&lines) {
            After::Continue
        } else {
            After::Hold
        };
        let mut bytes = format!("ok list {}\n", lines.len()).into_bytes();
        bytes.extend(lines.concat());
        Answer { bytes, then }
    }

    /// The answer to `get OFFSET PATH`.
    fn get(&self, name: &str, path: &[u8], offset: u64) -> Answer {
        let prefix = format!("{name}/").into_bytes();
        let data = path.strip_prefix(prefix.as_slice()).and_then(|rel| {
            self.files
                .iter()
                .find(|(p, _)| p.as_slice() == rel)
                .map(|(_, d)| d)
        });
        // The MTIME the listing gave the file.
        let mtime = path
            .strip_prefix(prefix.as_slice())
            .and_then(|rel| self.entries.iter().find(|(_, p)| p.as_slice() == rel))
            .and_then(|(head, _)| head.split(|&b| b == b' ').nth(2))
            .map_or_else(
                || cases::MTIME.to_owned(),
                |m| String::from_utf8_lossy(m).into_owned(),
            );
        let bytes = match data {
            Some(d) => match usize::try_from(offset) {
                Ok(k) if k <= d.len() => {
                    let mut out = format!("ok get {} {mtime}\n", d.len()).into_bytes();
                    for piece in d[k..].chunks(1000) {
                        out.extend_from_slice(format!("data {}\n", piece.len()).as_bytes());
                        out.extend_from_slice(piece);
                    }
                    out.extend_from_slice(format!("end {}\n", Digest::of(d)).as_bytes());
                    out
                }
                _ => b"err 515 bad-offset\n".to_vec(),
            },
            None => b"err 511 not-found\n".to_vec(),
        };
        Answer {
            bytes,
            then: After::Continue,
        }
    }
}

/// Whether `lines` are a valid listing as a client checks one (TREE-14: each line a
/// `list-entry` but perhaps for its path, the paths in ascending order, each once).
pub(crate) fn listing_valid(lines: &[Vec<u8>]) -> bool {
    let mut listing = ferry_wire::tree::TreeListing::new();
    lines.iter().all(|l| {
        ferry_wire::tree::decode_list_line(l).is_ok_and(|(line, _)| listing.push(line).is_ok())
    })
}

/// The default `{name2}`.
pub(crate) const NAME2: &str = "ferry-conform-2.bin";

/// The default greeting.
pub(crate) const GREETING: &str = "ferry/1 max-line=4096 max-name=255 max-size=1099511627776 max-chunk=1048576 max-eager=1048576 idle=300 stall=60\n";

impl Default for Mock {
    fn default() -> Self {
        Self {
            greeting: GREETING.as_bytes().to_vec(),
            greeting_delay: Duration::ZERO,
            after_greeting: After::Continue,
            dir: Answer {
                bytes: b"ok dir 0\n".to_vec(),
                then: After::Continue,
            },
            get: Answer {
                bytes: b"err 511 not-found\n".to_vec(),
                then: After::Continue,
            },
            put: PutAnswer::Accept {
                go_delay: Duration::ZERO,
            },
            drip: None,
            check_close_after_bye: false,
            max_eager: 1 << 20,
            get_at: None,
            put_for: None,
            local_file: PathBuf::new(),
            tree: None,
            name: String::new(),
        }
    }
}

/// One upload as the scripted server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Upload {
    pub name: Vec<u8>,
    pub size: u64,
    pub flow: PutFlow,
    pub data: Vec<u8>,
    pub trailer: Option<Trailer>,
}

/// What the scripted server saw.
#[derive(Debug, Default)]
pub(crate) struct Log {
    /// Request lines, in order.
    pub requests: Vec<Vec<u8>>,
    /// Uploads.
    pub uploads: Vec<Upload>,
    /// Octets received from clients that sent something where nothing was allowed.
    pub violations: Vec<Violation>,
    /// Connections accepted.
    pub connections: usize,
}

impl Log {
    fn violate(&mut self, req: &str, expected: impl Into<String>, actual: impl Into<String>) {
        self.violations.push(Violation {
            requirement: req.to_owned(),
            expected: expected.into(),
            actual: actual.into(),
        });
    }
}

/// What a case run produced, for its judge.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    /// The signal that ended the client, if any.
    pub signal: Option<i32>,
    /// Whether the runner killed it at the deadline.
    pub timed_out: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `{dir}`.
    pub dir: PathBuf,
    /// The folder around `{dir}`.
    pub work: PathBuf,
    /// `{name}`.
    pub name: String,
    /// What the scripted server saw.
    pub log: Log,
    /// For a case with earlier runs: every regular file under the work folder after them
    /// (relative path, content), before the judged run.
    pub between: Vec<(String, Vec<u8>)>,
    /// The tree the scripted server served ([`Mock::tree`]), for `rget`'s judges.
    pub script: Option<TreeScript>,
}

impl Outcome {
    /// How the client ended, for messages.
    pub(crate) fn status(&self) -> String {
        let mut s = match (self.code, self.signal) {
            _ if self.timed_out => "did not exit before the deadline (killed)".to_owned(),
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            (None, None) => "ended without a status".to_owned(),
        };
        let err = String::from_utf8_lossy(&self.stderr);
        let err = err.trim();
        if !err.is_empty() {
            let last: Vec<&str> = err.lines().rev().take(3).collect();
            let last: Vec<&str> = last.into_iter().rev().collect();
            s.push_str(&format!("; stderr: {}", show(last.join(" | ").as_bytes())));
        }
        s
    }

    /// The file the client was to write or read.
    pub(crate) fn target_file(&self) -> PathBuf {
        self.dir.join(&self.name)
    }
}

/// A client case.
pub(crate) struct ClientCase {
    pub info: CaseInfo,
    pub op: Op,
    pub name: String,
    /// `{name2}` (mget, mput).
    pub name2: String,
    /// Earlier runs of the client in the same `{dir}`, each with its own scripted server,
    /// before the judged one (for `resume`). Their violations count; their exit status is
    /// not judged.
    pub before: Vec<(Op, Mock)>,
    /// Prepares `{dir}` (and its surroundings, `work`) before the client runs.
    pub setup: fn(dir: &Path, work: &Path, name: &str) -> io::Result<()>,
    pub mock: Mock,
    pub judge: fn(&Outcome, &str) -> Res<Done>,
}

impl ClientCase {
    pub(crate) fn new(
        id: &str,
        title: &str,
        reqs: &[&str],
        op: Op,
        mock: Mock,
        judge: fn(&Outcome, &str) -> Res<Done>,
    ) -> Self {
        let requirements: Vec<String> = reqs.iter().map(|s| (*s).to_owned()).collect();
        ClientCase {
            info: CaseInfo {
                id: format!("client/{id}"),
                title: title.to_owned(),
                kind: Kind::Client,
                level: strongest(&requirements),
                requirements,
            },
            op,
            name: "ferry-conform.bin".to_owned(),
            name2: NAME2.to_owned(),
            before: Vec::new(),
            setup: |_, _, _| Ok(()),
            mock,
            judge,
        }
    }

    pub(crate) fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    pub(crate) fn setup(mut self, f: fn(&Path, &Path, &str) -> io::Result<()>) -> Self {
        self.setup = f;
        self
    }

    /// Runs the client with `op` against `mock` in the same `{dir}` first.
    pub(crate) fn after_run(mut self, op: Op, mock: Mock) -> Self {
        self.before.push((op, mock));
        self
    }
}

fn lock(log: &Mutex<Log>) -> std::sync::MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The server side of one connection.
struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
    deadline: Instant,
    drip: Option<(usize, Duration)>,
}

enum Got {
    Line(Vec<u8>),
    Eof,
    Timeout,
    TooLong,
}

impl Peer {
    fn fill(&mut self) -> Option<bool> {
        if self.eof {
            return Some(false);
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let _ = self
            .stream
            .set_read_timeout(Some(left.min(Duration::from_millis(200))));
        let mut chunk = vec![0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => {
                self.eof = true;
                Some(false)
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Some(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Some(true)
            }
            Err(_) => {
                self.eof = true;
                Some(false)
            }
        }
    }

    fn line(&mut self) -> Got {
        loop {
            let window = &self.buf[..self.buf.len().min(MAX_LINE)];
            if let Some(lf) = window.iter().position(|&b| b == b'\n') {
                return Got::Line(self.buf.drain(..=lf).collect());
            }
            if self.buf.len() >= MAX_LINE {
                return Got::TooLong;
            }
            match self.fill() {
                Some(true) => {}
                Some(false) => return Got::Eof,
                None => return Got::Timeout,
            }
        }
    }

    /// Waits `d`; returns the octets that arrived meanwhile.
    fn quiet(&mut self, d: Duration) -> Vec<u8> {
        let until = Instant::now() + d;
        while Instant::now() < until && !self.eof {
            let saved = self.deadline;
            self.deadline = until;
            let _ = self.fill();
            self.deadline = saved;
        }
        self.buf.clone()
    }

    fn send(&mut self, bytes: &[u8]) -> bool {
        match self.drip {
            None => self.stream.write_all(bytes).is_ok(),
            Some((n, pause)) => {
                for piece in bytes.chunks(n.max(1)) {
                    if self.stream.write_all(piece).is_err() {
                        return false;
                    }
                    let _ = self.stream.flush();
                    std::thread::sleep(pause);
                }
                true
            }
        }
    }

    /// Reads the client's payload of `size` octets.
    fn payload(&mut self, size: u64, log: &Mutex<Log>) -> Option<(Vec<u8>, Trailer)> {
        let mut data = Vec::new();
        loop {
            let line = match self.line() {
                Got::Line(l) => l,
                _ => return None,
            };
            let frame = match decode_frame(&line) {
                Ok((f, _)) => f,
                Err(e) => {
                    lock(log).violate(
                        "DATA-1",
                        "a chunk head or trailer",
                        format!("{:?}: {e}", show(&line)),
                    );
                    return None;
                }
            };
            match frame {
                Frame::Data(len) => {
                    if data.len() as u64 + u64::from(len.get()) > size {
                        lock(log).violate(
                            "PUT-1",
                            format!("chunks adding up to the announced SIZE {size}"),
                            format!("a chunk of {} after {} octets", len.get(), data.len()),
                        );
                        return None;
                    }
                    while self.buf.len() < len.as_usize() {
                        if self.fill() != Some(true) {
                            return None;
                        }
                    }
                    data.extend(self.buf.drain(..len.as_usize()));
                }
                Frame::End(d) => {
                    if data.len() as u64 != size {
                        lock(log).violate(
                            "PUT-1",
                            format!("exactly SIZE = {size} octets before end"),
                            format!("end after {} octets", data.len()),
                        );
                    }
                    return Some((data, Trailer::End(d)));
                }
                Frame::Abort(e) => return Some((data, Trailer::Abort(e))),
            }
        }
    }
}

/// FRAME-3: a client ends its request lines with LF alone.
fn lf_only(line: &[u8], l: &mut Log) {
    if line.ends_with(b"\r\n") {
        l.violate(
            "FRAME-3",
            "request lines ending with LF alone",
            format!("{:?}", show(line)),
        );
    }
}

/// `line` with a CR LF end as LF, to compare with a canonical encoding.
fn with_lf(line: &[u8]) -> Vec<u8> {
    match line.strip_suffix(b"\r\n") {
        Some(b) => [b, b"\n"].concat(),
        None => line.to_vec(),
    }
}

/// Checks a request line the client sent; returns the request if valid.
fn check_request(line: &[u8], log: &Mutex<Log>, first: bool, versions: &[u32]) -> Option<Request> {
    let mut l = lock(log);
    l.requests.push(line.to_vec());
    lf_only(line, &mut l);
    match decode_request(line) {
        Ok((r, _)) => {
            let canonical = r.to_bytes();
            let plain = with_lf(line);
            if canonical != plain {
                l.violate("FRAME-6", show(&canonical), show(line));
            }
            if let Request::Version(v) = &r {
                if !first {
                    l.violate("VER-3", "version only as the first request", show(line));
                }
                if !versions.contains(&v.get()) {
                    l.violate("VER-3", "only a version the server listed", show(line));
                }
            }
            Some(r)
        }
        Err(DecodeError::Invalid(e)) => {
            let req = match e.kind {
                ferry_wire::InvalidKind::BadName { .. } => "NAME-7",
                _ if line.split(|&b| b == b' ').next().is_some_and(|v| {
                    !matches!(
                        v.strip_suffix(b"\n").unwrap_or(v),
                        b"dir" | b"get" | b"put" | b"version" | b"close"
                    )
                }) =>
                {
                    "EXT-3"
                }
                _ => "FRAME-6",
            };
            l.violate(
                req,
                "a valid ferry/1 request line",
                format!("{:?}: {e}", show(line)),
            );
            None
        }
        Err(DecodeError::Incomplete) => None,
    }
}

/// Checks a request line of the `tree` extension (or a `get`/`put` by path after `enable
/// tree`) that the client sent to a server offering it; returns the request if valid.
fn check_tree_request(line: &[u8], log: &Mutex<Log>) -> Option<TreeRequest> {
    let mut l = lock(log);
    l.requests.push(line.to_vec());
    lf_only(line, &mut l);
    match decode_tree_request(line) {
        Ok((r, _)) => {
            let canonical = r.encode();
            let plain = with_lf(line);
            // TREE-6: `list`'s options in any order.
            let swapped = match &r {
                TreeRequest::List { options, folder } if options.digests && options.recursive => {
                    format!("list recursive,digests {folder}\n").into_bytes()
                }
                _ => canonical.clone(),
            };
            if canonical != plain && swapped != plain {
                l.violate("FRAME-6", show(&canonical), show(line));
            }
            Some(r)
        }
        Err(DecodeError::Invalid(e)) => {
            let req = match e.kind {
                ferry_wire::InvalidKind::BadName { .. } => "TREE-3",
                _ => "FRAME-6",
            };
            l.violate(
                req,
                "a valid request line of the tree extension",
                format!("{:?}: {e}", show(line)),
            );
            None
        }
        Err(DecodeError::Incomplete) => None,
    }
}

/// Whether a request line is a `get` or `put` whose name is a path of more than one name:
/// before `enable tree` a client must not send it (TREE-1).
fn path_before_enable(line: &[u8]) -> bool {
    matches!(decode_request(line), Err(DecodeError::Invalid(_)))
        && match decode_tree_request(line) {
            Ok((TreeRequest::Get { path, .. } | TreeRequest::Put { path, .. }, _)) => {
                path.depth() > 1
            }
            _ => false,
        }
}

fn versions_of(greeting: &[u8]) -> Vec<u32> {
    match ferry_wire::decode_hello(greeting) {
        Ok((ferry_wire::Hello::Greeting(g), _)) => g.versions().iter().map(|v| v.get()).collect(),
        _ => Vec::new(),
    }
}

/// Serves one connection with `mock`.
fn serve(stream: TcpStream, mock: &Mock, log: &Mutex<Log>, deadline: Instant) {
    let _ = stream.set_nodelay(true);
    let mut p = Peer {
        stream,
        buf: Vec::new(),
        eof: false,
        deadline,
        drip: mock.drip,
    };
    if !mock.greeting_delay.is_zero() {
        let early = p.quiet(mock.greeting_delay);
        if !early.is_empty() {
            lock(log).violate(
                "CONN-5",
                "nothing sent before the server's first line",
                format!("{:?}", show(&early)),
            );
        }
    }
    if !p.send(&mock.greeting) {
        return;
    }
    let versions = versions_of(&mock.greeting);
    // A grammatical greeting without version 1 is HELLO-10's business; anything else
    // unusable is HELLO-9's.
    let hold_req = if !versions.is_empty() && !versions.contains(&1) {
        "HELLO-10"
    } else {
        "HELLO-9"
    };
    match mock.after_greeting {
        After::Close => {
            // HELLO-11 (or whichever refusal): the client must send nothing.
            let _ = p.stream.shutdown(Shutdown::Write);
            let got = p.quiet(Duration::from_millis(500));
            if !got.is_empty() {
                lock(log).violate(
                    "HELLO-11",
                    "nothing sent after a refusal",
                    format!("{:?}", show(&got)),
                );
            }
            return;
        }
        After::Hold => {
            // A first line the client must reject: it must close without sending anything.
            loop {
                match p.fill() {
                    Some(true) if !p.buf.is_empty() => {
                        lock(log).violate(
                            hold_req,
                            "the connection closed without anything sent",
                            format!("{:?}", show(&p.buf)),
                        );
                        return;
                    }
                    Some(true) => {}
                    Some(false) | None => return,
                }
            }
        }
        After::Continue => {}
    }
    let mut first = true;
    let tree_offered = offers_tree(&mock.greeting);
    let mut enabled = false;
    loop {
        let line = match p.line() {
            Got::Line(l) => l,
            Got::Eof | Got::Timeout => return,
            Got::TooLong => {
                lock(log).violate(
                    "FRAME-2",
                    "request lines of at most 4096 octets",
                    "4096 octets without LF",
                );
                return;
            }
        };
        if tree_offered {
            let by_path = line.starts_with(b"get ") || line.starts_with(b"put ");
            if is_tree_verb(&line) || (enabled && by_path) {
                first = false;
                let answer = match check_tree_request(&line, log) {
                    Some(req) => match tree_request(&mut p, mock, log, req, &mut enabled) {
                        Some(a) => a,
                        None => return,
                    },
                    None => Answer {
                        bytes: b"err 500 syntax\n".to_vec(),
                        then: After::Continue,
                    },
                };
                if !send_answer(&mut p, &answer) {
                    return;
                }
                continue;
            }
            if by_path && path_before_enable(&line) {
                let mut l = lock(log);
                l.requests.push(line.clone());
                l.violate(
                    "TREE-1",
                    "`enable tree` sent before a get or put with a path of more than one name",
                    format!("{:?} before any `enable tree`", show(&line)),
                );
                return;
            }
        }
        let Some(req) = check_request(&line, log, first, &versions) else {
            let _ = p.send(b"err 500 syntax\n");
            first = false;
            continue;
        };
        first = false;
        let answer = match req {
            Request::Dir => mock.dir.clone(),
            Request::Get { offset, name } => match &mock.tree {
                Some(t) => t.get(&mock.name, name.as_bytes(), offset),
                None => mock
                    .get_at
                    .map_or_else(|| mock.get.clone(), |f| f(name.as_str(), offset)),
            },
            Request::Version(v) => {
                version_waits(&mut p, log);
                Answer {
                    bytes: format!("ok version {v}\n").into_bytes(),
                    then: After::Continue,
                }
            }
            Request::Close => {
                let _ = p.send(b"bye\n");
                let _ = p.stream.shutdown(Shutdown::Write);
                let rest = p.quiet(Duration::from_millis(if mock.check_close_after_bye {
                    2000
                } else {
                    300
                }));
                if !rest.is_empty() {
                    lock(log).violate(
                        "CLOSE-2",
                        "nothing sent after close",
                        format!("{:?}", show(&rest)),
                    );
                } else if mock.check_close_after_bye && !p.eof {
                    lock(log).violate(
                        "CLOSE-3",
                        "the client closes its side once it has read bye",
                        "still open 2 s after bye",
                    );
                }
                return;
            }
            Request::Put {
                size, flow, name, ..
            } => match put(&mut p, mock, log, size, flow, &name) {
                Some(a) => a,
                None => return,
            },
        };
        if !send_answer(&mut p, &answer) {
            return;
        }
    }
}

/// Sends `answer`, then does what it says; `false` when the connection is over.
fn send_answer(p: &mut Peer, answer: &Answer) -> bool {
    if !p.send(&answer.bytes) {
        return false;
    }
    match answer.then {
        After::Continue => true,
        After::Close => {
            let _ = p.stream.shutdown(Shutdown::Both);
            false
        }
        After::Hold => {
            while p.fill() == Some(true) {}
            false
        }
    }
}

/// Whether the greeting offers the `tree` extension.
fn offers_tree(greeting: &[u8]) -> bool {
    match ferry_wire::decode_hello(greeting) {
        Ok((ferry_wire::Hello::Greeting(g), _)) => ferry_wire::tree::offered(&g),
        _ => false,
    }
}

/// Answers a request of the `tree` extension from [`Mock::tree`]; `None` ends the
/// connection.
fn tree_request(
    p: &mut Peer,
    mock: &Mock,
    log: &Mutex<Log>,
    req: TreeRequest,
    enabled: &mut bool,
) -> Option<Answer> {
    let empty = TreeScript::default();
    let script = mock.tree.as_ref().unwrap_or(&empty);
    let bytes = match req {
        TreeRequest::Enable(ext) if ext.as_str() == ferry_wire::tree::EXTENSION => {
            *enabled = true;
            b"ok enable tree\n".to_vec()
        }
        TreeRequest::Enable(ext) => {
            lock(log).violate(
                "EXT-3",
                "`enable` only of an extension the server listed (`tree`)",
                format!("enable {ext}"),
            );
            b"err 503 unsupported\n".to_vec()
        }
        TreeRequest::List { options, folder } => {
            let f = folder.path().map(|p| p.as_bytes());
            return Some(script.list(&mock.name, f, options.recursive));
        }
        TreeRequest::Get { offset, path } => {
            return Some(script.get(&mock.name, path.as_bytes(), offset));
        }
        TreeRequest::Put { size, flow, .. } => {
            if flow == PutFlow::Now {
                p.payload(size, log)?;
            }
            b"err 514 read-only\n".to_vec()
        }
        TreeRequest::Mkdir(_)
        | TreeRequest::Rmdir(_)
        | TreeRequest::Delete(_)
        | TreeRequest::Rename { .. } => b"err 514 read-only\n".to_vec(),
    };
    Some(Answer {
        bytes,
        then: After::Continue,
    })
}

/// VER-3: after `version` the client sends nothing until the reply; waits a moment to see.
fn version_waits(p: &mut Peer, log: &Mutex<Log>) {
    let early = p.quiet(Duration::from_millis(200));
    if !early.is_empty() {
        lock(log).violate(
            "VER-3",
            "nothing sent after `version` until its reply",
            format!("{:?}", show(&early)),
        );
    }
}

/// Handles a put; returns the final answer to send, or `None` to end the connection.
fn put(
    p: &mut Peer,
    mock: &Mock,
    log: &Mutex<Log>,
    size: u64,
    flow: PutFlow,
    name: &FileName,
) -> Option<Answer> {
    if flow == PutFlow::Now && (mock.max_eager == 0 || size > mock.max_eager) {
        lock(log).violate(
            "PUT-7",
            format!(
                "flow wait for SIZE {size} with max-eager={}",
                mock.max_eager
            ),
            "flow now",
        );
        let _ = p.send(b"err 502 protocol\n");
        return None;
    }
    if let Err(e) = FileName::new(name.as_str()) {
        lock(log).violate("NAME-7", "a valid name", e.to_string());
    }
    if let Some(f) = mock.put_for {
        let named = Mock {
            put: f(name.as_str()),
            put_for: None,
            ..mock.clone()
        };
        return put(p, &named, log, size, flow, name);
    }
    let record = |data: Vec<u8>, trailer: Option<Trailer>| {
        lock(log).uploads.push(Upload {
            name: name.as_bytes().to_vec(),
            size,
            flow,
            data,
            trailer,
        });
    };
    match &mock.put {
        PutAnswer::Refuse(err) => {
            if flow == PutFlow::Wait {
                if !p.send(err) {
                    return None;
                }
                // PUT-5: no payload after an err.
                match p.line() {
                    Got::Line(l)
                        if l.starts_with(b"data ")
                            || l.starts_with(b"end ")
                            || l.starts_with(b"abort ") =>
                    {
                        lock(log).violate(
                            "PUT-5",
                            "no payload after err",
                            format!("{:?}", show(&l)),
                        );
                        None
                    }
                    Got::Line(l) => {
                        // Put the line back: it is the next request.
                        let mut b = l;
                        b.extend_from_slice(&p.buf);
                        p.buf = b;
                        record(Vec::new(), None);
                        Some(Answer {
                            bytes: Vec::new(),
                            then: After::Continue,
                        })
                    }
                    _ => {
                        record(Vec::new(), None);
                        None
                    }
                }
            } else {
                let got = p.payload(size, log);
                record(
                    got.as_ref().map(|g| g.0.clone()).unwrap_or_default(),
                    got.map(|g| g.1),
                );
                Some(Answer {
                    bytes: err.clone(),
                    then: After::Continue,
                })
            }
        }
        PutAnswer::Accept { go_delay } => {
            if flow == PutFlow::Wait {
                if !go_delay.is_zero() {
                    let early = p.quiet(*go_delay);
                    if !early.is_empty() {
                        lock(log).violate(
                            "PUT-5",
                            "nothing sent before go",
                            format!("{:?}", show(&early)),
                        );
                        return None;
                    }
                }
                if !p.send(b"go\n") {
                    return None;
                }
            }
            let (data, trailer) = p.payload(size, log)?;
            let answer = match &trailer {
                Trailer::End(d) if *d == Digest::of(&data) && data.len() as u64 == size => {
                    format!("ok put {size} {d}\n").into_bytes()
                }
                Trailer::End(_) => {
                    lock(log).violate(
                        "SUM-1",
                        "the digest of the octets sent",
                        format!("a wrong digest for {} octets", data.len()),
                    );
                    b"err 433 corrupt\n".to_vec()
                }
                Trailer::Abort(_) => b"err 434 aborted\n".to_vec(),
            };
            record(data, Some(trailer));
            Some(Answer {
                bytes: answer,
                then: After::Continue,
            })
        }
        PutAnswer::ChangeLocal(change) => {
            if let Err(e) = change(&mock.local_file) {
                lock(log).violate(
                    "PUT-20",
                    "the runner changes the client's local file",
                    format!("it could not: {e}"),
                );
                return None;
            }
            let accept = Mock {
                put: PutAnswer::Accept {
                    go_delay: Duration::ZERO,
                },
                ..mock.clone()
            };
            put(p, &accept, log, size, flow, name)
        }
        PutAnswer::EndSession(err) => {
            let got = if flow == PutFlow::Now {
                p.payload(size, log)
            } else {
                None
            };
            record(
                got.as_ref().map(|g| g.0.clone()).unwrap_or_default(),
                got.map(|g| g.1),
            );
            if flow == PutFlow::Now {
                // What the client pipelined after an eager put cannot be told apart from what
                // it sends after reading the err: only a waiting put is checked.
                let _ = p.send(err);
                let _ = p.stream.shutdown(Shutdown::Both);
                return None;
            }
            if !p.buf.is_empty() {
                lock(log).violate(
                    "PUT-5",
                    "nothing sent after put ... wait before its reply",
                    format!("{:?}", show(&p.buf)),
                );
                return None;
            }
            if !p.send(err) {
                return None;
            }
            let _ = p.stream.shutdown(Shutdown::Write);
            let late = p.quiet(Duration::from_millis(500));
            if !late.is_empty() {
                lock(log).violate(
                    "ERR-9",
                    "nothing sent once the closing err arrived (the session has ended)",
                    format!("{:?}", show(&late)),
                );
            }
            None
        }
        PutAnswer::ReplyWith(bytes, then) => {
            if flow == PutFlow::Wait && !p.send(b"go\n") {
                return None;
            }
            let (data, trailer) = p.payload(size, log)?;
            record(data, Some(trailer));
            Some(Answer {
                bytes: bytes.clone(),
                then: *then,
            })
        }
    }
}

/// Replaces the placeholders in one argument.
pub(crate) fn substitute(arg: &str, v: &Vars<'_>) -> String {
    arg.replace("{addr}", v.addr)
        .replace("{op}", v.op)
        .replace("{name2}", v.name2)
        .replace("{name}", v.name)
        .replace("{dir}", v.dir)
}

/// The values of the placeholders for one run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Vars<'a> {
    pub addr: &'a str,
    pub op: &'a str,
    pub name: &'a str,
    pub name2: &'a str,
    pub dir: &'a str,
}

/// How one run of the client command ended.
struct Run {
    code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    log: Log,
}

/// Runs one client case.
pub(crate) fn run_case(case: &ClientCase, target: &ClientTarget, timeout: Duration) -> Res<Done> {
    if target.argv.is_empty() {
        return Err(unimplemented("no client command given"));
    }
    let tmp = tempfile::Builder::new()
        .prefix("ferry-conform-")
        .tempdir()
        .map_err(crate::net::local)?;
    let work = tmp.path().to_path_buf();
    let dir = work.join("d");
    std::fs::create_dir(&dir).map_err(crate::net::local)?;
    (case.setup)(&dir, &work, &case.name).map_err(crate::net::local)?;

    for (op, mock) in &case.before {
        let run = run_once(case, *op, mock, target, &dir, timeout)?;
        if run.code == Some(127) {
            return Err(unimplemented(format!(
                "the client exited 127 for `{}`: not supported",
                op.as_str()
            )));
        }
        if let Some(v) = run.log.violations.first() {
            return Err(crate::case::Stop::Violation(v.clone()));
        }
        if run.timed_out || crashed(run.code, run.signal, &run.stderr) {
            return Err(violation(
                &case.info.requirements[0],
                format!(
                    "a clean exit of the earlier `{}` run before the deadline",
                    op.as_str()
                ),
                if run.timed_out {
                    "killed at the deadline".to_owned()
                } else {
                    format!(
                        "crashed (signal {:?}, exit status {:?})",
                        run.signal, run.code
                    )
                },
            ));
        }
    }
    let between = if case.before.is_empty() {
        Vec::new()
    } else {
        files_under(&work)
    };

    let run = run_once(case, case.op, &case.mock, target, &dir, timeout)?;
    let outcome = Outcome {
        code: run.code,
        signal: run.signal,
        timed_out: run.timed_out,
        stdout: run.stdout,
        stderr: run.stderr,
        dir,
        work,
        name: case.name.clone(),
        log: run.log,
        between,
        script: case.mock.tree.clone(),
    };
    if outcome.code == Some(127) {
        return Err(unimplemented(format!(
            "the client exited 127 for `{}`: not supported",
            case.op.as_str()
        )));
    }
    if let Some(v) = outcome.log.violations.first() {
        return Err(crate::case::Stop::Violation(v.clone()));
    }
    if outcome.timed_out {
        return Err(violation(
            &case.info.requirements[0],
            "the client exits before the case's deadline",
            outcome.status(),
        ));
    }
    if crashed(outcome.code, outcome.signal, &outcome.stderr) {
        return Err(violation(
            &case.info.requirements[0],
            "a clean exit, whatever the server sent",
            outcome.status(),
        ));
    }
    let r = (case.judge)(&outcome, &case.info.requirements[0]);
    drop(tmp);
    r
}

/// Starts the scripted server `mock`, runs the client command once for `op`, and waits for
/// both.
fn run_once(
    case: &ClientCase,
    op: Op,
    mock: &Mock,
    target: &ClientTarget,
    dir: &Path,
    timeout: Duration,
) -> Res<Run> {
    let program = &target.argv[0];
    let listener = TcpListener::bind("127.0.0.1:0").map_err(crate::net::local)?;
    let addr = listener
        .local_addr()
        .map_err(crate::net::local)?
        .to_string();
    listener.set_nonblocking(true).map_err(crate::net::local)?;
    let log = Arc::new(Mutex::new(Log::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + timeout;
    let server = {
        let log = Arc::clone(&log);
        let stop = Arc::clone(&stop);
        let mut mock = mock.clone();
        mock.local_file = dir.join(&case.name);
        mock.name.clone_from(&case.name);
        std::thread::Builder::new()
            .name("ferry-conform-mock".into())
            .spawn(move || {
                let mut handles = Vec::new();
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let _ = s.set_nonblocking(false);
                            lock(&log).connections += 1;
                            let log = Arc::clone(&log);
                            let mock = mock.clone();
                            handles
                                .push(std::thread::spawn(move || serve(s, &mock, &log, deadline)));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                for h in handles {
                    let _ = h.join();
                }
            })
            .map_err(crate::net::local)?
    };

    let dir_s = dir.to_string_lossy().into_owned();
    let vars = Vars {
        addr: &addr,
        op: op.as_str(),
        name: &case.name,
        name2: &case.name2,
        dir: &dir_s,
    };
    let mut cmd = Command::new(substitute(program, &vars));
    cmd.args(target.argv[1..].iter().map(|a| substitute(a, &vars)))
        .current_dir(dir)
        .env("FERRY_ADDR", &addr)
        .env("FERRY_OP", op.as_str())
        .env("FERRY_NAME", &case.name)
        .env("FERRY_NAME2", &case.name2)
        .env("FERRY_DIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        cmd.process_group(0);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            stop.store(true, Ordering::SeqCst);
            let _ = server.join();
            return Err(unimplemented(format!(
                "cannot start the client command {program:?}: {e}"
            )));
        }
    };
    let pump = |r: Option<Box<dyn io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut out);
            }
            out
        })
    };
    let out_t = pump(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn io::Read + Send>),
    );
    let err_t = pump(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn io::Read + Send>),
    );
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                kill_group(&mut child);
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    stop.store(true, Ordering::SeqCst);
    let _ = server.join();
    let log = std::mem::take(&mut *lock(&log));

    #[cfg(unix)]
    let signal = {
        use std::os::unix::process::ExitStatusExt as _;
        status.and_then(|s| s.signal())
    };
    #[cfg(not(unix))]
    let signal = None;
    Ok(Run {
        code: status.and_then(|s| s.code()),
        signal,
        timed_out,
        stdout,
        stderr,
        log,
    })
}

/// Every regular file under `root`: relative path and content.
fn files_under(root: &Path) -> Vec<(String, Vec<u8>)> {
    tree(root)
        .into_iter()
        .filter(|rel| !rel.ends_with('/'))
        .filter_map(|rel| {
            let p = root.join(&rel);
            let meta = std::fs::symlink_metadata(&p).ok()?;
            meta.is_file()
                .then(|| std::fs::read(&p).ok().map(|c| (rel, c)))
                .flatten()
        })
        .collect()
}

/// A crash is not a failure the client reports: killed by a signal, or a Rust client's panic
/// (exit status 101 and `panicked at` on stderr).
fn crashed(code: Option<i32>, signal: Option<i32>, stderr: &[u8]) -> bool {
    signal.is_some()
        || (code == Some(101) && String::from_utf8_lossy(stderr).contains("panicked at"))
}

fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
    let _ = child.kill();
}

/// The files under `root` (relative paths, sorted), symbolic links included.
pub(crate) fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .map(|r| r.to_string_lossy().into_owned())
                .unwrap_or_default();
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            out.push(if is_dir { format!("{rel}/") } else { rel });
            if is_dir {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The digest of a file's content, or `None`.
pub(crate) fn file_digest(p: &Path) -> Option<Digest> {
    let data = std::fs::read(p).ok()?;
    let mut h = Hasher::new();
    h.update(&data);
    Some(h.digest())
}
