//! `--clients own`: each implementation driven by its own client, as users run it. For
//! implementation X, a fresh `ferry serve --impl X` per run (as for the shared load generator)
//! and one whole command as a child process, timed from its start to its exit:
//!
//! - `ferry get --impl X ADDR large.bin -o DEST/` and `ferry put --impl X ADDR large.bin`
//!   (workload 1's file);
//! - `ferry get --impl X ADDR s00000 … sNNNNN -o DEST/` and `ferry put --impl X ADDR s00000 …`
//!   (workload 2's files, every one in one command: pipelined on one session).
//!
//! Uploads go to [`Folders::up`], served empty, since `ferry put` stores a file under its own
//! name. Names go on the command line, relative to the command's folder, so 10,000 of them
//! take about 150 KiB of the 2 MiB Linux allows. After each run the destination must hold
//! exactly the files, each of its size; a command's non-zero exit, a missing or wrong file or a
//! server that does not stop cleanly makes the run an error, reported with its stderr. The
//! destination is emptied before and after every run.
//!
//! Over TLS (`--tls`) the server runs with `--tls-self-signed` and the commands name it
//! `ferrys://ADDR --fingerprint FP` (the key's fingerprint it printed), as a user pins a
//! server's key; [`tls_support`] says first whether this `ferry` has those client flags.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::data::{self, Folders};
use crate::procfs;
use crate::report::OwnResult;
use crate::server::ServerProcess;
use crate::{BenchArgs, Impl, stats, units};

/// Longest stderr quoted in the report for a failed command.
const STDERR_QUOTE: usize = 600;

/// One whole-command case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnCase {
    /// `ferry get` of workload 1's file.
    LargeGet,
    /// `ferry put` of workload 1's file.
    LargePut,
    /// `ferry get` of workload 2's files, in one command.
    SmallGet,
    /// `ferry put` of workload 2's files, in one command.
    SmallPut,
}

impl OwnCase {
    /// (workload, op).
    pub fn parts(self) -> (&'static str, &'static str) {
        match self {
            OwnCase::LargeGet => ("large", "get"),
            OwnCase::LargePut => ("large", "put"),
            OwnCase::SmallGet => ("small", "get"),
            OwnCase::SmallPut => ("small", "put"),
        }
    }

    fn is_put(self) -> bool {
        matches!(self, OwnCase::LargePut | OwnCase::SmallPut)
    }
}

/// What one command moves: its names (local for a put, remote for a get: the same names),
/// the size of each, where the command runs, what the server serves and where the files land.
struct Plan {
    names: Vec<String>,
    size: u64,
    cwd: PathBuf,
    root: PathBuf,
    target: PathBuf,
}

fn plan(args: &BenchArgs, case: OwnCase, f: &Folders) -> Plan {
    let (names, size, source) = match case {
        OwnCase::LargeGet | OwnCase::LargePut => {
            (vec![data::LARGE_NAME.to_owned()], args.large_size, &f.large)
        }
        OwnCase::SmallGet | OwnCase::SmallPut => (
            (0..args.small_ops).map(data::small_name).collect(),
            args.small_size,
            &f.small,
        ),
    };
    if case.is_put() {
        Plan {
            names,
            size,
            cwd: source.clone(),
            root: f.up.clone(),
            target: f.up.clone(),
        }
    } else {
        Plan {
            names,
            size,
            cwd: f.dest.clone(),
            root: source.clone(),
            target: f.dest.clone(),
        }
    }
}

/// Whether `exe`'s clients speak ferry/1 over TLS with a pinned key (`ferrys://` addresses and
/// `--fingerprint`), from `ferry get --help`; if not, why not.
pub fn tls_support(exe: &Path) -> Result<(), String> {
    let out = Command::new(exe)
        .args(["get", "--help"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{} get --help`: {e}", exe.display()))?;
    tls_flags_in(exe, &String::from_utf8_lossy(&out.stdout))
}

/// Whether the `ferry get --help` text `help` of `exe` offers `--fingerprint`.
fn tls_flags_in(exe: &Path, help: &str) -> Result<(), String> {
    if help.contains("--fingerprint") {
        Ok(())
    } else {
        Err(format!(
            "`{} get` has no --fingerprint option yet (a client without `ferrys://` and \
             `--fingerprint` cannot pin the server's key)",
            exe.display()
        ))
    }
}

/// How a command names the server: `ADDR` plain, or `ferrys://ADDR --fingerprint FP`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Server<'a> {
    addr: &'a str,
    fingerprint: Option<&'a str>,
}

/// The command's arguments after the `ferry` binary.
fn argv(imp: Impl, case: OwnCase, server: &Server<'_>, plan: &Plan) -> Vec<OsString> {
    let op = case.parts().1;
    let mut v: Vec<OsString> = vec![op.into(), "--impl".into(), imp.name().into()];
    match server.fingerprint {
        Some(fp) => {
            v.extend(["--fingerprint".into(), fp.into()]);
            v.push(format!("ferrys://{}", server.addr).into());
        }
        None => v.push(server.addr.into()),
    }
    v.extend(plan.names.iter().map(OsString::from));
    if !case.is_put() {
        // A trailing separator: always a folder, with one name as with many.
        let mut dest = plan.target.clone().into_os_string();
        dest.push("/");
        v.push("-o".into());
        v.push(dest);
    }
    v
}

/// The command as the report shows it: `ferry get --impl tokio ADDR s00000 … s00999 -o DEST/`
/// (over TLS: `--fingerprint FP ferrys://ADDR`).
fn command_text(imp: Impl, case: OwnCase, plan: &Plan, tls: bool) -> String {
    let names = match plan.names.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [first, .., last] => format!("{first} … {last}"),
    };
    let (_, op) = case.parts();
    let out = if case.is_put() { "" } else { " -o DEST/" };
    let server = if tls {
        "--fingerprint FP ferrys://ADDR"
    } else {
        "ADDR"
    };
    format!("ferry {op} --impl {} {server} {names}{out}", imp.name())
}

/// One run's figures.
struct Run {
    seconds: f64,
    server_cpu: Duration,
    client_cpu: Duration,
    peak_rss: u64,
}

/// Runs `case` `--repeat` times against `ferry serve --impl imp` started from `exe`: plain,
/// or with `tls_dir` over TLS with the self-signed key kept there.
pub fn run_case(
    args: &BenchArgs,
    exe: &Path,
    imp: Impl,
    case: OwnCase,
    folders: &Folders,
    logs: &Path,
    tls_dir: Option<&Path>,
) -> io::Result<OwnResult> {
    let (workload, op) = case.parts();
    let tls = tls_dir.is_some();
    let over = if tls { " over TLS" } else { "" };
    let plan = plan(args, case, folders);
    let repeat = args.repeat as usize;
    let mut runs = Vec::new();
    let mut errors = Vec::new();
    for run in 0..repeat {
        data::empty_folder(&plan.target)?;
        let log = logs.join(format!(
            "{}-own-{workload}-{op}{}-{run}.log",
            imp.name(),
            if tls { "-tls" } else { "" }
        ));
        match one_run(exe, imp, case, &plan, &log, tls_dir) {
            Ok(r) => {
                crate::say(format_args!(
                    "{:<9} own client {workload} {op}{over} run {}/{repeat}: {} files, {:.3} s",
                    imp.name(),
                    run + 1,
                    plan.names.len(),
                    r.seconds
                ));
                runs.push(r);
            }
            Err(e) => {
                crate::say(format_args!(
                    "{:<9} own client {workload} {op}{over} run {}/{repeat}: error: {e}",
                    imp.name(),
                    run + 1
                ));
                errors.push(e.to_string());
            }
        }
        data::empty_folder(&plan.target)?;
    }
    let files = plan.names.len() as u64;
    let bytes = files * plan.size;
    let seconds: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
    let (median, best) = if runs.is_empty() {
        (0.0, 0.0)
    } else {
        (
            stats::median(&seconds),
            seconds.iter().copied().fold(f64::INFINITY, f64::min),
        )
    };
    let rate = |n: f64, s: f64| if s > 0.0 { n / s } else { 0.0 };
    let shown = runs.get(stats::median_index(&seconds));
    Ok(OwnResult {
        implementation: imp.name().to_owned(),
        workload: workload.to_owned(),
        op: op.to_owned(),
        tls,
        command: command_text(imp, case, &plan, tls),
        files,
        bytes,
        seconds: median,
        best_seconds: best,
        runs_seconds: seconds.clone(),
        mib_per_s: rate(bytes as f64 / units::MIB, median),
        best_mib_per_s: rate(bytes as f64 / units::MIB, best),
        files_per_s: rate(files as f64, median),
        best_files_per_s: rate(files as f64, best),
        server_cpu_s: shown.map_or(0.0, |r| r.server_cpu.as_secs_f64()),
        client_cpu_s: shown.map_or(0.0, |r| r.client_cpu.as_secs_f64()),
        server_peak_rss_mib: runs.iter().map(|r| r.peak_rss).max().unwrap_or(0) as f64 / units::MIB,
        errors: errors.len() as u64,
        first_error: errors.into_iter().next(),
        compared: None,
    })
}

/// One run: a fresh server, the command, the check of its result.
fn one_run(
    exe: &Path,
    imp: Impl,
    case: OwnCase,
    plan: &Plan,
    log: &Path,
    tls_dir: Option<&Path>,
) -> io::Result<Run> {
    let server = ServerProcess::start(exe, imp, &plan.root, 64, log, tls_dir, None)?;
    let addr = server.addr().to_string();
    let fingerprint = server.fingerprint().map(ToString::to_string);
    let named = Server {
        addr: &addr,
        fingerprint: fingerprint.as_deref(),
    };
    let tls = tls_dir.is_some();
    let s0 = server.stats()?;
    let c0 = procfs::children_cpu()?;
    let start = Instant::now();
    let output = Command::new(exe)
        .args(argv(imp, case, &named, plan))
        .current_dir(&plan.cwd)
        // What a user's shell gives it: the default log level (warnings and errors).
        .env("FERRY_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let seconds = start.elapsed().as_secs_f64();
    let c1 = procfs::children_cpu()?;
    let s1 = server.stats()?;
    let stopped = server.stop();
    let output = output.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot run `{}`: {e}", command_text(imp, case, plan, tls)),
        )
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(io::Error::other(format!(
            "`{}` exited with {}: {}",
            command_text(imp, case, plan, tls),
            output.status,
            quote(stderr.trim())
        )));
    }
    check_result(plan)?;
    stopped?;
    Ok(Run {
        seconds,
        server_cpu: s1.cpu.saturating_sub(s0.cpu),
        client_cpu: c1.saturating_sub(c0),
        peak_rss: s1.peak_rss,
    })
}

/// The last [`STDERR_QUOTE`] characters of `text` (the end says why it failed).
fn quote(text: &str) -> String {
    let n = text.chars().count();
    if n <= STDERR_QUOTE {
        return text.to_owned();
    }
    let tail: String = text.chars().skip(n - STDERR_QUOTE).collect();
    format!("…{tail}")
}

/// The target folder holds exactly `plan.names`, each of `plan.size` octets, apart from the
/// server's own dot-folder (`.ferry-staging`, in the served folder of a put).
fn check_result(plan: &Plan) -> io::Result<()> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(&plan.target)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && e.file_type()?.is_dir() {
            continue;
        }
        let len = e.metadata()?.len();
        if len != plan.size {
            return Err(io::Error::other(format!(
                "{} has {len} octets, not {}",
                e.path().display(),
                plan.size
            )));
        }
        found.push(name);
    }
    found.sort();
    if found != plan.names {
        let missing = plan.names.iter().filter(|n| !found.contains(n)).count();
        let extra: Vec<&String> = found.iter().filter(|n| !plan.names.contains(n)).collect();
        return Err(io::Error::other(format!(
            "{} holds {} files: {missing} of the {} expected missing, {} unexpected{}",
            plan.target.display(),
            found.len(),
            plan.names.len(),
            extra.len(),
            extra
                .first()
                .map_or(String::new(), |n| format!(" (first: {n})"))
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(names: &[&str], size: u64, target: &Path) -> Plan {
        Plan {
            names: names.iter().map(|s| s.to_string()).collect(),
            size,
            cwd: target.to_owned(),
            root: target.to_owned(),
            target: target.to_owned(),
        }
    }

    #[test]
    fn the_result_must_be_exactly_the_files_at_their_size() -> io::Result<()> {
        let t = tempfile::tempdir()?;
        let plan = plan_of(&["s00000", "s00001"], 3, t.path());
        assert!(check_result(&plan).is_err(), "nothing there");
        std::fs::write(t.path().join("s00000"), b"abc")?;
        let e = check_result(&plan).expect_err("one missing");
        assert!(e.to_string().contains("1 of the 2 expected missing"), "{e}");
        std::fs::write(t.path().join("s00001"), b"ab")?;
        let e = check_result(&plan).expect_err("short");
        assert!(e.to_string().contains("has 2 octets, not 3"), "{e}");
        std::fs::write(t.path().join("s00001"), b"abc")?;
        std::fs::create_dir(t.path().join(".ferry-staging"))?;
        check_result(&plan)?;
        std::fs::write(t.path().join("s00001.ferry-part"), b"abc")?;
        let e = check_result(&plan).expect_err("a partial file left");
        assert!(e.to_string().contains("first: s00001.ferry-part"), "{e}");
        Ok(())
    }

    #[test]
    fn commands_are_what_a_user_types() {
        let plan = plan_of(&["s00000", "s00001", "s00002"], 1, Path::new("/w/dest"));
        let plain = Server {
            addr: "127.0.0.1:9",
            fingerprint: None,
        };
        let get = argv(Impl::Tokio, OwnCase::SmallGet, &plain, &plan);
        assert_eq!(
            get,
            [
                "get",
                "--impl",
                "tokio",
                "127.0.0.1:9",
                "s00000",
                "s00001",
                "s00002",
                "-o",
                "/w/dest/"
            ]
        );
        let put = argv(Impl::AsyncStd, OwnCase::SmallPut, &plain, &plan);
        assert_eq!(
            put,
            [
                "put",
                "--impl",
                "async-std",
                "127.0.0.1:9",
                "s00000",
                "s00001",
                "s00002"
            ]
        );
        assert_eq!(
            command_text(Impl::Smol, OwnCase::SmallGet, &plan, false),
            "ferry get --impl smol ADDR s00000 … s00002 -o DEST/"
        );
        let one = plan_of(&["large.bin"], 1, Path::new("/w/large"));
        assert_eq!(
            command_text(Impl::Threads, OwnCase::LargePut, &one, false),
            "ferry put --impl threads ADDR large.bin"
        );
    }

    #[test]
    fn tls_commands_name_a_ferrys_address_and_pin_the_key() {
        let fp = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
        let server = Server {
            addr: "127.0.0.1:9",
            fingerprint: Some(fp),
        };
        let one = plan_of(&["large.bin"], 1, Path::new("/w/dest"));
        assert_eq!(
            argv(Impl::Threads, OwnCase::LargeGet, &server, &one),
            [
                "get",
                "--impl",
                "threads",
                "--fingerprint",
                fp,
                "ferrys://127.0.0.1:9",
                "large.bin",
                "-o",
                "/w/dest/"
            ]
        );
        assert_eq!(
            argv(Impl::Smol, OwnCase::LargePut, &server, &one),
            [
                "put",
                "--impl",
                "smol",
                "--fingerprint",
                fp,
                "ferrys://127.0.0.1:9",
                "large.bin"
            ]
        );
        assert_eq!(
            command_text(Impl::Smol, OwnCase::LargePut, &one, true),
            "ferry put --impl smol --fingerprint FP ferrys://ADDR large.bin"
        );
    }

    #[test]
    fn own_clients_over_tls_need_the_fingerprint_flag() {
        let exe = Path::new("/x/ferry");
        assert_eq!(
            tls_flags_in(exe, "      --fingerprint <FP>  pin the server's key"),
            Ok(())
        );
        let why = tls_flags_in(exe, "      --impl <IMPL>").expect_err("no --fingerprint");
        assert!(
            why.contains("`/x/ferry get` has no --fingerprint option yet"),
            "{why}"
        );
        let why = tls_support(Path::new("/nonexistent/ferry")).expect_err("no binary");
        assert!(why.contains("cannot run"), "{why}");
    }

    #[test]
    fn long_stderr_is_quoted_by_its_end() {
        assert_eq!(quote("short"), "short");
        let long = format!("{}END", "x".repeat(2000));
        let q = quote(&long);
        assert!(q.starts_with('…') && q.ends_with("END"), "{q}");
        assert_eq!(q.chars().count(), STDERR_QUOTE + 1);
    }
}
