//! The `auth` extension (spec section 16) on every server implementation, over TLS: users
//! from a users file (`ferry_auth::directory`), each served its own folder (AUTH-18), proofs
//! bound to the connection's channel binding, nothing before authentication.

use std::sync::Arc;

use base64::Engine as _;
use ferry_auth::keys::PrivateKey;
use ferry_auth::scram::ClientExchange;
use ferry_auth::users::UserName;
use ferry_test_support::tls::{self, TlsLines};
use ferry_test_support::users::{self, BOB_PASSWORD};
use ferry_test_support::{Impl, TestServer};
use ferry_wire::auth::{AuthReply, AuthRequest, decode_auth_reply};

type Tls = TlsLines;

fn user(s: &str) -> UserName {
    UserName::new(s).expect("user")
}

struct Setup {
    server: TestServer,
    alice: Arc<PrivateKey>,
    _users: users::Users,
}

/// alice (a key; list, read, create; one session at a time; three files at most) and bob (a
/// password; list, read), each with a folder holding one file of their own
/// (`ferry_test_support::users`).
fn setup(imp: Impl) -> Setup {
    let (server, users) = users::start_with(
        imp,
        |file| {
            let alice = file.users.get_mut(&user("alice")).expect("alice");
            alice.max_sessions = Some(1);
            alice.quota_files = Some(3);
        },
        |_| {},
    );
    Setup {
        server,
        alice: Arc::clone(&users.alice_key),
        _users: users,
    }
}

fn ring_rng() -> ring::rand::SystemRandom {
    ring::rand::SystemRandom::new()
}

/// A TLS session to `server`, its greeting read; and the connection's channel binding.
fn connect(server: &TestServer) -> (Tls, [u8; 32]) {
    let mut s = TlsLines::connect(
        server.addr,
        &tls::client(server.tls.as_ref().expect("a TLS server")),
    );
    let greeting = s.line();
    assert!(
        greeting.contains(" ext=auth") && greeting.contains(" auth=ed25519,scram-sha-256-plus"),
        "{greeting}"
    );
    let cb = s.channel_binding();
    (s, cb)
}

fn ed25519_line(key: &PrivateKey, cb: &[u8; 32], name: &str) -> Vec<u8> {
    ferry_auth::proof::request(key, cb, &user(name)).encode()
}

fn dir_names(s: &mut Tls) -> Vec<String> {
    s.send(b"dir\n");
    let head = s.line();
    let count: usize = head
        .trim_end()
        .strip_prefix("ok dir ")
        .unwrap_or_else(|| panic!("{head}"))
        .parse()
        .expect("count");
    (0..count)
        .map(|_| {
            s.line()
                .trim_end()
                .rsplit(' ')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn users_see_only_their_own_folder(imp: Impl) {
    let w = setup(imp);
    let (mut s, cb) = connect(&w.server);
    s.send(b"dir\n");
    assert_eq!(s.line(), "err 530 auth-required\n");
    s.send(&ed25519_line(&w.alice, &cb, "alice"));
    assert_eq!(s.line(), "ok auth alice\n");
    assert_eq!(dir_names(&mut s), ["alice.txt"]);
    s.send(b"get 0 bob.txt\n");
    assert_eq!(
        s.line(),
        "err 511 not-found\n",
        "bob's file is not in alice's folder"
    );

    // bob, with his password, bound to his connection.
    let (mut s, cb) = connect(&w.server);
    let rng = ring_rng();
    let (mut client, first) =
        ClientExchange::start("bob", BOB_PASSWORD, Some(cb), &rng).expect("start");
    let b64 = base64::engine::general_purpose::STANDARD;
    s.send(
        &AuthRequest::Scram {
            plus: true,
            client_first: b64.decode(first).expect("b64"),
        }
        .encode(),
    );
    let more = s.line();
    let Ok((AuthReply::More { server_first }, _)) = decode_auth_reply(more.as_bytes()) else {
        panic!("{more}");
    };
    let last = client.step(&b64.encode(server_first)).expect("step");
    s.send(
        &AuthRequest::Final {
            client_final: b64.decode(last).expect("b64"),
        }
        .encode(),
    );
    let ok = s.line();
    let Ok((
        AuthReply::Ok {
            user: who,
            server_final: Some(v),
        },
        _,
    )) = decode_auth_reply(ok.as_bytes())
    else {
        panic!("{ok}");
    };
    assert_eq!(who.as_str(), "bob");
    client
        .finish(&b64.encode(v))
        .expect("the server's signature");
    assert_eq!(dir_names(&mut s), ["bob.txt"]);
    s.send(b"put 1 new wait x\n");
    assert_eq!(s.line(), "err 550 not-permitted\n");
}

fn a_proof_from_another_connection_is_refused(imp: Impl) {
    let w = setup(imp);
    let (mut first, cb_first) = connect(&w.server);
    let (mut second, cb_second) = connect(&w.server);
    assert_ne!(cb_first, cb_second, "each connection has its own binding");
    // What alice sent on the first connection, replayed on the second.
    let proof = ed25519_line(&w.alice, &cb_first, "alice");
    second.send(&proof);
    assert_eq!(second.line(), "err 535 auth-failed\n");
    first.send(&proof);
    assert_eq!(first.line(), "ok auth alice\n");
}

/// AUTH-21: alice may have one session: a second login gets `err 426` and stays
/// unauthenticated until the first session ends, by `close` or by a dropped connection.
fn a_user_at_its_maximum_of_sessions_is_busy_until_one_ends(imp: Impl) {
    let w = setup(imp);
    let (mut first, cb) = connect(&w.server);
    first.send(&ed25519_line(&w.alice, &cb, "alice"));
    assert_eq!(first.line(), "ok auth alice\n");
    let (mut second, cb2) = connect(&w.server);
    second.send(&ed25519_line(&w.alice, &cb2, "alice"));
    assert_eq!(second.line(), "err 426 user-busy\n");
    second.send(b"dir\n");
    assert_eq!(second.line(), "err 530 auth-required\n");
    first.send(b"close\n");
    assert_eq!(first.line(), "bye\n");
    drop(first);
    login_when_free(&w, &mut second, &cb2);
    assert_eq!(dir_names(&mut second), ["alice.txt"]);
    // A connection dropped without `close` gives its place back too.
    drop(second);
    let (mut third, cb3) = connect(&w.server);
    login_when_free(&w, &mut third, &cb3);
}

/// Logs alice in on `s`, again while the server answers `err 426` (the session that held her
/// place is over for the client, but the server drops it a moment later).
fn login_when_free(w: &Setup, s: &mut Tls, cb: &[u8; 32]) {
    for _ in 0..1000 {
        s.send(&ed25519_line(&w.alice, cb, "alice"));
        match s.line().as_str() {
            "ok auth alice\n" => return,
            "err 426 user-busy\n" => std::thread::sleep(std::time::Duration::from_millis(10)),
            other => panic!("{other}"),
        }
    }
    panic!("alice's place never came back");
}

/// AUTH-20 through each driver: the fourth failure in a row is held back (the driver waits
/// for the session's deadline, which must not end the session), then answered, and the
/// session goes on.
fn a_failure_held_back_is_answered_and_the_session_goes_on(imp: Impl) {
    let w = setup(imp);
    let (mut s, cb) = connect(&w.server);
    let wrong = ed25519_line(&w.alice, &[0; 32], "alice");
    for _ in 0..4 {
        s.send(&wrong);
        assert_eq!(s.line(), "err 535 auth-failed\n");
    }
    s.send(&ed25519_line(&w.alice, &cb, "alice"));
    assert_eq!(s.line(), "ok auth alice\n");
    assert_eq!(dir_names(&mut s), ["alice.txt"]);
}

/// PUT-23 per user: alice's folder may hold three files; it holds one: two puts fit, the
/// third is `err 432 no-space` (before its payload, as for the quota in octets).
fn a_user_s_quota_in_files_refuses_one_more_file(imp: Impl) {
    let w = setup(imp);
    let (mut s, cb) = connect(&w.server);
    s.send(&ed25519_line(&w.alice, &cb, "alice"));
    assert_eq!(s.line(), "ok auth alice\n");
    for name in ["two", "three"] {
        s.send(format!("put 1 new wait {name}\n").as_bytes());
        assert_eq!(s.line(), "go\n");
        s.send(format!("data 1\nxend {}\n", ferry_wire::Digest::of(b"x")).as_bytes());
        let ok = s.line();
        assert!(ok.starts_with("ok put 1 "), "{name}: {ok}");
    }
    s.send(b"put 1 new wait four\n");
    assert_eq!(s.line(), "err 432 no-space\n");
    let mut names = dir_names(&mut s);
    names.sort();
    assert_eq!(names, ["alice.txt", "three", "two"]);
}

ferry_test_support::every_impl!(
    users_see_only_their_own_folder,
    a_proof_from_another_connection_is_refused,
    a_user_at_its_maximum_of_sessions_is_busy_until_one_ends,
    a_failure_held_back_is_answered_and_the_session_goes_on,
    a_user_s_quota_in_files_refuses_one_more_file,
);
