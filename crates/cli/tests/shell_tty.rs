//! `ferry shell` on a pseudo-terminal, as a person uses it: Ctrl-C at the prompt, Tab
//! completion of a server name, history written to `$XDG_STATE_HOME/ferry/history`, Ctrl-C
//! (SIGINT, as the terminal sends it) during a download that hangs, the next command on a
//! new session, Ctrl-D; and a history file that cannot be written. The download hangs
//! because a relay stalls the first connection, so nothing depends on timing.
#![cfg(unix)]

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use ferry_test_support::TestServer;
use ferry_test_support::relay::{Relay, Stall};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");
const WAIT: Duration = Duration::from_secs(20);

/// The child on the terminal's far side, and everything it wrote so far.
struct Terminal {
    master: File,
    child: Child,
    screen: Arc<Mutex<Vec<u8>>>,
    /// How much of `screen` the last [`Terminal::expect`] consumed.
    seen: usize,
}

impl Terminal {
    fn spawn(cmd: &mut Command) -> Self {
        let master =
            openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_str().expect("utf-8 pty name"))
            .expect("open the pty's slave side");
        let size = rustix::termios::Winsize {
            ws_row: 24,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&slave, size).expect("window size");
        let child = cmd
            .stdin(Stdio::from(slave.try_clone().expect("clone")))
            .stdout(Stdio::from(slave.try_clone().expect("clone")))
            .stderr(Stdio::from(slave))
            .spawn()
            .expect("spawn ferry");
        let master = File::from(master);
        let screen = Arc::new(Mutex::new(Vec::new()));
        let (mut reader, sink) = (master.try_clone().expect("clone"), Arc::clone(&screen));
        // Ends when the child's side is closed (EIO).
        thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend_from_slice(&buf[..n]);
            }
        });
        Terminal {
            master,
            child,
            screen,
            seen: 0,
        }
    }

    fn text(&self) -> String {
        let screen = self.screen.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&screen).into_owned()
    }

    /// Waits until `what` shows up after what was already seen.
    #[track_caller]
    fn expect(&mut self, what: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.text();
            if let Some(at) = text.get(self.seen..).and_then(|t| t.find(what)) {
                self.seen += at + what.len();
                return;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("{what:?} did not show up; the terminal shows:\n{text}");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the child to exit.
    #[track_caller]
    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "ferry did not exit; the terminal shows:\n{}",
                self.text()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn type_keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).expect("type");
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn interactive_shell_on_a_terminal() {
    let server = TestServer::start();
    server.write_file("notes.txt", b"hi");
    server.write_file("big.bin", &vec![1; 4 << 20]);
    // The first session hangs once 1 MiB of the server's octets went through.
    let relay = Relay::start(server.addr, Stall::Down(1 << 20));
    let work = tempfile::tempdir().expect("tempdir");
    let state = tempfile::tempdir().expect("tempdir");
    let mut term = Terminal::spawn(
        Command::new(FERRY)
            .args(["shell", &relay.addr.to_string()])
            .current_dir(work.path())
            .env("XDG_STATE_HOME", state.path())
            .env("HOME", state.path())
            .env("TERM", "xterm")
            .env_remove("FERRY_LOG")
            .env_remove("RUST_LOG"),
    );
    term.expect("type help for the commands");
    term.expect("ferry> ");

    // Ctrl-C at the prompt: a new prompt, the shell goes on.
    term.type_keys("\x03");
    term.expect("ferry> ");

    // Tab completes the server's name (from the listing read at start).
    term.type_keys("get no\t\r");
    term.expect("received notes.txt (2 bytes)");
    assert_eq!(fs::read(work.path().join("notes.txt")).expect("got"), b"hi");

    // Ctrl-C during a download that hangs: cancelled, a new session, the prompt.
    term.type_keys("get big.bin\r");
    assert!(relay.wait_stalled(WAIT), "the download started");
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&term.child),
        rustix::process::Signal::INT,
    )
    .expect("SIGINT");
    term.expect("get big.bin: cancelled; reconnected to");
    term.expect("ferry> ");
    assert!(!work.path().join("big.bin").exists());
    assert!(work.path().join("big.bin.ferry-part").exists());

    // The next command works, on the new session.
    term.type_keys("dir\r");
    term.expect("  notes.txt");
    term.expect("ferry> ");

    // Ctrl-D leaves, exit 0.
    term.type_keys("\x04");
    term.expect("bye");
    assert_eq!(term.wait().code(), Some(0), "{}", term.text());

    let history = fs::read_to_string(state.path().join("ferry/history")).expect("history");
    let lines: Vec<&str> = history.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines, ["get notes.txt", "get big.bin", "dir"], "{history}");
}

#[test]
fn a_history_that_cannot_be_written_costs_nothing_else() {
    let server = TestServer::start();
    server.write_file("notes.txt", b"hi");
    let work = tempfile::tempdir().expect("tempdir");
    // The state folder would have to be inside a file: creating it fails (even for root).
    let blocker = work.path().join("not-a-folder");
    fs::write(&blocker, b"").expect("file");
    let mut term = Terminal::spawn(
        Command::new(FERRY)
            .args(["shell", &server.addr.to_string()])
            .current_dir(work.path())
            .env("XDG_STATE_HOME", &blocker)
            .env("HOME", &blocker)
            .env("TERM", "xterm")
            .env_remove("FERRY_LOG")
            .env_remove("RUST_LOG"),
    );
    term.expect("ferry> ");
    term.type_keys("get notes.txt\r");
    term.expect("received notes.txt (2 bytes)");
    term.expect("ferry> ");
    term.type_keys("close\r");
    term.expect("bye");
    assert_eq!(term.wait().code(), Some(0), "{}", term.text());
    assert!(!term.text().contains("history"), "{}", term.text());
    assert_eq!(fs::read(&blocker).expect("still a file"), b"");
}
