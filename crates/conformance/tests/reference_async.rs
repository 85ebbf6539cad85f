//! The runner against the async reference implementation (`ferry-async`, tokio driver): its
//! server must pass every server case and its blocking client every client case, as for
//! `ferry-sync` in `reference.rs` (same rules: known deviations listed in `KNOWN`, checked
//! both ways).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferry_async::server::{Config, Shutdown};
use ferry_conformance::{
    ClientTarget, Report, RunOptions, ServerTarget, Verdict, run_client, run_server,
};

/// Cases the async reference is known to fail: (case ID, reason).
const KNOWN: &[(&str, &str)] = &[];

struct AsyncServer {
    addr: SocketAddr,
    shutdown: Shutdown,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl AsyncServer {
    fn start(f: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            root: dir.path().to_owned(),
            shutdown_grace: Duration::from_secs(1),
            ..Config::default()
        };
        f(&mut config);
        let root = config.root.clone();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = Shutdown::new();
        let thread = std::thread::spawn({
            let shutdown = shutdown.clone();
            move || ferry_async::tokio::serve(listener, config, shutdown)
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !root.join(".ferry-staging").is_dir() {
            assert!(Instant::now() < deadline, "the async server did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        AsyncServer {
            addr,
            shutdown,
            thread: Some(thread),
            _dir: dir,
        }
    }
}

impl Drop for AsyncServer {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn check(r: &Report, what: &str) {
    let bad: Vec<(String, String)> = r
        .cases
        .iter()
        .filter(|c| !matches!(c.verdict, Verdict::Pass | Verdict::Informational))
        .map(|c| {
            (
                c.id.clone(),
                format!(
                    "{} {}",
                    c.verdict,
                    ferry_conformance::report::detail_lines(c).join(" / ")
                ),
            )
        })
        .collect();
    let unexpected: Vec<_> = bad
        .iter()
        .filter(|(id, _)| !KNOWN.iter().any(|(k, _)| k == id))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{what}: cases that did not pass:\n{unexpected:#?}"
    );
    let prefix = format!("{}/", r.kind.as_str());
    let fixed: Vec<_> = KNOWN
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix) && !bad.iter().any(|(id, _)| id == k))
        .collect();
    assert!(
        fixed.is_empty(),
        "{what}: known failures now pass, remove them from KNOWN: {fixed:?}"
    );
    println!("{what}: {}", r.summary_line());
}

#[test]
fn async_server_passes_every_server_case() {
    let main = AsyncServer::start(|c| c.max_connections = 16);
    let ro = AsyncServer::start(|c| c.read_only = true);
    let size10 = AsyncServer::start(|c| c.max_size = 10);
    let eager4 = AsyncServer::start(|c| c.max_eager = 4);
    let timeouts = AsyncServer::start(|c| {
        c.idle_timeout = Duration::from_secs(1);
        c.stall_timeout = Duration::from_secs(1);
    });
    let target = ServerTarget {
        addr: main.addr.to_string(),
        read_only: Some(ro.addr.to_string()),
        extra: vec![
            size10.addr.to_string(),
            eager4.addr.to_string(),
            timeouts.addr.to_string(),
        ],
        max_wait: Duration::from_secs(3),
        session_limit: Some(16),
    };
    let r = run_server(&target, &RunOptions::default(), &mut |_| {});
    check(&r, "ferry-async server (tokio)");
    assert_eq!(r.summary.unimplemented, 0);
}

/// The adapter, run by the runner with FERRY_CONFORM_CLIENT=async (see reference.rs).
#[test]
fn asyncclient_entry() {
    if std::env::var_os("FERRY_CONFORM_CLIENT").is_none_or(|v| v != "async") {
        return;
    }
    use ferry_async::client::{ClientOptions, GetOptions, PutOptions};
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let (addr, op, name, dir) = (
        env("FERRY_ADDR"),
        env("FERRY_OP"),
        env("FERRY_NAME"),
        PathBuf::from(env("FERRY_DIR")),
    );
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        let mut c = ferry_async::tokio::connect_blocking(addr.as_str(), &ClientOptions::default())?;
        match op.as_str() {
            "get" => {
                let n = ferry_wire::FileName::new(name.as_str())?;
                c.get_to_path(&n, &dir.join(&name), &GetOptions::default(), &mut |_| {})?;
            }
            "put" => {
                c.put_from_path(&dir.join(&name), None, &PutOptions::default(), &mut |_| {})?;
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
    check(&r, "ferry-async client (tokio)");
    assert_eq!(r.summary.unimplemented, 0);
}
