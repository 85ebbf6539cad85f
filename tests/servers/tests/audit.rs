//! The audit log (`ferry_store::audit::AuditFile`, #16) on every server implementation:
//! dir, get, put and auth attempts (failed ones with the user name tried) of real sessions
//! over loopback, and the `tree` extension's requests, read back from the file as JSON lines.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_auth::directory::Directory;
use ferry_auth::keys::PrivateKey;
use ferry_auth::rights::Rights;
use ferry_auth::users::{Anonymous, User, UserName, UsersFile};
use ferry_store::ServerAuth;
use ferry_store::audit::AuditFile;
use ferry_store::homes::{Home, Homes};
use ferry_test_support::{Impl, RawSession, TestServer};
use ferry_wire::{PutMode, Reply};
use serde_json::Value;

/// A name JSON must escape: quotes, braces, spaces, non-ASCII.
const NAME: &str = "say \"hi\" {x}: naïve ☕ end";

fn user(s: &str) -> UserName {
    UserName::new(s).expect("user")
}

fn ed25519_line(key: &PrivateKey, name: &str) -> Vec<u8> {
    // A plain connection: the proof is bound to no channel (all zeros).
    ferry_auth::proof::request(key, &[0; 32], &user(name)).encode()
}

fn every_operation_is_a_json_line_in_the_audit_log(imp: Impl) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (public, home) = (dir.path().join("public"), dir.path().join("alice"));
    std::fs::create_dir(&public).expect("folder");
    std::fs::create_dir(&home).expect("folder");
    std::fs::write(home.join("alice.txt"), b"alice's").expect("file");
    let log_path = dir.path().join("audit.log");
    let log = AuditFile::open(&log_path).expect("audit log");

    // Anonymous sessions may list, read and create; alice has a key.
    let alice = PrivateKey::generate("alice@test").expect("key");
    let mut file = UsersFile::default();
    let mut ua = User::new(home.clone(), Rights::READ_ONLY).expect("user");
    ua.keys.push(alice.public().clone());
    file.users.insert(user("alice"), ua);
    file.anonymous = Some(Anonymous {
        root: public.clone(),
        rights: "list,read,create".parse().expect("rights"),
        quota_bytes: None,
        quota_files: None,
    });
    let directory = Arc::new(Directory::new(file, false).expect("directory"));
    let sink = log.sink();
    let server = TestServer::with_impl_config(imp, |c| {
        let homes = Homes::open(
            c,
            &[(
                user("alice"),
                Home {
                    path: home.clone(),
                    quota: Default::default(),
                },
            )],
            Some(&Home {
                path: public.clone(),
                quota: Default::default(),
            }),
        )
        .expect("homes");
        c.root = public.clone();
        c.auth = Some(ServerAuth {
            authenticator: directory,
            homes: Arc::new(homes),
        });
        c.audit = Some(sink);
    });

    // An anonymous session: a failed auth, dir, put, get, a missing get, close.
    let mut s = RawSession::connect(server.addr);
    s.expect_greeting();
    let anonymous_peer = s.stream().local_addr().expect("address").to_string();
    let mallory = PrivateKey::generate("mallory@test").expect("key");
    s.send(&ed25519_line(&mallory, "mallory"));
    s.expect_err(535);
    s.send(b"dir\n");
    s.expect_line("ok dir 0");
    let reply = s.put_wait(NAME, PutMode::New, b"audit me");
    assert!(matches!(reply, Reply::PutOk { size: 8, .. }), "{reply:?}");
    let (data, _) = s.get(NAME).expect("get");
    assert_eq!(data, b"audit me");
    assert_eq!(s.get("missing").expect_err("511").code.get(), 511);
    s.send(b"close\n");
    s.expect_line("bye");
    drop(s);

    // alice: authenticated, a get, then the connection closed without `close`.
    let mut s = RawSession::connect(server.addr);
    s.expect_greeting();
    let alice_peer = s.stream().local_addr().expect("address").to_string();
    s.send(&ed25519_line(&alice, "alice"));
    s.expect_line("ok auth alice");
    assert_eq!(s.get("alice.txt").expect("get").0, b"alice's");
    s.shutdown_write();
    s.expect_closed();

    server.stop().expect("server stopped");
    log.close();

    let text = std::fs::read_to_string(&log_path).expect("read the audit log");
    let mut sessions: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let time = v["time"].as_str().expect("time");
        assert!(
            time.len() == 24 && time.ends_with('Z') && time.as_bytes()[19] == b'.',
            "RFC 3339 UTC with milliseconds: {time}"
        );
        assert!(
            v["duration_ms"].as_f64().is_some_and(|d| d >= 0.0),
            "{line}"
        );
        let peer = v["peer"].as_str().expect("peer").to_owned();
        sessions.entry(peer).or_default().push(v);
    }
    let summary = |peer: &str| -> Vec<String> {
        sessions
            .get(peer)
            .unwrap_or_else(|| panic!("no records of {peer}: {text}"))
            .iter()
            .map(|v| {
                format!(
                    "{} {} {} {} {} {} {}",
                    v["op"].as_str().unwrap_or("?"),
                    v["user"],
                    v["name"],
                    v["bytes"],
                    v["result"].as_str().unwrap_or("?"),
                    v["code"],
                    v["error"],
                )
            })
            .collect()
    };
    let name = serde_json::to_string(NAME).expect("JSON");
    assert_eq!(
        summary(&anonymous_peer)[..5],
        [
            "auth \"mallory\" null 0 err 535 \"auth-failed\"".to_owned(),
            "dir null null 0 ok null null".to_owned(),
            format!("put null {name} 8 ok null null"),
            format!("get null {name} 8 ok null null"),
            "get null \"missing\" 0 err 511 \"not-found\"".to_owned(),
        ],
        "{text}"
    );
    assert_eq!(
        summary(&alice_peer)[..2],
        [
            "auth \"alice\" null 0 ok null null",
            "get \"alice\" \"alice.txt\" 7 ok null null",
        ],
        "{text}"
    );
    // Each session ends with its end record (optional in the issue, made by every server).
    for peer in [&anonymous_peer, &alice_peer] {
        let records = &sessions[peer];
        let end = records.last().expect("records");
        assert_eq!(
            (end["op"].as_str(), end["result"].as_str()),
            (Some("end"), Some("ok")),
            "{text}"
        );
    }
    assert_eq!(sessions[&anonymous_peer].len(), 6, "{text}");
    assert_eq!(sessions[&alice_peer].len(), 3, "{text}");
    assert_eq!(sessions.len(), 2, "{text}");
    assert!(!text.contains("\"op\":\"lost\""), "nothing lost: {text}");
}

/// The `tree` extension's requests (spec section 17) in the audit log: the path as `name`,
/// where a rename moves it as `to`, a listing's entries, the extension's codes by name.
fn tree_requests_are_json_lines_with_their_paths(imp: Impl) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("audit.log");
    let log = AuditFile::open(&log_path).expect("audit log");
    let sink = log.sink();
    let server = TestServer::with_impl_config(imp, |c| c.audit = Some(sink));
    let mut s = RawSession::connect(server.addr);
    s.expect_greeting();
    let mut put = b"put 2 new now d/f\n".to_vec();
    ferry_wire::encode_payload(b"hi", ferry_wire::Digest::of(b"hi"), &mut put);
    s.send(b"enable tree\nmkdir d\n");
    s.send(&put);
    s.send(b"rename 3 d/f d/g\nlist recursive .\nrmdir d\ndelete d/g\nrmdir d\nclose\n");
    for _ in 0..4 {
        assert!(s.read_line_str().starts_with("ok "));
    }
    assert_eq!(s.read_line_str(), "ok list 2");
    s.read_line();
    s.read_line();
    s.expect_line("err 517 not-empty");
    s.expect_line("ok delete");
    s.expect_line("ok rmdir");
    s.expect_line("bye");
    drop(s);
    server.stop().expect("server stopped");
    log.close();

    let text = std::fs::read_to_string(&log_path).expect("read the audit log");
    let got: Vec<String> = text
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            format!(
                "{} {} {} {} {} {}",
                v["op"].as_str().unwrap_or("?"),
                v["name"],
                v.get("to").map_or("-".to_owned(), Value::to_string),
                v.get("entries").map_or("-".to_owned(), Value::to_string),
                v["result"].as_str().unwrap_or("?"),
                v["error"],
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "mkdir \"d\" - - ok null",
            "put \"d/f\" - - ok null",
            "rename \"d/f\" \"d/g\" - ok null",
            "list \".\" - 2 ok null",
            "rmdir \"d\" - - err \"not-empty\"",
            "delete \"d/g\" - - ok null",
            "rmdir \"d\" - - ok null",
            "end null - - ok null",
        ],
        "{text}"
    );
}

ferry_test_support::every_impl!(
    every_operation_is_a_json_line_in_the_audit_log,
    tree_requests_are_json_lines_with_their_paths,
);
