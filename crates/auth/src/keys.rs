//! Ed25519 keys in OpenSSH's formats (spec section 16; `ferry keygen`, the users file's
//! `keys`, the client's `--key`): a public key line `ssh-ed25519 AAAA… COMMENT`, and a private
//! key file `-----BEGIN OPENSSH PRIVATE KEY-----` (written unencrypted; read encrypted too,
//! with a passphrase), so that an existing `~/.ssh/id_ed25519` works as a ferry key. `ssh-key`
//! reads, writes and decrypts the formats; the crypto of the keys (generation, the public key
//! of a seed) is ring's.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ssh_key::private::{Ed25519Keypair, Ed25519PrivateKey, KeypairData};
use ssh_key::public::{Ed25519PublicKey, KeyData};
use ssh_key::{HashAlg, LineEnding};
use zeroize::Zeroizing;

/// The only algorithm ferry's keys use, as OpenSSH names it.
pub const ALGORITHM: &str = "ssh-ed25519";

/// What is said of an encrypted private key when no passphrase can be had.
pub const ENCRYPTED_KEY: &str = "the key is encrypted and its passphrase cannot be asked here \
     (no terminal): run in a terminal, or decrypt a copy with ssh-keygen -p";

/// Where the passphrase of an encrypted private key comes from: asked only for an encrypted
/// key; `None` when none can be had (then [`KeyError::Encrypted`]).
pub type Passphrase<'a> = &'a mut dyn FnMut() -> Option<Zeroizing<String>>;

/// Why a key could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A public key line of another algorithm.
    #[error(
        "{algorithm:?} keys are not supported: ferry uses Ed25519 keys (ssh-ed25519; make one with `ferry keygen` or `ssh-keygen -t ed25519`)"
    )]
    NotEd25519 {
        /// The algorithm the key names.
        algorithm: String,
    },
    /// Not a public key line of OpenSSH's form.
    #[error("not an OpenSSH public key line (`ssh-ed25519 AAAA… COMMENT`): {0}")]
    BadPublicKey(String),
    /// Not a private key file of OpenSSH's form.
    #[error("not an OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`): {0}")]
    BadPrivateKey(String),
    /// An encrypted private key, and no passphrase to decrypt it.
    #[error("{}", ENCRYPTED_KEY)]
    Encrypted,
    /// An encrypted private key the passphrase given does not decrypt.
    #[error("wrong passphrase for the encrypted key")]
    WrongPassphrase,
    /// A private key file that group or others may read or write (refused, as ssh does).
    #[error(
        "{}: permissions {mode:04o} are too open: a private key must be readable by its owner only (chmod 600 {})",
        path.display(), path.display()
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file to write exists.
    #[error("{}: exists; not overwritten (remove it first or choose another name)", .0.display())]
    Exists(PathBuf),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// In a file: what is wrong with its content.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: Box<KeyError>,
    },
}

impl KeyError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> KeyError + '_ {
        move |source| KeyError::Io {
            path: path.to_owned(),
            source,
        }
    }

    fn in_file(self, path: &Path) -> KeyError {
        KeyError::InFile {
            path: path.to_owned(),
            source: Box::new(self),
        }
    }

    /// The problem itself, without the file it was found in.
    pub fn cause(&self) -> &KeyError {
        match self {
            KeyError::InFile { source, .. } => source.cause(),
            e => e,
        }
    }
}

/// An Ed25519 public key with its comment, as one line of OpenSSH's `.pub` and
/// `authorized_keys` form: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI… alice@laptop`.
///
/// Two keys are equal when their key octets are (the comment is a label).
#[derive(Debug, Clone, Eq)]
pub struct PublicKey {
    key: [u8; 32],
    comment: String,
}

impl PublicKey {
    /// The key of these 32 raw octets, with a comment.
    pub fn from_raw(key: [u8; 32], comment: impl Into<String>) -> Self {
        PublicKey {
            key,
            comment: comment.into(),
        }
    }

    /// Parses one line (`ssh-ed25519 BASE64 [COMMENT]`); other algorithms are an error
    /// naming theirs.
    pub fn parse_line(line: &str) -> Result<Self, KeyError> {
        let line = line.trim();
        let algorithm = line.split_ascii_whitespace().next().unwrap_or_default();
        if line.starts_with("-----BEGIN") {
            return Err(KeyError::BadPublicKey(
                "this is a private key; give its public key (the .pub file, or the output of `ssh-keygen -y -f FILE`)".into(),
            ));
        }
        if algorithm != ALGORITHM {
            return if algorithm.starts_with("ssh-")
                || algorithm.starts_with("ecdsa-")
                || algorithm.starts_with("sk-")
                || algorithm.contains("@openssh.com")
            {
                Err(KeyError::NotEd25519 {
                    algorithm: algorithm.to_owned(),
                })
            } else {
                Err(KeyError::BadPublicKey(format!(
                    "it begins with {algorithm:?}, not ssh-ed25519"
                )))
            };
        }
        let parsed = ssh_key::PublicKey::from_openssh(line)
            .map_err(|e| KeyError::BadPublicKey(e.to_string()))?;
        match parsed.key_data() {
            KeyData::Ed25519(k) => Ok(PublicKey::from_raw(k.0, parsed.comment())),
            other => Err(KeyError::NotEd25519 {
                algorithm: other.algorithm().to_string(),
            }),
        }
    }

    /// Reads a `.pub` file: its first line that is not empty or a `#` comment.
    pub fn read_file(path: &Path) -> Result<Self, KeyError> {
        let text = fs::read_to_string(path).map_err(KeyError::io(path))?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or_default();
        if line.is_empty() {
            return Err(KeyError::BadPublicKey("the file is empty".into()).in_file(path));
        }
        PublicKey::parse_line(line).map_err(|e| e.in_file(path))
    }

    /// The 32 raw octets.
    pub fn raw(&self) -> &[u8; 32] {
        &self.key
    }

    /// The comment (may be empty).
    pub fn comment(&self) -> &str {
        &self.comment
    }

    fn ssh(&self) -> ssh_key::PublicKey {
        ssh_key::PublicKey::new(
            KeyData::Ed25519(Ed25519PublicKey(self.key)),
            self.comment.clone(),
        )
    }

    /// The key's fingerprint as OpenSSH shows it: `SHA256:` and the unpadded base64 of the
    /// SHA-256 of the key's wire form.
    pub fn fingerprint(&self) -> String {
        self.ssh().fingerprint(HashAlg::Sha256).to_string()
    }

    /// The line, `ssh-ed25519 AAAA… COMMENT` (no comment: no trailing space).
    pub fn to_line(&self) -> String {
        // 51 octets of key data and a comment: encoding cannot fail.
        let line = self.ssh().to_openssh().unwrap_or_default();
        line.trim_end().to_owned()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_line())
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PublicKey::parse_line(s)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_line())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let line = String::deserialize(deserializer)?;
        PublicKey::parse_line(&line).map_err(serde::de::Error::custom)
    }
}

/// An Ed25519 private key: its 32-octet seed (wiped when dropped) and its public key.
pub struct PrivateKey {
    seed: Zeroizing<[u8; 32]>,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// A new key from the system's secure random source.
    pub fn generate(comment: impl Into<String>) -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(&mut seed[..])
            .map_err(|_| KeyError::Io {
                path: PathBuf::from("(system random source)"),
                source: io::Error::other("no random octets"),
            })?;
        Ok(Self::from_seed(seed, comment))
    }

    /// The key of a given seed (tests, known answers).
    pub fn from_seed(seed: Zeroizing<[u8; 32]>, comment: impl Into<String>) -> Self {
        let public = Self::public_of(&seed);
        PrivateKey {
            seed,
            public: PublicKey::from_raw(public, comment),
        }
    }

    fn public_of(seed: &[u8; 32]) -> [u8; 32] {
        // An Ed25519 seed of 32 octets is always a valid key; ring refuses only other lengths.
        let pair = Ed25519KeyPair::from_seed_unchecked(seed);
        let mut public = [0u8; 32];
        if let Ok(pair) = pair {
            public.copy_from_slice(pair.public_key().as_ref());
        }
        public
    }

    /// The public key (with the key's comment).
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// ring's key pair, to sign with.
    pub fn key_pair(&self) -> Ed25519KeyPair {
        // The public key was derived from (or checked against) this very seed.
        match Ed25519KeyPair::from_seed_and_public_key(&self.seed[..], &self.public.key) {
            Ok(pair) => pair,
            Err(_) => unreachable!("the public key is the seed's"),
        }
    }

    /// Parses OpenSSH's private key format: Ed25519 only, unencrypted only.
    pub fn from_openssh(text: &str) -> Result<Self, KeyError> {
        Self::from_openssh_with(text, &mut || None)
    }

    /// Parses OpenSSH's private key format, Ed25519 only; an encrypted key (as `ssh-keygen`
    /// writes it by default: bcrypt-pbkdf and AES-256-CTR) is decrypted with the passphrase
    /// `passphrase` gives, asked only then.
    pub fn from_openssh_with(text: &str, passphrase: Passphrase<'_>) -> Result<Self, KeyError> {
        let key =
            ssh_key::PrivateKey::from_openssh(text.trim()).map_err(
                |e| match private_key_algorithm(text) {
                    Some(algorithm) if algorithm != ALGORITHM => KeyError::NotEd25519 { algorithm },
                    _ => KeyError::BadPrivateKey(e.to_string()),
                },
            )?;
        let key = if key.is_encrypted() {
            let words = passphrase().ok_or(KeyError::Encrypted)?;
            key.decrypt(words.as_bytes())
                .map_err(|_| KeyError::WrongPassphrase)?
        } else {
            key
        };
        let KeypairData::Ed25519(pair) = key.key_data() else {
            return Err(KeyError::NotEd25519 {
                algorithm: key.algorithm().to_string(),
            });
        };
        let seed = Zeroizing::new(pair.private.to_bytes());
        let derived = Self::public_of(&seed);
        if derived != pair.public.0 {
            return Err(KeyError::BadPrivateKey(
                "its public key does not belong to its private key".into(),
            ));
        }
        Ok(PrivateKey {
            seed,
            public: PublicKey::from_raw(derived, key.comment()),
        })
    }

    /// Reads a private key file; refuses, as ssh does, a file that group or others may read
    /// or write.
    pub fn read_file(path: &Path) -> Result<Self, KeyError> {
        Self::read_file_with(path, &mut || None)
    }

    /// [`PrivateKey::read_file`], decrypting an encrypted key with the passphrase
    /// `passphrase` gives ([`PrivateKey::from_openssh_with`]).
    pub fn read_file_with(path: &Path, passphrase: Passphrase<'_>) -> Result<Self, KeyError> {
        let mut file = File::open(path).map_err(KeyError::io(path))?;
        let mode = file.metadata().map_err(KeyError::io(path))?.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::TooOpen {
                path: path.to_owned(),
                mode,
            });
        }
        let mut text = Zeroizing::new(String::new());
        file.read_to_string(&mut text).map_err(KeyError::io(path))?;
        PrivateKey::from_openssh_with(&text, passphrase).map_err(|e| e.in_file(path))
    }

    /// OpenSSH's private key format, unencrypted (LF line ends).
    pub fn to_openssh(&self) -> Result<Zeroizing<String>, KeyError> {
        let pair = Ed25519Keypair {
            public: Ed25519PublicKey(self.public.key),
            private: Ed25519PrivateKey::from_bytes(&self.seed),
        };
        ssh_key::PrivateKey::new(KeypairData::Ed25519(pair), self.public.comment.clone())
            .and_then(|k| k.to_openssh(LineEnding::LF))
            .map_err(|e| KeyError::BadPrivateKey(e.to_string()))
    }

    /// Writes FILE (the private key, mode 0600) and FILE.pub (the public key line, mode
    /// 0644 less the umask); refuses to overwrite either. Each is flushed to disk.
    pub fn write_pair(&self, file: &Path) -> Result<PathBuf, KeyError> {
        let mut public_path = file.as_os_str().to_owned();
        public_path.push(".pub");
        let public_path = PathBuf::from(public_path);
        let create = |path: &Path, mode: u32| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(path)
                .map_err(|e| {
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        KeyError::Exists(path.to_owned())
                    } else {
                        KeyError::io(path)(e)
                    }
                })
        };
        let private_text = self.to_openssh()?;
        let mut private = create(file, 0o600)?;
        let mut public = match create(&public_path, 0o644) {
            Ok(f) => f,
            Err(e) => {
                // Only the empty file this call created goes.
                drop(private);
                let _ = fs::remove_file(file);
                return Err(e);
            }
        };
        let written = (|| {
            private
                .write_all(private_text.as_bytes())
                .and_then(|()| private.sync_all())
                .map_err(KeyError::io(file))?;
            public
                .write_all(format!("{}\n", self.public.to_line()).as_bytes())
                .and_then(|()| public.sync_all())
                .map_err(KeyError::io(&public_path))
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(file);
            let _ = fs::remove_file(&public_path);
            return Err(e);
        }
        Ok(public_path)
    }
}

/// The algorithm named by the first public key of an OpenSSH private key file, read by hand:
/// ssh-key, built without the other algorithms, cannot parse their keys to say which they
/// are.
fn private_key_algorithm(text: &str) -> Option<String> {
    use base64::Engine as _;
    let body: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let blob = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    /// A length-prefixed string, and what follows it.
    fn string(b: &[u8]) -> Option<(&[u8], &[u8])> {
        let len = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
        Some((b.get(4..4 + len)?, b.get(4 + len..)?))
    }
    let rest = blob.strip_prefix(b"openssh-key-v1\0".as_slice())?;
    let (_cipher, rest) = string(rest)?;
    let (_kdf, rest) = string(rest)?;
    let (_kdf_options, rest) = string(rest)?;
    let rest = rest.get(4..)?; // the number of keys
    let (public, _) = string(rest)?;
    let (name, _) = string(public)?;
    String::from_utf8(name.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    // Made once with OpenSSH 9.2's `ssh-keygen -t ed25519 [-N 'secret words']` (testdata/).
    const SSH_PRIVATE: &str = include_str!("../testdata/openssh_ed25519");
    const SSH_PUBLIC: &str = include_str!("../testdata/openssh_ed25519.pub");
    const SSH_ENCRYPTED: &str = include_str!("../testdata/openssh_ed25519_encrypted");
    const SSH_ECDSA_PRIVATE: &str = include_str!("../testdata/ecdsa_private");
    const SSH_RSA_PUBLIC: &str = include_str!("../testdata/rsa.pub");

    #[test]
    fn keys_made_by_ssh_keygen_are_read() {
        let private = PrivateKey::from_openssh(SSH_PRIVATE).expect("private");
        let public = PublicKey::parse_line(SSH_PUBLIC).expect("public");
        assert_eq!(private.public(), &public);
        assert_eq!(public.comment(), "made-by@ssh-keygen");
        assert_eq!(public.to_line(), SSH_PUBLIC.trim());
        assert_eq!(private.public().comment(), "made-by@ssh-keygen");
    }

    #[test]
    fn other_algorithms_and_garbage_are_clear_errors() {
        let e = PublicKey::parse_line(SSH_RSA_PUBLIC).expect_err("rsa");
        assert!(matches!(&e, KeyError::NotEd25519 { algorithm } if algorithm == "ssh-rsa"));
        assert!(
            e.to_string().contains("\"ssh-rsa\" keys are not supported"),
            "{e}"
        );
        let e = PrivateKey::from_openssh(SSH_ECDSA_PRIVATE).expect_err("ecdsa");
        assert!(
            matches!(&e, KeyError::NotEd25519 { algorithm } if algorithm == "ecdsa-sha2-nistp256"),
            "{e}"
        );
        assert_eq!(
            private_key_algorithm(SSH_PRIVATE).as_deref(),
            Some("ssh-ed25519")
        );
        for bad in [
            "",
            "hello",
            "ssh-ed25519",
            "ssh-ed25519 AAAA",
            "ssh-ed25519 !!!notbase64",
        ] {
            let e = PublicKey::parse_line(bad).expect_err(bad);
            assert!(matches!(e, KeyError::BadPublicKey(_)), "{bad:?}: {e}");
        }
        // The key data of an RSA key behind an ed25519 label.
        let rsa_data = SSH_RSA_PUBLIC.split(' ').nth(1).expect("data");
        let e = PublicKey::parse_line(&format!("ssh-ed25519 {rsa_data}")).expect_err("mixed");
        assert!(
            matches!(e, KeyError::BadPublicKey(_) | KeyError::NotEd25519 { .. }),
            "{e}"
        );
        let e = PublicKey::parse_line(SSH_PRIVATE).expect_err("private");
        assert!(e.to_string().contains("private key"), "{e}");
        assert!(PrivateKey::from_openssh("not a key").is_err());
    }

    #[test]
    fn encrypted_private_keys_are_decrypted_with_their_passphrase() {
        let e = PrivateKey::from_openssh(SSH_ENCRYPTED).expect_err("encrypted");
        assert!(matches!(e, KeyError::Encrypted));
        assert_eq!(e.to_string(), ENCRYPTED_KEY);
        let mut asked = 0;
        let mut wrong = || {
            asked += 1;
            Some(Zeroizing::new("wrong words".to_owned()))
        };
        let e = PrivateKey::from_openssh_with(SSH_ENCRYPTED, &mut wrong).expect_err("wrong");
        assert!(matches!(e, KeyError::WrongPassphrase), "{e}");
        assert_eq!(asked, 1);
        let mut right = || Some(Zeroizing::new("secret words".to_owned()));
        let key = PrivateKey::from_openssh_with(SSH_ENCRYPTED, &mut right).expect("decrypted");
        let public =
            PublicKey::parse_line(include_str!("../testdata/openssh_ed25519_encrypted.pub"))
                .expect("public");
        assert_eq!(key.public().raw(), public.raw());
        // An unencrypted key never asks.
        let mut never = || -> Option<Zeroizing<String>> { panic!("asked for a passphrase") };
        PrivateKey::from_openssh_with(SSH_PRIVATE, &mut never).expect("plain key");
    }

    #[test]
    fn generated_pairs_are_written_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("id_ferry");
        let key = PrivateKey::generate("alice@laptop").expect("generate");
        let pub_path = key.write_pair(&file).expect("write");
        assert_eq!(pub_path, dir.path().join("id_ferry.pub"));
        let mode = fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = PrivateKey::read_file(&file).expect("read back");
        assert_eq!(back.public(), key.public());
        assert_eq!(back.public().comment(), "alice@laptop");
        assert_eq!(*back.seed, *key.seed);
        let public = PublicKey::read_file(&pub_path).expect("pub");
        assert_eq!(&public, key.public());
        assert!(
            fs::read_to_string(&pub_path)
                .expect("pub")
                .starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI")
        );
        let text = fs::read_to_string(&file).expect("private");
        assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));

        // Never overwritten: neither FILE nor FILE.pub.
        let other = PrivateKey::generate("").expect("generate");
        let e = other.write_pair(&file).expect_err("exists");
        assert!(matches!(&e, KeyError::Exists(p) if p == &file), "{e}");
        assert_eq!(fs::read_to_string(&file).expect("kept"), text);
        let lone = dir.path().join("lone");
        fs::write(dir.path().join("lone.pub"), "mine\n").expect("pub");
        let e = other.write_pair(&lone).expect_err("pub exists");
        assert!(matches!(e, KeyError::Exists(_)), "{e}");
        assert!(!lone.exists(), "the private half is not left behind");
        assert_eq!(
            fs::read_to_string(dir.path().join("lone.pub")).expect("kept"),
            "mine\n"
        );
    }

    #[test]
    fn private_keys_others_may_read_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("id");
        fs::write(&file, SSH_PRIVATE).expect("write");
        for mode in [0o644, 0o640, 0o604, 0o620] {
            fs::set_permissions(&file, fs::Permissions::from_mode(mode)).expect("chmod");
            let e = PrivateKey::read_file(&file).expect_err("too open");
            assert!(
                matches!(e, KeyError::TooOpen { mode: m, .. } if m == mode),
                "{e}"
            );
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
        fs::set_permissions(&file, fs::Permissions::from_mode(0o400)).expect("chmod");
        PrivateKey::read_file(&file).expect("0400 is fine");
        let e = PrivateKey::read_file(&dir.path().join("missing")).expect_err("missing");
        assert!(matches!(e, KeyError::Io { .. }), "{e}");
    }

    #[test]
    fn fingerprints_are_openssh_s() {
        // `ssh-keygen -l -f testdata/openssh_ed25519.pub`, recorded with the key.
        let public = PublicKey::parse_line(SSH_PUBLIC).expect("public");
        assert_eq!(
            public.fingerprint(),
            include_str!("../testdata/openssh_ed25519.fingerprint").trim()
        );
    }

    #[test]
    fn serde_is_the_line() {
        #[derive(Serialize, Deserialize)]
        struct D {
            k: PublicKey,
        }
        let d: D = toml::from_str(&format!("k = {:?}", SSH_PUBLIC.trim())).expect("toml");
        assert_eq!(d.k.comment(), "made-by@ssh-keygen");
        let back = toml::to_string(&d).expect("ser");
        assert!(back.contains(SSH_PUBLIC.trim()), "{back}");
        assert!(toml::from_str::<D>(&format!("k = {:?}", SSH_RSA_PUBLIC.trim())).is_err());
    }
}
