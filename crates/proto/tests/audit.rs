//! The audit records of a server session (`ferry_proto::audit`), in memory: exactly one
//! record for every `auth` attempt, `dir`, `get` and `put`, with the right fields, whatever
//! the session's rate-limited log leaves out, and for what the session's end cuts short.

use std::sync::Arc;
use std::time::Duration;

use ferry_proto::audit::{Audit, Memory, Operation, Outcome, Record};
use ferry_proto::auth::{Authenticator, Grant, Mechanism, Rights, ScramServer, UserName};
use ferry_proto::memory::{Harness, test_config};
use ferry_proto::server::{End, LOG_BURST, SessionConfig};
use ferry_proto::throttle::{Throttle, ThrottleLimits};
use ferry_wire::auth::{AUTH_FAILED, AuthRequest};
use ferry_wire::{Code, Digest};

const GREETING: &[u8] = b"ferry/1 max-eager=100 ext=auth auth=ed25519,scram-sha-256-plus\n";

/// alice: key [1; 32] (any signature); bob: SCRAM with the final message `bob-final`;
/// optionally a throttle.
#[derive(Debug, Default)]
struct Fake(Option<Throttle>);

impl Authenticator for Fake {
    fn throttle(&self) -> Option<&Throttle> {
        self.0.as_ref()
    }
    fn mechanisms(&self) -> Vec<Mechanism> {
        Mechanism::ALL.to_vec()
    }
    fn anonymous(&self) -> Option<Rights> {
        Some(Rights::ALL)
    }
    fn ed25519(&self, u: &UserName, key: &[u8; 32], _: &[u8; 64], _: &[u8; 32]) -> Option<Grant> {
        (u.as_str() == "alice" && key == &[1; 32]).then(|| Grant {
            user: u.clone(),
            rights: Rights::ALL,
        })
    }
    fn scram_start(
        &self,
        first: &[u8],
        _: Option<&[u8; 32]>,
    ) -> Option<(Box<dyn ScramServer>, Vec<u8>)> {
        first.ends_with(b"n=bob,r=1").then(|| {
            (
                Box::new(Exchange) as Box<dyn ScramServer>,
                b"r=1x,s=y,i=4096".to_vec(),
            )
        })
    }
}

#[derive(Debug)]
struct Exchange;

impl ScramServer for Exchange {
    fn finish(self: Box<Self>, last: &[u8]) -> Option<(Grant, Vec<u8>)> {
        (last == b"bob-final").then(|| {
            (
                Grant {
                    user: UserName::new("bob").expect("user"),
                    rights: Rights::ALL,
                },
                b"v=ok".to_vec(),
            )
        })
    }
}

fn harness(cfg: SessionConfig) -> (Harness, Arc<Memory>) {
    let audit = Memory::new();
    let mut h = Harness::new(cfg);
    h.s.set_audit(Arc::clone(&audit) as Arc<dyn Audit>);
    h.s.set_peer("192.0.2.7:4711".parse().expect("address"));
    h.files.insert("a.txt".into(), b"hello".to_vec());
    h.run();
    (h, audit)
}

fn eager_put(name: &str, data: &[u8], digest: Digest) -> Vec<u8> {
    let mut v = format!("put {} new now {name}\ndata {}\n", data.len(), data.len()).into_bytes();
    v.extend_from_slice(data);
    v.extend_from_slice(format!("end {digest}\n").as_bytes());
    v
}

fn ed25519(user: &str, key: u8) -> Vec<u8> {
    AuthRequest::Ed25519 {
        user: UserName::new(user).expect("user"),
        public_key: [key; 32],
        signature: [0; 64],
    }
    .encode()
}

fn scram(first: &[u8]) -> Vec<u8> {
    AuthRequest::Scram {
        plus: true,
        client_first: first.to_vec(),
    }
    .encode()
}

fn fin(last: &[u8]) -> Vec<u8> {
    AuthRequest::Final {
        client_final: last.to_vec(),
    }
    .encode()
}

/// (operation, user, name, bytes, entries, outcome) of each record.
type Row = (
    Operation,
    Option<String>,
    Option<String>,
    u64,
    Option<u64>,
    Outcome,
);

fn rows(records: &[Record]) -> Vec<Row> {
    records
        .iter()
        .map(|r| {
            (
                r.operation,
                r.user.clone(),
                r.name.clone(),
                r.bytes,
                r.entries,
                r.outcome,
            )
        })
        .collect()
}

fn s(x: &str) -> Option<String> {
    Some(x.to_owned())
}

#[test]
fn every_operation_of_a_session_is_one_record_with_its_fields() {
    let (mut h, audit) = harness(test_config(b"ferry/1\n"));
    let body = b"some data";
    h.client(b"dir\nget 0 a.txt\nget 2 a.txt\nget 0 missing\n")
        .run();
    h.client(b"put 9 new wait f\n").run();
    h.wait(Duration::from_millis(1500));
    h.client(format!("data 9\nsome dataend {}\n", Digest::of(body)).as_bytes())
        .run();
    h.client(&eager_put("g", b"xy", Digest::of(b"xy"))).run();
    h.client(&eager_put("h", b"xy", Digest::of(b"no"))).run();
    h.client(b"put 3 new wait a.txt\nversion ferry/1\nclose\n")
        .run();
    assert!(h.draining());
    h.s.drained();
    h.run();
    assert_eq!(h.finished(), Some(End::Bye));
    let records = audit.take();
    assert_eq!(
        rows(&records),
        [
            (Operation::Dir, None, None, 0, Some(1), Outcome::Ok),
            (Operation::Get, None, s("a.txt"), 5, None, Outcome::Ok),
            (Operation::Get, None, s("a.txt"), 3, None, Outcome::Ok),
            (
                Operation::Get,
                None,
                s("missing"),
                0,
                None,
                Outcome::Err(Code::NOT_FOUND)
            ),
            (Operation::Put, None, s("f"), 9, None, Outcome::Ok),
            (Operation::Put, None, s("g"), 2, None, Outcome::Ok),
            (
                Operation::Put,
                None,
                s("h"),
                0,
                None,
                Outcome::Err(Code::CORRUPT)
            ),
            (
                Operation::Put,
                None,
                s("a.txt"),
                0,
                None,
                Outcome::Err(Code::EXISTS)
            ),
        ],
        "nothing recorded for version and close"
    );
    assert!(
        records
            .iter()
            .all(|r| r.peer == Some("192.0.2.7:4711".parse().expect("address")))
    );
    // The put that waited 1.5 s for its payload took that long; the others no time.
    assert_eq!(records[4].duration, Duration::from_millis(1500));
    assert_eq!(records[0].duration, Duration::ZERO);
    // The end comes when the session is dropped: the whole session.
    drop(h);
    let end = audit.take();
    assert_eq!(end.len(), 1, "{end:?}");
    assert_eq!(end[0].operation, Operation::End);
    assert_eq!(end[0].outcome, Outcome::Ok);
    assert_eq!(end[0].duration, Duration::from_millis(1500));
    assert!(end[0].bytes > 100, "{end:?}");
}

#[test]
fn the_audit_is_not_rate_limited_as_the_log_is() {
    let (mut h, audit) = harness(test_config(b"ferry/1\n"));
    let n = LOG_BURST as usize * 2;
    h.client("get 0 missing\n".repeat(n).as_bytes()).run();
    let records = audit.take();
    assert_eq!(records.len(), n);
    assert!(
        records
            .iter()
            .all(|r| r.operation == Operation::Get && r.outcome == Outcome::Err(Code::NOT_FOUND))
    );
}

#[test]
fn auth_attempts_are_recorded_with_the_user_tried_and_later_records_with_the_user() {
    let cfg = SessionConfig {
        auth: Some(Arc::new(Fake::default())),
        ..test_config(GREETING)
    };
    let (mut h, audit) = harness(cfg);
    // Anonymous first: no user.
    h.client(b"dir\n").run();
    h.client(&ed25519("carol", 1)).run();
    h.client(&ed25519("alice", 2)).run();
    h.client(&scram(b"p=ferry-exporter,,n=mallory,r=1")).run();
    // A SCRAM exchange is one attempt: `auth` then `auth-final`.
    h.client(&scram(b"p=ferry-exporter,,n=bob,r=1")).run();
    h.client(&fin(b"wrong")).run();
    h.client(&scram(b"p=ferry-exporter,,n=bob,r=1")).run();
    h.client(&fin(b"bob-final")).run();
    h.client(b"get 0 a.txt\n").run();
    let failed = Outcome::Err(AUTH_FAILED);
    assert_eq!(
        rows(&audit.take()),
        [
            (Operation::Dir, None, None, 0, Some(1), Outcome::Ok),
            (Operation::Auth, s("carol"), None, 0, None, failed),
            (Operation::Auth, s("alice"), None, 0, None, failed),
            (Operation::Auth, s("mallory"), None, 0, None, failed),
            (Operation::Auth, s("bob"), None, 0, None, failed),
            (Operation::Auth, s("bob"), None, 0, None, Outcome::Ok),
            (Operation::Get, s("bob"), s("a.txt"), 5, None, Outcome::Ok),
        ]
    );
    // A second auth fails too, recorded with the name it tried.
    h.client(&ed25519("alice", 1)).run();
    assert_eq!(
        rows(&audit.take()),
        [(Operation::Auth, s("alice"), None, 0, None, failed)]
    );
}

#[test]
fn an_upload_cut_by_the_clients_eof_is_recorded_as_cut() {
    let (mut h, audit) = harness(test_config(b"ferry/1\n"));
    h.client(b"put 10 new wait x.bin\n").run();
    h.client(b"data 10\nabc");
    h.eof = true;
    h.run();
    assert_eq!(h.finished(), Some(End::Eof));
    assert!(audit.take().is_empty(), "nothing answered yet");
    drop(h);
    let records = audit.take();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0].operation, Operation::Put);
    assert_eq!(records[0].name.as_deref(), Some("x.bin"));
    assert!(matches!(records[0].outcome, Outcome::Cut(_)));
    // What moved since the request: the payload's head and 3 octets, and `go`.
    assert!(records[0].bytes >= 11, "{records:?}");
    assert_eq!(
        (records[1].operation, records[1].outcome),
        (Operation::End, Outcome::Ok)
    );
}

#[test]
fn an_upload_ended_by_a_timeout_gets_the_closing_code_and_so_does_the_session() {
    let (mut h, audit) = harness(test_config(b"ferry/1\n"));
    h.client(b"put 10 new wait x.bin\ndata 10\nabc").run();
    h.wait(Duration::from_secs(61));
    assert!(
        h.replies().ends_with("err 421 timeout\n"),
        "{}",
        h.replies()
    );
    drop(h);
    let records = audit.take();
    assert_eq!(
        records
            .iter()
            .map(|r| (r.operation, r.outcome))
            .collect::<Vec<_>>(),
        [
            (Operation::Put, Outcome::Err(Code::TIMEOUT)),
            (Operation::End, Outcome::Err(Code::TIMEOUT)),
        ]
    );
}

#[test]
fn a_session_dropped_mid_exchange_records_the_attempt_as_cut_and_its_end() {
    let cfg = SessionConfig {
        auth: Some(Arc::new(Fake::default())),
        ..test_config(GREETING)
    };
    let (mut h, audit) = harness(cfg);
    h.client(&scram(b"p=ferry-exporter,,n=bob,r=1")).run();
    // The driver's connection fails: it drops the session unfinished.
    drop(h);
    let records = audit.take();
    assert_eq!(
        rows(&records),
        [
            (
                Operation::Auth,
                s("bob"),
                None,
                0,
                None,
                Outcome::Cut("the connection ended")
            ),
            (
                Operation::End,
                None,
                None,
                records[1].bytes,
                None,
                Outcome::Cut("the connection ended")
            ),
        ]
    );
}

#[test]
fn without_a_sink_nothing_is_recorded_and_the_session_runs_as_before() {
    let mut h = Harness::new(test_config(b"ferry/1\n"));
    h.files.insert("a.txt".into(), b"hello".to_vec());
    h.client(b"get 0 a.txt\nclose\n").run();
    assert!(h.replies().starts_with("ok get 5 "), "{}", h.replies());
}

#[test]
fn eager_puts_dropped_before_they_are_stored_are_each_recorded_as_cut() {
    use ferry_proto::server::{Action, ServerSession};
    let audit = Memory::new();
    let now = std::time::Instant::now();
    let mut session = ServerSession::new(test_config(b"ferry/1\n"), now);
    session.set_audit(Arc::clone(&audit) as Arc<dyn Audit>);
    let mut input = eager_put("one", b"1", Digest::of(b"1"));
    input.extend(eager_put("two", b"22", Digest::of(b"22")));
    // A driver that stops at the storage step (its connection or task ends there).
    loop {
        match session.poll(now) {
            Action::Send { .. } => {
                let n = session.output().len();
                session.sent(n);
            }
            Action::Receive { .. } => {
                let space = session.input_space();
                let n = input.len().min(space.len());
                space[..n].copy_from_slice(&input[..n]);
                input.drain(..n);
                session.received(n);
            }
            Action::StoreUploads => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(session.uploads().len(), 2, "both puts in one step");
    drop(session);
    assert_eq!(
        rows(&audit.take())[..2],
        [
            (
                Operation::Put,
                None,
                s("one"),
                1,
                None,
                Outcome::Cut("the connection ended")
            ),
            (
                Operation::Put,
                None,
                s("two"),
                2,
                None,
                Outcome::Cut("the connection ended")
            ),
        ]
    );
}

#[test]
fn a_failure_held_back_by_the_throttle_is_recorded_when_answered_or_when_the_client_leaves() {
    let limits = ThrottleLimits {
        free: 1,
        ..ThrottleLimits::default()
    };
    let cfg = SessionConfig {
        auth: Some(Arc::new(Fake(Some(Throttle::new(limits))))),
        ..test_config(GREETING)
    };
    let (mut h, audit) = harness(cfg.clone());
    h.client(&ed25519("carol", 1)).run();
    h.client(&ed25519("dave", 1)).run();
    // The second failure's reply is held back: not answered, not recorded yet.
    let failed = Outcome::Err(AUTH_FAILED);
    assert_eq!(
        rows(&audit.take()),
        [(Operation::Auth, s("carol"), None, 0, None, failed)]
    );
    h.wait(Duration::from_secs(5));
    let records = audit.take();
    assert_eq!(
        rows(&records),
        [(Operation::Auth, s("dave"), None, 0, None, failed)]
    );
    assert!(records[0].duration >= Duration::from_secs(1), "{records:?}");
    // Held back, then the client leaves: still a failure, with the name tried.
    h.client(&ed25519("erin", 1)).run();
    h.eof = true;
    h.run();
    drop(h);
    let records = audit.take();
    assert_eq!(
        rows(&records)[0],
        (Operation::Auth, s("erin"), None, 0, None, failed),
        "{records:?}"
    );
    assert_eq!(records[1].operation, Operation::End);
}
