//! The session's side of the `tree` extension (spec section 17): which lines are the
//! extension's, `enable tree`, the checks of `list`, `mkdir`, `rmdir`, `delete` and `rename`
//! that need no storage (rights, a rename into itself, a read-only server), the
//! [`Action::Tree`] that performs the rest and its answer. `get` and `put` with a path are
//! ferry/1's `get` and `put` of the session ([`ServerSession::get`], [`ServerSession::put`]).

use ferry_wire::tree::{EXTENSION, ListEntry, TreeReply, TreeRequest};
use ferry_wire::{Code, TreePath};

use super::{Action, Grant, Listing, ServerSession, State};
use crate::auth::Right;
use crate::tree::{TreeDone, TreeOp, entry_cost};

/// A request of the extension waiting for its [`Action::Tree`].
#[derive(Debug)]
pub(super) struct Waiting {
    op: TreeOp,
    /// For `list`: the listing budget taken before the listing is collected (DIR-11).
    grant: Option<Grant>,
}

/// The request's verb, for the log and the audit.
fn command(op: &TreeOp) -> &'static str {
    match op {
        TreeOp::List { .. } => "list",
        TreeOp::Mkdir(_) => "mkdir",
        TreeOp::Rmdir(_) => "rmdir",
        TreeOp::Delete(_) => "delete",
        TreeOp::Rename { .. } => "rename",
    }
}

/// The path the request names (for `rename`, what moves; for a `list` of `.`, none).
fn path(op: &TreeOp) -> Option<&TreePath> {
    match op {
        TreeOp::List { folder, .. } => folder.path(),
        TreeOp::Mkdir(p) | TreeOp::Rmdir(p) | TreeOp::Delete(p) => Some(p),
        TreeOp::Rename { from, .. } => Some(from),
    }
}

/// Whether the request line that begins `input` (perhaps incomplete) is read with
/// [`ferry_wire::tree::decode_tree_request`]: one of the extension's verbs in a session that
/// `offered` it (TREE-2), or a `get`/`put` once `enabled` (TREE-5).
pub(super) fn is_tree_line(offered: bool, enabled: bool, input: &[u8]) -> bool {
    offered
        && (ferry_wire::tree::is_tree_verb(input)
            || (enabled && (input.starts_with(b"get ") || input.starts_with(b"put "))))
}

impl ServerSession {
    /// A request of the extension, in a session that offered it.
    pub(super) fn execute_tree(&mut self, request: TreeRequest) {
        self.audit_begin_tree(&request);
        match request {
            TreeRequest::Enable(ext) => {
                if ext.as_str() == EXTENSION {
                    // TREE-1: paths in get and put from here on; `ok` each time.
                    self.tree_enabled = true;
                    TreeReply::Enabled(ext).encode_into(&mut self.out);
                    self.log("enable", None, None, 0);
                } else {
                    // TREE-1: nothing else to enable.
                    self.reply_err("enable", None, Code::UNSUPPORTED);
                }
            }
            TreeRequest::Get { offset, path } => self.get(offset, path),
            TreeRequest::Put {
                size,
                mode,
                flow,
                path,
            } => self.put(size, mode, flow, path),
            TreeRequest::List { options, folder } => self.tree_op(
                Right::List,
                TreeOp::List {
                    folder,
                    options,
                    // Set when the listing budget is taken (`peek_tree`).
                    budget: 0,
                },
            ),
            TreeRequest::Mkdir(p) => self.tree_op(Right::Create, TreeOp::Mkdir(p)),
            TreeRequest::Rmdir(p) => self.tree_op(Right::Delete, TreeOp::Rmdir(p)),
            TreeRequest::Delete(p) => self.tree_op(Right::Delete, TreeOp::Delete(p)),
            TreeRequest::Rename { from, to } => {
                self.tree_op(Right::Rename, TreeOp::Rename { from, to });
            }
        }
    }

    /// The checks that need no storage, in TREE-13's order (the path's validity was the
    /// decoder's): the right (530, 550), a rename into itself (TREE-11: 510), a read-only
    /// server for a change (514); then the operation.
    fn tree_op(&mut self, right: Right, op: TreeOp) {
        let command = command(&op);
        if let TreeOp::Rename { to, .. } = &op {
            // For the log event of its answer.
            self.log_to = Some(to.clone());
        }
        if let Err(code) = self.allowed(right) {
            return self.reply_err(command, path(&op), code);
        }
        if let TreeOp::Rename { from, to } = &op
            && to.is_within(from)
        {
            tracing::info!("rename into itself refused");
            return self.reply_err(command, Some(from), Code::BAD_NAME);
        }
        if self.cfg.read_only && !matches!(op, TreeOp::List { .. }) {
            return self.reply_err(command, path(&op), Code::READ_ONLY);
        }
        self.state = State::Tree(Box::new(Waiting { op, grant: None }));
    }

    /// [`State::Tree`]: a `list` first takes what the last listing took out of the listing
    /// budget, and may use that and what is left (DIR-11); then the operation.
    pub(super) fn peek_tree(&mut self) -> Option<Action> {
        let State::Tree(waiting) = &mut self.state else {
            return None;
        };
        if let TreeOp::List { budget, .. } = &mut waiting.op
            && waiting.grant.is_none()
        {
            let memory = &self.cfg.listing_memory;
            match memory.take_hint() {
                Some(grant) => {
                    *budget = grant.n.saturating_add(memory.available());
                    waiting.grant = Some(grant);
                }
                None => {
                    let State::Tree(waiting) = std::mem::replace(&mut self.state, Self::between())
                    else {
                        return None;
                    };
                    tracing::info!("listing budget spent: list refused");
                    self.reply_err("list", path(&waiting.op), Code::STORAGE);
                    return None;
                }
            }
        }
        Some(Action::Tree(waiting.op.clone()))
    }

    /// The result of [`Action::Tree`]: for `list`, the entries (sorted by their paths'
    /// octets, each once, TREE-6), held out of the listing budget until they are sent (beyond
    /// it: `err 431 storage`, DIR-11); for the others, that it was done (and made durable,
    /// TREE-12). An error is answered as it comes (511, 512, 517, 518, 431, …).
    pub fn tree_done(&mut self, result: Result<TreeDone, Code>) {
        let State::Tree(waiting) = std::mem::replace(&mut self.state, Self::between()) else {
            return;
        };
        let Waiting { op, grant } = *waiting;
        let command = command(&op);
        let done = match result {
            Ok(done) => done,
            Err(code) => return self.reply_err(command, path(&op), code),
        };
        let reply = match (&op, done) {
            (TreeOp::List { .. }, TreeDone::Listing(entries)) => {
                return self.listing_done(&op, grant, entries);
            }
            (TreeOp::List { .. }, TreeDone::Done) => {
                tracing::warn!("a list's storage operation gave no listing");
                return self.reply_err(command, path(&op), Code::STORAGE);
            }
            (TreeOp::Mkdir(_), _) => TreeReply::Mkdir,
            (TreeOp::Rmdir(_), _) => TreeReply::Rmdir,
            (TreeOp::Delete(_), _) => TreeReply::Delete,
            (TreeOp::Rename { .. }, _) => TreeReply::Rename,
        };
        reply.encode_into(&mut self.out);
        self.log(command, path(&op), None, 0);
    }

    /// A `list`'s entries: held out of the listing budget until they are sent (DIR-11), then
    /// `ok list COUNT` and the entries, a part at a time.
    fn listing_done(&mut self, op: &TreeOp, grant: Option<Grant>, entries: Vec<ListEntry>) {
        let bytes = entries.iter().map(entry_cost).sum::<usize>();
        let Some(held) = self.hold_listing(grant, bytes) else {
            tracing::info!(
                entries = entries.len(),
                "listing budget spent: list refused"
            );
            return self.reply_err("list", path(op), Code::STORAGE);
        };
        let count = entries.len() as u64;
        TreeReply::ListOk { count }.encode_into(&mut self.out);
        self.log("list", path(op), None, count);
        self.state = State::SendingListing {
            entries: Listing::Tree(entries.into_iter()),
            _held: held,
        };
    }
}
