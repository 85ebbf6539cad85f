//! The prepared folders: random, incompressible content, made once per bench run and served
//! to every implementation in turn (one server at a time).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::stats::Rng;

/// Name of the large file (workload 1).
pub const LARGE_NAME: &str = "large.bin";
/// Name under which workload 1 uploads the large file.
pub const LARGE_UPLOAD: &str = "large-upload.bin";
/// Files in the mixed folder (workload 3), and their sizes, used in turn.
pub const MIXED_FILES: usize = 128;
/// Sizes of the mixed folder's files, in turn: a few small, some medium, a few large.
pub const MIXED_SIZES: [u64; 5] = [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20];
/// Files in the idle folder (workload 4).
pub const IDLE_FILES: usize = 64;

/// The folders of one bench run, all under one work folder.
#[derive(Debug, Clone)]
pub struct Folders {
    /// Served in workload 1: [`LARGE_NAME`].
    pub large: PathBuf,
    /// Served in workload 2: `s00000`, `s00001`, ….
    pub small: PathBuf,
    /// Served in workload 3: `m000` … with [`MIXED_SIZES`].
    pub mixed: PathBuf,
    /// Served in workload 4: `i00` … of the small size.
    pub idle: PathBuf,
    /// Workload 5: the users file ([`USERS_NAME`]), the key of its user who logs in with a
    /// key ([`KEY_NAME`]), and the users' (empty) folders.
    pub login: PathBuf,
    /// Where clients store what they download; emptied after every run.
    pub dest: PathBuf,
    /// Served, empty, to the whole `ferry put` commands of `--clients own` (which upload
    /// files under their own names); emptied after every run.
    pub up: PathBuf,
}

impl Folders {
    /// The layout under `work` (nothing is created).
    pub fn under(work: &Path) -> Self {
        Self {
            large: work.join("large"),
            small: work.join("small"),
            mixed: work.join("mixed"),
            idle: work.join("idle"),
            login: work.join("login"),
            dest: work.join("dest"),
            up: work.join("up"),
        }
    }
}

/// Name of small file `i` (workload 2).
pub fn small_name(i: usize) -> String {
    format!("s{i:05}")
}

/// Name under which workload 2 uploads small file `i`.
pub fn small_upload_name(i: usize) -> String {
    format!("u{i:05}")
}

/// Name of mixed file `i` (workload 3).
pub fn mixed_name(i: usize) -> String {
    format!("m{i:03}")
}

/// Name of idle-folder file `i` (workload 4).
pub fn idle_name(i: usize) -> String {
    format!("i{i:02}")
}

/// Writes `size` random octets (seeded by `seed`) to `path`.
pub fn write_random_file(path: &Path, size: u64, seed: u64) -> io::Result<()> {
    let mut rng = Rng::new(seed);
    let mut f = File::create(path)?;
    let mut buf = vec![0u8; (1 << 20).min(size.max(1)) as usize];
    let mut left = size;
    while left > 0 {
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        rng.fill(&mut buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// What to prepare.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Size of the large file (0: workload 1 not run).
    pub large: u64,
    /// Number of small files (0: workload 2 not run).
    pub small_count: usize,
    /// Size of each small file.
    pub small_size: u64,
    /// Whether workload 3's folder is needed.
    pub mixed: bool,
    /// Whether workload 4's folder is needed.
    pub idle: bool,
    /// Whether workload 5's users are needed.
    pub login: bool,
}

/// Workload 5's users file, in [`Folders::login`].
pub const USERS_NAME: &str = "users.toml";
/// The private key of workload 5's user who logs in with a key, in [`Folders::login`].
pub const KEY_NAME: &str = "key";
/// Workload 5's user who logs in with a key.
pub const KEY_USER: &str = "with-key";
/// Workload 5's user who logs in with a password.
pub const PASSWORD_USER: &str = "with-password";
/// That user's password (stored as a verifier with `ferry user`'s iteration count).
pub const PASSWORD: &str = "bench password";

/// Creates the folders and their files.
pub fn prepare(f: &Folders, sizes: Sizes) -> io::Result<()> {
    for d in [&f.large, &f.small, &f.mixed, &f.idle, &f.dest, &f.up] {
        fs::create_dir_all(d)?;
    }
    if sizes.large > 0 {
        write_random_file(&f.large.join(LARGE_NAME), sizes.large, 1)?;
    }
    for i in 0..sizes.small_count {
        write_random_file(
            &f.small.join(small_name(i)),
            sizes.small_size,
            1000 + i as u64,
        )?;
    }
    if sizes.mixed {
        for i in 0..MIXED_FILES {
            let size = MIXED_SIZES[i % MIXED_SIZES.len()];
            write_random_file(&f.mixed.join(mixed_name(i)), size, 100_000 + i as u64)?;
        }
    }
    if sizes.login {
        prepare_login(&f.login)?;
    }
    if sizes.idle {
        for i in 0..IDLE_FILES {
            write_random_file(
                &f.idle.join(idle_name(i)),
                sizes.small_size,
                200_000 + i as u64,
            )?;
        }
    }
    Ok(())
}

/// Removes everything in `dir` (not `dir` itself).
pub fn empty_folder(dir: &Path) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            fs::remove_dir_all(&p)?;
        } else {
            fs::remove_file(&p)?;
        }
    }
    Ok(())
}

/// Removes the files of `dir` whose names start with `prefix`.
pub fn remove_prefixed(dir: &Path, prefix: &str) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with(prefix) {
            fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

/// Workload 5's users: [`KEY_USER`] with a fresh key written to [`KEY_NAME`], and
/// [`PASSWORD_USER`] with [`PASSWORD`] as `ferry user passwd` stores it
/// (`ferry_auth::scram::DEFAULT_ITERATIONS`), each with a folder of their own.
fn prepare_login(dir: &Path) -> io::Result<()> {
    use ferry_auth::keys::PrivateKey;
    use ferry_auth::rights::Rights;
    use ferry_auth::scram::{DEFAULT_ITERATIONS, StoredPassword};
    use ferry_auth::users::{User, UserName, UsersFile};

    fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let key = PrivateKey::generate("ferry-bench").map_err(io::Error::other)?;
    key.write_pair(&dir.join(KEY_NAME))
        .map_err(io::Error::other)?;
    let rng = ring::rand::SystemRandom::new();
    let mut file = UsersFile::default();
    for name in [KEY_USER, PASSWORD_USER] {
        let mut user = User::new(dir.join(format!("home-{name}")), Rights::READ_ONLY)
            .map_err(io::Error::other)?;
        if name == KEY_USER {
            user.keys.push(key.public().clone());
        } else {
            let stored = StoredPassword::new(PASSWORD, DEFAULT_ITERATIONS, &rng)
                .map_err(|e| io::Error::other(e.to_string()))?;
            user.password = Some(stored);
        }
        let name = UserName::new(name).map_err(io::Error::other)?;
        file.users.insert(name, user);
    }
    file.save(&dir.join(USERS_NAME)).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_files_have_the_size_and_differ_by_seed() -> io::Result<()> {
        let t = tempfile::tempdir()?;
        let (a, b, c) = (t.path().join("a"), t.path().join("b"), t.path().join("c"));
        write_random_file(&a, (1 << 20) + 3, 1)?;
        write_random_file(&b, (1 << 20) + 3, 1)?;
        write_random_file(&c, (1 << 20) + 3, 2)?;
        assert_eq!(fs::metadata(&a)?.len(), (1 << 20) + 3);
        assert_eq!(fs::read(&a)?, fs::read(&b)?);
        assert_ne!(fs::read(&a)?, fs::read(&c)?);
        write_random_file(&a, 0, 1)?;
        assert_eq!(fs::metadata(&a)?.len(), 0);
        Ok(())
    }

    #[test]
    fn prepare_makes_every_folder() -> io::Result<()> {
        let t = tempfile::tempdir()?;
        let f = Folders::under(t.path());
        let sizes = Sizes {
            large: 5000,
            small_count: 3,
            small_size: 4096,
            mixed: true,
            idle: true,
            login: true,
        };
        prepare(&f, sizes)?;
        let (users, _) = ferry_auth::users::UsersFile::load(&f.login.join(USERS_NAME))
            .map_err(io::Error::other)?;
        assert_eq!(
            users.users.len(),
            2,
            "a user with a key and one with a password"
        );
        assert!(f.login.join(KEY_NAME).is_file());
        assert_eq!(fs::metadata(f.large.join(LARGE_NAME))?.len(), 5000);
        assert_eq!(fs::read_dir(&f.small)?.count(), 3);
        assert_eq!(fs::metadata(f.small.join(small_name(2)))?.len(), 4096);
        assert_eq!(fs::read_dir(&f.mixed)?.count(), MIXED_FILES);
        assert_eq!(fs::metadata(f.mixed.join(mixed_name(4)))?.len(), 1 << 20);
        assert_eq!(fs::read_dir(&f.idle)?.count(), IDLE_FILES);
        fs::write(f.small.join("u00001"), b"x")?;
        remove_prefixed(&f.small, "u")?;
        assert_eq!(fs::read_dir(&f.small)?.count(), 3);
        fs::create_dir(f.dest.join("sub"))?;
        fs::write(f.dest.join("x"), b"x")?;
        empty_folder(&f.dest)?;
        assert_eq!(fs::read_dir(&f.dest)?.count(), 0);
        Ok(())
    }
}
