//! `ferry bench`: the reference servers under fixed workloads, next to the ceilings of this
//! machine, reported as Markdown, JSON and an SVG plot.
//!
//! Each implementation runs as its own `ferry serve --impl IMPL` process (what users run) on
//! 127.0.0.1 with a prepared folder, one at a time, a fresh process per run; the bench process
//! is the load generator and reads the server's CPU time and memory from `/proc`. The same
//! load generator drives every implementation (see [`workloads`]), so the server is the only
//! thing that changes. With `--clients own` each implementation is also (or only) driven by
//! its own client as users run it: whole `ferry get`/`ferry put --impl IMPL` commands (see
//! [`own`]). With `--tls` every case of workloads 1, 2 and 4 runs twice in a row on the same
//! implementation, plain and then over TLS (`ferry serve --tls-self-signed`, clients pinning
//! the key it prints), and the report sets them side by side. See `docs/PERFORMANCE.md` for
//! how to read the results.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::ValueEnum;

pub mod baselines;
pub mod data;
pub mod own;
pub mod plot;
pub mod procfs;
pub mod report;
pub mod server;
pub mod stats;
pub mod units;
pub mod workloads;

use data::Folders;
use own::OwnCase;
use procfs::Pid;
use report::{Baseline, CaseResult, Machine, PeerResult, Report, Settings};
use server::ServerProcess;
use workloads::{IdleSettings, Measured, Target};

/// The server implementations (`ferry serve --impl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Impl {
    /// ferry-sync: blocking sockets, a thread per session.
    Threads,
    /// ferry-async on async-std.
    AsyncStd,
    /// ferry-async on tokio.
    Tokio,
    /// ferry-async on smol.
    Smol,
}

impl Impl {
    /// The name `--impl` takes.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Threads => "threads",
            Impl::AsyncStd => "async-std",
            Impl::Tokio => "tokio",
            Impl::Smol => "smol",
        }
    }
}

/// The workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// 1: one large file, get and put, one session.
    Large,
    /// 2: many small files, get and put, on 1 and on 64 sessions.
    Small,
    /// 3: dir/get/put mixed, on 16 sessions.
    Mixed,
    /// 4: many mostly idle sessions, each doing an occasional small get.
    Idle,
    /// 5: sessions over TLS opened and closed one after another: without a login, logging
    /// in with a key, logging in with a password (the cost of a login, spec section 16).
    Login,
}

/// Whose client drives the servers (`--clients`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Clients {
    /// One load generator for every implementation, inside the bench (ferry-sync's client;
    /// ferry-async's on tokio for workload 4): the server is the only variable.
    Shared,
    /// Each implementation's own client, as users run it: whole `ferry get`/`ferry put`
    /// commands of that implementation against its `ferry serve` (workloads 1 and 2, one
    /// session).
    Own,
}

impl Clients {
    /// The name `--clients` takes.
    pub fn name(self) -> &'static str {
        match self {
            Clients::Shared => "shared",
            Clients::Own => "own",
        }
    }
}

/// `ferry bench` options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Server implementations to measure, in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "threads,async-std,tokio,smol"
    )]
    pub impls: Vec<Impl>,
    /// Workloads to run.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "large,small,mixed,idle,login"
    )]
    pub workloads: Vec<Workload>,
    /// Whose client drives each server: `shared`, the bench's own load generator for every
    /// implementation (the server is the only variable), and/or `own`, each implementation's
    /// own `ferry get`/`ferry put` as whole commands (process start included) of
    /// workload 1's file and of workload 2's files in one command, next to the TCP copy and
    /// rsync. `shared,own` runs both.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "CLIENTS",
        default_value = "shared"
    )]
    pub clients: Vec<Clients>,
    /// Where to put the served folders and client destinations (default: /dev/shm, a tmpfs,
    /// when it exists, so that the disk does not dominate; pass a disk folder to include it).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Where to write report.json, report.md and report.svg.
    #[arg(long, value_name = "DIR", default_value = "target/ferry-bench")]
    pub out: PathBuf,
    /// Workload 1's file size (e.g. 1GiB, 256MiB).
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = units::parse_size)]
    pub large_size: u64,
    /// Workload 2's operations (files moved per direction; with `--clients own`, the files of
    /// one `ferry get`/`ferry put` command).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub small_ops: usize,
    /// Workload 2's file size.
    #[arg(long, value_name = "SIZE", default_value = "4KiB", value_parser = units::parse_size)]
    pub small_size: u64,
    /// Workload 2's session counts.
    #[arg(
        long,
        value_name = "N,…",
        value_delimiter = ',',
        default_value = "1,64"
    )]
    pub small_conns: Vec<usize>,
    /// Workload 2's pipeline depths: 1 sends one request at a time (a round trip per file);
    /// N > 1 sends batches of N requests at once on each session (`ferry get a b c …`).
    #[arg(
        long,
        value_name = "N,…",
        value_delimiter = ',',
        default_value = "1,32"
    )]
    pub small_pipeline: Vec<usize>,
    /// Workload 3's operations.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub mixed_ops: usize,
    /// Workload 3's sessions.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub mixed_conns: usize,
    /// Workload 4's sessions (up to about 18,000: each side holds one descriptor per session
    /// under `ulimit -n` 20,000).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub idle_conns: usize,
    /// Workload 4's measured phase.
    #[arg(long, alias = "idle-secs", value_name = "DURATION", default_value = "20s",
          value_parser = units::parse_duration_nonzero)]
    pub idle_time: Duration,
    /// Workload 4's mean gap between two gets of one session.
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = units::parse_duration_nonzero)]
    pub idle_gap: Duration,
    /// Workload 5's sessions without a login and with a key, each opened, logged in and
    /// closed in turn; with a password a tenth as many (at least 5: each costs the client
    /// the PBKDF2 of the verifier's iteration count, about 0.1 s).
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub login_sessions: usize,
    /// Also run workloads 1, 2 and 4 over TLS (ferry/1 over TLS 1.3, `ferry serve
    /// --tls-self-signed`, clients pinning its key), each TLS case right after the same
    /// implementation's plain one; the report sets them side by side with their ratio.
    /// Workload 3 stays plain. With `--clients own`, the commands use `ferrys://ADDR
    /// --fingerprint FP`.
    #[arg(long)]
    pub tls: bool,
    /// Runs per case for workloads 1–3 (the median is reported).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    pub repeat: u64,
    /// Skip the TCP and disk baselines.
    #[arg(long)]
    pub no_baselines: bool,
    /// Other tools' figures from `bench/peers.sh` (its peers.json), for the tables, the plot
    /// and the workload 2 target.
    #[arg(long, value_name = "FILE")]
    pub peers: Option<PathBuf>,
    /// A run of under a minute: every case at a small size, once (--large-size 64MiB,
    /// --small-ops 1000 on 1 and 8 sessions, --mixed-ops 1000, --idle-conns 200 for 2s,
    /// --login-sessions 20, --repeat 1). Figures are rough; the sizes cannot be set with it.
    #[arg(long, conflicts_with_all = [
        "large_size", "small_ops", "small_size", "small_conns", "mixed_ops", "mixed_conns",
        "idle_conns", "idle_time", "idle_gap", "login_sessions", "repeat",
    ])]
    pub quick: bool,
    /// What to print on stdout: `table`, a summary for the terminal (one row per case, one
    /// column per implementation), or `md`, the whole Markdown report (also in report.md).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Table)]
    pub format: Format,
}

/// What `ferry bench` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned summary table.
    Table,
    /// The Markdown report.
    Md,
}

/// One case: a workload with its direction and session count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// Workload 1, download.
    LargeGet,
    /// Workload 1, upload.
    LargePut,
    /// Workload 2, download, on N sessions, with pipeline depth D.
    SmallGet(usize, usize),
    /// Workload 2, upload, on N sessions, with pipeline depth D.
    SmallPut(usize, usize),
    /// Workload 3 on N sessions.
    Mixed(usize),
    /// Workload 4 with N sessions.
    Idle(usize),
    /// Workload 5: sessions that log in this way, one after another.
    Login(workloads::LoginKind),
}

impl Case {
    /// (workload, op, sessions, pipeline depth).
    fn parts(self) -> (&'static str, &'static str, usize, usize) {
        match self {
            Case::LargeGet => ("large", "get", 1, 1),
            Case::LargePut => ("large", "put", 1, 1),
            Case::SmallGet(c, d) => ("small", "get", c, d),
            Case::SmallPut(c, d) => ("small", "put", c, d),
            Case::Mixed(c) => ("mixed", "mixed", c, 1),
            Case::Idle(c) => ("idle", "idle-get", c, 1),
            Case::Login(k) => ("login", k.name(), 1, 1),
        }
    }

    /// Whether `--tls` runs this case over TLS too (workloads 1, 2 and 4; workload 5 is
    /// over TLS only).
    pub fn has_tls(self) -> bool {
        !matches!(self, Case::Mixed(_) | Case::Login(_))
    }

    fn root(self, f: &Folders) -> &Path {
        match self {
            Case::LargeGet | Case::LargePut => &f.large,
            Case::SmallGet(..) | Case::SmallPut(..) => &f.small,
            Case::Mixed(_) => &f.mixed,
            Case::Idle(_) => &f.idle,
            Case::Login(_) => &f.login,
        }
    }
}

impl BenchArgs {
    /// The settings to run with: these, or with `--quick` its small sizes.
    pub fn resolved(&self) -> BenchArgs {
        let mut a = self.clone();
        if a.quick {
            a.large_size = 64 << 20;
            a.small_ops = 1000;
            a.small_conns = vec![1, 8];
            a.mixed_ops = 1000;
            a.idle_conns = 200;
            a.idle_time = Duration::from_secs(2);
            a.idle_gap = Duration::from_millis(500);
            a.login_sessions = 20;
            a.repeat = 1;
        }
        a
    }

    /// The cases to run with the shared load generator, in order (none without
    /// `--clients shared`).
    pub fn cases(&self) -> Vec<Case> {
        let mut v = Vec::new();
        if !self.clients.contains(&Clients::Shared) {
            return v;
        }
        let has = |w| self.workloads.contains(&w);
        if has(Workload::Large) {
            v.extend([Case::LargeGet, Case::LargePut]);
        }
        if has(Workload::Small) {
            for put in [false, true] {
                for &d in &self.small_pipeline {
                    for &c in &self.small_conns {
                        let (c, d) = (c.max(1), d.max(1));
                        v.push(if put {
                            Case::SmallPut(c, d)
                        } else {
                            Case::SmallGet(c, d)
                        });
                    }
                }
            }
        }
        if has(Workload::Mixed) {
            v.push(Case::Mixed(self.mixed_conns.max(1)));
        }
        if has(Workload::Idle) {
            v.push(Case::Idle(self.idle_conns.max(1)));
        }
        if has(Workload::Login) {
            v.extend(workloads::LoginKind::ALL.map(Case::Login));
        }
        v
    }

    /// The cases to run with each implementation's own client, in order (none without
    /// `--clients own`): workloads 1 and 2 only, mixed and idle have no one-command form.
    pub fn own_cases(&self) -> Vec<OwnCase> {
        let mut v = Vec::new();
        if !self.clients.contains(&Clients::Own) {
            return v;
        }
        if self.workloads.contains(&Workload::Large) {
            v.extend([OwnCase::LargeGet, OwnCase::LargePut]);
        }
        if self.workloads.contains(&Workload::Small) {
            v.extend([OwnCase::SmallGet, OwnCase::SmallPut]);
        }
        v
    }
}

/// Removes the work folder when the run ends, however it ends.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn default_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// Runs the bench with `server_exe` as the `ferry` binary to start servers from; writes the
/// report files and returns the report.
pub fn run(args: &BenchArgs, server_exe: &Path) -> io::Result<Report> {
    let cases = args.cases();
    let own_cases = args.own_cases();
    if cases.is_empty() && own_cases.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "nothing to run: --clients own measures workloads large and small only",
        ));
    }
    let nofile = procfs::raise_open_files_limit()?;
    let idle_needed = args.idle_conns as u64 + 256;
    if cases.iter().any(|c| matches!(c, Case::Idle(_))) && nofile < idle_needed {
        return Err(io::Error::other(format!(
            "--idle-conns {} needs at least {idle_needed} open files per process; the limit is {nofile}",
            args.idle_conns
        )));
    }
    let base = args.dir.clone().unwrap_or_else(default_dir);
    let work = WorkDir(base.join(format!("ferry-bench-{}", std::process::id())));
    let folders = Folders::under(&work.0);
    let has = |w| args.workloads.contains(&w);
    let shared = args.clients.contains(&Clients::Shared);
    let sizes = data::Sizes {
        large: if has(Workload::Large) {
            args.large_size
        } else {
            0
        },
        small_count: if has(Workload::Small) {
            args.small_ops
        } else {
            0
        },
        small_size: args.small_size,
        mixed: shared && has(Workload::Mixed),
        idle: shared && has(Workload::Idle),
        login: shared && has(Workload::Login),
    };
    say(format_args!(
        "preparing the folders in {} …",
        work.0.display()
    ));
    data::prepare(&folders, sizes)?;
    let logs = work.0.join("logs");
    std::fs::create_dir_all(&logs)?;
    // The servers' self-signed key: made by the first TLS server, reused by the others.
    let tls_dir = args.tls.then(|| work.0.join("tls"));
    let mut notes = Vec::new();
    let own_tls = match &tls_dir {
        Some(_) if !own_cases.is_empty() => match own::tls_support(server_exe) {
            Ok(()) => true,
            Err(why) => {
                let note = format!("own clients over TLS not measured: {why}");
                say(format_args!("{note}"));
                notes.push(note);
                false
            }
        },
        _ => false,
    };

    let mut report = Report {
        tool: format!("ferry-bench {}", env!("CARGO_PKG_VERSION")),
        started_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        machine: machine(&work.0),
        settings: Settings {
            implementations: args.impls.iter().map(|i| i.name().to_owned()).collect(),
            clients: args.clients.iter().map(|c| c.name().to_owned()).collect(),
            large_size: args.large_size,
            small_ops: args.small_ops,
            small_size: args.small_size,
            mixed_ops: args.mixed_ops,
            idle_connections: args.idle_conns,
            idle_seconds: args.idle_time.as_secs_f64(),
            idle_mean_gap_seconds: args.idle_gap.as_secs_f64(),
            repeat: args.repeat as usize,
            tls: args.tls,
            login_sessions: args.login_sessions,
        },
        notes,
        baselines: Vec::new(),
        results: Vec::new(),
        own_clients: Vec::new(),
        peers: match &args.peers {
            Some(p) => read_peers(p)?,
            None => Vec::new(),
        },
        targets: Vec::new(),
    };

    if has(Workload::Large) && !args.no_baselines {
        report.baselines = measure_baselines(
            &folders,
            args.large_size,
            args.repeat as usize,
            tls_dir.as_deref(),
        )?;
    }

    // Workload 5 is over TLS whatever --tls says: logins need it.
    let login_tls = work.0.join("tls-login");
    for &imp in &args.impls {
        for &case in &cases {
            let tls = matches!(case, Case::Login(_)).then_some(login_tls.as_path());
            let result = run_case(args, server_exe, imp, case, &folders, &logs, tls)?;
            report.results.push(result);
            if let Some(dir) = tls_dir.as_deref().filter(|_| case.has_tls()) {
                let result = run_case(args, server_exe, imp, case, &folders, &logs, Some(dir))?;
                report.results.push(result);
            }
        }
        for &case in &own_cases {
            let result = own::run_case(args, server_exe, imp, case, &folders, &logs, None)?;
            report.own_clients.push(result);
            if let Some(dir) = tls_dir.as_deref().filter(|_| own_tls) {
                let result =
                    own::run_case(args, server_exe, imp, case, &folders, &logs, Some(dir))?;
                report.own_clients.push(result);
            }
        }
    }
    if !report.baselines.is_empty() {
        // The ceilings again after the implementations, so that drift on a shared machine
        // (other tenants, memory pressure) weighs on both sides of the comparison alike.
        let after = measure_baselines(
            &folders,
            args.large_size,
            args.repeat as usize,
            tls_dir.as_deref(),
        )?;
        for (b, a) in report.baselines.iter_mut().zip(after) {
            b.runs_seconds.extend(a.runs_seconds);
            b.seconds = stats::median(&b.runs_seconds);
            b.mib_per_s = b.bytes as f64 / b.seconds / units::MIB;
            let fastest = b.runs_seconds.iter().copied().fold(f64::INFINITY, f64::min);
            b.best_mib_per_s = b.bytes as f64 / fastest / units::MIB;
        }
    }
    report.check_targets();
    write_report(&report, &args.out)?;
    Ok(report)
}

fn say(msg: std::fmt::Arguments<'_>) {
    eprintln!("ferry bench: {msg}");
}

fn measure_baselines(
    f: &Folders,
    size: u64,
    repeat: usize,
    tls_dir: Option<&Path>,
) -> io::Result<Vec<Baseline>> {
    let src = f.large.join(data::LARGE_NAME);
    let mut out = Vec::new();
    let mut one = |name: &str, description: &str, run: &mut dyn FnMut() -> io::Result<f64>| {
        let mut runs = Vec::new();
        for _ in 0..repeat {
            runs.push(run()?);
        }
        let seconds = stats::median(&runs);
        let fastest = runs.iter().copied().fold(f64::INFINITY, f64::min);
        let b = Baseline {
            name: name.to_owned(),
            description: description.to_owned(),
            bytes: size,
            seconds,
            runs_seconds: runs,
            mib_per_s: size as f64 / seconds / units::MIB,
            best_mib_per_s: size as f64 / fastest / units::MIB,
        };
        say(format_args!("baseline {name}: {:.0} MiB/s", b.mib_per_s));
        out.push(b);
        Ok::<(), io::Error>(())
    };
    let dst = f.dest.join("tcp-copy.bin");
    one(
        "tcp-copy",
        "the file read from the served folder, sent over one loopback connection, written to the destination (1 MiB pieces)",
        &mut || {
            let s = baselines::tcp_copy(&src, &dst);
            std::fs::remove_file(&dst)?;
            s
        },
    )?;
    one(
        "tcp-memory",
        "the same octets memory to memory over one loopback connection",
        &mut || baselines::tcp_memory(size),
    )?;
    if let Some(dir) = tls_dir {
        one(
            "tls-memory",
            "the same octets memory to memory over one loopback connection inside TLS 1.3 (rustls, ferry's configurations)",
            &mut || baselines::tls_memory(size, dir),
        )?;
    }
    let w = f.large.join("disk-write.tmp");
    one(
        "disk-write",
        "the same octets written to a new file in the served folder, then fsync",
        &mut || baselines::disk_write(&src, &w, size),
    )?;
    Ok(out)
}

/// Runs `case` `--repeat` times against fresh `ferry serve --impl imp` processes: plain, or
/// with `tls_dir` over TLS with the self-signed key kept there.
fn run_case(
    args: &BenchArgs,
    exe: &Path,
    imp: Impl,
    case: Case,
    folders: &Folders,
    logs: &Path,
    tls_dir: Option<&Path>,
) -> io::Result<CaseResult> {
    let (workload, op, conns, depth) = case.parts();
    let tls = tls_dir.is_some();
    let over = if tls { " over TLS" } else { "" };
    let repeat = match case {
        Case::Idle(_) => 1,
        _ => args.repeat as usize,
    };
    let max_connections = conns + 64;
    struct Sample {
        m: Measured,
        server_cpu: Duration,
        client_cpu: Duration,
        peak: u64,
    }
    let mut samples = Vec::new();
    let mut stop_errors = Vec::new();
    for run in 0..repeat {
        let log = logs.join(format!(
            "{}-{workload}-{op}-{conns}-{depth}{}-{run}.log",
            imp.name(),
            if tls { "-tls" } else { "" }
        ));
        let users = matches!(case, Case::Login(_)).then(|| folders.login.join(data::USERS_NAME));
        let server = ServerProcess::start(
            exe,
            imp,
            case.root(folders),
            max_connections,
            &log,
            tls_dir,
            users.as_deref(),
        )?;
        let addr = server.addr();
        let target = match server.fingerprint() {
            Some(fp) => Target::tls(addr, *fp).map_err(io::Error::other)?,
            None => Target::plain(addr),
        };
        let target = &target;
        let s0 = server.stats()?;
        let c0 = procfs::read(Pid::This)?;
        let m = match case {
            Case::LargeGet => workloads::large_get(target, folders),
            Case::LargePut => workloads::large_put(target, folders),
            Case::SmallGet(c, d) => workloads::small_get(target, folders, args.small_ops, c, d),
            Case::SmallPut(c, d) => workloads::small_put(target, folders, args.small_ops, c, d),
            Case::Mixed(c) => workloads::mixed(target, folders, args.mixed_ops, c),
            Case::Idle(c) => workloads::idle(
                target,
                IdleSettings {
                    connections: c,
                    duration: args.idle_time.max(Duration::from_millis(100)),
                    mean_gap: args.idle_gap.max(Duration::from_millis(1)),
                },
                &|| server.stats(),
            ),
            Case::Login(kind) => {
                workloads::login(target, folders, kind, kind.sessions(args.login_sessions))
            }
        };
        let s1 = server.stats()?;
        let c1 = procfs::read(Pid::This)?;
        if let Err(e) = server.stop() {
            stop_errors.push(e.to_string());
        }
        workloads::clean_up(folders)?;
        say(format_args!(
            "{:<9} {workload} {op} ×{conns} depth {depth}{over} run {}/{repeat}: {} ops, {:.3} s, {:.0} MiB/s, {} errors",
            imp.name(),
            run + 1,
            m.ops,
            m.seconds,
            m.bytes as f64 / m.seconds.max(1e-9) / units::MIB,
            m.errors
        ));
        samples.push(Sample {
            m,
            server_cpu: s1.cpu.saturating_sub(s0.cpu),
            client_cpu: c1.cpu.saturating_sub(c0.cpu),
            peak: s1.peak_rss,
        });
    }
    let seconds: Vec<f64> = samples.iter().map(|s| s.m.seconds).collect();
    let errors: u64 = samples.iter().map(|s| s.m.errors).sum::<u64>() + stop_errors.len() as u64;
    let first_error = samples
        .iter()
        .find_map(|s| s.m.first_error.clone())
        .or_else(|| stop_errors.first().cloned());
    let peak = samples.iter().map(|s| s.peak).max().unwrap_or(0);
    // The fastest run by throughput (octets, else operations, per second).
    let rate = |s: &Sample| {
        let secs = s.m.seconds.max(1e-9);
        (s.m.bytes as f64 / secs, s.m.ops as f64 / secs)
    };
    let best_mib_per_s = samples
        .iter()
        .map(|s| rate(s).0 / units::MIB)
        .fold(0.0, f64::max);
    let best_ops_per_s = samples.iter().map(|s| rate(s).1).fold(0.0, f64::max);
    let mid = stats::median_index(&seconds);
    let chosen = samples.swap_remove(mid);
    let mut m = chosen.m;
    let secs = m.seconds.max(1e-9);
    Ok(CaseResult {
        implementation: imp.name().to_owned(),
        workload: workload.to_owned(),
        op: op.to_owned(),
        connections: conns,
        pipeline: depth,
        tls,
        ops: m.ops,
        bytes: m.bytes,
        seconds: m.seconds,
        runs_seconds: seconds,
        mib_per_s: m.bytes as f64 / secs / units::MIB,
        ops_per_s: m.ops as f64 / secs,
        best_mib_per_s,
        best_ops_per_s,
        latency: stats::latency(&mut m.latencies),
        server_cpu_s: chosen.server_cpu.as_secs_f64(),
        client_cpu_s: chosen.client_cpu.as_secs_f64(),
        server_peak_rss_mib: peak as f64 / (1024.0 * 1024.0),
        errors,
        first_error,
        idle: m.idle,
    })
}

fn read_peers(path: &Path) -> io::Result<Vec<PeerResult>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is not a peers.json from bench/peers.sh: {e}",
                path.display()
            ),
        )
    })
}

/// Writes `report.json`, `report.md` and `report.svg` into `out`.
pub fn write_report(report: &Report, out: &Path) -> io::Result<()> {
    std::fs::create_dir_all(out)?;
    let json = serde_json::to_string_pretty(report).map_err(io::Error::other)?;
    std::fs::write(out.join("report.json"), json + "\n")?;
    std::fs::write(out.join("report.md"), report.to_markdown())?;
    let m = &report.machine;
    let svg = plot::render(
        "ferry bench: reference servers on loopback",
        &format!(
            "{} cores ({}), Linux {}, folders on {}; median of {} runs; dashed: ceilings measured in the same run",
            m.cores, m.cpu, m.kernel, m.work_fs, report.settings.repeat
        ),
        &plot::panels(report),
    );
    std::fs::write(out.join("report.svg"), svg)?;
    Ok(())
}

fn machine(work: &Path) -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu,
        kernel,
        work_dir: work.display().to_string(),
        work_fs: fs_type(work),
    }
}

/// The file system type of `path`, from statfs's magic number.
fn fs_type(path: &Path) -> String {
    match rustix::fs::statfs(path) {
        Ok(s) => match s.f_type {
            0x0102_1994 => "tmpfs".into(),
            0xEF53 => "ext4".into(),
            0x5846_5342 => "xfs".into(),
            0x9123_683E => "btrfs".into(),
            0x794C_7630 => "overlayfs".into(),
            other => format!("fs 0x{other:x}"),
        },
        Err(e) => format!("unknown ({e})"),
    }
}
