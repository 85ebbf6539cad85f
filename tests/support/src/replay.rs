//! Replays a `spec/examples` transcript against a [`TestServer`] (of any [`Impl`]), or
//! against any server address, over a real socket.
//!
//! The client steps are sent as written. Before each client step (and at the end) the octets
//! the server sent so far are compared with the transcript's server steps up to that point.
//! The comparison is by message, as the examples' README asks: lines octet for octet, and a
//! payload by its file octets and trailer, whatever the chunk boundaries. The one field
//! masked is a MTIME (in `ok get`, in `dir` entries and in `list` entries) that is not the
//! MTIME of any `@file` or `@folder` fixture: such a time belongs to a file or folder
//! created or changed during the session, whose MTIME cannot be written down in advance
//! (protocol.md 6.4, notes; the transcripts do not show such times).

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown as NetShutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use ferry_transcript::{Action, Side, Transcript};
use ferry_wire::{TreePath, decode_entry};

use crate::{Impl, TestServer, lossy};

/// Why a replay failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayError {
    /// The transcript file.
    pub transcript: String,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.transcript, self.message)
    }
}

impl std::error::Error for ReplayError {}

/// One server message, chunking normalised away.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Line(String),
    Payload { data: Vec<u8>, trailer: String },
}

/// Parses the complete messages at the start of `bytes` (an incomplete last one is left out);
/// returns them and how many octets they span.
fn parse_items(bytes: &[u8]) -> Result<(Vec<Item>, usize), String> {
    let mut items = Vec::new();
    let mut pos = 0;
    let line_at = |p: usize| -> Option<(&[u8], usize)> {
        let lf = bytes[p..].iter().position(|&b| b == b'\n')?;
        Some((&bytes[p..p + lf + 1], p + lf + 1))
    };
    while let Some((line, next)) = line_at(pos) {
        if !line.starts_with(b"ok get ") {
            items.push(Item::Line(lossy(line)));
            pos = next;
            continue;
        }
        // A payload follows: chunks, then a trailer.
        let mut p = next;
        let mut data = Vec::new();
        let (trailer, after_trailer) = loop {
            let Some((frame, after)) = line_at(p) else {
                return Ok((items, pos));
            };
            if let Some(len) = frame.strip_prefix(b"data ") {
                let len: usize = std::str::from_utf8(len)
                    .ok()
                    .and_then(|s| s.trim_end().parse().ok())
                    .ok_or_else(|| format!("bad chunk head {:?}", lossy(frame)))?;
                if bytes.len() < after + len {
                    return Ok((items, pos));
                }
                data.extend_from_slice(&bytes[after..after + len]);
                p = after + len;
            } else if frame.starts_with(b"end ") || frame.starts_with(b"abort ") {
                break (lossy(frame), after);
            } else {
                return Err(format!("unexpected line in a payload: {:?}", lossy(frame)));
            }
        };
        items.push(Item::Line(lossy(line)));
        items.push(Item::Payload { data, trailer });
        pos = after_trailer;
    }
    Ok((items, pos))
}

/// Whether `field` has the shape of an `mtime` (`YYYY-MM-DDTHH:MM:SSZ`).
fn is_mtime(field: &str) -> bool {
    let b = field.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Replaces the MTIME of `ok get SIZE MTIME` lines, of `SIZE MTIME NAME` entry lines and of
/// `f SIZE MTIME DIGEST PATH` and `d - MTIME - PATH` list entries with `MTIME` when it is not
/// one of `fixed` (the `@file` and `@folder` times): it is then the time of a change made
/// during the session.
fn mask_items(items: &[Item], fixed: &HashSet<String>) -> Vec<Item> {
    let mask = |line: &str| -> String {
        let body = line.trim_end_matches('\n');
        let fields: Vec<&str> = body.split(' ').collect();
        let at = if body.starts_with("ok get ") && fields.len() == 4 {
            3
        } else if fields.len() >= 5 && (fields[0] == "f" || fields[0] == "d") {
            2
        } else if fields.len() >= 3
            && !fields[0].is_empty()
            && fields[0].bytes().all(|c| c.is_ascii_digit())
        {
            1
        } else {
            return line.to_owned();
        };
        if !is_mtime(fields[at]) || fixed.contains(fields[at]) {
            return line.to_owned();
        }
        let mut out: Vec<&str> = fields.clone();
        out[at] = "MTIME";
        let mut s = out.join(" ");
        s.push_str(&line[body.len()..]);
        s
    };
    items
        .iter()
        .map(|item| match item {
            Item::Line(l) => Item::Line(mask(l)),
            other => other.clone(),
        })
        .collect()
}

fn describe(items: &[Item]) -> String {
    let mut out = String::new();
    for item in items {
        match item {
            Item::Line(l) => out.push_str(&format!("\n  S: {}", l.trim_end_matches('\n'))),
            Item::Payload { data, trailer } => out.push_str(&format!(
                "\n  [payload {} octets {:?}] {}",
                data.len(),
                lossy(&data[..data.len().min(48)]),
                trailer.trim_end_matches('\n')
            )),
        }
    }
    out
}

struct Player {
    stream: TcpStream,
    received: Vec<u8>,
    eof: bool,
    /// The `@file` MTIMEs (see [`mask_items`]).
    fixed: HashSet<String>,
}

impl Player {
    fn read_more(&mut self, deadline: Instant) -> Result<(), String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timed out waiting for the server".into());
        }
        self.stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => {
                self.eof = true;
                Ok(())
            }
            Ok(n) => {
                self.received.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                self.eof = true;
                Ok(())
            }
            Err(e) => Err(format!("reading from the server: {e}")),
        }
    }

    /// Waits until the server has sent as many messages as `expected` holds, then compares.
    fn sync(&mut self, expected: &[u8], line_no: usize) -> Result<(), String> {
        let (want, _) = parse_items(expected).map_err(|e| format!("transcript: {e}"))?;
        let want = mask_items(&want, &self.fixed);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (got, _) = parse_items(&self.received)?;
            let got = mask_items(&got, &self.fixed);
            let n = got.len().min(want.len());
            if got[..n] != want[..n] {
                return Err(format!(
                    "before line {line_no}: server sent{}\nexpected{}",
                    describe(&got[..n]),
                    describe(&want[..n])
                ));
            }
            if got.len() >= want.len() {
                return Ok(());
            }
            if self.eof {
                return Err(format!(
                    "before line {line_no}: the server closed after{}\nexpected{}",
                    describe(&got),
                    describe(&want)
                ));
            }
            self.read_more(deadline)?;
        }
    }
}

/// Replays one transcript against a fresh threaded [`TestServer`] configured by its
/// `@server` options ([`replay_on`] with [`Impl::Threads`]). Illustrative transcripts
/// (`busy`, `fault=…`) cannot be forced on a server and are refused with an error; check
/// [`Transcript::is_illustrative`] first.
pub fn replay(t: &Transcript) -> Result<(), ReplayError> {
    replay_on(Impl::Threads, t)
}

/// Replays one transcript against a fresh [`TestServer`] of implementation `imp`, configured
/// by its `@server` options and holding its `@folder` and `@file` fixtures; stops the server
/// afterwards. The server offers the `tree` extension exactly when the transcript says
/// `@server tree` (spec/examples/README.md: the greeting lists no extension otherwise).
pub fn replay_on(imp: Impl, t: &Transcript) -> Result<(), ReplayError> {
    let fail = |message: String| ReplayError {
        transcript: t.path.display().to_string(),
        message,
    };
    if t.is_illustrative() {
        return Err(fail("illustrative transcript: not replayable".into()));
    }
    let mut bad_option = None;
    let server = TestServer::with_impl_config(imp, |c| {
        c.tree = false;
        for option in &t.server {
            match option.split_once('=') {
                None if option == "read-only" => c.read_only = true,
                None if option == "tree" => c.tree = true,
                Some(("max-size", v)) => match v.parse() {
                    Ok(n) => c.max_size = n,
                    Err(_) => bad_option = Some(option.clone()),
                },
                Some(("max-eager", v)) => match v.parse() {
                    Ok(n) => c.max_eager = n,
                    Err(_) => bad_option = Some(option.clone()),
                },
                _ => bad_option = Some(option.clone()),
            }
        }
    });
    if let Some(option) = bad_option {
        return Err(fail(format!("unsupported @server option {option:?}")));
    }
    let time = |what: &str, mtime: &str| {
        let line = format!("0 {mtime} x\n");
        decode_entry(line.as_bytes())
            .map_err(|e| fail(format!("bad {what} mtime {mtime:?}: {e}")))?
            .0
            .mtime
            .to_system_time()
            .ok_or_else(|| fail(format!("{what} mtime {mtime:?} out of range")))
    };
    // Folders first, then the files in them, then each folder's time, deepest first: writing
    // inside a folder changes its modification time.
    let fixture_path = |what: &str, path: &str| {
        TreePath::new(path)
            .map(|p| server.root.join(p.as_str()))
            .map_err(|e| fail(format!("bad {what} path {path:?}: {e}")))
    };
    for d in &t.folders {
        let path = fixture_path("@folder", &d.path)?;
        fs::create_dir_all(&path).map_err(|e| fail(format!("@folder {}: {e}", d.path)))?;
    }
    for f in &t.files {
        fixture_path("@file", &f.name)?;
        server.write_file_with_mtime(&f.name, &f.content, time("@file", &f.mtime)?);
    }
    let mut folders: Vec<_> = t.folders.iter().collect();
    folders.sort_by_key(|d| std::cmp::Reverse(d.path.matches('/').count()));
    for d in folders {
        let mtime = time("@folder", &d.mtime)?;
        fs::File::open(fixture_path("@folder", &d.path)?)
            .and_then(|f| f.set_modified(mtime))
            .map_err(|e| fail(format!("@folder {}: {e}", d.path)))?;
    }
    let result = replay_at(t, server.addr);
    let stopped = server
        .stop()
        .map_err(|e| fail(format!("{imp} server: {e}")));
    result.and(stopped)
}

/// Replays one transcript against the server listening at `addr`, which the caller has
/// configured by the transcript's `@server` options and given its `@folder` and `@file`
/// fixtures (with their MTIMEs). One connection; the server is not stopped.
pub fn replay_at(t: &Transcript, addr: SocketAddr) -> Result<(), ReplayError> {
    let fail = |message: String| ReplayError {
        transcript: t.path.display().to_string(),
        message,
    };
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| fail(format!("connect: {e}")))?;
    let mut player = Player {
        stream,
        received: Vec::new(),
        eof: false,
        fixed: t
            .files
            .iter()
            .map(|f| &f.mtime)
            .chain(t.folders.iter().map(|d| &d.mtime))
            .cloned()
            .collect(),
    };
    let mut expected = Vec::new();
    let mut server_closes = false;
    for step in &t.steps {
        match (&step.side, &step.action) {
            (Side::Server, Action::Line(b) | Action::Raw(b)) => expected.extend_from_slice(b),
            (Side::Server, Action::Close) => server_closes = true,
            (Side::Client, Action::Line(b) | Action::Raw(b)) => {
                player.sync(&expected, step.line_no).map_err(fail)?;
                player
                    .stream
                    .write_all(b)
                    .map_err(|e| fail(format!("line {}: send: {e}", step.line_no)))?;
            }
            (Side::Client, Action::Close) => {
                player.sync(&expected, step.line_no).map_err(fail)?;
                player
                    .stream
                    .shutdown(NetShutdown::Write)
                    .map_err(|e| fail(format!("line {}: shutdown: {e}", step.line_no)))?;
            }
        }
    }
    let last = t.steps.last().map_or(0, |s| s.line_no);
    player.sync(&expected, last).map_err(fail)?;
    if server_closes {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !player.eof {
            player
                .read_more(deadline)
                .map_err(|e| fail(format!("waiting for the close: {e}")))?;
        }
        let (got, used) = parse_items(&player.received).map_err(fail)?;
        let (want, _) = parse_items(&expected).map_err(fail)?;
        let (got, want) = (
            mask_items(&got, &player.fixed),
            mask_items(&want, &player.fixed),
        );
        if got != want {
            return Err(fail(format!(
                "at the close: server sent{}\nexpected{}",
                describe(&got),
                describe(&want)
            )));
        }
        if used != player.received.len() {
            return Err(fail(format!(
                "the server sent {:?} after its last message",
                lossy(&player.received[used..])
            )));
        }
    }
    Ok(())
}

/// Replays every replayable transcript of `dir` against threaded servers; returns how many
/// ran and the failures.
pub fn replay_examples(dir: &Path) -> (usize, Vec<ReplayError>) {
    replay_examples_on(Impl::Threads, dir)
}

/// Replays every replayable transcript of `dir` against servers of implementation `imp`
/// (a fresh one per transcript); returns how many ran and the failures.
pub fn replay_examples_on(imp: Impl, dir: &Path) -> (usize, Vec<ReplayError>) {
    let transcripts = match Transcript::read_dir(dir) {
        Ok(t) => t,
        Err(e) => {
            return (
                0,
                vec![ReplayError {
                    transcript: dir.display().to_string(),
                    message: e.to_string(),
                }],
            );
        }
    };
    let mut ran = 0;
    let mut failures = Vec::new();
    for t in transcripts.iter().filter(|t| !t.is_illustrative()) {
        ran += 1;
        if let Err(e) = replay_on(imp, t) {
            failures.push(e);
        }
    }
    (ran, failures)
}
