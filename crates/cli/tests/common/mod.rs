//! What the `ferry` command's test files share.

// Each test file is its own crate and uses only some of this.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The `ferry` binary Cargo built for these tests.
pub(crate) const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// The longest a command may run before the test fails (a guard against hangs, not a timing).
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `ferry ARGS` in `cwd` with `stdin` piped in; fails the test if it takes too long.
pub(crate) fn ferry_in(cwd: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(FERRY);
    cmd.args(args).current_dir(cwd);
    with_stdin(cmd, args, stdin)
}

/// [`ferry_in`] with HOME and XDG_CONFIG_HOME set to `home`, as [`ferry_home`] does.
pub(crate) fn ferry_home_in(cwd: &Path, home: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(FERRY);
    cmd.args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"));
    with_stdin(cmd, args, stdin)
}

/// Runs `cmd` with `stdin` piped in and its output read; fails the test if it takes too long.
fn with_stdin(mut cmd: Command, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = cmd
        .env_remove("FERRY_LOG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferry");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    let feeder = thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let output = finish(child, args);
    let _ = feeder.join();
    output
}

/// Waits for `child`, reading its stdout and stderr meanwhile (a child whose output fills
/// a pipe must not wait for a reader that waits for it); kills it and fails the test if it
/// takes longer than [`LIMIT`].
fn finish(child: Child, args: &[&str]) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(output) => output.expect("output"),
        Err(_) => {
            // The child is owned by the waiting thread: kill it by its id.
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("ferry {args:?} did not finish");
        }
    }
}

/// Runs `ferry ARGS` in `cwd` with HOME and XDG_CONFIG_HOME set to `home` (a client never
/// writes into the real home), stdin empty.
pub(crate) fn ferry_home(cwd: &Path, home: &Path, args: &[&str]) -> Output {
    let child = Command::new(FERRY)
        .args(args)
        .current_dir(cwd)
        .env_remove("FERRY_LOG")
        .env_remove("RUST_LOG")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferry");
    finish(child, args)
}

/// A `ferry serve` child process, killed when dropped.
pub(crate) struct Server {
    /// The process.
    pub(crate) child: Child,
    /// What it printed on stdout up to `listening on ADDR`, that line included.
    pub(crate) lines: Vec<String>,
    /// The address it listens on.
    pub(crate) addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ferry serve ARGS`, its stdout read up to `listening on ADDR`.
pub(crate) fn serve(args: &[&str]) -> Server {
    serve_with(args, &[])
}

/// `ferry serve --listen 127.0.0.1:0 --users USERS --tls-self-signed --tls-dir TLS`.
pub(crate) fn serve_users(users: &Path, tls: &Path) -> Server {
    serve_users_with(users, tls, &[], Stdio::null())
}

/// [`serve_users`] with `extra` arguments, its stderr to `stderr`.
pub(crate) fn serve_users_with(users: &Path, tls: &Path, extra: &[&str], stderr: Stdio) -> Server {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--users",
        users.to_str().expect("utf-8"),
        "--tls-self-signed",
        "--tls-dir",
        tls.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    serve_to(&args, &[], stderr)
}

/// [`serve`] with `env` variables.
pub(crate) fn serve_with(args: &[&str], env: &[(&str, &str)]) -> Server {
    serve_to(args, env, Stdio::null())
}

/// [`serve_with`], its stderr to `stderr` (a file, to read its warnings).
pub(crate) fn serve_to(args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Server {
    let mut child = Command::new(FERRY)
        .arg("serve")
        .args(args)
        .env("FERRY_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn ferry serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let done = line.starts_with("listening on ");
            if tx.send(line).is_err() || done {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        let line = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ferry serve printed no address; it printed {lines:?}");
            }
        };
        if let Some(addr) = line.strip_prefix("listening on ") {
            let addr = addr.trim().to_owned();
            lines.push(line);
            return Server { child, lines, addr };
        }
        lines.push(line);
    }
}

impl Server {
    /// Its process id (to signal it).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for it to exit (after a signal); fails the test if it takes too long.
    pub(crate) fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for ferry serve") {
                return status;
            }
            assert!(Instant::now() < deadline, "ferry serve did not exit");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The fingerprint of its TLS key, from its `TLS key SHA256:…` line.
    pub(crate) fn fingerprint(&self) -> &str {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix("TLS key "))
            .and_then(|l| l.split(' ').next())
            .expect("the TLS key line")
    }
}
