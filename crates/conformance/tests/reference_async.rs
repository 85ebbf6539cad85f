//! The runner against the async reference implementation (`ferry-async`, tokio driver): its
//! server must pass every server case and its blocking client every client case, as for
//! `ferry-sync` in `reference.rs` (same rules: known deviations listed in `KNOWN`, checked
//! both ways).

use std::path::PathBuf;
use std::time::Duration;

use ferry_conformance::{ClientTarget, RunOptions, ServerTarget, run_client, run_server};
use ferry_test_support::{Impl, TestServer};

mod common;
#[path = "common/users.rs"]
mod users;

/// Cases the async reference is known to fail: (case ID, reason).
const KNOWN: &[(&str, &str)] = &[];

/// A server of implementation `imp` on 127.0.0.1:0 (stops and joins on drop), over TLS with
/// the test key when `tls`.
fn async_server(
    imp: Impl,
    tls: bool,
    f: impl FnOnce(&mut ferry_test_support::Config),
) -> TestServer {
    TestServer::with_impl_config(imp, |c| {
        c.shutdown_grace = Duration::from_secs(1);
        if tls {
            c.tls = Some(ferry_test_support::tls::server());
        }
        f(c);
    })
}

/// Every server case against the async server on runtime `imp`, configured for every case
/// (nothing `unimplemented`).
fn server_passes_every_server_case(imp: Impl) {
    server_passes_every_case_over(imp, false);
}

/// Every server case, the TLS cases included, against every implementation over TLS (the
/// server's key pinned): the whole suite runs inside TLS unchanged. A server with users
/// (`common/users.rs`) is one more extra server, for the auth cases only.
fn server_passes_every_case_over_tls(imp: Impl) {
    server_passes_every_case_over(imp, true);
}

fn server_passes_every_case_over(imp: Impl, tls: bool) {
    let main = async_server(imp, tls, |c| c.max_connections = 16);
    let ro = async_server(imp, tls, |c| c.read_only = true);
    let size10 = async_server(imp, tls, |c| c.max_size = 10);
    let eager4 = async_server(imp, tls, |c| c.max_eager = 4);
    let eager0 = async_server(imp, tls, |c| c.max_eager = 0);
    let timeouts = async_server(imp, tls, |c| {
        c.idle_timeout = Duration::from_secs(2);
        c.stall_timeout = Duration::from_secs(1);
    });
    // For server/TREE-2/1.
    let no_tree = async_server(imp, tls, |c| c.tree = false);
    // First among the extras: the other cases must pass it by.
    let with_users = tls.then(|| users::world(imp, None));
    let target = ServerTarget {
        addr: main.addr.to_string(),
        read_only: Some(ro.addr.to_string()),
        extra: with_users
            .iter()
            .map(|w| w.server.addr.to_string())
            .chain([
                size10.addr.to_string(),
                eager4.addr.to_string(),
                eager0.addr.to_string(),
                timeouts.addr.to_string(),
                no_tree.addr.to_string(),
            ])
            .collect(),
        max_wait: Duration::from_secs(3),
        session_limit: Some(16),
        hooks: common::hooks_for(&main, Duration::from_secs(1)),
        tls: main.tls.as_ref().map(ferry_test_support::tls::client),
        auth: with_users.as_ref().and_then(|w| w.target.auth.clone()),
    };
    let mut opts = RunOptions::default();
    if !tls {
        // The TLS and auth cases need a TLS server: server_passes_every_case_over_tls runs
        // them.
        opts.filter.exclude.push("server/TLS-*".into());
        opts.filter.exclude.push("server/AUTH-*".into());
        // The tree case with users (tests/auth.rs runs it over TLS).
        opts.filter.exclude.push("server/TREE-13/2".into());
    }
    let r = run_server(&target, &opts, &mut |_| {});
    let what = format!("{imp} server{}", if tls { " over TLS" } else { "" });
    common::check(&r, &what, KNOWN);
    assert_eq!(r.summary.unimplemented, 0, "{what}");
    if tls {
        let tls_cases = r
            .cases
            .iter()
            .filter(|c| c.id.starts_with("server/TLS-"))
            .count();
        assert!(tls_cases >= 10, "{what}: only {tls_cases} TLS cases ran");
        let auth_cases = r
            .cases
            .iter()
            .filter(|c| c.id.starts_with("server/AUTH-"))
            .count();
        assert!(auth_cases >= 16, "{what}: only {auth_cases} auth cases ran");
    }
}

#[test]
fn threads_server_passes_every_case_over_tls() {
    server_passes_every_case_over_tls(Impl::Threads);
}

#[test]
fn tokio_server_passes_every_case_over_tls() {
    server_passes_every_case_over_tls(Impl::Tokio);
}

#[test]
fn async_std_server_passes_every_case_over_tls() {
    server_passes_every_case_over_tls(Impl::AsyncStd);
}

#[test]
fn smol_server_passes_every_case_over_tls() {
    server_passes_every_case_over_tls(Impl::Smol);
}

#[test]
fn async_server_passes_every_server_case() {
    server_passes_every_server_case(Impl::Tokio);
}

#[test]
fn async_std_server_passes_every_server_case() {
    server_passes_every_server_case(Impl::AsyncStd);
}

#[test]
fn smol_server_passes_every_server_case() {
    server_passes_every_server_case(Impl::Smol);
}

/// The adapter, run by the runner with FERRY_CONFORM_CLIENT=async (see reference.rs).
#[test]
fn asyncclient_entry() {
    if std::env::var_os("FERRY_CONFORM_CLIENT").is_none_or(|v| v != "async") {
        return;
    }
    use ferry_async::client::{ClientOptions, GetOptions, PutOptions};
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let (addr, op, name, name2, dir) = (
        env("FERRY_ADDR"),
        env("FERRY_OP"),
        env("FERRY_NAME"),
        env("FERRY_NAME2"),
        PathBuf::from(env("FERRY_DIR")),
    );
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        let mut c = ferry_async::tokio::connect_blocking(addr.as_str(), &ClientOptions::default())?;
        let names = || -> Result<[ferry_wire::FileName; 2], ferry_wire::NameError> {
            Ok([
                ferry_wire::FileName::new(name.as_str())?,
                ferry_wire::FileName::new(name2.as_str())?,
            ])
        };
        match op.as_str() {
            "get" | "resume" => {
                let opts = GetOptions {
                    resume: op == "resume",
                    ..GetOptions::default()
                };
                let n = ferry_wire::FileName::new(name.as_str())?;
                c.get_to_path(&n, &dir.join(&name), &opts, &mut |_| {})?;
            }
            "put" => {
                c.put_from_path(&dir.join(&name), None, &PutOptions::default(), &mut |_| {})?;
            }
            "mget" => {
                for r in c.get_many(&names()?, &dir, &GetOptions::default(), &mut |_| {}) {
                    r?;
                }
            }
            "mput" => {
                let files = names()?.map(|n| (dir.join(n.as_str()), n));
                for r in c.put_many(&files, &PutOptions::default(), &mut |_| {}) {
                    r?;
                }
            }
            "rget" => {
                let options = ferry_wire::tree::ListOptions {
                    digests: false,
                    recursive: true,
                };
                let files = common::rget_files(&mut |f| c.list(f, options), &dir, &name)?;
                for r in c.get_paths(&files, &GetOptions::default(), &mut |_| {}) {
                    r?;
                }
            }
            "dir" => {
                for e in c.dir()? {
                    println!(
                        "{} {} {}",
                        e.size,
                        e.mtime,
                        e.name.as_str().escape_default()
                    );
                }
            }
            other => return Err(format!("unknown op {other}").into()),
        }
        c.close()?;
        Ok(())
    })();
    if let Err(e) = &result {
        eprintln!("asyncclient: {e}");
    }
    std::process::exit(i32::from(result.is_err()));
}

#[test]
fn async_client_passes_every_client_case() {
    let exe = std::env::current_exe().expect("test binary");
    let target = ClientTarget {
        argv: vec![
            "env".into(),
            "FERRY_CONFORM_CLIENT=async".into(),
            exe.to_string_lossy().into_owned(),
            "asyncclient_entry".into(),
            "--exact".into(),
            "--nocapture".into(),
            "--test-threads=1".into(),
            "-q".into(),
        ],
    };
    let r = run_client(&target, &RunOptions::default(), &mut |_| {});
    common::check(&r, "ferry-async client (tokio)", KNOWN);
    assert_eq!(r.summary.unimplemented, 0);
}
