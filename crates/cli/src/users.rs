//! `ferry keygen` and `ferry user add|list|remove`: Ed25519 keys in OpenSSH's formats and the
//! users file of `ferry serve --users` (spec section 16), through ferry-auth.
//!
//! Exit codes as elsewhere: 2 for anything wrong with the arguments or with the content of a
//! file they name (a bad name or right, a relative root, a user that exists or does not, a
//! key file that is not an Ed25519 public key, an invalid users file, a FILE keygen would
//! overwrite), 6 when a file cannot be read or written.

use std::io;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use ferry_auth::keys::{KeyError, PrivateKey, PublicKey};
use ferry_auth::rights::Rights;
use ferry_auth::scram::{self, StoredPassword};
use ferry_auth::users::{LoadError, User, UserName, UsersFile, check_root};
use ferry_bench::units;

use crate::exit;

/// `ferry user …`.
#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user (the users file is created if missing, mode 0600).
    ///
    /// A user needs a key (--key) or a password to log in; one without is kept but cannot log
    /// in until one is added.
    Add(AddArgs),
    /// List the users: name, root, rights, number of keys, whether a password is set, limits;
    /// and which users cannot log in.
    List {
        /// The users file.
        #[arg(long, value_name = "FILE")]
        users: PathBuf,
    },
    /// Set a user's password (SCRAM-SHA-256: the file keeps a salted verifier, never the
    /// password): asked twice on the terminal, or read from standard input.
    Passwd {
        /// The user.
        name: UserName,
        /// The users file.
        #[arg(long, value_name = "FILE")]
        users: PathBuf,
        /// Read the password from the first line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user (their folder and files are left alone).
    Remove {
        /// The user.
        name: UserName,
        /// The users file.
        #[arg(long, value_name = "FILE")]
        users: PathBuf,
    },
}

/// `ferry user add`.
#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// The user's name: 1 to 64 ASCII letters, digits, `.`, `_`, `-` (`anonymous` is
    /// reserved).
    name: UserName,
    /// The users file (created if missing).
    #[arg(long, value_name = "FILE")]
    users: PathBuf,
    /// The folder the user sees, an absolute path (it need not exist yet).
    #[arg(long, value_name = "DIR", value_parser = parse_root)]
    root: PathBuf,
    /// What the user may do, comma-separated, from list, read, create, replace, delete,
    /// rename (e.g. list,read).
    #[arg(long, value_name = "RIGHTS")]
    rights: Rights,
    /// An OpenSSH Ed25519 public key file (`ssh-ed25519 AAAA… COMMENT`, e.g. from `ferry
    /// keygen` or ~/.ssh/id_ed25519.pub); repeat for several keys.
    #[arg(long = "key", value_name = "FILE.pub")]
    keys: Vec<PathBuf>,
    /// Give the user a password, read from the first line of standard input (stored as a
    /// salted SCRAM-SHA-256 verifier; `ferry user passwd` asks on the terminal).
    #[arg(long)]
    password_stdin: bool,
    /// Most octets the user's folder may hold (e.g. 10GiB; each folder counts 4096).
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    quota_bytes: Option<u64>,
    /// Most files and folders the user's folder may hold (each folder counts one).
    #[arg(long, value_name = "N")]
    quota_files: Option<u64>,
    /// Most sessions of this user at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_sessions: Option<u32>,
}

fn parse_root(s: &str) -> Result<PathBuf, String> {
    let root = PathBuf::from(s);
    check_root(&root)?;
    Ok(root)
}

/// A failure: the message (printed after `ferry user: ` or `ferry keygen: `) and the exit
/// code.
struct Failure(String, u8);

fn usage(message: impl Into<String>) -> Failure {
    Failure(message.into(), exit::USAGE)
}

fn load_failure(e: &LoadError) -> Failure {
    match e {
        LoadError::Io { .. } => Failure(e.to_string(), exit::LOCAL_IO),
        LoadError::Invalid { .. } => usage(e.to_string()),
    }
}

fn key_failure(e: &KeyError) -> Failure {
    let local_io = matches!(e, KeyError::Io { .. })
        || matches!(e, KeyError::InFile { source, .. } if matches!(**source, KeyError::Io { .. }));
    Failure(
        e.to_string(),
        if local_io {
            exit::LOCAL_IO
        } else {
            exit::USAGE
        },
    )
}

/// Loads the users file, printing its warnings; with `create`, a missing file is an empty one.
fn load(path: &Path, create: bool) -> Result<(UsersFile, bool), Failure> {
    match UsersFile::load(path) {
        Ok((file, warnings)) => {
            for w in warnings {
                eprintln!("ferry user: warning: {w}");
            }
            Ok((file, false))
        }
        Err(LoadError::Io { source, .. }) if create && source.kind() == io::ErrorKind::NotFound => {
            Ok((UsersFile::default(), true))
        }
        Err(e) => Err(load_failure(&e)),
    }
}

/// The users file's lock, held from before a load to after the save that follows it.
fn lock(path: &Path) -> Result<ferry_auth::users::Lock, Failure> {
    UsersFile::lock(path)
        .map_err(|e| Failure(format!("locking the users file: {e}"), exit::LOCAL_IO))
}

fn save(file: &UsersFile, path: &Path) -> Result<(), Failure> {
    file.save(path)
        .map_err(|e| Failure(format!("saving the users file: {e}"), exit::LOCAL_IO))
}

/// Runs `ferry user …`.
pub(crate) fn user(command: UserCommand) -> u8 {
    let result = match command {
        UserCommand::Add(args) => add(args),
        UserCommand::List { users } => list(&users),
        UserCommand::Passwd {
            name,
            users,
            password_stdin,
        } => passwd(&name, &users, password_stdin),
        UserCommand::Remove { name, users } => remove(&name, &users),
    };
    match result {
        Ok(()) => exit::OK,
        Err(Failure(message, code)) => {
            eprintln!("ferry user: {message}");
            code
        }
    }
}

fn add(args: AddArgs) -> Result<(), Failure> {
    let _lock = lock(&args.users)?;
    let (mut file, created) = load(&args.users, true)?;
    if file.users.contains_key(args.name.as_str()) {
        return Err(usage(format!(
            "user {:?} exists in {} (`ferry user remove {} --users {}` first to replace it)",
            args.name.as_str(),
            args.users.display(),
            args.name,
            args.users.display()
        )));
    }
    let mut user = User::new(args.root.clone(), args.rights).map_err(usage)?;
    user.quota_bytes = args.quota_bytes;
    user.quota_files = args.quota_files;
    user.max_sessions = args.max_sessions;
    add_credentials(&mut user, &args, &file)?;
    file.users.insert(args.name.clone(), user.clone());
    save(&file, &args.users)?;
    println!(
        "added user {} to {}{}: root {}, rights {}",
        args.name,
        args.users.display(),
        if created { " (created)" } else { "" },
        user.root.display(),
        rights_text(user.rights)
    );
    if !user.root.is_dir() {
        eprintln!(
            "ferry user: note: {} is not a folder yet; `ferry serve --users` makes it when it starts",
            user.root.display()
        );
    }
    if !user.can_log_in() {
        eprintln!(
            "ferry user: note: {} has no key and no password, and cannot log in until one is added",
            args.name
        );
    }
    Ok(())
}

/// The user's credentials from the arguments: `--key` files and `--password-stdin`.
fn add_credentials(user: &mut User, args: &AddArgs, file: &UsersFile) -> Result<(), Failure> {
    for path in &args.keys {
        let key = PublicKey::read_file(path).map_err(|e| key_failure(&e))?;
        if user.key(key.raw()).is_some() {
            return Err(usage(format!(
                "{}: the same key is given twice ({})",
                path.display(),
                key.fingerprint()
            )));
        }
        for (other, u) in &file.users {
            if u.key(key.raw()).is_some() {
                eprintln!(
                    "ferry user: note: {}: {} is also a key of {other}",
                    path.display(),
                    key.fingerprint()
                );
            }
        }
        user.keys.push(key);
    }
    if args.password_stdin {
        let password = crate::password::from_stdin()
            .map_err(|e| Failure(format!("reading the password: {e}"), exit::LOCAL_IO))?;
        user.password = Some(verifier(&password)?);
    }
    Ok(())
}

/// The stored form of `password` (never the password): SCRAM-SHA-256 with a fresh salt and
/// [`scram::DEFAULT_ITERATIONS`], so that every user's verifier looks alike (AUTH-14).
fn verifier(password: &str) -> Result<StoredPassword, Failure> {
    if password.is_empty() {
        return Err(usage("the password is empty"));
    }
    StoredPassword::new(
        password,
        scram::DEFAULT_ITERATIONS,
        &ring::rand::SystemRandom::new(),
    )
    .map_err(|e| usage(format!("the password: {e}")))
}

/// `ferry user passwd`.
fn passwd(name: &UserName, users: &Path, from_stdin: bool) -> Result<(), Failure> {
    let password = if from_stdin {
        crate::password::from_stdin()
    } else if crate::password::can_prompt() {
        ask_twice()
    } else {
        return Err(usage(
            "standard input is not a terminal: give --password-stdin to read the password from it",
        ));
    }
    .map_err(|e| match e.kind() {
        io::ErrorKind::InvalidInput => usage(e.to_string()),
        _ => Failure(format!("reading the password: {e}"), exit::LOCAL_IO),
    })?;
    let verifier = verifier(&password)?;
    let _lock = lock(users)?;
    let (mut file, _) = load(users, false)?;
    let Some(user) = file.users.get_mut(name.as_str()) else {
        return Err(usage(format!(
            "no user {:?} in {}",
            name.as_str(),
            users.display()
        )));
    };
    user.password = Some(verifier);
    save(&file, users)?;
    println!("password of {name} set in {}", users.display());
    Ok(())
}

fn ask_twice() -> io::Result<zeroize::Zeroizing<String>> {
    let first = crate::password::prompt("New password: ")?;
    let again = crate::password::prompt("Again: ")?;
    if *first != *again {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the two passwords differ",
        ));
    }
    Ok(first)
}

fn rights_text(rights: Rights) -> String {
    if rights.is_empty() {
        "(none)".into()
    } else {
        rights.to_string()
    }
}

fn limits_text(user: &User) -> String {
    let mut parts = quota_parts(user.quota_bytes, user.quota_files);
    if let Some(n) = user.max_sessions {
        parts.push(format!("{n} sessions"));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// A folder's quotas, in words.
fn quota_parts(bytes: Option<u64>, files: Option<u64>) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some(b) = bytes {
        parts.push(format!("quota {}", units::size_text(b)));
    }
    if let Some(n) = files {
        parts.push(format!("{n} files"));
    }
    parts
}

fn list(path: &Path) -> Result<(), Failure> {
    let (file, _) = load(path, false)?;
    if file.users.is_empty() {
        println!("no users in {}", path.display());
    } else {
        let mut rows = vec![[
            "NAME".to_owned(),
            "ROOT".to_owned(),
            "RIGHTS".to_owned(),
            "KEYS".to_owned(),
            "PASSWORD".to_owned(),
            "LIMITS".to_owned(),
        ]];
        for (name, u) in &file.users {
            rows.push([
                name.to_string(),
                u.root.display().to_string(),
                rights_text(u.rights),
                u.keys.len().to_string(),
                if u.password.is_some() { "yes" } else { "no" }.to_owned(),
                limits_text(u),
            ]);
        }
        let widths: Vec<usize> = (0..6)
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        for row in &rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 < row.len() {
                    line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
                } else {
                    line.push_str(cell);
                }
            }
            println!("{}", line.trim_end());
        }
    }
    match &file.anonymous {
        Some(a) => {
            let quotas = quota_parts(a.quota_bytes, a.quota_files);
            println!(
                "anonymous access: root {}, rights {}{}",
                a.root.display(),
                rights_text(a.rights),
                if quotas.is_empty() {
                    String::new()
                } else {
                    format!(", {}", quotas.join(", "))
                }
            );
        }
        None => println!("no anonymous access"),
    }
    let locked: Vec<&str> = file
        .users
        .iter()
        .filter(|(_, u)| !u.can_log_in())
        .map(|(n, _)| n.as_str())
        .collect();
    if !locked.is_empty() {
        println!("cannot log in (no key, no password): {}", locked.join(", "));
    }
    Ok(())
}

fn remove(name: &UserName, path: &Path) -> Result<(), Failure> {
    // A missing file is named as such, and no lock file is made for it.
    if let Err(e) = std::fs::metadata(path) {
        return Err(Failure(format!("{}: {e}", path.display()), exit::LOCAL_IO));
    }
    let _lock = lock(path)?;
    let (mut file, _) = load(path, false)?;
    if file.users.remove(name.as_str()).is_none() {
        return Err(usage(format!(
            "no user {:?} in {}",
            name.as_str(),
            path.display()
        )));
    }
    save(&file, path)?;
    println!("removed user {name} from {}", path.display());
    Ok(())
}

/// The default comment of a new key: `USER@HOST`, as ssh-keygen writes it (what is known of
/// it).
fn default_comment() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_default();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    match (user.is_empty(), host.is_empty()) {
        (false, false) => format!("{user}@{host}"),
        (false, true) => user,
        _ => String::new(),
    }
}

/// Runs `ferry keygen` without `-f`: ferry's own key at `own`, in a folder made readable by
/// its owner only if it is missing.
pub(crate) fn keygen_own(own: &Path, comment: Option<String>) -> u8 {
    if let Some(dir) = own.parent()
        && !dir.exists()
    {
        use std::os::unix::fs::DirBuilderExt as _;
        if let Err(e) = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            eprintln!("ferry keygen: cannot make {}: {e}", dir.display());
            return exit::LOCAL_IO;
        }
    }
    keygen(own, comment)
}

/// Runs `ferry keygen -f FILE [-C COMMENT]`: prints the public key line and its fingerprint
/// as `ssh-keygen -l` shows it.
pub(crate) fn keygen(file: &Path, comment: Option<String>) -> u8 {
    let comment = comment.unwrap_or_else(default_comment);
    if comment.contains(['\n', '\r']) {
        eprintln!("ferry keygen: the comment must be one line");
        return exit::USAGE;
    }
    let written = PrivateKey::generate(comment).and_then(|key| {
        let public_path = key.write_pair(file)?;
        Ok((key, public_path))
    });
    match written {
        Ok((key, public_path)) => {
            let public = key.public();
            println!("{}", public.to_line());
            let label = if public.comment().is_empty() {
                String::new()
            } else {
                format!(" {}", public.comment())
            };
            println!("256 {}{label} (ED25519)", public.fingerprint());
            eprintln!(
                "ferry keygen: wrote {} (the private key: keep it secret) and {}",
                file.display(),
                public_path.display()
            );
            exit::OK
        }
        Err(e) => {
            let Failure(message, code) = match e {
                KeyError::Exists(_) => usage(e.to_string()),
                e => key_failure(&e),
            };
            eprintln!("ferry keygen: {message}");
            code
        }
    }
}

// ------------------------------------------------------------- ferry serve --users ---

/// What `ferry serve --users FILE` runs with.
pub(crate) struct ServeAuth {
    /// For the engine.
    pub(crate) server: ferry_store::ServerAuth,
    /// Reloads the users file (on change, on SIGHUP).
    pub(crate) reload: Reload,
    /// A line for the operator: who is served.
    pub(crate) summary: String,
}

/// Loads the users file again and applies it: the users, their rights, their folders.
#[derive(Clone)]
pub(crate) struct Reload {
    path: PathBuf,
    directory: std::sync::Arc<ferry_auth::directory::Directory>,
    homes: std::sync::Arc<ferry_store::homes::Homes>,
}

/// The users and folders of a users file, for ferry-store.
fn homes_of(
    directory: &ferry_auth::directory::Directory,
) -> (
    Vec<(UserName, ferry_store::homes::Home)>,
    Option<ferry_store::homes::Home>,
) {
    let mut users = Vec::new();
    let mut anonymous = None;
    for h in directory.homes() {
        let home = ferry_store::homes::Home {
            path: h.root,
            quota: ferry_store::Quota {
                bytes: h.quota,
                files: h.quota_files,
            },
        };
        match h.user {
            Some(u) => users.push((u, home)),
            None => anonymous = Some(home),
        }
    }
    (users, anonymous)
}

/// The users of `path` for a server with `config` (its TLS side decided): AUTH-2 refuses
/// authentication without TLS unless `without_tls`. The exit code after saying what is wrong.
pub(crate) fn server_auth(
    path: &Path,
    config: &ferry_store::ServerConfig,
    without_tls: bool,
    throttle: bool,
) -> Result<ServeAuth, u8> {
    let tls = config.tls.is_some();
    if !tls && !without_tls {
        eprintln!(
            "ferry: --users needs TLS (--tls-self-signed, or --tls-cert and --tls-key): without \
             it a password exchange can be watched and a key's proof replayed; \
             --auth-without-tls allows it for tests on loopback"
        );
        return Err(exit::USAGE);
    }
    let (file, warnings) = UsersFile::load(path).map_err(|e| {
        eprintln!("ferry: {e}");
        load_failure(&e).1
    })?;
    for w in warnings {
        eprintln!("ferry: warning: {w}");
    }
    let count = file.users.len();
    let unable: Vec<String> = file
        .users
        .iter()
        .filter(|(_, u)| !u.can_log_in())
        .map(|(n, _)| n.to_string())
        .collect();
    let anonymous = file.anonymous.as_ref().map(|a| a.rights);
    let directory = ferry_auth::directory::Directory::new(file, tls).map_err(|_| {
        eprintln!("ferry: no randomness for the authentication secret");
        exit::LOCAL_IO
    })?;
    let directory = with_kept_secret(directory, path);
    let directory = if throttle {
        directory
    } else {
        // No source remembered: nothing is held back or refused.
        directory.with_throttle(ferry_auth::throttle::ThrottleLimits {
            max_sources: 0,
            ..Default::default()
        })
    };
    let directory = std::sync::Arc::new(directory);
    let (users, anon_home) = homes_of(&directory);
    let homes =
        ferry_store::homes::Homes::open(config, &users, anon_home.as_ref()).map_err(|e| {
            eprintln!("ferry: cannot serve the users' folders: {e}");
            exit::LOCAL_IO
        })?;
    let homes = std::sync::Arc::new(homes);
    let mut summary = format!(
        "users: {count} from {} (anonymous access: {})",
        path.display(),
        anonymous.map_or("none".to_owned(), rights_text)
    );
    if !unable.is_empty() {
        summary.push_str(&format!(
            "; cannot log in (no key, no password): {}",
            unable.join(", ")
        ));
    }
    if !tls {
        summary.push_str("; WITHOUT TLS (--auth-without-tls)");
    }
    if !throttle {
        summary.push_str("; failed logins NOT throttled (--auth-throttle=false)");
    }
    Ok(ServeAuth {
        server: ferry_store::ServerAuth {
            authenticator: directory.clone(),
            homes: homes.clone(),
        },
        reload: Reload {
            path: path.to_owned(),
            directory,
            homes,
        },
        summary,
    })
}

/// `directory` with the secret of AUTH-14 kept beside the users file `users`
/// (`ferry_auth::secret`), made at the first start; when it can be neither read nor made (a
/// read-only folder), the secret drawn for this run, with a warning.
fn with_kept_secret(
    directory: ferry_auth::directory::Directory,
    users: &Path,
) -> ferry_auth::directory::Directory {
    let path = ferry_auth::secret::path_for(users);
    match ferry_auth::secret::load_or_create(&path, &ring::rand::SystemRandom::new()) {
        Ok(loaded) => {
            if let Some(w) = &loaded.warning {
                eprintln!("ferry: warning: {w}");
            }
            if loaded.made {
                eprintln!(
                    "ferry: made the secret that hides which users exist in {}",
                    path.display()
                );
            }
            directory.with_secret(loaded.secret)
        }
        Err(e) => {
            eprintln!(
                "ferry: warning: the secret that hides which users exist cannot be kept ({e}): \
                 one is drawn for this run, so a password login as an unknown user gets \
                 another made-up salt after a restart, which tells it from a real one"
            );
            directory
        }
    }
}

impl Reload {
    /// Loads the file again and applies it (`why`: for the log); a file that does not load,
    /// or whose folders cannot be opened, changes nothing (logged).
    pub(crate) fn reload(&self, why: &str) {
        let file = match UsersFile::load(&self.path) {
            Ok((file, warnings)) => {
                for w in warnings {
                    tracing::warn!(%w, "users file");
                }
                file
            }
            Err(e) => {
                tracing::error!(error = %e, why, "users file not loaded; the old users stay");
                return;
            }
        };
        let count = file.users.len();
        let old = self.directory.file();
        self.directory.update(file);
        let (users, anonymous) = homes_of(&self.directory);
        if let Err(e) = self.homes.update(&users, anonymous.as_ref()) {
            tracing::error!(error = %e, why, "users' folders not opened; the old users stay");
            self.directory.update((*old).clone());
            return;
        }
        tracing::info!(users = count, why, "users file loaded");
    }

    /// What identifies the file's content on disk now (a change reloads it).
    fn stamp(&self) -> Option<(std::time::SystemTime, u64, u64)> {
        use std::os::unix::fs::MetadataExt as _;
        let m = std::fs::metadata(&self.path).ok()?;
        Some((m.modified().ok()?, m.len(), m.ino()))
    }
}

/// A thread that reloads the users file within a second of a change.
pub(crate) struct Watcher {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Watcher {
    pub(crate) fn start(reload: Reload) -> Watcher {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = reload.stamp();
            while !flag.load(Ordering::Relaxed) {
                std::thread::park_timeout(std::time::Duration::from_secs(1));
                let now = reload.stamp();
                if now.is_some() && now != seen {
                    seen = now;
                    reload.reload("the file changed");
                }
            }
        });
        Watcher { stop, thread }
    }

    pub(crate) fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}
