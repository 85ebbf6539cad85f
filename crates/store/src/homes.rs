//! The folders of a server's users (the `auth` extension, spec section 16): a session that
//! authenticated is served its user's folder, with section 11's rules (AUTH-18); a session
//! of the anonymous access, the anonymous folder.
//!
//! Each distinct folder is opened once, like the served folder ([`ServerConfig::open_root`]:
//! read-only or with its staging area locked, the hard-link policy, quotas in octets and
//! files), and shared by every user it belongs to and every session of theirs: users who
//! share a folder share its quotas and one count of what it holds, so they must be given the
//! same quotas. [`Homes::update`] takes a new list (the users file changed) without dropping
//! sessions: folders still listed keep their open [`Root`] (a second one could not lock the
//! staging area), with their quotas changed if the list changes them, new ones are opened,
//! and one no longer listed is closed once the last session using it ends.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::RwLock;

use ferry_wire::auth::UserName;

use crate::{Quota, Root, ServerConfig};

/// One user's folder, as the users file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    /// The folder (absolute).
    pub path: PathBuf,
    /// Its quotas in octets and in files (PUT-23); the default is none.
    pub quota: Quota,
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
        let mut quotas: HashMap<&PathBuf, Quota> = HashMap::new();
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
                Some(r) if self.read_only || r.quota() == home.quota => r.clone(),
                Some(r) => {
                    // A changed quota: counted again (a scan of the folder).
                    let r = r.clone().with_quotas(home.quota).map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!("the folder of {}, {}: {e}", who(user), home.path.display()),
                        )
                    })?;
                    open.insert(home.path.clone(), r.clone());
                    r
                }
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
        root.with_hard_links(self.hard_links)
            .with_quotas(home.quota)
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
        Home {
            path,
            quota: Quota::default(),
        }
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
                        quota: Quota {
                            bytes: Some(1),
                            files: None,
                        },
                    },
                ),
                (
                    user("bob"),
                    Home {
                        path: a.clone(),
                        quota: Quota {
                            bytes: Some(1),
                            files: Some(2),
                        },
                    },
                ),
            ],
            None,
        );
        assert!(quotas.is_err(), "one folder, two quotas (in files)");
    }

    /// Users who share a folder share its quotas and one count; a reload that changes the
    /// quotas of an open folder applies them (counted again), to every user of the folder.
    #[test]
    fn a_shared_folder_has_one_count_and_a_reload_changes_its_quotas() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = dir.path().join("shared");
        let config = ServerConfig::default();
        let quota = |files| Quota {
            bytes: None,
            files: Some(files),
        };
        let both = |q: Quota| {
            [
                (
                    user("alice"),
                    Home {
                        path: shared.clone(),
                        quota: q,
                    },
                ),
                (
                    user("bob"),
                    Home {
                        path: shared.clone(),
                        quota: q,
                    },
                ),
            ]
        };
        let homes = Homes::open(&config, &both(quota(2)), None).expect("homes");
        let (alice, bob) = (
            homes.user(&user("alice")).expect("alice"),
            homes.user(&user("bob")).expect("bob"),
        );
        let name = |s: &str| ferry_wire::TreePath::new(s).expect("name");
        let put = |root: &Root, n: &str| {
            let mut u = root.begin_upload(&name(n), 1, ferry_wire::PutMode::New)?;
            u.write_all(b"x")?;
            u.commit()
        };
        put(&alice, "a").expect("1 of 2");
        put(&bob, "b").expect("2 of 2");
        assert!(matches!(put(&alice, "c"), Err(crate::StoreError::NoSpace)));
        assert!(matches!(put(&bob, "c"), Err(crate::StoreError::NoSpace)));
        homes.update(&both(quota(3)), None).expect("reload");
        let alice = homes.user(&user("alice")).expect("alice");
        put(&alice, "c").expect("3 of 3 after the reload");
        let bob = homes.user(&user("bob")).expect("bob");
        assert!(matches!(put(&bob, "d"), Err(crate::StoreError::NoSpace)));
        assert_eq!(bob.usage().map(|u| u.files), Some(3));
    }
}
