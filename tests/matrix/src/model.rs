//! The in-memory model: the served folder (names, contents, which MTIMEs are known) and the
//! session state (connected, *first*), and for every op the messages a conforming server
//! sends. Expectations come from `spec/protocol.md` through [`crate::oracle`], not from the
//! servers' code.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_wire::{Digest, PutFlow, PutMode};

use crate::content::Content;
use crate::exec::{Executor, Msg, err_code};
use crate::ops::{Ending, Name, Op, ServerConfig, Session};
use crate::oracle::{self, Class, closes, escape};
use crate::{FIXTURE_MTIME, FIXTURE_MTIME_TEXT};

/// The greeting for `cfg`, parameters sorted (see [`crate::normalize::greeting`]).
pub fn greeting(cfg: &ServerConfig) -> String {
    format!(
        "ferry/1 idle=300 max-chunk=1048576 max-eager={} max-line=4096 max-name=255 max-size={} min-rate={} stall=60",
        cfg.max_eager,
        cfg.max_size,
        ferry_wire::limits::DEFAULT_MIN_RATE
    )
}

/// What the model knows of a file's MTIME.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mtime {
    /// A fixture: exactly [`FIXTURE_MTIME_TEXT`].
    Fixture,
    /// Committed during the session: between the start of the case and now.
    InSession,
}

/// A file of the served folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct File {
    /// Its content.
    pub content: Content,
    /// Its MTIME.
    pub mtime: Mtime,
}

/// An expected message.
#[derive(Clone, PartialEq, Eq)]
pub enum Exp {
    /// The greeting.
    Greeting,
    /// This exact line.
    Line(String),
    /// `err CODE [any text]`.
    Err(u16),
    /// `ok get SIZE MTIME`.
    GetOk(u64, Mtime),
    /// A `dir` entry.
    Entry(u64, Mtime, Vec<u8>),
    /// A payload carrying these octets, ended by `end` with the digest of the whole file.
    Payload(Content, u64),
    /// The end of the connection.
    Eof,
}

impl fmt::Debug for Exp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exp::Greeting => f.write_str("S: ⟪greeting⟫"),
            Exp::Line(l) => write!(f, "S: {l}"),
            Exp::Err(c) => write!(f, "S: err {c} …"),
            Exp::GetOk(size, m) => write!(f, "S: ok get {size} {}", mtime_text(*m)),
            Exp::Entry(size, m, name) => {
                write!(f, "S: {size} {} {}", mtime_text(*m), escape(name))
            }
            Exp::Payload(c, offset) => write!(
                f,
                "S: ⟪payload: octets {offset}.. of {c:?}⟫ end {}",
                Digest::of(&c.bytes())
            ),
            Exp::Eof => f.write_str("S. ⟪server closes the connection⟫"),
        }
    }
}

fn mtime_text(m: Mtime) -> &'static str {
    match m {
        Mtime::Fixture => FIXTURE_MTIME_TEXT,
        Mtime::InSession => "⟪commit time⟫",
    }
}

/// The model of the served folder and of the session.
#[derive(Debug, Clone)]
pub struct Model {
    /// The files, in bytewise order of their names (DIR-4).
    pub files: BTreeMap<Vec<u8>, File>,
    cfg: ServerConfig,
    connected: bool,
    first: bool,
    started: SystemTime,
}

impl Model {
    /// A model of the session's server with its fixtures.
    pub fn new(session: &Session) -> Self {
        let files = session
            .fixtures
            .iter()
            .map(|(n, c)| {
                (
                    n.clone(),
                    File {
                        content: *c,
                        mtime: Mtime::Fixture,
                    },
                )
            })
            .collect();
        Self {
            files,
            cfg: session.config,
            connected: false,
            first: true,
            started: SystemTime::now(),
        }
    }

    /// Whether the model expects an open connection.
    pub fn connected(&self) -> bool {
        self.connected
    }

    /// Applies `op` and returns the messages a conforming server sends for it.
    pub fn expect(&mut self, op: &Op) -> Vec<Exp> {
        let mut out = Vec::new();
        match op {
            Op::Drop => {
                self.connected = false;
                return out;
            }
            Op::Side(side) => return self.side(side),
            Op::Trickle(inner) | Op::Crlf(inner) => return self.expect(inner),
            _ => {}
        }
        if !self.connected {
            self.connected = true;
            self.first = true;
            out.push(Exp::Greeting);
        }
        match op {
            Op::Batch(ops) | Op::BatchEof(ops) => {
                for op in ops {
                    if !self.connected {
                        break;
                    }
                    self.request(op, &mut out);
                }
                if matches!(op, Op::BatchEof(_)) && self.connected {
                    // CLOSE-4, CLOSE-5: every complete request answered, no `bye`, closed.
                    out.push(Exp::Eof);
                    self.connected = false;
                }
            }
            Op::Interleaved { put, side } => self.interleaved(put, side, &mut out),
            op => self.request(op, &mut out),
        }
        out
    }

    /// An op on a second connection: its own greeting and *first* flag.
    fn side(&mut self, op: &Op) -> Vec<Exp> {
        let saved = (self.connected, self.first);
        self.connected = false;
        let out = self.expect(op);
        (self.connected, self.first) = saved;
        out
    }

    /// A put with `side` run in the middle of its payload.
    fn interleaved(&mut self, put: &Op, side: &Op, out: &mut Vec<Exp>) {
        let Op::Put {
            mode,
            flow,
            name,
            content,
            ..
        } = put
        else {
            return self.request(put, out);
        };
        self.first = false;
        if *flow == PutFlow::Now && self.over_eager(content.size()) {
            out.extend(self.side(side));
            return self.close_with(out, 502);
        }
        let refusal = self.refusal(*mode, name, content);
        match (flow, refusal) {
            (PutFlow::Wait, Some(code)) => return out.push(Exp::Err(code)),
            (PutFlow::Wait, None) => out.push(Exp::Line("go".into())),
            (PutFlow::Now, _) => {}
        }
        out.extend(self.side(side));
        // PUT-13: a `new` put fails at the commit if the name was taken meanwhile (for an
        // eager put the server may notice it at the check instead: 512 either way).
        let refusal = refusal.or_else(|| self.refusal(*mode, name, content));
        match refusal {
            Some(code) => out.push(Exp::Err(code)),
            None => self.commit(name, content, out),
        }
    }

    /// PUT-8: flow `now` with SIZE over `max-eager`, or `max-eager` 0.
    fn over_eager(&self, size: u64) -> bool {
        size > self.cfg.max_eager || self.cfg.max_eager == 0
    }

    /// The first failing check of PUT-2, in its order (the server has space).
    fn refusal(&self, mode: PutMode, name: &Name, content: &Content) -> Option<u16> {
        if !name.is_valid() {
            Some(510)
        } else if self.cfg.read_only {
            Some(514)
        } else if content.size() > self.cfg.max_size {
            Some(513)
        } else if mode == PutMode::New && self.files.contains_key(&name.0) {
            Some(512)
        } else {
            None
        }
    }

    fn commit(&mut self, name: &Name, content: &Content, out: &mut Vec<Exp>) {
        out.push(Exp::Line(format!(
            "ok put {} {}",
            content.size(),
            Digest::of(&content.bytes())
        )));
        self.files.insert(
            name.0.clone(),
            File {
                content: *content,
                mtime: Mtime::InSession,
            },
        );
    }

    fn close_with(&mut self, out: &mut Vec<Exp>, code: u16) {
        out.push(Exp::Err(code));
        if closes(code) {
            out.push(Exp::Eof);
            self.connected = false;
        }
    }

    /// One request on an open connection.
    fn request(&mut self, op: &Op, out: &mut Vec<Exp>) {
        let was_first = std::mem::replace(&mut self.first, false);
        match op {
            Op::Dir => {
                out.push(Exp::Line(format!("ok dir {}", self.files.len())));
                for (name, f) in &self.files {
                    out.push(Exp::Entry(f.content.size(), f.mtime, name.clone()));
                }
            }
            Op::Close => {
                out.push(Exp::Line("bye".into()));
                out.push(Exp::Eof);
                self.connected = false;
            }
            Op::Version(n) => {
                if !was_first {
                    out.push(Exp::Err(500));
                } else if *n == 1 {
                    out.push(Exp::Line("ok version 1".into()));
                } else {
                    out.push(Exp::Err(503));
                }
            }
            Op::Get { offset, name } => {
                if !name.is_valid() {
                    out.push(Exp::Err(510));
                } else if let Some(f) = self.files.get(&name.0) {
                    if *offset > f.content.size() {
                        out.push(Exp::Err(515));
                    } else {
                        out.push(Exp::GetOk(f.content.size(), f.mtime));
                        out.push(Exp::Payload(f.content, *offset));
                    }
                } else {
                    out.push(Exp::Err(511));
                }
            }
            Op::Garbage(_) | Op::Long { .. } => {
                let line = op_line(op);
                match oracle::classify(&line).0 {
                    Class::Err(code) => self.close_with(out, code),
                    // A `wait` put line whose name is too long: refused, no payload.
                    Class::Put {
                        now: false,
                        name_ok: false,
                        ..
                    } => out.push(Exp::Err(510)),
                    other => panic!("the generator made a valid request: {other:?}"),
                }
            }
            Op::PutHuge { size, flow, name } => {
                if *flow == PutFlow::Now && self.over_eager(*size) {
                    // PUT-8, before any check of PUT-2.
                    return self.close_with(out, 502);
                }
                let code = if !name.is_valid() {
                    510
                } else if self.cfg.read_only {
                    514
                } else if *size > self.cfg.max_size {
                    513
                } else {
                    unreachable!("PutHuge is over max-size")
                };
                out.push(Exp::Err(code));
            }
            Op::Put {
                mode,
                flow,
                name,
                content,
                ending,
                ..
            } => self.put(*mode, *flow, name, content, *ending, out),
            Op::Drop
            | Op::Batch(_)
            | Op::BatchEof(_)
            | Op::Side(_)
            | Op::Trickle(_)
            | Op::Crlf(_)
            | Op::Interleaved { .. } => {
                unreachable!("handled by expect")
            }
        }
    }

    fn put(
        &mut self,
        mode: PutMode,
        flow: PutFlow,
        name: &Name,
        content: &Content,
        ending: Ending,
        out: &mut Vec<Exp>,
    ) {
        let disconnect = matches!(ending, Ending::Disconnect { .. });
        if flow == PutFlow::Now && self.over_eager(content.size()) {
            // PUT-8: 502 before any check; after a disconnect nothing is read.
            if disconnect {
                self.connected = false;
            } else {
                self.close_with(out, 502);
            }
            return;
        }
        // PUT-2, in order.
        let refusal = self.refusal(mode, name, content);
        match (flow, refusal) {
            (PutFlow::Wait, Some(code)) => {
                out.push(Exp::Err(code));
                if disconnect {
                    self.connected = false;
                }
                return;
            }
            (PutFlow::Wait, None) => out.push(Exp::Line("go".into())),
            (PutFlow::Now, _) => {}
        }
        match ending {
            Ending::Disconnect { .. } => self.connected = false,
            Ending::Framing(_) => self.close_with(out, 502),
            _ if refusal.is_some() => out.push(Exp::Err(refusal.unwrap_or_default())),
            Ending::Corrupt => out.push(Exp::Err(433)),
            Ending::Abort => out.push(Exp::Err(434)),
            Ending::End => self.commit(name, content, out),
        }
    }

    /// Checks received messages against expected ones.
    pub fn check(&self, got: &[Msg], want: &[Exp]) -> Result<(), String> {
        let mut content_cache: Option<(Content, Vec<u8>)> = None;
        for i in 0..got.len().max(want.len()) {
            let (g, w) = match (got.get(i), want.get(i)) {
                (Some(g), Some(w)) => (g, w),
                (g, w) => {
                    return Err(format!(
                        "message {i}: got {g:?}, expected {w:?}",
                        g = g.map_or("nothing".to_owned(), |m| format!("{m:?}")),
                        w = w.map_or("nothing".to_owned(), |e| format!("{e:?}"))
                    ));
                }
            };
            let ok = match (g, w) {
                (Msg::Greeting(l), Exp::Greeting) => {
                    crate::normalize::greeting(l) == Some(greeting(&self.cfg))
                }
                (Msg::Line(l), Exp::Line(s)) => l == s.as_bytes(),
                (Msg::Line(l), Exp::Err(c)) => err_code(l) == Some(*c),
                (Msg::Line(l), Exp::GetOk(size, m)) => {
                    let t = String::from_utf8_lossy(l);
                    let f: Vec<&str> = t.split(' ').collect();
                    f.len() == 4
                        && f[..2] == ["ok", "get"]
                        && f[2] == size.to_string()
                        && self.mtime_ok(f[3], *m)
                }
                (Msg::Line(l), Exp::Entry(size, m, name)) => {
                    let mut it = l.splitn(3, |&b| b == b' ');
                    let (s, t, n) = (it.next(), it.next(), it.next());
                    s == Some(size.to_string().as_bytes())
                        && t.is_some_and(|t| self.mtime_ok(&String::from_utf8_lossy(t), *m))
                        && n == Some(&name[..])
                }
                (Msg::Payload { data, trailer }, Exp::Payload(c, offset)) => {
                    let bytes = match &content_cache {
                        Some((cc, b)) if cc == c => b,
                        _ => &content_cache.insert((*c, c.bytes())).1,
                    };
                    let from = (*offset as usize).min(bytes.len());
                    *data == bytes[from..]
                        && *trailer == format!("end {}", Digest::of(bytes)).into_bytes()
                }
                (Msg::Eof, Exp::Eof) => true,
                _ => false,
            };
            if !ok {
                return Err(format!("message {i}: got {g:?}, expected {w:?}"));
            }
        }
        Ok(())
    }

    fn mtime_ok(&self, text: &str, m: Mtime) -> bool {
        match m {
            Mtime::Fixture => text == FIXTURE_MTIME_TEXT,
            Mtime::InSession => {
                let Some(t) = parse_mtime(text) else {
                    return false;
                };
                let lo = self.started - Duration::from_secs(2);
                let hi = SystemTime::now() + Duration::from_secs(2);
                lo <= t && t <= hi
            }
        }
    }

    /// Checks the served folder on disk: the same names and sizes as the model (the
    /// staging area aside); with `contents`, the same octets too.
    pub fn check_disk(&self, root: &Path, contents: bool) -> Result<(), String> {
        let mut on_disk = BTreeMap::new();
        for e in std::fs::read_dir(root).map_err(|e| format!("read_dir: {e}"))? {
            let e = e.map_err(|e| e.to_string())?;
            let name = e.file_name().into_encoded_bytes();
            if name == crate::STAGING.as_bytes() {
                continue;
            }
            let len = e.metadata().map_err(|e| e.to_string())?.len();
            on_disk.insert(name, len);
        }
        let model: BTreeMap<Vec<u8>, u64> = self
            .files
            .iter()
            .map(|(n, f)| (n.clone(), f.content.size()))
            .collect();
        if on_disk != model {
            let show = |m: &BTreeMap<Vec<u8>, u64>| {
                m.iter()
                    .map(|(n, s)| format!("{} ({s})", escape(n)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(format!(
                "served folder holds [{}], the model [{}]",
                show(&on_disk),
                show(&model)
            ));
        }
        if contents {
            for (name, f) in &self.files {
                let path = root.join(std::str::from_utf8(name).map_err(|e| e.to_string())?);
                let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                if data != f.content.bytes() {
                    return Err(format!("{} differs from {:?}", escape(name), f.content));
                }
            }
        }
        Ok(())
    }
}

/// The octets an op sends on its connection (request lines).
fn op_line(op: &Op) -> Vec<u8> {
    match op {
        Op::Garbage(g) => [&g[..], b"\n"].concat(),
        Op::Long { prefix, fill, crlf } => {
            let mut v = prefix.as_bytes().to_vec();
            v.resize(v.len() + fill, b'x');
            if *crlf {
                v.push(b'\r');
            }
            v.push(b'\n');
            v
        }
        _ => Vec::new(),
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_mtime(text: &str) -> Option<SystemTime> {
    let line = format!("0 {text} x\n");
    let (entry, _) = ferry_wire::decode_entry(line.as_bytes()).ok()?;
    entry.mtime.to_system_time()
}

/// The fixture time as a `SystemTime`.
pub fn fixture_time() -> SystemTime {
    UNIX_EPOCH + FIXTURE_MTIME
}

/// Runs a session against the server at `addr` serving `root`, checking every op's
/// messages against the model and the served folder after every op. Returns a transcript
/// of the run for messages.
pub fn run_checked(
    session: &Session,
    addr: std::net::SocketAddr,
    root: &Path,
) -> Result<(), String> {
    let mut model = Model::new(session);
    let mut exec = Executor::new(addr);
    let mut log = String::new();
    for (i, op) in session.ops.iter().enumerate() {
        let want = model.expect(op);
        let got = exec
            .run(op)
            .map_err(|e| format!("op {i} {op:?}: {e}\n{log}"))?;
        log.push_str(&format!("  {i:>3}  C: {op:?}\n"));
        for m in &got {
            log.push_str(&format!("         {m:?}\n"));
        }
        model
            .check(&got, &want)
            .map_err(|e| format!("op {i} ({op:?}): {e}\nsession so far:\n{log}"))?;
        if exec.is_connected() != model.connected() {
            return Err(format!(
                "op {i}: connection open: {}, the model says {}\n{log}",
                exec.is_connected(),
                model.connected()
            ));
        }
        model
            .check_disk(root, false)
            .map_err(|e| format!("after op {i}: {e}\n{log}"))?;
    }
    drop(exec);
    model
        .check_disk(root, true)
        .map_err(|e| format!("at the end: {e}\n{log}"))
}
