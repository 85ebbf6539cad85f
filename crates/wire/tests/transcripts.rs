//! Known-answer tests from the spec: every transcript of `spec/examples/` is replayed
//! through the codec. Each client and server line must decode (except lines marked
//! `# invalid`, which must be rejected), re-encode to the same octets, and the two sides must
//! make sense together: one reply per request in order, payload sizes and digests that match
//! the files, listings that match the folder, and errors with the code the codec assigns.
//!
//! The transcripts of the `tree` extension (`@server tree`, section 17) are read with the
//! extension's decoders (its verbs always, `get`/`put` with a path after `ok enable tree`),
//! and checked against a model of the served folder's tree: `list` shows exactly the model's
//! entries, and each `mkdir`, `rmdir`, `delete`, `rename` and `list` gets the reply section 17
//! prescribes for the model's state.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ferry_transcript::{Action, Side, Transcript};
use ferry_wire::tree::{
    self, EntryKind, Folder, ListEntry, TreeReply, TreeRequest, decode_list_entry,
    decode_tree_reply, decode_tree_request, is_tree_verb,
};
use ferry_wire::{
    Code, DecodeError, Digest, Hasher, Hello, InvalidKind, PayloadReceiver, PutFlow, PutMode,
    Reply, Request, Step, TreePath, decode_entry, decode_hello, decode_reply, decode_request,
};

fn spec_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec")
}

fn transcripts() -> Vec<Transcript> {
    let all = Transcript::read_dir(&spec_dir().join("examples")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        all.len() >= 20,
        "expected the spec's transcripts, found {}",
        all.len()
    );
    all
}

/// Octets of one side with `# invalid` steps recorded by their start offset.
struct Stream {
    bytes: Vec<u8>,
    invalid_at: BTreeSet<usize>,
    closes: bool,
}

fn stream(t: &Transcript, side: Side) -> Stream {
    let mut s = Stream {
        bytes: Vec::new(),
        invalid_at: BTreeSet::new(),
        closes: false,
    };
    for step in t.steps.iter().filter(|st| st.side == side) {
        if step.invalid {
            s.invalid_at.insert(s.bytes.len());
        }
        match &step.action {
            Action::Line(b) | Action::Raw(b) => s.bytes.extend_from_slice(b),
            Action::Close => s.closes = true,
        }
    }
    s
}

type Decoder<T> = fn(&[u8]) -> Result<(T, usize), DecodeError>;

struct Cursor<'a> {
    name: &'a str,
    side: &'static str,
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn take<T: std::fmt::Debug + Clone>(
        &mut self,
        decode: Decoder<T>,
        encode: fn(&T) -> Vec<u8>,
    ) -> T {
        let (msg, used) = decode(self.rest()).unwrap_or_else(|e| {
            panic!(
                "{}: {} octet {}: {e}: {:?}",
                self.name,
                self.side,
                self.pos,
                String::from_utf8_lossy(&self.rest()[..self.rest().len().min(80)])
            )
        });
        let line = &self.rest()[..used];
        let canonical: Vec<u8> = match line.strip_suffix(b"\r\n") {
            Some(b) => [b, b"\n"].concat(),
            None => line.to_vec(),
        };
        assert_eq!(
            encode(&msg),
            canonical,
            "{}: {:?} does not re-encode to its octets",
            self.name,
            msg
        );
        self.pos += used;
        msg
    }

    /// Reads a payload of `len` octets; returns the data and the final step's description.
    fn payload(&mut self, len: u64, prefix: Hasher) -> (Vec<u8>, String) {
        let mut r = PayloadReceiver::resuming(len, prefix);
        let mut data = Vec::new();
        loop {
            match r.feed(self.rest()) {
                Ok((Step::Data(d), n)) => {
                    data.extend_from_slice(d);
                    self.pos += n;
                }
                Ok((Step::NeedMore, 0)) => return (data, "truncated".into()),
                Ok((Step::NeedMore, n)) => self.pos += n,
                Ok((Step::Complete(d), n)) => {
                    self.pos += n;
                    return (data, format!("complete {d}"));
                }
                Ok((Step::Corrupt { .. }, n)) => {
                    self.pos += n;
                    return (data, "corrupt".into());
                }
                Ok((Step::Aborted(e), n)) => {
                    self.pos += n;
                    return (data, format!("abort {}", e.code));
                }
                Err(e) => return (data, format!("framing error: {e}")),
            }
        }
    }
}

fn hello_bytes(h: &Hello) -> Vec<u8> {
    h.to_bytes()
}
fn reply_bytes(r: &Reply) -> Vec<u8> {
    r.to_bytes()
}
fn request_bytes(r: &Request) -> Vec<u8> {
    r.to_bytes()
}
fn entry_bytes(e: &ferry_wire::Entry) -> Vec<u8> {
    e.to_bytes()
}
fn tree_request_bytes(r: &TreeRequest) -> Vec<u8> {
    r.encode()
}
fn tree_reply_bytes(r: &TreeReply) -> Vec<u8> {
    r.encode()
}
fn list_entry_bytes(e: &ListEntry) -> Vec<u8> {
    e.encode()
}

#[derive(Default)]
struct Seen {
    codes: BTreeSet<u16>,
    requests: BTreeSet<&'static str>,
}

/// The served folder as the session leaves it so far: files and folders by path, each with
/// its MTIME when the transcript can know it (`None`: made, or changed, during the session).
#[derive(Default)]
struct Tree {
    files: BTreeMap<String, (Vec<u8>, Option<String>)>,
    folders: BTreeMap<String, Option<String>>,
}

/// The folder that holds `path`; `None` for the served folder.
fn parent(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(p, _)| p)
}

/// `path` relative to `folder` (`None`: the served folder), if it lies inside it.
fn relative<'a>(path: &'a str, folder: Option<&str>) -> Option<&'a str> {
    match folder {
        None => Some(path),
        Some(f) => path.strip_prefix(f)?.strip_prefix('/'),
    }
}

impl Tree {
    fn is_folder(&self, path: Option<&str>) -> bool {
        path.is_none_or(|p| self.folders.contains_key(p))
    }

    fn exists(&self, path: &str) -> bool {
        self.files.contains_key(path) || self.folders.contains_key(path)
    }

    /// A change inside the folder that holds `path` gives that folder a new MTIME.
    fn touch_parent(&mut self, path: &str) {
        if let Some(p) = parent(path) {
            self.folders.insert(p.to_owned(), None);
        }
    }

    fn has_entries(&self, folder: &str) -> bool {
        let inside = |p: &String| relative(p, Some(folder)).is_some();
        self.files.keys().any(inside) || self.folders.keys().any(inside)
    }

    /// What `list` of `folder` shows, as lines, in TREE-6's order; `Err` names an entry whose
    /// MTIME the transcript cannot know.
    fn listing(
        &self,
        folder: Option<&str>,
        options: tree::ListOptions,
    ) -> Result<Vec<Vec<u8>>, String> {
        let mut out = Vec::new();
        let take = |p: &String| {
            relative(p, folder)
                .filter(|r| options.recursive || !r.contains('/'))
                .map(str::to_owned)
        };
        let mtime = |m: &Option<String>, p: &str| {
            m.clone()
                .ok_or_else(|| format!("{p} was made or changed in the session"))
        };
        for (p, m) in &self.folders {
            if let Some(r) = take(p) {
                out.push((r.clone(), format!("d - {} - {r}\n", mtime(m, p)?)));
            }
        }
        for (p, (content, m)) in &self.files {
            if let Some(r) = take(p) {
                let digest = if options.digests {
                    Digest::of(content).to_string()
                } else {
                    "-".to_owned()
                };
                let line = format!("f {} {} {digest} {r}\n", content.len(), mtime(m, p)?);
                out.push((r, line));
            }
        }
        out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Ok(out.into_iter().map(|(_, l)| l.into_bytes()).collect())
    }

    /// Moves `from` (and, for a folder, everything in it) to `to`.
    fn rename(&mut self, from: &str, to: &str) {
        let moved = |p: &str| -> Option<String> {
            if p == from {
                Some(to.to_owned())
            } else {
                relative(p, Some(from)).map(|r| format!("{to}/{r}"))
            }
        };
        let files = std::mem::take(&mut self.files);
        self.files = files
            .into_iter()
            .map(|(p, v)| (moved(&p).unwrap_or(p), v))
            .collect();
        let folders = std::mem::take(&mut self.folders);
        self.folders = folders
            .into_iter()
            .map(|(p, m)| match moved(&p) {
                // A moved folder's own MTIME is the file system's business (its `..`).
                Some(q) if p == from => (q, None),
                Some(q) => (q, m),
                None => (p, m),
            })
            .collect();
        self.touch_parent(from);
        self.touch_parent(to);
    }
}

/// A client request, whichever decoder read it.
#[derive(Debug)]
enum Op {
    V1(Request),
    Tree(TreeRequest),
}

/// A server reply to one: ferry/1's (errors, `ok get`, `go`, `ok put` included) or the
/// extension's.
#[derive(Debug)]
enum Answer {
    V1(Reply),
    Tree(TreeReply),
}

/// The reply section 17 prescribes for a request of the extension in the state `model`:
/// `Ok(())` for its `ok`, else the acceptable codes.
fn expected_tree_reply(
    req: &TreeRequest,
    model: &Tree,
    offered: bool,
) -> Result<(), &'static [u16]> {
    if !offered {
        return Err(&[503]);
    }
    let kind = |p: &TreePath| {
        let p = p.as_str();
        (model.files.contains_key(p), model.folders.contains_key(p))
    };
    match req {
        TreeRequest::Enable(ext) if ext.as_str() == tree::EXTENSION => Ok(()),
        TreeRequest::Enable(_) => Err(&[503]),
        TreeRequest::List { folder, .. } => match folder.path().map(kind) {
            None | Some((_, true)) => Ok(()),
            Some((true, _)) => Err(&[518]),
            Some(_) => Err(&[511]),
        },
        TreeRequest::Mkdir(p) => {
            if model.exists(p.as_str()) {
                Err(&[512])
            } else if !model.is_folder(parent(p.as_str())) {
                Err(&[511])
            } else {
                Ok(())
            }
        }
        TreeRequest::Rmdir(p) => match kind(p) {
            (true, _) => Err(&[518]),
            (_, true) if model.has_entries(p.as_str()) => Err(&[517]),
            (_, true) => Ok(()),
            _ => Err(&[511]),
        },
        TreeRequest::Delete(p) => match kind(p) {
            (true, _) => Ok(()),
            (_, true) => Err(&[518]),
            _ => Err(&[511]),
        },
        TreeRequest::Rename { from, to } => {
            if to.is_within(from) {
                return Err(&[510]);
            }
            let missing = !model.exists(from.as_str()) || !model.is_folder(parent(to.as_str()));
            match (missing, model.exists(to.as_str())) {
                (true, true) => Err(&[511, 512]),
                (true, false) => Err(&[511]),
                (false, true) => Err(&[512]),
                (false, false) => Ok(()),
            }
        }
        TreeRequest::Get { .. } | TreeRequest::Put { .. } => unreachable!("read as Op::V1"),
    }
}

/// A `get` or `put`: of a name in ferry/1, of a path after `ok enable tree` (TREE-5).
enum Transfer {
    Get {
        offset: u64,
        path: String,
    },
    Put {
        size: u64,
        mode: PutMode,
        flow: PutFlow,
        path: String,
    },
}

/// The `@folder` and `@file` fixtures as a [`Tree`]; every folder of a path is declared by
/// an earlier `@folder` (spec/examples/README.md).
fn fixtures(t: &Transcript, name: &str) -> Tree {
    let mut model = Tree::default();
    if !t.folders.is_empty() {
        assert!(t.tree(), "{name}: @folder without @server tree");
    }
    let valid = |p: &str| {
        TreePath::new(p).unwrap_or_else(|e| panic!("{name}: fixture path {p:?}: {e}"));
        assert!(
            t.tree() || !p.contains('/'),
            "{name}: the path {p:?} needs @server tree"
        );
    };
    for f in &t.folders {
        valid(&f.path);
        assert!(
            model.is_folder(parent(&f.path)) && !model.exists(&f.path),
            "{name}: @folder {}: its folder is not declared before it, or it is declared twice",
            f.path
        );
        model.folders.insert(f.path.clone(), Some(f.mtime.clone()));
    }
    for f in &t.files {
        if !t.is_illustrative() || f.name.contains('/') {
            valid(&f.name);
        }
        assert!(
            model.is_folder(parent(&f.name)) && !model.exists(&f.name),
            "{name}: @file {}: its folder is not declared by a @folder, or it is declared twice",
            f.name
        );
        model
            .files
            .insert(f.name.clone(), (f.content.clone(), Some(f.mtime.clone())));
    }
    model
}

/// What a request of the extension leaves to do.
enum Flow {
    /// Read the next request.
    Next,
    /// `ok enable tree`: `get` and `put` read a path from now on.
    Enabled,
    /// The server closed the session.
    End,
}

/// Reads the reply to `req` (a request of the extension, not `get`/`put`), checks it against
/// `model` and applies it.
#[allow(clippy::too_many_arguments)]
fn tree_exchange(
    name: &str,
    req: &TreeRequest,
    s: &mut Cursor<'_>,
    server_closes: bool,
    model: &mut Tree,
    offered: bool,
    exact: bool,
    seen: &mut Seen,
) -> Flow {
    seen.requests.insert(match req {
        TreeRequest::Enable(_) => "enable",
        TreeRequest::List { .. } => "list",
        TreeRequest::Mkdir(_) => "mkdir",
        TreeRequest::Rmdir(_) => "rmdir",
        TreeRequest::Delete(_) => "delete",
        TreeRequest::Rename { .. } => "rename",
        TreeRequest::Get { .. } | TreeRequest::Put { .. } => unreachable!("a transfer"),
    });
    let answer = if decode_tree_reply(s.rest()).is_ok() {
        Answer::Tree(s.take(decode_tree_reply, tree_reply_bytes))
    } else {
        Answer::V1(s.take(decode_reply, reply_bytes))
    };
    let expected = expected_tree_reply(req, model, offered);
    let r = match answer {
        Answer::V1(Reply::Err(e)) => {
            seen.codes.insert(e.code.get());
            if e.code.closes_connection() {
                assert!(s.at_end() && server_closes, "{name}: {} must close", e.code);
                return Flow::End;
            }
            if exact {
                assert!(
                    expected.is_err_and(|codes| codes.contains(&e.code.get())),
                    "{name}: {req:?} answered {} where section 17 says {expected:?}",
                    e.code
                );
            }
            return Flow::Next;
        }
        Answer::V1(r) => panic!("{name}: {req:?} answered {r:?}"),
        Answer::Tree(r) => r,
    };
    if exact {
        assert_eq!(
            expected,
            Ok(()),
            "{name}: {req:?} answered {r:?} where section 17 says an error"
        );
    }
    let touch = |model: &mut Tree, p: &TreePath| model.touch_parent(p.as_str());
    match (req, r) {
        (TreeRequest::Enable(e), TreeReply::Enabled(got)) => {
            assert_eq!(e, &got, "{name}");
            return Flow::Enabled;
        }
        (TreeRequest::List { options, folder }, TreeReply::ListOk { count }) => {
            let mut lines = Vec::new();
            let mut last: Option<TreePath> = None;
            for _ in 0..count {
                let e = s.take(decode_list_entry, list_entry_bytes);
                if let EntryKind::File { digest, .. } = e.kind {
                    assert!(
                        options.digests || digest.is_none(),
                        "{name}: a digest without `digests` (TREE-7)"
                    );
                }
                assert!(
                    last.as_ref()
                        .is_none_or(|l| l.as_bytes() < e.path.as_bytes()),
                    "{name}: listing not in octet order at {}",
                    e.path
                );
                last = Some(e.path.clone());
                lines.push(String::from_utf8_lossy(&e.encode()).into_owned());
            }
            if exact {
                let folder = match folder {
                    Folder::Root => None,
                    Folder::Path(p) => Some(p.as_str()),
                };
                let want: Vec<String> = model
                    .listing(folder, *options)
                    .unwrap_or_else(|e| {
                        panic!(
                            "{name}: a listing would show an entry whose MTIME is not known: {e}"
                        )
                    })
                    .iter()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
                    .collect();
                assert_eq!(lines, want, "{name}: listing vs folder");
            }
        }
        (TreeRequest::Mkdir(p), TreeReply::Mkdir) => {
            model.folders.insert(p.as_str().to_owned(), None);
            touch(model, p);
        }
        (TreeRequest::Rmdir(p), TreeReply::Rmdir) => {
            model.folders.remove(p.as_str());
            touch(model, p);
        }
        (TreeRequest::Delete(p), TreeReply::Delete) => {
            model.files.remove(p.as_str());
            touch(model, p);
        }
        (TreeRequest::Rename { from, to }, TreeReply::Rename) => {
            model.rename(from.as_str(), to.as_str());
        }
        (req, r) => panic!("{name}: {req:?} answered {r:?}"),
    }
    Flow::Next
}

fn replay(t: &Transcript, seen: &mut Seen) {
    let name = t
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name.as_str();
    let client = stream(t, Side::Client);
    let server = stream(t, Side::Server);
    let mut c = Cursor {
        name,
        side: "client",
        buf: &client.bytes,
        pos: 0,
    };
    let mut s = Cursor {
        name,
        side: "server",
        buf: &server.bytes,
        pos: 0,
    };
    // Illustrative transcripts show faults a model of the folder does not know.
    let exact = !t.is_illustrative();
    let mut model = fixtures(t, name);

    let greeting = match s.take(decode_hello, hello_bytes) {
        Hello::Greeting(g) => g,
        Hello::Refused(e) => {
            seen.codes.insert(e.code.get());
            assert!(e.code.closes_connection(), "{name}: refusal must close");
            assert!(
                s.at_end() && server.closes,
                "{name}: nothing may follow a refusal"
            );
            return;
        }
    };
    if let Some(v) = t.server_option("max-size") {
        assert_eq!(
            greeting.limits().max_size.to_string(),
            v,
            "{name}: greeting vs @server"
        );
    }
    if let Some(v) = t.server_option("max-eager") {
        assert_eq!(
            greeting.limits().max_eager.to_string(),
            v,
            "{name}: greeting vs @server"
        );
    }
    let offered = tree::offered(&greeting);
    assert_eq!(
        offered,
        t.tree(),
        "{name}: the greeting lists tree exactly under @server tree"
    );
    let mut enabled = false;

    while !c.at_end() {
        let start = c.pos;
        // The extension's verbs are read by its decoder, and so are get and put once the
        // server has answered `ok enable tree` (TREE-5).
        let by_tree = is_tree_verb(c.rest())
            || (enabled && (c.rest().starts_with(b"get ") || c.rest().starts_with(b"put ")));
        let decoded = if by_tree {
            decode_tree_request(c.rest()).map(|_| ())
        } else {
            decode_request(c.rest()).map(|_| ())
        };
        let op = match decoded {
            Ok(()) => {
                assert!(
                    !client.invalid_at.contains(&start),
                    "{name}: line marked invalid decodes"
                );
                if by_tree {
                    Op::Tree(c.take(decode_tree_request, tree_request_bytes))
                } else {
                    Op::V1(c.take(decode_request, request_bytes))
                }
            }
            Err(e) => {
                assert!(
                    client.invalid_at.contains(&start),
                    "{name}: client line at {start} is invalid: {e}"
                );
                let DecodeError::Invalid(inv) = e else {
                    panic!("{name}: truncated client line")
                };
                let reply = s.take(decode_reply, reply_bytes);
                let Reply::Err(err) = reply else {
                    panic!("{name}: invalid request answered {reply:?}")
                };
                seen.codes.insert(err.code.get());
                // PUT-8 before ERR-6's 510: an eager put above max-eager gets 502 whatever
                // its name, and its payload is not read.
                let max_eager = greeting.limits().max_eager;
                let expected = match inv.kind {
                    InvalidKind::BadName {
                        put: Some(head), ..
                    } if head.flow == PutFlow::Now && (max_eager == 0 || head.size > max_eager) => {
                        Code::PROTOCOL
                    }
                    _ => inv.reply_code(),
                };
                assert_eq!(err.code, expected, "{name}: reply code for {inv}");
                if err.code.closes_connection() {
                    assert!(
                        s.at_end() && server.closes,
                        "{name}: {} must close the connection",
                        err.code
                    );
                    return;
                }
                match (inv.line_len, inv.kind) {
                    (
                        Some(len),
                        InvalidKind::BadName {
                            put: Some(head), ..
                        },
                    ) if head.flow == PutFlow::Now => {
                        c.pos += len;
                        let (_, end) = c.payload(head.size, Hasher::new());
                        assert!(
                            !end.starts_with("framing"),
                            "{name}: discarded payload: {end}"
                        );
                    }
                    (Some(len), _) if !err.code.closes_connection() => c.pos += len,
                    _ => {
                        assert!(
                            s.at_end() && server.closes,
                            "{name}: {} must close the connection",
                            err.code
                        );
                        return;
                    }
                }
                continue;
            }
        };
        let transfer = match op {
            Op::V1(Request::Get { offset, name: f }) => Transfer::Get {
                offset,
                path: f.into_string(),
            },
            Op::Tree(TreeRequest::Get { offset, path }) => Transfer::Get {
                offset,
                path: path.into_string(),
            },
            Op::V1(Request::Put {
                size,
                mode,
                flow,
                name: f,
            }) => Transfer::Put {
                size,
                mode,
                flow,
                path: f.into_string(),
            },
            Op::Tree(TreeRequest::Put {
                size,
                mode,
                flow,
                path,
            }) => Transfer::Put {
                size,
                mode,
                flow,
                path: path.into_string(),
            },
            Op::Tree(req) => {
                match tree_exchange(
                    name,
                    &req,
                    &mut s,
                    server.closes,
                    &mut model,
                    offered,
                    exact,
                    seen,
                ) {
                    Flow::Next => {}
                    Flow::Enabled => enabled = true,
                    Flow::End => return,
                }
                continue;
            }
            Op::V1(req) => {
                let reply = s.take(decode_reply, reply_bytes);
                match (&req, reply) {
                    (Request::Dir, Reply::DirOk { count }) => {
                        seen.requests.insert("dir");
                        let mut names = Vec::new();
                        for _ in 0..count {
                            let e = s.take(decode_entry, entry_bytes);
                            if let Some((content, mtime)) = model.files.get(e.name.as_str()) {
                                assert_eq!(
                                    e.size,
                                    content.len() as u64,
                                    "{name}: size of {}",
                                    e.name
                                );
                                if exact {
                                    assert_eq!(
                                        mtime.as_deref(),
                                        Some(e.mtime.to_string().as_str()),
                                        "{name}: MTIME of {} (an upload's is not known)",
                                        e.name
                                    );
                                }
                            }
                            names.push(e.name.into_string());
                        }
                        let mut sorted = names.clone();
                        sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                        assert_eq!(names, sorted, "{name}: listing not in octet order");
                        if exact {
                            let files: Vec<String> = model
                                .files
                                .keys()
                                .filter(|p| !p.contains('/'))
                                .cloned()
                                .collect();
                            assert_eq!(names, files, "{name}: listing vs folder");
                        }
                    }
                    (Request::Version(v), Reply::VersionOk(got)) => {
                        seen.requests.insert("version");
                        assert_eq!(*v, got, "{name}");
                    }
                    (Request::Close, Reply::Bye) => {
                        seen.requests.insert("close");
                        assert!(
                            s.at_end() && server.closes,
                            "{name}: bye must end the session"
                        );
                        assert!(c.at_end(), "{name}: nothing after close");
                        return;
                    }
                    (_, Reply::Err(e)) => {
                        seen.codes.insert(e.code.get());
                        if e.code.closes_connection() {
                            assert!(s.at_end() && server.closes, "{name}: {} must close", e.code);
                            return;
                        }
                    }
                    (r, reply) => panic!("{name}: {r:?} answered {reply:?}"),
                }
                continue;
            }
        };
        let reply = s.take(decode_reply, reply_bytes);
        match (&transfer, reply) {
            (Transfer::Get { offset, path: file }, Reply::GetOk { size, mtime }) => {
                seen.requests.insert("get");
                assert!(*offset <= size, "{name}: ok for an offset past the end");
                let known = model.files.get(file.as_str()).cloned();
                if exact {
                    let (_, known_mtime) = known
                        .as_ref()
                        .unwrap_or_else(|| panic!("{name}: ok get of {file}, not in the folder"));
                    assert_eq!(
                        known_mtime.as_deref(),
                        Some(mtime.to_string().as_str()),
                        "{name}: MTIME of {file} (an upload's is not known)"
                    );
                }
                let content = known.map(|(c, _)| c);
                let mut prefix = Hasher::new();
                if let Some(content) = &content {
                    assert_eq!(size, content.len() as u64, "{name}: size of {file}");
                    prefix.update(&content[..*offset as usize]);
                }
                let (data, end) = s.payload(size - offset, prefix);
                if end.starts_with("complete") {
                    if let Some(content) = &content {
                        assert_eq!(
                            data,
                            &content[*offset as usize..],
                            "{name}: payload of {file}"
                        );
                    }
                } else if let Some(code) = end.strip_prefix("abort ") {
                    seen.codes.insert(code.parse().expect("code"));
                } else {
                    panic!("{name}: get payload ended with {end}");
                }
                if s.at_end() {
                    assert!(server.closes, "{name}: server stream ends without close");
                    return;
                }
            }
            (Transfer::Get { path: file, .. }, Reply::Err(e)) => {
                seen.codes.insert(e.code.get());
                if exact && e.code == Code::NOT_FOUND {
                    assert!(
                        !model.files.contains_key(file.as_str()),
                        "{name}: 511 for {file}, which is in the folder"
                    );
                }
                if e.code.closes_connection() {
                    assert!(s.at_end() && server.closes, "{name}: {} must close", e.code);
                    return;
                }
            }
            (
                Transfer::Put {
                    size,
                    mode,
                    flow,
                    path: file,
                },
                first,
            ) => {
                seen.requests.insert("put");
                let final_reply = match (flow, first) {
                    (PutFlow::Wait, Reply::Go) => {
                        let (data, end) = c.payload(*size, Hasher::new());
                        if end == "truncated" {
                            return truncated_upload(
                                name,
                                &mut s,
                                server.closes,
                                client.closes,
                                seen,
                            );
                        }
                        (Some((data, end)), s.take(decode_reply, reply_bytes))
                    }
                    (PutFlow::Wait, r @ Reply::Err(_)) => (None, r),
                    (PutFlow::Now, r) => {
                        let (data, end) = c.payload(*size, Hasher::new());
                        if end == "truncated" {
                            s.pos -= r.to_bytes().len();
                            return truncated_upload(
                                name,
                                &mut s,
                                server.closes,
                                client.closes,
                                seen,
                            );
                        }
                        if end.starts_with("framing error") {
                            let Reply::Err(e) = &r else {
                                panic!("{name}: framing error accepted")
                            };
                            assert_eq!(e.code, Code::PROTOCOL, "{name}");
                            seen.codes.insert(e.code.get());
                            assert!(s.at_end() && server.closes, "{name}: 502 must close");
                            return;
                        }
                        (Some((data, end)), r)
                    }
                    (f, r) => panic!("{name}: put {f:?} answered {r:?}"),
                };
                match final_reply {
                    (Some((data, end)), Reply::PutOk { size: got, digest }) => {
                        assert_eq!(got, *size, "{name}");
                        assert_eq!(end, format!("complete {digest}"), "{name}: put verified");
                        assert_eq!(digest, Digest::of(&data), "{name}");
                        if exact {
                            assert!(
                                *mode == PutMode::Replace
                                    || !model.files.contains_key(file.as_str()),
                                "{name}: new over existing"
                            );
                            assert!(
                                model.is_folder(parent(file)) && !model.folders.contains_key(file),
                                "{name}: ok put of {file}, whose folder is missing or which is a folder"
                            );
                        }
                        model.files.insert(file.clone(), (data, None));
                        model.touch_parent(file);
                    }
                    (payload, Reply::Err(e)) => {
                        seen.codes.insert(e.code.get());
                        if exact && e.code == Code::NOT_FOUND {
                            assert!(
                                !model.is_folder(parent(file)),
                                "{name}: 511 for a put into a folder that exists"
                            );
                        }
                        if let Some((_, end)) = payload {
                            if e.code == Code::CORRUPT {
                                assert_eq!(end, "corrupt", "{name}");
                            }
                            if e.code == Code::ABORTED {
                                assert!(end.starts_with("abort"), "{name}");
                            }
                        }
                        if e.code.closes_connection() {
                            assert!(s.at_end() && server.closes, "{name}: {} must close", e.code);
                            return;
                        }
                    }
                    (_, r) => panic!("{name}: put answered {r:?}"),
                }
            }
            (Transfer::Get { .. }, reply) => panic!("{name}: get answered {reply:?}"),
        }
    }
    // The client stopped sending: what remains on the server side ends the session.
    while !s.at_end() {
        let r = s.take(decode_reply, reply_bytes);
        let Reply::Err(e) = r else {
            panic!("{name}: unsolicited {r:?}")
        };
        seen.codes.insert(e.code.get());
        assert!(
            e.code.closes_connection(),
            "{name}: unsolicited {} must close",
            e.code
        );
    }
}

/// The client's payload stops short: the client closed (EOF during upload) or stalled. The
/// server may only close, with a closing error such as `421 timeout` or silently.
fn truncated_upload(
    name: &str,
    s: &mut Cursor<'_>,
    server_closes: bool,
    client_closes: bool,
    seen: &mut Seen,
) {
    if s.at_end() {
        assert!(
            client_closes && server_closes,
            "{name}: truncated upload without a close"
        );
        return;
    }
    let r = s.take(decode_reply, reply_bytes);
    let Reply::Err(e) = r else {
        panic!("{name}: truncated upload answered {r:?}")
    };
    seen.codes.insert(e.code.get());
    assert!(
        e.code.closes_connection() && s.at_end() && server_closes,
        "{name}: after a stall only a closing error"
    );
}

#[test]
fn every_transcript_replays_through_the_codec() {
    let mut seen = Seen::default();
    for t in transcripts() {
        replay(&t, &mut seen);
    }
    let missing: Vec<u16> = Code::ALL
        .iter()
        .chain(tree::CODES)
        .map(|c| c.get())
        .filter(|c| !seen.codes.contains(c))
        .collect();
    assert!(missing.is_empty(), "codes no transcript shows: {missing:?}");
    for r in [
        "dir", "get", "put", "version", "close", "enable", "list", "mkdir", "rmdir", "delete",
        "rename",
    ] {
        assert!(
            seen.requests.contains(r),
            "no transcript shows a successful {r}"
        );
    }
}

#[test]
fn transcripts_cite_existing_requirements_and_names() {
    let spec = std::fs::read_to_string(spec_dir().join("protocol.md")).expect("protocol.md");
    let mut names = BTreeSet::new();
    for t in transcripts() {
        assert!(!t.title.is_empty(), "{}: no @title", t.path.display());
        assert!(!t.requires.is_empty(), "{}: no @requires", t.path.display());
        for id in &t.requires {
            assert!(
                spec.contains(&format!("**[{id}]**")),
                "{}: cites {id}, not in protocol.md",
                t.path.display()
            );
        }
        names.extend(t.files.iter().map(|f| f.name.clone()));
        for s in &t.steps {
            if let Action::Line(l) = &s.action {
                names.insert(String::from_utf8_lossy(l).into_owned());
            }
        }
    }
    let all: String = names.into_iter().collect();
    for n in ["射频仿真.pptx", "天线15.doc"] {
        assert!(all.contains(n), "no transcript uses {n}");
    }
}
