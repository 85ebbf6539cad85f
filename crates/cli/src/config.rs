//! `ferry serve`'s settings from three places, the first that names a setting wins: a flag,
//! its `FERRY_*` environment variable (clap `env`), the `--config` TOML file, the default.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use ferry_bench::units;
use ferry_sync::server::Config;

use crate::Verbosity;
use crate::addr::{self, ServerAddr};
use crate::engine::Impl;

/// How the server writes its log on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One line of text per event.
    #[default]
    Text,
    /// One JSON object per line (tracing-subscriber's JSON format).
    Json,
}

/// `ferry serve`'s flags. None has a clap default, so that an absent flag lets the
/// environment variable, then the config file, then the default decide.
#[derive(Debug, Default, Args)]
pub(crate) struct ServeArgs {
    /// A TOML file with the same keys as these flags (`root = "/srv/ferry"`,
    /// `max-file-size = "10GiB"`, `idle-timeout = "5m"`, …); flags and FERRY_* variables
    /// override it. A relative `root` in it is relative to the file's folder.
    #[arg(long, value_name = "FILE", env = "FERRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Which implementation of the protocol engine serves [default: threads].
    #[arg(long = "impl", value_enum, env = "FERRY_IMPL")]
    pub implementation: Option<Impl>,
    /// The folder to serve, created if missing [default: ferry-files].
    #[arg(long, value_name = "DIR", env = "FERRY_ROOT")]
    pub root: Option<PathBuf>,
    /// The address to listen on; port 0 picks a free port (the line `listening on ADDR`
    /// tells which) [default: 127.0.0.1:7450].
    #[arg(long, value_name = "ADDR", env = "FERRY_LISTEN", value_parser = addr::parse)]
    pub listen: Option<ServerAddr>,
    /// Refuse every upload (514 read-only); `--read-only=false` overrides the config file.
    #[arg(
        long,
        value_name = "BOOL",
        env = "FERRY_READ_ONLY",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub read_only: Option<bool>,
    /// List and serve files with more than one hard link, which are otherwise left out of
    /// `dir` and answered 511 by `get` because another link may be outside the folder (SEC-13);
    /// `--allow-hard-links=false` overrides the config file.
    #[arg(
        long,
        value_name = "BOOL",
        env = "FERRY_ALLOW_HARD_LINKS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_hard_links: Option<bool>,
    /// Do not offer the `tree` extension (folders: `list`, `mkdir`, `rmdir`, `delete`,
    /// `rename`, paths in get and put; spec section 17), which is offered by default: its
    /// requests then get `err 503 unsupported` and the server serves its folder's files
    /// only; `--no-tree=false` overrides the config file.
    #[arg(
        long,
        value_name = "BOOL",
        env = "FERRY_NO_TREE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub no_tree: Option<bool>,
    /// Largest upload accepted, e.g. 10MiB, 1GB [default: 1TiB].
    #[arg(long, value_name = "SIZE", env = "FERRY_MAX_FILE_SIZE", value_parser = units::parse_size)]
    pub max_file_size: Option<u64>,
    /// Largest upload a client may send without waiting for `go` (0 disables) [default: 1MiB].
    #[arg(long, value_name = "SIZE", env = "FERRY_MAX_EAGER", value_parser = units::parse_size)]
    pub max_eager: Option<u64>,
    /// The most the folder's files and folders may hold, e.g. 50GiB (a folder counts 4096
    /// octets): a put that would exceed it, counting the uploads in progress, gets `err 432
    /// no-space` before any data, and so does a mkdir [default: none].
    #[arg(long, value_name = "SIZE", env = "FERRY_QUOTA", value_parser = units::parse_size)]
    pub quota: Option<u64>,
    /// The most files and folders the folder may hold in its whole tree: a put that would
    /// add a file, or a mkdir, beyond it gets `err 432 no-space` [default: none].
    #[arg(long, value_name = "N", env = "FERRY_QUOTA_FILES")]
    pub quota_files: Option<u64>,
    /// Most concurrent sessions; further connections get `err 420 busy` [default: 256].
    #[arg(long, value_name = "N", env = "FERRY_MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,
    /// Most concurrent sessions from one client address; further connections from it get
    /// `err 420 busy` [default: 32].
    #[arg(long, value_name = "N", env = "FERRY_MAX_CONNECTIONS_PER_ADDRESS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections_per_address: Option<u64>,
    /// How long a session may wait between requests, at least 1s [default: 5m].
    #[arg(long, value_name = "DURATION", env = "FERRY_IDLE_TIMEOUT",
          value_parser = units::parse_duration_at_least_1s)]
    pub idle_timeout: Option<Duration>,
    /// How long without progress inside a request or transfer, at least 1s [default: 1m].
    #[arg(long, value_name = "DURATION", env = "FERRY_STALL_TIMEOUT",
          value_parser = units::parse_duration_at_least_1s)]
    pub stall_timeout: Option<Duration>,
    /// Least average rate of an upload or download, per second, beyond a grace of the stall
    /// timeout: slower peers are cut off (TIME-9), e.g. 1KiB, 0 disables [default: 1KiB].
    #[arg(long, value_name = "SIZE", env = "FERRY_MIN_RATE", value_parser = units::parse_size)]
    pub min_rate: Option<u64>,
    /// Memory all sessions share for large buffers (held eager uploads, 1 MiB chunks); once
    /// spent, sessions use small buffers [default: 256MiB].
    #[arg(long, value_name = "SIZE", env = "FERRY_BUFFER_MEMORY", value_parser = units::parse_size)]
    pub buffer_memory: Option<u64>,
    /// How long requests in flight get to finish after Ctrl-C / SIGTERM before downloads
    /// are cut with `abort 422` and uploads with `err 422` [default: 10s].
    #[arg(long, value_name = "DURATION", env = "FERRY_SHUTDOWN_GRACE",
          value_parser = units::parse_duration)]
    pub shutdown_grace: Option<Duration>,
    /// Serve ferry/1 over TLS with this certificate chain (PEM, leaf first; with --tls-key).
    /// A replaced file is picked up by new sessions, or at once on SIGHUP. Default port 7451.
    #[arg(
        long,
        value_name = "FILE",
        env = "FERRY_TLS_CERT",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, SEC1 or PKCS#1).
    #[arg(
        long,
        value_name = "FILE",
        env = "FERRY_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Serve ferry/1 over TLS with a self-signed certificate, made once and kept in --tls-dir;
    /// clients pin its fingerprint (printed at start) or trust it on first use.
    #[arg(
        long,
        value_name = "BOOL",
        env = "FERRY_TLS_SELF_SIGNED",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(),
        conflicts_with = "tls_cert"
    )]
    pub tls_self_signed: Option<bool>,
    /// Where --tls-self-signed keeps its key and certificate; never inside the served folder
    /// [default: $XDG_STATE_HOME/ferry/tls, else ~/.local/state/ferry/tls].
    #[arg(long, value_name = "DIR", env = "FERRY_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,
    /// Authenticate users from this users file (`ferry user`; spec section 16): each user is
    /// served its own folder with its rights, `--root` is not served. Needs TLS unless
    /// --auth-without-tls. The file is read again when it changes, or on SIGHUP.
    #[arg(long, value_name = "FILE", env = "FERRY_USERS")]
    pub users: Option<PathBuf>,
    /// Append one JSON line per operation of every session to this file (auth attempts,
    /// dir, get, put, each session's end: time, user, client address, name, octets, result,
    /// duration); created with mode 0600, opened again on SIGHUP (logrotate).
    #[arg(long, value_name = "FILE", env = "FERRY_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,
    /// Offer authentication without TLS (AUTH-2: for tests on loopback; a password exchange
    /// or a key's proof can then be watched, and a proof replayed).
    #[arg(
        long,
        env = "FERRY_AUTH_WITHOUT_TLS",
        value_parser = clap::builder::BoolishValueParser::new(),
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub auth_without_tls: Option<bool>,
    /// Slow down and then refuse, per client address, repeated failed logins (AUTH-20,
    /// AUTH-22: after 3 failures in a row each `err 535` is held back 1 s, 2 s, then 4 s; 10
    /// failures within about 10 minutes refuse the address for 10 minutes with `err 425`)
    /// [default: true]. `=false` for test runs that fail logins on purpose, such as
    /// `ferry conform server --auth`.
    #[arg(
        long,
        env = "FERRY_AUTH_THROTTLE",
        value_parser = clap::builder::BoolishValueParser::new(),
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub auth_throttle: Option<bool>,
    /// The log format on stderr [default: text].
    #[arg(long, value_enum, value_name = "FORMAT", env = "FERRY_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

/// The settings `ferry serve` runs with.
#[derive(Debug, Clone)]
pub(crate) struct Serve {
    /// The engine.
    pub engine: Impl,
    /// Where to listen.
    pub listen: ServerAddr,
    /// The log format.
    pub log_format: LogFormat,
    /// `-v`, `-q`.
    pub verbosity: Verbosity,
    /// Everything the engine needs (its `tls` made at start from `tls`).
    pub config: Config,
    /// Whether and how to serve over TLS.
    pub tls: TlsSettings,
    /// The users file, when the server authenticates users (its `config.auth` made at start).
    pub users: Option<PathBuf>,
    /// The audit log file (its `config.audit` made at start).
    pub audit_log: Option<PathBuf>,
    /// Authentication allowed without TLS (AUTH-2).
    pub auth_without_tls: bool,
    /// Failed logins throttled per address (AUTH-20, AUTH-22).
    pub auth_throttle: bool,
}

/// Where the server's TLS certificate and key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TlsSettings {
    /// Plain ferry/1.
    Off,
    /// PEM files the operator gave.
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// Its key.
        key: PathBuf,
    },
    /// A self-signed pair made once in this folder (`None`: the default state folder).
    SelfSigned(Option<PathBuf>),
}

/// A setting in a config file that is wrong, or a config file that cannot be read.
#[derive(Debug)]
pub(crate) struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A size or a duration in a config file: a number (octets, seconds) or a text (`"10MiB"`,
/// `"5m"`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
enum Value {
    Number(u64),
    Text(String),
}

/// The keys of a config file: those of the flags.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    #[serde(rename = "impl")]
    implementation: Option<String>,
    root: Option<PathBuf>,
    listen: Option<String>,
    read_only: Option<bool>,
    allow_hard_links: Option<bool>,
    no_tree: Option<bool>,
    max_file_size: Option<Value>,
    max_eager: Option<Value>,
    quota: Option<Value>,
    quota_files: Option<u64>,
    max_connections: Option<u64>,
    max_connections_per_address: Option<u64>,
    idle_timeout: Option<Value>,
    stall_timeout: Option<Value>,
    min_rate: Option<Value>,
    buffer_memory: Option<Value>,
    shutdown_grace: Option<Value>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_self_signed: Option<bool>,
    tls_dir: Option<PathBuf>,
    users: Option<PathBuf>,
    audit_log: Option<PathBuf>,
    auth_without_tls: Option<bool>,
    auth_throttle: Option<bool>,
    log_format: Option<String>,
}

fn size(key: &str, v: Option<Value>) -> Result<Option<u64>, String> {
    match v {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(Some(n)),
        Some(Value::Text(t)) => units::parse_size(&t)
            .map(Some)
            .map_err(|e| format!("{key}: {e}")),
    }
}

fn duration(
    key: &str,
    v: Option<Value>,
    parse: fn(&str) -> Result<Duration, String>,
) -> Result<Option<Duration>, String> {
    match v {
        None => Ok(None),
        Some(Value::Number(n)) => parse(&n.to_string())
            .map(Some)
            .map_err(|e| format!("{key}: {e}")),
        Some(Value::Text(t)) => parse(&t).map(Some).map_err(|e| format!("{key}: {e}")),
    }
}

fn value_enum<T: ValueEnum>(key: &str, v: Option<String>) -> Result<Option<T>, String> {
    v.map(|s| {
        T::from_str(&s, false).map_err(|_| {
            let names: Vec<String> = T::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_owned()))
                .collect();
            format!("{key}: {s:?} is not one of {}", names.join(", "))
        })
    })
    .transpose()
}

/// `file`'s settings as [`ServeArgs`] (a relative root made relative to the file's folder).
fn read_file(path: &Path) -> Result<ServeArgs, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(format!(
            "cannot read the config file {}: {e}",
            path.display()
        ))
    })?;
    parse_file(&text, path.parent().unwrap_or(Path::new("")))
        .map_err(|e| ConfigError(format!("{}: {e}", path.display())))
}

/// Parses a config file's text; `base` is the folder a relative root is relative to.
fn parse_file(text: &str, base: &Path) -> Result<ServeArgs, String> {
    let f: File = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
    if f.tls_cert.is_some() != f.tls_key.is_some() {
        return Err("tls-cert and tls-key: give both or neither".into());
    }
    if f.tls_cert.is_some() && f.tls_self_signed == Some(true) {
        return Err("tls-self-signed: not with tls-cert and tls-key".into());
    }
    let max_connections = match f.max_connections {
        Some(0) => return Err("max-connections: must be at least 1".into()),
        n => n,
    };
    let max_connections_per_address = match f.max_connections_per_address {
        Some(0) => return Err("max-connections-per-address: must be at least 1".into()),
        n => n,
    };
    Ok(ServeArgs {
        config: None,
        implementation: value_enum("impl", f.implementation)?,
        root: f.root.map(|r| base.join(r)),
        listen: f
            .listen
            .map(|l| addr::parse(&l).map_err(|e| format!("listen: {e}")))
            .transpose()?,
        read_only: f.read_only,
        allow_hard_links: f.allow_hard_links,
        no_tree: f.no_tree,
        max_file_size: size("max-file-size", f.max_file_size)?,
        max_eager: size("max-eager", f.max_eager)?,
        quota: size("quota", f.quota)?,
        quota_files: f.quota_files,
        max_connections,
        max_connections_per_address,
        idle_timeout: duration(
            "idle-timeout",
            f.idle_timeout,
            units::parse_duration_at_least_1s,
        )?,
        stall_timeout: duration(
            "stall-timeout",
            f.stall_timeout,
            units::parse_duration_at_least_1s,
        )?,
        min_rate: size("min-rate", f.min_rate)?,
        buffer_memory: size("buffer-memory", f.buffer_memory)?,
        shutdown_grace: duration("shutdown-grace", f.shutdown_grace, units::parse_duration)?,
        tls_cert: f.tls_cert.map(|p| base.join(p)),
        tls_key: f.tls_key.map(|p| base.join(p)),
        tls_self_signed: f.tls_self_signed,
        tls_dir: f.tls_dir.map(|p| base.join(p)),
        users: f.users.map(|p| base.join(p)),
        audit_log: f.audit_log.map(|p| base.join(p)),
        auth_without_tls: f.auth_without_tls,
        auth_throttle: f.auth_throttle,
        log_format: value_enum("log-format", f.log_format)?,
        verbosity: Verbosity::default(),
    })
}

impl ServeArgs {
    /// The settings: these flags (and variables) over the config file over the defaults.
    pub(crate) fn resolve(self) -> Result<Serve, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => ServeArgs::default(),
        };
        Ok(self.over(file))
    }

    /// `self` where it names a setting, else `file`, else the default.
    fn over(self, file: ServeArgs) -> Serve {
        let d = Config::default();
        let config = Config {
            root: self.root.or(file.root).unwrap_or(d.root),
            read_only: self.read_only.or(file.read_only).unwrap_or(d.read_only),
            allow_hard_links: self
                .allow_hard_links
                .or(file.allow_hard_links)
                .unwrap_or(d.allow_hard_links),
            tree: !self.no_tree.or(file.no_tree).unwrap_or(!d.tree),
            max_size: self
                .max_file_size
                .or(file.max_file_size)
                .unwrap_or(d.max_size),
            max_eager: self.max_eager.or(file.max_eager).unwrap_or(d.max_eager),
            quota: self.quota.or(file.quota).or(d.quota),
            quota_files: self.quota_files.or(file.quota_files).or(d.quota_files),
            max_connections: self
                .max_connections
                .or(file.max_connections)
                .map_or(d.max_connections, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                }),
            max_per_address: self
                .max_connections_per_address
                .or(file.max_connections_per_address)
                .map_or(d.max_per_address, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                }),
            idle_timeout: self
                .idle_timeout
                .or(file.idle_timeout)
                .unwrap_or(d.idle_timeout),
            stall_timeout: self
                .stall_timeout
                .or(file.stall_timeout)
                .unwrap_or(d.stall_timeout),
            min_rate: self.min_rate.or(file.min_rate).unwrap_or(d.min_rate),
            buffer_memory: self
                .buffer_memory
                .or(file.buffer_memory)
                .map_or(d.buffer_memory, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                }),
            shutdown_grace: self
                .shutdown_grace
                .or(file.shutdown_grace)
                .unwrap_or(d.shutdown_grace),
            // Made from the --tls-* settings when the server starts (files are read there).
            tls: None,
            // Made from `users` when the server starts (the file is read there).
            auth: None,
            // Opened from `audit_log` when the server starts.
            audit: None,
        };
        // Flags over the file: certificate files given as flags win over a self-signed
        // setting in the file, and the other way round.
        let (cert, key, self_signed) = if self.tls_cert.is_some() || self.tls_self_signed.is_some()
        {
            (self.tls_cert, self.tls_key, self.tls_self_signed)
        } else {
            (file.tls_cert, file.tls_key, file.tls_self_signed)
        };
        let tls = match (cert, key, self_signed) {
            (Some(cert), Some(key), _) => TlsSettings::Files { cert, key },
            (_, _, Some(true)) => TlsSettings::SelfSigned(self.tls_dir.or(file.tls_dir)),
            _ => TlsSettings::Off,
        };
        let default_port = if tls == TlsSettings::Off {
            ferry_wire::limits::DEFAULT_PORT
        } else {
            ferry_tls::DEFAULT_TLS_PORT
        };
        Serve {
            tls,
            users: self.users.or(file.users),
            audit_log: self.audit_log.or(file.audit_log),
            auth_without_tls: self
                .auth_without_tls
                .or(file.auth_without_tls)
                .unwrap_or(false),
            auth_throttle: self.auth_throttle.or(file.auth_throttle).unwrap_or(true),
            engine: self
                .implementation
                .or(file.implementation)
                .unwrap_or(Impl::Threads),
            listen: self.listen.or(file.listen).unwrap_or_else(|| ServerAddr {
                host: "127.0.0.1".into(),
                port: default_port,
                tls: false,
                user: None,
            }),
            log_format: self.log_format.or(file.log_format).unwrap_or_default(),
            verbosity: self.verbosity,
            config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
        impl = "tokio"
        root = "files"
        listen = "0.0.0.0:9000"
        read-only = true
        allow-hard-links = true
        no-tree = true
        max-file-size = "10MiB"
        max-eager = 4096
        quota = "2GiB"
        quota-files = 10000
        max-connections = 8
        max-connections-per-address = 4
        idle-timeout = "5m"
        stall-timeout = 30
        min-rate = "4KiB"
        shutdown-grace = "1m 30s"
        log-format = "json"
    "#;

    fn full() -> ServeArgs {
        parse_file(FULL, Path::new("/etc/ferry")).expect("valid")
    }

    #[test]
    fn every_key_is_read_and_flags_win() {
        let s = ServeArgs::default().over(full());
        assert_eq!(s.engine, Impl::Tokio);
        assert_eq!(s.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(s.log_format, LogFormat::Json);
        let c = &s.config;
        assert_eq!(c.root, Path::new("/etc/ferry/files"));
        assert!(c.read_only);
        assert!(c.allow_hard_links);
        assert!(!c.tree);
        assert_eq!(c.max_size, 10 << 20);
        assert_eq!(c.max_eager, 4096);
        assert_eq!(c.quota, Some(2 << 30));
        assert_eq!(c.quota_files, Some(10_000));
        assert_eq!(c.max_connections, 8);
        assert_eq!(c.max_per_address, 4);
        assert_eq!(c.idle_timeout, Duration::from_secs(300));
        assert_eq!(c.stall_timeout, Duration::from_secs(30));
        assert_eq!(c.min_rate, 4096);
        assert_eq!(c.shutdown_grace, Duration::from_secs(90));

        let flags = ServeArgs {
            implementation: Some(Impl::Smol),
            root: Some("/srv/x".into()),
            read_only: Some(false),
            allow_hard_links: Some(false),
            no_tree: Some(false),
            max_file_size: Some(1),
            quota: Some(5),
            quota_files: Some(3),
            idle_timeout: Some(Duration::from_secs(7)),
            ..ServeArgs::default()
        };
        let s = flags.over(full());
        assert_eq!(s.engine, Impl::Smol);
        assert_eq!(s.config.root, Path::new("/srv/x"));
        assert!(!s.config.read_only);
        assert!(!s.config.allow_hard_links);
        assert!(s.config.tree);
        assert_eq!(s.config.max_size, 1);
        assert_eq!(s.config.quota, Some(5));
        assert_eq!(s.config.quota_files, Some(3));
        assert_eq!(s.config.idle_timeout, Duration::from_secs(7));
        // What the flags leave open still comes from the file.
        assert_eq!(s.config.max_eager, 4096);
        assert_eq!(s.listen.to_string(), "0.0.0.0:9000");
    }

    #[test]
    fn the_audit_log_comes_from_the_flag_else_the_file_relative_to_it() {
        let file = || parse_file("audit-log = \"audit.log\"\n", Path::new("/etc/ferry"));
        let s = ServeArgs::default().over(file().expect("valid"));
        assert_eq!(s.audit_log, Some("/etc/ferry/audit.log".into()));
        let flags = ServeArgs {
            audit_log: Some("/var/log/ferry/audit.log".into()),
            ..ServeArgs::default()
        };
        let s = flags.over(file().expect("valid"));
        assert_eq!(s.audit_log, Some("/var/log/ferry/audit.log".into()));
        assert_eq!(
            ServeArgs::default().over(ServeArgs::default()).audit_log,
            None
        );
    }

    #[test]
    fn tls_settings_from_file_and_flags() {
        let file = parse_file(
            "tls-self-signed = true\ntls-dir = \"tls\"\n",
            Path::new("/etc/ferry"),
        )
        .expect("valid");
        let s = ServeArgs::default().over(file);
        assert_eq!(
            s.tls,
            TlsSettings::SelfSigned(Some("/etc/ferry/tls".into()))
        );
        assert_eq!(s.listen.to_string(), "127.0.0.1:7451", "TLS-1's port");

        let file = parse_file(
            "tls-cert = \"c.pem\"\ntls-key = \"k.pem\"\n",
            Path::new("/etc/ferry"),
        )
        .expect("valid");
        let s = ServeArgs::default().over(file);
        assert_eq!(
            s.tls,
            TlsSettings::Files {
                cert: "/etc/ferry/c.pem".into(),
                key: "/etc/ferry/k.pem".into()
            }
        );
        // Flags win over the file, either way round.
        let file = parse_file(
            "tls-cert = \"c.pem\"\ntls-key = \"k.pem\"\n",
            Path::new("/e"),
        )
        .expect("valid");
        let flags = ServeArgs {
            tls_self_signed: Some(true),
            ..ServeArgs::default()
        };
        assert_eq!(flags.over(file).tls, TlsSettings::SelfSigned(None));
        let flags = ServeArgs {
            tls_self_signed: Some(false),
            ..ServeArgs::default()
        };
        let file = parse_file("tls-self-signed = true\n", Path::new("/e")).expect("valid");
        let s = flags.over(file);
        assert_eq!(s.tls, TlsSettings::Off);
        assert_eq!(s.listen.to_string(), "127.0.0.1:7450");

        for (text, want) in [
            ("tls-cert = \"c\"", "give both or neither"),
            ("tls-key = \"k\"", "give both or neither"),
            (
                "tls-cert = \"c\"\ntls-key = \"k\"\ntls-self-signed = true",
                "not with tls-cert",
            ),
        ] {
            let e = parse_file(text, Path::new("")).err().unwrap_or_default();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn defaults_without_file_or_flags() {
        let s = ServeArgs::default().over(ServeArgs::default());
        assert_eq!(s.engine, Impl::Threads);
        assert_eq!(s.listen.to_string(), "127.0.0.1:7450");
        assert_eq!(s.config, Config::default());
        assert_eq!(s.tls, TlsSettings::Off);
        assert_eq!(s.log_format, LogFormat::Text);
    }

    /// `--quota-files N`: a whole number of files and folders, over the file's `quota-files`.
    #[test]
    fn quota_files_flag() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let parse = |args: &[&str]| {
            <Cli as clap::Parser>::try_parse_from(
                std::iter::once("serve").chain(args.iter().copied()),
            )
            .map(|c| c.serve)
        };
        let flags = parse(&["--quota-files", "7"]).expect("parses");
        assert_eq!(flags.quota_files, Some(7));
        assert_eq!(
            flags.over(full()).config.quota_files,
            Some(7),
            "the flag wins"
        );
        let none = parse(&[]).expect("parses");
        assert_eq!(none.over(ServeArgs::default()).config.quota_files, None);
        for bad in ["-1", "lots", "1.5", ""] {
            assert!(parse(&["--quota-files", bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_files_say_which_key() {
        for (text, want) in [
            ("max-size = 1", "unknown field `max-size`"),
            (
                "max-file-size = \"lots\"",
                "max-file-size: \"lots\" is not a size",
            ),
            (
                "idle-timeout = \"0s\"",
                "idle-timeout: \"0s\" is less than 1s",
            ),
            (
                "impl = \"fibers\"",
                "impl: \"fibers\" is not one of threads, tokio",
            ),
            ("listen = \"a b\"", "listen: "),
            ("max-connections = 0", "max-connections: must be at least 1"),
            ("root = 5", "invalid type"),
            ("quota-files = \"10\"", "invalid type"),
            ("quota-files = -1", "invalid value"),
        ] {
            let e = parse_file(text, Path::new("")).err().unwrap_or_default();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
