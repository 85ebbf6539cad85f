//! The `ferry-conform` command line. `ferry conform` embeds [`Target`] as its subcommand
//! and calls [`run`].

// The doc comments of the clap types are the commands' --help text, written for a terminal:
// `HOST[:PORT]` there is a usage pattern, not a rustdoc link.
#![allow(rustdoc::broken_intra_doc_links)]

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
// Parsed once per process: the size of the server variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Target {
    /// Test a RUNNING server at ADDR (host:port, or ferrys://HOST[:PORT] for ferry/1 over
    /// TLS). Its served folder must start empty and writable; the runner creates its files
    /// with put under per-run, per-case name prefixes (ferry has no delete: they stay).
    Server(ServerArgs),
    /// Test a client COMMAND: the runner plays a scripted server per case and runs the
    /// command with {addr}, {op}, {name}, {dir} substituted (also FERRY_ADDR, FERRY_OP,
    /// FERRY_NAME, FERRY_DIR). Exit 0 = success, non-zero = failure, 127 = not supported.
    Client(ClientArgs),
    /// Write the users of the auth cases into DIR (new or empty): four users (alice: every
    /// right; bob: list,read; carol: list,read,create; dave: create), each with an Ed25519
    /// key (DIR/keys, OpenSSH format), a password and an empty folder (DIR/homes/NAME);
    /// DIR/users.toml for `ferry serve --users`, DIR/USERS.md for other servers, and
    /// DIR/conform.toml for `server --auth DIR`.
    AuthSetup(AuthSetupArgs),
}

/// `ferry-conform auth-setup`.
#[derive(Debug, Clone, Args)]
pub struct AuthSetupArgs {
    /// The folder to write (made if missing; must be empty).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
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
    /// The server to test: HOST:PORT (plain ferry/1), or ferrys://HOST[:PORT] for ferry/1
    /// over TLS (port 7451 by default; the TLS cases run too).
    #[arg(required_unless_present = "list")]
    pub addr: Option<String>,
    /// Over TLS: accept only the server key with this fingerprint (as `ferry serve` prints
    /// it, SHA256:…), whatever its certificate.
    #[arg(long, value_name = "SHA256:…", group = "trust")]
    pub fingerprint: Option<ferry_tls::Fingerprint>,
    /// Over TLS: verify the server's certificate chain and host name against the
    /// certificates (PEM) of FILE.
    #[arg(long, value_name = "FILE", group = "trust")]
    pub ca: Option<PathBuf>,
    /// Over TLS: accept any server key (the handshake is still checked). Without
    /// --fingerprint, --ca or --insecure the chain is verified against the system's roots.
    #[arg(long, group = "trust")]
    pub insecure: bool,
    /// A read-only server (any folder; only listed) for the read-only cases. Over TLS like
    /// ADDR, verified the same way.
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
    /// The users the server knows, as `auth-setup DIR` wrote them: the auth cases
    /// (server/AUTH-*, over TLS only) log in as them on the first server (ADDR, then each
    /// --extra-server) whose greeting offers ext=auth. Without it they are unimplemented.
    #[arg(long, value_name = "DIR")]
    pub auth: Option<PathBuf>,
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
        Target::AuthSetup(a) => {
            return match crate::auth::setup(&a.dir) {
                Ok(said) => {
                    println!("ferry-conform: {said}");
                    0
                }
                Err(e) => {
                    eprintln!("ferry-conform: {e}");
                    2
                }
            };
        }
        Target::Server(a) => {
            let opts = options(&a.common);
            if a.common.list {
                return list(&server_cases(), &opts.filter);
            }
            let Some(given) = a.addr.clone() else {
                eprintln!("ferry-conform: ADDR is required");
                return 2;
            };
            let (addr, tls) = match server_addresses(&a, &given) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("ferry-conform: {e}");
                    return 2;
                }
            };
            match crate::net::resolve(&addr.main) {
                Err(e) => {
                    eprintln!("ferry-conform: cannot resolve {given}: {e}");
                    return 2;
                }
                Ok(a) => {
                    if let Err(e) = std::net::TcpStream::connect_timeout(&a, Duration::from_secs(5))
                    {
                        eprintln!(
                            "ferry-conform: cannot connect to {given}: {e} (is the server running?)"
                        );
                        return 2;
                    }
                }
            }
            let auth = match &a.auth {
                None => None,
                Some(dir) => match crate::auth::Credentials::load(dir) {
                    Ok(c) => Some(std::sync::Arc::new(c)),
                    Err(e) => {
                        eprintln!("ferry-conform: --auth: {e}");
                        return 2;
                    }
                },
            };
            let t = ServerTarget {
                addr: addr.main,
                read_only: addr.read_only,
                extra: addr.extra,
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
                tls,
                auth,
            };
            println!(
                "ferry-conform {}: server {}",
                env!("CARGO_PKG_VERSION"),
                t.shown()
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

/// The servers of a server run as `host:port`, all plain or all TLS.
#[derive(Debug, PartialEq, Eq)]
struct Addresses {
    main: String,
    read_only: Option<String>,
    extra: Vec<String>,
}

/// The default port of ferry/1 over TLS (TLS-1).
const TLS_PORT: u16 = ferry_tls::DEFAULT_TLS_PORT;
/// The default port of plain ferry/1 (CONN-1).
const PLAIN_PORT: u16 = ferry_wire::limits::DEFAULT_PORT;

/// Splits `[ferrys:// | ferry://]HOST[:PORT]` into whether it is TLS, the host (IPv6 without
/// brackets) and the port (7451 by default after `ferrys://`, else 7450).
fn parse_address(s: &str) -> Result<(bool, String, u16), String> {
    let (tls, rest) = if let Some(r) = s.strip_prefix("ferrys://") {
        (true, r)
    } else if let Some(r) = s.strip_prefix("ferry://") {
        (false, r)
    } else if s.contains("://") {
        return Err(format!(
            "{s:?}: the address scheme is ferrys:// (TLS) or ferry:// (plain)"
        ));
    } else {
        (false, s)
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let default = if tls { TLS_PORT } else { PLAIN_PORT };
    let bad = || format!("{s:?} is not [ferrys://]HOST[:PORT]");
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (host, after) = inner.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else if rest.matches(':').count() > 1 {
        (rest, None)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() || host.contains(['/', '[', ']']) || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    let port = match port {
        None => default,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("{s:?}: {p:?} is not a port number"))?,
    };
    Ok((tls, host.to_owned(), port))
}

/// `host:port` (IPv6 in brackets).
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The run's servers and, over TLS, the client configuration for all of them.
fn server_addresses(
    a: &ServerArgs,
    given: &str,
) -> Result<(Addresses, Option<ferry_tls::ClientTls>), String> {
    let (tls, host, port) = parse_address(given)?;
    let other = |s: &String| -> Result<String, String> {
        let (t, h, p) = parse_address(s)?;
        if t != tls && s.contains("://") {
            return Err(format!(
                "{s}: the servers of one run are all ferry/1 over TLS or all plain ({given} is {})",
                if tls { "TLS" } else { "plain" }
            ));
        }
        Ok(host_port(&h, p))
    };
    let addresses = Addresses {
        main: host_port(&host, port),
        read_only: a.read_only_server.as_ref().map(other).transpose()?,
        extra: a.extra_server.iter().map(other).collect::<Result<_, _>>()?,
    };
    if !tls {
        if a.fingerprint.is_some() || a.ca.is_some() || a.insecure {
            return Err(format!(
                "--fingerprint, --ca and --insecure are for ferry/1 over TLS: give the server as \
                 ferrys://{}",
                addresses.main
            ));
        }
        return Ok((addresses, None));
    }
    let trust = if let Some(f) = a.fingerprint {
        ferry_tls::Trust::Fingerprint(f)
    } else if let Some(ca) = &a.ca {
        ferry_tls::Trust::Ca(ca.clone())
    } else if a.insecure {
        ferry_tls::Trust::Insecure
    } else {
        ferry_tls::Trust::System
    };
    let client = ferry_tls::ClientTls::new(&host, port, trust).map_err(|e| e.to_string())?;
    Ok((addresses, Some(client)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_setup_writes_once_and_refuses_a_folder_that_is_not_empty() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("users");
        let args = |d: &std::path::Path| {
            [
                "ferry-conform".into(),
                "auth-setup".into(),
                d.as_os_str().to_owned(),
            ]
        };
        assert_eq!(main_from(args(&dir)), 0);
        assert!(dir.join(crate::auth::USERS_FILE).is_file());
        assert!(crate::auth::Credentials::load(&dir).is_ok());
        assert_eq!(main_from(args(&dir)), 2, "never over what exists");
    }

    #[test]
    fn addresses_with_and_without_scheme() {
        let p = |s: &str| parse_address(s).expect(s);
        assert_eq!(
            p("ferrys://files.example"),
            (true, "files.example".into(), 7451)
        );
        assert_eq!(p("ferrys://127.0.0.1:9"), (true, "127.0.0.1".into(), 9));
        assert_eq!(p("ferrys://[::1]"), (true, "::1".into(), 7451));
        assert_eq!(p("ferrys://[::1]:8/"), (true, "::1".into(), 8));
        assert_eq!(p("ferry://h"), (false, "h".into(), 7450));
        assert_eq!(p("127.0.0.1:7450"), (false, "127.0.0.1".into(), 7450));
        assert_eq!(p("::1"), (false, "::1".into(), 7450));
        for bad in [
            "ferrys://",
            "https://h",
            "ferrys://h:x",
            "ferrys://[::1",
            "ferrys://a/b",
        ] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
        assert_eq!(host_port("::1", 7451), "[::1]:7451");
    }

    fn server_args(args: &[&str]) -> ServerArgs {
        let cli =
            Cli::try_parse_from(["ferry-conform", "server"].iter().chain(args)).expect("arguments");
        match cli.target {
            Target::Server(a) => a,
            Target::Client(_) | Target::AuthSetup(_) => unreachable!(),
        }
    }

    #[test]
    fn a_tls_run_verifies_every_server_the_same_way() {
        let fp = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
        let a = server_args(&[
            "ferrys://127.0.0.1",
            "--fingerprint",
            fp,
            "--extra-server",
            "ferrys://127.0.0.1:9",
            "--read-only-server",
            "127.0.0.1:8",
        ]);
        let (addr, tls) = server_addresses(&a, "ferrys://127.0.0.1").expect("TLS run");
        assert_eq!(
            addr,
            Addresses {
                main: "127.0.0.1:7451".into(),
                read_only: Some("127.0.0.1:8".into()),
                extra: vec!["127.0.0.1:9".into()],
            }
        );
        assert!(format!("{tls:?}").contains(fp), "{tls:?}");
        // Plain and TLS servers are not mixed; trust options need a TLS target.
        let a = server_args(&["ferrys://h", "--extra-server", "ferry://h:1"]);
        assert!(server_addresses(&a, "ferrys://h").is_err());
        let a = server_args(&["h:1", "--insecure"]);
        let e = server_addresses(&a, "h:1").expect_err("plain");
        assert!(e.contains("ferrys://h:1"), "{e}");
        let (_, tls) = server_addresses(&server_args(&["h:1"]), "h:1").expect("plain");
        assert!(tls.is_none());
        // One way of verifying at a time.
        assert!(
            Cli::try_parse_from([
                "ferry-conform",
                "server",
                "ferrys://h",
                "--insecure",
                "--ca",
                "x"
            ])
            .is_err()
        );
        assert!(
            Cli::try_parse_from([
                "ferry-conform",
                "server",
                "ferrys://h",
                "--fingerprint",
                "SHA256:x"
            ])
            .is_err()
        );
    }
}
