//! What the `ferry` command's test files share.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The `ferry` binary Cargo built for these tests.
pub(crate) const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// The longest a command may run before the test fails (a guard against hangs, not a timing).
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `ferry ARGS` in `cwd` with `stdin` piped in; fails the test if it takes too long.
pub(crate) fn ferry_in(cwd: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(FERRY)
        .args(args)
        .current_dir(cwd)
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
    let deadline = Instant::now() + LIMIT;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ferry {args:?} did not finish");
        }
        thread::sleep(Duration::from_millis(5));
    }
    let _ = feeder.join();
    child.wait_with_output().expect("output")
}
