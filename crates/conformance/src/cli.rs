//! The `ferry-conform` command line. `ferry conform` embeds [`Target`] as its subcommand
//! and calls [`run`].

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::{
    CaseInfo, ClientTarget, Filter, Report, RunOptions, ServerTarget, client_cases, report,
    server_cases,
};

/// Conformance suite for ferry/1 servers and clients.
///
/// Exit status: 0 when no case failed, 1 when a case failed, 2 on usage or I/O errors.
#[derive(Debug, Parser)]
#[command(name = "ferry-conform", version)]
pub struct Cli {
    /// What to test.
    #[command(subcommand)]
    pub target: Target,
}

/// What to test.
#[derive(Debug, Subcommand)]
pub enum Target {
    /// Test a RUNNING server at ADDR (host:port). Its served folder must start empty and
    /// writable; the runner creates its files with put under per-run, per-case name
    /// prefixes (ferry has no delete: they stay).
    Server(ServerArgs),
    /// Test a client COMMAND: the runner plays a scripted server per case and runs the
    /// command with {addr}, {op}, {name}, {dir} substituted (also FERRY_ADDR, FERRY_OP,
    /// FERRY_NAME, FERRY_DIR). Exit 0 = success, non-zero = failure, 127 = not supported.
    Client(ClientArgs),
}

/// Options common to both kinds of run.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// SHOULD requirements count: their violations fail instead of being `non-strict`.
    #[arg(long)]
    pub strict: bool,
    /// Print the selected cases (ID, level, title) and exit.
    #[arg(long)]
    pub list: bool,
    /// Run only cases whose ID starts with PAT, or matches the glob PAT (`*`, `?`), e.g.
    /// `server/PUT-*` or `GET-4`. Repeatable.
    #[arg(long, value_name = "PAT")]
    pub include: Vec<String>,
    /// Leave out cases matching PAT (as --include). Repeatable.
    #[arg(long, value_name = "PAT")]
    pub exclude: Vec<String>,
    /// Write a JSON report (like Autobahn's index.json).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Deadline of each case in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub timeout: u64,
    /// Print only failures and the summary.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `ferry-conform server`.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The server to test (host:port).
    #[arg(required_unless_present = "list")]
    pub addr: Option<String>,
    /// A read-only server (any folder; only listed) for the read-only cases.
    #[arg(long, value_name = "ADDR")]
    pub read_only_server: Option<String>,
    /// A further server with other limits (e.g. max-size=10, max-eager=4, idle=1) and an
    /// empty writable folder: cases that need a configuration use the first server whose
    /// greeting shows it. Repeatable.
    #[arg(long, value_name = "ADDR")]
    pub extra_server: Vec<String>,
    /// Longest server timeout (idle, stall) the runner waits for; the timeout cases run only
    /// against a server announcing at most this.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub max_wait: u64,
    /// The main server's session limit, for the busy case (CONN-3).
    #[arg(long, value_name = "N")]
    pub session_limit: Option<usize>,
    /// A shell command that starts the main server's graceful shutdown (e.g. `kill -TERM
    /// 1234`), for the shutdown case (CLOSE-8, CLOSE-9), which then runs last.
    #[arg(long, value_name = "CMD")]
    pub shutdown_cmd: Option<String>,
    /// The main server's deadline for requests in flight after --shutdown-cmd, in seconds
    /// (`ferry serve --shutdown-grace`): with 3 s or less the shutdown case also checks that a
    /// download still being read is cut at that deadline with `abort 422`.
    #[arg(long, value_name = "SECS", requires = "shutdown_cmd")]
    pub shutdown_grace: Option<f64>,
    /// A shell command that changes a file of the main server's served folder, for the
    /// GET-9 cases: `{name}` (also $FERRY_NAME) is the file, `{how}` (also $FERRY_HOW) is
    /// `append` (add at least one octet) or `truncate` (cut it to 1 octet). Example:
    /// `sh -c 'f=/srv/root/"$FERRY_NAME"; if [ "$FERRY_HOW" = append ]; then printf x >>"$f"; else truncate -s 1 "$f"; fi'`.
    #[arg(long, value_name = "CMD")]
    pub touch_cmd: Option<String>,
    /// The options both kinds of run share.
    #[command(flatten)]
    pub common: Common,
}

/// `ferry-conform client`.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The options both kinds of run share.
    #[command(flatten)]
    pub common: Common,
    /// The client command and its arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND", required_unless_present = "list")]
    pub command: Vec<String>,
}

/// Parses `args` (program name first) and runs; returns the exit status.
pub fn main_from<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => run(cli.target),
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() { 2 } else { 0 }
        }
    }
}

fn options(c: &Common) -> RunOptions {
    RunOptions {
        strict: c.strict,
        filter: Filter {
            include: c.include.clone(),
            exclude: c.exclude.clone(),
        },
        timeout: Duration::from_secs(c.timeout.max(1)),
    }
}

fn list(cases: &[CaseInfo], f: &Filter) -> u8 {
    let mut out = std::io::stdout().lock();
    for c in cases.iter().filter(|c| f.selects(&c.id)) {
        let _ = writeln!(
            out,
            "{:<36} {:<6} {}  [{}]",
            c.id,
            c.level.as_str(),
            c.title,
            c.requirements.join(" ")
        );
    }
    0
}

/// Runs a parsed command; returns the exit status (0 ok, 1 a case failed, 2 error).
pub fn run(target: Target) -> u8 {
    let (common, report) = match target {
        Target::Server(a) => {
            let opts = options(&a.common);
            if a.common.list {
                return list(&server_cases(), &opts.filter);
            }
            let Some(addr) = a.addr.clone() else {
                eprintln!("ferry-conform: ADDR is required");
                return 2;
            };
            match crate::net::resolve(&addr) {
                Err(e) => {
                    eprintln!("ferry-conform: cannot resolve {addr}: {e}");
                    return 2;
                }
                Ok(a) => {
                    if let Err(e) = std::net::TcpStream::connect_timeout(&a, Duration::from_secs(5))
                    {
                        eprintln!(
                            "ferry-conform: cannot connect to {addr}: {e} (is the server running?)"
                        );
                        return 2;
                    }
                }
            }
            let t = ServerTarget {
                addr,
                read_only: a.read_only_server.clone(),
                extra: a.extra_server.clone(),
                max_wait: Duration::from_secs(a.max_wait),
                session_limit: a.session_limit,
                hooks: crate::Hooks {
                    shutdown: a.shutdown_cmd.clone().map(crate::Hook::command),
                    shutdown_grace: a
                        .shutdown_grace
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .map(Duration::from_secs_f64),
                    touch: a.touch_cmd.clone().map(crate::Hook::command),
                },
                tls: None,
            };
            println!(
                "ferry-conform {}: server {}",
                env!("CARGO_PKG_VERSION"),
                t.addr
            );
            let quiet = a.common.quiet;
            if let Err(e) = crate::check_server(&t, &opts) {
                eprintln!("ferry-conform: {e}");
                return 2;
            }
            let r = crate::run_server(&t, &opts, &mut |r| print_result(r, quiet));
            (a.common, r)
        }
        Target::Client(a) => {
            let opts = options(&a.common);
            if a.common.list {
                return list(&client_cases(), &opts.filter);
            }
            let t = ClientTarget {
                argv: a.command.clone(),
            };
            println!(
                "ferry-conform {}: client {}",
                env!("CARGO_PKG_VERSION"),
                t.argv.join(" ")
            );
            let quiet = a.common.quiet;
            let r = crate::run_client(&t, &opts, &mut |r| print_result(r, quiet));
            (a.common, r)
        }
    };
    finish(&common, &report)
}

fn print_result(r: &crate::CaseResult, quiet: bool) {
    if quiet
        && matches!(
            r.verdict,
            crate::Verdict::Pass | crate::Verdict::Unimplemented | crate::Verdict::Informational
        )
    {
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", report::human(r));
    let _ = out.flush();
}

fn finish(common: &Common, report: &Report) -> u8 {
    println!("\n{}", report.summary_line());
    if report.kind == crate::Kind::Client
        && report.summary.total > 0
        && report.summary.unimplemented == report.summary.total
    {
        eprintln!(
            "ferry-conform: every case is unimplemented (the command exited 127 each time): \
             is the client on PATH? A shell exits 127 for a command it cannot find."
        );
    }
    if let Some(p) = &common.json
        && let Err(e) = std::fs::write(p, report.to_json())
    {
        eprintln!("ferry-conform: cannot write {}: {e}", p.display());
        return 2;
    }
    if let Some(p) = &common.junit
        && let Err(e) = std::fs::write(p, report.to_junit())
    {
        eprintln!("ferry-conform: cannot write {}: {e}", p.display());
        return 2;
    }
    u8::from(report.failed())
}
