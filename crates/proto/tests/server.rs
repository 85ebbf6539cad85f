//! The server session in memory, on a virtual clock: no socket, no file, no sleep. Each test
//! is a script — octets from the client, time passing — and checks the octets the session
//! sends and what it asks of its storage.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry_proto::server::{Action, End, FileMeta, ServerSession, SessionConfig};
use ferry_wire::{Code, Digest, Entry, FileName, Timestamp};

const GREETING: &[u8] = b"ferry/1 max-line=4096 max-name=255 max-size=1000000 max-chunk=1048576 max-eager=100 idle=300 stall=60\n";

fn config() -> SessionConfig {
    SessionConfig {
        greeting: GREETING.to_vec(),
        read_only: false,
        max_size: 1_000_000,
        max_eager: 100,
        idle: Duration::from_secs(300),
        stall: Duration::from_secs(60),
        chunk_patience: Duration::from_secs(5),
    }
}

fn mtime() -> Timestamp {
    Timestamp::from_fields(2024, 3, 1, 8, 0, 0).expect("a timestamp")
}

/// A client, a clock and a folder in memory around one session.
struct Harness {
    s: ServerSession,
    now: Instant,
    files: BTreeMap<String, Vec<u8>>,
    /// The open file of a get and the read position.
    open: Option<(Vec<u8>, usize)>,
    /// The upload in progress: name and octets.
    upload: Option<(String, Vec<u8>)>,
    /// Storage operations the session asked for, in order (for checks).
    ops: Vec<String>,
    inbox: Vec<u8>,
    eof: bool,
    /// What the session sent.
    sent: Vec<u8>,
    /// How many octets the client accepts before it stops reading (None: all).
    window: Option<usize>,
    /// The wait the session is in when `run` returns.
    waiting: Option<Action>,
}

impl Harness {
    fn new(cfg: SessionConfig) -> Self {
        let now = Instant::now();
        Self {
            s: ServerSession::new(cfg, now),
            now,
            files: BTreeMap::new(),
            open: None,
            upload: None,
            ops: Vec::new(),
            inbox: Vec::new(),
            eof: false,
            sent: Vec::new(),
            window: None,
            waiting: None,
        }
    }

    fn client(&mut self, bytes: &[u8]) -> &mut Self {
        self.inbox.extend_from_slice(bytes);
        self
    }

    /// Drives the session until it waits for something the script has not provided yet
    /// (input, a peer that accepts output, time) or is finished.
    fn run(&mut self) -> &mut Self {
        loop {
            let action = self.s.poll(self.now);
            match action {
                Action::Send { .. } => {
                    let out = self.s.output();
                    let n = match self.window {
                        Some(w) => out.len().min(w),
                        None => out.len(),
                    };
                    if n == 0 {
                        self.waiting = Some(action);
                        return self;
                    }
                    self.sent.extend_from_slice(&out[..n]);
                    if let Some(w) = &mut self.window {
                        *w -= n;
                    }
                    self.s.sent(n);
                }
                Action::Receive { .. } => {
                    if self.inbox.is_empty() {
                        if self.eof {
                            self.s.eof();
                            continue;
                        }
                        self.waiting = Some(action);
                        return self;
                    }
                    let space = self.s.input_space();
                    let n = space.len().min(self.inbox.len());
                    space[..n].copy_from_slice(&self.inbox[..n]);
                    self.inbox.drain(..n);
                    self.s.received(n);
                }
                Action::Drain { .. } => {
                    self.waiting = Some(action);
                    return self;
                }
                Action::Finished(_) => {
                    self.waiting = Some(action);
                    return self;
                }
                Action::List => {
                    self.ops.push("list".into());
                    let entries = self
                        .files
                        .iter()
                        .map(|(n, d)| Entry {
                            size: d.len() as u64,
                            mtime: mtime(),
                            name: FileName::new(n).expect("a name"),
                        })
                        .collect();
                    self.s.listed(Ok(entries));
                }
                Action::OpenRead(name) => {
                    self.ops.push(format!("open {name}"));
                    match self.files.get(name.as_str()) {
                        Some(d) => {
                            self.open = Some((d.clone(), 0));
                            self.s.opened(Ok(FileMeta {
                                size: d.len() as u64,
                                mtime: mtime(),
                            }));
                        }
                        None => self.s.opened(Err(Code::NOT_FOUND)),
                    }
                }
                Action::ReadFile { len } => {
                    let (data, pos) = self.open.as_mut().expect("an open file");
                    let space = self.s.file_space();
                    assert_eq!(space.len(), len);
                    let n = len.min(data.len() - *pos);
                    space[..n].copy_from_slice(&data[*pos..*pos + n]);
                    *pos += n;
                    self.s.file_read(Ok(n));
                }
                Action::CheckUnchanged => self.s.checked(Ok(true)),
                Action::CloseFile => {
                    self.ops.push("close-file".into());
                    self.open = None;
                }
                Action::BeginUpload { name, size, .. } => {
                    self.ops.push(format!("begin {name} {size}"));
                    self.upload = Some((name.as_str().to_owned(), Vec::new()));
                    self.s.upload_begun(Ok(()));
                }
                Action::WriteUpload => {
                    let data = self.s.upload_data().to_vec();
                    self.upload.as_mut().expect("an upload").1.extend(data);
                    self.s.upload_written(Ok(()));
                }
                Action::CommitUpload => {
                    self.ops.push("commit".into());
                    let (name, data) = self.upload.take().expect("an upload");
                    self.files.insert(name, data);
                    self.s.upload_committed(Ok(()));
                }
                Action::DiscardUpload => {
                    self.ops.push("discard".into());
                    self.upload = None;
                }
            }
        }
    }

    /// Lets `d` pass; a wait whose deadline passed times out.
    fn wait(&mut self, d: Duration) -> &mut Self {
        self.now += d;
        let due = match &self.waiting {
            Some(Action::Send { deadline } | Action::Receive { deadline }) => *deadline <= self.now,
            Some(Action::Drain { until }) => *until <= self.now,
            _ => false,
        };
        if due {
            self.s.timed_out(self.now);
        }
        self.run()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.sent).into_owned()
    }

    /// What was sent after the greeting.
    fn replies(&self) -> String {
        self.text()
            .strip_prefix(std::str::from_utf8(GREETING).expect("ASCII"))
            .expect("the greeting first")
            .to_owned()
    }

    fn finished(&self) -> Option<End> {
        match &self.waiting {
            Some(Action::Finished(end)) => Some(end.clone()),
            _ => None,
        }
    }

    fn draining(&self) -> bool {
        matches!(self.waiting, Some(Action::Drain { .. }))
    }
}

#[test]
fn greets_first_then_answers_dir_and_close() {
    let mut h = Harness::new(config());
    h.files.insert("a.txt".into(), b"hello".to_vec());
    h.run();
    assert_eq!(h.sent, GREETING);
    h.client(b"dir\nclose\n").run();
    assert_eq!(h.replies(), "ok dir 1\n5 2024-03-01T08:00:00Z a.txt\nbye\n");
    assert!(h.draining(), "{:?}", h.waiting);
    h.s.drained();
    h.run();
    assert_eq!(h.finished(), Some(End::Bye));
}

#[test]
fn put_wait_goes_then_commits_and_get_from_an_offset_sends_the_tail() {
    let mut h = Harness::new(config());
    let data: Vec<u8> = (0..250u32).map(|i| (i % 251) as u8).collect();
    let mut put = b"put 250 new wait f.bin\n".to_vec();
    h.client(&put).run();
    assert_eq!(h.replies(), "go\n");
    put.clear();
    put.extend_from_slice(b"data 250\n");
    put.extend_from_slice(&data);
    put.extend_from_slice(format!("end {}\n", Digest::of(&data)).as_bytes());
    h.client(&put).run();
    assert_eq!(h.files.get("f.bin"), Some(&data));
    assert_eq!(h.ops, ["begin f.bin 250", "commit"]);
    h.sent.clear();
    h.client(b"get 200 f.bin\n").run();
    let mut want = b"ok get 250 2024-03-01T08:00:00Z\ndata 50\n".to_vec();
    want.extend_from_slice(&data[200..]);
    want.extend_from_slice(format!("end {}\n", Digest::of(&data)).as_bytes());
    assert_eq!(h.sent, want);
}

#[test]
fn pipelined_requests_are_answered_in_order_in_one_send() {
    let mut h = Harness::new(config());
    h.run();
    h.sent.clear();
    h.client(b"get 0 nope\nbogus\ndir\n").run();
    assert_eq!(h.text(), "err 511 not-found\nerr 500 syntax\nok dir 0\n");
}

#[test]
fn idle_timeout_is_exact_and_closes_with_421() {
    let mut h = Harness::new(config());
    h.run();
    h.wait(Duration::from_secs(300) - Duration::from_nanos(1));
    assert_eq!(h.replies(), "");
    h.wait(Duration::from_nanos(1));
    assert_eq!(h.replies(), "err 421 timeout\n");
    assert!(h.draining());
}

#[test]
fn a_request_line_has_the_stall_timeout_from_its_first_octet() {
    let mut h = Harness::new(config());
    h.run();
    h.wait(Duration::from_secs(100));
    h.client(b"di").run();
    h.wait(Duration::from_secs(59));
    assert_eq!(h.replies(), "");
    h.wait(Duration::from_secs(1));
    assert_eq!(h.replies(), "err 421 timeout\n");
}

#[test]
fn an_upload_cut_by_eof_is_discarded_before_the_session_ends() {
    let mut h = Harness::new(config());
    h.client(b"put 10 new now x.bin\ndata 10\nabc");
    h.eof = true;
    h.run();
    assert_eq!(h.ops, ["begin x.bin 10", "discard"]);
    assert_eq!(h.finished(), Some(End::Eof));
    assert!(h.files.is_empty());
}

#[test]
fn an_eager_put_above_max_eager_closes_with_502_without_reading_the_payload() {
    let mut h = Harness::new(config());
    h.client(b"put 101 new now x.bin\n").run();
    assert_eq!(h.replies(), "err 502 protocol\n");
    assert!(h.ops.is_empty());
    assert!(h.draining());
}

#[test]
fn a_shutdown_ends_the_session_at_the_next_request_boundary_with_422() {
    let mut h = Harness::new(config());
    h.files.insert("a".into(), b"x".to_vec());
    h.run();
    let hard = h.now + Duration::from_secs(10);
    h.s.shutdown(hard);
    h.run();
    assert_eq!(h.replies(), "err 422 shutting-down\n");
}

#[test]
fn past_the_shutdown_deadline_a_get_ends_at_a_chunk_boundary_with_abort_422() {
    let mut h = Harness::new(config());
    let big = vec![7u8; 3 * 1_048_576];
    h.files.insert("big".into(), big);
    h.run();
    h.sent.clear();
    // The client accepts the reply line, the first chunk and half of the second.
    h.window = Some(40 + 2 * 1_048_576 - 524_288);
    h.client(b"get 0 big\n").run();
    assert!(matches!(h.waiting, Some(Action::Send { .. })));
    h.s.shutdown(h.now + Duration::from_secs(1));
    h.wait(Duration::from_secs(2));
    // Still within the chunk patience: the client takes the rest of the chunk.
    h.window = Some(usize::MAX);
    h.run();
    let text = h.sent.clone();
    let tail = String::from_utf8_lossy(&text[text.len() - 30..]).into_owned();
    assert!(tail.ends_with("abort 422 shutting-down\n"), "{tail:?}");
    let chunks = text.windows(13).filter(|w| w == b"data 1048576\n").count();
    assert_eq!(chunks, 2, "two whole chunks, then the abort");
    assert!(h.draining());
}

#[test]
fn a_client_that_accepts_nothing_is_dropped_after_the_stall_timeout() {
    let mut h = Harness::new(config());
    h.window = Some(0);
    h.run();
    h.wait(Duration::from_secs(59));
    assert_eq!(h.finished(), None);
    h.wait(Duration::from_secs(1));
    assert_eq!(h.finished(), Some(End::Dropped("peer accepts no output")));
}
