//! `ferry`: serve a folder over ferry/1, and list, download and upload files from a ferry
//! server, one shot or in an interactive shell. A thin layer over `ferry_sync`; see
//! crates/cli/README.md.

mod addr;
mod commands;
mod engine;
mod exit;
mod progress;
mod serve;
mod shell;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use ferry_wire::FileName;

use addr::ServerAddr;
use engine::Impl;

/// Transfer files with the ferry/1 protocol.
///
/// `ferry serve` offers one folder; `ferry dir`, `get`, `put` and `shell` talk to a server.
/// ADDR is HOST:PORT or HOST (port 7450).
#[derive(Debug, Parser)]
#[command(name = "ferry", version, after_help = exit::HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Which implementation of the protocol engine to use.
    #[arg(long = "impl", value_enum, default_value_t = Impl::Threads, global = true)]
    implementation: Impl,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a folder: print `listening on ADDR`, then run until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// List the files a server offers: size, modification time (UTC) and name.
    Dir {
        /// The server.
        #[arg(value_parser = addr::parse)]
        addr: ServerAddr,
        /// One JSON object per line: {"name": …, "size": …, "mtime": "RFC 3339"}.
        #[arg(long)]
        json: bool,
    },
    /// Download files (pipelined on one connection).
    ///
    /// A file is written to NAME.ferry-part and renamed to NAME only once its digest is
    /// verified; an existing file is replaced only then. After a failure that may have left
    /// good data (connection lost, transfer truncated or aborted), the .ferry-part is kept
    /// and `--continue` resumes from it; otherwise it is removed.
    Get {
        /// The server.
        #[arg(value_parser = addr::parse)]
        addr: ServerAddr,
        /// The files to download.
        #[arg(required = true, value_name = "NAME", value_parser = parse_name)]
        names: Vec<FileName>,
        /// Where to save: with one NAME, a file path or an existing folder; with several, a
        /// folder (created if missing). Default: the current folder.
        #[arg(short = 'o', long = "output", value_name = "PATH")]
        output: Option<PathBuf>,
        /// Resume from an existing NAME.ferry-part (the whole file is still verified; a
        /// stale partial file is discarded and the download starts over).
        #[arg(short = 'c', long = "continue")]
        resume: bool,
    },
    /// Upload files (small files pipelined on one connection).
    ///
    /// Each file is stored under its own name (converted to Unicode NFC) unless `--as`
    /// names it. Without `--replace`, a name that exists on the server is an error (512).
    Put {
        /// The server.
        #[arg(value_parser = addr::parse)]
        addr: ServerAddr,
        /// The local files to upload.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The name to store the file under (only with one FILE).
        #[arg(long = "as", value_name = "NAME", value_parser = parse_name)]
        as_name: Option<FileName>,
        /// Replace an existing file of the same name (atomically).
        #[arg(long)]
        replace: bool,
    },
    /// Interactive session like sftp: dir, get, put, mget/mput with globs, lcd, lls, !cmd
    /// (type `help`); line editing, history and Tab completion on a terminal.
    ///
    /// Without a terminal on stdin, or with -b, the commands run as a batch: each is echoed,
    /// the first that fails stops the shell with its exit code; a line starting with `-` may
    /// fail.
    Shell {
        /// The server.
        #[arg(value_parser = addr::parse)]
        addr: ServerAddr,
        /// Run the commands of FILE (`-` for stdin) as a batch.
        #[arg(short = 'b', long = "batch", value_name = "FILE")]
        batch: Option<PathBuf>,
    },
    /// Conformance: test a ferry/1 server or client of any implementation against the spec
    /// (see crates/conformance/README.md). Exit 1 when a case fails.
    Conform {
        /// What to test.
        #[command(subcommand)]
        target: ferry_conformance::cli::Target,
    },
    /// Benchmark the server implementations (threads, async-std, tokio, smol) under fixed
    /// workloads next to this machine's loopback and disk ceilings; writes report.md,
    /// report.json and report.svg (see docs/PERFORMANCE.md). Build with --release.
    Bench(ferry_bench::BenchArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The folder to serve (created if missing).
    #[arg(long, value_name = "DIR", default_value = "ferry-files")]
    root: PathBuf,
    /// The address to listen on; port 0 picks a free port (the line `listening on ADDR`
    /// tells which).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7450", value_parser = addr::parse)]
    listen: ServerAddr,
    /// Refuse every upload (514 read-only).
    #[arg(long)]
    read_only: bool,
    /// Largest upload accepted, in octets (default 1 TiB).
    #[arg(long, value_name = "BYTES")]
    max_file_size: Option<u64>,
    /// Largest upload a client may send without waiting for `go`, in octets (0 disables;
    /// default 1 MiB).
    #[arg(long, value_name = "BYTES")]
    max_eager: Option<u64>,
    /// Most concurrent sessions; further connections get `err 420 busy`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: Option<u64>,
    /// Seconds a session may wait between requests (at least 1; default 300).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: Option<u64>,
    /// Seconds without progress inside a request or transfer (at least 1; default 60).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    stall_timeout: Option<u64>,
    /// Seconds that requests in flight get to finish after Ctrl-C / SIGTERM before downloads
    /// are cut with `abort 422` and uploads with `err 422` (default 10).
    #[arg(long, value_name = "SECS")]
    shutdown_grace: Option<u64>,
}

fn parse_name(s: &str) -> Result<FileName, String> {
    FileName::from_local(s).map_err(|e| format!("{e}"))
}

fn init_logging(default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FERRY_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal: logs redirected to a file stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// `ferry bench`: servers are started from this very binary (`ferry serve`).
fn bench(args: &ferry_bench::BenchArgs) -> u8 {
    if cfg!(debug_assertions) {
        eprintln!(
            "ferry bench: warning: this is a debug build; figures mean little (use --release)"
        );
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ferry bench: cannot find the ferry binary to start servers from: {e}");
            return exit::LOCAL_IO;
        }
    };
    match ferry_bench::run(args, &exe) {
        Ok(report) => {
            println!("{}", report.to_markdown());
            eprintln!(
                "ferry bench: wrote report.md, report.json and report.svg in {}",
                args.out.display()
            );
            if report.results.iter().any(|r| r.errors > 0) {
                exit::PERMANENT
            } else {
                exit::OK
            }
        }
        Err(e) => {
            eprintln!("ferry bench: {e}");
            exit::LOCAL_IO
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let engine = cli.implementation;
    let code = match cli.command {
        Command::Serve(args) => {
            init_logging("info");
            serve::run(args, engine)
        }
        Command::Dir { addr, json } => {
            init_logging("warn");
            commands::dir(engine, &addr, json)
        }
        Command::Get {
            addr,
            names,
            output,
            resume,
        } => {
            init_logging("warn");
            commands::get(engine, &addr, &names, output.as_deref(), resume)
        }
        Command::Put {
            addr,
            files,
            as_name,
            replace,
        } => {
            if as_name.is_some() && files.len() != 1 {
                use clap::CommandFactory as _;
                Cli::command()
                    .error(
                        clap::error::ErrorKind::ArgumentConflict,
                        "--as needs exactly one FILE",
                    )
                    .exit();
            }
            init_logging("warn");
            commands::put(engine, &addr, &files, as_name, replace)
        }
        Command::Shell { addr, batch } => {
            init_logging("warn");
            shell::run(engine, &addr, batch.as_deref())
        }
        Command::Conform { target } => ferry_conformance::cli::run(target),
        Command::Bench(args) => bench(&args),
    };
    ExitCode::from(code)
}
