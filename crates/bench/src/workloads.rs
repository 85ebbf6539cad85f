//! The workloads, as load generators against a server address. Every implementation is
//! driven by the same load generator, so that the server is the only thing that changes:
//! ferry-sync's client, one thread per connection, for workloads 1–3 (at most 64
//! connections, where threads cost nothing), and ferry-async's client on a tokio runtime for
//! workload 4 (thousands of connections in one process). A [`Target`] says where the server
//! is and whether its clients speak ferry/1 over TLS (pinning the server's key).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use ferry_sync::client::{Client, ClientError, ClientOptions, GetOptions, Progress, PutOptions};
use ferry_wire::{FileName, PutMode};
use serde::Serialize;

use crate::data::{self, Folders};
use crate::procfs::ProcStats;
use crate::stats::Rng;

/// What one run of a workload measured on the load generator's side.
#[derive(Debug, Default)]
pub struct Measured {
    /// Wall time of the measured part (sessions already open).
    pub seconds: f64,
    /// Operations completed without error.
    pub ops: u64,
    /// File octets moved by those operations.
    pub bytes: u64,
    /// One sample per operation completed without error.
    pub latencies: Vec<Duration>,
    /// Operations (or sessions) that failed.
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// Workload 4's memory readings.
    pub idle: Option<IdleMemory>,
}

impl Measured {
    /// Adds what one load thread or task did.
    fn add(&mut self, t: ThreadTally, failures: &mut Failures) {
        self.ops += t.ops;
        self.bytes += t.bytes;
        self.latencies.extend(t.latencies);
        failures.merge(t.failures);
    }
}

/// Workload 4's view of the server's memory.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IdleMemory {
    /// Sessions held open.
    pub connections: u64,
    /// Server RSS before the first connection, MiB.
    pub rss_before_mib: f64,
    /// Server RSS with every session open, after each did one get, MiB.
    pub rss_open_mib: f64,
    /// Server peak RSS up to that moment (ramp-up included), MiB.
    pub peak_open_mib: f64,
    /// (rss_open − rss_before) / connections, KiB.
    pub per_connection_kib: f64,
    /// Time to open every session (connect + greeting + first get), seconds.
    pub connect_seconds: f64,
}

/// Failures seen by a load thread.
#[derive(Debug, Default)]
struct Failures {
    count: u64,
    first: Option<String>,
}

impl Failures {
    fn add(&mut self, what: &str, e: &dyn std::fmt::Display) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(format!("{what}: {e}"));
        }
    }

    fn merge(&mut self, other: Failures) {
        self.count += other.count;
        if self.first.is_none() {
            self.first = other.first;
        }
    }
}

/// What one load thread did.
#[derive(Debug, Default)]
struct ThreadTally {
    ops: u64,
    bytes: u64,
    latencies: Vec<Duration>,
    failures: Failures,
}

/// The server a workload drives: its address, and the TLS its clients use (`None`: plain).
#[derive(Debug, Clone)]
pub struct Target {
    /// Where it listens.
    pub addr: SocketAddr,
    /// TLS for every session, or `None` for plain ferry/1.
    pub tls: Option<ferry_tls::ClientTls>,
}

impl Target {
    /// A plain ferry/1 server.
    pub fn plain(addr: SocketAddr) -> Self {
        Self { addr, tls: None }
    }

    /// A ferry/1-over-TLS server whose key has `fingerprint` (pinned: TLS-8).
    pub fn tls(
        addr: SocketAddr,
        fingerprint: ferry_tls::Fingerprint,
    ) -> Result<Self, ferry_tls::TlsError> {
        let tls = ferry_tls::ClientTls::new(
            &addr.ip().to_string(),
            addr.port(),
            ferry_tls::Trust::Fingerprint(fingerprint),
        )?;
        Ok(Self {
            addr,
            tls: Some(tls),
        })
    }

    /// The options of every load-generator session: long timeouts (nothing may fire during a
    /// benchmark) and this target's TLS.
    fn options(&self) -> ClientOptions {
        ClientOptions {
            read_timeout: Some(Duration::from_secs(600)),
            write_timeout: Some(Duration::from_secs(600)),
            tls: self.tls.clone(),
            ..ClientOptions::default()
        }
    }
}

fn name(s: &str) -> FileName {
    FileName::new(s).unwrap_or_else(|e| unreachable!("bench names are valid ({s:?}: {e})"))
}

/// Runs `conns` sessions on their own threads: each connects, all wait on a barrier, then
/// each calls `work(index, client, tally)`; the clock runs from the barrier to the last
/// thread's end. A session that fails to connect counts one error.
fn drive<F>(target: &Target, conns: usize, work: F) -> Measured
where
    F: Fn(usize, &mut Client, &mut ThreadTally) + Sync,
{
    let (addr, options) = (target.addr, target.options());
    let barrier = Barrier::new(conns + 1);
    let tallies = Mutex::new(Vec::with_capacity(conns));
    // The scope joins every thread before it returns: the clock stops there.
    let start = std::thread::scope(|s| {
        for c in 0..conns {
            let (barrier, tallies, work, options) = (&barrier, &tallies, &work, &options);
            s.spawn(move || {
                let mut tally = ThreadTally::default();
                let client = Client::connect_with(addr, options);
                barrier.wait();
                match client {
                    Ok(mut client) => {
                        work(c, &mut client, &mut tally);
                        if client.is_open()
                            && let Err(e) = client.close()
                        {
                            tally.failures.add("close", &e);
                        }
                    }
                    Err(e) => tally.failures.add("connect", &e),
                }
                tallies
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(tally);
            });
        }
        barrier.wait();
        Instant::now()
    });
    let seconds = start.elapsed().as_secs_f64();
    let mut m = Measured {
        seconds,
        ..Measured::default()
    };
    let mut failures = Failures::default();
    for t in tallies
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        m.add(t, &mut failures);
    }
    m.errors = failures.count;
    m.first_error = failures.first;
    m
}

/// Times one operation and books it.
fn timed(tally: &mut ThreadTally, what: &str, op: impl FnOnce() -> Result<u64, ClientError>) {
    let t = Instant::now();
    match op() {
        Ok(bytes) => {
            tally.latencies.push(t.elapsed());
            tally.ops += 1;
            tally.bytes += bytes;
        }
        Err(e) => tally.failures.add(what, &e),
    }
}

/// Workload 1, download: the large file over one session, stored under `folders.dest`.
pub fn large_get(target: &Target, folders: &Folders) -> Measured {
    let dest = folders.dest.join(data::LARGE_NAME);
    let file = name(data::LARGE_NAME);
    drive(target, 1, |_, client, tally| {
        timed(tally, "get", || {
            client
                .get_to_path(&file, &dest, &GetOptions::default(), &mut |_| {})
                .map(|r| r.size)
        })
    })
}

/// Workload 1, upload: the large file over one session, as [`data::LARGE_UPLOAD`]. The
/// clock includes the server's fsync and rename: `ok put` comes after them.
pub fn large_put(target: &Target, folders: &Folders) -> Measured {
    let src = folders.large.join(data::LARGE_NAME);
    let as_name = name(data::LARGE_UPLOAD);
    drive(target, 1, |_, client, tally| {
        timed(tally, "put", || {
            client
                .put_from_path(&src, Some(&as_name), &PutOptions::default(), &mut |_| {})
                .map(|r| r.size)
        })
    })
}

/// Workload 2, download: small files `0..count`, spread over `conns` sessions, `depth`
/// requests at a time per session (1: one round trip per file; more: pipelined batches,
/// as `ferry get a b c …` sends them).
pub fn small_get(
    target: &Target,
    folders: &Folders,
    count: usize,
    conns: usize,
    depth: usize,
) -> Measured {
    let opts = GetOptions::default();
    small_files(
        target,
        (count, conns, depth),
        "get",
        |client, i| {
            let file = name(&data::small_name(i));
            let dest = folders.dest.join(file.as_str());
            client
                .get_to_path(&file, &dest, &opts, &mut |_| {})
                .map(|r| r.size)
        },
        |client, batch, progress| {
            let names: Vec<FileName> = batch.iter().map(|&i| name(&data::small_name(i))).collect();
            let results = client.get_many(&names, &folders.dest, &opts, progress);
            results
                .into_iter()
                .map(|r| r.map(|r| (r.name, r.size)))
                .collect()
        },
    )
}

/// Workload 2, upload: small files `0..count` uploaded as new files, spread over `conns`
/// sessions, `depth` at a time per session (flow `now`: no round trip for `go`; with depth
/// > 1, pipelined batches as `ferry put a b c …` sends them).
pub fn small_put(
    target: &Target,
    folders: &Folders,
    count: usize,
    conns: usize,
    depth: usize,
) -> Measured {
    let opts = PutOptions::default();
    let file = |i: usize| {
        (
            folders.small.join(data::small_name(i)),
            name(&data::small_upload_name(i)),
        )
    };
    small_files(
        target,
        (count, conns, depth),
        "put",
        |client, i| {
            let (src, as_name) = file(i);
            client
                .put_from_path(&src, Some(&as_name), &opts, &mut |_| {})
                .map(|r| r.size)
        },
        |client, batch, progress| {
            let files: Vec<(PathBuf, FileName)> = batch.iter().map(|&i| file(i)).collect();
            let results = client.put_many(&files, &opts, progress);
            results
                .into_iter()
                .map(|r| r.map(|r| (r.name, r.size)))
                .collect()
        },
    )
}

/// The results of a pipelined batch: each file's name and size, or why it failed.
type BatchResults = Vec<Result<(FileName, u64), ClientError>>;

/// Workload 2's driver: files `0..count` spread over `conns` sessions; with `depth` 1 each
/// goes alone (`one`), else in batches of `depth` (`many`). In a batch, a file's latency runs
/// from the batch's start to its last octet (as `progress` reports it, else to the batch's
/// end), so it includes waiting behind the files before it.
fn small_files<One, Many>(
    target: &Target,
    (count, conns, depth): (usize, usize, usize),
    what: &str,
    one: One,
    many: Many,
) -> Measured
where
    One: Fn(&mut Client, usize) -> Result<u64, ClientError> + Sync,
    Many: Fn(&mut Client, &[usize], &mut dyn FnMut(Progress<'_>)) -> BatchResults + Sync,
{
    drive(target, conns, |c, client, tally| {
        let mine: Vec<usize> = (c..count).step_by(conns).collect();
        if depth <= 1 {
            for &i in &mine {
                timed(tally, what, || one(client, i));
            }
            return;
        }
        for batch in mine.chunks(depth) {
            let start = Instant::now();
            let mut done_at = std::collections::HashMap::new();
            let results = many(client, batch, &mut |p| {
                if p.done == p.total {
                    done_at
                        .entry(p.name.clone())
                        .or_insert_with(|| start.elapsed());
                }
            });
            let batch_time = start.elapsed();
            for r in results {
                match r {
                    Ok((file, bytes)) => {
                        let at = done_at.get(&file).copied().unwrap_or(batch_time);
                        tally.latencies.push(at);
                        tally.ops += 1;
                        tally.bytes += bytes;
                    }
                    Err(e) => tally.failures.add(what, &e),
                }
            }
        }
    })
}

/// Workload 3: `ops` operations over `conns` sessions, each chosen at random (seeded per
/// session): 70 % get of a mixed file (4 KiB to 1 MiB), 20 % put replacing one of the
/// session's 8 names (4 KiB to 1 MiB), 10 % dir of the folder (~250 entries).
pub fn mixed(target: &Target, folders: &Folders, ops: usize, conns: usize) -> Measured {
    drive(target, conns, |c, client, tally| {
        let mut rng = Rng::new(0x00C0_FFEE + c as u64);
        let dest_dir = folders.dest.clone();
        let replace = PutOptions {
            mode: PutMode::Replace,
            ..PutOptions::default()
        };
        for j in (c..ops).step_by(conns) {
            let pick = rng.below(10);
            let k = rng.below(data::MIXED_FILES as u64) as usize;
            if pick < 7 {
                let file = name(&data::mixed_name(k));
                let dest = dest_dir.join(format!("c{c:02}-{}", file.as_str()));
                timed(tally, "get", || {
                    client
                        .get_to_path(&file, &dest, &GetOptions::default(), &mut |_| {})
                        .map(|r| r.size)
                });
            } else if pick < 9 {
                let src = folders.mixed.join(data::mixed_name(k));
                let as_name = name(&format!("x{c:02}-{}", j % 8));
                timed(tally, "put", || {
                    client
                        .put_from_path(&src, Some(&as_name), &replace, &mut |_| {})
                        .map(|r| r.size)
                });
            } else {
                timed(tally, "dir", || client.dir().map(|_| 0));
            }
            if !client.is_open() {
                break;
            }
        }
    })
}

/// Removes what a run left: downloads, and uploads in the served folders.
pub fn clean_up(folders: &Folders) -> std::io::Result<()> {
    data::empty_folder(&folders.dest)?;
    let upload = folders.large.join(data::LARGE_UPLOAD);
    if upload.exists() {
        std::fs::remove_file(upload)?;
    }
    data::remove_prefixed(&folders.small, "u")?;
    data::remove_prefixed(&folders.mixed, "x")?;
    Ok(())
}

/// Settings of workload 4.
#[derive(Debug, Clone, Copy)]
pub struct IdleSettings {
    /// Sessions held open.
    pub connections: usize,
    /// How long the measured phase lasts.
    pub duration: Duration,
    /// Mean time between two gets of one session (exponentially distributed gaps).
    pub mean_gap: Duration,
}

/// Connections opened at once while workload 4 ramps up: the listen backlog is not flooded.
const IDLE_CONNECT_CONCURRENCY: usize = 64;

/// Workload 4: `connections` sessions opened (each does one get), then held open for
/// `duration` while each does a small get at random times, `mean_gap` apart on average. The
/// server's memory is read through `server_stats` before the first connection and with every
/// session open.
pub fn idle(
    target: &Target,
    settings: IdleSettings,
    server_stats: &dyn Fn() -> std::io::Result<ProcStats>,
) -> Measured {
    use ferry_async::tokio::{Client as AsyncClient, Tokio};
    use tokio::sync::{Semaphore, watch};

    let mut m = Measured::default();
    let rt = match Tokio::new_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            m.errors = 1;
            m.first_error = Some(format!("tokio runtime: {e}"));
            return m;
        }
    };
    let handle = rt.handle().clone();
    let (addr, options) = (target.addr, target.options());
    let n = settings.connections;
    let before = server_stats();

    let opened = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let permits = Arc::new(Semaphore::new(IDLE_CONNECT_CONCURRENCY));
    // `Some(end)` starts the measured phase; `release` lets the sessions close.
    let (start_tx, start_rx) = watch::channel::<Option<Instant>>(None);
    let (release_tx, release_rx) = watch::channel(false);
    let connect_start = Instant::now();

    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (rt, opened, failed, done, permits) = (
                rt.clone(),
                opened.clone(),
                failed.clone(),
                done.clone(),
                permits.clone(),
            );
            let (mut start_rx, mut release_rx) = (start_rx.clone(), release_rx.clone());
            let mean_gap = settings.mean_gap;
            let options = options.clone();
            handle.spawn(async move {
                let mut tally = ThreadTally::default();
                let mut rng = Rng::new(0x1D1E + i as u64);
                let files: Vec<FileName> = (0..data::IDLE_FILES)
                    .map(|k| name(&data::idle_name(k)))
                    .collect();
                let permit = permits.acquire().await;
                let connected = AsyncClient::connect_with(rt, addr, &options).await;
                let mut client = match connected {
                    Ok(c) => c,
                    Err(e) => {
                        drop(permit);
                        tally.failures.add("connect", &e);
                        failed.fetch_add(1, Ordering::SeqCst);
                        return tally;
                    }
                };
                // One get while ramping up, so that every session has served a request.
                let file = &files[i % files.len()];
                if let Err(e) = client
                    .get_to_writer(file, &mut futures_lite::io::sink(), |_| {})
                    .await
                {
                    tally.failures.add("get", &e);
                }
                drop(permit);
                opened.fetch_add(1, Ordering::SeqCst);
                let end = match start_rx.wait_for(Option::is_some).await {
                    Ok(v) => (*v).unwrap_or_else(Instant::now),
                    Err(_) => Instant::now(),
                };
                loop {
                    let at = Instant::now() + rng.exponential(mean_gap);
                    if at >= end {
                        break;
                    }
                    tokio::time::sleep_until(at.into()).await;
                    let file = &files[rng.below(files.len() as u64) as usize];
                    let t = Instant::now();
                    match client
                        .get_to_writer(file, &mut futures_lite::io::sink(), |_| {})
                        .await
                    {
                        Ok(r) => {
                            tally.latencies.push(t.elapsed());
                            tally.ops += 1;
                            tally.bytes += r.size;
                        }
                        Err(e) => tally.failures.add("get", &e),
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
                let _ = release_rx.wait_for(|r| *r).await;
                if client.is_open()
                    && let Err(e) = client.close().await
                {
                    tally.failures.add("close", &e);
                }
                tally
            })
        })
        .collect();

    // Ramp up: every session open (or failed).
    while opened.load(Ordering::SeqCst) + failed.load(Ordering::SeqCst) < n {
        std::thread::sleep(Duration::from_millis(20));
    }
    let connect_seconds = connect_start.elapsed().as_secs_f64();
    let open = server_stats();

    let start = Instant::now();
    let _ = start_tx.send(Some(start + settings.duration));
    let alive = opened.load(Ordering::SeqCst);
    while done.load(Ordering::SeqCst) < alive {
        std::thread::sleep(Duration::from_millis(20));
    }
    m.seconds = start.elapsed().as_secs_f64();
    let _ = release_tx.send(true);

    let mut failures = Failures::default();
    for t in tasks {
        match handle.block_on(t) {
            Ok(t) => m.add(t, &mut failures),
            Err(e) => failures.add("task", &e),
        }
    }
    match (before, open) {
        (Ok(b), Ok(o)) => {
            let mib = |x: u64| x as f64 / (1024.0 * 1024.0);
            m.idle = Some(IdleMemory {
                connections: alive as u64,
                rss_before_mib: mib(b.rss),
                rss_open_mib: mib(o.rss),
                peak_open_mib: mib(o.peak_rss),
                per_connection_kib: (o.rss.saturating_sub(b.rss)) as f64
                    / 1024.0
                    / alive.max(1) as f64,
                connect_seconds,
            });
        }
        (Err(e), _) | (_, Err(e)) => failures.add("server memory", &e),
    }
    m.errors = failures.count;
    m.first_error = failures.first;
    m
}

/// How the sessions of workload 5 log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginKind {
    /// They do not: the TLS session alone (connect, handshake, greeting, `close`).
    None,
    /// With an Ed25519 key (`auth ed25519`).
    Key,
    /// With a password (SCRAM-SHA-256-PLUS, the verifier at `ferry user`'s iteration count).
    Password,
}

impl LoginKind {
    /// Every kind, in the order the report shows them.
    pub const ALL: [LoginKind; 3] = [LoginKind::None, LoginKind::Key, LoginKind::Password];

    /// How many sessions of this kind `--login-sessions N` runs: N, or for passwords a tenth
    /// (at least 5), whose PBKDF2 costs the client about 0.1 s each.
    pub fn sessions(self, n: usize) -> usize {
        match self {
            LoginKind::Password => (n / 10).max(5),
            _ => n.max(1),
        }
    }

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            LoginKind::None => "none",
            LoginKind::Key => "key",
            LoginKind::Password => "password",
        }
    }
}

/// Workload 5: `sessions` sessions, one after another, each connected (TLS handshake and
/// greeting), logged in as `kind` says, and closed; one operation and one latency per
/// session.
pub fn login(target: &Target, folders: &Folders, kind: LoginKind, sessions: usize) -> Measured {
    use ferry_auth::login::{KeyProver, PasswordProver};
    use ferry_sync::client::Login;
    use ferry_sync::client::login::Prover;

    let mut failures = Failures::default();
    let prover: Option<(&str, Arc<dyn Prover>)> = match kind {
        LoginKind::None => None,
        LoginKind::Key => {
            match KeyProver::read_file(&folders.login.join(data::KEY_NAME), &mut || None) {
                Ok(k) => Some((data::KEY_USER, Arc::new(k))),
                Err(e) => {
                    failures.add("key", &e);
                    return Measured {
                        errors: failures.count,
                        first_error: failures.first,
                        ..Measured::default()
                    };
                }
            }
        }
        LoginKind::Password => Some((
            data::PASSWORD_USER,
            Arc::new(PasswordProver::new(zeroize::Zeroizing::new(
                data::PASSWORD.to_owned(),
            ))),
        )),
    };
    let mut options = target.options();
    options.login = prover.map(|(user, prover)| {
        let user = ferry_sync::client::login::UserName::new(user)
            .unwrap_or_else(|e| unreachable!("the bench's user names are valid: {e}"));
        Login::new(user, prover)
    });
    let mut tally = ThreadTally::default();
    let start = Instant::now();
    for _ in 0..sessions {
        timed(&mut tally, "session", || {
            let client = Client::connect_with(target.addr, &options)?;
            client.close()?;
            Ok(0)
        });
    }
    let mut m = Measured {
        seconds: start.elapsed().as_secs_f64(),
        ..Measured::default()
    };
    m.add(tally, &mut failures);
    m.errors = failures.count;
    m.first_error = failures.first;
    m
}
