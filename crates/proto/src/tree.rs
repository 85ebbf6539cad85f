//! The storage side of the `tree` extension (spec section 17): what the core asks its driver
//! to do for `list`, `mkdir`, `rmdir`, `delete` and `rename`, and what the driver reports.
//! `get` and `put` with a path (TREE-5) use the ferry/1 actions, whose names are
//! [`TreePath`]s.

use ferry_wire::TreePath;
use ferry_wire::tree::{Folder, ListEntry, ListOptions};

/// A storage operation of the extension, performed by the driver (ferry-store's
/// `Root::tree` does all of them for ferry's servers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeOp {
    /// `list` (TREE-6, TREE-7): the entries of `folder`, sorted by path octets.
    List {
        /// What to list.
        folder: Folder,
        /// Digests, recursion.
        options: ListOptions,
        /// The most memory the entries may take, counted as [`entry_cost`] each: beyond it the
        /// listing stops and fails with `err 431 storage` (DIR-11), so that no listing holds
        /// more than its session was granted, however large the tree.
        budget: usize,
    },
    /// `mkdir` (TREE-8).
    Mkdir(TreePath),
    /// `rmdir` (TREE-9).
    Rmdir(TreePath),
    /// `delete` (TREE-10).
    Delete(TreePath),
    /// `rename` (TREE-11); `to` is neither `from` nor inside it (the core checked).
    Rename {
        /// What moves.
        from: TreePath,
        /// Where to.
        to: TreePath,
    },
}

/// What a [`TreeOp`] gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeDone {
    /// The entries of a `list`, sorted by their paths' octets, each once.
    Listing(Vec<ListEntry>),
    /// `mkdir`, `rmdir`, `delete` or `rename` done (and made durable, TREE-12).
    Done,
}

/// What one entry of a listing counts against a listing budget: the entry and its path.
pub fn entry_cost(entry: &ListEntry) -> usize {
    std::mem::size_of::<ListEntry>() + entry.path.as_str().len()
}
