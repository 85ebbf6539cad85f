//! Replays a `spec/examples` transcript against a [`TestServer`] over a real socket.
//!
//! The client steps are sent as written. Before each client step (and at the end) the octets
//! the server sent so far are compared with the transcript's server steps up to that point.
//! The comparison is by message, as the examples' README asks: lines octet for octet, and a
//! payload by its file octets and trailer, whatever the chunk boundaries.

use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown as NetShutdown, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use ferry_transcript::{Action, Side, Transcript};
use ferry_wire::decode_entry;

use crate::{TestServer, lossy};

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
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (got, _) = parse_items(&self.received)?;
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

/// Replays one transcript against a fresh [`TestServer`] configured by its `@server`
/// options. Illustrative transcripts (`busy`, `fault=…`) cannot be forced on a server and are
/// refused with an error; check [`Transcript::is_illustrative`] first.
pub fn replay(t: &Transcript) -> Result<(), ReplayError> {
    let fail = |message: String| ReplayError {
        transcript: t.path.display().to_string(),
        message,
    };
    if t.is_illustrative() {
        return Err(fail("illustrative transcript: not replayable".into()));
    }
    let mut bad_option = None;
    let server = TestServer::with_config(|c| {
        for option in &t.server {
            match option.split_once('=') {
                None if option == "read-only" => c.read_only = true,
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
    for f in &t.files {
        let line = format!("0 {} x\n", f.mtime);
        let mtime = decode_entry(line.as_bytes())
            .map_err(|e| fail(format!("bad @file mtime {:?}: {e}", f.mtime)))?
            .0
            .mtime;
        let mtime = mtime
            .to_system_time()
            .ok_or_else(|| fail(format!("@file mtime {:?} out of range", f.mtime)))?;
        server.write_file_with_mtime(&f.name, &f.content, mtime);
    }

    let stream = TcpStream::connect(server.addr).map_err(|e| fail(format!("connect: {e}")))?;
    let mut player = Player {
        stream,
        received: Vec::new(),
        eof: false,
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
    drop(player);
    server.stop().map_err(|e| fail(format!("server: {e}")))?;
    Ok(())
}

/// Replays every replayable transcript of `dir`; returns how many ran and the failures.
pub fn replay_examples(dir: &Path) -> (usize, Vec<ReplayError>) {
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
        if let Err(e) = replay(t) {
            failures.push(e);
        }
    }
    (ran, failures)
}
