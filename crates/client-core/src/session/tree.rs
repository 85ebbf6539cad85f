//! The client side of the `tree` extension (spec section 17): `enable tree` before the first
//! get or put by a path of more than one name (TREE-1, sent once and pipelined: nothing waits
//! for its reply), `list` with its entries, and `mkdir`, `rmdir`, `delete`, `rename`.

use ferry_wire::tree::{
    self, Folder, ListLine, ListOptions, TreeListing, TreeReply, TreeRequest, decode_list_line,
    decode_tree_reply,
};
use ferry_wire::{DecodeError, ExtName, Reply, TreePath, decode_reply};

use super::{Flow, Kind, Op, Outcome, Rx, read_failed, snippet, violation};
use crate::{ClientError, ViolationKind, visible};

/// An operation of the `tree` extension other than `get`/`put` by path (those are
/// [`super::ClientSession::get_path`] and [`super::ClientSession::put_path`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TreeOp {
    /// `list OPTS FOLDER` (TREE-6): completes with [`Outcome::TreeListing`].
    List {
        /// What to list: `.` (the served folder) or a folder's path.
        folder: Folder,
        /// Digests, recursion.
        options: ListOptions,
    },
    /// `mkdir PATH` (TREE-8): creates one folder whose parent exists.
    Mkdir(TreePath),
    /// `rmdir PATH` (TREE-9): removes an empty folder.
    Rmdir(TreePath),
    /// `delete PATH` (TREE-10): removes a file.
    Delete(TreePath),
    /// `rename LEN FROM TO` (TREE-11): moves a file or folder, never replacing.
    Rename {
        /// What to move.
        from: TreePath,
        /// Where to.
        to: TreePath,
    },
}

impl TreeOp {
    /// The request line's message.
    pub fn request(&self) -> TreeRequest {
        match self {
            TreeOp::List { folder, options } => TreeRequest::List {
                options: *options,
                folder: folder.clone(),
            },
            TreeOp::Mkdir(p) => TreeRequest::Mkdir(p.clone()),
            TreeOp::Rmdir(p) => TreeRequest::Rmdir(p.clone()),
            TreeOp::Delete(p) => TreeRequest::Delete(p.clone()),
            TreeOp::Rename { from, to } => TreeRequest::Rename {
                from: from.clone(),
                to: to.clone(),
            },
        }
    }

    /// The request's verb, for messages.
    pub fn verb(&self) -> &'static str {
        match self {
            TreeOp::List { .. } => "list",
            TreeOp::Mkdir(_) => "mkdir",
            TreeOp::Rmdir(_) => "rmdir",
            TreeOp::Delete(_) => "delete",
            TreeOp::Rename { .. } => "rename",
        }
    }
}

/// A reply line to a request of the extension: the extension's own, or ferry/1's (`err`).
enum AnyReply {
    Tree(TreeReply),
    Ferry(Reply),
}

/// The error of a session whose server does not list `tree` (EXT-1).
pub(super) fn not_offered() -> ClientError {
    ClientError::NotOffered {
        extension: tree::EXTENSION,
        what: "folders, delete or rename",
    }
}

/// `tree` as an extension name, for `enable`.
pub(super) fn tree_name() -> Option<ExtName> {
    ExtName::new(tree::EXTENSION).ok()
}

/// Decodes a reply to a request of the extension: `ok enable|list|mkdir|…`, or ferry/1's
/// `err` (and anything else ferry/1 decodes, which the caller then finds unexpected).
fn decode_any(buf: &[u8]) -> Result<(AnyReply, usize), DecodeError> {
    match decode_tree_reply(buf) {
        Ok((r, n)) => Ok((AnyReply::Tree(r), n)),
        Err(DecodeError::Incomplete) => Err(DecodeError::Incomplete),
        Err(tree_error) => match decode_reply(buf) {
            Ok((r, n)) => Ok((AnyReply::Ferry(r), n)),
            Err(_) => Err(tree_error),
        },
    }
}

impl super::ClientSession {
    /// The reply to the head operation, an `enable` or one of [`TreeOp`].
    pub(super) fn tree_reply_step(&mut self) -> Flow {
        let reply = match self.next_line(decode_any) {
            Ok(Some(r)) => r,
            Ok(None) => return Flow::NeedInput,
            Err(f) => {
                self.complete(Err(read_failed(f, "reply", false)));
                return Flow::Again;
            }
        };
        let Some(op) = self.ops.pop_front() else {
            return Flow::Nothing;
        };
        let result = match (&op.kind, reply) {
            (Kind::Enable, AnyReply::Tree(TreeReply::Enabled(e)))
                if e.as_str() == tree::EXTENSION =>
            {
                Ok(Outcome::Enabled)
            }
            (Kind::Enable, AnyReply::Ferry(Reply::Err(e))) => {
                // Later gets and puts by path will be refused (510): say why then.
                self.enable_refused = Some(e.clone());
                Err(ClientError::Refused(e))
            }
            (_, AnyReply::Ferry(Reply::Err(e))) => Err(ClientError::Refused(e)),
            (
                Kind::Tree(TreeOp::List { options, .. }),
                AnyReply::Tree(TreeReply::ListOk { count }),
            ) => {
                if count > self.options.max_listing {
                    Err(violation(
                        ViolationKind::Listing,
                        format!(
                            "the listing announces {count} entries, more than the {} this \
                             client accepts",
                            self.options.max_listing
                        ),
                    ))
                } else {
                    // DIR-8: COUNT is the server's claim, not an allocation size.
                    let mut listing = TreeListing::new();
                    listing.entries.reserve(count.min(1024) as usize);
                    let recursive = options.recursive;
                    self.ops.push_front(op);
                    self.rx = Rx::TreeEntries {
                        left: count,
                        listing: Box::new(listing),
                        recursive,
                    };
                    return Flow::Again;
                }
            }
            (Kind::Tree(t), AnyReply::Tree(r)) if done_reply(t, &r) => Ok(Outcome::TreeDone),
            (kind, r) => {
                let line = match r {
                    AnyReply::Tree(r) => r.encode(),
                    AnyReply::Ferry(r) => r.to_bytes(),
                };
                let verb = match kind {
                    Kind::Tree(t) => t.verb(),
                    _ => "enable",
                };
                Err(violation(
                    ViolationKind::Unexpected,
                    format!("unexpected reply to {verb}: \"{}\"", snippet(&line, None)),
                ))
            }
        };
        self.finish(op, result);
        Flow::Again
    }

    /// The entry lines of a `list` (TREE-6): an entry whose path this client cannot accept is
    /// skipped and reported, as NAME-14 has it for `dir`; entries out of order or repeated,
    /// skipped ones included, make the listing invalid (DIR-10's rule, ERR-10).
    pub(super) fn tree_entries_step(
        &mut self,
        mut left: u64,
        mut listing: Box<TreeListing>,
        recursive: bool,
    ) -> Flow {
        while left > 0 {
            let line = match self.next_line(decode_list_line) {
                Ok(Some(l)) => l,
                Ok(None) => {
                    self.rx = Rx::TreeEntries {
                        left,
                        listing,
                        recursive,
                    };
                    return Flow::NeedInput;
                }
                Err(f) => {
                    self.complete(Err(read_failed(f, "listing entry", false)));
                    return Flow::Again;
                }
            };
            if let ListLine::Entry(e) = &line
                && !recursive
                && e.path.depth() > 1
            {
                let what = format!(
                    "entry \"{}\" of a listing that is not recursive",
                    visible(e.path.as_str())
                );
                self.complete(Err(violation(ViolationKind::Listing, what)));
                return Flow::Again;
            }
            if let Err(e) = listing.push(line) {
                let what = format!(
                    "{e}: \"{}\" after \"{}\"",
                    visible(&String::from_utf8_lossy(&e.next)),
                    visible(&String::from_utf8_lossy(&e.previous))
                );
                self.complete(Err(violation(ViolationKind::Listing, what)));
                return Flow::Again;
            }
            left -= 1;
        }
        self.complete(Ok(Outcome::TreeListing(*listing)));
        Flow::Again
    }

    /// A get or put by a path of more than one name is done: if the server refused
    /// `enable tree`, its refusal explains the 510 the request got.
    pub(super) fn explain_path_error(&self, op: &Op, result: &mut Result<Outcome, ClientError>) {
        let by_path = match &op.kind {
            Kind::Get { path, .. } | Kind::Put { target: path, .. } => path.depth() > 1,
            _ => false,
        };
        if let (true, Some(refused), Err(ClientError::Refused(e))) =
            (by_path, &self.enable_refused, &*result)
            && e.code == ferry_wire::Code::BAD_NAME
        {
            *result = Err(ClientError::Refused(refused.clone()));
        }
    }
}

/// Whether `reply` is the success of `op` (other than `list`'s).
fn done_reply(op: &TreeOp, reply: &TreeReply) -> bool {
    matches!(
        (op, reply),
        (TreeOp::Mkdir(_), TreeReply::Mkdir)
            | (TreeOp::Rmdir(_), TreeReply::Rmdir)
            | (TreeOp::Delete(_), TreeReply::Delete)
            | (TreeOp::Rename { .. }, TreeReply::Rename)
    )
}
