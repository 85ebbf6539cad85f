//! The shell's connection to the server: one session at a time, opened again when the last
//! one ended (a cancelled transfer, a lost connection, the server's idle limit), and a
//! [`Canceller`] that stops the request in flight from another thread (Ctrl-C).
//!
//! ferry/1 has no way to stop a transfer inside a session, so cancelling ends the session:
//! the socket is shut down under the blocked call (this module connects it and keeps a
//! clone, on every engine); on the async engines the request's future is also dropped.
//! Either way the session is then dropped and a new one opened. A cancelled download keeps
//! its `.ferry-part` (`reget` resumes it); a cancelled upload is discarded by the server (its
//! staging file removed).

use std::net::{Shutdown, TcpStream, ToSocketAddrs as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ferry_async::BlockOn;
use ferry_sync::client::{
    ClientError, ClientOptions, GetOptions, GetReport, Progress, PutOptions, PutReport,
};
use ferry_wire::{FileName, Listing};

use crate::addr::ServerAddr;
use crate::engine::{AnyClient, Impl};

/// A session idle for this much less than the server's limit is already treated as closed.
const IDLE_MARGIN: Duration = Duration::from_secs(1);

/// Why a request did not give its result.
#[derive(Debug)]
pub(super) enum Failed {
    /// The request failed (the session may have ended with it).
    Client(ClientError),
    /// Ctrl-C (or [`Canceller::cancel`]) stopped it; the session was closed and a new one
    /// opened, or, if that failed, why (the next request tries again).
    Cancelled {
        /// Why no new session could be opened.
        reconnect_error: Option<ClientError>,
    },
}

impl From<ClientError> for Failed {
    fn from(e: ClientError) -> Self {
        Failed::Client(e)
    }
}

/// What the cancel trigger reaches while a request runs.
#[derive(Debug, Default)]
struct Armed {
    /// A request is running.
    active: bool,
    /// [`Canceller::cancel`] was called while it ran.
    fired: bool,
    /// The threaded engine's socket (a clone), shut down to unblock the call.
    stream: Option<TcpStream>,
    /// Wakes the async engines' race between the request and the cancel.
    wake: Option<async_channel::Sender<()>>,
}

/// Stops the request in flight, from any thread (the Ctrl-C thread, a test).
#[derive(Debug, Clone, Default)]
pub(super) struct Canceller(Arc<Mutex<Armed>>);

impl Canceller {
    /// Cancels the running request, if any; returns whether one was running.
    pub(super) fn cancel(&self) -> bool {
        let mut a = self.lock();
        if !a.active {
            return false;
        }
        a.fired = true;
        if let Some(s) = &a.stream {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(w) = &a.wake {
            let _ = w.try_send(());
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Armed> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A request starts: from now on [`Canceller::cancel`] stops it. Returns the receiver
    /// the async engines race against.
    fn arm(&self, stream: Option<&TcpStream>) -> async_channel::Receiver<()> {
        let (tx, rx) = async_channel::bounded(1);
        let mut a = self.lock();
        a.active = true;
        a.fired = false;
        a.stream = stream.and_then(|s| s.try_clone().ok());
        a.wake = Some(tx);
        rx
    }

    /// The request is over; returns whether it was cancelled.
    fn disarm(&self) -> bool {
        let mut a = self.lock();
        a.active = false;
        a.stream = None;
        a.wake = None;
        std::mem::take(&mut a.fired)
    }
}

/// Runs `request` on `rt` unless `cancel` fires first (then the request's future is dropped).
fn race<R: BlockOn, T>(
    rt: &R,
    request: impl Future<Output = T>,
    cancel: &async_channel::Receiver<()>,
) -> Option<T> {
    rt.block_on(futures_lite::future::or(
        async { Some(request.await) },
        async {
            // A closed channel (never, while armed) must not count as a cancel.
            match cancel.recv().await {
                Ok(()) => None,
                Err(_) => std::future::pending().await,
            }
        },
    ))
}

/// Runs one request on whichever engine, cancellable: `$sync` on the threaded client (the
/// socket is shut down to cancel it), `$async` raced against the cancel on the async ones.
macro_rules! cancellable {
    ($client:expr, $rx:expr, $c:ident => $sync:expr, async $async:expr) => {
        match $client {
            AnyClient::Threads($c) => Some($sync),
            AnyClient::Tokio($c) => {
                let rt = $c.get_mut().runtime().clone();
                let $c = $c.get_mut();
                race(&rt, $async, $rx)
            }
            AnyClient::AsyncStd($c) => {
                let rt = *$c.get_mut().runtime();
                let $c = $c.get_mut();
                race(&rt, $async, $rx)
            }
            AnyClient::Smol($c) => {
                let rt = $c.get_mut().runtime().clone();
                let $c = $c.get_mut();
                race(&rt, $async, $rx)
            }
        }
    };
}

/// The open session and what it takes to open another.
pub(super) struct Session {
    engine: Impl,
    addr: ServerAddr,
    options: ClientOptions,
    cancel: Canceller,
    /// `None` after the session ended; the next request opens a new one.
    client: Option<Open>,
}

struct Open {
    client: AnyClient,
    /// The threaded engine's socket (a clone), for cancelling.
    stream: Option<TcpStream>,
    /// The server's idle limit (`idle` in its greeting).
    idle: Duration,
    last_used: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("engine", &self.engine)
            .field("addr", &self.addr)
            .field("open", &self.client.is_some())
            .finish_non_exhaustive()
    }
}

/// Connects with `engine` on a socket this module connected itself, so that it keeps a clone
/// to shut down (every engine: a command of the `tree` extension is many calls, which only a
/// socket shut down under them stops).
fn open(engine: Impl, addr: &ServerAddr, options: &ClientOptions) -> Result<Open, ClientError> {
    let stream = connect_tcp(addr, options)?;
    let clone = stream.try_clone().map_err(ClientError::Io)?;
    let client = AnyClient::from_std(engine, stream, options)?;
    let stream = Some(clone);
    crate::commands::show_tls_notices(options);
    let idle = match &client {
        AnyClient::Threads(c) => c.greeting().limits().idle,
        AnyClient::Tokio(c) => c.greeting().limits().idle,
        AnyClient::AsyncStd(c) => c.greeting().limits().idle,
        AnyClient::Smol(c) => c.greeting().limits().idle,
    };
    Ok(Open {
        client,
        stream,
        idle: Duration::from_secs(idle),
        last_used: Instant::now(),
    })
}

/// Connects a TCP socket to the first address of `addr` that answers (as
/// `ferry_sync::client::Client::connect_with` does).
fn connect_tcp(addr: &ServerAddr, options: &ClientOptions) -> Result<TcpStream, ClientError> {
    let addrs = addr
        .target()
        .to_socket_addrs()
        .map_err(|source| ClientError::Connect { addr: None, source })?;
    let mut last = None;
    for a in addrs {
        let attempt = match options.connect_timeout {
            Some(t) => TcpStream::connect_timeout(&a, t),
            None => TcpStream::connect(a),
        };
        match attempt {
            Ok(s) => return Ok(s),
            Err(source) => {
                last = Some(ClientError::Connect {
                    addr: Some(a),
                    source,
                })
            }
        }
    }
    Err(last.unwrap_or_else(|| ClientError::Connect {
        addr: None,
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the name resolved to no address",
        ),
    }))
}

impl Session {
    /// Opens the first session.
    pub(super) fn connect(
        engine: Impl,
        addr: &ServerAddr,
        options: ClientOptions,
        cancel: Canceller,
    ) -> Result<Self, ClientError> {
        let open = open(engine, addr, &options)?;
        Ok(Self {
            engine,
            addr: addr.clone(),
            options,
            cancel,
            client: Some(open),
        })
    }

    /// The server, as the user wrote it.
    pub(super) fn addr(&self) -> &ServerAddr {
        &self.addr
    }

    /// Whether a session is open (as far as the client knows).
    pub(super) fn is_open(&self) -> bool {
        self.client.as_ref().is_some_and(|o| o.client.is_open())
    }

    /// Ends the session (the next request opens a new one).
    pub(super) fn drop_session(&mut self) {
        self.client = None;
    }

    /// The open session, opening a new one if the last ended or has been idle past the
    /// server's limit (the server has closed it by now); says so on stderr.
    fn ready(&mut self) -> Result<&mut Open, ClientError> {
        let why = match &self.client {
            None => Some("the previous session ended"),
            Some(o) if !o.client.is_open() => Some("the previous session ended"),
            // With a margin: the server may be closing it right now.
            Some(o) if !o.idle.is_zero() && o.last_used.elapsed() + IDLE_MARGIN >= o.idle => {
                Some("the server ends sessions idle for longer than its limit")
            }
            Some(_) => None,
        };
        if let Some(why) = why {
            if let Some(old) = self.client.take() {
                crate::commands::close(old.client);
            }
            let open = open(self.engine, &self.addr, &self.options)?;
            eprintln!("ferry: reconnected to {} ({why})", self.addr);
            self.client = Some(open);
        }
        // Just set if it was missing.
        self.client
            .as_mut()
            .ok_or(ClientError::Disconnected("no session".into()))
    }

    /// Runs one request with the cancel armed; after a cancel, drops the session and opens
    /// a new one at once (saying so), so that the next command finds it ready.
    fn run<T>(
        &mut self,
        request: impl FnOnce(&mut AnyClient, &async_channel::Receiver<()>) -> Option<T>,
    ) -> Result<T, Failed> {
        let cancel = self.cancel.clone();
        let current = self.ready()?;
        let rx = cancel.arm(current.stream.as_ref());
        let result = request(&mut current.client, &rx);
        let fired = cancel.disarm();
        current.last_used = Instant::now();
        match result {
            Some(r) if !fired => Ok(r),
            _ => {
                // The socket was shut down or the request dropped half-way: this session
                // cannot go on.
                self.client = None;
                let reconnect_error = match open(self.engine, &self.addr, &self.options) {
                    Ok(o) => {
                        self.client = Some(o);
                        None
                    }
                    Err(e) => Some(e),
                };
                Err(Failed::Cancelled { reconnect_error })
            }
        }
    }

    /// `--timeout`, for the hints of error messages.
    pub(super) fn timeout(&self) -> Duration {
        self.options.read_timeout.unwrap_or_default()
    }

    /// Runs `f` on the session (the commands of the `tree` extension): Ctrl-C stops it on
    /// every engine (the socket is shut down under it).
    pub(super) fn with<T>(&mut self, f: impl FnOnce(&mut AnyClient) -> T) -> Result<T, Failed> {
        self.run(|client, _| Some(f(client)))
    }

    /// Lists the served folder.
    pub(super) fn dir(&mut self) -> Result<Listing, Failed> {
        self.run(
            |client, rx| cancellable!(client, rx, c => c.dir_listing(), async c.dir_listing()),
        )?
        .map_err(Failed::Client)
    }

    /// Downloads `name` to `dest`.
    pub(super) fn get(
        &mut self,
        name: &FileName,
        dest: &Path,
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<GetReport, Failed> {
        self.run(|client, rx| {
            cancellable!(client, rx, c => c.get_to_path(name, dest, opts, progress),
                async c.get_to_path(name, dest, opts, &mut *progress))
        })?
        .map_err(Failed::Client)
    }

    /// Downloads `names` into `dir`, pipelined.
    pub(super) fn get_many(
        &mut self,
        names: &[FileName],
        dir: &Path,
        opts: &GetOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Vec<Result<GetReport, ClientError>>, Failed> {
        self.run(|client, rx| {
            cancellable!(client, rx, c => c.get_many(names, dir, opts, progress),
                async c.get_many(names, dir, opts, &mut *progress))
        })
    }

    /// Uploads `path` under `name`.
    pub(super) fn put(
        &mut self,
        path: &Path,
        name: &FileName,
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<PutReport, Failed> {
        self.run(|client, rx| {
            cancellable!(client, rx, c => c.put_from_path(path, Some(name), opts, progress),
                async c.put_from_path(path, Some(name), opts, &mut *progress))
        })?
        .map_err(Failed::Client)
    }

    /// Uploads `files`, pipelined.
    pub(super) fn put_many(
        &mut self,
        files: &[(PathBuf, FileName)],
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Vec<Result<PutReport, ClientError>>, Failed> {
        self.run(|client, rx| {
            cancellable!(client, rx, c => c.put_many(files, opts, progress),
                async c.put_many(files, opts, &mut *progress))
        })
    }

    /// Ends the session politely.
    pub(super) fn close(self) -> Result<(), ClientError> {
        match self.client {
            Some(o) if o.client.is_open() => o.client.close(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use ferry_test_support::TestServer;
    use ferry_test_support::relay::{Relay, Stall};

    use super::*;

    fn via(relay: &Relay) -> ServerAddr {
        ServerAddr {
            host: "127.0.0.1".into(),
            port: relay.addr.port(),
            tls: false,
            user: None,
        }
    }

    const ENGINES: [Impl; 4] = [Impl::Threads, Impl::Tokio, Impl::AsyncStd, Impl::Smol];

    #[test]
    fn cancel_stops_a_hanging_download_and_the_next_request_works() {
        let server = TestServer::start();
        server.write_file("big.bin", &vec![7; 8 << 20]);
        let name = FileName::from_local("big.bin").expect("name");
        let local = tempfile::tempdir().expect("tempdir");
        for engine in ENGINES {
            // The download hangs after 3 MiB of the server's octets.
            let relay = Relay::start(server.addr, Stall::Down(3 << 20));
            let cancel = Canceller::default();
            let mut session = Session::connect(
                engine,
                &via(&relay),
                ClientOptions::default(),
                cancel.clone(),
            )
            .expect("connect");
            let dest = local.path().join(format!("{engine:?}.bin"));
            let mut fired = false;
            let result = session.get(&name, &dest, &GetOptions::default(), &mut |p| {
                if p.done > 0 && !fired {
                    fired = cancel.cancel();
                }
            });
            assert!(fired, "{engine:?}: the transfer was running");
            assert!(
                matches!(
                    result,
                    Err(Failed::Cancelled {
                        reconnect_error: None
                    })
                ),
                "{engine:?}: {result:?}"
            );
            assert!(
                !dest.exists(),
                "{engine:?}: nothing unverified at the destination"
            );
            assert!(!cancel.cancel(), "{engine:?}: nothing runs any more");
            // A new session is open, over the relay's second (full) connection.
            assert!(session.is_open(), "{engine:?}");
            let listing = session.dir().expect("dir after the cancel");
            assert_eq!(listing.entries.len(), 1, "{engine:?}");
            let report = session
                .get(&name, &dest, &GetOptions::default(), &mut |_| {})
                .expect("get after the cancel");
            assert_eq!(report.size, 8 << 20, "{engine:?}");
            session.close().expect("close");
        }
    }

    #[test]
    fn cancel_stops_a_hanging_upload_and_nothing_is_stored() {
        let server = TestServer::start();
        let local = tempfile::tempdir().expect("tempdir");
        let file = local.path().join("up.bin");
        std::fs::write(&file, vec![9; 32 << 20]).expect("file");
        let name = FileName::from_local("up.bin").expect("name");
        for engine in ENGINES {
            // The upload hangs after 2 MiB of the client's octets.
            let relay = Relay::start(server.addr, Stall::Up(2 << 20));
            let cancel = Canceller::default();
            let mut session = Session::connect(
                engine,
                &via(&relay),
                ClientOptions::default(),
                cancel.clone(),
            )
            .expect("connect");
            let mut fired = false;
            let result = session.put(&file, &name, &PutOptions::default(), &mut |p| {
                if p.done > 0 && !fired {
                    fired = cancel.cancel();
                }
            });
            assert!(fired, "{engine:?}: the transfer was running");
            assert!(
                matches!(
                    result,
                    Err(Failed::Cancelled {
                        reconnect_error: None
                    })
                ),
                "{engine:?}: {result:?}"
            );
            drop(relay);
            assert!(server.wait_staging_empty(), "{engine:?}: staging cleaned");
            assert_eq!(
                server.read_file("up.bin"),
                None,
                "{engine:?}: nothing stored"
            );
            let listing = session.dir().expect("dir after the cancel");
            assert!(listing.entries.is_empty(), "{engine:?}");
        }
    }

    #[test]
    fn cancel_stops_a_tree_command_on_every_engine() {
        // A command of the `tree` extension runs as several calls inside `Session::with`;
        // Ctrl-C must stop it on every engine, not only on the threaded one. No read timeout:
        // only the cancel can end the stalled download (the channel's wait is a hang guard).
        let server = TestServer::start();
        std::fs::create_dir(server.root.join("d")).expect("folder");
        server.write_file("d/big.bin", &vec![7; 8 << 20]);
        let path: ferry_wire::TreePath = "d/big.bin".parse().expect("path");
        let local = tempfile::tempdir().expect("tempdir");
        let options = ClientOptions {
            read_timeout: None,
            ..ClientOptions::default()
        };
        for engine in ENGINES {
            let relay = Relay::start(server.addr, Stall::Down(3 << 20));
            let cancel = Canceller::default();
            let mut session =
                Session::connect(engine, &via(&relay), options.clone(), cancel.clone())
                    .expect("connect");
            let dest = local.path().join(format!("{engine:?}.bin"));
            let (done, finished) = std::sync::mpsc::channel();
            let (path, dest2, cancel2) = (path.clone(), dest.clone(), cancel.clone());
            let worker = std::thread::spawn(move || {
                let mut fired = false;
                let result = session.with(|c| {
                    c.get_paths(&[(path, dest2)], &GetOptions::default(), &mut |p| {
                        if p.done > 0 && !fired {
                            fired = cancel2.cancel();
                        }
                    })
                });
                let _ = done.send((fired, matches!(result, Err(Failed::Cancelled { .. }))));
                session
            });
            let (fired, cancelled) = finished
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("{engine:?}: the cancel did not stop the command"));
            let mut session = worker.join().expect("worker");
            assert!(fired, "{engine:?}: the transfer was running");
            assert!(cancelled, "{engine:?}: reported as cancelled");
            assert!(
                !dest.exists(),
                "{engine:?}: nothing unverified at the destination"
            );
            let listing = session.dir().expect("dir after the cancel");
            assert!(listing.entries.is_empty(), "{engine:?}: d is a folder");
            session.close().expect("close");
        }
    }

    #[test]
    fn cancel_outside_a_request_does_nothing() {
        let cancel = Canceller::default();
        assert!(!cancel.cancel());
        let _rx = cancel.arm(None);
        assert!(cancel.cancel());
        assert!(cancel.disarm());
        assert!(!cancel.disarm(), "a cancel counts once");
        assert!(!cancel.cancel());
    }
}
