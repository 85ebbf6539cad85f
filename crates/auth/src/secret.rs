//! The server secret of AUTH-14, kept in a file so that it outlives a restart.
//!
//! A SCRAM login as a user the server does not know gets a made-up salt derived with HMAC
//! from a server secret and the name ([`crate::directory`]), so that it looks like a real
//! user's and is the same at every attempt. A secret drawn anew at each start would change
//! that salt across restarts, while a real user's stays: an observer who asks before and
//! after a restart could tell unknown users from real ones. So `ferry serve --users FILE`
//! keeps the secret beside the users file, in `.FILE.secret` (the users file's own folder,
//! as its lock `.FILE.lock`; readable by the same account that reads the users file):
//! 32 random octets in base64 and a line feed, mode 0600, made once (written to a temporary
//! file, then linked into place, so that two servers starting at once end up with the same
//! secret, and a crash leaves no half-written one). A file that holds anything else is an
//! error, never replaced.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::SecureRandom;
use zeroize::Zeroizing;

/// The secret's length in octets.
pub const SECRET_LEN: usize = 32;

/// A secret and how it was had.
#[derive(Debug)]
pub struct Loaded {
    /// The secret.
    pub secret: Zeroizing<[u8; SECRET_LEN]>,
    /// It was made now (the file did not exist).
    pub made: bool,
    /// Something the operator should know (the file is readable by group or others).
    pub warning: Option<String>,
}

/// Where the secret of the users file `users` is kept: `.NAME.secret` beside it.
pub fn path_for(users: &Path) -> PathBuf {
    let name = users
        .file_name()
        .map_or_else(|| "users".into(), |n| n.to_string_lossy().into_owned());
    let dir = match users.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    dir.join(format!(".{name}.secret"))
}

/// Reads the secret at `path`, or makes it with `rng` when there is no file yet (see the
/// module documentation). Errors name the file.
pub fn load_or_create(path: &Path, rng: &dyn SecureRandom) -> io::Result<Loaded> {
    match read(path) {
        Ok(loaded) => return Ok(loaded),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
    rng.fill(secret.as_mut())
        .map_err(|_| io::Error::other("no randomness for the secret"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let context = |what: &str, p: &Path| {
        let (what, p) = (what.to_owned(), p.display().to_string());
        move |e: io::Error| io::Error::new(e.kind(), format!("{what} {p}: {e}"))
    };
    let name = path
        .file_name()
        .map_or_else(|| "secret".into(), |n| n.to_string_lossy().into_owned());
    let (tmp, mut out) = crate::users::temp_file(dir, &name)
        .map_err(|(tmp, e)| context("cannot create", &tmp)(e))?;
    let text = Zeroizing::new(format!("{}\n", B64.encode(secret.as_ref())));
    let written = out
        .write_all(text.as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(context("cannot write", &tmp));
    drop(out);
    // A link fails when the name exists: a server that started at the same moment won.
    let linked =
        written.and_then(|()| fs::hard_link(&tmp, path).map_err(context("cannot make", path)));
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            let _ = File::open(dir).and_then(|d| d.sync_all());
            Ok(Loaded {
                secret,
                made: true,
                warning: None,
            })
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(e),
    }
}

/// Reads the secret file at `path`.
fn read(path: &Path) -> io::Result<Loaded> {
    let text =
        Zeroizing::new(fs::read_to_string(path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
        })?);
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} does not hold a secret ({SECRET_LEN} octets in base64); remove it to make \
                 a new one",
                path.display()
            ),
        )
    };
    let raw = Zeroizing::new(B64.decode(text.trim_end()).map_err(|_| bad())?);
    let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
    if raw.len() != SECRET_LEN {
        return Err(bad());
    }
    secret.copy_from_slice(&raw);
    let mode = fs::metadata(path)?.permissions().mode();
    let warning = (mode & 0o077 != 0).then(|| {
        format!(
            "{} may be read by others (mode {:o}): chmod 600 it",
            path.display(),
            mode & 0o777
        )
    });
    Ok(Loaded {
        secret,
        made: false,
        warning,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    #[test]
    fn made_once_with_mode_0600_then_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = path_for(&dir.path().join("users.toml"));
        assert_eq!(path, dir.path().join(".users.toml.secret"));
        let first = load_or_create(&path, &SystemRandom::new()).expect("made");
        assert!(first.made && first.warning.is_none());
        assert_eq!(
            fs::metadata(&path).expect("file").permissions().mode() & 0o777,
            0o600
        );
        let again = load_or_create(&path, &SystemRandom::new()).expect("read");
        assert!(!again.made);
        assert_eq!(*again.secret, *first.secret);
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, [".users.toml.secret"], "no temporary file left");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let open = load_or_create(&path, &SystemRandom::new()).expect("read");
        assert!(open.warning.is_some_and(|w| w.contains("chmod 600")));
    }

    #[test]
    fn a_file_that_holds_no_secret_is_an_error_and_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".users.toml.secret");
        for text in ["not base64!\n", "c2hvcnQ=\n"] {
            fs::write(&path, text).expect("write");
            let err = load_or_create(&path, &SystemRandom::new()).expect_err("refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(err.to_string().contains("remove it"), "{err}");
            assert_eq!(fs::read_to_string(&path).expect("kept"), text);
        }
        // A folder where the file should be (or a folder that cannot be written).
        fs::remove_file(&path).expect("rm");
        fs::create_dir(&path).expect("mkdir");
        assert!(load_or_create(&path, &SystemRandom::new()).is_err());
    }
}
