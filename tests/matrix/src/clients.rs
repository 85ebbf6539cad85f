//! One type over the four client implementations, with the threaded client's signatures:
//! `ferry_sync::client::Client` and `ferry_async::{async_std,tokio,smol}::BlockingClient`.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ferry_sync::client::{
    ClientError, ClientOptions, GetOptions, GetReport, Progress, PutOptions, PutReport,
};
use ferry_wire::{Entry, FileName};

use crate::Impl;

/// A connected client of one implementation.
#[derive(Debug)]
pub enum AnyClient {
    /// `ferry_sync::client::Client`.
    Threads(ferry_sync::client::Client),
    /// `ferry_async::async_std::BlockingClient`.
    AsyncStd(ferry_async::async_std::BlockingClient),
    /// `ferry_async::tokio::BlockingClient`.
    Tokio(ferry_async::tokio::BlockingClient),
    /// `ferry_async::smol::BlockingClient`.
    Smol(ferry_async::smol::BlockingClient),
}

macro_rules! each {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            AnyClient::Threads($c) => $e,
            AnyClient::AsyncStd($c) => $e,
            AnyClient::Tokio($c) => $e,
            AnyClient::Smol($c) => $e,
        }
    };
}

/// Client options for tests: 30 s timeouts.
pub fn options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Some(std::time::Duration::from_secs(10)),
        read_timeout: Some(std::time::Duration::from_secs(30)),
        write_timeout: Some(std::time::Duration::from_secs(30)),
        ..ClientOptions::default()
    }
}

impl AnyClient {
    /// Connects a client of `imp` to `addr`.
    pub fn connect(imp: Impl, addr: SocketAddr) -> Result<Self, ClientError> {
        let o = options();
        Ok(match imp {
            Impl::Threads => Self::Threads(ferry_sync::client::Client::connect_with(addr, &o)?),
            Impl::AsyncStd => Self::AsyncStd(ferry_async::async_std::connect_blocking(addr, &o)?),
            Impl::Tokio => Self::Tokio(ferry_async::tokio::connect_blocking(addr, &o)?),
            Impl::Smol => Self::Smol(ferry_async::smol::connect_blocking(addr, &o)?),
        })
    }

    /// `dir`.
    pub fn dir(&mut self) -> Result<Vec<Entry>, ClientError> {
        each!(self, c => c.dir())
    }

    /// `get_to_writer`.
    pub fn get_to_writer(
        &mut self,
        name: &FileName,
        w: &mut dyn Write,
    ) -> Result<GetReport, ClientError> {
        each!(self, c => c.get_to_writer(name, w, &mut |_: Progress<'_>| {}))
    }

    /// `get_to_path`.
    pub fn get_to_path(
        &mut self,
        name: &FileName,
        dest: &Path,
        opts: &GetOptions,
    ) -> Result<GetReport, ClientError> {
        each!(self, c => c.get_to_path(name, dest, opts, &mut |_: Progress<'_>| {}))
    }

    /// `put_from_reader`.
    pub fn put_from_reader(
        &mut self,
        name: &FileName,
        size: u64,
        r: &mut dyn Read,
        opts: &PutOptions,
    ) -> Result<PutReport, ClientError> {
        each!(self, c => c.put_from_reader(name, size, r, opts, &mut |_: Progress<'_>| {}))
    }

    /// `put_from_path`.
    pub fn put_from_path(
        &mut self,
        path: &Path,
        name: Option<&FileName>,
        opts: &PutOptions,
    ) -> Result<PutReport, ClientError> {
        each!(self, c => c.put_from_path(path, name, opts, &mut |_: Progress<'_>| {}))
    }

    /// `get_many` (pipelined).
    pub fn get_many(
        &mut self,
        names: &[FileName],
        dest_dir: &Path,
        opts: &GetOptions,
    ) -> Vec<Result<GetReport, ClientError>> {
        each!(self, c => c.get_many(names, dest_dir, opts, &mut |_: Progress<'_>| {}))
    }

    /// `put_many` (pipelined eager puts).
    pub fn put_many(
        &mut self,
        files: &[(PathBuf, FileName)],
        opts: &PutOptions,
    ) -> Vec<Result<PutReport, ClientError>> {
        each!(self, c => c.put_many(files, opts, &mut |_: Progress<'_>| {}))
    }

    /// `close`.
    pub fn close(self) -> Result<(), ClientError> {
        each!(self, c => c.close())
    }
}
