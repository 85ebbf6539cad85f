//! # ferry-conformance: a conformance suite for ferry/1 servers and clients
//!
//! In the spirit of h2spec and Autobahn|Testsuite: every case has an ID that follows the
//! spec's requirement IDs (`server/GET-4/1`, `client/SUM-2/1`, and
//! `server/examples/05-pipelining` for the example transcripts), a title, the requirements it
//! checks and a level taken from `spec/protocol.md`. A failing case prints the requirement's
//! text, what was expected and what happened.
//!
//! - [`run_server`] tests a running server ([`ServerTarget`]): a fresh connection and a
//!   deadline per case. The served folder must start empty and writable (see the README).
//! - [`run_client`] tests a client command ([`ClientTarget`]): the runner plays a scripted
//!   server per case and launches the command with placeholders (`{addr}`, `{op}`, `{name}`,
//!   `{dir}`).
//! - [`cli`] is the `ferry-conform` command line (also `ferry conform`).
//! - [`auth`] writes and reads the users of the `auth` cases (`server/AUTH-*`, spec section
//!   16): `ferry conform auth-setup DIR`, then `server --auth DIR` ([`ServerTarget::auth`]).
//!
//! Verdicts ([`Verdict`]): `pass`; `fail` (a MUST requirement violated, or a SHOULD one with
//! `--strict`); `non-strict` (a SHOULD requirement violated, without `--strict`);
//! `unimplemented` (the target cannot be tested for the case: a configuration was not given,
//! or the client exited 127); `informational` (the case only reports). A run fails (exit 1)
//! when any case fails.

pub mod auth;
pub mod case;
pub mod cli;
mod client;
pub mod hooks;
mod net;
pub mod report;
mod server;
pub mod spec;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use case::{CaseInfo, CaseResult, Kind, Verdict};
pub use client::ClientTarget;
pub use hooks::{Hook, Hooks, Touch};
pub use report::{Report, Summary};
pub use server::ServerTarget;
pub use spec::{Level, Requirement};

/// The `uncovered.toml` file: the MUST requirements no case checks, with reasons.
pub const UNCOVERED_TOML: &str = include_str!("../uncovered.toml");

/// The example transcripts embedded in the runner: (file stem, text).
pub fn embedded_examples() -> &'static [(&'static str, &'static str)] {
    server::embedded_examples()
}

/// Selects cases by ID.
///
/// A pattern with `*` or `?` is a glob over the whole ID (`*` also matches `/`); any other
/// pattern is an ID prefix. Patterns may leave out the kind: `PUT-*` matches
/// `server/PUT-2/1`. No include pattern means every case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Run only cases matching one of these.
    pub include: Vec<String>,
    /// Then leave out cases matching one of these.
    pub exclude: Vec<String>,
}

impl Filter {
    /// Whether the case `id` is selected.
    pub fn selects(&self, id: &str) -> bool {
        let m = |p: &String| matches(p, id);
        (self.include.is_empty() || self.include.iter().any(m)) && !self.exclude.iter().any(m)
    }
}

fn matches(pattern: &str, id: &str) -> bool {
    let short = id.split_once('/').map_or(id, |(_, rest)| rest);
    let one = |s: &str| {
        if pattern.contains(['*', '?']) {
            glob(pattern.as_bytes(), s.as_bytes())
        } else {
            s.starts_with(pattern)
        }
    };
    one(id) || one(short)
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// SHOULD violations fail (else they are `non-strict`).
    pub strict: bool,
    /// Which cases.
    pub filter: Filter,
    /// Deadline of each case (a few cases that wait for server timeouts add those).
    pub timeout: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            strict: false,
            filter: Filter::default(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Every server case, in run order.
pub fn server_cases() -> Vec<CaseInfo> {
    server::all().into_iter().map(|c| c.info).collect()
}

/// Every client case, in run order.
pub fn client_cases() -> Vec<CaseInfo> {
    client::all().into_iter().map(|c| c.info).collect()
}

/// A prefix unique to this run (six base-36 digits from the clock and the process ID).
fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut x = (nanos as u64) ^ (u64::from(std::process::id()) << 32) ^ (nanos >> 64) as u64;
    x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..6)
        .map(|i| digits[((x >> (i * 6)) % 36) as usize] as char)
        .collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The precondition of a server run: the main server accepts the runner's uploads (the
/// server cases create their fixtures with `put`). A 1-octet probe file is uploaded; a clean
/// refusal (`err 514 read-only`, or any other `err`) is one clear error instead of a cascade
/// of failures under unrelated requirement IDs. A server that answers something else is left
/// to the cases, which say what is wrong.
pub fn check_server(target: &ServerTarget, opts: &RunOptions) -> Result<(), String> {
    use ferry_wire::{Code, PutFlow, PutMode, Reply};
    let addr =
        net::resolve(&target.addr).map_err(|e| format!("cannot resolve {}: {e}", target.addr))?;
    let deadline = Instant::now() + opts.timeout;
    let to = net::Endpoint {
        addr,
        tls: target.tls.clone(),
    };
    let mut c = match net::Conn::open(&to, deadline) {
        Ok((c, _)) => c,
        Err(case::Stop::Violation(v)) if v.requirement.starts_with("TLS-") => {
            return Err(format!(
                "no TLS session with {to}: {} (is it a ferry/1 over TLS server, and does \
                 --fingerprint or --ca match its key?)",
                v.actual
            ));
        }
        Err(_) => return Ok(()),
    };
    // The auth cases (and the tree case with users) create their files as the users of
    // `--auth`, in their own folders: a run of only those needs no upload to the main server
    // without a login.
    let only_auth = server::all()
        .iter()
        .filter(|c| opts.filter.selects(&c.info.id))
        .all(|c| server::runs_as_users(&c.info.id));
    if only_auth {
        let _ = c.close();
        return Ok(());
    }
    let name = format!("cf{}-probe", run_id());
    match c.put("PUT-2", name.as_bytes(), PutMode::New, PutFlow::Wait, b"p") {
        Ok(Reply::Err(e)) if e.code == Code::READ_ONLY => Err(format!(
            "the server at {} is read-only (err 514): the server cases upload their own files, \
             so the main server must accept uploads into an empty folder; give a read-only \
             server as --read-only-server ADDR",
            target.addr
        )),
        Ok(Reply::Err(e)) if e.code == ferry_wire::auth::AUTH_REQUIRED => Err(format!(
            "the server at {} wants a login before an upload (err 530 auth-required): the \
             server cases other than server/AUTH-* need a server without users (or with an \
             anonymous access that may create files); run the auth cases alone with --auth DIR \
             --include 'server/AUTH-*', or give this server as --extra-server beside one \
             without users",
            target.addr
        )),
        Ok(Reply::Err(e)) => Err(format!(
            "the server at {} refused the runner's 1-octet probe upload with `{}`: the main \
             server must accept uploads into an empty, writable folder (a read-only one goes \
             to --read-only-server ADDR)",
            target.addr,
            net::show_reply(&Reply::Err(e))
        )),
        _ => Ok(()),
    }
}

/// Runs the selected server cases against `target`, calling `progress` after each. Call
/// [`check_server`] first for a clear error when the server does not accept uploads.
pub fn run_server(
    target: &ServerTarget,
    opts: &RunOptions,
    progress: &mut dyn FnMut(&CaseResult),
) -> Report {
    let start = Instant::now();
    let started_unix = unix_now();
    let run = run_id();
    let resolved = net::resolve(&target.addr);
    let mut results = Vec::new();
    for (i, case) in server::all().into_iter().enumerate() {
        if !opts.filter.selects(&case.info.id) {
            continue;
        }
        let t0 = Instant::now();
        let mut soft = Vec::new();
        let outcome = match &resolved {
            Ok(addr) => {
                let mut ctx = server::Ctx {
                    target,
                    addr: net::Endpoint {
                        addr: *addr,
                        tls: target.tls.clone(),
                    },
                    prefix: format!("cf{run}-{i:03}-"),
                    timeout: opts.timeout,
                    started: t0,
                    soft: Vec::new(),
                };
                let r = server::run_case(&case, &mut ctx);
                soft = ctx.soft;
                r
            }
            Err(e) => Err(case::unimplemented(format!(
                "cannot resolve {}: {e}",
                target.addr
            ))),
        };
        let r = CaseResult::from_run(&case.info, outcome, soft, opts.strict, t0.elapsed());
        progress(&r);
        results.push(r);
    }
    Report {
        tool: "ferry-conform",
        version: env!("CARGO_PKG_VERSION"),
        kind: Kind::Server,
        target: target.shown(),
        strict: opts.strict,
        started_unix,
        duration_ms: start.elapsed().as_millis() as u64,
        summary: Summary::of(&results),
        cases: results,
    }
}

/// Runs the selected client cases against the command `target`, calling `progress` after
/// each.
pub fn run_client(
    target: &ClientTarget,
    opts: &RunOptions,
    progress: &mut dyn FnMut(&CaseResult),
) -> Report {
    let start = Instant::now();
    let started_unix = unix_now();
    let mut results = Vec::new();
    for case in client::all() {
        if !opts.filter.selects(&case.info.id) {
            continue;
        }
        let t0 = Instant::now();
        let outcome = client::run_case(&case, target, opts.timeout);
        let r = CaseResult::from_run(&case.info, outcome, Vec::new(), opts.strict, t0.elapsed());
        progress(&r);
        results.push(r);
    }
    Report {
        tool: "ferry-conform",
        version: env!("CARGO_PKG_VERSION"),
        kind: Kind::Client,
        target: target.argv.join(" "),
        strict: opts.strict,
        started_unix,
        duration_ms: start.elapsed().as_millis() as u64,
        summary: Summary::of(&results),
        cases: results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_by_prefix_and_glob() {
        let f = Filter {
            include: vec!["server/PUT-*".into(), "GET-4".into()],
            exclude: vec!["*/PUT-13/*".into()],
        };
        assert!(f.selects("server/PUT-2/1"));
        assert!(f.selects("server/GET-4/1"));
        assert!(!f.selects("server/PUT-13/1"));
        assert!(!f.selects("server/GET-3/1"));
        assert!(!f.selects("client/PUT-1/1"));
        assert!(Filter::default().selects("anything"));
        let f = Filter {
            include: vec!["server/examples/0?-*".into()],
            exclude: vec![],
        };
        assert!(f.selects("server/examples/05-pipelining"));
        assert!(!f.selects("server/examples/25-bad-name"));
    }

    #[test]
    fn case_ids_are_unique_and_cite_existing_requirements() {
        let mut ids = std::collections::BTreeSet::new();
        for c in server_cases().into_iter().chain(client_cases()) {
            assert!(ids.insert(c.id.clone()), "duplicate case {}", c.id);
            assert!(!c.requirements.is_empty(), "{}", c.id);
            for r in &c.requirements {
                assert!(spec::requirement(r).is_some(), "{} cites unknown {r}", c.id);
            }
        }
    }

    /// A case's judge reports what it finds wrong under the case's first requirement unless
    /// it names another: a MAY there would turn every such failure into mere information.
    #[test]
    fn no_case_reports_under_a_may_unless_it_is_only_about_one() {
        for c in server_cases().into_iter().chain(client_cases()) {
            let first = spec::requirement(&c.requirements[0]).map(|r| r.level);
            assert!(
                first != Some(spec::Level::May) || c.level == spec::Level::May,
                "{}: {:?}",
                c.id,
                c.requirements
            );
        }
    }

    #[test]
    fn run_ids_look_like_names() {
        let id = run_id();
        assert_eq!(id.len(), 6);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
