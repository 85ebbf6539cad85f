//! The client's login (ferry-client-core's session with ferry-auth's provers) against the
//! server's (ferry-proto's session with a [`Directory`]), both in memory: every octet of the
//! exchange goes from one state machine to the other, and what each decides is checked.

use std::sync::Arc;
use std::time::Instant;

use ferry_auth::directory::Directory;
use ferry_auth::keys::PrivateKey;
use ferry_auth::login::{KeyProver, PasswordProver};
use ferry_client_core::login::Prover;
use ferry_client_core::{
    Action, AuthFailure, ClientError, ClientOptions, ClientSession, Login, OpId, Outcome,
};
use ferry_proto::auth::Authenticator;
use ferry_proto::memory::Harness;
use ferry_proto::server::SessionConfig;
use ferry_tls::{ClientTls, Trust};
use ferry_wire::{Greeting, Limits};
use zeroize::Zeroizing;

mod common;

use common::{CB, user};

/// The users of `common::world`, alice's key as a prover.
struct World {
    alice: Arc<dyn Prover>,
    directory: Arc<Directory>,
}

fn world(tls: bool) -> World {
    let w = common::world(tls);
    World {
        alice: Arc::new(KeyProver::new(w.alice)),
        directory: w.directory,
    }
}

/// A server session of `directory` (its greeting offering what the directory offers), on a
/// connection whose channel binding is `cb` (`None`: plain).
fn server(directory: Option<&Arc<Directory>>, cb: Option<[u8; 32]>) -> Harness {
    let mut greeting = Greeting::new(Limits::default());
    if let Some(d) = directory {
        greeting = ferry_wire::auth::offer(greeting, &d.mechanisms()).expect("offer");
    }
    let cfg = SessionConfig {
        auth: directory.map(|d| Arc::clone(d) as Arc<dyn Authenticator>),
        ..ferry_proto::memory::test_config(&greeting.to_bytes())
    };
    let mut h = Harness::new(cfg);
    if let Some(cb) = cb {
        h.s.set_channel_binding(cb);
    }
    h.files.insert("a.txt".into(), b"hello".to_vec());
    h.run();
    h
}

fn options(tls: bool, login: Login) -> ClientOptions {
    ClientOptions {
        // Only whether the connection is TLS matters to the session.
        tls: tls.then(|| ClientTls::new("localhost", 7451, Trust::Insecure).expect("tls")),
        login: Some(login),
        ..ClientOptions::default()
    }
}

/// What a man in the middle does to the server's octets.
type Tamper<'a> = &'a mut dyn FnMut(Vec<u8>) -> Vec<u8>;

/// The results of the first operation and of the dir queued behind it, and what the client
/// sent.
type Run = (
    Result<Outcome, ClientError>,
    Option<Result<Outcome, ClientError>>,
    Vec<u8>,
);

/// Runs the client's first operation (greeting and login) against `h`; then, if it
/// succeeded, a `dir`. Returns the first operation's result, the dir's, and every octet the
/// client sent.
fn run(h: &mut Harness, options: ClientOptions, cb: Option<[u8; 32]>, tamper: Tamper<'_>) -> Run {
    let now = Instant::now();
    let mut c = ClientSession::new(options, now);
    if let Some(cb) = cb {
        c.set_channel_binding(cb);
    }
    // Queued at once: it must wait for the login (AUTH-5).
    let dir = c.dir();
    let mut pending: Vec<u8> = Vec::new();
    let mut sent_by_client = Vec::new();
    let (mut first, mut second) = (None, None);
    for _ in 0..1000 {
        match c.poll(now) {
            Action::Io { send, receive, .. } => {
                let mut moved = false;
                if send {
                    let out = c.output().to_vec();
                    if !out.is_empty() {
                        sent_by_client.extend_from_slice(&out);
                        h.client(&out).run();
                        c.sent(out.len());
                        moved = true;
                    }
                }
                if receive {
                    let fresh = std::mem::take(&mut h.sent);
                    if !fresh.is_empty() {
                        pending.extend(tamper(fresh));
                    }
                    if !pending.is_empty() {
                        let space = c.input_space();
                        let n = space.len().min(pending.len());
                        space[..n].copy_from_slice(&pending[..n]);
                        pending.drain(..n);
                        c.received(n);
                        moved = true;
                    }
                }
                assert!(moved, "both sides wait");
            }
            Action::Done {
                id: OpId(0),
                result,
            } => first = Some(result),
            Action::Done { id, result } if id == dir => second = Some(result),
            Action::Disconnect | Action::Idle => break,
            other => panic!("unexpected {other:?}"),
        }
        if first.is_some() && second.is_some() {
            break;
        }
    }
    (
        first.expect("the first operation ended"),
        second,
        sent_by_client,
    )
}

fn no_tamper() -> impl FnMut(Vec<u8>) -> Vec<u8> {
    |v| v
}

fn login(name: &str, prover: Arc<dyn Prover>) -> Login {
    Login::new(user(name), prover)
}

fn password(p: &str) -> Arc<dyn Prover> {
    Arc::new(PasswordProver::new(Zeroizing::new(p.to_owned())))
}

fn auth_failure(r: Result<Outcome, ClientError>) -> AuthFailure {
    match r {
        Err(ClientError::Auth(a)) => a.failure,
        other => panic!("not a failed login: {other:?}"),
    }
}

#[test]
fn a_key_and_a_password_log_in_and_the_session_goes_on() {
    let w = world(true);
    let key = Arc::clone(&w.alice);
    for (name, prover) in [("alice", key), ("bob", password("correct horse"))] {
        let mut h = server(Some(&w.directory), Some(CB));
        let (first, dir, sent) = run(
            &mut h,
            options(true, login(name, prover)),
            Some(CB),
            &mut no_tamper(),
        );
        assert!(matches!(first, Ok(Outcome::Connected)), "{name}: {first:?}");
        assert!(
            matches!(dir, Some(Ok(Outcome::Listing(_)))),
            "{name}: {dir:?}"
        );
        assert_eq!(
            h.s.grant().map(|g| g.user.as_str().to_owned()),
            Some(name.to_owned())
        );
        // The dir left only after the login's final reply.
        let text = String::from_utf8_lossy(&sent);
        assert!(
            text.starts_with("auth ") && text.ends_with("\ndir\n"),
            "{text}"
        );
        assert_eq!(text.matches("dir\n").count(), 1, "{text}");
    }
}

#[test]
fn refusals_are_failed_logins_and_nothing_else_is_sent() {
    let w = world(true);
    let other_key: Arc<dyn Prover> = Arc::new(KeyProver::new(
        PrivateKey::generate("mallory").expect("key"),
    ));
    let alice = Arc::clone(&w.alice);
    for (name, prover, client_cb) in [
        ("alice", other_key, CB),
        ("bob", password("wrong"), CB),
        ("carol", password("correct horse"), CB),
        // Relayed: the client's connection is not the server's.
        ("alice", alice, [9; 32]),
        ("bob", password("correct horse"), [9; 32]),
    ] {
        let mut h = server(Some(&w.directory), Some(CB));
        let (first, dir, sent) = run(
            &mut h,
            options(true, login(name, prover)),
            Some(client_cb),
            &mut no_tamper(),
        );
        match auth_failure(first) {
            AuthFailure::Refused(e) => assert_eq!(e.code.get(), 535, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        assert!(
            matches!(dir, Some(Err(ClientError::Disconnected(_)))),
            "{dir:?}"
        );
        assert!(!String::from_utf8_lossy(&sent).contains("dir"), "{name}");
        assert!(h.s.grant().is_none());
    }
}

#[test]
fn a_server_that_does_not_know_the_password_is_caught() {
    // AUTH-15: the server's signature is checked; a forged one ends the session at once.
    let w = world(true);
    let mut h = server(Some(&w.directory), Some(CB));
    let mut forge = |mut v: Vec<u8>| {
        if v.starts_with(b"ok auth bob ") {
            // Another valid base64 token of the same length: v= of another signature.
            let at = b"ok auth bob ".len() + 4;
            v[at] = if v[at] == b'A' { b'B' } else { b'A' };
        }
        v
    };
    let (first, dir, sent) = run(
        &mut h,
        options(true, login("bob", password("correct horse"))),
        Some(CB),
        &mut forge,
    );
    assert!(matches!(auth_failure(first), AuthFailure::Server(_)));
    assert!(matches!(dir, Some(Err(ClientError::Disconnected(_)))));
    assert!(!String::from_utf8_lossy(&sent).contains("dir"));
}

#[test]
fn no_login_on_a_plain_connection_unless_allowed() {
    let w = world(false);
    let mut h = server(Some(&w.directory), None);
    let (first, _, sent) = run(
        &mut h,
        options(false, login("bob", password("correct horse"))),
        None,
        &mut no_tamper(),
    );
    assert_eq!(auth_failure(first), AuthFailure::PlainConnection);
    assert!(sent.is_empty(), "AUTH-3: nothing was sent");
    // Allowed: SCRAM without binding, and a key signing 32 zero octets (AUTH-9).
    let key = Arc::clone(&w.alice);
    for (name, prover) in [("bob", password("correct horse")), ("alice", key)] {
        let mut h = server(Some(&w.directory), None);
        let plain = login(name, prover).allow_plain(true);
        let (first, dir, _) = run(&mut h, options(false, plain), None, &mut no_tamper());
        assert!(matches!(first, Ok(Outcome::Connected)), "{name}: {first:?}");
        assert!(matches!(dir, Some(Ok(_))));
    }
}

#[test]
fn a_server_without_auth_or_the_mechanism_is_told_apart() {
    let mut h = server(None, Some(CB));
    let (first, _, sent) = run(
        &mut h,
        options(true, login("bob", password("x"))),
        Some(CB),
        &mut no_tamper(),
    );
    assert_eq!(auth_failure(first), AuthFailure::NotOffered);
    assert!(sent.is_empty());
    // Over TLS a password needs scram-sha-256-plus; a directory made for plain connections
    // offers scram-sha-256 only.
    let w = world(false);
    let mut h = server(Some(&w.directory), Some(CB));
    let (first, _, _) = run(
        &mut h,
        options(true, login("bob", password("correct horse"))),
        Some(CB),
        &mut no_tamper(),
    );
    assert!(
        matches!(auth_failure(first), AuthFailure::Mechanism { .. }),
        "the mechanism is missing"
    );
}
