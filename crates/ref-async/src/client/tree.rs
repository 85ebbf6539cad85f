//! The requests of the `tree` extension (spec section 17) that are not transfers: `list`,
//! `mkdir`, `rmdir`, `delete`, `rename`, alone or pipelined. The protocol is the session's
//! ([`ferry_client_core::session::TreeOp`]); this only drives it.

use ferry_client_core::local::{batch_results, tree_done, tree_listing};
use ferry_client_core::session::{Outcome, TreeOp};
use ferry_wire::tree::{Folder, ListOptions, TreeListing};

use super::drive::{Feed, Ops, drive};
use super::{Client, ClientError, Plain, Quiet};
use crate::runtime::Runtime;

impl<R: Runtime> Client<R> {
    /// Lists `folder` (`list`, TREE-6): files and folders, with digests and at every depth
    /// as `options` ask, in ascending order of their paths. Entries whose paths this client
    /// cannot accept are in [`TreeListing::skipped`], never in its entries (TREE-14). A
    /// server without `tree` gives [`ClientError::NotOffered`].
    pub async fn list(
        &mut self,
        folder: Folder,
        options: ListOptions,
    ) -> Result<TreeListing, ClientError> {
        let op = TreeOp::List { folder, options };
        let result = self.tree_many(std::slice::from_ref(&op)).await.pop();
        tree_listing(result.unwrap_or_else(|| Err(lost())))
    }

    /// One `mkdir`, `rmdir`, `delete` or `rename`.
    pub async fn tree_op(&mut self, op: TreeOp) -> Result<(), ClientError> {
        let result = self.tree_many(std::slice::from_ref(&op)).await.pop();
        tree_done(result.unwrap_or_else(|| Err(lost())))
    }

    /// Runs `ops` pipelined, and returns one result per operation, in order
    /// ([`Outcome::TreeListing`] for a list, [`Outcome::TreeDone`] for the others). If the
    /// session ends in the middle, the rest fail with [`ClientError::Disconnected`].
    pub async fn tree_many(&mut self, ops: &[TreeOp]) -> Vec<Result<Outcome, ClientError>> {
        let mut results: Vec<Option<Result<Outcome, ClientError>>> =
            ops.iter().map(|_| None).collect();
        let mut driven: Plain<'_, _> = Ops::new(Quiet);
        let mut started = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match self.check_open() {
                Ok(()) => started.push((i, self.session.tree(op.clone()))),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        drive(
            &mut self.conn,
            &mut self.session,
            &mut driven,
            &mut Feed::Nothing,
        )
        .await;
        for (i, id) in started {
            results[i] = Some(driven.take(id));
        }
        batch_results(results)
    }
}

fn lost() -> ClientError {
    ClientError::Disconnected("the operation did not finish".into())
}
