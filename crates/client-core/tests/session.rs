//! The client session in memory: paired with the server core (`ferry_proto::memory`) or with
//! scripted server octets, on a virtual clock. No socket, no file, no sleep: every timeout is
//! met exactly at its deadline.

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

use ferry_client_core::session::{Action, ClientSession, OpId, Outcome};
use ferry_client_core::{ClientError, ClientOptions, PutOptions, RateTooLow, ViolationKind};
use ferry_proto::memory::Harness;
use ferry_proto::server::SessionConfig;
use ferry_wire::{Code, Digest, FileName, Greeting, Hasher, Limits, PutFlow, PutMode};

fn greeting(max_eager: u64) -> Vec<u8> {
    Greeting::new(Limits {
        max_eager,
        max_size: 10_000_000,
        ..Limits::default()
    })
    .to_bytes()
}

fn config(max_eager: u64) -> SessionConfig {
    SessionConfig {
        max_size: 10_000_000,
        max_eager,
        ..ferry_proto::memory::test_config(&greeting(max_eager))
    }
}

fn options() -> ClientOptions {
    ClientOptions {
        read_timeout: Some(Duration::from_secs(10)),
        write_timeout: Some(Duration::from_secs(20)),
        ..ClientOptions::default()
    }
}

fn name(s: &str) -> FileName {
    FileName::new(s).expect("a valid name")
}

/// The local side of the driver: sinks and sources in memory.
#[derive(Default)]
struct Local {
    sinks: HashMap<OpId, Vec<u8>>,
    sources: HashMap<OpId, (Vec<u8>, usize)>,
    /// A source that fails to read with this error kind after this many octets.
    failing: HashMap<OpId, usize>,
    /// Sources that report a change at the end.
    changed: Vec<OpId>,
    /// A sink that fails to open or write.
    bad_sinks: Vec<OpId>,
    done: HashMap<OpId, Result<Outcome, ClientError>>,
    progress: Vec<(OpId, u64, u64)>,
    disconnected: bool,
}

impl Local {
    fn act(&mut self, c: &mut ClientSession, action: Action) {
        match action {
            Action::OpenSink { id, .. } => {
                if self.bad_sinks.contains(&id) {
                    c.sink_opened(Err(io::Error::other("cannot open")));
                } else {
                    self.sinks.insert(id, Vec::new());
                    c.sink_opened(Ok(()));
                }
            }
            Action::WriteSink { id } => {
                let data = c.sink_data().to_vec();
                match self.sinks.get_mut(&id) {
                    Some(s) => {
                        s.extend_from_slice(&data);
                        c.sink_written(Ok(()));
                    }
                    None => c.sink_written(Err(io::Error::other("no sink"))),
                }
            }
            Action::ReadSource { id, len } => {
                if let Some(&at) = self.failing.get(&id)
                    && self.sources.get(&id).is_some_and(|s| s.1 >= at)
                {
                    c.source_read(Err(io::Error::new(io::ErrorKind::PermissionDenied, "nope")));
                    return;
                }
                let (data, pos) = self.sources.get_mut(&id).expect("a source");
                let n = len.min(data.len() - *pos);
                c.source_space()[..n].copy_from_slice(&data[*pos..*pos + n]);
                *pos += n;
                c.source_read(Ok(n));
            }
            Action::CheckSource { id } => c.source_checked(Ok(!self.changed.contains(&id))),
            Action::Progress { id, done, total } => self.progress.push((id, done, total)),
            Action::Done { id, result } => {
                self.done.insert(id, result);
            }
            Action::Disconnect => self.disconnected = true,
            Action::Io { .. } | Action::Idle => unreachable!("handled by the pair"),
        }
    }
}

/// A client session and the server core, wired together in memory.
struct Pair {
    c: ClientSession,
    h: Harness,
    /// Octets of `h.sent` the client has read.
    read: usize,
    /// How many more octets the server accepts (None: all).
    window: Option<usize>,
    /// The server's octets are delivered to the client (false: held back).
    deliver: bool,
    local: Local,
    /// The deadline of the client's last wait.
    deadline: Option<Instant>,
}

impl Pair {
    fn new(cfg: SessionConfig, options: ClientOptions) -> Self {
        let h = Harness::new(cfg);
        let c = ClientSession::new(options, h.now);
        let mut p = Self {
            c,
            h,
            read: 0,
            window: None,
            deliver: true,
            local: Local::default(),
            deadline: None,
        };
        p.run();
        assert!(
            matches!(p.local.done.remove(&OpId(0)), Some(Ok(Outcome::Connected))),
            "greeting"
        );
        p
    }

    /// Runs both sides until neither can go on without time passing.
    fn run(&mut self) -> &mut Self {
        self.deadline = None;
        loop {
            self.h.run();
            let server_closed = self.h.finished().is_some() || self.h.draining();
            let action = self.c.poll(self.h.now);
            match action {
                Action::Io {
                    send,
                    receive,
                    deadline,
                } => {
                    let mut moved = false;
                    if send {
                        let out = self.c.output();
                        let n = self.window.map_or(out.len(), |w| w.min(out.len()));
                        if n > 0 {
                            self.h.inbox.extend_from_slice(&out[..n]);
                            if let Some(w) = &mut self.window {
                                *w -= n;
                            }
                            self.c.sent(n);
                            moved = true;
                        }
                    }
                    if receive && self.deliver {
                        let pending = &self.h.sent[self.read..];
                        if !pending.is_empty() {
                            let space = self.c.input_space();
                            let n = space.len().min(pending.len());
                            space[..n].copy_from_slice(&pending[..n]);
                            self.read += n;
                            self.c.received(n);
                            moved = true;
                        } else if server_closed {
                            self.c.eof();
                            moved = true;
                        }
                    }
                    if !moved {
                        self.deadline = deadline;
                        // The server may still have work (input just delivered).
                        self.h.run();
                        let more = self.deliver
                            && (self.h.sent.len() > self.read
                                || self.h.finished().is_some()
                                || self.h.draining());
                        if !(receive && more) {
                            return self;
                        }
                    }
                }
                Action::Idle => return self,
                Action::Disconnect => {
                    self.local.disconnected = true;
                    self.h.eof = true;
                }
                other => self.local.act(&mut self.c, other),
            }
        }
    }

    /// Lets `d` pass on both sides; waits whose deadline passed time out.
    fn wait(&mut self, d: Duration) -> &mut Self {
        self.h.wait(d);
        if self.deadline.is_some_and(|t| t <= self.h.now) {
            self.deadline = None;
            self.c.timed_out(self.h.now);
        }
        self.run()
    }

    fn result(&mut self, id: OpId) -> Result<Outcome, ClientError> {
        self.local.done.remove(&id).expect("the operation is done")
    }

    fn get(&mut self, n: &str) -> (Result<Outcome, ClientError>, Vec<u8>) {
        let id = self.c.get(name(n), 0, Hasher::new());
        self.run();
        let data = self.local.sinks.remove(&id).unwrap_or_default();
        (self.result(id), data)
    }

    fn put(
        &mut self,
        n: &str,
        data: &[u8],
        opts: &PutOptions,
    ) -> (OpId, Result<Outcome, ClientError>) {
        let id = self.c.put(name(n), data.len() as u64, opts, None);
        self.local.sources.insert(id, (data.to_vec(), 0));
        self.run();
        (id, self.result(id))
    }
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

// ------------------------------------------------------------ with the core ---

#[test]
fn dir_lists_the_folder() {
    let mut p = Pair::new(config(100), options());
    p.h.files.insert("b".into(), b"bb".to_vec());
    p.h.files.insert("a".into(), b"a".to_vec());
    let id = p.c.dir();
    p.run();
    let Ok(Outcome::Listing(l)) = p.result(id) else {
        panic!("a listing")
    };
    let names: Vec<_> = l
        .entries
        .iter()
        .map(|e| (e.name.to_string(), e.size))
        .collect();
    assert_eq!(names, [("a".to_owned(), 1), ("b".to_owned(), 2)]);
    assert!(p.c.is_idle() && p.c.is_open());
}

#[test]
fn get_delivers_large_files_in_chunks_and_verifies_them() {
    let mut p = Pair::new(config(100), options());
    let content = data(2_500_000);
    p.h.files.insert("big".into(), content.clone());
    let (r, got) = p.get("big");
    let Ok(Outcome::Got { size, digest, .. }) = r else {
        panic!("{r:?}")
    };
    assert_eq!((size, digest), (2_500_000, Digest::of(&content)));
    assert!(got == content);
    let last = p.local.progress.last().copied();
    assert_eq!(last.map(|(_, d, t)| (d, t)), Some((2_500_000, 2_500_000)));
}

#[test]
fn get_of_a_missing_file_is_refused_and_the_session_goes_on() {
    let mut p = Pair::new(config(100), options());
    let (r, _) = p.get("nope");
    assert_eq!(r.expect_err("511").code(), Some(Code::NOT_FOUND));
    assert!(p.c.is_open());
    p.h.files.insert("x".into(), b"x".to_vec());
    assert!(p.get("x").0.is_ok());
}

#[test]
fn resume_asks_for_the_tail_and_checks_the_whole_file() {
    let mut p = Pair::new(config(100), options());
    let content = data(1000);
    p.h.files.insert("f".into(), content.clone());
    let mut prefix = Hasher::new();
    prefix.update(&content[..600]);
    let id = p.c.get(name("f"), 600, prefix);
    p.run();
    assert!(matches!(p.result(id), Ok(Outcome::Got { size: 1000, .. })));
    assert!(p.local.sinks[&id] == content[600..]);
    // A prefix that is not the file's: the whole-file digest fails.
    let mut wrong = Hasher::new();
    wrong.update(&[0; 600]);
    let id = p.c.get(name("f"), 600, wrong);
    p.run();
    assert!(matches!(p.result(id), Err(ClientError::Corrupt { .. })));
    assert!(p.c.is_open(), "a corrupt download does not end the session");
    // Beyond the end: 515.
    let id = p.c.get(name("f"), 2000, Hasher::new());
    p.run();
    assert_eq!(
        p.result(id).expect_err("515").code(),
        Some(Code::BAD_OFFSET)
    );
}

#[test]
fn eager_and_waiting_puts_store_the_file() {
    let mut p = Pair::new(config(100), options());
    let small = data(100);
    let (_, r) = p.put("small", &small, &PutOptions::default());
    let Ok(Outcome::Put(report)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(report.flow, PutFlow::Now);
    assert_eq!(p.h.files.get("small"), Some(&small));

    let large = data(1_500_000);
    let (id, r) = p.put("large", &large, &PutOptions::default());
    let Ok(Outcome::Put(report)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        (report.flow, report.digest),
        (PutFlow::Wait, Digest::of(&large))
    );
    assert_eq!(p.h.files.get("large"), Some(&large));
    let chunks: Vec<_> = p
        .local
        .progress
        .iter()
        .filter(|x| x.0 == id)
        .map(|x| x.1)
        .collect();
    assert_eq!(chunks, [1_048_576, 1_500_000]);

    let off = PutOptions {
        eager: false,
        mode: PutMode::Replace,
    };
    let (_, r) = p.put("small", b"", &off);
    let Ok(Outcome::Put(report)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(report.flow, PutFlow::Wait);
    assert_eq!(p.h.files.get("small"), Some(&Vec::new()));
}

#[test]
fn a_refused_waiting_put_sends_no_payload() {
    let cfg = SessionConfig {
        read_only: true,
        ..config(0)
    };
    let mut p = Pair::new(cfg, options());
    let (id, r) = p.put("a", b"new", &PutOptions::default());
    assert_eq!(r.expect_err("514").code(), Some(Code::READ_ONLY));
    assert!(!p.local.progress.iter().any(|x| x.0 == id));
    assert!(!p.h.text().contains("data"));
    assert!(p.c.is_open());
}

#[test]
fn a_source_that_shrinks_or_fails_aborts_the_upload() {
    let mut p = Pair::new(config(100), options());
    // Announced 10, the source holds 4: abort 430, the server answers 434.
    let id = p.c.put(name("a"), 10, &PutOptions::default(), None);
    p.local.sources.insert(id, (b"abcd".to_vec(), 0));
    p.run();
    let r = p.result(id);
    assert!(
        matches!(&r, Err(ClientError::Local { source, .. }) if source.kind() == io::ErrorKind::UnexpectedEof),
        "{r:?}"
    );
    let id = p.c.put(name("b"), 3, &PutOptions::default(), None);
    p.local.sources.insert(id, (b"abc".to_vec(), 0));
    p.local.failing.insert(id, 0);
    p.run();
    assert!(matches!(p.result(id), Err(ClientError::Local { .. })));
    let id = p.c.put(name("c"), 3, &PutOptions::default(), None);
    p.local.sources.insert(id, (b"abc".to_vec(), 0));
    p.local.changed.push(id);
    p.run();
    assert!(matches!(p.result(id), Err(ClientError::Local { .. })));
    assert!(p.h.files.is_empty(), "nothing stored");
    assert!(p.c.is_open());
    assert_eq!(p.h.replies(), "err 434 aborted\n".repeat(3));
}

#[test]
fn batches_pipeline_their_requests_and_keep_the_order_of_results() {
    let mut p = Pair::new(config(1000), options());
    for (n, d) in [("a", "A"), ("c", "CC")] {
        p.h.files.insert(n.into(), d.as_bytes().to_vec());
    }
    let ids: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| p.c.get(name(n), 0, Hasher::new()))
        .collect();
    // All three requests leave before any reply is read.
    let Action::Io { send: true, .. } = p.c.poll(p.h.now) else {
        panic!("sends first")
    };
    assert_eq!(p.c.output(), b"get 0 a\nget 0 b\nget 0 c\n");
    p.run();
    assert!(matches!(p.result(ids[0]), Ok(Outcome::Got { size: 1, .. })));
    assert_eq!(
        p.result(ids[1]).expect_err("511").code(),
        Some(Code::NOT_FOUND)
    );
    assert!(matches!(p.result(ids[2]), Ok(Outcome::Got { size: 2, .. })));

    let ids: Vec<_> = (0..5)
        .map(|i| {
            let id =
                p.c.put(name(&format!("p{i}")), 3, &PutOptions::default(), None);
            p.local
                .sources
                .insert(id, (format!("p{i}!").into_bytes()[..3].to_vec(), 0));
            id
        })
        .collect();
    p.run();
    for id in ids {
        assert!(matches!(p.result(id), Ok(Outcome::Put(_))));
    }
    assert_eq!(p.h.files.len(), 7);
}

#[test]
fn a_waiting_put_holds_back_what_follows_until_go() {
    let mut p = Pair::new(config(0), options());
    p.window = Some(0);
    let put = p.c.put(name("w"), 3, &PutOptions::default(), None);
    p.local.sources.insert(put, (b"www".to_vec(), 0));
    let dir = p.c.dir();
    let Action::Io { send: true, .. } = p.c.poll(p.h.now) else {
        panic!("sends")
    };
    assert_eq!(
        p.c.output(),
        b"put 3 new wait w\n",
        "nothing after the waiting put"
    );
    p.window = None;
    p.run();
    assert!(matches!(p.result(put), Ok(Outcome::Put(_))));
    assert!(matches!(p.result(dir), Ok(Outcome::Listing(_))));
}

#[test]
fn close_gets_bye_and_ends_the_session() {
    let mut p = Pair::new(config(100), options());
    let id = p.c.close();
    p.run();
    assert!(matches!(p.result(id), Ok(Outcome::Bye)));
    assert!(!p.c.is_open());
    let later = p.c.dir();
    p.run();
    assert!(matches!(p.result(later), Err(ClientError::Disconnected(_))));
}

#[test]
fn a_sink_that_fails_drops_the_rest_and_the_session_goes_on() {
    let mut p = Pair::new(config(100), options());
    p.h.files.insert("f".into(), data(3000));
    let id = p.c.get(name("f"), 0, Hasher::new());
    p.local.bad_sinks.push(id);
    p.run();
    assert!(matches!(p.result(id), Ok(Outcome::Discarded(_))));
    assert!(p.c.is_open());
    assert!(p.get("f").0.is_ok());
}

#[test]
fn an_upload_altered_in_flight_is_refused_as_corrupt() {
    let mut p = Pair::new(config(100), options());
    let id = p.c.put(name("x"), 5, &PutOptions::default(), None);
    p.local.sources.insert(id, (b"hello".to_vec(), 0));
    // The request, chunk and trailer leave in one write; one octet is altered on the way.
    let mut action = p.c.poll(p.h.now);
    while !matches!(action, Action::Io { .. }) {
        p.local.act(&mut p.c, action);
        action = p.c.poll(p.h.now);
    }
    let mut out = p.c.output().to_vec();
    assert!(
        out.starts_with(b"put 5 new now x\ndata 5\nhello\nend ")
            || out.starts_with(b"put 5 new now x\ndata 5\nhelloend ")
    );
    let pos = out.windows(5).position(|w| w == b"hello").expect("payload");
    out[pos] = b'j';
    p.h.inbox.extend_from_slice(&out);
    p.c.sent(out.len());
    p.run();
    assert_eq!(
        p.result(id).expect_err("corrupt").code(),
        Some(Code::CORRUPT)
    );
    assert!(p.h.files.is_empty());
    assert!(p.c.is_open());
}

// ----------------------------------------------------------------- timeouts ---

#[test]
fn the_read_timeout_fires_exactly_at_its_deadline() {
    let mut p = Pair::new(config(100), options());
    p.deliver = false;
    let id = p.c.dir();
    p.run();
    p.wait(Duration::from_secs(10) - Duration::from_nanos(1));
    assert!(!p.local.done.contains_key(&id), "not before the deadline");
    p.wait(Duration::from_nanos(1));
    let r = p.result(id);
    assert!(
        matches!(&r, Err(ClientError::Io(e)) if e.kind() == io::ErrorKind::TimedOut),
        "{r:?}"
    );
    assert!(!p.c.is_open() && p.local.disconnected);
}

#[test]
fn the_read_timeout_restarts_with_every_octet() {
    // The read timeout alone: 9 octets in 18 s is far below the minimum rate.
    let opts = ClientOptions {
        min_rate: 0,
        ..options()
    };
    let mut s = Script::with(&greeting(100), opts);
    let id = s.c.dir();
    s.run();
    s.wait(Duration::from_secs(9));
    s.server(b"ok dir 1\n");
    s.wait(Duration::from_secs(9));
    assert!(
        !s.local.done.contains_key(&id),
        "the clock restarted with the reply"
    );
    s.wait(Duration::from_secs(1));
    let r = s.result(id);
    assert!(
        matches!(&r, Err(ClientError::Io(e)) if e.kind() == io::ErrorKind::TimedOut),
        "{r:?}"
    );
}

#[test]
fn the_write_timeout_fires_exactly_at_its_deadline() {
    let mut p = Pair::new(config(100), options());
    p.window = Some(0);
    let id = p.c.dir();
    p.run();
    p.wait(Duration::from_secs(19));
    assert!(!p.local.done.contains_key(&id));
    p.wait(Duration::from_secs(1));
    let r = p.result(id);
    assert!(
        matches!(&r, Err(ClientError::Io(e)) if e.kind() == io::ErrorKind::TimedOut),
        "{r:?}"
    );
}

#[test]
fn without_timeouts_the_client_waits_forever() {
    let opts = ClientOptions {
        read_timeout: None,
        write_timeout: None,
        ..options()
    };
    let mut p = Pair::new(config(100), opts);
    p.deliver = false;
    let id = p.c.dir();
    p.run();
    assert_eq!(p.deadline, None);
    p.wait(Duration::from_secs(100_000));
    assert!(!p.local.done.contains_key(&id));
}

#[test]
fn the_servers_idle_timeout_ends_the_session_with_421() {
    let mut p = Pair::new(config(100), options());
    p.wait(Duration::from_secs(300));
    let id = p.c.dir();
    p.run();
    let r = p.result(id);
    // The server's closing error was sent before the request: it is the answer (ERR-9).
    assert_eq!(
        r.expect_err("421").code(),
        Some(Code::TIMEOUT),
        "{:?}",
        p.h.text()
    );
    assert!(!p.c.is_open());
}

// ------------------------------------------------------- scripted server octets ---

/// A client session fed with octets written by hand: what a broken or hostile server sends.
struct Script {
    c: ClientSession,
    now: Instant,
    /// Server octets not yet read by the client.
    pending: Vec<u8>,
    /// What the client sent.
    wire: Vec<u8>,
    closed: bool,
    /// How many more octets the server accepts (None: all).
    window: Option<usize>,
    local: Local,
    deadline: Option<Instant>,
}

impl Script {
    fn new(greeting: &[u8]) -> Self {
        Self::with(greeting, options())
    }

    fn with(greeting: &[u8], options: ClientOptions) -> Self {
        let now = Instant::now();
        let mut s = Self {
            c: ClientSession::new(options, now),
            now,
            pending: greeting.to_vec(),
            wire: Vec::new(),
            closed: false,
            window: None,
            local: Local::default(),
            deadline: None,
        };
        s.run();
        s
    }

    fn server(&mut self, bytes: &[u8]) -> &mut Self {
        self.pending.extend_from_slice(bytes);
        self.run()
    }

    fn close(&mut self) -> &mut Self {
        self.closed = true;
        self.run()
    }

    fn run(&mut self) -> &mut Self {
        self.deadline = None;
        loop {
            match self.c.poll(self.now) {
                Action::Io {
                    send,
                    receive,
                    deadline,
                } => {
                    let mut moved = false;
                    if send {
                        let out = self.c.output();
                        let n = self.window.map_or(out.len(), |w| w.min(out.len()));
                        if n > 0 {
                            self.wire.extend_from_slice(&out[..n]);
                            if let Some(w) = &mut self.window {
                                *w -= n;
                            }
                            self.c.sent(n);
                            moved = true;
                        }
                    }
                    if receive {
                        if !self.pending.is_empty() {
                            let space = self.c.input_space();
                            let n = space.len().min(self.pending.len());
                            space[..n].copy_from_slice(&self.pending[..n]);
                            self.pending.drain(..n);
                            self.c.received(n);
                            moved = true;
                        } else if self.closed {
                            self.c.eof();
                            moved = true;
                        }
                    }
                    if !moved {
                        self.deadline = deadline;
                        return self;
                    }
                }
                Action::Idle => return self,
                other => self.local.act(&mut self.c, other),
            }
        }
    }

    fn wait(&mut self, d: Duration) -> &mut Self {
        self.now += d;
        if self.deadline.is_some_and(|t| t <= self.now) {
            self.c.timed_out(self.now);
        }
        self.run()
    }

    /// Lets `d` pass, then the server sends `bytes`.
    fn later(&mut self, d: Duration, bytes: &[u8]) -> &mut Self {
        self.wait(d);
        self.server(bytes)
    }

    fn result(&mut self, id: OpId) -> Result<Outcome, ClientError> {
        self.local.done.remove(&id).expect("the operation is done")
    }

    fn violation(&mut self, id: OpId) -> ViolationKind {
        match self.result(id) {
            Err(ClientError::Protocol(v)) => {
                assert!(!self.c.is_open(), "a violation ends the session");
                assert!(self.local.disconnected);
                v.kind
            }
            other => panic!("not a violation: {other:?}"),
        }
    }
}

const MTIME: &str = "2024-03-01T08:00:00Z";

fn get_payload(data: &[u8], digest: Digest) -> Vec<u8> {
    let mut out = format!("ok get {} {MTIME}\n", data.len()).into_bytes();
    ferry_wire::encode_payload(data, digest, &mut out);
    out
}

#[test]
fn a_wrong_digest_is_corrupt_and_the_session_goes_on() {
    let mut s = Script::new(&greeting(100));
    let id = s.c.get(name("f"), 0, Hasher::new());
    s.server(&get_payload(b"hello", Digest::of(b"other")));
    assert!(matches!(s.result(id), Err(ClientError::Corrupt { .. })));
    assert!(s.c.is_open());
    assert_eq!(s.wire, b"get 0 f\n");
}

#[test]
fn greetings_that_are_garbage_or_refusals_end_the_session() {
    for (bytes, want) in [
        (
            &b"HTTP/1.1 400 Bad Request\r\n"[..],
            Some(ViolationKind::Greeting),
        ),
        (b"ferry/2 max-line=4096\n", Some(ViolationKind::Greeting)),
        (b"err 420 busy\n", None),
    ] {
        let mut s = Script::new(bytes);
        let r = s.result(OpId(0));
        match want {
            Some(kind) => assert!(
                matches!(&r, Err(ClientError::Protocol(v)) if v.kind == kind),
                "{r:?}"
            ),
            None => assert_eq!(r.expect_err("busy").code(), Some(Code::BUSY)),
        }
        assert!(!s.c.is_open());
        assert!(s.wire.is_empty(), "nothing sent after a bad greeting");
    }
    let mut s = Script::new(b"ferry/1 max-line");
    s.close();
    assert!(matches!(
        s.result(OpId(0)),
        Err(ClientError::Closed {
            outcome_unknown: false
        })
    ));
    let mut s = Script::new(&[b'x'; 5000]);
    assert_eq!(s.violation(OpId(0)), ViolationKind::Greeting);
}

#[test]
fn hostile_replies_are_the_right_violations() {
    let cases: Vec<(&str, Vec<u8>, ViolationKind)> = vec![
        (
            "dir",
            b"ok dir 18446744073709551615\n".to_vec(),
            ViolationKind::Listing,
        ),
        (
            "dir",
            b"ok dir 2\n1 2024-03-01T08:00:00Z b\n1 2024-03-01T08:00:00Z a\n".to_vec(),
            ViolationKind::Listing,
        ),
        (
            "dir",
            b"ok dir 1\nnonsense\n".to_vec(),
            ViolationKind::Malformed,
        ),
        ("dir", b"go\n".to_vec(), ViolationKind::Unexpected),
        (
            "dir",
            b"\x00\xff garbage\n".to_vec(),
            ViolationKind::Malformed,
        ),
        ("dir", vec![b'o'; 5000], ViolationKind::Malformed),
        (
            "get",
            format!("ok get 3 {MTIME}\ndata 5\nhello").into_bytes(),
            ViolationKind::Payload,
        ),
        (
            "get",
            format!("ok get 5 {MTIME}\ndata 2\nhiend 00\n").into_bytes(),
            ViolationKind::Payload,
        ),
        (
            "get",
            format!("ok get 5 {MTIME}\nend {}\n", Digest::of(b"")).into_bytes(),
            ViolationKind::Payload,
        ),
        (
            "get",
            format!("ok get 5 {MTIME}\ndata 0\n").into_bytes(),
            ViolationKind::Payload,
        ),
        (
            "get",
            format!("ok get 5 {MTIME}\ndata 2000000\n").into_bytes(),
            ViolationKind::Payload,
        ),
        (
            "get",
            format!("ok put 5 {}\n", Digest::of(b"")).into_bytes(),
            ViolationKind::Unexpected,
        ),
        (
            "get5",
            format!("ok get 3 {MTIME}\n").into_bytes(),
            ViolationKind::Contradiction,
        ),
        (
            "put",
            format!("ok put 4 {}\n", Digest::of(b"abc")).into_bytes(),
            ViolationKind::Contradiction,
        ),
        (
            "put",
            format!("ok put 3 {}\n", Digest::of(b"xyz")).into_bytes(),
            ViolationKind::Contradiction,
        ),
        ("put", b"go\n".to_vec(), ViolationKind::Unexpected),
        ("put", b"ok dir 0\n".to_vec(), ViolationKind::Unexpected),
        ("close", b"ok dir 0\n".to_vec(), ViolationKind::Unexpected),
    ];
    for (op, bytes, want) in cases {
        let mut s = Script::new(&greeting(100));
        let id = match op {
            "dir" => s.c.dir(),
            "get" => s.c.get(name("f"), 0, Hasher::new()),
            "get5" => s.c.get(name("f"), 5, Hasher::new()),
            "put" => {
                let id = s.c.put(name("f"), 3, &PutOptions::default(), None);
                s.local.sources.insert(id, (b"abc".to_vec(), 0));
                id
            }
            _ => s.c.close(),
        };
        s.run();
        s.server(&bytes);
        assert_eq!(
            s.violation(id),
            want,
            "{op}: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        let later = s.c.dir();
        s.run();
        assert!(matches!(s.result(later), Err(ClientError::Disconnected(_))));
    }
}

#[test]
fn a_huge_announced_size_allocates_nothing_and_ends_as_truncated() {
    let mut s = Script::new(&greeting(100));
    let id = s.c.get(name("f"), 0, Hasher::new());
    s.server(format!("ok get 18446744073709551615 {MTIME}\ndata 5\nhello").as_bytes());
    s.close();
    let r = s.result(id);
    assert!(
        matches!(
            r,
            Err(ClientError::Truncated {
                received: 5,
                expected: u64::MAX
            })
        ),
        "{r:?}"
    );
    assert_eq!(s.local.sinks[&id], b"hello");
}

#[test]
fn eof_after_a_complete_upload_leaves_the_outcome_unknown() {
    let mut s = Script::new(&greeting(100));
    let id = s.c.put(name("f"), 3, &PutOptions::default(), None);
    s.local.sources.insert(id, (b"abc".to_vec(), 0));
    s.run();
    s.close();
    assert!(matches!(
        s.result(id),
        Err(ClientError::Closed {
            outcome_unknown: true
        })
    ));
    let mut s = Script::new(&greeting(0));
    let id = s.c.put(name("f"), 3, &PutOptions::default(), None);
    s.local.sources.insert(id, (b"abc".to_vec(), 0));
    s.run();
    s.close();
    assert!(matches!(
        s.result(id),
        Err(ClientError::Closed {
            outcome_unknown: false
        })
    ));
}

#[test]
fn a_closing_error_ends_the_session_and_fails_what_was_queued() {
    let mut s = Script::new(&greeting(100));
    let a = s.c.get(name("a"), 0, Hasher::new());
    let b = s.c.get(name("b"), 0, Hasher::new());
    let c = s.c.get(name("c"), 0, Hasher::new());
    s.run();
    let mut bytes = get_payload(b"A", Digest::of(b"A"));
    bytes.extend_from_slice(b"err 422 shutting-down\n");
    s.server(&bytes);
    assert!(matches!(s.result(a), Ok(Outcome::Got { .. })));
    assert_eq!(
        s.result(b).expect_err("422").code(),
        Some(Code::SHUTTING_DOWN)
    );
    assert!(matches!(s.result(c), Err(ClientError::Disconnected(_))));
    assert!(s.local.disconnected);
}

#[test]
fn abort_mid_payload_is_refused_and_the_session_goes_on() {
    let mut s = Script::new(&greeting(100));
    let id = s.c.get(name("f"), 0, Hasher::new());
    s.server(format!("ok get 10 {MTIME}\ndata 2\nhiabort 430 changed\n").as_bytes());
    assert_eq!(s.result(id).expect_err("430").code(), Some(Code::CHANGED));
    assert!(s.c.is_open());
}

/// Random octets after a valid greeting, for every kind of request: always a result,
/// never a panic, never a hang.
#[test]
fn arbitrary_server_octets_never_panic() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let words: [&[u8]; 12] = [
        b"ok get 5 2024-03-01T08:00:00Z\n",
        b"data 3\n",
        b"end xxh3-128:00000000000000000000000000000000\n",
        b"ok dir 2\n",
        b"5 2024-03-01T08:00:00Z a\n",
        b"go\n",
        b"err 511 not-found\n",
        b"abort 431 storage\n",
        b"ok put 3 xxh3-128:00000000000000000000000000000000\n",
        b"bye\n",
        b"\n",
        b"\xff\x00abc",
    ];
    for round in 0..2000 {
        let mut s = Script::new(&greeting(if round % 2 == 0 { 100 } else { 0 }));
        let id = match round % 4 {
            0 => s.c.dir(),
            1 => s.c.get(name("f"), next() % 4, Hasher::new()),
            2 => {
                let id = s.c.put(name("f"), 3, &PutOptions::default(), None);
                s.local.sources.insert(id, (b"abc".to_vec(), 0));
                id
            }
            _ => s.c.close(),
        };
        s.run();
        let mut bytes = Vec::new();
        for _ in 0..(next() % 8) {
            if next() % 3 == 0 {
                bytes.push((next() % 256) as u8);
            } else {
                bytes.extend_from_slice(words[(next() % 12) as usize]);
            }
        }
        s.server(&bytes);
        s.close();
        assert!(
            s.local.done.contains_key(&id),
            "{:?}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

// ------------------------------------------------------------- minimum rate ---

/// The time `moved` octets buy at 1 KiB/s.
fn at_1k(moved: u64) -> Duration {
    Duration::from_nanos(moved * 1_000_000_000 / 1024)
}

/// The [`RateTooLow`] inside a result, if that is why it failed.
fn rate_error(r: &Result<Outcome, ClientError>) -> Option<RateTooLow> {
    match r {
        Err(ClientError::Io(e)) if e.kind() == io::ErrorKind::TimedOut => {
            e.get_ref()?.downcast_ref::<RateTooLow>().copied()
        }
        _ => None,
    }
}

#[test]
fn a_dripping_download_ends_at_the_minimum_rate() {
    // #14 item 5: one octet every 5 s never lets the 10 s read timeout fire; the minimum rate
    // does, at 10 s of grace plus one second per KiB received since the get was sent.
    let opts = ClientOptions {
        min_rate: 1024,
        ..options()
    };
    let mut s = Script::with(&greeting(100), opts);
    let id = s.c.get(name("f"), 0, Hasher::new());
    s.run();
    let start = s.now;
    let head = format!("ok get 1048576 {MTIME}\ndata 1048576\n");
    s.server(head.as_bytes());
    for _ in 0..2 {
        s.later(Duration::from_secs(5), b"x");
    }
    let moved = head.len() as u64 + 2;
    let deadline = start + Duration::from_secs(10) + at_1k(moved);
    assert_eq!(s.deadline, Some(deadline));
    s.wait(deadline - s.now - Duration::from_nanos(1));
    assert!(!s.local.done.contains_key(&id), "not before the deadline");
    s.wait(Duration::from_nanos(1));
    let r = s.result(id);
    let e = rate_error(&r).unwrap_or_else(|| panic!("not the rate: {r:?}"));
    assert_eq!(
        e,
        RateTooLow {
            sending: false,
            moved,
            elapsed: deadline - start,
            grace: Duration::from_secs(10),
            min_rate: 1024,
        }
    );
    assert!(
        e.to_string()
            .contains("slower than the minimum rate of 1 KiB/s"),
        "{e}"
    );
    assert!(!s.c.is_open() && s.local.disconnected);
    assert_eq!(s.local.sinks[&id], b"xx", "what came was handed out");
}

#[test]
fn a_download_at_the_minimum_rate_may_pause_as_long_as_the_read_timeout() {
    // 1 KiB a second for 20 s has bought 20 s beyond the grace: a pause just short of the
    // read timeout (10 s) is still fine, and the download completes.
    let opts = ClientOptions {
        min_rate: 1024,
        ..options()
    };
    let data = data(20 * 1024);
    let mut wire = get_payload(&data, Digest::of(&data));
    let mut s = Script::with(&greeting(100), opts);
    let id = s.c.get(name("f"), 0, Hasher::new());
    s.run();
    let trailer = wire.split_off(wire.len() - 40);
    for (i, piece) in wire.chunks(1024).enumerate() {
        let pause = if i == 0 { 0 } else { 1 };
        s.later(Duration::from_secs(pause), piece);
    }
    s.wait(Duration::from_secs(10) - Duration::from_nanos(1));
    assert!(!s.local.done.contains_key(&id), "{:?}", s.local.done);
    s.server(&trailer);
    assert!(matches!(s.result(id), Ok(Outcome::Got { .. })));
    assert_eq!(s.local.sinks[&id], data);
    assert!(s.c.is_open());
}

#[test]
fn the_minimum_rate_applies_to_each_answer_afresh() {
    // A reply after a pause just short of the read timeout: each request's answer has its
    // own grace, however slow the one before it was.
    let opts = ClientOptions {
        min_rate: 1024,
        ..options()
    };
    let mut s = Script::with(&greeting(100), opts);
    for _ in 0..3 {
        let id = s.c.dir();
        s.run();
        s.later(
            Duration::from_secs(10) - Duration::from_nanos(1),
            b"ok dir 0\n",
        );
        assert!(matches!(s.result(id), Ok(Outcome::Listing(_))));
    }
}

#[test]
fn an_upload_the_server_takes_at_a_drip_ends_at_the_minimum_rate() {
    // The server takes 100 octets every 5 s of an upload: the 20 s write timeout never
    // fires; the minimum rate does, 20 s of grace plus one second per KiB taken after `go`.
    let opts = ClientOptions {
        min_rate: 1024,
        ..options()
    };
    let mut s = Script::with(&greeting(0), opts);
    let id = s.c.put(name("f"), 100_000, &PutOptions::default(), None);
    s.local.sources.insert(id, (data(100_000), 0));
    s.run();
    assert_eq!(s.wire, b"put 100000 new wait f\n");
    s.window = Some(0);
    s.server(b"go\n");
    let start = s.now;
    for _ in 0..4 {
        s.wait(Duration::from_secs(5));
        s.window = Some(100);
        s.run();
    }
    let deadline = start + Duration::from_secs(20) + at_1k(400);
    assert_eq!(s.deadline, Some(deadline));
    s.wait(deadline - s.now - Duration::from_nanos(1));
    assert!(!s.local.done.contains_key(&id), "not before the deadline");
    s.wait(Duration::from_nanos(1));
    let r = s.result(id);
    let e = rate_error(&r).unwrap_or_else(|| panic!("not the rate: {r:?}"));
    assert!(e.sending && e.moved == 400, "{e:?}");
    assert!(
        e.to_string()
            .starts_with("the server took 400 octets in 20.4 s"),
        "{e}"
    );
    assert!(!s.c.is_open() && s.local.disconnected);
}

#[test]
fn a_min_rate_of_zero_leaves_only_the_timeouts() {
    let opts = ClientOptions {
        min_rate: 0,
        ..options()
    };
    let mut s = Script::with(&greeting(100), opts);
    let id = s.c.get(name("f"), 0, Hasher::new());
    s.run();
    s.server(format!("ok get 1000 {MTIME}\ndata 1000\n").as_bytes());
    for _ in 0..100 {
        s.later(Duration::from_secs(9), b"x");
    }
    assert!(!s.local.done.contains_key(&id), "15 minutes for 100 octets");
    s.wait(Duration::from_secs(10));
    let r = s.result(id);
    assert!(
        matches!(&r, Err(ClientError::Io(e)) if e.kind() == io::ErrorKind::TimedOut)
            && rate_error(&r).is_none(),
        "the read timeout: {r:?}"
    );
}

// ------------------------------------------------------------- the tree extension ---

mod tree {
    use super::*;
    use ferry_client_core::session::TreeOp;
    use ferry_wire::TreePath;
    use ferry_wire::tree::{EntryKind, Folder, ListOptions};

    fn tree_greeting() -> Vec<u8> {
        let g = Greeting::new(Limits {
            max_eager: 1 << 20,
            max_size: 10_000_000,
            ..Limits::default()
        });
        ferry_wire::tree::offer(g).expect("offer tree").to_bytes()
    }

    fn path(s: &str) -> TreePath {
        TreePath::new(s).expect("a valid path")
    }

    fn list(recursive: bool) -> TreeOp {
        TreeOp::List {
            folder: Folder::Root,
            options: ListOptions {
                digests: true,
                recursive,
            },
        }
    }

    fn code(r: Result<Outcome, ClientError>) -> Option<u16> {
        match r {
            Err(e) => e.code().map(|c| c.get()),
            Ok(o) => panic!("not refused: {o:?}"),
        }
    }

    #[test]
    fn with_the_server_core_a_pipelined_tree_session_does_everything_in_order() {
        let g = tree_greeting();
        let cfg = SessionConfig {
            tree: true,
            max_size: 10_000_000,
            max_eager: 1 << 20,
            ..ferry_proto::memory::test_config(&g)
        };
        let mut p = Pair::new(cfg, options());
        let mkdir = p.c.tree(TreeOp::Mkdir(path("my docs")));
        let put =
            p.c.put_path(path("my docs/a b"), 5, &PutOptions::default(), None);
        p.local.sources.insert(put, (b"hello".to_vec(), 0));
        let list = p.c.tree(TreeOp::List {
            folder: Folder::Root,
            options: ListOptions {
                digests: true,
                recursive: true,
            },
        });
        let get = p.c.get_path(path("my docs/a b"), 0, Hasher::new());
        let mv = p.c.tree(TreeOp::Rename {
            from: path("my docs/a b"),
            to: path("my docs/c"),
        });
        let not_empty = p.c.tree(TreeOp::Rmdir(path("my docs")));
        let del = p.c.tree(TreeOp::Delete(path("my docs/c")));
        let rmdir = p.c.tree(TreeOp::Rmdir(path("my docs")));
        p.run();
        assert!(matches!(p.result(mkdir), Ok(Outcome::TreeDone)));
        assert!(matches!(p.result(put), Ok(Outcome::Put(_))));
        match p.result(list) {
            Ok(Outcome::TreeListing(l)) => {
                let got: Vec<_> = l
                    .entries
                    .iter()
                    .map(|e| (e.path.as_str(), e.kind))
                    .collect();
                assert_eq!(
                    got,
                    [
                        ("my docs", EntryKind::Folder),
                        (
                            "my docs/a b",
                            EntryKind::File {
                                size: 5,
                                digest: Some(Digest::of(b"hello"))
                            }
                        )
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(p.result(get), Ok(Outcome::Got { size: 5, .. })));
        assert_eq!(p.local.sinks.remove(&get).as_deref(), Some(&b"hello"[..]));
        assert!(matches!(p.result(mv), Ok(Outcome::TreeDone)));
        assert_eq!(code(p.result(not_empty)), Some(517));
        assert!(matches!(p.result(del), Ok(Outcome::TreeDone)));
        assert!(matches!(p.result(rmdir), Ok(Outcome::TreeDone)));
        assert!(p.c.is_open());
    }

    #[test]
    fn without_tree_in_the_greeting_nothing_is_sent_and_the_error_says_so() {
        let mut s = Script::new(&greeting(1 << 20));
        let mkdir = s.c.tree(TreeOp::Mkdir(path("a")));
        let get = s.c.get_path(path("a/b"), 0, Hasher::new());
        s.run();
        for id in [mkdir, get] {
            match s.result(id) {
                Err(e @ ClientError::NotOffered { .. }) => assert_eq!(
                    e.to_string(),
                    "this server does not offer folders, delete or rename (no `tree` extension)"
                ),
                other => panic!("{other:?}"),
            }
        }
        assert!(s.wire.is_empty(), "{:?}", String::from_utf8_lossy(&s.wire));
        assert!(s.c.is_open());
        // A one-name path is ferry/1's get (TREE-3), tree or not.
        s.c.get_path(path("a"), 0, Hasher::new());
        s.run();
        assert_eq!(s.wire, b"get 0 a\n");
    }

    #[test]
    fn gets_and_puts_by_path_follow_one_pipelined_enable() {
        let mut s = Script::new(&tree_greeting());
        let one = s.c.get_path(path("top"), 0, Hasher::new());
        let a = s.c.get_path(path("d/a b"), 0, Hasher::new());
        let opts = PutOptions {
            mode: PutMode::Replace,
            eager: true,
        };
        let put = s.c.put_path(path("d/e/f"), 2, &opts, None);
        s.local.sources.insert(put, (b"hi".to_vec(), 0));
        s.run();
        // TREE-1: `enable tree` once, before the first path of more than one name, and
        // nothing waits for its reply.
        let wire = String::from_utf8_lossy(&s.wire).into_owned();
        assert!(
            wire.starts_with("get 0 top\nenable tree\nget 0 d/a b\nput 2 replace now d/e/f\n"),
            "{wire:?}"
        );
        let mut replies = get_payload(b"1", Digest::of(b"1"));
        replies.extend_from_slice(b"ok enable tree\n");
        replies.extend_from_slice(&get_payload(b"22", Digest::of(b"22")));
        replies.extend_from_slice(format!("ok put 2 {}\n", Digest::of(b"hi")).as_bytes());
        s.server(&replies);
        assert!(matches!(s.result(one), Ok(Outcome::Got { size: 1, .. })));
        assert!(matches!(s.result(a), Ok(Outcome::Got { size: 2, .. })));
        match s.result(put) {
            Ok(Outcome::Put(r)) => assert_eq!(r.name.as_str(), "f"),
            other => panic!("{other:?}"),
        }
        // The enable's own result is not reported.
        s.local.done.remove(&OpId(0));
        assert!(s.local.done.is_empty(), "{:?}", s.local.done.keys());
        s.c.get_path(path("d/x"), 0, Hasher::new());
        s.run();
        assert!(!String::from_utf8_lossy(&s.wire)[wire.len()..].contains("enable"));
    }

    #[test]
    fn a_refused_enable_explains_the_bad_name_that_follows() {
        let mut s = Script::new(&tree_greeting());
        let get = s.c.get_path(path("d/a"), 0, Hasher::new());
        s.server(b"err 503 unsupported\nerr 510 bad-name\n");
        assert_eq!(code(s.result(get)), Some(503));
        assert!(s.c.is_open());
    }

    #[test]
    fn a_listing_is_checked_and_bad_paths_are_skipped() {
        let mut s = Script::new(&tree_greeting());
        let id = s.c.tree(list(true));
        s.run();
        assert_eq!(s.wire, b"list digests,recursive .\n");
        let d = Digest::of(b"xy");
        s.server(
            format!(
                "ok list 4\nd - {MTIME} - a\nf 1 {MTIME} - a/../x\nf 2 {MTIME} {d} a/b\n\
                 f 3 {MTIME} - a/c\n"
            )
            .as_bytes(),
        );
        match s.result(id) {
            Ok(Outcome::TreeListing(l)) => {
                let paths: Vec<&str> = l.entries.iter().map(|e| e.path.as_str()).collect();
                assert_eq!(paths, ["a", "a/b", "a/c"]);
                assert_eq!(l.skipped.len(), 1);
                assert_eq!(l.skipped[0].path, b"a/../x");
                assert_eq!(
                    l.entries[1].kind,
                    EntryKind::File {
                        size: 2,
                        digest: Some(d)
                    }
                );
                // TREE-7: `-` under digests is unknown.
                assert_eq!(
                    l.entries[2].kind,
                    EntryKind::File {
                        size: 3,
                        digest: None
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(s.c.is_open());
    }

    #[test]
    fn hostile_listings_end_the_session() {
        let cases: Vec<(bool, String)> = vec![
            // Out of order, twice, a skipped path out of order (TREE-14, DIR-10).
            (
                true,
                format!("ok list 2\nf 1 {MTIME} - b\nf 1 {MTIME} - a\n"),
            ),
            (
                true,
                format!("ok list 2\nd - {MTIME} - a\nd - {MTIME} - a\n"),
            ),
            (
                true,
                format!("ok list 2\nf 1 {MTIME} - b\nf 1 {MTIME} - ../a\n"),
            ),
            // A nested path in a listing that is not recursive.
            (false, format!("ok list 1\nf 1 {MTIME} - a/b\n")),
            // More entries than the client accepts, a folder with a size.
            (true, "ok list 18446744073709551615\n".to_owned()),
            (true, format!("ok list 1\nd 5 {MTIME} - a\n")),
        ];
        for (recursive, reply) in cases {
            let mut s = Script::new(&tree_greeting());
            let id = s.c.tree(list(recursive));
            s.server(reply.as_bytes());
            let kind = s.violation(id);
            assert!(
                matches!(kind, ViolationKind::Listing | ViolationKind::Malformed),
                "{reply:?}: {kind:?}"
            );
        }
    }

    #[test]
    fn changes_are_pipelined_and_each_reply_must_match_its_request() {
        let mut s = Script::new(&tree_greeting());
        let ops = [
            TreeOp::Mkdir(path("new")),
            TreeOp::Rename {
                from: path("my docs/a b"),
                to: path("new/c d"),
            },
            TreeOp::Delete(path("x")),
            TreeOp::Rmdir(path("my docs")),
        ];
        let ids: Vec<OpId> = ops.iter().map(|o| s.c.tree(o.clone())).collect();
        s.run();
        assert_eq!(
            String::from_utf8_lossy(&s.wire),
            "mkdir new\nrename 11 my docs/a b new/c d\ndelete x\nrmdir my docs\n"
        );
        s.server(b"ok mkdir\nok rename\nerr 518 wrong-kind\nerr 517 not-empty\n");
        assert!(matches!(s.result(ids[0]), Ok(Outcome::TreeDone)));
        assert!(matches!(s.result(ids[1]), Ok(Outcome::TreeDone)));
        assert_eq!(code(s.result(ids[2])), Some(518));
        assert_eq!(code(s.result(ids[3])), Some(517));
        assert!(s.c.is_open(), "517 and 518 do not end the session");
        let wrong = s.c.tree(TreeOp::Delete(path("y")));
        s.server(b"ok rmdir\n");
        assert_eq!(s.violation(wrong), ViolationKind::Unexpected);
    }
}
