//! Hooks: what a tester supplies so that the runner can check behaviour a black box cannot be
//! driven to from the wire — a graceful shutdown (CLOSE-8, CLOSE-9) and a file that changes
//! while it is being sent (GET-9). Cases that need a hook the tester did not give are
//! `unimplemented`, with the option to give in the reason.
//!
//! On the command line a hook is a shell command (`--shutdown-cmd`, `--touch-cmd`) run with
//! `sh -c`; a library caller may also pass a closure ([`Hook::call`]), which is how the
//! reference tests reach an in-process server.

use std::fmt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a touch hook must do to a file of the served folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    /// Append at least one octet (the file grows while it is being sent).
    Append,
    /// Truncate the file to 1 octet (it shrinks while it is being sent).
    Truncate,
}

impl Touch {
    /// `append` or `truncate`: the value of `{how}` and `FERRY_HOW`.
    pub fn as_str(self) -> &'static str {
        match self {
            Touch::Append => "append",
            Touch::Truncate => "truncate",
        }
    }
}

/// The arguments of one hook call: (placeholder, value) pairs, e.g. `("name", "cf…-big")`.
/// A command sees each as `{placeholder}` (shell-quoted) and as `FERRY_PLACEHOLDER` in its
/// environment.
pub type HookArgs<'a> = &'a [(&'a str, &'a str)];

type HookFn = dyn Fn(HookArgs<'_>) -> Result<(), String> + Send + Sync;

/// A hook: a shell command or a closure.
#[derive(Clone)]
pub struct Hook {
    f: Arc<HookFn>,
    what: String,
}

impl Hook {
    /// A shell command (`sh -c CMD`): `{name}`-style placeholders are replaced by their
    /// shell-quoted values, and the values are also in the environment (`FERRY_NAME`). The
    /// command must exit 0 within 30 s.
    pub fn command(cmd: impl Into<String>) -> Self {
        let cmd: String = cmd.into();
        let what = cmd.clone();
        Self {
            f: Arc::new(move |args: HookArgs<'_>| run_command(&cmd, args)),
            what,
        }
    }

    /// A closure (for embedding the runner next to an in-process server).
    pub fn call(
        what: impl Into<String>,
        f: impl Fn(HookArgs<'_>) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            f: Arc::new(f),
            what: what.into(),
        }
    }

    /// Runs the hook.
    pub(crate) fn run(&self, args: HookArgs<'_>) -> Result<(), String> {
        (self.f)(args).map_err(|e| format!("hook `{}` failed: {e}", self.what))
    }
}

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Hook").field(&self.what).finish()
    }
}

impl PartialEq for Hook {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.f, &other.f)
    }
}

impl Eq for Hook {}

/// The hooks given for a server run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    /// Starts a graceful shutdown of the main server (for `kill -TERM PID`, say). The cases
    /// that use it run after every other case, since the server is gone afterwards.
    pub shutdown: Option<Hook>,
    /// The main server's deadline for requests in flight after the shutdown hook, when known:
    /// the shutdown case then also checks that a download still being read 2 s after it is
    /// cut with `abort 422` (CLOSE-9). Only deadlines up to 3 s are checked this way.
    pub shutdown_grace: Option<std::time::Duration>,
    /// Changes a file of the main server's served folder: called with `name` (the file) and
    /// `how` ([`Touch`]: `append` one octet or more, or `truncate` to 1 octet).
    pub touch: Option<Hook>,
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn run_command(cmd: &str, args: HookArgs<'_>) -> Result<(), String> {
    let mut line = cmd.to_owned();
    for (k, v) in args {
        line = line.replace(&format!("{{{k}}}"), &quote(v));
    }
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(&line)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in args {
        c.env(format!("FERRY_{}", k.to_ascii_uppercase()), v);
    }
    let mut child = c.spawn().map_err(|e| format!("cannot start sh: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return Err(format!("{status}: {}", err.trim()));
            }
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("did not finish within 30 s".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_get_quoted_placeholders_and_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let h = Hook::command(format!(
            "printf '%s|%s' {{name}} \"$FERRY_HOW\" > {}",
            out.display()
        ));
        h.run(&[("name", "a b'c"), ("how", "append")])
            .expect("runs");
        assert_eq!(std::fs::read_to_string(&out).expect("out"), "a b'c|append");
    }

    #[test]
    fn a_failing_command_is_an_error_with_its_stderr() {
        let h = Hook::command("echo nope >&2; exit 3");
        let e = h.run(&[]).expect_err("fails");
        assert!(e.contains("nope") && e.contains('3'), "{e}");
    }
}
