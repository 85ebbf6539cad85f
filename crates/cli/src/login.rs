//! Logging in (spec section 16): a `USER@` address makes the client commands log in as USER,
//! with a key (`--key`, else ferry's own key, else `~/.ssh/id_ed25519`; an encrypted one's
//! passphrase asked on the terminal) or a password (`--password`, `FERRY_PASSWORD`, or asked
//! on the terminal when no key is found).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use ferry_auth::keys::KeyError;
use ferry_auth::login::{KeyProver, PasswordProver};
use ferry_sync::client::Login;
use zeroize::Zeroizing;

use crate::addr::ServerAddr;
use crate::password;

/// The environment variable a password is taken from.
pub(crate) const PASSWORD_ENV: &str = "FERRY_PASSWORD";

/// How a client logs in, for `USER@` addresses.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// For USER@ addresses: log in with this Ed25519 private key (OpenSSH format; an
    /// encrypted one's passphrase is asked on the terminal) [default: ferry's own key, $XDG_CONFIG_HOME/ferry/id_ed25519 or
    /// ~/.config/ferry/id_ed25519, made by `ferry keygen`; else ~/.ssh/id_ed25519; else a
    /// password].
    #[arg(long, value_name = "FILE", env = "FERRY_KEY")]
    pub key: Option<PathBuf>,
    /// For USER@ addresses: log in with a password even if a key is found: from
    /// FERRY_PASSWORD, else asked on the terminal.
    #[arg(long, conflicts_with = "key")]
    pub password: bool,
    /// Allow logging in on a plain connection (ferry://USER@HOST), where the exchange can be
    /// seen and a key's proof replayed: for tests on loopback only.
    #[arg(long)]
    pub auth_without_tls: bool,
}

/// ferry's own key: `$XDG_CONFIG_HOME/ferry/id_ed25519`, else
/// `$HOME/.config/ferry/id_ed25519` (what `ferry keygen` writes by default).
pub(crate) fn own_key_path() -> Option<PathBuf> {
    ferry_tls::known_hosts::config_dir().map(|dir| dir.join("id_ed25519"))
}

/// The user's OpenSSH key: `$HOME/.ssh/id_ed25519`.
fn ssh_key_path() -> Option<PathBuf> {
    let home = PathBuf::from(std::env::var_os("HOME")?);
    home.is_absolute()
        .then(|| home.join(".ssh").join("id_ed25519"))
}

/// The login for `addr` (`None` without a user). An error is for the user, before anything
/// was sent: a key that cannot be read, no password to be had, a plain connection.
pub(crate) fn login(args: &AuthArgs, addr: &ServerAddr) -> Result<Option<Login>, String> {
    let Some(user) = &addr.user else {
        return Ok(None);
    };
    if !addr.tls && !args.auth_without_tls {
        return Err(format!(
            "not logging in as {user} on a plain connection, where the exchange can be seen \
             and a key's proof replayed: use ferrys://{user}@{}:{} (--auth-without-tls allows \
             it, for tests on loopback)",
            addr.host, addr.port
        ));
    }
    let prover: Arc<dyn ferry_sync::client::login::Prover> = if let Some(path) = &args.key {
        Arc::new(KeyProver::read_file(path, &mut ask(path)).map_err(|e| e.to_string())?)
    } else if args.password || std::env::var_os(PASSWORD_ENV).is_some() {
        Arc::new(password_prover(addr)?)
    } else if let Some(key) = default_key()? {
        Arc::new(key)
    } else {
        Arc::new(password_prover(addr)?)
    };
    Ok(Some(
        Login::new(user.clone(), prover).allow_plain(args.auth_without_tls),
    ))
}

/// The first default key that exists: ferry's own, then OpenSSH's. An encrypted one is
/// decrypted with a passphrase asked on the terminal, or passed over with a note when there
/// is none; one that cannot be used otherwise (a wrong passphrase, permissions too open, not
/// Ed25519, unreadable) is an error, as with ssh.
fn default_key() -> Result<Option<KeyProver>, String> {
    for path in [own_key_path(), ssh_key_path()].into_iter().flatten() {
        if !path.exists() {
            continue;
        }
        match KeyProver::read_file(&path, &mut ask(&path)) {
            Ok(k) => return Ok(Some(k)),
            Err(e) if matches!(e.cause(), KeyError::Encrypted) => {
                eprintln!(
                    "ferry: {} is encrypted and there is no terminal to ask its passphrase on; \
                     not using it",
                    path.display()
                );
            }
            Err(e) => return Err(with_hint(e, &path)),
        }
    }
    Ok(None)
}

/// Asks the passphrase of the encrypted key `path` on the terminal, if there is one.
fn ask(path: &Path) -> impl FnMut() -> Option<Zeroizing<String>> + '_ {
    move || {
        if !password::can_prompt() {
            return None;
        }
        password::prompt(&format!("passphrase for {}: ", path.display())).ok()
    }
}

fn with_hint(e: KeyError, path: &Path) -> String {
    format!(
        "{e} (the default key; --key FILE chooses another, --password logs in with a \
         password; {} was tried)",
        path.display()
    )
}

/// A password from `FERRY_PASSWORD`, else asked on the terminal.
fn password_prover(addr: &ServerAddr) -> Result<PasswordProver, String> {
    if let Some(p) = std::env::var_os(PASSWORD_ENV) {
        let p = p
            .into_string()
            .map_err(|_| format!("{PASSWORD_ENV} is not valid UTF-8"))?;
        return Ok(PasswordProver::new(Zeroizing::new(p)));
    }
    if !password::can_prompt() {
        return Err(format!(
            "no key found and no password: set {PASSWORD_ENV}, give --key FILE, or run in a \
             terminal to be asked"
        ));
    }
    let user = addr.user.as_ref().map(|u| u.as_str()).unwrap_or_default();
    let p = password::prompt(&format!("password for {user} at {}: ", addr.host))
        .map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(PasswordProver::new(p))
}
