//! `ferry keygen` and `ferry user add|list|remove` end to end: the files they write, what
//! they print, and their exit codes (2 for bad arguments or file contents, 6 for files that
//! cannot be read).

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Output;

use ferry_auth::keys::{PrivateKey, PublicKey};
use ferry_auth::users::UsersFile;

mod common;

use common::ferry_in;

/// An encrypted Ed25519 key, made once with `ssh-keygen -t ed25519 -N 'secret words'`
/// (crates/auth/testdata/openssh_ed25519_encrypted).
const ENCRYPTED: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABCLef9+vs
VITE3I9CVvx+XuAAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIIA4Xf8PEEcN4Hh9
gt3rS2fPlGTXPq+LenZAQJ0cn0OHAAAAoJwC0l/fTAuGEkvQGJfIVBtfMX5pLasU6UIsBf
pPdgWMdn+NipIzHEleqLJd2z3MyLIeElorAejqGKdVqzztkLHA9/QWReXhNtKTi8KKRzHE
D6aVkwn01PA/Et2PRkVqgvCIUJi0024evqGlWsO8EOEnLewYGo1pKCMRn9l0KoY3Kl4PCg
PX+lOFRgDE2n4TF4LT+U8SaWmw0GqdN4y0D5s=
-----END OPENSSH PRIVATE KEY-----
";

/// An RSA public key (ssh-keygen -t rsa -b 1024; crates/auth/testdata/rsa.pub).
const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDHHEcvR9TCv/ASno8QzQOAHaB6pcZ+3LOsiiYi6OK/SZo0h6WxNFh3s/wTiAR6dDqlreCFYhW+qk9VNceXYZFc/xYzELq/H4Z/pEXlAFQyCyqgoIKK0XzHJ6p/Fvl8YFwj3Idu0KPA2iociYvTX55Rj+SZlQSvim5w2q7+J5JDeQ== rsa@ssh-keygen\n";

fn ferry(cwd: &Path, args: &[&str]) -> Output {
    ferry_in(cwd, args, b"")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_exit(o: &Output, want: i32) {
    assert_eq!(
        o.status.code(),
        Some(want),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn keygen_writes_an_openssh_pair_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = ferry(
        dir.path(),
        &["keygen", "-f", "id_ferry", "-C", "alice@laptop"],
    );
    assert_exit(&o, 0);
    let key = PrivateKey::read_file(&dir.path().join("id_ferry")).expect("private key");
    let public = PublicKey::read_file(&dir.path().join("id_ferry.pub")).expect("public key");
    assert_eq!(key.public(), &public);
    assert_eq!(public.comment(), "alice@laptop");
    assert_eq!(mode(&dir.path().join("id_ferry")), 0o600);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            public.to_line(),
            format!("256 {} alice@laptop (ED25519)", public.fingerprint())
        ]
    );
    assert!(lines[1].starts_with("256 SHA256:"), "{out}");
    assert!(stderr(&o).contains("id_ferry.pub"), "{}", stderr(&o));

    let before = fs::read(dir.path().join("id_ferry")).expect("read");
    let o = ferry(dir.path(), &["keygen", "-f", "id_ferry"]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("id_ferry: exists; not overwritten"),
        "{}",
        stderr(&o)
    );
    assert_eq!(fs::read(dir.path().join("id_ferry")).expect("read"), before);

    let o = ferry(dir.path(), &["keygen", "-f", "no/such/folder/key"]);
    assert_exit(&o, 6);
    // Without -f: ferry's own key, under XDG_CONFIG_HOME (made, owner only), never overwritten.
    let config = dir.path().join("config");
    let own = || {
        std::process::Command::new(common::FERRY)
            .arg("keygen")
            .env("XDG_CONFIG_HOME", &config)
            .output()
            .expect("run ferry keygen")
    };
    assert_exit(&own(), 0);
    let key = config.join("ferry").join("id_ed25519");
    assert!(key.is_file() && key.with_extension("pub").is_file());
    let mode = fs::metadata(key.parent().expect("folder"))
        .expect("folder")
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o700
    );
    assert_exit(&own(), 2);
}

#[test]
fn user_add_list_remove() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    assert_exit(
        &ferry(d, &["keygen", "-f", "alice", "-C", "alice@laptop"]),
        0,
    );
    assert_exit(&ferry(d, &["keygen", "-f", "alice2", "-C", ""]), 0);
    let root = d.join("alice-files");
    fs::create_dir(&root).expect("root");
    let root = root.to_str().expect("utf-8");
    let o = ferry(
        d,
        &[
            "user",
            "add",
            "alice",
            "--users",
            "users.toml",
            "--root",
            root,
            "--rights",
            "list,read,create",
            "--key",
            "alice.pub",
            "--key",
            "alice2.pub",
            "--quota-bytes",
            "10GiB",
            "--quota-files",
            "100",
            "--max-sessions",
            "4",
        ],
    );
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("added user alice to users.toml (created)"),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    let users = d.join("users.toml");
    assert_eq!(mode(&users), 0o600);
    let o = ferry(
        d,
        &[
            "user",
            "add",
            "bob",
            "--users",
            "users.toml",
            "--root",
            "/srv/ferry/bob",
            "--rights",
            "list",
        ],
    );
    assert_exit(&o, 0);
    assert!(
        stderr(&o).contains("bob has no key and no password"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("/srv/ferry/bob is not a folder yet"),
        "{}",
        stderr(&o)
    );

    let (file, warnings) = UsersFile::load(&users).expect("load");
    assert!(warnings.is_empty());
    let alice = &file.users["alice"];
    assert_eq!(alice.rights.to_string(), "list,read,create");
    assert_eq!(alice.keys.len(), 2);
    assert_eq!(alice.quota_bytes, Some(10 << 30));
    assert_eq!(alice.quota_files, Some(100));
    assert_eq!(alice.max_sessions, Some(4));
    let key = PublicKey::read_file(&d.join("alice.pub")).expect("pub");
    assert!(file.key("alice", key.raw()).is_some());
    assert!(file.key("bob", key.raw()).is_none());

    let o = ferry(d, &["user", "list", "--users", "users.toml"]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["NAME", "ROOT", "RIGHTS", "KEYS", "PASSWORD", "LIMITS"],
        "{out}"
    );
    assert_eq!(
        lines[1],
        [
            "alice",
            root,
            "list,read,create",
            "2",
            "no",
            "quota",
            "10",
            "GiB,",
            "100",
            "files,",
            "4",
            "sessions"
        ],
        "{out}"
    );
    assert_eq!(
        lines[2],
        ["bob", "/srv/ferry/bob", "list", "0", "no", "-"],
        "{out}"
    );
    assert!(out.contains("no anonymous access"), "{out}");
    assert!(
        out.contains("cannot log in (no key, no password): bob\n"),
        "{out}"
    );

    let o = ferry(d, &["user", "remove", "bob", "--users", "users.toml"]);
    assert_exit(&o, 0);
    let (file, _) = UsersFile::load(&users).expect("load");
    assert_eq!(
        file.users.keys().map(|n| n.as_str()).collect::<Vec<_>>(),
        ["alice"]
    );
    assert_eq!(mode(&users), 0o600);
    let o = ferry(d, &["user", "remove", "bob", "--users", "users.toml"]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("no user \"bob\" in users.toml"),
        "{}",
        stderr(&o)
    );
    let o = ferry(d, &["user", "list", "--users", "users.toml"]);
    assert!(!stdout(&o).contains("cannot log in"), "{}", stdout(&o));
    let names: Vec<_> = fs::read_dir(d)
        .expect("dir")
        .map(|e| e.expect("e").file_name())
        .collect();
    assert!(
        !names.iter().any(|n| n.to_string_lossy().ends_with(".tmp")),
        "{names:?}"
    );
}

#[test]
fn user_add_refuses_bad_arguments_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::write(d.join("rsa.pub"), RSA).expect("rsa");
    fs::write(d.join("encrypted"), ENCRYPTED).expect("encrypted");
    fs::set_permissions(d.join("encrypted"), fs::Permissions::from_mode(0o600)).expect("chmod");
    let add = |name: &str, extra: &[&str]| {
        let mut args = vec!["user", "add", name, "--users", "users.toml"];
        if !extra.contains(&"--root") {
            args.extend(["--root", "/srv/ferry/x"]);
        }
        if !extra.contains(&"--rights") {
            args.extend(["--rights", "list,read"]);
        }
        args.extend(extra);
        ferry(d, &args)
    };
    let cases: &[(&str, &[&str], i32, &[&str])] = &[
        ("a b", &[], 2, &["' ' is not allowed in a user name"]),
        ("anonymous", &[], 2, &["\"anonymous\" is reserved"]),
        (&"x".repeat(65), &[], 2, &["at most 64 octets"]),
        (
            "carol",
            &["--rights", "list,write"],
            2,
            &["unknown right \"write\"", "list, read, create"],
        ),
        (
            "carol",
            &["--root", "srv/carol"],
            2,
            &["--root", "absolute"],
        ),
        (
            "carol",
            &["--key", "missing.pub"],
            6,
            &["missing.pub", "No such file"],
        ),
        (
            "carol",
            &["--key", "encrypted"],
            2,
            &["encrypted", "private key", "ssh-keygen -y"],
        ),
        (
            "carol",
            &["--key", "rsa.pub"],
            2,
            &["rsa.pub", "\"ssh-rsa\" keys are not supported"],
        ),
        ("carol", &["--max-sessions", "0"], 2, &["--max-sessions"]),
    ];
    for (name, extra, code, wants) in cases {
        let o = add(name, extra);
        assert_exit(&o, *code);
        for want in *wants {
            assert!(
                stderr(&o).contains(want),
                "{name} {extra:?}: {}",
                stderr(&o)
            );
        }
        assert!(
            !d.join("users.toml").exists(),
            "{name} {extra:?} wrote the file"
        );
    }

    assert_exit(&add("carol", &[]), 0);
    let before = fs::read(d.join("users.toml")).expect("read");
    let o = add("carol", &["--rights", "list"]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("user \"carol\" exists in users.toml"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        fs::read(d.join("users.toml")).expect("read"),
        before,
        "unchanged"
    );

    // A users file that is not valid: named with its line, and left alone.
    fs::write(
        d.join("bad.toml"),
        "[users.dave]\nroot = \"/srv\"\nrights = [\"list\"]\nquota = 1\n",
    )
    .expect("bad");
    let o = ferry(
        d,
        &[
            "user", "add", "erin", "--users", "bad.toml", "--root", "/srv", "--rights", "list",
        ],
    );
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("bad.toml:4: user \"dave\": field \"quota\": unknown field"),
        "{}",
        stderr(&o)
    );
    let o = ferry(d, &["user", "list", "--users", "bad.toml"]);
    assert_exit(&o, 2);
    let o = ferry(d, &["user", "list", "--users", "missing.toml"]);
    assert_exit(&o, 6);
    assert!(stderr(&o).contains("missing.toml"), "{}", stderr(&o));
    let o = ferry(d, &["user", "remove", "carol", "--users", "missing.toml"]);
    assert_exit(&o, 6);
    assert!(!d.join("missing.toml").exists());
}

#[test]
fn a_users_file_others_may_write_is_used_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let o = ferry(
        d,
        &[
            "user", "add", "al", "--users", "u.toml", "--root", "/srv/al", "--rights", "read",
        ],
    );
    assert_exit(&o, 0);
    fs::set_permissions(d.join("u.toml"), fs::Permissions::from_mode(0o666)).expect("chmod");
    let o = ferry(d, &["user", "list", "--users", "u.toml"]);
    assert_exit(&o, 0);
    assert!(
        stderr(&o).contains("warning: u.toml: group or others may write it (mode 0666)"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("al "), "{}", stdout(&o));
}

#[test]
fn concurrent_adds_lose_no_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let names: Vec<String> = (0..8).map(|i| format!("user{i}")).collect();
    let children: Vec<_> = names
        .iter()
        .map(|name| {
            std::process::Command::new(common::FERRY)
                .args([
                    "user",
                    "add",
                    name,
                    "--users",
                    "users.toml",
                    "--root",
                    "/srv/x",
                ])
                .args(["--rights", "list"])
                .current_dir(d)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().expect("wait").success());
    }
    let (file, _) = UsersFile::load(&d.join("users.toml")).expect("load");
    let got: Vec<&str> = file.users.keys().map(|n| n.as_str()).collect();
    assert_eq!(got, names, "every add is in the file");
    assert!(d.join(".users.toml.lock").exists());
}

/// `--password-stdin` and `ferry user passwd`: the file keeps a SCRAM-SHA-256 verifier, never
/// the password, and a client that knows the password passes the server's check.
#[test]
fn passwords_are_stored_as_verifiers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let users = dir.path().join("users.toml");
    let users_s = users.to_str().expect("utf-8");
    let add = ferry_in(
        dir.path(),
        &[
            "user",
            "add",
            "carol",
            "--users",
            users_s,
            "--root",
            "/srv/carol",
            "--rights",
            "list,read",
            "--password-stdin",
        ],
        b"first secret\n",
    );
    assert_exit(&add, 0);
    let text = fs::read_to_string(&users).expect("users file");
    assert!(text.contains("password = \"SCRAM-SHA-256$"), "{text}");
    assert!(
        !text.contains("first secret"),
        "the password itself is never stored"
    );
    let verifier = |path: &Path| {
        let (file, _) = UsersFile::load(path).expect("load");
        file.users["carol"].password.clone().expect("a password")
    };
    let before = verifier(&users);
    assert_eq!(before.iterations(), ferry_auth::scram::DEFAULT_ITERATIONS);

    let passwd = ferry_in(
        dir.path(),
        &[
            "user",
            "passwd",
            "carol",
            "--users",
            users_s,
            "--password-stdin",
        ],
        b"second secret\n",
    );
    assert_exit(&passwd, 0);
    assert!(
        stdout(&passwd).contains("password of carol set"),
        "{}",
        stdout(&passwd)
    );
    let after = verifier(&users);
    assert_ne!(before, after, "a new salt and verifier");
    assert!(logs_in(&after, "second secret"));
    assert!(!logs_in(&after, "first secret"));
    // Same stored form the list shows.
    let list = ferry(dir.path(), &["user", "list", "--users", users_s]);
    assert_exit(&list, 0);

    // Failures: no such user, an empty password, no terminal and no --password-stdin.
    let nobody = ferry_in(
        dir.path(),
        &[
            "user",
            "passwd",
            "dave",
            "--users",
            users_s,
            "--password-stdin",
        ],
        b"x\n",
    );
    assert_exit(&nobody, 2);
    assert!(
        stderr(&nobody).contains("no user \"dave\""),
        "{}",
        stderr(&nobody)
    );
    let empty = ferry_in(
        dir.path(),
        &[
            "user",
            "passwd",
            "carol",
            "--users",
            users_s,
            "--password-stdin",
        ],
        b"\n",
    );
    assert_exit(&empty, 2);
    assert!(stderr(&empty).contains("empty"), "{}", stderr(&empty));
    let no_tty = ferry_in(
        dir.path(),
        &["user", "passwd", "carol", "--users", users_s],
        b"",
    );
    assert_exit(&no_tty, 2);
    assert!(
        stderr(&no_tty).contains("--password-stdin"),
        "{}",
        stderr(&no_tty)
    );
    assert_eq!(verifier(&users), after, "failures change nothing");
}

/// Whether a SCRAM exchange with `password` passes a server holding `stored`.
fn logs_in(stored: &ferry_auth::scram::StoredPassword, password: &str) -> bool {
    use ferry_auth::scram::{ClientExchange, ServerExchange};
    let rng = ring::rand::SystemRandom::new();
    let cb = Some([3u8; 32]);
    let (mut client, first) = ClientExchange::start("carol", password, cb, &rng).expect("start");
    let (server, server_first) =
        ServerExchange::start(&first, cb, |_| Some(stored.clone()), &[1; 32], &rng)
            .expect("answered");
    let last = client.step(&server_first).expect("step");
    server.finish(&last).is_ok()
}
