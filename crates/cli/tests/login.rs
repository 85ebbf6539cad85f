//! The client commands log in (spec section 16): `ferrys://USER@HOST` with ferry's own key
//! (made by `ferry keygen` without `-f`), with `--key`, or with a password from
//! `FERRY_PASSWORD`; each refusal is a clear message and exit code; nothing is sent on a
//! plain connection unless allowed.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use ferry_auth::keys::PublicKey;
use ferry_auth::rights::Rights;
use ferry_auth::scram::{MIN_ITERATIONS, StoredPassword};
use ferry_auth::users::{User, UserName, UsersFile};
use ring::rand::SystemRandom;

mod common;

use common::{FERRY, Server, serve_users};

/// `ferry ARGS` with `XDG_CONFIG_HOME` (where ferry's own key and known_hosts live) in
/// `home`, and `env`.
fn ferry(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(FERRY)
        .args(args)
        .env("XDG_CONFIG_HOME", home)
        .env("HOME", home)
        .env_remove("FERRY_PASSWORD")
        .env_remove("FERRY_KEY")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run ferry")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct World {
    dir: tempfile::TempDir,
    server: Server,
}

impl World {
    fn url(&self, user: &str) -> String {
        format!("ferrys://{user}@{}", self.server.addr)
    }

    /// `ferry ARGS… --fingerprint FP` as the user of the world's home.
    fn ferry(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--fingerprint", self.server.fingerprint()]);
        ferry(self.dir.path(), &all, env)
    }
}

/// alice: ferry's own key (made here with `ferry keygen`), rights list,read,create; bob: the
/// password "pw-bob-1", every right. Each has a folder with one file.
fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path();
    let made = ferry(home, &["keygen"], &[]);
    assert!(made.status.success(), "{}", text(&made));
    let public = home.join("ferry").join("id_ed25519.pub");
    let public = PublicKey::read_file(&public).expect("ferry keygen wrote the default key");
    let mut file = UsersFile::default();
    for (name, rights) in [
        ("alice", "list,read,create"),
        ("bob", "list,read,create,replace"),
    ] {
        let root = home.join(name);
        std::fs::create_dir(&root).expect("folder");
        std::fs::write(root.join(format!("{name}.txt")), name).expect("file");
        let mut u = User::new(root, rights.parse::<Rights>().expect("rights")).expect("user");
        if name == "alice" {
            u.keys.push(public.clone());
        } else {
            u.password = Some(
                StoredPassword::new("pw-bob-1", MIN_ITERATIONS, &SystemRandom::new())
                    .expect("verifier"),
            );
        }
        file.users.insert(UserName::new(name).expect("name"), u);
    }
    let users = home.join("users.toml");
    file.save(&users).expect("save");
    let tls = home.join("tls");
    let server = serve_users(&users, &tls);
    World { dir, server }
}

#[test]
fn users_log_in_with_their_key_or_password_and_see_their_own_folder() {
    let w = world();
    for implementation in ["threads", "tokio"] {
        let listed = w.ferry(&["dir", &w.url("alice"), "--impl", implementation], &[]);
        assert!(listed.status.success(), "{}", text(&listed));
        let out = String::from_utf8_lossy(&listed.stdout);
        assert!(
            out.contains("alice.txt") && !out.contains("bob.txt"),
            "{out}"
        );

        let listed = w.ferry(
            &["dir", &w.url("bob"), "--impl", implementation],
            &[("FERRY_PASSWORD", "pw-bob-1")],
        );
        assert!(listed.status.success(), "{}", text(&listed));
        let out = String::from_utf8_lossy(&listed.stdout);
        assert!(
            out.contains("bob.txt") && !out.contains("alice.txt"),
            "{out}"
        );
    }
    // An explicit --key, and a put that lands in the user's folder only.
    let key = w.dir.path().join("ferry").join("id_ed25519");
    let src = w.dir.path().join("new.txt");
    std::fs::write(&src, b"new").expect("source");
    let put = w.ferry(
        &[
            "put",
            &w.url("alice"),
            src.to_str().expect("utf-8"),
            "--key",
            key.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert!(put.status.success(), "{}", text(&put));
    assert!(w.dir.path().join("alice").join("new.txt").is_file());
    assert!(!w.dir.path().join("bob").join("new.txt").exists());
}

#[test]
fn refusals_are_explained() {
    let w = world();
    // A wrong password: 535, a permanent refusal (exit 1).
    let wrong = w.ferry(&["dir", &w.url("bob")], &[("FERRY_PASSWORD", "nope")]);
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    assert!(text(&wrong).contains("535 auth-failed"), "{}", text(&wrong));
    // A key the server does not know for the user.
    let other = w.ferry(&["dir", &w.url("bob")], &[]);
    assert_eq!(other.status.code(), Some(1), "{}", text(&other));
    assert!(text(&other).contains("with the key "), "{}", text(&other));
    // No user: the server asks for one.
    let anonymous = w.ferry(&["dir", &format!("ferrys://{}", w.server.addr)], &[]);
    assert_eq!(anonymous.status.code(), Some(1));
    assert!(
        text(&anonymous).contains("530 auth-required") && text(&anonymous).contains("USER@"),
        "{}",
        text(&anonymous)
    );
    // A right alice lacks: replace.
    let src = w.dir.path().join("alice.txt");
    std::fs::write(&src, b"x").expect("source");
    let replace = w.ferry(
        &[
            "put",
            &w.url("alice"),
            src.to_str().expect("utf-8"),
            "--replace",
        ],
        &[],
    );
    assert_eq!(replace.status.code(), Some(1), "{}", text(&replace));
    assert!(text(&replace).contains("512"), "{}", text(&replace));
    // A plain address with a user: refused before connecting (AUTH-3), a usage error.
    let plain = ferry(
        w.dir.path(),
        &["dir", &format!("ferry://alice@{}", w.server.addr)],
        &[],
    );
    assert_eq!(plain.status.code(), Some(2), "{}", text(&plain));
    assert!(text(&plain).contains("ferrys://alice@"), "{}", text(&plain));
    // No key and no password, and no terminal to ask on.
    std::fs::remove_file(w.dir.path().join("ferry").join("id_ed25519")).expect("rm key");
    let nothing = w.ferry(&["dir", &w.url("alice")], &[]);
    assert_eq!(nothing.status.code(), Some(2), "{}", text(&nothing));
    assert!(
        text(&nothing).contains("FERRY_PASSWORD"),
        "{}",
        text(&nothing)
    );
}
