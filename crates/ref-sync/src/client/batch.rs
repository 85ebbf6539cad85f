//! Pipelined batches on one connection (section 8): the session queues every request (and
//! eager payload) at once, and the driver sends them while it reads the replies as they
//! come, so neither side can block the other on full socket buffers (PIPE-3).

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ferry_client_core::session::{ClientSession, OpId};
use ferry_wire::{FileName, PutMode, TreePath};

use super::drive::{Feed, NoFeed, Ops, Sink, Source, drive};
use super::{
    Client, ClientError, GetOptions, GetReport, Progress, PutOptions, PutReport, local_path,
};
use ferry_client_core::local::{GetJob, PartState, batch_results, open_source, put_report};

impl Client {
    /// Downloads every name into `dest_dir` (each as `dest_dir/NAME`, with the guarantees of
    /// [`Client::get_to_path`]), pipelining the requests on this one connection.
    ///
    /// Returns one result per name, in order. Downloads that fail their check after a
    /// resume are retried from 0 (one by one) after the batch, per
    /// [`GetOptions::retry_from_zero`]. If the session ends in the middle, the remaining
    /// names fail with [`ClientError::Disconnected`].
    pub fn get_many(
        &mut self,
        names: &[FileName],
        dest_dir: &Path,
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Vec<Result<GetReport, ClientError>> {
        let targets = names
            .iter()
            .map(|name| Ok((TreePath::from(name.clone()), local_path(dest_dir, name)?)))
            .collect();
        self.get_targets(targets, opts, progress)
    }

    /// Downloads every `(path on the server, local file)` pair (the `tree` extension for
    /// paths of more than one name, see [`Client::get_path_to_path`]), pipelined on this one
    /// connection, with the guarantees and retries of [`Client::get_many`]. The local files'
    /// folders must exist: the caller chose them (TREE-14).
    pub fn get_paths(
        &mut self,
        files: &[(TreePath, PathBuf)],
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Vec<Result<GetReport, ClientError>> {
        let targets = files
            .iter()
            .map(|(p, d)| Ok((p.clone(), d.clone())))
            .collect();
        self.get_targets(targets, opts, progress)
    }

    fn get_targets(
        &mut self,
        targets: Vec<Result<(TreePath, PathBuf), ClientError>>,
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Vec<Result<GetReport, ClientError>> {
        let mut results: Vec<Option<Result<GetReport, ClientError>>> =
            targets.iter().map(|_| None).collect();
        let mut retry = Vec::new();
        {
            let mut ops = Ops::new(progress);
            let mut started = Vec::new();
            for (i, target) in targets.iter().enumerate() {
                if let Err(e) = self.check_open() {
                    results[i] = Some(Err(e));
                    continue;
                }
                let job = match target {
                    Ok((path, dest)) => GetJob::prepare_path(path, dest.clone(), opts),
                    Err(e) => Err(copy_error(e)),
                };
                match job {
                    Ok(job) => {
                        let id =
                            self.session
                                .get_path(job.path.clone(), job.offset, job.prefix.clone());
                        ops.names.insert(id, job.name.clone());
                        ops.sinks.insert(
                            id,
                            Sink::Part {
                                job,
                                state: PartState::Unopened,
                                opts: *opts,
                            },
                        );
                        started.push((i, id));
                    }
                    Err(e) => results[i] = Some(Err(e)),
                }
            }
            drive(
                &mut self.transport,
                &mut self.session,
                &mut ops,
                &mut NoFeed,
            );
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
                results[i] = Some(self.get_path_to_path(path, dest, &fresh, progress));
            }
        }
        batch_results(results)
    }

    /// Uploads every `(local path, name)` pair, pipelined on this one connection.
    ///
    /// Runs of consecutive files small enough for flow `now` are streamed while the replies
    /// are read; a larger file is sent on its own with flow `wait` (nothing may follow a
    /// waiting put before its `go`, PUT-5). Returns one result per file, in order.
    /// `progress` is called as each eager file is confirmed and as each large file is sent.
    /// If the session ends in the middle, the remaining files fail with
    /// [`ClientError::Disconnected`].
    pub fn put_many(
        &mut self,
        files: &[(PathBuf, FileName)],
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Vec<Result<PutReport, ClientError>> {
        let files: Vec<(PathBuf, TreePath)> = files
            .iter()
            .map(|(p, n)| (p.clone(), TreePath::from(n.clone())))
            .collect();
        self.put_paths(&files, opts, progress)
    }

    /// Uploads every `(local path, path on the server)` pair, pipelined on this one
    /// connection, as [`Client::put_many`] does (the `tree` extension for paths of more than
    /// one name: the session sends `enable tree` first; the folders must exist, 511).
    pub fn put_paths(
        &mut self,
        files: &[(PathBuf, TreePath)],
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Vec<Result<PutReport, ClientError>> {
        let mut results: Vec<Option<Result<PutReport, ClientError>>> =
            files.iter().map(|_| None).collect();
        let eager_size = |session: &ClientSession, path: &Path| -> Option<u64> {
            let max = session.eager_max(opts)?;
            match fs::metadata(path) {
                Ok(m) if m.is_file() && m.len() <= max => Some(m.len()),
                _ => None,
            }
        };
        let mut i = 0;
        while i < files.len() {
            if let Err(e) = self.check_open() {
                results[i] = Some(Err(e));
                i += 1;
                continue;
            }
            if eager_size(&self.session, &files[i].0).is_none() {
                let (path, target) = &files[i];
                results[i] = Some(self.put_path_from_path(path, target, opts, progress));
                i += 1;
                continue;
            }
            let mut end = i + 1;
            while end < files.len() && eager_size(&self.session, &files[end].0).is_some() {
                end += 1;
            }
            self.put_batch(&files[i..end], &mut results[i..end], opts.mode, progress);
            i = end;
        }
        batch_results(results)
    }

    /// Streams a run of eager puts, opening each file only when the one before it has been
    /// sent, and reads their replies.
    fn put_batch(
        &mut self,
        batch: &[(PathBuf, TreePath)],
        results: &mut [Option<Result<PutReport, ClientError>>],
        mode: PutMode,
        progress: &mut dyn FnMut(Progress<'_>),
    ) {
        let opts = PutOptions { mode, eager: true };
        let Some(max) = self.session.eager_max(&opts) else {
            return;
        };
        let mut ops = Ops::new(progress);
        ops.confirm_only = true;
        let mut feed = EagerFeed {
            next: batch.iter().enumerate().collect(),
            opts,
            max,
            started: Vec::new(),
            skipped: Vec::new(),
        };
        drive(&mut self.transport, &mut self.session, &mut ops, &mut feed);
        for (k, e) in feed.skipped {
            results[k] = Some(Err(e));
        }
        for (k, id) in feed.started {
            results[k] = Some(ops.take(id).and_then(put_report));
        }
    }
}

/// The files of an eager batch, opened one at a time as the session is ready for the next.
struct EagerFeed<'b> {
    next: VecDeque<(usize, &'b (PathBuf, TreePath))>,
    opts: PutOptions,
    max: u64,
    started: Vec<(usize, OpId)>,
    skipped: Vec<(usize, ClientError)>,
}

impl<'a> Feed<'a> for EagerFeed<'_> {
    fn feed(&mut self, session: &mut ClientSession, ops: &mut Ops<'a, '_>) -> bool {
        while let Some((k, (path, name))) = self.next.pop_front() {
            if let Some(why) = session.ended() {
                self.skipped
                    .push((k, ClientError::Disconnected(why.to_owned())));
                continue;
            }
            let (file, size, unchanged) = match open_source(path) {
                Ok(src) => src,
                Err(e) => {
                    self.skipped.push((k, e));
                    continue;
                }
            };
            if size > self.max {
                let e = io::Error::other("the file grew beyond the eager limit before it was sent");
                self.skipped.push((k, ClientError::local(path, e)));
                continue;
            }
            let id = session.put_path(name.clone(), size, &self.opts, Some(path.clone()));
            ops.names.insert(id, name.split_last().1);
            ops.sources.insert(
                id,
                Source {
                    reader: Box::new(file),
                    unchanged,
                },
            );
            self.started.push((k, id));
            return true;
        }
        false
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
            source: io::Error::other(other.to_string()),
        },
    }
}
