//! `ferry serve`: bind, announce the bound address, run the server until SIGINT/SIGTERM.

use std::fs;
use std::io::{self, Write as _};
use std::net::TcpListener;

use std::path::{Path, PathBuf};

use ferry_store::audit::AuditFile;
use ferry_tls::ServerTls;

use crate::config::{Serve, TlsSettings};
use crate::engine::{self, AnyShutdown};
use crate::exit;

/// Runs the server; returns the exit code.
pub(crate) fn run(settings: Serve) -> u8 {
    let Serve {
        engine,
        listen,
        mut config,
        tls,
        users,
        audit_log,
        auth_without_tls,
        auth_throttle,
        log_format: _,
        verbosity: _,
    } = settings;
    tracing::debug!(
        ?engine,
        max_file_size = config.max_size,
        max_eager = config.max_eager,
        quota = ?config.quota,
        quota_files = ?config.quota_files,
        idle_timeout = ?config.idle_timeout,
        stall_timeout = ?config.stall_timeout,
        min_rate = config.min_rate,
        shutdown_grace = ?config.shutdown_grace,
        "settings"
    );
    // With --users, each user's folder is served and --root is not (ServerConfig::auth).
    if users.is_none()
        && let Err(code) = check_root(&config)
    {
        return code;
    }
    if users.is_some() && (config.quota.is_some() || config.quota_files.is_some()) {
        eprintln!(
            "ferry: warning: --quota and --quota-files bound the folder served without --users; \
             with --users they do nothing: give quota-bytes and quota-files to each user and to \
             [anonymous] in the users file"
        );
    }
    let tls = match server_tls(&tls, &config.root) {
        Ok(tls) => tls,
        Err(code) => return code,
    };
    config.tls = tls.clone();
    let auth = match &users {
        None => None,
        Some(path) => {
            match crate::users::server_auth(path, &config, auth_without_tls, auth_throttle) {
                Ok(auth) => Some(auth),
                Err(code) => return code,
            }
        }
    };
    config.auth = auth.as_ref().map(|a| a.server.clone());
    let audit = match &audit_log {
        None => None,
        Some(path) => match audit_file(path, &config, users.is_some()) {
            Ok(log) => Some(log),
            Err(code) => return code,
        },
    };
    config.audit = audit.as_ref().map(AuditFile::sink);
    let listener = match TcpListener::bind(listen.target()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ferry: cannot listen on {listen}: {e}");
            return exit::CONNECTION;
        }
    };
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ferry: cannot listen on {listen}: {e}");
            return exit::CONNECTION;
        }
    };

    // Signals are handled before the address is announced, so that a script may stop the
    // server as soon as it has read the line.
    let shutdown = AnyShutdown::new(engine);
    let reload = auth.as_ref().map(|a| a.reload.clone());
    let signals = match SignalThread::start(&shutdown, tls.clone(), reload.clone(), audit.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ferry: cannot handle signals: {e}");
            return exit::LOCAL_IO;
        }
    };
    let watcher = reload.map(crate::users::Watcher::start);

    if tls.is_none() && !local.ip().is_loopback() {
        eprintln!(
            "ferry: warning: serving {local} without TLS: anyone on the network path can read \
             every file moved and change it unnoticed. Use --tls-self-signed (or --tls-cert and \
             --tls-key) beyond loopback."
        );
    }
    {
        let mut out = io::stdout().lock();
        if let Some(auth) = &auth {
            let _ = writeln!(out, "{}", auth.summary);
        }
        // TLS-11: the operator sees the key's fingerprint to give to clients; before the
        // address, so a script that waits for `listening on` has both.
        if let Some(tls) = &tls {
            let fp = tls.fingerprint();
            let _ = writeln!(
                out,
                "TLS key {fp} (clients: ferrys://{local}, or pin it with --fingerprint {fp})"
            );
        }
        let _ = writeln!(out, "listening on {local}");
        let _ = out.flush();
    }
    // The engine logs `serving` (address, folder, limits) and `stopped` itself: each once.
    let result = engine::serve(engine, listener, config, shutdown);
    signals.stop();
    if let Some(w) = watcher {
        w.stop();
    }
    // Every session is over: what they recorded is written and synced before the exit.
    if let Some(audit) = &audit {
        audit.close();
    }
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("ferry: the server stopped: {e}");
            exit::LOCAL_IO
        }
    }
}

/// Checks, creates and opens (so locks and cleans, SEC-8, SEC-9) the served folder before
/// the address is announced; the exit code after saying what is wrong.
fn check_root(config: &ferry_store::ServerConfig) -> Result<(), u8> {
    // A root that names something other than a folder is a mistake in the arguments, whether
    // the server would create the folder or only open it.
    if fs::metadata(&config.root).is_ok_and(|m| !m.is_dir()) {
        eprintln!(
            "ferry: the served folder {} is not a folder (--root must name a folder)",
            config.root.display()
        );
        return Err(exit::USAGE);
    }
    // SEC-10: a read-only server creates nothing, not even a missing served folder.
    if !config.read_only
        && let Err(e) = fs::create_dir_all(&config.root)
    {
        eprintln!(
            "ferry: cannot create the served folder {}: {e}",
            config.root.display()
        );
        return Err(exit::LOCAL_IO);
    }
    // Open (and so lock and clean, SEC-8, SEC-9) the folder before announcing the address: a
    // script that reads `listening on` must find a server that will serve, not one that is
    // about to fail because another server holds the folder. The engine opens it again. A
    // read-only server only opens it (SEC-10).
    let opened = if config.read_only {
        ferry_store::Root::open_read_only(&config.root)
    } else {
        ferry_store::Root::open(&config.root)
    };
    // Closed (and unlocked) at once: the engine opens the folder again.
    if let Err(e) = opened.map(drop) {
        eprintln!("ferry: cannot serve the folder: {e}");
        return Err(exit::LOCAL_IO);
    }
    Ok(())
}

/// Opens the audit log (`--audit-log`), or says why not and gives the exit code. Refused
/// inside the served folder (without `--users`), where clients could download it.
fn audit_file(
    path: &Path,
    config: &ferry_store::ServerConfig,
    users: bool,
) -> Result<AuditFile, u8> {
    if !users && let Some(code) = refuse_inside(path, &config.root, "audit log") {
        return Err(code);
    }
    AuditFile::open(path).map_err(|e| {
        eprintln!("ferry: cannot open the audit log {}: {e}", path.display());
        exit::LOCAL_IO
    })
}

/// The server's TLS side from its settings, or the exit code after saying what is wrong.
fn server_tls(settings: &TlsSettings, root: &Path) -> Result<Option<ServerTls>, u8> {
    let (tls, made_in) = match settings {
        TlsSettings::Off => return Ok(None),
        TlsSettings::Files { cert, key } => {
            if let Some(code) = refuse_inside(key, root, "TLS key") {
                return Err(code);
            }
            match ServerTls::from_pem_files(cert, key) {
                Ok(t) => (t, None),
                Err(e) => {
                    eprintln!("ferry: cannot use the TLS certificate: {e}");
                    return Err(exit::USAGE);
                }
            }
        }
        TlsSettings::SelfSigned(dir) => {
            let Some(dir) = dir.clone().or_else(ServerTls::default_dir) else {
                eprintln!(
                    "ferry: --tls-self-signed needs --tls-dir DIR (neither XDG_STATE_HOME nor \
                     HOME is set)"
                );
                return Err(exit::USAGE);
            };
            if let Some(code) = refuse_inside(&dir, root, "--tls-dir") {
                return Err(code);
            }
            match ServerTls::self_signed(&dir) {
                Ok((t, made)) => (t, made.then_some(dir)),
                Err(e) => {
                    eprintln!("ferry: cannot make or read the self-signed TLS certificate: {e}");
                    return Err(exit::LOCAL_IO);
                }
            }
        }
    };
    if let Some(dir) = made_in {
        eprintln!(
            "ferry: made a self-signed TLS certificate and key in {}",
            dir.display()
        );
    }
    Ok(Some(tls))
}

/// Refuses a TLS key (or its folder) inside the served folder, where clients could
/// download it: `Some(exit code)` after saying so.
fn refuse_inside(path: &Path, root: &Path, what: &str) -> Option<u8> {
    let (Some(path_abs), Some(root_abs)) = (resolved(path), resolved(root)) else {
        return None;
    };
    if path_abs.starts_with(&root_abs) {
        eprintln!(
            "ferry: the {what} {} is inside the served folder {}: clients could download the \
             key. Keep it elsewhere.",
            path.display(),
            root.display()
        );
        return Some(exit::USAGE);
    }
    None
}

/// `path` made absolute with its longest existing ancestor's symbolic links resolved, so
/// that two spellings of one place compare equal (the rest may not exist yet).
fn resolved(path: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(path).ok()?;
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(canon) = fs::canonicalize(existing) {
            return Some(rest.iter().rev().fold(canon, |p: PathBuf, c| p.join(c)));
        }
        rest.push(existing.file_name()?.to_owned());
        existing = existing.parent()?;
    }
}

/// A thread that turns the first SIGINT or SIGTERM into a graceful shutdown and a second
/// one into an immediate exit (130); SIGHUP loads the users file, the TLS certificate and key
/// again, and opens the audit log again (after logrotate moved it).
#[cfg(unix)]
struct SignalThread {
    handle: signal_hook::iterator::Handle,
    thread: std::thread::JoinHandle<()>,
}

#[cfg(unix)]
impl SignalThread {
    fn start(
        shutdown: &AnyShutdown,
        tls: Option<ServerTls>,
        users: Option<crate::users::Reload>,
        audit: Option<AuditFile>,
    ) -> io::Result<Self> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
        let handle = signals.handle();
        let trigger = shutdown.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = 0;
            for signal in signals.forever() {
                if signal == SIGHUP {
                    if let Some(users) = &users {
                        users.reload("SIGHUP");
                    }
                    if let Some(audit) = &audit {
                        // The writer logs `audit log reopened`, or why not.
                        audit.reopen();
                    }
                    match tls.as_ref().map(ServerTls::reload) {
                        Some(Ok(fp)) => {
                            tracing::info!(fingerprint = %fp, "SIGHUP: TLS certificate loaded")
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "SIGHUP: TLS certificate not loaded; the old one stays in use")
                        }
                        None if users.is_none() && audit.is_none() => {
                            tracing::info!("SIGHUP: nothing to reload")
                        }
                        None => {}
                    }
                    continue;
                }
                seen += 1;
                if seen == 1 {
                    tracing::info!(signal, "shutting down: finishing requests in flight");
                    trigger.trigger();
                } else {
                    tracing::warn!(signal, "second signal: stopping at once");
                    std::process::exit(130);
                }
            }
        });
        Ok(Self { handle, thread })
    }

    fn stop(self) {
        self.handle.close();
        let _ = self.thread.join();
    }
}

/// Without Unix signals the server runs until the process is killed.
#[cfg(not(unix))]
struct SignalThread;

#[cfg(not(unix))]
impl SignalThread {
    fn start(
        _: &AnyShutdown,
        _: Option<ServerTls>,
        _: Option<crate::users::Reload>,
        _: Option<AuditFile>,
    ) -> io::Result<Self> {
        Ok(Self)
    }

    fn stop(self) {}
}
