#![no_main]
//! The client session core (`ferry_client_core::session`) in memory: arbitrary server octets
//! in arbitrary pieces after a valid greeting, operations started at any time (pipelined),
//! time passing, local sinks and sources that fail, EOF — no socket, no file, a virtual
//! clock. Asserts: no panic; every deadline lies ahead of the clock, within the longest
//! timeout; every operation started ends exactly once, and all have ended once the server is
//! gone and time has passed; a download reported verified delivered exactly its size and
//! digest; the session never asks for an empty write.

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use ferry_client_core::session::{Action, ClientSession, OpId, Outcome};
use ferry_client_core::{ClientOptions, PutOptions};
use ferry_wire::{Digest, FileName, Greeting, Hasher, Limits};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Op {
    /// Octets from the server.
    Server(Vec<u8>),
    /// Time passes (milliseconds).
    Wait(u16),
    /// The client starts an operation.
    Start(Start),
    /// The next sink or source operation fails.
    Fault,
    /// The server accepts at most this many more octets (None: all).
    Window(Option<u16>),
}

#[derive(Debug, Arbitrary)]
enum Start {
    Dir,
    Get { offset: u8 },
    Put { size: u16, eager: bool },
    Close,
}

struct Driver {
    c: ClientSession,
    now: Instant,
    pending: Vec<u8>,
    wire: Vec<u8>,
    eof: bool,
    window: Option<usize>,
    faults: usize,
    deadline: Option<Instant>,
    started: Vec<OpId>,
    done: HashMap<OpId, bool>,
    sinks: HashMap<OpId, Vec<u8>>,
    sizes: HashMap<OpId, u64>,
}

const LONGEST: Duration = Duration::from_secs(3);

impl Driver {
    fn run(&mut self) {
        self.deadline = None;
        for _ in 0..100_000 {
            match self.c.poll(self.now) {
                Action::Io {
                    send,
                    receive,
                    deadline,
                } => {
                    if let Some(d) = deadline {
                        assert!(d >= self.now, "deadline in the past");
                        assert!(d <= self.now + LONGEST, "deadline too far ahead");
                    }
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
                    if receive && !moved {
                        if !self.pending.is_empty() {
                            let space = self.c.input_space();
                            let n = space.len().min(self.pending.len());
                            space[..n].copy_from_slice(&self.pending[..n]);
                            self.pending.drain(..n);
                            self.c.received(n);
                            moved = true;
                        } else if self.eof {
                            self.c.eof();
                            moved = true;
                        }
                    }
                    if !moved {
                        self.deadline = deadline;
                        return;
                    }
                }
                Action::Idle => return,
                Action::OpenSink { id, .. } => {
                    if self.fault() {
                        self.c.sink_opened(Err(io::Error::other("fault")));
                    } else {
                        self.sinks.insert(id, Vec::new());
                        self.c.sink_opened(Ok(()));
                    }
                }
                Action::WriteSink { id } => {
                    let data = self.c.sink_data().to_vec();
                    assert!(!data.is_empty(), "empty write");
                    if self.fault() {
                        self.c.sink_written(Err(io::Error::other("fault")));
                    } else {
                        self.sinks.entry(id).or_default().extend_from_slice(&data);
                        self.c.sink_written(Ok(()));
                    }
                }
                Action::ReadSource { len, .. } => {
                    if self.fault() {
                        self.c.source_read(Err(io::Error::other("fault")));
                    } else {
                        let space = self.c.source_space();
                        assert_eq!(space.len(), len);
                        space.fill(b'u');
                        self.c.source_read(Ok(len));
                    }
                }
                Action::CheckSource { .. } => {
                    let unchanged = !self.fault();
                    self.c.source_checked(Ok(unchanged));
                }
                Action::Progress { done, total, .. } => assert!(done <= total),
                Action::Done { id, result } => {
                    assert!(self.done.insert(id, true).is_none(), "{id:?} ended twice");
                    if let Ok(Outcome::Got { size, digest, .. }) = result {
                        let data = self.sinks.get(&id).cloned().unwrap_or_default();
                        // Gets start at offset 0 with an empty prefix when `offset` is 0.
                        if self.sizes.get(&id) == Some(&0) {
                            assert_eq!(data.len() as u64, size);
                            assert_eq!(Digest::of(&data), digest);
                        }
                    }
                }
                Action::Disconnect => {}
            }
        }
        panic!("the session made no progress in 100,000 steps");
    }

    fn fault(&mut self) -> bool {
        if self.faults > 0 {
            self.faults -= 1;
            true
        } else {
            false
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let now = Instant::now();
    let options = ClientOptions {
        read_timeout: Some(Duration::from_secs(2)),
        write_timeout: Some(Duration::from_secs(3)),
        max_listing: 100,
        ..ClientOptions::default()
    };
    let greeting = Greeting::new(Limits {
        max_eager: 4096,
        ..Limits::default()
    })
    .to_bytes();
    let mut d = Driver {
        c: ClientSession::new(options, now),
        now,
        pending: greeting,
        wire: Vec::new(),
        eof: false,
        window: None,
        faults: 0,
        deadline: None,
        started: vec![OpId(0)],
        done: HashMap::new(),
        sinks: HashMap::new(),
        sizes: HashMap::new(),
    };
    d.run();
    let name = FileName::new("f").expect("valid");
    for op in ops.into_iter().take(64) {
        match op {
            Op::Server(bytes) => d.pending.extend_from_slice(&bytes),
            Op::Wait(ms) => {
                d.now += Duration::from_millis(u64::from(ms));
                if d.deadline.is_some_and(|t| t <= d.now) {
                    d.c.timed_out(d.now);
                }
            }
            Op::Start(s) => {
                let id = match s {
                    Start::Dir => d.c.dir(),
                    Start::Get { offset } => {
                        let offset = u64::from(offset % 4);
                        let mut prefix = Hasher::new();
                        prefix.update(&vec![b'p'; offset as usize]);
                        let id = d.c.get(name.clone(), offset, prefix);
                        d.sizes.insert(id, offset);
                        id
                    }
                    Start::Put { size, eager } => {
                        let opts = PutOptions {
                            eager,
                            ..PutOptions::default()
                        };
                        d.c.put(name.clone(), u64::from(size), &opts, None)
                    }
                    Start::Close => d.c.close(),
                };
                d.started.push(id);
            }
            Op::Fault => d.faults += 1,
            Op::Window(w) => d.window = w.map(usize::from),
        }
        d.run();
    }
    // The server goes away: every operation must end.
    d.eof = true;
    d.window = None;
    for _ in 0..4 {
        d.run();
        d.now += LONGEST;
        if d.deadline.is_some_and(|t| t <= d.now) {
            d.c.timed_out(d.now);
        }
    }
    d.run();
    for id in &d.started {
        assert!(d.done.contains_key(id), "{id:?} never ended");
    }
    assert!(d.c.is_idle());
});
