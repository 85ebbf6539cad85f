//! The `auth` extension in the server session (spec section 16), in memory, with a fake
//! [`Authenticator`] whose "proofs" are easy to make: what the session decides (the order of
//! the exchange, one reply for every failure, nothing before authentication, the rights of
//! each request) is what these tests check; the real proofs are `ferry-auth`'s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferry_proto::auth::{
    Authenticator, Grant, Mechanism, Right, Rights, ScramServer, Sessions, Throttle,
    ThrottleLimits, UserName,
};
use ferry_proto::memory::Harness;
use ferry_proto::server::{End, SessionConfig};
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
    throttle: Option<Throttle>,
}

impl Fake {
    fn new() -> Self {
        Fake {
            mechanisms: Mechanism::ALL.to_vec(),
            anonymous: None,
            alice: [Right::List, Right::Read, Right::Create]
                .into_iter()
                .collect(),
            throttle: None,
        }
    }

    fn throttled(limits: ThrottleLimits) -> Self {
        Fake {
            throttle: Some(Throttle::new(limits)),
            ..Fake::new()
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

    fn throttle(&self) -> Option<&Throttle> {
        self.throttle.as_ref()
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

// ------------------------------------------------ throttling (AUTH-20, AUTH-22) ---

/// A session from `peer` on a configuration other sessions share (one throttle), its clock
/// set to `at` when given (sessions of one test share one virtual clock).
fn from(cfg: &SessionConfig, peer: &str, at: Option<std::time::Instant>) -> Harness {
    let mut h = Harness::new(cfg.clone());
    if let Some(at) = at {
        h.now = at;
    }
    h.s.set_peer(peer.parse::<SocketAddr>().expect("an address"));
    h.s.set_channel_binding([7; 32]);
    h.run();
    assert_eq!(out(&mut h).as_bytes(), GREETING);
    h
}

/// alice's proof for another connection: a failure.
fn wrong() -> Vec<u8> {
    alice_line([8; 32])
}

fn throttle(cfg: &SessionConfig) -> &Throttle {
    cfg.auth
        .as_deref()
        .and_then(|a| a.throttle())
        .expect("a throttle")
}

const FAILED: &str = "err 535 auth-failed\n";
const THROTTLED: &str = "err 425 auth-throttled\n";

fn no_delays() -> ThrottleLimits {
    ThrottleLimits {
        free: u32::MAX,
        ..ThrottleLimits::default()
    }
}

#[test]
fn failures_beyond_the_third_in_a_row_are_answered_later_and_later() {
    let cfg = config(Some(Fake::throttled(ThrottleLimits::default())));
    let mut h = from(&cfg, "192.0.2.1:5000", None);
    for _ in 0..3 {
        h.client(&wrong()).run();
    }
    assert_eq!(out(&mut h), FAILED.repeat(3), "the first three at once");
    for ms in [1000, 2000, 4000, 4000] {
        h.client(&wrong()).run();
        h.wait(Duration::from_millis(ms - 1));
        assert_eq!(out(&mut h), "", "held back for {ms} ms");
        h.wait(Duration::from_millis(1));
        assert_eq!(out(&mut h), FAILED, "released after {ms} ms exactly");
    }
    assert!(h.finished().is_none());
}

#[test]
fn a_scram_failure_is_held_back_too_and_requests_sent_meanwhile_wait_for_it() {
    let limits = ThrottleLimits {
        free: 0,
        ..ThrottleLimits::default()
    };
    let cfg = config(Some(Fake::throttled(limits)));
    let mut h = from(&cfg, "192.0.2.1:5000", None);
    h.client(
        &AuthRequest::Scram {
            plus: true,
            client_first: b"bob-first".to_vec(),
        }
        .encode(),
    )
    .run();
    assert_eq!(out(&mut h), "more cj14LHM9eSxpPTQwOTY=\n");
    h.client(
        &AuthRequest::Final {
            client_final: b"bob-wrong".to_vec(),
        }
        .encode(),
    )
    .run();
    // AUTH-5 forbids it, but a line sent meanwhile is read after the reply, in order.
    h.client(b"dir\n").run();
    assert_eq!(out(&mut h), "");
    h.wait(Duration::from_secs(1));
    assert_eq!(out(&mut h), format!("{FAILED}err 530 auth-required\n"));
}

#[test]
fn ten_failures_refuse_the_address_and_its_64_not_others() {
    let cfg = config(Some(Fake::throttled(no_delays())));
    let mut h = from(&cfg, "[2001:db8:1:2::1]:5000", None);
    for _ in 0..10 {
        h.client(&wrong()).run();
    }
    assert_eq!(out(&mut h), FAILED.repeat(10));
    // The next auth is refused before its proof (a right one) is looked at; it closes.
    h.client(&alice_line([7; 32])).run();
    assert_eq!(out(&mut h), THROTTLED);
    assert!(h.s.grant().is_none());
    h.wait(Duration::from_secs(1));
    assert_eq!(
        h.finished(),
        Some(End::Closed(ferry_wire::auth::AUTH_THROTTLED))
    );
    let t0 = h.now;
    // Another address of the same /64, on another connection: refused at its first auth;
    // other requests are answered as usual.
    let mut again = from(&cfg, "[2001:db8:1:2:ffff::9]:6000", Some(t0));
    again.client(b"dir\n").run();
    assert_eq!(out(&mut again), "err 530 auth-required\n");
    again.client(&alice_line([7; 32])).run();
    assert_eq!(out(&mut again), THROTTLED);
    // Other sources are neither refused nor delayed.
    for peer in ["[2001:db8:1:3::1]:5000", "192.0.2.1:5000"] {
        let mut other = from(&cfg, peer, Some(t0));
        other.client(&wrong()).client(&alice_line([7; 32])).run();
        assert_eq!(
            out(&mut other),
            format!("{FAILED}ok auth alice\n"),
            "{peer}"
        );
    }
    // Ten minutes later the refusal is over.
    let mut later = from(
        &cfg,
        "[2001:db8:1:2::1]:7000",
        Some(t0 + Duration::from_secs(600)),
    );
    later.client(&alice_line([7; 32])).run();
    assert_eq!(out(&mut later), "ok auth alice\n");
}

#[test]
fn auth_final_of_a_refused_address_is_refused() {
    let cfg = config(Some(Fake::throttled(no_delays())));
    let mut h = from(&cfg, "192.0.2.1:5000", None);
    h.client(
        &AuthRequest::Scram {
            plus: true,
            client_first: b"bob-first".to_vec(),
        }
        .encode(),
    )
    .run();
    assert_eq!(out(&mut h), "more cj14LHM9eSxpPTQwOTY=\n");
    // Meanwhile other connections from the address fail ten times.
    let mut other = from(&cfg, "192.0.2.1:5001", Some(h.now));
    for _ in 0..10 {
        other.client(&wrong()).run();
    }
    h.client(
        &AuthRequest::Final {
            client_final: b"bob-final".to_vec(),
        }
        .encode(),
    )
    .run();
    assert_eq!(out(&mut h), THROTTLED);
    assert!(h.s.grant().is_none());
}

#[test]
fn a_success_restarts_the_delays_but_not_the_count_to_a_refusal() {
    let cfg = config(Some(Fake::throttled(ThrottleLimits::default())));
    let mut h = from(&cfg, "192.0.2.1:5000", None);
    for _ in 0..4 {
        h.client(&wrong()).run();
    }
    h.wait(Duration::from_secs(1));
    h.client(&alice_line([7; 32])).run();
    assert_eq!(out(&mut h), format!("{}ok auth alice\n", FAILED.repeat(4)));
    // A new row of failures: three at once again, the fourth held back …
    let mut next = from(&cfg, "192.0.2.1:5001", Some(h.now));
    for _ in 0..4 {
        next.client(&wrong()).run();
    }
    assert_eq!(out(&mut next), FAILED.repeat(3));
    next.wait(Duration::from_secs(1));
    assert_eq!(out(&mut next), FAILED);
    // … but 4 + 4 + 2 = 10 failures within seconds refuse the address.
    next.client(&wrong()).run();
    next.wait(Duration::from_secs(2));
    next.client(&wrong()).run();
    next.wait(Duration::from_secs(4));
    assert_eq!(out(&mut next), FAILED.repeat(2));
    next.client(&alice_line([7; 32])).run();
    assert_eq!(out(&mut next), THROTTLED);
}

#[test]
fn one_address_held_back_does_not_delay_another() {
    let cfg = config(Some(Fake::throttled(ThrottleLimits::default())));
    let mut slow = from(&cfg, "192.0.2.1:5000", None);
    for _ in 0..4 {
        slow.client(&wrong()).run();
    }
    assert_eq!(out(&mut slow), FAILED.repeat(3), "the 4th is held back");
    let mut other = from(&cfg, "192.0.2.2:5000", Some(slow.now));
    for _ in 0..3 {
        other.client(&wrong()).run();
    }
    other.client(&alice_line([7; 32])).run();
    assert_eq!(other.now, slow.now, "no time passed");
    assert_eq!(
        out(&mut other),
        format!("{}ok auth alice\n", FAILED.repeat(3))
    );
}

#[test]
fn the_throttle_remembers_a_bounded_number_of_sources_refused_ones_last_to_go() {
    let limits = ThrottleLimits {
        max_sources: 4,
        max_failures: 3,
        ..no_delays()
    };
    let cfg = config(Some(Fake::throttled(limits)));
    let mut refused = from(&cfg, "198.51.100.1:5000", None);
    for _ in 0..3 {
        refused.client(&wrong()).run();
    }
    let t0 = refused.now;
    for i in 0..50 {
        let mut h = from(&cfg, &format!("192.0.2.{i}:5000"), Some(t0));
        h.client(&wrong()).run();
        assert_eq!(out(&mut h), FAILED);
        assert!(
            throttle(&cfg).sources() <= 4,
            "{}",
            throttle(&cfg).sources()
        );
    }
    assert_eq!(throttle(&cfg).sources(), 4);
    let mut again = from(&cfg, "198.51.100.1:5001", Some(t0));
    again.client(&alice_line([7; 32])).run();
    assert_eq!(out(&mut again), THROTTLED, "still refused");
}

#[test]
fn a_client_that_keeps_sending_while_held_back_is_refused() {
    let limits = ThrottleLimits {
        free: 0,
        ..ThrottleLimits::default()
    };
    let cfg = config(Some(Fake::throttled(limits)));
    let mut h = from(&cfg, "192.0.2.1:5000", None);
    h.client(&wrong()).run();
    h.client(&[b'x'; 8192]).run();
    assert_eq!(out(&mut h), "", "two lines' worth is kept");
    h.client(b"x").run();
    assert_eq!(out(&mut h), THROTTLED);
    h.wait(Duration::from_secs(1));
    assert_eq!(
        h.finished(),
        Some(End::Closed(ferry_wire::auth::AUTH_THROTTLED))
    );
}

#[test]
fn a_held_reply_gives_way_to_a_shutdown_and_is_dropped_at_eof() {
    let limits = ThrottleLimits {
        free: 0,
        ..ThrottleLimits::default()
    };
    let cfg = config(Some(Fake::throttled(limits)));
    let mut h = from(&cfg, "192.0.2.1:5000", None);
    h.client(&wrong()).run();
    let now = h.now;
    h.s.shutdown(now + Duration::from_secs(10));
    h.run();
    assert_eq!(out(&mut h), "err 422 shutting-down\n");
    let mut e = from(&cfg, "192.0.2.1:5001", Some(now));
    e.client(&wrong()).run();
    e.eof = true;
    e.run();
    assert_eq!(out(&mut e), "", "no reply after the client left");
    assert_eq!(e.finished(), Some(End::Eof));
}

#[test]
fn without_the_peer_address_nothing_is_throttled() {
    let cfg = config(Some(Fake::throttled(ThrottleLimits {
        free: 0,
        max_failures: 1,
        ..ThrottleLimits::default()
    })));
    let mut h = Harness::new(cfg.clone());
    h.s.set_channel_binding([7; 32]);
    h.run();
    out(&mut h);
    h.client(&wrong()).client(&wrong()).run();
    assert_eq!(out(&mut h), FAILED.repeat(2));
    assert_eq!(throttle(&cfg).sources(), 0);
}

#[test]
fn sessions_are_counted_per_user_and_users_without_one_are_forgotten() {
    let s = Sessions::new();
    let a = s.begin(&user("alice"), Some(2)).expect("1 of 2");
    let b = s.begin(&user("alice"), Some(2)).expect("2 of 2");
    assert!(s.begin(&user("alice"), Some(2)).is_none(), "AUTH-21");
    assert!(s.begin(&user("alice"), Some(3)).is_some(), "a higher limit");
    let c = s.begin(&user("bob"), None).expect("no limit, counted");
    assert_eq!((s.count(&user("alice")), s.count(&user("bob"))), (2, 1));
    drop(a);
    assert!(
        s.begin(&user("alice"), Some(2)).is_some(),
        "a place came back"
    );
    drop((b, c));
    assert_eq!(s.users(), 0);
    assert!(s.begin(&user("carol"), Some(0)).is_none());
    assert_eq!(s.users(), 0, "a refusal keeps nothing");
}
