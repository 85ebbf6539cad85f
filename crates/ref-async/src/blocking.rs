//! [`BlockingClient`]: the async [`Client`] for sync callers, with the method signatures of
//! the threaded client (`ferry_sync::client::Client`): `&mut dyn Write` sinks, `&mut dyn Read`
//! sources and `&mut dyn FnMut(Progress)` callbacks. Each call runs the async client to
//! completion on the calling thread with [`BlockOn::block_on`] (each driver module has a
//! `BlockingClient` alias and a `connect` shortcut that makes a suitable runtime).
//!
//! Do not call it from inside an async task: it blocks the thread.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use ferry_client_core::session::{Outcome, TreeOp};
use ferry_wire::tree::{Folder, ListOptions, TreeListing};
use ferry_wire::{Entry, FileName, Greeting, Listing, TreePath};
use futures_io::{AsyncRead, AsyncWrite};

use crate::client::{
    Client, ClientError, ClientOptions, GetOptions, GetReport, Progress, PutOptions, PutReport,
};
use crate::runtime::BlockOn;

/// A ferry/1 session driven from sync code. See the [module documentation](self).
pub struct BlockingClient<R: BlockOn> {
    rt: R,
    client: Client<R>,
}

impl<R: BlockOn> std::fmt::Debug for BlockingClient<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingClient")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl<R: BlockOn> BlockingClient<R> {
    /// Connects on `rt` with [`ClientOptions::default`] and reads the greeting.
    pub fn connect(rt: R, addr: impl ToSocketAddrs) -> Result<Self, ClientError> {
        Self::connect_with(rt, addr, &ClientOptions::default())
    }

    /// Connects on `rt` and reads the greeting ([`Client::connect_with`]).
    pub fn connect_with(
        rt: R,
        addr: impl ToSocketAddrs,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        let client = rt.block_on(Client::connect_with(rt.clone(), addr, options))?;
        Ok(Self { rt, client })
    }

    /// Starts a session on a TCP connection the caller opened with std ([`Runtime::adopt`],
    /// then [`Client::from_stream`]): the caller may keep a clone of the socket and shut it
    /// down from another thread, which ends a call in progress at once.
    ///
    /// [`Runtime::adopt`]: crate::runtime::Runtime::adopt
    pub fn from_std(
        rt: R,
        stream: std::net::TcpStream,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        let stream = rt.adopt(stream).map_err(ClientError::Io)?;
        let client = rt.block_on(Client::from_stream(rt.clone(), stream, options))?;
        Ok(Self { rt, client })
    }

    /// The async client inside.
    pub fn get_mut(&mut self) -> &mut Client<R> {
        &mut self.client
    }

    /// The server's greeting.
    pub fn greeting(&self) -> &Greeting {
        self.client.greeting()
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.client.peer_addr()
    }

    /// Whether the session can still carry requests.
    pub fn is_open(&self) -> bool {
        self.client.is_open()
    }

    /// [`Client::dir`].
    pub fn dir(&mut self) -> Result<Vec<Entry>, ClientError> {
        self.rt.block_on(self.client.dir())
    }

    /// [`Client::dir_listing`]: the listing with the entries skipped for their names.
    pub fn dir_listing(&mut self) -> Result<Listing, ClientError> {
        self.rt.block_on(self.client.dir_listing())
    }

    /// [`Client::get_to_writer`] into a sync writer.
    pub fn get_to_writer(
        &mut self,
        name: &FileName,
        w: &mut dyn Write,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError> {
        let mut w = SyncWriter(w);
        self.rt
            .block_on(self.client.get_to_writer(name, &mut w, progress))
    }

    /// [`Client::get_to_path`].
    pub fn get_to_path(
        &mut self,
        name: &FileName,
        dest: &Path,
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError> {
        self.rt
            .block_on(self.client.get_to_path(name, dest, opts, progress))
    }

    /// [`Client::put_from_reader`] from a sync reader.
    pub fn put_from_reader(
        &mut self,
        name: &FileName,
        size: u64,
        r: &mut dyn Read,
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError> {
        let mut r = SyncReader(r);
        self.rt.block_on(
            self.client
                .put_from_reader(name, size, &mut r, opts, progress),
        )
    }

    /// [`Client::put_from_path`].
    pub fn put_from_path(
        &mut self,
        path: &Path,
        name: Option<&FileName>,
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError> {
        self.rt
            .block_on(self.client.put_from_path(path, name, opts, progress))
    }

    /// [`Client::get_many`].
    pub fn get_many(
        &mut self,
        names: &[FileName],
        dest_dir: &Path,
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Vec<Result<GetReport, ClientError>> {
        self.rt
            .block_on(self.client.get_many(names, dest_dir, opts, progress))
    }

    /// [`Client::put_many`].
    pub fn put_many(
        &mut self,
        files: &[(PathBuf, FileName)],
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Vec<Result<PutReport, ClientError>> {
        self.rt
            .block_on(self.client.put_many(files, opts, progress))
    }

    /// [`Client::get_paths`].
    pub fn get_paths(
        &mut self,
        files: &[(TreePath, PathBuf)],
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Vec<Result<GetReport, ClientError>> {
        self.rt
            .block_on(self.client.get_paths(files, opts, progress))
    }

    /// [`Client::put_paths`].
    pub fn put_paths(
        &mut self,
        files: &[(PathBuf, TreePath)],
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Vec<Result<PutReport, ClientError>> {
        self.rt
            .block_on(self.client.put_paths(files, opts, progress))
    }

    /// [`Client::list`].
    pub fn list(
        &mut self,
        folder: Folder,
        options: ListOptions,
    ) -> Result<TreeListing, ClientError> {
        self.rt.block_on(self.client.list(folder, options))
    }

    /// [`Client::tree_op`].
    pub fn tree_op(&mut self, op: TreeOp) -> Result<(), ClientError> {
        self.rt.block_on(self.client.tree_op(op))
    }

    /// [`Client::get_path_to_path`].
    pub fn get_path_to_path(
        &mut self,
        path: &TreePath,
        dest: &Path,
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError> {
        self.rt
            .block_on(self.client.get_path_to_path(path, dest, opts, progress))
    }

    /// [`Client::put_path_from_path`].
    pub fn put_path_from_path(
        &mut self,
        path: &Path,
        target: &TreePath,
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError> {
        self.rt
            .block_on(self.client.put_path_from_path(path, target, opts, progress))
    }

    /// [`Client::tree_many`].
    pub fn tree_many(&mut self, ops: &[TreeOp]) -> Vec<Result<Outcome, ClientError>> {
        self.rt.block_on(self.client.tree_many(ops))
    }

    /// [`Client::close`].
    pub fn close(self) -> Result<(), ClientError> {
        let Self { rt, client } = self;
        rt.block_on(client.close())
    }
}

/// A sync writer seen as an async one. Only sound inside `block_on` on the caller's thread,
/// where blocking is what the caller asked for.
struct SyncWriter<'a>(&'a mut dyn Write);

impl AsyncWrite for SyncWriter<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.0.write(buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.0.flush())
    }

    fn poll_close(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.0.flush())
    }
}

/// A sync reader seen as an async one (see [`SyncWriter`]).
struct SyncReader<'a>(&'a mut dyn Read);

impl AsyncRead for SyncReader<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.0.read(buf))
    }
}
