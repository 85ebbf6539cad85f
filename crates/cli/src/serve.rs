//! `ferry serve`: bind, announce the bound address, run the server until SIGINT/SIGTERM.

use std::fs;
use std::io::{self, Write as _};
use std::net::TcpListener;

use crate::config::Serve;
use crate::engine::{self, AnyShutdown};
use crate::exit;

/// Runs the server; returns the exit code.
pub(crate) fn run(settings: Serve) -> u8 {
    let Serve {
        engine,
        listen,
        config,
        log_format: _,
        verbosity: _,
    } = settings;
    tracing::debug!(
        ?engine,
        max_file_size = config.max_size,
        max_eager = config.max_eager,
        quota = ?config.quota,
        idle_timeout = ?config.idle_timeout,
        stall_timeout = ?config.stall_timeout,
        min_rate = config.min_rate,
        shutdown_grace = ?config.shutdown_grace,
        "settings"
    );
    // A root that names something other than a folder is a mistake in the arguments, whether
    // the server would create the folder or only open it.
    if fs::metadata(&config.root).is_ok_and(|m| !m.is_dir()) {
        eprintln!(
            "ferry: the served folder {} is not a folder (--root must name a folder)",
            config.root.display()
        );
        return exit::USAGE;
    }
    // SEC-10: a read-only server creates nothing, not even a missing served folder.
    if !config.read_only
        && let Err(e) = fs::create_dir_all(&config.root)
    {
        eprintln!(
            "ferry: cannot create the served folder {}: {e}",
            config.root.display()
        );
        return exit::LOCAL_IO;
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
        return exit::LOCAL_IO;
    }
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
    let signals = match SignalThread::start(&shutdown) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ferry: cannot handle signals: {e}");
            return exit::LOCAL_IO;
        }
    };

    {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "listening on {local}");
        let _ = out.flush();
    }
    // The engine logs `serving` (address, folder, limits) and `stopped` itself: each once.
    let result = engine::serve(engine, listener, config, shutdown);
    signals.stop();
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("ferry: the server stopped: {e}");
            exit::LOCAL_IO
        }
    }
}

/// A thread that turns the first SIGINT or SIGTERM into a graceful shutdown and a second
/// one into an immediate exit (130).
#[cfg(unix)]
struct SignalThread {
    handle: signal_hook::iterator::Handle,
    thread: std::thread::JoinHandle<()>,
}

#[cfg(unix)]
impl SignalThread {
    fn start(shutdown: &AnyShutdown) -> io::Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let handle = signals.handle();
        let trigger = shutdown.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = 0;
            for signal in signals.forever() {
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
    fn start(_: &AnyShutdown) -> io::Result<Self> {
        Ok(Self)
    }

    fn stop(self) {}
}
