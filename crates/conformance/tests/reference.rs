//! The runner against the reference implementations: the threaded server (`ferry-sync`, via
//! `ferry_test_support::TestServer`) must pass every server case, and the reference client
//! library (`ferry_sync::client`, through a small adapter that is this test binary run again,
//! see [`refclient_entry`]) every client case. Cases that need a configuration get servers
//! configured for them, so nothing is `unimplemented`.
//!
//! Known deviations of the reference implementations are listed in `KNOWN` with the reason;
//! like Autobahn's expected results, the test fails on any difference, so a fix must also
//! remove its entry.
//!
//! The `ferry` binary runs the client cases through the README's adapter command in
//! crates/cli/tests/conform_client.rs (where Cargo builds it for the test).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ferry_conformance::{ClientTarget, RunOptions, ServerTarget, run_client, run_server};
use ferry_test_support::TestServer;

mod common;

/// Cases a reference implementation is known to fail: (case ID, reason).
const KNOWN: &[(&str, &str)] = &[];

fn opts() -> RunOptions {
    RunOptions {
        timeout: Duration::from_secs(10),
        ..RunOptions::default()
    }
}

#[test]
fn reference_server_passes_every_server_case() {
    let main = TestServer::with_config(|c| c.max_connections = 16);
    let ro = TestServer::with_config(|c| c.read_only = true);
    ro.write_file("present.txt", b"hello");
    let size10 = TestServer::with_config(|c| c.max_size = 10);
    let eager4 = TestServer::with_config(|c| c.max_eager = 4);
    let eager0 = TestServer::with_config(|c| c.max_eager = 0);
    let timeouts = TestServer::with_config(|c| {
        c.idle_timeout = Duration::from_secs(2);
        c.stall_timeout = Duration::from_secs(1);
    });
    // For server/TREE-2/1.
    let no_tree = TestServer::with_config(|c| c.tree = false);
    let target = ServerTarget {
        addr: main.addr.to_string(),
        read_only: Some(ro.addr.to_string()),
        extra: vec![
            size10.addr.to_string(),
            eager4.addr.to_string(),
            eager0.addr.to_string(),
            timeouts.addr.to_string(),
            no_tree.addr.to_string(),
        ],
        max_wait: Duration::from_secs(3),
        session_limit: Some(16),
        hooks: common::hooks_for(&main, Duration::from_secs(2)),
        tls: None,
        auth: None,
    };
    // The TLS and auth cases need a TLS server: tests/tls.rs and tests/auth.rs run them.
    let mut opts = opts();
    opts.filter.exclude.push("server/TLS-*".into());
    opts.filter.exclude.push("server/AUTH-*".into());
    // The tree case with users needs a TLS server: tests/auth.rs runs it.
    opts.filter.exclude.push("server/TREE-13/2".into());
    let r = run_server(&target, &opts, &mut |_| {});
    common::check(&r, "ferry-sync server", KNOWN);
    assert_eq!(r.summary.unimplemented, 0);
    assert!(r.summary.total >= 70, "{}", r.summary.total);
    // The runner's files all carry its prefixes; nothing else appeared in the folder.
    let names = main.visible_names();
    assert!(names.iter().all(|n| n.starts_with("cf")), "{names:?}");
}

/// The adapter: when run by the conformance runner (FERRY_CONFORM_CLIENT=ref in its
/// environment), this test performs `FERRY_OP` with the reference client library and exits
/// 0 on success, 1 on failure. Run normally, it does nothing.
#[test]
fn refclient_entry() {
    if std::env::var_os("FERRY_CONFORM_CLIENT").is_some_and(|v| v == "ref") {
        let code = refclient();
        std::process::exit(i32::from(code != ExitCode::SUCCESS));
    }
}

fn refclient() -> ExitCode {
    use ferry_sync::client::{Client, GetOptions, PutOptions, visible};
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let (addr, op, name, name2, dir) = (
        env("FERRY_ADDR"),
        env("FERRY_OP"),
        env("FERRY_NAME"),
        env("FERRY_NAME2"),
        PathBuf::from(env("FERRY_DIR")),
    );
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        let mut c = Client::connect(addr.as_str())?;
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
                    println!("{} {} {}", e.size, e.mtime, visible(e.name.as_str()));
                }
            }
            other => return Err(format!("unknown op {other}").into()),
        }
        c.close()?;
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("refclient: {e}");
            ExitCode::FAILURE
        }
    }
}

fn self_command(role: &str, entry: &str) -> Vec<String> {
    let exe = std::env::current_exe().expect("the test binary");
    vec![
        "env".into(),
        format!("FERRY_CONFORM_CLIENT={role}"),
        exe.to_string_lossy().into_owned(),
        entry.into(),
        "--exact".into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
        "-q".into(),
    ]
}

#[test]
fn reference_client_library_passes_every_client_case() {
    let target = ClientTarget {
        argv: self_command("ref", "refclient_entry"),
    };
    let r = run_client(&target, &opts(), &mut |_| {});
    common::check(&r, "ferry-sync client", KNOWN);
    assert_eq!(r.summary.unimplemented, 0);
    assert!(r.summary.total >= 40, "{}", r.summary.total);
}
