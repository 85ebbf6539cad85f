//! The `auth` extension in the server session (spec section 16), in memory, with a fake
//! [`Authenticator`] whose "proofs" are easy to make: what the session decides (the order of
//! the exchange, one reply for every failure, nothing before authentication, the rights of
//! each request) is what these tests check; the real proofs are `ferry-auth`'s.

use std::sync::Arc;

use ferry_proto::auth::{Authenticator, Grant, Mechanism, Right, Rights, ScramServer, UserName};
use ferry_proto::memory::Harness;
use ferry_proto::server::SessionConfig;
use ferry_wire::Digest;
use ferry_wire::auth::AuthRequest;

const GREETING: &[u8] = b"ferry/1 max-line=4096 max-name=255 max-size=1000000 max-chunk=1048576 max-eager=100 idle=300 stall=60 ext=auth auth=ed25519,scram-sha-256-plus\n";

/// alice: key [1; 32], her "signature" is the channel binding twice; list, read, create.
/// bob: SCRAM with client-first `bob-first` and client-final `bob-final`; every right.
#[derive(Debug)]
struct Fake {
    mechanisms: Vec<Mechanism>,
    anonymous: Option<Rights>,
    alice: Rights,
}

impl Fake {
    fn new() -> Self {
        Fake {
            mechanisms: Mechanism::ALL.to_vec(),
            anonymous: None,
            alice: [Right::List, Right::Read, Right::Create]
                .into_iter()
                .collect(),
        }
    }
}

fn user(s: &str) -> UserName {
    UserName::new(s).expect("user")
}

impl Authenticator for Fake {
    fn mechanisms(&self) -> Vec<Mechanism> {
        self.mechanisms.clone()
    }
    fn anonymous(&self) -> Option<Rights> {
        self.anonymous
    }
    fn ed25519(
        &self,
        u: &UserName,
        key: &[u8; 32],
        sig: &[u8; 64],
        cb: &[u8; 32],
    ) -> Option<Grant> {
        (u.as_str() == "alice" && key == &[1; 32] && sig[..32] == cb[..] && sig[32..] == cb[..])
            .then(|| Grant {
                user: u.clone(),
                rights: self.alice,
            })
    }
    fn scram_start(
        &self,
        first: &[u8],
        _cb: Option<&[u8; 32]>,
    ) -> Option<(Box<dyn ScramServer>, Vec<u8>)> {
        (first == b"bob-first").then(|| {
            (
                Box::new(Exchange) as Box<dyn ScramServer>,
                b"r=x,s=y,i=4096".to_vec(),
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
                    user: user("bob"),
                    rights: Rights::ALL,
                },
                b"v=ok".to_vec(),
            )
        })
    }
}

fn config(auth: Option<Fake>) -> SessionConfig {
    SessionConfig {
        auth: auth.map(|a| Arc::new(a) as Arc<dyn Authenticator>),
        ..ferry_proto::memory::test_config(GREETING)
    }
}

fn session(auth: Option<Fake>, cb: Option<[u8; 32]>) -> Harness {
    let mut h = Harness::new(config(auth));
    if let Some(cb) = cb {
        h.s.set_channel_binding(cb);
    }
    h.files.insert("a.txt".into(), b"hello".to_vec());
    h.run();
    assert_eq!(out(&mut h).as_bytes(), GREETING);
    h
}

/// What the session sent since the last call.
fn out(h: &mut Harness) -> String {
    String::from_utf8_lossy(&std::mem::take(&mut h.sent)).into_owned()
}

fn alice_line(cb: [u8; 32]) -> Vec<u8> {
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&cb);
    sig[32..].copy_from_slice(&cb);
    AuthRequest::Ed25519 {
        user: user("alice"),
        public_key: [1; 32],
        signature: sig,
    }
    .encode()
}

fn eager_put(name: &str, data: &[u8], mode: &str) -> Vec<u8> {
    let mut v = format!(
        "put {} {mode} now {name}\ndata {}\n",
        data.len(),
        data.len()
    )
    .into_bytes();
    v.extend_from_slice(data);
    v.extend_from_slice(format!("end {}\n", Digest::of(data)).as_bytes());
    v
}

#[test]
fn without_the_extension_auth_lines_are_503_and_nothing_is_gated() {
    let mut h = session(None, None);
    h.client(&alice_line([0; 32]))
        .client(b"auth-final YQ==\ndir\n")
        .run();
    assert_eq!(
        out(&mut h),
        "err 503 unsupported\nerr 503 unsupported\nok dir 1\n5 2024-03-01T08:00:00Z a.txt\n"
    );
    assert!(h.s.grant().is_none());
}

#[test]
fn nothing_but_auth_version_and_close_before_authenticating() {
    let mut h = session(Some(Fake::new()), Some([7; 32]));
    h.client(b"dir\nget 0 a.txt\nput 5 new wait b\n").run();
    h.client(&eager_put("c", b"12345", "new")).run();
    assert_eq!(
        out(&mut h),
        "err 530 auth-required\nerr 530 auth-required\nerr 530 auth-required\nerr 530 auth-required\n"
    );
    assert!(h.ops.is_empty(), "storage untouched: {:?}", h.ops);
    assert!(!h.files.contains_key("c"));
    // The eager payload was read past: the session is in step.
    h.client(b"close\n").run();
    assert_eq!(out(&mut h), "bye\n");
}

#[test]
fn a_signature_bound_to_this_connection_authenticates_and_rights_apply() {
    let cb = [7; 32];
    let mut h = session(Some(Fake::new()), Some(cb));
    h.client(&alice_line(cb)).run();
    assert_eq!(out(&mut h), "ok auth alice\n");
    assert_eq!(h.s.grant().map(|g| g.user.as_str()), Some("alice"));
    h.client(b"dir\n").run();
    assert_eq!(out(&mut h), "ok dir 1\n5 2024-03-01T08:00:00Z a.txt\n");
    // create: yes; replace: no, so `replace` of an existing name is 512, as `new` would be.
    h.client(&eager_put("b", b"new!", "new")).run();
    h.client(&eager_put("a.txt", b"over", "replace")).run();
    let replies = out(&mut h);
    assert!(replies.starts_with("ok put 4 "), "{replies}");
    assert!(replies.ends_with("err 512 exists\n"), "{replies}");
    assert_eq!(h.files.get("a.txt").map(Vec::as_slice), Some(&b"hello"[..]));
    assert_eq!(h.files.get("b").map(Vec::as_slice), Some(&b"new!"[..]));
}

#[test]
fn every_failure_is_the_same_535() {
    // A proof for another connection, another user, an unknown SCRAM user, a second auth.
    let mut h = session(Some(Fake::new()), Some([7; 32]));
    h.client(&alice_line([8; 32])).run();
    let mut other = alice_line([7; 32]);
    let at = other
        .windows(5)
        .position(|w| w == b"alice")
        .expect("the user in the line");
    other.splice(at..at + 5, b"carol".iter().copied());
    h.client(&other).run();
    h.client(
        &AuthRequest::Scram {
            plus: true,
            client_first: b"carol-first".to_vec(),
        }
        .encode(),
    )
    .run();
    assert_eq!(out(&mut h), "err 535 auth-failed\n".repeat(3));
    assert!(h.s.grant().is_none());
    h.client(&alice_line([7; 32]))
        .client(&alice_line([7; 32]))
        .run();
    assert_eq!(out(&mut h), "ok auth alice\nerr 535 auth-failed\n");
    assert_eq!(
        h.s.grant().map(|g| g.user.as_str()),
        Some("alice"),
        "AUTH-7"
    );
}

#[test]
fn a_plain_session_binds_to_zeros() {
    let mut h = session(Some(Fake::new()), None);
    h.client(&alice_line([7; 32]))
        .client(&alice_line([0; 32]))
        .run();
    assert_eq!(out(&mut h), "err 535 auth-failed\nok auth alice\n");
}

#[test]
fn scram_takes_more_and_auth_final() {
    let mut h = session(Some(Fake::new()), Some([7; 32]));
    h.client(b"auth-final YQ==\n").run();
    assert_eq!(out(&mut h), "err 500 syntax\n", "AUTH-6: no more to answer");
    h.client(
        &AuthRequest::Scram {
            plus: true,
            client_first: b"bob-first".to_vec(),
        }
        .encode(),
    )
    .run();
    // base64 of "r=x,s=y,i=4096"
    assert_eq!(out(&mut h), "more cj14LHM9eSxpPTQwOTY=\n");
    h.client(
        &AuthRequest::Final {
            client_final: b"bob-final".to_vec(),
        }
        .encode(),
    )
    .run();
    assert_eq!(out(&mut h), "ok auth bob dj1vaw==\n");
    h.client(&eager_put("a.txt", b"over", "replace")).run();
    assert!(out(&mut h).starts_with("ok put 4 "), "bob may replace");
}

#[test]
fn another_line_after_more_ends_the_exchange() {
    let mut h = session(Some(Fake::new()), Some([7; 32]));
    h.client(
        &AuthRequest::Scram {
            plus: true,
            client_first: b"bob-first".to_vec(),
        }
        .encode(),
    )
    .run();
    h.client(b"dir\n").run();
    h.client(
        &AuthRequest::Final {
            client_final: b"bob-final".to_vec(),
        }
        .encode(),
    )
    .run();
    assert_eq!(
        out(&mut h),
        "more cj14LHM9eSxpPTQwOTY=\nerr 535 auth-failed\nerr 530 auth-required\nerr 500 syntax\n"
    );
    assert!(h.s.grant().is_none());
}

#[test]
fn unknown_and_unoffered_mechanisms_are_503() {
    let mut fake = Fake::new();
    fake.mechanisms = vec![Mechanism::Ed25519];
    let mut h = session(Some(fake), Some([7; 32]));
    h.client(b"auth kerberos alice\n").run();
    h.client(
        &AuthRequest::Scram {
            plus: true,
            client_first: b"bob-first".to_vec(),
        }
        .encode(),
    )
    .run();
    h.client(b"auth ed25519 alice\n").run();
    assert_eq!(
        out(&mut h),
        "err 503 unsupported\nerr 503 unsupported\nerr 500 syntax\n"
    );
}

#[test]
fn rights_are_checked_before_the_file_is() {
    let mut fake = Fake::new();
    fake.alice = [Right::List].into_iter().collect();
    let cb = [7; 32];
    let mut h = session(Some(fake), Some(cb));
    h.client(&alice_line(cb)).run();
    assert_eq!(out(&mut h), "ok auth alice\n");
    h.client(b"get 0 a.txt\nget 0 missing\nput 3 new wait x\n")
        .run();
    h.client(&eager_put("y", b"abc", "new")).run();
    assert_eq!(out(&mut h), "err 550 not-permitted\n".repeat(4));
    assert!(h.ops.is_empty(), "{:?}", h.ops);
}

#[test]
fn anonymous_access_has_its_own_rights() {
    let mut fake = Fake::new();
    fake.anonymous = Some(Rights::READ_ONLY);
    let mut h = session(Some(fake), Some([7; 32]));
    h.client(b"get 0 a.txt\n").run();
    let got = out(&mut h);
    assert!(got.starts_with("ok get 5 "), "{got}");
    h.client(&eager_put("z", b"abc", "new")).run();
    h.client(b"put 3 new wait z\n").run();
    assert_eq!(out(&mut h), "err 550 not-permitted\n".repeat(2));
    assert!(!h.files.contains_key("z"));
}

#[test]
fn pipelined_eager_puts_stop_at_the_first_refused() {
    let mut fake = Fake::new();
    fake.anonymous = Some(Rights::READ_ONLY);
    let mut h = session(Some(fake), Some([7; 32]));
    let mut batch = Vec::new();
    for n in ["p1", "p2", "p3"] {
        batch.extend_from_slice(&eager_put(n, b"abc", "new"));
    }
    h.client(&batch).run();
    assert_eq!(out(&mut h), "err 550 not-permitted\n".repeat(3));
    assert!(h.files.keys().all(|k| k == "a.txt"), "{:?}", h.files.keys());
}
