//! Downloads: one get (`get_to_path`, `get_to_writer`), the partial-file policy and the payload receiver loop.

use super::*;

/// What [`Replies::recv_payload`] made of a payload whose framing completed.
pub(super) enum Received {
    Verified(Digest),
    /// The sink failed; the rest of the payload was read and dropped.
    SinkFailed(io::Error),
}

/// A failed get, and whether it is worth trying once more from offset 0.
pub(super) struct GetFail {
    pub(super) error: ClientError,
    pub(super) retry_from_zero: bool,
}

impl From<ClientError> for GetFail {
    fn from(error: ClientError) -> Self {
        Self {
            error,
            retry_from_zero: false,
        }
    }
}

/// A download to a path, prepared (on the blocking pool) before its request is sent.
pub(super) struct GetJob {
    pub(super) name: FileName,
    pub(super) dest: PathBuf,
    pub(super) part: PathBuf,
    pub(super) offset: u64,
    pub(super) prefix: Hasher,
    /// Modification time of the partial file when it was hashed (resume only).
    pub(super) part_mtime: Option<SystemTime>,
}

impl GetJob {
    /// Finds the partial file (hashing its content, for `resume`) or removes a stale one.
    /// Blocking: runs on the blocking pool, before the request goes out.
    pub(super) fn prepare(
        name: FileName,
        dest: PathBuf,
        opts: GetOptions,
    ) -> Result<Self, ClientError> {
        let part = part_path(&dest)?;
        let mut job = Self {
            name,
            dest,
            part,
            offset: 0,
            prefix: Hasher::new(),
            part_mtime: None,
        };
        if opts.resume {
            if let Some(mut file) = open_partial(&job.part)? {
                let mut buf = vec![0; RECV_BUF];
                loop {
                    match file.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            job.prefix.update(&buf[..n]);
                            job.offset += n as u64;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(ClientError::local(&job.part, e)),
                    }
                }
                job.part_mtime = file.metadata().and_then(|m| m.modified()).ok();
            }
        } else {
            remove_if_exists(&job.part)?;
        }
        Ok(job)
    }

    pub(super) fn request(&self) -> Request {
        Request::Get {
            offset: self.offset,
            name: self.name.clone(),
        }
    }

    /// The file to write the payload to: the partial file, at its end, or a new one.
    pub(super) fn open_sink(
        part: &Path,
        offset: u64,
        part_mtime: Option<SystemTime>,
    ) -> io::Result<File> {
        if offset == 0 {
            return OpenOptions::new().write(true).create_new(true).open(part);
        }
        let mut file = open_partial(part)
            .map_err(|e| io::Error::other(e.to_string()))?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the partial file vanished"))?;
        let meta = file.metadata()?;
        if meta.len() != offset || meta.modified().ok() != part_mtime {
            return Err(io::Error::other(
                "the partial file changed during the download",
            ));
        }
        file.seek(io::SeekFrom::End(0))?;
        Ok(file)
    }

    /// After a failure: removes the partial file unless it may hold good octets to resume
    /// from.
    pub(super) fn discard(part: &Path, keep: bool) {
        let empty = fs::symlink_metadata(part)
            .map(|m| m.len() == 0)
            .unwrap_or(true);
        if !keep || empty {
            let _ = fs::remove_file(part);
        }
    }
}

/// Opens an existing partial file for reading and writing, refusing anything that is not a
/// regular file (a symbolic link planted at the `.ferry-part` name is never followed).
pub(super) fn open_partial(part: &Path) -> Result<Option<File>, ClientError> {
    let meta = match fs::symlink_metadata(part) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ClientError::local(part, e)),
    };
    if !meta.is_file() {
        let e = io::Error::other("exists and is not a regular file; remove it to download");
        return Err(ClientError::local(part, e));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(part)
        .map_err(|e| ClientError::local(part, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let opened = file.metadata().map_err(|e| ClientError::local(part, e))?;
        if (opened.dev(), opened.ino()) != (meta.dev(), meta.ino()) {
            let e = io::Error::other("was replaced while it was being opened");
            return Err(ClientError::local(part, e));
        }
    }
    Ok(Some(file))
}

pub(super) fn remove_if_exists(path: &Path) -> Result<(), ClientError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ClientError::local(path, e)),
    }
}

impl<R: Runtime> Client<R> {
    /// Downloads `name` into `w`.
    ///
    /// **`w` receives the octets before they are verified**: only an `Ok` return means they
    /// match the server's digest. After an `Err`, whatever `w` received must be discarded
    /// (use [`Client::get_to_path`] for a file that is never left holding unverified data).
    /// If `w` fails, the rest of the payload is read and dropped so that the session goes on,
    /// and the result is [`ClientError::Local`].
    pub async fn get_to_writer<W>(
        &mut self,
        name: &FileName,
        w: &mut W,
        mut progress: impl FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let result = self.get_to_writer_inner(name, w, &mut progress).await;
        self.settle(result)
    }

    pub(super) async fn get_to_writer_inner<W>(
        &mut self,
        name: &FileName,
        w: &mut W,
        progress: &mut impl FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        self.rx.check_open()?;
        self.send(
            &Request::Get {
                offset: 0,
                name: name.clone(),
            }
            .to_bytes(),
        )
        .await?;
        let (size, mtime) = self.rx.recv_get_head(0).await?;
        let mut sink = Sink::<R, W>::Writer(w);
        match self
            .rx
            .recv_payload(name, 0, size, Hasher::new(), &mut sink, progress)
            .await?
        {
            Received::Verified(digest) => Ok(GetReport {
                name: name.clone(),
                path: None,
                size,
                mtime,
                digest,
                resumed_from: 0,
            }),
            Received::SinkFailed(source) => Err(ClientError::Local { path: None, source }),
        }
    }

    /// Downloads `name` to the file `dest`.
    ///
    /// The octets go to `<dest>.ferry-part` ([`part_path`]), which is renamed onto `dest`
    /// only after the digest has been verified: `dest` never holds unverified data, and a
    /// failed download leaves it untouched. [`GetOptions`] says whether an existing
    /// `.ferry-part` is resumed, whether a resume that fails verification is retried from 0,
    /// and whether a partial file survives a failure. The modification time announced by
    /// the server is applied when [`GetOptions::set_mtime`] is set. Files are not fsynced.
    pub async fn get_to_path(
        &mut self,
        name: &FileName,
        dest: &Path,
        opts: &GetOptions,
        mut progress: impl FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError> {
        let result = self
            .get_to_path_inner(name, dest, opts, &mut progress)
            .await;
        self.settle(result)
    }

    pub(super) async fn get_to_path_inner(
        &mut self,
        name: &FileName,
        dest: &Path,
        opts: &GetOptions,
        progress: &mut impl FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError> {
        self.rx.check_open()?;
        let job = self.rx.prepare(name, dest, *opts).await?;
        self.send(&job.request().to_bytes()).await?;
        match self.rx.finish_get(job, opts, progress).await {
            Ok(report) => Ok(report),
            Err(GetFail {
                retry_from_zero: true,
                ..
            }) if self.is_open() => {
                let fresh = GetOptions {
                    resume: false,
                    ..*opts
                };
                let job = self.rx.prepare(name, dest, fresh).await?;
                self.send(&job.request().to_bytes()).await?;
                self.rx
                    .finish_get(job, &fresh, progress)
                    .await
                    .map_err(|f| f.error)
            }
            Err(f) => Err(f.error),
        }
    }
}

impl<R: Runtime> Replies<R> {
    /// Prepares a download to `dest` on the blocking pool.
    pub(super) async fn prepare(
        &mut self,
        name: &FileName,
        dest: &Path,
        opts: GetOptions,
    ) -> Result<GetJob, ClientError> {
        let (name, dest) = (name.clone(), dest.to_path_buf());
        let path = dest.clone();
        match self
            .rt
            .unblock(move || GetJob::prepare(name, dest, opts))
            .await
        {
            Ok(r) => r,
            Err(e) => Err(ClientError::local(path, e)),
        }
    }

    /// Reads the reply to a get whose request was sent, and its payload into the job's
    /// partial file; renames it onto the destination once verified.
    pub(super) async fn finish_get(
        &mut self,
        job: GetJob,
        opts: &GetOptions,
        progress: &mut impl FnMut(Progress<'_>),
    ) -> Result<GetReport, GetFail> {
        let (size, mtime) = match self.recv_get_head(job.offset).await {
            Ok(head) => head,
            Err(ClientError::Refused(e)) if e.code == Code::BAD_OFFSET && job.offset > 0 => {
                // GET-8: the file is now shorter than the partial download.
                let part = job.part.clone();
                let _ = self.rt.unblock(move || fs::remove_file(part)).await;
                return Err(GetFail {
                    error: ClientError::Refused(e),
                    retry_from_zero: opts.retry_from_zero,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let opened = {
            let (part, offset, part_mtime) = (job.part.clone(), job.offset, job.part_mtime);
            self.rt
                .unblock(move || GetJob::open_sink(&part, offset, part_mtime))
                .await
        };
        let file = match opened.and_then(|r| r) {
            Ok(f) => f,
            Err(e) => {
                // Read and drop the payload so that the session can go on.
                let mut sink = Sink::<R, futures_lite::io::Sink>::Drop;
                let drained = self
                    .recv_payload(
                        &job.name,
                        job.offset,
                        size,
                        Hasher::new(),
                        &mut sink,
                        progress,
                    )
                    .await;
                return Err(match drained {
                    Err(session) if session.ends_session() => session.into(),
                    _ => ClientError::local(&job.part, e).into(),
                });
            }
        };
        let mut sink =
            Sink::<R, futures_lite::io::Sink>::File(FileWriter::new(self.rt.clone(), file));
        let received = self
            .recv_payload(
                &job.name,
                job.offset,
                size,
                job.prefix.clone(),
                &mut sink,
                progress,
            )
            .await;
        let flushed = match sink {
            Sink::File(w) => w.finish().await,
            _ => Err(io::Error::other("the download's file is gone")),
        };
        match (received, flushed) {
            (Ok(Received::Verified(digest)), Ok(file)) => {
                // The verified .ferry-part stays if the rename fails: a resume then costs
                // only the digest check.
                let (part, dest) = (job.part.clone(), job.dest.clone());
                let set_mtime = opts.set_mtime.then(|| mtime.to_system_time()).flatten();
                let renamed = self
                    .rt
                    .unblock(move || {
                        if let Some(t) = set_mtime {
                            // Cosmetic: a file system that cannot store it keeps the download.
                            let _ = file.set_modified(t);
                        }
                        drop(file);
                        fs::rename(&part, &dest)
                    })
                    .await
                    .and_then(|r| r);
                renamed.map_err(|e| ClientError::local(&job.dest, e))?;
                Ok(GetReport {
                    name: job.name,
                    path: Some(job.dest),
                    size,
                    mtime,
                    digest,
                    resumed_from: job.offset,
                })
            }
            (Ok(Received::SinkFailed(e)), _) | (Ok(Received::Verified(_)), Err(e)) => {
                self.discard_part(&job.part, false).await;
                Err(ClientError::local(&job.part, e).into())
            }
            (Err(error @ ClientError::Corrupt { .. }), _) => {
                self.discard_part(&job.part, false).await;
                let retry_from_zero = job.offset > 0 && opts.retry_from_zero;
                Err(GetFail {
                    error,
                    retry_from_zero,
                })
            }
            (Err(error), _) => {
                // GET-13: after `abort 430` the file changed while it was read; its octets
                // are never kept for a resume. Other failures may keep them (GET-12).
                let changed = matches!(&error, ClientError::Refused(e) if e.code == Code::CHANGED);
                self.discard_part(&job.part, opts.keep_partial && !changed)
                    .await;
                Err(error.into())
            }
        }
    }

    pub(super) async fn discard_part(&mut self, part: &Path, keep: bool) {
        let part = part.to_path_buf();
        let _ = self.rt.unblock(move || GetJob::discard(&part, keep)).await;
    }

    /// Reads the reply line of a get: `ok get SIZE MTIME` (with SIZE ≥ OFFSET, GET-4) or
    /// `err`.
    pub(super) async fn recv_get_head(
        &mut self,
        offset: u64,
    ) -> Result<(u64, Timestamp), ClientError> {
        match self.read_reply().await? {
            Reply::GetOk { size, mtime } if size >= offset => Ok((size, mtime)),
            Reply::GetOk { size, .. } => Err(self.violation(
                ViolationKind::Contradiction,
                format!("ok get {size} for offset {offset}: the server must answer 515 (GET-4)"),
            )),
            Reply::Err(e) => Err(ClientError::Refused(e)),
            other => Err(self.unexpected(&other, "get")),
        }
    }

    /// Receives the payload of a get whose reply announced `size`, from `offset`, into
    /// `sink`. `prefix` has hashed the local octets before `offset`.
    pub(super) async fn recv_payload<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        name: &FileName,
        offset: u64,
        size: u64,
        prefix: Hasher,
        sink: &mut Sink<'_, R, W>,
        progress: &mut impl FnMut(Progress<'_>),
    ) -> Result<Received, ClientError> {
        let mut rx = PayloadReceiver::resuming(size - offset, prefix);
        let mut sink_error: Option<io::Error> = None;
        loop {
            let (step, used) = match rx.feed(self.inbound.data()) {
                Ok(x) => x,
                Err(e) => {
                    return Err(self.violation(
                        ViolationKind::Payload,
                        format!("bad payload for \"{}\": {e}", visible(name.as_str())),
                    ));
                }
            };
            match step {
                Step::Data(d) => {
                    if sink_error.is_none()
                        && let Err(e) = sink.write(d).await
                    {
                        sink_error = Some(e);
                    }
                    self.inbound.consume(used);
                    progress(Progress {
                        name,
                        done: offset + rx.received(),
                        total: size,
                    });
                }
                Step::NeedMore => {
                    self.inbound.consume(used);
                    match self.inbound.fill().await {
                        Ok(0) => {
                            let e = ClientError::Truncated {
                                received: offset + rx.received(),
                                expected: size,
                            };
                            return Err(self.fail(e));
                        }
                        Ok(_) => {}
                        Err(e) => return Err(self.fail(ClientError::Io(e))),
                    }
                }
                Step::Complete(digest) => {
                    self.inbound.consume(used);
                    return Ok(match sink_error {
                        Some(e) => Received::SinkFailed(e),
                        None => Received::Verified(digest),
                    });
                }
                Step::Corrupt {
                    announced,
                    computed,
                } => {
                    self.inbound.consume(used);
                    return match sink_error {
                        Some(e) => Ok(Received::SinkFailed(e)),
                        None => Err(ClientError::Corrupt {
                            announced,
                            computed,
                        }),
                    };
                }
                Step::Aborted(e) => {
                    self.inbound.consume(used);
                    if let Some(local) = sink_error {
                        return Ok(Received::SinkFailed(local));
                    }
                    return Err(self.fail(ClientError::Refused(e)));
                }
            }
        }
    }
}
