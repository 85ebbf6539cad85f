//! [`TestClient`]: a client of any [`Impl`] behind the threaded client's signatures, so that
//! one client test, written once as `fn name(imp: Impl)` and instantiated by
//! [`every_impl!`](crate::every_impl), runs against every client implementation:
//! `ferry_sync::client::Client`, and the async client (`ferry_async::client::Client`) on
//! async-std, tokio and smol through `ferry_async::blocking::BlockingClient`, which has the
//! threaded client's method signatures. Both drive the same client core
//! (`ferry_client_core::session::ClientSession`), and share its types: one `ClientError`, one
//! `GetOptions`, one `Progress`.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ferry_sync::client::{
    ClientError, ClientOptions, GetOptions, GetReport, Progress, PutOptions, PutReport,
};
use ferry_wire::{Entry, FileName, Greeting, Listing};

use crate::Impl;

/// A connected client of one implementation (the async ones need this crate's `async`
/// feature).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // a few per test
pub enum TestClient {
    /// `ferry_sync::client::Client`.
    Threads(ferry_sync::client::Client),
    /// `ferry_async::async_std::BlockingClient`.
    #[cfg(feature = "async")]
    AsyncStd(ferry_async::async_std::BlockingClient),
    /// `ferry_async::tokio::BlockingClient` (a current-thread runtime of its own).
    #[cfg(feature = "async")]
    Tokio(ferry_async::tokio::BlockingClient),
    /// `ferry_async::smol::BlockingClient`.
    #[cfg(feature = "async")]
    Smol(ferry_async::smol::BlockingClient),
}

/// `$e` with `$c` bound to the client inside, whichever implementation it is.
macro_rules! each {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            TestClient::Threads($c) => $e,
            #[cfg(feature = "async")]
            TestClient::AsyncStd($c) => $e,
            #[cfg(feature = "async")]
            TestClient::Tokio($c) => $e,
            #[cfg(feature = "async")]
            TestClient::Smol($c) => $e,
        }
    };
}

impl TestClient {
    /// Connects a client of `imp` to `addr` with [`ClientOptions::default`] and reads the
    /// greeting.
    pub fn connect(imp: Impl, addr: SocketAddr) -> Result<Self, ClientError> {
        Self::connect_with(imp, addr, &ClientOptions::default())
    }

    /// Connects a client of `imp` to `addr` and reads the greeting.
    pub fn connect_with(
        imp: Impl,
        addr: SocketAddr,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        Ok(match imp {
            Impl::Threads => {
                Self::Threads(ferry_sync::client::Client::connect_with(addr, options)?)
            }
            #[cfg(feature = "async")]
            Impl::AsyncStd => {
                Self::AsyncStd(ferry_async::async_std::connect_blocking(addr, options)?)
            }
            #[cfg(feature = "async")]
            Impl::Tokio => Self::Tokio(ferry_async::tokio::connect_blocking(addr, options)?),
            #[cfg(feature = "async")]
            Impl::Smol => Self::Smol(ferry_async::smol::connect_blocking(addr, options)?),
            #[cfg(not(feature = "async"))]
            _ => panic!("{imp}: enable ferry-test-support's `async` feature for async clients"),
        })
    }

    /// Which implementation this is.
    pub fn imp(&self) -> Impl {
        match self {
            TestClient::Threads(_) => Impl::Threads,
            #[cfg(feature = "async")]
            TestClient::AsyncStd(_) => Impl::AsyncStd,
            #[cfg(feature = "async")]
            TestClient::Tokio(_) => Impl::Tokio,
            #[cfg(feature = "async")]
            TestClient::Smol(_) => Impl::Smol,
        }
    }

    /// The server's greeting.
    pub fn greeting(&self) -> &Greeting {
        each!(self, c => c.greeting())
    }

    /// Whether the session can still carry requests.
    pub fn is_open(&self) -> bool {
        each!(self, c => c.is_open())
    }

    /// `dir`.
    pub fn dir(&mut self) -> Result<Vec<Entry>, ClientError> {
        each!(self, c => c.dir())
    }

    /// `dir_listing`: the listing with the entries skipped for their names.
    pub fn dir_listing(&mut self) -> Result<Listing, ClientError> {
        each!(self, c => c.dir_listing())
    }

    /// `get_to_writer`.
    pub fn get_to_writer(
        &mut self,
        name: &FileName,
        w: &mut dyn Write,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError> {
        each!(self, c => c.get_to_writer(name, w, progress))
    }

    /// `get_to_path`.
    pub fn get_to_path(
        &mut self,
        name: &FileName,
        dest: &Path,
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<GetReport, ClientError> {
        each!(self, c => c.get_to_path(name, dest, opts, progress))
    }

    /// `put_from_reader`.
    pub fn put_from_reader(
        &mut self,
        name: &FileName,
        size: u64,
        r: &mut dyn Read,
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError> {
        each!(self, c => c.put_from_reader(name, size, r, opts, progress))
    }

    /// `put_from_path`.
    pub fn put_from_path(
        &mut self,
        path: &Path,
        name: Option<&FileName>,
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<PutReport, ClientError> {
        each!(self, c => c.put_from_path(path, name, opts, progress))
    }

    /// `get_many` (pipelined).
    pub fn get_many(
        &mut self,
        names: &[FileName],
        dest_dir: &Path,
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Vec<Result<GetReport, ClientError>> {
        each!(self, c => c.get_many(names, dest_dir, opts, progress))
    }

    /// `put_many` (pipelined eager puts).
    pub fn put_many(
        &mut self,
        files: &[(PathBuf, FileName)],
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Vec<Result<PutReport, ClientError>> {
        each!(self, c => c.put_many(files, opts, progress))
    }

    /// `close`.
    pub fn close(self) -> Result<(), ClientError> {
        each!(self, c => c.close())
    }
}
