//! `ferry serve --users FILE` (spec section 16): the users file's users log in over TLS with
//! their keys and are served their own folders; a changed file is taken without a restart;
//! without TLS the server refuses to start unless --auth-without-tls.

use std::io::{BufRead as _, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use ferry_auth::keys::PrivateKey;
use ferry_auth::rights::Rights;
use ferry_auth::users::{User, UserName, UsersFile};
use ferry_test_support::tls::TlsLines;
use ferry_tls::{ClientTls, Fingerprint, Trust};
use ferry_wire::auth::AuthRequest;

mod common;

use common::{Server, ferry_in, serve, serve_users, serve_users_with};

type Tls = TlsLines;

fn user(s: &str) -> UserName {
    UserName::new(s).expect("user")
}

fn add(file: &mut UsersFile, name: &str, root: &Path, key: &PrivateKey) {
    let mut u = User::new(root.to_owned(), Rights::READ_ONLY).expect("user");
    u.keys.push(key.public().clone());
    file.users.insert(user(name), u);
}

/// A users file in `dir` with one user, alice (a folder of her own, a fresh key); the file
/// and her key.
fn alice_only(dir: &Path) -> (std::path::PathBuf, PrivateKey) {
    let users = dir.join("users.toml");
    let alice = PrivateKey::generate("alice").expect("key");
    let mut file = UsersFile::default();
    add(&mut file, "alice", &dir.join("alice"), &alice);
    file.save(&users).expect("save");
    (users, alice)
}

/// A TLS session pinned to the fingerprint the server printed; its channel binding.
fn connect(server: &Server) -> (Tls, [u8; 32]) {
    let fp: Fingerprint = server.fingerprint().parse().expect("a fingerprint");
    let client = ClientTls::new("127.0.0.1", 0, Trust::Fingerprint(fp)).expect("client");
    let mut s = TlsLines::connect(&server.addr, &client);
    let greeting = s.line();
    let offers_auth = greeting
        .split(' ')
        .filter_map(|p| p.strip_prefix("ext="))
        .any(|ext| ext.split(',').any(|e| e == "auth"));
    assert!(offers_auth, "{greeting}");
    let cb = s.channel_binding();
    (s, cb)
}

/// Logs in as `name` with `key` on a new session; the reply, and the session.
fn login(server: &Server, name: &str, key: &PrivateKey) -> (String, Tls) {
    let (mut s, cb) = connect(server);
    let (public_key, signature) = ferry_auth::proof::sign(key, &cb, &user(name));
    s.send(
        &AuthRequest::Ed25519 {
            user: user(name),
            public_key,
            signature,
        }
        .encode(),
    );
    (s.line(), s)
}

#[test]
fn users_log_in_with_keys_and_a_changed_file_is_taken_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("alice"), dir.path().join("bob"));
    std::fs::create_dir(&a).expect("alice's folder");
    std::fs::write(a.join("hello.txt"), b"hi").expect("a file");
    let users = dir.path().join("users.toml");
    let alice = PrivateKey::generate("alice").expect("key");
    let bob = PrivateKey::generate("bob").expect("key");
    let mut file = UsersFile::default();
    add(&mut file, "alice", &a, &alice);
    file.save(&users).expect("save");
    let tls_dir = dir.path().join("tls");
    let server = serve_users(&users, &tls_dir);
    assert!(
        server.lines[0].starts_with("users: 1 from "),
        "{:?}",
        server.lines
    );

    let (reply, mut s) = login(&server, "alice", &alice);
    assert_eq!(reply, "ok auth alice\n");
    s.send(b"dir\n");
    assert_eq!(s.line(), "ok dir 1\n");
    assert!(s.line().ends_with(" hello.txt\n"));
    let (reply, _) = login(&server, "bob", &bob);
    assert_eq!(reply, "err 535 auth-failed\n", "bob is not a user yet");

    // bob is added: the server takes the file within about a second, no restart.
    add(&mut file, "bob", &b, &bob);
    file.save(&users).expect("save");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (reply, _) = login(&server, "bob", &bob);
        if reply == "ok auth bob\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the changed users file was not taken: {reply}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(b.is_dir(), "bob's folder was made");
}

#[test]
fn users_without_tls_need_the_operator_to_say_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (users, _) = alice_only(dir.path());
    let users_s = users.to_str().expect("utf-8");
    let refused = ferry_in(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0", "--users", users_s],
        b"",
    );
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("--users needs TLS") && err.contains("--auth-without-tls"),
        "{err}"
    );
    let server = serve(&[
        "--listen",
        "127.0.0.1:0",
        "--users",
        users_s,
        "--auth-without-tls",
    ]);
    assert!(
        server.lines[0].contains("WITHOUT TLS"),
        "{:?}",
        server.lines
    );
    // The greeting offers the unbound SCRAM variant.
    let mut s = BufReader::new(TcpStream::connect(&server.addr).expect("connect"));
    let mut greeting = String::new();
    s.read_line(&mut greeting).expect("greeting");
    assert!(
        greeting.contains(" auth=ed25519,scram-sha-256\n"),
        "{greeting}"
    );
}

/// The made-up salt and iteration count the server gives a password login as `name`
/// (AUTH-14 for a user it does not know).
fn salt_of(server: &Server, name: &str) -> String {
    let (mut s, _) = connect(server);
    s.send(
        &AuthRequest::Scram {
            plus: true,
            client_first: format!("p=ferry-exporter,,n={name},r=0123456789abcdefghij").into_bytes(),
        }
        .encode(),
    );
    let more = s.line();
    let Ok((ferry_wire::auth::AuthReply::More { server_first }, _)) =
        ferry_wire::auth::decode_auth_reply(more.as_bytes())
    else {
        panic!("{more}");
    };
    let first = String::from_utf8(server_first).expect("text");
    // r=NONCE,s=SALT,i=COUNT: the nonce is new at each attempt, the rest must not be.
    first.split_once(",s=").expect("a salt").1.to_owned()
}

/// AUTH-14 across restarts: the secret is kept in `.users.toml.secret` (mode 0600), so an
/// unknown user's made-up salt is the same after a restart, as a real user's is; a secret
/// that cannot be kept is a warning, and the server serves all the same.
#[test]
fn an_unknown_user_s_salt_is_the_same_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (users, _) = alice_only(dir.path());
    let tls_dir = dir.path().join("tls");
    let server = serve_users(&users, &tls_dir);
    let (first, again) = (salt_of(&server, "nobody"), salt_of(&server, "nobody"));
    assert_eq!(first, again);
    assert_ne!(salt_of(&server, "somebody"), first, "one salt per name");
    drop(server);
    let secret = dir.path().join(".users.toml.secret");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&secret)
            .expect("kept")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let server = serve_users(&users, &tls_dir);
    assert_eq!(
        salt_of(&server, "nobody"),
        first,
        "the same after a restart"
    );
    drop(server);

    // A secret that cannot be kept (here a folder in its place): a warning, and a server.
    std::fs::remove_file(&secret).expect("rm");
    std::fs::create_dir(&secret).expect("in the way");
    let log = dir.path().join("stderr.txt");
    let stderr = std::process::Stdio::from(std::fs::File::create(&log).expect("log"));
    let server = serve_users_with(&users, &tls_dir, &[], stderr);
    let other = salt_of(&server, "nobody");
    assert_ne!(other, first, "a secret for this run only");
    drop(server);
    let err = std::fs::read_to_string(&log).expect("stderr");
    assert!(
        err.contains("warning: the secret that hides which users exist cannot be kept"),
        "{err}"
    );
}

/// `--quota`/`--quota-files` bound the folder served without users; with `--users` each
/// folder has the quotas of the users file, so the flags would silently do nothing: the
/// server says so.
#[test]
fn quota_flags_with_users_are_reported_as_doing_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (users, _alice) = alice_only(dir.path());
    let log = dir.path().join("stderr.txt");
    let stderr = std::process::Stdio::from(std::fs::File::create(&log).expect("log"));
    let server = serve_users_with(
        &users,
        &dir.path().join("tls"),
        &["--quota", "1MiB", "--quota-files", "10"],
        stderr,
    );
    drop(server);
    let err = std::fs::read_to_string(&log).expect("stderr");
    assert!(
        err.contains("warning: --quota and --quota-files bound the folder served without --users"),
        "{err}"
    );
}

#[test]
fn failed_logins_are_not_throttled_when_the_operator_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (users, alice) = alice_only(dir.path());
    let tls = dir.path().join("tls");
    let server = serve_users_with(
        &users,
        &tls,
        &["--auth-throttle=false"],
        std::process::Stdio::null(),
    );
    assert!(
        server.lines[0].contains("failed logins NOT throttled"),
        "{:?}",
        server.lines
    );
    // More failures than the default throttle refuses an address after (10): every one is
    // answered 535 at once, never 425, and the right key still logs in.
    let mallory = PrivateKey::generate("mallory").expect("key");
    let (mut s, cb) = connect(&server);
    for _ in 0..12 {
        let (public_key, signature) = ferry_auth::proof::sign(&mallory, &cb, &user("alice"));
        s.send(
            &AuthRequest::Ed25519 {
                user: user("alice"),
                public_key,
                signature,
            }
            .encode(),
        );
        assert_eq!(s.line(), "err 535 auth-failed\n");
    }
    let (reply, _) = login(&server, "alice", &alice);
    assert_eq!(reply, "ok auth alice\n");
}
