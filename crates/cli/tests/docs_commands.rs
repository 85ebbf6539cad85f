//! Docs that cannot drift: every command shown in a README of the workspace (`README.md`,
//! `crates/*/README.md`, `packaging/README.md`, … — every `README.md` outside `target/`) is
//! found here and handled, and a command added to a README fails this test until it is.
//!
//! What counts as a command: each line of a ```` ```sh ````, ```` ```bash ````,
//! ```` ```shell ```` block (backslash continuations and multi-line quotes joined, `#`
//! comments dropped), and each `$ ` line of any other block (a transcript; the lines after it
//! up to the next `$ ` line are what it printed). Usage synopses belong in ```` ```text ````
//! blocks.
//!
//! Each command is listed in [`HANDLING`], exactly as written (spaces collapsed), with one of:
//! - [`How::Run`]: run by `sh` with the built `ferry` first on `PATH`, against a fresh server
//!   on `127.0.0.1:0` whose address replaces `127.0.0.1:7450` and a bare `127.0.0.1`, in a
//!   temporary folder holding the files the README's examples name; it must exit 0. The Run
//!   commands of one block run in order, on one server, in one folder.
//! - [`How::Serve`]: `ferry serve` started in an empty folder with `--listen 127.0.0.1:0`
//!   added (tests never bind fixed ports): it prints `listening on`, creates `./ferry-files`
//!   and exits 0 on SIGTERM.
//! - [`How::Session`]: a `$ ` transcript of `ferry shell`: the `ferry> ` lines are its input,
//!   and what the README shows it printing must appear in that order (times masked).
//! - [`How::Parse`]: too long, too heavy or in need of something a test cannot have (the
//!   bench, a third-party client, fixed ports): run by `sh` as written, except that every
//!   `ferry` and `ferry-conform` gets `--help` added (before a `--`), so clap checks every
//!   option and value written before it; every such call must exit 0 and at least one must
//!   happen.
//! - [`How::Install`]: `cargo install --path crates/cli`: the package there must have the
//!   `ferry` binary (installing is not done in a test).
//! - [`How::Skip`]: not a ferry command, or one a test must not run; the reason is given.
//!
//! `cargo run --release -p ferry -- ARGS` is run as `ferry ARGS` (the binary this test
//! built), and `ferry-conform ARGS` as `ferry conform ARGS` (the same runner).

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a README command is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    Run,
    Serve,
    Session,
    Parse,
    Install,
    Skip(&'static str),
}

/// Every command of every README, as written with runs of spaces collapsed to one.
const HANDLING: &[(&str, How)] = &[
    // README.md
    ("cargo run --release -p ferry -- serve", How::Serve),
    (
        "cargo test --workspace",
        How::Skip("the whole test suite, this test included; CI runs it"),
    ),
    ("cargo install --path crates/cli --locked", How::Install),
    (
        "echo \"hello ferry\" > 天线15.doc",
        How::Skip("part of the ferry shell transcript below it (How::Session)"),
    ),
    (
        "cargo run --release -p ferry -- shell 127.0.0.1",
        How::Session,
    ),
    ("ferry put 127.0.0.1 report.pdf 射频仿真.pptx", How::Run),
    ("ferry dir 127.0.0.1 --json", How::Run),
    ("ferry get 127.0.0.1 report.pdf -o downloads/", How::Run),
    ("ferry mkdir 127.0.0.1 docs/2024 -p", How::Run),
    ("ferry put -r 127.0.0.1 photos", How::Run),
    ("ferry ls 127.0.0.1 photos -r --digests", How::Run),
    ("ferry mv 127.0.0.1 photos albums", How::Run),
    ("ferry get -r 127.0.0.1 albums -o copy/", How::Run),
    (
        "ferry mirror push 127.0.0.1 photos --delete --dry-run",
        How::Run,
    ),
    ("ferry rm -r 127.0.0.1 albums", How::Run),
    (
        "printf 'dir\\nget report.pdf\\nclose\\n' | ferry shell 127.0.0.1",
        How::Run,
    ),
    ("ferry conform server 127.0.0.1:7450", How::Run),
    (
        "ferry conform client -- ./my-client {op} {addr} {name} {dir}",
        How::Parse,
    ),
    ("ferry conform server 127.0.0.1:7450 --list", How::Run),
    (
        "ferry conform server 127.0.0.1:7450 --json report.json --junit report.xml --strict",
        How::Run,
    ),
    // crates/bench/README.md: minutes of benchmarking each
    ("cargo run --release -p ferry -- bench --quick", How::Parse),
    (
        "cargo run --release -p ferry -- bench --format md",
        How::Parse,
    ),
    // crates/cli/README.md: serving over TLS (fixed paths: parsed only)
    (
        "ferry serve --tls-self-signed --root /srv/files",
        How::Parse,
    ),
    // crates/cli/README.md: what the timeout hints print (tests/cli.rs runs them)
    ("ferry dir 127.0.0.1:7450", How::Parse),
    ("ferry dir 127.0.0.1:7451", How::Parse),
    ("cargo run --release -p ferry -- bench", How::Parse),
    (
        "cargo run --release -p ferry -- bench --impls threads,tokio --workloads large,small --repeat 5",
        How::Parse,
    ),
    (
        "cargo run --release -p ferry -- bench --workloads idle --idle-conns 10000",
        How::Parse,
    ),
    (
        "cargo run --release -p ferry -- bench --peers target/bench/peers/peers.json",
        How::Parse,
    ),
    (
        "cargo run --release -p ferry -- bench --clients own --peers target/bench/peers/peers.json",
        How::Parse,
    ),
    (
        "cargo run --release -p ferry -- bench --clients shared,own --large-size 256MiB --small-ops 1000 --repeat 3",
        How::Parse,
    ),
    (
        "cargo run --release -p ferry -- bench --tls --workloads large,small,idle",
        How::Parse,
    ),
    (
        "cargo bench -p ferry-bench --bench ops",
        How::Skip("criterion benchmarks (minutes, release build); not a ferry command"),
    ),
    // crates/cli/README.md
    (
        "printf 'dir\\nmget *.txt\\n-get maybe.log\\nclose\\n' | ferry shell HOST",
        How::Parse,
    ),
    (
        "ferry serve --listen 127.0.0.1:0 --root /srv/files | head -1",
        How::Parse,
    ),
    // crates/cli/README.md: keys and the users file (the roots need not exist)
    ("ferry keygen -f alice_key -C alice@laptop", How::Run),
    (
        "ferry user add alice --users users.toml --root /srv/ferry/alice --rights list,read,create,replace --key alice_key.pub",
        How::Run,
    ),
    (
        "ferry user add bob --users users.toml --root /srv/ferry/bob --rights list,read --max-sessions 2",
        How::Run,
    ),
    (
        "echo 'correct horse battery staple' | ferry user passwd bob --users users.toml --password-stdin",
        How::Parse,
    ),
    ("ferry user list --users users.toml", How::Run),
    (
        "ferry serve --users users.toml --tls-self-signed",
        How::Parse,
    ),
    ("ferry user remove bob --users users.toml", How::Run),
    ("ferry dir ferrys://alice@files.example", How::Parse),
    (
        "FERRY_PASSWORD='correct horse battery staple' ferry get ferrys://bob@files.example report.pdf",
        How::Parse,
    ),
    // crates/conformance/README.md: fixed ports 7450-7456 and a 30 s run
    (
        "ferry serve --root /tmp/conform-root --listen 127.0.0.1:7450 &",
        How::Parse,
    ),
    ("ferry-conform server 127.0.0.1:7450", How::Run),
    (
        "mkdir -p /tmp/c-ro",
        How::Skip("not a ferry command: the read-only server's folder"),
    ),
    (
        "ferry serve --root /tmp/c-main --listen 127.0.0.1:7450 --max-connections 16 --shutdown-grace 2 &",
        How::Parse,
    ),
    (
        "ferry serve --root /tmp/c-ro --listen 127.0.0.1:7451 --read-only &",
        How::Parse,
    ),
    (
        "ferry serve --root /tmp/c-s10 --listen 127.0.0.1:7452 --max-file-size 10 &",
        How::Parse,
    ),
    (
        "ferry serve --root /tmp/c-e4 --listen 127.0.0.1:7453 --max-eager 4 &",
        How::Parse,
    ),
    (
        "ferry serve --root /tmp/c-t1 --listen 127.0.0.1:7454 --idle-timeout 2 --stall-timeout 1 &",
        How::Parse,
    ),
    (
        "ferry serve --root /tmp/c-e0 --listen 127.0.0.1:7455 --max-eager 0 &",
        How::Parse,
    ),
    (
        "ferry serve --root /tmp/c-nt --listen 127.0.0.1:7456 --no-tree &",
        How::Parse,
    ),
    (
        "main=$(jobs -p %1)",
        How::Skip("shell bookkeeping of the block's background servers"),
    ),
    (
        "ferry-conform server 127.0.0.1:7450 --read-only-server 127.0.0.1:7451 --extra-server 127.0.0.1:7452 --extra-server 127.0.0.1:7453 --extra-server 127.0.0.1:7454 --extra-server 127.0.0.1:7455 --extra-server 127.0.0.1:7456 --session-limit 16 --max-wait 3 --touch-cmd 'f=/tmp/c-main/\"$FERRY_NAME\"; if [ \"$FERRY_HOW\" = append ]; then printf x >>\"$f\"; else truncate -s 1 \"$f\"; fi' --shutdown-cmd \"kill -TERM $main\" --shutdown-grace 2 --json report.json --junit report.xml",
        How::Parse,
    ),
    // crates/conformance/README.md, the auth cases: files under /tmp and a fixed port.
    ("ferry-conform auth-setup /tmp/c-auth", How::Parse),
    (
        "ferry serve --users /tmp/c-auth/users.toml --tls-self-signed --listen 127.0.0.1:7461 --auth-throttle=false &",
        How::Parse,
    ),
    (
        "ferry-conform server ferrys://127.0.0.1:7461 --fingerprint SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU --auth /tmp/c-auth --include 'server/AUTH-*' --include server/TREE-13/2",
        How::Parse,
    ),
    (
        "ferry-conform client [OPTIONS] -- COMMAND ARGS...",
        How::Skip("usage synopsis, not a command (better in a ```text block)"),
    ),
    (
        "ferry-conform client -- sh -c 'case $FERRY_OP in get) ferry get \"$FERRY_ADDR\" \"$FERRY_NAME\" -o \"$FERRY_DIR/$FERRY_NAME\";; resume) ferry get --continue \"$FERRY_ADDR\" \"$FERRY_NAME\" -o \"$FERRY_DIR/$FERRY_NAME\";; mget) ferry get \"$FERRY_ADDR\" \"$FERRY_NAME\" \"$FERRY_NAME2\" -o \"$FERRY_DIR/\";; put) cd \"$FERRY_DIR\" && ferry put \"$FERRY_ADDR\" \"$FERRY_NAME\";; mput) cd \"$FERRY_DIR\" && ferry put \"$FERRY_ADDR\" \"$FERRY_NAME\" \"$FERRY_NAME2\";; rget) ferry get -r \"$FERRY_ADDR\" \"$FERRY_NAME\" -o \"$FERRY_DIR\";; dir) ferry dir \"$FERRY_ADDR\";; esac'",
        How::Run,
    ),
    // packaging/README.md: system administration (packaging/check tests the unit and the
    // image's command line in CI)
    (
        "cargo install --path crates/cli --root /usr/local --locked",
        How::Install,
    ),
    (
        "install -m 0644 packaging/ferry.service /etc/systemd/system/ferry.service",
        How::Skip("installs into the system; packaging/check verifies the unit"),
    ),
    (
        "systemctl daemon-reload",
        How::Skip("needs a running systemd; packaging/check verifies the unit"),
    ),
    (
        "systemctl enable --now ferry",
        How::Skip("needs a running systemd; packaging/check runs the unit's ExecStart"),
    ),
    ("journalctl -u ferry", How::Skip("needs a running systemd")),
    (
        "podman build -f packaging/Containerfile -t ferry .",
        How::Skip("needs a container engine and the network for the base images"),
    ),
    (
        "podman run --rm -p 127.0.0.1:7450:7450 -v ferry-files:/srv/ferry ferry",
        How::Skip("needs a container engine; packaging/check runs the image's command line"),
    ),
    // fuzz/README.md
    (
        "cargo install cargo-fuzz",
        How::Skip("installs a third-party tool; CI does it when missing"),
    ),
    (
        "fuzz/run-all.sh 600",
        How::Skip("fuzzing for hours; CI runs fuzz/run-all.sh with a short bound"),
    ),
    (
        "RUSTC_BOOTSTRAP=1 cargo fuzz run decode_request",
        How::Skip("fuzzes until stopped"),
    ),
    // bench/README.md
    (
        "sudo bench/peers.sh",
        How::Skip("needs root and installs and runs vsftpd, nginx, rsync and sshd"),
    ),
    (
        "LARGE_MIB=256 SMALL_COUNT=1000 bench/peers.sh",
        How::Skip("needs root and installs and runs vsftpd, nginx, rsync and sshd"),
    ),
    (
        "TOOLS=\"ferry nginx\" IMPLS=\"threads tokio\" bench/peers.sh",
        How::Skip("needs root and installs and runs vsftpd, nginx, rsync and sshd"),
    ),
    (
        "TOOLS=\"vsftpd-tls nginx-tls sftp ferry-tls\" bench/peers.sh",
        How::Skip("needs root and installs and runs vsftpd, nginx and sshd"),
    ),
    // tests/matrix/README.md
    (
        "cargo test -p ferry-matrix-tests",
        How::Skip("a test suite; CI runs it"),
    ),
    (
        "cargo test -p ferry-matrix-tests --test matrix -- --nocapture",
        How::Skip("a test suite; CI runs it"),
    ),
    (
        "FERRY_PROPTEST_CASES=2000 cargo test -p ferry-matrix-tests --test model --test differential --test malformed",
        How::Skip("a long property-test run"),
    ),
];

/// Files the README examples name, created in the folder the commands run in.
const FIXTURES: &[(&str, &str)] = &[
    ("report.pdf", "%PDF-1.7 not really\n"),
    ("射频仿真.pptx", "slides\n"),
    ("photos/sea.jpg", "not really a photo\n"),
    ("photos/2024/天线.png", "nor this\n"),
];

/// A hang guard for one command, not a timing assertion.
const LIMIT: Duration = Duration::from_secs(300);

fn workspace() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let manifest = fs::read_to_string(root.join("Cargo.toml")).expect("../../Cargo.toml");
    assert!(
        manifest.contains("[workspace]") && manifest.contains("\"crates/cli\""),
        "this test reads the READMEs of the ferry workspace; it is not in one"
    );
    root
}

/// One command found in a README.
#[derive(Debug, Clone)]
struct DocCommand {
    /// The README, relative to the workspace.
    file: String,
    /// Which fenced block of the file (0-based).
    block: usize,
    /// The command, spaces collapsed.
    text: String,
    /// For a `$ ` line: the lines after it, up to the next `$ ` line.
    output: Vec<String>,
}

/// Every README.md of the workspace outside build output, sorted.
fn readmes(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            let name = name.unwrap_or_default();
            if p.is_dir() {
                if !matches!(name.as_str(), "target" | ".git" | "corpus" | "artifacts")
                    && !name.starts_with('.')
                {
                    walk(&p, out);
                }
            } else if name == "README.md" {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out
}

/// Collapses runs of whitespace (outside nothing: quotes keep their text, only spacing
/// changes) and trims.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Drops a `#` comment: a `#` at the start of a word, outside quotes.
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double, mut prev_space) = (false, false, true);
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_space => return &line[..i],
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// Whether a shell text leaves a quote open.
fn open_quote(s: &str) -> bool {
    let (mut single, mut double) = (false, false);
    for c in s.chars() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            _ => {}
        }
    }
    single || double
}

fn extract(root: &Path, path: &Path) -> Vec<DocCommand> {
    let text = fs::read_to_string(path).expect("README");
    let file = path
        .strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/");
    let mut out = Vec::new();
    let mut lines = text.lines();
    let mut block = 0;
    while let Some(line) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let lang = info.trim().to_owned();
        let mut body = Vec::new();
        for l in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            body.push(l);
        }
        if matches!(lang.as_str(), "sh" | "bash" | "shell") {
            let mut pending = String::new();
            for l in body {
                let l = strip_comment(l);
                if let Some(cont) = l.trim_end().strip_suffix('\\') {
                    pending.push_str(cont);
                    pending.push(' ');
                    continue;
                }
                pending.push_str(l);
                if open_quote(&pending) {
                    pending.push(' ');
                    continue;
                }
                let cmd = collapse(&pending);
                pending.clear();
                if !cmd.is_empty() {
                    out.push(DocCommand {
                        file: file.clone(),
                        block,
                        text: cmd,
                        output: Vec::new(),
                    });
                }
            }
            assert!(
                pending.trim().is_empty(),
                "{file}: unterminated command {pending:?}"
            );
        } else {
            for l in body {
                if let Some(cmd) = l.strip_prefix("$ ") {
                    out.push(DocCommand {
                        file: file.clone(),
                        block,
                        text: collapse(cmd),
                        output: Vec::new(),
                    });
                } else if let Some(last) = out.last_mut().filter(|c| c.block == block)
                    && last.file == file
                {
                    last.output.push(l.to_owned());
                }
            }
        }
        block += 1;
    }
    out
}

fn all_commands() -> Vec<DocCommand> {
    let root = workspace();
    let files = readmes(&root);
    assert!(
        files.iter().any(|p| p.ends_with("crates/cli/README.md")) && files.len() >= 10,
        "the READMEs were not found: {files:?}"
    );
    files.iter().flat_map(|p| extract(&root, p)).collect()
}

/// How `cmd` is checked; `None` when HANDLING does not list it (the first test fails then).
fn how(cmd: &DocCommand) -> Option<How> {
    HANDLING
        .iter()
        .find(|(t, _)| *t == cmd.text)
        .map(|(_, h)| *h)
}

#[test]
fn every_readme_command_is_handled_and_every_handled_command_is_in_a_readme() {
    let commands = all_commands();
    let found: BTreeSet<&str> = commands.iter().map(|c| c.text.as_str()).collect();
    let listed: BTreeSet<&str> = HANDLING.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        listed.len(),
        HANDLING.len(),
        "a command is listed twice in HANDLING"
    );
    let new: Vec<String> = commands
        .iter()
        .filter(|c| !listed.contains(c.text.as_str()))
        .map(|c| format!("    // {}\n    ({:?}, How::Run),", c.file, c.text))
        .collect();
    let gone: Vec<&&str> = listed.iter().filter(|t| !found.contains(**t)).collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "README commands and crates/cli/tests/docs_commands.rs's HANDLING disagree.\n\
         Commands no test handles (add them to HANDLING, with the right How):\n{}\n\
         Listed commands no README shows any more (remove them): {gone:#?}",
        new.join("\n")
    );
}

// ---- running commands ----------------------------------------------------------------------

/// A temporary folder with `bin/` shims first on PATH: `ferry` is the binary under test,
/// `ferry-conform` runs `ferry conform`. In parse mode both add `--help` (before a `--`) and
/// log each call's exit status to `calls.log`.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new(parse: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).expect("bin");
        let ferry = env!("CARGO_BIN_EXE_ferry");
        let log = dir.path().join("calls.log");
        let body = |prefix: &str| {
            if parse {
                format!(
                    "#!/bin/sh\n\
                     n=$#; done=0\n\
                     for a in \"$@\"; do\n\
                     \x20 if [ $done = 0 ] && [ \"$a\" = -- ]; then set -- \"$@\" --help; done=1; fi\n\
                     \x20 set -- \"$@\" \"$a\"\n\
                     done\n\
                     shift $n\n\
                     if [ $done = 0 ]; then set -- \"$@\" --help; fi\n\
                     '{ferry}' {prefix} \"$@\" >/dev/null\n\
                     s=$?\n\
                     echo \"$s {prefix} $*\" >>'{log}'\n\
                     exit $s\n",
                    log = log.display()
                )
            } else {
                format!("#!/bin/sh\nexec '{ferry}' {prefix} \"$@\"\n")
            }
        };
        for (name, prefix) in [("ferry", ""), ("ferry-conform", "conform")] {
            let p = bin.join(name);
            fs::write(&p, body(prefix)).expect("shim");
            let status = Command::new("chmod")
                .arg("+x")
                .arg(&p)
                .status()
                .expect("chmod");
            assert!(status.success());
        }
        fs::create_dir(dir.path().join("work")).expect("work");
        for (name, content) in FIXTURES {
            let path = dir.path().join("work").join(name);
            if let Some(folder) = path.parent() {
                fs::create_dir_all(folder).expect("fixture folder");
            }
            fs::write(path, content).expect("fixture");
        }
        Sandbox { dir }
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Runs `cmd` with `sh -c` in `work/`; returns (exit success, stdout + stderr).
    fn sh(&self, cmd: &str, stdin: &str) -> (bool, String) {
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(self.work())
            .env("PATH", path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh");
        {
            use std::io::Write;
            let mut input = child.stdin.take().expect("stdin");
            input.write_all(stdin.as_bytes()).expect("write stdin");
        }
        let mut out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let status = wait_bounded(&mut child, cmd);
        let mut text = reader.join().expect("stdout reader");
        text.push_str(&err_reader.join().expect("stderr reader"));
        (status, text)
    }
}

/// Waits for `child`, killing it (and failing) if it outlives [`LIMIT`].
fn wait_bounded(child: &mut Child, what: &str) -> bool {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.success();
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what:?} still runs after {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `cargo run --release -p ferry -- ARGS` is `ferry ARGS`.
fn translate(cmd: &str) -> String {
    cmd.replace("cargo run --release -p ferry -- ", "ferry ")
}

/// A `ferry serve` process; stopped with SIGTERM (and required to exit 0) by [`Server::stop`],
/// killed if dropped otherwise.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    /// `ferry ARGS` in `cwd`, waiting for its `listening on ADDR` line.
    fn start(cwd: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(args)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ferry serve");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let Some(addr) = first.strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ferry {args:?} printed {first:?}, not `listening on ADDR`");
        };
        let addr = addr.trim().to_owned();
        // Keep reading stdout so that the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, addr }
    }

    fn stop(mut self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -TERM failed");
        let ok = wait_bounded(&mut self.child, "ferry serve after SIGTERM");
        assert!(ok, "ferry serve did not exit 0 on SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Replaces the README's server address by `addr`: `127.0.0.1:7450`, and `127.0.0.1` not
/// followed by a port.
fn with_addr(cmd: &str, addr: &str) -> String {
    let cmd = cmd.replace("127.0.0.1:7450", "\u{0}");
    let mut out = String::new();
    let mut rest = cmd.as_str();
    while let Some(i) = rest.find("127.0.0.1") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "127.0.0.1".len()..];
        if after.starts_with(':') {
            out.push_str("127.0.0.1");
        } else {
            out.push_str(addr);
        }
        rest = after;
    }
    out.push_str(rest);
    out.replace('\u{0}', addr)
}

#[test]
fn run_commands_succeed_against_a_fresh_server() {
    let commands = all_commands();
    let mut blocks: Vec<(String, usize)> = commands
        .iter()
        .filter(|c| how(c) == Some(How::Run))
        .map(|c| (c.file.clone(), c.block))
        .collect();
    blocks.dedup();
    assert!(!blocks.is_empty(), "no README command is run");
    for (file, block) in blocks {
        let sandbox = Sandbox::new(false);
        let served = sandbox.dir.path().join("served");
        let server = Server::start(
            sandbox.dir.path(),
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--root",
                served.to_str().expect("utf-8"),
            ],
        );
        for c in commands
            .iter()
            .filter(|c| c.file == file && c.block == block && how(c) == Some(How::Run))
        {
            let cmd = with_addr(&translate(&c.text), &server.addr);
            let (ok, out) = sandbox.sh(&cmd, "");
            assert!(ok, "{file}: `{}` (run as `{cmd}`) failed:\n{out}", c.text);
        }
        server.stop();
    }
}

#[test]
fn parse_commands_are_accepted_by_ferry() {
    let commands: Vec<DocCommand> = all_commands()
        .into_iter()
        .filter(|c| matches!(how(c), Some(How::Parse | How::Run)))
        .collect();
    let sandbox = Sandbox::new(true);
    let log = sandbox.dir.path().join("calls.log");
    for c in &commands {
        let _ = fs::remove_file(&log);
        // The exit status of the line itself does not matter (`| head`, `&`): the shims log
        // every ferry call.
        let (_, out) = sandbox.sh(&translate(&c.text), "");
        let calls = fs::read_to_string(&log).unwrap_or_default();
        assert!(
            !calls.is_empty(),
            "{}: `{}` never called ferry:\n{out}",
            c.file,
            c.text
        );
        for call in calls.lines() {
            assert!(
                call.starts_with("0 "),
                "{}: `{}`: ferry rejects its arguments ({call}):\n{out}",
                c.file,
                c.text
            );
        }
    }
}

#[test]
fn serve_command_serves_ferry_files_and_stops_on_sigterm() {
    let serve: Vec<DocCommand> = all_commands()
        .into_iter()
        .filter(|c| how(c) == Some(How::Serve))
        .collect();
    assert!(!serve.is_empty());
    for c in serve {
        let dir = tempfile::tempdir().expect("tempdir");
        let translated = translate(&c.text);
        let mut args: Vec<&str> = translated.split(' ').skip(1).collect();
        args.extend(["--listen", "127.0.0.1:0"]);
        let server = Server::start(dir.path(), &args);
        assert!(server.addr.starts_with("127.0.0.1:"), "{}", server.addr);
        assert!(
            dir.path().join("ferry-files").is_dir(),
            "`{}` did not create ./ferry-files",
            c.text
        );
        server.stop();
    }
}

/// Masks `YYYY-MM-DDTHH:MM:SSZ` times.
fn mask_times(line: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = line.chars().collect();
    let shape = "dddd-dd-ddTdd:dd:ddZ";
    let mut i = 0;
    while i < chars.len() {
        let fits = i + shape.len() <= chars.len()
            && shape.chars().zip(&chars[i..]).all(|(s, c)| match s {
                'd' => c.is_ascii_digit(),
                s => s == *c,
            });
        if fits {
            out.push_str("<time>");
            i += shape.len();
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn shell_session_prints_what_the_readme_shows() {
    let all = all_commands();
    let sessions: Vec<&DocCommand> = all
        .iter()
        .filter(|c| how(c) == Some(How::Session))
        .collect();
    assert!(!sessions.is_empty());
    for c in sessions {
        let sandbox = Sandbox::new(false);
        // The `$ ` lines before it in the same block set the scene (`echo ... > FILE`).
        for setup in all
            .iter()
            .filter(|s| s.file == c.file && s.block == c.block && s.text != c.text)
        {
            let (ok, out) = sandbox.sh(&setup.text, "");
            assert!(ok, "`{}` failed: {out}", setup.text);
        }
        let served = sandbox.dir.path().join("served");
        let server = Server::start(
            sandbox.dir.path(),
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--root",
                served.to_str().expect("utf-8"),
            ],
        );
        // The transcript is an interactive session, where a failed command does not end the
        // shell; piped input stops at the first failure unless the line starts with `-`
        // (crates/cli/README.md), so a command the transcript shows failing gets the `-`.
        let input: String = c
            .output
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                let cmd = l.strip_prefix("ferry> ")?;
                let fails = c
                    .output
                    .get(i + 1)
                    .is_some_and(|next| next.starts_with("error:"));
                Some(if fails {
                    format!("-{cmd}\n")
                } else {
                    format!("{cmd}\n")
                })
            })
            .collect();
        let expected: Vec<String> = c
            .output
            .iter()
            .filter(|l| !l.starts_with("ferry>") && !l.trim().is_empty())
            .map(|l| mask_times(l))
            .collect();
        assert!(!input.is_empty() && !expected.is_empty(), "{c:?}");
        let cmd = with_addr(&translate(&c.text), &server.addr);
        // The session shows an error on purpose (`get nope`); its exit status is the CLI's
        // documented business, not this transcript's.
        let (_, out) = sandbox.sh(&cmd, &input);
        let got: Vec<String> = out
            .replace("ferry> ", "")
            .lines()
            .map(|l| mask_times(l.trim_end()))
            .collect();
        let mut at = 0;
        for want in &expected {
            if want.starts_with("error:") {
                // Errors go to stderr, which `sh` hands back after stdout: anywhere will do.
                assert!(
                    got.iter().any(|g| g == want),
                    "{}: `{}` did not print {want:?}; it printed:\n{out}",
                    c.file,
                    c.text
                );
                continue;
            }
            match got[at..].iter().position(|g| g == want) {
                Some(i) => at += i + 1,
                None => panic!(
                    "{}: `{}` did not print {want:?} (in README order); it printed:\n{out}",
                    c.file, c.text
                ),
            }
        }
        server.stop();
    }
}

#[test]
fn install_path_is_the_package_with_the_ferry_binary() {
    let root = workspace();
    let installs: Vec<DocCommand> = all_commands()
        .into_iter()
        .filter(|c| how(c) == Some(How::Install))
        .collect();
    assert!(!installs.is_empty());
    for c in installs {
        let words: Vec<&str> = c.text.split(' ').collect();
        let path = words
            .windows(2)
            .find(|w| w[0] == "--path")
            .map(|w| w[1])
            .unwrap_or_else(|| panic!("`{}` has no --path", c.text));
        let manifest = fs::read_to_string(root.join(path).join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("`{}`: {path}/Cargo.toml: {e}", c.text));
        let bin = manifest.split("[[bin]]").nth(1).unwrap_or_default();
        assert!(
            bin.contains("name = \"ferry\""),
            "`{}`: {path} does not build a binary named ferry",
            c.text
        );
    }
}
