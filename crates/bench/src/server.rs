//! The server under test, as a separate process: `ferry serve --impl IMPL` on 127.0.0.1:0,
//! exactly what a user runs. A separate process keeps its CPU time and memory apart from the
//! load generator's, and gives every implementation the same start.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Impl;
use crate::procfs::{self, Pid, ProcStats};

/// How long a stopped server may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `ferry serve`. Dropping it kills the process.
#[derive(Debug)]
pub struct ServerProcess {
    child: Option<Child>,
    addr: SocketAddr,
    log: PathBuf,
    // Kept open so that the server never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl ServerProcess {
    /// Starts `exe serve --impl imp` on `root`, accepting up to `max_connections` sessions,
    /// and waits for its `listening on ADDR` line. The server's log goes to `log`.
    pub fn start(
        exe: &Path,
        imp: Impl,
        root: &Path,
        max_connections: usize,
        log: &Path,
    ) -> io::Result<Self> {
        let log_file = File::create(log)?;
        let mut child = Command::new(exe)
            .arg("serve")
            .args(["--impl", imp.name()])
            .arg("--root")
            .arg(root)
            .args(["--listen", "127.0.0.1:0"])
            .args(["--max-connections", &max_connections.to_string()])
            // Every benchmark client connects from 127.0.0.1.
            .args([
                "--max-connections-per-address",
                &max_connections.to_string(),
            ])
            // Benchmarks hold idle sessions and large uploads: no timeout may fire.
            .args(["--idle-timeout", "1h", "--stall-timeout", "10m"])
            .env("FERRY_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot start {}: {e}", exe.display()))
            })?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(io::Error::other("the server's stdout was not captured"));
        };
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let addr = match stdout.read_line(&mut line) {
            Ok(_) => line
                .trim()
                .strip_prefix("listening on ")
                .and_then(|a| a.parse::<SocketAddr>().ok()),
            Err(_) => None,
        };
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            let log_text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(io::Error::other(format!(
                "`{} serve --impl {}` did not announce its address (printed {line:?}); its log: {}",
                exe.display(),
                imp.name(),
                log_text.trim()
            )));
        };
        Ok(Self {
            child: Some(child),
            addr,
            log: log.to_owned(),
            _stdout: stdout,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its CPU time and memory now.
    pub fn stats(&self) -> io::Result<ProcStats> {
        let pid = self
            .child
            .as_ref()
            .map(Child::id)
            .ok_or_else(|| io::Error::other("the server is stopped"))?;
        procfs::read(Pid::Other(pid))
    }

    /// Stops it gracefully (SIGTERM, as a user would) and waits for it to exit; kills it if it
    /// takes longer than [`STOP_TIMEOUT`]. Fails if it did not exit cleanly.
    pub fn stop(mut self) -> io::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = rustix::process::Pid::from_raw(child.id() as i32);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                if status.success() {
                    return Ok(());
                }
                return Err(io::Error::other(format!(
                    "the server exited with {status}; log in {}",
                    self.log.display()
                )));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::other(format!(
                    "the server did not stop within {STOP_TIMEOUT:?} of SIGTERM"
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
