//! Pipelined batches on one connection (section 8): `get_many`, `put_many`.

use super::put::open_source;
use super::*;

/// Runs `reader` while also polling `writer` (in the same task), until `reader` is done; a
/// writer that has not finished by then is dropped (the session has ended, or there was
/// nothing left for it to do). This is how a batch sends while it reads (PIPE-3) without a
/// second task.
pub(super) async fn alongside<T>(
    writer: impl Future<Output = ()>,
    reader: impl Future<Output = T>,
) -> T {
    let mut writer = pin!(writer);
    let mut reader = pin!(reader);
    let mut writer_done = false;
    poll_fn(|cx| {
        if !writer_done && writer.as_mut().poll(cx).is_ready() {
            writer_done = true;
        }
        match reader.as_mut().poll(cx) {
            Poll::Ready(v) => Poll::Ready(v),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

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
        let mut jobs = Vec::new();
        let mut wire = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if let Err(e) = self.rx.check_open() {
                results[i] = Some(Err(e));
                continue;
            }
            let prepared = match local_path(dest_dir, name) {
                Ok(dest) => self.rx.prepare(name, &dest, *opts).await,
                Err(e) => Err(e),
            };
            match prepared {
                Ok(job) => {
                    job.request().encode(&mut wire);
                    jobs.push((i, job));
                }
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let mut retry = Vec::new();
        if !jobs.is_empty() {
            let Client { rx, tx, .. } = self;
            // A failed write surfaces on the reading side (EOF or a closing error).
            let writer = async {
                let _ = tx.write_all(&wire).await;
            };
            let reader = async {
                for (i, job) in jobs {
                    if let Err(e) = rx.check_open() {
                        results[i] = Some(Err(e));
                        continue;
                    }
                    results[i] = Some(match rx.finish_get(job, opts, &mut progress).await {
                        Ok(report) => Ok(report),
                        Err(GetFail {
                            error,
                            retry_from_zero,
                        }) => {
                            if retry_from_zero {
                                retry.push(i);
                            }
                            Err(error)
                        }
                    });
                }
            };
            alongside(writer, reader).await;
            self.settle(());
        }
        for i in retry {
            if !self.is_open() {
                break;
            }
            let fresh = GetOptions {
                resume: false,
                ..*opts
            };
            results[i] = Some(match local_path(dest_dir, &names[i]) {
                Ok(dest) => {
                    self.get_to_path(&names[i], &dest, &fresh, &mut progress)
                        .await
                }
                Err(e) => Err(e),
            });
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ClientError::Disconnected("not attempted".into()))))
            .collect()
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
        // Which files fit flow `now`, looked up once on the blocking pool.
        let eager: Vec<bool> = match self.rx.eager_max(opts) {
            None => vec![false; files.len()],
            Some(max) => {
                let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
                let sizes = self.rx.rt.unblock(move || {
                    paths
                        .iter()
                        .map(|p| {
                            fs::metadata(p)
                                .ok()
                                .filter(|m| m.is_file())
                                .map(|m| m.len())
                        })
                        .collect::<Vec<_>>()
                });
                match sizes.await {
                    Ok(sizes) => sizes.iter().map(|s| s.is_some_and(|s| s <= max)).collect(),
                    Err(_) => vec![false; files.len()],
                }
            }
        };
        let mut i = 0;
        while i < files.len() {
            if let Err(e) = self.rx.check_open() {
                results[i] = Some(Err(e));
                i += 1;
                continue;
            }
            if !eager[i] {
                let (path, name) = &files[i];
                results[i] = Some(
                    self.put_from_path(path, Some(name), opts, &mut progress)
                        .await,
                );
                i += 1;
                continue;
            }
            let mut end = i + 1;
            while end < files.len() && eager[end] {
                end += 1;
            }
            self.put_batch(
                &files[i..end],
                &mut results[i..end],
                opts.mode,
                &mut progress,
            )
            .await;
            self.settle(());
            i = end;
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ClientError::Disconnected("not attempted".into()))))
            .collect()
    }

    /// Streams a run of eager puts and reads their replies.
    pub(super) async fn put_batch(
        &mut self,
        batch: &[(PathBuf, FileName)],
        results: &mut [Option<Result<PutReport, ClientError>>],
        mode: PutMode,
        progress: &mut impl FnMut(Progress<'_>),
    ) {
        let Some(max) = self.rx.eager_max(&PutOptions { mode, eager: true }) else {
            return;
        };
        let (posted_tx, posted_rx) = async_channel::unbounded::<Posted>();
        let Client { rx, tx, chunk_buf } = self;
        let rt = rx.rt.clone();
        let writer = async {
            for (path, name) in batch {
                let opened = {
                    let path = path.clone();
                    rt.unblock(move || open_source(&path)).await
                };
                let (file, size, mtime) = match opened {
                    Ok(Ok(src)) => src,
                    Ok(Err(e)) => {
                        let _ = posted_tx.send(Posted::Skipped(e)).await;
                        continue;
                    }
                    Err(e) => {
                        let _ = posted_tx
                            .send(Posted::Skipped(ClientError::local(path, e)))
                            .await;
                        continue;
                    }
                };
                if size > max {
                    let e =
                        io::Error::other("the file grew beyond the eager limit before it was sent");
                    let _ = posted_tx
                        .send(Posted::Skipped(ClientError::local(path, e)))
                        .await;
                    continue;
                }
                let line = Request::Put {
                    size,
                    mode,
                    flow: PutFlow::Now,
                    name: name.clone(),
                }
                .to_bytes();
                let mut src: Source<'_, R, futures_lite::io::Empty> = Source::File {
                    rt: rt.clone(),
                    file: Arc::new(file),
                    size,
                    mtime,
                };
                match send_payload(tx, chunk_buf, &line, size, &mut src, &mut |_| {}).await {
                    Ok(sent) => {
                        if posted_tx.send(Posted::Sent { size, sent }).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = posted_tx.send(Posted::WriteFailed(e)).await;
                        return;
                    }
                }
            }
        };
        let reader = async {
            for ((path, name), slot) in batch.iter().zip(results.iter_mut()) {
                if let Err(e) = rx.check_open() {
                    *slot = Some(Err(e));
                    continue;
                }
                let outcome = match posted_rx.recv().await {
                    Ok(Posted::Skipped(e)) => Err(e),
                    Ok(Posted::Sent { size, sent }) => {
                        let r = rx
                            .put_outcome(name, size, PutFlow::Now, sent, Some(path))
                            .await;
                        if r.is_ok() {
                            progress(Progress {
                                name,
                                done: size,
                                total: size,
                            });
                        }
                        r
                    }
                    Ok(Posted::WriteFailed(e)) => Err(rx.write_failed(e).await),
                    Err(_) => Err(rx.fail(ClientError::Io(io::Error::other(
                        "the sending side stopped unexpectedly",
                    )))),
                };
                *slot = Some(outcome);
            }
        };
        alongside(writer, reader).await;
    }

    // -------------------------------------------------------------- plumbing ---
}

/// What the sending side of an eager batch did with one file, in batch order.
pub(super) enum Posted {
    /// The file could not be opened or no longer fits the eager limit: nothing was sent.
    Skipped(ClientError),
    /// The put line and payload (complete or aborted) went out.
    Sent { size: u64, sent: Sent },
    /// Writing to the connection failed; the sending side stopped.
    WriteFailed(io::Error),
}
