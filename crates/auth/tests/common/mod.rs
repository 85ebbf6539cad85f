//! What the in-memory tests of the users directory share.

// Each test file is its own crate and uses only some of this.
#![allow(dead_code)]

use std::sync::Arc;

use ferry_auth::directory::Directory;
use ferry_auth::keys::PrivateKey;
use ferry_auth::rights::Rights;
use ferry_auth::scram::{MIN_ITERATIONS, StoredPassword};
use ferry_auth::users::{User, UserName, UsersFile};
use ring::rand::SystemRandom;

/// The channel binding of the connection in memory.
pub(crate) const CB: [u8; 32] = [7; 32];

pub(crate) fn user(s: &str) -> UserName {
    UserName::new(s).expect("user")
}

pub(crate) struct World {
    pub alice: PrivateKey,
    pub directory: Arc<Directory>,
}

/// alice: a key, `list,read`; bob: password "correct horse", every right.
pub(crate) fn world(tls: bool) -> World {
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
