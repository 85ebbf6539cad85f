//! Pipelined batches on one connection (section 8). A writer thread, on a clone of the
//! socket, sends the requests (and eager payloads) while the calling thread reads the replies
//! as they come, so neither side can block the other on full socket buffers (PIPE-3).

use std::fs;
use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use ferry_wire::{FileName, PutFlow, PutMode, Request};

use super::send::{ChunkBuf, Sent, send_payload};
use super::{
    Client, ClientError, GetFail, GetJob, GetOptions, GetReport, Progress, PutOptions, PutReport,
    local_path, open_source,
};

/// What the writer thread did with one file of an eager batch, in batch order.
enum Posted {
    /// The file could not be opened or no longer fits the eager limit: nothing was sent.
    Skipped(ClientError),
    /// The put line and payload (complete or aborted) went out.
    Sent { size: u64, sent: Sent },
    /// Writing to the connection failed; the writer stopped.
    WriteFailed(io::Error),
}

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
        let mut results: Vec<Option<Result<GetReport, ClientError>>> =
            names.iter().map(|_| None).collect();
        let mut jobs = Vec::new();
        let mut wire = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if let Err(e) = self.check_open() {
                results[i] = Some(Err(e));
                continue;
            }
            match local_path(dest_dir, name).and_then(|dest| GetJob::prepare(name, dest, opts)) {
                Ok(job) => {
                    job.request().encode(&mut wire);
                    jobs.push((i, job));
                }
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let mut retry = Vec::new();
        if !jobs.is_empty() {
            match self.stream.try_clone() {
                Err(e) => {
                    let e = self.fail(ClientError::Io(e));
                    let why = e.to_string();
                    for (i, _) in &jobs {
                        results[*i] = Some(Err(ClientError::Disconnected(why.clone())));
                    }
                }
                Ok(mut writer) => thread::scope(|s| {
                    s.spawn(move || writer.write_all(&wire));
                    for (i, job) in jobs {
                        if let Err(e) = self.check_open() {
                            results[i] = Some(Err(e));
                            continue;
                        }
                        results[i] = Some(match self.finish_get(job, opts, progress) {
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
                    // If the session ended early, the writer may be blocked: unblock it.
                    if !self.is_open() {
                        let _ = self.stream.shutdown(Shutdown::Both);
                    }
                }),
            }
        }
        for i in retry {
            if !self.is_open() {
                break;
            }
            let fresh = GetOptions {
                resume: false,
                ..*opts
            };
            let dest = match local_path(dest_dir, &names[i]) {
                Ok(d) => d,
                Err(e) => {
                    results[i] = Some(Err(e));
                    continue;
                }
            };
            results[i] = Some(self.get_to_path(&names[i], &dest, &fresh, progress));
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ClientError::Disconnected("not attempted".into()))))
            .collect()
    }

    /// Uploads every `(local path, name)` pair, pipelined on this one connection.
    ///
    /// Runs of consecutive files small enough for flow `now` are streamed by a writer
    /// thread while this thread reads the replies; a larger file is sent on its own with
    /// flow `wait` (nothing may follow a waiting put before its `go`, PUT-5). Returns one
    /// result per file, in order. `progress` is called as each eager file is confirmed and
    /// as each large file is sent. If the session ends in the middle, the remaining files
    /// fail with [`ClientError::Disconnected`].
    pub fn put_many(
        &mut self,
        files: &[(PathBuf, FileName)],
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Vec<Result<PutReport, ClientError>> {
        let mut results: Vec<Option<Result<PutReport, ClientError>>> =
            files.iter().map(|_| None).collect();
        let eager_size = |this: &Self, path: &Path| -> Option<u64> {
            let max = this.eager_max(opts)?;
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
            if eager_size(self, &files[i].0).is_none() {
                let (path, name) = &files[i];
                results[i] = Some(self.put_from_path(path, Some(name), opts, progress));
                i += 1;
                continue;
            }
            let mut end = i + 1;
            while end < files.len() && eager_size(self, &files[end].0).is_some() {
                end += 1;
            }
            self.put_batch(&files[i..end], &mut results[i..end], opts.mode, progress);
            i = end;
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ClientError::Disconnected("not attempted".into()))))
            .collect()
    }

    /// Streams a run of eager puts from a writer thread and reads their replies.
    fn put_batch(
        &mut self,
        batch: &[(PathBuf, FileName)],
        results: &mut [Option<Result<PutReport, ClientError>>],
        mode: PutMode,
        progress: &mut dyn FnMut(Progress<'_>),
    ) {
        let Some(max) = self.eager_max(&PutOptions { mode, eager: true }) else {
            return;
        };
        let writer = match self.stream.try_clone() {
            Ok(w) => w,
            Err(e) => {
                let e = self.fail(ClientError::Io(e));
                results[0] = Some(Err(e));
                return;
            }
        };
        let (tx, rx) = mpsc::channel();
        thread::scope(|s| {
            s.spawn(move || write_eager(writer, batch, mode, max, &tx));
            for ((path, name), slot) in batch.iter().zip(results.iter_mut()) {
                if let Err(e) = self.check_open() {
                    *slot = Some(Err(e));
                    continue;
                }
                let outcome = match rx.recv() {
                    Ok(Posted::Skipped(e)) => Err(e),
                    Ok(Posted::Sent { size, sent }) => {
                        let r = self.put_outcome(name, size, PutFlow::Now, sent, Some(path));
                        if r.is_ok() {
                            progress(Progress {
                                name,
                                done: size,
                                total: size,
                            });
                        }
                        r
                    }
                    Ok(Posted::WriteFailed(e)) => Err(self.write_failed(e)),
                    Err(_) => Err(self.fail(ClientError::Io(io::Error::other(
                        "the sending thread stopped unexpectedly",
                    )))),
                };
                *slot = Some(outcome);
            }
            // If the session ended early, the writer may be blocked: unblock it.
            if !self.is_open() {
                let _ = self.stream.shutdown(Shutdown::Both);
            }
        });
    }
}

/// The writer thread of an eager batch: for each file, the put line and its payload, read
/// and sent chunk by chunk; one [`Posted`] per file, in order.
fn write_eager(
    mut stream: TcpStream,
    batch: &[(PathBuf, FileName)],
    mode: PutMode,
    max: u64,
    tx: &mpsc::Sender<Posted>,
) {
    let mut buf = ChunkBuf::default();
    for (path, name) in batch {
        let (mut file, size, mut unchanged) = match open_source(path) {
            Ok(src) => src,
            Err(e) => {
                let _ = tx.send(Posted::Skipped(e));
                continue;
            }
        };
        if size > max {
            let e = io::Error::other("the file grew beyond the eager limit before it was sent");
            let _ = tx.send(Posted::Skipped(ClientError::local(path, e)));
            continue;
        }
        let line = Request::Put {
            size,
            mode,
            flow: PutFlow::Now,
            name: name.clone(),
        }
        .to_bytes();
        match send_payload(
            &mut stream,
            &mut buf,
            &line,
            size,
            &mut file,
            &mut unchanged,
            &mut |_| {},
        ) {
            Ok(sent) => {
                if tx.send(Posted::Sent { size, sent }).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Posted::WriteFailed(e));
                return;
            }
        }
    }
}
