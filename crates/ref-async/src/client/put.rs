//! Uploads: one put (`put_from_path`, `put_from_reader`) and its final reply.

use super::*;

/// A local file to upload: the open file, its size and modification time.
pub(super) type Opened = (File, u64, Option<SystemTime>);

/// Opens a local file for an upload (blocking).
pub(super) fn open_source(path: &Path) -> Result<Opened, ClientError> {
    let file = File::open(path).map_err(|e| ClientError::local(path, e))?;
    let meta = file.metadata().map_err(|e| ClientError::local(path, e))?;
    if !meta.is_file() {
        return Err(ClientError::local(
            path,
            io::Error::other("not a regular file"),
        ));
    }
    Ok((file, meta.len(), meta.modified().ok()))
}

impl<R: Runtime> Client<R> {
    /// Uploads `size` octets read from `r` as `name`.
    ///
    /// Exactly `size` octets are sent: if `r` ends early or fails, the upload is ended with
    /// `abort` (430 or 431, PUT-20), the server discards it, and the result is
    /// [`ClientError::Local`]. Files up to the eager limit (see
    /// [`ClientOptions::eager_limit`]) go with flow `now`, larger ones wait for `go`, so a
    /// refusal (512 exists, 513 too-large, 514 read-only, 432 no-space, 510 bad-name) costs
    /// no payload. Success means the server confirmed the size and digest that were sent
    /// (PUT-21).
    pub async fn put_from_reader<T>(
        &mut self,
        name: &FileName,
        size: u64,
        r: &mut T,
        opts: &PutOptions,
        mut progress: impl FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError>
    where
        T: AsyncRead + Unpin + ?Sized,
    {
        let mut src = Source::<R, T>::Reader(r);
        let result = self
            .put_source(name, size, &mut src, None, opts, &mut progress)
            .await;
        self.settle(result)
    }

    /// Uploads the local file at `path`, as `name` or, by default, under its own file name
    /// converted to NFC ([`name_for_local`], NAME-8). If the file changes size or
    /// modification time while it is sent, the upload is aborted (430).
    pub async fn put_from_path(
        &mut self,
        path: &Path,
        name: Option<&FileName>,
        opts: &PutOptions,
        mut progress: impl FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError> {
        let result = self
            .put_from_path_inner(path, name, opts, &mut progress)
            .await;
        self.settle(result)
    }

    pub(super) async fn put_from_path_inner(
        &mut self,
        path: &Path,
        name: Option<&FileName>,
        opts: &PutOptions,
        progress: &mut impl FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError> {
        self.rx.check_open()?;
        let name = match name {
            Some(n) => n.clone(),
            None => name_for_local(path)?,
        };
        let (file, size, mtime) = self.rx.open_source(path).await?;
        let mut src: Source<'_, R, futures_lite::io::Empty> = Source::File {
            rt: self.rx.rt.clone(),
            file: Arc::new(file),
            size,
            mtime,
        };
        self.put_source(&name, size, &mut src, Some(path), opts, progress)
            .await
    }

    pub(super) async fn put_source<T: AsyncRead + Unpin + ?Sized>(
        &mut self,
        name: &FileName,
        size: u64,
        src: &mut Source<'_, R, T>,
        path: Option<&Path>,
        opts: &PutOptions,
        progress: &mut impl FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError> {
        self.rx.check_open()?;
        let eager = self.rx.eager_max(opts).is_some_and(|max| size <= max);
        let flow = if eager { PutFlow::Now } else { PutFlow::Wait };
        let line = Request::Put {
            size,
            mode: opts.mode,
            flow,
            name: name.clone(),
        }
        .to_bytes();
        let lead: &[u8] = match flow {
            PutFlow::Wait => {
                self.send(&line).await?;
                match self.rx.read_reply().await? {
                    Reply::Go => {}
                    Reply::Err(e) => return Err(ClientError::Refused(e)),
                    other => return Err(self.rx.unexpected(&other, "put")),
                }
                &[]
            }
            PutFlow::Now => &line,
        };
        let mut on_sent = |done| {
            progress(Progress {
                name,
                done,
                total: size,
            })
        };
        let sent = send_payload(
            &mut self.tx,
            &mut self.chunk_buf,
            lead,
            size,
            src,
            &mut on_sent,
        )
        .await;
        match sent {
            Ok(sent) => self.rx.put_outcome(name, size, flow, sent, path).await,
            Err(e) => Err(self.write_failed(e).await),
        }
    }
}

impl<R: Runtime> Replies<R> {
    pub(super) async fn open_source(&mut self, path: &Path) -> Result<Opened, ClientError> {
        let owned = path.to_path_buf();
        match self.rt.unblock(move || open_source(&owned)).await {
            Ok(r) => r,
            Err(e) => Err(ClientError::local(path, e)),
        }
    }

    /// Reads the final reply of a put whose payload was sent (or aborted).
    pub(super) async fn put_outcome(
        &mut self,
        name: &FileName,
        size: u64,
        flow: PutFlow,
        sent: Sent,
        path: Option<&Path>,
    ) -> Result<PutReport, ClientError> {
        let reply = match self.read_reply().await {
            Ok(r) => r,
            Err(ClientError::Closed { .. }) if matches!(sent, Sent::Complete(_)) => {
                return Err(ClientError::Closed {
                    outcome_unknown: true,
                });
            }
            Err(e) => return Err(e),
        };
        match (reply, sent) {
            (Reply::PutOk { size: s, digest: d }, Sent::Complete(ours)) => {
                if s == size && d == ours {
                    Ok(PutReport {
                        name: name.clone(),
                        size,
                        digest: ours,
                        flow,
                    })
                } else {
                    Err(self.violation(ViolationKind::Contradiction, format!(
                        "the server confirmed {s} octets with {d}, but {size} octets with {ours} \
                         were sent"
                    )))
                }
            }
            (Reply::Err(e), Sent::Aborted(source)) if e.code == Code::ABORTED => {
                Err(ClientError::Local {
                    path: path.map(Path::to_path_buf),
                    source,
                })
            }
            (Reply::Err(e), _) => Err(ClientError::Refused(e)),
            (Reply::PutOk { .. }, Sent::Aborted(_)) => Err(self.violation(
                ViolationKind::Contradiction,
                "the server confirmed an upload that was aborted".to_owned(),
            )),
            (other, _) => Err(self.unexpected(&other, "put")),
        }
    }
}
