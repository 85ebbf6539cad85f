//! The credentials of the `auth` cases (spec section 16): what `ferry conform auth-setup DIR`
//! writes and `ferry conform server … --auth DIR` reads.
//!
//! The runner logs in as four users with different rights, each with an Ed25519 key and a
//! password, each confined to a folder of its own that starts empty:
//!
//! | user | rights | what the cases use it for |
//! |---|---|---|
//! | `alice` | every right (`list,read,create,replace,delete,rename`) | logins, the baseline of every right, AUTH-7, AUTH-18 |
//! | `bob` | `list,read` (read-only) | `put` refused with 550 (AUTH-19), AUTH-18 |
//! | `carol` | `list,read,create` (no `replace`) | `put replace` stored as `new` (AUTH-19), AUTH-18 |
//! | `dave` | `create` only (a drop box) | `dir` and `get` refused with 550, before the file is looked at (AUTH-19) |
//!
//! `DIR` holds:
//!
//! - `conform.toml`: what the runner reads (each user's rights, key file and password);
//! - `keys/NAME` and `keys/NAME.pub`: the keys, in OpenSSH's formats (`ferry keygen`'s);
//! - `users.toml`: the same users in ferry's users file (`ferry serve --users DIR/users.toml`),
//!   with SCRAM-SHA-256 verifiers made as `ferry user passwd` makes them (a 16-octet salt,
//!   400,000 iterations), so that ferry's made-up answer for an unknown user looks like
//!   theirs (AUTH-14);
//! - `homes/NAME/`: each user's folder, empty;
//! - `USERS.md`: the same in plain words for a server that is not ferry's: names, rights,
//!   public keys (as OpenSSH lines and as the base64 of the 32 octets a PUBKEY field
//!   carries), passwords, folders and verifiers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ferry_auth::keys::PrivateKey;
use ferry_auth::rights::Rights;
use ferry_auth::scram::{DEFAULT_ITERATIONS, StoredPassword};
use ferry_auth::users::{User, UserName, UsersFile};
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};

/// The runner's manifest in `DIR`.
pub const MANIFEST: &str = "conform.toml";
/// ferry's users file in `DIR`.
pub const USERS_FILE: &str = "users.toml";
/// The description for implementers in `DIR`.
pub const DESCRIPTION: &str = "USERS.md";

/// What each user may do, as `auth-setup` makes them: (name, rights, role).
pub const ROLES: [(&str, &str, &str); 4] = [
    (
        "alice",
        "list,read,create,replace,delete,rename",
        "every right",
    ),
    ("bob", "list,read", "read-only"),
    ("carol", "list,read,create", "may create, not replace"),
    (
        "dave",
        "create",
        "may only create (a drop box: no list, no read)",
    ),
];

/// One user the runner logs in as.
#[derive(Debug)]
pub struct Login {
    /// The user name.
    pub name: UserName,
    /// What the server grants the user (the cases rely on it).
    pub rights: Rights,
    /// The user's key.
    pub key: PrivateKey,
    /// The user's password.
    pub password: String,
}

/// The users of `DIR` (`--auth DIR`).
#[derive(Debug)]
pub struct Credentials {
    /// Where they were read from.
    pub dir: PathBuf,
    /// `alice`: every right.
    pub all: Login,
    /// `bob`: `list,read`.
    pub read_only: Login,
    /// `carol`: `list,read,create`.
    pub no_replace: Login,
    /// `dave`: `create` only.
    pub drop_box: Login,
}

impl PartialEq for Login {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.rights == other.rights
            && self.key.public() == other.key.public()
            && self.password == other.password
    }
}

impl Eq for Login {}

impl PartialEq for Credentials {
    fn eq(&self, other: &Self) -> bool {
        self.dir == other.dir && self.users() == other.users()
    }
}

impl Eq for Credentials {}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    users: BTreeMap<String, ManifestUser>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestUser {
    rights: String,
    key: String,
    password: String,
    root: PathBuf,
}

impl Credentials {
    /// Reads `DIR/conform.toml` and the private keys it names. Errors are sentences naming
    /// the file.
    pub fn load(dir: &Path) -> Result<Credentials, String> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{}: {e} (make the credentials with `ferry conform auth-setup {}`)",
                path.display(),
                dir.display()
            )
        })?;
        let manifest: Manifest =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let login = |name: &str, want: &str| -> Result<Login, String> {
            let u = manifest
                .users
                .get(name)
                .ok_or_else(|| format!("{}: no user {name}", path.display()))?;
            let rights: Rights = u
                .rights
                .parse()
                .map_err(|e| format!("{}: {name}: {e}", path.display()))?;
            if rights != want.parse::<Rights>().map_err(|e| e.to_string())? {
                return Err(format!(
                    "{}: {name} must have the rights {want}, not {rights}",
                    path.display()
                ));
            }
            let key = PrivateKey::read_file(&dir.join(&u.key)).map_err(|e| e.to_string())?;
            Ok(Login {
                name: UserName::new(name).map_err(|e| e.to_string())?,
                rights,
                key,
                password: u.password.clone(),
            })
        };
        Ok(Credentials {
            dir: dir.to_owned(),
            all: login(ROLES[0].0, ROLES[0].1)?,
            read_only: login(ROLES[1].0, ROLES[1].1)?,
            no_replace: login(ROLES[2].0, ROLES[2].1)?,
            drop_box: login(ROLES[3].0, ROLES[3].1)?,
        })
    }

    /// Every user, `alice` first.
    pub fn users(&self) -> [&Login; 4] {
        [&self.all, &self.read_only, &self.no_replace, &self.drop_box]
    }
}

/// A fresh password: 24 random letters and digits (SASLprep leaves it as it is).
fn password(rng: &SystemRandom) -> Result<String, String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut octets = [0u8; 24];
    rng.fill(&mut octets)
        .map_err(|_| "no randomness for the passwords".to_owned())?;
    Ok(octets
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

/// Writes the credentials of the `auth` cases into `dir` (made if missing; it must be empty):
/// keys, passwords, ferry's users file, each user's empty folder and `USERS.md`. Returns
/// what it wrote, for the command to print.
pub fn setup(dir: &Path) -> Result<String, String> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if entries.next().is_some() {
            return Err(format!(
                "{} is not empty: auth-setup writes into a new or empty folder (it never \
                 overwrites keys)",
                dir.display()
            ));
        }
    }
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let dir = dir.canonicalize().map_err(|e| io(dir, e))?;
    let keys = dir.join("keys");
    std::fs::create_dir(&keys).map_err(|e| io(&keys, e))?;
    let rng = SystemRandom::new();
    let mut file = UsersFile::default();
    let mut manifest = Manifest {
        users: BTreeMap::new(),
    };
    let mut description = String::new();
    for (name, rights, role) in ROLES {
        let root = dir.join("homes").join(name);
        std::fs::create_dir_all(&root).map_err(|e| io(&root, e))?;
        let key =
            PrivateKey::generate(format!("{name}@ferry-conform")).map_err(|e| e.to_string())?;
        key.write_pair(&keys.join(name))
            .map_err(|e| e.to_string())?;
        let password = password(&rng)?;
        let stored =
            StoredPassword::new(&password, DEFAULT_ITERATIONS, &rng).map_err(|e| e.to_string())?;
        let parsed: Rights = rights.parse().map_err(|e| format!("{e}"))?;
        let mut user = User::new(root.clone(), parsed)?;
        user.keys.push(key.public().clone());
        user.password = Some(stored.clone());
        let user_name = UserName::new(name).map_err(|e| e.to_string())?;
        file.users.insert(user_name, user);
        manifest.users.insert(
            name.to_owned(),
            ManifestUser {
                rights: rights.to_owned(),
                key: format!("keys/{name}"),
                password: password.clone(),
                root: root.clone(),
            },
        );
        let _ = write!(
            description,
            "## {name} ({role})\n\n\
             - rights: `{rights}`\n\
             - folder: `{}` (empty)\n\
             - public key (OpenSSH): `{}`\n\
             - public key (PUBKEY, base64 of the 32 octets): `{}`\n\
             - private key: `keys/{name}` (OpenSSH format, unencrypted)\n\
             - password: `{password}`\n\
             - password verifier (RFC 5803): `{stored}`\n\n",
            root.display(),
            key.public().to_line(),
            B64.encode(key.public().raw()),
        );
    }
    let users = dir.join(USERS_FILE);
    file.save(&users).map_err(|e| e.to_string())?;
    let text = toml::to_string(&manifest).map_err(|e| e.to_string())?;
    let manifest_path = dir.join(MANIFEST);
    write_private(
        &manifest_path,
        &format!(
            "# Written by `ferry conform auth-setup`; read by `ferry conform server --auth {}`.\n\
         # Passwords in clear: test credentials only.\n{text}",
            dir.display()
        ),
    )?;
    let intro = format!(
        "# Users for the auth cases of `ferry conform server`\n\n\
         Written by `ferry conform auth-setup {dir}`. Test credentials only: the passwords are\n\
         in clear here and in `conform.toml`.\n\n\
         Give your server these four users, over TLS (ferry/1 over TLS, spec section 15), each\n\
         with the rights listed and its own folder, empty at the start (the runner creates its\n\
         files with `put`, under names unique to the run, and never deletes them), with no\n\
         anonymous access, then run\n\n\
         ```sh\n\
         ferry conform server ferrys://HOST:PORT --fingerprint SHA256:… --auth {dir} --include 'server/AUTH-*'\n\
         ```\n\n\
         For ferry's own server: `ferry serve --users {dir}/{USERS_FILE} --tls-self-signed`.\n\
         A server may store each password its own way (RFC 5803's verifier below has a\n\
         16-octet salt and 400,000 iterations; any count of at least 4096 will do, but the\n\
         answer to an unknown user must look like these users': the same iteration count and\n\
         salt length, AUTH-14) and must accept both\n\
         the key and the password of each user. The runner also tries user names no server\n\
         knows (`cf<run>-<case>-nobody`) and makes about 25 deliberate failed logins from its\n\
         address: a server that throttles failures must let that many through.\n\n",
        dir = dir.display()
    );
    let readme = dir.join(DESCRIPTION);
    write_private(&readme, &format!("{intro}{description}"))?;
    Ok(format!(
        "wrote {} users (alice, bob, carol, dave) into {}: {MANIFEST} (for --auth), \
         {USERS_FILE} (ferry serve --users {}), keys/, homes/ and {DESCRIPTION} (for other servers)",
        ROLES.len(),
        dir.display(),
        users.display()
    ))
}

/// Writes a file only its owner may read (it holds passwords).
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_writes_what_load_and_ferry_serve_read() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("auth");
        let said = setup(&dir).expect("setup");
        assert!(said.contains("alice, bob, carol, dave"), "{said}");
        let c = Credentials::load(&dir).expect("load");
        assert_eq!(c.all.rights, Rights::ALL);
        assert_eq!(c.read_only.rights, Rights::READ_ONLY);
        let (file, warnings) = UsersFile::load(&dir.join(USERS_FILE)).expect("users file");
        assert!(warnings.is_empty(), "{warnings:?}");
        for login in c.users() {
            let u = &file.users[&login.name];
            assert_eq!(u.rights, login.rights);
            assert!(u.key(login.key.public().raw()).is_some());
            assert!(u.root.is_dir() && u.root.read_dir().expect("folder").next().is_none());
            assert_eq!(
                u.password.as_ref().map(|p| p.iterations()),
                Some(DEFAULT_ITERATIONS)
            );
        }
        let readme = std::fs::read_to_string(dir.join(DESCRIPTION)).expect("description");
        assert!(readme.contains(&c.read_only.password), "{readme}");
        assert!(readme.contains(&B64.encode(c.drop_box.key.public().raw())));
        // Never over what exists.
        let e = setup(&dir).expect_err("not empty");
        assert!(e.contains("not empty"), "{e}");
        // A manifest that gives a user other rights is refused by name.
        let m = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&m).expect("manifest");
        std::fs::write(
            &m,
            text.replace("rights = \"list,read\"", "rights = \"list\""),
        )
        .expect("write");
        let e = Credentials::load(&dir).expect_err("wrong rights");
        assert!(e.contains("bob must have the rights list,read"), "{e}");
    }
}
