//! A reference server with users over TLS: the users `ferry_conformance::auth::setup`
//! writes (what `ferry conform auth-setup` writes), served as `ferry serve --users
//! DIR/users.toml` serves them, optionally with one fault in how it checks them.

use std::sync::Arc;

use ferry_auth::directory::Directory;
use ferry_auth::users::UsersFile;
use ferry_conformance::ServerTarget;
use ferry_conformance::auth::{Credentials, USERS_FILE, setup};
use ferry_proto::auth::{Authenticator, Grant, Mechanism, Rights, ScramServer, UserName};
use ferry_store::ServerAuth;
use ferry_store::homes::{Home, Homes};
use ferry_test_support::{Impl, TestServer};

/// A broken server: one fault in how it checks its users.
#[allow(dead_code)] // not every test binary that includes this module uses every fault
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Accepts any ed25519 signature for a known user.
    AnySignature,
    /// Checks ed25519 proofs against the all-zero binding of a plain connection.
    ZeroBinding,
    /// Offers the unbound `scram-sha-256` over TLS too.
    OffersUnbound,
    /// Serves a session that did not log in (anonymous access with every right).
    Anonymous,
    /// Grants every user every right.
    AllRights,
    /// Refuses an unknown user's SCRAM at once (tells which users exist).
    UnknownAtOnce,
    /// Accepts a SCRAM exchange whose binding was stripped (`n,,`).
    Unbound,
    /// Answers an unknown user with the fewest iterations, unlike its users' (AUTH-14).
    UnlikeUsers,
}

/// The users file's authenticator, with a fault.
#[derive(Debug)]
struct Faulty {
    fault: Option<Fault>,
    bound: Directory,
    /// The same users, as a plain server sees them (accepts `n,,`).
    plain: Directory,
}

impl Authenticator for Faulty {
    fn mechanisms(&self) -> Vec<Mechanism> {
        let mut m = self.bound.mechanisms();
        if self.fault == Some(Fault::OffersUnbound) {
            m.push(Mechanism::ScramSha256);
        }
        m
    }

    fn anonymous(&self) -> Option<Rights> {
        match self.fault {
            Some(Fault::Anonymous) => Some(Rights::ALL),
            _ => self.bound.anonymous(),
        }
    }

    fn ed25519(
        &self,
        user: &UserName,
        public_key: &[u8; 32],
        signature: &[u8; 64],
        cb: &[u8; 32],
    ) -> Option<Grant> {
        let grant = match self.fault {
            Some(Fault::AnySignature) => {
                let file = self.bound.file();
                file.users.get(user).map(|u| Grant {
                    user: user.clone(),
                    rights: u.rights,
                })
            }
            Some(Fault::ZeroBinding) => self.bound.ed25519(user, public_key, signature, &[0; 32]),
            _ => self.bound.ed25519(user, public_key, signature, cb),
        };
        grant.map(|g| self.widen(g))
    }

    fn scram_start(
        &self,
        client_first: &[u8],
        cb: Option<&[u8; 32]>,
    ) -> Option<(Box<dyn ScramServer>, Vec<u8>)> {
        let text = String::from_utf8_lossy(client_first);
        match self.fault {
            Some(Fault::Unbound) if text.starts_with("n,,") => {
                return self.plain.scram_start(client_first, None);
            }
            Some(Fault::UnknownAtOnce) => {
                let name = text.split("n=").nth(1)?.split(',').next()?;
                if !self.bound.file().users.contains_key(name) {
                    return None;
                }
            }
            Some(Fault::UnlikeUsers) => {
                let name = text.split("n=").nth(1)?.split(',').next()?;
                if !self.bound.file().users.contains_key(name) {
                    let (exchange, first) = self.bound.scram_start(client_first, cb)?;
                    let first = String::from_utf8(first).ok()?;
                    let (head, _) = first.rsplit_once(",i=")?;
                    return Some((exchange, format!("{head},i=4096").into_bytes()));
                }
            }
            _ => {}
        }
        let (exchange, first) = self.bound.scram_start(client_first, cb)?;
        if self.fault == Some(Fault::AllRights) {
            return Some((Box::new(Widened(exchange)), first));
        }
        Some((exchange, first))
    }
}

impl Faulty {
    fn widen(&self, g: Grant) -> Grant {
        match self.fault {
            Some(Fault::AllRights) => Grant {
                rights: Rights::ALL,
                ..g
            },
            _ => g,
        }
    }
}

/// A SCRAM exchange whose grant has every right.
#[derive(Debug)]
struct Widened(Box<dyn ScramServer>);

impl ScramServer for Widened {
    fn finish(self: Box<Self>, client_final: &[u8]) -> Option<(Grant, Vec<u8>)> {
        self.0.finish(client_final).map(|(g, f)| {
            (
                Grant {
                    rights: Rights::ALL,
                    ..g
                },
                f,
            )
        })
    }
}

/// A reference server of `imp` over TLS serving the users of a fresh `auth-setup` folder,
/// and the target that reaches it with those users.
pub(crate) struct World {
    pub(crate) server: TestServer,
    pub(crate) target: ServerTarget,
    _dir: tempfile::TempDir,
}

pub(crate) fn world(imp: Impl, fault: Option<Fault>) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let auth_dir = dir.path().join("auth");
    setup(&auth_dir).expect("auth-setup");
    let (file, _) = UsersFile::load(&auth_dir.join(USERS_FILE)).expect("users file");
    let homes: Vec<(UserName, Home)> = file
        .users
        .iter()
        .map(|(name, u)| {
            (
                name.clone(),
                Home {
                    path: u.root.clone(),
                    quota: Default::default(),
                },
            )
        })
        .collect();
    let alice = file.users.values().next().expect("a user").root.clone();
    let anonymous = dir.path().join("anonymous");
    std::fs::create_dir(&anonymous).expect("anonymous folder");
    let authenticator = Arc::new(Faulty {
        fault,
        bound: Directory::new(file.clone(), true).expect("directory"),
        plain: Directory::new(file, false).expect("directory"),
    });
    let server = TestServer::start_tls(imp, |c| {
        let anon = Home {
            path: anonymous.clone(),
            quota: Default::default(),
        };
        let homes = Homes::open(c, &homes, Some(&anon)).expect("homes");
        // The test server waits for its folder's staging area: alice's is one.
        c.root = alice.clone();
        c.auth = Some(ServerAuth {
            authenticator,
            homes: Arc::new(homes),
        });
    });
    let mut target = ServerTarget::new(server.addr.to_string());
    target.tls = server.tls.as_ref().map(ferry_test_support::tls::client);
    target.auth = Some(Arc::new(Credentials::load(&auth_dir).expect("credentials")));
    World {
        server,
        target,
        _dir: dir,
    }
}
