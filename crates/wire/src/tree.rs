//! The messages of the `tree` extension (spec section 17): folders as paths, `enable tree`,
//! `list`, `mkdir`, `rmdir`, `delete`, `rename`, and `get`/`put` with a path once enabled.
//!
//! Like [`crate::auth`]'s, they are not [`crate::Request`] or [`crate::Reply`] variants: an
//! extension does not change ferry/1 (EXT-6). A server core that offered `tree` reads a
//! request line with [`decode_tree_request`] when its verb is one of the extension's (or
//! `get`/`put` after `ok enable tree`); a client that sent one reads the answer with
//! [`decode_tree_reply`] and the listing's lines with [`decode_list_entry`].

use std::fmt;
use std::io::Write as _;

use nom::Parser;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while_m_n, take_while1};
use nom::combinator::{all_consuming, cut, map, value};
use nom::error::context;
use nom::sequence::preceded;

use crate::code::Code;
use crate::decode::{DecodeError, InvalidKind, run};
use crate::digest::Digest;
use crate::limits::MAX_PATH;
use crate::message::{ListingOrderError, PutFlow, PutMode};
use crate::parse::{self, PErr, PResult, fail, sp};
use crate::path::{PathError, TreePath};
use crate::text::ExtName;
use crate::time::Timestamp;

/// The extension's name in `ext` and in `enable` (TREE-1).
pub const EXTENSION: &str = "tree";

/// `err 517 not-empty`: `rmdir` of a folder that has entries (TREE-9).
pub const NOT_EMPTY: Code = code(517);
/// `err 518 wrong-kind`: a folder where a file is meant, or a file where a folder is meant
/// (TREE-6, TREE-9, TREE-10).
pub const WRONG_KIND: Code = code(518);

/// The codes of the extension, in ascending order.
pub const CODES: &[Code] = &[NOT_EMPTY, WRONG_KIND];

const fn code(n: u16) -> Code {
    match Code::new(n) {
        Some(c) => c,
        None => panic!("a reply code has three digits"),
    }
}

/// The short name of one of the extension's codes, as section 17's table writes it.
pub fn code_name(code: Code) -> Option<&'static str> {
    Some(match code.get() {
        517 => "not-empty",
        518 => "wrong-kind",
        _ => return None,
    })
}

/// Whether a greeting offers the extension (`tree` in `ext`).
pub fn offered(greeting: &crate::Greeting) -> bool {
    greeting
        .extensions()
        .iter()
        .any(|e| e.as_str() == EXTENSION)
}

/// `greeting` offering the extension; `None` when it already does.
pub fn offer(greeting: crate::Greeting) -> Option<crate::Greeting> {
    let ext = ExtName::new(EXTENSION).ok()?;
    greeting.with_extension(ext).ok()
}

/// The options of a `list` (`list-opts`, TREE-6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ListOptions {
    /// Each file entry carries its digest.
    pub digests: bool,
    /// The entries of the subfolders too, at every depth.
    pub recursive: bool,
}

impl fmt::Display for ListOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.digests, self.recursive) {
            (false, false) => "-",
            (true, false) => "digests",
            (false, true) => "recursive",
            (true, true) => "digests,recursive",
        })
    }
}

/// The folder a `list` names (`folder-ref`): the served folder itself (`.`) or a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Folder {
    /// `.`: the served folder (or the user's folder).
    Root,
    /// A folder beneath it.
    Path(TreePath),
}

impl Folder {
    /// The path, `None` for the served folder.
    pub fn path(&self) -> Option<&TreePath> {
        match self {
            Folder::Root => None,
            Folder::Path(p) => Some(p),
        }
    }
}

impl fmt::Display for Folder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Folder::Root => f.write_str("."),
            Folder::Path(p) => p.fmt(f),
        }
    }
}

/// A request of the extension (`ext-request`, and `get`/`put` with a path, TREE-5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TreeRequest {
    /// `enable EXT` (TREE-1): for `tree`, paths in `get` and `put` from its reply on.
    Enable(ExtName),
    /// `list OPTS FOLDER` (TREE-6).
    List {
        /// Digests, recursion.
        options: ListOptions,
        /// What to list.
        folder: Folder,
    },
    /// `mkdir PATH` (TREE-8).
    Mkdir(TreePath),
    /// `rmdir PATH` (TREE-9).
    Rmdir(TreePath),
    /// `delete PATH` (TREE-10).
    Delete(TreePath),
    /// `rename LEN FROM TO` (TREE-11).
    Rename {
        /// What to move.
        from: TreePath,
        /// Where to.
        to: TreePath,
    },
    /// `get OFFSET PATH`, after `ok enable tree` (TREE-5).
    Get {
        /// First octet to send.
        offset: u64,
        /// The file.
        path: TreePath,
    },
    /// `put SIZE MODE FLOW PATH`, after `ok enable tree` (TREE-5).
    Put {
        /// Exact length of the file.
        size: u64,
        /// Create-only or replace.
        mode: PutMode,
        /// Wait for `go`, or send at once.
        flow: PutFlow,
        /// The file.
        path: TreePath,
    },
}

impl TreeRequest {
    /// Appends the request's line (LF only) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let _ = match self {
            TreeRequest::Enable(ext) => writeln!(out, "enable {ext}"),
            TreeRequest::List { options, folder } => writeln!(out, "list {options} {folder}"),
            TreeRequest::Mkdir(p) => writeln!(out, "mkdir {p}"),
            TreeRequest::Rmdir(p) => writeln!(out, "rmdir {p}"),
            TreeRequest::Delete(p) => writeln!(out, "delete {p}"),
            TreeRequest::Rename { from, to } => {
                writeln!(out, "rename {} {from} {to}", from.as_bytes().len())
            }
            TreeRequest::Get { offset, path } => writeln!(out, "get {offset} {path}"),
            TreeRequest::Put {
                size,
                mode,
                flow,
                path,
            } => {
                let (mode, flow) = (mode.as_str(), flow.as_str());
                writeln!(out, "put {size} {mode} {flow} {path}")
            }
        };
    }

    /// The request's line, eol (LF) included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

/// A final reply of the extension (`ext-reply`); `ok get`/`ok put` and errors are ferry/1's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TreeReply {
    /// `ok enable EXT`.
    Enabled(ExtName),
    /// `ok list COUNT`, followed by `count` [`ListEntry`] lines.
    ListOk {
        /// How many entry lines follow.
        count: u64,
    },
    /// `ok mkdir`.
    Mkdir,
    /// `ok rmdir`.
    Rmdir,
    /// `ok delete`.
    Delete,
    /// `ok rename`.
    Rename,
}

impl TreeReply {
    /// Appends the reply's line (LF only) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let _ = match self {
            TreeReply::Enabled(ext) => writeln!(out, "ok enable {ext}"),
            TreeReply::ListOk { count } => writeln!(out, "ok list {count}"),
            TreeReply::Mkdir => writeln!(out, "ok mkdir"),
            TreeReply::Rmdir => writeln!(out, "ok rmdir"),
            TreeReply::Delete => writeln!(out, "ok delete"),
            TreeReply::Rename => writeln!(out, "ok rename"),
        };
    }

    /// The reply's line, eol (LF) included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

/// What a listing entry is (TREE-6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// `f SIZE … DIGEST`: a regular file; its digest when `digests` was asked and known.
    File {
        /// Its length in octets.
        size: u64,
        /// Its digest, or `None` (`-`): not asked, or not read unchanged (TREE-7).
        digest: Option<Digest>,
    },
    /// `d - … -`: a folder.
    Folder,
}

/// One line of a listing (`list-entry`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListEntry {
    /// File or folder.
    pub kind: EntryKind,
    /// Last modification time (DIR-5's rules).
    pub mtime: Timestamp,
    /// Relative to the listed folder.
    pub path: TreePath,
}

impl ListEntry {
    /// Appends the entry's line (LF only) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let _ = match self.kind {
            EntryKind::File {
                size,
                digest: Some(d),
            } => writeln!(out, "f {size} {} {d} {}", self.mtime, self.path),
            EntryKind::File { size, digest: None } => {
                writeln!(out, "f {size} {} - {}", self.mtime, self.path)
            }
            EntryKind::Folder => writeln!(out, "d - {} - {}", self.mtime, self.path),
        };
    }

    /// The entry's line, eol (LF) included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

/// A listing line whose kind, size, mtime and digest fields are valid but whose path field
/// is not a valid path (TREE-3): a client skips the entry and reads on (TREE-14), as it does
/// with a `dir` entry whose name it cannot accept (NAME-14, [`crate::SkippedEntry`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SkippedListEntry {
    /// File (with its size and digest, as listed) or folder.
    pub kind: EntryKind,
    /// Modification time, as listed.
    pub mtime: Timestamp,
    /// The path field's octets as received (possibly not UTF-8): show them escaped.
    pub path: Vec<u8>,
    /// The rule the path breaks.
    pub error: PathError,
}

/// One line of a `list` listing as a client reads it ([`decode_list_line`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListLine {
    /// A valid entry.
    Entry(ListEntry),
    /// An entry to skip (TREE-14).
    Skipped(SkippedListEntry),
}

impl ListLine {
    /// The path field's octets, valid or not: what TREE-6's order is checked on.
    pub fn path_octets(&self) -> &[u8] {
        match self {
            ListLine::Entry(e) => e.path.as_bytes(),
            ListLine::Skipped(s) => &s.path,
        }
    }
}

/// A `list` listing as a client accepted it: the valid entries and the skipped ones, both in
/// listing order, checked to be in strictly ascending order of their paths' octets (TREE-6,
/// TREE-14: as DIR-9 and DIR-10 check a `dir` listing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TreeListing {
    /// The entries with valid paths, in ascending order of their paths' octets.
    pub entries: Vec<ListEntry>,
    /// The entries skipped, in listing order.
    pub skipped: Vec<SkippedListEntry>,
    last: Option<Vec<u8>>,
}

impl TreeListing {
    /// An empty listing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next line of the listing, checking that its path's octets, valid or not, come
    /// strictly after the previous line's (TREE-6: sorted, each once).
    pub fn push(&mut self, line: ListLine) -> Result<(), ListingOrderError> {
        if let Some(prev) = &self.last
            && prev.as_slice() >= line.path_octets()
        {
            return Err(ListingOrderError {
                previous: prev.clone(),
                next: line.path_octets().to_vec(),
            });
        }
        self.last = Some(line.path_octets().to_vec());
        match line {
            ListLine::Entry(e) => self.entries.push(e),
            ListLine::Skipped(s) => self.skipped.push(s),
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------ decode ---

/// The verbs of the extension's own requests (not `get`/`put`, which are ferry/1's).
const VERBS: [&[u8]; 6] = [b"enable", b"list", b"mkdir", b"rmdir", b"delete", b"rename"];

/// Whether a request line (perhaps incomplete) begins with one of the extension's verbs
/// (`enable`, `list`, `mkdir`, `rmdir`, `delete`, `rename`) followed by SP or an eol: a
/// server core that offered `tree` reads such a line with [`decode_tree_request`], and one
/// that did not answers it `err 503 unsupported` (EXT-4). `get` and `put` are not the
/// extension's verbs: the core reads them with [`decode_tree_request`] after `ok enable
/// tree` (TREE-5) and with [`crate::decode_request`] before. A verb not yet followed by
/// anything is not decided: `false`, and the ferry/1 decoder asks for more octets.
pub fn is_tree_verb(line: &[u8]) -> bool {
    VERBS.iter().any(|verb| {
        line.strip_prefix(*verb)
            .is_some_and(|rest| matches!(rest, [b' ' | b'\n', ..] | [b'\r', b'\n', ..]))
    })
}

/// Decodes one request line of the extension (`ext-request`), or a `get`/`put` line with a
/// path (`tree-get-req`, `tree-put-req`, TREE-5): `Ok((request, len))` with the octets it
/// took, eol included. Invalid lines are sorted as ERR-6 sorts ferry/1's, with the same
/// [`InvalidKind`]s, so a core answers them alike:
///
/// - a `put` line that does not parse up to its path: [`InvalidKind::MalformedPut`] (502,
///   closes);
/// - a line that parses up to a path that is not valid (TREE-3) — an invalid name in it,
///   more than 1024 octets or 64 names, an empty path: [`InvalidKind::BadName`] (510), with
///   the put's [`crate::PutHead`] for a `put` (with flow `now` its payload follows anyway,
///   PUT-9); the [`crate::NameError`] is [`PathError::as_name_error`];
/// - anything else, an unknown verb included, and a `rename` whose LEN is not 1 to 1024 or
///   does not end at a SP (TREE-11): [`InvalidKind::Syntax`] (500).
///
/// `rename` of a path to itself or into itself decodes: that 510 is the core's (TREE-11,
/// [`TreePath::is_within`]).
pub fn decode_tree_request(buf: &[u8]) -> Result<(TreeRequest, usize), DecodeError> {
    run(buf, tree_request, crate::decode::request_kind)
}

/// Decodes one final reply line of the extension (`ext-reply`). A line that is not one is
/// [`InvalidKind::Syntax`]: a client tries ferry/1's [`crate::decode_reply`] (for `err`, and
/// `ok get`/`ok put`/`go` after a get or put) as well.
pub fn decode_tree_reply(buf: &[u8]) -> Result<(TreeReply, usize), DecodeError> {
    run(buf, tree_reply, |_, _| InvalidKind::Syntax)
}

/// Decodes one listing line after `ok list` (`list-entry`), strictly: a line whose path is
/// not valid is [`InvalidKind::BadName`]. A client reads listings with [`decode_list_line`].
pub fn decode_list_entry(buf: &[u8]) -> Result<(ListEntry, usize), DecodeError> {
    run(buf, list_entry, |_, e| match e.name {
        Some(error) => InvalidKind::BadName { error, put: None },
        None => InvalidKind::Syntax,
    })
}

/// Decodes one listing line as a client reads it: like [`decode_list_entry`], except that a
/// line that is valid up to its path field and whose path field (the rest of the line) is not
/// a valid path is [`ListLine::Skipped`], with the path's raw octets: the entry is one line,
/// so the rest of the listing can still be read (TREE-14, NAME-14). Any other
/// line that does not match `list-entry` (a bad kind, size, mtime or digest, a folder with a
/// size or digest, a missing field) is [`DecodeError::Invalid`] (ERR-10).
pub fn decode_list_line(buf: &[u8]) -> Result<(ListLine, usize), DecodeError> {
    run(buf, list_line, |_, _| InvalidKind::Syntax)
}

/// ```abnf
/// ext-request   =/ enable-req / list-req / mkdir-req / rmdir-req / delete-req / rename-req
/// tree-get-req  = %s"get" SP offset SP path eol
/// tree-put-req  = %s"put" SP size SP put-mode SP put-flow SP path eol
/// ```
/// The requests of the extension, and `get`/`put` with a path (in place of `get-req` and
/// `put-req` after `ok enable tree`, TREE-5).
fn tree_request(i: &[u8]) -> PResult<'_, TreeRequest> {
    context(
        "ext-request",
        all_consuming(alt((
            enable_req,
            list_req,
            mkdir_req,
            rmdir_req,
            delete_req,
            rename_req,
            tree_get_req,
            tree_put_req,
        ))),
    )
    .parse(i)
}

/// ```abnf
/// ext-name      = lc-alpha *(lc-alpha / DIGIT / "-")
/// ```
fn ext_name(i: &[u8]) -> PResult<'_, ExtName> {
    let (rest, raw) = context(
        "ext-name",
        take_while1(|b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
    )
    .parse(i)?;
    match std::str::from_utf8(raw)
        .ok()
        .and_then(|s| ExtName::new(s).ok())
    {
        Some(e) => Ok((rest, e)),
        None => fail(i, "ext-name"),
    }
}

/// ```abnf
/// enable-req    = %s"enable" SP ext-name eol
/// ```
fn enable_req(i: &[u8]) -> PResult<'_, TreeRequest> {
    map(
        preceded(tag(&b"enable "[..]), cut(ext_name)),
        TreeRequest::Enable,
    )
    .parse(i)
}

/// ```abnf
/// path          = name *("/" name)
///                 ; at most 1024 octets and 64 names (prose, TREE-3)
/// ```
/// Takes the rest of the line and applies TREE-3 ([`TreePath::from_bytes`]). A bad path is a
/// `Failure` that carries its [`PathError::as_name_error`].
fn path(i: &[u8]) -> PResult<'_, TreePath> {
    let p = checked_path(i, i)?;
    Ok((&i[i.len()..], p))
}

/// `raw` as a path; a fault is reported at `at` (the suffix of the line that begins with
/// `raw`), with rule `path`.
fn checked_path<'a>(raw: &'a [u8], at: &'a [u8]) -> Result<TreePath, nom::Err<PErr<'a>>> {
    TreePath::from_bytes(raw).map_err(|e| {
        nom::Err::Failure(PErr {
            input: at,
            rule: Some("path"),
            name: Some(e.as_name_error()),
        })
    })
}

/// ```abnf
/// folder-ref    = path / "."
/// ```
fn folder_ref(i: &[u8]) -> PResult<'_, Folder> {
    if i == b"." {
        return Ok((&i[1..], Folder::Root));
    }
    map(path, Folder::Path).parse(i)
}

/// ```abnf
/// list-req      = %s"list" SP list-opts SP folder-ref eol
/// ```
fn list_req(i: &[u8]) -> PResult<'_, TreeRequest> {
    let (i, _) = tag(&b"list "[..]).parse(i)?;
    let (i, (options, _, folder)) = cut((list_opts, sp, folder_ref)).parse(i)?;
    Ok((i, TreeRequest::List { options, folder }))
}

#[derive(Clone, Copy)]
enum ListOpt {
    Digests,
    Recursive,
}

/// ```abnf
/// list-opts     = "-" / list-opt *("," list-opt)
/// list-opt      = %s"digests" / %s"recursive"
///                 ; each at most once (TREE-6)
/// ```
fn list_opts(i: &[u8]) -> PResult<'_, ListOptions> {
    let mut options = ListOptions::default();
    if let Some(rest) = i.strip_prefix(b"-") {
        return Ok((rest, options));
    }
    let mut rest = i;
    loop {
        let (r, opt) = context(
            "list-opt",
            alt((
                value(ListOpt::Digests, tag(&b"digests"[..])),
                value(ListOpt::Recursive, tag(&b"recursive"[..])),
            )),
        )
        .parse(rest)?;
        let flag = match opt {
            ListOpt::Digests => &mut options.digests,
            ListOpt::Recursive => &mut options.recursive,
        };
        if *flag {
            return fail(rest, "list-opts");
        }
        *flag = true;
        match r.strip_prefix(b",") {
            Some(more) => rest = more,
            None => return Ok((r, options)),
        }
    }
}

/// ```abnf
/// mkdir-req     = %s"mkdir" SP path eol
/// ```
fn mkdir_req(i: &[u8]) -> PResult<'_, TreeRequest> {
    map(preceded(tag(&b"mkdir "[..]), cut(path)), TreeRequest::Mkdir).parse(i)
}

/// ```abnf
/// rmdir-req     = %s"rmdir" SP path eol
/// ```
fn rmdir_req(i: &[u8]) -> PResult<'_, TreeRequest> {
    map(preceded(tag(&b"rmdir "[..]), cut(path)), TreeRequest::Rmdir).parse(i)
}

/// ```abnf
/// delete-req    = %s"delete" SP path eol
/// ```
fn delete_req(i: &[u8]) -> PResult<'_, TreeRequest> {
    map(
        preceded(tag(&b"delete "[..]), cut(path)),
        TreeRequest::Delete,
    )
    .parse(i)
}

/// ```abnf
/// path-len      = %x31-39 *3DIGIT
///                 ; octets of the first path, 1 to 1024 (TREE-11)
/// ```
fn path_len(i: &[u8]) -> PResult<'_, usize> {
    let (rest, digits) =
        context("path-len", take_while_m_n(1, 4, |b: u8| b.is_ascii_digit())).parse(i)?;
    if digits[0] == b'0' || rest.first().is_some_and(u8::is_ascii_digit) {
        return fail(i, "path-len");
    }
    let n = digits
        .iter()
        .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'));
    if n > MAX_PATH {
        return fail(i, "path-len");
    }
    Ok((rest, n))
}

/// ```abnf
/// rename-req    = %s"rename" SP path-len SP path SP path eol
/// ```
/// FROM is exactly LEN octets and must be followed by SP (else the line is malformed, 500);
/// TO runs to the eol (TREE-11).
fn rename_req(i: &[u8]) -> PResult<'_, TreeRequest> {
    let (i, _) = tag(&b"rename "[..]).parse(i)?;
    let (i, (len, _)) = cut((path_len, sp)).parse(i)?;
    if i.get(len) != Some(&b' ') {
        return Err(nom::Err::Failure(PErr {
            input: &i[len.min(i.len())..],
            rule: Some("rename-req"),
            name: None,
        }));
    }
    let from = checked_path(&i[..len], i)?;
    let rest = &i[len + 1..];
    let (rest, to) = path(rest)?;
    Ok((rest, TreeRequest::Rename { from, to }))
}

/// `get` with a path (`tree-get-req`, quoted on [`tree_request`]).
fn tree_get_req(i: &[u8]) -> PResult<'_, TreeRequest> {
    let (i, _) = tag(&b"get "[..]).parse(i)?;
    let (i, (offset, _, path)) = cut((context("offset", parse::u64_), sp, path)).parse(i)?;
    Ok((i, TreeRequest::Get { offset, path }))
}

/// `put` with a path (`tree-put-req`, quoted on [`tree_request`]).
fn tree_put_req(i: &[u8]) -> PResult<'_, TreeRequest> {
    let (i, parse::PutHead { size, mode, flow }) = parse::put_head(i)?;
    let (i, path) = path(i)?;
    Ok((
        i,
        TreeRequest::Put {
            size,
            mode,
            flow,
            path,
        },
    ))
}

/// ```abnf
/// ext-reply     =/ enable-ok / list-ok / mkdir-ok / rmdir-ok / delete-ok / rename-ok
/// ```
fn tree_reply(i: &[u8]) -> PResult<'_, TreeReply> {
    context(
        "ext-reply",
        all_consuming(alt((
            enable_ok, list_ok, mkdir_ok, rmdir_ok, delete_ok, rename_ok,
        ))),
    )
    .parse(i)
}

/// ```abnf
/// enable-ok     = %s"ok" SP %s"enable" SP ext-name eol
/// ```
fn enable_ok(i: &[u8]) -> PResult<'_, TreeReply> {
    map(
        preceded(tag(&b"ok enable "[..]), cut(ext_name)),
        TreeReply::Enabled,
    )
    .parse(i)
}

/// ```abnf
/// list-ok       = %s"ok" SP %s"list" SP count eol *list-entry
/// ```
/// The line only; the entries are decoded one by one.
fn list_ok(i: &[u8]) -> PResult<'_, TreeReply> {
    map(
        preceded(tag(&b"ok list "[..]), cut(context("count", parse::u64_))),
        |count| TreeReply::ListOk { count },
    )
    .parse(i)
}

/// ```abnf
/// mkdir-ok      = %s"ok" SP %s"mkdir" eol
/// ```
fn mkdir_ok(i: &[u8]) -> PResult<'_, TreeReply> {
    value(TreeReply::Mkdir, tag(&b"ok mkdir"[..])).parse(i)
}

/// ```abnf
/// rmdir-ok      = %s"ok" SP %s"rmdir" eol
/// ```
fn rmdir_ok(i: &[u8]) -> PResult<'_, TreeReply> {
    value(TreeReply::Rmdir, tag(&b"ok rmdir"[..])).parse(i)
}

/// ```abnf
/// delete-ok     = %s"ok" SP %s"delete" eol
/// ```
fn delete_ok(i: &[u8]) -> PResult<'_, TreeReply> {
    value(TreeReply::Delete, tag(&b"ok delete"[..])).parse(i)
}

/// ```abnf
/// rename-ok     = %s"ok" SP %s"rename" eol
/// ```
fn rename_ok(i: &[u8]) -> PResult<'_, TreeReply> {
    value(TreeReply::Rename, tag(&b"ok rename"[..])).parse(i)
}

/// ```abnf
/// file-entry    = %s"f" SP size SP mtime SP (digest / "-")
/// folder-entry  = %s"d" SP "-" SP mtime SP "-"
/// ```
/// Everything of `list-entry` before the path, its SP included.
fn list_entry_head(i: &[u8]) -> PResult<'_, (EntryKind, Timestamp)> {
    let file = |i| {
        let (i, _) = tag(&b"f "[..]).parse(i)?;
        let (i, (size, _, mtime, _, digest, _)) = cut((
            context("size", parse::u64_),
            sp,
            parse::mtime,
            sp,
            alt((map(parse::digest, Some), value(None, tag(&b"-"[..])))),
            sp,
        ))
        .parse(i)?;
        Ok((i, (EntryKind::File { size, digest }, mtime)))
    };
    let folder = |i| {
        let (i, _) = tag(&b"d "[..]).parse(i)?;
        let (i, (_, _, mtime, _, _, _)) = cut((
            context("folder-entry", tag(&b"-"[..])),
            sp,
            parse::mtime,
            sp,
            context("folder-entry", tag(&b"-"[..])),
            sp,
        ))
        .parse(i)?;
        Ok((i, (EntryKind::Folder, mtime)))
    };
    context("list-entry", alt((file, folder))).parse(i)
}

/// ```abnf
/// list-entry    = (file-entry / folder-entry) SP path eol
/// ```
fn list_entry(i: &[u8]) -> PResult<'_, ListEntry> {
    let (i, (kind, mtime)) = list_entry_head(i)?;
    let (i, path) = path(i)?;
    Ok((i, ListEntry { kind, mtime, path }))
}

/// [`list_entry`], with a bad path making the line [`ListLine::Skipped`].
fn list_line(i: &[u8]) -> PResult<'_, ListLine> {
    let (rest, (kind, mtime)) = list_entry_head(i)?;
    let line = match TreePath::from_bytes(rest) {
        Ok(path) => ListLine::Entry(ListEntry { kind, mtime, path }),
        Err(error) => ListLine::Skipped(SkippedListEntry {
            kind,
            mtime,
            path: rest.to_vec(),
            error,
        }),
    };
    Ok((&rest[rest.len()..], line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::NameError;
    use crate::parse::PutHead;

    fn p(s: &str) -> TreePath {
        TreePath::new(s).expect("a test path")
    }

    fn ext(s: &str) -> ExtName {
        ExtName::new(s).expect("an extension name")
    }

    fn request(line: &[u8]) -> Result<TreeRequest, InvalidKind> {
        match decode_tree_request(line) {
            Ok((r, n)) => {
                assert_eq!(n, line.len(), "the whole line is taken");
                Ok(r)
            }
            Err(DecodeError::Invalid(e)) => {
                assert_eq!(e.line_len, Some(line.len()), "{line:?}");
                Err(e.kind)
            }
            Err(DecodeError::Incomplete) => panic!("incomplete: {line:?}"),
        }
    }

    fn bad_name(error: NameError) -> Result<TreeRequest, InvalidKind> {
        Err(InvalidKind::BadName { error, put: None })
    }

    fn crlf(line: &[u8]) -> Vec<u8> {
        let mut v = line[..line.len() - 1].to_vec();
        v.extend_from_slice(b"\r\n");
        v
    }

    fn mtime() -> Timestamp {
        Timestamp::from_fields(2026, 11, 24, 19, 22, 8).expect("a test time")
    }

    fn all_requests() -> Vec<TreeRequest> {
        let mut all = vec![
            TreeRequest::Enable(ext("tree")),
            TreeRequest::Enable(ext("x-9")),
            TreeRequest::Mkdir(p("a")),
            TreeRequest::Rmdir(p("射频/天线")),
            TreeRequest::Delete(p("my docs/report (final).pdf")),
            TreeRequest::Rename {
                from: p("a b/c"),
                to: p("d/e f"),
            },
            TreeRequest::Rename {
                from: p(&vec!["x".repeat(200); 5].join("/")),
                to: p("y"),
            },
            TreeRequest::Get {
                offset: 0,
                path: p("a/b"),
            },
            TreeRequest::Get {
                offset: u64::MAX,
                path: p("x"),
            },
            TreeRequest::Put {
                size: 12,
                mode: PutMode::Replace,
                flow: PutFlow::Now,
                path: p("d/e/f.txt"),
            },
            TreeRequest::Put {
                size: 0,
                mode: PutMode::New,
                flow: PutFlow::Wait,
                path: p("z"),
            },
        ];
        for digests in [false, true] {
            for recursive in [false, true] {
                let options = ListOptions { digests, recursive };
                all.push(TreeRequest::List {
                    options,
                    folder: Folder::Root,
                });
                all.push(TreeRequest::List {
                    options,
                    folder: Folder::Path(p("a/b c")),
                });
            }
        }
        all
    }

    #[test]
    fn every_request_round_trips() {
        for r in all_requests() {
            let line = r.encode();
            assert_eq!(request(&line), Ok(r.clone()), "{line:?}");
            assert_eq!(request(&crlf(&line)), Ok(r), "CRLF too (FRAME-3)");
            // Any strict prefix is merely incomplete.
            assert_eq!(
                decode_tree_request(&line[..line.len() - 1]),
                Err(DecodeError::Incomplete)
            );
        }
    }

    #[test]
    fn requests_have_their_canonical_octets() {
        let rename = TreeRequest::Rename {
            from: p("a/天"),
            to: p("b"),
        };
        assert_eq!(rename.encode(), "rename 5 a/天 b\n".as_bytes());
        let list = TreeRequest::List {
            options: ListOptions {
                digests: true,
                recursive: true,
            },
            folder: Folder::Root,
        };
        assert_eq!(list.encode(), b"list digests,recursive .\n");
    }

    #[test]
    fn list_options_in_any_order_each_once() {
        let list = |o: &str| request(format!("list {o} .\n").as_bytes());
        let both = ListOptions {
            digests: true,
            recursive: true,
        };
        for o in ["digests,recursive", "recursive,digests"] {
            assert_eq!(
                list(o),
                Ok(TreeRequest::List {
                    options: both,
                    folder: Folder::Root
                })
            );
        }
        for bad in [
            "",
            "--",
            "-,digests",
            "digests,",
            ",digests",
            "digests,digests",
            "recursive,digests,recursive",
            "Digests",
            "digest",
            "digestsx",
            "all",
        ] {
            assert_eq!(list(bad), Err(InvalidKind::Syntax), "{bad:?}");
        }
        assert_eq!(request(b"list -\n"), Err(InvalidKind::Syntax));
        assert_eq!(request(b"list\n"), Err(InvalidKind::Syntax));
        assert_eq!(request(b"list - . \n"), bad_name(NameError::LeadingDot));
    }

    #[test]
    fn bad_paths_are_bad_names_in_every_request() {
        for (path, error) in [
            ("", NameError::Empty),
            ("/a", NameError::Empty),
            ("a/", NameError::Empty),
            ("a//b", NameError::Empty),
            ("a/../b", NameError::LeadingDot),
            ("..", NameError::LeadingDot),
            ("a/.hidden", NameError::LeadingDot),
            ("a\\b", NameError::ForbiddenChar('\\')),
            ("a\rb", NameError::ForbiddenChar('\r')),
            ("a/b ", NameError::EdgeSpace),
            ("a/e\u{301}", NameError::NotNfc),
            ("a\u{378}", NameError::Unassigned('\u{378}')),
        ] {
            for line in [
                format!("mkdir {path}\n"),
                format!("rmdir {path}\n"),
                format!("delete {path}\n"),
                format!("list - {path}\n"),
                format!("list digests {path}\n"),
                format!("get 7 {path}\n"),
                format!("rename 1 x {path}\n"),
            ] {
                assert_eq!(request(line.as_bytes()), bad_name(error), "{line:?}");
            }
            if !path.is_empty() {
                let line = format!("rename {} {path} x\n", path.len());
                assert_eq!(request(line.as_bytes()), bad_name(error), "{line:?}");
            }
        }
        assert_eq!(request(b"rename 1 x \n"), bad_name(NameError::Empty));
        assert_eq!(
            request(b"mkdir a/\xff\n"),
            bad_name(NameError::NotUtf8),
            "not UTF-8"
        );
        let deep = vec!["d"; crate::limits::MAX_DEPTH + 1].join("/");
        assert_eq!(
            request(format!("mkdir {deep}\n").as_bytes()),
            bad_name(NameError::PathTooDeep(crate::limits::MAX_DEPTH + 1))
        );
        let long = vec!["a".repeat(200); 6].join("/");
        assert_eq!(
            request(format!("delete {long}\n").as_bytes()),
            bad_name(NameError::PathTooLong(long.len()))
        );
        let name = "n".repeat(256);
        assert_eq!(
            request(format!("rmdir a/{name}\n").as_bytes()),
            bad_name(NameError::TooLong(256))
        );
    }

    #[test]
    fn a_bad_put_path_keeps_the_put_head_and_a_bad_put_line_closes() {
        for (line, error) in [
            (&b"put 5 new now ../etc/passwd\n"[..], NameError::LeadingDot),
            (b"put 5 new now /etc/passwd\n", NameError::Empty),
            (b"put 5 new now a//b\n", NameError::Empty),
        ] {
            assert_eq!(
                request(line),
                Err(InvalidKind::BadName {
                    error,
                    put: Some(PutHead {
                        size: 5,
                        mode: PutMode::New,
                        flow: PutFlow::Now
                    })
                }),
                "{line:?}"
            );
        }
        for line in [
            &b"put\n"[..],
            b"put x new now a/b\n",
            b"put 1 old now a/b\n",
            b"put 1 new later a/b\n",
            b"put 1 new now\n",
            b"put 01 new now a\n",
        ] {
            assert_eq!(request(line), Err(InvalidKind::MalformedPut), "{line:?}");
        }
        // A get whose offset is malformed is a syntax error, as in ferry/1.
        assert_eq!(request(b"get x a/b\n"), Err(InvalidKind::Syntax));
        assert_eq!(request(b"get 1  a/b\n"), bad_name(NameError::EdgeSpace));
    }

    #[test]
    fn rename_takes_exactly_len_octets() {
        assert_eq!(
            request("rename 9 a b/c d e f\n".as_bytes()),
            Ok(TreeRequest::Rename {
                from: p("a b/c d e"),
                to: p("f")
            })
        );
        assert_eq!(
            request(b"rename 3 a b c d\n"),
            Ok(TreeRequest::Rename {
                from: p("a b"),
                to: p("c d")
            }),
            "TO runs to the eol, spaces included"
        );
        for bad in [
            &b"rename 2 a b\n"[..], // no SP at LEN
            b"rename 5 a b\n",      // LEN beyond the line
            b"rename 3 a b\n",      // LEN reaches the eol
            b"rename 0 a b\n",
            b"rename 01 a b\n",
            b"rename 1025 a b\n",
            b"rename 10000 a b\n",
            b"rename x a b\n",
            b"rename 1  a b\n",
            b"rename 1 a\n",
            b"rename a b\n",
            b"rename\n",
        ] {
            assert_eq!(request(bad), Err(InvalidKind::Syntax), "{bad:?}");
        }
        // LEN splitting a UTF-8 character: FROM is not a valid path.
        assert_eq!(
            request("rename 2 a天 b\n".as_bytes()),
            Err(InvalidKind::Syntax),
            "no SP at octet 2"
        );
        assert_eq!(request(b"rename 2 a\xe5 b\n"), bad_name(NameError::NotUtf8));
        // FROM equal to TO, or TO within FROM, decodes: the core answers 510 (TREE-11).
        assert_eq!(
            request(b"rename 1 a a/b\n"),
            Ok(TreeRequest::Rename {
                from: p("a"),
                to: p("a/b")
            })
        );
    }

    #[test]
    fn other_lines_are_syntax_errors() {
        for bad in [
            &b"enable\n"[..],
            b"enable \n",
            b"enable Tree\n",
            b"enable 9x\n",
            b"enable tree extra\n",
            b"mkdir\n",
            b"MKDIR a\n",
            b"mkdir\ta\n",
            b"rmdir\n",
            b"delete\n",
            b"dir\n",
            b"close\n",
            b"version 1\n",
            b"unlink a\n",
            b"\n",
        ] {
            assert_eq!(request(bad), Err(InvalidKind::Syntax), "{bad:?}");
        }
        assert_eq!(
            decode_tree_request(&vec![b'a'; crate::limits::MAX_LINE]),
            Err(DecodeError::Invalid(crate::Invalid {
                kind: InvalidKind::LineTooLong,
                line_len: None,
                offset: crate::limits::MAX_LINE,
                rule: "eol"
            }))
        );
    }

    #[test]
    fn invalid_lines_say_where() {
        let at = |line: &[u8]| match decode_tree_request(line) {
            Err(DecodeError::Invalid(e)) => (e.offset, e.rule),
            other => panic!("{line:?}: {other:?}"),
        };
        assert_eq!(at(b"mkdir a//b\n"), (6, "path"));
        assert_eq!(at(b"list - a/..\n"), (7, "path"));
        assert_eq!(at(b"list x .\n"), (5, "list-opt"));
        assert_eq!(at(b"rename 1 x ..\n"), (11, "path"));
        assert_eq!(at(b"rename 1025 a b\n"), (7, "path-len"));
        assert_eq!(at(b"rename 2 a b\n"), (11, "rename-req"));
        assert_eq!(at(b"get 0 a/.b\n"), (6, "path"));
        assert_eq!(at(b"bogus\n"), (0, "ext-request"));
    }

    #[test]
    fn tree_verbs_are_recognised() {
        for yes in [
            &b"enable tree\n"[..],
            b"list - .\n",
            b"mkdir a",
            b"rmdir \n",
            b"delete\n",
            b"rename\r\n",
            b"list ",
        ] {
            assert!(is_tree_verb(yes), "{yes:?}");
        }
        for no in [
            &b"get 0 a/b\n"[..],
            b"put 1 new now a\n",
            b"dir\n",
            b"auth ed25519 a b c\n",
            b"lists\n",
            b"mkdirs a\n",
            b"delete\r",
            b"mkdir",
            b"MKDIR a\n",
            b" mkdir a\n",
            b"",
        ] {
            assert!(!is_tree_verb(no), "{no:?}");
        }
    }

    #[test]
    fn every_reply_round_trips() {
        for r in [
            TreeReply::Enabled(ext("tree")),
            TreeReply::ListOk { count: 0 },
            TreeReply::ListOk { count: u64::MAX },
            TreeReply::Mkdir,
            TreeReply::Rmdir,
            TreeReply::Delete,
            TreeReply::Rename,
        ] {
            let line = r.encode();
            assert_eq!(decode_tree_reply(&line), Ok((r.clone(), line.len())));
            let crlf = crlf(&line);
            assert_eq!(decode_tree_reply(&crlf), Ok((r, crlf.len())));
        }
        for bad in [
            &b"ok enable\n"[..],
            b"ok enable Tree\n",
            b"ok list\n",
            b"ok list 01\n",
            b"ok list -1\n",
            b"ok list 18446744073709551616\n",
            b"ok mkdir a\n",
            b"ok rmdir \n",
            b"ok deleted\n",
            b"ok  rename\n",
            b"ok dir 1\n",
            b"err 517 not-empty\n",
            b"ok\n",
        ] {
            assert!(
                matches!(
                    decode_tree_reply(bad),
                    Err(DecodeError::Invalid(crate::Invalid {
                        kind: InvalidKind::Syntax,
                        ..
                    }))
                ),
                "{bad:?}"
            );
        }
    }

    fn entries() -> Vec<ListEntry> {
        vec![
            ListEntry {
                kind: EntryKind::Folder,
                mtime: mtime(),
                path: p("a"),
            },
            ListEntry {
                kind: EntryKind::File {
                    size: 5,
                    digest: Some(Digest::of(b"hello")),
                },
                mtime: mtime(),
                path: p("a/天线15.doc"),
            },
            ListEntry {
                kind: EntryKind::File {
                    size: u64::MAX,
                    digest: None,
                },
                mtime: mtime(),
                path: p("b c"),
            },
        ]
    }

    #[test]
    fn every_list_entry_round_trips() {
        for e in entries() {
            let line = e.encode();
            assert_eq!(decode_list_entry(&line), Ok((e.clone(), line.len())));
            assert_eq!(
                decode_list_line(&line),
                Ok((ListLine::Entry(e.clone()), line.len()))
            );
            let crlf = crlf(&line);
            assert_eq!(decode_list_entry(&crlf), Ok((e, crlf.len())));
            assert_eq!(
                decode_list_entry(&line[..line.len() - 1]),
                Err(DecodeError::Incomplete)
            );
        }
        assert_eq!(
            entries()[0].encode(),
            b"d - 2026-11-24T19:22:08Z - a\n",
            "a folder's line"
        );
    }

    #[test]
    fn entries_with_bad_paths_are_skipped_not_invalid() {
        let head = b"f 5 2026-11-24T19:22:08Z - ";
        for (path, error) in [
            (
                &b"a//b"[..],
                PathError::Name {
                    index: 2,
                    error: NameError::Empty,
                },
            ),
            (
                b"../x",
                PathError::Name {
                    index: 1,
                    error: NameError::LeadingDot,
                },
            ),
            (
                b"a/.ferry-staging",
                PathError::Name {
                    index: 2,
                    error: NameError::LeadingDot,
                },
            ),
            (b"", PathError::Empty),
            (
                b"caf\xe9",
                PathError::Name {
                    index: 1,
                    error: NameError::NotUtf8,
                },
            ),
        ] {
            let mut line = head.to_vec();
            line.extend_from_slice(path);
            line.push(b'\n');
            match decode_list_line(&line) {
                Ok((ListLine::Skipped(s), n)) => {
                    assert_eq!(n, line.len());
                    assert_eq!(s.path, path);
                    assert_eq!(s.error, error);
                    assert_eq!(s.mtime, mtime());
                    assert_eq!(
                        s.kind,
                        EntryKind::File {
                            size: 5,
                            digest: None
                        }
                    );
                }
                other => panic!("{path:?}: {other:?}"),
            }
            assert!(
                matches!(
                    decode_list_entry(&line),
                    Err(DecodeError::Invalid(crate::Invalid {
                        kind: InvalidKind::BadName { .. },
                        ..
                    }))
                ),
                "strict decode refuses {path:?}"
            );
        }
        let deep = format!("d - 2026-11-24T19:22:08Z - {}\n", vec!["d"; 65].join("/"));
        assert!(matches!(
            decode_list_line(deep.as_bytes()),
            Ok((
                ListLine::Skipped(SkippedListEntry {
                    kind: EntryKind::Folder,
                    error: PathError::TooDeep(65),
                    ..
                }),
                _
            ))
        ));
        // Lines whose other fields are wrong stay invalid (ERR-10).
        for bad in [
            &b"f 5 2023-02-30T00:00:00Z - a\n"[..],
            b"f 05 2026-11-24T19:22:08Z - a\n",
            b"f - 2026-11-24T19:22:08Z - a\n",
            b"d 5 2026-11-24T19:22:08Z - a\n",
            b"d - 2026-11-24T19:22:08Z xxh3-128:99aa06d3014798d86001c324468d497f a\n",
            b"f 5 2026-11-24T19:22:08Z xxh3-128:99AA06d3014798d86001c324468d497f a\n",
            b"f 5 2026-11-24T19:22:08Z xxh3-128:99aa a\n",
            b"f 5 2026-11-24T19:22:08Z -\n",
            b"f 5 2026-11-24T19:22:08Z a\n",
            b"l 5 2026-11-24T19:22:08Z - a\n",
            b"5 2026-11-24T19:22:08Z a\n",
            b"F 5 2026-11-24T19:22:08Z - a\n",
            b"f  5 2026-11-24T19:22:08Z - a\n",
        ] {
            assert!(
                matches!(decode_list_line(bad), Err(DecodeError::Invalid(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
            assert!(matches!(
                decode_list_entry(bad),
                Err(DecodeError::Invalid(_))
            ));
        }
    }

    #[test]
    fn listing_order_is_by_path_octets_skipped_ones_included() {
        let line = |path: &[u8]| {
            let mut l = b"d - 2026-11-24T19:22:08Z - ".to_vec();
            l.extend_from_slice(path);
            l.push(b'\n');
            decode_list_line(&l).expect("a listing line").0
        };
        let mut l = TreeListing::new();
        for path in [&b"a"[..], b"a b", b"a/.x", b"a/b", b"ab", b"b"] {
            l.push(line(path)).expect("in order");
        }
        assert_eq!(l.entries.len(), 5);
        assert_eq!(l.skipped.len(), 1);
        assert!(l.push(line(b"b")).is_err(), "a path twice");
        assert!(l.push(line(b"a/c")).is_err(), "out of order");
    }
}
