//! Pipelined batches on one connection (section 8): the session queues every request (and
//! eager payload), and the driver sends them while it reads the replies as they come, in
//! the same task, so neither side can block the other on full socket buffers (PIPE-3).

use std::path::{Path, PathBuf};

use ferry_client_core::local::{GetJob, batch_results, put_report, retry_targets};
use ferry_wire::{FileName, PutMode};

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
        mut progress: impl FnMut(Progress<'_>),
    ) -> Vec<Result<GetReport, ClientError>> {
        let mut results: Vec<Option<Result<GetReport, ClientError>>> =
            names.iter().map(|_| None).collect();
        // Where each file goes; a resume hashes the partial files first, all in one trip.
        let dests: Vec<Result<PathBuf, ClientError>> =
            names.iter().map(|n| local_path(dest_dir, n)).collect();
        let mut jobs: Vec<Option<Result<GetJob, ClientError>>> =
            names.iter().map(|_| None).collect();
        if opts.resume {
            let todo: Vec<(usize, FileName, PathBuf)> = dests
                .iter()
                .enumerate()
                .filter_map(|(i, d)| d.as_ref().ok().map(|d| (i, names[i].clone(), d.clone())))
                .collect();
            let o = *opts;
            let prepared = self
                .conn
                .rt
                .unblock(move || {
                    todo.into_iter()
                        .map(|(i, name, dest)| (i, GetJob::prepare(&name, dest, &o)))
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
            for (i, (name, dest)) in names.iter().zip(dests).enumerate() {
                if let Err(e) = self.check_open() {
                    results[i] = Some(Err(e));
                    continue;
                }
                let dest = match dest {
                    Ok(d) => d,
                    Err(e) => {
                        results[i] = Some(Err(e));
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
                let id = ops.start_get(&mut self.session, name, dest, opts, job);
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
        for (i, dest, fresh) in retry_targets(retry, dest_dir, names, opts, &mut results) {
            if !self.is_open() {
                break;
            }
            results[i] = Some(
                self.get_to_path(&names[i], &dest, &fresh, &mut progress)
                    .await,
            );
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
                let (path, name) = &files[i];
                results[i] = Some(
                    self.put_from_path(path, Some(name), opts, &mut progress)
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
        batch: &[(PathBuf, FileName)],
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
