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

use crate::code::Code;
use crate::digest::Digest;
use crate::message::{PutFlow, PutMode};
use crate::path::TreePath;
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
                let mode = match mode {
                    PutMode::New => "new",
                    PutMode::Replace => "replace",
                };
                let flow = match flow {
                    PutFlow::Wait => "wait",
                    PutFlow::Now => "now",
                };
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
