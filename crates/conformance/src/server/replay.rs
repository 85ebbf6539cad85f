//! The example transcripts of `spec/examples`, replayed by meaning against a running server.
//!
//! - The `@file` fixtures are uploaded first (`put replace wait`), under the case's prefix;
//!   every valid name in the client's `get`/`put` lines gets the same prefix (invalid names
//!   are sent as written), so cases and runs never collide in the shared folder.
//! - The client's octets are sent step by step as written (split writes stay split); before
//!   each client step the runner waits until the server has sent what the transcript shows
//!   so far and compares it by meaning: the greeting only needs to be valid, list version 1
//!   and announce the `@server` limits; `err` replies by code (TEXT is free, ERR-4); MTIMEs
//!   are masked (fixtures are uploaded now); payloads by octets and trailer whatever the
//!   chunking; listings only by the entries of the case's prefix (sizes and names, in order).
//! - Afterwards a new session lists the prefix: exactly the fixtures and the uploads the
//!   transcript confirms with `ok put` are visible (PUT-10, PUT-16).
//! - With `@server read-only` the transcript runs against `--read-only-server`; no fixture
//!   can be uploaded there, so listings are compared with the listing taken before the
//!   session, and must not change (SEC-10).
//! - With `@server tree` (the `tree` extension, section 17) the transcript runs against the
//!   first server (main, then extras) that offers `tree`. The `@folder` fixtures are made
//!   with `mkdir` and the `@file` fixtures put by path, in a session that sent `enable tree`,
//!   under the case's prefix: the prefix goes on the first name of every valid path of the
//!   client's requests (`rename`'s LEN follows). The extension's replies are compared by
//!   meaning too; a `list` of the served folder (`.`) by the entries of the case's prefix, a
//!   `list` of a folder whole; entries by kind, size, digest and path, MTIMEs masked. The
//!   transcript's own listings show what it leaves, so no `dir` follows the session.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use ferry_transcript::{Action, Side, Transcript};
use ferry_wire::limits::MAX_LINE;
use ferry_wire::tree::{
    self, EntryKind, Folder, TreeReply, TreeRequest, decode_list_entry, decode_tree_reply,
    decode_tree_request, is_tree_verb,
};
use ferry_wire::{
    DecodeError, FileName, Hello, InvalidKind, PutFlow, PutMode, Reply, Request, TreePath,
    decode_frame, decode_hello, decode_reply, decode_request,
};

use super::Ctx;
use super::cases::tree::{enabled_reply, expect_ok, mkdir};
use crate::case::{Done, Res, ensure, unimplemented, violation};
use crate::net::{Conn, Endpoint, Trailer, check_code, check_greeting, show, show_reply};

/// Requirements on clients only, which transcripts cite for the client lines they show; a
/// replay against a server does not check them.
pub(crate) const CLIENT_ONLY: &[&str] = &[
    "CONN-5", "HELLO-6", "HELLO-9", "HELLO-10", "HELLO-11", "VER-2", "VER-3", "EXT-3", "EXT-5",
    "NAME-8", "NAME-9", "NAME-10", "NAME-11", "NAME-12", "DIR-8", "GET-6", "GET-7", "GET-8",
    "GET-11", "PUT-1", "PUT-5", "PUT-6", "PUT-7", "PUT-20", "PUT-21", "CLOSE-2", "CLOSE-3",
    "CLOSE-7", "DATA-7", "SUM-4", "SUM-5", "PIPE-2", "PIPE-3", "PIPE-6", "ERR-3", "ERR-9",
    "ERR-10", "TIME-6", "TIME-7", "TIME-8",
];

/// Requirements the transcripts demonstrate in part only, which a replay does not check in
/// full; `uncovered.toml` says why and where they are checked: EXT-2 (which extensions a
/// server is willing to use is not observable) and TREE-4 (a path through a symbolic link,
/// a special file or a hard link needs access to the served folder; 38-tree-errors shows the
/// 511 of a missing folder and of a file used as a folder).
pub(crate) const PARTIAL: &[&str] = &["EXT-2", "TREE-4"];

/// One embedded example transcript.
#[derive(Debug)]
pub(crate) struct Example {
    /// File name without `.txt`.
    pub stem: &'static str,
    /// The parsed transcript.
    pub transcript: Transcript,
}

macro_rules! examples {
    ($($stem:literal),* $(,)?) => {
        /// The example transcripts, embedded when the runner was built.
        pub(crate) const EMBEDDED: &[(&str, &str)] = &[
            $(($stem, include_str!(concat!("../../spec/examples/", $stem, ".txt"))),)*
        ];
    };
}

examples![
    "01-dir",
    "02-get",
    "03-put-wait",
    "04-put-now",
    "05-pipelining",
    "06-resume",
    "07-crlf",
    "08-version",
    "09-version-unsupported",
    "10-busy",
    "11-idle-timeout",
    "12-stall-timeout",
    "13-shutdown",
    "14-shutdown-during-get",
    "15-get-changed",
    "16-storage-error",
    "17-no-space",
    "18-put-corrupt",
    "19-put-abort",
    "20-syntax",
    "21-line-too-long",
    "22-put-malformed",
    "23-eager-too-large",
    "24-bad-chunk",
    "25-bad-name",
    "26-not-found",
    "27-exists",
    "28-too-large",
    "29-read-only",
    "30-bad-offset",
    "31-eof-during-upload",
    "32-refused-eager-abort",
    "33-eager-too-large-bad-name",
    "34-upload-line-too-long",
    "35-name-unicode",
    "36-denied",
    "37-tree",
    "38-tree-errors",
];

/// The parsed embedded transcripts (a transcript that does not parse is left out; the
/// crate's tests check that all parse).
pub(crate) fn examples() -> &'static [Example] {
    static ALL: OnceLock<Vec<Example>> = OnceLock::new();
    ALL.get_or_init(|| {
        EMBEDDED
            .iter()
            .filter_map(|(stem, text)| {
                let mut t = Transcript::parse(text).ok()?;
                t.path = format!("spec/examples/{stem}.txt").into();
                Some(Example {
                    stem,
                    transcript: t,
                })
            })
            .collect()
    })
}

/// One server message, chunking and MTIMEs normalised away.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// The first line.
    Hello(Vec<u8>),
    /// Any reply but `ok dir` and `ok get`.
    Reply(Reply),
    /// `ok dir` and its entries (size, name), possibly filtered; `order` holds a DIR-4
    /// problem of the whole listing.
    Dir {
        entries: Vec<(u64, Vec<u8>)>,
        order: Option<String>,
    },
    /// `ok get` and its payload.
    Get {
        size: u64,
        data: Vec<u8>,
        trailer: Trailer,
    },
    /// `ok list` and its entries (kind with size and digest, path), possibly filtered; `order`
    /// holds a TREE-6 problem of the whole listing.
    List {
        entries: Vec<(EntryKind, Vec<u8>)>,
        order: Option<String>,
    },
    /// Any other reply of the `tree` extension.
    Tree(TreeReply),
    /// Something that is not a valid message: the requirement it breaks and what it was.
    Bad(&'static str, String),
}

fn describe(item: &Item) -> String {
    match item {
        Item::Hello(l) => format!("greeting {:?}", show(l.strip_suffix(b"\n").unwrap_or(l))),
        Item::Reply(r) => show_reply(r),
        Item::Dir { entries, .. } => {
            let names: Vec<String> = entries
                .iter()
                .map(|(s, n)| format!("{s} {}", show(n)))
                .collect();
            format!("ok dir with [{}]", names.join(", "))
        }
        Item::Get {
            size,
            data,
            trailer,
        } => format!(
            "ok get {size} with {} octets {:?} and {}",
            data.len(),
            show(&data[..data.len().min(24)]),
            trailer.show()
        ),
        Item::List { entries, .. } => {
            let shown: Vec<String> = entries
                .iter()
                .map(|(k, p)| match k {
                    EntryKind::Folder => format!("d {}", show(p)),
                    EntryKind::File { size, digest } => format!(
                        "f {size} {} {}",
                        digest.map_or_else(|| "-".to_owned(), |d| d.to_string()),
                        show(p)
                    ),
                })
                .collect();
            format!("ok list with [{}]", shown.join(", "))
        }
        Item::Tree(r) => show(r.encode().strip_suffix(b"\n").unwrap_or(&[])).into(),
        Item::Bad(_, m) => m.clone(),
    }
}

/// What reading the server's messages of a `@server tree` transcript needs.
#[derive(Debug, Default)]
struct TreeScope {
    /// The transcript is of the extension: its replies are messages too.
    on: bool,
    /// For each final reply of the session, in order: whether it answers `list OPTS .` (a
    /// listing of the served folder, shared with other cases: filtered as `dir` is).
    roots: Vec<bool>,
}

/// For each request of the client's octets, in order: whether it is `list OPTS .`. Payloads
/// (a line that is a `data`, `end` or `abort` frame, and its data) are not requests.
fn list_roots(client: &[u8]) -> Vec<bool> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(lf) = client[pos..].iter().position(|&b| b == b'\n') {
        let line = &client[pos..pos + lf + 1];
        pos += lf + 1;
        match decode_frame(line) {
            Ok((ferry_wire::Frame::Data(len), _)) => pos = (pos + len.as_usize()).min(client.len()),
            Ok(_) => {}
            Err(_) => out.push(matches!(
                decode_tree_request(line),
                Ok((
                    TreeRequest::List {
                        folder: Folder::Root,
                        ..
                    },
                    _
                ))
            )),
        }
    }
    out
}

/// Which entries of a listing to keep.
#[derive(Clone, Copy)]
enum Listing<'a> {
    /// Only names with this prefix.
    Prefix(&'a [u8]),
    /// All.
    Whole,
}

/// Parses the complete messages at the start of `bytes`; an incomplete tail is left out.
fn parse_items(
    bytes: &[u8],
    listing: Listing<'_>,
    check_eol: bool,
    scope: &TreeScope,
) -> (Vec<Item>, usize) {
    let mut items = Vec::new();
    let mut pos = 0;
    // Final replies read so far (not the greeting, not `go`).
    let finals = |items: &[Item]| {
        items
            .iter()
            .filter(|i| !matches!(i, Item::Hello(_) | Item::Reply(Reply::Go)))
            .count()
    };
    let line_at = |p: usize| -> Result<Option<(&[u8], usize)>, ()> {
        let window = &bytes[p..bytes.len().min(p + MAX_LINE)];
        match window.iter().position(|&b| b == b'\n') {
            Some(lf) => Ok(Some((&bytes[p..p + lf + 1], p + lf + 1))),
            None if window.len() >= MAX_LINE => Err(()),
            None => Ok(None),
        }
    };
    let bad_eol = |l: &[u8]| check_eol && l.ends_with(b"\r\n");
    macro_rules! line_or_stop {
        ($p:expr) => {
            match line_at($p) {
                Ok(Some(x)) => x,
                Ok(None) => return (items, pos),
                Err(()) => {
                    items.push(Item::Bad(
                        "FRAME-2",
                        "a line of more than 4096 octets".into(),
                    ));
                    return (items, pos);
                }
            }
        };
    }
    if pos == 0 {
        let (line, next) = line_or_stop!(0);
        items.push(Item::Hello(line.to_vec()));
        pos = next;
    }
    loop {
        let (line, next) = line_or_stop!(pos);
        if bad_eol(line) {
            items.push(Item::Bad(
                "FRAME-3",
                format!("{:?} ends with CR LF", show(line)),
            ));
            return (items, pos);
        }
        let reply = match decode_reply(line) {
            Ok((r, _)) => r,
            Err(_) if scope.on && decode_tree_reply(line).is_ok() => {
                let Ok((r, _)) = decode_tree_reply(line) else {
                    unreachable!("decoded just above")
                };
                let TreeReply::ListOk { count } = r else {
                    items.push(Item::Tree(r));
                    pos = next;
                    continue;
                };
                let root = scope.roots.get(finals(&items)).copied().unwrap_or(false);
                let mut p = next;
                let mut all = Vec::new();
                for _ in 0..count {
                    let (l, n) = line_or_stop!(p);
                    match decode_list_entry(l) {
                        Ok((e, _)) => all.push((e.kind, e.path.as_bytes().to_vec())),
                        Err(e) => {
                            items.push(Item::Bad(
                                "TREE-6",
                                format!("{:?} is not a list entry: {e}", show(l)),
                            ));
                            return (items, pos);
                        }
                    }
                    p = n;
                }
                let order = all
                    .windows(2)
                    .find(|w| w[0].1 >= w[1].1)
                    .map(|w| format!("{:?} listed before {:?}", show(&w[0].1), show(&w[1].1)));
                let entries = match listing {
                    Listing::Prefix(pre) if root => all
                        .into_iter()
                        .filter(|(_, n)| n.starts_with(pre))
                        .collect(),
                    _ => all,
                };
                items.push(Item::List { entries, order });
                pos = p;
                continue;
            }
            Err(e) => {
                items.push(Item::Bad(
                    "FRAME-6",
                    format!("{:?} is not a reply: {e}", show(line)),
                ));
                return (items, pos);
            }
        };
        match reply {
            Reply::DirOk { count } => {
                let mut p = next;
                let mut all = Vec::new();
                for _ in 0..count {
                    let (l, n) = line_or_stop!(p);
                    match ferry_wire::decode_entry(l) {
                        Ok((e, _)) => all.push((e.size, e.name.as_bytes().to_vec())),
                        Err(e) => {
                            items.push(Item::Bad(
                                "DIR-2",
                                format!("{:?} is not an entry: {e}", show(l)),
                            ));
                            return (items, pos);
                        }
                    }
                    p = n;
                }
                let order = all
                    .windows(2)
                    .find(|w| w[0].1 >= w[1].1)
                    .map(|w| format!("{:?} listed before {:?}", show(&w[0].1), show(&w[1].1)));
                let entries = match listing {
                    Listing::Prefix(pre) => all
                        .into_iter()
                        .filter(|(_, n)| n.starts_with(pre))
                        .collect(),
                    Listing::Whole => all,
                };
                items.push(Item::Dir { entries, order });
                pos = p;
            }
            Reply::GetOk { size, .. } => {
                let mut p = next;
                let mut data = Vec::new();
                let trailer = loop {
                    let (l, n) = line_or_stop!(p);
                    match decode_frame(l) {
                        Ok((ferry_wire::Frame::Data(len), _)) => {
                            if bytes.len() < n + len.as_usize() {
                                return (items, pos);
                            }
                            data.extend_from_slice(&bytes[n..n + len.as_usize()]);
                            p = n + len.as_usize();
                        }
                        Ok((ferry_wire::Frame::End(d), _)) => {
                            p = n;
                            break Trailer::End(d);
                        }
                        Ok((ferry_wire::Frame::Abort(e), _)) => {
                            p = n;
                            break Trailer::Abort(e);
                        }
                        Err(e) => {
                            items.push(Item::Bad(
                                "DATA-1",
                                format!("{:?} in a payload: {e}", show(l)),
                            ));
                            return (items, pos);
                        }
                    }
                };
                items.push(Item::Get {
                    size,
                    data,
                    trailer,
                });
                pos = p;
            }
            r => {
                items.push(Item::Reply(r));
                pos = next;
            }
        }
    }
}

/// The requirement a mismatch on `expected` breaks: the first candidate the transcript cites,
/// else the first candidate.
fn blame(expected: &Item, requires: &[String]) -> String {
    let candidates: &[&str] = match expected {
        Item::Hello(_) => &["HELLO-1"],
        Item::Reply(Reply::Err(e)) => match e.code.get() {
            500 => &["VER-6", "ERR-6", "TREE-6", "TREE-11"],
            501 => &["FRAME-2"],
            502 => &["PUT-8", "DATA-6", "ERR-6"],
            503 => &["VER-5", "TREE-1"],
            510 => &["NAME-7", "TREE-3", "TREE-11"],
            511 => &["GET-1", "TREE-4"],
            512 => &["PUT-2", "TREE-8", "TREE-11"],
            513 => &["PUT-2"],
            517 => &["TREE-9"],
            518 => &["TREE-6", "TREE-9", "TREE-10"],
            514 => &["SEC-10"],
            515 => &["GET-4"],
            433 => &["PUT-11"],
            434 => &["PUT-15"],
            _ => &["ERR-1"],
        },
        Item::Reply(Reply::Go) => &["PUT-3"],
        Item::Reply(Reply::PutOk { .. }) => &["PUT-12", "PUT-18"],
        Item::Reply(Reply::VersionOk(_)) => &["VER-4"],
        Item::Reply(Reply::Bye) => &["CLOSE-1"],
        Item::Reply(_) => &["CONN-8"],
        Item::Dir { .. } => &["DIR-1"],
        Item::Get { .. } => &["GET-5"],
        Item::List { .. } => &["TREE-6"],
        Item::Tree(TreeReply::Enabled(_)) => &["TREE-1"],
        Item::Tree(TreeReply::Mkdir) => &["TREE-8"],
        Item::Tree(TreeReply::Rmdir) => &["TREE-9"],
        Item::Tree(TreeReply::Delete) => &["TREE-10"],
        Item::Tree(TreeReply::Rename) => &["TREE-11"],
        Item::Tree(TreeReply::ListOk { .. }) => &["TREE-6"],
        Item::Bad(r, _) => return (*r).to_owned(),
    };
    candidates
        .iter()
        .find(|c| requires.iter().any(|r| r == *c))
        .unwrap_or(&candidates[0])
        .to_string()
}

struct Cmp<'a> {
    requires: &'a [String],
    max_size: Option<u64>,
    max_eager: Option<u64>,
    /// The transcript is of the `tree` extension: its codes (517, 518) are known.
    tree: bool,
}

impl Cmp<'_> {
    fn item(&self, want: &Item, got: &Item) -> Res<()> {
        let blame = || blame(want, self.requires);
        match (want, got) {
            (_, Item::Bad(req, msg)) => Err(violation(req, describe(want), msg.clone())),
            (Item::Hello(_), Item::Hello(line)) => {
                let g = match decode_hello(line) {
                    Ok((Hello::Greeting(g), _)) => g,
                    Ok((Hello::Refused(e), _)) => {
                        return Err(violation(
                            "CONN-4",
                            "a greeting",
                            show_reply(&Reply::Err(e)),
                        ));
                    }
                    Err(e) => {
                        return Err(violation(
                            "HELLO-1",
                            "a greeting that matches `greeting`",
                            format!("{:?}: {e}", show(line)),
                        ));
                    }
                };
                check_greeting(&g, line)?;
                if let Some(n) = self.max_size {
                    ensure(
                        g.limits().max_size == n,
                        "HELLO-2",
                        format!("max-size={n}"),
                        || show(line),
                    )?;
                }
                if let Some(n) = self.max_eager {
                    ensure(
                        g.limits().max_eager == n,
                        "HELLO-2",
                        format!("max-eager={n}"),
                        || show(line),
                    )?;
                }
                Ok(())
            }
            (Item::Reply(Reply::Err(w)), Item::Reply(Reply::Err(g))) => {
                if !(self.tree && tree::code_name(g.code).is_some()) {
                    check_code(g)?;
                }
                ensure(
                    w.code == g.code,
                    &blame(),
                    format!("err {}", w.code),
                    || show_reply(&Reply::Err(g.clone())),
                )
            }
            (Item::Dir { entries: w, .. }, Item::Dir { entries: g, order }) => {
                if let Some(o) = order {
                    return Err(violation(
                        "DIR-4",
                        "entries in ascending bytewise order, each once",
                        o.clone(),
                    ));
                }
                ensure(w == g, "DIR-2", describe(want), || describe(got))
            }
            (Item::List { entries: w, .. }, Item::List { entries: g, order }) => {
                if let Some(o) = order {
                    return Err(violation(
                        "TREE-6",
                        "entries in ascending order of their paths' octets, each once",
                        o.clone(),
                    ));
                }
                // Only the digests differ: TREE-7; anything else is the listing's (TREE-6).
                let sans_digest = |v: &[(EntryKind, Vec<u8>)]| -> Vec<(Option<u64>, Vec<u8>)> {
                    v.iter()
                        .map(|(k, p)| match k {
                            EntryKind::File { size, .. } => (Some(*size), p.clone()),
                            EntryKind::Folder => (None, p.clone()),
                        })
                        .collect()
                };
                let req = if sans_digest(w) == sans_digest(g) {
                    "TREE-7"
                } else {
                    "TREE-6"
                };
                ensure(w == g, req, describe(want), || describe(got))
            }
            (
                Item::Get {
                    size: ws,
                    data: wd,
                    trailer: wt,
                },
                Item::Get {
                    size: gs,
                    data: gd,
                    trailer: gt,
                },
            ) => {
                ensure(
                    ws == gs,
                    "GET-2",
                    format!("ok get {ws} (the file's size)"),
                    || format!("ok get {gs}"),
                )?;
                ensure(wd == gd, "GET-5", describe(want), || describe(got))?;
                match (wt, gt) {
                    (Trailer::Abort(w), Trailer::Abort(g)) if w.code == g.code => Ok(()),
                    (Trailer::End(w), Trailer::End(g)) if w == g => Ok(()),
                    (Trailer::End(_), Trailer::End(_)) => {
                        Err(violation("SUM-1", wt.show(), gt.show()))
                    }
                    _ => Err(violation("GET-5", wt.show(), gt.show())),
                }
            }
            _ => ensure(want == got, &blame(), describe(want), || describe(got)),
        }
    }
}

/// `req` with `prefix` on the first name of each of its paths; `None` when it has none, or
/// when a path would then be invalid (TREE-3).
fn prefixed(req: TreeRequest, prefix: &str) -> Option<TreeRequest> {
    let p = |path: TreePath| TreePath::new(format!("{prefix}{path}")).ok();
    Some(match req {
        TreeRequest::Enable(_)
        | TreeRequest::List {
            folder: Folder::Root,
            ..
        } => return None,
        TreeRequest::List {
            options,
            folder: Folder::Path(f),
        } => TreeRequest::List {
            options,
            folder: Folder::Path(p(f)?),
        },
        TreeRequest::Mkdir(x) => TreeRequest::Mkdir(p(x)?),
        TreeRequest::Rmdir(x) => TreeRequest::Rmdir(p(x)?),
        TreeRequest::Delete(x) => TreeRequest::Delete(p(x)?),
        TreeRequest::Rename { from, to } => TreeRequest::Rename {
            from: p(from)?,
            to: p(to)?,
        },
        TreeRequest::Get { offset, path } => TreeRequest::Get {
            offset,
            path: p(path)?,
        },
        TreeRequest::Put {
            size,
            mode,
            flow,
            path,
        } => TreeRequest::Put {
            size,
            mode,
            flow,
            path: p(path)?,
        },
    })
}

/// Rewrites the client's octets: every complete `get`/`put` line with a valid name gets the
/// prefix on its name; with `tree` (a transcript of the extension), every valid request of
/// the extension, and `get`/`put` by path after `enable tree`, gets it on the first name of
/// each path ([`prefixed`]; a valid path that cannot carry it makes the case
/// `unimplemented`). Step boundaries are kept (a boundary inside a rewritten line
/// keeps its offset from the line's start).
fn map_client(t: &Transcript, prefix: &str, tree: bool) -> Res<Vec<(Side, Action)>> {
    let mut stream = Vec::new();
    let mut bounds = Vec::new();
    for s in t.steps.iter().filter(|s| s.side == Side::Client) {
        if let Action::Line(b) | Action::Raw(b) = &s.action {
            stream.extend_from_slice(b);
            bounds.push(stream.len());
        }
    }
    // (start, end, replacement)
    let mut repl: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    let mut pos = 0;
    // The client sent `enable tree`: from there on get and put carry paths (TREE-5).
    let mut enabled = false;
    while let Some(lf) = stream[pos..].iter().position(|&b| b == b'\n') {
        let end = pos + lf + 1;
        let line = &stream[pos..end];
        let crlf = line.ends_with(b"\r\n");
        let by_tree = tree
            && (is_tree_verb(line)
                || (enabled && (line.starts_with(b"get ") || line.starts_with(b"put "))));
        if by_tree {
            if let Ok((req, _)) = decode_tree_request(line) {
                enabled |= matches!(&req, TreeRequest::Enable(e) if e.as_str() == tree::EXTENSION);
                let has_paths = !matches!(
                    &req,
                    TreeRequest::Enable(_)
                        | TreeRequest::List {
                            folder: Folder::Root,
                            ..
                        }
                );
                let r = prefixed(req, prefix);
                if has_paths && r.is_none() {
                    // Sent as written it would reach outside the case's prefix.
                    return Err(unimplemented(format!(
                        "a path of {:?} cannot carry the case prefix {prefix:?} (TREE-3's limits)",
                        show(line.strip_suffix(b"\n").unwrap_or(line))
                    )));
                }
                if let Some(r) = r {
                    let mut bytes = r.encode();
                    if crlf {
                        bytes.pop();
                        bytes.extend_from_slice(b"\r\n");
                    }
                    repl.push((pos, end, bytes));
                }
            }
        } else if let Ok((req, _)) = decode_request(line) {
            let renamed = match req {
                Request::Get { offset, name } => FileName::new(format!("{prefix}{name}"))
                    .ok()
                    .map(|name| Request::Get { offset, name }),
                Request::Put {
                    size,
                    mode,
                    flow,
                    name,
                } => FileName::new(format!("{prefix}{name}"))
                    .ok()
                    .map(|name| Request::Put {
                        size,
                        mode,
                        flow,
                        name,
                    }),
                _ => None,
            };
            if let Some(r) = renamed {
                let mut bytes = r.to_bytes();
                if crlf {
                    bytes.pop();
                    bytes.extend_from_slice(b"\r\n");
                }
                repl.push((pos, end, bytes));
            }
        }
        pos = end;
    }
    let map_offset = |b: usize| -> usize {
        let mut delta: isize = 0;
        for (s, e, r) in &repl {
            if b >= *e {
                delta += r.len() as isize - (e - s) as isize;
            } else if b > *s {
                return (*s as isize + delta) as usize + (b - s).min(r.len());
            }
        }
        (b as isize + delta) as usize
    };
    let mut new_stream = Vec::new();
    let mut last = 0;
    for (s, e, r) in &repl {
        new_stream.extend_from_slice(&stream[last..*s]);
        new_stream.extend_from_slice(r);
        last = *e;
    }
    new_stream.extend_from_slice(&stream[last..]);

    let mut out = Vec::new();
    let mut bi = 0;
    let mut prev = 0;
    for s in &t.steps {
        match (&s.side, &s.action) {
            (Side::Client, Action::Line(_) | Action::Raw(_)) => {
                let end = map_offset(bounds[bi]);
                bi += 1;
                out.push((Side::Client, Action::Raw(new_stream[prev..end].to_vec())));
                prev = end;
            }
            (side, action) => out.push((*side, action.clone())),
        }
    }
    Ok(out)
}

/// Skips one payload at the start of `b`; its length, or `None` if incomplete.
fn skip_payload(b: &[u8]) -> Option<usize> {
    let mut p = 0;
    loop {
        let (f, n) = decode_frame(&b[p..]).ok()?;
        p += n;
        match f {
            ferry_wire::Frame::Data(len) => {
                p += len.as_usize();
                if p > b.len() {
                    return None;
                }
            }
            _ => return Some(p),
        }
    }
}

/// The names the transcript leaves visible: the fixtures and every put answered `ok put`.
fn visible_after(client: &[u8], items: &[Item], fixtures: &BTreeSet<Vec<u8>>) -> BTreeSet<Vec<u8>> {
    let mut vis = fixtures.clone();
    let mut c = 0;
    let mut s = 1;
    while c < client.len() {
        match decode_request(&client[c..]) {
            Ok((req, n)) => {
                c += n;
                match req {
                    Request::Put { flow, name, .. } => {
                        let first = items.get(s);
                        s += 1;
                        let last = match (flow, first) {
                            (PutFlow::Wait, Some(Item::Reply(Reply::Go))) => {
                                let Some(k) = skip_payload(&client[c..]) else {
                                    break;
                                };
                                c += k;
                                s += 1;
                                items.get(s - 1)
                            }
                            (PutFlow::Wait, f) => f,
                            (PutFlow::Now, f) => {
                                let Some(k) = skip_payload(&client[c..]) else {
                                    break;
                                };
                                c += k;
                                f
                            }
                        };
                        if matches!(last, Some(Item::Reply(Reply::PutOk { .. }))) {
                            vis.insert(name.as_bytes().to_vec());
                        }
                    }
                    Request::Close => break,
                    _ => s += 1,
                }
            }
            Err(DecodeError::Invalid(inv)) => match (inv.line_len, inv.kind) {
                (Some(len), InvalidKind::BadName { put: Some(h), .. })
                    if h.flow == PutFlow::Now =>
                {
                    c += len;
                    let Some(k) = skip_payload(&client[c..]) else {
                        break;
                    };
                    c += k;
                    s += 1;
                }
                (Some(len), _) => {
                    c += len;
                    s += 1;
                }
                (None, _) => break,
            },
            Err(DecodeError::Incomplete) => break,
        }
    }
    vis
}

/// Replays one example against the server its `@server` options call for.
pub(crate) fn run(ex: &Example, ctx: &mut Ctx<'_>) -> Res<Done> {
    let t = &ex.transcript;
    let read_only = t.server_flag("read-only");
    let max_size = t
        .server_option("max-size")
        .and_then(|v| v.parse::<u64>().ok());
    let max_eager = t
        .server_option("max-eager")
        .and_then(|v| v.parse::<u64>().ok());
    let with_tree = t.tree();
    let addr: Endpoint = if read_only && with_tree {
        return Err(unimplemented(
            "a read-only transcript of the tree extension needs a read-only server that offers tree, which this runner does not look for",
        ));
    } else if read_only {
        ctx.read_only()?
    } else if with_tree || max_size.is_some() || max_eager.is_some() {
        let others: Vec<&str> = t
            .server
            .iter()
            .map(String::as_str)
            .filter(|o| *o != "tree")
            .collect();
        let what = match (with_tree, others.is_empty()) {
            (true, true) => "`tree` in ext (section 17)".to_owned(),
            (true, false) => format!("`tree` in ext (section 17) and {}", others.join(" ")),
            (false, _) => others.join(" "),
        };
        ctx.server_greeting(&what, |g| {
            let l = g.limits();
            (!with_tree || tree::offered(g))
                && max_size.is_none_or(|n| l.max_size == n)
                && max_eager.is_none_or(|n| l.max_eager == n)
        })?
        .0
    } else {
        ctx.addr.clone()
    };
    let deadline = ctx.deadline();
    let prefix = ctx.prefix.clone();

    // Fixtures, or the read-only server's listing.
    let mut fixtures = BTreeSet::new();
    let snapshot = if read_only {
        let (mut c, _) = Conn::open(&addr, deadline)?;
        let l = c.dir("DIR-1")?;
        let _ = c.close();
        Some(
            l.into_iter()
                .map(|e| (e.size, e.name.as_bytes().to_vec()))
                .collect::<Vec<_>>(),
        )
    } else if with_tree {
        // Folders first (each after its own folder), then the files, by path.
        let (mut c, _) = Conn::open(&addr, deadline)?;
        c.send("TREE-1", b"enable tree\n")?;
        expect_ok(&mut c, "TREE-1", &enabled_reply(), "enable tree")?;
        for d in &t.folders {
            mkdir(&mut c, "TREE-8", &format!("{prefix}{}", d.path))?;
        }
        for f in &t.files {
            let name = format!("{prefix}{}", f.name).into_bytes();
            c.put_ok("TREE-5", &name, PutMode::Replace, PutFlow::Wait, &f.content)?;
        }
        c.close()?;
        None
    } else {
        if !t.files.is_empty() {
            let (mut c, _) = Conn::open(&addr, deadline)?;
            for f in &t.files {
                let name = format!("{prefix}{}", f.name).into_bytes();
                c.put_ok("PUT-12", &name, PutMode::Replace, PutFlow::Wait, &f.content)?;
                fixtures.insert(name);
            }
            c.close()?;
        }
        None
    };

    let steps = map_client(t, &prefix, with_tree)?;
    let listing = if read_only {
        Listing::Whole
    } else {
        Listing::Prefix(prefix.as_bytes())
    };
    let cmp = Cmp {
        requires: &t.requires,
        max_size,
        max_eager,
        tree: with_tree,
    };
    let scope = TreeScope {
        on: with_tree,
        roots: if with_tree {
            let mut client = Vec::new();
            for (_, a) in steps.iter().filter(|(side, _)| *side == Side::Client) {
                if let Action::Line(b) | Action::Raw(b) = a {
                    client.extend_from_slice(b);
                }
            }
            list_roots(&client)
        } else {
            Vec::new()
        },
    };
    let expected_items = |bytes: &[u8]| -> Vec<Item> {
        let (mut items, _) = parse_items(bytes, Listing::Whole, false, &scope);
        let mut finals = 0;
        for it in &mut items {
            let root = scope.roots.get(finals).copied().unwrap_or(false);
            if !matches!(it, Item::Hello(_) | Item::Reply(Reply::Go)) {
                finals += 1;
            }
            if let Item::List { entries, .. } = it
                && root
            {
                for (_, n) in entries.iter_mut() {
                    let mut p = prefix.as_bytes().to_vec();
                    p.extend_from_slice(n);
                    *n = p;
                }
            }
            if let Item::Dir { entries, .. } = it {
                match &snapshot {
                    Some(s) => *entries = s.clone(),
                    None => {
                        for (_, n) in entries.iter_mut() {
                            let mut p = prefix.as_bytes().to_vec();
                            p.extend_from_slice(n);
                            *n = p;
                        }
                    }
                }
            }
        }
        items
    };

    let mut conn = Conn::connect(&addr, deadline)?;
    let server_closes = t
        .steps
        .iter()
        .any(|s| s.side == Side::Server && s.action == Action::Close);
    let mut expected = Vec::new();
    let mut client_bytes = Vec::new();
    let mut sending = true;
    for (side, action) in &steps {
        match (side, action) {
            (Side::Server, Action::Line(b) | Action::Raw(b)) => expected.extend_from_slice(b),
            (Side::Server, Action::Close) => {}
            (Side::Client, Action::Line(b) | Action::Raw(b)) => {
                client_bytes.extend_from_slice(b);
                if !sending {
                    continue;
                }
                sync(&mut conn, &expected_items(&expected), listing, &scope, &cmp)?;
                if !conn.send_lenient(b) {
                    // The server closed; fine only if the transcript says it does.
                    ensure(
                        server_closes,
                        "ERR-5",
                        "the connection stays usable",
                        || "the server closed the connection while the client was sending",
                    )?;
                    sending = false;
                }
            }
            (Side::Client, Action::Close) => {
                if sending {
                    sync(&mut conn, &expected_items(&expected), listing, &scope, &cmp)?;
                    conn.shutdown_write();
                }
            }
        }
    }
    let want = expected_items(&expected);
    sync(&mut conn, &want, listing, &scope, &cmp)?;
    if server_closes {
        let close_req = match want.last() {
            Some(Item::Reply(Reply::Err(e))) if e.code.closes_connection() => "ERR-5",
            Some(Item::Reply(Reply::Bye)) => "CLOSE-1",
            _ => "CLOSE-4",
        };
        loop {
            match conn.read_more() {
                Some(true) => {}
                Some(false) => break,
                None => {
                    return Err(violation(
                        close_req,
                        format!(
                            "the connection closed after {}",
                            want.last().map_or_else(String::new, describe)
                        ),
                        "the connection is still open at the case's deadline",
                    ));
                }
            }
        }
        let (got, used) = parse_items(conn.buffered(), listing, true, &scope);
        if got.len() > want.len() || used < conn.buffered().len() {
            let extra = got
                .get(want.len())
                .map_or_else(|| show(&conn.buffered()[used..]).into(), describe);
            return Err(violation(
                close_req,
                format!(
                    "the connection closed after {}, nothing more",
                    want.last().map_or_else(String::new, describe)
                ),
                format!("then {extra:?}"),
            ));
        }
    }
    drop(conn);
    if with_tree {
        // The transcript's listings showed the tree; a `dir` shows only the served folder's
        // files, which its renames and deletes may have changed.
        return Ok(Done::Pass);
    }

    // What is visible afterwards.
    let (mut c, _) = Conn::open(&addr, deadline)?;
    let listing_after = c.dir("DIR-1")?;
    let _ = c.close();
    if let Some(snap) = &snapshot {
        let after: Vec<(u64, Vec<u8>)> = listing_after
            .iter()
            .map(|e| (e.size, e.name.as_bytes().to_vec()))
            .collect();
        ensure(
            &after == snap,
            "SEC-10",
            "the read-only server's listing unchanged",
            || format!("{} entries before, {} after", snap.len(), after.len()),
        )?;
    } else {
        let vis = visible_after(&client_bytes, &want, &fixtures);
        let got: BTreeSet<Vec<u8>> = listing_after
            .into_iter()
            .map(|e| e.name.as_bytes().to_vec())
            .filter(|n| n.starts_with(prefix.as_bytes()))
            .collect();
        let show_set = |s: &BTreeSet<Vec<u8>>| {
            s.iter()
                .map(|n| show(&n[prefix.len()..]))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(extra) = got.difference(&vis).next() {
            let req = ["PUT-16", "PUT-11", "PUT-15"]
                .into_iter()
                .find(|r| t.requires.iter().any(|x| x == r))
                .unwrap_or("PUT-10");
            return Err(violation(
                req,
                format!(
                    "after the session, a new session lists only [{}]",
                    show_set(&vis)
                ),
                format!("{} is visible too", show(&extra[prefix.len()..])),
            ));
        }
        ensure(
            got == vis,
            "PUT-12",
            format!("a new session lists [{}]", show_set(&vis)),
            || format!("it lists [{}]", show_set(&got)),
        )?;
    }
    Ok(Done::Pass)
}

/// Waits until the server has sent at least as many messages as `want` and compares them.
fn sync(
    conn: &mut Conn,
    want: &[Item],
    listing: Listing<'_>,
    scope: &TreeScope,
    cmp: &Cmp<'_>,
) -> Res<()> {
    loop {
        let (got, _) = parse_items(conn.buffered(), listing, true, scope);
        for (w, g) in want.iter().zip(&got) {
            cmp.item(w, g)?;
        }
        if got.len() >= want.len() {
            return Ok(());
        }
        let next = &want[got.len()];
        match conn.read_more() {
            Some(true) => {}
            Some(false) => {
                return Err(violation(
                    &blame(next, cmp.requires),
                    describe(next),
                    "the server closed the connection".to_owned(),
                ));
            }
            None => {
                return Err(violation(
                    &blame(next, cmp.requires),
                    describe(next),
                    format!(
                        "nothing (more) before the case's deadline; pending octets {:?}",
                        show(conn.buffered())
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_octets(steps: &[(Side, Action)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (side, a) in steps {
            if let (Side::Client, Action::Raw(b)) = (side, a) {
                out.extend_from_slice(b);
            }
        }
        out
    }

    #[test]
    fn tree_paths_get_the_prefix_on_their_first_name() {
        let t = Transcript::parse(
            "@server tree\nC: get 0 a/b\nC: enable tree\nC: get 0 a/b\nC: list - .\n\
             C: list - my docs\nC: rename 4 a bc a b/c d\n# invalid\nC: mkdir a//b\nC: dir\n",
        )
        .expect("transcript");
        let steps = map_client(&t, "cf1-007-", true).expect("mapped");
        assert_eq!(
            String::from_utf8(client_octets(&steps)).expect("UTF-8"),
            "get 0 a/b\nenable tree\nget 0 cf1-007-a/b\nlist - .\nlist - cf1-007-my docs\n\
             rename 12 cf1-007-a bc cf1-007-a b/c d\nmkdir a//b\ndir\n"
        );
        // Listings of `.` are filtered by the prefix, those of a folder are not.
        assert_eq!(
            list_roots(&client_octets(&steps)),
            [false, false, false, true, false, false, false, false]
        );
    }

    #[test]
    fn a_path_that_cannot_carry_the_prefix_is_not_sent() {
        let long = "n".repeat(250);
        let t =
            Transcript::parse(&format!("@server tree\nC: mkdir {long}/x\n")).expect("transcript");
        assert!(map_client(&t, "cf1-007-", true).is_err());
        // Without tree the same line is not the extension's and is sent as written.
        let t = Transcript::parse(&format!("C: mkdir {long}/x\n")).expect("transcript");
        assert!(map_client(&t, "cf1-007-", false).is_ok());
    }
}
