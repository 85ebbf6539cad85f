//! `ferry`: serve a folder over ferry/1, and list, download and upload files from a ferry
//! server, one shot or in an interactive shell, on any of the protocol engines (ferry-sync's
//! threads, ferry-async on tokio, async-std or smol); also `conform`, `bench`, and `keygen`
//! and `user` for the users file of the auth extension (#16). See
//! crates/cli/README.md.

// The doc comments of the clap types are the commands' --help text, written for a terminal:
// `HOST[:PORT]` there is a usage pattern, not a rustdoc link.
#![allow(rustdoc::broken_intra_doc_links)]

mod addr;
mod commands;
mod config;
mod engine;
mod exit;
mod hints;
mod login;
mod password;
mod progress;
mod serve;
mod shell;
mod tree;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use ferry_bench::units;
use ferry_wire::FileName;

use addr::ServerAddr;
use config::{LogFormat, ServeArgs};
use engine::Impl;

/// Transfer files with the ferry/1 protocol.
///
/// `ferry serve` offers one folder; `ferry dir`, `get`, `put` and `shell` talk to a server.
/// ADDR is HOST:PORT or HOST (port 7450), or ferrys://HOST[:PORT] for ferry/1 over TLS (port
/// 7451). Sizes are written 10MiB, 1GB, 4KiB or 1000
/// (octets); durations 90s, 5m, 1h 30m or 60 (seconds).
#[derive(Debug, Parser)]
#[command(name = "ferry", version, after_help = exit::HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `-v` and `-q` (serve and the client commands).
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct Verbosity {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); overrides FERRY_LOG.
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Less log output on stderr (-q errors only, -qq none); overrides FERRY_LOG.
    #[arg(short, long, action = ArgAction::Count)]
    pub quiet: u8,
}

/// How a client command verifies a ferry/1 over TLS server (`ferrys://` addresses, spec
/// section 15.3): by default a certificate chain to the system's roots, else trust on first
/// use (the key is remembered in known_hosts and a changed key refused).
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// For ferrys:// addresses: accept only the server key with this fingerprint (SHA256:…,
    /// as `ferry serve` prints it), whatever its certificate.
    #[arg(long, value_name = "SHA256:…", group = "trust")]
    pub fingerprint: Option<ferry_tls::Fingerprint>,
    /// For ferrys:// addresses: accept only a certificate chain to the CA certificates (PEM)
    /// in FILE that is valid for the host name.
    #[arg(long, value_name = "FILE", group = "trust")]
    pub ca: Option<PathBuf>,
    /// For ferrys:// addresses: accept any server key, with a warning. For tests only: an
    /// attacker on the path would go unnoticed.
    #[arg(long, group = "trust")]
    pub insecure: bool,
    /// Where trust on first use remembers server keys [default:
    /// $XDG_CONFIG_HOME/ferry/known_hosts, else ~/.config/ferry/known_hosts].
    #[arg(long, value_name = "FILE", env = "FERRY_KNOWN_HOSTS")]
    pub known_hosts: Option<PathBuf>,
}

/// How a client command reaches the server: `--impl`, `--timeout` and the limits it puts
/// on a server.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Which implementation of the protocol engine to use.
    #[arg(long = "impl", value_enum, default_value_t = Impl::Threads)]
    pub implementation: Impl,
    /// Longest wait to connect, and then for the server to answer or to take data (e.g. 30s,
    /// 2m); a server that stays silent that long ends the command with exit 3.
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = units::parse_duration_nonzero)]
    pub timeout: Duration,
    /// Largest file a get accepts (e.g. 10GiB): a server that announces more is refused
    /// before anything is written, and the session closed.
    #[arg(long, value_name = "SIZE", default_value = "1TiB", value_parser = units::parse_size)]
    pub max_get_size: u64,
    /// Slowest transfer accepted, per second (e.g. 1KiB, 100kB/s; 0 turns it off): once
    /// `--timeout` has passed, the server's answer to a request (a download included), or
    /// its taking of an upload, must have averaged at least this since it began, else the
    /// command ends with exit 3. The default is slower than any real link.
    #[arg(long, value_name = "RATE", default_value = "1KiB", value_parser = parse_rate)]
    pub min_rate: u64,
    /// `--fingerprint`, `--ca`, `--insecure`, `--known-hosts`.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// `--key`, `--password`, `--auth-without-tls`.
    #[command(flatten)]
    pub auth: login::AuthArgs,
    /// `-v` / `-q`.
    #[command(flatten)]
    pub verbosity: Verbosity,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a folder: print `listening on ADDR`, then run until SIGINT or SIGTERM.
    ///
    /// Every setting can come from a flag, from its FERRY_* environment variable (shown with
    /// each flag) or from the `--config` file, in that order of precedence.
    Serve(ServeArgs),
    /// List the files a server offers: size, modification time (UTC) and name.
    Dir {
        /// The server.
        #[arg(value_parser = addr::parse_any)]
        addr: ServerAddr,
        /// One JSON object per line: {"name": …, "size": …, "mtime": "RFC 3339"}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Download files (pipelined on one connection), or with -r a folder and everything in
    /// it.
    ///
    /// A file is written to NAME.ferry-part and renamed to NAME only once its digest is
    /// verified; an existing file is replaced only then. After a failure that may have left
    /// good data (connection lost, transfer truncated or aborted), the .ferry-part is kept
    /// and `--continue` resumes from it; otherwise it is removed. Nothing is printed on
    /// stdout unless it is a terminal or `--json` is given.
    Get {
        /// The server.
        #[arg(value_parser = addr::parse_any)]
        addr: ServerAddr,
        /// The files to download (a path such as docs/a.txt names a file in a folder, with
        /// the `tree` extension); with -r, the one folder (a path such as docs/2024, or `.`
        /// for the whole served folder).
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Download the folder NAME with its subfolders into DIR/NAME (DIR: `-o`, default
        /// the current folder), needing a server with the `tree` extension. Folders are made
        /// beneath DIR only, never through a symbolic link.
        #[arg(short = 'r', long)]
        recursive: bool,
        /// Where to save: with one NAME, a file path or an existing folder; with several, a
        /// folder (created if missing). Default: the current folder.
        #[arg(short = 'o', long = "output", value_name = "PATH")]
        output: Option<PathBuf>,
        /// Resume from an existing NAME.ferry-part (the whole file is still verified; a
        /// stale partial file is discarded and the download starts over).
        #[arg(short = 'c', long = "continue")]
        resume: bool,
        /// One JSON object per file on stdout: name, path, bytes, digest, seconds, outcome
        /// ("ok" or "failed"), and for a failure error and code.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Upload files (small files pipelined on one connection), or with -r a folder.
    ///
    /// Each file is stored under its own name (converted to Unicode NFC) unless `--as`
    /// names it. Without `--replace`, a name that exists on the server is an error (512).
    /// Nothing is printed on stdout unless it is a terminal or `--json` is given.
    Put {
        /// The server.
        #[arg(value_parser = addr::parse_any)]
        addr: ServerAddr,
        /// The local files to upload; with -r, the folder DIR and, optionally, the folder
        /// on the server to upload it as (REMOTE; default DIR's own name, `.` the served
        /// folder).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Upload the folder DIR with its subfolders (the `tree` extension): folders made as
        /// needed, files pipelined; symbolic links and special files are skipped with a
        /// warning.
        #[arg(short = 'r', long)]
        recursive: bool,
        /// The name to store the file under (only with one FILE); a path such as
        /// docs/a.txt stores it in that folder (the `tree` extension; the folder must exist).
        #[arg(long = "as", value_name = "NAME", value_parser = tree::parse_path)]
        as_name: Option<ferry_wire::TreePath>,
        /// Replace an existing file of the same name (atomically).
        #[arg(long)]
        replace: bool,
        /// One JSON object per file on stdout: name, file, bytes, digest, seconds, outcome
        /// ("ok" or "failed"), and for a failure error and code.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List a folder of the server (the `tree` extension): size (`-` for a folder),
    /// modification time (UTC), path (a folder's ends with `/`).
    Ls {
        /// The server.
        #[arg(value_parser = addr::parse_any)]
        addr: ServerAddr,
        /// The folder (default `.`, the served folder).
        #[arg(value_parser = tree::parse_folder, default_value = ".", hide_default_value = true)]
        path: ferry_wire::tree::Folder,
        /// Also the subfolders' entries, at every depth.
        #[arg(short = 'r', long)]
        recursive: bool,
        /// Also each file's digest (xxh3-128, as a download verifies it).
        #[arg(long)]
        digests: bool,
        /// One JSON object per line: {"path", "kind" (file or folder), "size", "mtime",
        /// "digest"}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete files on the server (the `tree` extension); with -r, folders with everything
    /// in them.
    Rm {
        /// The server.
        #[arg(value_parser = addr::parse_any)]
        addr: ServerAddr,
        /// The files (paths such as docs/notes.txt).
        #[arg(required = true, value_name = "PATH", value_parser = tree::parse_path)]
        paths: Vec<ferry_wire::TreePath>,
        /// Remove folders and what they hold: the files first, then the folders, deepest
        /// first (pipelined). A folder holding entries no listing shows stays (517).
        #[arg(short = 'r', long)]
        recursive: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Move or rename a file or folder on the server (the `tree` extension); never replaces
    /// what exists at TO.
    Mv {
        /// The server.
        #[arg(value_parser = addr::parse_any)]
        addr: ServerAddr,
        /// What to move.
        #[arg(value_parser = tree::parse_path)]
        from: ferry_wire::TreePath,
        /// Its new path (its folder must exist).
        #[arg(value_parser = tree::parse_path)]
        to: ferry_wire::TreePath,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Make folders on the server (the `tree` extension).
    Mkdir {
        /// The server.
        #[arg(value_parser = addr::parse_any)]
        addr: ServerAddr,
        /// The folders.
        #[arg(required = true, value_name = "PATH", value_parser = tree::parse_path)]
        paths: Vec<ferry_wire::TreePath>,
        /// Make missing parents too; a folder that exists is no error.
        #[arg(short = 'p', long)]
        parents: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove empty folders on the server (the `tree` extension).
    Rmdir {
        /// The server.
        #[arg(value_parser = addr::parse_any)]
        addr: ServerAddr,
        /// The folders.
        #[arg(required = true, value_name = "PATH", value_parser = tree::parse_path)]
        paths: Vec<ferry_wire::TreePath>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Make a folder on the server the same as a local one (push), or the other way round
    /// (pull), copying only the files whose size or digest differs (the `tree` extension).
    ///
    /// Prints a summary: files sent or received, octets, files unchanged, entries deleted.
    /// A rerun after an interruption finishes the job.
    Mirror {
        /// push: local to server; pull: server to local.
        #[arg(value_enum)]
        direction: MirrorWay,
        /// The server.
        #[arg(value_parser = addr::parse_any)]
        addr: ServerAddr,
        /// The local folder.
        local: PathBuf,
        /// The folder on the server (default: LOCAL's own name; `.` the served folder).
        #[arg(value_parser = tree::parse_folder)]
        remote: Option<ferry_wire::tree::Folder>,
        /// Also delete what the source lacks (files, then folders deepest first).
        #[arg(long)]
        delete: bool,
        /// Print what would be done, change nothing.
        #[arg(long = "dry-run", short = 'n')]
        dry_run: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Interactive session like sftp: dir, get, put, mget/mput with globs, lcd, lls, !cmd
    /// (type `help`); line editing, history and Tab completion on a terminal.
    ///
    /// Without a terminal on stdin, or with -b, the commands run as a batch: each is echoed,
    /// the first that fails stops the shell with its exit code; a line starting with `-` may
    /// fail.
    Shell {
        /// The server.
        #[arg(value_parser = addr::parse_any)]
        addr: ServerAddr,
        /// Run the commands of FILE (`-` for stdin) as a batch.
        #[arg(short = 'b', long = "batch", value_name = "FILE")]
        batch: Option<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Conformance: test a ferry/1 server or client of any implementation against the spec
    /// (see crates/conformance/README.md). Exit 1 when a case fails.
    Conform {
        /// What to test.
        #[command(subcommand)]
        target: ferry_conformance::cli::Target,
    },
    /// Benchmark the server implementations (threads, async-std, tokio, smol) under fixed
    /// workloads next to this machine's loopback and disk ceilings; prints a summary table
    /// and writes report.md, report.json and report.svg (see docs/PERFORMANCE.md). Build
    /// with --release; `--quick` runs in under a minute.
    Bench(ferry_bench::BenchArgs),
    /// Make an Ed25519 key pair for logging in with a key, in OpenSSH's formats: FILE
    /// (the private key, unencrypted, mode 0600) and FILE.pub; prints the public key and its
    /// fingerprint. Neither file may exist.
    Keygen {
        /// The private key file to write; the public key goes to FILE.pub [default: ferry's
        /// own key, $XDG_CONFIG_HOME/ferry/id_ed25519 or ~/.config/ferry/id_ed25519, which
        /// the client commands use to log in].
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        /// The comment at the end of the public key [default: USER@HOST].
        #[arg(short = 'C', long = "comment", value_name = "COMMENT")]
        comment: Option<String>,
    },
    /// Manage the users file of a server: who may log in, with which keys, to which folder,
    /// with which rights and limits (`ferry user add|list|remove`).
    User {
        /// What to do.
        #[command(subcommand)]
        command: users::UserCommand,
    },
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell, e.g.
    /// `ferry completions bash > ~/.local/share/bash-completion/completions/ferry`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `ferry man > ferry.1; man ./ferry.1`.
    #[command(hide = true)]
    Man,
}

/// Which way `ferry mirror` copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MirrorWay {
    /// Local to server.
    Push,
    /// Server to local.
    Pull,
}

fn parse_name(s: &str) -> Result<FileName, String> {
    FileName::from_local(s).map_err(|e| format!("{e}"))
}

/// A rate: a size per second, `/s` optional (`1KiB`, `100kB/s`, `0`).
fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    units::parse_size(t.strip_suffix("/s").unwrap_or(t))
}

/// Logging on stderr. The level: `default`, moved by `-v`/`-q`; without them, FERRY_LOG
/// (or RUST_LOG) if set.
fn init_logging(default: usize, v: Verbosity, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let Verbosity { verbose, quiet } = v;
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let level = (default + usize::from(verbose))
        .saturating_sub(usize::from(quiet))
        .min(LEVELS.len() - 1);
    let by_flags = || EnvFilter::new(LEVELS[level]);
    let filter = if verbose > 0 || quiet > 0 {
        by_flags()
    } else {
        EnvFilter::try_from_env("FERRY_LOG")
            .or_else(|_| EnvFilter::try_from_default_env())
            .unwrap_or_else(|_| by_flags())
    };
    // A log line that cannot be written (stderr closed, e.g. `ferry serve 2>&1 | head -1`)
    // is dropped: tracing-subscriber's own report of it would panic in `eprintln!`, killing
    // the thread that logged (for the signal thread: before it starts the shutdown).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        // Colours only on a terminal: logs redirected to a file stay plain text.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

/// The default log levels (indexes into `init_logging`'s ladder).
const INFO: usize = 3;
const WARN: usize = 2;

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
            let text = match args.format {
                ferry_bench::Format::Table => report.to_table(),
                ferry_bench::Format::Md => report.to_markdown(),
            };
            print!("{text}");
            eprintln!(
                "ferry bench: wrote report.md, report.json and report.svg in {}",
                args.out.display()
            );
            if report.failed() {
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

/// The command line: [`Cli`], with the usage of `conform server` and `conform client` showing
/// their argument as required (clap shows an argument that is required unless `--list` as
/// optional).
fn command() -> clap::Command {
    Cli::command().mut_subcommand("conform", |c| {
        c.mut_subcommand("server", |s| {
            s.override_usage(
                "ferry conform server [OPTIONS] <ADDR>\n       ferry conform server --list [OPTIONS]",
            )
            .mut_arg("addr", |a| {
                a.help("The server to test (host:port); required unless --list")
            })
        })
        .mut_subcommand("client", |s| {
            s.override_usage(
                "ferry conform client [OPTIONS] -- <COMMAND>...\n       ferry conform client --list [OPTIONS]",
            )
            .mut_arg("command", |a| {
                a.help("The client command and its arguments, after `--`; required unless --list")
            })
        })
    })
}

fn main() -> ExitCode {
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    let client_logs = |c: &ClientArgs| init_logging(WARN, c.verbosity, LogFormat::Text);
    let code = match cli.command {
        Command::Serve(args) => match args.resolve() {
            Ok(settings) => {
                init_logging(INFO, settings.verbosity, settings.log_format);
                serve::run(settings)
            }
            Err(e) => {
                eprintln!("ferry: {e}");
                exit::USAGE
            }
        },
        Command::Dir { addr, json, client } => {
            client_logs(&client);
            commands::dir(client, &addr, json)
        }
        Command::Get {
            addr,
            names,
            recursive: true,
            output,
            resume,
            json,
            client,
        } => {
            let folder = match names.as_slice() {
                [one] if !json => tree::parse_folder(one),
                [_] => Err("--json is for files, not -r".to_owned()),
                _ => Err("-r takes one folder".to_owned()),
            };
            let folder = folder.unwrap_or_else(|e| {
                command()
                    .error(clap::error::ErrorKind::ValueValidation, e)
                    .exit()
            });
            client_logs(&client);
            let dir = output.unwrap_or_else(|| PathBuf::from("."));
            tree::one_shot(&client, &addr, |c, ctx| {
                tree::get_recursive(c, ctx, &folder, &dir, resume)
            })
        }
        Command::Get {
            addr,
            names,
            recursive: false,
            output,
            resume,
            json,
            client,
        } => {
            // A NAME with a `/` is a path (the `tree` extension).
            let paths: Vec<ferry_wire::TreePath> = names
                .iter()
                .map(|n| {
                    let parsed = match parse_name(n) {
                        Ok(name) => Ok(ferry_wire::TreePath::from(name)),
                        Err(e) if !n.contains('/') => Err(e),
                        Err(_) => tree::parse_path(n),
                    };
                    parsed.unwrap_or_else(|e| {
                        command()
                            .error(
                                clap::error::ErrorKind::ValueValidation,
                                format!("invalid value '{n}' for '<NAME>...': {e}"),
                            )
                            .exit()
                    })
                })
                .collect();
            client_logs(&client);
            let names: Option<Vec<FileName>> = paths.iter().map(|p| p.as_file_name()).collect();
            match names {
                Some(names) => {
                    commands::get(client, &addr, &names, output.as_deref(), resume, json)
                }
                None if json => command()
                    .error(
                        clap::error::ErrorKind::ArgumentConflict,
                        "--json is for names without folders",
                    )
                    .exit(),
                None => tree::one_shot(&client, &addr, |c, ctx| {
                    tree::get_by_path(c, ctx, &paths, output.as_deref(), resume)
                }),
            }
        }
        Command::Put {
            addr,
            files,
            recursive: true,
            as_name,
            replace,
            json,
            client,
        } => {
            let remote = match files.as_slice() {
                _ if as_name.is_some() || json => Err("--as and --json are not for -r".to_owned()),
                [_] => Ok(None),
                [_, remote] => tree::parse_folder(&remote.to_string_lossy()).map(Some),
                _ => Err("-r takes one folder DIR and, optionally, REMOTE".to_owned()),
            };
            let remote = remote.unwrap_or_else(|e| {
                command()
                    .error(clap::error::ErrorKind::ArgumentConflict, e)
                    .exit()
            });
            client_logs(&client);
            tree::one_shot(&client, &addr, |c, ctx| {
                tree::put_recursive(c, ctx, &files[0], remote, replace)
            })
        }
        Command::Ls {
            addr,
            path,
            recursive,
            digests,
            json,
            client,
        } => {
            client_logs(&client);
            let options = ferry_wire::tree::ListOptions { digests, recursive };
            tree::one_shot(&client, &addr, |c, ctx| {
                tree::ls(c, ctx, path, options, json, &mut std::io::stdout().lock())
            })
        }
        Command::Rm {
            addr,
            paths,
            recursive,
            client,
        } => {
            client_logs(&client);
            tree::one_shot(&client, &addr, |c, ctx| tree::rm(c, ctx, &paths, recursive))
        }
        Command::Mv {
            addr,
            from,
            to,
            client,
        } => {
            client_logs(&client);
            tree::one_shot(&client, &addr, |c, ctx| tree::mv(c, ctx, &from, &to))
        }
        Command::Mkdir {
            addr,
            paths,
            parents,
            client,
        } => {
            client_logs(&client);
            tree::one_shot(&client, &addr, |c, ctx| {
                tree::mkdir(c, ctx, &paths, parents)
            })
        }
        Command::Rmdir {
            addr,
            paths,
            client,
        } => {
            client_logs(&client);
            tree::one_shot(&client, &addr, |c, ctx| tree::rmdir(c, ctx, &paths))
        }
        Command::Mirror {
            direction,
            addr,
            local,
            remote,
            delete,
            dry_run,
            client,
        } => {
            client_logs(&client);
            let direction = match direction {
                MirrorWay::Push => tree::Direction::Push,
                MirrorWay::Pull => tree::Direction::Pull,
            };
            tree::one_shot(&client, &addr, |c, ctx| {
                tree::mirror(c, ctx, direction, &local, remote, delete, dry_run)
            })
        }
        Command::Put {
            addr,
            files,
            recursive: false,
            as_name,
            replace,
            json,
            client,
        } => {
            if as_name.is_some() && files.len() != 1 {
                command()
                    .error(
                        clap::error::ErrorKind::ArgumentConflict,
                        "--as needs exactly one FILE",
                    )
                    .exit();
            }
            client_logs(&client);
            match as_name.as_ref().map(|p| (p.as_file_name(), p)) {
                Some((None, path)) if !json => tree::one_shot(&client, &addr, |c, ctx| {
                    tree::put_by_path(c, ctx, &files[0], path, replace)
                }),
                Some((None, _)) => command()
                    .error(
                        clap::error::ErrorKind::ArgumentConflict,
                        "--json is for names without folders",
                    )
                    .exit(),
                Some((Some(name), _)) => {
                    commands::put(client, &addr, &files, Some(name), replace, json)
                }
                None => commands::put(client, &addr, &files, None, replace, json),
            }
        }
        Command::Shell {
            addr,
            batch,
            client,
        } => {
            client_logs(&client);
            shell::run(client, &addr, batch.as_deref())
        }
        Command::Conform { target } => ferry_conformance::cli::run(target),
        Command::Bench(args) => bench(&args.resolved()),
        Command::Keygen { file, comment } => match file {
            Some(file) => users::keygen(&file, comment),
            None => match login::own_key_path() {
                Some(own) => users::keygen_own(&own, comment),
                None => {
                    eprintln!(
                        "ferry keygen: no place for ferry's own key (neither XDG_CONFIG_HOME nor \
                     HOME is set): give -f FILE"
                    );
                    exit::USAGE
                }
            },
        },
        Command::User { command } => users::user(command),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut command(), "ferry", &mut std::io::stdout());
            exit::OK
        }
        Command::Man => match clap_mangen::Man::new(command()).render(&mut std::io::stdout()) {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("ferry: writing the man page: {e}");
                exit::LOCAL_IO
            }
        },
    };
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap's own consistency checks (no flag defined twice on one subcommand, …), which it
    /// otherwise makes only when that subcommand is used.
    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn rates_are_sizes_per_second() {
        assert_eq!(parse_rate("1KiB"), Ok(1024));
        assert_eq!(parse_rate("100kB/s"), Ok(100_000));
        assert_eq!(parse_rate(" 2 MiB/s "), Ok(2 << 20));
        assert_eq!(parse_rate("0"), Ok(0));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("1KiB/h").is_err());
    }
}
