//! An in-memory driver of [`ServerSession`], for tests and fuzzing: the client's octets,
//! a virtual clock and a folder are plain values, so a whole session runs without a socket,
//! a file or a sleep, and every deadline is met exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use ferry_wire::tree::{self as tree_wire, EntryKind, Folder, ListEntry};
use ferry_wire::{Code, Digest, Entry, FileName, HEAD_ROOM, Hasher, PutMode, Timestamp, TreePath};

use crate::server::{Action, Buffers, EagerUpload, End, FileMeta, ServerSession, SessionConfig};
use crate::tree::{TreeDone, TreeOp, entry_cost};

/// The settings the in-memory tests start from: `greeting`, `max-size` 1,000,000,
/// `max-eager` 100, idle 300 s, stall 60 s, no `min-rate`, unbounded memory budgets, no
/// authentication; tests change what they are about.
pub fn test_config(greeting: &[u8]) -> SessionConfig {
    SessionConfig {
        greeting: greeting.to_vec(),
        read_only: false,
        max_size: 1_000_000,
        max_eager: 100,
        idle: Duration::from_secs(300),
        stall: Duration::from_secs(60),
        min_rate: 0,
        chunk_patience: Duration::from_secs(5),
        upload_input: crate::server::UPLOAD_INPUT,
        memory: crate::server::MemoryBudget::new(usize::MAX),
        listing_memory: crate::server::MemoryBudget::new(usize::MAX),
        auth: None,
        tree: false,
    }
}

/// A client, a clock and a folder in memory around one server session.
#[derive(Debug)]
pub struct Harness {
    /// The session under test.
    pub s: ServerSession,
    /// The virtual clock.
    pub now: Instant,
    /// The served folder's files: path (a name, or with the `tree` extension names joined
    /// by `/`) and content.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The folders beneath the served folder (the `tree` extension), by path. A file's
    /// folder must be here for a put into it ([`Action::Tree`] creates them).
    pub folders: BTreeSet<String>,
    /// The open file of a get: its name and content.
    pub open: Option<(String, Vec<u8>)>,
    /// A digest cache: the digests [`Action::RememberDigest`] gave, by name, handed to
    /// [`ServerSession::opened`] as known. A file stored under the name drops its entry.
    pub digests: BTreeMap<String, Digest>,
    /// Keep a digest cache (off: digests are neither remembered nor handed over).
    pub cache: bool,
    /// How many file octets the session asked to read ([`Action::ReadFile`]).
    pub read_octets: u64,
    /// [`Action::CheckUnchanged`] answers that the file changed (GET-9).
    pub changed: bool,
    /// Send chunk data of gets with a known digest straight from the file
    /// ([`ServerSession::send_files`], [`Action::SendFile`]).
    pub send_files: bool,
    /// How many file octets were sent by [`Action::SendFile`].
    pub file_sent: u64,
    /// The upload in progress: name and octets.
    pub upload: Option<(String, Vec<u8>)>,
    /// Storage operations the session asked for, in order (for checks).
    pub ops: Vec<String>,
    /// Octets the client sent that the session has not read yet.
    pub inbox: Vec<u8>,
    /// The client closes its side once the inbox is empty.
    pub eof: bool,
    /// What the session sent.
    pub sent: Vec<u8>,
    /// How many octets the client accepts before it stops reading (None: all).
    pub window: Option<usize>,
    /// The wait the session is in when `run` returns.
    pub waiting: Option<Action>,
    /// The next storage operations fail with these codes, in order (then succeed again).
    pub faults: Vec<Code>,
    /// The modification time of every file.
    pub mtime: Timestamp,
    /// Take the optional paths an overlapping driver takes: lend the buffers while idle,
    /// read upload chunk data straight into the upload, swap read file pieces in.
    pub fast: bool,
    /// How many [`Action::StoreUploads`] steps the session asked for.
    pub store_steps: usize,
    /// The most octets the session offered in one [`Action::Send`] (its output buffer).
    pub max_output: usize,
    /// Buffers lent by the session while idle.
    lent: Option<Buffers>,
}

impl Harness {
    /// A session with `cfg`, accepted now.
    pub fn new(cfg: SessionConfig) -> Self {
        let now = Instant::now();
        Self {
            s: ServerSession::new(cfg, now),
            now,
            files: BTreeMap::new(),
            folders: BTreeSet::new(),
            open: None,
            digests: BTreeMap::new(),
            cache: false,
            read_octets: 0,
            changed: false,
            send_files: false,
            file_sent: 0,
            upload: None,
            ops: Vec::new(),
            inbox: Vec::new(),
            eof: false,
            sent: Vec::new(),
            window: None,
            waiting: None,
            faults: Vec::new(),
            mtime: Timestamp::from_unix_clamped(1_709_280_000),
            fast: false,
            store_steps: 0,
            max_output: 0,
            lent: None,
        }
    }

    /// Octets the client sends (delivered by [`Harness::run`]).
    pub fn client(&mut self, bytes: &[u8]) -> &mut Self {
        self.inbox.extend_from_slice(bytes);
        self
    }

    /// Drives the session until it waits for something the script has not provided yet
    /// (input, a peer that accepts output, time) or is finished.
    pub fn run(&mut self) -> &mut Self {
        loop {
            self.s.send_files(self.send_files);
            let action = self.s.poll(self.now);
            match action {
                Action::SendFile { at, len, .. } => {
                    if !self.faults.is_empty() {
                        let code = self.faults.remove(0);
                        self.s.file_send_failed(code);
                        continue;
                    }
                    let Some((_, data)) = self.open.as_ref() else {
                        self.s.file_send_failed(Code::STORAGE);
                        continue;
                    };
                    let at = (at as usize).min(data.len());
                    let mut n = len.min(data.len() - at);
                    if let Some(w) = self.window {
                        n = n.min(w);
                    }
                    if n == 0 && at == data.len() {
                        // The file ended early.
                        self.s.file_send_failed(Code::CHANGED);
                        continue;
                    }
                    if n == 0 {
                        self.waiting = Some(action);
                        return self;
                    }
                    self.sent.extend_from_slice(&data[at..at + n]);
                    self.file_sent += n as u64;
                    if let Some(w) = &mut self.window {
                        *w -= n;
                    }
                    self.s.sent(n);
                }
                Action::Send { .. } => {
                    let out = self.s.output();
                    self.max_output = self.max_output.max(out.len());
                    let n = match self.window {
                        Some(w) => out.len().min(w),
                        None => out.len(),
                    };
                    if n == 0 {
                        self.waiting = Some(action);
                        return self;
                    }
                    self.sent.extend_from_slice(&out[..n]);
                    if let Some(w) = &mut self.window {
                        *w -= n;
                    }
                    self.s.sent(n);
                }
                Action::Receive { .. } => {
                    if self.inbox.is_empty() {
                        if self.fast && self.s.is_idle() {
                            self.lent = Some(self.s.take_buffers());
                        }
                        if self.eof {
                            self.s.eof();
                            continue;
                        }
                        self.waiting = Some(action);
                        return self;
                    }
                    if self.fast {
                        if let Some(b) = self.lent.take() {
                            self.s.give_buffers(b);
                        }
                        let direct = self.s.upload_direct();
                        if direct > 0 {
                            let n = direct.min(self.inbox.len());
                            let data: Vec<u8> = self.inbox.drain(..n).collect();
                            self.s.received_upload(&data);
                            if !self.faults.is_empty() {
                                self.ops.push("write failed".into());
                                let code = self.faults.remove(0);
                                self.s.upload_failed(code);
                            } else if let Some(up) = self.upload.as_mut() {
                                up.1.extend(data);
                            }
                            continue;
                        }
                    }
                    let space = self.s.input_space();
                    let n = space.len().min(self.inbox.len());
                    space[..n].copy_from_slice(&self.inbox[..n]);
                    self.inbox.drain(..n);
                    self.s.received(n);
                }
                Action::Drain { .. } => {
                    self.waiting = Some(action);
                    return self;
                }
                Action::Finished(_) => {
                    self.waiting = Some(action);
                    return self;
                }
                Action::List if !self.faults.is_empty() => {
                    self.ops.push("list failed".into());
                    let code = self.faults.remove(0);
                    self.s.listed(Err(code));
                }
                Action::ReadFile { .. } if !self.faults.is_empty() => {
                    let code = self.faults.remove(0);
                    self.s.file_read(Err(code));
                }
                Action::WriteUpload if !self.faults.is_empty() => {
                    self.ops.push("write failed".into());
                    let code = self.faults.remove(0);
                    self.s.upload_written(Err(code));
                }
                Action::CommitUpload if !self.faults.is_empty() => {
                    self.ops.push("commit failed".into());
                    self.upload = None;
                    let code = self.faults.remove(0);
                    self.s.upload_committed(Err(code));
                }
                Action::List => {
                    self.ops.push("list".into());
                    // The files directly in the served folder (a `dir` lists no folder).
                    let entries = self
                        .files
                        .iter()
                        .filter(|(n, _)| !n.contains('/'))
                        .map(|(n, d)| Entry {
                            size: d.len() as u64,
                            mtime: self.mtime,
                            name: FileName::new(n).expect("names in the folder are valid"),
                        })
                        .collect();
                    self.s.listed(Ok(entries));
                }
                Action::OpenRead { name, .. } => {
                    self.ops.push(format!("open {name}"));
                    match self.files.get(name.as_str()) {
                        Some(d) => {
                            let digest = match self.cache {
                                true => self.digests.get(name.as_str()).copied(),
                                false => None,
                            };
                            self.open = Some((name.as_str().to_owned(), d.clone()));
                            self.s.opened(Ok(FileMeta {
                                size: d.len() as u64,
                                mtime: self.mtime,
                                digest,
                            }));
                        }
                        None => self.s.opened(Err(Code::NOT_FOUND)),
                    }
                }
                Action::ReadFile { at, len } => {
                    let Some((_, data)) = self.open.as_ref() else {
                        self.s.file_read(Err(Code::STORAGE));
                        continue;
                    };
                    self.read_octets += len as u64;
                    let at = (at as usize).min(data.len());
                    let n = len.min(data.len() - at);
                    if self.fast {
                        let mut buf = vec![0; HEAD_ROOM + len];
                        buf[HEAD_ROOM..HEAD_ROOM + n].copy_from_slice(&data[at..at + n]);
                        let _spare = self.s.swap_file_buffer(buf);
                    } else {
                        let space = self.s.file_space();
                        assert_eq!(space.len(), len, "file_space is as long as ReadFile asked");
                        space[..n].copy_from_slice(&data[at..at + n]);
                    }
                    self.s.file_read(Ok(n));
                }
                Action::CheckUnchanged => self.s.checked(Ok(!self.changed)),
                Action::RememberDigest(digest) => {
                    self.ops.push("remember-digest".into());
                    if let (true, Some((name, _))) = (self.cache, &self.open) {
                        self.digests.insert(name.clone(), digest);
                    }
                }
                Action::CloseFile => {
                    self.ops.push("close-file".into());
                    self.open = None;
                }
                Action::BeginUpload { name, size, mode } => {
                    self.ops.push(format!("begin {name} {size}"));
                    if !self.folder_of_exists(&name) {
                        // TREE-5: a put into a folder that does not exist.
                        self.s.upload_begun(Err(Code::NOT_FOUND));
                        continue;
                    }
                    if mode == PutMode::New && self.files.contains_key(name.as_str()) {
                        // PUT-2: `new` refuses a name that is taken.
                        self.s.upload_begun(Err(Code::EXISTS));
                        continue;
                    }
                    self.upload = Some((name.as_str().to_owned(), Vec::new()));
                    self.s.upload_begun(Ok(()));
                }
                Action::WriteUpload => {
                    let data = self.s.upload_data().to_vec();
                    match self.upload.as_mut() {
                        Some(up) => {
                            up.1.extend(data);
                            self.s.upload_written(Ok(()));
                        }
                        None => self.s.upload_written(Err(Code::STORAGE)),
                    }
                }
                Action::CommitUpload => {
                    self.ops.push("commit".into());
                    match self.upload.take() {
                        Some((name, data)) => {
                            self.digests.remove(&name);
                            self.files.insert(name, data);
                            self.s.upload_committed(Ok(()));
                        }
                        None => self.s.upload_committed(Err(Code::STORAGE)),
                    }
                }
                Action::DiscardUpload => {
                    self.ops.push("discard".into());
                    self.upload = None;
                }
                Action::Tree(op) => {
                    let done = self.tree(op);
                    self.s.tree_done(done);
                }
                Action::StoreUploads => {
                    self.store_steps += 1;
                    let uploads = if self.fast {
                        self.s.take_uploads()
                    } else {
                        self.s.uploads().to_vec()
                    };
                    let results: Vec<_> = uploads.into_iter().map(|u| self.store(u)).collect();
                    self.s.uploads_stored(&results);
                }
            }
        }
    }

    /// One upload of [`Action::StoreUploads`].
    fn store(&mut self, u: EagerUpload) -> Result<(), Code> {
        let (name, size) = (u.name.as_str(), u.size);
        if !self.folder_of_exists(&u.name) {
            self.ops.push(format!("store {name} {size}: no folder"));
            Err(Code::NOT_FOUND)
        } else if u.mode == PutMode::New && self.files.contains_key(name) {
            // PUT-2: `new` refuses a name that is taken.
            self.ops.push(format!("store {name} {size}: exists"));
            Err(Code::EXISTS)
        } else if !u.commit {
            self.ops.push(format!("store {name} {size}: dropped"));
            Ok(())
        } else if !self.faults.is_empty() {
            self.ops.push(format!("store {name} {size}: failed"));
            Err(self.faults.remove(0))
        } else {
            self.ops.push(format!("store {name} {size}"));
            self.digests.remove(name);
            self.files.insert(name.to_owned(), u.data);
            Ok(())
        }
    }

    /// Whether the folder `path` is in exists (the served folder always does).
    fn folder_of_exists(&self, path: &TreePath) -> bool {
        match path.split_last().0 {
            Some(folder) => self.folders.contains(folder.as_str()),
            None => true,
        }
    }

    /// An operation of the `tree` extension on the folder in memory (as ferry-store's
    /// `Root::tree` does it on disk: TREE-6 to TREE-11). A fault of [`Harness::faults`] fails
    /// it.
    fn tree(&mut self, op: TreeOp) -> Result<TreeDone, Code> {
        self.ops.push(match &op {
            TreeOp::List { folder, .. } => format!("list {folder}"),
            TreeOp::Mkdir(p) => format!("mkdir {p}"),
            TreeOp::Rmdir(p) => format!("rmdir {p}"),
            TreeOp::Delete(p) => format!("delete {p}"),
            TreeOp::Rename { from, to } => format!("rename {from} {to}"),
        });
        if !self.faults.is_empty() {
            return Err(self.faults.remove(0));
        }
        let within = |key: &str, folder: &str| {
            key.len() > folder.len()
                && key.starts_with(folder)
                && key.as_bytes()[folder.len()] == b'/'
        };
        match op {
            TreeOp::List {
                folder,
                options,
                budget,
            } => {
                let prefix = match &folder {
                    Folder::Root => String::new(),
                    Folder::Path(p) if self.files.contains_key(p.as_str()) => {
                        return Err(tree_wire::WRONG_KIND);
                    }
                    Folder::Path(p) if !self.folders.contains(p.as_str()) => {
                        return Err(Code::NOT_FOUND);
                    }
                    Folder::Path(p) => format!("{p}/"),
                };
                let relative = |key: &str| {
                    let rel = key.strip_prefix(prefix.as_str())?;
                    (options.recursive || !rel.contains('/')).then(|| TreePath::new(rel).ok())?
                };
                let mut entries = Vec::new();
                for (key, data) in &self.files {
                    if let Some(path) = relative(key) {
                        let digest = options.digests.then(|| {
                            let mut h = Hasher::new();
                            h.update(data);
                            h.digest()
                        });
                        entries.push(ListEntry {
                            kind: EntryKind::File {
                                size: data.len() as u64,
                                digest,
                            },
                            mtime: self.mtime,
                            path,
                        });
                    }
                }
                for key in &self.folders {
                    if let Some(path) = relative(key) {
                        entries.push(ListEntry {
                            kind: EntryKind::Folder,
                            mtime: self.mtime,
                            path,
                        });
                    }
                }
                entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
                if entries.iter().map(entry_cost).sum::<usize>() > budget {
                    return Err(Code::STORAGE);
                }
                Ok(TreeDone::Listing(entries))
            }
            TreeOp::Mkdir(p) => {
                let key = p.as_str();
                if self.files.contains_key(key) || self.folders.contains(key) {
                    return Err(Code::EXISTS);
                }
                if !self.folder_of_exists(&p) {
                    return Err(Code::NOT_FOUND);
                }
                self.folders.insert(key.to_owned());
                Ok(TreeDone::Done)
            }
            TreeOp::Rmdir(p) => {
                let key = p.as_str();
                if self.files.contains_key(key) {
                    return Err(tree_wire::WRONG_KIND);
                }
                if !self.folders.contains(key) {
                    return Err(Code::NOT_FOUND);
                }
                if self
                    .files
                    .keys()
                    .chain(&self.folders)
                    .any(|k| within(k, key))
                {
                    return Err(tree_wire::NOT_EMPTY);
                }
                self.folders.remove(key);
                Ok(TreeDone::Done)
            }
            TreeOp::Delete(p) => {
                let key = p.as_str();
                if self.folders.contains(key) {
                    return Err(tree_wire::WRONG_KIND);
                }
                self.digests.remove(key);
                match self.files.remove(key) {
                    Some(_) => Ok(TreeDone::Done),
                    None => Err(Code::NOT_FOUND),
                }
            }
            TreeOp::Rename { from, to } => {
                let (f, t) = (from.as_str(), to.as_str());
                let file = self.files.contains_key(f);
                if !file && !self.folders.contains(f) {
                    return Err(Code::NOT_FOUND);
                }
                if self.files.contains_key(t) || self.folders.contains(t) {
                    return Err(Code::EXISTS);
                }
                if !self.folder_of_exists(&to) {
                    return Err(Code::NOT_FOUND);
                }
                let moved = |key: &str| format!("{t}{}", &key[f.len()..]);
                let files: Vec<String> = self
                    .files
                    .keys()
                    .filter(|k| k.as_str() == f || within(k, f))
                    .cloned()
                    .collect();
                for key in files {
                    if let Some(data) = self.files.remove(&key) {
                        self.digests.remove(&key);
                        self.files.insert(moved(&key), data);
                    }
                }
                let folders: Vec<String> = self
                    .folders
                    .iter()
                    .filter(|k| k.as_str() == f || within(k, f))
                    .cloned()
                    .collect();
                for key in folders {
                    self.folders.remove(&key);
                    self.folders.insert(moved(&key));
                }
                Ok(TreeDone::Done)
            }
        }
    }

    /// Lets `d` pass; a wait whose deadline passed times out.
    pub fn wait(&mut self, d: Duration) -> &mut Self {
        self.now += d;
        let due = match &self.waiting {
            Some(
                Action::Send { deadline }
                | Action::SendFile { deadline, .. }
                | Action::Receive { deadline },
            ) => *deadline <= self.now,
            Some(Action::Drain { until }) => *until <= self.now,
            _ => false,
        };
        if due {
            self.s.timed_out(self.now);
        }
        self.run()
    }

    /// What the session sent, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.sent).into_owned()
    }

    /// What was sent after the greeting.
    pub fn replies(&self) -> String {
        let text = self.text();
        match text.find('\n') {
            Some(lf) => text[lf + 1..].to_owned(),
            None => String::new(),
        }
    }

    /// How the session ended, once it did.
    pub fn finished(&self) -> Option<End> {
        match &self.waiting {
            Some(Action::Finished(end)) => Some(end.clone()),
            _ => None,
        }
    }

    /// Whether the session is draining (its last words sent).
    pub fn draining(&self) -> bool {
        matches!(self.waiting, Some(Action::Drain { .. }))
    }
}
