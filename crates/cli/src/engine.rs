//! The protocol engines the `ferry` command can run on (`--impl`): the threaded reference
//! implementation and the async one on each runtime. Every engine offers the same client
//! calls with the same types (from `ferry-client-core`), so the commands are written once.

use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use ferry_async::BlockOn as _;
use ferry_client_core::session::{Outcome, TreeOp};
use ferry_sync::client::{
    ClientError, ClientOptions, GetOptions, GetReport, Progress, PutOptions, PutReport,
};
use ferry_wire::tree::{Folder, ListOptions, TreeListing};
use ferry_wire::{FileName, Listing, TreePath};

/// Implementations of the protocol engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Impl {
    /// Blocking sockets, one thread per connection (ferry-sync).
    Threads,
    /// async, on tokio (ferry-async).
    Tokio,
    /// async, on async-std (ferry-async; async-std is discontinued upstream, RUSTSEC-2025-0052).
    AsyncStd,
    /// async, on smol (ferry-async).
    Smol,
}

/// A client session on any engine.
pub(crate) enum AnyClient {
    /// ferry-sync.
    Threads(ferry_sync::client::Client),
    /// ferry-async on tokio.
    Tokio(ferry_async::tokio::BlockingClient),
    /// ferry-async on async-std.
    AsyncStd(ferry_async::async_std::BlockingClient),
    /// ferry-async on smol.
    Smol(ferry_async::smol::BlockingClient),
}

/// Calls the same method on whichever client is inside.
macro_rules! each {
    ($self:expr, $c:ident => $call:expr) => {
        match $self {
            AnyClient::Threads($c) => $call,
            AnyClient::Tokio($c) => $call,
            AnyClient::AsyncStd($c) => $call,
            AnyClient::Smol($c) => $call,
        }
    };
}

impl AnyClient {
    /// Connects with `engine` and reads the greeting.
    pub(crate) fn connect(
        engine: Impl,
        addr: impl std::net::ToSocketAddrs,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        Ok(match engine {
            Impl::Threads => {
                Self::Threads(ferry_sync::client::Client::connect_with(addr, options)?)
            }
            Impl::Tokio => Self::Tokio(ferry_async::tokio::connect_blocking(addr, options)?),
            Impl::AsyncStd => {
                Self::AsyncStd(ferry_async::async_std::connect_blocking(addr, options)?)
            }
            Impl::Smol => Self::Smol(ferry_async::smol::connect_blocking(addr, options)?),
        })
    }

    /// Starts a session with `engine` on a TCP connection the caller opened (and may keep a
    /// clone of, to shut it down).
    pub(crate) fn from_std(
        engine: Impl,
        stream: std::net::TcpStream,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        Ok(match engine {
            Impl::Threads => {
                Self::Threads(ferry_sync::client::Client::from_stream(stream, options)?)
            }
            Impl::Tokio => {
                let rt =
                    ferry_async::tokio::Tokio::new_current_thread().map_err(ClientError::Io)?;
                Self::Tokio(ferry_async::tokio::BlockingClient::from_std(
                    rt, stream, options,
                )?)
            }
            Impl::AsyncStd => Self::AsyncStd(ferry_async::async_std::BlockingClient::from_std(
                ferry_async::async_std::AsyncStd,
                stream,
                options,
            )?),
            Impl::Smol => Self::Smol(ferry_async::smol::BlockingClient::from_std(
                ferry_async::smol::Smol::new(),
                stream,
                options,
            )?),
        })
    }

    /// The server's greeting.
    pub(crate) fn greeting(&self) -> &ferry_wire::Greeting {
        each!(self, c => c.greeting())
    }

    /// Whether the session can still be used.
    pub(crate) fn is_open(&self) -> bool {
        each!(self, c => c.is_open())
    }

    /// Sends `close` and waits for `bye`.
    pub(crate) fn close(self) -> Result<(), ClientError> {
        each!(self, c => c.close())
    }

    /// Lists the served folder, with the entries skipped because their names are not valid
    /// here (NAME-14).
    pub(crate) fn dir_listing(&mut self) -> Result<Listing, ClientError> {
        match self {
            AnyClient::Threads(c) => c.dir_listing(),
            AnyClient::Tokio(c) => {
                let rt = c.get_mut().runtime().clone();
                rt.block_on(c.get_mut().dir_listing())
            }
            AnyClient::AsyncStd(c) => {
                let rt = *c.get_mut().runtime();
                rt.block_on(c.get_mut().dir_listing())
            }
            AnyClient::Smol(c) => {
                let rt = c.get_mut().runtime().clone();
                rt.block_on(c.get_mut().dir_listing())
            }
        }
    }

    /// Downloads one file to `dest`.
    pub(crate) fn get_to_path(
        &mut self,
        name: &FileName,
        dest: &Path,
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError> {
        each!(self, c => c.get_to_path(name, dest, opts, progress))
    }

    /// Downloads several files into `dest_dir`, pipelined.
    pub(crate) fn get_many(
        &mut self,
        names: &[FileName],
        dest_dir: &Path,
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Vec<Result<GetReport, ClientError>> {
        each!(self, c => c.get_many(names, dest_dir, opts, progress))
    }

    /// Uploads several local files, pipelined.
    pub(crate) fn put_many(
        &mut self,
        files: &[(PathBuf, FileName)],
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Vec<Result<PutReport, ClientError>> {
        each!(self, c => c.put_many(files, opts, progress))
    }

    /// Lists a folder (the `tree` extension).
    pub(crate) fn list(
        &mut self,
        folder: Folder,
        options: ListOptions,
    ) -> Result<TreeListing, ClientError> {
        each!(self, c => c.list(folder, options))
    }

    /// Runs `mkdir`, `rmdir`, `delete`, `rename` or `list` requests, pipelined.
    pub(crate) fn tree_many(&mut self, ops: &[TreeOp]) -> Vec<Result<Outcome, ClientError>> {
        each!(self, c => c.tree_many(ops))
    }

    /// Downloads files by path to local files whose folders exist, pipelined.
    pub(crate) fn get_paths(
        &mut self,
        files: &[(TreePath, PathBuf)],
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Vec<Result<GetReport, ClientError>> {
        each!(self, c => c.get_paths(files, opts, progress))
    }

    /// Uploads local files to paths, pipelined.
    pub(crate) fn put_paths(
        &mut self,
        files: &[(PathBuf, TreePath)],
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Vec<Result<PutReport, ClientError>> {
        each!(self, c => c.put_paths(files, opts, progress))
    }
}

/// How `ferry serve` stops: a trigger for whichever engine runs.
#[derive(Clone)]
pub(crate) enum AnyShutdown {
    /// ferry-sync's.
    Threads(ferry_sync::server::Shutdown),
    /// ferry-async's (every runtime).
    Async(ferry_async::server::Shutdown),
}

impl AnyShutdown {
    /// A fresh trigger for `engine`.
    pub(crate) fn new(engine: Impl) -> Self {
        match engine {
            Impl::Threads => Self::Threads(ferry_sync::server::Shutdown::new()),
            _ => Self::Async(ferry_async::server::Shutdown::new()),
        }
    }

    /// Starts the graceful shutdown.
    pub(crate) fn trigger(&self) {
        match self {
            Self::Threads(s) => s.trigger(),
            Self::Async(s) => s.trigger(),
        }
    }
}

/// Runs the server of `engine` until `shutdown` and its grace period are over.
pub(crate) fn serve(
    engine: Impl,
    listener: TcpListener,
    config: ferry_store::ServerConfig,
    shutdown: AnyShutdown,
) -> io::Result<()> {
    match (engine, shutdown) {
        (Impl::Threads, AnyShutdown::Threads(s)) => ferry_sync::server::run(listener, config, s),
        (Impl::Tokio, AnyShutdown::Async(s)) => ferry_async::tokio::serve(listener, config, s),
        (Impl::AsyncStd, AnyShutdown::Async(s)) => {
            ferry_async::async_std::serve(listener, config, s)
        }
        (Impl::Smol, AnyShutdown::Async(s)) => ferry_async::smol::serve(listener, config, s),
        _ => Err(io::Error::other("shutdown trigger of another engine")),
    }
}
