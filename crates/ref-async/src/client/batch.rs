//! Pipelined batches on one connection (section 8): the session queues every request (and
//! eager payload), and the driver sends them while it reads the replies as they come, in
//! the same task, so neither side can block the other on full socket buffers (PIPE-3).

use std::path::{Path, PathBuf};

use ferry_client_core::local::{GetJob, batch_results, put_report};
use ferry_wire::{FileName, PutMode, TreePath};

use super::drive::{EagerFeed, Feed, Ops, drive};
use super::{
    Client, ClientError, GetOptions, GetReport, Plain, Progress, PutOptions, PutReport, local_path,
};
use crate::runtime::Runtime;

impl<R: Runtime> Client<R> {
    /// Downloads every name into `dest_dir` (each as `dest_dir/NAME`, with the guarantees of
    /// [`Client::get_to_path`]), pipelining the requests on this one connection: the request
    /// lines go out while the replies are read, in the same task.
    ///
    /// Returns one result per name, in order. Downloads that fail their check after a
    /// resume are retried from 0 (one by one) after the batch, per
    /// [`GetOptions::retry_from_zero`]. If the session ends in the middle, the remaining
    /// names fail with [`ClientError::Disconnected`].
    pub async fn get_many(
        &mut self,
        names: &[FileName],
        dest_dir: &Path,
        opts: &GetOptions,
        progress: impl FnMut(Progress<'_>),
    ) -> Vec<Result<GetReport, ClientError>> {
        let targets = names
            .iter()
            .map(|name| Ok((TreePath::from(name.clone()), local_path(dest_dir, name)?)))
            .collect();
        self.get_targets(targets, opts, progress).await
    }

    /// Downloads every `(path on the server, local file)` pair (the `tree` extension for
    /// paths of more than one name, see [`Client::get_path_to_path`]), pipelined on this one
    /// connection, with the guarantees and retries of [`Client::get_many`]. The local files'
    /// folders must exist: the caller chose them (TREE-14).
    pub async fn get_paths(
        &mut self,
        files: &[(TreePath, PathBuf)],
        opts: &GetOptions,
        progress: impl FnMut(Progress<'_>),
    ) -> Vec<Result<GetReport, ClientError>> {
        let targets = files
            .iter()
            .map(|(p, d)| Ok((p.clone(), d.clone())))
            .collect();
        self.get_targets(targets, opts, progress).await
    }

    async fn get_targets(
        &mut self,
        targets: Vec<Result<(TreePath, PathBuf), ClientError>>,
        opts: &GetOptions,
        mut progress: impl FnMut(Progress<'_>),
    ) -> Vec<Result<GetReport, ClientError>> {
        let mut results: Vec<Option<Result<GetReport, ClientError>>> =
            targets.iter().map(|_| None).collect();
        let mut jobs: Vec<Option<Result<GetJob, ClientError>>> =
            targets.iter().map(|_| None).collect();
        if opts.resume {
            // A resume hashes the partial files first, all in one trip.
            let todo: Vec<(usize, TreePath, PathBuf)> = targets
                .iter()
                .enumerate()
                .filter_map(|(i, t)| t.as_ref().ok().map(|(p, d)| (i, p.clone(), d.clone())))
                .collect();
            let o = *opts;
            let prepared = self
                .conn
                .rt
                .unblock(move || {
                    todo.into_iter()
                        .map(|(i, path, dest)| (i, GetJob::prepare_path(&path, dest, &o)))
                        .collect::<Vec<_>>()
                })
                .await;
            match prepared {
                Ok(prepared) => {
                    for (i, job) in prepared {
                        jobs[i] = Some(job);
                    }
                }
                Err(e) => {
                    for job in &mut jobs {
                        *job = Some(Err(ClientError::Io(std::io::Error::other(e.to_string()))));
                    }
                }
            }
        }
        let mut retry = Vec::new();
        {
            let mut ops: Plain<'_, _> = Ops::new(&mut progress);
            let mut started = Vec::new();
            for (i, target) in targets.iter().enumerate() {
                if let Err(e) = self.check_open() {
                    results[i] = Some(Err(e));
                    continue;
                }
                let (path, dest) = match target {
                    Ok(t) => t,
                    Err(e) => {
                        results[i] = Some(Err(copy_error(e)));
                        continue;
                    }
                };
                let job = match jobs[i].take() {
                    Some(Ok(job)) => Some(job),
                    Some(Err(e)) => {
                        results[i] = Some(Err(e));
                        continue;
                    }
                    None => None,
                };
                let id = ops.start_get(&mut self.session, path, dest.clone(), opts, job);
                started.push((i, id));
            }
            drive(
                &mut self.conn,
                &mut self.session,
                &mut ops,
                &mut Feed::Nothing,
            )
            .await;
            for (i, id) in started {
                results[i] = Some(
                    ops.take_finished(id)
                        .map_err(|f| f.note_retry(i, &mut retry)),
                );
            }
        }
        let fresh = opts.from_zero();
        for i in retry {
            if !self.is_open() {
                break;
            }
            if let Ok((path, dest)) = &targets[i] {
                results[i] = Some(
                    self.get_path_to_path(path, dest, &fresh, &mut progress)
                        .await,
                );
            }
        }
        batch_results(results)
    }

    /// Uploads every `(local path, name)` pair, pipelined on this one connection.
    ///
    /// Runs of consecutive files small enough for flow `now` are streamed while the replies
    /// are read, in the same task; a larger file is sent on its own with flow `wait` (nothing
    /// may follow a waiting put before its `go`, PUT-5). Returns one result per file, in
    /// order. `progress` is called as each eager file is confirmed and as each large file is
    /// sent. If the session ends in the middle, the remaining files fail with
    /// [`ClientError::Disconnected`].
    pub async fn put_many(
        &mut self,
        files: &[(PathBuf, FileName)],
        opts: &PutOptions,
        progress: impl FnMut(Progress<'_>),
    ) -> Vec<Result<PutReport, ClientError>> {
        let files: Vec<(PathBuf, TreePath)> = files
            .iter()
            .map(|(p, n)| (p.clone(), TreePath::from(n.clone())))
            .collect();
        self.put_paths(&files, opts, progress).await
    }

    /// Uploads every `(local path, path on the server)` pair, pipelined on this one
    /// connection, as [`Client::put_many`] does (the `tree` extension for paths of more than
    /// one name: the session sends `enable tree` first; the folders must exist, 511).
    pub async fn put_paths(
        &mut self,
        files: &[(PathBuf, TreePath)],
        opts: &PutOptions,
        mut progress: impl FnMut(Progress<'_>),
    ) -> Vec<Result<PutReport, ClientError>> {
        let mut results: Vec<Option<Result<PutReport, ClientError>>> =
            files.iter().map(|_| None).collect();
        // Which files fit flow `now` (their sizes), looked up once on the blocking pool.
        let eager: Vec<Option<u64>> = match self.session.eager_max(opts) {
            Some(max) => {
                let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
                self.conn
                    .rt
                    .unblock(move || {
                        paths
                            .iter()
                            .map(|p| {
                                std::fs::metadata(p)
                                    .ok()
                                    .filter(|m| m.is_file() && m.len() <= max)
                                    .map(|m| m.len())
                            })
                            .collect()
                    })
                    .await
                    .unwrap_or_else(|_| vec![None; files.len()])
            }
            None => vec![None; files.len()],
        };
        let mut i = 0;
        while i < files.len() {
            if let Err(e) = self.check_open() {
                results[i] = Some(Err(e));
                i += 1;
                continue;
            }
            if eager[i].is_none() {
                let (path, target) = &files[i];
                results[i] = Some(
                    self.put_path_from_path(path, target, opts, &mut progress)
                        .await,
                );
                i += 1;
                continue;
            }
            let mut end = i + 1;
            while end < files.len() && eager[end].is_some() {
                end += 1;
            }
            let sizes = eager[i..end].iter().map(|s| s.unwrap_or(0)).collect();
            self.put_batch(
                &files[i..end],
                sizes,
                &mut results[i..end],
                opts.mode,
                &mut progress,
            )
            .await;
            i = end;
        }
        batch_results(results)
    }

    /// Streams a run of eager puts, opening (and reading) the files in groups on the
    /// blocking pool, and reads their replies.
    async fn put_batch(
        &mut self,
        batch: &[(PathBuf, TreePath)],
        sizes: Vec<u64>,
        results: &mut [Option<Result<PutReport, ClientError>>],
        mode: PutMode,
        progress: &mut impl FnMut(Progress<'_>),
    ) {
        let opts = PutOptions { mode, eager: true };
        let Some(max) = self.session.eager_max(&opts) else {
            return;
        };
        let mut ops: Plain<'_, _> = Ops::new(progress);
        ops.confirm_only = true;
        let mut feed = Feed::Eager(Box::new(EagerFeed::new(batch, sizes, opts, max)));
        drive(&mut self.conn, &mut self.session, &mut ops, &mut feed).await;
        let Feed::Eager(feed) = feed else {
            return;
        };
        for (k, e) in feed.skipped {
            results[k] = Some(Err(e));
        }
        for (k, id) in feed.started {
            results[k] = Some(ops.take(id).and_then(put_report));
        }
    }
}

/// A copy of an error found before a batch began, for its one result.
fn copy_error(e: &ClientError) -> ClientError {
    match e {
        ClientError::LocalName { name, reason } => ClientError::LocalName {
            name: name.clone(),
            reason: reason.clone(),
        },
        other => ClientError::Local {
            path: None,
            source: std::io::Error::other(other.to_string()),
        },
    }
}
