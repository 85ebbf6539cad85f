//! Servers with users (spec section 16), over TLS: alice logs in with a key and may list,
//! read and create; bob logs in with a password and may list and read. Each has a folder of
//! their own holding one file (`alice.txt`, `bob.txt`).

use std::path::PathBuf;
use std::sync::Arc;

use ferry_auth::directory::Directory;
use ferry_auth::keys::PrivateKey;
use ferry_auth::login::{KeyProver, PasswordProver};
use ferry_auth::rights::Rights;
use ferry_auth::scram::{MIN_ITERATIONS, StoredPassword};
use ferry_auth::users::{User, UserName, UsersFile};
use ferry_client_core::Login;
use ferry_client_core::login::Prover;
use ferry_store::ServerAuth;
use ferry_store::homes::{Home, Homes};

use crate::{Config, Impl, TestServer};

/// bob's password.
pub const BOB_PASSWORD: &str = "pw of bob";

/// The users of a [`start`]ed server.
pub struct Users {
    /// alice's key.
    pub alice_key: Arc<PrivateKey>,
    /// The same key, to log in with.
    alice_prover: Arc<dyn Prover>,
    /// alice's folder.
    pub alice_home: PathBuf,
    /// bob's folder.
    pub bob_home: PathBuf,
    /// The users, as the server asks them.
    pub directory: Arc<Directory>,
    _homes: tempfile::TempDir,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users").finish_non_exhaustive()
    }
}

fn user(s: &str) -> UserName {
    UserName::new(s).expect("a valid user name")
}

impl Users {
    /// alice's login, with her key.
    pub fn alice(&self) -> Login {
        Login::new(user("alice"), Arc::clone(&self.alice_prover))
    }

    /// bob's login, with `password`.
    pub fn bob(&self, password: &str) -> Login {
        let prover: Arc<dyn Prover> = Arc::new(PasswordProver::new(zeroize::Zeroizing::new(
            password.to_owned(),
        )));
        Login::new(user("bob"), prover)
    }
}

/// A server of `imp` over TLS with alice and bob (see the module documentation); `f`
/// changes the rest of its configuration.
pub fn start(imp: Impl, f: impl FnOnce(&mut Config)) -> (TestServer, Users) {
    start_with(imp, |_| {}, f)
}

/// [`start`], with `users` changing the users (their limits: quotas, sessions) first.
pub fn start_with(
    imp: Impl,
    users: impl FnOnce(&mut UsersFile),
    f: impl FnOnce(&mut Config),
) -> (TestServer, Users) {
    let homes_dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (homes_dir.path().join("alice"), homes_dir.path().join("bob"));
    for (dir, file) in [(&a, "alice.txt"), (&b, "bob.txt")] {
        std::fs::create_dir(dir).expect("home");
        std::fs::write(dir.join(file), file.as_bytes()).expect("file");
    }
    let alice = PrivateKey::generate("alice@test").expect("key");
    let mut file = UsersFile::default();
    let mut ua = User::new(a.clone(), "list,read,create".parse().expect("rights")).expect("user");
    ua.keys.push(alice.public().clone());
    file.users.insert(user("alice"), ua);
    let mut ub = User::new(b.clone(), Rights::READ_ONLY).expect("user");
    let rng = ring::rand::SystemRandom::new();
    ub.password = Some(StoredPassword::new(BOB_PASSWORD, MIN_ITERATIONS, &rng).expect("verifier"));
    file.users.insert(user("bob"), ub);
    users(&mut file);
    // Each folder with its user's quotas, as `ferry serve --users` opens them.
    let homes = [(&a, "alice"), (&b, "bob")].map(|(path, name)| {
        let u = &file.users[&user(name)];
        let quota = ferry_store::Quota {
            bytes: u.quota_bytes,
            files: u.quota_files,
        };
        let home = Home {
            path: path.clone(),
            quota,
        };
        (user(name), home)
    });
    let directory = Arc::new(Directory::new(file, true).expect("directory"));
    let server = TestServer::start_tls(imp, |c| {
        let homes = Homes::open(c, &homes, None).expect("homes");
        // The test server waits for its folder's staging area: alice's is one.
        c.root = a.clone();
        c.auth = Some(ServerAuth {
            authenticator: Arc::clone(&directory) as _,
            homes: Arc::new(homes),
        });
        f(c);
    });
    // PrivateKey is not Clone (a secret is not copied by accident): a second one from its text.
    let again = PrivateKey::from_openssh(&alice.to_openssh().expect("openssh")).expect("again");
    let users = Users {
        alice_prover: Arc::new(KeyProver::new(again)),
        alice_key: Arc::new(alice),
        alice_home: a,
        bob_home: b,
        directory,
        _homes: homes_dir,
    };
    (server, users)
}
