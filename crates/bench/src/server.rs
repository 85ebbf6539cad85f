//! The server under test, as a separate process: `ferry serve --impl IMPL` on 127.0.0.1:0,
//! exactly what a user runs. A separate process keeps its CPU time and memory apart from the
//! load generator's, and gives every implementation the same start. With TLS it runs
//! `ferry serve --tls-self-signed --tls-dir DIR` and reads the key's fingerprint from the line
//! it prints before `listening on`, for the clients to pin.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_tls::Fingerprint;

use crate::Impl;
use crate::procfs::{self, Pid, ProcStats};

/// How long a stopped server may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `ferry serve`. Dropping it kills the process.
#[derive(Debug)]
pub struct ServerProcess {
    child: Option<Child>,
    addr: SocketAddr,
    fingerprint: Option<Fingerprint>,
    log: PathBuf,
    // Kept open so that the server never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl ServerProcess {
    /// Starts `exe serve --impl imp` on `root`, accepting up to `max_connections` sessions,
    /// and waits for its `listening on ADDR` line. The server's log goes to `log`. With
    /// `tls_dir`, it serves ferry/1 over TLS with a self-signed key kept in that folder (made
    /// by the first server, reused by the next) and the fingerprint it prints is kept. With
    /// `users`, it serves the users of that file (`--users`; needs `tls_dir`).
    pub fn start(
        exe: &Path,
        imp: Impl,
        root: &Path,
        max_connections: usize,
        log: &Path,
        tls_dir: Option<&Path>,
        users: Option<&Path>,
    ) -> io::Result<Self> {
        let log_file = File::create(log)?;
        let mut command = Command::new(exe);
        command.arg("serve");
        if let Some(dir) = tls_dir {
            command.arg("--tls-self-signed").arg("--tls-dir").arg(dir);
        }
        if let Some(users) = users {
            command.arg("--users").arg(users);
        }
        let mut child = command
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
        let mut fingerprint = None;
        let mut read = stdout.read_line(&mut line);
        if users.is_some() && read.is_ok() && line.starts_with("users: ") {
            // `users: N from FILE (…)` comes before the TLS line.
            line.clear();
            read = stdout.read_line(&mut line);
        }
        if tls_dir.is_some() && read.is_ok() {
            // TLS-11: `TLS key SHA256:… (clients: …)` comes first.
            fingerprint = tls_key_line(&line);
            if fingerprint.is_some() {
                line.clear();
                read = stdout.read_line(&mut line);
            }
        }
        let addr = match read {
            Ok(_) => listening_line(&line),
            Err(_) => None,
        };
        let addr = match addr {
            Some(a) if tls_dir.is_none() || fingerprint.is_some() => Some(a),
            _ => None,
        };
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            let log_text = std::fs::read_to_string(log).unwrap_or_default();
            let what = if tls_dir.is_some() {
                "its TLS key's fingerprint and its address"
            } else {
                "its address"
            };
            return Err(io::Error::other(format!(
                "`{} serve --impl {}{}` did not announce {what} (printed {line:?}); its log: {}",
                exe.display(),
                imp.name(),
                if tls_dir.is_some() {
                    " --tls-self-signed"
                } else {
                    ""
                },
                log_text.trim()
            )));
        };
        Ok(Self {
            child: Some(child),
            addr,
            fingerprint,
            log: log.to_owned(),
            _stdout: stdout,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The fingerprint of its TLS key, when it serves over TLS.
    pub fn fingerprint(&self) -> Option<&Fingerprint> {
        self.fingerprint.as_ref()
    }

    /// Its CPU time and memory now.
    pub fn stats(&self) -> io::Result<ProcStats> {
        let pid = self
            .child
            .as_ref()
            .map(Child::id)
            .ok_or_else(|| io::Error::other("the server is stopped"))?;
        procfs::read(Pid::Other(pid)).map_err(|e| {
            // The usual reason: the server has exited. Its log says why.
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let last = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
            io::Error::new(
                e.kind(),
                format!(
                    "cannot read the server's /proc entry ({e}): has it exited? The last line of its log ({}): {last}",
                    self.log.display()
                ),
            )
        })
    }

    /// Stops it gracefully (SIGTERM, as a user would) and waits for it to exit; kills it if it
    /// takes longer than `STOP_TIMEOUT`. Fails if it did not exit cleanly.
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

/// The address of a `listening on ADDR` line.
fn listening_line(line: &str) -> Option<SocketAddr> {
    line.trim().strip_prefix("listening on ")?.parse().ok()
}

/// The fingerprint of a `TLS key SHA256:… (clients: …)` line.
fn tls_key_line(line: &str) -> Option<Fingerprint> {
    let rest = line.trim().strip_prefix("TLS key ")?;
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_and_the_address_are_read_from_what_serve_prints() {
        let fp = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
        let line = format!(
            "TLS key {fp} (clients: ferrys://127.0.0.1:4000, or pin it with --fingerprint {fp})\n"
        );
        let parsed = tls_key_line(&line).expect("a fingerprint");
        assert_eq!(parsed.to_string(), fp);
        assert_eq!(tls_key_line("listening on 127.0.0.1:4000\n"), None);
        assert_eq!(tls_key_line("TLS key SHA256:short (clients: …)"), None);
        assert_eq!(
            listening_line("listening on 127.0.0.1:4000\n"),
            Some(SocketAddr::from(([127, 0, 0, 1], 4000)))
        );
        assert_eq!(listening_line(&line), None);
    }
}
