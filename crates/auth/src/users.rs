//! The users file (spec section 16; `ferry serve --users FILE`, managed by `ferry user`):
//! TOML, one `[users.NAME]` table per user and an optional `[anonymous]` table.
//!
//! ```toml
//! [users.alice]
//! root = "/srv/ferry/alice"          # absolute; each user sees only this folder
//! rights = ["list", "read", "create", "replace"]
//! keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA… alice@laptop"]
//! password = "SCRAM-SHA-256$600000:…$…:…"    # optional
//! quota-bytes = 10737418240          # optional
//! quota-files = 10000                # optional
//! max-sessions = 4                   # optional
//!
//! [anonymous]                        # optional; absent = no anonymous access
//! root = "/srv/ferry/public"
//! rights = ["list", "read"]          # read-only by default
//! quota-bytes = 1073741824           # optional (with "create": what anonymous may fill)
//! quota-files = 1000                 # optional
//! ```
//!
//! Loading checks everything and names the file, the line, the user and the field of the
//! first problem; an unknown key is an error. Saving rewrites the whole file atomically with
//! mode 0600 (comments an operator added are not kept).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::{Spanned, Value};

use crate::keys::PublicKey;
use crate::rights::Rights;
use crate::scram::StoredPassword;

/// The first line of a file `save` writes.
pub const HEADER: &str =
    "# ferry users file: edit with `ferry user`; the server reloads it on change.\n";

/// The prefix of a stored password (RFC 5803).
pub const SCRAM_PREFIX: &str = "SCRAM-SHA-256$";

pub use ferry_wire::auth::{BadUser, UserName};

/// Checks a root folder's path: absolute, and UTF-8 (the users file is text).
pub fn check_root(root: &Path) -> Result<(), String> {
    if root.to_str().is_none() {
        return Err(format!(
            "{}: the path is not UTF-8 (the users file is UTF-8 text)",
            root.display()
        ));
    }
    if !root.is_absolute() {
        return Err(format!(
            "must be an absolute path (beginning with /), not {:?}",
            root.display().to_string()
        ));
    }
    Ok(())
}

/// Reads a stored password: RFC 5803's `SCRAM-SHA-256$…` ([`StoredPassword`]), never a
/// password in clear.
pub fn parse_password(stored: &str) -> Result<StoredPassword, String> {
    if !stored.starts_with(SCRAM_PREFIX) {
        return Err(format!(
            "must be a SCRAM-SHA-256 verifier ({SCRAM_PREFIX}ITERATIONS:SALT$STOREDKEY:SERVERKEY, \
             as `ferry user` writes it), never a password"
        ));
    }
    stored.parse().map_err(|e| format!("{e}"))
}

/// One user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct User {
    /// The folder this user sees (absolute).
    pub root: PathBuf,
    /// What the user may do.
    pub rights: Rights,
    /// The user's Ed25519 keys.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<PublicKey>,
    /// The SCRAM-SHA-256 verifier (RFC 5803: `SCRAM-SHA-256$ITER:SALT$STOREDKEY:SERVERKEY`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<StoredPassword>,
    /// Most octets the user's folder may hold (each folder in it counts 4096, PUT-23).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_bytes: Option<u64>,
    /// Most files and folders the user's folder may hold (PUT-23).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_files: Option<u64>,
    /// Most sessions of this user at once (at least 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_sessions: Option<u32>,
}

impl User {
    /// A user with a root and rights, no credentials and no limits.
    pub fn new(root: PathBuf, rights: Rights) -> Result<Self, String> {
        check_root(&root)?;
        Ok(User {
            root,
            rights,
            keys: Vec::new(),
            password: None,
            quota_bytes: None,
            quota_files: None,
            max_sessions: None,
        })
    }

    /// The user's key with these raw octets.
    pub fn key(&self, raw: &[u8; 32]) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.raw() == raw)
    }

    /// Whether the user has any credential (a key or a password): a user without one is
    /// valid but cannot log in.
    pub fn can_log_in(&self) -> bool {
        !self.keys.is_empty() || self.password.is_some()
    }
}

/// The anonymous access: a root, rights (read-only unless given) and optional quotas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Anonymous {
    /// The folder anonymous sessions see (absolute).
    pub root: PathBuf,
    /// What they may do (default `list`, `read`).
    pub rights: Rights,
    /// Most octets the folder may hold (each folder in it counts 4096, PUT-23): what every
    /// anonymous session together may put there, with the `create` right.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_bytes: Option<u64>,
    /// Most files and folders the folder may hold (PUT-23).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_files: Option<u64>,
}

/// The users file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsersFile {
    /// The users by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<UserName, User>,
    /// The anonymous access, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous: Option<Anonymous>,
}

/// Why a users file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading it failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Its content is wrong.
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line (1-based) of the problem.
        line: usize,
        /// What is wrong, naming the user and the field.
        message: String,
    },
}

/// Something a loaded file should not be, but is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// Group or others may write the file, so they may add users or keys.
    Writable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Writable { path, mode } => write!(
                f,
                "{}: group or others may write it (mode {mode:04o}), so they may add users and \
                 keys: chmod 600 {}",
                path.display(),
                path.display()
            ),
        }
    }
}

/// Why a users file could not be saved (the file is unchanged then).
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct SaveError {
    /// The file (or the temporary file or folder the error was about).
    pub path: PathBuf,
    /// The error.
    #[source]
    pub source: io::Error,
}

/// The exclusive lock of a users file, from [`UsersFile::lock`].
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Lock {
    /// The lock file of `path`: `.NAME.lock` in the same folder.
    pub fn path_of(path: &Path) -> PathBuf {
        let name = path
            .file_name()
            .map_or_else(|| "users".into(), |n| n.to_string_lossy().into_owned());
        path.with_file_name(format!(".{name}.lock"))
    }

    fn acquire(path: &Path, how: rustix::fs::FlockOperation) -> Result<Lock, SaveError> {
        let lock_path = Lock::path_of(path);
        let err = |source| SaveError {
            path: lock_path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(err)?;
        loop {
            match rustix::fs::flock(&file, how) {
                Ok(()) => return Ok(Lock { _file: file }),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(err(e.into())),
            }
        }
    }
}

type RawTable = BTreeMap<Spanned<String>, Spanned<Value>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    users: BTreeMap<Spanned<String>, Spanned<RawTable>>,
    #[serde(default)]
    anonymous: Option<Spanned<RawTable>>,
}

/// Line numbers of byte offsets.
struct Lines<'a>(&'a str);

impl Lines<'_> {
    fn at(&self, offset: usize) -> usize {
        1 + self.0[..offset.min(self.0.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
    }
}

const USER_FIELDS: &str = "root, rights, keys, password, quota-bytes, quota-files, max-sessions";

impl UsersFile {
    /// Parses the text of a users file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, LoadError> {
        let lines = Lines(text);
        let invalid = |offset: usize, message: String| LoadError::Invalid {
            path: path.to_owned(),
            line: lines.at(offset),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            invalid(at, e.message().trim().to_owned())
        })?;
        let mut file = UsersFile::default();
        for (name, table) in raw.users {
            let name_at = name.span().start;
            let name = name.into_inner();
            let user_name: UserName = name
                .clone()
                .try_into()
                .map_err(|e| invalid(name_at, format!("user {name:?}: {e}")))?;
            let user = parse_user(&name, table.into_inner(), name_at, &invalid)?;
            file.users.insert(user_name, user);
        }
        if let Some(anon) = raw.anonymous {
            let at = anon.span().start;
            file.anonymous = Some(parse_anonymous(anon.into_inner(), at, &invalid)?);
        }
        Ok(file)
    }

    /// Reads and parses `path`; a file group or others may write is accepted with a
    /// warning.
    pub fn load(path: &Path) -> Result<(Self, Vec<Warning>), LoadError> {
        let io = |source| LoadError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let mode = file.metadata().map_err(io)?.mode() & 0o7777;
        let mut text = String::new();
        io::Read::read_to_string(&mut file, &mut text).map_err(io)?;
        let users = UsersFile::parse(&text, path)?;
        let mut warnings = Vec::new();
        if mode & 0o022 != 0 {
            warnings.push(Warning::Writable {
                path: path.to_owned(),
                mode,
            });
        }
        Ok((users, warnings))
    }

    /// The file's text, as `save` writes it. Fails only for what TOML cannot hold (a root
    /// that is not UTF-8, set directly rather than through [`User::new`] or `parse`).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        for (name, user) in &self.users {
            if let Err(e) = check_root(&user.root) {
                return Err(serde::ser::Error::custom(format!("user {name}: root: {e}")));
            }
        }
        let body = toml::to_string(self)?;
        Ok(format!("{HEADER}\n{body}"))
    }

    /// Writes the file atomically: a temporary file in the same folder (mode 0600), written
    /// and flushed to disk, renamed over `path` (a symbolic link at `path` is replaced, not
    /// followed), and the folder flushed. On an error before the rename, `path` is unchanged
    /// and the temporary file removed; only the flush of the folder comes after it.
    pub fn save(&self, path: &Path) -> Result<(), SaveError> {
        let text = self.to_toml().map_err(|e| SaveError {
            path: path.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .map_or_else(|| "users".into(), |n| n.to_string_lossy().into_owned());
        let err = |path: &Path| {
            let path = path.to_owned();
            move |source| SaveError { path, source }
        };
        let (tmp, mut out) = temp_file(dir, &name).map_err(|(tmp, e)| err(&tmp)(e))?;
        let written = out
            .write_all(text.as_bytes())
            .and_then(|()| out.sync_all())
            .map_err(err(&tmp))
            .and_then(|()| fs::rename(&tmp, path).map_err(err(path)));
        drop(out);
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        File::open(dir).and_then(|d| d.sync_all()).map_err(err(dir))
    }

    /// Takes the exclusive lock of the users file `path` for a read-modify-write (load,
    /// change, save), waiting while another holder has it, so that two `ferry user` commands
    /// at once cannot lose either's change. The lock is a `flock(2)` of `.NAME.lock` beside
    /// the file (created with mode 0600 and left there; the users file itself is replaced by
    /// each save, so it cannot carry the lock). Released when the [`Lock`] is dropped.
    pub fn lock(path: &Path) -> Result<Lock, SaveError> {
        Lock::acquire(path, rustix::fs::FlockOperation::LockExclusive)
    }

    /// The user `name`'s key with these raw octets (what `auth ed25519` looks up).
    pub fn key(&self, name: &str, raw: &[u8; 32]) -> Option<(&User, &PublicKey)> {
        let user = self.users.get(name)?;
        Some((user, user.key(raw)?))
    }
}

fn parse_user(
    name: &str,
    fields: RawTable,
    at: usize,
    invalid: &dyn Fn(usize, String) -> LoadError,
) -> Result<User, LoadError> {
    let field_err = |field: &str, offset: usize, m: String| {
        invalid(offset, format!("user {name:?}: field {field:?}: {m}"))
    };
    let mut root = None;
    let mut rights = None;
    let mut user = User {
        root: PathBuf::new(),
        rights: Rights::NONE,
        keys: Vec::new(),
        password: None,
        quota_bytes: None,
        quota_files: None,
        max_sessions: None,
    };
    for (key, value) in fields {
        let offset = key.span().start;
        let (key, value) = (key.into_inner(), value.into_inner());
        let bad = |m: String| field_err(&key, offset, m);
        match key.as_str() {
            "root" => root = Some(parse_root(value).map_err(bad)?),
            "rights" => rights = Some(parse_rights(value).map_err(bad)?),
            "keys" => {
                let Value::Array(list) = value else {
                    return Err(bad("must be an array of public key lines".into()));
                };
                for (i, v) in list.into_iter().enumerate() {
                    let Value::String(line) = v else {
                        return Err(bad(format!("key {}: must be a string", i + 1)));
                    };
                    let key = PublicKey::parse_line(&line)
                        .map_err(|e| bad(format!("key {}: {e}", i + 1)))?;
                    if user.key(key.raw()).is_some() {
                        return Err(bad(format!("key {}: listed twice", i + 1)));
                    }
                    user.keys.push(key);
                }
            }
            "password" => {
                let Value::String(s) = value else {
                    return Err(bad("must be a string".into()));
                };
                user.password = Some(parse_password(&s).map_err(bad)?);
            }
            "quota-bytes" => user.quota_bytes = Some(parse_count(value).map_err(bad)?),
            "quota-files" => user.quota_files = Some(parse_count(value).map_err(bad)?),
            "max-sessions" => {
                let n = parse_count(value).map_err(&bad)?;
                if n == 0 {
                    return Err(bad("must be at least 1".into()));
                }
                user.max_sessions =
                    Some(u32::try_from(n).map_err(|_| bad(format!("{n} is too large")))?);
            }
            _ => {
                return Err(bad(format!(
                    "unknown field (a user's fields are {USER_FIELDS})"
                )));
            }
        }
    }
    let missing = |field: &str| invalid(at, format!("user {name:?}: field {field:?} is missing"));
    user.root = root.ok_or_else(|| missing("root"))?;
    user.rights = rights.ok_or_else(|| missing("rights"))?;
    Ok(user)
}

fn parse_anonymous(
    table: RawTable,
    at: usize,
    invalid: &dyn Fn(usize, String) -> LoadError,
) -> Result<Anonymous, LoadError> {
    let mut root = None;
    let mut rights = Rights::READ_ONLY;
    let (mut quota_bytes, mut quota_files) = (None, None);
    for (key, value) in table {
        let offset = key.span().start;
        let (key, value) = (key.into_inner(), value.into_inner());
        let bad = |m: String| invalid(offset, format!("anonymous: field {key:?}: {m}"));
        match key.as_str() {
            "root" => root = Some(parse_root(value).map_err(bad)?),
            "rights" => rights = parse_rights(value).map_err(bad)?,
            "quota-bytes" => quota_bytes = Some(parse_count(value).map_err(bad)?),
            "quota-files" => quota_files = Some(parse_count(value).map_err(bad)?),
            _ => {
                return Err(bad(
                    "unknown field (the anonymous access has root, rights, quota-bytes and \
                     quota-files)"
                        .into(),
                ));
            }
        }
    }
    let root = root.ok_or_else(|| invalid(at, "anonymous: field \"root\" is missing".into()))?;
    Ok(Anonymous {
        root,
        rights,
        quota_bytes,
        quota_files,
    })
}

fn parse_root(value: Value) -> Result<PathBuf, String> {
    let Value::String(s) = value else {
        return Err("must be a string (the absolute path of a folder)".into());
    };
    let root = PathBuf::from(s);
    check_root(&root)?;
    Ok(root)
}

fn parse_rights(value: Value) -> Result<Rights, String> {
    Rights::deserialize(value).map_err(|e| e.message().trim().to_owned())
}

fn parse_count(value: Value) -> Result<u64, String> {
    match value {
        Value::Integer(n) => u64::try_from(n).map_err(|_| format!("must be 0 or more, not {n}")),
        other => Err(format!(
            "must be a whole number, not a {}",
            other.type_str()
        )),
    }
}

/// A new file `.NAME.PID.N.tmp` in `dir`, mode 0600, for a write that is renamed or linked
/// into place (the users file, the secret beside it); the first N not taken. An error names
/// the file tried last.
pub(crate) fn temp_file(dir: &Path, name: &str) -> Result<(PathBuf, File), (PathBuf, io::Error)> {
    let mut n = 0u32;
    loop {
        let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(e) => return Err((tmp, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rights::Right;
    use std::os::unix::fs::PermissionsExt as _;

    const ALICE_KEY: &str = include_str!("../testdata/openssh_ed25519.pub");

    fn example() -> String {
        format!(
            r#"# ferry users file
[users.alice]
root = "/srv/ferry/alice"          # absolute; each user sees only this folder
rights = ["list", "read", "create", "replace"]
keys = [{key:?}]
password = "SCRAM-SHA-256$4096:AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
quota-bytes = 10737418240
quota-files = 10000
max-sessions = 4

[users."bob.b-2_"]
root = "/srv/ferry/bob"
rights = []

[anonymous]
root = "/srv/ferry/public"
quota-files = 100
"#,
            key = ALICE_KEY.trim()
        )
    }

    fn parse(text: &str) -> Result<UsersFile, LoadError> {
        UsersFile::parse(text, Path::new("users.toml"))
    }

    #[track_caller]
    fn error(text: &str) -> String {
        parse(text).expect_err("invalid").to_string()
    }

    #[test]
    fn names_follow_the_grammar() {
        for good in ["a", "alice", "A.b_c-9", &"x".repeat(64)] {
            assert!(good.parse::<UserName>().is_ok(), "{good}");
        }
        assert_eq!("".parse::<UserName>(), Err(BadUser::Empty));
        assert_eq!(
            "x".repeat(65).parse::<UserName>(),
            Err(BadUser::TooLong(65))
        );
        assert_eq!("a b".parse::<UserName>(), Err(BadUser::BadChar(' ')));
        assert_eq!("a=b".parse::<UserName>(), Err(BadUser::BadChar('=')));
        assert_eq!("a,b".parse::<UserName>(), Err(BadUser::BadChar(',')));
        assert_eq!("é".parse::<UserName>(), Err(BadUser::BadChar('é')));
        assert_eq!("anonymous".parse::<UserName>(), Err(BadUser::Reserved));
        assert!("Anonymous".parse::<UserName>().is_ok(), "case-sensitive");
    }

    #[test]
    fn the_design_s_example_loads() {
        let f = parse(&example()).expect("valid");
        let alice = &f.users["alice"];
        assert_eq!(alice.root, Path::new("/srv/ferry/alice"));
        assert_eq!(alice.rights.to_string(), "list,read,create,replace");
        assert_eq!(alice.keys.len(), 1);
        assert_eq!(alice.quota_bytes, Some(10_737_418_240));
        assert_eq!(alice.quota_files, Some(10_000));
        assert_eq!(alice.max_sessions, Some(4));
        assert!(
            alice
                .password
                .as_ref()
                .is_some_and(|p| p.iterations() == 4096)
        );
        assert!(alice.can_log_in());
        let bob = &f.users["bob.b-2_"];
        assert!(bob.rights.is_empty() && !bob.can_log_in());
        let anon = f.anonymous.as_ref().expect("anonymous");
        assert_eq!(anon.rights, Rights::READ_ONLY, "read-only by default");
        assert_eq!((anon.quota_bytes, anon.quota_files), (None, Some(100)));
        assert!(!anon.rights.contains(Right::Create));
        let raw = *alice.keys[0].raw();
        let (user, key) = f.key("alice", &raw).expect("alice's key");
        assert_eq!(user, alice);
        assert_eq!(key.comment(), "made-by@ssh-keygen");
        assert!(f.key("bob.b-2_", &raw).is_none());
        assert!(f.key("carol", &raw).is_none());
        assert!(f.key("alice", &[0; 32]).is_none());
        assert_eq!(parse("").expect("empty"), UsersFile::default());
    }

    #[test]
    fn saved_text_loads_back_equal() {
        let f = parse(&example()).expect("valid");
        let text = f.to_toml().expect("toml");
        assert!(text.starts_with(HEADER));
        assert!(text.contains("[users.alice]\nroot = \"/srv/ferry/alice\"\nrights = [\"list\", \"read\", \"create\", \"replace\"]\n"), "{text}");
        assert!(text.contains("quota-bytes = 10737418240"), "{text}");
        assert!(text.contains("[users.\"bob.b-2_\"]"), "{text}");
        assert!(
            text.contains(
                "[anonymous]\nroot = \"/srv/ferry/public\"\nrights = [\"list\", \"read\"]"
            ),
            "{text}"
        );
        assert_eq!(parse(&text).expect("saved text"), f);
        assert_eq!(
            parse(&UsersFile::default().to_toml().expect("toml")).expect("empty"),
            UsersFile::default()
        );
    }

    #[test]
    fn errors_name_the_file_line_user_and_field() {
        let cases: &[(&str, &[&str])] = &[
            (
                "[users.alice]\nroot = \"srv/alice\"\nrights = []\n",
                &[
                    "users.toml:2:",
                    "user \"alice\"",
                    "field \"root\"",
                    "absolute",
                ],
            ),
            (
                "[users.alice]\nroot = \"/srv\"\nrights = [\"list\", \"write\"]\n",
                &[
                    "users.toml:3:",
                    "user \"alice\"",
                    "field \"rights\"",
                    "unknown right \"write\"",
                ],
            ),
            (
                "[users.alice]\nroot = \"/srv\"\nrights = []\nquota = 5\n",
                &[
                    "users.toml:4:",
                    "user \"alice\"",
                    "field \"quota\"",
                    "unknown field",
                    "quota-bytes",
                ],
            ),
            (
                "[users.alice]\nrights = []\n",
                &[
                    "users.toml:1:",
                    "user \"alice\"",
                    "field \"root\" is missing",
                ],
            ),
            (
                "[users.alice]\nroot = \"/srv\"\n",
                &["user \"alice\"", "field \"rights\" is missing"],
            ),
            (
                "[users.anonymous]\nroot = \"/srv\"\nrights = []\n",
                &["users.toml:1:", "\"anonymous\" is reserved"],
            ),
            (
                "[users.\"a b\"]\nroot = \"/srv\"\nrights = []\n",
                &["users.toml:1:", "user \"a b\"", "' ' is not allowed"],
            ),
            (
                "\n[users.al]\nroot = \"/srv\"\nrights = []\nkeys = [\"ssh-rsa AAAA x\"]\n",
                &[
                    "users.toml:5:",
                    "user \"al\"",
                    "field \"keys\"",
                    "key 1",
                    "\"ssh-rsa\" keys are not supported",
                ],
            ),
            (
                "[users.al]\nroot = \"/srv\"\nrights = []\npassword = \"hunter2\"\n",
                &["users.toml:4:", "field \"password\"", "SCRAM-SHA-256$"],
            ),
            (
                "[users.al]\nroot = \"/srv\"\nrights = []\nquota-bytes = -1\n",
                &["users.toml:4:", "field \"quota-bytes\"", "0 or more"],
            ),
            (
                "[users.al]\nroot = \"/srv\"\nrights = []\nquota-files = \"10\"\n",
                &["field \"quota-files\"", "whole number"],
            ),
            (
                "[users.al]\nroot = \"/srv\"\nrights = []\nmax-sessions = 0\n",
                &["field \"max-sessions\"", "at least 1"],
            ),
            (
                "[anonymous]\nrights = [\"list\"]\n",
                &["users.toml:1:", "anonymous", "\"root\" is missing"],
            ),
            (
                "[anonymous]\nroot = \"/p\"\nkeys = []\n",
                &[
                    "users.toml:3:",
                    "anonymous",
                    "field \"keys\"",
                    "unknown field",
                ],
            ),
            (
                "[user.alice]\nroot = \"/srv\"\n",
                &["users.toml:1:", "user"],
            ),
            ("[users.alice\n", &["users.toml:1:"]),
            ("users = 3\n", &["users.toml:1:"]),
        ];
        for (text, wants) in cases {
            let e = error(text);
            for want in *wants {
                assert!(e.contains(want), "{text:?}: {e:?} lacks {want:?}");
            }
        }
        let twice = format!(
            "[users.al]\nroot = \"/srv\"\nrights = []\nkeys = [{k:?}, {k:?}]\n",
            k = ALICE_KEY.trim()
        );
        assert!(
            error(&twice).contains("key 2: listed twice"),
            "{}",
            error(&twice)
        );
    }

    #[test]
    fn save_is_atomic_0600_and_load_warns_about_writable_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("users.toml");
        let f = parse(&example()).expect("valid");
        f.save(&path).expect("save");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (back, warnings) = UsersFile::load(&path).expect("load");
        assert_eq!(back, f);
        assert!(warnings.is_empty(), "{warnings:?}");
        // Replacing: still 0600, nothing left beside it.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o664)).expect("chmod");
        let (_, warnings) = UsersFile::load(&path).expect("load");
        assert_eq!(
            warnings,
            [Warning::Writable {
                path: path.clone(),
                mode: 0o664
            }]
        );
        assert!(
            warnings[0].to_string().contains("chmod 600"),
            "{}",
            warnings[0]
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(
            UsersFile::load(&path).expect("load").1.is_empty(),
            "readable is fine"
        );
        let mut smaller = back.clone();
        smaller.users.remove("alice");
        smaller.save(&path).expect("save again");
        assert_eq!(UsersFile::load(&path).expect("load").0, smaller);
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["users.toml"], "no temporary file left");
        // A folder that does not exist: an error naming the temporary file, nothing written.
        let e = f
            .save(&dir.path().join("no/users.toml"))
            .expect_err("no folder");
        assert!(e.to_string().contains("no/.users.toml."), "{e}");
        let e = UsersFile::load(&dir.path().join("missing.toml")).expect_err("missing");
        assert!(
            matches!(&e, LoadError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
        );
        assert!(e.to_string().contains("missing.toml"), "{e}");
    }

    #[test]
    fn roots_must_be_absolute_utf8() {
        assert!(check_root(Path::new("/srv/x")).is_ok());
        assert!(check_root(Path::new("srv/x")).is_err());
        assert!(check_root(Path::new("")).is_err());
        assert!(User::new("rel".into(), Rights::NONE).is_err());
        use std::os::unix::ffi::OsStrExt as _;
        let bad = Path::new(std::ffi::OsStr::from_bytes(b"/srv/\xff"));
        assert!(check_root(bad).expect_err("not utf-8").contains("UTF-8"));
        // Set directly, such a root is refused by `save`, which then writes nothing.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("users.toml");
        fs::write(&path, "# mine\n").expect("write");
        let mut f = UsersFile::default();
        let mut user = User::new("/ok".into(), Rights::NONE).expect("user");
        user.root = bad.to_owned();
        f.users.insert("al".parse().expect("name"), user);
        let e = f.save(&path).expect_err("not utf-8");
        assert!(e.to_string().contains("UTF-8"), "{e}");
        assert_eq!(fs::read_to_string(&path).expect("kept"), "# mine\n");
    }

    #[test]
    fn the_lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("users.toml");
        let held = UsersFile::lock(&path).expect("lock");
        let lock_path = Lock::path_of(&path);
        assert_eq!(lock_path, dir.path().join(".users.toml.lock"));
        assert_eq!(
            fs::metadata(&lock_path)
                .expect("lock file")
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        let nb = rustix::fs::FlockOperation::NonBlockingLockExclusive;
        let e = Lock::acquire(&path, nb).expect_err("held");
        assert_eq!(e.source.kind(), io::ErrorKind::WouldBlock, "{e}");
        drop(held);
        let again = Lock::acquire(&path, nb).expect("free after drop");
        drop(again);
        let e = UsersFile::lock(&dir.path().join("no/users.toml")).expect_err("no folder");
        assert!(e.to_string().contains("no/.users.toml.lock"), "{e}");
    }

    proptest::proptest! {
        /// What `save` writes loads back equal.
        #[test]
        fn saved_files_load_back_equal(
            users in proptest::collection::btree_map(
                "[A-Za-z0-9._-]{1,64}",
                ("/[a-z0-9/ ._-]{0,20}", 0u8..64, proptest::option::of(0u64..u64::MAX / 2),
                 proptest::option::of(1u32..1000), proptest::bool::ANY),
                0..5,
            ),
            anonymous in proptest::option::of(("/[a-z]{0,8}", 0u8..64)),
        ) {
            let key = PublicKey::parse_line(ALICE_KEY).expect("key");
            let mut f = UsersFile::default();
            for (name, (root, bits, quota, sessions, with_key)) in users {
                let Ok(name) = name.parse::<UserName>() else { continue };
                let rights = crate::rights::Right::ALL
                    .into_iter()
                    .filter(|r| bits & (1 << *r as u8) != 0)
                    .collect();
                let mut u = User::new(root.into(), rights).expect("user");
                u.quota_bytes = quota;
                u.quota_files = quota.map(|q| q / 3);
                u.max_sessions = sessions;
                if with_key {
                    u.keys.push(key.clone());
                    u.password = Some("SCRAM-SHA-256$4096:AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".parse().expect("a verifier"));
                }
                f.users.insert(name, u);
            }
            f.anonymous = anonymous.map(|(root, bits)| Anonymous {
                root: root.into(),
                rights: crate::rights::Right::ALL
                    .into_iter()
                    .filter(|r| bits & (1 << *r as u8) != 0)
                    .collect(),
                quota_bytes: (bits & 1 != 0).then_some(u64::from(bits) << 20),
                quota_files: (bits & 2 != 0).then_some(u64::from(bits)),
            });
            let text = f.to_toml().expect("toml");
            proptest::prop_assert_eq!(parse(&text).expect("loads"), f);
        }
    }
}
