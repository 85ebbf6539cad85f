//! The folders of a server's users (the `auth` extension, spec section 16): a session that
//! authenticated is served its user's folder, with section 11's rules (AUTH-18); a session
//! of the anonymous access, the anonymous folder.
//!
//! Each distinct folder is opened once, like the served folder ([`ServerConfig::open_root`]:
//! read-only or with its staging area locked, the hard-link policy, a quota), and shared by
//! every user it belongs to and every session of theirs. [`Homes::update`] takes a new list
//! (the users file changed) without dropping sessions: folders still listed keep their open
//! [`Root`] (a second one could not lock the staging area), new ones are opened, and one no
//! longer listed is closed once the last session using it ends.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::RwLock;

use ferry_wire::auth::UserName;

use crate::{Root, ServerConfig};

/// One user's folder, as the users file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    /// The folder (absolute).
    pub path: PathBuf,
    /// Its quota in octets (PUT-23), if any.
    pub quota: Option<u64>,
}

/// The folders of a server's users, and of its anonymous access.
#[derive(Debug)]
pub struct Homes {
    inner: RwLock<Table>,
    read_only: bool,
    hard_links: bool,
}

#[derive(Debug, Default)]
struct Table {
    users: HashMap<UserName, Root>,
    anonymous: Option<Root>,
}

impl Homes {
    /// Opens the folders of `users` and of the `anonymous` access, with `config`'s read-only
    /// and hard-link policies. Fails, naming the folder and its user, when one cannot be
    /// opened, or when one folder is given two quotas.
    pub fn open(
        config: &ServerConfig,
        users: &[(UserName, Home)],
        anonymous: Option<&Home>,
    ) -> io::Result<Homes> {
        let homes = Homes {
            inner: RwLock::new(Table::default()),
            read_only: config.read_only,
            hard_links: config.allow_hard_links,
        };
        homes.update(users, anonymous)?;
        Ok(homes)
    }

    /// Takes a new list of users and folders; on failure nothing changes.
    pub fn update(&self, users: &[(UserName, Home)], anonymous: Option<&Home>) -> io::Result<()> {
        let mut open: HashMap<PathBuf, Root> = {
            let table = self.read();
            table
                .users
                .values()
                .chain(&table.anonymous)
                .map(|r| (r.path().to_path_buf(), r.clone()))
                .collect()
        };
        // `None`: the anonymous access.
        let wanted: Vec<(Option<&UserName>, &Home)> = users
            .iter()
            .map(|(u, h)| (Some(u), h))
            .chain(anonymous.map(|h| (None, h)))
            .collect();
        let mut quotas: HashMap<&PathBuf, Option<u64>> = HashMap::new();
        for &(user, home) in &wanted {
            if let Some(q) = quotas.insert(&home.path, home.quota)
                && q != home.quota
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} is the folder of more than one user with different quotas \
                         ({}'s among them): give them one quota",
                        home.path.display(),
                        who(user)
                    ),
                ));
            }
        }
        let mut table = Table::default();
        for (user, home) in wanted {
            let root = match open.get(&home.path) {
                Some(r) => r.clone(),
                None => {
                    let r = self.open_one(home).map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!("the folder of {}, {}: {e}", who(user), home.path.display()),
                        )
                    })?;
                    open.insert(home.path.clone(), r.clone());
                    r
                }
            };
            match user {
                Some(user) => {
                    table.users.insert(user.clone(), root);
                }
                None => table.anonymous = Some(root),
            }
        }
        *self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = table;
        Ok(())
    }

    fn open_one(&self, home: &Home) -> io::Result<Root> {
        let root = if self.read_only {
            Root::open_read_only(&home.path)
        } else {
            Root::open(&home.path)
        }?;
        root.with_hard_links(self.hard_links).with_quota(home.quota)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The folder of `user`, if the user (still) has one.
    pub fn user(&self, user: &UserName) -> Option<Root> {
        self.read().users.get(user).cloned()
    }

    /// The folder of the anonymous access, if there is one.
    pub fn anonymous(&self) -> Option<Root> {
        self.read().anonymous.clone()
    }
}

/// Whose folder it is, for messages.
fn who(user: Option<&UserName>) -> &str {
    user.map_or(UserName::ANONYMOUS, UserName::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> UserName {
        UserName::new(s).expect("user")
    }

    fn home(path: PathBuf) -> Home {
        Home { path, quota: None }
    }

    #[test]
    fn users_get_their_folders_and_updates_keep_open_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b, pub_) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("pub"),
        );
        let config = ServerConfig::default();
        let homes = Homes::open(
            &config,
            &[
                (user("alice"), home(a.clone())),
                (user("bob"), home(b.clone())),
            ],
            Some(&home(pub_.clone())),
        )
        .expect("homes");
        assert_eq!(
            homes.user(&user("alice")).map(|r| r.path().to_path_buf()),
            Some(a.clone())
        );
        assert_eq!(
            homes.user(&user("bob")).map(|r| r.path().to_path_buf()),
            Some(b.clone())
        );
        assert_eq!(
            homes.anonymous().map(|r| r.path().to_path_buf()),
            Some(pub_.clone())
        );
        assert!(homes.user(&user("carol")).is_none());
        assert!(
            a.join(".ferry-staging").is_dir(),
            "opened like the served folder"
        );
        // bob leaves, carol shares alice's folder: alice's Root is kept (a second open of the
        // folder could not lock its staging area), and no anonymous access any more.
        homes
            .update(
                &[
                    (user("alice"), home(a.clone())),
                    (user("carol"), home(a.clone())),
                ],
                None,
            )
            .expect("update");
        assert!(homes.user(&user("bob")).is_none());
        assert_eq!(
            homes.user(&user("carol")).map(|r| r.path().to_path_buf()),
            Some(a.clone())
        );
        assert!(homes.anonymous().is_none());
        // bob's folder is closed now: another server may open it.
        drop(Root::open(&b).expect("bob's folder is free again"));
    }

    #[test]
    fn a_folder_that_cannot_be_opened_is_an_error_naming_the_user_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a");
        let config = ServerConfig::default();
        let homes = Homes::open(&config, &[(user("alice"), home(a.clone()))], None).expect("homes");
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("a file");
        let err = homes
            .update(
                &[
                    (user("alice"), home(a.clone())),
                    (user("bob"), home(file.clone())),
                ],
                None,
            )
            .expect_err("a file is not a folder");
        assert!(err.to_string().contains("the folder of bob"), "{err}");
        assert!(homes.user(&user("alice")).is_some(), "unchanged");
        assert!(homes.user(&user("bob")).is_none());
        let quotas = homes.update(
            &[
                (
                    user("alice"),
                    Home {
                        path: a.clone(),
                        quota: Some(1),
                    },
                ),
                (
                    user("bob"),
                    Home {
                        path: a,
                        quota: Some(2),
                    },
                ),
            ],
            None,
        );
        assert!(quotas.is_err(), "one folder, two quotas");
    }
}
