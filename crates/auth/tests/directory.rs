//! The users file's users authenticating to a server session, in memory: real Ed25519 proofs
//! and real SCRAM exchanges (`ferry_auth`) against `ferry_proto`'s session with a
//! [`Directory`] as its authenticator. What the session decides alone is tested in
//! `crates/proto/tests/auth.rs`; here, that the two agree on every octet.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ferry_auth::directory::Directory;
use ferry_auth::keys::PrivateKey;
use ferry_auth::rights::Rights;
use ferry_auth::scram::{ClientExchange, MIN_ITERATIONS, StoredPassword};
use ferry_auth::users::{User, UserName, UsersFile};
use ferry_proto::auth::Authenticator;
use ferry_proto::memory::Harness;
use ferry_proto::server::SessionConfig;
use ferry_wire::auth::{AuthReply, AuthRequest, decode_auth_reply};
use ring::rand::SystemRandom;

const CB: [u8; 32] = [7; 32];

fn user(s: &str) -> UserName {
    UserName::new(s).expect("user")
}

struct World {
    alice: PrivateKey,
    directory: Arc<Directory>,
}

/// alice: a key, `list,read`; bob: password "correct horse", every right.
fn world(tls: bool) -> World {
    let alice = PrivateKey::generate("alice@test").expect("key");
    let mut file = UsersFile::default();
    let mut a = User::new("/srv/alice".into(), Rights::READ_ONLY).expect("alice");
    a.keys.push(alice.public().clone());
    file.users.insert(user("alice"), a);
    let mut b = User::new("/srv/bob".into(), Rights::ALL).expect("bob");
    b.password = Some(
        StoredPassword::new("correct horse", MIN_ITERATIONS, &SystemRandom::new())
            .expect("verifier"),
    );
    file.users.insert(user("bob"), b);
    World {
        alice,
        directory: Arc::new(Directory::new(file, tls).expect("directory")),
    }
}

fn session(directory: &Arc<Directory>, cb: Option<[u8; 32]>) -> Harness {
    let cfg = SessionConfig {
        auth: Some(Arc::clone(directory) as Arc<dyn Authenticator>),
        ..ferry_proto::memory::test_config(b"ferry/1 ext=auth\n")
    };
    let mut h = Harness::new(cfg);
    if let Some(cb) = cb {
        h.s.set_channel_binding(cb);
    }
    h.files.insert("a.txt".into(), b"hello".to_vec());
    h.run();
    out(&mut h);
    h
}

fn out(h: &mut Harness) -> String {
    String::from_utf8_lossy(&std::mem::take(&mut h.sent)).into_owned()
}

fn alice_line(w: &World, cb: &[u8; 32], name: &str) -> Vec<u8> {
    let (public_key, signature) = ferry_auth::proof::sign(&w.alice, cb, &user(name));
    AuthRequest::Ed25519 {
        user: user(name),
        public_key,
        signature,
    }
    .encode()
}

/// A SCRAM login as `name` with `password` over a session bound to `client_cb`; the
/// server's final reply line.
fn scram(h: &mut Harness, name: &str, password: &str, client_cb: Option<[u8; 32]>) -> String {
    let rng = SystemRandom::new();
    let (mut client, first) =
        ClientExchange::start(name, password, client_cb, &rng).expect("client start");
    let plus = client_cb.is_some();
    let first = B64.decode(first).expect("b64");
    h.client(
        &AuthRequest::Scram {
            plus,
            client_first: first,
        }
        .encode(),
    )
    .run();
    let more = out(h);
    let Ok((AuthReply::More { server_first }, _)) = decode_auth_reply(more.as_bytes()) else {
        return more;
    };
    let client_final = client.step(&B64.encode(server_first)).expect("client step");
    h.client(
        &AuthRequest::Final {
            client_final: B64.decode(client_final).expect("b64"),
        }
        .encode(),
    )
    .run();
    let last = out(h);
    if let Ok((
        AuthReply::Ok {
            server_final: Some(v),
            ..
        },
        _,
    )) = decode_auth_reply(last.as_bytes())
    {
        client
            .finish(&B64.encode(v))
            .expect("the server proved it knows the verifier (AUTH-15)");
    }
    last
}

#[test]
fn a_key_logs_in_and_its_rights_apply() {
    let w = world(true);
    let mut h = session(&w.directory, Some(CB));
    h.client(&alice_line(&w, &CB, "alice")).run();
    assert_eq!(out(&mut h), "ok auth alice\n");
    h.client(b"put 3 new wait x\ndir\n").run();
    assert_eq!(
        out(&mut h),
        "err 550 not-permitted\nok dir 1\n5 2024-03-01T08:00:00Z a.txt\n"
    );
}

#[test]
fn a_proof_for_another_connection_or_user_fails() {
    let w = world(true);
    let mut h = session(&w.directory, Some(CB));
    h.client(&alice_line(&w, &[8; 32], "alice")).run();
    h.client(&alice_line(&w, &CB, "bob")).run();
    assert_eq!(out(&mut h), "err 535 auth-failed\nerr 535 auth-failed\n");
}

#[test]
fn a_password_logs_in_bound_to_the_connection() {
    let w = world(true);
    let mut h = session(&w.directory, Some(CB));
    let last = scram(&mut h, "bob", "correct horse", Some(CB));
    assert!(last.starts_with("ok auth bob "), "{last}");
    h.client(b"put 3 new wait x\n").run();
    assert_eq!(out(&mut h), "go\n");
}

#[test]
fn wrong_passwords_unknown_users_and_relayed_exchanges_fail_alike() {
    let w = world(true);
    for (name, password, client_cb) in [
        ("bob", "wrong", Some(CB)),
        ("carol", "correct horse", Some(CB)),
        // A relay: the client's TLS connection is another one than the server's.
        ("bob", "correct horse", Some([9; 32])),
    ] {
        let mut h = session(&w.directory, Some(CB));
        let last = scram(&mut h, name, password, client_cb);
        assert_eq!(
            last, "err 535 auth-failed\n",
            "{name} {password} {client_cb:?}"
        );
        assert!(h.s.grant().is_none());
    }
}

#[test]
fn plain_connections_use_scram_without_binding() {
    let w = world(false);
    assert_eq!(
        w.directory.mechanisms(),
        [
            ferry_proto::auth::Mechanism::Ed25519,
            ferry_proto::auth::Mechanism::ScramSha256
        ]
    );
    let mut h = session(&w.directory, None);
    let last = scram(&mut h, "bob", "correct horse", None);
    assert!(last.starts_with("ok auth bob "), "{last}");
    // The bound variant is not offered without TLS.
    let w = world(true);
    let mut h = session(&w.directory, Some(CB));
    let rng = SystemRandom::new();
    let (_, first) = ClientExchange::start("bob", "correct horse", None, &rng).expect("start");
    h.client(
        &AuthRequest::Scram {
            plus: false,
            client_first: B64.decode(first).expect("b64"),
        }
        .encode(),
    )
    .run();
    assert_eq!(out(&mut h), "err 503 unsupported\n");
}

#[test]
fn a_new_users_file_applies_to_new_logins() {
    let w = world(true);
    let mut file = (*w.directory.file()).clone();
    file.users.remove(&user("alice"));
    w.directory.update(file);
    let mut h = session(&w.directory, Some(CB));
    h.client(&alice_line(&w, &CB, "alice")).run();
    assert_eq!(out(&mut h), "err 535 auth-failed\n");
    let homes = w.directory.homes();
    assert_eq!(homes.len(), 1);
    assert_eq!(homes[0].root, std::path::Path::new("/srv/bob"));
}
