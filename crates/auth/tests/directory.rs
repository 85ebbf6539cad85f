//! The users file's users authenticating to a server session, in memory: real Ed25519 proofs
//! and real SCRAM exchanges (`ferry_auth`) against `ferry_proto`'s session with a
//! [`Directory`] as its authenticator. What the session decides alone is tested in
//! `crates/proto/tests/auth.rs`; here, that the two agree on every octet.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ferry_auth::directory::Directory;
use ferry_auth::scram::ClientExchange;
use ferry_proto::auth::Authenticator;
use ferry_proto::memory::Harness;
use ferry_proto::server::SessionConfig;
use ferry_wire::auth::{AuthReply, AuthRequest, decode_auth_reply};
use ring::rand::SystemRandom;

mod common;

use common::{CB, World, user, world};

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
    ferry_auth::proof::request(&w.alice, cb, &user(name)).encode()
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
    // The anonymous access's folder gets the quotas its table gives (a folder anonymous
    // sessions may write to must be bounded too).
    let mut file = (*w.directory.file()).clone();
    file.anonymous = Some(ferry_auth::users::Anonymous {
        root: "/srv/public".into(),
        rights: "list,read,create".parse().expect("rights"),
        quota_bytes: Some(1 << 20),
        quota_files: Some(10),
    });
    w.directory.update(file);
    let homes = w.directory.homes();
    let public = homes
        .iter()
        .find(|h| h.user.is_none())
        .expect("anonymous home");
    assert_eq!(
        (public.quota, public.quota_files),
        (Some(1 << 20), Some(10))
    );
}

/// AUTH-21: alice may have one session, then two after a reload; a session's place is given
/// back when it is dropped, whatever file it authenticated with, and a busy login leaves the
/// session unauthenticated (it may try again).
#[test]
fn max_sessions_counts_sessions_in_progress_across_reloads() {
    let w = world(true);
    let set_max = |max: Option<u32>| {
        let mut file = (*w.directory.file()).clone();
        file.users
            .get_mut(&user("alice"))
            .expect("alice")
            .max_sessions = max;
        w.directory.update(file);
    };
    set_max(Some(1));
    let login = |h: &mut Harness| {
        h.client(&alice_line(&w, &CB, "alice")).run();
        out(h)
    };
    let mut first = session(&w.directory, Some(CB));
    assert_eq!(login(&mut first), "ok auth alice\n");
    let mut second = session(&w.directory, Some(CB));
    assert_eq!(login(&mut second), "err 426 user-busy\n");
    assert!(second.s.grant().is_none());
    second.client(b"dir\n").run();
    assert_eq!(
        out(&mut second),
        "err 530 auth-required\n",
        "unauthenticated"
    );
    // A password user is not limited by alice's count.
    let mut bob = session(&w.directory, Some(CB));
    assert!(scram(&mut bob, "bob", "correct horse", Some(CB)).starts_with("ok auth bob "));
    // A reload of the same limit keeps the count: still busy.
    set_max(Some(1));
    assert_eq!(login(&mut second), "err 426 user-busy\n");
    assert_eq!(w.directory.sessions().count(&user("alice")), 1);
    // Once the first session is over, the second may log in.
    drop(first);
    assert_eq!(w.directory.sessions().count(&user("alice")), 0);
    assert_eq!(login(&mut second), "ok auth alice\n");
    // Two after a reload: one more fits, the next does not.
    set_max(Some(2));
    let mut third = session(&w.directory, Some(CB));
    assert_eq!(login(&mut third), "ok auth alice\n");
    let mut fourth = session(&w.directory, Some(CB));
    assert_eq!(login(&mut fourth), "err 426 user-busy\n");
    drop((second, third, fourth, bob));
    assert_eq!(
        w.directory.sessions().users(),
        0,
        "nothing kept for ended sessions"
    );
}

/// A session's place is given back however the session ends: here a session that timed out.
#[test]
fn a_session_that_ends_by_itself_gives_its_place_back_when_dropped() {
    let w = world(true);
    let mut file = (*w.directory.file()).clone();
    file.users
        .get_mut(&user("alice"))
        .expect("alice")
        .max_sessions = Some(1);
    w.directory.update(file);
    let mut h = session(&w.directory, Some(CB));
    h.client(&alice_line(&w, &CB, "alice")).run();
    assert_eq!(out(&mut h), "ok auth alice\n");
    h.wait(std::time::Duration::from_secs(300));
    h.wait(std::time::Duration::from_secs(1));
    assert!(h.finished().is_some(), "idle timeout");
    assert_eq!(w.directory.sessions().count(&user("alice")), 1);
    drop(h);
    assert_eq!(w.directory.sessions().count(&user("alice")), 0);
}
