//! The runner must catch broken implementations. This file holds a small fault-injectable
//! ferry/1 server and client written on `ferry-wire` alone; each fault breaks ONE rule. The
//! fault-free variants must pass every case that can run against them; every faulty variant
//! must fail at least one case, and the cases named for it in `FAULTS.md` must be among the
//! ones that fail. `FAULTS.md` lists exactly the faults defined here (checked).
//!
//! The mini client runs as this test binary started again by the runner
//! (`FERRY_CONFORM_CLIENT=mini:<fault>`, see [`miniclient_entry`]).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use ferry_conformance::{
    ClientTarget, Filter, Report, RunOptions, ServerTarget, Verdict, run_client, run_server,
};
use ferry_wire::TreePath;
use ferry_wire::tree::{
    self as wire_tree, Folder, ListLine, ListOptions, TreeListing, TreeReply, TreeRequest,
    decode_list_line, decode_tree_reply, decode_tree_request,
};
use ferry_wire::{
    Code, DecodeError, Digest, ErrorReply, FileName, Greeting, Hello, InvalidKind, Limits, Listed,
    Listing, PayloadReceiver, PutFlow, PutMode, Reply, Request, Step, Timestamp, decode_entry,
    decode_hello, decode_listed, decode_reply, decode_request, encode_payload,
};

// ======================================================================= server ===

/// One broken rule of the mini server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SFault {
    None,
    WrongDigest,
    ResumeDigestOfTail,
    NonAtomicUpload,
    TraversalAccepted,
    ListingUnsorted,
    WrongNotFoundCode,
    NoSizeCheck,
    IgnoresMaxLine,
    NoCrLf,
    PipelineDrop,
    EagerNotDiscarded,
    ExecutesAfterClose,
    ReadBoundaries,
    VersionAlwaysOk,
    NewReplaces,
    EagerLimitAfterName,
    PathsBeforeEnable,
    UnlistedTreeServed,
    ListTreeOrder,
    ListNoDigests,
    MkdirParents,
    RmdirNonEmpty,
    DeleteFolder,
    RenameReplaces,
    RenameSplitsAtSpace,
    ReadOnlyTreeChanges,
    ListBeyondLimits,
}

const SERVER_FAULTS: &[(SFault, &str)] = &[
    (SFault::WrongDigest, "get trailers carry a wrong digest"),
    (
        SFault::ResumeDigestOfTail,
        "a get from OFFSET > 0 sends the digest of the octets sent, not of the whole file",
    ),
    (
        SFault::NonAtomicUpload,
        "uploads are written under their final name as they arrive, and never removed",
    ),
    (
        SFault::TraversalAccepted,
        "names with `/` or a leading `.` are answered as if valid (511, uploads accepted)",
    ),
    (SFault::ListingUnsorted, "dir lists names in reverse order"),
    (
        SFault::WrongNotFoundCode,
        "a missing file is answered 500 instead of 511",
    ),
    (SFault::NoSizeCheck, "SIZE is not checked against max-size"),
    (
        SFault::IgnoresMaxLine,
        "no 501: an over-long line is read to its LF and answered 500",
    ),
    (
        SFault::NoCrLf,
        "CR LF is not accepted as eol (the CR stays in the line)",
    ),
    (
        SFault::PipelineDrop,
        "after an error reply, the rest of what was received is dropped",
    ),
    (
        SFault::EagerNotDiscarded,
        "a refused eager put's payload is not discarded (read as requests)",
    ),
    (
        SFault::ExecutesAfterClose,
        "requests received after close are still executed",
    ),
    (
        SFault::ReadBoundaries,
        "each read() is taken as one line (message boundaries from reads)",
    ),
    (
        SFault::VersionAlwaysOk,
        "any version N is answered ok version N",
    ),
    (SFault::NewReplaces, "put new replaces an existing file"),
    (
        SFault::EagerLimitAfterName,
        "an eager put with an invalid name gets its payload read and 510, even above max-eager",
    ),
    (
        SFault::PathsBeforeEnable,
        "get and put take paths before `enable tree`",
    ),
    (
        SFault::UnlistedTreeServed,
        "a server that does not list tree serves its requests (no 503)",
    ),
    (
        SFault::ListTreeOrder,
        "list recursive sends each folder's entries right after it (tree order, not octet order)",
    ),
    (
        SFault::ListNoDigests,
        "list digests sends `-` for every file's digest",
    ),
    (SFault::MkdirParents, "mkdir creates missing parent folders"),
    (
        SFault::RmdirNonEmpty,
        "rmdir removes a folder with everything in it",
    ),
    (
        SFault::DeleteFolder,
        "delete of a folder removes it with everything in it",
    ),
    (SFault::RenameReplaces, "rename replaces what exists at TO"),
    (
        SFault::RenameSplitsAtSpace,
        "rename ignores LEN: FROM ends at the first SP after it",
    ),
    (
        SFault::ReadOnlyTreeChanges,
        "a read-only server refuses puts but performs mkdir, rmdir, delete and rename",
    ),
    (
        SFault::ListBeyondLimits,
        "list recursive also sends entries deeper than 64 names from the served folder",
    ),
];

/// The files, by path (section 17: `a/b`; a ferry/1 name is a one-name path).
type Store = Arc<Mutex<BTreeMap<Vec<u8>, (Vec<u8>, i64)>>>;
/// The folders, by path, with their modification times.
type Folders = Arc<Mutex<BTreeMap<Vec<u8>, i64>>>;

struct MiniServer {
    addr: SocketAddr,
    store: Store,
    folders: Folders,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for MiniServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Clone, Copy)]
struct Conf {
    fault: SFault,
    max_size: u64,
    max_eager: u64,
    /// Offers the `tree` extension (section 17).
    tree: bool,
    /// Refuses every change with 514 (SEC-10, TREE-13).
    read_only: bool,
}

fn start_server(conf: Conf) -> MiniServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    let stop = Arc::new(AtomicBool::new(false));
    let store: Store = Arc::default();
    let folders: Folders = Arc::default();
    let thread = {
        let store = Arc::clone(&store);
        let folders = Arc::clone(&folders);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut sessions = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let store = Arc::clone(&store);
                        let folders = Arc::clone(&folders);
                        let stop = Arc::clone(&stop);
                        sessions.push(std::thread::spawn(move || {
                            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                            let mut sess = Session {
                                s,
                                buf: Vec::new(),
                                conf,
                                store,
                                folders,
                                stop,
                                first: true,
                                enabled: false,
                            };
                            sess.run();
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            for h in sessions {
                let _ = h.join();
            }
        })
    };
    MiniServer {
        addr,
        store,
        folders,
        stop,
        thread: Some(thread),
    }
}

struct Session {
    s: TcpStream,
    buf: Vec<u8>,
    conf: Conf,
    store: Store,
    folders: Folders,
    stop: Arc<AtomicBool>,
    first: bool,
    /// `ok enable tree` was sent: get and put take paths.
    enabled: bool,
}

enum Got {
    Line(Vec<u8>),
    TooLong,
    Eof,
}

impl Session {
    fn fault(&self, f: SFault) -> bool {
        self.conf.fault == f
    }

    /// Reads more octets; false at EOF (or when the server stops).
    fn more(&mut self) -> bool {
        let mut chunk = [0u8; 65536];
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            match self.s.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return false,
            }
        }
    }

    fn line(&mut self) -> Got {
        if self.fault(SFault::ReadBoundaries) {
            if self.buf.is_empty() && !self.more() {
                return Got::Eof;
            }
            let mut l = std::mem::take(&mut self.buf);
            if let Some(lf) = l.iter().position(|&b| b == b'\n') {
                l.truncate(lf + 1);
            } else {
                l.push(b'\n');
            }
            return Got::Line(l);
        }
        loop {
            let limit = if self.fault(SFault::IgnoresMaxLine) {
                usize::MAX
            } else {
                4096
            };
            let window = &self.buf[..self.buf.len().min(limit)];
            if let Some(lf) = window.iter().position(|&b| b == b'\n') {
                let mut l: Vec<u8> = self.buf.drain(..=lf).collect();
                if self.fault(SFault::NoCrLf) && l.ends_with(b"\r\n") {
                    l.insert(l.len() - 1, b'\r');
                }
                if l.len() > 4096 {
                    // IgnoresMaxLine: treat as an ordinary malformed line.
                    return Got::Line(b"\x01\n".to_vec());
                }
                return Got::Line(l);
            }
            if self.buf.len() >= limit {
                return Got::TooLong;
            }
            if !self.more() {
                return Got::Eof;
            }
        }
    }

    fn send(&mut self, b: &[u8]) -> bool {
        self.s.write_all(b).is_ok()
    }

    fn err(&mut self, code: Code) -> bool {
        let ok = self
            .send(&Reply::Err(ErrorReply::new(code, code.name().unwrap_or("error"))).to_bytes());
        if self.fault(SFault::PipelineDrop) {
            self.buf.clear();
        }
        ok
    }

    fn close(&mut self) {
        let _ = self.s.shutdown(Shutdown::Write);
        let until = Instant::now() + Duration::from_secs(1);
        let mut sink = [0u8; 65536];
        while Instant::now() < until {
            match self.s.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
    }

    fn run(&mut self) {
        let limits = Limits {
            max_size: self.conf.max_size,
            max_eager: self.conf.max_eager,
            ..Limits::default()
        };
        let mut greeting = Greeting::new(limits);
        if self.conf.tree {
            greeting = wire_tree::offer(greeting.clone()).unwrap_or(greeting);
        }
        if !self.send(&greeting.to_bytes()) {
            return;
        }
        loop {
            let line = match self.line() {
                Got::Line(l) => l,
                Got::TooLong => {
                    let _ = self.err(Code::LINE_TOO_LONG);
                    return self.close();
                }
                Got::Eof => return,
            };
            let first = std::mem::replace(&mut self.first, false);
            let tree_verb = wire_tree::is_tree_verb(&line);
            let serves_tree = self.conf.tree || self.fault(SFault::UnlistedTreeServed);
            let paths = (self.enabled || self.fault(SFault::PathsBeforeEnable))
                && (line.starts_with(b"get ") || line.starts_with(b"put "));
            let decoded = if tree_verb && !serves_tree {
                if !self.err(Code::UNSUPPORTED) {
                    return;
                }
                continue;
            } else if self.fault(SFault::RenameSplitsAtSpace) && line.starts_with(b"rename ") {
                match split_rename(&line) {
                    Some(r) => Ok(Decoded::Tree(r)),
                    None => Err(DecodeError::Incomplete),
                }
            } else if (tree_verb || paths) && serves_tree {
                decode_tree_request(&line).map(|(r, _)| Decoded::Tree(r))
            } else {
                decode_request(&line).map(|(r, _)| Decoded::Ferry(r))
            };
            let go_on = match decoded {
                Ok(Decoded::Ferry(req)) => self.request(req, first),
                Ok(Decoded::Tree(req)) => self.tree(req),
                Err(DecodeError::Invalid(inv)) => match inv.kind {
                    InvalidKind::MalformedPut => {
                        let _ = self.err(Code::PROTOCOL);
                        false
                    }
                    InvalidKind::BadName { put, .. } if self.fault(SFault::TraversalAccepted) => {
                        let raw = raw_name(&line);
                        match put {
                            None => self.err(Code::NOT_FOUND),
                            Some(h) => self.put(h.size, h.mode, h.flow, raw),
                        }
                    }
                    // PUT-8 is decided before the name: an eager put above max-eager (or any
                    // when it is 0) gets 502 and the close, its payload unread.
                    InvalidKind::BadName { put: Some(h), .. }
                        if h.flow == PutFlow::Now
                            && !self.eager_allowed(h.size)
                            && !self.fault(SFault::EagerLimitAfterName) =>
                    {
                        let _ = self.err(Code::PROTOCOL);
                        false
                    }
                    InvalidKind::BadName { put: Some(h), .. } if h.flow == PutFlow::Now => {
                        if !self.discard(h.size) {
                            return;
                        }
                        self.err(Code::BAD_NAME)
                    }
                    _ => self.err(inv.reply_code()),
                },
                Err(DecodeError::Incomplete) => self.err(Code::SYNTAX),
            };
            if !go_on {
                return self.close();
            }
        }
    }

    fn request(&mut self, req: Request, first: bool) -> bool {
        match req {
            Request::Dir => {
                let store = self.store.lock().expect("store");
                let mut entries: Vec<(Vec<u8>, u64, i64)> = store
                    .iter()
                    .filter(|(n, _)| !n.contains(&b'/'))
                    .map(|(n, (d, m))| (n.clone(), d.len() as u64, *m))
                    .collect();
                drop(store);
                if self.fault(SFault::ListingUnsorted) {
                    entries.reverse();
                }
                let mut out = Reply::DirOk {
                    count: entries.len() as u64,
                }
                .to_bytes();
                for (n, size, m) in entries {
                    out.extend_from_slice(
                        format!("{size} {} ", Timestamp::from_unix_clamped(m)).as_bytes(),
                    );
                    out.extend_from_slice(&n);
                    out.push(b'\n');
                }
                self.send(&out)
            }
            Request::Get { offset, name } => self.get(offset, name.as_bytes()),
            Request::Put {
                size,
                mode,
                flow,
                name,
            } => self.put(size, mode, flow, name.as_bytes().to_vec()),
            Request::Version(v) => {
                if first && (v.get() == 1 || self.fault(SFault::VersionAlwaysOk)) {
                    self.send(&Reply::VersionOk(v).to_bytes())
                } else if first {
                    self.err(Code::UNSUPPORTED)
                } else {
                    self.err(Code::SYNTAX)
                }
            }
            Request::Close => {
                let _ = self.send(b"bye\n");
                if self.fault(SFault::ExecutesAfterClose) {
                    // Executes what is already buffered before closing.
                    while self.buf.contains(&b'\n') {
                        let Got::Line(l) = self.line() else { break };
                        if let Ok((r, _)) = decode_request(&l)
                            && !self.request(r, false)
                        {
                            break;
                        }
                    }
                }
                false
            }
        }
    }

    fn get(&mut self, offset: u64, name: &[u8]) -> bool {
        {
            {
                let file = self.store.lock().expect("store").get(name).cloned();
                let Some((data, m)) = file else {
                    return self.err(if self.fault(SFault::WrongNotFoundCode) {
                        Code::SYNTAX
                    } else {
                        Code::NOT_FOUND
                    });
                };
                if offset > data.len() as u64 {
                    return self.err(Code::BAD_OFFSET);
                }
                let tail = &data[offset as usize..];
                let mut digest = Digest::of(&data);
                if self.fault(SFault::ResumeDigestOfTail) {
                    digest = Digest::of(tail);
                }
                if self.fault(SFault::WrongDigest) {
                    let mut b = digest.to_bytes();
                    b[0] ^= 1;
                    digest = Digest::from_bytes(b);
                }
                let mut out = Reply::GetOk {
                    size: data.len() as u64,
                    mtime: Timestamp::from_unix_clamped(m),
                }
                .to_bytes();
                encode_payload(tail, digest, &mut out);
                self.send(&out)
            }
        }
    }

    /// Reads and drops a payload; false when the connection cannot go on.
    fn discard(&mut self, size: u64) -> bool {
        let mut rx = PayloadReceiver::new(size);
        loop {
            match rx.feed(&self.buf) {
                Ok((Step::NeedMore, 0)) => {
                    if !self.more() {
                        return false;
                    }
                }
                Ok((Step::NeedMore | Step::Data(_), n)) => {
                    self.buf.drain(..n);
                }
                Ok((_, n)) => {
                    self.buf.drain(..n);
                    return true;
                }
                Err(_) => {
                    let _ = self.err(Code::PROTOCOL);
                    return false;
                }
            }
        }
    }

    /// Whether an eager put of `size` octets is within `max-eager` (PUT-8).
    fn eager_allowed(&self, size: u64) -> bool {
        self.conf.max_eager > 0 && size <= self.conf.max_eager
    }

    fn put(&mut self, size: u64, mode: PutMode, flow: PutFlow, name: Vec<u8>) -> bool {
        if flow == PutFlow::Now && !self.eager_allowed(size) {
            let _ = self.err(Code::PROTOCOL);
            return false;
        }
        let exists = self.store.lock().expect("store").contains_key(&name);
        let refusal = if self.conf.read_only {
            Some(Code::READ_ONLY)
        } else if size > self.conf.max_size && !self.fault(SFault::NoSizeCheck) {
            Some(Code::TOO_LARGE)
        } else if !self.parent_exists(&name) {
            // TREE-5: a server does not create folders for a put.
            Some(Code::NOT_FOUND)
        } else if mode == PutMode::New && exists && !self.fault(SFault::NewReplaces) {
            Some(Code::EXISTS)
        } else {
            None
        };
        if let Some(code) = refusal {
            if flow == PutFlow::Now && !self.fault(SFault::EagerNotDiscarded) && !self.discard(size)
            {
                return false;
            }
            return self.err(code);
        }
        if flow == PutFlow::Wait && !self.send(b"go\n") {
            return false;
        }
        let non_atomic = self.fault(SFault::NonAtomicUpload);
        let now = || {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        };
        if non_atomic {
            self.store
                .lock()
                .expect("store")
                .insert(name.clone(), (Vec::new(), now()));
        }
        let mut rx = PayloadReceiver::new(size);
        let mut data = Vec::new();
        loop {
            let step = rx.feed(&self.buf);
            match step {
                Ok((Step::NeedMore, 0)) => {
                    if !self.more() {
                        return false;
                    }
                }
                Ok((Step::NeedMore, n)) => {
                    self.buf.drain(..n);
                }
                Ok((Step::Data(d), n)) => {
                    data.extend_from_slice(d);
                    if non_atomic {
                        self.store
                            .lock()
                            .expect("store")
                            .insert(name.clone(), (data.clone(), now()));
                    }
                    self.buf.drain(..n);
                }
                Ok((Step::Complete(d), n)) => {
                    self.buf.drain(..n);
                    let mut store = self.store.lock().expect("store");
                    // PUT-13: `new` never replaces what appeared since the check.
                    if mode == PutMode::New
                        && !non_atomic
                        && !self.fault(SFault::NewReplaces)
                        && store.contains_key(&name)
                    {
                        drop(store);
                        return self.err(Code::EXISTS);
                    }
                    store.insert(name, (data, now()));
                    drop(store);
                    return self.send(&Reply::PutOk { size, digest: d }.to_bytes());
                }
                Ok((Step::Corrupt { .. }, n)) => {
                    self.buf.drain(..n);
                    return self.err(Code::CORRUPT);
                }
                Ok((Step::Aborted(_), n)) => {
                    self.buf.drain(..n);
                    return self.err(Code::ABORTED);
                }
                Err(_) => {
                    let _ = self.err(Code::PROTOCOL);
                    return false;
                }
            }
        }
    }
}

/// A request line as the mini server decoded it.
enum Decoded {
    Ferry(Request),
    Tree(TreeRequest),
}

/// `rename LEN FROM TO` read the wrong way (RenameSplitsAtSpace): LEN skipped, FROM up to
/// the first SP.
fn split_rename(line: &[u8]) -> Option<TreeRequest> {
    let text = std::str::from_utf8(line).ok()?.trim_end();
    let mut it = text.splitn(4, ' ');
    let (_, _, from, to) = (it.next()?, it.next()?, it.next()?, it.next()?);
    Some(TreeRequest::Rename {
        from: TreePath::new(from).ok()?,
        to: TreePath::new(to).ok()?,
    })
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Whether `path` is `folder` or lies inside it.
fn within(path: &[u8], folder: &[u8]) -> bool {
    path == folder || (path.starts_with(folder) && path.get(folder.len()) == Some(&b'/'))
}

/// The section 17 side of the mini server: files and folders by path, in memory.
impl Session {
    fn is_dir(&self, p: &[u8]) -> bool {
        self.folders.lock().expect("folders").contains_key(p)
    }

    fn is_file(&self, p: &[u8]) -> bool {
        self.store.lock().expect("store").contains_key(p)
    }

    /// Whether the folder `p` is in exists (the served folder always does).
    fn parent_exists(&self, p: &[u8]) -> bool {
        match p.iter().rposition(|&b| b == b'/') {
            None => true,
            Some(i) => self.is_dir(&p[..i]),
        }
    }

    /// Removes `p` and everything inside it.
    fn remove_all(&self, p: &[u8]) {
        self.folders
            .lock()
            .expect("folders")
            .retain(|k, _| !within(k, p));
        self.store
            .lock()
            .expect("store")
            .retain(|k, _| !within(k, p));
    }

    fn ok_line(&mut self, r: TreeReply) -> bool {
        self.send(&r.encode())
    }

    fn tree(&mut self, r: TreeRequest) -> bool {
        match r {
            TreeRequest::Enable(ext) => {
                if ext.as_str() == wire_tree::EXTENSION && self.conf.tree {
                    self.enabled = true;
                    self.ok_line(TreeReply::Enabled(ext))
                } else {
                    self.err(Code::UNSUPPORTED)
                }
            }
            TreeRequest::Get { offset, path } => self.get(offset, path.as_bytes()),
            TreeRequest::Put {
                size,
                mode,
                flow,
                path,
            } => self.put(size, mode, flow, path.as_bytes().to_vec()),
            TreeRequest::List { options, folder } => self.list(options, folder),
            TreeRequest::Rename { from, to } if to.is_within(&from) => self.err(Code::BAD_NAME),
            TreeRequest::Mkdir(_)
            | TreeRequest::Rmdir(_)
            | TreeRequest::Delete(_)
            | TreeRequest::Rename { .. }
                if self.conf.read_only && !self.fault(SFault::ReadOnlyTreeChanges) =>
            {
                self.err(Code::READ_ONLY)
            }
            TreeRequest::Mkdir(p) => {
                let p = p.as_bytes();
                if self.is_dir(p) || self.is_file(p) {
                    return self.err(Code::EXISTS);
                }
                if !self.parent_exists(p) {
                    if !self.fault(SFault::MkdirParents) {
                        return self.err(Code::NOT_FOUND);
                    }
                    let mut folders = self.folders.lock().expect("folders");
                    for (i, _) in p.iter().enumerate().filter(|(_, b)| **b == b'/') {
                        folders.entry(p[..i].to_vec()).or_insert_with(unix_now);
                    }
                }
                self.folders
                    .lock()
                    .expect("folders")
                    .insert(p.to_vec(), unix_now());
                self.ok_line(TreeReply::Mkdir)
            }
            TreeRequest::Rmdir(p) => {
                let p = p.as_bytes();
                if self.is_file(p) {
                    return self.err(wire_tree::WRONG_KIND);
                }
                if !self.is_dir(p) {
                    return self.err(Code::NOT_FOUND);
                }
                let inside = |k: &[u8]| k != p && within(k, p);
                let empty = !self
                    .folders
                    .lock()
                    .expect("folders")
                    .keys()
                    .any(|k| inside(k))
                    && !self.store.lock().expect("store").keys().any(|k| inside(k));
                if !empty && !self.fault(SFault::RmdirNonEmpty) {
                    return self.err(wire_tree::NOT_EMPTY);
                }
                self.remove_all(p);
                self.ok_line(TreeReply::Rmdir)
            }
            TreeRequest::Delete(p) => {
                let p = p.as_bytes();
                if self.is_dir(p) {
                    if !self.fault(SFault::DeleteFolder) {
                        return self.err(wire_tree::WRONG_KIND);
                    }
                } else if !self.is_file(p) {
                    return self.err(Code::NOT_FOUND);
                }
                self.remove_all(p);
                self.ok_line(TreeReply::Delete)
            }
            TreeRequest::Rename { from, to } => {
                if to.is_within(&from) {
                    return self.err(Code::BAD_NAME);
                }
                let (from, to) = (from.as_bytes(), to.as_bytes());
                let (dir, file) = (self.is_dir(from), self.is_file(from));
                if !(dir || file) || !self.parent_exists(to) {
                    return self.err(Code::NOT_FOUND);
                }
                if self.is_dir(to) || self.is_file(to) {
                    if !self.fault(SFault::RenameReplaces) {
                        return self.err(Code::EXISTS);
                    }
                    self.remove_all(to);
                }
                let moved = |k: &[u8]| {
                    let mut n = to.to_vec();
                    n.extend_from_slice(&k[from.len()..]);
                    n
                };
                {
                    let mut folders = self.folders.lock().expect("folders");
                    let keys: Vec<Vec<u8>> = folders
                        .keys()
                        .filter(|k| within(k, from))
                        .cloned()
                        .collect();
                    for k in keys {
                        let v = folders.remove(&k).unwrap_or(0);
                        folders.insert(moved(&k), v);
                    }
                }
                {
                    let mut store = self.store.lock().expect("store");
                    let keys: Vec<Vec<u8>> =
                        store.keys().filter(|k| within(k, from)).cloned().collect();
                    for k in keys {
                        if let Some(v) = store.remove(&k) {
                            store.insert(moved(&k), v);
                        }
                    }
                }
                self.ok_line(TreeReply::Rename)
            }
        }
    }

    fn list(&mut self, options: ListOptions, folder: Folder) -> bool {
        let base: Vec<u8> = folder
            .path()
            .map(|p| p.as_bytes().to_vec())
            .unwrap_or_default();
        if !base.is_empty() {
            if self.is_file(&base) {
                return self.err(wire_tree::WRONG_KIND);
            }
            if !self.is_dir(&base) {
                return self.err(Code::NOT_FOUND);
            }
        }
        let pre = if base.is_empty() {
            Vec::new()
        } else {
            let mut b = base.clone();
            b.push(b'/');
            b
        };
        // TREE-6: what lies beyond TREE-3's limits (after a rename) is left out.
        let rel = |k: &[u8]| -> Option<Vec<u8>> {
            let r = k.strip_prefix(pre.as_slice())?;
            let within_limits = self.fault(SFault::ListBeyondLimits)
                || (k.len() <= 1024 && k.iter().filter(|&&b| b == b'/').count() < 64);
            (within_limits && (options.recursive || !r.contains(&b'/'))).then(|| r.to_vec())
        };
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (k, m) in self.folders.lock().expect("folders").iter() {
            if let Some(r) = rel(k) {
                let mut l = format!("d - {} - ", Timestamp::from_unix_clamped(*m)).into_bytes();
                l.extend_from_slice(&r);
                entries.push((r, l));
            }
        }
        for (k, (data, m)) in self.store.lock().expect("store").iter() {
            if let Some(r) = rel(k) {
                let digest = if options.digests && !self.fault(SFault::ListNoDigests) {
                    Digest::of(data).to_string()
                } else {
                    "-".to_owned()
                };
                let mut l = format!(
                    "f {} {} {digest} ",
                    data.len(),
                    Timestamp::from_unix_clamped(*m)
                )
                .into_bytes();
                l.extend_from_slice(&r);
                entries.push((r, l));
            }
        }
        if self.fault(SFault::ListTreeOrder) {
            entries.sort_by(|a, b| a.0.split(|&c| c == b'/').cmp(b.0.split(|&c| c == b'/')));
        } else {
            entries.sort();
        }
        let mut out = TreeReply::ListOk {
            count: entries.len() as u64,
        }
        .encode();
        for (_, l) in entries {
            out.extend_from_slice(&l);
            out.push(b'\n');
        }
        self.send(&out)
    }
}

/// The name field of a get or put line: after the 2nd (get) or 4th (put) space, eol removed.
fn raw_name(line: &[u8]) -> Vec<u8> {
    let fields = if line.starts_with(b"put ") { 4 } else { 2 };
    let mut rest = line;
    for _ in 0..fields {
        match rest.iter().position(|&b| b == b' ') {
            Some(p) => rest = &rest[p + 1..],
            None => return Vec::new(),
        }
    }
    let rest = rest.strip_suffix(b"\n").unwrap_or(rest);
    rest.strip_suffix(b"\r").unwrap_or(rest).to_vec()
}

// ======================================================================= client ===

/// One broken rule of the mini client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CFault {
    None,
    IgnoresDigest,
    TruncationIsSuccess,
    IgnoresAbort,
    FollowsHostileName,
    WritesThroughSymlink,
    SendsBeforeGreeting,
    AcceptsAnyGreeting,
    EagerAlways,
    PayloadBeforeGo,
    TrustsOkPut,
    AcceptsVersionTwice,
    RefusesBadNameListing,
    AcceptsUnsortedListing,
    TreeFollowsLinks,
    TreeTrustsPaths,
    TreeAcceptsUnsorted,
}

const CLIENT_FAULTS: &[(CFault, &str)] = &[
    (
        CFault::IgnoresDigest,
        "stores a download whose digest does not match",
    ),
    (
        CFault::TruncationIsSuccess,
        "EOF in the middle of a payload counts as the end of the file",
    ),
    (
        CFault::IgnoresAbort,
        "an abort trailer counts as the end of the file",
    ),
    (
        CFault::FollowsHostileName,
        "dir creates a local marker file for each listed name, unchecked",
    ),
    (
        CFault::WritesThroughSymlink,
        "get writes into the destination path, following a symbolic link there",
    ),
    (
        CFault::SendsBeforeGreeting,
        "sends its request before reading the greeting",
    ),
    (
        CFault::AcceptsAnyGreeting,
        "goes on whatever the first line is (no version or limit check)",
    ),
    (
        CFault::EagerAlways,
        "always uploads with flow now, whatever max-eager says",
    ),
    (
        CFault::PayloadBeforeGo,
        "sends the payload of a wait put without waiting for go",
    ),
    (
        CFault::TrustsOkPut,
        "any ok put counts as success, whatever its SIZE and DIGEST",
    ),
    (
        CFault::AcceptsVersionTwice,
        "accepts a greeting that lists a version twice (its other checks kept)",
    ),
    (
        CFault::RefusesBadNameListing,
        "refuses a whole listing for one entry whose name it cannot accept, instead of skipping it",
    ),
    (
        CFault::AcceptsUnsortedListing,
        "accepts a listing out of order or with a name twice (the entries out of place dropped)",
    ),
    (
        CFault::TreeFollowsLinks,
        "rget makes its folders with create_dir_all, following a symbolic link at any level",
    ),
    (
        CFault::TreeTrustsPaths,
        "rget makes a local marker file for each list entry whose path it cannot accept, at that path",
    ),
    (
        CFault::TreeAcceptsUnsorted,
        "rget accepts a list out of order or with a path twice (the entries out of place dropped)",
    ),
];

fn cfault(name: &str) -> CFault {
    CLIENT_FAULTS
        .iter()
        .find(|(f, _)| format!("{f:?}") == name)
        .map_or(CFault::None, |(f, _)| *f)
}

/// When run by the runner with FERRY_CONFORM_CLIENT=mini:<fault>, acts as the mini client and
/// exits; run normally, does nothing.
#[test]
fn miniclient_entry() {
    let Ok(role) = std::env::var("FERRY_CONFORM_CLIENT") else {
        return;
    };
    let Some(fault) = role.strip_prefix("mini:") else {
        return;
    };
    // The mini client performs one operation per session; it does not resume or batch.
    if matches!(
        std::env::var("FERRY_OP").as_deref(),
        Ok("resume" | "mget" | "mput")
    ) {
        std::process::exit(127);
    }
    let code = match miniclient(cfault(fault)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("miniclient: {e}");
            1
        }
    };
    std::process::exit(code);
}

type Decoder<T> = fn(&[u8]) -> Result<(T, usize), DecodeError>;

struct Wire {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    fn fill(&mut self) -> Result<bool, String> {
        let mut chunk = [0u8; 65536];
        let n = self.s.read(&mut chunk).map_err(|e| e.to_string())?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    fn next<T>(&mut self, decode: Decoder<T>) -> Result<T, String> {
        loop {
            match decode(&self.buf) {
                Ok((v, n)) => {
                    self.buf.drain(..n);
                    return Ok(v);
                }
                Err(DecodeError::Incomplete) => {
                    if !self.fill()? {
                        return Err("connection closed".into());
                    }
                }
                Err(DecodeError::Invalid(e)) => return Err(format!("invalid message: {e}")),
            }
        }
    }
}

fn miniclient(fault: CFault) -> Result<(), String> {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let (addr, op, name) = (env("FERRY_ADDR"), env("FERRY_OP"), env("FERRY_NAME"));
    let dir = std::path::PathBuf::from(env("FERRY_DIR"));
    let s = TcpStream::connect(&addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let mut w = Wire { s, buf: Vec::new() };
    let fname = FileName::from_local(&name).map_err(|e| e.to_string());
    let early = match op.as_str() {
        "get" => Request::Get {
            offset: 0,
            name: fname.clone()?,
        }
        .to_bytes(),
        "dir" => b"dir\n".to_vec(),
        _ => Vec::new(),
    };
    if fault == CFault::SendsBeforeGreeting && !early.is_empty() {
        w.s.write_all(&early).map_err(|e| e.to_string())?;
    }
    let hello = w.next(decode_hello);
    let greeting = match hello {
        Ok(Hello::Greeting(g)) => Some(g),
        Ok(Hello::Refused(e)) => return Err(format!("refused: {}", e.code)),
        Err(e) if fault != CFault::AcceptsAnyGreeting => return Err(e),
        Err(_) => None,
    };
    if fault != CFault::AcceptsAnyGreeting {
        let g = greeting.as_ref().ok_or("no greeting")?;
        // HELLO-9: no version listed twice (HELLO-4), the fixed values (HELLO-5), idle and
        // stall of at least 1 (HELLO-7); HELLO-10: version 1 listed.
        let checked = if fault == CFault::AcceptsVersionTwice {
            // The same checks on the list of versions with its repeats removed.
            let mut versions: Vec<ferry_wire::Version> = Vec::new();
            for v in g.versions() {
                if !versions.contains(v) {
                    versions.push(*v);
                }
            }
            g.clone().with_versions(versions[0], &versions[1..]).check()
        } else {
            g.check()
        };
        if let Err(e) = checked {
            return Err(format!("unusable greeting: {e}"));
        }
        if !g.supports(ferry_wire::Version::V1) {
            return Err("unusable greeting: no version 1".into());
        }
    }
    let max_eager = greeting.as_ref().map_or(0, |g| g.limits().max_eager);
    match op.as_str() {
        "get" => {
            if fault != CFault::SendsBeforeGreeting {
                w.s.write_all(&early).map_err(|e| e.to_string())?;
            }
            let size = match w.next(decode_reply)? {
                Reply::GetOk { size, .. } => size,
                other => return Err(format!("get answered {other:?}")),
            };
            let mut rx = PayloadReceiver::new(size);
            let mut data = Vec::new();
            let complete = loop {
                match rx.feed(&w.buf) {
                    Ok((Step::NeedMore, 0)) => match w.fill() {
                        Ok(true) => {}
                        _ if fault == CFault::TruncationIsSuccess => break true,
                        _ => return Err("truncated".into()),
                    },
                    Ok((Step::NeedMore, n)) => {
                        w.buf.drain(..n);
                    }
                    Ok((Step::Data(d), n)) => {
                        data.extend_from_slice(d);
                        w.buf.drain(..n);
                    }
                    Ok((Step::Complete(_), n)) => {
                        w.buf.drain(..n);
                        break true;
                    }
                    Ok((Step::Corrupt { .. }, _)) => break fault == CFault::IgnoresDigest,
                    Ok((Step::Aborted(_), _)) => break fault == CFault::IgnoresAbort,
                    Err(e) => return Err(e.to_string()),
                }
            };
            if !complete {
                return Err("transfer failed".into());
            }
            let dest = dir.join(&name);
            if fault == CFault::WritesThroughSymlink {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&dest)
                    .and_then(|mut f| f.write_all(&data))
                    .map_err(|e| e.to_string())?;
            } else {
                let part = dir.join(".mini-part");
                std::fs::write(&part, &data).map_err(|e| e.to_string())?;
                std::fs::rename(&part, &dest).map_err(|e| e.to_string())?;
            }
        }
        "put" => {
            let read = || std::fs::read(dir.join(&name)).map_err(|e| e.to_string());
            let mut data = read()?;
            let size = data.len() as u64;
            let eager = fault == CFault::EagerAlways || (max_eager > 0 && size <= max_eager);
            let flow = if eager { PutFlow::Now } else { PutFlow::Wait };
            let head = Request::Put {
                size,
                mode: PutMode::New,
                flow,
                name: fname?,
            }
            .to_bytes();
            w.s.write_all(&head).map_err(|e| e.to_string())?;
            if flow == PutFlow::Wait && fault != CFault::PayloadBeforeGo {
                match w.next(decode_reply)? {
                    Reply::Go => {}
                    other => return Err(format!("put answered {other:?}")),
                }
                // The payload is what the file holds now; a file that no longer has SIZE
                // octets ends the payload with `abort 430` (PUT-20).
                data = read()?;
                if data.len() as u64 != size {
                    w.s.write_all(b"abort 430 changed\n")
                        .map_err(|e| e.to_string())?;
                    let _ = w.next(decode_reply);
                    return Err("the local file changed before the upload".into());
                }
            }
            let mut payload = Vec::new();
            encode_payload(&data, Digest::of(&data), &mut payload);
            w.s.write_all(&payload).map_err(|e| e.to_string())?;
            if flow == PutFlow::Wait && fault == CFault::PayloadBeforeGo {
                let _ = w.next(decode_reply)?;
            }
            match w.next(decode_reply)? {
                Reply::PutOk { size: s, digest }
                    if fault == CFault::TrustsOkPut
                        || (s == size && digest == Digest::of(&data)) => {}
                other => return Err(format!("put answered {other:?}")),
            }
        }
        "dir" => {
            if fault != CFault::SendsBeforeGreeting {
                w.s.write_all(&early).map_err(|e| e.to_string())?;
            }
            let count = match w.next(decode_reply)? {
                Reply::DirOk { count } => count,
                other => return Err(format!("dir answered {other:?}")),
            };
            let mut listing = Listing::new();
            for _ in 0..count {
                if fault == CFault::FollowsHostileName {
                    // Takes the name field as it is and makes a local marker for it.
                    while !w.buf.contains(&b'\n') {
                        if !w.fill()? {
                            return Err("truncated listing".into());
                        }
                    }
                    let lf = w.buf.iter().position(|&b| b == b'\n').unwrap_or(0);
                    let line: Vec<u8> = w.buf.drain(..=lf).collect();
                    let name_field = line.splitn(3, |&b| b == b' ').nth(2).unwrap_or_default();
                    let n = String::from_utf8_lossy(
                        name_field.strip_suffix(b"\n").unwrap_or(name_field),
                    )
                    .into_owned();
                    let _ = std::fs::write(dir.join(n), b"");
                    continue;
                }
                // NAME-14: an entry whose only fault is its name is skipped (and reported,
                // NAME-15); DIR-10: the order is checked over every name, skipped ones too.
                let line = if fault == CFault::RefusesBadNameListing {
                    Listed::Entry(w.next(decode_entry)?)
                } else {
                    w.next(decode_listed)?
                };
                match listing.push(line) {
                    Ok(()) => {}
                    Err(_) if fault == CFault::AcceptsUnsortedListing => {}
                    Err(e) => return Err(format!("invalid listing: {e}")),
                }
            }
            for s in &listing.skipped {
                eprintln!(
                    "skipped an entry whose name is not valid ({}): {}",
                    s.error,
                    s.name.escape_ascii()
                );
            }
            for e in &listing.entries {
                println!(
                    "{} {} {}",
                    e.size,
                    e.mtime,
                    e.name.as_str().escape_default()
                );
            }
        }
        "rget" => {
            let g = greeting.as_ref().ok_or("no greeting")?;
            rget(&mut w, g, &dir, &name, fault)?;
        }
        other => return Err(format!("unknown op {other}")),
    }
    w.s.write_all(b"close\n").map_err(|e| e.to_string())?;
    let _ = w.next(decode_reply);
    let _ = w.s.shutdown(Shutdown::Write);
    Ok(())
}

/// `{dir}/{name}/rel`'s folder levels, each made unless it is a folder already, never
/// through a symbolic link (TREE-14); with [`CFault::TreeFollowsLinks`], `create_dir_all`.
fn local_folder(base: &Path, rel: &[&str], fault: CFault) -> Result<std::path::PathBuf, String> {
    let mut here = base.to_path_buf();
    for name in rel {
        here.push(name);
        if fault == CFault::TreeFollowsLinks {
            continue;
        }
        match std::fs::symlink_metadata(&here) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(format!("{} is not a folder", here.display())),
            Err(_) => std::fs::create_dir(&here).map_err(|e| e.to_string())?,
        }
    }
    if fault == CFault::TreeFollowsLinks {
        std::fs::create_dir_all(&here).map_err(|e| e.to_string())?;
    }
    Ok(here)
}

/// `rget`: `list recursive NAME` (checked: order, MTIMEs; bad paths skipped), the folders
/// made beneath `{dir}`, then `enable tree` and one `get` by path per file, each written to
/// a part file renamed onto its name (a symbolic link there is replaced, not followed).
fn rget(w: &mut Wire, g: &Greeting, dir: &Path, name: &str, fault: CFault) -> Result<(), String> {
    if !wire_tree::offered(g) {
        return Err("the server does not offer tree".into());
    }
    let folder = TreePath::new(name).map_err(|e| e.to_string())?;
    let list = TreeRequest::List {
        options: ListOptions {
            digests: false,
            recursive: true,
        },
        folder: Folder::Path(folder.clone()),
    };
    w.s.write_all(&list.encode()).map_err(|e| e.to_string())?;
    let count = match w.next(decode_tree_reply)? {
        TreeReply::ListOk { count } => count,
        other => return Err(format!("list answered {other:?}")),
    };
    let mut listing = TreeListing::new();
    let mut markers = Vec::new();
    for _ in 0..count {
        let line = w.next(decode_list_line)?;
        if let (CFault::TreeTrustsPaths, ListLine::Skipped(s)) = (fault, &line) {
            markers.push(String::from_utf8_lossy(&s.path).into_owned());
        }
        match listing.push(line) {
            Ok(()) => {}
            Err(_) if fault == CFault::TreeAcceptsUnsorted => {}
            Err(e) => return Err(format!("invalid listing: {e}")),
        }
    }
    let base = local_folder(dir, &[name], fault)?;
    for m in markers {
        // Appended as text, so that a leading `/` stays beneath `{dir}/{name}`.
        let mut at = base.as_os_str().to_owned();
        at.push("/");
        at.push(m);
        let _ = std::fs::write(at, b"");
    }
    let mut files = Vec::new();
    for e in &listing.entries {
        let names: Vec<&str> = e.path.names().collect();
        match e.kind {
            wire_tree::EntryKind::Folder => {
                local_folder(&base, &names, fault)?;
            }
            wire_tree::EntryKind::File { .. } => {
                let (last, parents) = names.split_last().ok_or("an empty path")?;
                let local = local_folder(&base, parents, fault)?.join(last);
                files.push((format!("{folder}/{}", e.path), local));
            }
        }
    }
    if files.is_empty() {
        return Ok(());
    }
    let enable = TreeRequest::Enable(ferry_wire::ExtName::new("tree").map_err(|e| e.to_string())?);
    w.s.write_all(&enable.encode()).map_err(|e| e.to_string())?;
    match w.next(decode_tree_reply)? {
        TreeReply::Enabled(_) => {}
        other => return Err(format!("enable answered {other:?}")),
    }
    for (path, local) in files {
        let get = TreeRequest::Get {
            offset: 0,
            path: TreePath::new(path).map_err(|e| e.to_string())?,
        };
        w.s.write_all(&get.encode()).map_err(|e| e.to_string())?;
        let size = match w.next(decode_reply)? {
            Reply::GetOk { size, .. } => size,
            other => return Err(format!("get answered {other:?}")),
        };
        let mut rx = PayloadReceiver::new(size);
        let mut data = Vec::new();
        loop {
            match rx.feed(&w.buf) {
                Ok((Step::NeedMore, 0)) => {
                    if !w.fill()? {
                        return Err("truncated".into());
                    }
                }
                Ok((Step::NeedMore, n)) => {
                    w.buf.drain(..n);
                }
                Ok((Step::Data(d), n)) => {
                    data.extend_from_slice(d);
                    w.buf.drain(..n);
                }
                Ok((Step::Complete(_), n)) => {
                    w.buf.drain(..n);
                    break;
                }
                Ok(_) => return Err("transfer failed".into()),
                Err(e) => return Err(e.to_string()),
            }
        }
        let part = local.with_file_name(".mini-part");
        std::fs::write(&part, &data).map_err(|e| e.to_string())?;
        std::fs::rename(&part, &local).map_err(|e| e.to_string())?;
    }
    Ok(())
}

// ======================================================================== tests ===

fn failing(r: &Report) -> Vec<String> {
    r.cases
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| c.id.clone())
        .collect()
}

/// `FAULTS.md`: (kind, fault) -> the cases it lists as catching it.
fn faults_md() -> BTreeMap<(String, String), Vec<String>> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("FAULTS.md"))
        .expect("FAULTS.md");
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("| server") || l.starts_with("| client"))
    {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert!(cells.len() >= 4, "bad FAULTS.md row {line:?}");
        let cases = cells[3]
            .split(',')
            .map(|c| c.trim().trim_matches('`').to_owned())
            .filter(|c| !c.is_empty())
            .collect();
        out.insert(
            (cells[0].to_owned(), cells[1].trim_matches('`').to_owned()),
            cases,
        );
    }
    out
}

fn opts(include: &[String], timeout: u64) -> RunOptions {
    RunOptions {
        timeout: Duration::from_secs(timeout),
        filter: Filter {
            include: include.to_vec(),
            exclude: Vec::new(),
        },
        ..RunOptions::default()
    }
}

fn run_mini_server(fault: SFault, opts: &RunOptions) -> Report {
    let srv = start_server(Conf {
        fault,
        max_size: 1 << 30,
        max_eager: 1 << 20,
        tree: true,
        read_only: false,
    });
    // A server without `tree` for server/TREE-2/1, with the same fault.
    let plain = start_server(Conf {
        fault,
        max_size: 1 << 30,
        max_eager: 1 << 20,
        tree: false,
        read_only: false,
    });
    // A read-only one, with a file and a folder, for server/SEC-10/1 and server/TREE-13/1.
    let ro = start_server(Conf {
        fault,
        max_size: 1 << 30,
        max_eager: 1 << 20,
        tree: true,
        read_only: true,
    });
    ro.store
        .lock()
        .expect("store")
        .insert(b"present.txt".to_vec(), (b"hello".to_vec(), 1_700_000_000));
    ro.folders
        .lock()
        .expect("folders")
        .insert(b"folder".to_vec(), 1_700_000_000);
    let mut target = ServerTarget::new(srv.addr.to_string());
    target.extra.push(plain.addr.to_string());
    target.read_only = Some(ro.addr.to_string());
    run_server(&target, opts, &mut |_| {})
}

fn client_target(fault: &str) -> ClientTarget {
    let exe = std::env::current_exe().expect("test binary");
    ClientTarget {
        argv: vec![
            "env".into(),
            format!("FERRY_CONFORM_CLIENT=mini:{fault}"),
            exe.to_string_lossy().into_owned(),
            "miniclient_entry".into(),
            "--exact".into(),
            "--nocapture".into(),
            "--test-threads=1".into(),
            "-q".into(),
        ],
    }
}

/// Runs `jobs` on two threads.
fn parallel<T: Send>(jobs: Vec<Box<dyn FnOnce() -> T + Send>>) -> Vec<T> {
    let jobs = Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let next = jobs.lock().expect("jobs").pop();
                    let Some((i, job)) = next else { break };
                    let r = job();
                    results.lock().expect("results").push((i, r));
                }
            });
        }
    });
    let mut r = results.into_inner().expect("results");
    r.sort_by_key(|(i, _)| *i);
    r.into_iter().map(|(_, r)| r).collect()
}

#[test]
fn fault_free_mini_server_passes() {
    let r = run_mini_server(SFault::None, &opts(&[], 10));
    let bad: Vec<_> = r
        .cases
        .iter()
        .filter(|c| {
            !matches!(
                c.verdict,
                Verdict::Pass | Verdict::Informational | Verdict::Unimplemented
            )
        })
        .map(|c| (c.id.clone(), ferry_conformance::report::detail_lines(c)))
        .collect();
    assert!(
        bad.is_empty(),
        "the fault-free mini server does not pass: {bad:#?}"
    );
    // It offers `tree` (and its extra server does not), and has a read-only server beside
    // it: every tree case runs, but the one with users, and so do the tree transcripts.
    let tree: Vec<_> = r
        .cases
        .iter()
        .filter(|c| {
            (c.id.starts_with("server/TREE-") && c.id != "server/TREE-13/2")
                || c.id.starts_with("server/examples/37-tree")
                || c.id.starts_with("server/examples/38-tree")
        })
        .map(|c| (c.id.as_str(), c.verdict, c.note.as_deref()))
        .collect();
    assert!(
        tree.len() >= 14 && tree.iter().all(|(_, v, _)| *v == Verdict::Pass),
        "{tree:#?}"
    );
}

/// Whether an unimplemented verdict says the client declined a `resume`, `mget` or `mput`
/// (exit 127), which the mini client does.
fn declined(c: &ferry_conformance::CaseResult) -> bool {
    c.note.as_deref().is_some_and(|n| {
        ["`resume`", "`mget`", "`mput`"]
            .iter()
            .any(|op| n.contains(&format!("exited 127 for {op}")))
    })
}

#[test]
fn fault_free_mini_client_passes() {
    let r = run_client(&client_target("None"), &opts(&[], 10), &mut |_| {});
    let bad: Vec<_> = r
        .cases
        .iter()
        .filter(|c| !matches!(c.verdict, Verdict::Pass | Verdict::Informational))
        .filter(|c| !(c.verdict == Verdict::Unimplemented && declined(c)))
        .map(|c| (c.id.clone(), ferry_conformance::report::detail_lines(c)))
        .collect();
    assert!(
        bad.is_empty(),
        "the fault-free mini client does not pass: {bad:#?}"
    );
    // The operations it declines (exit 127) are reported as such, and nothing else is.
    let declined_ids: Vec<&str> = r
        .cases
        .iter()
        .filter(|c| c.verdict == Verdict::Unimplemented)
        .map(|c| c.id.as_str())
        .collect();
    assert!(
        declined_ids.len() >= 10 && declined_ids.iter().all(|id| id.starts_with("client/")),
        "{declined_ids:?}"
    );
}

#[test]
fn every_fault_is_caught() {
    let table = faults_md();
    let mut listed: Vec<(String, String)> = SERVER_FAULTS
        .iter()
        .map(|(f, _)| ("server".to_owned(), format!("{f:?}")))
        .collect();
    listed.extend(
        CLIENT_FAULTS
            .iter()
            .map(|(f, _)| ("client".to_owned(), format!("{f:?}"))),
    );
    let in_md: Vec<(String, String)> = table.keys().cloned().collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(
        in_md, sorted,
        "FAULTS.md must list exactly the faults of tests/faults.rs"
    );
    assert!(SERVER_FAULTS.len() >= 8 && CLIENT_FAULTS.len() >= 4);

    // Each faulty variant runs the cases FAULTS.md names for it (all of them with
    // FERRY_CONFORM_FULL=1, which prints every case that catches each fault).
    let full = std::env::var_os("FERRY_CONFORM_FULL").is_some();
    let mut jobs: Vec<Box<dyn FnOnce() -> Vec<String> + Send>> = Vec::new();
    for (kind, fault) in &listed {
        let include = if full {
            Vec::new()
        } else {
            table[&(kind.clone(), fault.clone())].clone()
        };
        let o = opts(&include, if full { 3 } else { 5 });
        if kind == "server" {
            let f = SERVER_FAULTS
                .iter()
                .find(|(f, _)| format!("{f:?}") == *fault)
                .map(|(f, _)| *f)
                .expect("fault");
            jobs.push(Box::new(move || failing(&run_mini_server(f, &o))));
        } else {
            let name = fault.clone();
            jobs.push(Box::new(move || {
                failing(&run_client(&client_target(&name), &o, &mut |_| {}))
            }));
        }
    }
    let results = parallel(jobs);
    let mut problems = Vec::new();
    let mut caught = 0;
    for ((kind, fault), failed) in listed.iter().zip(&results) {
        println!(
            "{kind} {fault}: caught by {} case(s): {}",
            failed.len(),
            failed.join(", ")
        );
        if failed.is_empty() {
            problems.push(format!("{kind} fault {fault} was not caught"));
            continue;
        }
        caught += 1;
        for want in &table[&(kind.clone(), fault.clone())] {
            if !failed.contains(want) {
                problems.push(format!(
                    "{kind} fault {fault}: FAULTS.md says {want} catches it, but it did not fail"
                ));
            }
        }
    }
    println!("{caught} of {} faults caught", listed.len());
    assert!(problems.is_empty(), "{problems:#?}");
}
